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
    """Copy the vault (and the warehouse, when a purge changed it) into a fresh file: erased values leave no bytes."""
    day = partition_day(context)
    delay = settings.compaction_delay_days
    results = compact_if_due(warehouse, day, delay)
    with warehouse.get_connection() as con:
        total = row_count(con, "ops.compactions")
    rows = []
    for r in results:
        if r.compacted:
            context.log.info(f"{day}: compacted the {r.database}: {r.bytes_before} -> {r.bytes_after} bytes")
        elif r.requests:
            context.log.info(
                f"{day}: {r.requests} purge(s) of the {r.database} since {r.pending_since} wait for the compaction, "
                f"due by {r.pending_since + timedelta(days=delay)}"
            )
        due_by = "" if r.compacted or not r.requests else str(r.pending_since + timedelta(days=delay))
        rows.append((r.database, r.compacted, 0 if r.compacted else r.requests, due_by, r.bytes_before, r.bytes_after))
    return table_result(
        total,
        ["database", "compacted", "purges waiting", "compaction due by", "bytes_before", "bytes_after"],
        rows,
        compaction_delay_days=delay,
        **{f"compacted/{r.database}": r.compacted for r in results},
        **{f"purges_waiting/{r.database}": 0 if r.compacted else r.requests for r in results},
        **{
            f"compaction_due_by/{r.database}": str(r.pending_since + timedelta(days=delay))
            for r in results
            if r.requests and not r.compacted
        },
    )
