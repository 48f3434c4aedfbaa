"""The gateway configuration: files (TOML, YAML), model kinds, typed errors, and the loopback-only rule for a
gateway without a key store."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref

import httpx
import pytest

from cascadeflow.errors import ConfigurationError, UnsafeBind
from cascadeflow.gateway.app import create_app
from cascadeflow.gateway.catalog import Catalog
from cascadeflow.gateway.config import gateway_config, load_config
from cascadeflow.gateway.server import YOUNG_GC_THRESHOLD, check_bind, tune_gc_for_serving

TOML = """
[gateway]
port = 9000
audit = "off"

[models.fast]
model = "openai/gpt-4o-mini"
[models.smart]
alias = "fast"
[models.auto]
cascade = ["openai/gpt-4o-mini", "openai/gpt-4o"]
quality = { threshold = 0.6 }
[models.triage]
router = { rules = [{ name = "payments", when = { team = "payments" }, target = "openai/gpt-4o" }], default = "openai/gpt-4o-mini" }
"""


def test_toml_and_yaml_files_give_the_same_catalog(tmp_path):
    toml = tmp_path / "gateway.toml"
    toml.write_text(TOML)
    yaml_file = tmp_path / "gateway.yaml"
    yaml_file.write_text("gateway: {port: 9000, audit: 'off'}\nmodels:\n  fast: {model: openai/gpt-4o-mini}\n"
                         "  smart: {alias: fast}\n")
    from_toml, from_yaml = load_config(toml), load_config(yaml_file)
    assert from_toml.port == from_yaml.port == 9000
    catalog = Catalog(from_toml)
    assert catalog.resolve("smart").tiers[0].id == "openai/gpt-4o-mini" and catalog.resolve("smart").kind == "alias"
    assert [m.id for m in catalog.resolve("auto").tiers] == ["openai/gpt-4o-mini", "openai/gpt-4o"]
    assert catalog.resolve("auto").quality.threshold == 0.6
    assert catalog.resolve("triage").router is not None


@pytest.mark.parametrize(("models", "message"), [
    ({"a": {"alias": "b"}, "b": {"alias": "a"}}, "alias loop"),
    ({"a": {"alias": "missing"}}, "not configured"),
    ({"a": {"model": "openai/gpt-4o", "alias": "b"}}, "exactly one of"),
    ({"a": {"cascade": ["openai/gpt-4o"]}}, "at least two tiers"),
    ({"a": {"router": {"default": "openai/gpt-4o"}}}, "exactly one of severity"),
])
def test_configuration_mistakes_are_typed_errors(models, message):
    with pytest.raises(ConfigurationError, match=message):
        gateway_config({"models": models})


def test_unknown_setting_is_named():
    with pytest.raises(ConfigurationError, match="prot"):
        gateway_config({"gateway": {"prot": 1}})


def test_binding_beyond_loopback_without_keys_is_refused():
    with pytest.raises(UnsafeBind, match="0.0.0.0"):
        check_bind(gateway_config({"host": "0.0.0.0"}))
    check_bind(gateway_config({"host": "0.0.0.0", "keys": "sqlite:///k.db"}))
    check_bind(gateway_config({"host": "127.0.0.1"}))


class Node:
    def __init__(self) -> None:
        self.next: Node | None = None


def test_serving_freezes_what_start_up_built_and_still_collects_later_cycles():
    before = gc.get_threshold()
    started = Node()
    try:
        tune_gc_for_serving()
        assert gc.is_tracked(started) and gc.get_freeze_count() > 0
        assert not any(o is started for o in gc.get_objects())  # frozen: no collection walks it any more
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *before[1:])
        cycle = Node()
        cycle.next = cycle
        gone = weakref.ref(cycle)
        del cycle
        gc.collect()
        assert gone() is None  # garbage made while serving is still collected
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_cli_serve_refuses_a_public_address_without_keys():
    out = subprocess.run([sys.executable, "-c", "from cascadeflow.cli import main; main()", "serve", "--host",
                          "0.0.0.0"], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "without a key store" in out.stderr


async def test_without_keys_a_remote_client_is_refused_by_the_app():
    app = create_app({"audit": "off", "models": {"fast": {"model": "openai/gpt-4o-mini"}}})
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        reply = await client.post("/v1/chat/completions", json={"model": "fast", "messages": [
            {"role": "user", "content": "hi"}]})
    assert reply.status_code == 403 and "loopback clients only" in reply.json()["error"]["message"]


def test_importing_the_gateway_package_imports_no_extra():
    code = ("import sys, cascadeflow.gateway, cascadeflow.cli; "
            "print(sorted(m for m in ('starlette', 'uvicorn', 'orjson', 'uvloop') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
