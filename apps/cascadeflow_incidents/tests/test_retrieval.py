"""Retrieval hit rates on a labelled set: decay ranks the current incident above its superseded twin."""

from __future__ import annotations

from cascadeflow_incidents.evaluation.retrieval import load_set, memory_hit_rates, runbook_hit_rates

TWINS = {
    "incidents": [
        {"id": "OLD", "days_ago": 400, "category": "resource_exhaustion", "services": ["a"],
         "title": "api OOMKilled exit code 137 during import", "symptoms": "killed exit code 137 import",
         "root_cause": "legacy hosts"},
        {"id": "NEW", "days_ago": 10, "category": "resource_exhaustion", "services": ["a"],
         "title": "api pods OOMKilled in the import job", "symptoms": "exit code 137", "root_cause": "limit too low"},
    ],
    "queries": [{"text": "api OOMKilled exit code 137 during import", "relevant": ["NEW"]}],
    "runbook_queries": [{"alert": "X", "text": "node Ready Unknown kubelet stopped posting", "runbook": "node-not-ready"}],
}


def test_decay_turns_a_miss_on_the_superseded_twin_into_a_hit() -> None:
    assert memory_hit_rates(TWINS, half_life_days=None).hit_at_1 == 0.0
    decayed = memory_hit_rates(TWINS)
    assert (decayed.hit_at_1, decayed.hit_at_3) == (1.0, 1.0)


def test_the_shipped_set_is_well_formed_and_decay_does_not_hurt_it() -> None:
    data = load_set()
    ids = {i["id"] for i in data["incidents"]}
    assert all(set(q["relevant"]) <= ids for q in data["queries"])
    assert memory_hit_rates(data).hit_at_1 >= memory_hit_rates(data, half_life_days=None).hit_at_1
    assert runbook_hit_rates(TWINS).hit_at_1 == 1.0
