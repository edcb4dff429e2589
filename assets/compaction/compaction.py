"""Byte-level erasure: compact the warehouse into a fresh file after purges.

DuckDB keeps deleted and overwritten strings in the free blocks of its file, so a purge is only
complete once the database has been copied into a new file (``pipelines.warehouse.compact``).
A purge records ``ops.compaction_due``; the request stays until a compaction succeeds, so a night
whose compaction was interrupted is caught up by the next one.

The copy costs time in proportion to the whole warehouse, so purges are batched: the compaction
runs on the night the oldest outstanding purge is `delay_days` old (0: the night of the purge).
The tables are clean from the night of the purge; the file's free blocks within `delay_days`
nights, well inside the one-month erasure SLA.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pipelines.resources import Warehouse


@dataclass
class CompactionResult:
    compacted: bool
    requests: int
    pending_since: date | None = None
    bytes_before: int | None = None
    bytes_after: int | None = None


def compact_if_due(warehouse: Warehouse, day: date, delay_days: int = 0) -> CompactionResult:
    """Compact when the oldest purge request is `delay_days` old; no connection is open during the copy."""
    with warehouse.get_connection() as con:
        requests, oldest = con.execute("SELECT count(*), min(run_date) FROM ops.compaction_due").fetchall()[0]
    if not requests or oldest > day - timedelta(days=delay_days):
        return CompactionResult(False, requests, oldest)
    stats = warehouse.compact()
    with warehouse.get_connection() as con:
        # one transaction: a run killed in between must neither lose the log row nor the request
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM ops.compaction_due")
        con.execute(
            "INSERT INTO ops.compactions VALUES (?, ?, ?, now())", [day, stats["bytes_before"], stats["bytes_after"]]
        )
        con.execute("COMMIT")
    return CompactionResult(True, requests, oldest, stats["bytes_before"], stats["bytes_after"])
