"""The real openai SDK, instrumented, against the loopback server: observe never changes a byte of the
request; enforce applies the policy; every call is priced, traced and audited through the one pipeline."""

from __future__ import annotations

import json

import openai
import pytest

from cascadeflow import harness
from cascadeflow.errors import BudgetExceeded, UnknownModelPriceError

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}
MSGS = [{"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "My mail is jo@example.com. Weather in Oslo?"}]}]


@pytest.fixture
def aoa(openai_server):
    return openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)


def _chat(client, **kw):
    return client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, tools=[WEATHER], temperature=0.2, **kw)


def _drain(stream):
    return [chunk for chunk in stream]


CALLS = {
    "chat": lambda c: _chat(c),
    "chat_stream": lambda c: _drain(_chat(c, stream=True)),
    "chat_raw": lambda c: c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS).parse(),
    "responses": lambda c: c.responses.create(model="gpt-4o-mini", input="Weather in Oslo?", instructions="brief"),
    "responses_stream": lambda c: _drain(c.responses.create(model="gpt-4o-mini", input="hi", stream=True)),
}


@pytest.mark.parametrize("kind", sorted(CALLS))
def test_observe_mode_sends_byte_identical_requests(kind, oa, openai_server, audit_path):
    openai_server.enqueue(text="Sunny in Oslo", usage={"input": 30, "output": 4})
    openai_server.enqueue(text="Sunny in Oslo", usage={"input": 30, "output": 4})
    CALLS[kind](oa)  # uninstrumented
    harness.init(mode="observe", audit=str(audit_path))
    # a client made after init(): with_raw_response caches the method it wraps on first use
    fresh = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    with harness.run(budget=0.000001, compliance="gdpr", max_tool_calls=0) as session:
        CALLS[kind](fresh)
    plain, observed = openai_server.requests
    assert observed.body == plain.body
    allow = [r for r in session.trace() if r.action == "allow"]
    assert len(allow) == 1 and allow[0].model_used == "openai/gpt-4o-mini"
    assert session.summary()["steps"] == 1 and session.summary()["cost_total"] > 0
    audit = [json.loads(line) for line in audit_path.read_text().splitlines()]
    assert len(audit) == 1 and audit[0]["mode"] == "observe" and audit[0]["run_id"] == session.run_id


def test_observe_with_budget_and_compliance_records_would_be_actions(oa, openai_server):
    openai_server.enqueue(text="ok", usage={"input": 30, "output": 4})
    harness.init(mode="observe", audit=False)
    with harness.run(budget=0.000001, compliance="gdpr") as session:
        _chat(oa)
    would = [(r["action"], r["applied"]) for r in session.trace() if r["action"] in ("stop", "redact")]
    assert would == [("redact", False), ("stop", False)]
    assert "jo@example.com" in openai_server.requests[0].body.decode()


async def test_async_chat_and_async_stream_are_instrumented(aoa, openai_server):
    openai_server.enqueue(text="one", usage={"input": 10, "output": 1})
    openai_server.enqueue(text="two words", usage={"input": 10, "output": 2})
    harness.init(mode="enforce", audit=False)
    async with harness.run(budget=1.0) as session:
        first = await aoa.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        stream = await aoa.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        chunks = [c async for c in stream]
    assert first.choices[0].message.content == "one"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "two words"
    assert all(c.choices for c in chunks)  # the usage chunk we asked for is not shown to the caller
    steps = [(r.input_tokens, r.output_tokens) for r in session.trace() if r.action == "allow"]
    assert steps == [(10, 1), (10, 2)]  # real usage from the stream, not an estimate


async def test_async_responses_in_observe_mode_are_untouched(aoa, openai_server):
    openai_server.enqueue(text="fine", usage={"input": 8, "output": 1})
    harness.init(mode="observe", audit=False)
    with harness.run() as session:
        out = await aoa.responses.create(model="gpt-4o-mini", input="hello", max_output_tokens=50)
    assert out.output_text == "fine"
    assert openai_server.requests[0].json == {"model": "gpt-4o-mini", "input": "hello", "max_output_tokens": 50}
    assert session.trace()[-1].input_tokens == 8


def test_enforce_stops_before_the_request_leaves(oa, openai_server):
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=0) as session:
        with pytest.raises(BudgetExceeded):
            _chat(oa)
        with pytest.raises(BudgetExceeded):
            _drain(_chat(oa, stream=True))
    assert openai_server.requests == []
    assert [r.action for r in session.trace()] == ["stop", "stop"]


