"""The Dagster instance is prepared by every entry point (issue 25 item 2): a fresh clone has no
$DAGSTER_HOME, and Dagster refuses to start on a DAGSTER_HOME folder that does not exist.

`prepare_dagster_home` directly, the CLI in a subprocess with a DAGSTER_HOME path that does not exist
yet, and the one-line hint the definitions log under `dg dev`. `make ui` itself is started in
tests/pipelines/test_make_ui.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import instance
from pipelines.config import ConfigError

REPO = Path(__file__).resolve().parents[2]
SETTINGS = REPO / "pipelines" / "dagster.yaml"


def test_a_missing_dagster_home_is_created_with_the_project_settings(tmp_path):
    home = tmp_path / "not" / "there" / "yet"
    env = {"DAGSTER_HOME": str(home)}
    assert instance.prepare_dagster_home(env) == home
    assert (home / "dagster.yaml").read_text() == SETTINGS.read_text()
    assert env["DAGSTER_HOME"] == str(home)
    assert [p.name for p in home.iterdir()] == ["dagster.yaml"]  # no temporary file left behind


def test_an_existing_dagster_yaml_is_kept(tmp_path):
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    instance.prepare_dagster_home({"DAGSTER_HOME": str(tmp_path)})
    assert (tmp_path / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_unset_or_blank_means_dot_dagster_home_in_the_working_directory(tmp_path, monkeypatch, raw):
    monkeypatch.chdir(tmp_path)
    env = {} if raw is None else {"DAGSTER_HOME": raw}
    home = instance.prepare_dagster_home(env)
    assert home == tmp_path.resolve() / ".dagster_home"
    assert env["DAGSTER_HOME"] == str(home)  # absolute, as Dagster requires
    assert (home / "dagster.yaml").is_file()


def test_a_relative_dagster_home_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"DAGSTER_HOME": "state/dagster"}
    assert instance.prepare_dagster_home(env) == tmp_path.resolve() / "state" / "dagster"
    assert Path(env["DAGSTER_HOME"]).is_absolute()


def test_an_unusable_dagster_home_is_one_config_error_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="DAGSTER_HOME") as exc:
        instance.prepare_dagster_home({"DAGSTER_HOME": str(blocker / "home")})
    assert "\n" not in str(exc.value)


def test_the_prepared_instance_loads_with_the_project_settings(tmp_path):
    import dagster as dg

    home = instance.prepare_dagster_home({"DAGSTER_HOME": str(tmp_path / "home")})
    with dg.DagsterInstance.from_config(str(home)) as inst:
        assert inst.get_concurrency_config().pool_config.default_pool_limit == 1


def test_the_hint_under_dg_dev(tmp_path):
    dev = {"DAGSTER_IS_DEV_CLI": "1"}
    assert instance.instance_hint({}) is None  # not `dg dev`: the CLI prepares its own instance
    unset = instance.instance_hint(dev)
    assert unset and "make ui" in unset and "\n" not in unset
    bare = instance.instance_hint({**dev, "DAGSTER_HOME": str(tmp_path)})
    assert bare and "prepare-instance" in bare and "\n" not in bare
    instance.prepare_dagster_home({"DAGSTER_HOME": str(tmp_path)})
    assert instance.instance_hint({**dev, "DAGSTER_HOME": str(tmp_path)}) is None


# ---------------------------------------------------------------------------------------------
# The CLI in a subprocess, with a DAGSTER_HOME that does not exist yet
# ---------------------------------------------------------------------------------------------


def _cli(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPLIANCE_", "DAGSTER_"))}
    env.update(
        COMPLIANCE_INBOX=str(tmp_path / "inbox"),
        COMPLIANCE_WAREHOUSE=str(tmp_path / "warehouse.duckdb"),
        COMPLIANCE_REPORTS=str(tmp_path / "reports"),
        COMPLIANCE_HASH_KEY="instance-test-key",
        PYTHONPATH=str(REPO),
        **extra,
    )
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_prepare_instance_creates_a_fresh_dagster_home(tmp_path):
    home = tmp_path / "fresh" / "dagster_home"
    proc = _cli(tmp_path, "prepare-instance", DAGSTER_HOME=str(home))
    assert proc.returncode == 0, proc.stderr
    assert str(home) in proc.stdout
    assert (home / "dagster.yaml").read_text() == SETTINGS.read_text()


def test_cli_prepare_instance_on_an_unusable_path_exits_2_with_one_line(tmp_path):
    (tmp_path / "a-file").write_text("")
    proc = _cli(tmp_path, "prepare-instance", DAGSTER_HOME=str(tmp_path / "a-file" / "home"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: DAGSTER_HOME ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_the_first_nightly_run_on_a_fresh_clone_creates_its_instance(tmp_path):
    """No DAGSTER_HOME folder yet (a fresh clone): the run succeeds and is recorded in the new instance."""
    import dagster as dg

    (tmp_path / "inbox" / "events" / "2026-11-02").mkdir(parents=True)  # the inbox's first arrival day
    home = tmp_path / "fresh" / "dagster_home"
    proc = _cli(tmp_path, "nightly", "--date", "2026-11-02", DAGSTER_HOME=str(home))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert (home / "dagster.yaml").read_text() == SETTINGS.read_text()
    with dg.DagsterInstance.from_config(str(home)) as inst:
        [run] = inst.get_run_records()
        assert run.dagster_run.tags["dagster/partition"] == "2026-11-02"
