"""The erasure scan's verified-value memory: a night tokenises only what is new, checks old values
against a new target by a join with the keys of their tokens, and still finds every erased
identifier in every table.

The memory (``ops.scan_values``, its key index ``ops.scan_value_keys``) only covers tables of at
least ``MIN_REMEMBERED_ROWS`` rows; the tests lower that to 0 so that the tiny warehouses here go
through it. The cases are the ways a remembered value could wrongly be trusted: it was verified
before its subject was erased (found by its tokens' keys), the plain identifiers are gone by the time
the memory learns the new target (the keys do not need them), it left and came back (a suspect
leaves the memory, present or not), the memory was made by an older version (built again), or it
hides the identifier behind a JSON escape, another letter case or padding. One test runs generated
nights with and without the memory and requires identical outcomes.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from assets.erasure.verifier import build_register
from assets.landing.exports import ingest_exports
from assets.landing.ingest import ingest_day
from assets.purge import scan, scan_memory
from assets.purge.columns import TextColumn, column_values
from assets.purge.purge import REDACTED, purge
from assets.purge.scan import scan_warehouse
from assets.purge.state import load_state
from assets.purge.tokens import SPECIAL, install_scan_macros, match_tokens
from pipelines.keys import install_key_macros
from pipelines.warehouse import memory_limit_at_most
from tests.helpers import event


@pytest.fixture
def remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every column is remembered."""
    monkeypatch.setattr(scan, "MIN_REMEMBERED_ROWS", 0)


@pytest.mark.parametrize("budget", [None, "32MB"])
def test_one_join_with_the_memory_finds_what_to_check(tmp_path, budget):
    """Tonight's digests (several columns may share one) against the memory, at the edges of the
    64-bit range too: new ones and present suspects are checked, nothing else. A 32MB budget is below
    what the join of a million digests needs in memory, so DuckDB partitions and spills it: same
    answer."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    top = 18446744073709551615
    con.execute("CREATE SCHEMA ops")
    # the memory: a million hashes (hash(0) is 0: from 1), both ends of the range, and two suspects
    con.execute(
        f"""CREATE TABLE ops.scan_values AS
            SELECT hash(i) AS digest FROM range(1, 1000000) r(i)
            UNION ALL SELECT * FROM (VALUES (0::UBIGINT), ({top}::UBIGINT), (hash('suspect')), (hash('gone')))"""
    )
    # tonight: a quarter of them gone, as many new; column 1 shares 10,000 digests with column 0
    con.execute(
        f"""CREATE TEMP TABLE _scan_seen AS
            SELECT 0 AS col, hash(i) AS digest FROM range(250000, 1250000) r(i)
            UNION ALL SELECT 1, hash(i) FROM range(1240000, 1260000) r(i)
            UNION ALL SELECT * FROM (VALUES (2, 0::UBIGINT), (2, {top}::UBIGINT), (3, hash('suspect')))"""
    )
    con.execute("CREATE TEMP TABLE _scan_suspects AS SELECT unnest([hash('suspect'), hash('gone')]) AS digest")
    if budget:
        with memory_limit_at_most(con, budget):
            scan_memory.join_memory(con)
    else:
        scan_memory.join_memory(con)

    def same(got: str, expected: str) -> bool:
        """The two queries give the same rows, duplicates counted (EXCEPT ALL both ways)."""
        return con.execute(
            f"SELECT count(*) FROM (({got}) EXCEPT ALL ({expected})) UNION ALL "
            f"SELECT count(*) FROM (({expected}) EXCEPT ALL ({got}))"
        ).fetchall() == [(0,), (0,)]

    check, seen, memory = "SELECT col, digest FROM _scan_check", "SELECT col, digest FROM _scan_seen", "ops.scan_values"
    new = f"{seen} WHERE digest NOT IN (SELECT digest FROM {memory})"
    assert con.execute(f"SELECT count(*) FROM ({new})").fetchall()[0][0] == 270_000
    # a digest new in two columns is checked for each of them
    assert same(f"{check} WHERE NOT known", new)
    # of the remembered digests, only the suspect present tonight
    assert same(f"{check} WHERE known", f"{seen} WHERE col = 3")


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def mail() -> str:
    return f"zq{uuid.uuid4().hex[:12]}@example.cz"


def night(env, day: str) -> None:
    d = date.fromisoformat(day)
    with env.connect() as con:
        ingest_day(con, env.inbox, d)
        ingest_exports(con, env.inbox, d)
        purge(con, d)
        build_register(con, d, env.inbox)


def check(env, day: str) -> list[tuple[str, str, str]]:
    """What the blocking check's scan finds: (table.column, subject_key) of every hit."""
    with env.connect() as con:
        load_state(con, date.fromisoformat(day))
        scan_warehouse(con)
        return sorted(
            con.execute(
                "SELECT DISTINCT table_name, column_name, subject_key FROM _warehouse_hits ORDER BY ALL"
            ).fetchall()
        )


