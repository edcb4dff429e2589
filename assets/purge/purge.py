"""Purge: remove every plain identifier of the erased subjects from every table.

History holds keys, not identifiers (pseudonymised at the door, ``assets/landing/ingest.py``); the
identifiers live in the identity vault (``pipelines/warehouse/vault.sql``). So the purge deletes in
the vault and rewrites no history. It runs every night right after ingestion, before the core
tables are rebuilt, and only touches what still holds something (idempotent, and cheap when there
is nothing to do):

1. the keys of every identifier of a newly seen erased subject are recorded
   (``compliance.erased_identifiers``), so later nights still recognise them, with the request to
   rewrite the vault file (``ops.compaction_due``) when the vault holds something to erase;
2. the vault: the erased subjects' account ids, event properties and rejected lines' text go;
   another subject's event loses an erased subject's e-mail that no live account holds;
3. any other base table with ``subject_key`` and ``account_id`` (from information_schema): the
   account id of an erased subject becomes NULL;
4. the generic scan then finds any erased identifier left as free text in any text column of any
   table of the warehouse or the vault (a rejected line of another subject that names an erased
   e-mail, a free-text property of another account's event that names an erased account id,
   say). Each one is replaced by ``[erased]`` where it stands as a token, so the rest of the value
   (another subject's data) stays; a value where that cannot be done cleanly (the identifier is
   JSON-escaped, or the result would not be valid JSON) is cleared whole. A table may mark such
   rows with a BOOLEAN column named ``purged``. A change to the warehouse file requests its
   compaction in the same transaction.

One DuckDB transaction writes one database file: each step is its own transaction, which logs the
rows it purged (``compliance.purge_log``; a vault transaction in ``vault.purge_counts``, copied to
the log at the end), and a kill between two leaves what the re-run finishes, with the same log.
Rows of history stay, keyed by subject_key, so history and counts hold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

import duckdb

from assets.purge.columns import VAULT, TextColumn, tables_with_columns, text_columns
from assets.purge.scan import scan_warehouse
from assets.purge.scan_memory import learn_target_lengths, remember_new_target_plaintext
from assets.purge.state import load_state
from assets.purge.tokens import USER_ID_RE, install_scan_macros, sql_literal
from pipelines.warehouse import transaction


@dataclass
class PurgeResult:
    erased_total: int = 0
    newly_erased: int = 0
    rows: Counter = field(default_factory=Counter)  # table -> rows purged in this run

    @property
    def rows_purged(self) -> int:
        return sum(self.rows.values())


_ERASED = "(SELECT subject_key FROM _erased)"
_TARGET_EMAILS = "(SELECT key FROM _targets WHERE kind = 'email')"


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return con.execute(sql).fetchall()[0][0]


def purge(con: duckdb.DuckDBPyConnection, day: date) -> PurgeResult:
    """Purge the subjects erased as of the end of `day`; returns rows purged per table."""
    result = PurgeResult()
    install_scan_macros(con)
    with _transaction(con):
        result.erased_total = load_state(con, day, record=True)
        if result.erased_total and _count(con, f"SELECT count(*) FROM ({_VAULT_HOLDS})"):
            _request_compaction(con, day, VAULT)
    if result.erased_total:
        # The scan's memory checks old values against new targets by their plain identifiers,
        # which only exist until the statements below remove them (TEMP only).
        # Their lengths are kept first, so that a run killed after the vault's transaction still
        # learns them (a scan that cannot find them reads every plain value on every night).
        remember_new_target_plaintext(con)
        with _transaction(con):
            learn_target_lengths(con)
        result.newly_erased = _count(con, f"SELECT count(*) FROM _erased WHERE erased_on = DATE '{day}'")
        with _transaction(con, day, result, VAULT):
            _purge_vault(con, result)
        _purge_account_ids(con, day, result)
        _purge_residuals(con, day, result)
    with _transaction(con):
        _copy_vault_log(con, day)
    return result


@contextmanager
def _transaction(
    con: duckdb.DuckDBPyConnection,
    day: date | None = None,
    result: PurgeResult | None = None,
    database: str = "warehouse",
) -> Iterator[None]:
    """One transaction, which writes one database file. With `result`, the rows it purged are logged
    in it (``_log``), so that a run killed between two transactions and its re-run log what an
    uninterrupted run logs."""
    before = Counter(result.rows) if result is not None else Counter()
    with transaction(con):
        yield
        if result is not None:
            _log(con, day, result.rows - before, database)


def _request_compaction(con: duckdb.DuckDBPyConnection, day: date, database: str) -> None:
    con.execute(
        "INSERT INTO ops.compaction_due (run_date, requested_at, database) VALUES (?, now(), ?)", [day, database]
    )


#: A rejected line that could not be keyed (not JSON) but names an erased subject as its userId: its
#: names or address cannot be told from the rest of its text, so the text goes whole, as in the inbox.
_OWN_BROKEN = f"""
SELECT arrival_date, source_file, line_number FROM vault.quarantine
WHERE subject_key IS NULL AND raw_line IS NOT NULL AND contains(raw_line, '"userId"')
  AND list_has_any(
      list_transform(regexp_extract_all(raw_line, {sql_literal(USER_ID_RE)}, 1),
                     lambda raw: hmac_subject(erasure_unescape(raw))),
      (SELECT list(subject_key) FROM _erased))
