"""The baselines and floors measured beside the sizes: ingestion against DuckDB's parser and the bare
load of the day (baseline a), one read of every text column, the night's fixed cost; and the floor
under a night that they add up to."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from bench.measure import (
    KEY,
    backfill_and_nights,
    copy_durable,
    database_files,
    generate,
    git_commit,
    loadavg,
    median_run,
    python_snippet,
)

#: The ways of writing the day's rows into a new DuckDB file that `ingestion_vs_parser()` times.
BARE_LOADS = ("load_json_s", "load_lines_s", "load_uncompressed_s")
#: The night's fixed cost is measured on an inbox this small (`fixed_cost()`).
FIXED_COST_ACCOUNTS = 1_000
FIXED_COST_DAYS = 3


def ingestion_vs_parser(inbox: Path, warehouse_before: Path, day: date) -> dict[str, float]:
    """Baseline (a): DuckDB alone counting the day's lines vs our ingestion of that day.

    Our ingestion is timed on an empty warehouse and on a copy of the full-history warehouse and its
    identity vault (ingestion writes both), so that any dependence on history shows."""
    history = warehouse_before.with_name("ingest_history.duckdb")
    for src, dst in zip(database_files(warehouse_before), database_files(history), strict=True):
        copy_durable(src, dst)
    code = f"""
import json, time, duckdb
from datetime import date
from pathlib import Path
from assets.landing.ingest import ingest_day, list_day_files
from pipelines.warehouse import connect, vault_path
def drop(db):  # a warehouse and its vault, with their WALs
    for f in (db, vault_path(db)):
        for g in (f, f.with_name(f.name + ".wal")):
            g.unlink(missing_ok=True)
inbox, day = Path({str(inbox)!r}), date.fromisoformat({day.isoformat()!r})
files = [str(c.path) for c in list_day_files(inbox, day)]
def parser(sql):
    best = None
    for _ in range(2):
        t = time.perf_counter(); n = duckdb.connect().execute(sql, [files]).fetchall()[0][0]
        best = min(best or 1e9, time.perf_counter() - t)
    return n, best
n, json_s = parser("SELECT count(*) FROM read_json(?, format='newline_delimited', union_by_name=true, ignore_errors=true)")
_, csv_s = parser("SELECT count(*) FROM read_csv(?, columns={{'line': 'VARCHAR'}}, delim=chr(1), quote='', escape='', header=false, ignore_errors=true)")
res = {{}}
for label, db in (("empty", Path({str(history)!r}).with_name("ingest_empty.duckdb")), ("history", Path({str(history)!r}))):
    if label == "empty":
        drop(db)
    with connect(db, {KEY!r}) as con:
        t = time.perf_counter(); r = ingest_day(con, inbox, day); res[label] = time.perf_counter() - t
    drop(db)
# The floor of any ingestion that keeps the day: DuckDB alone writing the day's rows into a new
# database file (no validation, no keys, no dedupe): as parsed JSON, as whole lines, and as whole
# lines stored without compression (cheaper to write, larger on disk).
def load(sql, *setup):
    best = None
    for i in range(2):
        db = Path({str(history)!r}).with_name(f"load_{{i}}.duckdb")
        db.unlink(missing_ok=True)
        t = time.perf_counter(); con = duckdb.connect(str(db))
        for statement in setup:
            con.execute(statement)
        con.execute(sql, [files]); con.close()
        best = min(best or 1e9, time.perf_counter() - t)
        db.unlink(missing_ok=True)
    return best
load_json_s = load("CREATE TABLE day AS SELECT * FROM read_json(?, format='newline_delimited', union_by_name=true, ignore_errors=true)")
LINES = "CREATE TABLE day AS SELECT * FROM read_csv(?, columns={{'line': 'VARCHAR'}}, delim=chr(1), quote='', escape='', header=false, ignore_errors=true)"
load_lines_s = load(LINES)
load_uncompressed_s = load(LINES, "PRAGMA force_compression = 'uncompressed'")
print(json.dumps({{"lines": n, "parser_s": json_s, "parser_csv_s": csv_s, "ingest_empty_s": res["empty"],
                   "ingest_history_s": res["history"], "accepted": r.accepted, "files": len(files),
                   "load_json_s": load_json_s, "load_lines_s": load_lines_s,
                   "load_uncompressed_s": load_uncompressed_s}}))
"""
    return python_snippet(code)


def read_text_columns(warehouse: Path) -> dict[str, float]:
    """The floor of any residual verification: reading every text column of the warehouse and of its
    identity vault once.

    CONTRACT 5 counts an identifier in any column of any table as residual, so a night that
    verifies reads each of them at least once (the generic scan reads both files); here DuckDB
    alone reads them (best of 2 passes)."""
    vault = database_files(warehouse)[1]
    code = f"""
import json, time, duckdb
from assets.purge.columns import text_columns
con = duckdb.connect({str(warehouse)!r}, read_only=True)
con.execute("ATTACH ? AS vault (READ_ONLY)", [{str(vault)!r}])
cols = text_columns(con)
best = None
for _ in range(2):
    t = time.perf_counter()
    for c in cols:
        con.execute(f"SELECT max(strlen({{c.sql_column}}::VARCHAR)) FROM {{c.sql_table}}").fetchall()
    best = min(best or 1e9, time.perf_counter() - t)
print(json.dumps({{"columns": len(cols), "read_s": best}}))
"""
    return python_snippet(code)


def fixed_cost(cache_root: Path, repeats: int) -> dict:
    """The night's fixed cost: the same nightly job on a 1,000-account, 3-day inbox.

    Python and Dagster start-up, the run and its steps, the GX import and the report cost about
    this at any size, so no night at any size takes less, and `pandas wall / this wall` bounds the
    speed-up over pandas that any size can show."""
    print(f"== fixed cost: {FIXED_COST_ACCOUNTS:,} accounts, {FIXED_COST_DAYS} days (load {loadavg()})", flush=True)
    cache = cache_root / "fixed_cost"
    inbox = generate(cache, FIXED_COST_ACCOUNTS, FIXED_COST_DAYS, seed=42)
    _, _, runs = backfill_and_nights(cache, inbox, FIXED_COST_DAYS, repeats, echo=False)
    median = median_run(runs)
    print(f"  nightly: {median['in_process_s']:.1f} s in process, {median['wall_s']:.1f} s wall", flush=True)
    return {
        "accounts": FIXED_COST_ACCOUNTS,
        "days": FIXED_COST_DAYS,
        "runs": [{k: r[k] for k in ("in_process_s", "wall_s", "rss_mb", "load_before", "load_after")} for r in runs],
        "in_process_s": median["in_process_s"],
        "wall_s": median["wall_s"],
        "rss_mb": median["rss_mb"],
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "commit": git_commit(),
    }


def bare_load_s(result: dict) -> float | None:
    """The day's bare load into a new DuckDB file (the cheapest way measured), or None."""
    i = result["ingest"]
    loads = [i[k] for k in BARE_LOADS if k in i]
    return min(loads) if loads else None


def best_night_s(result: dict, fixed: dict | None) -> float | None:
    """A floor under any nightly wall time at this size, or None when a part was not measured.

    The night's fixed cost (the same job on a tiny inbox, start-up included), plus the two things
    any night must do on top at this size: keep the day's rows (the bare load) and read every text
    column once to verify the erasures (CONTRACT 5)."""
    load, read = bare_load_s(result), result.get("verification", {}).get("read_s")
    if fixed is None or load is None or read is None:
        return None
    return fixed["wall_s"] + load + read
