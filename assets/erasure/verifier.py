"""The verifier: residual data of erased subjects, statuses and due dates (CONTRACT 5).

Residual data is any identifier of an erased subject (its account id, or an e-mail it ever had
that no live account holds now) found in:

* ``warehouse``: any text column of any warehouse table (the generic scan, ``scan.py``);
* ``inbox``: a retained event file under ``<inbox>/events/``, anywhere in a line (its userIds,
  e-mail-like tokens, words and JSON strings, hashed and cached per folder by its file manifest
  in ``ops.inbox_keys``, as the keys' bytes);
* ``<system>``: the latest export of that system dated at or before D (``landing.export_keys``),
  matched by subject_key and by email_key; or that export could not be read, so the system's
  state is unknown and it is named for every erased subject (`add_unreadable_exports`).

``residual_locations`` joins the locations with ``,``; a system's name is encoded so that any name
survives (``locations.py``).

Status on D: ``verified`` (nothing left), ``pending`` (residual, D <= due_date) or ``overdue``
(residual, D > due_date). ``compliance.erasure_register`` holds one row per erased subject.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from assets.erasure.locations import encode_system_sql
from assets.landing.exports import UNREADABLE_LATEST_SQL
from assets.purge.scan import scan_warehouse
from assets.purge.state import DUE_DATE_SQL, load_state
from assets.purge.tokens import (
    EMAIL_TOKEN_RE,
    JSON_STRING_RE,
    RUN_RE,
    SCAN_VERSION,
    USER_ID_RE,
    WORD_RE,
    install_scan_macros,
    sql_literal,
)

STATUSES = ("verified", "pending", "overdue")


@dataclass
class RegisterResult:
    erased_total: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    by_location: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Retained inbox files
# ---------------------------------------------------------------------------------------------


def _inbox_folders(inbox: Path) -> dict[str, list[tuple[str, Path]]]:
    """Every regular file under <inbox>/events/, grouped by its first folder. Symlinks are skipped."""
    root = inbox / "events"
    folders: dict[str, list[tuple[str, Path]]] = {}
    if root.is_symlink() or not root.is_dir():
        return folders
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(current, d)))
        for name in sorted(files):
            path = Path(current) / name
            if path.is_symlink() or not path.is_file():
                continue
            # a name that is not UTF-8 (os.walk's surrogate escapes) is kept with its bytes as \xNN
            relative = Path(os.fsencode(path.relative_to(root)).decode("utf-8", "backslashreplace"))
            folder = relative.parts[0] if len(relative.parts) > 1 else "."
            folders.setdefault(folder, []).append((relative.as_posix(), path))
    return folders


def _manifest(files: list[tuple[str, Path]]) -> str:
    entries = []
    for relative, path in files:
        try:
            st = path.stat()
            entries.append([relative, st.st_size, st.st_mtime_ns])
        except OSError:
            entries.append([relative, None, None])
    return json.dumps([SCAN_VERSION, entries])


def _read_text(path: Path) -> str:
    """The file as text, whatever it holds: gzip is opened when it can be, bad UTF-8 is replaced."""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            pass
    return data.decode("utf-8", errors="replace")


def _visible(folder: str, day: date) -> bool:
    """Arrival folders after D do not exist yet for the run of D; other folders always count."""
    try:
        return date.fromisoformat(folder) <= day
    except ValueError:
        return True


def scan_inbox(con: duckdb.DuckDBPyConnection, inbox: Path, day: date) -> int:
    """Refresh ops.inbox_keys for the folders under <inbox>/events/ as of `day`; returns folders read.

    A folder is read again only when its manifest (names, sizes, mtimes, and the scan's
    tokenisation) changed. The keys of its tokens are stored (``_INBOX_KEYS_SQL``), never the
    tokens. Arrival folders dated after `day` are left for their own run, so a backfill sees what
    each night saw.
    """
    install_scan_macros(con)
    folders = {f: files for f, files in _inbox_folders(inbox).items() if _visible(f, day)}
    cached = dict(con.execute("SELECT folder, manifest FROM ops.inbox_scans").fetchall())
    gone = [f for f in cached if f not in folders]
    if gone:
        con.execute("DELETE FROM ops.inbox_keys WHERE folder IN (SELECT unnest(?::VARCHAR[]))", [gone])
        con.execute("DELETE FROM ops.inbox_scans WHERE folder IN (SELECT unnest(?::VARCHAR[]))", [gone])
    scanned = 0
    for folder, files in sorted(folders.items()):
        manifest = _manifest(files)
        if cached.get(folder) == manifest:
            continue
        con.execute("CREATE OR REPLACE TEMP TABLE _inbox_tokens (kind VARCHAR, tok VARCHAR)")
        for _, path in files:
            # One row per line (split exactly as string_split(content, chr(10)) would), so that
            # DuckDB spreads the tokenising over every core instead of one row holding the file.
            lines = pa.table({"line": pa.array(_read_text(path).split("\n"), type=pa.large_string())})
            con.register("_inbox_lines", lines)
            try:
                _tokens_of_file(con)
            finally:
                con.unregister("_inbox_lines")
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM ops.inbox_keys WHERE folder = ?", [folder])
            con.execute("DELETE FROM ops.inbox_scans WHERE folder = ?", [folder])
            con.execute(f"INSERT INTO ops.inbox_keys {_INBOX_KEYS_SQL}", {"folder": folder})
            con.execute("INSERT INTO ops.inbox_scans VALUES (?, ?, now())", [folder, manifest])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        finally:
            con.execute("DROP TABLE IF EXISTS _inbox_tokens")
        scanned += 1
    return scanned


def _tokens_of_file(con: duckdb.DuckDBPyConnection) -> None:
    """TEMP _inbox_tokens(kind, tok) of the lines in _inbox_lines: the userIds ('account_id'), the
    e-mail-like tokens ('email') and the other tokens of the line ('word': its words and JSON
    strings), wherever they stand, valid JSON or not. One regular expression a pass over the lines:
    building each line's token list (``erasure_pieces``) costs three times as much."""
    con.execute(
        f"""
        INSERT INTO _inbox_tokens
        WITH lines AS (SELECT line FROM _inbox_lines),
        user_ids AS (
            SELECT unnest(regexp_extract_all(line, {sql_literal(USER_ID_RE)}, 1)) AS raw
            FROM lines WHERE contains(line, '"userId"')
        ), emails AS (
            SELECT unnest(regexp_extract_all(line, {sql_literal(EMAIL_TOKEN_RE)})) AS tok
            FROM lines WHERE contains(line, '@')
        ), strings AS (
            SELECT unnest(regexp_extract_all(line, {sql_literal(JSON_STRING_RE)}, 1)) AS raw FROM lines
        ), words AS (
            SELECT unnest(regexp_extract_all(line, {sql_literal(WORD_RE)})) AS tok FROM lines
            UNION ALL
            SELECT unnest(regexp_extract_all(line, {sql_literal(RUN_RE)})) FROM lines
        )
        SELECT DISTINCT kind, tok FROM (
            SELECT 'account_id' AS kind, erasure_unescape(raw) AS tok FROM user_ids
            UNION ALL
            SELECT 'email', tok FROM emails
            UNION ALL
            SELECT CASE WHEN contains(tok, '@') THEN 'email' ELSE 'word' END, tok
            FROM (SELECT DISTINCT erasure_unescape(raw) AS tok FROM strings
                  UNION SELECT tok FROM words)
        )
        WHERE erasure_candidate(tok)
        """
    )


