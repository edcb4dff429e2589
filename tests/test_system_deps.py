"""The tests that need a system package (issue 25 item 8): with TEST_SYSTEM_DEPS=0 (make test-local)
a missing package skips them with the reason; under `make test` (TEST_SYSTEM_DEPS=1) or in CI it
fails them. tests/system_deps.py; the packages themselves are not touched here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import system_deps

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, system_deps.AUTO),
        ({"TEST_SYSTEM_DEPS": "0"}, system_deps.SKIP),
        ({"TEST_SYSTEM_DEPS": " 1 "}, system_deps.REQUIRE),
        ({"CI": "true"}, system_deps.REQUIRE),
        ({"CI": "true", "TEST_SYSTEM_DEPS": "0"}, system_deps.REQUIRE),  # CI never skips silently
        ({"CI": "false", "TEST_SYSTEM_DEPS": "0"}, system_deps.SKIP),
    ],
)
def test_mode(env, expected):
    assert system_deps.mode(env) == expected


def test_a_bad_mode_is_a_usage_error():
    with pytest.raises(pytest.UsageError, match="TEST_SYSTEM_DEPS must be 0"):
        system_deps.mode({"TEST_SYSTEM_DEPS": "no"})


@pytest.mark.parametrize("marker", ["browser", "postgres"])
def test_a_missing_package_fails_when_required_and_skips_otherwise(monkeypatch, marker):
    monkeypatch.delenv("CI", raising=False)
    # Catch every outcome: a skip escaping the block would turn this test into a skip, not a failure.
    for value, outcome in (("1", pytest.fail.Exception), ("0", pytest.skip.Exception), ("", pytest.skip.Exception)):
        monkeypatch.setenv("TEST_SYSTEM_DEPS", value)
        with pytest.raises(BaseException, match="could not be set up") as raised:
            system_deps.missing(marker, "no apt-get")
        assert raised.type is outcome, (value, raised.type)


def test_the_suite_marks_every_test_that_uses_a_system_package():
    tests = ROOT / "tests"
    for path in tests.rglob("test_*.py"):
        text = path.read_text()
        if path.name == "test_system_deps.py":
            continue
        if "system_deps.chromium()" in text:
            assert "pytest.mark.browser" in text, path
        if "setup_postgres.sh" in text:
            assert "pytest.mark.postgres" in text, path


SAMPLE = """
import pytest

@pytest.mark.browser
def test_needs_chromium():
    pass

@pytest.mark.postgres
def test_needs_postgres():
    pass

def test_needs_nothing():
    pass
"""

CONFTEST = """
from tests import system_deps

system_deps.available = lambda marker: {available!r}


def pytest_collection_modifyitems(config, items):
    system_deps.skip_missing(items)
"""


def _run_sample(tmp_path: Path, available: bool, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "conftest.py").write_text(CONFTEST.format(available=available))
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    browser: x\n    postgres: x\n")
    run_env = {k: v for k, v in os.environ.items() if k not in ("CI", "TEST_SYSTEM_DEPS")}
    run_env.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--strict-markers", str(tmp_path)],
        cwd=tmp_path,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_test_local_skips_with_the_reason_when_the_package_is_missing(tmp_path):
    proc = _run_sample(tmp_path, available=False, TEST_SYSTEM_DEPS="0")
    assert proc.returncode == 0, proc.stdout
    assert "1 passed, 2 skipped" in proc.stdout, proc.stdout
    assert "needs headless Chromium (Debian package chromium), which is not installed" in proc.stdout
    assert "needs a PostgreSQL server (Debian package postgresql), which is not installed" in proc.stdout
    assert "make test-local" in proc.stdout


def test_test_local_runs_them_when_the_package_is_there(tmp_path):
    assert "3 passed" in _run_sample(tmp_path, available=True, TEST_SYSTEM_DEPS="0").stdout


@pytest.mark.parametrize("env", [{"TEST_SYSTEM_DEPS": "1"}, {"CI": "true", "TEST_SYSTEM_DEPS": "0"}])
def test_make_test_and_ci_never_skip_at_collection(tmp_path, env):
    """Nothing is skipped up front: each test sets its package up, or fails (`missing`)."""
    assert "3 passed" in _run_sample(tmp_path, available=False, **env).stdout
