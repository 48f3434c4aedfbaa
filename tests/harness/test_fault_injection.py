"""Fault injection through the public API: hosts that report absurd usage, send huge answers or echo secrets and
prompts in errors; hostile config files and log lines; budgets at the edges; threads that leave their run. Each
test is one row of docs/reliability.md. Real SDKs and adapters against the loopback hosts; no timing thresholds.
"""

from __future__ import annotations

import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from typer.testing import CliRunner

from cascadeflow import BudgetExceeded, ConfigurationError, ModelConfig, OpenAIChat, harness
from cascadeflow.budget import open_ledger
from cascadeflow.cli import app
from cascadeflow.cli import basic as _basic  # noqa: F401  registers doctor
from cascadeflow.cli import trace as _trace  # noqa: F401  registers trace
from cascadeflow.errors import (
    BudgetBackendUnavailable,
    MalformedResponseError,
    PolicyViolation,
    ProviderError,
)
from cascadeflow.flow.client import CascadeFlow
from cascadeflow.messages import build_request
from cascadeflow.providers.http import CircuitBreakers, HttpOptions, RetryPolicy
from cascadeflow.runtime.pipeline import Runtime
from cascadeflow.testing import capture_audit

PROMPT = "Summarise the checkout incident for the on-call engineer"
ODD_KEY = "zz9-custom-gateway-credential-41f0c2"  # no known key prefix: only its exact value can be scrubbed


def _model(server, provider="openai", **kw):
    name = "gpt-4o-mini" if provider == "openai" else "claude-3-5-haiku-20241022"
    return ModelConfig(name=name, provider=provider, base_url=server.base_url, api_key=kw.pop("api_key", "sk-t1"),
                       **kw)


def _flow():
    runtime = Runtime(ledger=open_ledger("memory://"))
    return CascadeFlow(runtime=runtime), capture_audit(runtime)


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_negative_usage_is_estimated_and_the_paid_answer_returned(openai_server):
    openai_server.enqueue(text="Checkout is degraded.", usage={"input": -40, "output": -9})
    flow, sink = _flow()
    result = flow.complete(model=_model(openai_server), messages=PROMPT, max_tokens=50, budget_limit=0.5)
    assert result.content == "Checkout is degraded."
    assert result.cost > 0 and result.usage.input_tokens > 0  # estimated upper bounds, never a negative cost
    [tier] = sink.records[-1].tiers
    assert "negative token counts" in tier["usage_note"] and tier["status"] == "ok"


def test_output_above_max_tokens_is_recorded_as_reported_and_flagged(openai_server):
    openai_server.enqueue(text="long", usage={"input": 10, "output": 4_000})
    flow, sink = _flow()
    result = flow.complete(model=_model(openai_server), messages=PROMPT, max_tokens=50)
    assert result.usage.output_tokens == 4_000
    [tier] = sink.records[-1].tiers
    assert tier["output_tokens"] == 4_000 and "above max_tokens=50" in tier["usage_note"]


def test_anthropic_answer_without_usage_is_estimated_not_free(anthropic_server):
    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
            "content": [{"type": "text", "text": "Checkout is degraded."}], "stop_reason": "end_turn"}
    anthropic_server.enqueue(body=json.dumps(body))
    flow, _sink = _flow()
    result = flow.complete(model=_model(anthropic_server, "anthropic"), messages=PROMPT, max_tokens=50)
    assert result.usage.estimated and result.cost > 0


@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_over_the_size_cap_is_cut_and_malformed(openai_server, stream):
    huge = "x" * 300_000
    adapter = OpenAIChat(base_url=openai_server.base_url, api_key="sk-t1",
                         http=HttpOptions(max_response_bytes=64_000, retry=RetryPolicy(max_attempts=1),
                                          breakers=CircuitBreakers()))
    request = build_request(PROMPT, model="gpt-4o-mini", max_tokens=50)
    if stream:
        openai_server.enqueue(text=" ".join([huge[:1000]] * 300))
        with pytest.raises(MalformedResponseError, match="max_response_bytes=64000"):
            async for _event in adapter.stream(request):
                pass
    else:
        openai_server.enqueue(text=huge)
        with pytest.raises(MalformedResponseError, match="max_response_bytes=64000"):
            await adapter.complete(request)


