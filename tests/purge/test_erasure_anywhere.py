"""An erased identifier is found and erased anywhere it stands as a token (CONTRACT 5: "anywhere").

Free text of another account's event, a message id, a campaign id, a rejected line, a retained
raw line in any field: the warehouse scan, the purge and the inbox scan see the erased account
id or e-mail as a word of any text, and the purge replaces it where it stands, so the rest of the
value (another, live subject's data) stays. An id glued into a longer word is another id.
"""

from __future__ import annotations

import re
import shutil
import string
from datetime import date

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from assets.purge.inbox_redaction import RedactionResult, account_replacement
from assets.purge.purge import REDACTED
from tests.helpers import created, deleted, event, night, register, text_columns, unique

DAY1, DAY2 = "2026-11-02", "2026-11-03"
#: Characters that end a word: whitespace, punctuation and JSON syntax (not letters, digits, '_').
SEPARATORS = " \t.,;:!?()[]{}<>=&|/\\'\"*#%^~`-+"


def word_hits(env, needle: str) -> list[tuple[str, str]]:
    """(table, column) of every text column where `needle` stands as a word of some value."""
    pattern = r"(^|[^\pL\pN_])" + re.escape(needle) + r"($|[^\pL\pN_])"
    with env.connect() as con:
        return [
            (name, column)
            for name, table, column in text_columns(con)
            if con.execute(
                f'SELECT count(*) FROM {table} WHERE regexp_matches("{column}"::VARCHAR, ?)', [pattern]
            ).fetchall()[0][0]
        ]


def erase(env, account: str, extra: list[dict], *, day2: list[dict] = ()) -> None:
    env.write_events(
        DAY1, "part-0000.jsonl", [created(account, f"{DAY1}T09:00:00+01:00", f"{unique('x')}@example.cz"), *extra]
    )
    env.write_events(DAY2, "part-0000.jsonl", [deleted(account, f"{DAY2}T10:00:00+01:00"), *day2])
    night(env, DAY1)
    night(env, DAY2)


def test_an_erased_id_in_another_accounts_free_text_is_replaced_where_it_stands(env):
    erased, live, neighbour = unique("acc_"), unique("acc_"), None
    neighbour = erased + "0"  # a live account whose id starts with the erased one
    note = f"Customer called about {erased}. See also {neighbour} and m-{erased}, ref={erased};"
    extra = [
        created(live, f"{DAY1}T09:30:00+01:00", f"{unique('live')}@example.cz", first_name="Alena"),
        event("Signed In", live, f"{DAY1}T11:00:00+01:00", properties={"note": note}),
        event("Marketing Message Sent", live, f"{DAY1}T12:00:00+01:00", properties={"campaign_id": f"win-{erased}"}),
        event("Signed In", neighbour, f"{DAY1}T12:30:00+01:00"),
    ]
    erase(env, erased, extra)

    assert word_hits(env, erased) == []
    notes = env.query(
        "SELECT properties->>'note', properties->>'campaign_id' FROM landing.events WHERE account_id = ?", [live]
    )
    assert (f"Customer called about {REDACTED}. See also {neighbour} and m-{REDACTED}, ref={REDACTED};", None) in notes
    assert (None, f"win-{REDACTED}") in notes
    # the live account keeps everything else, and its neighbour keeps its id
    assert env.query(
        "SELECT properties->>'first_name' FROM landing.events WHERE account_id = ? AND event = 'Account Created'",
        [live],
    ) == [("Alena",)]
    assert env.query("SELECT count(*) FROM landing.events WHERE account_id = ?", [neighbour]) == [(1,)]
    assert register(env)[env.subject_key(erased)][0] in ("verified", "pending")
    assert "warehouse" not in (register(env)[env.subject_key(erased)][2] or "")


