"""Great Expectations suites: counts per expectation, boundaries, laziness, and the Dagster checks."""

from __future__ import annotations

import gc
import hashlib
import json
import subprocess
import sys
import weakref
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

import checks.landing
import checks.nightly
from checks.core import accounts_expectations, club_membership_expectations, consent_history_expectations
from checks.gx.runner import Expect, validate_frame
from checks.landing import landing_batch_expectations, landing_files_expectations
from pipelines.clock import PRAGUE, end_of_day, start_of_day
from tests.helpers import event

D = date(2026, 11, 3)
END = end_of_day(D)
ROOT = Path(__file__).resolve().parents[2]


def key(n: int) -> str:
    return hashlib.sha256(f"subject-{n}".encode()).hexdigest()


def by_statement(outcome) -> dict[str, tuple[bool, int, int]]:
    return {o.statement: (o.success, o.evaluated, o.unexpected) for o in outcome.outcomes}


def test_validate_frame_reports_counts_per_expectation_in_suite_order():
    frame = pd.DataFrame({"id": ["a", "b", "b", None], "n": [1, 2, 3, 40]})
    outcome = validate_frame(
        "t",
        frame,
        [
            Expect("id not null", "ExpectColumnValuesToNotBeNull", {"column": "id"}),
            Expect("id unique", "ExpectColumnValuesToBeUnique", {"column": "id"}),
            Expect("n small", "ExpectColumnValuesToBeBetween", {"column": "n", "min_value": 0, "max_value": 10}),
            Expect("n sums to 46", "ExpectColumnSumToBeBetween", {"column": "n", "min_value": 46, "max_value": 46}),
        ],
    )
    assert [o.statement for o in outcome.outcomes] == ["id not null", "id unique", "n small", "n sums to 46"]
    assert by_statement(outcome) == {
        "id not null": (False, 4, 1),
        "id unique": (False, 4, 2),
        "n small": (False, 4, 1),
        "n sums to 46": (True, 4, 0),
    }
    assert (outcome.evaluated, outcome.failed, outcome.passed) == (4, 3, False)
    assert outcome.outcomes[0].expectation == "expect_column_values_to_not_be_null"


def test_a_missing_column_fails_the_expectation_instead_of_crashing():
    outcome = validate_frame(
        "t", pd.DataFrame({"a": [1]}), [Expect("b not null", "ExpectColumnValuesToNotBeNull", {"column": "b"})]
    )
    assert not outcome.passed
    assert outcome.outcomes[0].error == "could not be evaluated"


def test_progress_bars_are_silenced(capfd):
    validate_frame("t", pd.DataFrame({"a": range(50)}), [Expect("a", "ExpectColumnValuesToNotBeNull", {"column": "a"})])
    out, err = capfd.readouterr()
    assert "Calculating Metrics" not in out + err
    assert "%|" not in err


def test_gx_is_imported_lazily():
    code = "import sys, pipelines.definitions; print('great_expectations' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(ROOT / ".dagster_home_test")},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


def landing_row(message_id, *, event_name="Signed In", channel="web", occurred_at=None, subject=None) -> dict:
    return {
        "message_id": message_id,
        "event": event_name,
        "channel": channel,
        "occurred_at": occurred_at or start_of_day(D) + timedelta(hours=9),
        "subject_key": subject or key(1),
    }


def test_landing_batch_suite_passes_a_clean_batch_up_to_end_of_day_plus_one_hour():
    frame = pd.DataFrame(
        [
            landing_row("m-1"),
            landing_row("m-2", occurred_at=END + timedelta(hours=1)),
            landing_row("x" * 100, event_name="Marketing Message Sent", channel="care_center"),
        ]
    )
    outcome = validate_frame("landing", frame, landing_batch_expectations(D))
    assert outcome.passed, outcome.failing()
    assert outcome.evaluated == 8


def test_landing_batch_suite_flags_each_broken_rule():
    frame = pd.DataFrame(
        [
            landing_row("m-1"),
            landing_row("m-1"),
            landing_row(None),
            landing_row("x" * 101),
            landing_row("m-4", event_name="Bogus"),
            landing_row("m-5", channel="fax"),
            landing_row("m-6", occurred_at=END + timedelta(hours=1, seconds=1)),
            landing_row("m-7", subject="acc_7"),
        ]
    )
    frame.loc[7, "occurred_at"] = None
    results = by_statement(validate_frame("landing", frame, landing_batch_expectations(D)))
    latest = (END + timedelta(hours=1)).isoformat()
    assert results == {
        "message_id is never null": (False, 8, 1),
        "message_id is unique in the day's batch": (False, 8, 2),
        "message_id has 1 to 100 characters": (False, 8, 1),
        "event is one of the 13 contract events": (False, 8, 1),
        "channel is one of web, app, care_center, system": (False, 8, 1),
        "occurred_at is never null": (False, 8, 1),
        f"occurred_at is not in the future: at or before {latest} (end of the day + 1 h)": (False, 8, 1),
        "subject_key is a keyed hash (64 hex digits)": (False, 8, 1),
    }


