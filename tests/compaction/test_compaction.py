"""Byte-level erasure: compaction into a fresh file, and its crash safety (kill at any moment)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import pipelines.warehouse as warehouse
from pipelines.warehouse import compact, compaction_path, connect, vault_path, wal_path

KEY = "compaction-test-key"
ROOT = Path(__file__).resolve().parents[2]
STAGES = ("checkpointed", "copying", "copied", "synced", "replaced")

#: Runs compact() in a child process; with a stage name, it stops there until it is killed.
CHILD = """
import sys, time
from pathlib import Path
import pipelines.warehouse as w

database, marker, stop_at = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

def hook(stage):
    with open(marker, "a") as fh:
        fh.write(stage + "\\n")
    if stage == stop_at:
        time.sleep(600)

w.compaction_hook = hook
marker.write_text("start\\n")
w.compact(database)
with open(marker, "a") as fh:
    fh.write("done\\n")
"""


def build_warehouse(path: Path, rows: int = 2_000) -> str:
    """A warehouse with the contract schema, data, and a deleted high-entropy e-mail in free blocks."""
    secret = f"zq{uuid.uuid4().hex}@example.cz"
    with connect(path, KEY) as con:
        con.execute("CREATE TABLE IF NOT EXISTS ops.filler (id BIGINT, note VARCHAR, doc JSON)")
        con.execute(
            """INSERT INTO ops.filler
               SELECT i, 'note ' || i || ' ' || md5(i::VARCHAR), json_object('n', i, 'h', md5((i * 7)::VARCHAR))
               FROM range(?) r(i)""",
            [rows],
        )
        con.execute("CREATE TABLE IF NOT EXISTS ops.notes (line_number BIGINT, raw_line VARCHAR, purged BOOLEAN)")
        con.execute("INSERT INTO ops.notes VALUES (1, ?, false), (2, 'keep me', false)", ['{"email": "' + secret + '"'])
        con.execute("CREATE SEQUENCE IF NOT EXISTS ops.seq START 10")
        con.execute("SELECT nextval('ops.seq')").fetchall()
        con.execute("CREATE OR REPLACE VIEW ops.filler_count AS SELECT count(*) AS n FROM ops.filler")
        con.execute("CHECKPOINT")
        con.execute("UPDATE ops.notes SET raw_line = NULL, purged = true WHERE line_number = 1")
        con.execute("CHECKPOINT")
        con.execute("VACUUM")
    return secret


def contents(path: Path) -> dict[str, list]:
    """Every table's rows (sorted), the view and the sequence: what must survive any crash."""
    with connect(path, KEY, read_only=True) as con:
        tables = con.execute(
            "SELECT database_name, schema_name, table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY ALL"
        ).fetchall()
        dump = {
            f"{'vault.' if d == 'vault' else ''}{s}.{t}": con.execute(
                f'SELECT * FROM "{d}"."{s}"."{t}" ORDER BY ALL'
            ).fetchall()
            for d, s, t in tables
        }
        dump["view"] = con.execute("SELECT n FROM ops.filler_count").fetchall()
        dump["constraints"] = con.execute(
            "SELECT table_name, constraint_type, constraint_text FROM duckdb_constraints() ORDER BY ALL"
        ).fetchall()
    return dump


def next_sequence_value(path: Path) -> int:
    with connect(path, KEY) as con:
        return con.execute("SELECT nextval('ops.seq')").fetchall()[0][0]


def on_disk(path: Path) -> bytes:
    wal = wal_path(path)
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def start_child(database: Path, marker: Path, stop_at: str = "") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(database), str(marker), stop_at, KEY], env=env, cwd=ROOT)


