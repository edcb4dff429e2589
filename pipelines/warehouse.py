"""The DuckDB warehouse: schema, connections and crash-safe byte-level compaction.

One process writes the warehouse at a time (DuckDB allows one read-write process per file):
the CLI holds a lock file and every Dagster asset runs in the `warehouse` pool.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipelines import config
from pipelines.config import ConfigError
from pipelines.keys import install_key_macros

log = logging.getLogger(__name__)

TIMEZONE = "Europe/Prague"

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS landing;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS compliance;
CREATE SCHEMA IF NOT EXISTS reports;
CREATE SCHEMA IF NOT EXISTS ops;

-- Accepted events, one row per messageId (the idempotency key).
CREATE TABLE IF NOT EXISTS landing.events (
    message_id          VARCHAR NOT NULL,
    event               VARCHAR NOT NULL,
    account_id          VARCHAR,              -- NULL once the subject is erased
    subject_key         VARCHAR NOT NULL,
    occurred_at         TIMESTAMPTZ NOT NULL,
    channel             VARCHAR NOT NULL,
    agent_id            VARCHAR,
    properties          JSON,                 -- personal properties removed once erased
    consent_granted     BOOLEAN,              -- the consent value of a consent event, else NULL
    email_key           VARCHAR,              -- email_key of properties.email, where present
    previous_email_key  VARCHAR,              -- email_key of properties.previous_email
    source_file         VARCHAR NOT NULL,
    line_number         BIGINT NOT NULL,
    arrival_date        DATE NOT NULL
);

-- Lines that broke a rule of CONTRACT 2.1, kept with their reason.
CREATE TABLE IF NOT EXISTS landing.rejected (
    source_file   VARCHAR NOT NULL,
    line_number   BIGINT NOT NULL,
    reason        VARCHAR NOT NULL,
    raw_line      VARCHAR,                    -- NULL once it held an erased identifier
    arrival_date  DATE NOT NULL,
    account_id    VARCHAR,                    -- the line's userId, where one could be read
    subject_key   VARCHAR,
    message_id    VARCHAR,
    purged        BOOLEAN NOT NULL DEFAULT false
);

-- One row per ingested event file: the reconciliation received = accepted + duplicates + rejected.
CREATE TABLE IF NOT EXISTS landing.files (
    arrival_date  DATE NOT NULL,
    source_file   VARCHAR NOT NULL,
    bytes         BIGINT,
    received      BIGINT NOT NULL,
    accepted      BIGINT NOT NULL,
    duplicates    BIGINT NOT NULL,
    rejected      BIGINT NOT NULL,
    readable      BOOLEAN NOT NULL,
    ingested_at   TIMESTAMPTZ NOT NULL,
    problem       VARCHAR                     -- why an unreadable file could not be read
);

-- Downstream exports, pseudonymised: keys only, never a plain identifier.
CREATE TABLE IF NOT EXISTS landing.export_files (
    system        VARCHAR NOT NULL,
    export_date   DATE NOT NULL,
    source_file   VARCHAR NOT NULL,
    rows_total    BIGINT NOT NULL,
    rows_keyed    BIGINT NOT NULL,
    readable      BOOLEAN NOT NULL,
    problem       VARCHAR,
    ingested_at   TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS landing.export_keys (
    system        VARCHAR NOT NULL,
    export_date   DATE NOT NULL,
    row_number    BIGINT NOT NULL,
    subject_key   VARCHAR,                    -- key of account_id, where the row has one
    email_key     VARCHAR                     -- key of lower(trim(email)), where the row has one
);

-- The core tables are rebuilt each night (CREATE OR REPLACE ... AS) by assets/core with these columns.
CREATE TABLE IF NOT EXISTS core.accounts (
    account_id             VARCHAR,
    subject_key            VARCHAR NOT NULL,
    created_at             TIMESTAMPTZ,          -- first Account Created
    status                 VARCHAR NOT NULL,     -- 'active' | 'deletion_requested'
    email_key              VARCHAR,              -- key of the current e-mail
    deletion_requested_at  TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS core.consent_history (
    account_id      VARCHAR,
    subject_key     VARCHAR NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    granted         BOOLEAN NOT NULL,
    source          VARCHAR,
    notice_version  VARCHAR,
    message_id      VARCHAR NOT NULL,
    event           VARCHAR,                  -- the consent event (grant, withdraw or Segment)
    channel         VARCHAR,
    consent_seq     BIGINT,                   -- order within the subject's history
    arrival_date    DATE,
    source_file     VARCHAR,
    line_number     BIGINT
);
CREATE TABLE IF NOT EXISTS core.club_membership (
    account_id    VARCHAR,
    subject_key   VARCHAR NOT NULL,
    valid_from    TIMESTAMPTZ NOT NULL,
    valid_to      TIMESTAMPTZ,                -- NULL while open
    end_reason    VARCHAR,                    -- 'consent_withdrawn' | 'account_deleted' | NULL
    opened_by_message_id  VARCHAR,
    closed_by_message_id  VARCHAR
);

CREATE TABLE IF NOT EXISTS compliance.violations (
    rule          VARCHAR NOT NULL,
    severity      VARCHAR NOT NULL,
    subject_key   VARCHAR NOT NULL,
    account_id    VARCHAR,                    -- NULL once erased
    occurred_at   TIMESTAMPTZ,
    detected_on   DATE NOT NULL,
    message_id    VARCHAR,                    -- evidence; NULL for export-based rules
    system        VARCHAR,                    -- NULL for event-based rules
    details       VARCHAR
);

-- The tombstone: keys, dates and the verification result. Never a plain identifier.
CREATE TABLE IF NOT EXISTS compliance.erasure_register (
    subject_key         VARCHAR NOT NULL,
    deleted_at          TIMESTAMPTZ NOT NULL,
    due_date            DATE NOT NULL,
    status              VARCHAR NOT NULL,
    residual_locations  VARCHAR,
    verified_on         DATE,
    erased_on           DATE NOT NULL,        -- the run that first saw the deletion
    checked_on          DATE NOT NULL
);
CREATE TABLE IF NOT EXISTS compliance.erased_identifiers (
    subject_key   VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,           -- 'account_id' | 'email'
    key           VARCHAR NOT NULL            -- subject_key or email_key
);

-- Pipeline bookkeeping.
CREATE TABLE IF NOT EXISTS ops.ingested_days (
    arrival_date  DATE NOT NULL,
    manifest      VARCHAR NOT NULL,
    files         BIGINT NOT NULL,
    ingested_at   TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.runs (
    run_date        DATE NOT NULL,
    dagster_run_id  VARCHAR,
    status          VARCHAR NOT NULL,
    finished_at     TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.retention_log (
    run_date      DATE NOT NULL,
    kind          VARCHAR NOT NULL,           -- 'events' | 'snapshot'
    path          VARCHAR NOT NULL,           -- relative to the inbox
    deleted_at    TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.check_results (
    run_date        DATE NOT NULL,
    check_name      VARCHAR NOT NULL,
    asset           VARCHAR NOT NULL,
    severity        VARCHAR NOT NULL,         -- 'ERROR' | 'WARN'
    passed          BOOLEAN NOT NULL,
    evaluated       BIGINT NOT NULL,          -- expectations (or SQL assertions) evaluated
    failed          BIGINT NOT NULL,
    description     VARCHAR,
    details         VARCHAR,
    dagster_run_id  VARCHAR
);
"""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