def scratch(env, *values: str) -> None:
    """A table nobody told the erasure module about, holding free text."""
    with env.connect() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS scratch")
        con.execute("CREATE TABLE IF NOT EXISTS scratch.notes (note VARCHAR NOT NULL)")
        con.executemany("INSERT INTO scratch.notes VALUES (?)", [[v] for v in values])


def notes(env) -> list[str | None]:
    return [r[0] for r in env.query("SELECT note FROM scratch.notes ORDER BY note NULLS FIRST")]


def scan_sql(sql: str, *params):
    """The first value of `sql` on a fresh in-memory connection with the scan's macros."""
    con = duckdb.connect()
    install_scan_macros(con)
    return con.execute(sql, list(params)).fetchall()[0][0]


def digest_remembered(env, value: str) -> bool:
    digest = scan_sql("SELECT scan_digest(?::VARCHAR)", value)
    return env.query("SELECT count(*) FROM ops.scan_values WHERE digest = ?", [digest]) == [(1,)]


def is_special(value: str) -> bool:
    """Whether the scan's `SPECIAL` calls the value special (its tokens may be other than itself)."""
    return scan_sql(f"SELECT {SPECIAL} FROM (SELECT ?::VARCHAR AS v)", value)


def first_night(env, account: str, address: str, *values: str) -> None:
    """Night 1: `account` lives, another subject (an account id of 16 bytes) is erased, so the scan
    runs and remembers; the scratch table holds `values`, found clean. Those that are special or
    16 bytes long are remembered; other plain values cannot be an erased account id and are not read."""
    other = unique("acc_")
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [
            event("Account Created", account, "2026-11-02T09:00:00+01:00", properties={"email": address}),
            event("Account Created", other, "2026-11-02T09:05:00+01:00", properties={"email": mail()}),
            event("Account Deleted", other, "2026-11-02T18:00:00+01:00"),
        ],
    )
    scratch(env, *values)
    night(env, "2026-11-02")
    assert check(env, "2026-11-02") == []
    for value in values:
        assert digest_remembered(env, value) == (is_special(value) or len(value.encode()) == len(other)), value


def erase(env, account: str) -> None:
    env.write_events("2026-11-03", "part-0000.jsonl", [event("Account Deleted", account, "2026-11-03T10:00:00+01:00")])


def forget_in_vault(con, subject: str) -> None:
    """The subject's account id and personal properties leave the vault (the events' only copy)."""
    con.execute("DELETE FROM vault.accounts WHERE subject_key = ?", [subject])
    con.execute("DELETE FROM vault.event_properties WHERE subject_key = ?", [subject])


def hide_before_any_scan(env, account: str, day: str = "2026-11-03") -> None:
    """Ingest `day`, then remove `account`'s plain identifiers from its events before any purge or
    scan has learnt it as a target, and record the day's erasures."""
    with env.connect() as con:
        ingest_day(con, env.inbox, date.fromisoformat(day))
        forget_in_vault(con, env.subject_key(account))
        load_state(con, date.fromisoformat(day), record=True)


def test_a_value_verified_before_its_subject_was_erased_is_found_and_purged(env, remembered):
    account, address = unique("acc_"), mail()
    padded_json = json.dumps({"contact": f"  {address.upper()} ", "ref": {"userId": account}})
    sentence = f"Customer wrote from <{address.upper()}> about {account}"
    innocent = 'nothing to see "here"'
    first_night(env, account, address, padded_json, sentence, innocent)

    erase(env, account)
    night(env, "2026-11-03")  # the purge searches the remembered values for the new targets

    assert check(env, "2026-11-03") == []
    assert sorted(n for n in notes(env) if n) == sorted(
        [
            padded_json.replace(f"  {address.upper()} ", REDACTED).replace(account, REDACTED),
            sentence.replace(address.upper(), REDACTED).replace(account, REDACTED),
            innocent,
        ]
    )
    assert digest_remembered(env, innocent)
    assert not digest_remembered(env, sentence)


