"""Great Expectations suites on the landing day batch and the core tables, as Dagster asset checks.

Each suite validates a pandas frame pulled from DuckDB (checks/gx_runner.py): the landing suites
see ONLY the arrival day's batch (arrival_date = D), never history; the core suites see the core
tables, which hold the state as of the end of D, through a daily sample of at most SAMPLE_ROWS
rows each (uniqueness is asserted over the whole table in SQL). Cross-table rules (interval
overlap, consent rows of known subjects) are SQL checks next to the core assets.

Severity: ERROR where a failure makes the report wrong (the headline then says "data quality
failed" and the report's gate check fails the run); WARN otherwise. None is `blocking` in Dagster:
the report must still be published so that it can state the failure.
"""

import functools
from datetime import timedelta

import dagster as dg
import duckdb
import pandas as pd

from assets.common import POOL, day_of, row_count
from assets.landing.contract import CHANNELS, EVENTS, MESSAGE_ID_MAX
from checks.gx_runner import (
    Expect,
    Outcome,
    SuiteOutcome,
    assertion,
    merge,
    outcomes_markdown,
    release_unused_memory,
    validate_frame,
)
from checks.results import ERROR, WARN, check_result, record_expectations
from pipelines.clock import end_of_day
from pipelines.partitions import nightly_partitions
from pipelines.resources import Warehouse

HEX_KEY = r"^[0-9a-f]{64}$"
#: CONTRACT 2.1: a timestamp later than the end of the arrival day plus 1 hour is rejected.
FUTURE_TOLERANCE = timedelta(hours=1)
MAX_REJECTED_SHARE = 0.05
MAX_DUPLICATE_SHARE = 0.05
#: Rows of a core table that its GX suite validates each night: a sample that changes every day
#: (ordered by a hash of the row's key and the day), so that the suite's time and memory do not
#: grow with history. Uniqueness, which no sample can show, is asserted in SQL over the whole table.
SAMPLE_ROWS = 100_000
WHOLE_TABLE_UNIQUE_SUBJECT = "one row per subject over the whole table (SQL)"
WHOLE_TABLE_UNIQUE_MESSAGE = "one row per consent event over the whole table (SQL)"


def _core_suite(
    context: dg.AssetCheckExecutionContext,
    con: duckdb.DuckDBPyConnection,
    day,
    *,
    table: str,
    frame: pd.DataFrame,
    expectations: list[Expect],
    what: str,
    unique: tuple[str, str] | None = None,
) -> dg.AssetCheckResult:
    """A core table's suite: GX on its daily sample, plus (column, statement) uniqueness over the whole table."""
    suite = table.split(".", 1)[1]
    outcome = validate_frame(suite, frame, expectations)
    if unique is not None:
        outcome = merge(suite, outcome, [unique_over_table(con, table, *unique)])
    total = row_count(con, table)
    subject = f"{total} {what}" if len(frame) == total else f"{len(frame)} of {total} {what} (a daily sample)"
    return suite_result(context, con, day=day, severity=ERROR, outcome=outcome, subject=subject)


def suite_result(
    context: dg.AssetCheckExecutionContext,
    con: duckdb.DuckDBPyConnection,
    *,
    day,
    severity: dg.AssetCheckSeverity,
    outcome: SuiteOutcome,
    subject: str,
    metadata: dict | None = None,
) -> dg.AssetCheckResult:
    """Record every expectation and the suite's total, and build the AssetCheckResult."""
    spec = context.check_specs[0]
    record_expectations(
        con,
        run_date=day,
        check_name=spec.name,
        asset=spec.asset_key.to_user_string(),
        outcomes=outcome.outcomes,
    )
    description = f"{subject}: {outcome.summary()}"
    if not outcome.passed:
        description += ". Failed: " + "; ".join(outcome.failing())
    return check_result(
        context,
        con,
        run_date=day,
        severity=severity,
        passed=outcome.passed,
        evaluated=outcome.evaluated,
        failed=outcome.failed,
        description=description,
        details=outcome.summary(),
        metadata={"expectations": dg.MetadataValue.md(outcomes_markdown(outcome)), **(metadata or {})},
    )