def test_club_membership_suite_requires_positive_intervals_and_matching_end_reasons():
    start = start_of_day(D)

    def row(valid_from, valid_to=None, reason=None, subject=1):
        return {
            "subject_key": key(subject),
            "valid_from": valid_from,
            "valid_to": valid_to,
            "end_reason": reason,
            "closed": valid_to is not None,
            "has_end_reason": reason is not None,
        }

    good = pd.DataFrame(
        [
            row(start, start + timedelta(seconds=1), "consent_withdrawn"),
            row(start + timedelta(hours=1)),
            row(start - timedelta(days=3), END, "account_deleted", 2),
        ]
    )
    assert validate_frame("club", good, club_membership_expectations(D)).passed
    bad = pd.DataFrame(
        [
            row(start, start, "consent_withdrawn"),  # zero length
            row(start, start - timedelta(hours=1), "consent_withdrawn"),  # backwards
            row(start, None, "consent_withdrawn"),  # open but has an end reason
            row(start, start + timedelta(hours=1), None),  # closed without a reason
            row(start, start + timedelta(hours=2), "bored"),
            row(END + timedelta(seconds=1)),  # starts after the end of D
        ]
    )
    results = by_statement(validate_frame("club", bad, club_membership_expectations(D)))
    assert results["valid_from < valid_to for every closed interval"] == (False, 6, 2)
    assert results["an interval has an end_reason exactly when it is closed"] == (False, 6, 2)
    assert results["end_reason is consent_withdrawn or account_deleted"][::2] == (False, 1)
    assert results["no interval starts after the end of the day"][::2] == (False, 1)
    assert results["no interval ends after the end of the day"][0] is True


def test_consent_and_account_suites():
    consent = pd.DataFrame(
        {
            "subject_key": [key(1), key(2)],
            "occurred_at": [END, END + timedelta(seconds=1)],
            "granted": [True, None],
            "message_id": ["m-1", "m-1"],
        }
    )
    results = by_statement(validate_frame("consent", consent, consent_history_expectations(D)))
    assert [s for s, (ok, _, _) in results.items() if not ok] == [
        "granted is never null",
        "one row per consent event (message_id unique)",
        "no consent event after the end of the day",
    ]
    accounts = pd.DataFrame(
        {
            "account_id": ["acc_1", None, "acc_3"],
            "subject_key": [key(1), key(1), key(3)],
            "created_at": [END, None, END],
            "status": ["active", "deletion_requested", "deleted"],
        }
    )
    results = by_statement(validate_frame("accounts", accounts, accounts_expectations(D)))
    assert [s for s, (ok, _, _) in results.items() if not ok] == [
        "one row per subject (subject_key unique)",
        "account_id is present (core.accounts holds non-erased accounts only)",
        "status is active or deletion_requested",
    ]


def test_landing_files_suite_warns_on_unreadable_or_noisy_files():
    frame = pd.DataFrame(
        {
            "source_file": ["a.jsonl", "b.jsonl.gz", "c.jsonl"],
            "readable": [True, False, True],
            "received": [100, 1, 100],
            "rejected_share": [0.05, 1.0, 0.0],
            "duplicate_share": [0.0, 0.0, 0.06],
        }
    )
    results = by_statement(validate_frame("files", frame, landing_files_expectations()))
    assert [(ok, unexpected) for ok, _, unexpected in results.values()] == [(False, 1), (False, 1), (False, 1)]


# ---------------------------------------------------------------------------------------------
# Through Dagster: the landing suite sees only the day's batch, and its failure is stated
# ---------------------------------------------------------------------------------------------

LANDING = dg.AssetKey(["landing", "events"])
REPORT = dg.AssetKey(["reports", "compliance_report"])


