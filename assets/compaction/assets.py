"""The night's last warehouse writer: compaction into a fresh file, so erased values leave no bytes behind."""

from datetime import timedelta

import dagster as dg

from assets.compaction.compaction import compact_if_due
from assets.compliance.violations import VIOLATIONS
from assets.defaults import nightly_asset, row_count, table_result
from assets.erasure.assets import ERASURE_REGISTER
from pipelines.partitions import partition_day
from pipelines.resources import ComplianceSettings, Warehouse

WAREHOUSE_COMPACTION = dg.AssetKey(["compaction", "warehouse_compaction"])


@nightly_asset(WAREHOUSE_COMPACTION, deps=[VIOLATIONS, ERASURE_REGISTER], table="ops.compactions")
def warehouse_compaction(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: ComplianceSettings):
    """Copy the warehouse into a fresh file after purges, so erased values leave no bytes behind."""
    day = partition_day(context)
    delay = settings.compaction_delay_days
    result = compact_if_due(warehouse, day, delay)
    with warehouse.get_connection() as con:
        total = row_count(con, "ops.compactions")
    if result.compacted:
        context.log.info(f"{day}: compacted the warehouse: {result.bytes_before} -> {result.bytes_after} bytes")
    elif result.requests:
        context.log.info(
            f"{day}: {result.requests} purge(s) since {result.pending_since} wait for the compaction, "
            f"due by {result.pending_since + timedelta(days=delay)}"
        )
    waiting = (
        {}
        if result.compacted or not result.requests
        else {
            "pending_since": str(result.pending_since),
            "compaction_due_by": str(result.pending_since + timedelta(days=delay)),
        }
    )
    rows = [
        ("compacted", result.compacted),
        ("purges waiting", 0 if result.compacted else result.requests),
        *waiting.items(),
        ("bytes_before", result.bytes_before),
        ("bytes_after", result.bytes_after),
    ]
    return table_result(
        total,
        ["fact", "value"],
        rows,
        compacted=result.compacted,
        purges_since_last_compaction=result.requests,
        compaction_delay_days=delay,
        **waiting,
        **({"bytes_before": result.bytes_before, "bytes_after": result.bytes_after} if result.compacted else {}),
    )
