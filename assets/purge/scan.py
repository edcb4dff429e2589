"""The generic residual scan: find erased identifiers in any text column of any warehouse table.

Only keys of erased identifiers are stored (``compliance.erased_identifiers``), so matching is
"hash the candidate tokens and join": every distinct value of every VARCHAR/JSON column (found in
``information_schema``, so a table added tomorrow cannot escape) is cut into candidate tokens -
the whole value, e-mail-like substrings, JSON string values and the words of free text - and each
distinct token is hashed once with ``hmac_subject`` (account ids) and, when it holds an '@',
``hmac_email`` (e-mails). Tokens that are 64-hex keys are skipped. Plain tokens only ever live in
TEMP tables. What a token is: ``tokens.py``; the columns: ``columns.py``; the memory of values
verified before and the keys of their tokens, which let a night tokenise only what is new and
join old values with a new target: ``scan_memory.py``.
"""

from __future__ import annotations

import duckdb

from assets.purge.columns import TextColumn, column_values, text_columns
from assets.purge.scan_memory import (
    find_suspects,
    join_memory,
    new_targets_sql,
    plain_lengths,
    remember_new_target_plaintext,
    remember_verified,
    state_version,
    worth_reading,
)
from assets.purge.tokens import SCAN_VERSION, install_scan_macros, match_tokens, sql_literal
from pipelines.warehouse import memory_limit_at_most, transaction

#: Values of tables smaller than this are checked exactly every time and never remembered.
MIN_REMEMBERED_ROWS = 10_000
#: DuckDB's memory limit while tonight's digests are joined with the memory. Both sides hold tens of
#: millions of rows at production scale (64M and 44.7M at 3M accounts). At the connection's limit
#: (2GB) the join fills DuckDB's buffer pool and takes the process over 3 GB. Slicing the join by
#: the digests' top bits also bounds the peak, but every slice reads both sides whole, so its cost
#: grows with slices x rows. One join under a smaller budget reads each side once: DuckDB's hash
#: join partitions and spills when it does not fit, at about the same speed (docs/scaling.md).
JOIN_MEMORY_LIMIT = "1GB"
#: DuckDB's memory limit while the key index is joined with the new targets (``find_suspects``). The
#: join needs little, and lowering the limit makes DuckDB drop the blocks it keeps cached (the
#: index's, read whole on a night with a new target, and those of the steps before), which would
#: otherwise stay resident through the night's peak: on the 100k night with 10,000 new erasures the
#: process peaked at 813 MB instead of 890 MB, in the same time (``bench/profile_night.py``).
SUSPECTS_MEMORY_LIMIT = "64MB"


def _fingerprints(con: duckdb.DuckDBPyConnection, columns: list[TextColumn]) -> list[str]:
    """Cheap fingerprints of the columns' multisets of values (row order does not matter), in one
    statement: a statement per column paid its plan (about 3 ms) for each of some 100 columns, three
    times a night. Each column is its own aggregate: faster than one pass per table with FILTERed
    aggregates (docs/scaling.md)."""
    if not columns:
        return []
    union = " UNION ALL ".join(
        f"SELECT {i} AS i, count({col.sql_column}) AS n, "
        f"coalesce(sum(scan_digest({col.sql_column}::VARCHAR))::HUGEINT, 0) AS total "
        f"FROM {col.sql_table} WHERE {col.sql_column} IS NOT NULL"
        for i, col in enumerate(columns)
    )
    found = {i: f"{n}:{total}" for i, n, total in con.execute(union).fetchall()}
    return [found[i] for i in range(len(columns))]


def _rows(fingerprint: str) -> int:
    """The number of values a column fingerprint counts."""
    return int(fingerprint.split(":", 1)[0])


def _targets_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    count, total = con.execute(
        "SELECT count(*), coalesce(sum(scan_digest(subject_key || kind || key))::HUGEINT, 0) FROM _targets"
    ).fetchall()[0]
    return f"{SCAN_VERSION}:{count}:{total}"


#: Remembered columns with fewer values than this have their digests collected in one statement
#: (``_collect_digests``); each larger one has its own, so that one DISTINCT's hash table at a
#: time holds a large column's digests.
BATCH_BELOW_ROWS = 200_000


