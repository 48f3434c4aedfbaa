"""Four gateway processes on one Redis ledger and key store: a key's daily budget is spent by all of them at
once and never overshot; the ledger and the audit records agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from loopback import Reply
from services import REDIS_URL, require_redis

from cascadeflow.budget import open_ledger
from cascadeflow.budget.windows import window_key
from cascadeflow.gateway.keys import KeyAdmin, key_id_of
from cascadeflow.gateway.keystores import open_key_store

pytestmark = [pytest.mark.slow, pytest.mark.redis]
SECRET = "fleet-test-secret"


def _port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen) -> None:
    for _ in range(600):
        assert proc.poll() is None, "a gateway process exited"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not come up")


def test_four_processes_share_one_budget_with_no_overshoot(openai_server, tmp_path):
    require_redis()
    prefix = f"gwfleet{uuid.uuid4().hex[:8]}"
    store_url = f"{REDIS_URL}?prefix={prefix}"
    # usage within what was reserved (a prompt's bound, max_tokens): $1/M in, $2/M out, $0.000165 an answer
    openai_server.default = Reply(text="ok", usage={"input": 5, "output": 80})
    limit = 0.01
    admin = KeyAdmin(open_key_store(store_url), SECRET)
    _record, token = admin.create("fleet", per_day_usd=limit)
    procs, ports = [], []
    try:
        for i in range(4):
            ports.append(_port())
            config = tmp_path / f"g{i}.toml"
            config.write_text(f"""
[gateway]
port = {ports[-1]}
ledger = "{store_url}"
keys = "{store_url}"
key_secret = "{SECRET}"
audit = "{tmp_path / f'audit{i}.jsonl'}"
[models.fast]
model = {{ name = "gpt-4o-mini", provider = "openai", base_url = "{openai_server.base_url}", api_key = "sk-up", \
input_price_per_million = 1.0, output_price_per_million = 2.0 }}
""")
            procs.append(subprocess.Popen([sys.executable, "-c", "from cascadeflow.cli import main; main()", "serve",
                                           "--config", str(config)], env=os.environ.copy(),
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port, proc in zip(ports, procs, strict=True):
            _wait(f"http://127.0.0.1:{port}/health", proc)

        def spend(port: int) -> list[int]:
            statuses = []
            with httpx.Client(timeout=30) as client:
                while statuses[-3:] != [402, 402, 402]:
                    reply = client.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                                        headers={"authorization": f"Bearer {token}"},
                                        json={"model": "fast", "max_tokens": 100, "messages": [
                                            {"role": "user", "content": "hello"}]})
                    statuses.append(reply.status_code)
            return statuses

        with ThreadPoolExecutor(16) as pool:
            statuses = [s for found in pool.map(spend, ports * 4) for s in found]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    assert set(statuses) == {200, 402} and statuses.count(200) >= 10
    records = [json.loads(line) for i in range(4) for line in (tmp_path / f"audit{i}.jsonl").read_text().splitlines()]
    answered = [r for r in records if r["action"] == "allow"]
    assert len(answered) == statuses.count(200)
    spent = sum(r["cost_usd"] for r in answered)
    assert spent <= limit
    day = window_key(f"vkey:{key_id_of(token)}", "day", time.time())
    ledger = open_ledger(store_url)
    state = ledger.states([day])[day]
    assert state.reserved == 0 and round(spent * 1e6) <= state.spent <= limit * 1e6
    ledger.client.delete(*ledger.client.keys(f"{{{prefix}}}:*") or [f"{prefix}:none"])
    open_key_store(store_url).client.delete(f"{prefix}:keys")