def test_enforce_redacts_denies_tools_and_bounds_output(oa, openai_server):
    asked = [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    openai_server.enqueue(text="", tool_calls=asked, usage={"input": 30, "output": 8})
    openai_server.enqueue(text="Sunny", usage={"input": 40, "output": 2})
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=1.0, compliance="gdpr", max_tool_calls=1) as session:
        _chat(oa, tool_choice="auto", parallel_tool_calls=False)
        _chat(oa, tool_choice="auto", parallel_tool_calls=False)
    first, second = (r.json for r in openai_server.requests)
    assert first["messages"][1]["content"][0]["text"] == "My mail is [REDACTED_EMAIL]. Weather in Oslo?"
    assert first["messages"][0] == {"role": "developer", "content": "Be brief."}
    assert first["tools"] and first["max_completion_tokens"] == 4096
    assert "tools" not in second and "tool_choice" not in second and "parallel_tool_calls" not in second
    assert session.summary()["tool_calls"] == 1 and session.summary()["actions"]["deny_tool"] == 1


def test_enforce_stream_asks_for_usage_and_hides_the_usage_chunk(oa, openai_server):
    openai_server.enqueue(text="a b c", usage={"input": 12, "output": 3})
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=1.0) as session:
        chunks = _drain(oa.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True))
    assert openai_server.requests[0].json["stream_options"] == {"include_usage": True}
    assert all(c.choices for c in chunks)
    assert session.trace()[-1].output_tokens == 3


def test_stream_usage_the_caller_asked_for_is_kept(oa, openai_server):
    openai_server.enqueue(text="a b", usage={"input": 12, "output": 2})
    harness.init(mode="enforce", audit=False)
    with harness.run():
        chunks = _drain(oa.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True,
                                                   stream_options={"include_usage": True}))
    assert chunks[-1].usage.completion_tokens == 2 and not chunks[-1].choices


def test_observe_stream_without_usage_is_recorded_as_an_estimate(oa, openai_server):
    openai_server.enqueue(text="a b", usage={"input": 12, "output": 2})
    harness.init(mode="observe", audit=False)
    with harness.run() as session:
        _drain(oa.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True))
    assert "stream_options" not in openai_server.requests[0].json
    assert session.summary()["cost_total"] > 0  # priced from an upper-bound estimate, never zero


def test_closing_a_stream_early_still_settles_and_records(oa, openai_server):
    openai_server.enqueue(text="one two three four", usage={"input": 12, "output": 4})
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=1.0) as session:
        stream = oa.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        next(iter(stream))
        stream.close()
    assert session.summary()["steps"] == 1 and session.summary()["budget_remaining"] < 1.0


def test_compliance_switch_stays_with_the_same_vendor(oa, openai_server):
    openai_server.enqueue(text="ok", usage={"input": 5, "output": 1})
    harness.init(mode="enforce", audit=False)
    policy = {"name": "mini-only", "models": {"allowed": ["gpt-4o-mini"]}}
    with harness.run(compliance=policy, models=["claude-3-5-haiku-20241022", "openai/gpt-4o-mini"]) as session:
        oa.chat.completions.create(model="gpt-4o", messages=MSGS)
    assert openai_server.requests[0].json["model"] == "gpt-4o-mini"
    assert session.trace()[0].action == "switch_model" and session.trace()[0].model_used == "openai/gpt-4o-mini"


def test_unknown_model_observe_records_without_cost_enforce_refuses(oa, openai_server):
    openai_server.enqueue(text="ok", usage={"input": 5, "output": 1})
    harness.init(mode="observe", audit=False)
    with harness.run() as session:
        oa.chat.completions.create(model="acme-secret-model", messages=MSGS)
    assert session.summary()["cost_total"] == 0 and session.summary()["steps"] == 1
    harness.init(mode="enforce", audit=False)
    with harness.run(), pytest.raises(UnknownModelPriceError, match="acme-secret-model"):
        oa.chat.completions.create(model="acme-secret-model", messages=MSGS)
    assert len(openai_server.requests) == 1


def test_sdk_errors_reach_the_caller_and_are_audited(oa, openai_server, audit_path):
    openai_server.enqueue(status=429, error="slow down")
    harness.init(mode="observe", audit=str(audit_path))
    with harness.run() as session, pytest.raises(openai.RateLimitError):
        _chat(oa)
    record = json.loads(audit_path.read_text())
    assert record["action"] == "error" and "RateLimitError" in record["error"]
    assert session.summary()["steps"] == 0


