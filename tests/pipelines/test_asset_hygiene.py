"""Asset graph hygiene: every asset has a known group, owners, the duckdb kind and a description;
every table asset declares its column schema and reports a row count; every check explains itself.

The expectations are read from `pipelines.definitions.defs`, so assets added later are covered.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest

from pipelines.warehouse import SCHEMA_SQL
from pipelines.warehouse.connection import VIEWS_SQL
from tests.helpers import event

ASSETS = Path(__file__).resolve().parents[2] / "assets"
#: The areas are the folders of assets/ (each a Python package).
GROUPS = {p.parent.name for p in ASSETS.glob("*/__init__.py")}
#: The warehouse's tables and the contract's tables that are views over the keyed history and the vault.
WAREHOUSE_TABLES = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+\.\w+)", SCHEMA_SQL)) | set(
    re.findall(r"CREATE OR REPLACE VIEW (\w+\.\w+)", VIEWS_SQL)
)


def _graph():
    from pipelines.definitions import defs

    return defs.get_repository_def().asset_graph


def _table_assets() -> list[dg.AssetKey]:
    """Every asset writes one warehouse table, which it names in `dagster/table_name`."""
    return sorted(_graph().get_all_asset_keys())


def test_every_asset_has_group_owners_kind_and_description():
    graph = _graph()
    problems = []
    for key in sorted(graph.get_all_asset_keys()):
        node = graph.get(key)
        name = key.to_user_string()
        if node.group_name not in GROUPS:
            problems.append(f"{name}: group {node.group_name!r}")
        if not node.owners:
            problems.append(f"{name}: no owners")
        if "duckdb" not in node.kinds:
            problems.append(f"{name}: kinds {sorted(node.kinds)} lack duckdb")
        if len((node.description or "").split()) < 4:
            problems.append(f"{name}: no one-sentence description")
        if node.freshness_policy is None:
            problems.append(f"{name}: no freshness policy: a night that did not run would not show")
    assert not problems, "\n".join(problems)


def test_every_group_and_the_main_tables_are_there():
    graph = _graph()
    assert {graph.get(k).group_name for k in graph.get_all_asset_keys()} == GROUPS
    names = {str(graph.get(k).metadata.get("dagster/table_name")) for k in _table_assets()}
    assert {"landing.events", "landing.rejected", "core.accounts", "compliance.violations"} <= names
    assert names <= WAREHOUSE_TABLES


def test_folder_group_and_key_prefix_are_one_name():
    """The tree shows the flow: an asset defined in assets/<area>/ is in group <area>, key <area>/..."""
    from pipelines.definitions import defs

    problems = []
    for asset in defs.assets:
        area = asset.op.compute_fn.decorated_fn.__module__.split(".")[1]
        for key in asset.keys:
            group = asset.specs_by_key[key].group_name
            if not (key.path[0] == group == area):
                problems.append(f"{key.to_user_string()}: group {group}, defined in assets/{area}/")
    assert defs.assets and not problems, problems


def test_every_check_lives_in_the_module_of_its_assets_area():
    """checks/<area>.py holds every check on the assets of that area, and nothing else."""
    from pipelines.definitions import defs

    problems = []
    for checks_def in defs.asset_checks:
        module = checks_def.op.compute_fn.decorated_fn.__module__
        for spec in checks_def.check_specs:
            if module != f"checks.{spec.asset_key.path[0]}":
                problems.append(f"{spec.name} on {spec.asset_key.to_user_string()} is in {module}")
    assert defs.asset_checks and not problems, problems


def test_every_check_has_a_description():
    graph = _graph()
    missing = [str(k) for k in graph.asset_check_keys if not (graph.get_check_spec(k).description or "").strip()]
    assert graph.asset_check_keys and not missing, missing


def test_every_table_asset_declares_its_column_schema():
    graph = _graph()
    missing = [k.to_user_string() for k in _table_assets() if "dagster/column_schema" not in graph.get(k).metadata]
    assert not missing, f"table assets without dagster/column_schema: {missing}"
    for key in _table_assets():
        schema = graph.get(key).metadata["dagster/column_schema"]
        assert isinstance(schema, dg.TableSchema) and schema.columns, key


@pytest.mark.slow
def test_every_table_asset_reports_its_row_count(env):
    day = "2026-11-03"
    env.write_events(
        day,
        "part-0000.jsonl",
        [
            event("Account Created", "acc_1", "2026-11-03T09:00:00+01:00", properties={"email": "a@example.cz"}),
            event(
                "Marketing Consent Granted", "acc_1", "2026-11-03T09:05:00+01:00", properties={"notice_version": "v1"}
            ),
        ],
    )
    result = env.run(day)
    assert result.success
    counts = {}
    for mat in result.get_asset_materialization_events():
        meta = mat.materialization.metadata
        if "dagster/row_count" in meta:
            counts[mat.asset_key] = meta["dagster/row_count"].value
    missing = [k.to_user_string() for k in _table_assets() if k not in counts]
    assert not missing, f"table assets materialised without dagster/row_count: {missing}"
    assert counts[dg.AssetKey(["landing", "events"])] == 2
    assert counts[dg.AssetKey(["core", "accounts"])] == 1