def test_json_escapes_cannot_hide_an_identifier_from_the_memory(env, remembered):
    account, address = unique("acc_"), mail()
    local, domain = address.split("@")
    escaped_mail = '{"to": "' + local + "\\u0040" + domain + '"}'  # the '@' spelled as a JSON escape
    escaped_id = '{"ref": "' + "".join(f"\\u{ord(c):04x}" for c in account) + '"}'
    first_night(env, account, address, escaped_mail, escaped_id)

    erase(env, account)
    night(env, "2026-11-03")

    assert check(env, "2026-11-03") == []
    assert sorted(notes(env)) == sorted(
        ["erased:" + env.subject_key(escaped_mail), "erased:" + env.subject_key(escaped_id)]
    )


def checked_again(monkeypatch: pytest.MonkeyPatch) -> list[set[int]]:
    """For each scan from now on, the remembered digests it checks exactly again (its suspects)."""
    seen: list[set[int]] = []
    original = scan.join_memory

    def spy(con):
        original(con)
        seen.append({d for (d,) in con.execute("SELECT digest FROM _scan_check WHERE known").fetchall()})

    monkeypatch.setattr(scan, "join_memory", spy)  # where scan_warehouse looks it up
    return seen


def digest_of(value: str) -> int:
    return scan_sql("SELECT scan_digest(?::VARCHAR)", value)


def test_when_the_plain_identifiers_are_gone_the_keys_still_find_a_remembered_value(env, remembered, monkeypatch):
    account, address = unique("acc_"), mail()
    note, innocent = f"ticket 42: {address}", 'nothing to see "here"'
    first_night(env, account, address, note, innocent)
    erase(env, account)
    hide_before_any_scan(env, account)  # the plain identifiers disappear before any scan learns the target
    checked = checked_again(monkeypatch)

    assert check(env, "2026-11-03") == [("scratch.notes", "note", env.subject_key(account))]
    assert digest_of(note) in checked[0] and digest_of(innocent) not in checked[0]
    assert digest_remembered(env, innocent) and not digest_remembered(env, note)


def test_a_night_erasing_thousands_of_subjects_checks_only_the_values_holding_one_again(env, remembered, monkeypatch):
    """The 3M benchmark night has 8,300 new identifiers: the join with the keys finds the one
    remembered value that holds one of 5,198 new targets, and leaves the others trusted."""
    accounts = [unique("acc_") for _ in range(2_600)]  # 2,600 account ids + 2,600 e-mails
    addresses = [mail() for _ in accounts]
    innocent, leaked = 'nothing to see "here"', f"complaint from {addresses[-1].upper()}"
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [
            event("Account Created", a, "2026-11-02T09:00:00+01:00", properties={"email": m})
            for a, m in zip(accounts, addresses, strict=True)
        ]
        + [event("Account Deleted", accounts[0], "2026-11-02T18:00:00+01:00")],
    )
    scratch(env, innocent, leaked)
    night(env, "2026-11-02")
    assert digest_remembered(env, innocent) and digest_remembered(env, leaked)
    env.write_events(
        "2026-11-03",
        "part-0000.jsonl",
        [event("Account Deleted", a, "2026-11-03T10:00:00+01:00") for a in accounts[1:]],
    )
    checked = checked_again(monkeypatch)
    night(env, "2026-11-03")

    assert digest_of(leaked) in checked[0] and digest_of(innocent) not in checked[0]
    assert check(env, "2026-11-03") == []
    assert sorted(notes(env)) == sorted([innocent, leaked.replace(addresses[-1].upper(), REDACTED)])
    assert digest_remembered(env, innocent)


