"""Checks on the derived core tables. Each records its outcome in ops.check_results."""

import dagster as dg

from assets.common import POOL, day_of
from assets.core.consent import CONSENT_HISTORY
from assets.core.membership import CLUB_MEMBERSHIP
from checks.results import ERROR, WARN, check_result
from pipelines.partitions import nightly_partitions
from pipelines.resources import Warehouse

OVERLAPS_SQL = """
SELECT count(*)
FROM (SELECT *, row_number() OVER () AS id FROM core.club_membership) a
JOIN (SELECT *, row_number() OVER () AS id FROM core.club_membership) b
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
FROM core.club_membership
"""

UNKNOWN_SUBJECTS_SQL = """
SELECT count(DISTINCT c.subject_key) FILTER (WHERE NOT EXISTS (
           SELECT 1 FROM landing.events e
           WHERE e.subject_key = c.subject_key AND e.event = 'Account Created')),
       count(DISTINCT c.subject_key)
FROM core.consent_history c
"""


@dg.asset_check(
    asset=CLUB_MEMBERSHIP,
    name="club_intervals_do_not_overlap",
    blocking=False,
    pool=POOL,
    partitions_def=nightly_partitions,
)
def club_intervals_do_not_overlap(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    """No subject has two CLUB membership intervals that overlap in time (at most one open interval)."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        overlaps = con.execute(OVERLAPS_SQL).fetchall()[0][0]
        subjects = con.execute("SELECT count(DISTINCT subject_key) FROM core.club_membership").fetchall()[0][0]
        return check_result(
            context,
            con,
            run_date=day,
            severity=ERROR,
            passed=overlaps == 0,
            evaluated=1,
            failed=int(overlaps > 0),
            description="CLUB membership intervals of one subject never overlap",
            details=f"{overlaps} overlapping pair(s) of intervals",
            metadata={"subjects_examined": subjects, "overlapping_pairs": overlaps},
        )


@dg.asset_check(
    asset=CLUB_MEMBERSHIP,
    name="club_intervals_are_well_ordered",
    blocking=False,
    pool=POOL,
    partitions_def=nightly_partitions,
)
def club_intervals_are_well_ordered(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    """Every closed interval has valid_from < valid_to and an end reason; an open one has neither."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        bad, total = con.execute(ILL_ORDERED_SQL).fetchall()[0]
        return check_result(
            context,
            con,
            run_date=day,
            severity=ERROR,
            passed=bad == 0,
            evaluated=1,
            failed=int(bad > 0),
            description="CLUB intervals have valid_from < valid_to and a matching end_reason",
            details=f"{bad} of {total} interval(s) ill-formed",
            metadata={"intervals_examined": total, "ill_formed": bad},
        )


@dg.asset_check(
    asset=CONSENT_HISTORY,
    name="consent_rows_reference_known_subjects",
    blocking=False,
    pool=POOL,
    partitions_def=nightly_partitions,
)
def consent_rows_reference_known_subjects(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    """Every subject in the consent history has an accepted "Account Created" event."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        unknown, total = con.execute(UNKNOWN_SUBJECTS_SQL).fetchall()[0]
        return check_result(
            context,
            con,
            run_date=day,
            severity=WARN,
            passed=unknown == 0,
            evaluated=1,
            failed=int(unknown > 0),
            description="consent events belong to accounts whose creation was received",
            details=f"{unknown} of {total} subject(s) with consent events but no Account Created",
            metadata={"subjects_examined": total, "unknown_subjects": unknown},
        )
