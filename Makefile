PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.yaml
HOST ?= 0.0.0.0
PORT ?= 8080
WORKERS ?= 1

.PHONY: run test lint bench bench-compare lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.lock
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	touch $@

run: $(VENV)/.installed
	$(BIN)/python -m app --config $(CONFIG) --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: $(VENV)/.installed-dev
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix app tests bench
	$(BIN)/ruff format app tests bench
	$(BIN)/mypy

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench $(BENCH_ARGS)

# The gateway with 1 and 2 workers next to the LiteLLM proxy (installed into its own venv).
bench-compare: $(VENV)/.installed-dev
	$(BIN)/python -m bench --compare $(BENCH_ARGS)

# Regenerate the pinned dependency sets from pyproject.toml.
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile --quiet pyproject.toml -o requirements.lock --python-version 3.11
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev -o requirements-dev.lock --python-version 3.11

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
