"""Helpers shared by the asset modules: the partition day, row counts and PII-free previews."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import dagster as dg
import duckdb

#: Every DuckDB asset and check runs in this pool: one writer at a time (limit 1 in dagster.yaml).
POOL = "warehouse"
OWNERS = ["team:data-engineering"]
KINDS = {"duckdb"}


def day_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A small markdown table. Callers pass keys and counts only, never identities."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(_cell(v) for v in row) + " |\n" for row in rows)


def preview(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> dg.MetadataValue:
    rel = con.execute(sql, list(params))
    columns = [d[0] for d in rel.description]
    return dg.MetadataValue.md(markdown_table(columns, rel.fetchall()))


def short_key(column: str) -> str:
    """SQL for a shortened key in previews: enough to find a row, never an identity."""
    return f"left({column}, 12) || '…'"
