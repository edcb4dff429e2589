"""The erasure scan's verified-value memory (``ops.scan_values``, ``ops.scan_targets``,
``ops.scan_target_lengths``): what makes a night's scan cost the day's new values, not history."""

from __future__ import annotations

import duckdb

from assets.purge.columns import TextColumn, column_values, tables_with_columns
from assets.purge.tokens import EMAIL_TOKEN_RE, SCAN_VERSION, SPECIAL, sql_literal

# ``ops.scan_values`` holds the digest (``scan_digest``, 64 bits) of every distinct value the scan
# has tokenised, hashed and found free of every key in ``ops.scan_targets`` (the targets of the last
# scan). A value whose digest is there is not tokenised again: a night only hashes what is new. When
# targets are added (a new erasure), the old values must be checked against them, but their tokens'
# keys are not stored. The purge therefore keeps, in a TEMP table and before it removes anything,
# the plain identifiers of the new targets (``remember_new_target_plaintext``); the scan then reads
# every value once with a cheap necessary condition (``special_suspects_sql``: could one of its
# tokens be one of those identifiers? judged by a substring search of the lowercased value when they
# are few, by hash joins on its pieces otherwise) and checks exactly only the values that pass.
# Where a new target's plain identifier cannot be found any more, nothing is trusted and every value
# is checked exactly, as on the first scan. The memory is rebuilt from the values present whenever
# targets were added, so a value that was gone then is not trusted if it comes back. Digest
# collisions (two values, one 64-bit digest) are the residual risk of the memory, as they are of the
# column fingerprints (``scan._fingerprint``): rare between values that merely look alike
# (``DIGEST_SQL``), but the digest is not keyed or cryptographic, so a value crafted to collide with
# a remembered one is not ruled out.

# A plain value (not ``SPECIAL``) has no token but itself, and holds no '@': it can only be the
# plain account id of an erased subject, byte for byte. So it is only worth reading when its length
# (``strlen``, bytes) is the length of one of the erased account ids searched for. The scan learns
# those lengths when it first learns a target, from the plain identifier the purge keeps
# (``ops.scan_target_lengths``: the target's key and a number, never the identifier), and reads
# every plain value while any account-id target's length is unknown: one whose plain identifier was
# gone before any scan saw it, or one erased before the lengths were kept (an older warehouse).
# Message ids, keyed hashes (64 hex digits) and codes then never reach the grouping, the memory or
# the tokeniser; the column's fingerprint still covers every value.


def state_version(con: duckdb.DuckDBPyConnection) -> str:
    """Tokeniser version, DuckDB version (its hash function) and a probe of the HMAC key."""
    probe = con.execute("SELECT hmac_subject('erasure-scan-state')").fetchall()[0][0][:16]
    return f"{SCAN_VERSION}:duckdb-{duckdb.__version__}:{probe}"


def new_targets_sql() -> str:
    return "SELECT DISTINCT kind, key FROM _targets EXCEPT SELECT kind, key FROM ops.scan_targets"