def _collect_digests(
    con: duckdb.DuckDBPyConnection, columns: list[TextColumn], rows: list[int], wanted: str | None
) -> None:
    """TEMP _scan_seen(col, digest): the distinct digests of the `wanted` values (every value when
    None) of the remembered `columns` (of `rows` values each), `col` their position in the list."""
    selects = [
        f"SELECT DISTINCT {number} AS col, scan_digest(v) AS digest FROM {column_values(col)}"
        + (f" WHERE {wanted}" if wanted else "")
        for number, col in enumerate(columns)
    ]
    batched = [sql for sql, n in zip(selects, rows, strict=True) if n < BATCH_BELOW_ROWS]
    alone = [sql for sql, n in zip(selects, rows, strict=True) if n >= BATCH_BELOW_ROWS]
    for sql in ([" UNION ALL ".join(batched)] if batched else []) + alone:
        con.execute(f"INSERT INTO _scan_seen {sql}")


def _tokenise_column(con: duckdb.DuckDBPyConnection, col: TextColumn, number: int, wanted: str | None) -> None:
    """Tokens of the remembered column's values to check exactly: those in TEMP _scan_check (under
    the column's `number`), which are among its `wanted` values (skipped unhashed otherwise)."""
    only_wanted = f" WHERE {wanted}" if wanted else ""
    con.execute(
        f"""
        INSERT INTO _scan_tokens
        SELECT DISTINCT $table, $column, digest, tok
        FROM (SELECT digest, unnest(erasure_tokens(v)) AS tok
              FROM (SELECT DISTINCT v, digest
                    FROM (SELECT v, scan_digest(v) AS digest FROM {column_values(col)}{only_wanted})
                    WHERE digest IN (SELECT digest FROM _scan_check WHERE col = {int(number)})))
        WHERE erasure_candidate(tok)
        """,
        {"table": col.table_name, "column": col.column},
    )


def _tokenise_small_columns(con: duckdb.DuckDBPyConnection, columns: list[TextColumn]) -> None:
    """Tokens of every value of the small columns (fewer than MIN_REMEMBERED_ROWS values), all in
    one statement: each statement that tokenises pays for its plan and regular expressions (about
    20 ms), which a night paid for each of some 55 columns, three times."""
    if not columns:
        return
    values = " UNION ALL ".join(
        f"SELECT {sql_literal(col.table_name)} AS table_name, {sql_literal(col.column)} AS column_name, v "
        f"FROM {column_values(col)}"
        for col in columns
    )
    con.execute(
        f"""
        INSERT INTO _scan_tokens
        SELECT DISTINCT table_name, column_name, digest, tok
        FROM (SELECT table_name, column_name, digest, unnest(erasure_tokens(v)) AS tok
              FROM (SELECT DISTINCT table_name, column_name, v, scan_digest(v) AS digest FROM ({values})))
        WHERE erasure_candidate(tok)
        """
    )


