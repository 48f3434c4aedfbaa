"""Virtual keys: stored hashed, created/rotated/revoked; per-key models, budgets and rate limits enforced on
the ledger before anything is sent, with each wire's error shape and Retry-After; metadata in the records."""

from __future__ import annotations

import json
import uuid

import httpx
import openai
import pytest
from services import POSTGRES_URL, REDIS_URL, require_postgres, require_redis

from cascadeflow.errors import ConfigurationError, KeyRejected
from cascadeflow.gateway.keys import KeyAdmin, KeyGate
from cascadeflow.gateway.keystores import open_key_store

SECRET = "test-hashing-secret"


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield open_key_store(f"sqlite:///{tmp_path}/keys.db")
        return
    if request.param == "redis":
        require_redis()
        prefix = f"gwtest{uuid.uuid4().hex[:8]}"
        found = open_key_store(f"{REDIS_URL}?prefix={prefix}")
        yield found
        found.client.delete(found.hash)
        return
    require_postgres()
    table = f"gw_keys_{uuid.uuid4().hex[:8]}"
    found = open_key_store(f"{POSTGRES_URL}?table={table}")
    yield found
    found._db.execute(f"DROP TABLE {table}")


def test_keys_are_stored_hashed_and_rotate_and_revoke(store):
    admin = KeyAdmin(store, SECRET)
    record, token = admin.create("ci-bot", models=("fast",), per_day_usd=2.0, rpm=10,
                                 metadata={"team": "infra", "feature": "triage"})
    stored = store.get(record.id)
    assert token.startswith("cfk_") and token not in json.dumps(stored.to_row())
    gate = KeyGate(store, SECRET, ledger=None, cache_seconds=0)
    assert gate.authenticate(token).metadata == {"team": "infra", "feature": "triage"}
    _, new_token = admin.rotate(record.id)
    with pytest.raises(KeyRejected):
        gate.authenticate(token)
    assert gate.authenticate(new_token).per_day_usd == 2.0
    admin.revoke(record.id)
    with pytest.raises(KeyRejected, match="revoked"):
        gate.authenticate(new_token)
    assert [k.id for k in admin.list()] == [record.id]


def test_a_key_store_needs_the_hashing_secret(tmp_path):
    with pytest.raises(ConfigurationError, match="CASCADEFLOW_GATEWAY_SECRET"):
        KeyAdmin(open_key_store(f"sqlite:///{tmp_path}/k.db"), "")


@pytest.fixture
def keyed(gateway_factory, tmp_path):
    url = f"sqlite:///{tmp_path}/keys.db"
    admin = KeyAdmin(open_key_store(url), SECRET)
    server = gateway_factory(keys=url, key_secret=SECRET, key_cache_seconds=0)
    return server, admin


def post(server, token, body, path="/v1/chat/completions"):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.post(server.url + path, json=body, headers=headers, timeout=10)


HI = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}


def test_missing_or_wrong_key_is_401_in_each_wire_shape(keyed, openai_server):
    server, _admin = keyed
    reply = post(server, None, HI)
    assert reply.status_code == 401 and reply.json()["error"]["type"] == "authentication_error"
    reply = httpx.post(server.url + "/v1/messages", headers={"x-api-key": "cfk_nope_nope"},
                       json={**HI, "max_tokens": 5})
    assert reply.status_code == 401 and reply.json()["error"]["type"] == "authentication_error"
    assert openai_server.requests == []


def test_a_key_may_only_use_its_models(keyed, openai_server):
    server, admin = keyed
    _, token = admin.create("narrow", models=("claude",))
    reply = post(server, token, HI)
    assert reply.status_code == 403 and "may not use model 'fast'" in reply.json()["error"]["message"]


def test_per_request_cap_refuses_before_sending(keyed, openai_server):
    server, admin = keyed
    _, token = admin.create("tiny", per_request_usd=0.0000001)
    reply = post(server, token, HI)
    assert reply.status_code == 402 and reply.json()["error"]["code"] == "budget_exceeded"
    assert openai_server.requests == []


