"""CascadeAgent.stream: drafts held back until validated, or shown with an explicit "may be replaced"."""

import contextlib

import pytest

from cascadeflow.cascade import events as ev
from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.errors import CascadeExhausted, ServerError
from cascadeflow.models import ModelConfig
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import ScriptedProvider

CHEAP = ModelConfig("llama-3.1-8b-instant", provider="groq")
TOP = ModelConfig("gpt-4o", provider="openai")
QUERY = "How does TCP congestion control react to packet loss?"
GOOD = "TCP halves its congestion window after three duplicate ACKs and restarts slow start on a timeout."
FINAL = "On packet loss TCP shrinks the congestion window: halving it on duplicate ACKs, resetting on timeouts."
OFF_TOPIC = "The weather in Tokyo is sunny today."


def make_agent(script, delay=0.0):
    provider = ScriptedProvider(script, delay=delay)
    return CascadeAgent(models=[CHEAP, TOP], runtime=Runtime(resolve_provider=provider.resolver()))


async def collect(agent, **kw):
    return [e async for e in agent.stream(QUERY, **kw)]


def text_of(events, kind=ev.TEXT):
    return "".join(e.text for e in events if e.kind == kind)


async def test_an_accepted_draft_is_released_only_after_its_verdict():
    events = await collect(make_agent({CHEAP.name: [GOOD]}))
    kinds = [e.kind for e in events]
    assert kinds[0] == ev.MODEL_SELECTED
    assert kinds.index(ev.DRAFT_ACCEPTED) < kinds.index(ev.TEXT)
    assert text_of(events) == GOOD
    assert kinds[-1] == ev.COMPLETED
    result = events[-1].data["result"]
    assert result.content == GOOD and result.draft_accepted


async def test_a_rejected_draft_never_reaches_the_consumer_when_held_back():
    events = await collect(make_agent({CHEAP.name: [OFF_TOPIC], TOP.name: [FINAL]}))
    kinds = [e.kind for e in events]
    assert OFF_TOPIC not in text_of(events)
    assert text_of(events) == FINAL
    assert kinds.index(ev.DRAFT_REJECTED) < kinds.index(ev.ESCALATED) < kinds.index(ev.TEXT)
    assert ev.DRAFT_TEXT not in kinds and ev.REPLACED not in kinds
    # the last tier streams live: one text event per streamed word, not one blob
    assert sum(1 for k in kinds if k == ev.TEXT) == len(FINAL.split(" "))


async def test_show_draft_streams_the_draft_with_a_may_be_replaced_marker_then_withdraws_it():
    events = await collect(make_agent({CHEAP.name: [OFF_TOPIC], TOP.name: [FINAL]}), show_draft=True)
    kinds = [e.kind for e in events]
    pending = kinds.index(ev.DRAFT_PENDING)
    assert events[pending].reason == "draft may be replaced"
    assert pending < kinds.index(ev.DRAFT_TEXT) < kinds.index(ev.DRAFT_REJECTED)
    assert text_of(events, ev.DRAFT_TEXT) == OFF_TOPIC
    assert kinds.index(ev.DRAFT_REJECTED) < kinds.index(ev.REPLACED) < kinds.index(ev.TEXT)
    assert text_of(events) == FINAL


async def test_show_draft_accepted_draft_is_not_repeated():
    events = await collect(make_agent({CHEAP.name: [GOOD]}), show_draft=True)
    assert text_of(events, ev.DRAFT_TEXT) == GOOD
    assert text_of(events) == ""  # already shown; the accept event makes it final
    assert ev.DRAFT_ACCEPTED in [e.kind for e in events] and ev.REPLACED not in [e.kind for e in events]


async def test_stream_raises_cascade_exhausted_after_the_error_events():
    agent = make_agent({CHEAP.name: [ServerError("down")], TOP.name: [ServerError("down")]})
    seen = []
    with pytest.raises(CascadeExhausted):
        async for event in agent.stream(QUERY):
            seen.append(event.kind)
    assert seen.count(ev.ERROR) == 2 and ev.COMPLETED not in seen


async def test_breaking_out_of_a_stream_cancels_the_run():
    agent = make_agent({CHEAP.name: [OFF_TOPIC], TOP.name: [FINAL]}, delay=0.05)
    async with contextlib.aclosing(agent.stream(QUERY)) as stream:
        async for event in stream:
            if event.kind == ev.DRAFT_REJECTED:
                break
    analytics = agent.get_analytics()
    assert analytics.total_queries == 0 and analytics.errors == 1
    assert analytics.total_cost > 0  # the rejected draft was paid for and is still counted


class SwitchTo:
    """A policy that switches one model to another (as a compliance preset would)."""

    def __init__(self, source, target):
        self.source, self.target = source, target

    def before_attempt(self, model, request, call):
        return (self.target, request) if model.id == self.source.id else (model, request)

    def after_attempt(self, model, response, call):
        pass

    def after_failed_attempt(self, record, call):
        pass


async def test_a_policy_switch_is_honoured_when_streaming():
    allowed = ModelConfig("gpt-4o-mini", provider="openai")
    providers = {CHEAP.name: ScriptedProvider(default="must not be called"), allowed.name: ScriptedProvider(default=GOOD)}
    runtime = Runtime(resolve_provider=lambda cfg: providers[cfg.name], policy=SwitchTo(CHEAP, allowed))
    agent = CascadeAgent(models=[CHEAP, TOP], runtime=runtime)
    events = [e async for e in agent.stream(QUERY)]
    result = events[-1].data["result"]
    assert providers[CHEAP.name].requests == [] and len(providers[allowed.name].requests) == 1
    assert result.model_used == allowed.id and result.tiers[0].model == allowed.id
    assert result.total_cost_decimal == runtime.price_book.cost(allowed, result.response.usage)
    assert text_of(events) == GOOD
