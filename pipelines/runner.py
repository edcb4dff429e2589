"""Run the nightly Dagster job for a list of days, in order, on a persistent instance: the checks
before a CLI run, which days to run, and the worker processes that run several days (one day's
run itself: ``day_run.py``)."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from pipelines.config import ENV_FIRST_DAY, ConfigError, Settings, WarehouseBusy
from pipelines.console import quiet_console
from pipelines.day_run import DayOutcome, alert_cli_run, open_instance, release_abandoned_runs, run_day

#: Tag of every CLI run: the warehouse it writes (the CLI holds that warehouse's lock while it runs).
WAREHOUSE_TAG = "compliance/warehouse"


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
    try:
        settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"warehouse folder {settings.warehouse.parent} cannot be created: {exc.strerror} (COMPLIANCE_WAREHOUSE)"
        ) from None


def check_warehouse(settings: Settings) -> None:
    """Open an existing warehouse once (under the run lock) so that a file that is not a DuckDB
    database is one clear configuration error, and a database another process (e.g. a run started
    from the Dagster UI) holds open is WarehouseBusy, before any day runs."""
    if not settings.warehouse.exists():
        return  # created on first use
    import duckdb

    try:
        duckdb.connect(str(settings.warehouse)).close()
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, duckdb.IOException) and "lock" in message.lower():
            raise WarehouseBusy(
                f"another process holds the warehouse {settings.warehouse} open; try again when it ends"
            ) from None
        raise ConfigError(
            f"warehouse {settings.warehouse} is not a usable DuckDB database: {message} (COMPLIANCE_WAREHOUSE)"
        ) from None


@contextmanager
def warehouse_lock(settings: Settings) -> Iterator[None]:
    """One CLI run at a time per warehouse; a second one fails fast with WarehouseBusy
    (`pipelines.warehouse.lock.cli_lock`). The CLI's own in-process runs are covered by it."""
    from pipelines.warehouse.lock import cli_lock

    with cli_lock(settings.warehouse):
        yield


def processed_days(settings: Settings) -> set[date]:
    if not settings.warehouse.exists():
        return set()
    from pipelines.warehouse import connect

    with connect(settings.warehouse, settings.hash_key) as con:
        rows = con.execute("SELECT DISTINCT run_date FROM ops.runs").fetchall()
    return {r[0] for r in rows}


def nightly_plan(settings: Settings, target: date) -> list[date]:
    """The unprocessed days before `target` (from the first day we know of), in order, then `target`."""
    from pipelines.partitions import inbox_days

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


def check_window(days: list[date]) -> None:
    """Every day must be a partition of the Definitions this process runs: refuse, in one line, a
    day that has not ended yet or one before the first partition day (COMPLIANCE_FIRST_DAY)."""
    from pipelines.clock import last_complete_day
    from pipelines.partitions import nightly_partitions

    last = last_complete_day()
    if max(days) > last:
        raise ConfigError(f"{max(days)} has not ended yet in Europe/Prague: the last day that can run is {last}")
    first = date.fromisoformat(nightly_partitions.get_first_partition_key())
    if min(days) < first:
        raise ConfigError(
            f"{min(days)} is before the first partition day {first} (the first day in the inbox or the "
            f"reports, or {ENV_FIRST_DAY}); set {ENV_FIRST_DAY}={min(days)} to run it"
        )


#: A run of several days (a backfill, a catch-up) runs them in a worker process that is replaced
#: after this many days. One process running every day of a long backfill keeps growing (at 1M
#: accounts, to several times the peak of any single night). A fresh worker costs its imports
#: (Dagster, the definitions, Great Expectations), a few seconds.
DAYS_PER_WORKER = 7
#: ... or sooner: a worker whose day peaked above this (MB) is replaced before the next day. A
#: worker's day peaks climb with its age (a fresh worker's first day peaks lower, even with one
#: more day of history), so a worker near the memory budget is not given another day. Small
#: deployments, whose days peak far below it, keep their workers for DAYS_PER_WORKER days and pay
#: no extra start-ups.
RECYCLE_AFTER_PEAK_MB = 2048


