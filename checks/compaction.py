"""Checks of the compaction area: after the night's last writer, no erased identifier is left in the warehouse
or its identity vault."""

from assets.compaction.assets import WAREHOUSE_COMPACTION
from assets.purge.columns import text_columns
from assets.purge.scan import hit_summary, scan_warehouse
from assets.purge.state import load_state
from checks.nightly import ERROR, CheckRun, Verdict, nightly_check


@nightly_check(WAREHOUSE_COMPACTION, severity=ERROR, blocking=True)
def erased_subjects_fully_purged(run: CheckRun) -> Verdict:
    """No text column of any table of the warehouse or its identity vault holds an erased subject's identifier."""
    erased = load_state(run.con, run.day)
    subjects = scan_warehouse(run.con)
    hits = hit_summary(run.con)
    columns = len(text_columns(run.con))
    return Verdict(
        passed=subjects == 0,
        description="Erased subjects' identifiers are absent from every table of the warehouse and the vault",
        details=f"{subjects} of {erased} erased subject(s) still found in {len(hits)} column(s)",
        metadata={
            "erased_subjects": erased,
            "columns_scanned": columns,
            "subjects_found": subjects,
            **{f"found_in/{t}.{c}": n for t, c, n in hits},
        },
    )
