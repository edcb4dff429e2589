"""The nightly schedule: 02:00 Europe/Prague, processing the previous day."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines.jobs import nightly_job
from pipelines.partitions import TIMEZONE


@dg.schedule(
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_schedule(context: dg.ScheduleEvaluationContext):
    """At 02:00 Prague time, run the partition of the day that has just ended."""
    local = context.scheduled_execution_time.astimezone(ZoneInfo(TIMEZONE))
    day = (local.date() - timedelta(days=1)).isoformat()
    return dg.RunRequest(run_key=day, partition_key=day, tags={"trigger": "schedule"})
