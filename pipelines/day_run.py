"""One day's nightly job run in this process: its outcome, the process's peak RSS while it ran, the
names of what failed, its alerts, and the Dagster instance it runs on."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import date

from pipelines.config import ConfigError, Settings
from pipelines.safe_text import redact

#: The CLI prints one progress line a day; Dagster's own event log stays in the instance (UI).
#: Not even ERROR goes to the console: a step failure's message may quote data values (an
#: e-mail in a DuckDB conversion error, say); the CLI prints a redacted one-line cause instead.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class DayOutcome:
    day: date
    success: bool
    run_id: str | None
    seconds: float
    summary: dict | None = None
    failures: list[str] = field(default_factory=list)
    pid: int = 0  # the process that ran the day (this one, or a worker)
    #: Peak resident set of that process while the day ran (MB); None where it cannot be measured.
    peak_rss_mb: float | None = None


def resident_mb() -> float | None:
    """This process's resident set now (MB), from /proc/self/statm; None where that cannot be read."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class PeakRss:
    """The peak resident set of this process while a block runs (MB), sampled every `interval` s by
    a daemon thread reading /proc/self/statm (Linux; `peak_mb` stays None elsewhere).

    Sampled, not the kernel's high-water mark: resetting that (/proc/self/clear_refs) would also
    reset the process's ru_maxrss, which `time -v`, the benchmark and any supervisor read. A
    spike shorter than the interval can be missed; DuckDB's large steps last seconds."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)

    def _sample(self) -> None:
        while True:
            rss = resident_mb()
            if rss is None:
                return
            self.peak_mb = rss if self.peak_mb is None else max(self.peak_mb, rss)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        last = resident_mb()  # the block's end, whatever the last sample missed
        if last is not None and self.peak_mb is not None:
            self.peak_mb = max(self.peak_mb, last)


def run_day(instance, settings: Settings, day: date, tags: dict[str, str]) -> DayOutcome:
    from pipelines.definitions import defs
    from pipelines.jobs import NIGHTLY_JOB_NAME

    started = time.monotonic()
    with PeakRss() as memory:
        result = defs.resolve_job_def(NIGHTLY_JOB_NAME).execute_in_process(
            partition_key=day.isoformat(),
            instance=instance,
            raise_on_error=False,
            tags=tags,
            run_config=QUIET_RUN_CONFIG,
        )
    outcome = DayOutcome(day, result.success, result.run_id, time.monotonic() - started, pid=os.getpid())
    outcome.peak_rss_mb = memory.peak_mb
    outcome.failures = _failures(result)
    summary = settings.reports / day.isoformat() / "summary.json"
    if summary.exists():
        outcome.summary = json.loads(summary.read_text())
    return outcome


def alert_cli_run(instance, run_id: str) -> None:
    """CLI runs are in-process, so the run-status sensors never see them: send their alerts here."""
    from pipelines.sensors import alerts_for_run

    run = instance.get_run_by_id(run_id)
    if run is not None:
        alerts_for_run(instance, run)


def open_instance():
    """The Dagster instance of $DAGSTER_HOME; a dagster.yaml it cannot use is a configuration error."""
    import dagster as dg

    try:
        return dg.DagsterInstance.get()
    except Exception as exc:  # not YAML, or not a valid instance configuration
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ConfigError(
            f"DAGSTER_HOME {os.environ.get('DAGSTER_HOME')}: dagster.yaml is not a usable instance configuration: "
            f"{type(exc).__name__}: {first}"
        ) from None


def release_abandoned_runs(instance, tags: dict[str, str]) -> list[str]:
    """Fail the earlier CLI runs of this warehouse that never ended, and free their pool slots.

    A CLI run executes in-process: when its process is killed (SIGKILL, OOM, power loss) the run stays
    STARTED in the instance and keeps its slot in pool `warehouse` (limit 1), so every later run
    would wait for that slot forever. This is called under the warehouse lock, which a live CLI run
    of the same warehouse would hold: any such run still in progress belongs to a dead process.
    """
    import dagster as dg

    in_progress = [
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING,
    ]
    released = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=in_progress, tags=tags)):
        run = record.dagster_run
        instance.report_run_failed(
            run, message="The CLI process running this run ended without finishing it (killed or crashed)."
        )
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def _failures(result) -> list[str]:
    """Names of failed ERROR checks and failed steps; never data values."""
    import dagster as dg

    failures = []
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            failures.append(f"check {evaluation.check_name} failed")
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            cause = _root_cause(getattr(event.event_specific_data, "error", None))
            failures.append(f"step {event.step_key} failed" + (f" ({cause})" if cause else ""))
    return failures


def _root_cause(error) -> str:
    """`ExceptionClass: first line` of the innermost cause of a step failure, with values removed."""
    if error is None:
        return ""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    lines = (error.message or "").strip().splitlines()
    first = lines[0] if lines else ""
    if error.cls_name and error.cls_name not in first:
        first = f"{error.cls_name}: {first}"
    return redact(first)
