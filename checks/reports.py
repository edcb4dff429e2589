"""Checks on the published report (`reports/compliance_report`): blocking, severity ERROR.

They run after the report is written (they depend on it) and fail the Dagster run, and so the
CLI's exit code, when the report is wrong:

- `summary_matches_tables`: every figure of summary.json, recomputed from the tables, and equal
  to reports.daily_summary (the trend's source);
- `reconciliation_holds`: received = accepted + duplicates + rejected per file and for the day,
  and the day's totals match summary.json and the landing tables;
- `all_rule_ids_present`: every rule id of the registry is in summary.json, the page has a section
  for each, and no violation row carries an unknown rule;
- `blocking_quality_checks_passed`: the gate. It fails when any ERROR check of the day failed
  (the upstream data-quality checks are not blocking, so that the report is still published and
  states the failure; this gate then fails the run);
- `report_files_are_safe_and_intact`: the manifest matches the files, no file holds an e-mail
  address, the page loads nothing from outside and runs no script.
"""

import csv
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from assets.landing.contract import CONSENT_EVENTS
from assets.reports.publish import HTML_FILE, SUMMARY_FILE, VIOLATIONS_FILE
from assets.reports.report import REPORT
from assets.reports.status import NIGHT_FAILED
from assets.reports.summary import REPORT_ASSET, rule_ids
from checks.gx.runner import Expect, SuiteOutcome, assertion, merge, validate_frame
from checks.gx.suite import suite_verdict
from checks.nightly import ERROR, CheckRun, Verdict, nightly_check
from checks.reports_files import evaluate_files
from pipelines.clock import end_of_day, start_of_day
from pipelines.resources import ComplianceSettings
from pipelines.safe_text import file_label

#: The contract's figures (CONTRACT 6.2), besides violations.<rule>.total / new.
CONTRACT_FIGURES = (
    "accounts.active",
    "club.members",
    "club.joined",
    "club.left",
    "consent.granted",
    "consent.withdrawn",
    "erasure.erased_total",
    "erasure.verified",
    "erasure.pending",
    "erasure.overdue",
    "quality.received",
    "quality.accepted",
    "quality.duplicates",
    "quality.rejected",
    "quality.expectations_evaluated",
    "quality.expectations_failed",
)


def _folder(settings: ComplianceSettings, day: date) -> Path:
    return settings.reports_path / day.isoformat()


