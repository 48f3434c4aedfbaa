# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install on first run,
# from requirements.lock (exact versions of everything installed), so an upstream release cannot break a clone.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && echo $$p && break; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# The versions of the tools that install and refresh the lock are pinned too.
PIP_VERSION := 26.3
UV_VERSION := 0.13.10
EXTRAS := all,dev,bench
# llama.cpp's native-CPU build crashes on some x86 machines (AVX-512/AMX); build a portable one.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF

# The live incident app shows this data directory (what `make demo` writes); SCENARIOS: recorded scenarios to offer.
DATA ?= .cascadeflow/incidents
SCENARIOS ?= $(if $(wildcard $(DATA)/scenarios),$(DATA)/scenarios,apps/cascadeflow_incidents/data/scenarios)

.PHONY: install demo serve test test-latest lock bench lint docs clean

$(STAMP): pyproject.toml $(LOCK)
	@test -n "$(PYTHON)" || (echo "cascadeflow needs Python 3.11 or newer on PATH" >&2; exit 1)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip==$(PIP_VERSION)"
	$(PY) -m pip install --quiet --constraint $(LOCK) -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m cascadeflow_incidents.demo

# IncidentOS in the browser on 127.0.0.1 (prints the URL and, unless CASCADEFLOW_INCIDENTS_API_TOKEN is set, this
# run's API token for the write actions).
serve: $(STAMP)
	$(PY) -m cascadeflow_incidents.web --data $(DATA) --scenarios $(SCENARIOS)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

# The suite against the newest releases of every dependency, in a venv of its own: drift found on purpose.
test-latest:
	@test -n "$(PYTHON)" || (echo "cascadeflow needs Python 3.11 or newer on PATH" >&2; exit 1)
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade pip
	.venv-latest/bin/python -m pip install --quiet --upgrade -e ".[$(EXTRAS)]"
	.venv-latest/bin/python -m pip freeze --exclude-editable > .venv-latest/versions.txt
	.venv-latest/bin/python -m pytest -q -p no:cacheprovider

# Refresh the lock: resolve pyproject.toml's ranges again, for every platform and Python 3.11+.
lock:
	@test -n "$(PYTHON)" || (echo "cascadeflow needs Python 3.11 or newer on PATH" >&2; exit 1)
	test -x .venv-tools/bin/uv || ($(PYTHON) -m venv .venv-tools && .venv-tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)")
	.venv-tools/bin/uv pip compile pyproject.toml --extra all --extra dev --extra bench --universal --python-version 3.11 \
		--no-header --output-file $(LOCK)

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# The user guide and the API reference (from the docstrings) into site/; --strict: any warning fails.
docs: $(STAMP)
	$(PY) -m mkdocs build --strict --quiet

lint: $(STAMP)
	$(PY) -m ruff check src tests apps benchmarks
	$(PY) -m mypy src

clean:
	rm -rf $(VENV) .venv-latest .venv-tools .pytest_cache .ruff_cache site
