"""Several worker processes, one scrape: prometheus-client's multiprocess mode, summed by the served view
and by `cascadeflow metrics serve`."""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cascadeflow.errors import ConfigurationError
from cascadeflow.metrics import serving_registry

HERE = Path(__file__).parent
CLI = [sys.executable, "-c", "from cascadeflow.cli import main; main()"]


def run_workers(directory, counts):
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    procs = [subprocess.Popen([sys.executable, str(HERE / "metrics_records.py"), str(n)], env=env) for n in counts]
    assert [p.wait(timeout=120) for p in procs] == [0] * len(procs)


def scrape_values(text, name):
    return {frozenset(s.labels.items()): s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == name}


def test_the_served_view_sums_every_worker_and_derives_ratios_from_the_sums(tmp_path):
    run_workers(tmp_path, [4, 8])
    from prometheus_client import generate_latest

    text = generate_latest(serving_registry(path=str(tmp_path))).decode()
    assert sum(scrape_values(text, "cascadeflow_query_total").values()) == 12
    # each worker accepted half of its drafts: 2 + 4 of 12
    assert scrape_values(text, "cascadeflow_drafter_acceptance_rate") == {
        frozenset({"model": "llama-3.1-8b-instant", "provider": "groq"}.items()): 0.5}
    assert sum(scrape_values(text, "cascadeflow_cost_dollars_total").values()) == pytest.approx(
        12 * 0.0001 + 6 * 0.004)


def test_metrics_serve_command_serves_the_workers_metrics(tmp_path):
    run_workers(tmp_path, [3, 3])
    server = subprocess.Popen(CLI + ["metrics", "serve", "--port", "0", "--addr", "127.0.0.1", "--dir", str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        port = int(re.search(r":(\d+)/metrics", line).group(1))
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert sum(scrape_values(body, "cascadeflow_query_total").values()) == 6
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serving_without_a_multiprocess_directory_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with pytest.raises(ConfigurationError, match="PROMETHEUS_MULTIPROC_DIR"):
        serving_registry()
    with pytest.raises(ConfigurationError, match="does not exist"):
        serving_registry(path=str(tmp_path / "missing"))


def test_metrics_serve_reports_a_missing_directory(tmp_path):
    done = subprocess.run(CLI + ["metrics", "serve", "--port", "0", "--dir", str(tmp_path / "missing")],
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_under_multiprocess_mode_a_worker_finding_the_port_taken_leaves_it_to_the_one_serving(tmp_path, monkeypatch,
                                                                                             caplog):
    from cascadeflow.metrics import MetricsCollector

    caplog.set_level(logging.INFO, logger="cascadeflow.metrics.prometheus")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    first = MetricsCollector(prometheus_port=0, prometheus_addr="127.0.0.1")
    try:
        second = MetricsCollector(prometheus_port=first.port, prometheus_addr="127.0.0.1")
        assert second.port is None and "another worker serves" in caplog.text
    finally:
        first.close()
