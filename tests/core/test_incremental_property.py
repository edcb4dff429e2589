"""Property: the merged core tables and the ledger equal their whole computation, after every night.

Hypothesis generates a few days of events for a few accounts, ingested for real (so duplicates are
dropped as in production): late events (occurred days before they arrived), events of the hour
after the end of their arrival day, same-instant ties across two files, e-mail changes, deletion
requests, deletions and re-registrations of a deleted account's e-mail. After each nightly day the
merged tables and the ledger (``assets/core/changed.py``, ``assets/compliance/violations.py``) must
equal those of a second warehouse that computes them from scratch every night (its as-of days
cleared: every known event, every subject); then earlier days are re-run in a random order, and
after each the two warehouses must still agree.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.compliance.violations import evaluate_rules
from assets.core.accounts import build_accounts
from assets.core.consent import build_consent_history
from assets.core.membership import build_club_membership
from assets.landing.ingest import ingest_day
from pipelines.clock import end_of_day, start_of_day
from pipelines.warehouse import connect
from tests.helpers import event

KEY = "incremental-property-key"
FIRST = date(2026, 10, 23)  # the days cross the autumn DST change (2026-10-25)
ACCOUNTS = ("acc_a", "acc_b", "acc_c")
EMAILS = ("one@example.com", "two@example.com", "three@example.com")

KINDS = (
    "created",
    "email_changed",
    "grant",
    "withdraw",
    "segment_true",
    "segment_false",
    "deletion_requested",
    "deleted",
    "signed_in",
    "marketing_sent",
    "reset_email_sent",
    "password_changed",
)

one_event = st.fixed_dictionaries(
    {
        "arrival": st.integers(0, 3),  # arrival day index
        "when": st.sampled_from(["same_day", "one_day_late", "two_days_late", "after_end_of_day"]),
        "slot": st.integers(0, 3),  # few instants per day: ties are common
        "kind": st.sampled_from(KINDS),
        "account": st.sampled_from(ACCOUNTS),
        "email": st.sampled_from(EMAILS),
        "file": st.sampled_from(["part-0000.jsonl", "part-0001.jsonl"]),
        "resent_next_day": st.booleans(),  # the same messageId again: a duplicate ingestion drops
    }
)


def _occurred(e: dict) -> str:
    arrival = FIRST + timedelta(days=e["arrival"])
    if e["when"] == "after_end_of_day":  # in the hour after the end of its arrival day
        at = end_of_day(arrival) + timedelta(minutes=10 + 15 * e["slot"])
    else:
        late = {"same_day": 0, "one_day_late": 1, "two_days_late": 2}[e["when"]]
        at = start_of_day(arrival - timedelta(days=late)) + timedelta(hours=6 + 3 * e["slot"])
    return at.isoformat()


def _segment_line(e: dict, message_id: str) -> dict:
    account, ts = e["account"], _occurred(e)
    kind = e["kind"]
    if kind == "created":
        return event("Account Created", account, ts, properties={"email": e["email"]}, message_id=message_id)
    if kind == "email_changed":  # by Customer Care, or (an offence) on the web
        props = {"email": e["email"], "previous_email": EMAILS[(EMAILS.index(e["email"]) + 1) % len(EMAILS)]}
        channel = "care_center" if e["slot"] % 2 else "web"
        return event("Email Changed", account, ts, channel=channel, properties=props, message_id=message_id)
    if kind in ("segment_true", "segment_false"):
        preferences = {"marketing": kind == "segment_true"}
        return event(
            "Segment Consent Preference Updated",
            account,
            ts,
            properties={"consent": {"categoryPreferences": preferences}},
            message_id=message_id,
        )
    name = {
        "grant": "Marketing Consent Granted",
        "withdraw": "Marketing Consent Withdrawn",
        "deletion_requested": "Account Deletion Requested",
        "deleted": "Account Deleted",
        "signed_in": "Signed In",
        "marketing_sent": "Marketing Message Sent",
        "reset_email_sent": "Password Reset Email Sent",
        "password_changed": "Password Changed",
    }[kind]
    props = {
        "grant": {"notice_version": "2026-01", "source": "web"},
        "marketing_sent": {"medium": "email", "campaign_id": "c-1"},
    }.get(kind, {})
    return event(name, account, ts, properties=props, message_id=message_id)


def _write_inbox(inbox: Path, events: list[dict]) -> int:
    """Write the events into day folders; returns the number of days."""
    files: dict[tuple[int, str], list[str]] = {}
    for n, e in enumerate(events):
        line = json.dumps(_segment_line(e, f"m-{n:04d}"))
        files.setdefault((e["arrival"], e["file"]), []).append(line)
        if e["resent_next_day"]:
            files.setdefault((e["arrival"] + 1, "part-0002.jsonl"), []).append(line)
    days = max(d for d, _ in files) + 1
    for day_index in range(days):  # every day has a folder, even an empty one
        (inbox / "events" / str(FIRST + timedelta(days=day_index))).mkdir(parents=True, exist_ok=True)
    for (day_index, name), lines in files.items():
        (inbox / "events" / str(FIRST + timedelta(days=day_index)) / name).write_text("\n".join(lines) + "\n")
    return days


#: What a night computes from the day's events, compared between the two warehouses.
TABLES = {
    "keyed.accounts": "subject_key, created_at, status, email_key, deletion_requested_at",
    "keyed.consent_history": "subject_key, occurred_at, granted, source, notice_version, message_id, event, channel, "
    "consent_seq, arrival_date, source_file, line_number",
    "keyed.club_membership": "subject_key, valid_from, valid_to, end_reason, "
    "opened_by_message_id, closed_by_message_id",
    "keyed.violations": "rule, severity, subject_key, occurred_at, detected_on, message_id, system, details",
}


def _night(con, day: date, *, whole: bool) -> None:
    """The core tables and the rules for `day`: merged, or (`whole`) computed from every known event."""
    if whole:
        con.execute("DELETE FROM ops.core_state")
    build_accounts(con, day)
    build_consent_history(con, day)
    build_club_membership(con, day)
    evaluate_rules(con, day)


def _state(con) -> dict[str, list[tuple]]:
    return {
        table: sorted(con.execute(f"SELECT {cols} FROM {table}").fetchall(), key=repr) for table, cols in TABLES.items()
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(one_event, min_size=3, max_size=30), reruns=st.lists(st.integers(0, 4), max_size=3))
def test_merged_tables_and_ledger_equal_their_whole_computation_after_every_day_and_rerun(events, reruns):
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Path(tmp) / "inbox"
        days = _write_inbox(inbox, events)
        nights = [FIRST + timedelta(days=i) for i in range(days)]
        nights += [FIRST + timedelta(days=min(i, days - 1)) for i in reruns]  # re-runs, in any order
        with connect(Path(tmp) / "merged.duckdb", KEY) as merged, connect(Path(tmp) / "whole.duckdb", KEY) as whole:
            for day in nights:
                for con in (merged, whole):
                    ingest_day(con, inbox, day)
                _night(merged, day, whole=False)
                _night(whole, day, whole=True)
                got, expected = _state(merged), _state(whole)
                for table in TABLES:
                    assert got[table] == expected[table], f"{table} after the night of {day}"
                assert merged.execute("SELECT DISTINCT as_of FROM ops.core_state").fetchall() == [(day,)]
