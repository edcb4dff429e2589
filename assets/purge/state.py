"""Who is erased as of the end of day D, and which keyed identifiers belong to them (CONTRACT 5).

Every function here works on one connection and leaves TEMP tables behind for the caller:

* ``_erased(subject_key, deleted_at, erased_on)``: subjects with an accepted "Account Deleted" that
  occurred by the end of D (arrival_date <= D);
* ``_held(email_key)``: erased subjects' e-mails held by a non-erased account (its latest
  Account Created / Email Changed) at the end of D. Such an e-mail is not an erased subject's
  identifier in the state of D: the downstream exports of D are judged with it;
* ``_held_now(email_key)``: the same at the end of the latest day the warehouse holds ("now"),
  which is D on a nightly run and a later day on a re-run of D;
* ``_targets(subject_key, kind, key)``: the identifiers to purge from, and look for in, the
  pipeline's own copies (warehouse and inbox): ``compliance.erased_identifiers`` of the erased
  subjects minus ``_held_now``. A re-run of an earlier day therefore never purges an e-mail that a
  live account holds now, though no live account held it on that day (CONTRACT 5, "Re-runs");
* ``_export_targets(subject_key, kind, key)``: the same minus ``_held``, for the exports of D.
"""

from __future__ import annotations

import calendar
from datetime import date

import duckdb

from pipelines.clock import end_of_day

#: Tables that hold keys only and are exempt from the residual scan (CONTRACT 5), as
#: (catalog, schema, table) with "" for the warehouse itself.
EXEMPT_TABLES: frozenset[tuple[str, str, str]] = frozenset(
    {("", "compliance", "erasure_register"), ("", "compliance", "erased_identifiers")}
)


def due_date(deleted_on: date) -> date:
    """The local date of the deletion + 1 calendar month, clamped to the month's last day."""
    year, month = (deleted_on.year + 1, 1) if deleted_on.month == 12 else (deleted_on.year, deleted_on.month + 1)
    return date(year, month, min(deleted_on.day, calendar.monthrange(year, month)[1]))


#: The same rule in SQL (DuckDB's month arithmetic clamps to the month's last day).
DUE_DATE_SQL = "(timezone('Europe/Prague', {ts})::DATE + INTERVAL 1 MONTH)::DATE"


