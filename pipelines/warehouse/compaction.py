"""Crash-safe byte-level compaction: copy the warehouse into a fresh file, then swap it in.

DuckDB keeps deleted strings in free blocks, even after CHECKPOINT and VACUUM; only a copy into a
new file drops them (byte-level erasure, assets/compaction/compaction.py).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)


#: DuckDB's memory limit while the compaction copies the warehouse. The copy streams table by
#: table; at the connection's limit (2GB) DuckDB's buffer pool fills with the blocks it has copied,
#: which makes the weekly compaction night a backfill worker's peak. 1GB halves the copy's peak at
#: the same speed; 512MB is slower (figures in docs/scaling.md).
COMPACTION_MEMORY_LIMIT = "1GB"


def compaction_path(database: Path) -> Path:
    return database.with_name(database.name + ".compact")


def wal_path(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


def _stage(name: str) -> None:
    # Read on the package (`pipelines.warehouse.compaction_hook`), where tests set it.
    from pipelines import warehouse

    hook = warehouse.compaction_hook
    if hook is not None:
        hook(name)


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


def fsync_path(path: Path) -> None:
    """Make a file's content, or a folder's entries (a rename in it), durable."""
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


def compact(database: Path) -> dict[str, int]:
    """Rewrite a database file (the warehouse, or its identity vault) into a fresh file so deleted
    values leave no bytes behind.

    DuckDB keeps deleted strings in free blocks, even after CHECKPOINT and VACUUM; only a
    copy into a new file drops them. Crash safety: the copy is complete, checked (same tables,
    same row counts) and fsynced before the atomic rename; a kill before the rename leaves the
    original untouched (see `recover`), a kill after it leaves the complete copy.
    No connection to `database` may be open.
    """
    from pipelines.warehouse.connection import apply_connection_settings, memory_limit_at_most

    wal = wal_path(database)
    before = database.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    # 1. Fold the WAL into the file so the copy sees everything and no stale WAL survives. The file
    # is opened alone: the warehouse's views name the vault, which no statement here binds.
    con = duckdb.connect(str(database))
    try:
        con.execute("CHECKPOINT")
    finally:
        con.close()
    if wal.exists():
        if wal.stat().st_size > 0:
            raise RuntimeError(f"the WAL of {database.name} was not folded in by CHECKPOINT; compaction aborted")
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
                raise RuntimeError(f"the compacted copy differs from {database.name}; compaction aborted")
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
    fsync_path(target)
    _stage("synced")
    # 3. Atomic swap, then make the rename itself durable.
    os.replace(target, database)
    _stage("replaced")
    fsync_path(database.parent)
    return {"bytes_before": before, "bytes_after": database.stat().st_size}
