"""From our own audit log to a replay: real agents write a JSONL audit log with content, it is converted and
replayed through a cascade of the logged models."""

import pytest

from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.cascade.quality import QualityConfig
from cascadeflow.models import ModelConfig
from cascadeflow.replay.converters import convert
from cascadeflow.replay.engine import ReplaySetup, replay
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider
from cascadeflow.trace.jsonl import JsonlSink

CHEAP = ModelConfig(name="gpt-4o-mini", provider="openai")
STRONG = ModelConfig(name="gpt-4o", provider="openai")
QUESTIONS = {"What is 2 + 2?": ("4", "4"), "Capital of France?": ("Lyon", "Paris")}


async def test_logged_answers_replay_through_a_cascade(tmp_path):
    log_path = tmp_path / "audit.jsonl"
    sink = JsonlSink(log_path, record_content=True)
    answers = {CHEAP.name: [a for a, _ in QUESTIONS.values()], STRONG.name: [b for _, b in QUESTIONS.values()]}
    provider = ScriptedProvider(answers)
    runtime = Runtime(resolve_provider=provider.resolver(), sinks=[sink])
    for model in (CHEAP, STRONG):
        agent = CascadeAgent(models=[model], runtime=runtime)
        for (question, (cheap_answer, strong_answer)) in QUESTIONS.items():
            given = cheap_answer if model is CHEAP else strong_answer
            # the label a reviewer would attach afterwards; here known up front
            await agent.run(question, metadata={"correct": given == strong_answer})
    sink.close()

    dataset = convert("audit", log_path)
    assert set(dataset.models) == {"openai/gpt-4o-mini", "openai/gpt-4o"}
    assert len(dataset.queries) == 2
    lyon = next(q for q in dataset.queries if q.messages[-1].text == "Capital of France?")
    assert lyon.answers["openai/gpt-4o-mini"].content == "Lyon"
    assert lyon.answers["openai/gpt-4o-mini"].correct is False
    assert lyon.answers["openai/gpt-4o"].input_tokens > 0  # usage came from the logged tier

    setup = ReplaySetup.build(dataset, ["openai/gpt-4o-mini", "openai/gpt-4o"],
                              QualityConfig(signals=("structure",), threshold=0.5))
    outcomes = await replay(setup)
    assert [o.final_model for o in outcomes] == ["openai/gpt-4o-mini"] * 2  # structure alone accepts both
    assert sum(o.quality for o in outcomes) == pytest.approx(1.0)
