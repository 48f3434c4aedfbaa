"""The function-style tool API the IncidentOS write-up shows: `initialize_tools(log_searcher,
slack_notifier, memory_system)` once at startup, then `await search_logs(input_data, incident)`,
`recall_similar_incidents(...)` and `draft_notification(...)` with a dict of inputs and the incident.
A thin layer over the typed tools' pieces (LogSearcher, the memory, SlackNotifier)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cascadeflow import ConfigurationError


@dataclass(slots=True)
class _Wiring:
    log_searcher: Any = None
    slack_notifier: Any = None
    memory_system: Any = None


_WIRED = _Wiring()  # set once at startup, as in the write-up; read by the functions below


def initialize_tools(log_searcher: Any, slack_notifier: Any, memory_system: Any) -> None:
    """Wire the log searcher, the notifier (drafts only) and the incident memory the tools use."""
    _WIRED.log_searcher, _WIRED.slack_notifier, _WIRED.memory_system = log_searcher, slack_notifier, memory_system


def _need(name: str) -> Any:
    value = getattr(_WIRED, name)
    if value is None:
        raise ConfigurationError(f"call initialize_tools(log_searcher, slack_notifier, memory_system) first "
                                 f"(no {name} wired)")
    return value


async def search_logs(input_data: dict[str, Any], incident: Any) -> list[dict]:
    """Log lines matching input_data['query'] (for the incident's service when it names one)."""
    return await _need("log_searcher").search(str(input_data.get("query", "")),
                                              service=input_data.get("service") or getattr(incident, "service", None))


async def recall_similar_incidents(input_data: dict[str, Any], incident: Any) -> list[dict]:
    query = str(input_data.get("query") or getattr(incident, "title", ""))
    return [{"id": r.record.id, "title": r.record.title, "root_cause": r.record.root_cause, "score": r.score}
            for r in _need("memory_system").search(query, k=int(input_data.get("k", 3)))]


async def draft_notification(input_data: dict[str, Any], incident: Any) -> dict:
    text = str(input_data.get("text") or f"[{getattr(incident, 'severity', '?')}] {getattr(incident, 'title', '')}")
    return _need("slack_notifier").draft(text, channel=input_data.get("channel"))
