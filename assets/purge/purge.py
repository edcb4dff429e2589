"""Purge: remove every plain identifier of the erased subjects from every warehouse table.

Runs every night right after ingestion, before the core tables are rebuilt, and only touches rows
that still hold something (idempotent, and cheap when there is nothing to do):

1. the keys of every identifier of a newly seen erased subject are recorded first
   (``compliance.erased_identifiers``), so later nights still recognise them;
2. ``landing.events``: the erased subjects' rows lose their account id and every personal
   property; other rows lose an erased subject's e-mail that no live account holds;
3. ``landing.rejected``: the erased subjects' lines lose their raw text and account id;
4. every table with ``subject_key`` and ``account_id`` (from information_schema): the account id
   of an erased subject becomes NULL;
5. the generic scan then finds any erased identifier left in any text column of any table
   (a rejected line of another subject that names an erased e-mail, a free-text property of
   another account's event that names an erased account id, say). Each one is replaced by
   ``[erased]`` where it stands as a token, so the rest of the value (another subject's data)
   stays; a value where that cannot be done cleanly (the identifier is JSON-escaped, or the
   result would not be valid JSON) is cleared whole. A table may mark such rows with a BOOLEAN
   column named ``purged``.

Rows stay, keyed by subject_key, so history and counts hold.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import duckdb

from assets.landing.contract import PERSONAL_PROPERTIES
from assets.purge.columns import TextColumn, quote, tables_with_columns, text_columns
from assets.purge.scan import scan_warehouse
from assets.purge.scan_memory import remember_new_target_plaintext
from assets.purge.state import load_state


@dataclass
class PurgeResult:
    erased_total: int = 0
    newly_erased: int = 0
    rows: Counter = field(default_factory=Counter)  # table -> rows purged in this run

    @property
    def rows_purged(self) -> int:
        return sum(self.rows.values())


def _without_personal(expr: str) -> str:
    for prop in PERSONAL_PROPERTIES:
        expr = f"json_remove({expr}, '$.{prop}')"
    return expr


_PERSONAL_PATHS = "[" + ", ".join(f"'$.{p}'" for p in PERSONAL_PROPERTIES) + "]"
_HAS_PERSONAL = f"coalesce(list_bool_or(json_exists(properties, {_PERSONAL_PATHS})), false)"
_ERASED = "(SELECT subject_key FROM _erased)"
_TARGET_EMAILS = "(SELECT key FROM _targets WHERE kind = 'email')"


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return con.execute(sql).fetchall()[0][0]


def purge(con: duckdb.DuckDBPyConnection, day: date) -> PurgeResult:
    """Purge the subjects erased as of the end of `day`; returns rows purged per table."""
    result = PurgeResult()
    con.execute("BEGIN TRANSACTION")
    try:
        result.erased_total = load_state(con, day, record=True)
        if result.erased_total:
            # The scan's memory checks old values against new targets by their plain identifiers,
            # which only exist until the statements below remove them (TEMP only).
            remember_new_target_plaintext(con)
            result.newly_erased = _count(con, f"SELECT count(*) FROM _erased WHERE erased_on = DATE '{day}'")
            _purge_events(con, result)
            _purge_rejected(con, result)
            _purge_account_ids(con, result)
            _purge_residuals(con, result)
        _log(con, day, result)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return result


def _purge_events(con: duckdb.DuckDBPyConnection, result: PurgeResult) -> None:
    # The erased subject's own events: no account id and no personal property, whatever e-mail.
    result.rows["landing.events"] += _count(
        con,
        f"""
        UPDATE landing.events
        SET account_id = NULL, properties = {_without_personal("properties")}
        WHERE subject_key IN {_ERASED} AND (account_id IS NOT NULL OR {_HAS_PERSONAL})
        """,
    )
    # Anyone else's event that names an erased subject's e-mail no live account holds.
    for prop, key in (("email", "email_key"), ("previous_email", "previous_email_key")):
        result.rows["landing.events"] += _count(
            con,
            f"""
            UPDATE landing.events SET properties = json_remove(properties, '$.{prop}')
            WHERE {key} IN {_TARGET_EMAILS} AND json_exists(properties, '$.{prop}')
            """,
        )


def _purge_rejected(con: duckdb.DuckDBPyConnection, result: PurgeResult) -> None:
    result.rows["landing.rejected"] += _count(
        con,
        f"""
        UPDATE landing.rejected SET raw_line = NULL, account_id = NULL, purged = true
        WHERE subject_key IN {_ERASED} AND (raw_line IS NOT NULL OR account_id IS NOT NULL)
        """,
    )


def _purge_account_ids(con: duckdb.DuckDBPyConnection, result: PurgeResult) -> None:
    """Every table keyed by subject_key beside account_id, found in information_schema."""
    for schema, table in tables_with_columns(con, "subject_key", "account_id"):
        result.rows[f"{schema}.{table}"] += _count(
            con,
            f"""UPDATE {quote(schema)}.{quote(table)} SET account_id = NULL
                WHERE account_id IS NOT NULL AND subject_key IN {_ERASED}""",
        )


def _purge_residuals(con: duckdb.DuckDBPyConnection, result: PurgeResult) -> None:
    """Clear any value in which the generic scan still finds an erased identifier."""
    if not scan_warehouse(con):
        return
    hit = {(t, c) for t, c in con.execute("SELECT DISTINCT table_name, column_name FROM _warehouse_hits").fetchall()}
    marked = {
        t
        for (t,) in con.execute(
            """SELECT table_schema || '.' || table_name FROM information_schema.columns
           WHERE table_catalog = current_database() AND column_name = 'purged' AND data_type = 'BOOLEAN'"""
        ).fetchall()
    }
    for col in text_columns(con):
        if (col.table_name, col.column) not in hit:
            continue
        if col.data_type in ("VARCHAR", "JSON"):
            _redact_tokens(con, col, result, col.table_name in marked)
        if col.nullable:
            replacement = "NULL"
        elif col.data_type == "VARCHAR":
            replacement = f"'erased:' || hmac_subject({col.sql_column})"
        elif col.data_type == "JSON":
            replacement = f"to_json('erased:' || hmac_subject({col.sql_column}::VARCHAR))"
        else:  # not nullable and not plain text: left for the blocking check to report
            continue
        also = ", purged = true" if col.table_name in marked else ""
        result.rows[col.table_name] += con.execute(
            f"""
            UPDATE {col.sql_table} SET {col.sql_column} = {replacement}{also}
            WHERE {col.sql_column} IS NOT NULL
              AND scan_digest({col.sql_column}::VARCHAR) IN (SELECT digest FROM _warehouse_hits
                                                      WHERE table_name = $table AND column_name = $column)
              AND list_has_any(erasure_tokens({col.sql_column}::VARCHAR),
                               (SELECT list(tok) FROM _warehouse_hits
                                WHERE table_name = $table AND column_name = $column))
            """,
            {"table": col.table_name, "column": col.column},
        ).fetchall()[0][0]


#: What stands where an erased identifier was found inside a longer value.
REDACTED = "[erased]"
#: A character that ends a word (``tokens.RUN_RE``).
_NOT_WORD = r"[^\pL\pN_]"
#: What stands before a token: the start, a character that is not part of a word, or a JSON escape
#: of such a character (`\t`, `\n`, ... after an even run of backslashes): in JSON text the id of
#: `"0\tacc_42"` follows the letter `t` of the escape, though the string holds a tab before it.
_BEFORE = r"(^|" + _NOT_WORD + r"|(?:^|[^\\])(?:\\\\)*\\[bfnrt])"


def _without_token(value: str, token: str) -> str:
    """SQL: `value` with every occurrence of `token` that stands as a token (not inside a longer
    word) replaced by REDACTED. Two passes: one match consumes the character after it, which may
    be the one before the next occurrence."""
    pattern = f"'{_BEFORE}' || regexp_escape({token}) || '($|{_NOT_WORD})'"
    once = f"regexp_replace({value}, {pattern}, '\\1{REDACTED}\\2', 'g')"
    return f"regexp_replace({once}, {pattern}, '\\1{REDACTED}\\2', 'g')"


def _redact_tokens(con: duckdb.DuckDBPyConnection, col: TextColumn, result: PurgeResult, marked: bool) -> None:
    """Replace the erased identifiers the scan found in the column's values where they stand."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _redact AS
        WITH hits AS (  -- the longest token first: it is erased whole, with what a shorter one misses
            SELECT digest, list(tok ORDER BY length(tok) DESC, tok) AS toks
            FROM (SELECT DISTINCT digest, tok FROM _warehouse_hits WHERE table_name = $table AND column_name = $column)
            GROUP BY digest
        ), vals AS (
            SELECT DISTINCT v, scan_digest(v) AS digest
            FROM (SELECT {col.sql_column}::VARCHAR AS v FROM {col.sql_table} WHERE {col.sql_column} IS NOT NULL)
            WHERE scan_digest(v) IN (SELECT digest FROM hits)
        ), redacted AS (
            SELECT v, toks, list_reduce(toks, lambda acc, tok: {_without_token("acc", "tok")}, v) AS clean
            FROM vals JOIN hits USING (digest)
        )
        SELECT v, clean FROM redacted
        WHERE clean <> v AND NOT list_has_any(erasure_tokens(clean), toks)
          {"AND json_valid(clean)" if col.data_type == "JSON" else ""}
        """,
        {"table": col.table_name, "column": col.column},
    )
    cast = "::JSON" if col.data_type == "JSON" else ""
    also = ", purged = true" if marked else ""
    result.rows[col.table_name] += con.execute(
        f"""
        UPDATE {col.sql_table} SET {col.sql_column} = _redact.clean{cast}{also}
        FROM _redact WHERE {col.sql_table}.{col.sql_column}::VARCHAR = _redact.v
        """
    ).fetchall()[0][0]
    con.execute("DROP TABLE _redact")


def _log(con: duckdb.DuckDBPyConnection, day: date, result: PurgeResult) -> None:
    """Add this run's counts to the day's purge_log rows; request compaction after any purge."""
    for table, rows in sorted(result.rows.items()):
        if not rows:
            continue
        earlier = con.execute(
            "SELECT coalesce(sum(rows_purged), 0) FROM compliance.purge_log WHERE run_date = ? AND table_name = ?",
            [day, table],
        ).fetchall()[0][0]
        con.execute("DELETE FROM compliance.purge_log WHERE run_date = ? AND table_name = ?", [day, table])
        con.execute("INSERT INTO compliance.purge_log VALUES (?, ?, ?, now())", [day, table, earlier + rows])
    if result.rows_purged:
        con.execute("INSERT INTO ops.compaction_due VALUES (?, now())", [day])
