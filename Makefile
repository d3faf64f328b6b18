# Clickstream Lab. The two commands a fresh machine needs:
#   make demo   set everything up, start the local stack, run the pipeline and check the accounts
#   make test   set everything up and run the whole test suite (unit, stack, pipeline, notebooks)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
LABKIT := $(BIN)/labkit
export LABKIT_PROGRESS ?= lines

.PHONY: dev dashboards setup system demo up down status test test-unit test-stack test-pipeline test-faults test-notebooks \
	notebooks lint format bench lab clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 (or run: make PYTHON=python3)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

# System tools local mode needs (apt, only when missing and only as root): pkg-config for the
# influxd build, kcat for the "another producer" test.
system:
	@./scripts/system-deps.sh

setup: $(VENV)/.installed system

up: setup
	$(LABKIT) up

down:
	$(LABKIT) down

status:
	$(LABKIT) status

demo: setup
	$(LABKIT) demo

test-unit: setup
	$(BIN)/pytest -q tests/unit

test-stack: up
	$(BIN)/pytest -q tests/stack

test-pipeline: up
	$(BIN)/pytest -q tests/pipeline -m "not slow"

test-faults: up
	$(BIN)/pytest -q tests/pipeline -m slow

test-notebooks: up
	$(BIN)/python -m labkit.notebooks_ci

lint: setup
	$(BIN)/ruff check labkit tests
	$(BIN)/ruff format --check labkit tests

format: setup
	$(BIN)/ruff format labkit tests
	$(BIN)/ruff check --fix labkit tests

# The whole suite, as CI runs it: unit tests, the real stack, the pipeline, faults, notebooks.
test: setup up
	$(BIN)/pytest tests -m "not slow"
	$(BIN)/pytest tests -m slow
	$(MAKE) test-notebooks

bench: up
	$(LABKIT) bench

# Contributors: strip notebook outputs on commit, regenerate dashboards after editing labkit/dashboards.py
dev: setup
	$(BIN)/nbstripout --install --attributes .gitattributes

dashboards: setup
	$(BIN)/python -c "from labkit.dashboards import write_grafana; print(*write_grafana(), sep='\n')"

lab: up
	$(BIN)/jupyter lab notebooks/

clean:
	-$(LABKIT) down
	rm -rf $(VENV) build
