"""Checks of the landing area: the day's batch (GX), the day's files (GX) and the exports' readability.

The landing suites see ONLY the arrival day's batch (arrival_date = D), never history.
"""

from datetime import timedelta

import duckdb
import pandas as pd

from assets.landing.assets import EVENTS as EVENTS_ASSET
from assets.landing.assets import EXPORT_KEYS, FILES
from assets.landing.contract import CHANNELS, EVENTS, MESSAGE_ID_MAX
from assets.landing.exports import LATEST_EXPORTS_SQL, shown
from assets.landing.freshness import INCOMPLETE, INCOMPLETE_SHARE, MIN_HISTORY_DAYS, day_volume, export_ages
from checks.gx.runner import Expect, validate_frame
from checks.gx.suite import keyed_hash, suite_verdict
from checks.nightly import ERROR, WARN, CheckRun, Verdict, nightly_check
from pipelines.clock import end_of_day

#: CONTRACT 2.1: a timestamp later than the end of the arrival day plus 1 hour is rejected.
FUTURE_TOLERANCE = timedelta(hours=1)
MAX_REJECTED_SHARE = 0.05
MAX_DUPLICATE_SHARE = 0.05


# Frames are not sorted: only counts leave a validation, and they do not depend on row order.
def landing_batch_frame(con: duckdb.DuckDBPyConnection, day) -> pd.DataFrame:
    """The arrival day's accepted events only (arrival_date = D), never history."""
    return con.execute(
        """SELECT message_id, event, channel, occurred_at, subject_key
           FROM keyed.events WHERE arrival_date = ?""",
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
        keyed_hash("subject_key"),
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


@nightly_check(EVENTS_ASSET, severity=ERROR, engine="great_expectations")
def landing_day_batch_meets_expectations(run: CheckRun) -> Verdict:
    """GX suite on the arrival day's accepted events: ids, event and channel sets, timestamps."""
    frame = landing_batch_frame(run.con, run.day)
    outcome = validate_frame("landing_day_batch", frame, landing_batch_expectations(run.day))
    return suite_verdict(outcome, f"{len(frame)} accepted events of {run.day}")


@nightly_check(FILES, severity=WARN, engine="great_expectations")
def landing_files_look_healthy(run: CheckRun) -> Verdict:
    """GX suite on the day's files: all readable, few rejected or duplicate lines (a warning only)."""
    frame = landing_files_frame(run.con, run.day)
    outcome = validate_frame("landing_files", frame, landing_files_expectations())
    return suite_verdict(outcome, f"{len(frame)} file(s) of {run.day}")


@nightly_check(EXPORT_KEYS, severity=WARN)
def exports_are_readable(run: CheckRun) -> Verdict:
    """Every system's latest export dated at or before the day could be read.

    An unreadable export (not UTF-8, no account_id / email header, malformed CSV, a symlink) leaves
    that system's state unknown: the erasure register then names the system for every erased
    subject not yet verified instead of calling them verified (assets/erasure/verifier.py). WARN,
    like unreadable event files: the report is still right (it names the file and its problem),
    but incomplete.
    """
    latest = run.con.execute(f"{LATEST_EXPORTS_SQL} ORDER BY system", {"day": run.day}).fetchall()
    unreadable = [(system, when, problem) for system, when, readable, problem in latest if not readable]
    return Verdict(
        passed=not unreadable,
        description="Every system's latest export could be read",
        details=f"{len(unreadable)} of {len(latest)} system(s) have a latest export that could not be read",
        metadata={
            "systems": len(latest),
            "unreadable": len(unreadable),
            # a system's name may carry anything: shown as itself only if machine-made, else its keyed label
            **{
                f"unreadable/{shown(system)}/{export_date}": problem or ""
                for system, export_date, problem in unreadable[:50]
            },
        },
    )


@nightly_check(FILES, severity=WARN)
def events_arrived_for_the_day(run: CheckRun) -> Verdict:
    """At least one event line arrived for the day: a day without data is an outage, never a clean day.

    WARN, not ERROR: a day without events is still run (retention, exports, the erasure deadlines
    go on), and CONTRACT 3 fails a run only on a blocking check. The outage is stated instead: the
    report's status `no_data` (a red headline) and a `no_data` alert."""
    volume = day_volume(run.con, run.day)
    return Verdict(
        passed=volume.received > 0,
        description="Events arrived for the day",
        details=f"{volume.received} event line(s) in {volume.files} file(s)",
        metadata={"received": volume.received, "files": volume.files},
    )


@nightly_check(FILES, severity=WARN)
def event_volume_is_usual(run: CheckRun) -> Verdict:
    """The day's event volume is at least half the median of the trailing days (assets/landing/freshness.py)."""
    volume = day_volume(run.con, run.day)
    if volume.usual is None:
        judged = f"not judged: {volume.history_days} day(s) of history, {MIN_HISTORY_DAYS} needed"
    else:
        judged = f"usual {volume.usual} (median of the last {volume.history_days} day(s) with data)"
    return Verdict(
        passed=volume.status != INCOMPLETE,
        description=f"The day's event volume is at least {INCOMPLETE_SHARE:.0%} of its usual level",
        details=f"{volume.received} event line(s); {judged}",
        metadata={
            "received": volume.received,
            "usual": volume.usual if volume.usual is not None else "not judged",
            "history_days": volume.history_days,
            "status": volume.status,
        },
    )


@nightly_check(EXPORT_KEYS, severity=WARN)
def exports_are_fresh(run: CheckRun) -> Verdict:
    """Every system's latest export is younger than the system's usual cadence (assets/landing/freshness.py)."""
    ages = export_ages(run.con, run.day)
    stale = [a for a in ages if a.stale]
    return Verdict(
        passed=not stale,
        description="Every system's latest export is younger than its usual cadence",
        details=f"{len(stale)} of {len(ages)} system(s) stale",
        metadata={
            "systems": len(ages),
            "stale": len(stale),
            # a system's name may carry anything: shown as itself only if machine-made, else its keyed label
            **{f"stale/{shown(a.system)}": f"{a.age_days} day(s) old, cadence {a.cadence_days:g}" for a in stale[:50]},
        },
    )
