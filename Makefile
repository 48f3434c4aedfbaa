# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install on first run.
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && echo $$p && break; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# llama.cpp's native-CPU build crashes on some x86 machines (AVX-512/AMX); build a portable one.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF

.PHONY: install demo test bench lint clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || (echo "cascadeflow needs Python 3.11 or newer on PATH" >&2; exit 1)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) apps/incident_response/demo.py

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(PY) -m ruff check src tests apps benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
