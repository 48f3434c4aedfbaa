"""CascadeAgent over real wire formats: the loopback OpenAI and Anthropic hosts (accept, escalate, stream)."""

import pytest
from loopback import RecordedSleep

from cascadeflow.cascade import events as ev
from cascadeflow.cascade.agent import CascadeAgent
from cascadeflow.errors import CascadeExhausted
from cascadeflow.models import ModelConfig
from cascadeflow.providers.anthropic import AnthropicMessages
from cascadeflow.providers.http import CircuitBreakers, HttpOptions
from cascadeflow.providers.openai_chat import OpenAIChat
from cascadeflow.runtime.pipeline import Runtime

KEY = "sk-test-loopback"
QUERY = "How does TCP congestion control react to packet loss?"
GOOD = "On packet loss TCP halves its congestion window, and on a timeout it restarts slow start."


@pytest.fixture
def sleep():
    return RecordedSleep()


def make_runtime(sleep):
    http = HttpOptions(sleep=sleep, breakers=CircuitBreakers())
    adapters = {"openai": OpenAIChat, "anthropic": AnthropicMessages}
    return Runtime(resolve_provider=lambda cfg: adapters[cfg.provider].from_config(cfg, http=http))


@pytest.fixture
def tiers(openai_server, anthropic_server):
    return [ModelConfig("gpt-4o-mini", provider="openai", base_url=openai_server.base_url, api_key=KEY),
            ModelConfig("claude-3-5-sonnet-20241022", provider="anthropic", base_url=anthropic_server.base_url,
                        api_key=KEY)]


async def test_draft_accepted_over_the_openai_wire(tiers, openai_server, anthropic_server, sleep):
    openai_server.enqueue(text=GOOD, usage={"input": 30, "output": 20})
    agent = CascadeAgent(models=tiers, runtime=make_runtime(sleep))
    result = await agent.run(QUERY, metadata={"alert_id": "INC-1"})
    assert result.content == GOOD and result.draft_accepted
    assert result.usage.input_tokens == 30 and result.usage.output_tokens == 20
    assert result.total_cost_decimal == agent.runtime.price_book.cost(tiers[0], result.response.usage)
    assert len(openai_server.requests) == 1 and anthropic_server.requests == []
    body = openai_server.requests[0].json
    assert body["model"] == "gpt-4o-mini" and body["messages"][-1]["content"] == QUERY


async def test_off_topic_draft_escalates_to_anthropic(tiers, openai_server, anthropic_server, sleep):
    openai_server.enqueue(text="The weather in Tokyo is sunny today.")
    anthropic_server.enqueue(text=GOOD, usage={"input": 25, "output": 18})
    agent = CascadeAgent(models=tiers, runtime=make_runtime(sleep))
    result = await agent.run(QUERY)
    assert [t.decision for t in result.tiers] == ["rejected", "final"]
    assert "off-topic" in result.tiers[0].reason
    assert result.model_used == tiers[1].id and result.content == GOOD
    assert not result.baseline_estimated and result.baseline_cost_decimal == result.tiers[1].cost_decimal > 0


async def test_server_errors_escalate_after_retries_and_exhaust(tiers, openai_server, anthropic_server, sleep):
    for _ in range(3):
        openai_server.enqueue(status=503, error="overloaded")
    anthropic_server.enqueue(status=400, error="bad request")
    agent = CascadeAgent(models=tiers, runtime=make_runtime(sleep))
    with pytest.raises(CascadeExhausted) as info:
        await agent.run(QUERY)
    assert [a.decision for a in info.value.attempts] == ["error", "error"]
    assert "ServerError" in info.value.attempts[0].error and "BadRequestError" in info.value.attempts[1].error
    assert len(openai_server.requests) == 3 and len(sleep.waits) == 2  # retried inside the tier, then escalated


async def test_stream_holds_back_a_rejected_draft_and_streams_the_final_tier(tiers, openai_server,
                                                                           anthropic_server, sleep):
    openai_server.enqueue(text="The weather in Tokyo is sunny today.")
    anthropic_server.enqueue(text=GOOD)
    agent = CascadeAgent(models=tiers, runtime=make_runtime(sleep))
    events = [e async for e in agent.stream(QUERY)]
    text = "".join(e.text for e in events if e.kind == ev.TEXT)
    assert text == GOOD and "Tokyo" not in text
    assert openai_server.requests[0].json.get("stream") is True
    assert anthropic_server.requests[0].json.get("stream") is True
    assert events[-1].kind == ev.COMPLETED and events[-1].data["result"].content == GOOD
