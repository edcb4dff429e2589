"""Record every check's outcome in ops.check_results, so the report can state it.

Checks are split by what their failure means (issue 5): ERROR checks make the report wrong and
fail the nightly run; WARN checks are shown but do not fail it. Each check records its result
here and returns the matching Dagster AssetCheckResult.

`evaluated` / `failed` count expectations, the unit of quality.expectations_evaluated / _failed:
a Great Expectations suite counts its expectations, a SQL check counts one per assertion it makes.
Row counts (rows examined, rows that broke a rule) belong in `details` and the check's metadata.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import dagster as dg
import duckdb

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN

def record_check(
    con: duckdb.DuckDBPyConnection,
    *,
    run_date: date,
    check_name: str,
    asset: str,
    severity: dg.AssetCheckSeverity,
    passed: bool,
    evaluated: int,
    failed: int,
    description: str,
    details: str = "",
    run_id: str | None = None,
) -> None:
    """Replace today's row for this check (re-runs change nothing)."""
    con.execute(
        "DELETE FROM ops.check_results WHERE run_date = ? AND check_name = ? AND asset = ?",
        [run_date, check_name, asset],
    )
    con.execute(
        "INSERT INTO ops.check_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_date, check_name, asset, severity.value, passed, evaluated, failed, description, details, run_id],
    )


def record_expectations(
    con: duckdb.DuckDBPyConnection,
    *,
    run_date: date,
    check_name: str,
    asset: str,
    outcomes: Iterable[Any],
) -> None:
    """Replace today's per-expectation rows of one suite (objects shaped like gx_runner.Outcome)."""
    con.execute(
        "DELETE FROM ops.expectation_results WHERE run_date = ? AND check_name = ? AND asset = ?",
        [run_date, check_name, asset],
    )
    rows = [
        [
            run_date,
            check_name,
            asset,
            i,
            o.statement,
            o.expectation,
            o.column,
            o.success,
            o.evaluated,
            o.unexpected,
            o.error,
        ]
        for i, o in enumerate(outcomes)
    ]
    if rows:
        con.executemany("INSERT INTO ops.expectation_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def check_result(
    context: dg.AssetCheckExecutionContext,
    con: duckdb.DuckDBPyConnection,
    *,
    run_date: date,
    severity: dg.AssetCheckSeverity,
    passed: bool,
    evaluated: int,
    failed: int,
    description: str,
    details: str = "",
    metadata: dict[str, Any] | None = None,
) -> dg.AssetCheckResult:
    """Record the outcome and build the AssetCheckResult (metadata: counts and keys only)."""
    spec = context.check_specs[0]
    record_check(
        con,
        run_date=run_date,
        check_name=spec.name,
        asset=spec.asset_key.to_user_string(),
        severity=severity,
        passed=passed,
        evaluated=evaluated,
        failed=failed,
        description=description,
        details=details,
        run_id=context.run.run_id,
    )
    return dg.AssetCheckResult(
        passed=passed,
        severity=severity,
        description=description,
        metadata={"evaluated": evaluated, "failed": failed, **(metadata or {})},
    )