@pytest.mark.parametrize("kept_elsewhere", [True, False])
def test_plain_identifiers_gone_from_the_events_are_looked_for_in_every_keyed_table(env, remembered, kept_elsewhere):
    account, address = unique("acc_"), mail()
    first_night(env, account, address, "placeholder")
    erase(env, account)
    subject = env.subject_key(account)
    with env.connect() as con:
        ingest_day(con, env.inbox, date(2026, 11, 3))
        forget_in_vault(con, subject)
        if kept_elsewhere:  # a table keyed by subject_key that still has the account id
            con.execute("CREATE TABLE scratch.crm (subject_key VARCHAR, account_id VARCHAR)")
            con.execute("INSERT INTO scratch.crm VALUES (?, ?)", [subject, account])
        load_state(con, date(2026, 11, 3), record=True)
        missing = scan_memory.remember_new_target_plaintext(con)
        found = con.execute("SELECT kind, plain = ? FROM _target_plain WHERE key = ?", [account, subject]).fetchall()

    # only account ids are looked for (their lengths): found in the other table, or missing
    assert missing == (0 if kept_elsewhere else 1)
    assert found == ([("account_id", True)] if kept_elsewhere else [])


def test_a_remembered_value_that_left_and_came_back_is_checked_again(env, remembered):
    account, address = unique("acc_"), mail()
    note = f"call back {address}"
    first_night(env, account, address, note)
    with env.connect() as con:
        con.execute("DELETE FROM scratch.notes")

    erase(env, account)
    night(env, "2026-11-03")  # the note holds a new target's key: it leaves the memory, absent as it is
    assert not digest_remembered(env, note)
    scratch(env, note)

    assert check(env, "2026-11-03") == [("scratch.notes", "note", env.subject_key(account))]


def test_a_value_added_after_the_erasure_is_checked_against_every_target(env, remembered):
    account, address = unique("acc_"), mail()
    first_night(env, account, address, "placeholder")
    erase(env, account)
    night(env, "2026-11-03")
    assert check(env, "2026-11-03") == []

    scratch(env, json.dumps({"userId": account}), f"mailto:{address}")  # new values, known targets
    hits = check(env, "2026-11-03")

    assert hits == [("scratch.notes", "note", env.subject_key(account))]
    with env.connect() as con:
        load_state(con, date(2026, 11, 3))
        scan_warehouse(con)
        assert con.execute("SELECT count(DISTINCT digest) FROM _warehouse_hits").fetchall() == [(2,)]


#: The i-th of many look-alike e-mail addresses (SQL on i).
LOOK_ALIKE_ADDRESS = "'user' || i || '.name' || (i * 7 % 1000) || '@example.com'"


def colliding_addresses() -> tuple[str, str]:
    """Two e-mail addresses with one DuckDB hash(), searched for rather than written down (hash()
    may change with DuckDB): 200,000 such strings hold about 2,000 colliding pairs."""
    pair = scan_sql(
        f"""SELECT min(vs) FROM (
                SELECT list(v ORDER BY v) AS vs FROM (SELECT {LOOK_ALIKE_ADDRESS} AS v FROM range(200000) r(i))
                GROUP BY hash(v) HAVING count(*) > 1)"""
    )
    assert pair, "no two of these strings share a hash() any more: find another pair"
    first, second = pair[:2]
    return first, second


@pytest.mark.parametrize(
    "strings",
    [
        LOOK_ALIKE_ADDRESS,
        """'{"street":"Palackého ' || (i % 997) || '","postal_code":"7' || lpad(((i // 997) % 100)::VARCHAR, 2, '0')
           || ' ' || lpad((i // 99700)::VARCHAR, 2, '0') || '"}'""",
    ],
)
def test_the_scan_digest_tells_look_alike_strings_apart(strings):
    """A million e-mail-like strings, and as many address JSON values: hash() has collisions
    among them (why DIGEST_SQL exists), the scan's digest none."""
    con = duckdb.connect()
    install_scan_macros(con)
    values, hashes, digests = con.execute(
        f"""SELECT count(DISTINCT v), count(DISTINCT hash(v)), count(DISTINCT scan_digest(v))
            FROM (SELECT {strings} AS v FROM range(1000000) r(i))"""
    ).fetchall()[0]
    assert values == 1_000_000
    assert hashes < values
    assert digests == values


def test_a_value_sharing_duckdbs_hash_with_a_remembered_clean_value_is_still_checked(env, remembered):
    """DuckDB's hash() collides on look-alike strings; the memory's digest must not (DIGEST_SQL)."""
    clean, address = colliding_addresses()
    account = unique("acc_")
    first_night(env, account, address, clean)  # an address no one was erased with: remembered
    erase(env, account)
    night(env, "2026-11-03")
    assert check(env, "2026-11-03") == []

    scratch(env, address)  # the erased subject's address, new in the table: hash() of the clean one

    assert check(env, "2026-11-03") == [("scratch.notes", "note", env.subject_key(account))]


