"""Pseudonymise downstream system exports (CONTRACT 2.2): keep keyed hashes, never identifiers.

For day D each system contributes its latest export dated at or before D. Only that export's
keys are kept in landing.export_keys; every ingested file is logged in landing.export_files.

**Systems.** A system is any real directory (not a symlink) under ``<inbox>/snapshots/``, whatever
its name: spaces, quotes, commas, non-ASCII letters, a leading ``=``, ``*`` or ``key=value``, any
length (a name that is not UTF-8 keeps its bytes as ``\\xNN``). The name is data: every SQL
statement takes it as a parameter, DuckDB reads the file through its descriptor (never a path
it could glob or split into hive partitions), and logs and Dagster metadata show it through
`shown` (its keyed label unless it is machine-made), since a folder name may carry anything.

**Reading.** A file is RFC 4180 CSV: a quoted field may hold commas, doubled quotes and line breaks
(LF, CRLF or CR); a UTF-8 BOM is tolerated. The header (the first record) is read with Python's
csv module, so the true column names are known (DuckDB would rename a repeated ``email`` to
``email_1``, which a genuine ``email_1`` column could then be mistaken for). DuckDB then reads the
records with that many columns, serially (its parallel scanner cannot handle line breaks inside
quotes), without sniffing (a dialect guess could turn ``#`` rows into comments or fail on a ragged
row). Every column whose name, trimmed and lower-cased, is ``account_id`` or ``email`` counts.

**Unreadable files.** A file that is not UTF-8, has no header with ``account_id`` or ``email``,
has an odd number of quote characters (an unterminated quoted field would swallow the rest of the
file), or that DuckDB cannot parse is recorded in landing.export_files with readable = false and
a problem text that holds no value from the file; the system's keys are dropped (its state on D is
unknown: see the verifier) and the check ``exports_are_readable`` fails.

**landing.export_keys.** ``row_number`` is the data record's ordinal (1 = the first record after
the header; a line break inside a quoted field does not count; blank lines are not records). A
record usually gives one key row. A record whose repeated ``account_id`` / ``email`` columns hold
several distinct values gives one key row per value (the row_number repeats): the i-th distinct
account id (sorted) beside the i-th distinct e-mail (sorted); where the e-mails outnumber the ids,
the first id stands beside the extra e-mails, so a record with an account id is always matched by
it (``rules.py``). A record with no value keeps one row with both keys NULL. ``rows_total`` and
``rows_keyed`` count records (distinct row_number), not key rows.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from pipelines.safe_text import system_label
from pipelines.warehouse import transaction

log = logging.getLogger(__name__)

_EXPORT_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.csv$")
KEY_COLUMNS = ("account_id", "email")
#: A field may be up to this long (DuckDB's default, 2 MB, would make a long free-text note fail).
MAX_LINE_BYTES = 16 * 1024 * 1024
_READ_CHUNK = 1 << 20


def shown(system: str) -> str:
    """The system's name for logs and Dagster metadata: itself if machine-made, else its keyed
    label (``safe_text.system_label``), so that two hostile names stay apart."""
    return system_label(system)


@dataclass
class ExportIngest:
    system: str
    export_date: date | None
    source_file: str | None
    rows_total: int
    rows_keyed: int
    status: str  # 'ingested' | 'unchanged' | 'unreadable' | 'none'
    problem: str | None = None


def _system_name(entry: Path) -> str:
    """A folder's name as text: a name that is not UTF-8 (os.listdir's surrogate escapes) keeps its
    bytes as \\xNN, so it can be stored and shown."""
    return os.fsencode(entry.name).decode("utf-8", "backslashreplace")


def _system_folders(inbox: Path) -> dict[str, Path]:
    root = inbox / "snapshots"
    if root.is_symlink() or not root.is_dir():
        return {}
    folders: dict[str, Path] = {}
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            folders.setdefault(_system_name(entry), entry)
    return folders


def system_folder(inbox: Path, system: str) -> Path | None:
    """The real directory of a system (as named by `systems`), or None."""
    folder = inbox / "snapshots" / system
    if _system_name(folder) == system and folder.is_dir() and not folder.is_symlink():
        return folder
    return _system_folders(inbox).get(system)


def export_dates(inbox: Path, system: str) -> list[tuple[date, Path]]:
    folder = system_folder(inbox, system)
    found: list[tuple[date, Path]] = []
    if folder is None:
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
    """Every real directory under <inbox>/snapshots/, whatever its name (never skipped for it)."""
    return sorted(_system_folders(inbox))


def latest_export(inbox: Path, system: str, day: date) -> tuple[date, Path] | None:
    candidates = [(d, p) for d, p in export_dates(inbox, system) if d <= day]
    return candidates[-1] if candidates else None


class _Unreadable(Exception):
    """Why an export cannot be used: a fixed text, never a value from the file."""


def _header(path: Path) -> list[str]:
    """The true column names: the first CSV record, read with Python's csv module."""
    quotes = 0
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_READ_CHUNK):
                quotes += chunk.count(b'"')
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh, strict=True), None)
    except UnicodeDecodeError:
        raise _Unreadable("not UTF-8 text") from None
    except csv.Error:
        raise _Unreadable("header is not valid CSV") from None
    except OSError as exc:
        raise _Unreadable(f"file could not be opened: {type(exc).__name__}") from None
    if quotes % 2:
        raise _Unreadable("unbalanced quotes: a quoted field is not closed")
    if not header:
        raise _Unreadable("empty file: no header")
    return header


