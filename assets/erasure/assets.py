"""Erasure after the core tables: raw retention, then the register that verifies every copy."""

import dagster as dg

from assets.core.accounts import ACCOUNTS
from assets.defaults import markdown_table, nightly_asset, row_count, short_key, table_result
from assets.erasure.locations import parse, shown_location
from assets.erasure.retention import apply_retention
from assets.erasure.verifier import STATUSES, build_register
from assets.landing.assets import EXPORT_KEYS
from assets.purge.assets import PURGE_LOG
from pipelines.partitions import partition_day
from pipelines.resources import ComplianceSettings, Warehouse

RAW_RETENTION = dg.AssetKey(["erasure", "raw_retention"])
ERASURE_REGISTER = dg.AssetKey(["erasure", "erasure_register"])


@nightly_asset(RAW_RETENTION, deps=[PURGE_LOG], table="ops.retention_log")
def raw_retention(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: ComplianceSettings):
    """Delete ingested inbox day folders and export files older than the retention period."""
    day = partition_day(context)
    with warehouse.get_connection() as con:
        result = apply_retention(con, settings.inbox_path, day, settings.retention_days, context.log)
        total = row_count(con, "ops.retention_log")
    context.log.info(
        f"{day}: retention of {settings.retention_days} day(s) deleted {len(result.deleted)} path(s); "
        f"kept {len(result.kept_unsafe)} folder(s) holding files never ingested"
    )
    rows = [(d.kind, d.shown) for d in result.deleted[:50]]
    return table_result(
        total,
        ["kind", "path"],
        rows or [("(none)", "")],
        retention_days=settings.retention_days,
        deleted_today=len(result.deleted),
        kept_not_ingested=len(result.kept_unsafe),
    )


@nightly_asset(ERASURE_REGISTER, deps=[RAW_RETENTION, ACCOUNTS, EXPORT_KEYS], table="compliance.erasure_register")
def erasure_register(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: ComplianceSettings):
    """Verify every erased subject's data is gone everywhere and track the one-month SLA."""
    day = partition_day(context)
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
            # compliance.erasure_remediation: the export rows behind the systems' locations
            "remediation_rows": result.remediation_rows,
            "preview": md,
        }
    )