def test_error_text_in_the_record_has_no_key_no_prompt_and_is_capped(openai_server):
    echo = f"bad request from key {ODD_KEY} with prompt {PROMPT!r} " + "padding " * 400_000
    openai_server.enqueue(status=400, error=echo)
    flow, sink = _flow()
    with pytest.raises(Exception) as info:
        flow.complete(model=_model(openai_server, api_key=ODD_KEY), messages=PROMPT, max_tokens=50)
    assert ODD_KEY not in str(info.value)
    record = sink.records[-1].to_dict()
    assert ODD_KEY not in json.dumps(record)
    for error in (record["error"], record["tiers"][0]["error"]):
        assert PROMPT not in error and len(error) < 2_200


def test_an_sdk_clients_key_echoed_by_the_host_never_reaches_the_audit_log(openai_server, audit_path):
    harness.init(mode="observe", audit=str(audit_path))
    client = openai.OpenAI(base_url=openai_server.base_url, api_key=ODD_KEY, max_retries=0)
    openai_server.enqueue(status=400, error=f"invalid key {ODD_KEY} for prompt {PROMPT}")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    [record] = _records(audit_path)
    assert record["error"] and ODD_KEY not in json.dumps(record) and PROMPT not in record["error"]


def test_the_key_of_a_client_built_before_init_is_scrubbed_too(openai_server, audit_path):
    key = f"zz9-early-client-{uuid.uuid4().hex}"  # never seen by this process before: only the client knows it
    client = openai.OpenAI(base_url=openai_server.base_url, api_key=key, max_retries=0)
    harness.init(mode="observe", audit=str(audit_path))
    openai_server.enqueue(status=400, error=f"invalid key {key}")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    [record] = _records(audit_path)
    assert record["error"] and key not in json.dumps(record)


LONG_PROMPT = ("Payment service p99 latency rose to 4.2 s after deploy 7731; the on-call runbook says to check the "
               "connection pool of the ledger database first, then the card network gateway timeouts.")


@pytest.mark.parametrize("echo", [
    LONG_PROMPT[20:80],  # a fragment from the middle
    LONG_PROMPT[:30] + " ... " + LONG_PROMPT[-40:],  # the start and the end, elided between
    f"unexpected token near '{LONG_PROMPT[95:130]}'",  # quoted inside the host's own words
    "; ".join(LONG_PROMPT[i:i + 25] for i in range(0, 150, 50)),  # several short pieces
])
def test_fragments_of_the_prompt_echoed_in_an_error_are_scrubbed(openai_server, audit_path, echo):
    harness.init(mode="observe", audit=str(audit_path))
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-t1-loopback-key", max_retries=0)
    openai_server.enqueue(status=400, error=f"rejected: {echo}")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": LONG_PROMPT}])
    [record] = _records(audit_path)
    stored = record["error"] + record["tiers"][0]["error"]
    assert "rejected" in stored and "[prompt]" in stored
    for start in range(len(LONG_PROMPT) - 24):  # no run of 24 characters of the prompt survives
        assert LONG_PROMPT[start:start + 24] not in stored


def test_scrubbing_echoes_keeps_ordinary_words_and_is_capped(openai_server):
    prompt = "the connection pool of the ledger database " * 20_000  # 860 KB of prompt
    openai_server.enqueue(status=400, error="the connection was refused by the upstream " + "x" * 50_000)
    flow, sink = _flow()
    with pytest.raises(ProviderError):
        flow.complete(model=_model(openai_server), messages=prompt, max_tokens=50)
    error = sink.records[-1].to_dict()["error"]
    assert "the connection was refused" in error and len(error) < 2_200  # a shared word or two is no echo


