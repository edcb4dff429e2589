"""Checks of the core area: a GX suite per table on its daily sample, and cross-table rules in SQL.

The core tables hold the state as of the end of D; each GX suite sees a daily sample of at most
SAMPLE_ROWS rows (uniqueness is asserted over the whole table in SQL). Severity: ERROR where a
failure makes the report wrong. None is `blocking` in Dagster: the report must still be published
so that it can state the failure, and its gate check then fails the run.
"""

import duckdb
import pandas as pd

from assets.core.accounts import ACCOUNTS
from assets.core.consent import CONSENT_HISTORY
from assets.core.membership import CLUB_MEMBERSHIP
from checks.gx.runner import Expect
from checks.gx.suite import SAMPLE_ROWS, keyed_hash, sample_suite_verdict
from checks.nightly import ERROR, WARN, CheckRun, Verdict, nightly_check, none_offend
from pipelines.clock import end_of_day

WHOLE_TABLE_UNIQUE_SUBJECT = "one row per subject over the whole table (SQL)"
WHOLE_TABLE_UNIQUE_MESSAGE = "one row per consent event over the whole table (SQL)"

OVERLAPS_SQL = """
SELECT count(*),
       (SELECT count(DISTINCT subject_key) FROM keyed.club_membership)
FROM (SELECT *, row_number() OVER () AS id FROM keyed.club_membership) a
JOIN (SELECT *, row_number() OVER () AS id FROM keyed.club_membership) b
  ON a.subject_key = b.subject_key AND a.id < b.id
 AND a.valid_from < coalesce(b.valid_to, 'infinity'::TIMESTAMPTZ)
 AND b.valid_from < coalesce(a.valid_to, 'infinity'::TIMESTAMPTZ)
"""

ILL_ORDERED_SQL = """
SELECT count(*) FILTER (WHERE NOT coalesce(
           (valid_to IS NULL AND end_reason IS NULL)
        OR (valid_from < valid_to AND end_reason IN ('consent_withdrawn', 'account_deleted')),
        false)),
       count(*)
FROM keyed.club_membership
"""

UNKNOWN_SUBJECTS_SQL = """
SELECT count(DISTINCT c.subject_key) FILTER (WHERE NOT EXISTS (
           SELECT 1 FROM keyed.events e
           WHERE e.subject_key = c.subject_key AND e.event = 'Account Created')),
       count(DISTINCT c.subject_key)
FROM keyed.consent_history c
"""


# Frames are not sorted: only counts leave a validation, and they do not depend on row order
# (sorting a million 64-character keys was a third of a core suite's time).
def club_membership_frame(con: duckdb.DuckDBPyConnection, day, limit: int = SAMPLE_ROWS) -> pd.DataFrame:
    return con.execute(
        """SELECT subject_key, valid_from, valid_to, end_reason,
                  valid_to IS NOT NULL AS closed, end_reason IS NOT NULL AS has_end_reason
           FROM keyed.club_membership
           ORDER BY hash(subject_key, valid_from, $day::VARCHAR) LIMIT $limit""",
        {"day": day, "limit": limit},
    ).df()


def club_membership_expectations(day) -> list[Expect]:
    end = end_of_day(day)
    return [
        keyed_hash("subject_key"),
        Expect("valid_from is never null", "ExpectColumnValuesToNotBeNull", {"column": "valid_from"}),
        Expect(
            "valid_from < valid_to for every closed interval",
            "ExpectColumnPairValuesAToBeGreaterThanB",
            {
                "column_A": "valid_to",
                "column_B": "valid_from",
                "or_equal": False,
                "ignore_row_if": "either_value_is_missing",
            },
        ),
        Expect(
            "end_reason is consent_withdrawn or account_deleted",
            "ExpectColumnValuesToBeInSet",
            {"column": "end_reason", "value_set": ["consent_withdrawn", "account_deleted"]},
        ),
        Expect(
            "an interval has an end_reason exactly when it is closed",
            "ExpectColumnPairValuesToBeEqual",
            {"column_A": "closed", "column_B": "has_end_reason"},
        ),
        Expect(
            "no interval starts after the end of the day",
            "ExpectColumnValuesToBeBetween",
            {"column": "valid_from", "max_value": end},
        ),
        Expect(
            "no interval ends after the end of the day",
            "ExpectColumnValuesToBeBetween",
            {"column": "valid_to", "max_value": end},
        ),
    ]


def consent_history_frame(con: duckdb.DuckDBPyConnection, day, limit: int = SAMPLE_ROWS) -> pd.DataFrame:
    return con.execute(
        """SELECT subject_key, occurred_at, granted, message_id
           FROM keyed.consent_history
           ORDER BY hash(message_id, $day::VARCHAR) LIMIT $limit""",
        {"day": day, "limit": limit},
    ).df()


