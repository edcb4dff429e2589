"""The suite builder: a GX suite's outcome as a check Verdict, and a core table's daily sample suite."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from assets.defaults import row_count
from checks.gx.runner import Expect, Outcome, SuiteOutcome, assertion, merge, outcomes_markdown, validate_frame
from checks.nightly import Verdict

#: Rows of a core table that its GX suite validates each night: a sample that changes every day
#: (ordered by a hash of the row's key and the day), so that the suite's time and memory do not
#: grow with history. Uniqueness, which no sample can show, is asserted in SQL over the whole table.
SAMPLE_ROWS = 100_000
HEX_KEY = r"^[0-9a-f]{64}$"


def keyed_hash(column: str) -> Expect:
    """The column holds keyed hashes (CONTRACT 4): 64 lowercase hex digits."""
    return Expect(
        f"{column} is a keyed hash (64 hex digits)",
        "ExpectColumnValuesToMatchRegex",
        {"column": column, "regex": HEX_KEY},
    )


def suite_verdict(outcome: SuiteOutcome, subject: str, metadata: Mapping[str, Any] | None = None) -> Verdict:
    """Every expectation is recorded; the description names the failing ones (statements, never values)."""
    description = f"{subject}: {outcome.summary()}"
    if not outcome.passed:
        description += ". Failed: " + "; ".join(outcome.failing())
    return Verdict(
        passed=outcome.passed,
        description=description,
        details=outcome.summary(),
        evaluated=outcome.evaluated,
        failed=outcome.failed,
        metadata={"expectations": dg.MetadataValue.md(outcomes_markdown(outcome)), **(metadata or {})},
        expectations=outcome.outcomes,
    )


def unique_over_table(con: duckdb.DuckDBPyConnection, table: str, column: str, statement: str) -> Outcome:
    """SQL assertion over the whole core table (a sample cannot show uniqueness): every value once."""
    rows, distinct = con.execute(f"SELECT count(*), count(DISTINCT {column}) FROM {table}").fetchall()[0]
    return assertion(statement, rows == distinct, rows, rows - distinct)


def sample_suite_verdict(
    con: duckdb.DuckDBPyConnection,
    *,
    table: str,
    frame: pd.DataFrame,
    expectations: Sequence[Expect],
    what: str,
    unique: tuple[str, str] | None = None,
) -> Verdict:
    """A core table's suite: GX on its daily sample, plus (column, statement) uniqueness over the whole table."""
    suite = table.split(".", 1)[1]
    outcome = validate_frame(suite, frame, expectations)
    if unique is not None:
        outcome = merge(suite, outcome, [unique_over_table(con, table, *unique)])
    total = row_count(con, table)
    subject = f"{total} {what}" if len(frame) == total else f"{len(frame)} of {total} {what} (a daily sample)"
    return suite_verdict(outcome, subject)