@pytest.mark.parametrize("url, secret", [
    ("https://gw.example/v1?api-key=hunter2secret", "hunter2secret"),
    ("https://gw.example/v1#token=hunter2secret", "hunter2secret"),
    ("https://gw.example/v1?password=hunter2secret&api-version=2024", "hunter2secret"),
    ("htps://admin:hunter2secret@gw.example/v1", "hunter2secret"),
])
def test_doctor_prints_no_credential_of_a_url(url, secret):
    result = CliRunner().invoke(app, ["doctor"], env={"OPENAI_BASE_URL": url, "COLUMNS": "250"})
    assert secret not in result.output


def test_an_unreachable_ledger_names_its_url_without_the_password():
    ledger = open_ledger("redis://:hunter2secret@127.0.0.1:1/0?password=hunter2secret")
    with pytest.raises(BudgetBackendUnavailable) as info:
        ledger.state("global:day:2026-12-07")
    assert "hunter2secret" not in str(info.value) and "127.0.0.1" in str(info.value)
    with pytest.raises(ConfigurationError) as bad:
        open_ledger("rediss//user:hunter2secret@host/0")
    assert "hunter2secret" not in str(bad.value)


def test_a_config_file_cannot_switch_off_an_explicit_enforce(tmp_path, caplog):
    (tmp_path / "cascadeflow.toml").write_text("instrument = false\naudit = false\nallow_cross_provider = true\n"
                                               "record_content = true\n")
    with caplog.at_level(logging.INFO, logger="cascadeflow.harness"):
        config = harness.init(mode="enforce")
    assert config.instrument is True and config.audit is None and config.allow_cross_provider is False
    assert config.record_content is True  # a file may still set what does not weaken governance
    assert config.sources["mode"] == "argument" and config.sources["record_content"].startswith("file")
    assert "instrument = False" in caplog.text and "mode from argument" in caplog.text
    assert harness.instrument_patched()  # the SDKs are governed


def test_the_file_applies_when_nothing_explicit_asks_for_enforce(tmp_path):
    (tmp_path / "cascadeflow.toml").write_text('mode = "enforce"\ninstrument = false\n')
    assert harness.init().instrument is False  # the file's own enforce: its own choices stand


def test_run_budget_zero_refuses_every_paid_call_cleanly(openai_server, audit_path):
    harness.init(mode="enforce", audit=str(audit_path))
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-t1", max_retries=0)
    with harness.run(budget=0), pytest.raises(BudgetExceeded):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}],
                                       max_tokens=20)
    assert openai_server.requests == []
    [record] = _records(audit_path)
    assert record["action"] == "stop"


@pytest.mark.parametrize("budget", [9.3e12, "1e13", 2**70])
def test_limits_past_what_a_store_can_hold_are_refused_before_anything_runs(budget):
    with pytest.raises(ConfigurationError, match="budget must be a number of US dollars from 0"):
        harness.run(budget=budget)


def _sdk_call(client):
    return lambda: client.chat.completions.create(model="gpt-4o-mini", max_tokens=20,
                                                  messages=[{"role": "user", "content": PROMPT}])


def test_a_plain_thread_pool_inside_an_enforced_run_is_refused_before_sending(openai_server, audit_path):
    harness.init(mode="enforce", audit=str(audit_path))
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-t1", max_retries=0)
    openai_server.enqueue(text="ok")
    with harness.run(budget=0.5, name="triage"), ThreadPoolExecutor(1) as pool, \
            pytest.raises(PolicyViolation, match="outside run triage"):
        pool.submit(_sdk_call(client)).result()
    assert openai_server.requests == []  # the budget held: nothing went out
    [record] = _records(audit_path)
    assert record["action"] == "stop" and "outside run triage" in record["error"]


def test_an_unrelated_thread_with_its_own_scope_is_served_while_a_run_is_open(openai_server):
    harness.init(mode="enforce", audit=False)
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-t1", max_retries=0)
    openai_server.enqueue(text="ok")

    def own_work():
        with harness.run() as mine:
            _sdk_call(client)()
        return mine.calls

    with harness.run(budget=0.5, name="triage") as triage, ThreadPoolExecutor(1) as pool:
        assert pool.submit(own_work).result() == 1
    assert triage.calls == 0


