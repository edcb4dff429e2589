"""Checks of the compliance area: the violations ledger holds each offence once, of a known rule."""

from assets.compliance.rules import RULES
from assets.compliance.violations import VIOLATIONS
from checks.nightly import ERROR, CheckRun, Verdict, nightly_check

EVENT_RULES = [r.id for r in RULES if r.kind == "event"]
EXPORT_RULES = [r.id for r in RULES if r.kind == "export"]

# CONTRACT 6.1: event rules one row per (rule, message_id); export rules one per (rule, subject, system).
DUPLICATES_SQL = """
SELECT
    (SELECT count(*) FROM (
        SELECT rule, message_id FROM keyed.violations
        WHERE rule IN (SELECT unnest($event_rules))
        GROUP BY ALL HAVING count(*) > 1 OR message_id IS NULL))
  + (SELECT count(*) FROM (
        SELECT rule, subject_key, system FROM keyed.violations
        WHERE rule IN (SELECT unnest($export_rules))
        GROUP BY ALL HAVING count(*) > 1 OR system IS NULL)),
    (SELECT count(*) FROM keyed.violations WHERE rule NOT IN (SELECT unnest($all_rules))),
    (SELECT count(*) FROM keyed.violations)
"""


@nightly_check(VIOLATIONS, severity=ERROR)
def violations_are_unique(run: CheckRun) -> Verdict:
    """Each offence is in the ledger once: per (rule, message_id) or, for export rules, (rule, subject, system)."""
    duplicated, unknown, total = run.con.execute(
        DUPLICATES_SQL,
        {"event_rules": EVENT_RULES, "export_rules": EXPORT_RULES, "all_rules": EVENT_RULES + EXPORT_RULES},
    ).fetchall()[0]
    return Verdict(
        passed=duplicated == 0 and unknown == 0,
        description="violations are unique per rule and message_id (event rules) or subject and system (exports)",
        details=f"{duplicated} duplicated key(s); {unknown} row(s) of an unknown rule",
        metadata={"rows_examined": total, "duplicated_keys": duplicated, "unknown_rule_rows": unknown},
    )