def test_a_plain_value_is_read_only_at_the_length_of_an_erased_account_id(env, remembered):
    """A plain value can only be an erased account id byte for byte. At other lengths it is neither
    grouped nor remembered; when an account id of a new length is erased, values of that length
    are read from then on, and the one that is its account id is found."""
    account, address = unique("acc_"), mail()
    longer = unique("acc_") + "x" * 5  # 21 bytes: no erased account id is that long yet
    first_night(env, account, address, "k" * 16, "k" * 21, longer)
    assert env.query("SELECT DISTINCT length FROM ops.scan_target_lengths") == [(16,)]
    assert digest_remembered(env, "k" * 16) and not digest_remembered(env, "k" * 21)

    env.write_events(
        "2026-11-03",
        "part-0000.jsonl",
        [
            event("Account Created", longer, "2026-11-03T09:00:00+01:00", properties={"email": mail()}),
            event("Account Deleted", longer, "2026-11-03T10:00:00+01:00"),
        ],
    )
    night(env, "2026-11-03")

    assert sorted(r[0] for r in env.query("SELECT DISTINCT length FROM ops.scan_target_lengths")) == [16, 21]
    assert check(env, "2026-11-03") == []
    assert sorted(notes(env)) == sorted(["k" * 16, "k" * 21, REDACTED])
    assert digest_remembered(env, "k" * 21)  # read at its length now, and clean


def test_while_an_erased_account_ids_length_is_unknown_every_plain_value_is_read(env, remembered):
    """A target whose plain identifier was gone before any scan saw it has no known length: every
    plain value is read, that night (everything is checked) and on every night after."""
    account, address = unique("acc_"), mail()
    hidden = unique("acc_") + "y" * 7  # 23 bytes
    first_night(env, account, address, "placeholder")
    env.write_events(
        "2026-11-03",
        "part-0000.jsonl",
        [
            event("Account Created", hidden, "2026-11-03T09:00:00+01:00", properties={"email": mail()}),
            event("Account Deleted", hidden, "2026-11-03T10:00:00+01:00"),
        ],
    )
    hide_before_any_scan(env, hidden)
    scratch(env, hidden)

    hit = [("scratch.notes", "note", env.subject_key(hidden))]
    assert check(env, "2026-11-03") == hit  # the night it became a target: everything is checked
    assert env.query("SELECT count(*) FROM ops.scan_target_lengths WHERE key = ?", [env.subject_key(hidden)]) == [(0,)]
    scratch(env, hidden + " ")  # special (padded), then a plain copy on a night without new targets
    with env.connect() as con:
        con.execute("DELETE FROM scratch.notes WHERE note = ?", [hidden])
    assert check(env, "2026-11-03") == hit
    with env.connect() as con:
        con.execute("DELETE FROM scratch.notes")
    scratch(env, hidden)
    assert check(env, "2026-11-03") == hit


def test_a_column_found_clean_is_read_again_only_when_its_values_change(env, remembered, monkeypatch):
    account, address = unique("acc_"), mail()
    first_night(env, account, address, "placeholder")
    with env.connect() as con:  # a nullable column: NULLs are not values, and do not upset the fingerprint
        con.execute("CREATE TABLE scratch.maybe (v VARCHAR)")
        con.execute("INSERT INTO scratch.maybe VALUES ('x'), (NULL), ('x')")
    collected: list[str] = []
    original = scan._collect_digests

    def spy(con, columns, rows, wanted):
        collected.extend(f"{c.table_name}.{c.column}" for c in columns if c.table_name != "ops.scan_cache")
        return original(con, columns, rows, wanted)  # the cache's own rows change with every scan

    monkeypatch.setattr(scan, "_collect_digests", spy)
    assert check(env, "2026-11-02") == []
    assert collected == ["scratch.maybe.v"]  # new: read; everything else is unchanged since found clean

    collected.clear()
    assert check(env, "2026-11-02") == []
    assert collected == []  # the fingerprints of one pass per table match what the scan recorded

    collected.clear()
    fingerprinted: list[str] = []
    fingerprints = scan._fingerprints

    def count_fingerprints(con, columns):
        fingerprinted.extend(c.column for c in columns if c.table_name == "scratch.maybe")
        return fingerprints(con, columns)

    monkeypatch.setattr(scan, "_fingerprints", count_fingerprints)
    with env.connect() as con:
        con.execute("UPDATE scratch.maybe SET v = 'y' WHERE v IS NULL")  # a NULL becomes a value
    assert check(env, "2026-11-02") == []
    assert collected == ["scratch.maybe.v"]
    assert fingerprinted == ["v"]  # the fingerprint that showed the change is the one recorded