def test_a_plain_thread_pool_inside_an_observed_run_warns_that_its_calls_escape(openai_server):
    harness.init(mode="observe", audit=False)
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-t1", max_retries=0)
    openai_server.enqueue(text="ok")
    with harness.run(budget=0.5, name="triage"), ThreadPoolExecutor(1) as pool, \
            pytest.warns(RuntimeWarning, match="outside run triage"):
        pool.submit(_sdk_call(client)).result()


def test_a_context_carrying_pool_does_not_warn(openai_server, recwarn):
    harness.init(mode="enforce", audit=False)
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-t1", max_retries=0)
    openai_server.enqueue(text="ok")
    with harness.run(budget=0.5) as scope, harness.ContextThreadPoolExecutor(1) as pool:
        pool.submit(client.chat.completions.create, model="gpt-4o-mini",
                    messages=[{"role": "user", "content": PROMPT}], max_tokens=20).result()
    assert scope.calls == 1
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


HOSTILE_LINES = [
    "[" * 100_000 + "]" * 100_000,  # valid JSON nested past the parser's stack
    json.dumps({"timestamp": "2026-12-07T10:00:00Z", "cost_usd": "0.5", "action": "allow"}),
    json.dumps({"timestamp": "2026-12-07T10:00:00Z", "metadata": ["not", "a", "dict"], "cost_usd": 0.1}),
    json.dumps({"timestamp": "2026-12-07T10:00:00Z", "tiers": {"0": {}}, "cost_usd": 0.1}),
    json.dumps({"timestamp": "2026-12-07T10:00:00Z", "tiers": [{"cost_usd": [1]}], "cost_usd": 0.1}),
    json.dumps({"timestamp": "2026-12-07T10:00:00Z", "input_tokens": 10**400, "cost_usd": 0.1}),
    json.dumps({"timestamp": 17, "cost_usd": 0.1}),
    "NaN",
]


@pytest.mark.parametrize("command", [["tail"], ["filter"], ["summary"], ["summary", "--by", "metadata"]])
def test_trace_commands_skip_wrong_shaped_lines_with_a_warning(tmp_path, command):
    good = {"timestamp": "2026-12-07T10:00:00Z", "request_id": "r1", "action": "allow", "cost_usd": 0.25,
            "model_selected": "openai/gpt-4o-mini", "tiers": [], "metadata": {}}
    path = tmp_path / "audit.jsonl"
    path.write_text("\n".join([json.dumps(good), *HOSTILE_LINES, json.dumps(good)]) + "\n")
    result = CliRunner().invoke(app, ["trace", *command, str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert f"skipped {len(HOSTILE_LINES)} unreadable line(s)" in result.output


def test_run_budget_zero_still_serves_a_free_call():
    from cascadeflow.testing import ScriptedProvider

    harness.init(mode="enforce", audit=False)
    provider = ScriptedProvider((), default="served locally")
    runtime = Runtime(ledger=harness.default_runtime().ledger, resolve_provider=provider.resolver())
    free = ModelConfig(name="local-model", provider="openai", input_price_per_million=0, output_price_per_million=0)
    with harness.run(budget=0):
        result = CascadeFlow(runtime=runtime).complete(model=free, messages=PROMPT, max_tokens=20)
    assert result.content == "served locally" and result.cost == 0


@pytest.mark.parametrize("bad", [
    {"messages": "status of db-1 \ud800 please"},  # a lone surrogate: not encodable as UTF-8
    {"messages": [{"role": "user", "content": "hi", "name": "ops\udcff"}]},
    {"metadata": ["alert", "INC-1"]},
    {"temperature": "hot"},
    {"temperature": float("nan")},
    {"stop": 5},
    {"top_logprobs": "3"},
])
def test_bad_call_input_gets_a_typed_error_before_anything_is_sent(openai_server, bad):
    from cascadeflow.errors import InvalidRequestError

    flow, _sink = _flow()
    kwargs = {"model": _model(openai_server), "messages": PROMPT, "max_tokens": 20, **bad}
    with pytest.raises(InvalidRequestError):
        flow.complete(**kwargs)
    assert openai_server.requests == []