def load_erased(con: duckdb.DuckDBPyConnection, day: date) -> int:
    """TEMP _erased as of the end of `day`; returns the number of erased subjects."""
    params = {"day": day, "end": end_of_day(day)}
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _erased AS
        SELECT subject_key,
               min(occurred_at) AS deleted_at,
               -- the run that first sees a deletion: its arrival day, or the next day when it
               -- occurred in the hour after the end of its arrival day
               min(greatest(arrival_date, timezone('Europe/Prague', occurred_at)::DATE)) AS erased_on
        FROM keyed.events
        WHERE event = 'Account Deleted' AND arrival_date <= $day AND occurred_at <= $end
        GROUP BY subject_key
        """,
        params,
    )
    return con.execute("SELECT count(*) FROM _erased").fetchall()[0][0]


def record_identifiers(con: duckdb.DuckDBPyConnection, day: date) -> int:
    """Add the keys of every identifier the erased subjects ever had to compliance.erased_identifiers.

    The account id's key is the subject_key; every e-mail of an Account Created or Email Changed
    event (including earlier ones and the previous_email of a change) is kept by its email_key.
    Keys are recorded before any plain value is removed, so later nights still know them.
    Returns the number of keys added.
    """
    return con.execute(
        """
        INSERT INTO compliance.erased_identifiers (subject_key, kind, key)
        WITH ids AS (
            SELECT subject_key, 'account_id' AS kind, subject_key AS key FROM _erased
            UNION
            SELECT e.subject_key, 'email', e.email_key
            FROM keyed.events e SEMI JOIN _erased USING (subject_key)
            WHERE e.email_key IS NOT NULL AND e.arrival_date <= $day
            UNION
            SELECT e.subject_key, 'email', e.previous_email_key
            FROM keyed.events e SEMI JOIN _erased USING (subject_key)
            WHERE e.previous_email_key IS NOT NULL AND e.arrival_date <= $day
        )
        SELECT * FROM ids
        WHERE NOT EXISTS (
            SELECT 1 FROM compliance.erased_identifiers i
            WHERE i.subject_key = ids.subject_key AND i.kind = ids.kind AND i.key = ids.key)
        """,
        {"day": day},
    ).fetchall()[0][0]


def latest_day(con: duckdb.DuckDBPyConnection, day: date) -> date:
    """ "Now" for a run of `day`: the latest arrival day the warehouse holds, or `day` if later."""
    latest = con.execute("SELECT max(arrival_date) FROM keyed.events").fetchall()[0][0]
    return day if latest is None or latest < day else latest


def load_held(con: duckdb.DuckDBPyConnection, day: date, *, into: str = "_held") -> None:
    """TEMP `into`: the e-mails of the subjects in _erased that a live account holds at the end of `day`.

    An account holds the e-mail of its latest Account Created / Email Changed; it is live when it
    has no deletion by the end of `day`. Only accounts that ever had one of the erased subjects'
    e-mails can hold one, so only their events are ranked (not every account's).
    """
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {into} AS
        WITH erased_emails AS (
            SELECT DISTINCT i.key AS email_key
            FROM compliance.erased_identifiers i SEMI JOIN _erased USING (subject_key)
            WHERE i.kind = 'email'
        ), deleted_by_then AS (
            SELECT DISTINCT subject_key FROM keyed.events
            WHERE event = 'Account Deleted' AND arrival_date <= $day AND occurred_at <= $end
        ), email_events AS (
            SELECT subject_key, email_key, occurred_at, arrival_date, source_file, line_number
            FROM keyed.events
            WHERE event IN ('Account Created', 'Email Changed') AND email_key IS NOT NULL
              AND arrival_date <= $day AND occurred_at <= $end
              AND subject_key NOT IN (SELECT subject_key FROM deleted_by_then)
        ), candidates AS (
            SELECT DISTINCT subject_key FROM email_events
            WHERE email_key IN (SELECT email_key FROM erased_emails)
        ), latest AS (
            SELECT email_key FROM email_events
            WHERE subject_key IN (SELECT subject_key FROM candidates)
            QUALIFY row_number() OVER (
                PARTITION BY subject_key
                ORDER BY occurred_at DESC, arrival_date DESC, source_file DESC, line_number DESC) = 1
        )
        SELECT DISTINCT email_key FROM latest WHERE email_key IN (SELECT email_key FROM erased_emails)
        """,
        {"day": day, "end": end_of_day(day)},
    )


def load_targets(con: duckdb.DuckDBPyConnection, day: date) -> int:
    """TEMP _held, _held_now, _targets and _export_targets for the subjects in _erased (see the module)."""
    load_held(con, day)
    now = latest_day(con, day)
    if now == day:
        con.execute("CREATE OR REPLACE TEMP TABLE _held_now AS SELECT * FROM _held")
    else:
        load_held(con, now, into="_held_now")
    for table, held in (("_targets", "_held_now"), ("_export_targets", "_held")):
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT i.subject_key, i.kind, i.key
            FROM compliance.erased_identifiers i SEMI JOIN _erased USING (subject_key)
            WHERE NOT (i.kind = 'email' AND i.key IN (SELECT email_key FROM {held}))
            """
        )
    return con.execute("SELECT count(*) FROM _targets").fetchall()[0][0]


def load_state(con: duckdb.DuckDBPyConnection, day: date, *, record: bool = False) -> int:
    """_erased and the tables of `load_targets` for `day` (recording new identifier keys first when asked)."""
    erased = load_erased(con, day)
    if record and erased:
        record_identifiers(con, day)
    load_targets(con, day)
    return erased
