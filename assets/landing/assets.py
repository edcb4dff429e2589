"""Landing assets: the arrival day's events and the downstream exports, validated and keyed."""

import dagster as dg

from assets.defaults import markdown_table, nightly_asset, nightly_multi_asset, nightly_spec, row_count, table_result
from assets.landing.exports import ingest_exports, shown
from assets.landing.ingest import ingest_day
from pipelines.partitions import partition_day
from pipelines.resources import ComplianceSettings, Warehouse
from pipelines.safe_text import file_label

EVENTS = dg.AssetKey(["landing", "events"])
REJECTED = dg.AssetKey(["landing", "rejected"])
FILES = dg.AssetKey(["landing", "files"])
EXPORT_KEYS = dg.AssetKey(["landing", "export_keys"])


@nightly_multi_asset(
    name="ingest_arrival_day",
    specs=[
        nightly_spec(
            EVENTS,
            table="landing.events",
            description="Accepted events: contract-valid lines, one per messageId, keyed by subject_key.",
            pii="yes",
        ),
        nightly_spec(
            REJECTED,
            table="landing.rejected",
            description="Rejected lines with file, line number and the first contract rule they broke.",
            pii="yes",
        ),
        nightly_spec(
            FILES,
            table="landing.files",
            description="Per-file reconciliation: received = accepted + duplicates + rejected.",
        ),
    ],
)
def ingest_arrival_day(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: ComplianceSettings):
    """Validate and load the arrival day's event files (CONTRACT 2.1) set-based in DuckDB."""
    day = partition_day(context)
    with warehouse.get_connection() as con:
        result = ingest_day(con, settings.inbox_path, day)
        events_total = row_count(con, "keyed.events")
        rejected_total = row_count(con, "keyed.rejected")
        reasons = con.execute(
            """SELECT reason, count(*) FROM keyed.rejected WHERE arrival_date = ?
               GROUP BY reason ORDER BY count(*) DESC, reason LIMIT 20""",
            [day],
        ).fetchall()
    files_md = markdown_table(
        ["file", "received", "accepted", "duplicates", "rejected"],
        # a file's name may carry anything (an e-mail, a name): shown only if machine-made (safe_text)
        [(file_label(f.source_file), f.received, f.accepted, f.duplicates, f.rejected) for f in result.files],
    )
    context.log.info(
        f"{day}: {result.status}; received={result.received} accepted={result.accepted} "
        f"duplicates={result.duplicates} rejected={result.rejected} in {len(result.files)} file(s)"
    )
    yield dg.MaterializeResult(
        asset_key=EVENTS,
        metadata={
            "dagster/row_count": events_total,
            "status": result.status,
            "accepted_today": result.accepted,
            "duplicates_today": result.duplicates,
            "preview": dg.MetadataValue.md(files_md),
        },
    )
    yield dg.MaterializeResult(
        asset_key=REJECTED,
        metadata={
            "dagster/row_count": rejected_total,
            "rejected_today": result.rejected,
            "preview": dg.MetadataValue.md(markdown_table(["reason", "lines"], reasons)),
        },
    )
    yield dg.MaterializeResult(
        asset_key=FILES,
        metadata={"dagster/row_count": len(result.files), "received_today": result.received},
    )


@nightly_asset(EXPORT_KEYS, table="landing.export_keys")
def export_keys(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: ComplianceSettings):
    """Keys of each system's latest export at or before the day; plain identifiers are never stored."""
    day = partition_day(context)
    with warehouse.get_connection() as con:
        results = ingest_exports(con, settings.inbox_path, day)
        total = row_count(con, "landing.export_keys")
    # A system's name may carry anything: metadata shows it only if it is a plain identifier.
    rows = [(shown(r.system), r.export_date, r.status, r.rows_total, r.rows_keyed, r.problem or "") for r in results]
    return table_result(total, ["system", "export_date", "status", "rows", "keyed", "problem"], rows)
