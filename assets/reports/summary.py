"""Everything the day's report shows, read from the warehouse with set-based SQL (CONTRACT 6.2).

`compute_summary` yields the exact `summary.json` of the contract; `gather` adds the rows behind
the page (register, violations, checks, inputs) and the trend of past runs. Every query has a
total ORDER BY so that the same warehouse gives the same report, byte for byte.

The figures, for day D (start = local midnight opening D, end = local midnight closing D):

- accounts.active: non-erased accounts (core.accounts) created at or before the end of D;
- club.members: membership intervals open at the end of D; joined / left: intervals whose
  valid_from / valid_to falls on D;
- consent.granted / withdrawn: accepted consent events (keyed.events, by their consent value)
  that arrived by D and occurred on D;
- erasure.*: erased subjects (compliance.erasure_register, deleted by the end of D) and their
  status on D;
- violations.<rule>.total / new: rows with detected_on <= D / = D, for every rule of the registry;
- quality.received..rejected: arrival day D's files (landing.files);
  quality.expectations_evaluated / failed: the sums over the day's ops.check_results of every
  check that runs before the report (all checks except those on the report asset itself);
- remediation (beyond the contract): one entry per remediation list of the day (remediation.py),
  ``{"file": "remediation/crm.csv", "rows": 2, "subjects": 1, "overdue_subjects": 1}``, by file;
  the alert for an overdue erasure names the files with an overdue subject from it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb

from assets.compliance.rules import RULES
from assets.landing.contract import CONSENT_EVENTS
from assets.landing.freshness import ExportAge, day_volume, export_ages
from assets.reports.remediation import RemediationFile, remediation_files
from assets.reports.status import day_status
from pipelines.clock import end_of_day, start_of_day

REPORT_ASSET = "reports/compliance_report"


_CONSENT_EVENTS_SQL = ", ".join(f"'{e}'" for e in CONSENT_EVENTS)


@dataclass(frozen=True)
class RuleInfo:
    id: str
    severity: str
    description: str


def rules() -> list[RuleInfo]:
    """The rule registry (assets/compliance/rules.py), in its own order."""
    return [RuleInfo(r.id, r.severity, r.description) for r in RULES]


def rule_ids() -> list[str]:
    return [r.id for r in rules()]


_NAMED = re.compile(r"\$([a-z_]+)")


def _params(sql: str, day: date) -> dict[str, Any]:
    """The named parameters `sql` uses ($day, $day_start, $day_end); DuckDB rejects unused ones."""
    values = {"day": day, "day_start": start_of_day(day), "day_end": end_of_day(day)}
    return {name: values[name] for name in sorted(set(_NAMED.findall(sql)))}


def _one(con: duckdb.DuckDBPyConnection, sql: str, day: date) -> tuple:
    return con.execute(sql, _params(sql, day)).fetchall()[0]


def compute_summary(con: duckdb.DuckDBPyConnection, day: date, registry: list[str] | None = None) -> dict[str, Any]:
    """The contract's summary.json for day D (every rule id of the registry present, 0 when none)."""
    registry = rule_ids() if registry is None else registry
    (active,) = _one(con, "SELECT count(DISTINCT subject_key) FROM keyed.accounts WHERE created_at <= $day_end", day)
    members, joined, left = _one(
        con,
        """SELECT count(*) FILTER (WHERE valid_from <= $day_end AND (valid_to IS NULL OR valid_to > $day_end)),
                  count(*) FILTER (WHERE valid_from >= $day_start AND valid_from < $day_end),
                  count(*) FILTER (WHERE valid_to >= $day_start AND valid_to < $day_end)
           FROM keyed.club_membership""",
        day,
    )
    granted, withdrawn = _one(
        con,
        f"""SELECT count(*) FILTER (WHERE consent_granted), count(*) FILTER (WHERE NOT consent_granted)
            FROM keyed.events
            WHERE event IN ({_CONSENT_EVENTS_SQL}) AND consent_granted IS NOT NULL
              AND arrival_date <= $day AND occurred_at >= $day_start AND occurred_at < $day_end""",
        day,
    )
    erased, verified, pending, overdue = _one(
        con,
        """SELECT count(DISTINCT subject_key),
                  count(DISTINCT subject_key) FILTER (WHERE status = 'verified'),
                  count(DISTINCT subject_key) FILTER (WHERE status = 'pending'),
                  count(DISTINCT subject_key) FILTER (WHERE status = 'overdue')
           FROM compliance.erasure_register WHERE deleted_at <= $day_end""",
        day,
    )
    counted = {
        rule: (total, new)
        for rule, total, new in con.execute(
            """SELECT rule, count(*) FILTER (WHERE detected_on <= $day), count(*) FILTER (WHERE detected_on = $day)
               FROM keyed.violations WHERE detected_on <= $day GROUP BY rule ORDER BY rule""",
            {"day": day},
        ).fetchall()
    }
    # Every registered rule, in registry order; a rule found in the table but not registered is
    # still shown (never hidden), and the report check `all_rule_ids_present` flags it.
    violations = {r: {"total": 0, "new": 0} for r in registry}
    for rule in sorted(counted):
        total, new = counted[rule]
        violations[rule] = {"total": int(total), "new": int(new)}
    received, accepted, duplicates, rejected = _one(
        con,
        """SELECT coalesce(sum(received), 0), coalesce(sum(accepted), 0),
                  coalesce(sum(duplicates), 0), coalesce(sum(rejected), 0)
           FROM landing.files WHERE arrival_date = $day""",
        day,
    )
    evaluated, failed = _one(
        con,
        f"""SELECT coalesce(sum(evaluated), 0), coalesce(sum(failed), 0)
            FROM ops.check_results WHERE run_date = $day AND asset <> '{REPORT_ASSET}'""",
        day,
    )
    volume = day_volume(con, day)
    return {
        "run_date": day.isoformat(),
        "accounts": {"active": int(active)},
        "club": {"members": int(members), "joined": int(joined), "left": int(left)},
        "consent": {"granted": int(granted), "withdrawn": int(withdrawn)},
        "erasure": {
            "erased_total": int(erased),
            "verified": int(verified),
            "pending": int(pending),
            "overdue": int(overdue),
        },
        "violations": violations,
        "quality": {
            "received": int(received),
            "accepted": int(accepted),
            "duplicates": int(duplicates),
            "rejected": int(rejected),
            "expectations_evaluated": int(evaluated),
            "expectations_failed": int(failed),
        },
        "freshness": {
            "status": volume.status,
            "usual_received": volume.usual,
            "history_days": volume.history_days,
            "stale_exports": sum(a.stale for a in export_ages(con, day)),
        },
        "remediation": [
            {"file": f.path, "rows": f.rows, "subjects": f.subjects, "overdue_subjects": f.overdue_subjects}
            for f in remediation_files(con, day)
        ],
    }