def run_days(
    settings: Settings, days: list[date], progress: Callable[[int, int, DayOutcome], None]
) -> list[DayOutcome]:
    """Run the nightly job for each day, in order. Later days run even if an earlier one failed.

    One day runs in this process; several days run one at a time in a worker process that is
    replaced every DAYS_PER_WORKER days, or after a day that peaked above RECYCLE_AFTER_PEAK_MB,
    so a long backfill's memory stays that of a few nights.
    """
    tags = {"trigger": "cli", WAREHOUSE_TAG: str(settings.warehouse.resolve())}
    with open_instance() as instance:
        release_abandoned_runs(instance, tags)
        if len(days) == 1:
            outcome = run_day(instance, settings, days[0], tags)
            progress(1, 1, outcome)
            alert_cli_run(instance, outcome.run_id)  # after the day's line
            return [outcome]
        return _run_days_in_workers(instance, settings, days, tags, progress)


def _run_days_in_workers(
    instance, settings: Settings, days: list[date], tags: dict[str, str], progress
) -> list[DayOutcome]:
    """Each day in the worker, its progress line and then its alerts here, in that order."""
    outcomes: list[DayOutcome] = []
    pool = _worker_pool(settings)
    try:
        for i, day in enumerate(days, 1):
            try:
                future = pool.submit(_run_day_in_worker, settings, day, tags)
            except BrokenProcessPool:  # the worker died between two days: this day has not started
                pool = _replace(pool, settings)
                future = pool.submit(_run_day_in_worker, settings, day, tags)
            try:
                outcome = future.result()
            except BrokenProcessPool:
                # killed (the OOM killer, say) with the day under way: the day failed, its run is
                # released, and the next days run in a new worker
                outcome = DayOutcome(day, False, None, 0.0, failures=[WORKER_DIED])
                pool = _replace(pool, settings)
                release_abandoned_runs(instance, tags)
            outcomes.append(outcome)
            progress(i, len(days), outcome)
            if outcome.run_id is not None:
                alert_cli_run(instance, outcome.run_id)
            if i < len(days) and (outcome.peak_rss_mb or 0) > RECYCLE_AFTER_PEAK_MB:
                pool = _replace(pool, settings)  # a large day: the next one starts in a fresh worker
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return outcomes


WORKER_DIED = "the worker process died before finishing this day"


def _replace(pool: ProcessPoolExecutor, settings: Settings) -> ProcessPoolExecutor:
    pool.shutdown(wait=True, cancel_futures=True)
    return _worker_pool(settings)


def _worker_pool(settings: Settings) -> ProcessPoolExecutor:
    """One worker process, started fresh ('spawn': no state of this process), replaced every
    DAYS_PER_WORKER days. When this process holds the warehouse lock (the CLI), the worker runs
    under it: its runs must not wait for the lock their own CLI holds."""
    from pipelines.warehouse import held_locks

    warehouse = settings.warehouse.resolve()
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        max_tasks_per_child=DAYS_PER_WORKER,
        initializer=_init_worker,
        initargs=(str(warehouse) if warehouse in held_locks else None,),
    )


_worker_instance = None


def _init_worker(locked_warehouse: str | None) -> None:
    """In the worker: die with the CLI process (a killed CLI must not leave a writer behind, its
    lock released), run under the CLI's warehouse lock when it holds one, and log as quietly as
    the CLI does."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the CLI died before the line above ran
            os._exit(1)
    if locked_warehouse is not None:
        from pipelines.warehouse import held_locks

        held_locks[Path(locked_warehouse)] = "held by the CLI process that started this worker"
    quiet_console()


def _run_day_in_worker(settings: Settings, day: date, tags: dict[str, str]) -> DayOutcome:
    global _worker_instance
    if _worker_instance is None:
        _worker_instance = open_instance()
    return run_day(_worker_instance, settings, day, tags)
