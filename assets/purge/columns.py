"""The text columns and keyed tables of the warehouse and of its identity vault (attached as
``vault``), found in ``information_schema`` (so a table added tomorrow cannot escape the scan or the
purge), and the SQL that reads a column's values.

A table is named ``schema.table`` in the warehouse and ``vault.table`` in the vault (its tables are in
its default schema)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from assets.purge.state import EXEMPT_TABLES

#: The identity vault's catalog name on every warehouse connection (pipelines.warehouse.VAULT).
VAULT = "vault"


@dataclass(frozen=True)
class Table:
    catalog: str  # "" for the warehouse itself
    schema: str
    table: str

    @property
    def name(self) -> str:
        schema = "" if self.catalog and self.schema == "main" else self.schema
        return ".".join(p for p in (self.catalog, schema, self.table) if p)

    @property
    def sql(self) -> str:
        return ".".join(quote(p) for p in (self.catalog, self.schema, self.table) if p)

    @property
    def database(self) -> str:
        """The file that holds it: 'vault' or 'warehouse'."""
        return VAULT if self.catalog == VAULT else "warehouse"


@dataclass(frozen=True)
class TextColumn:
    catalog: str  # "" for the warehouse itself
    schema: str
    table: str
    column: str
    data_type: str
    nullable: bool

    @property
    def owner(self) -> Table:
        return Table(self.catalog, self.schema, self.table)

    @property
    def table_name(self) -> str:
        return self.owner.name

    @property
    def sql_table(self) -> str:
        return self.owner.sql

    @property
    def sql_column(self) -> str:
        return quote(self.column)


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def text_columns(con: duckdb.DuckDBPyConnection, *, include_exempt: bool = False) -> list[TextColumn]:
    """Every VARCHAR/JSON (or VARCHAR-bearing) column of every base table of the warehouse and vault files."""
    rows = con.execute(
        f"""
        SELECT CASE WHEN c.table_catalog = current_database() THEN '' ELSE c.table_catalog END,
               c.table_schema, c.table_name, c.column_name, c.data_type, c.is_nullable = 'YES'
        FROM information_schema.columns c
        JOIN information_schema.tables t
          ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema
         AND t.table_name = c.table_name
        WHERE t.table_type = 'BASE TABLE' AND c.table_catalog IN (current_database(), '{VAULT}')
          AND (c.data_type LIKE '%VARCHAR%' OR c.data_type LIKE '%JSON%')
        ORDER BY 1, c.table_schema, c.table_name, c.ordinal_position
        """
    ).fetchall()
    return [TextColumn(*r) for r in rows if include_exempt or (r[0], r[1], r[2]) not in EXEMPT_TABLES]


def tables_with_columns(con: duckdb.DuckDBPyConnection, *columns: str) -> list[Table]:
    """Base tables of the warehouse and vault files that have all of `columns` (from information_schema)."""
    rows = con.execute(
        f"""
        SELECT CASE WHEN c.table_catalog = current_database() THEN '' ELSE c.table_catalog END,
               c.table_schema, c.table_name
        FROM information_schema.columns c
        JOIN information_schema.tables t
          ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema
         AND t.table_name = c.table_name
        WHERE t.table_type = 'BASE TABLE' AND c.table_catalog IN (current_database(), '{VAULT}')
          AND c.column_name IN (SELECT unnest($columns::VARCHAR[]))
        GROUP BY ALL
        HAVING count(DISTINCT c.column_name) = len($columns::VARCHAR[])
        ORDER BY ALL
        """,
        {"columns": list(columns)},
    ).fetchall()
    return [Table(*r) for r in rows if r not in EXEMPT_TABLES]


def column_values(col: TextColumn) -> str:
    """v: every non-NULL value of the column as text, one row per row."""
    return f"(SELECT {col.sql_column}::VARCHAR AS v FROM {col.sql_table} WHERE {col.sql_column} IS NOT NULL)"
