# Clickstream Lab. The two commands a fresh machine needs:
#   make demo   set everything up, start the local stack, run the pipeline and check the accounts
#   make test   set everything up and run the whole test suite (unit, stack, pipeline, notebooks)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
LABKIT := $(BIN)/labkit
export LABKIT_PROGRESS ?= lines

.PHONY: dev dashboards setup system demo up down status check leftovers test test-unit test-stack test-pipeline test-faults test-notebooks test-cluster test-shared test-cluster-flink \
	test-docker docker-suite docker-beside-start docker-beside-wait docker-prep-background notebooks lint format bench lab clean

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

# Lint and the unit tests: no services, about a minute. `make test` runs it first, so a typo costs a minute.
check: setup
	$(BIN)/ruff check labkit tests
	$(BIN)/ruff format --check labkit tests
	$(BIN)/pytest -q tests/unit

# Nothing the tests made may outlive them: processes, network namespaces (and, after docker mode, the compose
# project's containers and volumes). Fails the run, listing what was left.
leftovers: setup
	$(BIN)/python -m labkit.leftovers $(LEFTOVERS_ARGS)

test-stack: up
	$(BIN)/pytest -q tests/stack
	$(MAKE) leftovers

test-pipeline: up
	$(BIN)/pytest -q tests/pipeline -m "not slow"
	$(MAKE) leftovers

test-faults: up
	$(BIN)/pytest -q tests/pipeline -m slow
	$(MAKE) leftovers

test-notebooks: up
	$(BIN)/python -m labkit.notebooks_ci

lint: setup
	$(BIN)/ruff check labkit tests
	$(BIN)/ruff format --check labkit tests

format: setup
	$(BIN)/ruff format labkit tests
	$(BIN)/ruff check --fix labkit tests

# Docker mode on a real Docker engine: compose/ brought up by labkit's docker backend, then the tests that
# make sense there, every notebook as an attendee first runs it (08: with its drills solved, typed as an attendee
# types them in docker mode; its attendee pass runs locally), and `down --wipe`. CI starts from empty volumes
# (a CI machine may keep them, and their savepoints, between runs). Where Docker Hub cannot be
# reached (CI), images built here stand in for the official ones: COMPOSE_OVERRIDE= uses the official images.
# No engine and no way to install one (not root): skipped with a message, except in CI.
COMPOSE_OVERRIDE ?= ci/docker-compose.ci.yml
DOCKER_ENV := LABKIT_MODE=docker LABKIT_COMPOSE_OVERRIDE=$(COMPOSE_OVERRIDE)
DOCKER_TESTS := tests/docker/test_compose_stack.py tests/stack/test_kafka.py tests/stack/test_influx.py tests/stack/test_flink_rest.py \
	tests/stack/test_flink.py tests/pipeline/test_demo.py tests/pipeline/test_bad_input.py \
	tests/pipeline/test_resume_fallback.py
DOCKER_PREP := build/docker-engine
# The engine, Compose and CI's images take ~7 minutes on a fresh machine, mostly compiling Compose: `make test`
# starts that in the background while the fault drills run (they mostly wait for recovery).
docker-prep-background:
	@mkdir -p build; rm -f $(DOCKER_PREP).rc; \
	( COMPOSE_OVERRIDE=$(COMPOSE_OVERRIDE) ./scripts/docker-engine.sh > $(DOCKER_PREP).log 2>&1; echo $$? > $(DOCKER_PREP).rc ) </dev/null >/dev/null 2>&1 & \
	echo "[docker] preparing the engine and CI's images in the background (log: $(DOCKER_PREP).log)"
test-docker: setup
	-@$(LABKIT) down --mode local >/dev/null 2>&1  # the same host ports
	@$(MAKE) --no-print-directory docker-suite

