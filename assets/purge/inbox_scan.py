"""The keys found in each retained inbox event folder (``ops.inbox_keys``), for the redaction of the
inbox (``inbox_redaction.py``) and the verifier (``assets/erasure/verifier.py``).

Each folder's userIds, e-mail-like tokens, words and JSON strings are hashed and cached by the
folder's file manifest, as the keys' bytes; never a token. A rewrite of a file by the redaction
updates its folder's keys and manifest by the lines it changed (``cache_rewrite``), in the
transaction that records the rewrite, so a redacted folder is never read whole again.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from assets.landing.inbox_files import arrival_day, inbox_folders, visible
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
from pipelines.warehouse import transaction

#: Part of every folder manifest: change it when what the scan keeps of a folder changes.
INBOX_SCAN_VERSION = f"{SCAN_VERSION}:inbox-lines-v1"


def folder_manifest(files: list[tuple[str, Path]]) -> str:
    entries = []
    for relative, path in files:
        try:
            st = path.stat()
            entries.append([relative, st.st_size, st.st_mtime_ns])
        except OSError:
            entries.append([relative, None, None])
    return json.dumps([INBOX_SCAN_VERSION, entries])


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
    """Refresh ops.inbox_keys and ops.inbox_lines for the folders under <inbox>/events/ as of `day`;
    returns folders read.

    A folder is read again only when its manifest (names, sizes, mtimes, and the scan's
    tokenisation) changed. The keys of its tokens are stored (``_keys_sql``), never the tokens:
    each key with the number of the folder's lines that hold it (``ops.inbox_keys``), and where it
    stands, by file and line, unless it is the line's own subject as the keyed history knows it
    (``ops.inbox_lines``, ``_foreign_sql``). Arrival folders dated after `day` are left for their own
    run, so a backfill sees what each night saw.
    """
    install_scan_macros(con)
    folders = {f: files for f, files in inbox_folders(inbox).items() if visible(f, day)}
    cached = dict(con.execute("SELECT folder, manifest FROM ops.inbox_scans").fetchall())
    gone = [f for f in cached if f not in folders]
    if gone:
        for table in ("ops.inbox_keys", "ops.inbox_lines", "ops.inbox_scans"):
            con.execute(f"DELETE FROM {table} WHERE folder IN (SELECT unnest(?::VARCHAR[]))", [gone])
    scanned = 0
    for folder, files in sorted(folders.items()):
        manifest = folder_manifest(files)
        if cached.get(folder) == manifest:
            continue
        con.execute("CREATE OR REPLACE TEMP TABLE _inbox_tokens (n BIGINT, kind VARCHAR, tok VARCHAR)")
        positions = []
        first = 0
        for relative, path in files:
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
            positions.append(_positions(relative, range(first, first + len(text)), range(1, len(text) + 1)))
            first += len(text)
            con.register("_inbox_lines", lines)
            try:
                _tokens_of_file(con)
            finally:
                con.unregister("_inbox_lines")
        con.register("_inbox_pos", pa.concat_tables(positions) if positions else _positions("", [], []))
        try:
            with transaction(con):
                for table in ("ops.inbox_keys", "ops.inbox_lines", "ops.inbox_scans"):
                    con.execute(f"DELETE FROM {table} WHERE folder = ?", [folder])
                con.execute(f"CREATE OR REPLACE TEMP TABLE _inbox_kept AS {_keys_sql('_inbox_tokens')}")
                con.execute(
                    """INSERT INTO ops.inbox_keys
                       SELECT $folder, kind, key, count(DISTINCT n) FROM _inbox_kept GROUP BY ALL""",
                    {"folder": folder},
                )
                con.execute(
                    f"INSERT INTO ops.inbox_lines {_foreign_sql('_inbox_kept', '_inbox_pos')}",
                    {"folder": folder, "day": arrival_day(folder)},
                )
                con.execute("INSERT INTO ops.inbox_scans VALUES (?, ?, now())", [folder, manifest])
        finally:
            con.unregister("_inbox_pos")
            con.execute("DROP TABLE IF EXISTS _inbox_tokens")
            con.execute("DROP TABLE IF EXISTS _inbox_kept")
        scanned += 1
    return scanned


def _positions(relative: str, numbers, line_numbers) -> pa.Table:
    """(n, path, line_number) of a file's lines: where each of the scan's line numbers stands."""
    return pa.table(
        {
            "n": pa.array(numbers, pa.int64()),
            "path": pa.repeat(pa.scalar(relative, pa.string()), len(numbers)),
            "line_number": pa.array(line_numbers, pa.int64()),
        }
    )


def _tokens_of_file(con: duckdb.DuckDBPyConnection, into: str = "_inbox_tokens") -> None:
    """TEMP `into`(n, kind, tok) of the lines in _inbox_lines: the userIds ('account_id'), the
    e-mail-like tokens ('email') and the other tokens of the line ('word': its words and JSON
    strings), wherever they stand, valid JSON or not. One regular expression a pass over the lines:
    building each line's token list (``erasure_pieces``) costs three times as much."""
    con.execute(
        f"""
        INSERT INTO {into}
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


def _keys_sql(tokens: str) -> str:
    """(kind, key, n) of the tokens in TEMP `tokens`(n, kind, tok) that are kept in ops.inbox_keys.

    A word is kept as an account id only when it is the subject_key of a subject the warehouse knows
    (an account id can only become a target once its subject's deletion is ingested): every word of
    every line would be millions of keys a folder, nearly all of them message ids, timestamps and
    free text."""
    return f"""
    WITH hashed AS (  -- each distinct token hashed once
        SELECT kind, tok, CASE kind WHEN 'email' THEN hmac_email(tok) ELSE hmac_subject(tok) END AS key
        FROM (SELECT DISTINCT kind, tok FROM {tokens})
    ), known AS (  -- every subject with a line: the vault's accounts, and the erased ones' keys
        SELECT subject_key FROM vault.accounts
        UNION ALL SELECT key FROM compliance.erased_identifiers WHERE kind = 'account_id'
    ), kept AS (
        SELECT kind, tok, key FROM hashed WHERE kind <> 'word' OR key IN (SELECT subject_key FROM known)
    )
    SELECT CASE k.kind WHEN 'word' THEN 'account_id' ELSE k.kind END AS kind, unhex(k.key) AS key, t.n, k.tok
    FROM kept k JOIN {tokens} t USING (kind, tok)
    """


def _foreign_sql(kept: str, positions: str) -> str:
    """The ops.inbox_lines rows of the kept keys in TEMP `kept` (``_keys_sql``) at the lines of
    `positions`(n, path, line_number) of folder $folder (arrival day $day): every key where it stands, except an
    account id on a line that the keyed history keys by that very subject (the erased subject's own
    lines are found there, ``inbox_redaction._own_lines``). What is left is small: the e-mails, and an
    account id named in another line's text, a line the history could not key, a file it never
    read. A userId ``erased:<subject_key>`` (a redacted line) is a key already, never a target."""
    return f"""
    WITH found AS (
        SELECT DISTINCT p.path, p.line_number, o.kind, o.key
        FROM {kept} o JOIN {positions} p USING (n)
        WHERE NOT (o.kind = 'account_id' AND regexp_full_match(o.tok, 'erased:[0-9a-f]{{64}}'))
    ), owned AS (
        SELECT $folder || '/' || source_file AS path, line_number, unhex(subject_key) AS key
        FROM keyed.events WHERE arrival_date = $day
        UNION
        SELECT $folder || '/' || source_file, line_number, unhex(subject_key)
        FROM keyed.rejected WHERE arrival_date = $day AND subject_key IS NOT NULL
    )
    SELECT $folder, f.path, f.line_number, f.kind, f.key
    FROM found f ANTI JOIN owned o
         ON f.kind = 'account_id' AND o.path = f.path AND o.line_number = f.line_number AND o.key = f.key
    """


def _line_text(line: str) -> str:
    """A line as the scan reads it (``_read_text``): bytes that are not UTF-8 become U+FFFD."""
    return line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def tokens_of_lines(con: duckdb.DuckDBPyConnection, lines: list[str], numbers: list[int], into: str) -> None:
    """TEMP `into`(n, kind, tok), created anew: the tokens of `lines`, line i numbered numbers[i], as
    the folder's scan cuts them (``_tokens_of_file``), plus, of kind 'escaped', the words and
    e-mail-like substrings of the JSON strings that hold an escape, which the redaction looks for
    too and the folder's keys never hold."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {into} (n BIGINT, kind VARCHAR, tok VARCHAR)")
    table = pa.table({"n": pa.array(numbers, pa.int64()), "line": pa.array(map(_line_text, lines), pa.string())})
    con.register("_inbox_lines", table)
    try:
        _tokens_of_file(con, into)
        con.execute(
            f"""
            INSERT INTO {into}
            WITH escaped AS (
                SELECT n, erasure_unescape(raw) AS s
                FROM (SELECT n, unnest(regexp_extract_all(line, {sql_literal(JSON_STRING_RE)}, 1)) AS raw
                      FROM _inbox_lines WHERE contains(line, chr(92)))
                WHERE contains(raw, chr(92))
            )
            SELECT DISTINCT n, 'escaped', tok FROM (
                SELECT n, unnest(regexp_extract_all(s, {sql_literal(WORD_RE)})) AS tok FROM escaped
                UNION ALL SELECT n, unnest(regexp_extract_all(s, {sql_literal(EMAIL_TOKEN_RE)})) FROM escaped
            )
            WHERE erasure_candidate(tok)
            """
        )
    finally:
        con.unregister("_inbox_lines")


#: Where the lines after a rewrite are numbered in ``cache_rewrite``: above any line number.
_AFTER_OFFSET = 1 << 40


def cache_rewrite(
    con: duckdb.DuckDBPyConnection, folder: str, relative: str, changed: list[int], before: str, after: str
) -> Callable[[duckdb.DuckDBPyConnection, tuple[int, int], tuple[int, int]], None]:
    """What a rewrite of the file `relative` of `folder` changes in the folder's cache, where its
    lines `changed` (0-based) change: TEMP tables `before` and `after` (``tokens_of_lines``,
    numbered by line) hold those lines' tokens as they were and as they become.

    The keys of both sets of lines are worked out now, as the scan would find them; the returned
    function applies the difference: each key's line count (a key no line holds any more goes), the
    changed lines' rows of ops.inbox_lines, and the file's new size and mtime in the cached manifest.
    It runs in the transaction that records the rewrite (``inbox_files.rewrite_files``), so the cache
    always describes the file that a finished rewrite leaves. When the cache no longer describes the
    file as it was read, the folder's cache is dropped instead, and the next scan reads it afresh."""
    con.execute("CREATE OR REPLACE TEMP TABLE _delta_changed AS SELECT unnest(?::BIGINT[]) AS n", [changed])
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW _delta_tokens AS
            SELECT n, kind, tok FROM {before} SEMI JOIN _delta_changed USING (n)
            WHERE kind <> 'escaped'
            UNION ALL
            SELECT n + {_AFTER_OFFSET}, kind, tok FROM {after} SEMI JOIN _delta_changed USING (n)
            WHERE kind <> 'escaped'"""
    )
    line_numbers = [n + 1 for n in changed]
    con.execute(f"CREATE OR REPLACE TEMP TABLE _delta_kept AS {_keys_sql('_delta_tokens')}")
    delta = con.sql(
        """SELECT kind, key, count(DISTINCT n) FILTER (WHERE n >= $after)
                             - count(DISTINCT n) FILTER (WHERE n < $after) AS delta
           FROM _delta_kept GROUP BY ALL HAVING delta <> 0""",
        params={"after": _AFTER_OFFSET},
    ).to_arrow_table()
    # the new lines' rows of ops.inbox_lines (positions of the `after` lines only)
    con.register("_inbox_pos", _positions(relative, [n + _AFTER_OFFSET for n in changed], line_numbers))
    try:
        where = con.sql(
            f"SELECT * FROM ({_foreign_sql('_delta_kept', '_inbox_pos')})",
            params={"folder": folder, "day": arrival_day(folder)},
        ).to_arrow_table()
    finally:
        con.unregister("_inbox_pos")
        con.execute("DROP VIEW _delta_tokens")
        con.execute("DROP TABLE _delta_changed")
        con.execute("DROP TABLE _delta_kept")

    def apply(con: duckdb.DuckDBPyConnection, stat_before: tuple[int, int], stat_after: tuple[int, int]) -> None:
        rows = con.execute("SELECT manifest FROM ops.inbox_scans WHERE folder = ?", [folder]).fetchall()
        version, entries = json.loads(rows[0][0]) if len(rows) == 1 else (None, [])
        mine = [e for e in entries if e[0] == relative]
        complete = con.execute(
            "SELECT count(*) = 0 FROM ops.inbox_keys WHERE folder = ? AND lines IS NULL", [folder]
        ).fetchall()[0][0]
        if version != INBOX_SCAN_VERSION or len(mine) != 1 or tuple(mine[0][1:]) != stat_before or not complete:
            con.execute("DELETE FROM ops.inbox_scans WHERE folder = ?", [folder])
            return
        mine[0][1:] = list(stat_after)
        manifest = json.dumps([version, entries])
        con.execute("UPDATE ops.inbox_scans SET manifest = ? WHERE folder = ?", [manifest, folder])
        con.register("_inbox_delta", delta)
        con.register("_inbox_where", where)
        try:
            con.execute(
                """UPDATE ops.inbox_keys k SET lines = k.lines + d.delta FROM _inbox_delta d
                   WHERE k.folder = $folder AND k.kind = d.kind AND k.key = d.key""",
                {"folder": folder},
            )
            con.execute(
                """INSERT INTO ops.inbox_keys
                   SELECT $folder, d.kind, d.key, d.delta FROM _inbox_delta d
                   WHERE d.delta > 0 AND NOT EXISTS (SELECT 1 FROM ops.inbox_keys k
                                                     WHERE k.folder = $folder AND k.kind = d.kind AND k.key = d.key)""",
                {"folder": folder},
            )
            con.execute("DELETE FROM ops.inbox_keys WHERE folder = ? AND lines <= 0", [folder])
            con.execute(
                """DELETE FROM ops.inbox_lines
                   WHERE folder = ? AND path = ? AND line_number IN (SELECT unnest(?::BIGINT[]))""",
                [folder, relative, line_numbers],
            )
            con.execute("INSERT INTO ops.inbox_lines SELECT * FROM _inbox_where")
        finally:
            con.unregister("_inbox_delta")
            con.unregister("_inbox_where")

    return apply
