"""The generic residual scan: find erased identifiers in any text column of any warehouse table.

Only keys of erased identifiers are stored (``compliance.erased_identifiers``), so matching is
"hash the candidate tokens and join": every distinct value of every VARCHAR/JSON column (found in
``information_schema``, so a table added tomorrow cannot escape) is cut into candidate tokens -
the whole value, e-mail-like substrings, JSON string values and the words of free text - and each
distinct token is hashed once with ``hmac_subject`` (account ids) and, when it holds an '@',
``hmac_email`` (e-mails). Tokens that are 64-hex keys are skipped. Plain tokens only ever live in
TEMP tables.

An identifier is found wherever it stands as a token: a whole value, a JSON string, an e-mail in
any text, or a word of free text ("ticket for acc_000042.", "m-acc_000042"). A word is bounded by
anything but letters, digits and '_' (``RUN_RE``), or by anything but those joined with single
inner '.', ':', '/', '+' or '-' (``WORD_RE``). An identifier glued into a longer word is not
matched: ``acc_42`` inside ``acc_420`` is another account's id, and purging it would destroy a live
subject's data. An account id that itself holds spaces or other separators is found as a whole
value or JSON string only.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from assets.purge.state import EXEMPT_TABLES
from pipelines.warehouse import memory_limit_at_most

#: The whitespace trimmed off tokens: space, tab, LF, CR, FF, VT.
_WS_CODES = (32, 9, 10, 13, 12, 11)
_WS = " || ".join(f"chr({c})" for c in _WS_CODES)
#: An e-mail-like substring of free text (the contract's rule: something@something).
EMAIL_TOKEN_RE = r"""[^\s"'<>()\[\]{},;:\\@]+@[^\s"'<>()\[\]{},;:\\@]+"""
#: A word of free text: letters, digits and '_', joined by single inner '.', ':', '/', '+' or '-'.
WORD_RE = r"[\pL\pN_]+(?:[.:/+-][\pL\pN_]+)*"
#: A bare run of letters, digits and '_'. A value that is one run has no token but itself.
RUN_RE = r"[\pL\pN_]+"
#: The contents of a JSON string literal (works on broken JSON too).
JSON_STRING_RE = r'"((?:[^"\\]|\\.)*)"'
#: The userId of a Segment line, even when the line is not valid JSON.
USER_ID_RE = r'"userId"\s*:\s*"((?:[^"\\]|\\.)*)"'
#: Tokens longer than this are not identifiers (and are not worth a hash).
MAX_TOKEN = 512
#: Part of every scan-cache fingerprint: change it when the tokenisation or the digest changes.
SCAN_VERSION = "tokens-v2:digest-v2"
#: The 64-bit digest of a value (the verified-value memory, the column fingerprints). DuckDB's
#: hash() of a string xors and multiplies it 8 bytes at a time, and a multiplication only carries
#: a difference upwards: two strings that differ only in the top bytes of consecutive 8-byte
#: blocks often collide ('user100686.name802@example.com' and 'user100886.name202@example.com'
#: share a hash), far more often than a good 64-bit hash would. A value sharing the digest of a
#: remembered clean value would be trusted unread. The same bytes hashed again from byte 5 put
#: those differences in the low bytes of their blocks, where they reach every bit; it costs little
#: next to md5 (docs/scaling.md). Not a cryptographic digest.
DIGEST_SQL = "hash(v, substr(v, 5))"


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def install_scan_macros(con: duckdb.DuckDBPyConnection) -> None:
    """TEMP macros scan_digest(v), erasure_unescape(s) and erasure_tokens(v) on this connection."""
    con.execute(f"CREATE OR REPLACE TEMP MACRO scan_digest(v) AS {DIGEST_SQL}")
    con.execute(
        "CREATE OR REPLACE TEMP MACRO erasure_unescape(s) AS CASE WHEN contains(s, chr(92)) "
        "THEN coalesce(try(json_extract_string('\"' || s || '\"', '$')), s) ELSE s END"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP MACRO erasure_words(v) AS
            regexp_extract_all(v, {sql_literal(WORD_RE)}) || regexp_extract_all(v, {sql_literal(RUN_RE)})
        """
    )
    # The tokens of a value other than itself: its words, its e-mail-like substrings and its JSON
    # strings (unescaped, with their words when an escape could hide one).
    con.execute(
        f"""
        CREATE OR REPLACE TEMP MACRO erasure_pieces(v) AS
        CASE WHEN regexp_full_match(v, {sql_literal(RUN_RE)}) THEN []
             WHEN contains(v, '@') OR contains(v, '"') THEN list_distinct(
                 erasure_words(v)
                 || regexp_extract_all(v, {sql_literal(EMAIL_TOKEN_RE)})
                 || flatten(list_transform(regexp_extract_all(v, {sql_literal(JSON_STRING_RE)}, 1),
                                           lambda s: CASE WHEN NOT contains(s, chr(92)) THEN [s]
                                               ELSE [erasure_unescape(s)] || erasure_words(erasure_unescape(s)) END)))
             ELSE list_distinct(erasure_words(v)) END
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP MACRO erasure_tokens(v) AS
        list_distinct(CASE WHEN v = trim(v, {_WS}) THEN [v] ELSE [v, trim(v, {_WS})] END || erasure_pieces(v))
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
    """Cheap fingerprint of a column's multiset of values (row order does not matter).

    One statement per column: faster than one pass per table with FILTERed aggregates
    (docs/scaling.md)."""
    count, total = con.execute(
        f"SELECT count({col.sql_column}), coalesce(sum(scan_digest({col.sql_column}::VARCHAR))::HUGEINT, 0) "
        f"FROM {col.sql_table} WHERE {col.sql_column} IS NOT NULL"
    ).fetchall()[0]
    return f"{count}:{total}"


def _rows(fingerprint: str) -> int:
    """The number of values a column fingerprint counts."""
    return int(fingerprint.split(":", 1)[0])


def _targets_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    count, total = con.execute(
        "SELECT count(*), coalesce(sum(scan_digest(subject_key || kind || key))::HUGEINT, 0) FROM _targets"
    ).fetchall()[0]
    return f"{SCAN_VERSION}:{count}:{total}"


# ---------------------------------------------------------------------------------------------
# The verified-value memory (what makes a night's scan cost the day's new values, not history)
# ---------------------------------------------------------------------------------------------
#
# ``ops.scan_values`` holds the digest (``scan_digest``, 64 bits) of every distinct value the scan
# has tokenised, hashed and found free of every key in ``ops.scan_targets`` (the targets of the
# last scan). A value whose digest is there is not tokenised again: a night only hashes what is
# new. When targets are added (a new erasure), the old values must be checked against them, but
# their tokens' keys are not stored. The purge therefore keeps, in a TEMP table and before it
# removes anything, the plain identifiers of the new targets (``remember_new_target_plaintext``);
# the scan then reads every value once with a cheap necessary condition (``_suspects_sql``: could
# one of its tokens be one of those identifiers? judged by hash joins on the lowercased value's
# pieces) and checks exactly only the values that pass. Where a new target's plain identifier
# cannot be found any more, nothing is trusted and every value is checked exactly, as on the first
# scan. The memory is rebuilt from the values present whenever targets were added, so a value that
# was gone then is not trusted if it comes back. Digest collisions (two values, one 64-bit digest)
# are the residual risk of the memory, as they are of the column fingerprints above: rare between
# values that merely look alike (``DIGEST_SQL``), but the digest is not keyed or cryptographic, so
# a value crafted to collide with a remembered one is not ruled out.

# A plain value (not ``_SPECIAL``) has no token but itself, and holds no '@': it can only be the
# plain account id of an erased subject, byte for byte. So it is only worth reading when its length
# (``strlen``, bytes) is the length of one of the erased account ids searched for. The scan learns
# those lengths when it first learns a target, from the plain identifier the purge keeps
# (``ops.scan_target_lengths``: the target's key and a number, never the identifier), and reads
# every plain value while any account-id target's length is unknown: one whose plain identifier was
# gone before any scan saw it, or one erased before the lengths were kept (an older warehouse).
# Message ids, keyed hashes (64 hex digits) and codes then never reach the grouping, the memory or
# the tokeniser; the column's fingerprint still covers every value.

#: Values of tables smaller than this are checked exactly every time and never remembered.
MIN_REMEMBERED_ROWS = 10_000
#: DuckDB's memory limit while tonight's digests are joined with the memory. Both sides hold tens of
#: millions of rows at production scale (64M and 44.7M at 3M accounts). At the connection's limit
#: (2GB) the join fills DuckDB's buffer pool and takes the process over 3 GB. Slicing the join by
#: the digests' top bits also bounds the peak, but every slice reads both sides whole, so its cost
#: grows with slices x rows. One join under a smaller budget reads each side once: DuckDB's hash
#: join partitions and spills when it does not fit, at about the same speed (docs/scaling.md).
JOIN_MEMORY_LIMIT = "1GB"


def _state_version(con: duckdb.DuckDBPyConnection) -> str:
    """Tokeniser version, DuckDB version (its hash function) and a probe of the HMAC key."""
    probe = con.execute("SELECT hmac_subject('erasure-scan-state')").fetchall()[0][0][:16]
    return f"{SCAN_VERSION}:duckdb-{duckdb.__version__}:{probe}"


def _new_targets_sql() -> str:
    return "SELECT DISTINCT kind, key FROM _targets EXCEPT SELECT kind, key FROM ops.scan_targets"


def remember_new_target_plaintext(con: duckdb.DuckDBPyConnection) -> int:
    """TEMP _target_plain(kind, key, plain): plain identifiers of targets the memory has not seen.

    Called by the purge before it removes anything (and by the scan itself); they are read from
    the rows that carried them in: account ids by subject_key, e-mails by email_key. Plain values
    only ever live in this TEMP table. Returns the number of new target keys still without one.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE _new_targets AS {_new_targets_sql()}")
    con.execute(
        """
        CREATE TEMP TABLE IF NOT EXISTS _target_plain (kind VARCHAR, key VARCHAR, plain VARCHAR)
        """
    )
    missing = "(SELECT kind, key FROM _new_targets EXCEPT SELECT kind, key FROM _target_plain)"
    accounts = f"(SELECT key FROM {missing} WHERE kind = 'account_id')"
    emails = f"(SELECT key FROM {missing} WHERE kind = 'email')"
    if not con.execute(f"SELECT count(*) FROM {missing}").fetchall()[0][0]:
        return 0  # every new target's plain identifier is known already (the purge's call found them)
    # landing.events first: every erased subject's events carried its identifiers in until the
    # purge; the other tables are only read for what is still missing then
    found_in_events = [
        f"""SELECT 'account_id' AS kind, subject_key AS key, account_id::VARCHAR AS plain FROM landing.events
            WHERE account_id IS NOT NULL AND subject_key IN {accounts}"""
    ]
    for prop, column in (("email", "email_key"), ("previous_email", "previous_email_key")):
        found_in_events.append(
            f"""SELECT 'email', {column}, properties->>'$.{prop}' FROM landing.events
                WHERE {column} IN {emails} AND json_type(properties, '$.{prop}') = 'VARCHAR'"""
        )
    found_elsewhere = [
        f"""SELECT 'account_id' AS kind, subject_key AS key, account_id::VARCHAR AS plain
            FROM {quote(schema)}.{quote(table)}
            WHERE account_id IS NOT NULL AND subject_key IN {accounts}"""
        for schema, table in tables_with_columns(con, "subject_key", "account_id")
        if (schema, table) != ("landing", "events")
    ]
    for found in (found_in_events, found_elsewhere):
        if not found or not con.execute(f"SELECT count(*) FROM {missing}").fetchall()[0][0]:
            break
        union = " UNION ALL ".join(found)
        con.execute(
            f"""
            INSERT INTO _target_plain
            SELECT DISTINCT kind, key, plain FROM ({union})
            WHERE CASE kind WHEN 'account_id' THEN hmac_subject(plain) ELSE hmac_email(plain) END = key
            """
        )
    return con.execute(f"SELECT count(*) FROM {missing}").fetchall()[0][0]


def _prepare_search(con: duckdb.DuckDBPyConnection) -> bool:
    """TEMP _plain_exact / _plain_lower: the new targets' plain identifiers (account ids as they are;
    lowercased account ids and normalised e-mails). False when some new target has no known plain
    identifier any more: then every value is checked exactly.

    There is no cap on their number: the search joins on hashes, so its cost follows the values
    read, not the identifiers searched for. (A cap of 5,000 made the 3M night - 8,300 new
    identifiers - tokenise and HMAC every value of the warehouse: 6.7x the 1M night.)"""
    if remember_new_target_plaintext(con):
        return False
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _plain_exact AS
        SELECT DISTINCT p.plain FROM _target_plain p SEMI JOIN _new_targets n USING (kind, key)
        WHERE p.kind = 'account_id'
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _plain_lower AS
        SELECT DISTINCT CASE p.kind WHEN 'account_id' THEN lower(p.plain) ELSE norm_email(p.plain) END AS plain
        FROM _target_plain p SEMI JOIN _new_targets n USING (kind, key)
        """
    )
    return True


