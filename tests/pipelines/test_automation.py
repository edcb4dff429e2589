"""Laptop defaults (issue 25 item 7): the schedule and the sensors start switched off, unless
COMPLIANCE_AUTOMATION=on (deploy/) or COMPLIANCE_ENV=production with the variable unset.

The default status is fixed when the definitions load, so each case imports them in a fresh
interpreter with its own environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import config
from pipelines.config import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "env, enabled",
    [
        ({}, False),
        ({"COMPLIANCE_AUTOMATION": ""}, False),
        ({"COMPLIANCE_AUTOMATION": "  "}, False),
        ({"COMPLIANCE_AUTOMATION": "on"}, True),
        ({"COMPLIANCE_AUTOMATION": " ON "}, True),
        ({"COMPLIANCE_AUTOMATION": "off"}, False),
        ({"COMPLIANCE_ENV": "production", "COMPLIANCE_HASH_KEY": "k"}, True),
        ({"COMPLIANCE_ENV": "production", "COMPLIANCE_HASH_KEY": "k", "COMPLIANCE_AUTOMATION": "off"}, False),
        ({"COMPLIANCE_ENV": "staging"}, False),
    ],
)
def test_automation_setting(env, enabled):
    assert config.automation_enabled(env) is enabled
    assert config.load_settings(env).automation is enabled


@pytest.mark.parametrize("raw", ["yes", "true", "1", "running", "o n", "on\noff"])
def test_a_bad_value_is_one_config_error_line(raw):
    with pytest.raises(ConfigError, match="COMPLIANCE_AUTOMATION must be on or off") as exc:
        config.load_settings({"COMPLIANCE_AUTOMATION": raw})
    assert "\n" not in str(exc.value)


def _python(code: str, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
    env.update(PYTHONPATH=str(REPO), **extra)
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


STATUSES = """
import json
from pipelines.definitions import defs
repo = defs.get_repository_def()
print(json.dumps({d.name: d.default_status.value for d in [*repo.schedule_defs, *repo.sensor_defs]}))
"""


@pytest.mark.parametrize(
    "extra, status",
    [
        ({}, "STOPPED"),
        ({"COMPLIANCE_AUTOMATION": "on"}, "RUNNING"),
        ({"COMPLIANCE_ENV": "production", "COMPLIANCE_HASH_KEY": "k"}, "RUNNING"),
    ],
    ids=["laptop", "automation-on", "production"],
)
def test_the_schedule_and_every_sensor_follow_the_setting(extra, status):
    proc = _python(STATUSES, **extra)
    assert proc.returncode == 0, proc.stderr[-2000:]
    statuses = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"nightly_schedule", "arrival_folder_sensor", "run_failure_alert", "day_findings_alert"} <= set(statuses)
    assert set(statuses.values()) == {status}, statuses


def test_a_bad_value_stops_the_definitions_and_the_cli_with_one_line(tmp_path):
    proc = _python("import pipelines.definitions", COMPLIANCE_AUTOMATION="yes")
    assert proc.returncode != 0
    assert "COMPLIANCE_AUTOMATION must be on or off, got 'yes'" in proc.stderr
    (tmp_path / "inbox").mkdir()
    cli = _python(
        "import sys; from pipelines.cli import main; sys.exit(main(['nightly', '--date', '2026-11-02']))",
        COMPLIANCE_AUTOMATION="yes",
        COMPLIANCE_INBOX=str(tmp_path / "inbox"),
        COMPLIANCE_REPORTS=str(tmp_path / "reports"),
        COMPLIANCE_WAREHOUSE=str(tmp_path / "w.duckdb"),
        DAGSTER_HOME=str(tmp_path / "home"),
    )
    assert cli.returncode == 2
    assert cli.stderr == "error: COMPLIANCE_AUTOMATION must be on or off, got 'yes'\n"
