"""The generic residual scan: find erased identifiers in any text column of any warehouse table.

Only keys of erased identifiers are stored (``compliance.erased_identifiers``), so matching is
"hash the candidate tokens and join": every distinct value of every VARCHAR/JSON column (found in
``information_schema``, so a table added tomorrow cannot escape) is cut into candidate tokens -
the whole value, e-mail-like substrings and JSON string values - and each distinct token is hashed
once with ``hmac_subject`` (account ids) and, when it holds an '@', ``hmac_email`` (e-mails).
Tokens that are 64-hex keys are skipped. Plain tokens only ever live in TEMP tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from assets.erasure.state import EXEMPT_TABLES

_WS = "chr(32) || chr(9) || chr(10) || chr(13) || chr(12) || chr(11)"
#: An e-mail-like substring of free text (the contract's rule: something@something).
EMAIL_TOKEN_RE = r"""[^\s"'<>()\[\]{},;:\\@]+@[^\s"'<>()\[\]{},;:\\@]+"""
#: The contents of a JSON string literal (works on broken JSON too).
JSON_STRING_RE = r'"((?:[^"\\]|\\.)*)"'
#: The userId of a Segment line, even when the line is not valid JSON.
USER_ID_RE = r'"userId"\s*:\s*"((?:[^"\\]|\\.)*)"'
#: Tokens longer than this are not identifiers (and are not worth a hash).
MAX_TOKEN = 512
#: Part of every scan-cache fingerprint: change it when the tokenisation changes.
SCAN_VERSION = "tokens-v1"


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def install_scan_macros(con: duckdb.DuckDBPyConnection) -> None:
    """TEMP macros erasure_unescape(s) and erasure_tokens(v) on this connection."""
    con.execute(
        "CREATE OR REPLACE TEMP MACRO erasure_unescape(s) AS CASE WHEN contains(s, chr(92)) "
        "THEN coalesce(try(json_extract_string('\"' || s || '\"', '$')), s) ELSE s END"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP MACRO erasure_tokens(v) AS
        CASE WHEN contains(v, '@') OR contains(v, '"') THEN list_distinct(
                 [v, trim(v, {_WS})]
                 || regexp_extract_all(v, {sql_literal(EMAIL_TOKEN_RE)})
                 || list_transform(regexp_extract_all(v, {sql_literal(JSON_STRING_RE)}, 1),
                                   lambda s: erasure_unescape(s)))
             WHEN v = trim(v, {_WS}) THEN [v]
             ELSE [v, trim(v, {_WS})] END
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP MACRO erasure_candidate(tok) AS
            length(tok) BETWEEN 1 AND {MAX_TOKEN} AND NOT regexp_full_match(tok, '[0-9a-f]{{64}}')
        """
    )


@dataclass(frozen=True)
class TextColumn:
    schema: str
    table: str
    column: str
    data_type: str
    nullable: bool

    @property
    def table_name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def sql_table(self) -> str:
        return f"{quote(self.schema)}.{quote(self.table)}"

    @property
    def sql_column(self) -> str:
        return quote(self.column)


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def text_columns(con: duckdb.DuckDBPyConnection, *, include_exempt: bool = False) -> list[TextColumn]:
    """Every VARCHAR/JSON (or VARCHAR-bearing) column of every base table of the warehouse file."""
    rows = con.execute(
        """
        SELECT c.table_schema, c.table_name, c.column_name, c.data_type, c.is_nullable = 'YES'
        FROM information_schema.columns c
        JOIN information_schema.tables t
          ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema
         AND t.table_name = c.table_name
        WHERE t.table_type = 'BASE TABLE' AND c.table_catalog = current_database()
          AND (c.data_type LIKE '%VARCHAR%' OR c.data_type LIKE '%JSON%')
        ORDER BY c.table_schema, c.table_name, c.ordinal_position
        """
    ).fetchall()
    return [TextColumn(*r) for r in rows if include_exempt or (r[0], r[1]) not in EXEMPT_TABLES]


def tables_with_columns(con: duckdb.DuckDBPyConnection, *columns: str) -> list[tuple[str, str]]:
    """Base tables of the warehouse file that have all of `columns` (from information_schema)."""
    rows = con.execute(
        """
        SELECT c.table_schema, c.table_name
        FROM information_schema.columns c
        JOIN information_schema.tables t
          ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema
         AND t.table_name = c.table_name
        WHERE t.table_type = 'BASE TABLE' AND c.table_catalog = current_database()
          AND c.column_name IN (SELECT unnest($columns::VARCHAR[]))
        GROUP BY ALL
        HAVING count(DISTINCT c.column_name) = len($columns::VARCHAR[])
        ORDER BY ALL
        """,
        {"columns": list(columns)},
    ).fetchall()
    return [(s, t) for s, t in rows if (s, t) not in EXEMPT_TABLES]


def _fingerprint(con: duckdb.DuckDBPyConnection, col: TextColumn) -> str:
    """Cheap fingerprint of a column's multiset of values (row order does not matter)."""
    count, total = con.execute(
        f"SELECT count({col.sql_column}), coalesce(sum(hash({col.sql_column}::VARCHAR))::HUGEINT, 0) "
        f"FROM {col.sql_table}"
    ).fetchall()[0]
    return f"{count}:{total}"


def _targets_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    count, total = con.execute(
        "SELECT count(*), coalesce(sum(hash(subject_key || kind || key))::HUGEINT, 0) FROM _targets"
    ).fetchall()[0]
    return f"{SCAN_VERSION}:{count}:{total}"


def scan_warehouse(con: duckdb.DuckDBPyConnection) -> int:
    """Fill TEMP _warehouse_hits(table_name, column_name, tok, subject_key, kind) against _targets.

    Returns the number of erased subjects with at least one hit. Nothing is scanned when there
    are no targets. A column found clean is remembered in ``ops.scan_cache`` with a fingerprint
    of its values and of the targets; while neither changes, the column is not read again (the
    purge, the verifier and the blocking check of one night share one full scan).
    """
    install_scan_macros(con)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _warehouse_hits
           (table_name VARCHAR, column_name VARCHAR, tok VARCHAR, subject_key VARCHAR, kind VARCHAR)"""
    )
    if not con.execute("SELECT count(*) FROM _targets").fetchall()[0][0]:
        return 0
    targets = _targets_fingerprint(con)
    clean = {
        (t, c): fp
        for t, c, fp in con.execute(
            "SELECT table_name, column_name, fingerprint FROM ops.scan_cache WHERE targets = ?", [targets]
        ).fetchall()
    }
    scanned: dict[tuple[str, str], str] = {}
    con.execute("CREATE OR REPLACE TEMP TABLE _scan_tokens (table_name VARCHAR, column_name VARCHAR, tok VARCHAR)")
    try:
        for col in text_columns(con):
            fingerprint = _fingerprint(con, col)
            if clean.get((col.table_name, col.column)) == fingerprint:
                continue
            scanned[(col.table_name, col.column)] = fingerprint
            con.execute(
                f"""
                INSERT INTO _scan_tokens
                SELECT DISTINCT $table, $column, tok
                FROM (SELECT unnest(erasure_tokens(v)) AS tok
                      FROM (SELECT DISTINCT v
                            FROM (SELECT {col.sql_column}::VARCHAR AS v FROM {col.sql_table}
                                  WHERE {col.sql_column} IS NOT NULL)
                            WHERE NOT (length(v) = 64 AND regexp_full_match(v, '[0-9a-f]{{64}}'))))
                WHERE erasure_candidate(tok)
                """,
                {"table": col.table_name, "column": col.column},
            )
        match_tokens(con, "_scan_tokens", "_scan_keys")
        con.execute(
            """
            INSERT INTO _warehouse_hits
            SELECT s.table_name, s.column_name, s.tok, t.subject_key, t.kind
            FROM _scan_tokens s JOIN _scan_keys k USING (tok)
            JOIN _targets t ON t.kind = k.kind AND t.key = k.key
            """
        )
    finally:
        con.execute("DROP TABLE IF EXISTS _scan_tokens")
        con.execute("DROP TABLE IF EXISTS _scan_keys")
    dirty = set(con.execute("SELECT DISTINCT table_name, column_name FROM _warehouse_hits").fetchall())
    remembered = [(t, c, fp, targets) for (t, c), fp in scanned.items() if (t, c) not in dirty]
    if scanned:
        con.execute(
            "DELETE FROM ops.scan_cache WHERE (table_name, column_name) IN (SELECT unnest(?), unnest(?))",
            [[t for t, _ in scanned], [c for _, c in scanned]],
        )
    if remembered:
        con.executemany("INSERT INTO ops.scan_cache VALUES (?, ?, ?, ?, now())", remembered)
    return con.execute("SELECT count(DISTINCT subject_key) FROM _warehouse_hits").fetchall()[0][0]


def match_tokens(con: duckdb.DuckDBPyConnection, tokens: str, into: str) -> None:
    """TEMP `into`(tok, kind, key): the keys of the distinct tokens of TEMP `tokens` that are targets.

    Each distinct token is hashed once as an account id and, if it holds an '@', as an e-mail.
    """
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {into} AS
        WITH distinct_tokens AS (SELECT DISTINCT tok FROM {tokens}),
        hashed AS (
            SELECT tok, hmac_subject(tok) AS subject_hash,
                   CASE WHEN contains(tok, '@') THEN norm_email(tok) END AS email
            FROM distinct_tokens
        ), keyed AS (
            SELECT tok, 'account_id' AS kind, subject_hash AS key FROM hashed
            UNION ALL
            SELECT tok, 'email', CASE WHEN email = tok THEN subject_hash ELSE hmac_subject(email) END
            FROM hashed WHERE email IS NOT NULL AND email <> ''
        )
        SELECT k.* FROM keyed k SEMI JOIN _targets t ON t.kind = k.kind AND t.key = k.key
        """
    )


def hit_summary(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int]]:
    """(table, column, erased subjects) of the current _warehouse_hits: names and counts only."""
    return con.execute(
        """SELECT table_name, column_name, count(DISTINCT subject_key) FROM _warehouse_hits
           GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