def insert_event(con, message_id: str, arrival: date, *, name: str = "Signed In", channel: str = "web") -> None:
    con.execute(
        "INSERT INTO vault.accounts SELECT ?, 'acc_1' WHERE ? NOT IN (SELECT subject_key FROM vault.accounts)",
        [key(1), key(1)],
    )
    con.execute(
        """INSERT INTO keyed.events (message_id, event, subject_key, occurred_at, channel,
                                     source_file, line_number, arrival_date)
           VALUES (?, ?, ?, ?, ?, 'part-0000.jsonl', 1, ?)""",
        [
            message_id,
            name,
            key(1),
            datetime.combine(arrival, datetime.min.time(), PRAGUE) + timedelta(hours=9),
            channel,
            arrival,
        ],
    )


@pytest.mark.slow
def test_landing_suite_checks_only_the_day_batch_and_a_failure_fails_the_run(env):
    selection = (
        dg.AssetSelection.assets(LANDING).required_multi_asset_neighbors()
        | dg.AssetSelection.checks_for_assets(LANDING, dg.AssetKey(["landing", "files"]))
        | dg.AssetSelection.assets(REPORT)
        | dg.AssetSelection.checks_for_assets(REPORT)
    )
    # A broken row on the previous arrival day is history: today's batch is clean.
    with env.connect() as con:
        insert_event(con, "m-old", D - timedelta(days=1), name="Bogus", channel="fax")
    env.write_events(D, "part-0000.jsonl", [event("Signed In", "acc_1", "2026-11-03T09:15:00+01:00")])
    result = env.run(D, selection=selection)
    assert result.success
    evaluations = {ev.check_name: ev for ev in result.get_asset_check_evaluations()}
    assert evaluations["landing_day_batch_meets_expectations"].passed
    assert evaluations["landing_day_batch_meets_expectations"].metadata["evaluated"].value == 8
    rows = env.query(
        """SELECT count(*), count(*) FILTER (WHERE success), min(evaluated) FROM ops.expectation_results
           WHERE run_date = ? AND check_name = 'landing_day_batch_meets_expectations'""",
        [D],
    )
    assert rows == [(8, 8, 1)]

    # The same broken row on the day itself (a day with no event folder) fails the suite.
    next_day = D + timedelta(days=1)
    with env.connect() as con:
        insert_event(con, "m-new", next_day, name="Bogus", channel="fax")
    result = env.run(next_day, selection=selection)
    assert not result.success
    evaluation = next(
        ev for ev in result.get_asset_check_evaluations() if ev.check_name == "landing_day_batch_meets_expectations"
    )
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["failed"].value == 2
    gate = next(ev for ev in result.get_asset_check_evaluations() if ev.check_name == "blocking_quality_checks_passed")
    assert not gate.passed
    summary = json.loads((env.reports / str(next_day) / "summary.json").read_text())
    assert summary["status"] == "data_quality_failed"
    # the suite's 2, and the warning events_arrived_for_the_day: no event file arrived that day
    assert summary["quality"]["expectations_failed"] == 3
    page = (env.reports / str(next_day) / "compliance_report.html").read_text()
    assert "Data quality failed" in page
    assert "event is one of the 13 contract events" in page


def test_the_landing_suite_frame_is_dead_and_its_memory_released_when_the_check_ends(env, monkeypatch):
    """Arrow keeps freed pages for reuse; at 3M accounts the day batch's frame held ~240 MB through
    the rest of the night unless the check gives them back once the frame is gone."""
    frames, released = [], []
    original = checks.landing.landing_batch_frame

    def load(con, day):
        frame = original(con, day)
        frames.append(weakref.ref(frame))
        return frame

    def release():
        gc.collect()
        released.append([ref() is None for ref in frames])

    monkeypatch.setattr(checks.landing, "landing_batch_frame", load)
    monkeypatch.setattr(checks.nightly, "release_unused_memory", release)
    env.write_events(D, "part-0000.jsonl", [event("Signed In", "acc_1", "2026-11-03T09:15:00+01:00")])
    selection = dg.AssetSelection.assets(LANDING).required_multi_asset_neighbors()
    selection |= dg.AssetSelection.checks_for_assets(LANDING)
    assert env.run(D, selection=selection).success
    assert len(frames) == 1
    assert [True] in released  # after the landing suite: its frame was gone when memory was released


