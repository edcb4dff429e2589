"""The nightly partitions: one per arrival day, in Europe/Prague."""

from __future__ import annotations

import os
from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines.config import ENV_FIRST_PARTITION as ENV_FIRST_DAY
from pipelines.config import ENV_LAST_PARTITION as ENV_LAST_DAY

TIMEZONE = "Europe/Prague"
DEFAULT_FIRST_DAY = "2020-01-01"


def today_in_prague() -> date:
    return datetime.now(ZoneInfo(TIMEZONE)).date()


def _end_offset() -> int:
    """Partitions end with yesterday (the last complete day) unless a later day is asked for."""
    last = os.environ.get(ENV_LAST_DAY)
    if not last:
        return 0
    return max(0, (date.fromisoformat(last) - today_in_prague()).days + 1)


def _first_day() -> str:
    first = os.environ.get(ENV_FIRST_DAY)
    return min(first, DEFAULT_FIRST_DAY) if first else DEFAULT_FIRST_DAY


nightly_partitions = dg.DailyPartitionsDefinition(start_date=_first_day(), timezone=TIMEZONE, end_offset=_end_offset())


def partition_day(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)