def _plain_lengths(con: duckdb.DuckDBPyConnection, *, learn: bool) -> list[int] | None:
    """Byte lengths of the plain account ids of tonight's account-id targets, or None when any of
    them is unknown. With `learn`, the lengths of the new targets' plain identifiers (TEMP
    _target_plain) are kept first, by key (``ops.scan_target_lengths``)."""
    if learn:
        con.execute(
            """
            INSERT INTO ops.scan_target_lengths
            SELECT DISTINCT key, strlen(plain) FROM _target_plain
            WHERE kind = 'account_id' AND key NOT IN (SELECT key FROM ops.scan_target_lengths)
            """
        )
    unknown, lengths = con.execute(
        """
        SELECT count(*) FILTER (WHERE l.length IS NULL),
               list(DISTINCT l.length ORDER BY l.length) FILTER (WHERE l.length IS NOT NULL)
        FROM (SELECT DISTINCT key FROM _targets WHERE kind = 'account_id') t
        LEFT JOIN ops.scan_target_lengths l USING (key)
        """
    ).fetchall()[0]
    return None if unknown else [int(n) for n in lengths or []]


#: A value that is not "plain": its tokens may be other than itself (anything but one run of
#: letters, digits and '_': a word separator, an '@', a '"', whitespace, or nothing at all).
_SPECIAL = f"(NOT regexp_full_match(v, {sql_literal(RUN_RE)}))"


