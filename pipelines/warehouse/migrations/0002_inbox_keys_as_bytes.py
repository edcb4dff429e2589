"""ops.inbox_keys.key as the 32 bytes of the key (BLOB), not 64-character hex text.

The hex text was read by the residual scan (and grouped, twice a night: millions of keys at 1M
accounts), though a key is never an identifier. The table is a cache of the retained inbox folders:
drop it and forget the folders' scans, and the next scan of the inbox rebuilds it with the keys'
bytes.
"""

import duckdb


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    old = con.execute(
        """SELECT count(*) FROM information_schema.columns
           WHERE table_catalog = current_database() AND table_schema = 'ops' AND table_name = 'inbox_keys'
             AND column_name = 'key' AND data_type = 'VARCHAR'"""
    ).fetchall()[0][0]
    if not old:
        return
    con.execute("DROP TABLE ops.inbox_keys")
    con.execute(
        """CREATE TABLE ops.inbox_keys (
               folder  VARCHAR NOT NULL,
               kind    VARCHAR NOT NULL,
               key     BLOB NOT NULL
           )"""
    )
    con.execute("DELETE FROM ops.inbox_scans")