def _check(asset: list[str], name: str, severity: dg.AssetCheckSeverity):
    """@dg.asset_check with the project's conventions (checks run before the report, never block it).

    The frame a suite validated is dead once the check returns; once enough rows were validated
    (the landing day batch at scale), their memory is then given back (`release_unused_memory`),
    not kept through the rest of the night."""
    decorate = dg.asset_check(
        asset=dg.AssetKey(asset),
        name=name,
        blocking=False,
        partitions_def=nightly_partitions,
        pool=POOL,
        metadata={"severity": severity.value, "engine": "great_expectations"},
    )

    def wrap(fn):
        @functools.wraps(fn)
        def check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
            try:
                return fn(context, warehouse)
            finally:
                release_unused_memory()

        return decorate(check)

    return wrap


# ---------------------------------------------------------------------------------------------
# The suites: the frame each one validates, and its expectations
# ---------------------------------------------------------------------------------------------
# Frames are not sorted: only counts leave a validation, and they do not depend on row order
# (sorting a million 64-character keys was a third of a core suite's time).


def landing_batch_frame(con: duckdb.DuckDBPyConnection, day) -> pd.DataFrame:
    """The arrival day's accepted events only (arrival_date = D), never history."""
    return con.execute(
        """SELECT message_id, event, channel, occurred_at, subject_key
           FROM landing.events WHERE arrival_date = ?""",
        [day],
    ).df()


def landing_batch_expectations(day) -> list[Expect]:
    latest = end_of_day(day) + FUTURE_TOLERANCE
    return [
        Expect("message_id is never null", "ExpectColumnValuesToNotBeNull", {"column": "message_id"}),
        Expect("message_id is unique in the day's batch", "ExpectColumnValuesToBeUnique", {"column": "message_id"}),
        Expect(
            f"message_id has 1 to {MESSAGE_ID_MAX} characters",
            "ExpectColumnValueLengthsToBeBetween",
            {"column": "message_id", "min_value": 1, "max_value": MESSAGE_ID_MAX},
        ),
        Expect(
            f"event is one of the {len(EVENTS)} contract events",
            "ExpectColumnValuesToBeInSet",
            {"column": "event", "value_set": list(EVENTS)},
        ),
        Expect(
            "channel is one of " + ", ".join(CHANNELS),
            "ExpectColumnValuesToBeInSet",
            {"column": "channel", "value_set": list(CHANNELS)},
        ),
        Expect("occurred_at is never null", "ExpectColumnValuesToNotBeNull", {"column": "occurred_at"}),
        Expect(
            f"occurred_at is not in the future: at or before {latest.isoformat()} (end of the day + 1 h)",
            "ExpectColumnValuesToBeBetween",
            {"column": "occurred_at", "max_value": latest},
        ),
        Expect(
            "subject_key is a keyed hash (64 hex digits)",
            "ExpectColumnValuesToMatchRegex",
            {"column": "subject_key", "regex": HEX_KEY},
        ),
    ]


def landing_files_frame(con: duckdb.DuckDBPyConnection, day) -> pd.DataFrame:
    return con.execute(
        """SELECT source_file, readable, received,
                  CASE WHEN received = 0 THEN 0 ELSE rejected / received END AS rejected_share,
                  CASE WHEN received = 0 THEN 0 ELSE duplicates / received END AS duplicate_share
           FROM landing.files WHERE arrival_date = ? ORDER BY source_file""",
        [day],
    ).df()


def landing_files_expectations() -> list[Expect]:
    return [
        Expect(
            "every file of the day could be read",
            "ExpectColumnValuesToBeInSet",
            {"column": "readable", "value_set": [True]},
        ),
        Expect(
            f"at most {MAX_REJECTED_SHARE:.0%} of a file's lines are rejected",
            "ExpectColumnValuesToBeBetween",
            {"column": "rejected_share", "min_value": 0, "max_value": MAX_REJECTED_SHARE},
        ),
        Expect(
            f"at most {MAX_DUPLICATE_SHARE:.0%} of a file's lines are duplicates",
            "ExpectColumnValuesToBeBetween",
            {"column": "duplicate_share", "min_value": 0, "max_value": MAX_DUPLICATE_SHARE},
        ),
    ]


def club_membership_frame(con: duckdb.DuckDBPyConnection, day, limit: int = SAMPLE_ROWS) -> pd.DataFrame:
    return con.execute(
        """SELECT subject_key, valid_from, valid_to, end_reason,
                  valid_to IS NOT NULL AS closed, end_reason IS NOT NULL AS has_end_reason
           FROM core.club_membership
           ORDER BY hash(subject_key, valid_from, $day::VARCHAR) LIMIT $limit""",
        {"day": day, "limit": limit},
    ).df()


