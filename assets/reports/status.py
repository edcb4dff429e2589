"""The day's status: the report's headline, summary.json's `status` and the alerts say the same.

In order of precedence:

- `data_quality_failed` (purple): a check of severity ERROR failed, so figures may be wrong; the
  night fails.
- `no_data` (red): not one event line arrived for the day. A producer outage is never a clean
  day: the headline says so and a `no_data` alert goes out. The run itself succeeds (retention,
  exports and erasure deadlines still run; CONTRACT 3 fails a run only on a blocking check).
- `violations_found` (red): new violations today, or an erasure overdue.
- `incomplete` (amber): the day's volume is under half its usual level, or a system's latest
  export is at least its usual cadence old (assets/landing/freshness.py). The night does not fail;
  the report and an alert say what is missing.
- `all_clear` (green): none of the above. Warnings (WARN checks that failed) are still named in
  the headline.
"""

from __future__ import annotations

from typing import Any

from assets.landing.freshness import INCOMPLETE, NO_DATA

DATA_QUALITY_FAILED = "data_quality_failed"
VIOLATIONS_FOUND = "violations_found"
ALL_CLEAR = "all_clear"
#: Statuses under which the report states a failure of the night.
NIGHT_FAILED = (DATA_QUALITY_FAILED,)


def day_status(summary: dict[str, Any], failed_error_checks: list) -> str:
    freshness = summary.get("freshness") or {}
    if failed_error_checks:
        return DATA_QUALITY_FAILED
    if freshness.get("status") == NO_DATA:
        return NO_DATA
    if any(v["new"] for v in summary["violations"].values()) or summary["erasure"]["overdue"]:
        return VIOLATIONS_FOUND
    if freshness.get("status") == INCOMPLETE or freshness.get("stale_exports"):
        return INCOMPLETE
    return ALL_CLEAR