@pytest.mark.parametrize(
    "later_line",
    [
        lambda erased: event(
            "Signed In", unique("acc_"), "2026-11-04T09:00:00+01:00", properties={"note": f"({erased})"}
        ),
        lambda erased: f'{{"messageId": "m-{erased}", broken',
    ],
    ids=["another-accounts-property", "broken-line-message-id"],
)
def test_an_erased_id_anywhere_in_a_retained_raw_line_is_residual_in_the_inbox(env, monkeypatch, later_line):
    """Named only outside userId, in a later line of another account, after its own lines have gone:
    the verifier finds it there while the redaction is prevented, and the night's redaction
    replaces it where it stands."""
    erased = unique("acc_")
    env.retention_days = 365
    env.write_events(DAY1, "part-0000.jsonl", [created(erased, f"{DAY1}T09:00:00+01:00", f"{unique('x')}@example.cz")])
    env.write_events(DAY2, "part-0000.jsonl", [deleted(erased, f"{DAY2}T10:00:00+01:00")])
    later = env.write_events("2026-11-04", "part-0000.jsonl", [later_line(erased)])
    original = later.read_bytes()
    with monkeypatch.context() as m:
        m.setattr("tests.helpers.redact_inbox", lambda *_args, **_kw: RedactionResult())
        for day in (DAY1, DAY2, "2026-11-04"):
            night(env, day)
        shutil.rmtree(env.inbox / "events" / DAY1)
        shutil.rmtree(env.inbox / "events" / DAY2)
        night(env, "2026-11-04")
    assert register(env)[env.subject_key(erased)][2] == "inbox"
    # the warehouse's copy is erased where the id stands
    assert not word_hits(env, erased)

    night(env, "2026-11-04")  # the redaction runs: the id is replaced where it stands, nothing else

    assert later.read_bytes() == original.replace(
        erased.encode(), account_replacement(env.subject_key(erased)).encode()
    )
    assert register(env)[env.subject_key(erased)][:4] == ("verified", date(2026, 12, 3), None, date(2026, 11, 4))


words = st.text(alphabet=string.ascii_letters + string.digits + "ěščřžýáíéůú", min_size=1, max_size=8)
separators = st.text(alphabet=SEPARATORS, min_size=1, max_size=3)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=st.lists(st.tuples(words, separators), max_size=3),
    after=st.lists(st.tuples(separators, words), max_size=3),
    lead=st.sampled_from(["", " ", "("]),
    trail=st.sampled_from(["", ".", ")", " "]),
)
@example(before=[("0", "\t")], after=[], lead="", trail="")  # JSON holds it as 0\tacc_…: a tab, not a `t`
@example(before=[("x", "\\\t")], after=[("\t", "y")], lead="", trail="")
def test_an_erased_id_between_any_separators_is_found_and_nothing_else_changes(env, before, after, lead, trail):
    for path in env.root.glob("warehouse.duckdb*"):
        path.unlink()
    shutil.rmtree(env.inbox, ignore_errors=True)
    erased, live = unique("acc_"), unique("acc_")
    head = lead + "".join(w + s for w, s in before)
    tail = "".join(s + w for s, w in after) + trail
    text = head + erased + tail
    erase(env, erased, [event("Signed In", live, f"{DAY1}T11:00:00+01:00", properties={"note": text})])
    (note,) = env.query("SELECT properties->>'note' FROM landing.events WHERE account_id = ?", [live])[0]
    assert note == head + REDACTED + tail
    assert word_hits(env, erased) == []


@pytest.mark.parametrize(
    ("value", "redacted"),
    [
        ('{"n":"0\\tacc_42"}', '{"n":"0\\t[erased]"}'),  # a tab before the id, escaped in JSON
        ('{"n":"0\\nacc_42\\r"}', '{"n":"0\\n[erased]\\r"}'),
        ('{"n":"x\\\\tacc_42"}', '{"n":"x\\\\tacc_42"}'),  # a backslash then the word tacc_42: another id
        ('{"n":"x\\\\\\tacc_42"}', '{"n":"x\\\\\\t[erased]"}'),  # a backslash, then a tab
        ("tacc_42 acc_420 acc_42", "tacc_42 acc_420 [erased]"),
    ],
)
def test_a_token_after_a_json_escape_is_redacted_where_it_stands(value, redacted):
    """In JSON text a tab before an id is written `\\t`: the id stands after a letter, yet is a token."""
    import duckdb

    from assets.purge.purge import _without_token

    con = duckdb.connect()
    assert con.execute(f"SELECT {_without_token('$v', '$t')}", {"v": value, "t": "acc_42"}).fetchone()[0] == redacted