def club_membership_expectations(day) -> list[Expect]:
    end = end_of_day(day)
    return [
        Expect(
            "subject_key is a keyed hash (64 hex digits)",
            "ExpectColumnValuesToMatchRegex",
            {"column": "subject_key", "regex": HEX_KEY},
        ),
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
           FROM core.consent_history
           ORDER BY hash(message_id, $day::VARCHAR) LIMIT $limit""",
        {"day": day, "limit": limit},
    ).df()


def consent_history_expectations(day) -> list[Expect]:
    return [
        Expect(
            "subject_key is a keyed hash (64 hex digits)",
            "ExpectColumnValuesToMatchRegex",
            {"column": "subject_key", "regex": HEX_KEY},
        ),
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


def accounts_frame(con: duckdb.DuckDBPyConnection, day, limit: int = SAMPLE_ROWS) -> pd.DataFrame:
    """A sample of core.accounts. A re-run of an earlier day lists accounts erased since, whose
    account id the later night purged for good: they are left out of the sample (CONTRACT 5)."""
    return con.execute(
        """SELECT account_id, subject_key, created_at, status FROM core.accounts
           WHERE subject_key NOT IN (SELECT key FROM compliance.erased_identifiers WHERE kind = 'account_id')
           ORDER BY hash(subject_key, $day::VARCHAR) LIMIT $limit""",
        {"day": day, "limit": limit},
    ).df()


def unique_over_table(con: duckdb.DuckDBPyConnection, table: str, column: str, statement: str) -> Outcome:
    """SQL assertion over the whole core table (a sample cannot show uniqueness): every value once."""
    rows, distinct = con.execute(f"SELECT count(*), count(DISTINCT {column}) FROM {table}").fetchall()[0]
    return assertion(statement, rows == distinct, rows, rows - distinct)


def accounts_expectations(day) -> list[Expect]:
    return [
        Expect(
            "subject_key is a keyed hash (64 hex digits)",
            "ExpectColumnValuesToMatchRegex",
            {"column": "subject_key", "regex": HEX_KEY},
        ),
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


# ---------------------------------------------------------------------------------------------
# The Dagster checks
# ---------------------------------------------------------------------------------------------


@_check(["landing", "events"], "landing_day_batch_meets_expectations", ERROR)
def landing_day_batch_meets_expectations(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    """GX suite on the arrival day's accepted events: ids, event and channel sets, timestamps."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        frame = landing_batch_frame(con, day)
        outcome = validate_frame("landing_day_batch", frame, landing_batch_expectations(day))
        subject = f"{len(frame)} accepted events of {day}"
        return suite_result(context, con, day=day, severity=ERROR, outcome=outcome, subject=subject)


@_check(["landing", "files"], "landing_files_look_healthy", WARN)
def landing_files_look_healthy(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    """GX suite on the day's files: all readable, few rejected or duplicate lines (a warning only)."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        frame = landing_files_frame(con, day)
        outcome = validate_frame("landing_files", frame, landing_files_expectations())
        subject = f"{len(frame)} file(s) of {day}"
        return suite_result(context, con, day=day, severity=WARN, outcome=outcome, subject=subject)


@_check(["core", "club_membership"], "club_membership_meets_expectations", ERROR)
def club_membership_meets_expectations(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    """GX suite on CLUB intervals: valid_from < valid_to, end reasons, nothing after the end of the day."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        return _core_suite(
            context,
            con,
            day,
            table="core.club_membership",
            frame=club_membership_frame(con, day),
            expectations=club_membership_expectations(day),
            what="membership interval(s)",
        )


@_check(["core", "consent_history"], "consent_history_meets_expectations", ERROR)
def consent_history_meets_expectations(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    """GX suite on consent history: one row per consent event, a value, nothing after the end of the day."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        return _core_suite(
            context,
            con,
            day,
            table="core.consent_history",
            frame=consent_history_frame(con, day),
            expectations=consent_history_expectations(day),
            what="consent row(s)",
            unique=("message_id", WHOLE_TABLE_UNIQUE_MESSAGE),
        )


@_check(["core", "accounts"], "accounts_meet_expectations", ERROR)
def accounts_meet_expectations(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    """GX suite on accounts: one row per subject, a known status, an account id (non-erased only)."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        return _core_suite(
            context,
            con,
            day,
            table="core.accounts",
            frame=accounts_frame(con, day),
            expectations=accounts_expectations(day),
            what="account(s)",
            unique=("subject_key", WHOLE_TABLE_UNIQUE_SUBJECT),
        )
