"""Byte-level erasure: compact the warehouse into a fresh file after any purge.

DuckDB keeps deleted and overwritten strings in the free blocks of its file, so a purge is only
complete once the database has been copied into a new file (``pipelines.warehouse.compact``).
A purge records ``ops.compaction_due``; the request stays until a compaction succeeds, so a night
whose compaction was interrupted is caught up by the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from assets.erasure.state import ensure_tables
from pipelines.resources import Warehouse


@dataclass
class CompactionResult:
    compacted: bool
    requests: int
    bytes_before: int | None = None
    bytes_after: int | None = None


def compact_if_due(warehouse: Warehouse, day: date) -> CompactionResult:
    """Compact when a purge asked for it; no connection is open while the file is copied."""
    with warehouse.get_connection() as con:
        ensure_tables(con)
        requests = con.execute("SELECT count(*) FROM ops.compaction_due").fetchall()[0][0]
    if not requests:
        return CompactionResult(False, 0)
    stats = warehouse.compact()
    with warehouse.get_connection() as con:
        # one transaction: a run killed in between must neither lose the log row nor the request
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM ops.compaction_due")
        con.execute(
            "INSERT INTO ops.compactions VALUES (?, ?, ?, now())", [day, stats["bytes_before"], stats["bytes_after"]]
        )
        con.execute("COMMIT")
    return CompactionResult(True, requests, stats["bytes_before"], stats["bytes_after"])
