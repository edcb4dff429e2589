"""Schema migrations: numbered upgrades that bring a warehouse made by older code to schema.sql.

A migration is a file `NNNN_what_it_does.sql` (statements) or `NNNN_what_it_does.py` (a module with
`migrate(con)`, and optionally `prepare(con)`) in this folder. When the warehouse is opened for
writing, schema.sql is applied first (it creates any missing table at its current layout), then
every migration not yet listed in `ops.schema_migrations` runs, in number order, each in its own
transaction together with the row that records it. So each one runs once per warehouse, and a
failed one leaves nothing behind and runs again next time. One DuckDB transaction writes one
database file: a migration that must also write the identity vault does it in `prepare(con)`, run
before the transaction, idempotently.

Migrations must be idempotent: on a new warehouse schema.sql already made the current layout, and
the migration finds nothing to do. A migration is never edited once released; a further change is
a new file with the next number.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.warehouse.transaction import transaction

log = logging.getLogger(__name__)

FOLDER = Path(__file__).parent
_FILE = re.compile(r"^(\d{4})_(\w+)\.(sql|py)$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """A module migration's `prepare(con)`, if it has one (outside the migration's transaction)."""
        if self.path.suffix == ".py":
            prepare = getattr(importlib.import_module(f"{__name__}.{self.path.stem}"), "prepare", None)
            if prepare is not None:
                prepare(con)

    def run(self, con: duckdb.DuckDBPyConnection) -> None:
        if self.path.suffix == ".sql":
            con.execute(self.path.read_text(encoding="utf-8"))
        else:
            importlib.import_module(f"{__name__}.{self.path.stem}").migrate(con)


def available() -> list[Migration]:
    """The migrations in this folder, in number order (numbers are unique)."""
    found = []
    for path in FOLDER.iterdir():
        m = _FILE.match(path.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), path))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two schema migrations share a number: {versions}")
    return found


def applied(con: duckdb.DuckDBPyConnection) -> set[int]:
    return {r[0] for r in con.execute("SELECT version FROM ops.schema_migrations").fetchall()}


def apply_pending(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Run the migrations this warehouse has not had, in order; returns their numbers."""
    done = applied(con)
    ran = []
    for migration in available():
        if migration.version in done:
            continue
        migration.prepare(con)
        with transaction(con):
            migration.run(con)
            con.execute(
                "INSERT INTO ops.schema_migrations VALUES (?, ?, current_timestamp)",
                [migration.version, migration.name],
            )
        log.info("Applied schema migration %04d_%s", migration.version, migration.name)
        ran.append(migration.version)
    return ran