"""

#: What the vault holds of the erased subjects (step 2): anything here means the vault file changes.
_VAULT_HOLDS = f"""
SELECT 1 FROM vault.accounts WHERE subject_key IN {_ERASED}
UNION ALL SELECT 1 FROM vault.event_properties WHERE subject_key IN {_ERASED}
UNION ALL SELECT 1 FROM vault.event_properties
          WHERE email_key IN {_TARGET_EMAILS} OR previous_email_key IN {_TARGET_EMAILS}
UNION ALL SELECT 1 FROM vault.quarantine WHERE subject_key IN {_ERASED} AND raw_line IS NOT NULL
UNION ALL SELECT 1 FROM ({_OWN_BROKEN})
"""


def _purge_vault(con: duckdb.DuckDBPyConnection, result: PurgeResult) -> None:
    """The erased subjects' identifiers leave the vault; so does an erased e-mail in another's event."""
    result.rows["vault.accounts"] += _count(con, f"DELETE FROM vault.accounts WHERE subject_key IN {_ERASED}")
    result.rows["vault.event_properties"] += _count(
        con, f"DELETE FROM vault.event_properties WHERE subject_key IN {_ERASED}"
    )
    # Anyone else's event that names an erased subject's e-mail no live account holds.
    for prop, key in (("email", "email_key"), ("previous_email", "previous_email_key")):
        result.rows["vault.event_properties"] += _count(
            con,
            f"""
            UPDATE vault.event_properties SET properties = json_remove(properties, '$.{prop}')
            WHERE {key} IN {_TARGET_EMAILS} AND json_exists(properties, '$.{prop}')
            """,
        )
    result.rows["vault.quarantine"] += _count(
        con,
        f"""UPDATE vault.quarantine SET raw_line = NULL, purged = true
            WHERE raw_line IS NOT NULL
              AND (subject_key IN {_ERASED}
                   OR (arrival_date, source_file, line_number) IN (SELECT (arrival_date, source_file, line_number)
                                                                    FROM ({_OWN_BROKEN})))""",
    )


def _purge_account_ids(con: duckdb.DuckDBPyConnection, day: date, result: PurgeResult) -> None:
    """Every other table keyed by subject_key beside account_id, found in information_schema."""
    for table in tables_with_columns(con, "subject_key", "account_id"):
        if table.name == "vault.accounts":
            continue  # step 2 deleted its rows
        with _transaction(con, day, result, table.database):
            n = _count(
                con,
                f"""UPDATE {table.sql} SET account_id = NULL
                    WHERE account_id IS NOT NULL AND subject_key IN {_ERASED}""",
            )
            if n and table.database != VAULT:  # the vault's request is made by the warehouse's transaction
                _request_compaction(con, day, table.database)
            result.rows[table.name] += n


def _purge_residuals(con: duckdb.DuckDBPyConnection, day: date, result: PurgeResult) -> None:
    """Clear any value in which the generic scan still finds an erased identifier."""
    if not scan_warehouse(con):
        return
    hit = {(t, c) for t, c in con.execute("SELECT DISTINCT table_name, column_name FROM _warehouse_hits").fetchall()}
    marked = {
        (catalog, f"{schema}.{table}")
        for catalog, schema, table in con.execute(
            f"""SELECT CASE WHEN table_catalog = current_database() THEN '' ELSE table_catalog END,
                       table_schema, table_name FROM information_schema.columns
                WHERE table_catalog IN (current_database(), '{VAULT}')
                  AND column_name = 'purged' AND data_type = 'BOOLEAN'"""
        ).fetchall()
    }
    columns = [col for col in text_columns(con) if (col.table_name, col.column) in hit]
    with _transaction(con):
        for database in sorted({col.owner.database for col in columns}):
            _request_compaction(con, day, database)
    for col in columns:
        is_marked = (col.catalog, f"{col.schema}.{col.table}") in marked
        with _transaction(con, day, result, col.owner.database):
            if col.data_type in ("VARCHAR", "JSON"):
                _redact_tokens(con, col, result, is_marked)
            _clear_values(con, col, result, is_marked)


def _clear_values(con: duckdb.DuckDBPyConnection, col: TextColumn, result: PurgeResult, marked: bool) -> None:
    """A value that still holds an erased identifier after the token redaction is cleared whole."""
    if col.nullable:
        replacement = "NULL"
    elif col.data_type == "VARCHAR":
        replacement = f"'erased:' || hmac_subject({col.sql_column})"
    elif col.data_type == "JSON":
        replacement = f"to_json('erased:' || hmac_subject({col.sql_column}::VARCHAR))"
    else:  # not nullable and not plain text: left for the blocking check to report
        return
    also = ", purged = true" if marked else ""
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
        UPDATE {col.sql_table} AS t SET {col.sql_column} = _redact.clean{cast}{also}
        FROM _redact WHERE t.{col.sql_column}::VARCHAR = _redact.v
        """
    ).fetchall()[0][0]
    con.execute("DROP TABLE _redact")


