"""Property: CLUB intervals derived in SQL equal "consented and not deleted" at every instant.

Hypothesis generates random sequences of consent events (grants, withdrawals, Segment preference
updates), deletion requests and deletions for one account, with ties at one instant, late
arrivals and several files, and compares core.club_membership with a direct Python oracle.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.core.consent import build_consent_history
from assets.core.membership import build_club_membership
from pipelines.keys import install_key_macros, subject_key
from pipelines.warehouse import SCHEMA_SQL

KEY = "property-test-key"
DAY = date(2026, 10, 25)  # the autumn DST change: instants are compared in absolute time
BASE = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # 2026-10-25 00:00 Prague (CEST)
ACCOUNT = "acc_prop"

#: kind -> (event name, consent value it sets; None = not a consent event)
KINDS = {
    "grant": ("Marketing Consent Granted", True),
    "withdraw": ("Marketing Consent Withdrawn", False),
    "segment_true": ("Segment Consent Preference Updated", True),
    "segment_false": ("Segment Consent Preference Updated", False),
    "segment_missing_key": ("Segment Consent Preference Updated", False),
    "deletion_requested": ("Account Deletion Requested", None),
    "deleted": ("Account Deleted", None),
    "signed_in": ("Signed In", None),
}

step = st.tuples(
    st.sampled_from(sorted(KINDS)),
    st.integers(min_value=0, max_value=40),  # minute of the day: few values, so ties are common
    st.sampled_from(["part-0000.jsonl", "part-0001.jsonl"]),
    st.booleans(),  # arrived a day late
)


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("SET TimeZone = 'Europe/Prague'")
    install_key_macros(c, KEY)
    c.execute(SCHEMA_SQL)
    yield c
    c.close()


def load(con, steps) -> list[dict]:
    """Write the steps into keyed.events (a history of its own: the core tables are computed whole
    from it); return them as oracle records."""
    con.execute("DELETE FROM keyed.events")
    con.execute("DELETE FROM ops.core_state")
    records = []
    for n, (kind, minute, source_file, late) in enumerate(steps):
        name, value = KINDS[kind]
        occurred = BASE + timedelta(minutes=minute)
        arrival = DAY if late else DAY - timedelta(days=1)
        records.append(
            {
                "message_id": f"m{n}",
                "kind": kind,
                "value": value,
                "occurred": occurred,
                "order": (occurred, arrival, source_file, n),
            }
        )
        con.execute(
            """INSERT INTO keyed.events (message_id, event, subject_key, occurred_at, channel,
                                         properties, consent_granted, source_file, line_number, arrival_date)
               VALUES (?, ?, ?, ?, 'web', ?, ?, ?, ?, ?)""",
            [
                f"m{n}",
                name,
                subject_key(KEY, ACCOUNT),
                occurred,
                "{}",
                value,  # keyed.events.consent_granted, as ingestion sets it (Segment semantics included)
                source_file,
                n,
                arrival,
            ],
        )
    return records


def oracle_member(records: list[dict], t: datetime) -> bool:
    """Consented (latest consent event at or before t, ties by ingestion order) and not deleted by t."""
    known = sorted((r for r in records if r["occurred"] <= t), key=lambda r: r["order"])
    if any(r["kind"] == "deleted" for r in known):
        return False
    consent = [r["value"] for r in known if r["value"] is not None]
    return bool(consent) and consent[-1]


def member_by_intervals(intervals, t: datetime) -> bool:
    return any(f <= t and (to is None or t < to) for f, to, _, _, _ in intervals)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, max_size=14))
def test_intervals_equal_consented_and_not_deleted(con, steps):
    records = load(con, steps)
    build_consent_history(con, DAY)
    build_club_membership(con, DAY)
    intervals = con.execute(
        """SELECT valid_from, valid_to, end_reason, opened_by_message_id, closed_by_message_id
           FROM keyed.club_membership ORDER BY valid_from"""
    ).fetchall()
    by_id = {r["message_id"]: r for r in records}

    # Never overlapping, well ordered, and only the last one may be open.
    for (_, to1, *_), (f2, *_) in zip(intervals, intervals[1:], strict=False):
        assert to1 is not None and to1 < f2, "intervals overlap or touch (not maximal)"
    for f, to, reason, _, _ in intervals:
        assert (to is None and reason is None) or (f < to and reason in ("consent_withdrawn", "account_deleted"))

    # Each interval starts at a grant; each closes at a withdrawal or at the deletion.
    for f, to, reason, opened_by, closed_by in intervals:
        opener = by_id[opened_by]
        assert opener["value"] is True and opener["occurred"] == f
        if to is not None:
            closer = by_id[closed_by]
            assert closer["occurred"] == to
            expected = "account_deleted" if closer["kind"] == "deleted" else "consent_withdrawn"
            assert reason == expected and (closer["kind"] == "deleted" or closer["value"] is False)

    # Membership at any instant equals "consented and not deleted".
    instants = {BASE - timedelta(minutes=1), BASE + timedelta(hours=2)}
    for r in records:
        instants |= {r["occurred"] - timedelta(seconds=30), r["occurred"], r["occurred"] + timedelta(seconds=30)}
    for t in sorted(instants):
        assert member_by_intervals(intervals, t) == oracle_member(records, t), t