def _worth_reading(lengths: list[int] | None) -> str | None:
    """SQL on v: the values that may hold a target's token - every special value, and the plain
    values as long as an erased account id (see the notes above); None (every value) when a length
    is unknown."""
    if lengths is None:
        return None
    if not lengths:
        return _SPECIAL
    return f"(strlen(v) IN ({', '.join(str(int(n)) for n in lengths)}) OR {_SPECIAL})"


def _column_values(col: TextColumn) -> str:
    """v: every non-NULL value of the column as text, one row per row."""
    return f"(SELECT {col.sql_column}::VARCHAR AS v FROM {col.sql_table} WHERE {col.sql_column} IS NOT NULL)"


def _special_suspects_sql(col: TextColumn) -> str:
    """Digests of the column's special values that may hold a token of a new target (by joins).

    A value's tokens are v, trim(v), its words, its e-mail-like substrings and its JSON string contents. A
    value with a backslash (a JSON escape could spell anything) or with whitespace at either end
    or next to a double quote is a suspect. In any other value, every token is the whole value, a
    piece between two double quotes (with no whitespace to trim), a word or an e-mail-like
    substring (none either); lowercasing commutes with cutting, so the lowercased value's pieces and
    e-mail-like substrings are looked up among the lowercased account ids and normalised e-mails.
    (A plain value, without any of these characters, has only v and trim(v) = v as tokens, which
    can only be account ids: its digest is looked up directly, see ``_collect_column``.)
    """
    ws = r"[\t\n\v\f\r ]"
    return f"""
        WITH special AS (
            SELECT DISTINCT v, scan_digest(v) AS digest FROM {_column_values(col)} WHERE {_SPECIAL}
        ), cut AS (
            SELECT digest,
                   unnest([lv] || string_split(lv, '"') || erasure_words(lv)
                          || CASE WHEN contains(lv, '@') THEN regexp_extract_all(lv, {sql_literal(EMAIL_TOKEN_RE)})
                                  ELSE [] END) AS piece
            FROM (SELECT digest, lower(v) AS lv FROM special)
        )
        SELECT digest FROM special
        WHERE contains(v, chr(92)) OR regexp_matches(v, {sql_literal(f'^{ws}|{ws}$|{ws}"|"{ws}')})
        UNION
        SELECT digest FROM cut WHERE hash(piece) IN (SELECT hash(plain) FROM _plain_lower)
    """


