"""Checks on the downstream exports (CONTRACT 2.2). Each records its outcome in ops.check_results."""

import dagster as dg

from assets.common import POOL, day_of
from assets.landing.assets import EXPORT_KEYS
from assets.landing.exports import LATEST_EXPORTS_SQL, shown
from checks.results import WARN, check_result
from pipelines.partitions import nightly_partitions
from pipelines.resources import Warehouse


@dg.asset_check(
    asset=EXPORT_KEYS,
    name="exports_are_readable",
    blocking=False,
    pool=POOL,
    partitions_def=nightly_partitions,
)
def exports_are_readable(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    """Every system's latest export dated at or before the day could be read.

    An unreadable export (not UTF-8, no account_id / email header, malformed CSV, a symlink) leaves
    that system's state unknown: the erasure register then names the system for every erased
    subject not yet verified instead of calling them verified (assets/erasure/verifier.py). WARN, like unreadable
    event files: the report is still right (it names the file and its problem), but incomplete.
    """
    day = day_of(context)
    with warehouse.get_connection() as con:
        latest = con.execute(f"{LATEST_EXPORTS_SQL} ORDER BY system", {"day": day}).fetchall()
        unreadable = [(system, when, problem) for system, when, readable, problem in latest if not readable]
        return check_result(
            context,
            con,
            run_date=day,
            severity=WARN,
            passed=not unreadable,
            evaluated=1,
            failed=int(bool(unreadable)),
            description="Every system's latest export could be read",
            details=f"{len(unreadable)} of {len(latest)} system(s) have a latest export that could not be read",
            metadata={
                "systems": len(latest),
                "unreadable": len(unreadable),
                # a system's name may carry anything: shown as itself only if machine-made, else its keyed label
                **{
                    f"unreadable/{shown(system)}/{export_date}": problem or ""
                    for system, export_date, problem in unreadable[:50]
                },
            },
        )