# The docker step itself, on the host ports and home the environment gives (test-docker: the defaults).
# Its attendee pass skips 08 (solved after it), and, beside the local steps, what they run as attendees.
DOCKER_SKIP ?= 08
docker-suite: setup
	@rc=0; \
	if [ -f $(DOCKER_PREP).log ]; then \
	  while [ ! -f $(DOCKER_PREP).rc ]; do sleep 5; done; \
	  cat $(DOCKER_PREP).log; rc=$$(cat $(DOCKER_PREP).rc); rm -f $(DOCKER_PREP).log $(DOCKER_PREP).rc; \
	else COMPOSE_OVERRIDE=$(COMPOSE_OVERRIDE) ./scripts/docker-engine.sh || rc=$$?; fi; \
	if [ $$rc = 2 ] && [ -z "$$CI" ] && [ -n "$$LABKIT_BESIDE" ]; then \
	  echo "[docker] no Docker engine here: docker mode not tested"; exit 2; fi; \
	if [ $$rc = 2 ] && [ -z "$$CI" ]; then \
	  echo "[docker] no Docker engine here: docker mode not tested; the attendee pass of the notebooks runs locally"; \
	  $(LABKIT) up --mode local && LABKIT_MODE=local $(BIN)/python -m labkit.notebooks_ci --pass attendee; exit $$?; fi; \
	[ $$rc = 0 ] || exit $$rc; \
	set -e; \
	if [ -n "$$CI" ]; then $(DOCKER_ENV) $(LABKIT) down --wipe; fi; \
	$(DOCKER_ENV) $(LABKIT) up --timeout 600; \
	$(DOCKER_ENV) $(BIN)/pytest -q $(DOCKER_TESTS); \
	$(DOCKER_ENV) $(BIN)/pytest -q tests/pipeline/test_faults.py -k "taskmanager_killed or kafka_restarted"; \
	$(DOCKER_ENV) $(BIN)/pytest -q tests/pipeline/test_pipeline_doctor.py -k "no_job_reads or keeps_restarting or wrong_token"; \
	$(DOCKER_ENV) $(BIN)/python -m labkit.notebooks_ci --pass attendee --skip $(DOCKER_SKIP); \
	$(DOCKER_ENV) $(BIN)/python -m labkit.notebooks_ci --pass solution 08; \
	$(DOCKER_ENV) $(BIN)/pytest -q tests/docker/test_zz_wipe.py

# `make test` runs the docker step beside the local steps (it mostly waits on windows, checkpoints and
# restarts, as they do): on host ports and a home of its own, so neither stack can see or stop the other.
# Its output is kept in a log, shown when it ends; `docker-beside-wait` fails the run if it failed.
DOCKER_BESIDE_ENV := LABKIT_KAFKA_PORT=19092 LABKIT_FLINK_REST_PORT=18081 LABKIT_INFLUX_PORT=18086 \
	LABKIT_GRAFANA_URL=http://127.0.0.1:13000 LABKIT_HOME=$(CURDIR)/build/labkit-home-docker LABKIT_BESIDE=1
DOCKER_BESIDE := build/docker-beside
# The exit code is written to a temporary file and renamed: the waiter never reads a half-written one. The
# waiter also stops when the background step is gone without one (killed), instead of waiting for ever.
# No engine on a contributor's machine (exit 2, not CI): the attendee pass runs locally once the local steps end.
docker-beside-start:
	@mkdir -p build; rm -rf $(DOCKER_BESIDE).rc build/labkit-home-docker; \
	( $(DOCKER_BESIDE_ENV) $(MAKE) --no-print-directory docker-suite DOCKER_SKIP=$(ATTENDEE_HERE) > $(DOCKER_BESIDE).log 2>&1; echo $$? > $(DOCKER_BESIDE).rc.tmp; mv $(DOCKER_BESIDE).rc.tmp $(DOCKER_BESIDE).rc ) </dev/null >/dev/null 2>&1 & \
	echo $$! > $(DOCKER_BESIDE).pid; \
	echo "[docker] docker mode's step runs beside the local steps, on ports 19092/18081/18086 (log: $(DOCKER_BESIDE).log)"
docker-beside-wait:
	@echo "[docker] waiting for docker mode's step"; \
	while [ ! -f $(DOCKER_BESIDE).rc ]; do \
	  if ! kill -0 $$(cat $(DOCKER_BESIDE).pid 2>/dev/null || echo 0) 2>/dev/null && [ ! -f $(DOCKER_BESIDE).rc ]; then \
	    echo 1 > $(DOCKER_BESIDE).rc; echo "[docker] docker mode's step ended without an exit code"; fi; \
	  sleep 5; done; \
	echo "----- docker mode's step (build/docker-beside.log) -----"; cat $(DOCKER_BESIDE).log; \
	rc=$$(cat $(DOCKER_BESIDE).rc); \
	echo "[docker] docker mode's step ended with exit code $${rc:-1}"; \
	if [ "$$rc" = 2 ] && [ -z "$$CI" ]; then \
	  $(LABKIT) up && $(BIN)/python -m labkit.notebooks_ci --pass attendee --skip $(ATTENDEE_HERE); exit $$?; fi; \
	exit $${rc:-1}

