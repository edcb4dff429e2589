"""Keyed hashes of CONTRACT section 4, in Python and as DuckDB SQL macros.

subject_key = hex(HMAC-SHA256(key, account_id))
email_key   = hex(HMAC-SHA256(key, lower(trim(email))))

The SQL macros implement HMAC from its definition, H((K^opad) || H((K^ipad) || m)), with
DuckDB's vectorised sha256, so millions of rows hash without a Python loop.
"""

from __future__ import annotations

import hashlib
import hmac

import duckdb

_BLOCK = 64


def subject_key(key: str, account_id: str) -> str:
    return hmac.new(key.encode(), account_id.encode(), hashlib.sha256).hexdigest()


#: ASCII whitespace trimmed around an e-mail, identically in Python and in SQL.
WHITESPACE = " \t\n\r\f\v"


def normalise_email(email: str) -> str:
    """lower(trim(email)), the form `email_key` hashes and every e-mail match uses.

    `lower` is SQL's (DuckDB's) lower: each code point to its simple lowercase mapping. Python's
    str.lower differs in exactly two ways, both undone here: U+0130 (capital I with dot) becomes
    "i" rather than "i" + U+0307, and a word-final capital sigma becomes "σ" rather than "ς".
    """
    trimmed = email.strip(WHITESPACE)
    if trimmed.isascii():
        return trimmed.lower()
    return "".join("i" if ch == "\u0130" else ch.lower() for ch in trimmed)


def email_key(key: str, email: str) -> str:
    return subject_key(key, normalise_email(email))


def _blob_literal(data: bytes) -> str:
    return "'" + "".join(f"\\x{b:02X}" for b in data) + "'::BLOB"


def install_key_macros(con: duckdb.DuckDBPyConnection, key: str) -> None:
    """Create the TEMP macros hmac_subject(v) and hmac_email(v) on this connection."""
    raw = key.encode()
    if len(raw) > _BLOCK:
        raw = hashlib.sha256(raw).digest()
    raw = raw.ljust(_BLOCK, b"\0")
    ipad = _blob_literal(bytes(b ^ 0x36 for b in raw))
    opad = _blob_literal(bytes(b ^ 0x5C for b in raw))
    con.execute(
        "CREATE OR REPLACE TEMP MACRO hmac_subject(v) AS "
        f"CASE WHEN v IS NULL THEN NULL ELSE sha256({opad} || unhex(sha256({ipad} || encode(v::VARCHAR)))) END"
    )
    con.execute(
        "CREATE OR REPLACE TEMP MACRO norm_email(v) AS "
        "lower(trim(v::VARCHAR, chr(32) || chr(9) || chr(10) || chr(13) || chr(12) || chr(11)))"
    )
    con.execute("CREATE OR REPLACE TEMP MACRO hmac_email(v) AS hmac_subject(norm_email(v))")
