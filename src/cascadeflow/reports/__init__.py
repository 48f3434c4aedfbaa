"""Reports over the audit log at any scale (DuckDB over JSONL, SQLite and PostgreSQL sinks): cost, calls, draft
acceptance and savings per any grouping, the monthly report with its recommendations, and the ROI and
self-hosting break-even calculators.

Names load on first use: DuckDB and Jinja2 (the `reports` extra) only when a report is run or rendered.
"""

from __future__ import annotations

from typing import Any

from cascadeflow.lazy import lazy_attribute

_HOME = {
    "BreakEven": "calculators",
    "MonthlyReport": "monthly",
    "Recommendation": "monthly",
    "RecommendationRules": "monthly",
    "Report": "query",
    "ReportRow": "query",
    "RoiEstimate": "calculators",
    "cascade_query_cost": "calculators",
    "monthly_report": "monthly",
    "open_audit": "sources",
    "query_cost": "calculators",
    "report": "query",
    "roi": "calculators",
    "self_hosting_break_even": "calculators",
    "to_csv": "render",
    "to_html": "html",
    "to_json": "render",
}

__all__ = [
    "BreakEven",
    "MonthlyReport",
    "Recommendation",
    "RecommendationRules",
    "Report",
    "ReportRow",
    "RoiEstimate",
    "cascade_query_cost",
    "monthly_report",
    "open_audit",
    "query_cost",
    "report",
    "roi",
    "self_hosting_break_even",
    "to_csv",
    "to_html",
    "to_json",
]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _HOME, name)


def __dir__() -> list[str]:
    return __all__
