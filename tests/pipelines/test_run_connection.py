"""One warehouse connection per run: the file is opened by the run's first step, and each step
works on a cursor of it (`pipelines.resources.Warehouse.get_connection`)."""

from __future__ import annotations

import dagster as dg
import pytest

import pipelines.resources
from pipelines.resources import Warehouse
from tests.helpers import created, deleted

DAY = "2026-11-02"


def test_a_night_opens_the_warehouse_file_once_plus_once_after_each_compaction(env, monkeypatch):
    env.write_events(
        DAY,
        "part-0000.jsonl",
        [
            created("acc_1", f"{DAY}T09:00:00+01:00", "one@example.com"),
            created("acc_2", f"{DAY}T09:05:00+01:00", "two@example.com"),
            deleted("acc_2", f"{DAY}T10:00:00+01:00"),
        ],
    )
    opened = {"file": 0, "cursor": 0}
    original = pipelines.resources.open_connection

    def counting(*args, root=None, **kwargs):
        opened["cursor" if root is not None else "file"] += 1
        return original(*args, root=root, **kwargs)

    monkeypatch.setattr(pipelines.resources, "open_connection", counting)
    result = env.run(DAY)
    assert result.success
    monkeypatch.setattr(pipelines.resources, "open_connection", original)
    (compactions,) = env.query("SELECT count(*) FROM ops.compactions WHERE run_date = ?", [DAY])[0]
    assert compactions >= 1  # the deletion's vault purge is compacted the same night
    assert opened["file"] == 1 + compactions
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert opened["cursor"] >= len(steps)


@pytest.fixture
def in_run(env):
    """The warehouse resource as a run sets it up (its lock taken), torn down after the test."""
    warehouse = Warehouse(database=str(env.warehouse), hash_key=env.key)
    context = dg.build_init_resource_context()
    warehouse.setup_for_execution(context)
    yield warehouse
    warehouse.teardown_after_execution(context)


def test_each_step_connection_has_its_own_temp_tables_and_the_connection_settings(in_run, env):
    with in_run.get_connection() as con:
        con.execute("CREATE TEMP TABLE _mine AS SELECT 1 AS x")
    with in_run.get_connection() as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_mine'").fetchall()[0][0] == 0
        assert con.execute("SELECT current_setting('TimeZone')").fetchall()[0][0] == "Europe/Prague"
        assert con.execute("SELECT hmac_subject('acc_1')").fetchall()[0][0] == env.subject_key("acc_1")
        assert con.execute("SELECT count(*) FROM vault.accounts").fetchall()[0][0] == 0  # the vault is attached


def test_a_failed_step_or_a_compaction_closes_the_run_connection(in_run):
    with in_run.get_connection() as con:
        con.execute("SELECT 1")
    root = in_run._root
    assert root is not None
    with in_run.get_connection() as con:
        pass
    assert in_run._root is root  # shared by the next step
    with pytest.raises(ZeroDivisionError), in_run.get_connection():
        raise ZeroDivisionError
    assert in_run._root is None  # the next step starts from the file
    with in_run.get_connection() as con:
        con.execute("SELECT 1")
    assert in_run._root is not None
    in_run.compact("vault")  # no connection may be open during a copy
    assert in_run._root is None


def test_outside_a_run_every_connection_opens_the_file_and_closes_it(env):
    warehouse = Warehouse(database=str(env.warehouse), hash_key=env.key)
    with warehouse.get_connection() as con:
        con.execute("SELECT 1")
    assert warehouse._root is None
