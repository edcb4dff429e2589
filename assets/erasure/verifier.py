"""The verifier: residual data of erased subjects, statuses and due dates (CONTRACT 5).

Residual data is any identifier of an erased subject (its account id, or an e-mail it ever had
that no live account holds now) found in:

* ``warehouse``: any text column of any warehouse table (the generic scan, ``scan.py``);
* ``inbox``: a retained event file under ``<inbox>/events/``, anywhere in a line (its userIds,
  e-mail-like tokens, words and JSON strings, hashed and cached per folder by its file manifest
  in ``ops.inbox_keys``, as the keys' bytes);
* ``<system>``: the latest export of that system dated at or before D (``landing.export_keys``),
  matched by subject_key and by email_key; or that export could not be read, so the system's
  state is unknown and it is named for every erased subject (`add_unreadable_exports`).

``residual_locations`` joins the locations with ``,``; a system's name is encoded so that any name
survives (``locations.py``).

**Remediation rows.** The systems' locations are derived from ``_export_residuals``: one row per
(subject, system, export, row_number) where the subject's identifiers were found, with
``matched_on`` (``account_id``, ``email`` or ``account_id+email``), plus one row with no
row_number (``export_unreadable``) for each system named because its export could not be read.
``compliance.erasure_remediation`` keeps these rows, rewritten in the same transaction as the
register, so a system is in a subject's residual_locations exactly when the subject has a row for
it there (the check ``remediation_lists_match_the_register``); the report's remediation lists are
made from it (``assets/reports/remediation.py``).

Status on D: ``verified`` (nothing left), ``pending`` (residual, D <= due_date) or ``overdue``
(residual, D > due_date). ``compliance.erasure_register`` holds one row per erased subject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from assets.erasure.locations import encode_system_sql
from assets.landing.exports import UNREADABLE_LATEST_SQL
from assets.purge.inbox_scan import scan_inbox
from assets.purge.scan import scan_warehouse
from assets.purge.state import DUE_DATE_SQL, load_state
from pipelines.warehouse import transaction

STATUSES = ("verified", "pending", "overdue")


@dataclass
class RegisterResult:
    erased_total: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    by_location: dict[str, int] = field(default_factory=dict)
    remediation_rows: int = 0


# ---------------------------------------------------------------------------------------------
# The register
# ---------------------------------------------------------------------------------------------


def find_residuals(con: duckdb.DuckDBPyConnection, inbox: Path, day: date) -> None:
    """TEMP _residuals(subject_key, location) for the subjects in _erased: the pipeline's own copies
    against _targets, the exports of `day` against _export_targets (``state.py``); the systems'
    locations come from TEMP _export_residuals, the rows behind them."""
    scan_inbox(con, inbox, day)
    scan_warehouse(con)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _export_residuals AS
        SELECT subject_key, system, export_date, row_number,
               array_to_string(list_sort(list(DISTINCT kind)), '+') AS matched_on
        FROM (
            SELECT t.subject_key, x.system, x.export_date, x.row_number, t.kind FROM landing.export_keys x
            JOIN _export_targets t ON t.kind = 'account_id' AND t.key = x.subject_key
            UNION ALL
            SELECT t.subject_key, x.system, x.export_date, x.row_number, t.kind FROM landing.export_keys x
            JOIN _export_targets t ON t.kind = 'email' AND t.key = x.email_key
        )
        GROUP BY subject_key, system, export_date, row_number
        """
    )
    add_unreadable_exports(con, day)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _residuals AS
        SELECT DISTINCT subject_key, 'warehouse' AS location FROM _warehouse_hits
        UNION
        SELECT t.subject_key, 'inbox' FROM ops.inbox_keys k JOIN _targets t ON t.kind = k.kind AND unhex(t.key) = k.key
        UNION
        SELECT subject_key, {system} FROM _export_residuals
        """.format(system=encode_system_sql("system"))
    )


def add_unreadable_exports(con: duckdb.DuckDBPyConnection, day: date) -> None:
    """Every erased subject not yet verified gets, in _export_residuals, a row with no row_number
    (matched_on ``export_unreadable``) for each system whose latest export dated at or before `day`
    could not be read (landing.export_files.readable = false).

    That system's state on `day` is unknown: its keys were dropped, so it cannot show the subject
    is gone. A compliance officer must not read `verified` where a system was never looked at, so
    the system is named in residual_locations like a residual: the status is `pending` up to the
    due date and `overdue` after it (erasure_overdue then says the state is unknown, see
    rules.py). It becomes `verified` once the system delivers a readable export without the
    subject. A subject verified before (``verified_on``) keeps that proof: an unreadable export
    proves nothing either way, and naming it would raise a critical violation for every subject
    ever erased. The unreadable file is named in the report and fails ``exports_are_readable``.
    """
    con.execute(
        f"""
        INSERT INTO _export_residuals
        SELECT DISTINCT e.subject_key, u.system, u.export_date, NULL::BIGINT, 'export_unreadable'
        FROM _erased e CROSS JOIN ({UNREADABLE_LATEST_SQL}) u
        WHERE e.subject_key NOT IN (SELECT subject_key FROM compliance.erasure_register WHERE verified_on <= $day
                                    UNION SELECT subject_key FROM ops.erasure_verified WHERE verified_on <= $day)
          AND NOT EXISTS (SELECT 1 FROM _export_residuals r WHERE r.subject_key = e.subject_key AND r.system = u.system)
        """,
        {"day": day},
    )


def build_register(con: duckdb.DuckDBPyConnection, day: date, inbox: Path) -> RegisterResult:
    """Rewrite compliance.erasure_register as of the end of `day` (after the day's retention)."""
    result = RegisterResult()
    result.erased_total = load_state(con, day, record=True)
    find_residuals(con, inbox, day)
    due = DUE_DATE_SQL.format(ts="e.deleted_at")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _register AS
        WITH locations AS (
            SELECT subject_key, array_to_string(list_sort(list(DISTINCT location)), ',') AS residual_locations
            FROM _residuals GROUP BY subject_key
        )
        SELECT e.subject_key, e.deleted_at, {due} AS due_date,
               CASE WHEN l.subject_key IS NULL THEN 'verified'
                    WHEN $day <= {due} THEN 'pending'
                    ELSE 'overdue' END AS status,
               l.residual_locations,
               -- the first date verified, kept: from the register, or from ops.erasure_verified when a
               -- re-run of an earlier day dropped the row meanwhile
               least(CASE WHEN r.verified_on <= $day THEN r.verified_on END,
                     CASE WHEN v.verified_on <= $day THEN v.verified_on END,
                     CASE WHEN l.subject_key IS NULL THEN $day END) AS verified_on,
               e.erased_on,
               $day AS checked_on
        FROM _erased e
        LEFT JOIN locations l USING (subject_key)
        LEFT JOIN compliance.erasure_register r USING (subject_key)
        LEFT JOIN ops.erasure_verified v USING (subject_key)
        """,
        {"day": day},
    )
    with transaction(con):
        con.execute("DELETE FROM compliance.erasure_register")
        con.execute(
            """INSERT INTO compliance.erasure_register
                   (subject_key, deleted_at, due_date, status, residual_locations, verified_on, erased_on, checked_on)
               SELECT subject_key, deleted_at, due_date, status, residual_locations, verified_on, erased_on, checked_on
               FROM _register ORDER BY deleted_at, subject_key"""
        )
        # where residual data was found on `day`, kept for every day (a subject's file shows them)
        con.execute("DELETE FROM ops.residual_days WHERE checked_on = ?", [day])
        con.execute(
            """INSERT INTO ops.residual_days
               SELECT subject_key, checked_on, residual_locations FROM _register
               WHERE residual_locations IS NOT NULL ORDER BY subject_key"""
        )
        # each subject's first date verified, kept whatever day is re-run later
        con.execute(
            """DELETE FROM ops.erasure_verified v
               WHERE EXISTS (SELECT 1 FROM _register r
                             WHERE r.subject_key = v.subject_key AND r.verified_on < v.verified_on)"""
        )
        con.execute(
            """INSERT INTO ops.erasure_verified
               SELECT subject_key, verified_on FROM _register r WHERE verified_on IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM ops.erasure_verified v WHERE v.subject_key = r.subject_key)
               ORDER BY subject_key"""
        )
        # the rows behind the register's system locations, replaced with it (never one without the other)
        con.execute("DELETE FROM compliance.erasure_remediation")
        con.execute(
            """INSERT INTO compliance.erasure_remediation (subject_key, system, export_date, row_number, matched_on)
               SELECT subject_key, system, export_date, row_number, matched_on FROM _export_residuals
               ORDER BY system, export_date, row_number NULLS FIRST, subject_key"""
        )
    result.remediation_rows = con.execute("SELECT count(*) FROM _export_residuals").fetchall()[0][0]
    for status, n in con.execute("SELECT status, count(*) FROM _register GROUP BY status").fetchall():
        result.by_status[status] = n
    result.by_location = dict(
        con.execute(
            "SELECT location, count(DISTINCT subject_key) FROM _residuals GROUP BY location ORDER BY location"
        ).fetchall()
    )
    return result
