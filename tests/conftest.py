"""Shared fixtures: an isolated inbox / warehouse / reports / DAGSTER_HOME per test (tmp_path).

The helpers the test modules share (`event`, `Env`, `TEST_KEY`, ...) are in tests/helpers.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The test process loads the Definitions once (at collection), before any test's inbox exists, and
# then runs days of many temporary inboxes: its partitions start at the first day the tests use
# (pipelines.partitions; a subprocess with its own COMPLIANCE_* finds its window in its own inbox).
os.environ.setdefault("COMPLIANCE_FIRST_DAY", "2026-01-01")

from tests import system_deps  # noqa: E402  (after the partition window is set)
from tests.helpers import Cli, Env  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """TEST_SYSTEM_DEPS=0 (make test-local): skip, with the reason, the `browser` and `postgres`
    tests whose system package is missing (tests/system_deps.py)."""
    system_deps.skip_missing(items)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    e = Env(
        root=tmp_path,
        inbox=tmp_path / "inbox",
        warehouse=tmp_path / "warehouse.duckdb",
        reports=tmp_path / "reports",
        dagster_home=tmp_path / "dagster_home",
    )
    e.inbox.mkdir()
    e.dagster_home.mkdir()
    monkeypatch.setenv("COMPLIANCE_INBOX", str(e.inbox))
    monkeypatch.setenv("COMPLIANCE_WAREHOUSE", str(e.warehouse))
    monkeypatch.setenv("COMPLIANCE_REPORTS", str(e.reports))
    monkeypatch.setenv("COMPLIANCE_HASH_KEY", e.key)
    monkeypatch.setenv("DAGSTER_HOME", str(e.dagster_home))
    return e


@pytest.fixture
def cli(tmp_path) -> Cli:
    """The CLI in a subprocess, on an empty inbox of its own."""
    c = Cli(tmp_path)
    c.inbox.mkdir()
    return c
