"""Raw retention (CONTRACT 5): ingested inbox days older than N days go, nothing else ever does."""

from __future__ import annotations

import logging
from datetime import date

import dagster as dg

from assets.erasure.assets import RAW_RETENTION
from assets.erasure.retention import apply_retention
from assets.landing.assets import EVENTS, EXPORT_KEYS, FILES, REJECTED
from assets.landing.exports import ingest_exports
from assets.landing.ingest import ingest_day
from assets.purge.assets import PURGE_LOG
from tests.helpers import event

D = date(2026, 10, 29)


def signed_in(day: str) -> dict:
    return event("Signed In", "acc_1", f"{day}T09:00:00+01:00")


def ingest(env, *days: str) -> None:
    with env.connect() as con:
        for day in days:
            ingest_day(con, env.inbox, date.fromisoformat(day))
            ingest_exports(con, env.inbox, date.fromisoformat(day))


def retention(env, day: date = D, days: int = 28, caplog=None):
    with env.connect() as con:
        return apply_retention(con, env.inbox, day, days, logging.getLogger("retention-test"))


def test_retention_deletes_ingested_folders_n_days_old_and_never_an_uningested_one(env, tmp_path, caplog):
    for day in ("2026-09-29", "2026-09-30", "2026-10-01", "2026-10-02"):
        env.write_events(day, "part-0000.jsonl", [signed_in(day)])
        env.write_export("crm", day, [{"account_id": "acc_1"}])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "part-0000.jsonl").write_text("precious\n")
    (env.inbox / "events" / "2026-09-28").symlink_to(outside, target_is_directory=True)
    (env.inbox / "events" / "2026-10-01" / "link.jsonl").symlink_to(outside / "part-0000.jsonl")
    (env.inbox / "events" / "not-a-day").mkdir()
    ingest(env, "2026-09-29", "2026-10-01", "2026-10-02")  # 2026-09-30 was never ingested
    with env.connect() as con:  # a day "ingested" whose folder is a symlink out of the inbox
        con.execute("INSERT INTO ops.ingested_days VALUES (DATE '2026-09-28', '[]', 0, now())")
    env.write_events("2026-09-29", "part-0001.jsonl", [signed_in("2026-09-29")])  # arrived after ingestion

    with caplog.at_level(logging.INFO, logger="retention-test"):
        result = retention(env)

    # N = 28: the run of Oct 29 deletes the folder of Oct 1 (and the export of Oct 1), not Oct 2.
    assert sorted((d.kind, d.path) for d in result.deleted) == [
        ("events", "events/2026-10-01"),
        ("snapshot", "snapshots/crm/2026-09-29.csv"),
        ("snapshot", "snapshots/crm/2026-10-01.csv"),
    ]
    assert result.kept_unsafe == ["events/2026-09-29"]
    remaining = sorted(p.name for p in (env.inbox / "events").iterdir())
    assert remaining == ["2026-09-28", "2026-09-29", "2026-09-30", "2026-10-02", "not-a-day"]
    assert sorted(p.name for p in (env.inbox / "snapshots" / "crm").iterdir()) == ["2026-09-30.csv", "2026-10-02.csv"]
    assert (outside / "part-0000.jsonl").read_text() == "precious\n"  # symlinks are never followed
    assert sorted(env.query("SELECT run_date, kind, path FROM ops.retention_log")) == [
        (D, "events", "events/2026-10-01"),
        (D, "snapshot", "snapshots/crm/2026-09-29.csv"),
        (D, "snapshot", "snapshots/crm/2026-10-01.csv"),
    ]
    assert sorted(r.getMessage() for r in caplog.records if r.name == "retention-test" and "deleted" in r.getMessage())[
        :1
    ] == ["Retention deleted events/2026-10-01"]

    again = retention(env)  # a re-run deletes nothing more and logs nothing more
    assert again.deleted == [] and env.query("SELECT count(*) FROM ops.retention_log") == [(3,)]
    # The ingested history stays in the warehouse; re-ingesting the deleted day keeps it.
    ingest(env, "2026-10-01")
    assert env.query("SELECT count(*) FROM landing.events WHERE arrival_date = '2026-10-01'") == [(1,)]


def test_an_interrupted_deletion_is_finished_by_the_next_run(env):
    trash = env.inbox / "events" / ".retention-2026-10-01"
    trash.mkdir(parents=True)
    (trash / "part-0000.jsonl").write_text("{}\n")
    env.write_events("2026-10-27", "part-0000.jsonl", [signed_in("2026-10-27")])
    ingest(env, "2026-10-27")

    result = retention(env)

    assert result.deleted == [] and not trash.exists()
    assert (env.inbox / "events" / "2026-10-27").is_dir()


def test_raw_retention_asset_logs_each_deletion_without_data(env):
    env.retention_days = 2
    for day in ("2026-11-02", "2026-11-03", "2026-11-04"):
        env.write_events(day, "part-0000.jsonl", [signed_in(day)])
    selection = dg.AssetSelection.assets(EVENTS, REJECTED, FILES, EXPORT_KEYS, PURGE_LOG, RAW_RETENTION)
    for day in ("2026-11-02", "2026-11-03"):
        assert env.run(day, selection=selection).success
    assert (env.inbox / "events" / "2026-11-02").is_dir()

    result = env.run("2026-11-04", selection=selection)

    assert result.success
    assert sorted(p.name for p in (env.inbox / "events").iterdir()) == ["2026-11-03", "2026-11-04"]
    [materialization] = result.asset_materializations_for_node("erasure__raw_retention")
    assert materialization.metadata["deleted_today"].value == 1
    assert "events/2026-11-02" in materialization.metadata["preview"].value
    logs = [entry.user_message for entry in env.instance.all_logs(result.run_id)]
    messages = [m for m in logs if "Retention deleted" in m]
    assert messages == ["Retention deleted events/2026-11-02"]
    assert env.query("SELECT run_date, path FROM ops.retention_log") == [(date(2026, 11, 4), "events/2026-11-02")]
