"""Checks of the erasure area: erased customers still in a retained inbox file (the pipeline's own copy,
an error), or in a downstream system (a compliance finding); the remediation rows agree with the register."""

from assets.erasure.assets import ERASURE_REGISTER
from assets.erasure.locations import encode_system_sql, is_pipeline_sql, split_sql
from checks.nightly import COMPLIANCE_FINDING, ERROR, WARN, CheckRun, Verdict, nightly_check, none_offend

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


#: (subject, system) pairs where the register and compliance.erasure_remediation disagree, and the
#: register's downstream locations: a system is in a subject's residual_locations exactly when the
#: subject has a remediation row for it. Compared as residual_locations tokens (locations.py), so
#: that any system name compares exactly.
REMEDIATION_AGREES_SQL = f"""
WITH named AS (
    SELECT DISTINCT subject_key, loc
    FROM (SELECT subject_key, unnest({split_sql("residual_locations")}) AS loc FROM compliance.erasure_register)
    WHERE NOT {is_pipeline_sql("loc")}
), listed AS (
    SELECT DISTINCT subject_key, {encode_system_sql("system")} AS loc FROM compliance.erasure_remediation
), differing AS (
    (SELECT * FROM named EXCEPT SELECT * FROM listed) UNION ALL (SELECT * FROM listed EXCEPT SELECT * FROM named)
)
SELECT (SELECT count(*) FROM differing), (SELECT count(*) FROM named)
"""


@nightly_check(ERASURE_REGISTER, severity=ERROR)
def remediation_lists_match_the_register(run: CheckRun) -> Verdict:
    """Each erased subject has remediation rows in exactly the downstream systems its register row names."""
    return none_offend(
        run.con,
        REMEDIATION_AGREES_SQL,
        description="The remediation lists name the same (subject, system) pairs as the erasure register",
        offending="not_matching",
        examined="subject_system_pairs",
    )