def _load_summary(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"club": {"members": 3}} -> {"club.members": 3}."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def recompute_figures(con: duckdb.DuckDBPyConnection, day: date, registry: list[str]) -> dict[str, int]:
    """Each figure of CONTRACT 6.2 counted again, straight from the tables it is defined on."""
    values = {"day": day, "s": start_of_day(day), "e": end_of_day(day)}

    def count(sql: str) -> int:
        used = {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)}
        return int(con.execute(sql, used).fetchall()[0][0])

    consent = ", ".join(f"'{c}'" for c in CONSENT_EVENTS)
    on_day = "arrival_date <= $day AND occurred_at >= $s AND occurred_at < $e"
    figures = {
        "accounts.active": count(
            "SELECT count(*) FROM (SELECT DISTINCT subject_key FROM keyed.accounts WHERE created_at <= $e)"
        ),
        "club.members": count(
            "SELECT count(*) FROM keyed.club_membership WHERE valid_from <= $e AND coalesce(valid_to > $e, true)"
        ),
        "club.joined": count("SELECT count(*) FROM keyed.club_membership WHERE valid_from >= $s AND valid_from < $e"),
        "club.left": count("SELECT count(*) FROM keyed.club_membership WHERE valid_to >= $s AND valid_to < $e"),
        "consent.granted": count(
            f"SELECT count(*) FROM keyed.events WHERE event IN ({consent}) AND consent_granted IS TRUE AND {on_day}"
        ),
        "consent.withdrawn": count(
            f"SELECT count(*) FROM keyed.events WHERE event IN ({consent}) AND consent_granted IS FALSE AND {on_day}"
        ),
    }
    erased = "FROM (SELECT DISTINCT subject_key, status FROM compliance.erasure_register WHERE deleted_at <= $e)"
    figures["erasure.erased_total"] = count(f"SELECT count(DISTINCT subject_key) {erased}")
    for status in ("verified", "pending", "overdue"):
        figures[f"erasure.{status}"] = count(f"SELECT count(*) {erased} WHERE status = '{status}'")
    for column in ("received", "accepted", "duplicates", "rejected"):
        figures[f"quality.{column}"] = count(
            f"SELECT coalesce(sum({column}), 0) FROM landing.files WHERE arrival_date = $day"
        )
    scope = f"FROM ops.check_results WHERE run_date = $day AND asset <> '{REPORT_ASSET}'"
    figures["quality.expectations_evaluated"] = count(f"SELECT coalesce(sum(evaluated), 0) {scope}")
    figures["quality.expectations_failed"] = count(f"SELECT coalesce(sum(failed), 0) {scope}")
    rows = con.execute(
        """SELECT r.rule, count(v.rule) FILTER (WHERE v.detected_on <= $day),
                  count(v.rule) FILTER (WHERE v.detected_on = $day)
           FROM (SELECT unnest($rules::VARCHAR[]) AS rule) r
           LEFT JOIN keyed.violations v ON v.rule = r.rule
           GROUP BY r.rule ORDER BY r.rule""",
        {"day": day, "rules": registry},
    ).fetchall()
    for rule, total, new in rows:
        figures[f"violations.{rule}.total"] = int(total)
        figures[f"violations.{rule}.new"] = int(new)
    return figures


# ---------------------------------------------------------------------------------------------
# The evaluations, as plain functions of (connection, report folder, day): (outcome, names)
# ---------------------------------------------------------------------------------------------


def evaluate_summary(con: duckdb.DuckDBPyConnection, folder: Path, day: date) -> tuple[SuiteOutcome, list[str]]:
    published = _load_summary(folder)
    recomputed = recompute_figures(con, day, rule_ids())
    stored_rows = con.execute("SELECT summary FROM reports.daily_summary WHERE run_date = ?", [day]).fetchall()
    stored = flatten(json.loads(stored_rows[0][0])) if stored_rows else {}
    reported = flatten(published) if published else {}
    frame = pd.DataFrame(
        {
            "figure": list(recomputed),
            "reported": pd.Series([reported.get(f) for f in recomputed], dtype=object),
            "stored": pd.Series([stored.get(f) for f in recomputed], dtype=object),
            "recomputed": pd.Series(list(recomputed.values()), dtype=object),
        }
    )
    outcome = merge(
        "summary",
        [
            assertion("summary.json exists and is valid JSON", published is not None),
            assertion("summary.json is for the partition day", reported.get("run_date") == day.isoformat()),
        ],
        validate_frame(
            "summary",
            frame,
            [
                Expect(
                    "every contract figure is in summary.json", "ExpectColumnValuesToNotBeNull", {"column": "reported"}
                ),
                Expect(
                    "summary.json equals the figures recomputed from the tables",
                    "ExpectColumnPairValuesToBeEqual",
                    {"column_A": "reported", "column_B": "recomputed", "ignore_row_if": "neither"},
                ),
                Expect(
                    "summary.json equals reports.daily_summary (the trend charts' source)",
                    "ExpectColumnPairValuesToBeEqual",
                    {"column_A": "reported", "column_B": "stored", "ignore_row_if": "neither"},
                ),
                Expect(
                    "no figure is negative", "ExpectColumnValuesToBeBetween", {"column": "recomputed", "min_value": 0}
                ),
            ],
        ),
    )
    mismatched = sorted(f for f in recomputed if reported.get(f) != recomputed[f])
    return outcome, mismatched


