"""Checks of the erasure area: erased customers still found outside the warehouse, a compliance finding."""

from assets.erasure.assets import ERASURE_REGISTER
from assets.erasure.locations import split_sql
from checks.nightly import COMPLIANCE_FINDING, WARN, CheckRun, Verdict, nightly_check

DOWNSTREAM_SQL = f"""
SELECT count(*),
       count(*) FILTER (WHERE len(list_filter({split_sql("residual_locations")},
                                              lambda loc: loc <> 'warehouse')) > 0),
       count(*) FILTER (WHERE status = 'verified'),
       count(*) FILTER (WHERE status = 'pending'),
       count(*) FILTER (WHERE status = 'overdue')
FROM compliance.erasure_register
"""


@nightly_check(ERASURE_REGISTER, severity=WARN, category=COMPLIANCE_FINDING)
def erased_subjects_clean_downstream(run: CheckRun) -> Verdict:
    """No erased customer's identifiers remain in retained inbox files or in the systems' latest exports.

    A fact about the downstream systems' erasure, within or past the one-month deadline (the
    register and `erasure_overdue` state it in the report); not a data-quality warning."""
    total, downstream, verified, pending, overdue = run.con.execute(DOWNSTREAM_SQL).fetchall()[0]
    return Verdict(
        passed=downstream == 0,
        description="Erased subjects are gone from retained inbox files and downstream exports",
        details=f"{downstream} of {total} erased subject(s) still found outside the warehouse",
        metadata={
            "erased_subjects": total,
            "verified": verified,
            "pending": pending,
            "overdue": overdue,
            "found_downstream": downstream,
        },
    )
