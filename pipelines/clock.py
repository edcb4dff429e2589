"""Calendar days in Europe/Prague: "day D" and "end of D" of the contract."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PRAGUE = ZoneInfo("Europe/Prague")


def start_of_day(day: date) -> datetime:
    """Local midnight that opens `day`, as an aware datetime."""
    return datetime.combine(day, time(0), tzinfo=PRAGUE)


def end_of_day(day: date) -> datetime:
    """Local midnight that closes `day` (the contract's "end of D"), as an aware datetime."""
    return start_of_day(day + timedelta(days=1))


def today() -> date:
    """Today in Europe/Prague."""
    return datetime.now(PRAGUE).date()


def last_complete_day() -> date:
    """Yesterday in Europe/Prague: the last day that has ended."""
    return today() - timedelta(days=1)
