PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.yaml
# Loopback: only this machine reaches the gateway. HOST=0.0.0.0 serves every interface (then
# set GATEWAY_API_KEY, or anyone who reaches the port spends your upstream keys).
HOST ?= 127.0.0.1
PORT ?= 8080
WORKERS ?= 1

.DEFAULT_GOAL := help
SWAGGER_UI ?= 5.35.0

.PHONY: help run check test lint bench bench-compare lock swagger-ui clean

help: ## this list
	@echo "make TARGET [VARIABLE=value ...]"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "variables: CONFIG=$(CONFIG) HOST=$(HOST) PORT=$(PORT) WORKERS=$(WORKERS) VENV=$(VENV)"
	@echo "keys and variables in .env are read when it exists (cp .env.example .env)"

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

run: $(VENV)/.installed ## serve CONFIG on HOST:PORT with WORKERS processes (creates .venv first)
	$(BIN)/python -m app --config $(CONFIG) --host $(HOST) --port $(PORT) --workers $(WORKERS)

check: $(VENV)/.installed ## validate CONFIG without serving; list the models it serves
	$(BIN)/python -m app check --config $(CONFIG)

test: $(VENV)/.installed-dev ## ruff, mypy and the whole test suite (PYTEST_ARGS=... to narrow it)
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev ## fix what ruff can, format, type-check
	$(BIN)/ruff check --fix app tests bench
	$(BIN)/ruff format app tests bench
	$(BIN)/mypy

bench: $(VENV)/.installed-dev ## the benchmark (bench/README.md; BENCH_ARGS=...)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-compare: $(VENV)/.installed-dev ## the gateway with 1 and 2 workers beside the LiteLLM proxy
	$(BIN)/python -m bench --compare $(BENCH_ARGS)

lock: $(BIN)/python ## regenerate requirements*.lock from pyproject.toml
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile --quiet pyproject.toml -o requirements.lock --python-version 3.11
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev -o requirements-dev.lock --python-version 3.11

swagger-ui: ## refresh the /docs page's files from swagger-ui-dist@SWAGGER_UI (needs npm)
	rm -rf build/swagger-ui && mkdir -p build/swagger-ui
	cd build/swagger-ui && npm pack --silent swagger-ui-dist@$(SWAGGER_UI) && tar xzf swagger-ui-dist-*.tgz
	cd build/swagger-ui/package && cp swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt \
	  swagger-ui.css favicon-32x32.png LICENSE NOTICE ../../../app/static/docs/

clean: ## remove .venv and the tools' caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
