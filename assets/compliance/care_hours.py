"""Customer Care hours (POLICY.md): weekdays 08:00-20:00; weekends and Czech public holidays 10:00-18:00.

Prague local time; the start is inclusive and the end exclusive. Public holidays come from the
maintained `holidays` package, materialised into compliance.czech_holidays for the years in the
data (never a hand-written list).
"""

from __future__ import annotations

from datetime import date, time

import duckdb
import holidays

WEEKDAY_HOURS = (time(8), time(20))
WEEKEND_AND_HOLIDAY_HOURS = (time(10), time(18))


def czech_holidays(years: range) -> list[tuple[date, str]]:
    return sorted(holidays.country_holidays("CZ", years=list(years)).items())


def care_hours_on(day: date) -> tuple[time, time]:
    """Opening hours on a local calendar day (used by tests and the report)."""
    if day.weekday() >= 5 or day in holidays.country_holidays("CZ", years=[day.year]):
        return WEEKEND_AND_HOLIDAY_HOURS
    return WEEKDAY_HOURS


def install_care_hours(con: duckdb.DuckDBPyConnection, day: date) -> int:
    """Materialise compliance.czech_holidays and the TEMP view care_hours; returns the number of holidays.

    Needs the as-of views of `assets.core.as_of` on this connection.
    """
    first, last = con.execute(
        """SELECT min(year(timezone('Europe/Prague', occurred_at))), max(year(timezone('Europe/Prague', occurred_at)))
           FROM known_events WHERE channel = 'care_center'"""
    ).fetchall()[0]
    years = range(min(first or day.year, day.year), max(last or day.year, day.year) + 1)
    rows = czech_holidays(years)
    con.execute("CREATE OR REPLACE TABLE compliance.czech_holidays (day DATE NOT NULL PRIMARY KEY, name VARCHAR)")
    con.executemany("INSERT INTO compliance.czech_holidays VALUES (?, ?)", rows)
    open_weekday, close_weekday = (t.strftime("%H:%M") for t in WEEKDAY_HOURS)
    open_rest, close_rest = (t.strftime("%H:%M") for t in WEEKEND_AND_HOLIDAY_HOURS)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW care_hours AS
        WITH care_events AS (
            SELECT *, timezone('Europe/Prague', occurred_at) AS local_time
            FROM known_events
            WHERE channel = 'care_center'
        ), days AS (
            SELECT c.*,
                   h.day IS NOT NULL AS is_holiday,
                   h.day IS NOT NULL OR isodow(c.local_time) IN (6, 7) AS is_weekend_or_holiday
            FROM care_events c
            LEFT JOIN compliance.czech_holidays h ON h.day = c.local_time::DATE
        )
        SELECT *,
               CASE WHEN is_weekend_or_holiday THEN TIME '{open_rest}' ELSE TIME '{open_weekday}' END AS opens,
               CASE WHEN is_weekend_or_holiday THEN TIME '{close_rest}' ELSE TIME '{close_weekday}' END AS closes
        FROM days
        """
    )
    return len(rows)
