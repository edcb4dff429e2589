"""Run the nightly Dagster job for a list of days, in order, on a persistent instance."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from pipelines.config import ConfigError, Settings
from pipelines.partitions import ENV_FIRST_DAY, ENV_LAST_DAY

PACKAGE_DIR = Path(__file__).resolve().parent
#: The CLI prints one progress line a day; Dagster's own event log stays in the instance (UI).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


class WarehouseBusy(Exception):
    """Another process holds the warehouse lock."""


@dataclass
class DayOutcome:
    day: date
    success: bool
    run_id: str | None
    seconds: float
    summary: dict | None = None
    failures: list[str] = field(default_factory=list)


def prepare_dagster_home() -> Path:
    """Use $DAGSTER_HOME (default ./.dagster_home) and give it our instance settings."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path.cwd() / ".dagster_home"))).resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        shutil.copyfile(PACKAGE_DIR / "dagster.yaml", target)
    return home


def validate_paths(settings: Settings) -> None:
    """Turn bad configuration into one clear line before anything runs."""
    if not settings.inbox.is_dir():
        raise ConfigError(f"inbox {settings.inbox} does not exist or is not a directory (COMPLIANCE_INBOX)")
    reports = settings.reports
    try:
        reports.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"reports folder {reports} cannot be created: {exc.strerror}") from None
    if not os.access(reports, os.W_OK | os.X_OK):
        raise ConfigError(f"reports folder {reports} is not writable (COMPLIANCE_REPORTS)")
    if settings.warehouse.exists() and not settings.warehouse.is_file():
        raise ConfigError(f"warehouse {settings.warehouse} is not a file (COMPLIANCE_WAREHOUSE)")


@contextmanager
def warehouse_lock(settings: Settings) -> Iterator[None]:
    """One CLI run at a time per warehouse; a second one fails fast with a clear message."""
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    path = settings.warehouse.with_name(settings.warehouse.name + ".lock")
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WarehouseBusy(
                f"another pipeline run holds the lock on {settings.warehouse}; try again when it ends"
            ) from None
        yield
    finally:
        fh.close()


def inbox_days(inbox: Path) -> list[date]:
    """Every arrival day and export day present in the inbox."""
    found: set[date] = set()
    events = inbox / "events"
    if events.is_dir():
        for p in events.iterdir():
            try:
                found.add(date.fromisoformat(p.name))
            except ValueError:
                continue
    snapshots = inbox / "snapshots"
    if snapshots.is_dir():
        for system in snapshots.iterdir():
            if system.is_dir():
                for p in system.glob("*.csv"):
                    try:
                        found.add(date.fromisoformat(p.stem))
                    except ValueError:
                        continue
    return sorted(found)


def processed_days(settings: Settings) -> set[date]:
    if not settings.warehouse.exists():
        return set()
    from pipelines.warehouse import connect

    with connect(settings.warehouse, settings.hash_key) as con:
        rows = con.execute("SELECT DISTINCT run_date FROM ops.runs").fetchall()
    return {r[0] for r in rows}


def nightly_plan(settings: Settings, target: date) -> list[date]:
    """The unprocessed days before `target` (from the first day we know of), in order, then `target`."""
    done = processed_days(settings)
    known = [d for d in inbox_days(settings.inbox) if d <= target] + [d for d in done if d <= target]
    if not known:
        return [target]
    days, day = [], min(known)
    while day < target:
        if day not in done:
            days.append(day)
        day += timedelta(days=1)
    return [*days, target]


def date_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _set_partition_window(days: list[date]) -> None:
    os.environ[ENV_FIRST_DAY] = min(days).isoformat()
    os.environ[ENV_LAST_DAY] = max(days).isoformat()


def run_days(
    settings: Settings, days: list[date], progress: Callable[[int, int, DayOutcome], None]
) -> list[DayOutcome]:
    """Run the nightly job for each day, in order. Later days run even if an earlier one failed."""
    _set_partition_window(days)
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.jobs import NIGHTLY_JOB_NAME

    job = defs.resolve_job_def(NIGHTLY_JOB_NAME)
    outcomes = []
    with dg.DagsterInstance.get() as instance:
        for i, day in enumerate(days, 1):
            started = time.monotonic()
            result = job.execute_in_process(
                partition_key=day.isoformat(),
                instance=instance,
                raise_on_error=False,
                tags={"trigger": "cli"},
                run_config=QUIET_RUN_CONFIG,
            )
            outcome = DayOutcome(day, result.success, result.run_id, time.monotonic() - started)
            outcome.failures = _failures(result)
            summary = settings.reports / day.isoformat() / "summary.json"
            if summary.exists():
                outcome.summary = json.loads(summary.read_text())
            outcomes.append(outcome)
            progress(i, len(days), outcome)
    return outcomes


def _failures(result) -> list[str]:
    """Names of failed ERROR checks and failed steps; never data values."""
    import dagster as dg

    failures = []
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            failures.append(f"check {evaluation.check_name} failed")
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            failures.append(f"step {event.step_key} failed")
    return failures
