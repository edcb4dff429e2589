"""The relations every core and compliance query reads: what is known as of the end of day D.

"As of end of D" (CONTRACT 5a, docs/architecture.md) means events that arrived on or before D and
occurred at or before local midnight closing D. These TEMP views (per connection) hold that
boundary in one place, so the derived tables and the rules all see the same day:

- ``as_of(day, start_of_day, end_of_day)``: one row, the partition day and the instants that open
  and close it;
- ``known_events``: the keyed history of events (keyed.events, the contract's landing.events
  without the vault's identifiers) as of the end of D;
- ``deletions(subject_key, deleted_at)``: each subject's first accepted "Account Deleted" as of
  the end of D (a subject in it is erased: CONTRACT 5);
- macro ``end_of_local_day(d)``: the instant that closes the Prague calendar day ``d``.

Ties at one instant are broken by ingestion order ``(arrival_date, source_file, line_number)``:
``EVENT_ORDER`` is that ordering, for windows and ``arg_max``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import duckdb

from assets.defaults import row_count
from pipelines.clock import end_of_day, start_of_day
from pipelines.resources import Warehouse

#: Total order of events of one subject: time first, then ingestion order.
EVENT_ORDER = "occurred_at, arrival_date, source_file, line_number"
EVENT_ORDER_DESC = "occurred_at DESC, arrival_date DESC, source_file DESC, line_number DESC"


def install_as_of_views(con: duckdb.DuckDBPyConnection, day: date) -> None:
    """Create the TEMP views of the module docstring for day `day` on this connection."""
    # Literals built from a date / an aware datetime we computed: no input reaches this SQL.
    day_sql = f"DATE '{day.isoformat()}'"
    start_sql = f"TIMESTAMPTZ '{start_of_day(day).isoformat()}'"
    end_sql = f"TIMESTAMPTZ '{end_of_day(day).isoformat()}'"
    con.execute(
        "CREATE OR REPLACE TEMP MACRO end_of_local_day(d) AS timezone('Europe/Prague', (d::DATE + 1)::TIMESTAMP)"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW as_of AS "
        f"SELECT {day_sql} AS day, {start_sql} AS start_of_day, {end_sql} AS end_of_day"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW known_events AS
        SELECT * FROM keyed.events
        WHERE arrival_date <= {day_sql} AND occurred_at <= {end_sql}
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP VIEW deletions AS
        SELECT subject_key, min(occurred_at) AS deleted_at
        FROM known_events
        WHERE event = 'Account Deleted'
        GROUP BY subject_key
        """
    )


def build_table(
    warehouse: Warehouse,
    day: date,
    build: Callable[[duckdb.DuckDBPyConnection, date], int | None],
    table: str,
    preview_sql: str,
) -> tuple[int, list[tuple], dict[str, int | str]]:
    """Bring a core table to the end of `day` (`build`, which merges it: ``changed.py``): its row
    count, the rows of its preview, and the metadata saying how many subjects were recomputed."""
    with warehouse.get_connection() as con:
        changed = build(con, day)
        recomputed = {"subjects_recomputed": "all" if changed is None else changed}
        return row_count(con, table), con.execute(preview_sql).fetchall(), recomputed
