"""The erasure scan's tokens: what a value is cut into, its digest, and the matching of tokens to keys.

An identifier is found wherever it stands as a token: a whole value, a JSON string, an e-mail in
any text, or a word of free text ("ticket for acc_000042.", "m-acc_000042"). A word is bounded by
anything but letters, digits and '_' (``RUN_RE``), or by anything but those joined with single
inner '.', ':', '/', '+' or '-' (``WORD_RE``). An identifier glued into a longer word is not
matched: ``acc_42`` inside ``acc_420`` is another account's id, and purging it would destroy a live
subject's data. An account id that itself holds spaces or other separators is found as a whole
value or JSON string only.
"""

from __future__ import annotations

import duckdb

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
#: What the verified-value memory keeps of a keyed hash (``scan_memory.py``): 32 bits of it, the top
#: ones of DuckDB's hash() (a multiplication carries every byte's difference there). Keyed hashes
#: are uniformly random, so two meet by chance once in 4 billion: a value then is checked exactly
#: for nothing, never trusted wrongly (the exact check hashes its tokens in full).
KEY_SQL = "(hash(key) >> 32)::UINTEGER"


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
    con.execute(f"CREATE OR REPLACE TEMP MACRO scan_key(key) AS {KEY_SQL}")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP MACRO erasure_candidate(tok) AS
            length(tok) BETWEEN 1 AND {MAX_TOKEN} AND NOT regexp_full_match(tok, '[0-9a-f]{{64}}')
        """
    )


#: A value that is not "plain": its tokens may be other than itself (anything but one run of
#: letters, digits and '_': a word separator, an '@', a '"', whitespace, or nothing at all).
SPECIAL = f"(NOT regexp_full_match(v, {sql_literal(RUN_RE)}))"


def match_tokens(con: duckdb.DuckDBPyConnection, tokens: str, into: str, *, every_key: str | None = None) -> None:
    """TEMP `into`(tok, kind, key): the keys of the distinct tokens of TEMP `tokens` that are targets.

    Each distinct token is hashed once as an account id and, if it holds an '@', as an e-mail. With
    `every_key`, the key of every token is kept there too, as TEMP `every_key`(tok, key): ``scan_key``
    of each of its keys (what the verified-value memory keeps).
    """
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _token_keys AS
        WITH distinct_tokens AS (SELECT DISTINCT tok FROM {tokens}),
        hashed AS (
            SELECT tok, hmac_subject(tok) AS subject_hash,
                   CASE WHEN contains(tok, '@') THEN norm_email(tok) END AS email
            FROM distinct_tokens
        )
        SELECT tok, 'account_id' AS kind, subject_hash AS key FROM hashed
        UNION ALL
        SELECT tok, 'email', CASE WHEN email = tok THEN subject_hash ELSE hmac_subject(email) END
        FROM hashed WHERE email IS NOT NULL AND email <> ''
        """
    )
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {into} AS
                SELECT k.* FROM _token_keys k SEMI JOIN _targets t ON t.kind = k.kind AND t.key = k.key"""
        )
        if every_key:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {every_key} AS "
                "SELECT DISTINCT tok, scan_key(key) AS key FROM _token_keys"
            )
    finally:
        con.execute("DROP TABLE IF EXISTS _token_keys")
