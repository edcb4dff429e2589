"""The defaults of every nightly check, written once, and the recording of its outcome.

`nightly_check` turns a function of one `CheckRun` (the day, an open warehouse connection, the
settings) that returns a `Verdict` into a Dagster asset check with the project's conventions:
named after the function, described by its docstring, partitioned by day, in the `warehouse`
pool, and recorded in ops.check_results (and, for a GX suite, ops.expectation_results) so that
the report can state it.

One vocabulary, the same in the UI, the report, the alerts and the docs:

- severity ERROR, "fails the night": a failure means the report's figures cannot be trusted.
  The report is still published and says so in its headline; its gate check then fails the run.
- severity WARN, "warning": shown in the report's headline and data-quality section; the night
  does not fail.
- category "compliance finding": a fact about the company's promises, not about the data
  (erased customers still in a downstream system). Shown in the UI; the report states it in the
  erasure register and `erasure_overdue`, not among the data-quality checks, so it is not
  recorded in ops.check_results.
- Dagster's own `blocking` flag means only "stops the assets downstream of it": the report's own
  checks and the byte-level erasure check are blocking; the data-quality checks are not, so
  that the report is still written and can state their failure.

`evaluated` / `failed` count expectations, the unit of quality.expectations_evaluated / _failed:
a GX suite counts its expectations, a SQL check counts one per assertion it makes. Row counts
(rows examined, rows that broke a rule) belong in `details` and the metadata.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg
import duckdb

from assets.defaults import POOL
from checks.gx.runner import Outcome, release_unused_memory
from pipelines.partitions import nightly_partitions, partition_day
from pipelines.resources import ComplianceSettings, Warehouse

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN


@dataclass(frozen=True)
class CheckRun:
    """What a check's body gets: the partition day, an open warehouse connection and the settings."""

    day: date
    con: duckdb.DuckDBPyConnection
    settings: ComplianceSettings


@dataclass(frozen=True)
class Verdict:
    """A check's outcome. Metadata and texts hold counts, keys and names, never data values."""

    passed: bool
    description: str
    details: str = ""
    evaluated: int = 1
    failed: int | None = None  # default: one failed assertion when not passed
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: a GX suite's per-expectation outcomes, recorded in ops.expectation_results (None: a SQL check)
    expectations: Sequence[Outcome] | None = None


def none_offend(
    con: duckdb.DuckDBPyConnection, sql: str, *, description: str, offending: str, examined: str
) -> Verdict:
    """A SQL check whose query returns (offending, examined) counts: it passes when none offends.

    `offending` and `examined` name the two counts (e.g. "ill_formed", "intervals"); they are the
    check's metadata keys and its details, so the report and the UI say the same thing."""
    bad, total = con.execute(sql).fetchall()[0]
    return Verdict(
        passed=bad == 0,
        description=description,
        details=f"{bad} of {total} {examined.replace('_', ' ')} {offending.replace('_', ' ')}",
        metadata={examined: total, offending: bad},
    )


DATA_QUALITY = "data quality"
COMPLIANCE_FINDING = "compliance finding"
#: What each severity means for the night, as the UI shows it beside Dagster's own wording.
CONSEQUENCE = {
    "ERROR": "Severity ERROR: a failure fails the night (the report is still published and says so).",
    "WARN": "Severity WARN: a warning, named in the report; the night does not fail.",
}


def nightly_check(
    asset: dg.AssetKey,
    *,
    severity: dg.AssetCheckSeverity,
    blocking: bool = False,
    engine: str = "sql",
    category: str = DATA_QUALITY,
) -> Callable[[Callable[[CheckRun], Verdict]], dg.AssetChecksDefinition]:
    """@dg.asset_check with the nightly defaults, recording the body's Verdict (data-quality checks)."""

    def decorate(body: Callable[[CheckRun], Verdict]) -> dg.AssetChecksDefinition:
        def check(
            context: dg.AssetCheckExecutionContext, warehouse: Warehouse, settings: ComplianceSettings
        ) -> dg.AssetCheckResult:
            day = partition_day(context)
            try:
                with warehouse.get_connection() as con:
                    verdict = body(CheckRun(day=day, con=con, settings=settings))
                    return _recorded(context, con, day, severity, verdict, record=category == DATA_QUALITY)
            finally:
                release_unused_memory()  # a validated frame's pages go back to the OS (checks/gx/runner.py)

        check.__name__ = check.__qualname__ = body.__name__
        check.__module__ = body.__module__
        return dg.asset_check(
            asset=asset,
            name=body.__name__,
            description=f"{(body.__doc__ or '').strip()}\n\n"
            + (CONSEQUENCE[severity.value] if category == DATA_QUALITY else "A compliance finding, not data quality."),
            blocking=blocking,
            partitions_def=nightly_partitions,
            pool=POOL,
            metadata={
                "severity": severity.value,
                "category": category,
                "fails_the_night": category == DATA_QUALITY and severity == ERROR,
                "engine": engine,
            },
        )(check)

    return decorate


def _recorded(
    context: dg.AssetCheckExecutionContext,
    con: duckdb.DuckDBPyConnection,
    day: date,
    severity: dg.AssetCheckSeverity,
    verdict: Verdict,
    *,
    record: bool,
) -> dg.AssetCheckResult:
    spec = context.check_specs[0]
    failed = int(not verdict.passed) if verdict.failed is None else verdict.failed
    asset = spec.asset_key.to_user_string()
    if not record:
        return dg.AssetCheckResult(
            passed=verdict.passed, severity=severity, description=verdict.description, metadata=dict(verdict.metadata)
        )
    if verdict.expectations is not None:
        record_expectations(con, run_date=day, check_name=spec.name, asset=asset, outcomes=verdict.expectations)
    record_check(
        con,
        run_date=day,
        check_name=spec.name,
        asset=asset,
        severity=severity,
        passed=verdict.passed,
        evaluated=verdict.evaluated,
        failed=failed,
        description=verdict.description,
        details=verdict.details,
        run_id=context.run.run_id,
    )
    return dg.AssetCheckResult(
        passed=verdict.passed,
        severity=severity,
        description=verdict.description,
        metadata={"evaluated": verdict.evaluated, "failed": failed, **verdict.metadata},
    )


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
    con: duckdb.DuckDBPyConnection, *, run_date: date, check_name: str, asset: str, outcomes: Iterable[Outcome]
) -> None:
    """Replace today's per-expectation rows of one suite."""
    con.execute(
        "DELETE FROM ops.expectation_results WHERE run_date = ? AND check_name = ? AND asset = ?",
        [run_date, check_name, asset],
    )
    rows = [
        (
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
        )
        for i, o in enumerate(outcomes)
    ]
    if rows:
        con.executemany("INSERT INTO ops.expectation_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
