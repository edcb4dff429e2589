"""Sensors: start a day's run when its `_SUCCESS` marker lands, and alert on failures and violations.

* `arrival_folder_sensor` requests the nightly run of day D as soon as `<inbox>/events/D/_SUCCESS`
  exists, instead of waiting for the 02:00 schedule (which stays as the backstop). It never opens the
  warehouse: the run is the only writer.
* `run_failure_alert` sends a `run_failure` alert when a nightly run fails.
* `day_findings_alert` sends, for a successful nightly run, a `violations_found` alert when
  `<reports>/D/summary.json` has any `violations.<rule>.new > 0` (with new `erasure_overdue` rows, it
  names the day's remediation lists that hold an overdue subject), a `no_data` alert when its
  `freshness` says no event arrived, and a `data_incomplete` alert when the day had under half its
  usual events or a stale export.

Alerts go through `pipelines.notify` (file/log by default, optional webhook) and hold no personal
data: rule ids and counts, step and check names, the run id and the day. Run status sensors see runs
launched through the daemon or the UI (schedule, sensor, backfill, "Materialize"); runs of the CLI
(`python -m pipelines nightly`) execute in-process and report through `alerts_for_run`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg

from assets.reports.remediation import overdue_paths
from assets.reports.status import INCOMPLETE, NO_DATA
from pipelines import config, notify
from pipelines.jobs import NIGHTLY_JOB_NAME, nightly_job
from pipelines.partitions import nightly_partitions

log = logging.getLogger(__name__)

#: The rule whose new rows make the violations alert name the remediation lists.
OVERDUE_RULE = "erasure_overdue"
#: The marker a producer writes last, when a day's arrival folder is complete.
MARKER = "_SUCCESS"
SENSOR_INTERVAL_SECONDS = 60
PARTITION_TAG = "dagster/partition"
#: Off on a laptop, on in production (COMPLIANCE_AUTOMATION, pipelines.config.automation_enabled);
#: read when the definitions load. A switch in the UI is stored in the instance and wins.
DEFAULT_STATUS = dg.DefaultSensorStatus.RUNNING if config.automation_enabled() else dg.DefaultSensorStatus.STOPPED
#: Statuses of a run that already covers a marker (a failed or canceled run does not).
_COVERING = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.SUCCESS,
]


# ---------------------------------------------------------------------------------------------
# _SUCCESS markers
# ---------------------------------------------------------------------------------------------


def find_markers(inbox: Path) -> dict[str, int]:
    """`{day: marker mtime in ns}` for every `<inbox>/events/<YYYY-MM-DD>/_SUCCESS` file."""
    events = inbox / "events"
    found: dict[str, int] = {}
    if not events.is_dir():
        return found
    for folder in events.iterdir():
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if folder.name != day.isoformat():  # e.g. "20261103" parses too; the contract wants YYYY-MM-DD
            continue
        marker = folder / MARKER
        try:
            if marker.is_file():
                found[day.isoformat()] = marker.stat().st_mtime_ns
        except OSError:  # removed between listing and stat (retention): not a marker any more
            continue
    return found


def _load_cursor(cursor: str | None) -> dict[str, int]:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int)}


def _last_partition_day() -> str | None:
    """The latest day that is a partition now: yesterday in Prague, the last complete day."""
    return nightly_partitions.get_last_partition_key()


def _covered_by_run(instance: dg.DagsterInstance, day: str, marker_mtime_ns: int) -> bool:
    """A queued, running or successful nightly run of `day` was created after the marker was written."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=NIGHTLY_JOB_NAME, tags={PARTITION_TAG: day}, statuses=_COVERING),
        limit=1,
    )
    return bool(records) and records[0].create_timestamp.timestamp() * 1e9 >= marker_mtime_ns


@dg.sensor(
    job=nightly_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DEFAULT_STATUS,
)
def arrival_folder_sensor(context: dg.SensorEvaluationContext):
    """Run a day as soon as its arrival folder holds a `_SUCCESS` marker (the 02:00 schedule is the backstop)."""
    inbox = config.load_settings().inbox
    markers = find_markers(inbox)
    seen = _load_cursor(context.cursor)
    last = _last_partition_day()
    first = nightly_partitions.get_first_partition_key()
    requests, waiting = [], []
    for day in sorted(markers):
        mtime = markers[day]
        if last is None or day > last or (first is not None and day < first):
            waiting.append(day)  # today or later: not a complete day yet, picked up after midnight
            continue
        if seen.get(day) == mtime:
            continue
        if _covered_by_run(context.instance, day, mtime):
            context.log.info(f"{day}: a run created after its {MARKER} marker already covers it")
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{day}:{mtime}",
                partition_key=day,
                tags={"trigger": "arrival_sensor"},
            )
        )
    # Remember the markers of complete days only; forget days whose folder is gone (retention).
    cursor = json.dumps({d: m for d, m in markers.items() if d not in waiting}, sort_keys=True)
    if requests:
        context.log.info("requesting " + ", ".join(r.partition_key for r in requests))
        return dg.SensorResult(run_requests=requests, cursor=cursor)
    reason = f"no new {MARKER} marker"
    if waiting:
        reason += f"; waiting for the end of {', '.join(waiting)}"
    return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=cursor)


# ---------------------------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------------------------


def _events(instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType) -> Iterable[Any]:
    return instance.all_logs(run_id, of_type=event_type)