#: Warehouse lock files this process holds, by resolved database path. The CLI holds the lock
#: around its in-process runs, whose Warehouse resource must not take it a second time.
held_locks: dict[Path, object] = {}

#: How long a Dagster run waits for another run (e.g. the CLI) to release the warehouse.
RUN_LOCK_TIMEOUT_SECONDS = 6 * 3600


def acquire_run_lock(database: Path, log: logging.Logger | None = None, timeout: float = RUN_LOCK_TIMEOUT_SECONDS):
    """Hold the warehouse lock for a whole Dagster run (UI, schedule, sensor, backfill): a run that
    starts while another holds it (a CLI run, or a run on another instance) waits for it.

    Returns the open lock file (close it to release), or None when this process already holds the
    lock (the CLI). Waiting happens before the run's first step claims its pool slot.
    """
    if database.resolve() in held_locks:
        return None
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")  # noqa: SIM115 (held for the whole run)
    started = time.monotonic()
    waiting = False
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if waiting and log is not None:
                log.info("Got the warehouse lock after %.0f s", time.monotonic() - started)
            return fh
        except BlockingIOError:
            if time.monotonic() - started > timeout:
                fh.close()
                raise TimeoutError(
                    f"another pipeline run held the lock on {database} for over {timeout:.0f} s"
                ) from None
            if not waiting and log is not None:
                log.warning("Waiting for the warehouse lock: another pipeline run (e.g. the CLI) is using %s", database)
            waiting = True
            time.sleep(1)


