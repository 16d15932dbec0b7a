# Keel developer commands. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck layers check clean

$(BIN)/keel: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.test-deps: $(BIN)/keel pyproject.toml tests/node/package-lock.json
	$(BIN)/pip install --quiet -e '.[test]'
	npm ci --prefix tests/node --no-audit --no-fund
	@touch $@

## Install Keel and serve it on 127.0.0.1:8090 with SQLite data in ./keel_data
run: $(BIN)/keel
	$(BIN)/keel serve --http 127.0.0.1:8090 --dir ./keel_data

## Install test dependencies, run the linters and the whole test suite
test: $(VENV)/.test-deps
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: $(VENV)/.test-deps
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

## Benchmark Keel against PocketBase side by side (docs/performance.md). Quick check:
## make bench BENCH_DURATION=3; 1M-record lists too: make bench BENCH_LARGE=1
.PHONY: bench
BENCH_SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
bench: $(VENV)/.bench-deps
	@command -v wrk >/dev/null || $(BENCH_SUDO) apt-get install -y wrk \
		|| { $(BENCH_SUDO) apt-get update && $(BENCH_SUDO) apt-get install -y wrk; }
	$(BIN)/python bench/run.py

$(VENV)/.bench-deps: $(VENV)/.test-deps
	$(BIN)/pip install --quiet matplotlib py-spy
	@touch $@