#: The keys of a folder's tokens kept in ops.inbox_keys. A word is kept as an account id only when
#: it is the subject_key of a subject the warehouse knows (an account id can only become a target
#: once its subject's deletion is ingested): every word of every line would be millions of keys a
#: folder, nearly all of them message ids, timestamps and free text.
_INBOX_KEYS_SQL = """
    WITH keyed AS (
        SELECT DISTINCT kind, CASE kind WHEN 'email' THEN hmac_email(tok) ELSE hmac_subject(tok) END AS key
        FROM (SELECT DISTINCT kind, tok FROM _inbox_tokens)
    ), known AS (
        SELECT subject_key FROM landing.events UNION SELECT subject_key FROM landing.rejected
    )
    SELECT DISTINCT $folder, CASE kind WHEN 'word' THEN 'account_id' ELSE kind END, unhex(key) FROM keyed
    WHERE kind <> 'word' OR key IN (SELECT subject_key FROM known)
"""


# ---------------------------------------------------------------------------------------------
# The register
# ---------------------------------------------------------------------------------------------


def find_residuals(con: duckdb.DuckDBPyConnection, inbox: Path, day: date) -> None:
    """TEMP _residuals(subject_key, location) for the subjects in _erased: the pipeline's own copies
    against _targets, the exports of `day` against _export_targets (``state.py``)."""
    scan_inbox(con, inbox, day)
    scan_warehouse(con)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _residuals AS
        SELECT DISTINCT subject_key, 'warehouse' AS location FROM _warehouse_hits
        UNION
        SELECT t.subject_key, 'inbox' FROM ops.inbox_keys k JOIN _targets t ON t.kind = k.kind AND unhex(t.key) = k.key
        UNION
        SELECT t.subject_key, {system} FROM landing.export_keys x
        JOIN _export_targets t ON t.kind = 'account_id' AND t.key = x.subject_key
        UNION
        SELECT t.subject_key, {system} FROM landing.export_keys x
        JOIN _export_targets t ON t.kind = 'email' AND t.key = x.email_key
        """.format(system=encode_system_sql("x.system"))
    )
    add_unreadable_exports(con, day)


def add_unreadable_exports(con: duckdb.DuckDBPyConnection, day: date) -> None:
    """Every erased subject not yet verified gets, in _residuals, each system whose latest export
    dated at or before `day` could not be read (landing.export_files.readable = false).

    That system's state on `day` is unknown: its keys were dropped, so it cannot show the subject
    is gone. A compliance officer must not read `verified` where a system was never looked at, so
    the system is named in residual_locations like a residual: the status is `pending` up to the
    due date and `overdue` after it (erasure_overdue then says the state is unknown, see
    rules.py). It becomes `verified` once the system delivers a readable export without the
    subject. A subject verified before (``verified_on``) keeps that proof: an unreadable export
    proves nothing either way, and naming it would raise a critical violation for every subject
    ever erased. The unreadable file is named in the report and fails ``exports_are_readable``.
    """
    con.execute(
        f"""
        INSERT INTO _residuals
        SELECT DISTINCT e.subject_key, {encode_system_sql("u.system")}
        FROM _erased e CROSS JOIN ({UNREADABLE_LATEST_SQL}) u
        WHERE e.subject_key NOT IN (SELECT subject_key FROM compliance.erasure_register
                                    WHERE verified_on <= $day)
        EXCEPT SELECT subject_key, location FROM _residuals
        """,
        {"day": day},
    )


def build_register(con: duckdb.DuckDBPyConnection, day: date, inbox: Path) -> RegisterResult:
    """Rewrite compliance.erasure_register as of the end of `day` (after the day's retention)."""
    result = RegisterResult()
    result.erased_total = load_state(con, day, record=True)
    find_residuals(con, inbox, day)
    due = DUE_DATE_SQL.format(ts="e.deleted_at")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _register AS
        WITH locations AS (
            SELECT subject_key, array_to_string(list_sort(list(DISTINCT location)), ',') AS residual_locations
            FROM _residuals GROUP BY subject_key
        )
        SELECT e.subject_key, e.deleted_at, {due} AS due_date,
               CASE WHEN l.subject_key IS NULL THEN 'verified'
                    WHEN $day <= {due} THEN 'pending'
                    ELSE 'overdue' END AS status,
               l.residual_locations,
               CASE WHEN r.verified_on <= $day THEN r.verified_on       -- first date verified, kept
                    WHEN l.subject_key IS NULL THEN $day END AS verified_on,
               e.erased_on,
               $day AS checked_on
        FROM _erased e
        LEFT JOIN locations l USING (subject_key)
        LEFT JOIN compliance.erasure_register r USING (subject_key)
        """,
        {"day": day},
    )
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM compliance.erasure_register")
        con.execute(
            """INSERT INTO compliance.erasure_register
                   (subject_key, deleted_at, due_date, status, residual_locations, verified_on, erased_on, checked_on)
               SELECT subject_key, deleted_at, due_date, status, residual_locations, verified_on, erased_on, checked_on
               FROM _register ORDER BY deleted_at, subject_key"""
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    for status, n in con.execute("SELECT status, count(*) FROM _register GROUP BY status").fetchall():
        result.by_status[status] = n
    result.by_location = dict(
        con.execute(
            "SELECT location, count(DISTINCT subject_key) FROM _residuals GROUP BY location ORDER BY location"
        ).fetchall()
    )
    return result