def failed_error_checks(con: duckdb.DuckDBPyConnection, day: date) -> list[tuple[str, str]]:
    """(asset, check) of the day's failed ERROR checks that run before the report."""
    return con.execute(
        f"""SELECT asset, check_name FROM ops.check_results
            WHERE run_date = ? AND severity = 'ERROR' AND NOT passed AND asset <> '{REPORT_ASSET}'
            ORDER BY asset, check_name""",
        [day],
    ).fetchall()


# ---------------------------------------------------------------------------------------------
# The rows behind the page
# ---------------------------------------------------------------------------------------------


@dataclass
class ReportData:
    day: date
    summary: dict[str, Any]
    status: str
    rules: list[RuleInfo]
    failed_checks: list[tuple[str, str]]
    violations: list[tuple]  # VIOLATION_COLUMNS, every row detected by D
    register: list[tuple]  # REGISTER_COLUMNS
    checks: list[tuple]  # CHECK_COLUMNS
    expectations: list[tuple]  # EXPECTATION_COLUMNS
    consent_by_source: list[tuple]  # (change, source, notice_version, events)
    club_left_by_reason: list[tuple]  # (end_reason, intervals)
    files: list[tuple]  # FILE_COLUMNS
    rejected_reasons: list[tuple]  # (reason, lines)
    exports: list[tuple]  # EXPORT_COLUMNS
    export_ages: list[ExportAge]
    trend: list[tuple[date, dict[str, Any]]]
    code_version: str
    run_id: str = ""
    #: the day's remediation lists (remediation.py), by path
    remediation: list[RemediationFile] = field(default_factory=list)


VIOLATION_COLUMNS = ("rule", "severity", "subject_key", "occurred_at", "detected_on", "message_id", "system", "details")
REGISTER_COLUMNS = (
    "subject_key",
    "deleted_at",
    "due_date",
    "days_left",
    "status",
    "residual_locations",
    "verified_on",
    "erased_on",
)
CHECK_COLUMNS = ("asset", "check_name", "severity", "passed", "evaluated", "failed", "description")
EXPECTATION_COLUMNS = (
    "asset",
    "check_name",
    "position",
    "statement",
    "expectation",
    "column_name",
    "success",
    "evaluated",
    "unexpected",
    "error",
)
FILE_COLUMNS = ("source_file", "bytes", "received", "accepted", "duplicates", "rejected", "readable")
EXPORT_COLUMNS = ("system", "export_date", "source_file", "rows_total", "rows_keyed", "readable", "problem")


def _rows(con: duckdb.DuckDBPyConnection, sql: str, day: date) -> list[tuple]:
    return con.execute(sql, _params(sql, day)).fetchall()