def evaluate_reconciliation(con: duckdb.DuckDBPyConnection, folder: Path, day: date) -> tuple[SuiteOutcome, list[str]]:
    summary = _load_summary(folder) or {}
    quality = summary.get("quality", {}) if isinstance(summary.get("quality"), dict) else {}
    frame = con.execute(
        """SELECT source_file, received, accepted, duplicates, rejected,
                  accepted + duplicates + rejected AS parts
           FROM landing.files WHERE arrival_date = ? ORDER BY source_file""",
        [day],
    ).df()
    events, rejected_rows = con.execute(
        """SELECT (SELECT count(*) FROM landing.events WHERE arrival_date = $day),
                  (SELECT count(*) FROM landing.rejected WHERE arrival_date = $day)""",
        {"day": day},
    ).fetchall()[0]
    expectations = [
        Expect(
            "received = accepted + duplicates + rejected for every file",
            "ExpectColumnPairValuesToBeEqual",
            {"column_A": "received", "column_B": "parts"},
        ),
    ]
    for column in ("received", "accepted", "duplicates", "rejected"):
        value = quality.get(column)
        bound = value if isinstance(value, int) else -1  # a missing figure cannot match any sum
        expectations.append(
            Expect(
                f"summary.json quality.{column} is the day's total over the files",
                "ExpectColumnSumToBeBetween",
                {"column": column, "min_value": bound, "max_value": bound},
            )
        )
        expectations.append(
            Expect(f"{column} is never negative", "ExpectColumnValuesToBeBetween", {"column": column, "min_value": 0})
        )
    q = [quality.get(k) for k in ("received", "accepted", "duplicates", "rejected")]
    day_holds = all(isinstance(v, int) for v in q) and q[0] == q[1] + q[2] + q[3]
    outcome = merge(
        "reconciliation",
        validate_frame("reconciliation", frame, expectations),
        [
            assertion("for the day: received = accepted + duplicates + rejected (summary.json)", day_holds),
            assertion("landing.events holds the day's accepted lines", events == int(frame["accepted"].sum())),
            assertion("landing.rejected holds the day's rejected lines", rejected_rows == int(frame["rejected"].sum())),
        ],
    )
    broken = sorted(file_label(f) for f in frame.loc[frame["received"] != frame["parts"], "source_file"].astype(str))
    return outcome, broken[:20]


def evaluate_rule_ids(con: duckdb.DuckDBPyConnection, folder: Path, day: date) -> tuple[SuiteOutcome, list[str]]:
    registry = rule_ids()
    summary = _load_summary(folder) or {}
    violations = summary.get("violations") if isinstance(summary.get("violations"), dict) else {}
    counts = [v if isinstance(v, dict) else {} for v in violations.values()]
    frame = pd.DataFrame(
        {
            "rule": pd.Series(list(violations), dtype=object),
            "total": pd.Series([c.get("total") for c in counts], dtype=object),
            "new": pd.Series([c.get("new") for c in counts], dtype=object),
        }
    )
    try:
        with open(folder / VIOLATIONS_FILE, encoding="utf-8", newline="") as fh:
            csv_rules = pd.DataFrame({"rule": pd.Series([r["rule"] for r in csv.DictReader(fh)], dtype=object)})
        csv_ok = True
    except (OSError, KeyError):
        csv_rules, csv_ok = pd.DataFrame({"rule": pd.Series([], dtype=object)}), False
    try:
        page = (folder / HTML_FILE).read_text(encoding="utf-8")
    except OSError:
        page = ""
    missing_sections = [r for r in registry if f'id="rule-{r}"' not in page]
    outcome = merge(
        "rule_ids",
        validate_frame(
            "rule_ids_summary",
            frame,
            [
                Expect(
                    f"summary.json lists exactly the {len(registry)} registered rule ids",
                    "ExpectColumnDistinctValuesToEqualSet",
                    {"column": "rule", "value_set": registry},
                ),
                Expect("each rule has a total", "ExpectColumnValuesToNotBeNull", {"column": "total"}),
                Expect(
                    "each rule's total is at least its new count",
                    "ExpectColumnPairValuesAToBeGreaterThanB",
                    {"column_A": "total", "column_B": "new", "or_equal": True},
                ),
                Expect(
                    "new counts are not negative", "ExpectColumnValuesToBeBetween", {"column": "new", "min_value": 0}
                ),
            ],
        ),
        validate_frame(
            "rule_ids_csv",
            csv_rules,
            [
                Expect(
                    "every row of violations.csv has a registered rule id",
                    "ExpectColumnValuesToBeInSet",
                    {"column": "rule", "value_set": registry},
                )
            ],
        ),
        [
            assertion("violations.csv exists with a rule column", csv_ok),
            assertion(
                "the page has a section for every registered rule",
                not missing_sections,
                len(registry),
                len(missing_sections),
            ),
        ],
    )
    wrong = sorted(set(registry) ^ set(violations))
    return outcome, wrong + missing_sections


