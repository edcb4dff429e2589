"""Definition-time column schemas (`dagster/column_schema`), derived from the warehouse DDL.

The DDL is the single source of the tables' columns: the contract schema in pipelines.warehouse and
the tables a module adds next to it. Trailing `-- comments` become the column descriptions.
"""

import re
from functools import cache

import dagster as dg

from assets.erasure.state import ERASURE_DDL
from assets.reports.summary import DAILY_SUMMARY_DDL
from checks.results import EXPECTATIONS_DDL
from pipelines.warehouse import SCHEMA_SQL

_DDL = (SCHEMA_SQL, ERASURE_DDL, DAILY_SUMMARY_DDL, EXPECTATIONS_DDL)
_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+\.\w+) \((.*?)\n\);?", re.S)
_COLUMN = re.compile(r"^\s*(\w+)\s+([A-Z]+)([^,\n-]*)(?:,)?\s*(?:--\s*(.*))?$")


@cache
def _tables() -> dict[str, dg.TableSchema]:
    tables = {}
    for name, body in (m for ddl in _DDL for m in _TABLE.findall(ddl)):
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
