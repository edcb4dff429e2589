"""Concurrency: two runs started at once never corrupt the warehouse.

* Two CLI runs: the first takes the warehouse lock (`<warehouse>.lock`); the second exits 3 at once
  with one clear line.
* The CLI and a Dagster run (UI "Materialize", the schedule, a sensor: here `dagster job execute`
  on the same DAGSTER_HOME): every Dagster run holds the same lock for its whole run, taken by the
  Warehouse resource before its first step claims a pool slot. A Dagster run that starts second
  waits (and says so in its log); a CLI run that starts second exits 3.
* Inside the instance every warehouse step is in pool `warehouse` with limit 1 and runs are
  queued one at a time (`pipelines/dagster.yaml`): checked on the instance the CLI prepares.

After each race the warehouse and the report equal those of a single uninterrupted run
(ordered content hashes of every table, as in tests/end_to_end/test_crash_safety.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from pipelines.resources import Warehouse
from pipelines.warehouse import acquire_run_lock, held_locks, lock_path
from tests.helpers import generate_inbox, report_state, warehouse_state

REPO = Path(__file__).resolve().parents[2]
KEY = "concurrency-test-key"
FIRST, DAY = "2026-10-01", "2026-10-02"  # the CLI's nightly for DAY catches up on FIRST
BUSY = "another pipeline run holds the lock"
CODE_VERSION = re.compile(rb'<code id="code-version">[^<]*</code>')


class World:
    """One warehouse, reports folder and DAGSTER_HOME over its own copy of the generated inbox (the
    night redacts the inbox in place: a world must not start from another world's redacted files)."""

    def __init__(self, root: Path, inbox: Path):
        self.root = root
        self.warehouse = root / "warehouse.duckdb"
        self.reports = root / "reports"
        self.home = root / "dagster_home"
        root.mkdir()
        inbox = Path(shutil.copytree(inbox, root / "inbox"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPLIANCE_", "DAGSTER_"))}
        self.env.update(
            COMPLIANCE_INBOX=str(inbox),
            COMPLIANCE_WAREHOUSE=str(self.warehouse),
            COMPLIANCE_REPORTS=str(self.reports),
            COMPLIANCE_HASH_KEY=KEY,
            DAGSTER_HOME=str(self.home),
            PYTHONPATH=str(REPO),
        )

    def start(self, *args: str, name: str) -> subprocess.Popen:
        with open(self.root / f"{name}.log", "w") as log:  # the child keeps its own copy of the handle
            return subprocess.Popen(args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.PIPE, text=True)

    def cli(self, name: str) -> subprocess.Popen:
        return self.start(sys.executable, "-m", "pipelines", "nightly", "--date", DAY, name=name)

    def dagster_run(self, name: str) -> subprocess.Popen:
        """A run of the nightly job launched through the instance, as the UI or the daemon does."""
        dagster = Path(sys.executable).with_name("dagster")
        tags = json.dumps({"dagster/partition": DAY})
        return self.start(
            str(dagster), "job", "execute", "-m", "pipelines.definitions", "-j", "nightly_compliance", "--tags", tags,
            name=name,
        )  # fmt: skip

    def finish(self, proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
        _, stderr = proc.communicate(timeout=timeout)
        return proc.returncode, stderr

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))

    def state(self) -> tuple[dict, dict]:
        """Warehouse and report, without the code version: these runs are separate processes started
        at different times, and in a shared checkout the source (which the version hashes) may
        change in between. The crash test, whose runs share one import of the code, compares it."""
        return (
            warehouse_state(self.warehouse, {"reports.daily_summary": {"code_version"}}),
            report_state(self.reports / DAY, (CODE_VERSION,)),
        )


def wait_for(predicate, what: str, timeout: float = 300) -> None:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.2)


def warehouse_in_use(world: World) -> bool:
    """The CLI run has opened the warehouse: it holds the lock, and its Dagster instance is set up
    (opening the instance from here while the CLI creates its SQLite storage would race on it)."""
    return world.warehouse.exists()


def step_window(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    """(first step start, last step end) of a run, from its event log."""
    stats = instance.get_run_step_stats(run_id)
    return min(s.start_time for s in stats), max(s.end_time for s in stats)


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("concurrency")
    return generate_inbox(root / "inbox", accounts=60, days=2, start=FIRST, seed=5)


# ---------------------------------------------------------------------------------------------
# Races of whole runs
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_runs_started_together_never_corrupt_the_warehouse(inbox, tmp_path):
    # 1. Two CLI runs at once: one runs, the other exits 3 at once with one line and starts nothing,
    #    so the warehouse and the report are those of uninterrupted runs: the reference.
    world = World(tmp_path / "two-clis", inbox)
    first, second = world.cli("first"), world.cli("second")
    outcomes = [world.finish(first), world.finish(second)]
    assert sorted(code for code, _ in outcomes) == [0, 3], outcomes
    loser = next(stderr for code, stderr in outcomes if code == 3)
    lines = [line for line in loser.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and BUSY in lines[0], loser
    with world.instance() as instance:  # the winner's two days, nothing from the loser
        assert [r.status for r in instance.get_runs()] == [dg.DagsterRunStatus.SUCCESS] * 2
    reference = world.state()

    # 2. A run launched through the instance (UI, schedule, sensor) while a CLI run executes: it
    #    waits for the CLI run, and says so; no step of one runs between steps of the other.
    world = World(tmp_path / "cli-and-dagster", inbox)
    cli = world.cli("cli")
    wait_for(lambda: warehouse_in_use(world), "the CLI run to open the warehouse")
    launched = world.dagster_run("dagster")
    cli_code, cli_err = world.finish(cli)
    run_code, run_err = world.finish(launched)
    assert (cli_code, run_code) == (0, 0), (cli_err[-2000:], run_err[-3000:])
    assert "Waiting for the warehouse lock" in run_err
    with world.instance() as instance:
        runs = instance.get_runs()
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 3
        cli_runs = [r for r in runs if r.tags.get("trigger") == "cli"]
        (dagster_run,) = [r for r in runs if r.tags.get("trigger") != "cli"]
        assert len(cli_runs) == 2
        cli_end = max(step_window(instance, r.run_id)[1] for r in cli_runs)
        assert step_window(instance, dagster_run.run_id)[0] >= cli_end
    assert world.state() == reference  # the second run of the same day changed nothing


# ---------------------------------------------------------------------------------------------
# The lock and the instance settings, without whole runs
# ---------------------------------------------------------------------------------------------


def _holder(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the warehouse lock for `seconds`."""
    code = (
        "import fcntl, sys, time\n"
        f"fh = open({str(path)!r}, 'a+')\n"
        "fcntl.flock(fh, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        f"time.sleep({seconds})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_the_resource_holds_the_lock_for_the_run_and_waits_for_another_holder(tmp_path, caplog):
    database = tmp_path / "warehouse.duckdb"
    holder = _holder(lock_path(database), 1.5)
    started = time.monotonic()
    with dg.build_resources({"warehouse": Warehouse(database=str(database), hash_key=KEY)}):
        waited = time.monotonic() - started
        assert holder.poll() is not None, "the resource did not wait for the other holder"
        # while the resource is alive, nobody else gets the lock
        with open(lock_path(database), "a+") as fh:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert waited >= 1.0
    with open(lock_path(database), "a+") as fh:  # released with the resource
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    holder.wait()


def test_the_wait_is_logged_and_bounded(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    holder = _holder(lock_path(database), 30)
    messages = []

    class Log:
        def warning(self, msg, *args):
            messages.append(msg % args)

        info = warning

    try:
        with pytest.raises(TimeoutError, match="another pipeline run held the lock"):
            acquire_run_lock(database, Log(), timeout=1.5)
    finally:
        holder.kill()
        holder.wait()
    assert len(messages) == 1 and "Waiting for the warehouse lock" in messages[0]


def test_a_cli_run_does_not_wait_for_its_own_lock(tmp_path):
    # the CLI holds the lock around its in-process runs: their resource must not take it again
    database = tmp_path / "warehouse.duckdb"
    with open(lock_path(database), "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held_locks[database.resolve()] = fh
        try:
            assert acquire_run_lock(database, timeout=0.5) is None
        finally:
            held_locks.pop(database.resolve())


def test_a_cli_run_exits_3_while_a_dagster_run_holds_the_warehouse(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    database = tmp_path / "warehouse.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPLIANCE_", "DAGSTER_"))}
    env.update(
        COMPLIANCE_INBOX=str(inbox),
        COMPLIANCE_WAREHOUSE=str(database),
        COMPLIANCE_REPORTS=str(tmp_path / "reports"),
        COMPLIANCE_HASH_KEY=KEY,
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        PYTHONPATH=str(REPO),
    )
    # what a Dagster run's Warehouse resource holds from its start to its end
    with dg.build_resources({"warehouse": Warehouse(database=str(database), hash_key=KEY)}):
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines", "nightly", "--date", DAY],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 3, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and BUSY in lines[0]
    assert not (tmp_path / "reports" / DAY).exists()


def test_the_instance_runs_one_warehouse_step_and_one_run_at_a_time(tmp_path, monkeypatch):
    from pipelines.instance import prepare_dagster_home

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    home = prepare_dagster_home()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 1
        assert concurrency.run_queue_config.max_concurrent_runs == 1
        info = instance.event_log_storage.get_concurrency_info("warehouse")
        assert info.limit == 1  # slots are allocated on first use, with the default limit


def test_every_warehouse_step_is_in_the_warehouse_pool():
    from pipelines.definitions import defs

    job = defs.resolve_job_def("nightly_compliance")
    pools = {node.name: node.definition.pool for node in job.graph.node_dict.values()}
    assert pools and set(pools.values()) == {"warehouse"}, pools
