"""Byte-level erasure: copy a database file that a purge changed into a fresh file.

DuckDB keeps deleted and overwritten strings in the free blocks of its file, so a purge is only
complete once the database has been copied into a new file (``pipelines.warehouse.compact``).
A purge records ``ops.compaction_due`` for the file it changed: the identity vault (``vault``) on
every night with an erasure, the warehouse (``warehouse``) only when an erased identifier was found
in the history's free text. The request stays until a compaction succeeds, so a night whose
compaction was interrupted is caught up by the next one.

A copy costs what its file holds: the vault is small, so the night of an erasure costs about what
a night without one costs. A compaction runs on the night its oldest request is `delay_days` old
(0, the default: the night of the purge, as CONTRACT 5 asks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pipelines.resources import Warehouse
from pipelines.warehouse import transaction


@dataclass
class CompactionResult:
    database: str
    compacted: bool
    requests: int
    pending_since: date | None = None
    bytes_before: int | None = None
    bytes_after: int | None = None


#: The database files a purge can change, in the order they are compacted.
DATABASES = ("vault", "warehouse")


def compact_if_due(warehouse: Warehouse, day: date, delay_days: int = 0) -> list[CompactionResult]:
    """Compact each file whose oldest purge request is `delay_days` old; no connection is open during a copy."""
    with warehouse.get_connection() as con:
        due = {
            database: (n, oldest)
            for database, n, oldest in con.execute(
                "SELECT database, count(*), min(run_date) FROM ops.compaction_due GROUP BY database"
            ).fetchall()
        }
    results = []
    for database in DATABASES:
        requests, oldest = due.get(database, (0, None))
        if not requests or oldest > day - timedelta(days=delay_days):
            results.append(CompactionResult(database, False, requests, oldest))
            continue
        stats = warehouse.compact(database)
        with warehouse.get_connection() as con:
            # one transaction: a run killed in between must neither lose the log row nor the request
            with transaction(con):
                con.execute("DELETE FROM ops.compaction_due WHERE database = ?", [database])
                con.execute(
                    "INSERT INTO ops.compactions (run_date, bytes_before, bytes_after, compacted_at, database) "
                    "VALUES (?, ?, ?, now(), ?)",
                    [day, stats["bytes_before"], stats["bytes_after"], database],
                )
        results.append(CompactionResult(database, True, requests, oldest, stats["bytes_before"], stats["bytes_after"]))
    return results
