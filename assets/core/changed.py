"""The core tables are merged, not rebuilt: only the subjects whose state can have changed are recomputed.

A core table holds each subject's state as of the end of one day, recorded in ``ops.core_state``.
A subject's rows depend on its own known events only (``known_events``, ``as_of.py``), so between
the state as of P (what the table holds) and as of D (tonight's day), only these subjects can
differ (TEMP ``_changed``):

- those with an event known as of one of the two days and not the other: the events that arrived
  after P (late ones included: whatever they change in the subject's past is recomputed), an event
  of P's last hour that occurred after the end of its arrival day, and, when D is before P (a re-run
  of an earlier day), the events that arrived after D;
- those with an event that arrived on D itself (a re-run of D may ingest a file the first run of
  D did not see).

Ingestion accepts no event that occurred more than an hour after the end of its arrival day
(``landing/event_validation.py``), so an event that arrived before the earlier of P and D is known
on both days. Finding the changed subjects therefore reads the arrivals from the earlier day to
the later, not history. Their rows are deleted and computed again from their whole known history,
in one transaction with the new as-of day. A table with no recorded as-of day (a new warehouse,
or one built before the merge) is computed whole, with the same SQL.
"""

from __future__ import annotations

from datetime import date

import duckdb

from assets.core.as_of import install_as_of_views
from pipelines.clock import end_of_day
from pipelines.warehouse import transaction

#: The relations a core table's SELECT reads, for every subject (a whole build) or for the
#: changed subjects only (a merge): ``{events}`` (known events), ``{deletions}`` (first deletion per
#: subject) and ``{consent}`` (keyed.consent_history, which is merged first).
WHOLE = {"events": "known_events", "deletions": "deletions", "consent": "keyed.consent_history"}
CHANGED = {"events": "changed_events", "deletions": "changed_deletions", "consent": "changed_consent"}


def as_of_day(con: duckdb.DuckDBPyConnection, table: str) -> date | None:
    """The day whose end `table` holds the state of, or None when unknown (computed whole next)."""
    return con.execute("SELECT max(as_of) FROM ops.core_state WHERE table_name = ?", [table]).fetchall()[0][0]


def load_changed(con: duckdb.DuckDBPyConnection, previous: date, day: date) -> int:
    """TEMP _changed(subject_key) between the state as of `previous` and as of `day`, and the TEMP
    views changed_events / changed_deletions / changed_consent over it; returns its size."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _changed AS
        SELECT DISTINCT subject_key FROM keyed.events
        WHERE arrival_date BETWEEN least($previous, $day) AND greatest($previous, $day)
          AND (arrival_date = $day
               OR (arrival_date <= $previous AND occurred_at <= $previous_end)
                  <> (arrival_date <= $day AND occurred_at <= $day_end))
        """,
        {"previous": previous, "day": day, "previous_end": end_of_day(previous), "day_end": end_of_day(day)},
    )
    for relation, source in WHOLE.items():
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {CHANGED[relation]} AS "
            f"SELECT * FROM {source} WHERE subject_key IN (SELECT subject_key FROM _changed)"
        )
    return con.execute("SELECT count(*) FROM _changed").fetchall()[0][0]


def merge(con: duckdb.DuckDBPyConnection, table: str, day: date, select: str) -> int | None:
    """Bring `table` to the state as of the end of `day`: `select` (a SELECT of the table's rows
    over the relations named in WHOLE / CHANGED) recomputes the changed subjects' rows, or every
    row when the table's as-of day is unknown. Returns the number of subjects recomputed, or None
    for a whole build."""
    install_as_of_views(con, day)
    with transaction(con):
        previous = as_of_day(con, table)
        if previous is None:
            changed = None
            con.execute(f"DELETE FROM {table}")
            sources = WHOLE
        else:
            changed = load_changed(con, previous, day)
            con.execute(f"DELETE FROM {table} WHERE subject_key IN (SELECT subject_key FROM _changed)")
            sources = CHANGED
        if changed != 0:
            con.execute(f"INSERT INTO {table} BY NAME {select.format(**sources)}")
        record_as_of(con, table, day)
    return changed


def judge_changed_only(con: duckdb.DuckDBPyConnection, previous: date, day: date) -> int:
    """From here on, ``known_events`` (and the views over it: ``deletions``, ``care_hours``) on this
    connection holds only the changed subjects' known events (TEMP _judged_events); returns their
    number of subjects. For rules judged per subject (the event rules)."""
    changed = load_changed(con, previous, day)
    con.execute("CREATE OR REPLACE TEMP TABLE _judged_events AS SELECT * FROM changed_events")
    con.execute("CREATE OR REPLACE TEMP VIEW known_events AS SELECT * FROM _judged_events")
    return changed


def record_as_of(con: duckdb.DuckDBPyConnection, table: str, day: date) -> None:
    """`table` now holds the state as of the end of `day` (inside the caller's transaction)."""
    con.execute("DELETE FROM ops.core_state WHERE table_name = ?", [table])
    con.execute("INSERT INTO ops.core_state (table_name, as_of) VALUES (?, ?)", [table, day])
