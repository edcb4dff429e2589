"""The erasure scan's verified-value memory (``ops.scan_values`` and its key index
``ops.scan_value_keys``, ``ops.scan_targets``, ``ops.scan_target_lengths``): what makes a night's scan
tokenise the day's new values, not history, and check old values against a new target by a join."""

from __future__ import annotations

import duckdb

from assets.purge.columns import tables_with_columns
from assets.purge.tokens import SCAN_VERSION, SPECIAL

# ``ops.scan_values`` holds the digest (``scan_digest``, 64 bits) of every distinct value the scan
# has tokenised, hashed and found free of every key in ``ops.scan_targets`` (the targets of the last
# scan). A value whose digest is there is not tokenised again: a night only hashes what is new.
# ``ops.scan_value_keys`` is the memory's key index: for each remembered value, ``scan_key`` of the
# keyed hash of each of its tokens (as an account id, and as an e-mail when it holds an '@'), written
# with the value in one transaction, from the hashes the check computed anyway. A new target is
# therefore a join: the remembered values holding a token with its key (``find_suspects``) leave the
# memory, whether they are still present or not, and those present are checked exactly again. The
# cost follows the new targets and the index, not the values of history, and needs no plain
# identifier: a target whose identifier left the vault before any scan saw it is found the same way.
# A value that is no longer present stays remembered: any target added since would have made it a
# suspect and taken it out, so it is still clean if it comes back. The memory is dropped whole only
# when its version changes (``MEMORY_VERSION``).
# The index keeps 32 bits of each key, so a value may be checked again for nothing (once in 4 billion
# pairs), never trusted wrongly. Digest collisions (two values, one 64-bit digest) are the residual
# risk of the memory, as they are of the column fingerprints (``scan._fingerprints``): rare between
# values that merely look alike (``DIGEST_SQL``), but the digest is not keyed or cryptographic, so a
# value crafted to collide with a remembered one is not ruled out.

# A plain value (not ``SPECIAL``) has no token but itself, and holds no '@': it can only be the
# plain account id of an erased subject, byte for byte. So it is only worth reading when its length
# (``strlen``, bytes) is the length of one of the erased account ids searched for. The scan learns
# those lengths when it first learns a target, from the plain identifier the purge keeps
# (``ops.scan_target_lengths``: the target's key and a number, never the identifier), and reads
# every plain value while any account-id target's length is unknown: one whose plain identifier was
# gone before any scan saw it, or one erased before the lengths were kept (an older warehouse).
# Message ids, keyed hashes (64 hex digits) and codes then never reach the grouping, the memory or
# the tokeniser; the column's fingerprint still covers every value.

#: Part of the memory's state: a memory made by another version is dropped and built again.
MEMORY_VERSION = "keys-v1"


def state_version(con: duckdb.DuckDBPyConnection) -> str:
    """Tokeniser version, DuckDB version (its hash function) and a probe of the HMAC key."""
    probe = con.execute("SELECT hmac_subject('erasure-scan-state')").fetchall()[0][0][:16]
    return f"{SCAN_VERSION}:{MEMORY_VERSION}:duckdb-{duckdb.__version__}:{probe}"


def new_targets_sql() -> str:
    return "SELECT DISTINCT kind, key FROM _targets EXCEPT SELECT kind, key FROM ops.scan_targets"