def _key_name(name: str) -> str:
    return name.strip().lstrip("\ufeff").strip().lower()


def _read_csv_sql(width: int) -> str:
    """read_csv of one export (path as parameter ?), `width` VARCHAR columns c0.., with ordinality."""
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width))
    return (
        f"read_csv(?, auto_detect = false, columns = {{{columns}}}, header = false, delim = ',', "
        "quote = '\"', escape = '\"', comment = '', skip = 0, strict_mode = false, null_padding = true, "
        "hive_partitioning = false, union_by_name = false, filename = false, compression = 'none', "
        f"parallel = false, max_line_size = {MAX_LINE_BYTES}, buffer_size = {2 * MAX_LINE_BYTES}) "
        "WITH ORDINALITY"
    )


def _duckdb_problem(exc: duckdb.Error) -> str:
    """A fixed, value-free text for DuckDB's error (its message quotes the offending line)."""
    if "unicode" in str(exc).lower() or "utf-8" in str(exc).lower():
        return "not UTF-8 text"
    return f"not a readable CSV: {type(exc).__name__}"


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
        with _duckdb_path(path) as where:
            return _load(con, system, export_date, path, where)
    except OSError as exc:  # gone, or replaced by a symlink, since it was listed
        return _unreadable(con, system, export_date, path, f"file could not be opened: {type(exc).__name__}")


