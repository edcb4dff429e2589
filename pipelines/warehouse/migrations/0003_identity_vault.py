"""Pseudonymous history: the plain identifiers of a warehouse made before the identity vault move
into the vault, the history keeps keys, and the contract's tables become views (views.sql).

Before: ``landing.events``, ``landing.rejected``, ``core.*`` and ``compliance.violations`` were
tables holding ``account_id`` (and the events' personal properties, the rejected lines' text).
After: their rows are in ``keyed.*`` without them; ``vault.accounts``, ``vault.event_properties``
and ``vault.quarantine`` hold the identifiers; the old tables are dropped. The old file's free
blocks still hold the identifiers' bytes, so a compaction of the warehouse is requested: the
night's compaction step copies it into a fresh file.

One DuckDB transaction writes one database file: ``prepare`` fills the vault first in its own
transaction (idempotent: it adds only what is not there), ``migrate`` moves the history in the
migration's transaction. A kill in between leaves the old tables in place and the vault filled;
the next open runs both again.
"""

import duckdb

from pipelines.warehouse.transaction import transaction

#: The personal properties as they were when this migration was written (assets/landing/contract.py);
#: a migration keeps its own copy, so that it does the same thing whatever the code becomes.
PERSONAL_PROPERTIES = ("email", "previous_email", "first_name", "last_name", "street", "city", "postal_code", "country")

_OLD_TABLES = (
    ("landing", "events"),
    ("landing", "rejected"),
    ("core", "accounts"),
    ("core", "consent_history"),
    ("core", "club_membership"),
    ("compliance", "violations"),
)
_PATHS = "[" + ", ".join(f"'$.{p}'" for p in PERSONAL_PROPERTIES) + "]"
_HAS_PERSONAL = f"coalesce(list_bool_or(json_exists(properties, {_PATHS})), false)"
_WITHOUT_PERSONAL = "properties"
for _prop in PERSONAL_PROPERTIES:
    _WITHOUT_PERSONAL = f"json_remove({_WITHOUT_PERSONAL}, '$.{_prop}')"


def _is_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            """SELECT count(*) FROM duckdb_tables()
               WHERE database_name = current_database() AND schema_name = ? AND table_name = ?""",
            [schema, table],
        ).fetchall()[0][0]
    )


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Copy the old tables' plain identifiers into the vault (its own transaction)."""
    if not _is_table(con, "landing", "events"):
        return
    with transaction(con):
        con.execute(
            """
            INSERT INTO vault.accounts
            SELECT subject_key, any_value(account_id) FROM (
                SELECT subject_key, account_id FROM landing.events WHERE account_id IS NOT NULL
                UNION ALL
                SELECT subject_key, account_id FROM landing.rejected
                WHERE account_id IS NOT NULL AND subject_key IS NOT NULL
            )
            WHERE subject_key NOT IN (SELECT subject_key FROM vault.accounts)
            GROUP BY subject_key
            """
        )
        con.execute(
            f"""
            INSERT INTO vault.event_properties
            SELECT message_id, subject_key, email_key, previous_email_key, properties FROM landing.events
            WHERE {_HAS_PERSONAL} AND message_id NOT IN (SELECT message_id FROM vault.event_properties)
            """
        )
        con.execute(
            """
            INSERT INTO vault.quarantine (arrival_date, source_file, line_number, subject_key, raw_line, purged)
            SELECT r.arrival_date, r.source_file, r.line_number, r.subject_key, r.raw_line, r.purged
            FROM landing.rejected r
            WHERE (r.raw_line IS NOT NULL OR r.purged)
              AND NOT EXISTS (SELECT 1 FROM vault.quarantine q
                              WHERE q.arrival_date = r.arrival_date AND q.source_file = r.source_file
                                AND q.line_number = r.line_number)
            """
        )


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    for table in ("compaction_due", "compactions"):
        con.execute(f"ALTER TABLE ops.{table} ADD COLUMN IF NOT EXISTS database VARCHAR DEFAULT 'warehouse'")
    # The inbox key cache counts each key's lines now (the redaction reads only the lines it must):
    # forget the folders' scans, and the next scan of the inbox rebuilds it.
    con.execute("ALTER TABLE ops.inbox_keys ADD COLUMN IF NOT EXISTS lines BIGINT")
    con.execute("DELETE FROM ops.inbox_keys")
    con.execute("DELETE FROM ops.inbox_scans")
    if not _is_table(con, "landing", "events"):
        return
    con.execute("DELETE FROM keyed.events")
    con.execute(
        f"""
        INSERT INTO keyed.events
        SELECT message_id, event, subject_key, occurred_at, channel, agent_id,
               CASE WHEN {_HAS_PERSONAL} THEN {_WITHOUT_PERSONAL} ELSE properties END,
               consent_granted, email_key, previous_email_key, source_file, line_number, arrival_date
        FROM landing.events ORDER BY arrival_date, source_file, line_number
        """
    )
    con.execute("DELETE FROM keyed.rejected")
    con.execute(
        """
        INSERT INTO keyed.rejected
        SELECT source_file, line_number, reason, arrival_date, subject_key, message_id FROM landing.rejected
        ORDER BY arrival_date, source_file, line_number
        """
    )
    for old, new in (
        ("core.accounts", "keyed.accounts"),
        ("core.consent_history", "keyed.consent_history"),
        ("core.club_membership", "keyed.club_membership"),
        ("compliance.violations", "keyed.violations"),
    ):
        schema, table = old.split(".")
        if not _is_table(con, schema, table):
            continue
        columns = [
            c
            for (c,) in con.execute(
                """SELECT column_name FROM duckdb_columns()
                   WHERE database_name = current_database() AND schema_name = 'keyed' AND table_name = ?
                   ORDER BY column_index""",
                [new.split(".")[1]],
            ).fetchall()
        ]
        listed = ", ".join(f'"{c}"' for c in columns)
        con.execute(f"DELETE FROM {new}")
        con.execute(f"INSERT INTO {new} ({listed}) SELECT {listed} FROM {old}")
    for schema, table in _OLD_TABLES:
        if _is_table(con, schema, table):
            con.execute(f"DROP TABLE {schema}.{table}")
    # The identifiers' bytes stay in the old file's free blocks until it is copied into a fresh one.
    con.execute(
        """INSERT INTO ops.compaction_due (run_date, requested_at, database)
           SELECT coalesce(min(arrival_date), current_date), now(), 'warehouse' FROM keyed.events"""
    )
