"""core.accounts: the non-erased accounts created by the end of D, with their status and e-mail key."""

from datetime import date

import dagster as dg
import duckdb

from assets.core.as_of import EVENT_ORDER_DESC, build_table
from assets.core.changed import merge
from assets.defaults import nightly_asset, table_result
from assets.landing.assets import EVENTS
from assets.purge.assets import PURGE_LOG
from pipelines.partitions import partition_day
from pipelines.resources import Warehouse

ACCOUNTS = dg.AssetKey(["core", "accounts"])
#: The erasure helper's purge runs first: erased subjects reach core with their identifiers removed.

#: The non-erased accounts among the subjects of `{events}` (assets/core/changed.py).
ACCOUNTS_SQL = f"""
WITH created AS (
    SELECT subject_key, min(occurred_at) AS created_at
    FROM {{events}}
    WHERE event = 'Account Created'
    GROUP BY subject_key
), current_email AS (
    -- the e-mail the account holds now: its latest "Account Created" / "Email Changed"
    SELECT subject_key, email_key
    FROM {{events}}
    WHERE event IN ('Account Created', 'Email Changed') AND email_key IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY subject_key ORDER BY {EVENT_ORDER_DESC}) = 1
), deletion_requests AS (
    SELECT subject_key, min(occurred_at) AS deletion_requested_at
    FROM {{events}}
    WHERE event = 'Account Deletion Requested'
    GROUP BY subject_key
)
SELECT c.subject_key,
       c.created_at,
       CASE WHEN r.subject_key IS NULL THEN 'active' ELSE 'deletion_requested' END AS status,
       m.email_key,
       r.deletion_requested_at
FROM created c
LEFT JOIN current_email m USING (subject_key)
LEFT JOIN deletion_requests r USING (subject_key)
WHERE c.subject_key NOT IN (SELECT subject_key FROM {{deletions}})   -- erased subjects are not accounts
ORDER BY c.created_at, c.subject_key
"""


PREVIEW_SQL = """
SELECT status, count(*) AS accounts, count(*) FILTER (WHERE created_at >= as_of.start_of_day) AS created_on_day
FROM keyed.accounts, as_of
GROUP BY status ORDER BY status
"""


def build_accounts(con: duckdb.DuckDBPyConnection, day: date) -> int | None:
    """Merge keyed.accounts to the end of `day`; the number of subjects recomputed (None: all)."""
    return merge(con, "keyed.accounts", day, ACCOUNTS_SQL)


@nightly_asset(ACCOUNTS, deps=[EVENTS, PURGE_LOG], table="core.accounts", pii="account_id")
def accounts(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Non-erased accounts created by the end of D: status (active | deletion_requested) and current e-mail key."""
    day = partition_day(context)
    total, by_status, recomputed = build_table(warehouse, day, build_accounts, "keyed.accounts", PREVIEW_SQL)
    context.log.info(f"{day}: {total} non-erased accounts")
    return table_result(total, ["status", "accounts", "created on D"], by_status, **recomputed)