# The whole suite, as CI runs it: unit tests, the real stack, the pipeline, faults, the notebooks with their
# solutions (local mode); docker mode beside them, where the notebooks run as an attendee first runs them.
# The Docker engine, Compose and CI's images are prepared in the background from the start (Compose compiles for
# minutes; provisioning shares the cache's lock with `labkit up`). Docker mode's step starts after the cluster
# suites: beside them (the non-slow suite's end), on two cores, a docker `flink run` took over 120 s and a first
# consumer group waited out its test (two dry runs). 08 runs once per pass: solved in docker mode (its drills
# typed as docker's attendees type them), as an attendee first runs it here in local mode;
# tests/pipeline/test_faults.py drills local mode. 03's attendee pass runs here too, to balance the two sides: docker
# mode's step (its 06 is live, 300 s of event time in 300 s) ended ~420 s after the local steps (session 15).
ATTENDEE_HERE := 03,08
test: setup
	$(MAKE) docker-prep-background
	$(MAKE) check
	$(LABKIT) up
	$(MAKE) test-shared
	$(BIN)/pytest tests -m "serial and not slow" $(STACK_SUITES) --durations=5
	$(MAKE) leftovers
	$(MAKE) test-cluster
	$(MAKE) docker-beside-start
	$(BIN)/pytest tests -m slow --durations=10
	$(MAKE) leftovers
	$(BIN)/python -m labkit.notebooks_ci --pass solution --skip 08
	$(BIN)/python -m labkit.notebooks_ci --pass attendee $(ATTENDEE_HERE)
	$(MAKE) docker-beside-wait
	$(MAKE) leftovers LEFTOVERS_ARGS=--docker

# The stack suites that share the running stack without stopping it, $(SIDE_BY_SIDE) at a time (pytest-xdist,
# `--dist loadfile`: a module's tests stay together on one worker, in order and with their module fixtures; each test
# has a topic and a job name of its own), on one more TaskManager's slots for the jobs they run at once. Those that
# stop, kill or restart the stack (marked `serial`) run after, alone. (Not `--dist loadgroup`: with pytest 9 its
# groups are silently ignored, xdist 3.8 sets a node id attribute pytest no longer reads.) Removing the added
# TaskManager is part of the recipe's one shell line, so it goes whatever pytest's exit code.
STACK_SUITES := --ignore=tests/cluster --ignore=tests/unit --ignore=tests/hygiene
SIDE_BY_SIDE ?= 3
test-shared: up
	$(LABKIT) taskmanager add
	rc=0; $(BIN)/pytest tests -m "not slow and not serial" $(STACK_SUITES) -n $(SIDE_BY_SIDE) --dist loadfile \
	  --durations=20 || rc=$$?; $(LABKIT) taskmanager remove; exit $$rc

# External mode against clusters the tests build: one broker with SASL/SCRAM over TLS on loopback (and the
# workshop on it), and every service on hosts of its own (network namespaces, root only): three brokers with
# replication factor 3 and a broker killed mid-stream, a Flink session cluster (JobManager + two TaskManagers)
# with a TaskManager killed mid-stream, InfluxDB. `test-cluster-flink` runs only the Flink cluster's test.
test-cluster: up
	@# the suites bring what they need whatever else runs: here, the lab's own pipeline holds its task slots
	$(BIN)/python -c "from labkit import notebook; notebook.ensure_pipeline()"
	$(BIN)/pytest tests/cluster --durations=5
	$(BIN)/pytest tests/hygiene
	$(MAKE) leftovers

test-cluster-flink: up
	$(BIN)/pytest tests/cluster/test_flink_cluster.py

bench: up
	$(LABKIT) bench

# Contributors: strip notebook outputs on commit, regenerate dashboards after editing labkit/dashboards/
dev: setup
	$(BIN)/nbstripout --install --attributes .gitattributes

dashboards: setup
	$(BIN)/python -c "from labkit.dashboards import write_grafana; print(*write_grafana(), sep='\n')"

lab: up
	$(BIN)/jupyter lab notebooks/

clean:
	-$(LABKIT) down
	rm -rf $(VENV) build
