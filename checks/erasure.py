"""Checks of the erasure area: erased customers still in a retained inbox file (the pipeline's own copy,
an error), or in a downstream system (a compliance finding)."""

from assets.erasure.assets import ERASURE_REGISTER
from assets.erasure.locations import is_pipeline_sql, split_sql
from checks.nightly import COMPLIANCE_FINDING, ERROR, WARN, CheckRun, Verdict, nightly_check

DOWNSTREAM_SQL = f"""
SELECT count(*),
       count(*) FILTER (WHERE len(list_filter({split_sql("residual_locations")},
                                              lambda loc: NOT {is_pipeline_sql("loc")})) > 0),
       count(*) FILTER (WHERE status = 'verified'),
       count(*) FILTER (WHERE status = 'pending'),
       count(*) FILTER (WHERE status = 'overdue')
FROM compliance.erasure_register
"""


@nightly_check(ERASURE_REGISTER, severity=WARN, category=COMPLIANCE_FINDING)
def erased_subjects_clean_downstream(run: CheckRun) -> Verdict:
    """No erased customer's identifiers remain in the downstream systems' latest exports.

    A fact about the downstream systems' erasure, within or past the one-month deadline (the
    register and `erasure_overdue` state it in the report); not a data-quality warning."""
    total, downstream, verified, pending, overdue = run.con.execute(DOWNSTREAM_SQL).fetchall()[0]
    return Verdict(
        passed=downstream == 0,
        description="Erased subjects are gone from the downstream systems' exports",
        details=f"{downstream} of {total} erased subject(s) still found in a downstream system",
        metadata={
            "erased_subjects": total,
            "verified": verified,
            "pending": pending,
            "overdue": overdue,
            "found_downstream": downstream,
        },
    )


@nightly_check(ERASURE_REGISTER, severity=ERROR)
def erased_subjects_redacted_from_inbox(run: CheckRun) -> Verdict:
    """No retained inbox event file holds an identifier of an erased subject after the night's redaction."""
    total, found = run.con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE list_contains({split_sql("residual_locations")}, 'inbox'))
            FROM compliance.erasure_register"""
    ).fetchall()[0]
    return Verdict(
        passed=found == 0,
        description="Erased subjects' identifiers are absent from every retained inbox file",
        details=f"{found} of {total} erased subject(s) still found in a retained inbox file",
        metadata={"erased_subjects": total, "found_in_inbox": found},
    )
