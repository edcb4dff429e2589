"""The warehouse's text columns and keyed tables, found in ``information_schema`` (so a table added
tomorrow cannot escape the scan or the purge), and the SQL that reads a column's values."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from assets.purge.state import EXEMPT_TABLES


@dataclass(frozen=True)
class TextColumn:
    schema: str
    table: str
    column: str
    data_type: str
    nullable: bool

    @property
    def table_name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def sql_table(self) -> str:
        return f"{quote(self.schema)}.{quote(self.table)}"

    @property
    def sql_column(self) -> str:
        return quote(self.column)


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def text_columns(con: duckdb.DuckDBPyConnection, *, include_exempt: bool = False) -> list[TextColumn]:
    """Every VARCHAR/JSON (or VARCHAR-bearing) column of every base table of the warehouse file."""
    rows = con.execute(
        """
        SELECT c.table_schema, c.table_name, c.column_name, c.data_type, c.is_nullable = 'YES'
        FROM information_schema.columns c
        JOIN information_schema.tables t
          ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema
         AND t.table_name = c.table_name
        WHERE t.table_type = 'BASE TABLE' AND c.table_catalog = current_database()
          AND (c.data_type LIKE '%VARCHAR%' OR c.data_type LIKE '%JSON%')
        ORDER BY c.table_schema, c.table_name, c.ordinal_position
        """
    ).fetchall()
    return [TextColumn(*r) for r in rows if include_exempt or (r[0], r[1]) not in EXEMPT_TABLES]


def tables_with_columns(con: duckdb.DuckDBPyConnection, *columns: str) -> list[tuple[str, str]]:
    """Base tables of the warehouse file that have all of `columns` (from information_schema)."""
    rows = con.execute(
        """
        SELECT c.table_schema, c.table_name
        FROM information_schema.columns c
        JOIN information_schema.tables t
          ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema
         AND t.table_name = c.table_name
        WHERE t.table_type = 'BASE TABLE' AND c.table_catalog = current_database()
          AND c.column_name IN (SELECT unnest($columns::VARCHAR[]))
        GROUP BY ALL
        HAVING count(DISTINCT c.column_name) = len($columns::VARCHAR[])
        ORDER BY ALL
        """,
        {"columns": list(columns)},
    ).fetchall()
    return [(s, t) for s, t in rows if (s, t) not in EXEMPT_TABLES]


def column_values(col: TextColumn) -> str:
    """v: every non-NULL value of the column as text, one row per row."""
    return f"(SELECT {col.sql_column}::VARCHAR AS v FROM {col.sql_table} WHERE {col.sql_column} IS NOT NULL)"
