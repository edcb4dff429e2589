"""The nightly compliance report asset: `<reports>/<D>/`, reports.daily_summary and ops.runs."""

import dagster as dg

from assets.common import KINDS, OWNERS, POOL, day_of, markdown_table
from assets.reports.publish import MANIFEST_FILE, REPORT_FILES, publish_report
from assets.schemas import column_schema
from pipelines.partitions import nightly_partitions
from pipelines.resources import ComplianceSettings, Warehouse

REPORT = dg.AssetKey(["reports", "compliance_report"])

UPSTREAM = [
    dg.AssetKey(["compliance", "violations"]),
    dg.AssetKey(["compliance", "erasure_register"]),
    dg.AssetKey(["core", "accounts"]),
    dg.AssetKey(["core", "consent_history"]),
    dg.AssetKey(["core", "club_membership"]),
    dg.AssetKey(["landing", "files"]),
]

#: The report reads the day's ops.check_results, so every check of its upstream assets must have
#: run first. The in-process executor starts the ready step with the highest dagster/priority
#: (default 0); at the lowest priority the report waits until no other step is ready, i.e. until
#: every check of every upstream asset has run (tests/test_report.py verifies it).
REPORT_PRIORITY = -100


@dg.asset(
    key=REPORT,
    deps=UPSTREAM,
    group_name="reports",
    kinds=KINDS,
    owners=OWNERS,
    tags={"layer": "reports", "pii": "no"},
    metadata=column_schema("reports.daily_summary"),
    op_tags={"dagster/priority": str(REPORT_PRIORITY)},
    partitions_def=nightly_partitions,
    pool=POOL,
)
def compliance_report(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: ComplianceSettings):
    """Publish the day's compliance report: self-contained HTML, summary.json, two CSVs and a SHA-256 manifest."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        published = publish_report(con, settings.reports_path, day, run_id=context.run.run_id)
    data = published.data
    s = data.summary
    context.log.info(
        f"{day}: report published, status {data.status}; "
        f"{sum(v['new'] for v in s['violations'].values())} new violation(s), "
        f"{s['quality']['expectations_failed']} of {s['quality']['expectations_evaluated']} expectations failed"
    )
    figures = [
        ("status", data.status),
        ("accounts.active", s["accounts"]["active"]),
        ("club.members", s["club"]["members"]),
        ("erasure.erased_total", s["erasure"]["erased_total"]),
        ("erasure.overdue", s["erasure"]["overdue"]),
        ("violations.new", sum(v["new"] for v in s["violations"].values())),
        ("quality.received", s["quality"]["received"]),
        ("quality.expectations_failed", s["quality"]["expectations_failed"]),
    ]
    return dg.MaterializeResult(
        metadata={
            # Rows published in the two CSVs (violations detected by the day + erased subjects).
            "dagster/row_count": len(data.violations) + len(data.register),
            "violation_rows": len(data.violations),
            "register_rows": len(data.register),
            "status": data.status,
            "folder": dg.MetadataValue.path(str(published.folder)),
            "files": dg.MetadataValue.md(
                markdown_table(["file", "sha256"], [(f, published.digests[f][:16] + "…") for f in REPORT_FILES])
                + f"\nManifest: {MANIFEST_FILE}\n"
            ),
            "preview": dg.MetadataValue.md(markdown_table(["figure", "value"], figures)),
        }
    )
