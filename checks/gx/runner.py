"""Validate pandas frames pulled from DuckDB with Great Expectations (GX Core 1.x) suites.

GX is imported lazily, on the first validation, inside the check that needs it: importing it takes
seconds, and Dagster loads this package for every process (UI, CLI, tests). The context is
EPHEMERAL (nothing written to disk), analytics are off and its progress bars are silenced.

Only counts leave a validation: GX's result also lists unexpected *values*, which may be data, so
they are dropped here and never reach logs, metadata, ops tables or the report.
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

_DATASOURCE = "warehouse_frames"
_BATCH = "whole_frame"
_state: dict[str, Any] = {}
_names = itertools.count(1)
#: Rows validated since memory was last given back at or above which `release_unused_memory` acts.
#: Its full garbage collection costs ~0.25 s in a night's process (Dagster and GX loaded), which one
#: core suite's sample (at most 100,000 rows, gx_suites.SAMPLE_ROWS) is not worth; the landing day
#: batch is (1M rows and ~240 MB at 3M accounts).
RELEASE_ROWS = 250_000


@dataclass(frozen=True)
class Expect:
    """One expectation: a plain-language statement and the GX expectation class that tests it."""

    statement: str
    gx_type: str  # class name in great_expectations.expectations, e.g. "ExpectColumnValuesToNotBeNull"
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def column(self) -> str:
        kw = self.kwargs
        if "column" in kw:
            return str(kw["column"])
        if "column_A" in kw:
            return f"{kw['column_A']}, {kw['column_B']}"
        return ", ".join(kw.get("column_list", ()))


@dataclass(frozen=True)
class Outcome:
    """The result of one expectation, as counts only."""

    statement: str
    expectation: str  # GX snake_case type, e.g. expect_column_values_to_not_be_null
    column: str
    success: bool
    evaluated: int  # rows the expectation looked at
    unexpected: int  # rows (or values) that broke it; 1 for a failed aggregate expectation
    error: str = ""  # why GX could not evaluate it (never data)


@dataclass
class SuiteOutcome:
    suite: str
    outcomes: list[Outcome]

    @property
    def evaluated(self) -> int:
        return len(self.outcomes)

    @property
    def failed(self) -> int:
        return sum(not o.success for o in self.outcomes)

    @property
    def passed(self) -> bool:
        return self.failed == 0

    def summary(self) -> str:
        return f"{self.evaluated} expectations, {self.failed} failed"

    def failing(self) -> list[str]:
        return [o.statement for o in self.outcomes if not o.success]


def _gx():
    """Import GX once, quietly, and return (gx, expectations module, ephemeral context)."""
    if "context" not in _state:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        import great_expectations.expectations as gxe

        # GX sets some of its loggers to INFO on import; keep them to warnings and errors.
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("great_expectations"):
                logging.getLogger(name).setLevel(logging.WARNING)

        _skip_frame_fingerprint()
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
        _state.update(gx=gx, gxe=gxe, context=context, source=context.data_sources.add_pandas(name=_DATASOURCE))
    return _state["gx"], _state["gxe"], _state["source"]


def _skip_frame_fingerprint() -> None:
    """Give every batch a cheap unique marker instead of GX's fingerprint of the whole frame.

    GX marks each pandas batch with an MD5 of `pandas.util.hash_pandas_object(frame)`, and builds
    the batch twice per validation: at a million rows that hashing is over 90 % of a suite's
    time, while the expectations themselves take a fraction of a second. The marker only names
    the batch; our batches are ephemeral and every validation gets its own data asset, so a
    unique counter serves just as well. Results are unchanged. (If GX renames the function, this
    does nothing and GX keeps hashing.)
    """
    from great_expectations.execution_engine import pandas_execution_engine

    if hasattr(pandas_execution_engine, "hash_pandas_dataframe"):
        markers = itertools.count(1)
        pandas_execution_engine.hash_pandas_dataframe = lambda df: f"frame-{next(markers)}-{len(df)}"


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _forget_batch_data(batch: Any) -> None:
    """Drop GX's reference to a validated frame.

    The datasource's execution engine keeps the data of every batch it loaded, keyed by batch id,
    for the life of the context: without this, every frame validated in a process (the landing
    day batch of a million rows, each core sample) stayed alive until the process ended."""
    manager = getattr(getattr(getattr(batch, "data", None), "execution_engine", None), "batch_manager", None)
    if manager is not None:
        manager.batch_data_cache.clear()
        manager.reset_batch_cache()


def release_unused_memory() -> bool:
    """Give the pages of frames no longer referenced back to the operating system, once frames of
    at least RELEASE_ROWS rows in all were validated since the last time. Returns whether it did.

    pandas keeps its strings in Arrow's memory pool, which holds freed pages for reuse: after the
    landing suite's 1M-row frame at 3M accounts, about 240 MB stayed resident through the
    DuckDB-heavy steps that follow in the same process (the night's peak)."""
    if _state.get("unreleased_rows", 0) < RELEASE_ROWS:
        return False
    _state["unreleased_rows"] = 0
    gc.collect()
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    return True


def validate_frame(suite: str, frame: pd.DataFrame, expectations: Sequence[Expect]) -> SuiteOutcome:
    """Run `expectations` as one GX suite over the whole frame and return per-expectation counts."""
    gx, gxe, source = _gx()
    _state["unreleased_rows"] = _state.get("unreleased_rows", 0) + len(frame)
    asset = source.add_dataframe_asset(name=f"{suite}_{next(_names)}")
    batch = asset.add_batch_definition_whole_dataframe(_BATCH).get_batch(batch_parameters={"dataframe": frame})
    gx_suite = gx.ExpectationSuite(
        name=suite,
        expectations=[getattr(gxe, e.gx_type)(**e.kwargs, meta={"index": i}) for i, e in enumerate(expectations)],
    )
    try:
        result = batch.validate(gx_suite, result_format="BASIC")
    finally:
        source.delete_asset(asset.name)
        _forget_batch_data(batch)
    by_index = {int(r.expectation_config.meta["index"]): r for r in result.results}
    outcomes = []
    for i, expect in enumerate(expectations):
        r = by_index.get(i)
        if r is None:  # GX returned nothing for it: count it as failed, never as passed
            outcomes.append(Outcome(expect.statement, _snake(expect.gx_type), expect.column, False, 0, 0, "no result"))
            continue
        info = r.result or {}
        raised = bool(_raised(r.exception_info))
        evaluated = info.get("element_count")
        unexpected = info.get("unexpected_count")
        outcomes.append(
            Outcome(
                statement=expect.statement,
                expectation=r.expectation_config.type,
                column=expect.column,
                success=bool(r.success) and not raised,
                evaluated=int(len(frame) if evaluated is None else evaluated),
                unexpected=int(unexpected if unexpected is not None else (0 if r.success else 1)),
                error="could not be evaluated" if raised else "",
            )
        )
    return SuiteOutcome(suite, outcomes)


def _raised(info: Any) -> bool:
    """GX reports exceptions either flat or keyed by metric id; look at both shapes."""
    if not info:
        return False
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


def merge(suite: str, *parts: SuiteOutcome | Sequence[Outcome]) -> SuiteOutcome:
    """One suite outcome from several validated frames (and plain assertions)."""
    outcomes: list[Outcome] = []
    for part in parts:
        outcomes.extend(part.outcomes if isinstance(part, SuiteOutcome) else part)
    return SuiteOutcome(suite, outcomes)


def assertion(statement: str, success: bool, evaluated: int = 1, unexpected: int | None = None) -> Outcome:
    """A plain (non-GX) assertion, shown and counted like an expectation."""
    return Outcome(
        statement=statement,
        expectation="assertion",
        column="",
        success=bool(success),
        evaluated=int(evaluated),
        unexpected=int(unexpected if unexpected is not None else (0 if success else 1)),
    )


def outcomes_markdown(outcome: SuiteOutcome) -> str:
    """Per-expectation counts as a markdown table (no data values)."""
    head = "| expectation | column | result | evaluated | unexpected |\n|---|---|---|---|---|\n"
    rows = "".join(
        f"| {o.statement} | {o.column} | {'pass' if o.success else 'FAIL'} | {o.evaluated} | {o.unexpected} |\n"
        for o in outcome.outcomes
    )
    return head + rows