def _collect_column(
    con: duckdb.DuckDBPyConnection,
    col: TextColumn,
    number: int,
    *,
    search: bool,
    wanted: str | None = None,
    fingerprint: str | None = None,
) -> str:
    """The distinct digests of a column's `wanted` values (TEMP _column); returns the column's
    fingerprint (`_fingerprint`, over every value; the one given when the caller has just taken it).
    Remembered columns add their digests to TEMP _scan_seen (under the column's `number`) and, on a
    night with new targets, their suspects to TEMP _scan_suspects. When every value is wanted
    (`wanted` None), one pass gives both."""
    if wanted is None:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _column AS
                SELECT scan_digest(v) AS digest, count(*) AS n, bool_or({_SPECIAL}) AS special
                FROM {_column_values(col)} GROUP BY ALL"""
        )
        count, total = con.execute(
            "SELECT coalesce(sum(n), 0), coalesce(sum(digest::HUGEINT * n), 0) FROM _column"
        ).fetchall()[0]
        fingerprint = f"{count}:{total}"
    else:
        fingerprint = fingerprint or _fingerprint(con, col)
        count = _rows(fingerprint)
        if count >= MIN_REMEMBERED_ROWS:
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _column AS
                    SELECT scan_digest(v) AS digest, bool_or({_SPECIAL}) AS special
                    FROM {_column_values(col)} WHERE {wanted} GROUP BY ALL"""
            )
    if count < MIN_REMEMBERED_ROWS:
        return fingerprint
    con.execute("INSERT INTO _scan_seen SELECT ?, digest FROM _column", [number])
    if search:
        con.execute(
            """INSERT INTO _scan_suspects
               SELECT digest FROM _column
               WHERE NOT special AND digest IN (SELECT scan_digest(plain) FROM _plain_exact)"""
        )
        if con.execute("SELECT count(*) FROM _column WHERE special").fetchall()[0][0]:
            con.execute(f"INSERT INTO _scan_suspects {_special_suspects_sql(col)}")
    return fingerprint


