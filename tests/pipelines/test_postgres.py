"""The production instance (deploy/dagster.yaml) on a real PostgreSQL server.

The server comes from `tests/setup_postgres.sh` (Debian's postgresql, installed if missing, a
throw-away cluster on a free 127.0.0.1 port), unless DAGSTER_PG_HOST/PORT/USERNAME/PASSWORD/DB are
already set (the Makefile or CI started one). Marked `postgres`: under `make test` or in CI a server
that cannot be had is a failure; with TEST_SYSTEM_DEPS=0 (make test-local), or on a developer
machine without root, it is a skip with the reason (tests/system_deps.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import system_deps

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "tests" / "setup_postgres.sh"
PG_VARS = system_deps.PG_VARS
DAYS = ("2026-11-02", "2026-11-03")

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    if all(v in os.environ for v in PG_VARS):
        yield {v: os.environ[v] for v in PG_VARS}
        return
    if system_deps.mode() == system_deps.SKIP and not system_deps.postgres_available():
        pytest.skip(system_deps.skip_reason("postgres"))
    proc = subprocess.run(["bash", str(SETUP), "start"], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        system_deps.missing("postgres", f"setup_postgres.sh exit {proc.returncode}: {proc.stderr.strip()[-800:]}")
    conn = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    try:
        yield {v: conn[v] for v in PG_VARS}
    finally:
        subprocess.run(["bash", str(SETUP), "stop", conn["DAGSTER_PG_DIR"]], capture_output=True, timeout=120)


def _query(pg: dict[str, str], sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg2  # installed by dagster-postgres

    con = psycopg2.connect(
        host=pg["DAGSTER_PG_HOST"],
        port=int(pg["DAGSTER_PG_PORT"]),
        user=pg["DAGSTER_PG_USERNAME"],
        password=pg["DAGSTER_PG_PASSWORD"],
        dbname=pg["DAGSTER_PG_DB"],
        connect_timeout=10,
    )
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def nightly(postgres, tmp_path_factory) -> dict:
    """`python -m pipelines nightly --date <day 2>` with the production instance on PostgreSQL."""
    root = tmp_path_factory.mktemp("pg_deploy")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        **postgres,
        "DAGSTER_HOME": str(home),
        "COMPLIANCE_INBOX": str(root / "inbox"),
        "COMPLIANCE_WAREHOUSE": str(root / "warehouse.duckdb"),
        "COMPLIANCE_REPORTS": str(root / "reports"),
        "COMPLIANCE_HASH_KEY": "postgres-test-key",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("COMPLIANCE_ALERT_WEBHOOK_URL", None)
    gen = [sys.executable, "-m", "pipelines", "generate", "--out", str(root / "inbox"), "--quiet"]
    gen += ["--accounts", "60", "--days", "2", "--start", DAYS[0], "--seed", "11"]
    subprocess.run(gen, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    # Runs recorded before this test (a server shared with the Makefile) are not counted.
    exists = _query(postgres, "SELECT to_regclass('public.runs') IS NOT NULL")[0][0]
    before = {r[0] for r in _query(postgres, "SELECT run_id FROM runs")} if exists else set()
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines", "nightly", "--date", DAYS[1]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return {"proc": proc, "home": home, "before": before, "env": env}


def test_the_nightly_job_runs_on_the_postgres_instance(postgres, nightly):
    proc = nightly["proc"]
    assert proc.returncode == 0, f"nightly failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    rows = _query(
        postgres,
        """SELECT r.run_id, r.status, t.value
           FROM runs r JOIN run_tags t ON t.run_id = r.run_id AND t.key = 'dagster/partition'
           WHERE r.pipeline_name = 'nightly_compliance'
           ORDER BY t.value""",
    )
    runs = [(status, day) for run_id, status, day in rows if run_id not in nightly["before"]]
    # The catch-up ran day 1, then day 2, both recorded in PostgreSQL.
    assert runs == [("SUCCESS", DAYS[0]), ("SUCCESS", DAYS[1])]
    new_ids = tuple(r[0] for r in rows if r[0] not in nightly["before"])
    events = _query(
        postgres,
        "SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id IN %s GROUP BY 1",
        (new_ids,),
    )
    counts = dict(events)
    assert counts.get("PIPELINE_SUCCESS") == 2  # DagsterEventType.RUN_SUCCESS's stored value
    assert counts.get("ASSET_MATERIALIZATION", 0) > 0 and counts.get("ASSET_CHECK_EVALUATION", 0) > 0
    # Nothing went to SQLite under DAGSTER_HOME: the instance really is the PostgreSQL one.
    assert not list(nightly["home"].rglob("*.db"))


def test_the_warehouse_pool_is_limited_to_one_in_postgres(postgres, nightly):
    # Registered with the default limit by the first warehouse step that claimed a slot.
    assert _query(postgres, "SELECT \"limit\" FROM concurrency_limits WHERE concurrency_key = 'warehouse'") == [(1,)]


def test_the_deploy_instance_queues_runs_one_at_a_time(postgres, nightly, monkeypatch):
    import dagster as dg

    for name, value in postgres.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(str(nightly["home"])) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 1
        assert [dict(limit) for limit in queue.tag_concurrency_limits] == [{"key": "dagster/backfill", "limit": 1}]
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