def test_daily_budget_is_spent_then_refused_with_retry_after(keyed, openai_server):
    server, admin = keyed
    openai_server.default = None
    _, token = admin.create("daily", per_day_usd=0.01)
    openai_server.enqueue(text="ok", usage={"input": 10, "output": 3000})
    # max_tokens 4000 at $2/M reserves ~$0.008: the first fits; after it spent $0.006 the worst case does not
    big = {**HI, "max_tokens": 4000}
    assert post(server, token, big).status_code == 200
    refused = [post(server, token, big) for _ in range(2)]
    assert refused[-1].status_code == 402
    assert int(refused[-1].headers["retry-after"]) > 0
    assert len(openai_server.requests) == 1


def test_requests_per_minute_limit_is_429_with_retry_after(keyed, openai_server):
    server, admin = keyed
    openai_server.default = None
    _, token = admin.create("chatty", rpm=2)
    for _ in range(2):
        openai_server.enqueue(text="ok")
    assert [post(server, token, HI).status_code for _ in range(2)] == [200, 200]
    third = post(server, token, HI)
    assert third.status_code == 429 and 1 <= int(third.headers["retry-after"]) <= 60
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=token, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(**HI)


def test_key_metadata_flows_into_the_record(keyed, openai_server, tmp_path):
    server, admin = keyed
    record, token = admin.create("tagged", metadata={"team": "payments", "user": "ana", "feature": "refunds"})
    openai_server.enqueue(text="ok")
    assert post(server, token, HI).status_code == 200
    [line] = (tmp_path / "gateway-audit.jsonl").read_text().splitlines()
    audit = json.loads(line)
    assert audit["user_id"] == "ana"
    assert {audit["metadata"][k] for k in ("team", "feature", "key_id")} == {"payments", "refunds", record.id}


def test_tokens_per_minute_count_the_prompt_bound_and_max_tokens(tmp_path):
    from cascadeflow.budget import open_ledger
    from cascadeflow.errors import KeyRateLimited

    store = open_key_store(f"sqlite:///{tmp_path}/keys.db")
    record, _token = KeyAdmin(store, SECRET).create("tpm", tpm=1000)
    gate = KeyGate(store, SECRET, open_ledger("memory://"))
    now = 1_800_000_030.0  # 30 s into a minute
    gate.admit(record, 600, now=now)
    with pytest.raises(KeyRateLimited) as refused:
        gate.admit(record, 600, now=now + 1)
    assert refused.value.retry_after == pytest.approx(29.0)
    gate.admit(record, 600, now=now + 31)  # the next minute has its own count


def test_a_held_token_count_is_corrected_to_the_tokens_used(tmp_path):
    from cascadeflow.budget import open_ledger
    from cascadeflow.errors import KeyRateLimited

    store = open_key_store(f"sqlite:///{tmp_path}/keys.db")
    record, _token = KeyAdmin(store, SECRET).create("tpm", tpm=1000)
    gate = KeyGate(store, SECRET, open_ledger("memory://"))
    now = 1_800_000_030.0
    first = gate.admit(record, 900, now=now)
    with pytest.raises(KeyRateLimited):  # held at its bound while the call runs
        gate.admit(record, 200, now=now + 1)
    gate.settle_tokens(first, 50)
    second = gate.admit(record, 900, now=now + 2)  # 50 used + 900 held
    gate.settle_tokens(second, None)  # unknown use (a failed call): the bound stays counted
    with pytest.raises(KeyRateLimited):
        gate.admit(record, 100, now=now + 3)


def _tpm_counted(server, record):
    import time

    from cascadeflow.budget.windows import window_key

    ledger = server.gateway.keys.ledger  # the per-minute counts' own ledger
    now = time.time()
    key = window_key(f"vkey:{record.id}:tpm:{int(now // 60)}", "day", now)
    state = ledger.states([key])[key]
    return state.spent, state.reserved


