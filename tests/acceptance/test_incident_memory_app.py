"""The incident memory app: task types routed to Haiku or Sonnet by a `ModelRouter`, the routing decision
visible as an event with its reason, and the cost broken down by task; plus the app's own modules (agent
loop, memory, tools), which the flagship app in apps/cascadeflow_incidents is to provide.

Features covered:
- working: `ModelRouter().register(<the user's own Enum member>, model=<dated Anthropic id>)`; a
  `CascadeAgent(router=...)` sending each task type to its model over the Anthropic wire; the
  `model_selected` event carrying the routing reason; per-task cost lines from `get_analytics().describe()`
- working (the incident app): the app's entry points as its main module imports them;
  `initialize_tools(...)` wiring a log searcher, a notifier and the memory, and the `search_logs` tool run
  against an incident
"""

from __future__ import annotations

from enum import Enum

import pytest

from cascadeflow import CascadeAgent, ModelRouter
from cascadeflow.cascade import events as ev


class TaskType(Enum):
    MEMORY_RECALL = "memory_recall"
    SIMPLE_CLASSIFICATION = "simple_classification"
    DATA_RETRIEVAL = "data_retrieval"
    COMPLEX_REASONING = "complex_reasoning"


def build_router() -> ModelRouter:
    # ModelRouter maps task types to models at runtime
    router = ModelRouter()
    # Haiku for lightweight tasks — memory recall is semantic search,
    # not reasoning. No point paying for Sonnet.
    router.register(TaskType.MEMORY_RECALL, model="claude-3-5-haiku-20241022")
    router.register(TaskType.SIMPLE_CLASSIFICATION, model="claude-3-5-haiku-20241022")
    router.register(TaskType.DATA_RETRIEVAL, model="claude-3-5-haiku-20241022")
    # Sonnet only when reasoning depth actually requires it
    router.register(TaskType.COMPLEX_REASONING, model="claude-3-5-sonnet-20241022")
    return router


async def test_each_task_type_goes_to_its_registered_model(answers):
    _, anthropic_server = answers
    agent = CascadeAgent(router=build_router())
    for task in TaskType:
        await agent.run(f"incident INC-2024-007: {task.value}", metadata={"task_type": task})
    sent = [r.json["model"] for r in anthropic_server.requests]
    assert sent == ["claude-3-5-haiku-20241022"] * 3 + ["claude-3-5-sonnet-20241022"]


async def test_the_model_selection_is_an_event_with_its_reason(answers):
    agent = CascadeAgent(router=build_router())
    selected: list[ev.CascadeEvent] = []
    agent.on_event(lambda e: selected.append(e) if e.kind == ev.MODEL_SELECTED else None)
    await agent.run("recall incidents like: redis timeouts", metadata={"task_type": TaskType.MEMORY_RECALL})
    [event] = selected
    assert event.model == "anthropic/claude-3-5-haiku-20241022"
    assert event.data["route_label"] == "memory_recall" and "memory recall" in event.reason


async def test_cost_is_broken_down_by_task(answers):
    agent = CascadeAgent(router=build_router())
    plan = [TaskType.MEMORY_RECALL] * 6 + [TaskType.COMPLEX_REASONING] * 2
    results = [await agent.run(f"step {i} of the P1 investigation", metadata={"task_type": t})
               for i, t in enumerate(plan)]
    analytics = agent.get_analytics()
    reasoning = sum(r.total_cost for r, t in zip(results, plan, strict=True) if t is TaskType.COMPLEX_REASONING)
    assert f"complex_reasoning consumed ${reasoning:.4f} across 2 calls" in analytics.describe()
    assert analytics.by_task_type["memory_recall"].calls == 6
    assert analytics.total_cost == pytest.approx(sum(r.total_cost for r in results))


def test_the_app_entry_points_import_as_its_main_module_does():
    from cascadeflow_incidents.investigation import IncidentAgent  # agentic state loops
    from cascadeflow_incidents.memory import MemorySystem  # semantic incident memory
    from cascadeflow_incidents.tools import initialize_tools  # SRE tool definitions
    from cascadeflow_incidents.tools.logs import LogSearcher
    from cascadeflow_incidents.tools.slack import SlackNotifier

    assert all(callable(x) for x in (IncidentAgent, MemorySystem, initialize_tools, LogSearcher, SlackNotifier))


async def test_tools_are_wired_at_startup_and_search_logs_runs_on_an_incident(tmp_path):
    from cascadeflow_incidents.intake import Incident
    from cascadeflow_incidents.memory import MemorySystem
    from cascadeflow_incidents.tools import initialize_tools, search_logs
    from cascadeflow_incidents.tools.logs import LogSearcher
    from cascadeflow_incidents.tools.slack import SlackNotifier

    initialize_tools(LogSearcher(), SlackNotifier(), MemorySystem(tmp_path))
    incident = Incident(id="INC-2024-001", title="Memory leak in user service", severity="P1")
    found = await search_logs({"query": "OOMKilled"}, incident)
    assert found is not None