#: DuckDB's memory limit on every warehouse connection, from COMPLIANCE_DUCKDB_MEMORY_LIMIT (a DuckDB
#: size such as "2GB", or "" for DuckDB's own default of 80 % of RAM). Past it, DuckDB evicts cached
#: blocks and spills joins and sorts to a temporary directory next to the warehouse, so the
#: process's peak memory stays bounded as history grows (bench/results.md, docs/scaling.md T2).
#: The rest of a nightly process (Python, Dagster, GX, pandas frames) takes 0.8-0.9 GB. A lower
#: default (1536MB) lowers a 3M night's peak, but a 3M backfill then runs out of memory in the
#: violations step, so the default is 2GB (docs/scaling.md).
#: The variable is validated with the other settings (pipelines.config.parse_memory_limit: a size
#: from 64MiB to 16TiB), so that a bad value stops the CLI at start rather than a step.
ENV_MEMORY_LIMIT = config.ENV_MEMORY_LIMIT
DEFAULT_MEMORY_LIMIT = config.DEFAULT_MEMORY_LIMIT


def apply_connection_settings(con: duckdb.DuckDBPyConnection) -> None:
    """Settings of every connection the pipeline opens: the memory limit, and no progress bars
    (backfill workers printed them into the run's output and logs)."""
    con.execute("SET enable_progress_bar = false")
    limit = _configured_memory_limit()
    if limit:
        try:
            _set_memory_limit(con, limit)
        except duckdb.Error as exc:
            raise ConfigError(f"{ENV_MEMORY_LIMIT}={limit!r} is not a DuckDB memory size: {exc}") from None


def _configured_memory_limit() -> str:
    """COMPLIANCE_DUCKDB_MEMORY_LIMIT, or the default; "" leaves DuckDB's own. ConfigError if invalid."""
    return config.configured_memory_limit(os.environ)


def _set_memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> None:
    """SET memory_limit to a DuckDB size ("2GB"), or back to DuckDB's default for ""."""
    con.execute(f"SET memory_limit = '{limit.replace(chr(39), '')}'" if limit else "RESET memory_limit")


#: Bytes per unit of the memory limit as DuckDB prints it ("953.6 MiB", "1.8 GiB").
_PRINTED_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}


def _memory_limit(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]


def _printed_bytes(printed: str) -> float | None:
    number, _, unit = printed.partition(" ")
    try:
        return float(number) * _PRINTED_UNITS[unit]
    except (ValueError, KeyError):
        return None


def _restore_memory_limit(con: duckdb.DuckDBPyConnection, before: str) -> None:
    """Put the limit back: the configured value when that is what it was, else `before` as DuckDB
    printed it (truncated to 0.1 of a unit: the printed value would not give back 2GB exactly)."""
    try:
        _set_memory_limit(con, _configured_memory_limit())
    except (duckdb.Error, ConfigError):
        pass  # not a valid size: the connection cannot have been opened with it
    if _memory_limit(con) != before:
        _set_memory_limit(con, before)


def _lower_memory_limit(con: duckdb.DuckDBPyConnection, limit: str, before: str) -> bool:
    """SET the smaller limit; False (with a warning) when DuckDB cannot evict enough to get under it
    (no room left for its temporary files, say): the block then runs with the memory it had."""
    try:
        _set_memory_limit(con, limit)
    except duckdb.Error as exc:
        log.warning("DuckDB's memory limit stays at %s, not %s: %s", before, limit, str(exc).splitlines()[0])
        return False
    return True