def remember_new_target_plaintext(con: duckdb.DuckDBPyConnection) -> int:
    """TEMP _target_plain(kind, key, plain): the plain account ids of the account-id targets the
    memory has not seen, for their byte lengths (``learn_target_lengths``; the key index needs no
    plain identifier, and no e-mail is read).

    Called by the purge before it removes anything (and by the scan itself); they are read from
    the rows that carried them in, by subject_key. Plain values only ever live in this TEMP table.
    Returns the number of new account-id targets still without one.
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE _new_targets AS {new_targets_sql()}")
    con.execute(
        """
        CREATE TEMP TABLE IF NOT EXISTS _target_plain (kind VARCHAR, key VARCHAR, plain VARCHAR)
        """
    )
    missing = """(SELECT key FROM _new_targets WHERE kind = 'account_id'
                 EXCEPT SELECT key FROM _target_plain WHERE kind = 'account_id')"""
    if not con.execute(f"SELECT count(*) FROM {missing}").fetchall()[0][0]:
        return 0  # every new target's plain account id is known already (the purge's call found them)
    # The vault first: it holds every subject's account id until the purge; the other tables are
    # only read for what is still missing then
    tables = tables_with_columns(con, "subject_key", "account_id")
    vault = [t for t in tables if t.name == "vault.accounts"]
    for found in (vault, [t for t in tables if t.name != "vault.accounts"]):
        if not found or not con.execute(f"SELECT count(*) FROM {missing}").fetchall()[0][0]:
            continue
        union = " UNION ALL ".join(
            f"SELECT subject_key, account_id::VARCHAR AS plain FROM {t.sql} WHERE account_id IS NOT NULL" for t in found
        )
        con.execute(
            f"""
            INSERT INTO _target_plain
            SELECT DISTINCT 'account_id', subject_key, plain FROM ({union})
            WHERE subject_key IN {missing} AND hmac_subject(plain) = subject_key
            """
        )
    return con.execute(f"SELECT count(*) FROM {missing}").fetchall()[0][0]


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


def find_suspects(con: duckdb.DuckDBPyConnection) -> None:
    """TEMP _scan_suspects(digest): the remembered values with a token whose key is a new target's
    (TEMP _new_targets, ``remember_new_target_plaintext``), by ``ops.scan_value_keys``."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _scan_suspects AS
        SELECT DISTINCT digest FROM ops.scan_value_keys
        WHERE key IN (SELECT scan_key(key) FROM _new_targets)
        """
    )


def join_memory(con: duckdb.DuckDBPyConnection) -> None:
    """TEMP _scan_check(col, digest, known): tonight's digests (TEMP _scan_seen) to check exactly -
    those not in the memory, and the suspects (TEMP _scan_suspects) - in one join."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _scan_check AS
        SELECT s.col, s.digest, m.digest IS NOT NULL AS known
        FROM _scan_seen s LEFT JOIN ops.scan_values m ON m.digest = s.digest
        WHERE m.digest IS NULL OR s.digest IN (SELECT digest FROM _scan_suspects)
        """
    )


def remember_verified(con: duckdb.DuckDBPyConnection, version: str, *, checked: bool) -> None:
    """The memory after a scan, in the caller's transaction: the suspects and the values found
    holding a target leave it; the values just checked and found clean join it, with the keys of
    their tokens (TEMP _scan_tokens and _scan_every_key, ``tokens.match_tokens``)."""
    # The keys of a forgotten value stay in the index: it is no longer trusted, so they can only make
    # it a suspect again, and deleting them would read the whole index (about 12 bytes a token of
    # every value of history) into the buffer pool every night with a target.
    con.execute(
        """DELETE FROM ops.scan_values
           WHERE digest IN (SELECT digest FROM _scan_suspects UNION SELECT digest FROM _warehouse_hits)"""
    )
    if checked:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _scan_clean AS
            SELECT DISTINCT digest FROM _scan_check
            WHERE col IS NOT NULL AND (NOT known OR digest IN (SELECT digest FROM _scan_suspects))
              AND digest NOT IN (SELECT digest FROM _warehouse_hits)
            """
        )
        con.execute("INSERT INTO ops.scan_values SELECT digest FROM _scan_clean")
        con.execute(
            """
            INSERT INTO ops.scan_value_keys
            SELECT DISTINCT t.digest, k.key
            FROM _scan_tokens t JOIN _scan_every_key k USING (tok)
            WHERE t.digest IN (SELECT digest FROM _scan_clean)
              AND t.digest NOT IN (SELECT digest FROM _scan_suspects)  -- their keys are there already
            """
        )
        con.execute("DROP TABLE _scan_clean")
    # The memory now stands for exactly tonight's targets (fewer than before when an e-mail came
    # to be held by a live account again: it is then a new target the day it is released).
    con.execute("DELETE FROM ops.scan_targets")
    con.execute("INSERT INTO ops.scan_targets SELECT DISTINCT kind, key FROM _targets")
    con.execute("DELETE FROM ops.scan_state")
    con.execute("INSERT INTO ops.scan_state VALUES (?)", [version])
