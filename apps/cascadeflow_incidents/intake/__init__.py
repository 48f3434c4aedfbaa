"""Intake: webhook payloads and recorded scenarios become normalised alerts, duplicates grouped."""

from .alerts import (
           SEVERITIES,
           Alert,
           Incident,
           normalise_severity,
           parse_alertmanager,
           parse_grafana,
           parse_payload,
)
from .grouping import AlertGroup, group_alerts
from .scenario import Scenario, find_scenarios, load_scenario

__all__ = ["SEVERITIES", "Alert", "AlertGroup", "Incident", "Scenario", "find_scenarios", "group_alerts", "load_scenario",
           "normalise_severity", "parse_alertmanager", "parse_grafana", "parse_payload"]
