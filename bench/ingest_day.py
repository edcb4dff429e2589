"""Measure the ingestion of one arrival day of ~1M events (no assertions; prints timings).

    PYTHONPATH=. python bench/ingest_day.py [--accounts 200000] [--gz] [--repeat 1]

Generates (once, cached under bench/cache/) a one-day inbox with the synthetic generator, then
times, each on a fresh warehouse:

* `read_json count`: DuckDB alone counting the day's lines with read_json (a floor: no
  validation, no keys, no writes);
* `read_json into a table`: DuckDB parsing every line into typed columns (a fairer floor);
* `ingest_day`: the full contract ingestion (line cutting, UTF-8 check, validation SQL,
  duplicate classification, HMAC keys, inserts into landing.events / rejected / files);
* `ingest_day (re-run)`: the same day again (the manifest is unchanged: nothing to do);
* `ingest_day (late file)`: the day after touching one file (a full re-ingestion).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import generator  # noqa: E402
from assets.landing.ingest import ingest_day  # noqa: E402
from pipelines.warehouse import connect  # noqa: E402

DAY = date(2026, 11, 3)


def prepare(accounts: int, gz: bool, seed: int) -> Path:
    out = ROOT / "bench" / "cache" / f"inbox-{accounts}-{'gz' if gz else 'plain'}-{seed}"
    if not (out / "_plan" / "plan.json").exists():
        started = time.perf_counter()
        generator.generate(
            out,
            accounts,
            1,
            DAY,
            seed,
            gzip_every=1 if gz else 0,
            export_every=0,
            quirks=True,
        )
        print(f"generated {out.name} in {time.perf_counter() - started:.1f}s", flush=True)
    return out


def timed(label: str, fn):
    started = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - started
    print(f"{label:<28} {seconds:8.2f}s  {value}", flush=True)
    return seconds, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200_000, help="~5 lines per account on one day")
    parser.add_argument("--gz", action="store_true", help="gzip the day's files")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    args = parser.parse_args()

    inbox = prepare(args.accounts, args.gz, args.seed)
    plan = json.loads((inbox / "_plan" / "plan.json").read_text())["days"][DAY.isoformat()]
    folder = inbox / "events" / DAY.isoformat()
    files = sorted(str(p) for p in folder.iterdir())
    size = sum(os.path.getsize(p) for p in files)
    print(
        f"day {DAY}: {len(files)} file(s), {size / 1e6:.0f} MB, {plan['received']} lines "
        f"({plan['accepted']} accepted, {plan['duplicates']} duplicates, {plan['rejected']} rejected); "
        f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}",
        flush=True,
    )

    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            con = duckdb.connect()
            if args.threads:
                con.execute(f"SET threads = {args.threads}")
            timed(
                "read_json count",
                lambda con=con: con.execute(
                    "SELECT count(*) FROM read_json(?, format = 'newline_delimited', ignore_errors = true, "
                    "maximum_object_size = 1048576)",
                    [files],
                ).fetchall()[0][0],
            )
            timed(
                "read_json into a table",
                lambda con=con: con.execute(
                    "CREATE OR REPLACE TEMP TABLE _all AS SELECT * FROM read_json(?, format = 'newline_delimited', "
                    "ignore_errors = true, maximum_object_size = 1048576, union_by_name = true)",
                    [files],
                ).fetchall()[0][0],
            )
            con.close()

            with connect(Path(tmp) / "warehouse.duckdb", "bench-key") as con:
                if args.threads:
                    con.execute(f"SET threads = {args.threads}")

                def run(con=con):
                    r = ingest_day(con, inbox, DAY)
                    return f"{r.status}: received={r.received} accepted={r.accepted} " + (
                        f"duplicates={r.duplicates} rejected={r.rejected}"
                    )

                _, summary = timed("ingest_day", run)
                expected = (
                    f"received={plan['received']} accepted={plan['accepted']} "
                    f"duplicates={plan['duplicates']} rejected={plan['rejected']}"
                )
                if expected not in summary:
                    print(f"  MISMATCH with the plan: {expected}", flush=True)
                timed("ingest_day (re-run)", run)
                first = Path(files[0])
                os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))
                timed("ingest_day (late file)", run)
            db = Path(tmp) / "warehouse.duckdb"
            print(f"{'warehouse size':<28} {db.stat().st_size / 1e6:8.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
