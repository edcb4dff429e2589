# Two commands do everything on a fresh machine:
#   make demo   – create the environment, generate sample data, run the nightly job end to end
#   make test   – run the linters and the test suite; installs chromium and postgresql with
#                 apt-get (as root) first: `make test-local` (= make test SYSTEM_DEPS=0) does not
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

# Extra `dg dev` options for `make ui`, e.g. UI_ARGS="-p 3001"
UI_ARGS ?=

DEMO_START ?= 2026-11-01
DEMO_DAYS ?= 14
DEMO_ACCOUNTS ?= 3000
DEMO_END ?= $(shell $(PYTHON) -c "import datetime as d; print(d.date.fromisoformat('$(DEMO_START)') + d.timedelta(days=$(DEMO_DAYS) - 1))")

# 1: `make test` installs the system packages some tests need (test-deps) and those tests must run
# (a missing package fails them). 0: nothing is installed, and the tests whose package is missing
# are skipped with the reason (tests/system_deps.py; in CI, CI=true, they fail anyway).
SYSTEM_DEPS ?= 1

.PHONY: install test-deps demo test test-local lint ui clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# System packages the tests use: Debian's chromium (report and UI screenshots) and postgresql
# (the deployment test), installed with apt-get as root (or password-less sudo for chromium).
# Both scripts are idempotent and quiet when the packages are present.
test-deps:
	bash tests/setup_browser.sh >/dev/null
	bash tests/setup_postgres.sh install

demo: install
	rm -rf data/inbox data/reports data/warehouse.duckdb data/warehouse.duckdb.wal
	$(PY) -m pipelines generate --out data/inbox --accounts $(DEMO_ACCOUNTS) --days $(DEMO_DAYS) --start $(DEMO_START) --seed 7
	$(PY) -m pipelines nightly --date $(DEMO_END)
	@echo "Reports: data/reports/$(DEMO_END)/compliance_report.html"

test: install $(if $(filter 0,$(SYSTEM_DEPS)),,test-deps)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	TEST_SYSTEM_DEPS=$(SYSTEM_DEPS) $(PY) -m pytest -q

# The suite without installing system packages: `browser` and `postgres` tests whose package is
# missing are skipped, each with the reason.
test-local:
	$(MAKE) --no-print-directory test SYSTEM_DEPS=0

lint: install
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

# `dg dev` (webserver + daemon) on the project's code location `consent_compliance`
# ([tool.dg.project] in pyproject.toml), after creating $(DAGSTER_HOME) with pipelines/dagster.yaml.
# The schedule and the sensors start switched off: COMPLIANCE_AUTOMATION=on make ui switches them on.
ui: install
	$(PY) -m pipelines prepare-instance
	$(VENV)/bin/dg dev $(UI_ARGS)

clean:
	rm -rf $(VENV) .dagster_home data/inbox data/reports data/warehouse.duckdb*
