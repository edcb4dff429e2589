"""core.consent_history: every consent event as of the end of D, a history never overwritten in place."""

from datetime import date

import dagster as dg
import duckdb

from assets.core.as_of import EVENT_ORDER, build_table
from assets.core.changed import merge
from assets.defaults import nightly_asset, table_result
from assets.landing.assets import EVENTS
from assets.purge.assets import PURGE_LOG
from pipelines.partitions import partition_day
from pipelines.resources import Warehouse

CONSENT_HISTORY = dg.AssetKey(["core", "consent_history"])

# keyed.events.consent_granted holds each consent event's value, set at ingestion:
#   "Marketing Consent Granted" -> true, "Marketing Consent Withdrawn" -> false,
#   "Segment Consent Preference Updated" -> true only when a categoryPreferences key matching
#   "marketing" (case-insensitive) is true; false, or the key missing, withdraws (Segment semantics).
# consent_seq numbers a subject's consent events in time order (ties: ingestion order), so "the
# latest consent event at or before t" is arg_max(granted, consent_seq) over rows with occurred_at <= t.
CONSENT_HISTORY_SQL = f"""
SELECT subject_key,
       occurred_at,
       consent_granted AS granted,
       CASE WHEN json_type(properties, '$.source') = 'VARCHAR' THEN properties->>'$.source' END AS source,
       CASE WHEN json_type(properties, '$.notice_version') IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE')
            THEN properties->>'$.notice_version' END AS notice_version,
       message_id,
       event,
       channel,
       row_number() OVER (PARTITION BY subject_key ORDER BY {EVENT_ORDER}) AS consent_seq,
       arrival_date,
       source_file,
       line_number
FROM {{events}}
WHERE consent_granted IS NOT NULL
ORDER BY subject_key, consent_seq
"""


PREVIEW_SQL = """
SELECT event, granted, count(*) AS events, count(*) FILTER (WHERE occurred_at >= as_of.start_of_day) AS occurred_on_day
FROM keyed.consent_history, as_of
GROUP BY event, granted ORDER BY event, granted
"""


def build_consent_history(con: duckdb.DuckDBPyConnection, day: date) -> int | None:
    """Merge keyed.consent_history to the end of `day`; the number of subjects recomputed (None: all)."""
    return merge(con, "keyed.consent_history", day, CONSENT_HISTORY_SQL)


@nightly_asset(CONSENT_HISTORY, deps=[EVENTS, PURGE_LOG], table="core.consent_history", pii="account_id")
def consent_history(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Every marketing consent event (grant, withdrawal, Segment preference) as of the end of D, in time order."""
    day = partition_day(context)
    total, by_event, recomputed = build_table(
        warehouse, day, build_consent_history, "keyed.consent_history", PREVIEW_SQL
    )
    return table_result(total, ["event", "granted", "events", "occurred on D"], by_event, **recomputed)
