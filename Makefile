# driftward's two user-facing commands are `make demo` and `make test`; every
# other target is a step they share. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup testbed browser promtool lint typecheck unit cluster-up cluster-down clean

# Exact versions of every dependency (hack/constraints.txt), the same the image installs.
$(VENV)/.installed: pyproject.toml hack/constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "driftward needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c hack/constraints.txt -e ".[dev]"
	touch $@

setup: $(VENV)/.installed ## Python environment in .venv

testbed: ## build (or reuse) the pinned Kubernetes binaries
	bash hack/testbed/build.sh

browser: ## headless Chromium for the drift report's screenshot test
	bash hack/ensure-chromium.sh

promtool: ## promtool checks the chart's alert rules and dashboard queries
	bash hack/ensure-promtool.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	bash hack/lint-dockerfile.sh

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest tests/unit

## The whole suite: lint, types, unit, integration and e2e against a real cluster.
test: setup testbed browser promtool lint typecheck
	$(BIN)/pytest

## The main job: a local cluster with driftward running in it.
demo: setup testbed
	bash hack/demo.sh

cluster-up: testbed
	bash hack/testbed/cluster.sh up driftward-dev

cluster-down:
	bash hack/testbed/cluster.sh down driftward-dev

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

## Monitor benchmark (not a test): full evaluation vs Evidently and alibi-detect,
## per-window cost, footprint, statistical traps, detection delays. ~20 minutes.
.PHONY: bench-monitor
bench-monitor: setup
	$(BIN)/python bench/monitor/run.py
	$(BIN)/python bench/monitor/delay.py

## Serving benchmark (not a test): driftward (hand-off off, stub monitor, real monitor)
## vs MLServer 1.7 and KServe 0.21 on one model with wrk; 9 interleaved rounds
## (enough for a 96% interval on the median cost), ~20 minutes.
.PHONY: bench-serving
bench-serving: setup
	$(BIN)/python bench/serving/run.py --repeat 9 --duration 10 --warmup 3

## The record hand-off stage by stage, in µs of CPU per record (~1 minute).
.PHONY: bench-handoff
bench-handoff: setup
	$(BIN)/python bench/serving/budget.py