def gather(con: duckdb.DuckDBPyConnection, day: date, summary: dict[str, Any] | None = None) -> ReportData:
    """The day's summary and every row the page and the CSVs show."""
    registry = rules()
    summary = summary or compute_summary(con, day, [r.id for r in registry])
    failed = failed_error_checks(con, day)
    violations = _rows(
        con,
        """SELECT rule, severity, subject_key, occurred_at, detected_on, message_id, system, details
           FROM keyed.violations WHERE detected_on <= $day
           ORDER BY rule, detected_on DESC, occurred_at DESC NULLS LAST, message_id NULLS LAST,
                    system NULLS LAST, subject_key, details NULLS LAST""",
        day,
    )
    register = _rows(
        con,
        """SELECT subject_key, deleted_at, due_date, datediff('day', $day, due_date) AS days_left, status,
                  residual_locations, verified_on, erased_on
           FROM compliance.erasure_register WHERE deleted_at <= $day_end
           ORDER BY CASE status WHEN 'overdue' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END,
                    due_date, deleted_at, subject_key""",
        day,
    )
    checks = _rows(
        con,
        f"""SELECT asset, check_name, severity, passed, evaluated, failed, description
            FROM ops.check_results WHERE run_date = $day AND asset <> '{REPORT_ASSET}'
            ORDER BY passed, severity, asset, check_name""",
        day,
    )
    expectations = _rows(
        con,
        f"""SELECT asset, check_name, position, statement, expectation, column_name, success, evaluated,
                   unexpected, error
            FROM ops.expectation_results WHERE run_date = $day AND asset <> '{REPORT_ASSET}'
            ORDER BY asset, check_name, position""",
        day,
    )
    consent_by_source = _rows(
        con,
        f"""SELECT CASE WHEN consent_granted THEN 'granted' ELSE 'withdrawn' END AS change,
                   coalesce(try(properties->>'source'), '') AS source,
                   coalesce(try(properties->>'notice_version'), '') AS notice_version,
                   count(*) AS events
            FROM keyed.events
            WHERE event IN ({_CONSENT_EVENTS_SQL}) AND consent_granted IS NOT NULL
              AND arrival_date <= $day AND occurred_at >= $day_start AND occurred_at < $day_end
            GROUP BY ALL ORDER BY change, events DESC, source, notice_version""",
        day,
    )
    club_left_by_reason = _rows(
        con,
        """SELECT coalesce(end_reason, '(none)') AS end_reason, count(*)
           FROM keyed.club_membership WHERE valid_to >= $day_start AND valid_to < $day_end
           GROUP BY ALL ORDER BY end_reason""",
        day,
    )
    files = _rows(
        con,
        """SELECT source_file, bytes, received, accepted, duplicates, rejected, readable
           FROM landing.files WHERE arrival_date = $day ORDER BY source_file""",
        day,
    )
    rejected_reasons = _rows(
        con,
        """SELECT reason, count(*) AS lines FROM keyed.rejected WHERE arrival_date = $day
           GROUP BY reason ORDER BY lines DESC, reason""",
        day,
    )
    exports = _rows(
        con,
        """SELECT system, export_date, source_file, rows_total, rows_keyed, readable, problem
           FROM landing.export_files f
           WHERE export_date = (SELECT max(g.export_date) FROM landing.export_files g
                                WHERE g.system = f.system AND g.export_date <= $day)
           ORDER BY system""",
        day,
    )
    trend = [
        (run_date, json.loads(text))
        for run_date, text in con.execute(
            "SELECT run_date, summary FROM reports.daily_summary WHERE run_date <= ? ORDER BY run_date", [day]
        ).fetchall()
    ]
    data = ReportData(
        day=day,
        summary=summary,
        status=day_status(summary, failed),
        rules=registry,
        failed_checks=failed,
        violations=violations,
        register=register,
        checks=checks,
        expectations=expectations,
        consent_by_source=consent_by_source,
        club_left_by_reason=club_left_by_reason,
        files=files,
        rejected_reasons=rejected_reasons,
        exports=exports,
        export_ages=export_ages(con, day),
        trend=trend,
        code_version=code_version(),
        remediation=remediation_files(con, day),
    )
    data.run_id = run_fingerprint(data)
    return data


# ---------------------------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------------------------

_ROOT = Path(__file__).resolve().parents[2]
_SOURCE_PACKAGES = ("assets", "checks", "pipelines")


@lru_cache(maxsize=1)
def code_version() -> str:
    """The package version plus a digest of the pipeline's source files (code, SQL, templates, style):
    same code, same version."""
    try:
        from importlib.metadata import version

        base = version("consent-compliance")
    except Exception:
        base = _pyproject_version()
    digest = hashlib.sha256()
    for package in _SOURCE_PACKAGES:
        for path in sorted((_ROOT / package).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".sql", ".css", ".j2"} and "__pycache__" not in path.parts:
                digest.update(path.relative_to(_ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{base}+src.{digest.hexdigest()[:12]}"


def _pyproject_version() -> str:
    try:
        import tomllib

        return str(tomllib.loads((_ROOT / "pyproject.toml").read_text())["project"]["version"])
    except Exception:
        return "0+unknown"


def run_fingerprint(data: ReportData) -> str:
    """A run id that depends only on what the report was made from: the day, the code, the inputs.

    The Dagster run id of each run is recorded in ops.runs and reports.daily_summary; it is not
    printed in the report, so that the same inputs give a byte-identical report.
    """
    material = json.dumps(
        {
            "day": data.day.isoformat(),
            "code": data.code_version,
            "files": data.files,
            "exports": data.exports,
            "summary": data.summary,
        },
        sort_keys=True,
        default=str,
    )
    return f"{data.day.isoformat()}-{hashlib.sha256(material.encode()).hexdigest()[:12]}"
