# churnguard: every target creates/refreshes the virtualenv from the repo's files first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Two stamps on the one virtualenv: requirements.txt (what the DAGs, library and scripts run on: make demo,
# stack, bench), then requirements-dev.txt (that plus the test and lint tools: make test, test-fast, lint).
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed
export CHURNGUARD_HOME ?= $(CURDIR)/.churnguard
export AIRFLOW_HOME ?= $(CHURNGUARD_HOME)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false
PYTEST_ARGS ?=

.PHONY: venv browser test test-fast demo screenshots stop lint bench clean compose-check stack stack-down test-stack

venv: $(STAMP)

$(RUNTIME_STAMP): requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	@touch $(STAMP)

# Debian's chromium for tests/plugins/test_ui_browser.py (Playwright drives /usr/bin/chromium; it never downloads one).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium (apt-get) for the browser tests"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null && \
	  test -x $(CHROMIUM); }

test: $(STAMP) browser
	$(BIN)/pytest -n 2 --dist loadgroup --cov=churnguard --cov-report=term --cov-fail-under=80 --durations=30 $(PYTEST_ARGS)

# The pure unit tests: no server, no other process, no slow statistics (the markers in pyproject.toml): 35 s on
# 2 idle cores. --dist loadfile keeps a file on one worker, so its module fixtures (a trained churn model, a
# failure model, a validation profile) are built once, not once per worker as with --dist loadgroup (20 % slower).
test-fast: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile -m "not integration and not slow" --durations=10 $(PYTEST_ARGS)

demo: $(RUNTIME_STAMP)
	bash scripts/demo.sh

stop:
	bash scripts/stop.sh

# after make demo, while its UI is up: every Model Health page and a run tab of the demo's real history
screenshots: $(STAMP) browser
	$(BIN)/python scripts/ui_browser.py docs/img

stack: $(RUNTIME_STAMP)
	$(BIN)/python scripts/stack.py up

test-stack: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider tests/deploy/test_stack.py

stack-down: $(RUNTIME_STAMP)
	$(BIN)/python scripts/stack.py down

compose-check: $(STAMP)
	$(BIN)/python scripts/compose_check.py

lint: $(STAMP)
	$(BIN)/ruff check include dags plugins tests benchmarks scripts
	$(BIN)/ruff format --check include dags plugins tests benchmarks scripts

bench: $(RUNTIME_STAMP)
	$(BIN)/python benchmarks/model_bench.py
	$(BIN)/python benchmarks/drift_bench.py
	$(BIN)/python benchmarks/failure_eval.py --quick

clean: stop
	rm -rf $(CHURNGUARD_HOME)
