"""The nightly schedule: 02:00 Europe/Prague, processing the previous day."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines import config
from pipelines.jobs import nightly_job
from pipelines.partitions import TIMEZONE

#: Off on a laptop, on in production (COMPLIANCE_AUTOMATION, pipelines.config.automation_enabled);
#: read when the definitions load. A switch in the UI is stored in the instance and wins.
DEFAULT_STATUS = dg.DefaultScheduleStatus.RUNNING if config.automation_enabled() else dg.DefaultScheduleStatus.STOPPED


@dg.schedule(
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone=TIMEZONE,
    default_status=DEFAULT_STATUS,
)
def nightly_schedule(context: dg.ScheduleEvaluationContext):
    """At 02:00 Prague time, run the partition of the day that has just ended."""
    local = context.scheduled_execution_time.astimezone(ZoneInfo(TIMEZONE))
    day = (local.date() - timedelta(days=1)).isoformat()
    return dg.RunRequest(run_key=day, partition_key=day, tags={"trigger": "schedule"})
