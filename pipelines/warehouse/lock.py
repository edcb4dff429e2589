"""The warehouse lock: one pipeline run writes a warehouse at a time.

A lock file next to the database (`<db>.lock`), held with an exclusive `flock` through `filelock`.
Two ways to take it, one lock:

* `cli_lock`: a CLI run (nightly, backfill) holds it around all its days; when another run holds
  it, the CLI fails fast with `WarehouseBusy` (exit code 3).
* `acquire_run_lock`: a Dagster run (UI, schedule, sensor, backfill) holds it for the whole run,
  from its Warehouse resource, and waits while another run holds it.

The CLI's own in-process runs (and its worker processes) are covered by the CLI's lock: while this
process holds the lock of a warehouse, it is listed in `held_locks` and `acquire_run_lock` returns
None instead of waiting for itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from pipelines.config import ConfigError, WarehouseBusy


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


#: Warehouse locks this process holds, by resolved database path. The CLI holds the lock around its
#: in-process runs, whose Warehouse resource must not take it a second time; its worker processes
#: record the CLI's lock here too (`pipelines.runner`).
held_locks: dict[Path, object] = {}

#: How long a Dagster run waits for another run (e.g. the CLI) to release the warehouse.
RUN_LOCK_TIMEOUT_SECONDS = 6 * 3600


def _file_lock(database: Path) -> FileLock:
    """The lock of `database`. Not thread-local: a Dagster resource may be torn down on another
    thread than the one that set it up. The lock file stays in place on release."""
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path, thread_local=False, preserve_lock_file=True)


def acquire_run_lock(database: Path, log: logging.Logger | None = None, timeout: float = RUN_LOCK_TIMEOUT_SECONDS):
    """Hold the warehouse lock for a whole Dagster run: a run that starts while another holds it
    (a CLI run, or a run on another instance) waits for it, at most `timeout` seconds
    (TimeoutError after that).

    Returns the held lock (call `release()` to release it), or None when this process already holds
    the lock (the CLI). Waiting happens before the run's first step claims its pool slot.
    """
    if database.resolve() in held_locks:
        return None
    lock = _file_lock(database)
    try:
        lock.acquire(blocking=False)
        return lock
    except Timeout:
        pass
    if log is not None:
        log.warning("Waiting for the warehouse lock: another pipeline run (e.g. the CLI) is using %s", database)
    started = time.monotonic()
    try:
        lock.acquire(timeout=timeout, poll_interval=1)
    except Timeout:
        raise TimeoutError(f"another pipeline run held the lock on {database} for over {timeout:.0f} s") from None
    if log is not None:
        log.info("Got the warehouse lock after %.0f s", time.monotonic() - started)
    return lock


@contextmanager
def cli_lock(database: Path) -> Iterator[None]:
    """One CLI run at a time per warehouse; a second one fails fast with WarehouseBusy. Dagster runs
    take the same lock for their whole run and wait for it (`acquire_run_lock`)."""
    path = lock_path(database)
    try:
        lock = _file_lock(database)
        lock.acquire(blocking=False)
    except Timeout:
        raise WarehouseBusy(f"another pipeline run holds the lock on {database}; try again when it ends") from None
    except OSError as exc:
        raise ConfigError(f"lock file {path} cannot be created: {exc.strerror}") from None
    held_locks[database.resolve()] = lock
    try:
        yield
    finally:
        held_locks.pop(database.resolve(), None)
        lock.release()