def remember_new_target_plaintext(con: duckdb.DuckDBPyConnection) -> int:
    """TEMP _target_plain(kind, key, plain): plain identifiers of targets the memory has not seen.

    Called by the purge before it removes anything (and by the scan itself); they are read from
    the rows that carried them in: account ids by subject_key, e-mails by email_key. Plain values
    only ever live in this TEMP table. Returns the number of new target keys still without one.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE _new_targets AS {new_targets_sql()}")
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
    # The vault first: it holds every subject's identifiers until the purge; the other tables are
    # only read for what is still missing then
    found_in_events = [
        f"""SELECT 'account_id' AS kind, subject_key AS key, account_id::VARCHAR AS plain FROM vault.accounts
            WHERE subject_key IN {accounts}"""
    ]
    for prop, column in (("email", "email_key"), ("previous_email", "previous_email_key")):
        found_in_events.append(
            f"""SELECT 'email', {column}, properties->>'$.{prop}' FROM vault.event_properties
                WHERE {column} IN {emails} AND json_type(properties, '$.{prop}') = 'VARCHAR'"""
        )
    found_elsewhere = [
        f"""SELECT 'account_id' AS kind, subject_key AS key, account_id::VARCHAR AS plain
            FROM {table.sql}
            WHERE account_id IS NOT NULL AND subject_key IN {accounts}"""
        for table in tables_with_columns(con, "subject_key", "account_id")
        if table.name != "vault.accounts"
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


def prepare_search(con: duckdb.DuckDBPyConnection) -> bool:
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


def learn_target_lengths(con: duckdb.DuckDBPyConnection) -> None:
    """Keep the byte lengths of the known plain account ids (TEMP _target_plain), by key
    (``ops.scan_target_lengths``). The purge calls it in its own transaction before it removes the
    identifiers, so that a run killed between the two learns what an uninterrupted run learns."""
    con.execute(
        """
        INSERT INTO ops.scan_target_lengths
        SELECT DISTINCT key, strlen(plain) FROM _target_plain
        WHERE kind = 'account_id' AND key NOT IN (SELECT key FROM ops.scan_target_lengths)
        """
    )


def plain_lengths(con: duckdb.DuckDBPyConnection, *, learn: bool) -> list[int] | None:
    """Byte lengths of the plain account ids of tonight's account-id targets, or None when any of
    them is unknown. With `learn`, the new targets' lengths are kept first (``learn_target_lengths``)."""
    if learn:
        learn_target_lengths(con)
    unknown, lengths = con.execute(
        """
        SELECT count(*) FILTER (WHERE l.length IS NULL),
               list(DISTINCT l.length ORDER BY l.length) FILTER (WHERE l.length IS NOT NULL)
        FROM (SELECT DISTINCT key FROM _targets WHERE kind = 'account_id') t
        LEFT JOIN ops.scan_target_lengths l USING (key)
        """
    ).fetchall()[0]
    return None if unknown else [int(n) for n in lengths or []]


def worth_reading(lengths: list[int] | None) -> str | None:
    """SQL on v: the values that may hold a target's token - every special value, and the plain
    values as long as an erased account id (see the notes above); None (every value) when a length
    is unknown."""
    if lengths is None:
        return None
    if not lengths:
        return SPECIAL
    return f"(strlen(v) IN ({', '.join(str(int(n)) for n in lengths)}) OR {SPECIAL})"


#: Up to this many new plain identifiers (``_plain_lower``), a special value is a suspect when its
#: lowercased text contains one of them: a `contains` for each pair, about 4x cheaper for one erasure
#: than cutting every value into pieces (a million message ids: 0.18 s against 0.78 s), but its cost
#: grows with the identifiers searched for (100 of them: 3.0 s), while the pieces' does not.
SUBSTRING_SEARCH_MAX = 8


def few_identifiers(con: duckdb.DuckDBPyConnection) -> bool:
    """Few enough new plain identifiers (TEMP _plain_lower) to search for them as substrings."""
    return con.execute("SELECT count(*) FROM _plain_lower").fetchall()[0][0] <= SUBSTRING_SEARCH_MAX


def special_suspects_sql(col: TextColumn, *, by_substring: bool = False) -> str:
    """Digests of the column's special values that may hold a token of a new target (by joins).

    With `by_substring` (``few_identifiers``): the values with a backslash, and those whose lowercased
    text contains a lowercased account id or a normalised e-mail searched for. That is all it takes:
    every token of a value without a backslash is a piece of its text, an account id's token is the
    id itself and an e-mail's is one whose trimmed, lowercased text is the normalised e-mail, and
    lowercasing maps each character on its own, so the lowercased piece is a piece of the lowercased
    value. Otherwise, by hashes of the pieces:

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
    special = f"SELECT DISTINCT v, scan_digest(v) AS digest FROM {column_values(col)} WHERE {SPECIAL}"
    if by_substring:
        return f"""
        WITH special AS ({special})
        SELECT digest FROM special WHERE contains(v, chr(92))
        UNION
        SELECT s.digest FROM special s JOIN _plain_lower p ON contains(lower(s.v), p.plain)
    """
    return f"""
        WITH special AS ({special}), cut AS (
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


def join_memory(con: duckdb.DuckDBPyConnection, *, everything: bool, gone: bool) -> None:
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


def remember_verified(con: duckdb.DuckDBPyConnection, version: str, *, rebuild: bool, checked: bool) -> None:
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
