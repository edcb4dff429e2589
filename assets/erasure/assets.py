"""Erasure assets: the purge, raw retention, the erasure register and the warehouse compaction."""

from datetime import timedelta

import dagster as dg

from assets.common import KINDS, OWNERS, POOL, day_of, markdown_table, row_count, short_key
from assets.erasure.compaction import compact_if_due
from assets.erasure.locations import parse, shown_location
from assets.erasure.purge import purge
from assets.erasure.retention import apply_retention
from assets.erasure.verifier import STATUSES, build_register
from assets.landing.assets import EVENTS, EXPORT_KEYS, FILES, REJECTED
from assets.schemas import column_schema
from pipelines.partitions import nightly_partitions
from pipelines.resources import ComplianceSettings, Warehouse

PURGE_LOG = dg.AssetKey(["compliance", "purge_log"])
RAW_RETENTION = dg.AssetKey(["ops", "raw_retention"])
ERASURE_REGISTER = dg.AssetKey(["compliance", "erasure_register"])
WAREHOUSE_COMPACTION = dg.AssetKey(["ops", "warehouse_compaction"])
CORE_ACCOUNTS = dg.AssetKey(["core", "accounts"])
VIOLATIONS = dg.AssetKey(["compliance", "violations"])

PURGE_LOG_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("run_date", "date", description="the nightly run that purged"),
        dg.TableColumn("table_name", "varchar", description="schema.table whose rows were purged"),
        dg.TableColumn("rows_purged", "bigint", description="rows that lost a plain identifier in that run"),
        dg.TableColumn("purged_at", "timestamptz"),
    ]
)


@dg.asset(
    key=PURGE_LOG,
    deps=[EVENTS, REJECTED, FILES, EXPORT_KEYS],
    group_name="compliance",
    kinds=KINDS,
    owners=OWNERS,
    tags={"layer": "compliance", "pii": "no"},
    metadata={"dagster/column_schema": PURGE_LOG_SCHEMA},
    partitions_def=nightly_partitions,
    pool=POOL,
)
def purge_log(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Purge every plain identifier of the subjects erased by the end of the day from every table."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        result = purge(con, day)
        total = row_count(con, "compliance.purge_log")
    context.log.info(
        f"{day}: {result.erased_total} erased subject(s), {result.newly_erased} new; {result.rows_purged} row(s) purged"
    )
    rows = sorted((t, n) for t, n in result.rows.items() if n)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "erased_subjects": result.erased_total,
            "newly_erased": result.newly_erased,
            "rows_purged": result.rows_purged,
            **{f"rows_purged/{t}": n for t, n in rows},
            "preview": dg.MetadataValue.md(markdown_table(["table", "rows purged"], rows or [("(none)", 0)])),
        }
    )


@dg.asset(
    key=RAW_RETENTION,
    deps=[PURGE_LOG],
    group_name="ops",
    kinds=KINDS,
    owners=OWNERS,
    tags={"layer": "ops", "pii": "no"},
    metadata=column_schema("ops.retention_log"),
    partitions_def=nightly_partitions,
    pool=POOL,
)
def raw_retention(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: ComplianceSettings):
    """Delete ingested inbox day folders and export files older than the retention period."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        result = apply_retention(con, settings.inbox_path, day, settings.retention_days, context.log)
        total = row_count(con, "ops.retention_log")
    context.log.info(
        f"{day}: retention of {settings.retention_days} day(s) deleted {len(result.deleted)} path(s); "
        f"kept {len(result.kept_unsafe)} folder(s) holding files never ingested"
    )
    rows = [(d.kind, d.shown) for d in result.deleted[:50]]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "retention_days": settings.retention_days,
            "deleted_today": len(result.deleted),
            "kept_not_ingested": len(result.kept_unsafe),
            "preview": dg.MetadataValue.md(markdown_table(["kind", "path"], rows or [("(none)", "")])),
        }
    )


@dg.asset(
    key=ERASURE_REGISTER,
    deps=[RAW_RETENTION, CORE_ACCOUNTS, EXPORT_KEYS],
    group_name="compliance",
    kinds=KINDS,
    owners=OWNERS,
    tags={"layer": "compliance", "pii": "no"},
    metadata=column_schema("compliance.erasure_register"),
    partitions_def=nightly_partitions,
    pool=POOL,
)
def erasure_register(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: ComplianceSettings):
    """Verify every erased subject's data is gone everywhere and track the one-month SLA."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        result = build_register(con, day, settings.inbox_path)
        rows = con.execute(
            f"""SELECT {short_key("subject_key")} AS subject, status, due_date,
                       date_diff('day', ?::DATE, due_date) AS days_to_due, residual_locations
                FROM compliance.erasure_register
                ORDER BY CASE status WHEN 'overdue' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, due_date, subject_key
                LIMIT 20""",
            [day],
        ).fetchall()
        # A system's name may carry anything: Dagster metadata shows it only if it is a plain identifier.
        md = dg.MetadataValue.md(
            markdown_table(
                ["subject", "status", "due_date", "days_to_due", "residual_in"],
                [(*r[:4], ",".join(shown_location(loc) for loc in parse(r[4]))) for r in rows],
            )
        )
    by_location: dict[str, int] = {}
    for token, n in result.by_location.items():
        for loc in parse(token):
            by_location[shown_location(loc)] = by_location.get(shown_location(loc), 0) + n
    counts = ", ".join(f"{s}={result.by_status[s]}" for s in STATUSES)
    context.log.info(f"{day}: {result.erased_total} erased subject(s): {counts}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.erased_total,
            **{f"status/{s}": result.by_status[s] for s in STATUSES},
            **{f"residual_in/{loc}": n for loc, n in sorted(by_location.items())},
            "preview": md,
        }
    )


@dg.asset(
    key=WAREHOUSE_COMPACTION,
    deps=[VIOLATIONS, ERASURE_REGISTER],
    group_name="ops",
    kinds=KINDS,
    owners=OWNERS,
    tags={"layer": "ops", "pii": "no"},
    metadata=column_schema("ops.compactions"),
    partitions_def=nightly_partitions,
    pool=POOL,
)
def warehouse_compaction(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: ComplianceSettings):
    """Copy the warehouse into a fresh file after purges, so erased values leave no bytes behind."""
    day = day_of(context)
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
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "compacted": result.compacted,
            "purges_since_last_compaction": result.requests,
            "compaction_delay_days": delay,
            **waiting,
            **({"bytes_before": result.bytes_before, "bytes_after": result.bytes_after} if result.compacted else {}),
            "preview": dg.MetadataValue.md(markdown_table(["fact", "value"], rows)),
        }
    )
