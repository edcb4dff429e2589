"""System packages a few tests need, and what happens when one is missing.

* `browser` tests drive headless Chromium (Debian's `chromium`, installed by tests/setup_browser.sh);
* `postgres` tests start a throw-away PostgreSQL server (Debian's `postgresql`, tests/setup_postgres.sh).

TEST_SYSTEM_DEPS says what a missing one means:

| TEST_SYSTEM_DEPS | missing package |
|---|---|
| `1` (`make test`), or CI=true whatever it says | installed by the setup script; the test FAILS if that is impossible |
| `0` (`make test-local`) | never installed: the test is skipped, with the reason |
| unset (a plain `pytest`) | installed by the setup script if this user can; skipped with the reason if not |
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = "TEST_SYSTEM_DEPS"
PG_VARS = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
REQUIRE, SKIP, AUTO = "require", "skip", "auto"

WHAT = {
    "browser": "headless Chromium (Debian package chromium)",
    "postgres": "a PostgreSQL server (Debian package postgresql)",
}


def in_ci(env: dict[str, str] | os._Environ = os.environ) -> bool:
    return env.get("CI", "").strip().lower() in {"1", "true", "yes"}


def mode(env: dict[str, str] | os._Environ = os.environ) -> str:
    raw = env.get(ENV, "").strip()
    if raw not in {"", "0", "1"}:
        raise pytest.UsageError(f"{ENV} must be 0 (skip tests whose system package is missing) or 1, got {raw!r}")
    if raw == "1" or in_ci(env):
        return REQUIRE
    return SKIP if raw == "0" else AUTO


def find_chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM", ""), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def postgres_available() -> bool:
    """A server is given (DAGSTER_PG_*), or tests/setup_postgres.sh can start one without installing."""
    if all(os.environ.get(v) for v in PG_VARS):
        return True
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    found = [d for d in bindirs if os.access(f"{d}/initdb", os.X_OK) and os.access(f"{d}/pg_ctl", os.X_OK)]
    return bool(found) or bool(shutil.which("initdb") and shutil.which("pg_ctl"))


def available(marker: str) -> bool:
    return find_chromium() is not None if marker == "browser" else postgres_available()


def skip_reason(marker: str) -> str:
    return (
        f"needs {WHAT[marker]}, which is not installed; {ENV}=0 (make test-local) does not install "
        f"system packages: `make test` installs it (as root) and runs this test"
    )


def missing(marker: str, detail: str) -> NoReturn:
    """The package could not be had: a failure when it is required (make test, CI), else a skip."""
    message = f"{WHAT[marker]} is missing and could not be set up: {detail}"
    if mode() == REQUIRE:
        pytest.fail(f"{message} ({ENV}=1 or CI: the test suite must run every test)")
    pytest.skip(message)


def skip_missing(items: list[pytest.Item]) -> None:
    """With TEST_SYSTEM_DEPS=0, mark the tests whose system package is missing as skipped."""
    if mode() != SKIP:
        return
    have: dict[str, bool] = {}
    for item in items:
        for marker in WHAT:
            if item.get_closest_marker(marker) is None:
                continue
            if marker not in have:
                have[marker] = available(marker)
            if not have[marker]:
                item.add_marker(pytest.mark.skip(reason=skip_reason(marker)))


def chromium() -> str:
    """The Chromium binary; with TEST_SYSTEM_DEPS other than 0, installed by tests/setup_browser.sh when missing."""
    found = find_chromium()
    if found:
        return found
    if mode() == SKIP:
        pytest.skip(skip_reason("browser"))
    setup = ROOT / "tests" / "setup_browser.sh"
    done = subprocess.run(["bash", str(setup)], capture_output=True, text=True, timeout=1800)
    path = done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout.strip() else ""
    if path and os.access(path, os.X_OK):
        return path
    missing("browser", f"tests/setup_browser.sh exit {done.returncode}: {done.stderr.strip()[-300:]}")
