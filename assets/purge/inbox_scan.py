"""The keys found in each retained inbox event folder (``ops.inbox_keys``), for the redaction of the
inbox (``inbox_redaction.py``) and the verifier (``assets/erasure/verifier.py``).

Each folder's userIds, e-mail-like tokens, words and JSON strings are hashed and cached by the
folder's file manifest, as the keys' bytes; never a token.
"""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from assets.landing.inbox_files import inbox_folders, visible
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


def folder_manifest(files: list[tuple[str, Path]]) -> str:
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


def scan_inbox(con: duckdb.DuckDBPyConnection, inbox: Path, day: date) -> int:
    """Refresh ops.inbox_keys for the folders under <inbox>/events/ as of `day`; returns folders read.

    A folder is read again only when its manifest (names, sizes, mtimes, and the scan's
    tokenisation) changed. The keys of its tokens are stored (``_INBOX_KEYS_SQL``), never the
    tokens. Arrival folders dated after `day` are left for their own run, so a backfill sees what
    each night saw.
    """
    install_scan_macros(con)
    folders = {f: files for f, files in inbox_folders(inbox).items() if visible(f, day)}
    cached = dict(con.execute("SELECT folder, manifest FROM ops.inbox_scans").fetchall())
    gone = [f for f in cached if f not in folders]
    if gone:
        con.execute("DELETE FROM ops.inbox_keys WHERE folder IN (SELECT unnest(?::VARCHAR[]))", [gone])
        con.execute("DELETE FROM ops.inbox_scans WHERE folder IN (SELECT unnest(?::VARCHAR[]))", [gone])
    scanned = 0
    for folder, files in sorted(folders.items()):
        manifest = folder_manifest(files)
        if cached.get(folder) == manifest:
            continue
        con.execute("CREATE OR REPLACE TEMP TABLE _inbox_tokens (n BIGINT, kind VARCHAR, tok VARCHAR)")
        first = 0
        for _, path in files:
            # One row per line (split exactly as string_split(content, chr(10)) would), so that
            # DuckDB spreads the tokenising over every core instead of one row holding the file;
            # `n` numbers the folder's lines, so that each key's lines can be counted.
            text = _read_text(path).split("\n")
            lines = pa.table(
                {
                    "n": pa.array(range(first, first + len(text)), pa.int64()),
                    "line": pa.array(text, type=pa.large_string()),
                }
            )
            first += len(text)
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
    """TEMP _inbox_tokens(n, kind, tok) of the lines in _inbox_lines: the userIds ('account_id'), the
    e-mail-like tokens ('email') and the other tokens of the line ('word': its words and JSON
    strings), wherever they stand, valid JSON or not. One regular expression a pass over the lines:
    building each line's token list (``erasure_pieces``) costs three times as much."""
    con.execute(
        f"""
        INSERT INTO _inbox_tokens
        WITH lines AS (SELECT n, line FROM _inbox_lines),
        user_ids AS (
            SELECT n, unnest(regexp_extract_all(line, {sql_literal(USER_ID_RE)}, 1)) AS raw
            FROM lines WHERE contains(line, '"userId"')
        ), emails AS (
            SELECT n, unnest(regexp_extract_all(line, {sql_literal(EMAIL_TOKEN_RE)})) AS tok
            FROM lines WHERE contains(line, '@')
        ), strings AS (
            SELECT n, unnest(regexp_extract_all(line, {sql_literal(JSON_STRING_RE)}, 1)) AS raw FROM lines
        ), words AS (
            SELECT n, unnest(regexp_extract_all(line, {sql_literal(WORD_RE)})) AS tok FROM lines
            UNION ALL
            SELECT n, unnest(regexp_extract_all(line, {sql_literal(RUN_RE)})) FROM lines
        )
        SELECT DISTINCT n, kind, tok FROM (
            SELECT n, 'account_id' AS kind, erasure_unescape(raw) AS tok FROM user_ids
            UNION ALL
            SELECT n, 'email', tok FROM emails
            UNION ALL
            SELECT n, CASE WHEN contains(tok, '@') THEN 'email' ELSE 'word' END, tok
            FROM (SELECT DISTINCT n, erasure_unescape(raw) AS tok FROM strings
                  UNION SELECT n, tok FROM words)
        )
        WHERE erasure_candidate(tok)
        """
    )


#: The keys of a folder's tokens kept in ops.inbox_keys, with the number of the folder's lines that
#: hold each. A word is kept as an account id only when it is the subject_key of a subject the
#: warehouse knows (an account id can only become a target once its subject's deletion is
#: ingested): every word of every line would be millions of keys a folder, nearly all of them
#: message ids, timestamps and free text.
_INBOX_KEYS_SQL = """
    WITH hashed AS (  -- each distinct token hashed once
        SELECT kind, tok, CASE kind WHEN 'email' THEN hmac_email(tok) ELSE hmac_subject(tok) END AS key
        FROM (SELECT DISTINCT kind, tok FROM _inbox_tokens)
    ), known AS (
        SELECT subject_key FROM keyed.events UNION SELECT subject_key FROM keyed.rejected
    ), kept AS (
        SELECT kind, tok, key FROM hashed WHERE kind <> 'word' OR key IN (SELECT subject_key FROM known)
    )
    SELECT $folder, CASE k.kind WHEN 'word' THEN 'account_id' ELSE k.kind END AS kind, unhex(k.key),
           count(DISTINCT t.n)
    FROM kept k JOIN _inbox_tokens t USING (kind, tok)
    GROUP BY ALL
"""
