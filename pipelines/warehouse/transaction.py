"""One DuckDB transaction as a context manager: committed when the block ends, rolled back when it
raises anything (a KeyboardInterrupt or a test's simulated kill included), and the error re-raised.

One DuckDB transaction writes one database file: a block must not write both the warehouse and
its identity vault.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
