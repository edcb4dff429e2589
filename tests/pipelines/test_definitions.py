"""The Definitions load, and the ingestion materialises for one partition on a tmp warehouse."""

import dagster as dg

from pipelines import config
from tests.helpers import event


def test_definitions_load_with_job_and_schedule():
    from pipelines.definitions import defs
    from pipelines.jobs import NIGHTLY_JOB_NAME

    job = defs.resolve_job_def(NIGHTLY_JOB_NAME)
    assert job.partitions_def is not None
    schedule = defs.resolve_schedule_def("nightly_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Europe/Prague"
    # on or off by COMPLIANCE_AUTOMATION (tests/pipelines/test_automation.py)
    assert schedule.default_status == (
        dg.DefaultScheduleStatus.RUNNING if config.automation_enabled() else dg.DefaultScheduleStatus.STOPPED
    )


def test_schedule_requests_the_previous_day():
    from pipelines.schedules import nightly_schedule

    context = dg.build_schedule_context(
        scheduled_execution_time=__import__("datetime").datetime.fromisoformat("2026-11-04T02:00:00+01:00")
    )
    request = nightly_schedule(context)
    assert request.partition_key == "2026-11-03"


def test_ingestion_materialises_one_partition(env):
    env.write_events(
        "2026-11-03",
        "part-0000.jsonl",
        [event("Signed In", "acc_1", "2026-11-03T09:15:00+01:00"), "{not json"],
    )
    ingestion = dg.AssetSelection.assets(["landing", "events"]).required_multi_asset_neighbors()
    result = env.run("2026-11-03", selection=ingestion)
    assert result.success
    assert env.query("SELECT count(*) FROM landing.events") == [(1,)]
    assert env.query("SELECT line_number, reason FROM landing.rejected") == [(2, "invalid_json")]
    mats = result.asset_materializations_for_node("ingest_arrival_day")
    assert any(m.metadata["dagster/row_count"].value == 1 for m in mats)
