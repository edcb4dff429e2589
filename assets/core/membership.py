"""core.club_membership: IQOS CLUB membership intervals, derived from the consent history."""

from datetime import date

import dagster as dg
import duckdb

from assets.core.as_of import EVENT_ORDER, build_table
from assets.core.changed import merge
from assets.core.consent import CONSENT_HISTORY
from assets.defaults import nightly_asset, table_result
from assets.landing.assets import EVENTS
from assets.purge.assets import PURGE_LOG
from pipelines.partitions import partition_day
from pipelines.resources import Warehouse

CLUB_MEMBERSHIP = dg.AssetKey(["core", "club_membership"])

#: The rule as compliance officers read it (POLICY.md "Derived facts"); the report shows it.
MEMBERSHIP_RULE = (
    "A CLUB member is an account that holds marketing consent and is not deleted. A grant opens a "
    "membership interval; withdrawing marketing consent closes it (end reason consent_withdrawn), and "
    "so does the deletion of the account (account_deleted). A grant while already a member and a "
    "withdrawal while not a member change nothing; a deletion request changes nothing."
)

# Membership at an instant = (latest consent value) AND NOT (deleted). A subject's consent events
# and deletions are walked in time order (ties: ingestion order); the state at an instant is the
# state after all of that instant's events. An interval opens where membership turns true and
# closes where it next turns false, so intervals are maximal, never empty and never overlap.
CLUB_MEMBERSHIP_SQL = f"""
WITH changes AS (
    SELECT subject_key, occurred_at, granted, false AS is_deletion, NULL AS deletion_message_id,
           message_id, arrival_date, source_file, line_number
    FROM {{consent}}
    UNION ALL
    SELECT subject_key, occurred_at, NULL AS granted, true AS is_deletion, message_id AS deletion_message_id,
           message_id, arrival_date, source_file, line_number
    FROM {{events}}
    WHERE event = 'Account Deleted'
), state AS (
    SELECT subject_key, occurred_at, message_id, arrival_date, source_file, line_number,
           coalesce(last_value(granted IGNORE NULLS) OVER so_far, false) AS consented,  -- no consent event: none
           bool_or(is_deletion) OVER so_far AS deleted,                               -- deletion ends it for good
           first_value(deletion_message_id IGNORE NULLS) OVER so_far AS deletion_message_id
    FROM changes
    WINDOW so_far AS (PARTITION BY subject_key ORDER BY {EVENT_ORDER} ROWS UNBOUNDED PRECEDING)
), at_instant AS (
    -- membership at an instant: the state after the last of its events
    SELECT subject_key, occurred_at, message_id, deleted, deletion_message_id,
           consented AND NOT deleted AS member
    FROM state
    QUALIFY row_number() OVER (
        PARTITION BY subject_key, occurred_at ORDER BY arrival_date DESC, source_file DESC, line_number DESC) = 1
), transitions AS (
    -- the instants where membership changes: alternately an opening (by a grant) and a closing
    SELECT *
    FROM at_instant
    QUALIFY member <> lag(member, 1, false) OVER (PARTITION BY subject_key ORDER BY occurred_at)
), intervals AS (
    SELECT subject_key,
           member AS opens,
           occurred_at AS valid_from,
           message_id AS opened_by_message_id,
           lead(occurred_at) OVER next_change AS valid_to,
           lead(CASE WHEN deleted THEN 'account_deleted' ELSE 'consent_withdrawn' END) OVER next_change
               AS end_reason,
           lead(CASE WHEN deleted THEN deletion_message_id ELSE message_id END) OVER next_change
               AS closed_by_message_id
    FROM transitions
    WINDOW next_change AS (PARTITION BY subject_key ORDER BY occurred_at)
)
SELECT i.subject_key, i.valid_from, i.valid_to, i.end_reason, i.opened_by_message_id, i.closed_by_message_id
FROM intervals i
WHERE i.opens
ORDER BY i.subject_key, i.valid_from
"""


PREVIEW_SQL = """
SELECT coalesce(end_reason, 'open (member at end of D)') AS state, count(*) AS intervals,
       count(*) FILTER (WHERE valid_from >= as_of.start_of_day) AS opened_on_day,
       count(*) FILTER (WHERE valid_to >= as_of.start_of_day) AS closed_on_day
FROM keyed.club_membership, as_of
GROUP BY ALL ORDER BY state
"""


def build_club_membership(con: duckdb.DuckDBPyConnection, day: date) -> int | None:
    """Merge keyed.club_membership to the end of `day` (keyed.consent_history must be as of `day`
    already); the number of subjects recomputed (None: all)."""
    return merge(con, "keyed.club_membership", day, CLUB_MEMBERSHIP_SQL)


@nightly_asset(
    CLUB_MEMBERSHIP,
    deps=[CONSENT_HISTORY, EVENTS, PURGE_LOG],
    table="core.club_membership",
    pii="account_id",
    metadata={"rule": MEMBERSHIP_RULE},
)
def club_membership(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """CLUB membership intervals: maximal runs of 'holds marketing consent and not deleted', as of the end of D."""
    day = partition_day(context)
    total, rows, recomputed = build_table(warehouse, day, build_club_membership, "keyed.club_membership", PREVIEW_SQL)
    members = sum(r[1] for r in rows if r[0].startswith("open"))
    return table_result(
        total, ["state", "intervals", "opened on D", "closed on D"], rows, members=members, **recomputed
    )
