"""Erasure checks: the warehouse holds no erased identifier (blocking); downstream residuals (warning)."""

import dagster as dg

from assets.common import POOL, day_of
from assets.erasure.assets import ERASURE_REGISTER, WAREHOUSE_COMPACTION
from assets.erasure.locations import split_sql
from assets.erasure.scan import hit_summary, scan_warehouse, text_columns
from assets.erasure.state import load_state
from checks.results import ERROR, WARN, check_result
from pipelines.partitions import nightly_partitions
from pipelines.resources import Warehouse


@dg.asset_check(
    asset=WAREHOUSE_COMPACTION,
    name="erased_subjects_fully_purged",
    blocking=True,
    pool=POOL,
    partitions_def=nightly_partitions,
)
def erased_subjects_fully_purged(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    """No text column of any warehouse table holds an identifier of an erased subject."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        erased = load_state(con, day)
        subjects = scan_warehouse(con)
        hits = hit_summary(con)
        columns = len(text_columns(con))
        return check_result(
            context,
            con,
            run_date=day,
            severity=ERROR,
            passed=subjects == 0,
            evaluated=1,
            failed=int(subjects > 0),
            description="Erased subjects' identifiers are absent from every warehouse table",
            details=f"{subjects} of {erased} erased subject(s) still found in {len(hits)} column(s)",
            metadata={
                "erased_subjects": erased,
                "columns_scanned": columns,
                "subjects_found": subjects,
                **{f"found_in/{t}.{c}": n for t, c, n in hits},
            },
        )


@dg.asset_check(
    asset=ERASURE_REGISTER,
    name="erased_subjects_clean_downstream",
    blocking=False,
    pool=POOL,
    partitions_def=nightly_partitions,
)
def erased_subjects_clean_downstream(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    """No erased subject's identifiers remain in retained inbox files or in the latest system exports."""
    day = day_of(context)
    with warehouse.get_connection() as con:
        total, downstream, *by_status = con.execute(
            f"""
            SELECT count(*),
                   count(*) FILTER (WHERE len(list_filter({split_sql("residual_locations")},
                                                          lambda loc: loc <> 'warehouse')) > 0),
                   count(*) FILTER (WHERE status = 'verified'),
                   count(*) FILTER (WHERE status = 'pending'),
                   count(*) FILTER (WHERE status = 'overdue')
            FROM compliance.erasure_register
            """
        ).fetchall()[0]
        return check_result(
            context,
            con,
            run_date=day,
            severity=WARN,
            passed=downstream == 0,
            evaluated=1,
            failed=int(downstream > 0),
            description="Erased subjects are gone from retained inbox files and downstream exports",
            details=f"{downstream} of {total} erased subject(s) still found outside the warehouse",
            metadata={
                "erased_subjects": total,
                "verified": by_status[0],
                "pending": by_status[1],
                "overdue": by_status[2],
                "found_downstream": downstream,
            },
        )
