"""The purge's counts of vault tables kept in the vault too (``vault.purge_counts``).

The purge logs what each transaction purged in that transaction (``assets/purge/purge.py``): a
transaction that writes the vault logs in ``vault.purge_counts``, and the purge copies the day's
rows of vault tables from there to ``compliance.purge_log``. A warehouse made before that has those
rows in ``compliance.purge_log`` only; they are copied into the vault first, so that a re-run of one
of its days keeps them. The vault is written in ``prepare`` (one DuckDB transaction writes one file),
idempotently: a day and table already in the vault is left as it is.
"""

import duckdb


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """INSERT INTO vault.purge_counts
           SELECT p.run_date, p.table_name, p.rows_purged, p.purged_at FROM compliance.purge_log p
           WHERE starts_with(p.table_name, 'vault.')
             AND NOT EXISTS (SELECT 1 FROM vault.purge_counts c
                             WHERE c.run_date = p.run_date AND c.table_name = p.table_name)"""
    )


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """The warehouse itself does not change: `prepare` copied the counts into the vault."""
