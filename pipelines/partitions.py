"""The nightly partitions: one per arrival day, in Europe/Prague.

The window starts at COMPLIANCE_FIRST_DAY when it is set, else at the first day found in the inbox
(an arrival folder `events/YYYY-MM-DD/` or an export `snapshots/<system>/YYYY-MM-DD.csv`) or in the
reports (a published day `<reports>/YYYY-MM-DD/`: raw retention deletes old arrival folders, and
their days stay re-runnable). It is read once, when the Definitions load, from directory listings
only (never the warehouse); with nothing found it starts yesterday. It ends with yesterday, the
last day that has ended in Europe/Prague (Dagster moves the end as days end).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import dagster as dg

from pipelines import config
from pipelines.clock import last_complete_day
from pipelines.clock import today as today_in_prague  # noqa: F401  (a public name of this module)

TIMEZONE = "Europe/Prague"


def _day(name: str) -> date | None:
    """The day a file or folder is named after: `YYYY-MM-DD` exactly (not `20261103`, not a week date)."""
    try:
        day = date.fromisoformat(name)
    except ValueError:
        return None
    return day if name == day.isoformat() else None


def _named_days(paths) -> set[date]:
    return {d for d in (_day(p) for p in paths) if d is not None}


def inbox_days(inbox: Path) -> list[date]:
    """Every arrival day (`events/D/`) and export day (`snapshots/<system>/D.csv`) in the inbox."""
    found: set[date] = set()
    events = inbox / "events"
    if events.is_dir():
        found |= _named_days(p.name for p in events.iterdir() if p.is_dir())
    snapshots = inbox / "snapshots"
    if snapshots.is_dir():
        for system in snapshots.iterdir():
            if system.is_dir():
                found |= _named_days(p.stem for p in system.glob("*.csv"))
    return sorted(found)


def report_days(reports: Path) -> list[date]:
    """Every published day (`<reports>/D/`)."""
    if not reports.is_dir():
        return []
    return sorted(_named_days(p.name for p in reports.iterdir() if p.is_dir()))


def first_partition_day(env: Mapping[str, str] = os.environ) -> date:
    """The first partition: COMPLIANCE_FIRST_DAY, else the first day of the inbox or the reports,
    else yesterday; never after yesterday (the schedule's day is always a partition)."""
    first = config.configured_first_day(env)
    if first is None:
        try:
            found = inbox_days(Path(config.setting(config.ENV_INBOX, env))) + report_days(
                Path(config.setting(config.ENV_REPORTS, env))
            )
        except OSError:  # an inbox that cannot be listed: the CLI and the runs say so, not the loader
            found = []
        first = min(found, default=last_complete_day())
    return min(first, last_complete_day())


BACKFILL_HELP = (
    "One partition per arrival day (Europe/Prague), from the first day in the inbox or the reports "
    f"(or {config.ENV_FIRST_DAY}) to yesterday. Days must run in order: backfill a range with "
    "`python -m pipelines backfill --from D1 --to D2` (or `nightly --date D`, which catches up on "
    "every unprocessed day before D), or select the partitions here and launch a backfill (the run "
    "queue runs one day at a time, oldest first)."
)

nightly_partitions = dg.DailyPartitionsDefinition(
    start_date=first_partition_day().isoformat(), timezone=TIMEZONE, end_offset=0
)


def partition_day(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)
