"""The function-style tool API of the IncidentOS write-up, over the typed tools' pieces."""

from __future__ import annotations

import pytest

from cascadeflow import ConfigurationError
from cascadeflow_incidents.intake import Incident, load_scenario
from cascadeflow_incidents.memory import IncidentRecord, MemorySystem
from cascadeflow_incidents.tools import (
    draft_notification,
    initialize_tools,
    recall_similar_incidents,
    recorded_toolbox,
    search_logs,
)
from cascadeflow_incidents.tools.logs import LogSearcher
from cascadeflow_incidents.tools.slack import SlackNotifier

from .samples import SCENARIOS


async def test_wired_tools_search_logs_recall_and_draft_for_an_incident(tmp_path) -> None:
    scenario = load_scenario(SCENARIOS / "cache-refused")
    memory = MemorySystem(tmp_path)
    memory.add(IncidentRecord(title="redis refused connections", symptoms="connection refused", root_cause="maxclients",
                              category="dependency_failure", remediation="raise maxclients"))
    notifier = SlackNotifier()
    initialize_tools(LogSearcher(toolbox=recorded_toolbox(scenario.evidence)), notifier, memory)
    incident = Incident(id="INC-1", title="checkout errors", severity="critical")
    lines = await search_logs({"query": "refused"}, incident)
    assert [line["message"] for line in lines] == ["redis: dial tcp 10.1.2.3:6379: connect: connection refused"]
    assert (await recall_similar_incidents({"query": "redis connection refused"}, incident))[0]["title"] == \
        "redis refused connections"
    draft = await draft_notification({}, incident)
    assert draft["text"] == "[P0] checkout errors" and notifier.drafts == [draft] and "not sent" in draft["status"]
    assert (tmp_path / "incidents.sqlite").is_file() and incident.alert().severity == "P0"
    initialize_tools(None, None, None)
    with pytest.raises(ConfigurationError, match="initialize_tools"):
        await search_logs({"query": "x"}, incident)