@contextmanager
def _duckdb_path(path: Path) -> Iterator[str]:
    """The export opened here (never through a symlink), as a path DuckDB reads literally.

    DuckDB takes a path as a pattern: ``*``, ``?`` or ``[`` in a folder's name would glob,
    ``key=value`` would add a hive partition column, and a name that is not UTF-8 cannot be passed
    at all. The file's descriptor path (/proc/self/fd/N) has none of these.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        yield f"{_FD_DIR}/{fd}"
    finally:
        os.close(fd)


_FD_DIR = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"


def _load(con: duckdb.DuckDBPyConnection, system: str, export_date: date, path: Path, where: str) -> ExportIngest:
    """Read the export at `where` (DuckDB's path of `path`) into the system's keys."""
    try:
        header = _header(path)
    except _Unreadable as exc:
        return _unreadable(con, system, export_date, path, str(exc))
    names = [_key_name(h) for h in header]
    id_cols = [f"c{i}" for i, n in enumerate(names) if n == "account_id"]
    email_cols = [f"c{i}" for i, n in enumerate(names) if n == "email"]
    if not id_cols and not email_cols:
        return _unreadable(con, system, export_date, path, "header has neither account_id nor email")

    source = _read_csv_sql(len(header))
    try:
        first = con.execute(f"SELECT * EXCLUDE (ordinality) FROM {source} LIMIT 1", [where]).fetchall()
    except duckdb.Error as exc:
        return _unreadable(con, system, export_date, path, _duckdb_problem(exc))
    if not first or [v or "" for v in first[0]] != [h or "" for h in header]:
        return _unreadable(con, system, export_date, path, "header could not be read consistently")

    def one(cols: list[str], expr: str) -> str:
        return expr.format(cols[0]) if cols else "NULL::VARCHAR"

    def distinct(cols: list[str], expr: str) -> str:
        items = ", ".join(expr.format(c) for c in cols)
        return f"list_sort(list_distinct([{items}]::VARCHAR[]))"

    id_expr, email_expr = "nullif(trim({}), '')", "nullif(norm_email({}), '')"
    if len(id_cols) <= 1 and len(email_cols) <= 1:  # the usual header: one key row per record
        records = f"""
            SELECT ordinality - 1 AS row_number, {one(id_cols, id_expr)} AS account_id,
                   {one(email_cols, email_expr)} AS email
            FROM {source}
            WHERE ordinality > 1"""
    else:  # repeated key columns: one key row per distinct value (see the module's docstring)
        records = f"""
            WITH records AS (
                SELECT ordinality - 1 AS row_number, {distinct(id_cols, id_expr)} AS ids,
                       {distinct(email_cols, email_expr)} AS emails
                FROM {source}
                WHERE ordinality > 1
            )
            SELECT row_number, coalesce(ids[i], ids[1]) AS account_id, emails[i] AS email
            FROM (SELECT *, unnest(range(1, greatest(len(ids), len(emails), 1) + 1)) AS i FROM records)"""
    try:
        with transaction(con):
            con.execute(f"CREATE OR REPLACE TEMP TABLE _export AS {records}", [where])
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
                """SELECT count(DISTINCT row_number),
                          count(DISTINCT row_number) FILTER (WHERE account_id IS NOT NULL OR email IS NOT NULL)
                   FROM _export"""
            ).fetchall()[0]
            con.execute("DELETE FROM landing.export_files WHERE system = ? AND export_date = ?", [system, export_date])
            con.execute(
                "INSERT INTO landing.export_files VALUES (?, ?, ?, ?, ?, true, NULL, now())",
                [system, export_date, path.name, total, keyed],
            )
    except duckdb.Error as exc:  # rolled back
        return _unreadable(con, system, export_date, path, _duckdb_problem(exc))
    finally:
        con.execute("DROP TABLE IF EXISTS _export")
    return ExportIngest(system, export_date, path.name, total, keyed, "ingested")


def _unreadable(con, system: str, export_date: date, path: Path, problem: str) -> ExportIngest:
    log.warning("Export %s/%s could not be used: %s", shown(system), path.name, problem)
    con.execute("DELETE FROM landing.export_files WHERE system = ? AND export_date = ?", [system, export_date])
    con.execute(
        "INSERT INTO landing.export_files VALUES (?, ?, ?, 0, 0, false, ?, now())",
        [system, export_date, path.name, problem],
    )
    # The system's state at D is unknown: keep no keys that would pretend otherwise.
    con.execute("DELETE FROM landing.export_keys WHERE system = ?", [system])
    return ExportIngest(system, export_date, path.name, 0, 0, "unreadable", problem)


#: Each system's latest export dated at or before $day (the one the day uses), readable or not.
LATEST_EXPORTS_SQL = """
SELECT system, export_date, readable, problem FROM landing.export_files
WHERE export_date <= $day
QUALIFY row_number() OVER (PARTITION BY system ORDER BY export_date DESC) = 1
"""
#: The systems whose latest export dated at or before $day could not be read: state unknown on $day.
UNREADABLE_LATEST_SQL = f"SELECT system, export_date, problem FROM ({LATEST_EXPORTS_SQL}) WHERE NOT readable"


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
            log.info("Export folder for system %s is gone; its last export stays loaded", shown(system))
    return results