def consent_history_expectations(day) -> list[Expect]:
    return [
        keyed_hash("subject_key"),
        Expect("granted is never null", "ExpectColumnValuesToNotBeNull", {"column": "granted"}),
        Expect("message_id is never null", "ExpectColumnValuesToNotBeNull", {"column": "message_id"}),
        Expect(
            "one row per consent event (message_id unique)", "ExpectColumnValuesToBeUnique", {"column": "message_id"}
        ),
        Expect(
            "no consent event after the end of the day",
            "ExpectColumnValuesToBeBetween",
            {"column": "occurred_at", "max_value": end_of_day(day)},
        ),
    ]


#: The account id of an account erased after the day being re-run, in the sample of core.accounts.
ERASED_SINCE = "[erased since]"


def accounts_frame(con: duckdb.DuckDBPyConnection, day, limit: int = SAMPLE_ROWS) -> pd.DataFrame:
    """A sample of core.accounts. A re-run of an earlier day lists accounts erased since, whose
    account id a later night purged for good (CONTRACT 5): they stay in the sample, their account id
    shown as ERASED_SINCE, so that the re-run validates the same rows as the first run and its
    report is the same bytes (the archive's chain of manifests, assets/reports/archive.py)."""
    return con.execute(
        """SELECT CASE WHEN account_id IS NULL AND subject_key IN (
                           SELECT key FROM compliance.erased_identifiers WHERE kind = 'account_id')
                       THEN $erased ELSE account_id END AS account_id,
                  subject_key, created_at, status
           FROM core.accounts
           ORDER BY hash(subject_key, $day::VARCHAR) LIMIT $limit""",
        {"day": day, "limit": limit, "erased": ERASED_SINCE},
    ).df()


def accounts_expectations(day) -> list[Expect]:
    return [
        keyed_hash("subject_key"),
        Expect("one row per subject (subject_key unique)", "ExpectColumnValuesToBeUnique", {"column": "subject_key"}),
        Expect(
            "account_id is present (core.accounts holds non-erased accounts only)",
            "ExpectColumnValuesToNotBeNull",
            {"column": "account_id"},
        ),
        Expect(
            "status is active or deletion_requested",
            "ExpectColumnValuesToBeInSet",
            {"column": "status", "value_set": ["active", "deletion_requested"]},
        ),
        Expect(
            "no account created after the end of the day",
            "ExpectColumnValuesToBeBetween",
            {"column": "created_at", "max_value": end_of_day(day)},
        ),
    ]


@nightly_check(CLUB_MEMBERSHIP, severity=ERROR, engine="great_expectations")
def club_membership_meets_expectations(run: CheckRun) -> Verdict:
    """GX suite on CLUB intervals: valid_from < valid_to, end reasons, nothing after the end of the day."""
    return sample_suite_verdict(
        run.con,
        table="core.club_membership",
        frame=club_membership_frame(run.con, run.day),
        expectations=club_membership_expectations(run.day),
        what="membership interval(s)",
    )


@nightly_check(CONSENT_HISTORY, severity=ERROR, engine="great_expectations")
def consent_history_meets_expectations(run: CheckRun) -> Verdict:
    """GX suite on consent history: one row per consent event, a value, nothing after the end of the day."""
    return sample_suite_verdict(
        run.con,
        table="core.consent_history",
        frame=consent_history_frame(run.con, run.day),
        expectations=consent_history_expectations(run.day),
        what="consent row(s)",
        unique=("message_id", WHOLE_TABLE_UNIQUE_MESSAGE),
    )


@nightly_check(ACCOUNTS, severity=ERROR, engine="great_expectations")
def accounts_meet_expectations(run: CheckRun) -> Verdict:
    """GX suite on accounts: one row per subject, a known status, an account id (non-erased only)."""
    return sample_suite_verdict(
        run.con,
        table="core.accounts",
        frame=accounts_frame(run.con, run.day),
        expectations=accounts_expectations(run.day),
        what="account(s)",
        unique=("subject_key", WHOLE_TABLE_UNIQUE_SUBJECT),
    )


@nightly_check(CLUB_MEMBERSHIP, severity=ERROR)
def club_intervals_do_not_overlap(run: CheckRun) -> Verdict:
    """No subject has two CLUB membership intervals that overlap in time (at most one open interval)."""
    return none_offend(
        run.con,
        OVERLAPS_SQL,
        description="CLUB membership intervals of one subject never overlap",
        offending="overlapping_interval_pairs",
        examined="subjects",
    )


@nightly_check(CLUB_MEMBERSHIP, severity=ERROR)
def club_intervals_are_well_ordered(run: CheckRun) -> Verdict:
    """Every closed interval has valid_from < valid_to and an end reason; an open one has neither."""
    return none_offend(
        run.con,
        ILL_ORDERED_SQL,
        description="CLUB intervals have valid_from < valid_to and a matching end_reason",
        offending="ill_formed",
        examined="intervals",
    )


@nightly_check(CONSENT_HISTORY, severity=WARN)
def consent_rows_reference_known_subjects(run: CheckRun) -> Verdict:
    """Every subject in the consent history has an accepted "Account Created" event."""
    return none_offend(
        run.con,
        UNKNOWN_SUBJECTS_SQL,
        description="consent events belong to accounts whose creation was received",
        offending="without_an_account_created_event",
        examined="subjects_with_consent_events",
    )
