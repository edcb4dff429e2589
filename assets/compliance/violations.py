"""compliance.violations: the ledger of policy violations, evaluated rule by rule from the registry."""

from dataclasses import dataclass
from datetime import date

import dagster as dg
import duckdb

from assets.compliance.care_hours import install_care_hours
from assets.compliance.rules import CANDIDATE_COLUMNS, RULES, SHARED_VIEWS, Rule
from assets.core.accounts import ACCOUNTS
from assets.core.as_of import install_as_of_views
from assets.core.changed import as_of_day, judge_changed_only, record_as_of
from assets.core.consent import CONSENT_HISTORY
from assets.core.membership import CLUB_MEMBERSHIP
from assets.defaults import markdown_table, nightly_asset, row_count
from assets.erasure.assets import ERASURE_REGISTER
from assets.landing.assets import EXPORT_KEYS
from pipelines.partitions import partition_day
from pipelines.resources import Warehouse
from pipelines.warehouse import transaction

VIOLATIONS = dg.AssetKey(["compliance", "violations"])

#: For each rule kind, how a candidate matches a row already in the ledger (CONTRACT 6.1 uniqueness).
_ALREADY_RAISED = {
    "event": "v.message_id = c.message_id",
    "export": "v.subject_key = c.subject_key AND v.system = c.system",
}


@dataclass
class RuleOutcome:
    rule: str
    severity: str
    found: int  # offences known as of the end of D among the subjects judged (distinct per uniqueness key)
    new: int  # rows added today
    total: int  # rows in the ledger with detected_on <= D


def _candidates_sql(rule: Rule) -> str:
    """The rule's offences, typed, one per uniqueness key, in TEMP table _candidates."""
    key = ", ".join(f"c.{col}" for col in rule.unique_on)
    columns = ", ".join(CANDIDATE_COLUMNS)
    typed = (
        "subject_key::VARCHAR AS subject_key, "
        "occurred_at::TIMESTAMPTZ AS occurred_at, message_id::VARCHAR AS message_id, "
        "system::VARCHAR AS system, details::VARCHAR AS details"
    )
    return f"""
    CREATE OR REPLACE TEMP TABLE _candidates AS
    SELECT * FROM (SELECT {typed} FROM ({rule.sql}) AS r({columns})) AS c
    QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY c.occurred_at, c.subject_key, c.details) = 1
    """


def _insert_sql(rule: Rule) -> str:
    """Add the candidates not raised before (any day) to the ledger, detected on $day."""
    return f"""
    INSERT INTO keyed.violations
        (rule, severity, subject_key, occurred_at, detected_on, message_id, system, details)
    SELECT $rule, $severity, c.subject_key, c.occurred_at, $day, c.message_id, c.system, c.details
    FROM _candidates c
    WHERE NOT EXISTS (
        SELECT 1 FROM keyed.violations v WHERE v.rule = $rule AND {_ALREADY_RAISED[rule.kind]}
    )
    ORDER BY c.occurred_at, c.subject_key
    """


#: The ledger's entry in ops.core_state: every offence known as of the end of that day is in it.
LEDGER = "keyed.violations"


def evaluate_rules(con: duckdb.DuckDBPyConnection, day: date, rules: list[Rule] = RULES) -> list[RuleOutcome]:
    """Add to compliance.violations every offence known as of the end of `day` that is not there yet.

    The ledger is never rewritten: a row once raised keeps its `detected_on`; re-running a day adds nothing.
    The core tables must already be built for `day`.

    An event rule judges each subject by its own events, so once the ledger holds every offence
    known as of the end of some day P (``ops.core_state``), only the subjects whose known events
    differ between P and `day` can offend anew (``assets/core/changed.py``): the event rules judge
    those subjects' whole histories, after the export rules, which judge every export row.
    """
    install_as_of_views(con, day)
    install_care_hours(con, day)
    con.execute(SHARED_VIEWS)
    outcomes: dict[str, RuleOutcome] = {}
    with transaction(con):
        previous = as_of_day(con, LEDGER)
        for rule in sorted(rules, key=lambda r: r.kind == "event"):  # the export rules first
            if rule.kind == "event" and previous is not None:
                judge_changed_only(con, previous, day)
                previous = None  # once
            con.execute(_candidates_sql(rule))
            con.execute(_insert_sql(rule), {"rule": rule.id, "severity": rule.severity, "day": day})
            found = con.execute("SELECT count(*) FROM _candidates").fetchall()[0][0]
            new, total = con.execute(
                """SELECT count(*) FILTER (WHERE detected_on = ?), count(*) FILTER (WHERE detected_on <= ?)
                   FROM keyed.violations WHERE rule = ?""",
                [day, day, rule.id],
            ).fetchall()[0]
            outcomes[rule.id] = RuleOutcome(rule.id, rule.severity, found, new, total)
        con.execute("DROP TABLE IF EXISTS _candidates")
        con.execute("DROP TABLE IF EXISTS _judged_events")
        if {r.id for r in rules} == {r.id for r in RULES}:
            record_as_of(con, LEDGER, day)
    install_as_of_views(con, day)  # known_events of every subject again
    return [outcomes[r.id] for r in rules]


def unmatched_export_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, int]]:
    """Per consent-judged export: records total and records that map to no known non-erased account.

    A record may have several key rows (repeated account_id / email columns, ``exports.py``): it is
    counted once, and is matched when any of its key rows maps to an account."""
    return con.execute(
        """
        SELECT k.system, count(DISTINCT k.row_number) AS rows,
               count(DISTINCT k.row_number) FILTER (WHERE NOT EXISTS (
                   SELECT 1 FROM export_rows_mapped m
                   WHERE m.system = k.system AND m.row_number = k.row_number)) AS unmatched
        FROM landing.export_keys k
        WHERE k.system IN ('club_roster', 'marketing_list')
        GROUP BY k.system ORDER BY k.system
        """
    ).fetchall()


@nightly_asset(
    VIOLATIONS,
    deps=[ACCOUNTS, CONSENT_HISTORY, CLUB_MEMBERSHIP, EXPORT_KEYS, ERASURE_REGISTER],
    table="compliance.violations",
    pii="account_id",
    metadata={
        "rules": dg.MetadataValue.md(
            markdown_table(["rule", "severity", "kind"], [(r.id, r.severity, r.kind) for r in RULES])
        )
    },
)
def violations(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Policy violations (the eight rules of POLICY.md): a ledger, one row per offence, first day found."""
    day = partition_day(context)
    with warehouse.get_connection() as con:
        outcomes = evaluate_rules(con, day)
        unmatched = unmatched_export_rows(con)
        total = row_count(con, "keyed.violations")
    new_today = sum(o.new for o in outcomes)
    context.log.info(f"{day}: {new_today} new violation(s); ledger holds {total}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "new_today": new_today,
            "export_rows_unmatched": sum(u for _, _, u in unmatched),
            "preview": dg.MetadataValue.md(
                markdown_table(
                    ["rule", "severity", "new on D", "total to D", "offences of the subjects judged"],
                    [(o.rule, o.severity, o.new, o.total, o.found) for o in outcomes],
                )
            ),
            "exports": dg.MetadataValue.md(markdown_table(["system", "rows", "unmatched (ignored)"], unmatched)),
        }
    )
