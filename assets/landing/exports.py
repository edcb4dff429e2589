"""Pseudonymise downstream system exports (CONTRACT 2.2): keep keyed hashes, never identifiers.

For day D each system contributes its latest export dated at or before D. Only that export's
keys are kept in landing.export_keys; every ingested file is logged in landing.export_files.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

_EXPORT_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.csv$")
_SYSTEM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass
class ExportIngest:
    system: str
    export_date: date | None
    source_file: str | None
    rows_total: int
    rows_keyed: int
    status: str  # 'ingested' | 'unchanged' | 'unreadable' | 'none'
    problem: str | None = None


def export_dates(inbox: Path, system: str) -> list[tuple[date, Path]]:
    folder = inbox / "snapshots" / system
    found: list[tuple[date, Path]] = []
    if folder.is_symlink() or not folder.is_dir():
        return found
    for path in folder.iterdir():
        m = _EXPORT_NAME.match(path.name)
        # A symlink is listed (it is an export of that date) but never followed: see ingest_export.
        if not m or not (path.is_symlink() or path.is_file()):
            continue
        try:
            found.append((date.fromisoformat(m.group(1)), path))
        except ValueError:
            continue
    return sorted(found)


def systems(inbox: Path) -> list[str]:
    root = inbox / "snapshots"
    if root.is_symlink() or not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink() and _SYSTEM_NAME.match(p.name))


def latest_export(inbox: Path, system: str, day: date) -> tuple[date, Path] | None:
    candidates = [(d, p) for d, p in export_dates(inbox, system) if d <= day]
    return candidates[-1] if candidates else None


def _columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    rel = con.sql(
        "SELECT * FROM read_csv(?, header = true, all_varchar = true, delim = ',', quote = '\"', "
        "escape = '\"', strict_mode = false, null_padding = true) LIMIT 0",
        params=[str(path)],
    )
    return list(rel.columns)


def ingest_export(con: duckdb.DuckDBPyConnection, system: str, export_date: date, path: Path) -> ExportIngest:
    """Replace the system's keys with those of this export file."""
    loaded = con.execute(
        """SELECT rows_total, rows_keyed, epoch_us(ingested_at) FROM landing.export_files
           WHERE system = ? AND export_date = ? AND readable""",
        [system, export_date],
    ).fetchall()
    current = con.execute("SELECT DISTINCT export_date FROM landing.export_keys WHERE system = ?", [system]).fetchall()
    # A file re-delivered (rewritten) after it was loaded is loaded again.
    unchanged_since_loaded = bool(loaded) and path.lstat().st_mtime_ns // 1000 <= loaded[0][2]
    if unchanged_since_loaded and current == [(export_date,)]:
        return ExportIngest(system, export_date, path.name, loaded[0][0], loaded[0][1], "unchanged")

    if path.is_symlink():
        return _unreadable(con, system, export_date, path, "symlink not followed")
    try:
        columns = _columns(con, path)
    except duckdb.Error as exc:
        return _unreadable(con, system, export_date, path, f"not a readable CSV: {type(exc).__name__}")
    by_name = {c.strip().lower(): c for c in columns}
    id_col, email_col = by_name.get("account_id"), by_name.get("email")
    if id_col is None and email_col is None:
        return _unreadable(con, system, export_date, path, "header has neither account_id nor email")

    def quoted(col: str | None) -> str:
        return "NULL" if col is None else '"' + col.replace('"', '""') + '"'

    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _export AS
            SELECT row_number() OVER () AS row_number,
                   nullif(trim({quoted(id_col)}), '') AS account_id,
                   nullif(norm_email({quoted(email_col)}), '') AS email
            FROM read_csv(?, header = true, all_varchar = true, delim = ',', quote = '"',
                          escape = '"', strict_mode = false, null_padding = true)
            """,
            [str(path)],
        )
        con.execute("DELETE FROM landing.export_keys WHERE system = ?", [system])
        con.execute(
            """
            INSERT INTO landing.export_keys
            WITH ids AS (SELECT account_id, hmac_subject(account_id) AS k
                         FROM (SELECT DISTINCT account_id FROM _export WHERE account_id IS NOT NULL)),
                 emails AS (SELECT email, hmac_subject(email) AS k
                            FROM (SELECT DISTINCT email FROM _export WHERE email IS NOT NULL))
            SELECT ?, ?::DATE, e.row_number, ids.k, emails.k
            FROM _export e
            LEFT JOIN ids USING (account_id)
            LEFT JOIN emails USING (email)
            """,
            [system, export_date],
        )
        total, keyed = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE account_id IS NOT NULL OR email IS NOT NULL) FROM _export"
        ).fetchall()[0]
        con.execute("DELETE FROM landing.export_files WHERE system = ? AND export_date = ?", [system, export_date])
        con.execute(
            "INSERT INTO landing.export_files VALUES (?, ?, ?, ?, ?, true, NULL, now())",
            [system, export_date, path.name, total, keyed],
        )
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        return _unreadable(con, system, export_date, path, f"not a readable CSV: {type(exc).__name__}")
    finally:
        con.execute("DROP TABLE IF EXISTS _export")
    return ExportIngest(system, export_date, path.name, total, keyed, "ingested")


def _unreadable(con, system: str, export_date: date, path: Path, problem: str) -> ExportIngest:
    log.warning("Export %s/%s could not be used: %s", system, path.name, problem)
    con.execute("DELETE FROM landing.export_files WHERE system = ? AND export_date = ?", [system, export_date])
    con.execute(
        "INSERT INTO landing.export_files VALUES (?, ?, ?, 0, 0, false, ?, now())",
        [system, export_date, path.name, problem],
    )
    # The system's state at D is unknown: keep no keys that would pretend otherwise.
    con.execute("DELETE FROM landing.export_keys WHERE system = ?", [system])
    return ExportIngest(system, export_date, path.name, 0, 0, "unreadable", problem)


def ingest_exports(con: duckdb.DuckDBPyConnection, inbox: Path, day: date) -> list[ExportIngest]:
    """Load, for every system, its latest export dated at or before `day`."""
    results = []
    seen = set()
    for system in systems(inbox):
        seen.add(system)
        latest = latest_export(inbox, system, day)
        if latest is None:
            con.execute("DELETE FROM landing.export_keys WHERE system = ?", [system])
            results.append(ExportIngest(system, None, None, 0, 0, "none"))
            continue
        results.append(ingest_export(con, system, *latest))
    # A system whose folder disappeared (or was emptied by retention) keeps its last keys only
    # while they are still the latest state we know; otherwise its state is unknown.
    for (system,) in con.execute("SELECT DISTINCT system FROM landing.export_keys").fetchall():
        if system not in seen:
            log.info("Export folder for system %s is gone; its last export stays loaded", system)
    return results