#: Where a transaction that wrote each database logs the rows it purged: a DuckDB transaction writes
#: one database file, so the vault's counts wait in the vault until ``_copy_vault_log`` copies them.
_LOGS = {"warehouse": "compliance.purge_log", VAULT: "vault.purge_counts"}


def _log(con: duckdb.DuckDBPyConnection, day: date, rows: Counter, database: str) -> None:
    """Add rows purged per table to the day's rows of the log of `database`."""
    log = _LOGS[database]
    for table, n in sorted(rows.items()):
        earlier = con.execute(
            f"SELECT coalesce(sum(rows_purged), 0) FROM {log} WHERE run_date = ? AND table_name = ?", [day, table]
        ).fetchall()[0][0]
        con.execute(f"DELETE FROM {log} WHERE run_date = ? AND table_name = ?", [day, table])
        con.execute(f"INSERT INTO {log} VALUES (?, ?, ?, now())", [day, table, earlier + n])


def _copy_vault_log(con: duckdb.DuckDBPyConnection, day: date) -> None:
    """The day's purge_log rows of vault tables become the vault's own counts (idempotent)."""
    con.execute("DELETE FROM compliance.purge_log WHERE run_date = ? AND starts_with(table_name, 'vault.')", [day])
    con.execute("INSERT INTO compliance.purge_log SELECT * FROM vault.purge_counts WHERE run_date = ?", [day])
