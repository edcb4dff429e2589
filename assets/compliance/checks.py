"""Checks on compliance.violations. Each records its outcome in ops.check_results."""

import dagster as dg

from assets.common import POOL, day_of
from assets.compliance.rules import RULES
from assets.compliance.violations import VIOLATIONS
from checks.results import ERROR, check_result
from pipelines.partitions import nightly_partitions
from pipelines.resources import Warehouse

EVENT_RULES = [r.id for r in RULES if r.kind == "event"]
EXPORT_RULES = [r.id for r in RULES if r.kind == "export"]

# CONTRACT 6.1: event rules one row per (rule, message_id); export rules one per (rule, subject, system).
DUPLICATES_SQL = """
SELECT
    (SELECT count(*) FROM (
        SELECT rule, message_id FROM compliance.violations
        WHERE rule IN (SELECT unnest($event_rules))
        GROUP BY ALL HAVING count(*) > 1 OR message_id IS NULL))
  + (SELECT count(*) FROM (
        SELECT rule, subject_key, system FROM compliance.violations
        WHERE rule IN (SELECT unnest($export_rules))
        GROUP BY ALL HAVING count(*) > 1 OR system IS NULL)),
    (SELECT count(*) FROM compliance.violations WHERE rule NOT IN (SELECT unnest($all_rules))),
    (SELECT count(*) FROM compliance.violations)
"""


@dg.asset_check(
    asset=VIOLATIONS,
    name="violations_are_unique",
    blocking=False,
    pool=POOL,
    partitions_def=nightly_partitions,
)
def violations_are_unique(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    """Each offence is in the ledger once: per (rule, message_id) or, for export rules, (rule, subject, system)."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        duplicated, unknown, total = con.execute(
            DUPLICATES_SQL,
            {"event_rules": EVENT_RULES, "export_rules": EXPORT_RULES, "all_rules": EVENT_RULES + EXPORT_RULES},
        ).fetchall()[0]
        return check_result(
            context,
            con,
            run_date=day,
            severity=ERROR,
            passed=duplicated == 0 and unknown == 0,
            evaluated=1,
            failed=int(duplicated + unknown > 0),
            description="violations are unique per rule and message_id (event rules) or subject and system (exports)",
            details=f"{duplicated} duplicated key(s); {unknown} row(s) of an unknown rule",
            metadata={"rows_examined": total, "duplicated_keys": duplicated, "unknown_rule_rows": unknown},
        )