def scan_warehouse(con: duckdb.DuckDBPyConnection) -> int:
    """Fill TEMP _warehouse_hits(table_name, column_name, tok, subject_key, kind, digest) against _targets.

    Returns the number of erased subjects with at least one hit. Nothing is scanned when there
    are no targets. A column found clean is remembered in ``ops.scan_cache`` with a fingerprint
    of its values and of the targets; while neither changes, the column is not read again (the
    purge, the verifier and the blocking check of one night share one full scan). In a column
    that changed, only values not verified before (``ops.scan_values``) are tokenised and hashed,
    plus, on a night with new targets, the remembered values whose tokens' keys meet one of them
    (``scan_memory.find_suspects``).
    """
    install_scan_macros(con)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _warehouse_hits (table_name VARCHAR, column_name VARCHAR, tok VARCHAR,
                                                        subject_key VARCHAR, kind VARCHAR, digest UBIGINT)"""
    )
    if not con.execute("SELECT count(*) FROM _targets").fetchall()[0][0]:
        return 0
    version = state_version(con)
    if con.execute("SELECT list(version) FROM ops.scan_state").fetchall()[0][0] != [version]:
        with transaction(con):  # made by another version: built again, from every value
            for table in ("ops.scan_values", "ops.scan_value_keys", "ops.scan_targets"):
                con.execute(f"DELETE FROM {table}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _new_targets AS {new_targets_sql()}")
    new_targets = con.execute("SELECT count(*) FROM _new_targets").fetchall()[0][0]
    if new_targets:
        remember_new_target_plaintext(con)  # their lengths, while their identifiers are known
    wanted = worth_reading(plain_lengths(con, learn=bool(new_targets)))
    targets = _targets_fingerprint(con)
    clean = {
        (t, c): fp
        for t, c, fp in con.execute(
            "SELECT table_name, column_name, fingerprint FROM ops.scan_cache WHERE targets = ?", [targets]
        ).fetchall()
    }
    scanned: dict[tuple[str, str], str] = {}
    remembered: list[TextColumn] = []
    small: list[TextColumn] = []
    for temp, columns in (
        ("_scan_tokens", "table_name VARCHAR, column_name VARCHAR, digest UBIGINT, tok VARCHAR"),
        ("_scan_seen", "col INTEGER, digest UBIGINT"),  # col: position in `remembered`
    ):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {temp} ({columns})")
    try:
        with memory_limit_at_most(con, SUSPECTS_MEMORY_LIMIT):
            find_suspects(con)
        columns = text_columns(con)
        for col, fingerprint in zip(columns, _fingerprints(con, columns), strict=True):
            key = (col.table_name, col.column)
            if clean.get(key) == fingerprint:
                continue  # found clean before against these targets, and unchanged since
            scanned[key] = fingerprint
            if _rows(fingerprint) < MIN_REMEMBERED_ROWS:
                small.append(col)
            else:
                remembered.append(col)
        _collect_digests(con, remembered, [_rows(scanned[(c.table_name, c.column)]) for c in remembered], wanted)
        _tokenise_small_columns(con, small)
        if remembered:
            with memory_limit_at_most(con, JOIN_MEMORY_LIMIT):
                join_memory(con)
            for (number,) in con.execute("SELECT DISTINCT col FROM _scan_check ORDER BY col").fetchall():
                _tokenise_column(con, remembered[number], number, wanted)
        match_tokens(con, "_scan_tokens", "_scan_keys", every_key="_scan_every_key" if remembered else None)
        con.execute(
            """
            INSERT INTO _warehouse_hits
            SELECT s.table_name, s.column_name, s.tok, t.subject_key, t.kind, s.digest
            FROM _scan_tokens s JOIN _scan_keys k USING (tok)
            JOIN _targets t ON t.kind = k.kind AND t.key = k.key
            """
        )
        dirty = set(con.execute("SELECT DISTINCT table_name, column_name FROM _warehouse_hits").fetchall())
        clean_now = [(t, c, fp, targets) for (t, c), fp in scanned.items() if (t, c) not in dirty]
        with memory_limit_at_most(con, JOIN_MEMORY_LIMIT), transaction(con):
            remember_verified(con, version, checked=bool(remembered))
            if scanned:
                con.execute(
                    "DELETE FROM ops.scan_cache WHERE (table_name, column_name) IN (SELECT unnest(?), unnest(?))",
                    [[t for t, _ in scanned], [c for _, c in scanned]],
                )
            if clean_now:
                con.executemany("INSERT INTO ops.scan_cache VALUES (?, ?, ?, ?, now())", clean_now)
    finally:
        for temp in (
            "_scan_tokens",
            "_scan_keys",
            "_scan_every_key",
            "_scan_seen",
            "_scan_suspects",
            "_scan_check",
            "_new_targets",
        ):
            con.execute(f"DROP TABLE IF EXISTS {temp}")
    return con.execute("SELECT count(DISTINCT subject_key) FROM _warehouse_hits").fetchall()[0][0]


def hit_summary(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int]]:
    """(table, column, erased subjects) of the current _warehouse_hits: names and counts only."""
    return con.execute(
        """SELECT table_name, column_name, count(DISTINCT subject_key) FROM _warehouse_hits
           GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