def test_tokens_per_minute_settle_to_the_usage_of_an_answer_and_of_a_stream(keyed, openai_server):
    server, admin = keyed
    openai_server.default = None
    record, token = admin.create("tpm", tpm=100_000)
    openai_server.enqueue(text="ok", usage={"input": 7, "output": 5})
    assert post(server, token, {**HI, "max_tokens": 4000}).status_code == 200
    assert _tpm_counted(server, record) == (12, 0)  # not the 4000-token bound
    openai_server.enqueue(text="ok", usage={"input": 3, "output": 2})
    body = {**HI, "max_tokens": 4000, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=10,
                      headers={"authorization": f"Bearer {token}"}) as reply:
        assert reply.status_code == 200
        reply.read()
    assert _tpm_counted(server, record) == (17, 0)


def test_tokens_per_minute_keep_the_bound_of_a_failed_call(keyed, openai_server):
    server, admin = keyed
    openai_server.default = None
    record, token = admin.create("tpm", tpm=100_000)
    openai_server.enqueue(status=400, error="no")
    assert post(server, token, {**HI, "max_tokens": 4000}).status_code >= 400
    spent, reserved = _tpm_counted(server, record)
    assert spent > 4000 and reserved == 0


def test_ready_is_503_while_the_key_store_is_down(gateway_factory):
    server = gateway_factory(keys="redis://127.0.0.1:1/0", key_secret=SECRET)
    reply = httpx.get(server.url + "/ready")
    assert reply.status_code == 503 and reply.json()["checks"]["keys"] != "ok"


def test_per_minute_counts_live_beside_the_budgets_under_a_namespace_of_their_own():
    from cascadeflow.gateway.keys import rate_ledger_url

    assert rate_ledger_url("memory://") == "memory://"
    assert rate_ledger_url("sqlite:///ledger.db") == "sqlite:///ledger-rate.db"
    assert rate_ledger_url("sqlite:////var/lib/cf/ledger") == "sqlite:////var/lib/cf/ledger-rate"
    assert rate_ledger_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0?prefix=cascadeflow-rate"
    assert rate_ledger_url("redis://h:6379/0?prefix=cf") == "redis://h:6379/0?prefix=cf-rate"
    assert (rate_ledger_url("postgresql://u@h/db?schema=s&table_prefix=t_")
            == "postgresql://u@h/db?schema=s&table_prefix=t_rate_")
    with pytest.raises(ConfigurationError):
        rate_ledger_url("ftp://nowhere")


def test_per_minute_counts_are_kept_minutes_not_the_ledgers_days():
    """One count per request: kept for the ledger's retention (7 days) they would pile up in the store."""
    from cascadeflow.gateway.config import GatewayConfig
    from cascadeflow.gateway.keys import RATE_COUNT_RETENTION_SECONDS, TOKEN_HOLD_SECONDS
    from cascadeflow.gateway.service import Gateway

    require_redis()
    prefix = f"gwrate{uuid.uuid4().hex[:8]}"
    url = f"{REDIS_URL}?prefix={prefix}"
    gateway = Gateway(GatewayConfig(ledger=url, keys=url, key_secret=SECRET))
    budgets, counts, store = gateway.ledger, gateway.keys.ledger, gateway.key_store
    record, _token = KeyAdmin(store, SECRET).create("counted", rpm=100, tpm=100_000)
    gate = gateway.keys
    try:
        for _ in range(3):
            gate.settle_tokens(gate.admit(record, 500), 20)
        reservations = counts.client.keys(f"{{{prefix}-rate}}:r:*")
        assert len(reservations) == 6  # a request count and a token count per call
        ttls = [counts.client.ttl(name) for name in reservations]
        assert all(0 < ttl <= TOKEN_HOLD_SECONDS + RATE_COUNT_RETENTION_SECONDS for ttl in ttls)
        assert budgets.client.keys(f"{{{prefix}}}:r:*") == []  # nothing of the counts among the budgets
    finally:
        for client, pattern in ((counts.client, f"{{{prefix}-rate}}:*"), (budgets.client, f"{{{prefix}}}:*")):
            names = client.keys(pattern)
            if names:
                client.delete(*names)
        store.client.delete(store.hash)