# ---------------------------------------------------------------------------------------------
# The Dagster checks
# ---------------------------------------------------------------------------------------------


def _verdict(outcome: SuiteOutcome, subject: str, names: list[str]) -> Verdict:
    """The suite's verdict; `names` (figures, files or rule ids, never data values) go to the metadata."""
    return suite_verdict(outcome, subject, {"mismatched": dg.MetadataValue.text(", ".join(names))} if names else None)


def report_check(body):
    """A check of the published report: it runs after the report is written, and blocks the run."""
    return nightly_check(REPORT, severity=ERROR, blocking=True, engine="great_expectations")(body)


@report_check
def summary_matches_tables(run: CheckRun) -> Verdict:
    """Every summary.json figure equals its recomputation from the tables and the stored daily summary."""
    outcome, names = evaluate_summary(run.con, _folder(run.settings, run.day), run.day)
    return _verdict(outcome, f"{len(outcome.outcomes)} checks of the figures", names)


@report_check
def reconciliation_holds(run: CheckRun) -> Verdict:
    """received = accepted + duplicates + rejected for every file and for the day, as summary.json says."""
    outcome, names = evaluate_reconciliation(run.con, _folder(run.settings, run.day), run.day)
    return _verdict(outcome, "the day's files", names)


@report_check
def all_rule_ids_present(run: CheckRun) -> Verdict:
    """Every registered rule id is in summary.json and on the page; no violation carries an unknown rule."""
    outcome, names = evaluate_rule_ids(run.con, _folder(run.settings, run.day), run.day)
    return _verdict(outcome, "rule ids", names)


@report_check
def report_files_are_safe_and_intact(run: CheckRun) -> Verdict:
    """The manifest matches the files; no file holds an e-mail address; the page fetches and runs nothing."""
    outcome, names = evaluate_files(_folder(run.settings, run.day))
    return _verdict(outcome, "the report files", names)


@nightly_check(REPORT, severity=ERROR, blocking=True)
def blocking_quality_checks_passed(run: CheckRun) -> Verdict:
    """The gate: no ERROR data-quality check of the day failed (the report states any that did)."""
    summary = _load_summary(_folder(run.settings, run.day)) or {}
    rows = run.con.execute(
        f"""SELECT asset, check_name, passed FROM ops.check_results
            WHERE run_date = ? AND severity = 'ERROR' AND asset <> '{REPORT_ASSET}'
            ORDER BY asset, check_name""",
        [run.day],
    ).fetchall()
    failed = [f"{check} ({asset})" for asset, check, passed in rows if not passed]
    stated = summary.get("status") in NIGHT_FAILED
    description = (
        f"{len(rows)} blocking (ERROR) check(s) ran before the report; "
        + (f"{len(failed)} failed: {', '.join(failed)}" if failed else "all passed")
        + ("; the report states it" if failed and stated else "")
    )
    return Verdict(
        passed=not failed,
        description=description,
        details=", ".join(failed),
        evaluated=len(rows),
        failed=len(failed),
        metadata={"report_states_failure": stated},
    )
