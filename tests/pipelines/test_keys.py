"""Keyed hashes (CONTRACT 4): the Python helpers and the DuckDB macros agree with plain HMAC-SHA256."""

import hashlib
import hmac

import duckdb
import pytest

from pipelines.keys import email_key, install_key_macros, normalise_email, subject_key


def reference_hmac(key: str, message: str) -> str:
    """The contract's definition, written independently of pipelines.keys."""
    return hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


KEYS = [
    "test-hash-key-0123456789",
    "k",  # shorter than the HMAC block
    "x" * 64,  # exactly one block
    "y" * 65,  # longer than a block: hashed first
    "klíč-s-diakritikou-ěščřžýáíé",  # non-ASCII key, multi-byte UTF-8
]
ACCOUNT_IDS = ["acc_000042", "", "ACC_000042", " acc_1 ", "účet-ž", "a'b\"c\\d", "x" * 500]


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


@pytest.mark.parametrize("key", KEYS)
def test_subject_key_is_lowercase_hex_hmac_sha256_in_python_and_sql(con, key):
    install_key_macros(con, key)
    for account_id in ACCOUNT_IDS:
        expected = reference_hmac(key, account_id)
        assert len(expected) == 64 and expected == expected.lower()
        assert subject_key(key, account_id) == expected
        assert con.execute("SELECT hmac_subject(?)", [account_id]).fetchall() == [(expected,)]


def test_subject_key_depends_on_the_key_and_is_case_sensitive_in_the_id(con):
    assert subject_key("a", "acc_1") != subject_key("b", "acc_1")
    assert subject_key("a", "acc_1") != subject_key("a", "ACC_1")
    # account ids are hashed as given: no trimming, no case folding
    assert subject_key("a", " acc_1") != subject_key("a", "acc_1")


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("Jana.Novakova@Example.CZ", "jana.novakova@example.cz"),
        ("  jan@example.cz  ", "jan@example.cz"),
        ("\tJAN@EXAMPLE.CZ\r\n", "jan@example.cz"),
        ("\x0b\x0cjan@example.cz\x0c", "jan@example.cz"),
        ("Šárka.Čermáková@Příklad.CZ", "šárka.čermáková@příklad.cz"),
        ("jan @example.cz", "jan @example.cz"),  # inner whitespace is kept
        ("\u00a0jan@example.cz", "\u00a0jan@example.cz"),  # only ASCII whitespace is trimmed
        # SQL lower() maps code point by code point (simple case mapping); Python's str.lower
        # differs for these two, and the helpers must agree with the SQL.
        ("\u0130stanbul@example.com", "istanbul@example.com"),
        ("ΟΔΥΣΣΕΥΣ@example.gr", "οδυσσευσ@example.gr"),
    ],
)
def test_email_key_hashes_lower_trim_and_matches_sql(con, raw, normalised):
    key = KEYS[0]
    install_key_macros(con, key)
    assert normalise_email(raw) == normalised
    expected = reference_hmac(key, normalised)
    assert email_key(key, raw) == expected
    assert con.execute("SELECT hmac_email(?), norm_email(?)", [raw, raw]).fetchall() == [(expected, normalised)]


def test_email_key_equals_subject_key_of_the_normalised_address():
    assert email_key("k", " A@B.cz ") == subject_key("k", "a@b.cz") == reference_hmac("k", "a@b.cz")


def test_sql_macros_map_null_to_null_and_are_vectorised(con):
    install_key_macros(con, "k")
    assert con.execute("SELECT hmac_subject(NULL), hmac_email(NULL)").fetchall() == [(None, None)]
    rows = con.execute(
        "SELECT v, hmac_subject(v), hmac_email(upper(v)) FROM (SELECT 'acc_' || i AS v FROM range(1000) t(i))"
    ).fetchall()
    assert len(rows) == 1000
    for v, sk, ek in rows[::97]:
        assert sk == reference_hmac("k", v)
        assert ek == reference_hmac("k", v.lower())


def test_reinstalling_the_macros_switches_the_key(con):
    install_key_macros(con, "first")
    a = con.execute("SELECT hmac_subject('acc_1')").fetchall()[0][0]
    install_key_macros(con, "second")
    b = con.execute("SELECT hmac_subject('acc_1')").fetchall()[0][0]
    assert (a, b) == (reference_hmac("first", "acc_1"), reference_hmac("second", "acc_1"))


def test_warehouse_connection_hashes_with_its_key(env):
    with env.connect() as c:
        got = c.execute("SELECT hmac_subject('acc_1'), hmac_email(' Jan@Example.cz')").fetchall()
    assert got == [(reference_hmac(env.key, "acc_1"), reference_hmac(env.key, "jan@example.cz"))]
    assert env.subject_key("acc_1") == got[0][0]
    assert env.email_key(" Jan@Example.cz") == got[0][1]