def test_a_stream_cut_midway_raises_to_the_caller_and_is_audited(oa, openai_server, audit_path):
    openai_server.enqueue(text="one two three four five", cut_after=2, usage={"input": 5, "output": 5})
    harness.init(mode="enforce", audit=str(audit_path))
    with harness.run(budget=1.0) as session:
        stream = oa.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        with pytest.raises(openai.APIError):
            _drain(stream)
    record = json.loads(audit_path.read_text())
    assert record["action"] == "error" and record["tiers"][0]["status"] == "error"
    # no usage report arrived: the attempt is charged its reserved worst case, in the audit record and in the
    # run's budget alike (the provider may have billed the tokens it streamed)
    charged = record["tiers"][0]["cost_usd"]
    assert charged > 0 and "charged its reserved worst case" in record["tiers"][0]["error"]
    summary = session.summary()
    assert summary["cost_total"] == pytest.approx(charged)
    assert summary["budget_remaining"] == pytest.approx(1.0 - charged)


def test_a_refused_call_costs_the_run_nothing(oa, openai_server, audit_path):
    openai_server.enqueue(status=429, error="slow down")
    harness.init(mode="enforce", audit=str(audit_path))
    with harness.run(budget=1.0) as session, pytest.raises(openai.RateLimitError):
        _chat(oa)
    assert session.summary()["cost_total"] == 0.0 and session.summary()["budget_remaining"] == 1.0
    record = json.loads(audit_path.read_text())  # nor the audit log: a 429 generated nothing
    assert record["cost_usd"] == 0 and record["tiers"][0]["cost_usd"] == 0


def test_calls_from_helper_threads_land_in_the_run(oa, openai_server):
    for _ in range(4):
        openai_server.enqueue(text="ok", usage={"input": 5, "output": 1})
    harness.init(mode="observe", audit=False)
    with harness.run() as session:
        threads = [harness.spawn_thread(_chat, oa) for _ in range(2)]
        for t in threads:
            t.join()
        with harness.ContextThreadPoolExecutor(2) as pool:
            list(pool.map(lambda _: _chat(oa), range(2)))
    assert session.summary()["steps"] == 4 and session.summary()["calls"] == 4


def test_enforce_run_budget_holds_on_a_shared_sqlite_ledger(oa, openai_server, tmp_path):
    from cascadeflow.harness.instrument.openai import ChatCompletionsAdapter
    from cascadeflow.tokens import estimate_input_tokens

    for _ in range(3):
        openai_server.enqueue(text="ok", usage={"input": 10, "output": 200})
    harness.init(mode="enforce", audit=False, ledger_url=f"sqlite:///{tmp_path}/budgets.db")
    book = harness.default_runtime().price_book
    view = ChatCompletionsAdapter().to_request({"model": "gpt-4o-mini", "messages": MSGS, "tools": [WEATHER]})
    worst = float(book.worst_case("openai/gpt-4o-mini", estimate_input_tokens(view.messages, view.tools), 200))
    actual = (10 * 0.15 + 200 * 0.60) / 1e6
    with harness.run(budget=2 * actual + worst - 2e-6) as session:  # room for two calls, not a third
        _chat(oa, max_tokens=200)
        _chat(oa, max_tokens=200)
        with pytest.raises(BudgetExceeded):
            _chat(oa, max_tokens=200)
    state = harness.default_runtime().ledger.state(f"run:{session.run_id}")
    assert state.reserved == 0 and state.spent >= session.summary()["cost_total"] * 1e6
    assert len(openai_server.requests) == 2 and session.summary()["cost_total"] == pytest.approx(2 * actual)


async def test_async_responses_stream_settles_from_the_completed_event(aoa, openai_server):
    openai_server.enqueue(text="streamed reply", usage={"input": 9, "output": 2})
    harness.init(mode="enforce", audit=False)
    async with harness.run(budget=1.0) as session:
        stream = await aoa.responses.create(model="gpt-4o-mini", input="hi", stream=True)
        kinds = [event.type async for event in stream]
    assert kinds[-1] == "response.completed"
    allow = session.trace()[-1]
    assert (allow.action, allow.input_tokens, allow.output_tokens) == ("allow", 9, 2)
    assert openai_server.requests[0].json["max_output_tokens"] == 4096


def test_concurrent_sdk_calls_from_threads_never_overshoot_the_run_budget(oa, openai_server):
    from loopback import Reply

    openai_server.default = Reply(text="ok", usage={"input": 10, "output": 50}, delay=0.01)
    harness.init(mode="enforce", audit=False)
    budget = 0.0005
    with harness.run(budget=budget) as session, harness.ContextThreadPoolExecutor(8) as pool:
        def one(_):
            try:
                _chat(oa, max_tokens=100)
                return "sent"
            except BudgetExceeded:
                return "stopped"
        outcomes = list(pool.map(one, range(24)))
    assert outcomes.count("sent") == len(openai_server.requests) >= 1 and "stopped" in outcomes
    assert session.summary()["cost_total"] <= budget
    assert session.summary()["steps"] == outcomes.count("sent")


