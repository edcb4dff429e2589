# Two commands do everything on a fresh machine:
#   make demo   – create the environment, generate sample data, run the nightly job end to end
#   make test   – run the linters and the test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

DEMO_START ?= 2026-11-01
DEMO_DAYS ?= 14
DEMO_ACCOUNTS ?= 3000
DEMO_END ?= $(shell $(PYTHON) -c "import datetime as d; print(d.date.fromisoformat('$(DEMO_START)') + d.timedelta(days=$(DEMO_DAYS) - 1))")

.PHONY: install test-deps demo test lint ui clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# System packages the tests use: Debian's chromium (report and UI screenshots) and postgresql
# (the deployment test). Both scripts are idempotent and quiet when the packages are present.
test-deps:
	bash tests/setup_browser.sh >/dev/null
	bash tests/setup_postgres.sh install

demo: install
	rm -rf data/inbox data/reports data/warehouse.duckdb data/warehouse.duckdb.wal
	$(PY) -m pipelines generate --out data/inbox --accounts $(DEMO_ACCOUNTS) --days $(DEMO_DAYS) --start $(DEMO_START) --seed 7
	$(PY) -m pipelines nightly --date $(DEMO_END)
	@echo "Reports: data/reports/$(DEMO_END)/compliance_report.html"

test: install test-deps
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

ui: install
	$(VENV)/bin/dagster dev -w workspace.yaml

clean:
	rm -rf $(VENV) .dagster_home data/inbox data/reports data/warehouse.duckdb*