@pytest.mark.slow
def test_generated_nights_give_the_same_outcome_with_and_without_the_memory(tmp_path, monkeypatch):
    from generator import generate
    from tests.helpers import Env

    start, days = date(2026, 10, 26), 5
    outcomes = []
    for threshold in (0, 10**12):
        monkeypatch.setattr(scan, "MIN_REMEMBERED_ROWS", threshold)
        root = tmp_path / str(threshold)
        env = Env(root, root / "inbox", root / "warehouse.duckdb", root / "reports", root / "dagster_home")
        env.inbox.mkdir(parents=True)
        plan = generate(env.inbox, 100, days, start, 20261106)
        assert plan["deletions"]
        nights = []
        for i in range(days):
            day = (start + timedelta(days=i)).isoformat()
            with env.connect() as con:
                ingest_day(con, env.inbox, date.fromisoformat(day))
                con.execute("CREATE SCHEMA IF NOT EXISTS scratch")
                con.execute("CREATE TABLE IF NOT EXISTS scratch.copy AS SELECT * FROM landing.events LIMIT 0")
                arrived = con.execute("SELECT * FROM landing.events WHERE arrival_date = ?", [day]).fetchall()
            night(env, day)
            with env.connect() as con:  # a copy the purge does not know, made after it ran
                con.executemany(f"INSERT INTO scratch.copy VALUES ({', '.join('?' * len(arrived[0]))})", arrived)
            nights.append(
                (
                    check(env, day),
                    env.query(
                        "SELECT subject_key, status, residual_locations FROM compliance.erasure_register ORDER BY 1"
                    ),
                    env.query("SELECT table_name, rows_purged FROM compliance.purge_log ORDER BY ALL"),
                )
            )
        remembered = env.query("SELECT count(*) FROM ops.scan_values")[0][0]
        outcomes.append((nights, remembered))
    (with_memory, remembered), (without_memory, none) = outcomes
    assert remembered > 0 and none == 0
    assert with_memory == without_memory
    assert any(hits for hits, _, _ in with_memory)  # the copied table held erased identifiers


_ALPHABET = st.sampled_from(
    [
        " ",
        "\t",
        "\n",
        "\r",
        "\f",
        "\v",
        "\x00",
        "\x01",
        "\x1f",
        "!",
        "@",
        '"',
        "\\",
        "a",
        "Z",
        "0",
        "{",
        ":",
        "\u0301",
        "\u00a0",
        "\u2028",
        "é",
        "😀",
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(_ALPHABET, max_size=6), min_size=1, max_size=40))
def test_a_value_that_is_not_special_is_its_only_token(values):
    """The memory looks a plain value up by its own digest only: that is sound only if every value
    `SPECIAL` calls plain has no token but itself (no '@', '"', '\\', no trimmable whitespace)."""
    con = duckdb.connect()
    try:
        install_scan_macros(con)
        rows = con.execute(
            f"""SELECT v, erasure_tokens(v) FROM (SELECT unnest($values::VARCHAR[]) AS v)
                WHERE NOT {SPECIAL}""",
            {"values": values},
        ).fetchall()
    finally:
        con.close()
    for value, tokens in rows:
        assert tokens == [value], (value, tokens)
    # the other way round is not required, but whitespace at either end must always count
    for value in values:
        if value and (value[0] in " \t\n\r\f\v" or value[-1] in " \t\n\r\f\v"):
            assert value not in {v for v, _ in rows}, value