def test_stream_tool_calls_count_toward_max_tool_calls(oa, openai_server):
    openai_server.enqueue(text="", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}},
                                               {"name": "get_weather", "arguments": {"city": "Rome"}}])
    openai_server.enqueue(text="done")
    harness.init(mode="enforce", audit=False)
    with harness.run(max_tool_calls=2) as session:
        _drain(_chat(oa, stream=True))
        _drain(_chat(oa, stream=True))
    assert session.summary()["tool_calls"] == 2
    assert "tools" in openai_server.requests[0].json and "tools" not in openai_server.requests[1].json


def test_responses_enforce_redacts_input_and_instructions_and_drops_tools(oa, openai_server):
    openai_server.enqueue(text="fine")
    harness.init(mode="enforce", audit=False)
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    with harness.run(compliance="gdpr", max_tool_calls=0):
        oa.responses.create(model="gpt-4o-mini", instructions="Escalate to boss@corp.example",
                            input=[{"role": "user", "content": [{"type": "input_text", "text": "I am +44 20 7946 0958"}]}],
                            tools=[tool], tool_choice="auto")
    sent = openai_server.requests[0].json
    assert sent["instructions"] == "Escalate to [REDACTED_EMAIL]"
    assert sent["input"][0]["content"][0]["text"] == "I am [REDACTED_PHONE]"
    assert "tools" not in sent and "tool_choice" not in sent


def test_init_price_book_prices_sdk_calls(oa, openai_server, audit_path):
    from cascadeflow.pricing import PriceBook

    openai_server.enqueue(text="ok", usage={"input": 1000, "output": 1000})
    book = PriceBook({"openai/gpt-4o-mini": {"input": 1.0, "output": 3.0}})
    harness.init(mode="observe", audit=str(audit_path), price_book=book, record_content=True)
    with harness.run() as session:
        oa.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert session.summary()["cost_total"] == pytest.approx(0.004)
    assert json.loads(audit_path.read_text())["cost_usd"] == pytest.approx(0.004)
    assert harness.default_runtime().sinks[0].record_content is True


async def test_async_observe_sends_byte_identical_requests(aoa, openai_server):
    for _ in range(4):
        openai_server.enqueue(text="same", usage={"input": 5, "output": 1})

    async def both():
        await aoa.chat.completions.create(model="gpt-4o-mini", messages=MSGS, tools=[WEATHER])
        [c async for c in await aoa.responses.create(model="gpt-4o-mini", input="hi", stream=True)]

    await both()
    harness.init(mode="observe", audit=False)
    async with harness.run(budget=0.000001, compliance="gdpr") as session:
        await both()
    bodies = [r.body for r in openai_server.requests]
    assert bodies[:2] == bodies[2:] and session.summary()["steps"] == 2


def test_raw_response_stream_is_still_settled_when_parsed_and_drained(openai_server):
    openai_server.enqueue(text="raw stream", usage={"input": 6, "output": 2})
    harness.init(mode="enforce", audit=False)
    fresh = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    with harness.run(budget=1.0) as session:
        raw = fresh.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        assert raw.headers["x-request-id"] == "req_loopback"
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "raw stream"
    assert session.trace()[-1].output_tokens == 2 and session.summary()["steps"] == 1


def test_an_abandoned_stream_is_settled_when_dropped(oa, openai_server):
    import gc

    openai_server.enqueue(text="never read", usage={"input": 6, "output": 2})
    harness.init(mode="enforce", audit=False)
    with harness.run(budget=1.0) as session:
        stream = oa.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)
        del stream
        gc.collect()
        state = harness.default_runtime().ledger.state(f"run:{session.run_id}")
    assert state.reserved == 0 and session.summary()["steps"] == 1


def test_the_chat_adapter_reads_every_field_of_a_completion_into_its_own_response_field():
    # to_response builds Response and Usage positionally: each value must land under its own name
    from openai.types.chat import ChatCompletion

    from cascadeflow.harness.instrument.openai import ChatCompletionsAdapter
    from cascadeflow.messages import build_request

    completion = ChatCompletion.model_validate({
        "id": "chatcmpl-7", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "pong"}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
                  "prompt_tokens_details": {"cached_tokens": 100},
                  "completion_tokens_details": {"reasoning_tokens": 20}},
    })
    response = ChatCompletionsAdapter().to_response(completion, build_request("ping", model="gpt-4o-mini"))
    assert (response.content, response.model, response.provider) == ("pong", "gpt-4o-mini-2024-07-18", "openai")
    assert (response.finish_reason, response.request_id, response.tool_calls) == ("length", "chatcmpl-7", ())
    assert (response.logprobs, response.latency_ms) == (None, 0.0)
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (120, 30, 100)
    assert (usage.cache_write_tokens, usage.reasoning_tokens, usage.estimated) == (0, 20, False)
