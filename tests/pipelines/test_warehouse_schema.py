"""The warehouse schema (pipelines/warehouse/schema.sql) and its migrations: a new warehouse gets the
current layout, an older one is upgraded in place once, with its data intact."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import duckdb
import pytest

from pipelines.warehouse import SCHEMA_SQL, connect, migrations
from pipelines.warehouse.connection import VAULT_SQL, VIEWS_SQL

KEY = "schema-test-key"
ROOT = Path(__file__).resolve().parents[2]

#: Tables as a warehouse made before the migrations had them: landing.files without `problem`,
#: ops.inbox_keys with its key as 64-character hex text.
OLD_LAYOUT = """
CREATE SCHEMA landing;
CREATE SCHEMA ops;
CREATE TABLE landing.files (
    arrival_date DATE NOT NULL, source_file VARCHAR NOT NULL, bytes BIGINT, received BIGINT NOT NULL,
    accepted BIGINT NOT NULL, duplicates BIGINT NOT NULL, rejected BIGINT NOT NULL, readable BOOLEAN NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE ops.inbox_scans (folder VARCHAR NOT NULL, manifest VARCHAR NOT NULL, scanned_at TIMESTAMPTZ NOT NULL);
CREATE TABLE ops.inbox_keys (folder VARCHAR NOT NULL, kind VARCHAR NOT NULL, key VARCHAR NOT NULL);
CREATE TABLE ops.runs (run_date DATE NOT NULL, dagster_run_id VARCHAR, status VARCHAR NOT NULL,
                       finished_at TIMESTAMPTZ NOT NULL);
INSERT INTO landing.files VALUES
    ('2026-11-02', 'events/2026-11-02/part-0000.jsonl', 100, 3, 2, 1, 0, true, '2026-11-03 01:00:00+01');
INSERT INTO ops.inbox_scans VALUES ('events/2026-11-02', 'manifest-1', '2026-11-03 01:00:00+01');
INSERT INTO ops.inbox_keys VALUES ('events/2026-11-02', 'account_id', repeat('ab', 32));
INSERT INTO ops.runs VALUES ('2026-11-02', 'run-1', 'success', '2026-11-03 01:05:00+01');
"""


def _columns(con, table: str) -> dict[str, str]:
    schema, name = table.split(".")
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchall()
    return dict(rows)


def _applied(con) -> list[tuple[int, str]]:
    return con.execute("SELECT version, name FROM ops.schema_migrations ORDER BY version").fetchall()


def test_an_old_warehouse_is_upgraded_in_place_once_with_its_data_intact(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    old = duckdb.connect(str(database))
    old.execute(OLD_LAYOUT)
    old.close()

    with connect(database, KEY) as con:
        assert _columns(con, "landing.files")["problem"] == "VARCHAR"
        assert _columns(con, "ops.inbox_keys")["key"] == "BLOB"
        # data intact: the ingested file (problem NULL) and the run; the inbox key cache is emptied,
        # with the scans that filled it, so that the next inbox scan rebuilds it
        assert con.execute("SELECT source_file, accepted, problem FROM landing.files").fetchall() == [
            ("events/2026-11-02/part-0000.jsonl", 2, None)
        ]
        assert con.execute("SELECT run_date::VARCHAR, status FROM ops.runs").fetchall() == [("2026-11-02", "success")]
        assert con.execute("SELECT count(*) FROM ops.inbox_keys").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM ops.inbox_scans").fetchall() == [(0,)]
        assert _applied(con) == [(m.version, m.name) for m in migrations.available()]
        # the tables the old warehouse lacked are there, at their current layout
        assert _columns(con, "reports.daily_summary") and _columns(con, "ops.scan_values")
        con.execute("INSERT INTO ops.inbox_keys VALUES ('events/2026-11-03', 'email', from_hex(repeat('cd', 32)), 1)")
        con.execute("INSERT INTO ops.inbox_scans VALUES ('events/2026-11-03', 'manifest-2', now())")

    # opened again: nothing runs a second time, the rebuilt cache stays
    with connect(database, KEY) as con:
        assert _applied(con) == [(m.version, m.name) for m in migrations.available()]
        assert con.execute("SELECT folder FROM ops.inbox_keys").fetchall() == [("events/2026-11-03",)]
        assert con.execute("SELECT folder FROM ops.inbox_scans").fetchall() == [("events/2026-11-03",)]


def test_a_new_warehouse_has_the_layout_of_schema_sql_and_every_migration_recorded(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    with connect(database, KEY) as con:
        tables = {
            f"{d}.{t}" if d == "vault" else f"{s}.{t}"
            for d, s, t in con.execute(
                "SELECT database_name, schema_name, table_name FROM duckdb_tables() WHERE NOT temporary"
            ).fetchall()
        }
        declared = re.findall(r"CREATE TABLE IF NOT EXISTS (\w+\.\w+)", SCHEMA_SQL + VAULT_SQL)
        assert tables == set(declared)
        views = {
            f"{s}.{v}"
            for s, v in con.execute(
                "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary"
            ).fetchall()
        }
        assert views == set(re.findall(r"CREATE OR REPLACE VIEW (\w+\.\w+)", VIEWS_SQL))
        assert _columns(con, "landing.files")["problem"] == "VARCHAR"
        assert _columns(con, "ops.inbox_keys")["key"] == "BLOB"
        assert _applied(con) == [(m.version, m.name) for m in migrations.available()]


def test_a_failed_migration_leaves_nothing_behind_and_runs_again_next_time(tmp_path, monkeypatch):
    database = tmp_path / "warehouse.duckdb"
    with connect(database, KEY):
        pass
    broken = tmp_path / "migrations"
    broken.mkdir()
    for m in migrations.available():
        (broken / m.path.name).write_bytes(m.path.read_bytes())
    (broken / "9999_broken.sql").write_text(
        "CREATE TABLE ops.half_done (x INTEGER);\nSELECT * FROM no_such_table;\n", encoding="utf-8"
    )
    monkeypatch.setattr(migrations, "FOLDER", broken)
    with pytest.raises(duckdb.CatalogException):
        with connect(database, KEY):
            pass
    monkeypatch.setattr(migrations, "FOLDER", migrations.FOLDER)
    con = duckdb.connect(str(database))
    try:
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'half_done'").fetchall() == [(0,)]
        assert 9999 not in {r[0] for r in con.execute("SELECT version FROM ops.schema_migrations").fetchall()}
    finally:
        con.close()


def test_migrations_are_numbered_once_each_and_only_the_one_schema_declares_tables():
    versions = [m.version for m in migrations.available()]
    assert versions == list(range(1, len(versions) + 1))
    # no persistent table is declared in assets/ or checks/ (TEMP tables and derived outputs
    # rebuilt with CREATE OR REPLACE stay with their code)
    found = subprocess.run(
        ["git", "grep", "-n", "-E", "CREATE (TABLE|SCHEMA) IF NOT EXISTS [a-z]+", "--", "assets", "checks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert not found, found
