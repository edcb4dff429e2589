"""Is the day's input complete? The event volume against its usual level, and each export's age
against its system's usual cadence. A producer outage must never look like a clean day.

Thresholds, decided from the data rather than fixed counts:

- **No data**: not one event line arrived for D (no file, or only empty files).
- **Incomplete**: D received fewer than INCOMPLETE_SHARE (half) of the median daily volume of the
  TRAILING_DAYS arrival days with data before D. The generator's daily volumes (a model of the
  brand's traffic; no production volumes are at hand) stay within about ±25 % of their median,
  so half the median is an outage, not a quiet day. With
  fewer than MIN_HISTORY_DAYS days of history the volume is not judged ("not_judged"): a new
  inbox has no usual level yet.
- **Stale export**: a system's latest export dated at or before D is at least its usual cadence
  old: D - latest >= the median gap between its consecutive exports (daily exports: 1 day old is
  stale; weekly: 7 days old). A system with a single export has no cadence yet and is not judged.

Everything is read from landing.files and landing.export_files as of D (rows of days <= D), so a
re-run of D judges it the same way whatever ran after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

TRAILING_DAYS = 28
MIN_HISTORY_DAYS = 7
INCOMPLETE_SHARE = 0.5
#: Gaps between a system's exports that its cadence is the median of (the most recent ones).
CADENCE_GAPS = 8

OK, NO_DATA, INCOMPLETE, NOT_JUDGED = "ok", "no_data", "incomplete", "not_judged"

VOLUME_SQL = f"""
WITH days AS (
    SELECT arrival_date, sum(received) AS received, count(*) AS files
    FROM landing.files
    WHERE arrival_date <= $day
    GROUP BY arrival_date
), history AS (
    SELECT received FROM days
    WHERE arrival_date < $day AND received > 0
    ORDER BY arrival_date DESC
    LIMIT {TRAILING_DAYS}
)
SELECT coalesce((SELECT received FROM days WHERE arrival_date = $day), 0) AS received,
       coalesce((SELECT files FROM days WHERE arrival_date = $day), 0) AS files,
       (SELECT median(received) FROM history) AS trailing_median,
       (SELECT count(*) FROM history) AS history_days
"""

EXPORT_AGE_SQL = f"""
WITH dates AS (
    SELECT DISTINCT system, export_date FROM landing.export_files WHERE export_date <= $day
), gaps AS (
    SELECT system, export_date,
           date_diff('day', lag(export_date) OVER (PARTITION BY system ORDER BY export_date), export_date) AS gap
    FROM dates
), recent AS (
    SELECT system, gap FROM gaps WHERE gap IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY system ORDER BY export_date DESC) <= {CADENCE_GAPS}
)
SELECT d.system,
       max(d.export_date) AS latest,
       date_diff('day', max(d.export_date), $day::DATE) AS age_days,
       (SELECT median(r.gap) FROM recent r WHERE r.system = d.system) AS cadence_days
FROM dates d
GROUP BY d.system
ORDER BY d.system
"""


@dataclass(frozen=True)
class DayVolume:
    """The day's event volume against the usual one; `status` is OK, NO_DATA, INCOMPLETE or NOT_JUDGED."""

    received: int
    files: int
    trailing_median: float | None
    history_days: int

    @property
    def status(self) -> str:
        if self.received == 0:
            return NO_DATA
        if self.usual is None:
            return NOT_JUDGED
        if self.received < INCOMPLETE_SHARE * self.trailing_median:
            return INCOMPLETE
        return OK

    @property
    def usual(self) -> int | None:
        """The trailing median, rounded, when there is enough history to judge the day."""
        if self.history_days < MIN_HISTORY_DAYS or self.trailing_median is None:
            return None
        return round(self.trailing_median)


@dataclass(frozen=True)
class ExportAge:
    """A system's latest export at or before D, its age and the system's usual cadence (days)."""

    system: str
    latest: date
    age_days: int
    cadence_days: float | None

    @property
    def stale(self) -> bool:
        return self.cadence_days is not None and self.age_days > 0 and self.age_days >= self.cadence_days


def day_volume(con: duckdb.DuckDBPyConnection, day: date) -> DayVolume:
    received, files, median, history = con.execute(VOLUME_SQL, {"day": day}).fetchall()[0]
    return DayVolume(int(received), int(files), None if median is None else float(median), int(history))


def export_ages(con: duckdb.DuckDBPyConnection, day: date) -> list[ExportAge]:
    rows = con.execute(EXPORT_AGE_SQL, {"day": day}).fetchall()
    return [ExportAge(s, latest, int(age), None if c is None else float(c)) for s, latest, age, c in rows]