def wait_for(marker: Path, line: str, child: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists() and line in marker.read_text().split():
            return
        if child.poll() is not None:
            raise AssertionError(f"compaction child exited ({child.returncode}) before reaching {line!r}")
        time.sleep(0.01)
    child.kill()
    raise AssertionError(f"compaction child never reached {line!r}")


def test_compaction_removes_deleted_bytes_and_keeps_everything_else(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    secret = build_warehouse(database)
    assert secret.encode() in on_disk(database)  # DuckDB kept the deleted string in a free block
    before = contents(database)

    stats = compact(database)

    assert secret.encode() not in on_disk(database)
    assert contents(database) == before
    assert next_sequence_value(database) == 11  # the sequence carried on where it was
    assert stats["bytes_before"] > 0 and stats["bytes_after"] == database.stat().st_size
    assert not compaction_path(database).exists() and not wal_path(database).exists()


@pytest.mark.parametrize(("configured", "while_copying"), [("2GB", "953.6 MiB"), ("256MB", "244.1 MiB")])
def test_the_copy_runs_under_the_compaction_memory_budget(tmp_path, monkeypatch, configured, while_copying):
    """The copy's own DuckDB is held to 1GB (the weekly compaction was a backfill worker's peak); a
    configured limit that is lower already is kept."""
    database = tmp_path / "warehouse.duckdb"
    build_warehouse(database)
    before = contents(database)
    monkeypatch.setenv("COMPLIANCE_DUCKDB_MEMORY_LIMIT", configured)
    copies, seen = [], {}
    real_connect = warehouse.duckdb.connect

    def connect_spy(*args, **kwargs):
        con = real_connect(*args, **kwargs)
        if not args and not kwargs:  # the in-memory DuckDB that attaches both files and copies
            copies.append(con)
        return con

    def hook(stage):
        if stage == "copying":
            seen[stage] = copies[-1].execute("SELECT current_setting('memory_limit')").fetchall()[0][0]

    monkeypatch.setattr(warehouse.duckdb, "connect", connect_spy)
    monkeypatch.setattr(warehouse, "compaction_hook", hook)
    compact(database)
    assert seen == {"copying": while_copying}
    assert contents(database) == before


@pytest.mark.parametrize("stage", STAGES)
def test_a_kill_at_any_stage_of_compaction_leaves_a_usable_warehouse(tmp_path, stage):
    database, marker = tmp_path / "warehouse.duckdb", tmp_path / "marker"
    secret = build_warehouse(database)
    before = contents(database)

    child = start_child(database, marker, stop_at=stage)
    wait_for(marker, stage, child)
    child.send_signal(signal.SIGKILL)
    child.wait()

    # Opening the warehouse recovers: the same data, no leftover copy, and it can be compacted again.
    assert contents(database) == before
    with connect(database, KEY) as con:
        assert con.execute("SELECT count(*) FROM ops.filler").fetchall() == [(2_000,)]
    assert not compaction_path(database).exists()
    if stage == "replaced":
        assert secret.encode() not in on_disk(database)  # the swap had happened
    compact(database)
    assert contents(database) == before
    assert secret.encode() not in on_disk(database)


def test_a_kill_at_random_moments_during_compaction_leaves_a_usable_warehouse(tmp_path):
    original = tmp_path / "original.duckdb"
    build_warehouse(original, rows=150_000)
    before = contents(original)
    rng = random.Random(20261103)
    # How long a whole compaction takes here, so the kills land anywhere inside it.
    probe = tmp_path / "probe" / "warehouse.duckdb"
    probe.parent.mkdir()
    shutil.copyfile(original, probe)
    shutil.copyfile(vault_path(original), vault_path(probe))
    child = start_child(probe, tmp_path / "probe" / "marker")
    wait_for(tmp_path / "probe" / "marker", "start", child)
    started = time.monotonic()
    assert child.wait(timeout=300) == 0
    duration = time.monotonic() - started
    for attempt in range(5):
        folder = tmp_path / f"kill{attempt}"
        folder.mkdir()
        database, marker = folder / "warehouse.duckdb", folder / "marker"
        shutil.copyfile(original, database)
        shutil.copyfile(vault_path(original), vault_path(database))
        child = start_child(database, marker)
        wait_for(marker, "start", child)
        time.sleep(rng.uniform(0, duration))
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert contents(database) == before, f"attempt {attempt} after {marker.read_text().split()!r}"
        with connect(database, KEY):  # a read-write open recovers: no leftover copy
            pass
        assert not compaction_path(database).exists()
        assert contents(database) == before


def test_recover_discards_a_leftover_compaction_copy(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    build_warehouse(database)
    before = contents(database)
    leftover, leftover_wal = compaction_path(database), wal_path(compaction_path(database))
    leftover.write_bytes(b"half a copy" * 1000)
    leftover_wal.write_bytes(b"junk")

    with connect(database, KEY) as con:  # every read-write open recovers first
        assert con.execute("SELECT count(*) FROM ops.filler").fetchall() == [(2_000,)]

    assert not leftover.exists() and not leftover_wal.exists()
    assert contents(database) == before
