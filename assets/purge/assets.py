"""The purge: every plain identifier of the subjects erased by the end of the day leaves every copy."""

import dagster as dg

from assets.defaults import nightly_asset, row_count, table_result
from assets.landing.assets import EVENTS, EXPORT_KEYS, FILES, REJECTED
from assets.purge.inbox_redaction import redact_inbox
from assets.purge.purge import purge
from pipelines.partitions import partition_day
from pipelines.resources import ComplianceSettings, Warehouse

PURGE_LOG = dg.AssetKey(["purge", "purge_log"])


@nightly_asset(PURGE_LOG, deps=[EVENTS, REJECTED, FILES, EXPORT_KEYS], table="compliance.purge_log")
def purge_log(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: ComplianceSettings):
    """Purge every plain identifier of the subjects erased by the end of the day from every table and inbox file."""
    day = partition_day(context)
    with warehouse.get_connection() as con:
        result = purge(con, day)
        redacted = redact_inbox(con, settings.inbox_path, day)
        total = row_count(con, "compliance.purge_log")
    context.log.info(
        f"{day}: {result.erased_total} erased subject(s), {result.newly_erased} new; {result.rows_purged} row(s) "
        f"purged; {redacted.lines} inbox line(s) of {len(redacted.subjects)} subject(s) redacted in "
        f"{redacted.files} file(s)"
    )
    rows = sorted((t, n) for t, n in result.rows.items() if n)
    return table_result(
        total,
        ["table", "rows purged"],
        rows or [("(none)", 0)],
        erased_subjects=result.erased_total,
        newly_erased=result.newly_erased,
        rows_purged=result.rows_purged,
        inbox_files_redacted=redacted.files,
        inbox_lines_redacted=redacted.lines,
        inbox_lines_replaced_whole=redacted.whole_lines,
        **{f"rows_purged/{t}": n for t, n in rows},
    )
