"""The nightly compliance report asset: `<reports>/<D>/`, reports.daily_summary and ops.runs."""

import dagster as dg

from assets.compliance.violations import VIOLATIONS
from assets.core.accounts import ACCOUNTS
from assets.core.consent import CONSENT_HISTORY
from assets.core.membership import CLUB_MEMBERSHIP
from assets.defaults import markdown_table, nightly_asset
from assets.erasure.assets import ERASURE_REGISTER
from assets.landing.assets import FILES
from assets.reports.publish import MANIFEST_FILE, REPORT_FILES, publish_report
from pipelines.partitions import partition_day
from pipelines.resources import ComplianceSettings, Warehouse

REPORT = dg.AssetKey(["reports", "compliance_report"])

UPSTREAM = [VIOLATIONS, ERASURE_REGISTER, ACCOUNTS, CONSENT_HISTORY, CLUB_MEMBERSHIP, FILES]

#: The report reads the day's ops.check_results, so every check of its upstream assets must have
#: run first. The in-process executor starts the ready step with the highest dagster/priority
#: (default 0); at the lowest priority the report waits until no other step is ready, i.e. until
#: every check of every upstream asset has run (tests/reports/test_report.py verifies it).
REPORT_PRIORITY = -100


@nightly_asset(
    REPORT,
    deps=UPSTREAM,
    table="reports.daily_summary",
    op_tags={"dagster/priority": str(REPORT_PRIORITY)},
)
def compliance_report(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: ComplianceSettings):
    """Publish the day's report: self-contained HTML, summary.json, CSVs, remediation lists and a SHA-256 manifest."""
    day = partition_day(context)
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
            "remediation_files": len(data.remediation),
            "status": data.status,
            "folder": dg.MetadataValue.path(str(published.folder)),
            "files": dg.MetadataValue.md(
                markdown_table(["file", "sha256"], [(f, published.digests[f][:16] + "…") for f in REPORT_FILES])
                + f"\nManifest: {MANIFEST_FILE}\n"
            ),
            # The chain's newest link, kept outside the archive: `verify-archive` prints it to compare.
            "manifest_sha256": published.manifest_sha256,
            "manifest_links_to": str(published.previous_day or "none: the first day of the archive"),
            "preview": dg.MetadataValue.md(markdown_table(["figure", "value"], figures)),
        }
    )