def test_a_night_killed_after_the_vault_forgot_an_account_id_still_knows_its_length(env, remembered, monkeypatch):
    """The purge keeps an erased account id's length before the vault's transaction removes the
    identifier: a run that dies right after that transaction and its re-run learn what an
    uninterrupted run learns, and the scan does not read every plain value from then on."""
    account, address = unique("acc_"), mail()
    first_night(env, account, address, "placeholder")
    erase(env, account)

    class Killed(Exception):
        pass

    def die(*_args, **_kwargs):
        raise Killed

    with monkeypatch.context() as m:
        m.setattr("assets.purge.purge._purge_account_ids", die)
        with pytest.raises(Killed):
            night(env, "2026-11-03")
    assert env.query("SELECT count(*) FROM vault.accounts WHERE subject_key = ?", [env.subject_key(account)]) == [(0,)]

    night(env, "2026-11-03")

    assert env.query("SELECT length FROM ops.scan_target_lengths WHERE key = ?", [env.subject_key(account)]) == [
        (len(account),)
    ]
    assert check(env, "2026-11-03") == []


#: Pieces of generated values: separators, quotes, escapes, whitespace, an '@', letters of two cases
#: and a character whose lowercase is another (U+0130), around the identifiers searched for, and a
#: JSON string that spells one with an escape.
_PIECES = st.sampled_from(['"', "\\", " ", "\t", "@", ".", "-", ":", "x", "X", "_", "İ", "{", "}", "<", ">", "é"])
_ACCOUNT_IDS = st.sampled_from(["acc_1", "Acc_İ2", "a-b", "x"])
_EMAILS = st.sampled_from(["Jana.N@Example.com", "x@y", "İ@é.cz"])
_ESCAPED = st.just('"\\u0061cc_1"')


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(_PIECES | _ACCOUNT_IDS | _EMAILS | _EMAILS.map(str.upper) | _ESCAPED, min_size=1, max_size=6).map(
            "".join
        ),
        min_size=1,
        max_size=8,
    ),
    st.lists(_ACCOUNT_IDS, max_size=2, unique=True),
    st.lists(_EMAILS, max_size=2, unique=True),
)
@example(['{"id":"\\u0061cc_1"}'], ["acc_1"], [])
@example(["<JANA.N@EXAMPLE.COM>"], [], ["Jana.N@Example.com"])
def test_the_key_index_finds_every_remembered_value_whose_tokens_hold_a_new_target(values, accounts, emails):
    """Values remembered clean (``remember_verified`` with the keys ``match_tokens`` computed) are
    suspects of a later target (``find_suspects``) whenever one of their tokens is the target's
    account id, or an e-mail whose normalised form is the target's."""
    con = duckdb.connect()
    install_scan_macros(con)
    install_key_macros(con, "any-key")
    con.execute("CREATE SCHEMA ops")
    for table in ("scan_values (digest UBIGINT)", "scan_value_keys (digest UBIGINT, key UINTEGER)"):
        con.execute(f"CREATE TABLE ops.{table}")
    con.execute("CREATE TABLE ops.scan_targets (kind VARCHAR, key VARCHAR)")
    con.execute("CREATE TABLE ops.scan_state (version VARCHAR)")
    con.execute("CREATE TABLE t (v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    # night 1: no target; every value is checked and remembered with its tokens' keys
    con.execute("CREATE TEMP TABLE _targets (subject_key VARCHAR, kind VARCHAR, key VARCHAR)")
    con.execute(
        """CREATE TEMP TABLE _scan_tokens AS
           SELECT DISTINCT 't' AS table_name, 'v' AS column_name, scan_digest(v) AS digest, tok
           FROM (SELECT v, unnest(erasure_tokens(v)) AS tok FROM t) WHERE erasure_candidate(tok)"""
    )
    con.execute(
        "CREATE TEMP TABLE _scan_check AS SELECT DISTINCT 0 AS col, scan_digest(v) AS digest, false AS known FROM t"
    )
    con.execute("CREATE TEMP TABLE _scan_suspects (digest UBIGINT)")
    con.execute("CREATE TEMP TABLE _warehouse_hits (digest UBIGINT)")
    match_tokens(con, "_scan_tokens", "_scan_keys", every_key="_scan_every_key")
    scan_memory.remember_verified(con, "v", checked=True)
    assert con.execute("SELECT count(*) FROM ops.scan_values").fetchall()[0][0] == len(set(values))
    # night 2: the identifiers become targets
    con.execute(
        """CREATE TEMP TABLE _new_targets AS
           SELECT 'account_id' AS kind, hmac_subject(unnest($a::VARCHAR[])) AS key
           UNION ALL SELECT 'email', hmac_email(unnest($e::VARCHAR[]))""",
        {"a": accounts, "e": emails},
    )
    scan_memory.find_suspects(con)
    suspects = {digest for (digest,) in con.execute("SELECT digest FROM _scan_suspects").fetchall()}
    holding = {
        digest
        for (digest,) in con.execute(
            """SELECT DISTINCT digest FROM _scan_tokens
               WHERE tok IN (SELECT unnest($a::VARCHAR[]))
                  OR norm_email(tok) IN (SELECT norm_email(unnest($e::VARCHAR[])))""",
            {"a": accounts, "e": emails},
        ).fetchall()
    }
    assert holding <= suspects, values


def test_a_memory_made_before_the_key_index_is_built_again_on_the_first_scan(env, remembered):
    """A warehouse upgraded from a version whose memory kept no keys: its remembered values cannot
    be joined with a new target, so the first scan drops that memory and checks every value."""
    account, address = unique("acc_"), mail()
    note = f"ticket 42: {address}"
    first_night(env, account, address, note)
    with env.connect() as con:  # what the previous version left: digests without keys, its own version
        con.execute("DELETE FROM ops.scan_value_keys")
        previous = scan_memory.state_version(con).replace(f":{scan_memory.MEMORY_VERSION}", "")
        con.execute("UPDATE ops.scan_state SET version = ?", [previous])
    erase(env, account)

    night(env, "2026-11-03")

    assert notes(env) == [f"ticket 42: {REDACTED}"]
    assert check(env, "2026-11-03") == []
    [(version,)] = env.query("SELECT version FROM ops.scan_state")
    assert f":{scan_memory.MEMORY_VERSION}:" in version


@pytest.mark.parametrize("batch_below", [0, 3, 10**9])
def test_columns_read_together_give_what_each_read_alone_gives(monkeypatch, batch_below):
    """The fingerprints of every column in one statement, and the digests of the remembered
    columns (small ones in one statement, each large one alone), are what one statement per column
    gives: NULLs are not values, a value twice is counted twice, names may hold quotes and dots."""
    con = duckdb.connect()
    install_scan_macros(con)
    con.execute('CREATE SCHEMA "odd.schema"')
    con.execute('CREATE TABLE "odd.schema"."t""1" ("a b" VARCHAR, "c""d" JSON, e VARCHAR)')
    con.execute(
        """INSERT INTO "odd.schema"."t""1" VALUES
           ('x', '{"k": 1}', NULL), ('x', NULL, NULL), ('y y', '[1, "acc_1"]', NULL), (NULL, '"s"', NULL)"""
    )
    con.execute("CREATE TABLE plain (v VARCHAR)")
    con.execute("INSERT INTO plain SELECT 'v' || (i % 7) FROM range(20) r(i)")
    columns = [
        TextColumn("", "odd.schema", 't"1', "a b", "VARCHAR", True),
        TextColumn("", "odd.schema", 't"1', 'c"d', "JSON", True),
        TextColumn("", "odd.schema", 't"1', "e", "VARCHAR", True),
        TextColumn("", "main", "plain", "v", "VARCHAR", True),
    ]

    def alone(col: TextColumn, sql: str, where: str | None = None) -> list:
        return con.execute(f"SELECT {sql} FROM {column_values(col)} WHERE {where or 'true'}").fetchall()

    prints = scan._fingerprints(con, columns)
    for col, fingerprint in zip(columns, prints, strict=True):
        [(n, total)] = alone(col, "count(*), coalesce(sum(scan_digest(v))::HUGEINT, 0)")
        assert fingerprint == f"{n}:{total}"
    assert [scan._rows(p) for p in prints] == [3, 3, 0, 20]

    monkeypatch.setattr(scan, "BATCH_BELOW_ROWS", batch_below)
    for wanted in (None, f"(strlen(v) IN (2) OR {SPECIAL})"):
        con.execute("CREATE OR REPLACE TEMP TABLE _scan_seen (col INTEGER, digest UBIGINT)")
        scan._collect_digests(con, columns, [scan._rows(p) for p in prints], wanted)
        got = sorted(con.execute("SELECT col, digest FROM _scan_seen").fetchall())
        expected = sorted(
            (number, digest)
            for number, col in enumerate(columns)
            for (digest,) in alone(col, "DISTINCT scan_digest(v)", wanted)
        )
        assert got == expected
