"""The defaults of every nightly asset, written once, and the helpers their metadata uses.

`nightly_asset` / `nightly_spec` apply them: the asset's group is its key prefix (which is also
its folder under assets/), every asset is partitioned by arrival day, runs in the `warehouse`
pool (one writer at a time: limit 1 in dagster.yaml), carries the same owners, kinds and
freshness policy, and names the warehouse table it writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Literal

import dagster as dg
import duckdb

from pipelines.partitions import nightly_partitions
from pipelines.warehouse.columns import column_schema

#: Every DuckDB asset and check runs in this pool: one writer at a time (limit 1 in dagster.yaml).
POOL = "warehouse"
OWNERS = ["team:data-engineering"]
KINDS = {"duckdb"}

#: Every asset is materialised by the night that follows the day: by 06:00 Prague (the schedule
#: starts at 02:00), and no earlier than 24 hours before. A night that did not run shows as stale
#: in the UI (Dagster's freshness daemon). A night that ran on no data is stated by the landing
#: checks and the report (assets/landing/freshness.py), since its assets were still materialised.
FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 6 * * *", lower_bound_delta=timedelta(hours=24), timezone="Europe/Prague"
)

#: What an asset's table holds of personal data: "yes" (identifiers), "account_id" only, or "no".
Pii = Literal["yes", "account_id", "no"]


def _table_metadata(table: str) -> dict[str, Any]:
    """The warehouse table an asset writes: its name and its columns (from schema.sql)."""
    return {"dagster/table_name": table, **column_schema(table)}


def _defaults(key: dg.AssetKey, table: str | None, pii: Pii, metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "group_name": key.path[0],
        "freshness_policy": FRESHNESS,
        "kinds": KINDS,
        "owners": OWNERS,
        "tags": {"pii": pii},
        "metadata": {**(_table_metadata(table) if table else {}), **metadata},
    }


def nightly_asset(
    key: dg.AssetKey,
    *,
    deps: Sequence[dg.AssetKey] = (),
    table: str | None = None,
    pii: Pii = "no",
    metadata: Mapping[str, Any] = MappingProxyType({}),
    **extra: Any,
):
    """@dg.asset with the nightly defaults; `table` is the warehouse table whose columns it documents."""
    return dg.asset(
        key=key,
        deps=list(deps),
        partitions_def=nightly_partitions,
        pool=POOL,
        **_defaults(key, table, pii, metadata),
        **extra,
    )


def nightly_spec(key: dg.AssetKey, *, description: str, table: str, pii: Pii = "no") -> dg.AssetSpec:
    """One output of a nightly multi-asset, with the same defaults as `nightly_asset`."""
    return dg.AssetSpec(key, description=description, **_defaults(key, table, pii, {}))


def nightly_multi_asset(*, name: str, specs: Sequence[dg.AssetSpec]):
    """@dg.multi_asset over `nightly_spec`s: partitioned by day, in the warehouse pool."""
    return dg.multi_asset(name=name, specs=list(specs), partitions_def=nightly_partitions, pool=POOL)


def table_result(
    total: int, columns: Sequence[str], rows: Sequence[Sequence[Any]], **metadata: Any
) -> dg.MaterializeResult:
    """An asset's result: its table's row count, a preview of keys and counts, and any other figures."""
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            **metadata,
            "preview": dg.MetadataValue.md(markdown_table(columns, rows)),
        }
    )


def row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A small markdown table. Callers pass keys and counts only, never identities."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(_cell(v) for v in row) + " |\n" for row in rows)


def short_key(column: str) -> str:
    """SQL for a shortened key in previews: enough to find a row, never an identity."""
    return f"left({column}, 12) || '…'"