def _tokenise_column(
    con: duckdb.DuckDBPyConnection, col: TextColumn, number: int | None = None, wanted: str | None = None
) -> None:
    """Tokens of the column's values to check exactly: all of them, or (with the column's `number`)
    those in TEMP _scan_check, which are among its `wanted` values (skipped unhashed otherwise)."""
    only_wanted = f" WHERE {wanted}" if number is not None and wanted else ""
    values = f"(SELECT v, scan_digest(v) AS digest FROM {_column_values(col)}{only_wanted})"
    if number is not None:
        values = f"""(SELECT v, digest FROM {values}
                      WHERE digest IN (SELECT digest FROM _scan_check WHERE col = {int(number)}))"""
    con.execute(
        f"""
        INSERT INTO _scan_tokens
        SELECT DISTINCT $table, $column, digest, tok
        FROM (SELECT digest, unnest(erasure_tokens(v)) AS tok FROM (SELECT DISTINCT v, digest FROM {values}))
        WHERE erasure_candidate(tok)
        """,
        {"table": col.table_name, "column": col.column},
    )


def scan_warehouse(con: duckdb.DuckDBPyConnection) -> int:
    """Fill TEMP _warehouse_hits(table_name, column_name, tok, subject_key, kind, digest) against _targets.

    Returns the number of erased subjects with at least one hit. Nothing is scanned when there
    are no targets. A column found clean is remembered in ``ops.scan_cache`` with a fingerprint
    of its values and of the targets; while neither changes, the column is not read again (the
    purge, the verifier and the blocking check of one night share one full scan). In a column
    that changed, only values not verified before (``ops.scan_values``) are tokenised and hashed,
    plus, on a night with new targets, the values that may hold one of them (see the notes above).
    """
    install_scan_macros(con)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _warehouse_hits (table_name VARCHAR, column_name VARCHAR, tok VARCHAR,
                                                        subject_key VARCHAR, kind VARCHAR, digest UBIGINT)"""
    )
    if not con.execute("SELECT count(*) FROM _targets").fetchall()[0][0]:
        return 0
    version = _state_version(con)
    if con.execute("SELECT list(version) FROM ops.scan_state").fetchall()[0][0] != [version]:
        con.execute("DELETE FROM ops.scan_values")
        con.execute("DELETE FROM ops.scan_targets")
    new_targets = con.execute(f"SELECT count(*) FROM ({_new_targets_sql()})").fetchall()[0][0]
    search = bool(new_targets) and _prepare_search(con)
    everything = bool(new_targets) and not search  # new targets whose plain identifiers are gone
    lengths = _plain_lengths(con, learn=bool(new_targets))
    wanted = _worth_reading(None if everything else lengths)
    targets = _targets_fingerprint(con)
    clean = {
        (t, c): fp
        for t, c, fp in con.execute(
            "SELECT table_name, column_name, fingerprint FROM ops.scan_cache WHERE targets = ?", [targets]
        ).fetchall()
    }
    scanned: dict[tuple[str, str], str] = {}
    remembered: list[TextColumn] = []
    for temp, columns in (
        ("_scan_tokens", "table_name VARCHAR, column_name VARCHAR, digest UBIGINT, tok VARCHAR"),
        ("_scan_seen", "col INTEGER, digest UBIGINT"),  # col: position in `remembered`
        ("_scan_suspects", "digest UBIGINT"),
    ):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {temp} ({columns})")
    try:
        for col in text_columns(con):
            key = (col.table_name, col.column)
            now = _fingerprint(con, col) if key in clean else None
            if now is not None and now == clean[key]:
                continue  # found clean before against these targets, and unchanged since
            fingerprint = _collect_column(con, col, len(remembered), search=search, wanted=wanted, fingerprint=now)
            scanned[key] = fingerprint
            if _rows(fingerprint) < MIN_REMEMBERED_ROWS:
                _tokenise_column(con, col)
            else:
                remembered.append(col)
        if remembered:
            with memory_limit_at_most(con, JOIN_MEMORY_LIMIT):
                _join_memory(con, everything=everything, gone=bool(new_targets))
            for (number,) in con.execute(
                "SELECT DISTINCT col FROM _scan_check WHERE col IS NOT NULL ORDER BY col"
            ).fetchall():
                _tokenise_column(con, remembered[number], number, wanted)
        match_tokens(con, "_scan_tokens", "_scan_keys")
        con.execute(
            """
            INSERT INTO _warehouse_hits
            SELECT s.table_name, s.column_name, s.tok, t.subject_key, t.kind, s.digest
            FROM _scan_tokens s JOIN _scan_keys k USING (tok)
            JOIN _targets t ON t.kind = k.kind AND t.key = k.key
            """
        )
        with memory_limit_at_most(con, JOIN_MEMORY_LIMIT):
            _remember_verified(con, version, rebuild=bool(new_targets), checked=bool(remembered))
    finally:
        for temp in ("_scan_tokens", "_scan_keys", "_scan_seen", "_scan_suspects", "_scan_check", "_column"):
            con.execute(f"DROP TABLE IF EXISTS {temp}")
    dirty = set(con.execute("SELECT DISTINCT table_name, column_name FROM _warehouse_hits").fetchall())
    clean_now = [(t, c, fp, targets) for (t, c), fp in scanned.items() if (t, c) not in dirty]
    if scanned:
        con.execute(
            "DELETE FROM ops.scan_cache WHERE (table_name, column_name) IN (SELECT unnest(?), unnest(?))",
            [[t for t, _ in scanned], [c for _, c in scanned]],
        )
    if clean_now:
        con.executemany("INSERT INTO ops.scan_cache VALUES (?, ?, ?, ?, now())", clean_now)
    return con.execute("SELECT count(DISTINCT subject_key) FROM _warehouse_hits").fetchall()[0][0]


def _join_memory(con: duckdb.DuckDBPyConnection, *, everything: bool, gone: bool) -> None:
    """TEMP _scan_check(col, digest, known): tonight's digests (TEMP _scan_seen) to check exactly -
    those not in the memory and the suspects, or all of them when `everything` - and, with `gone`,
    the memory's digests not seen tonight (col NULL), in one join that reads each side once."""
    check = "true" if everything else "m.digest IS NULL OR s.digest IN (SELECT digest FROM _scan_suspects)"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _scan_check AS
        SELECT s.col, coalesce(s.digest, m.digest) AS digest, m.digest IS NOT NULL AS known
        FROM _scan_seen s {"FULL" if gone else "LEFT"} JOIN ops.scan_values m ON m.digest = s.digest
        WHERE s.digest IS NULL OR {check}
        """
    )


def _remember_verified(con: duckdb.DuckDBPyConnection, version: str, *, rebuild: bool, checked: bool) -> None:
    """Add the values just found clean to ops.scan_values; after new targets, also drop the values
    that are not present any more and those found holding a target (TEMP _scan_check)."""
    hits = "SELECT digest FROM _warehouse_hits"
    if rebuild:
        # without remembered columns, nothing of the memory was seen tonight
        gone = "SELECT digest FROM _scan_check WHERE col IS NULL" if checked else "SELECT digest FROM ops.scan_values"
        con.execute(f"DELETE FROM ops.scan_values WHERE digest IN ({gone}) OR digest IN ({hits})")
    if checked:
        con.execute(
            f"""INSERT INTO ops.scan_values
                SELECT DISTINCT digest FROM _scan_check
                WHERE col IS NOT NULL AND NOT known AND digest NOT IN ({hits})"""
        )
    # The memory now stands for exactly tonight's targets (fewer than before when an e-mail came
    # to be held by a live account again: it is then a new target the day it is released).
    con.execute("DELETE FROM ops.scan_targets")
    con.execute("INSERT INTO ops.scan_targets SELECT DISTINCT kind, key FROM _targets")
    con.execute("DELETE FROM ops.scan_state")
    con.execute("INSERT INTO ops.scan_state VALUES (?)", [version])


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
