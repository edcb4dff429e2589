"""Definition-time column schemas (`dagster/column_schema`), derived from the warehouse DDL.

The DDL is the single source of the tables' columns: every persistent table is declared in
pipelines/warehouse/schema.sql. Trailing `-- comments` become the column descriptions.
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


def column_schema(table: str) -> dict[str, dg.TableSchema]:
    """Metadata entry for an asset spec: {"dagster/column_schema": <schema of table>}."""
    return {"dagster/column_schema": _tables()[table]}


def tables() -> list[str]:
    return sorted(_tables())