@contextmanager
def memory_limit_at_most(con: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """Run the block with DuckDB's memory limit lowered to `limit` (a DuckDB size) if it is higher,
    then put it back.

    For one large join or aggregate: DuckDB partitions and spills those when they do not fit, and
    evicts (spills) TEMP tables to make room, so a smaller budget costs little time and keeps the
    process's peak down (``assets/erasure/scan.py``). If DuckDB cannot get under it, the block runs
    with the limit it had, and a warning says so."""
    before = _memory_limit(con)
    if not _lower_memory_limit(con, limit, before):
        yield
        return
    lowered, was = _printed_bytes(_memory_limit(con)), _printed_bytes(before)
    if lowered is None or was is None or was <= lowered:
        _restore_memory_limit(con, before)  # it was that low already (or unreadable): leave it
        yield
        return
    try:
        yield
    finally:
        _restore_memory_limit(con, before)


#: DuckDB's memory limit while the compaction copies the warehouse. The copy streams table by
#: table; at the connection's limit (2GB) DuckDB's buffer pool fills with the blocks it has copied,
#: which makes the weekly compaction night a backfill worker's peak. 1GB halves the copy's peak at
#: the same speed; 512MB is slower (figures in docs/scaling.md).
COMPACTION_MEMORY_LIMIT = "1GB"


def compaction_path(database: Path) -> Path:
    return database.with_name(database.name + ".compact")


def wal_path(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


#: Test hook: called with the name of each compaction stage as it is reached ("checkpointed",
#: "copying", "copied", "synced", "replaced"). Tests kill the process there; production leaves it None.
compaction_hook: Callable[[str], None] | None = None


def _stage(name: str) -> None:
    if compaction_hook is not None:
        compaction_hook(name)


def recover(database: Path) -> None:
    """Finish or undo an interrupted compaction. Safe to call at any time with no connection open.

    Compaction writes a complete copy to `<db>.compact` and then renames it over `<db>`
    (atomic on POSIX). A `.compact` file that is still there was never renamed, so it may be an
    incomplete copy: the original is intact and the copy is discarded. After the rename there is
    nothing to undo: the original's WAL was folded in and removed before the copy began.
    """
    stale = compaction_path(database)
    for leftover in (stale, wal_path(stale)):
        if leftover.exists():
            log.warning("Discarding an interrupted compaction copy: %s", leftover.name)
            leftover.unlink()


def open_connection(database: Path, hash_key: str, *, read_only: bool = False):
    """Open the warehouse with Prague time, the key macros and the schema in place."""
    if database.exists() and database.is_dir():
        raise ConfigError(f"warehouse {database} is a directory, not a DuckDB database file")
    if not read_only:
        database.parent.mkdir(parents=True, exist_ok=True)
        recover(database)
    try:
        con = duckdb.connect(str(database), read_only=read_only)
    except duckdb.IOException as exc:
        message = str(exc).splitlines()[0]
        if "lock" in message.lower():
            raise ConfigError(f"warehouse {database} is in use by another process") from None
        raise ConfigError(f"warehouse {database} is not a usable DuckDB database: {message}") from None
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
        raise ConfigError(f"warehouse {database} is not a usable DuckDB database: {message}") from None
    try:
        con.execute(f"SET TimeZone = '{TIMEZONE}'")
        apply_connection_settings(con)
        install_key_macros(con, hash_key)
        if not read_only:
            con.execute(SCHEMA_SQL)
    except Exception:
        con.close()
        raise
    return con


@contextmanager
def connect(database: Path, hash_key: str, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = open_connection(database, hash_key, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _row_counts(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[tuple[str, str], int]:
    tables = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? AND NOT temporary",
        [catalog],
    ).fetchall()
    counts = {}
    for schema, table in tables:
        name = ".".join('"' + part.replace('"', '""') + '"' for part in (catalog, schema, table))
        counts[(schema, table)] = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
    return counts


def compact(database: Path, hash_key: str) -> dict[str, int]:
    """Rewrite the warehouse into a fresh file so deleted values leave no bytes behind.

    DuckDB keeps deleted strings in free blocks, even after CHECKPOINT and VACUUM; only a
    copy into a new file drops them. Crash safety: the copy is complete, checked (same tables,
    same row counts) and fsynced before the atomic rename; a kill before the rename leaves the
    original untouched (see `recover`), a kill after it leaves the complete copy.
    No connection to `database` may be open.
    """
    wal = wal_path(database)
    before = database.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    # 1. Fold the WAL into the file so the copy sees everything and no stale WAL survives.
    with connect(database, hash_key) as con:
        con.execute("CHECKPOINT")
    if wal.exists():
        if wal.stat().st_size > 0:
            raise RuntimeError("the warehouse WAL was not folded in by CHECKPOINT; compaction aborted")
        wal.unlink()
    _stage("checkpointed")
    target = compaction_path(database)
    recover(database)
    # 2. Copy every schema, table, view, sequence and macro into a brand-new file, and check it.
    con = duckdb.connect()
    apply_connection_settings(con)
    try:
        with memory_limit_at_most(con, COMPACTION_MEMORY_LIMIT):
            con.execute("ATTACH ? AS src (READ_ONLY)", [str(database)])
            con.execute("ATTACH ? AS dst", [str(target)])
            _stage("copying")
            con.execute("COPY FROM DATABASE src TO dst")
            con.execute("CHECKPOINT dst")
            if _row_counts(con, "src") != _row_counts(con, "dst"):
                raise RuntimeError("the compacted copy differs from the warehouse; compaction aborted")
            con.execute("DETACH dst")
            con.execute("DETACH src")
    except BaseException:
        con.close()
        recover(database)
        raise
    con.close()
    _stage("copied")
    target_wal = wal_path(target)
    if target_wal.exists():
        if target_wal.stat().st_size > 0:
            recover(database)
            raise RuntimeError("the compacted copy kept a WAL after CHECKPOINT; compaction aborted")
        target_wal.unlink()
    _fsync_path(target)
    _stage("synced")
    # 3. Atomic swap, then make the rename itself durable.
    os.replace(target, database)
    _stage("replaced")
    _fsync_path(database.parent)
    return {"bytes_before": before, "bytes_after": database.stat().st_size}