def test_memory_is_given_back_once_enough_rows_were_validated(monkeypatch):
    """A full garbage collection costs ~0.25 s in a night's process: only large enough frames pay for it."""
    from checks.gx import runner as gx_runner

    collections = []
    monkeypatch.setattr(gx_runner.gc, "collect", lambda: collections.append(1))
    monkeypatch.setattr(gx_runner, "RELEASE_ROWS", 10)
    monkeypatch.setitem(gx_runner._state, "unreleased_rows", 0)
    not_null = [Expect("a is never null", "ExpectColumnValuesToNotBeNull", {"column": "a"})]

    validate_frame("small", pd.DataFrame({"a": range(6)}), not_null)
    assert gx_runner.release_unused_memory() is False and collections == []
    validate_frame("small", pd.DataFrame({"a": range(3)}), not_null)  # 9 rows: one short
    assert gx_runner.release_unused_memory() is False and collections == []
    validate_frame("small", pd.DataFrame({"a": range(1)}), not_null)  # 10 rows in all
    assert gx_runner.release_unused_memory() is True and collections == [1]
    assert gx_runner.release_unused_memory() is False  # nothing validated since
    validate_frame("large", pd.DataFrame({"a": range(10)}), not_null)
    assert gx_runner.release_unused_memory() is True and collections == [1, 1]


# ---------------------------------------------------------------------------------------------
# Core suites: a daily sample for the row-level expectations, uniqueness over the whole table
# ---------------------------------------------------------------------------------------------


def core_accounts(rows: int, *, duplicate: bool = False):
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE SCHEMA core")
    con.execute(
        """CREATE TABLE core.accounts AS
           SELECT 'acc_' || i AS account_id, sha256('subject-' || i) AS subject_key,
                  TIMESTAMPTZ '2026-11-01 10:00:00+01' AS created_at, 'active' AS status
           FROM range(?) t(i)""",
        [rows],
    )
    if duplicate:  # one subject twice, wherever the sample falls
        con.execute("INSERT INTO core.accounts SELECT * FROM core.accounts WHERE account_id = 'acc_7'")
    con.execute("CREATE SCHEMA compliance")  # as the warehouse has it (pipelines/warehouse/schema.sql)
    con.execute("CREATE TABLE compliance.erased_identifiers (subject_key VARCHAR, kind VARCHAR, key VARCHAR)")
    return con


def test_a_reruns_sample_keeps_accounts_erased_since_as_erased_since():
    """A re-run of an earlier day lists accounts erased later, whose id is gone for good: they stay
    in the sample (the same rows as the first run: the same report bytes), shown as erased since; a
    missing id of an account that was not erased is still missing."""
    from checks.core import ERASED_SINCE, accounts_frame

    con = core_accounts(20)
    first = accounts_frame(con, D, limit=100)
    con.execute("UPDATE core.accounts SET account_id = NULL WHERE account_id IN ('acc_3', 'acc_4')")
    con.execute(
        """INSERT INTO compliance.erased_identifiers
           SELECT subject_key, 'account_id', subject_key FROM core.accounts WHERE account_id IS NULL
           AND subject_key = (SELECT min(subject_key) FROM core.accounts WHERE account_id IS NULL)"""
    )
    frame = accounts_frame(con, D, limit=100)
    assert list(frame["subject_key"]) == list(first["subject_key"])
    assert (frame["account_id"] == ERASED_SINCE).sum() == 1
    assert frame["account_id"].isna().sum() == 1  # not erased: the expectation still sees it


def test_core_frames_are_a_daily_sample_of_at_most_the_limit():
    from checks.core import accounts_frame

    con = core_accounts(1_000)
    today = accounts_frame(con, D, limit=100)
    assert len(today) == 100 and today["subject_key"].is_unique
    assert accounts_frame(con, D, limit=100).equals(today)  # a re-run validates the same rows
    tomorrow = accounts_frame(con, D + timedelta(days=1), limit=100)
    assert set(tomorrow["subject_key"]) != set(today["subject_key"])  # the sample moves every day
    assert len(accounts_frame(con, D, limit=5_000)) == 1_000  # a small table is validated whole


def test_uniqueness_is_asserted_over_the_whole_table_not_the_sample():
    from checks.core import WHOLE_TABLE_UNIQUE_SUBJECT, accounts_frame
    from checks.gx.suite import unique_over_table

    clean = unique_over_table(core_accounts(1_000), "core.accounts", "subject_key", WHOLE_TABLE_UNIQUE_SUBJECT)
    assert (clean.success, clean.evaluated, clean.unexpected) == (True, 1_000, 0)
    con = core_accounts(1_000, duplicate=True)
    sample = accounts_frame(con, D, limit=10)
    assert sample["subject_key"].is_unique  # the sample alone would not see the duplicate
    found = unique_over_table(con, "core.accounts", "subject_key", WHOLE_TABLE_UNIQUE_SUBJECT)
    assert (found.success, found.evaluated, found.unexpected) == (False, 1_001, 1)