def failed_steps(instance: dg.DagsterInstance, run_id: str) -> tuple[list[str], list[str]]:
    """Step keys that failed in the run, and their error class names (never the messages)."""
    steps, classes = [], []
    for entry in _events(instance, run_id, dg.DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        if event is None:
            continue
        steps.append(event.step_key or "?")
        error = getattr(event.event_specific_data, "error", None)
        while error is not None and getattr(error, "cause", None) is not None:
            error = error.cause  # Dagster wraps the user's exception: report the original class
        if error is not None and getattr(error, "cls_name", None):
            classes.append(error.cls_name)
    return steps, classes


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """`asset/key:check_name` of every asset check that did not pass in the run."""
    names = []
    for entry in _events(instance, run_id, dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        event = entry.dagster_event
        evaluation = event.event_specific_data if event is not None else None
        if evaluation is not None and not evaluation.passed:
            names.append(f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}")
    return names


def failure_alert(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict[str, Any]:
    steps, classes = failed_steps(instance, run.run_id)
    return notify.build_alert(
        notify.RUN_FAILURE,
        day=run.tags.get(PARTITION_TAG),
        run_id=run.run_id,
        job=run.job_name,
        failed_steps=steps,
        failed_checks=failed_checks(instance, run.run_id),
        error_classes=classes,
        failure_reason=run.tags.get("dagster/failure_reason"),
    )


def day_summary(reports: Path, day: str) -> dict[str, Any] | None:
    """`<reports>/<day>/summary.json`, or None when it is missing or unreadable."""
    try:
        summary = json.loads((reports / day / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def new_violations(reports: Path, day: str) -> dict[str, int] | None:
    """`{rule: new}` from `<reports>/<day>/summary.json`, or None when the summary is missing/unreadable."""
    summary = day_summary(reports, day)
    violations = summary.get("violations") if summary else None
    if not isinstance(violations, dict):
        return None
    counts = {}
    for rule, figures in violations.items():
        new = figures.get("new") if isinstance(figures, dict) else None
        if isinstance(new, int) and not isinstance(new, bool):
            counts[str(rule)] = new
    return counts


def violations_alert(run: dg.DagsterRun, reports: Path) -> dict[str, Any] | None:
    """A `violations_found` alert for a successful run, or None when nothing new was found."""
    day = run.tags.get(PARTITION_TAG)
    if not day:
        return None
    counts = new_violations(reports, day)
    if not counts or not any(n > 0 for n in counts.values()):
        return None
    # an overdue erasure: the remediation lists (relative to the day's folder) that say what to delete
    files = overdue_paths(day_summary(reports, day) or {}) if counts.get(OVERDUE_RULE, 0) > 0 else []
    return notify.build_alert(
        notify.VIOLATIONS_FOUND,
        day=day,
        run_id=run.run_id,
        job=run.job_name,
        counts={rule: n for rule, n in counts.items() if n > 0},
        files=files,
    )


def incomplete_alert(run: dg.DagsterRun, reports: Path) -> dict[str, Any] | None:
    """A `no_data` alert when no event arrived for the run's day, a `data_incomplete` one when it had
    too few or a stale export, else None."""
    day = run.tags.get(PARTITION_TAG)
    summary = day_summary(reports, day) if day else None
    freshness = summary.get("freshness") if summary else None
    if not isinstance(freshness, dict):
        return None
    stale = _count(freshness.get("stale_exports"))
    status = freshness.get("status")
    if status not in (NO_DATA, INCOMPLETE) and not stale:
        return None
    quality = summary.get("quality") if isinstance(summary.get("quality"), dict) else {}
    return notify.build_alert(
        notify.NO_DATA if status == NO_DATA else notify.DATA_INCOMPLETE,
        day=day,
        run_id=run.run_id,
        job=run.job_name,
        counts={
            "events_received": _count(quality.get("received")),
            "events_usual": _count(freshness.get("usual_received")),
            "stale_exports": stale,
        },
    )


def alerts_for_run(
    instance: dg.DagsterInstance, run: dg.DagsterRun, notifier: notify.Notifier | None = None
) -> list[dict[str, Any]]:
    """Send the alerts a finished nightly run deserves (its failure; or new violations and an
    incomplete input) and return them."""
    if run.status == dg.DagsterRunStatus.FAILURE:
        alerts = [failure_alert(instance, run)]
    elif run.status == dg.DagsterRunStatus.SUCCESS:
        alerts = success_alerts(run)
    else:
        return []
    for alert in alerts:
        (notifier or notify.load_notifier()).send(alert)
    return alerts


def success_alerts(run: dg.DagsterRun) -> list[dict[str, Any]]:
    reports = config.load_settings().reports
    return [a for a in (violations_alert(run, reports), incomplete_alert(run, reports)) if a is not None]


@dg.run_failure_sensor(
    monitored_jobs=[nightly_job],
    default_status=DEFAULT_STATUS,
)
def run_failure_alert(context: dg.RunFailureSensorContext):
    """Alert (file/log, optional webhook) when a nightly run fails: day, run id, failed steps and checks."""
    alert = failure_alert(context.instance, context.dagster_run)
    notify.load_notifier().send(alert)
    context.log.info(alert["text"])


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[nightly_job],
    default_status=DEFAULT_STATUS,
)
def day_findings_alert(context: dg.RunStatusSensorContext):
    """Alert when a successful nightly run found new violations, or its day's input was incomplete."""
    alerts = success_alerts(context.dagster_run)
    if not alerts:
        return dg.SkipReason("no new violations and a complete input for this run's day")
    notifier = notify.load_notifier()
    for alert in alerts:
        notifier.send(alert)
        context.log.info(alert["text"])


SENSORS = [arrival_folder_sensor, run_failure_alert, day_findings_alert]
