"""Definition-time column schemas (`dagster/column_schema`), derived from the warehouse DDL.

The DDL is the single source of the tables' columns: every persistent table is declared in
pipelines/warehouse/schema.sql. Trailing `-- comments` become the column descriptions. A contract
table that is a view over the keyed history (views.sql) has its keyed table's columns and
`account_id`, resolved through the identity vault.
"""

import re
from functools import cache

import dagster as dg

from pipelines.warehouse import SCHEMA_SQL

_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+\.\w+) \((.*?)\n\);?", re.S)
_COLUMN = re.compile(r"^\s*(\w+)\s+([A-Z]+)([^,\n-]*)(?:,)?\s*(?:--\s*(.*))?$")


@cache
def _tables() -> dict[str, dg.TableSchema]:
    tables = {}
    for name, body in _TABLE.findall(SCHEMA_SQL):
        columns = []
        for line in body.splitlines():
            m = _COLUMN.match(line)
            if not m:
                continue
            col, type_, rest, comment = m.groups()
            constraints = dg.TableColumnConstraints(nullable="NOT NULL" not in rest)
            columns.append(dg.TableColumn(col, type_.lower(), description=comment or None, constraints=constraints))
        tables[name] = dg.TableSchema(columns=columns)
    return tables


#: Contract tables that are views (pipelines/warehouse/views.sql) -> the keyed table they read.
CONTRACT_VIEWS = {
    "landing.events": "keyed.events",
    "landing.rejected": "keyed.rejected",
    "core.accounts": "keyed.accounts",
    "core.consent_history": "keyed.consent_history",
    "core.club_membership": "keyed.club_membership",
    "compliance.violations": "keyed.violations",
}
_ACCOUNT_ID = dg.TableColumn(
    "account_id",
    "varchar",
    description="from the identity vault (vault.accounts); NULL once the subject is erased",
    constraints=dg.TableColumnConstraints(nullable=True),
)


def _schema(table: str) -> dg.TableSchema:
    if table not in CONTRACT_VIEWS:
        return _tables()[table]
    return dg.TableSchema(columns=[_ACCOUNT_ID, *_tables()[CONTRACT_VIEWS[table]].columns])


def column_schema(table: str) -> dict[str, dg.TableSchema]:
    """Metadata entry for an asset spec: {"dagster/column_schema": <schema of table>}."""
    return {"dagster/column_schema": _schema(table)}


def tables() -> list[str]:
    return sorted({*_tables(), *CONTRACT_VIEWS})
