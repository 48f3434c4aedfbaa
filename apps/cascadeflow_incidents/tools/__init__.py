"""Read-only SRE tools, each declared with a name, a description and typed parameters, over a recorded
backend (scenario evidence) or a live one (Kubernetes API, Prometheus, Loki)."""

from .base import (
           EvidenceMissing,
           Param,
           SourceUnavailable,
           Tool,
           Toolbox,
           ToolDeclaration,
           ToolLimits,
           ToolResult,
)
from .live import LiveConfig, LiveSources
from .recorded import RecordedEvidence
from .sources import ALL_TOOLS, SUFFIXES, Sources, live_toolbox, recorded_toolbox
from .wiring import draft_notification, initialize_tools, recall_similar_incidents, search_logs

__all__ = ["ALL_TOOLS", "SUFFIXES", "EvidenceMissing", "LiveConfig", "LiveSources", "Param", "RecordedEvidence",
           "SourceUnavailable", "Sources", "Tool",
           "ToolDeclaration", "ToolLimits", "ToolResult", "Toolbox", "draft_notification", "initialize_tools",
           "live_toolbox", "recall_similar_incidents", "recorded_toolbox", "search_logs"]
