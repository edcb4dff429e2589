"""The benchmark: one command, three sizes, two baselines, a scaling curve.

    .venv/bin/python bench/run.py                      # 100k, 1M and 3M accounts (long)
    .venv/bin/python bench/run.py --sizes 100k,1m      # a subset

For each size it generates (or reuses, cached under bench/cache/) a 30-day inbox with ~10 events
per account, runs a full backfill of the first 29 days and then one more nightly day at full
history, each as the real CLI in a subprocess. It records wall time and peak RSS (wait4), the
in-process time of the nightly day (the CLI's own "ok in N s", which excludes process start-up),
ingestion throughput against DuckDB's parser limit on the same files (baseline a), and the
pandas baseline (b). Results are printed and written to bench/results.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000, "3m": 3_000_000}  # 10k: a quick smoke run
START = date(2026, 9, 1)
KEY = "bench-hash-key"


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Like run(), but with the child's own peak RSS (not the max over all children so far)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    chunks = []
    assert proc.stdout is not None
    for line in proc.stdout:
        chunks.append(line)
        if line.startswith("[") or "Backfilling" in line:
            print("    " + line.rstrip(), flush=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    out = "".join(chunks)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[:5])} exited {code}:\n{out[-3000:]}")
    return wall, usage.ru_maxrss / 1024, out


def generate(cache: Path, accounts: int, days: int, seed: int) -> Path:
    inbox = cache / "inbox"
    plan = inbox / "_plan" / "plan.json"
    if plan.exists():
        params = json.loads(plan.read_text()).get("params", {})
        if params.get("accounts") == accounts and params.get("days") == days and params.get("seed") == seed:
            return inbox
    cache.mkdir(parents=True, exist_ok=True)
    print(f"  generating {accounts:,} accounts x {days} days ...", flush=True)
    wall, _, _ = timed(
        [
            sys.executable,
            "-m",
            "pipelines",
            "generate",
            "--out",
            str(inbox),
            "--accounts",
            str(accounts),
            "--days",
            str(days),
            "--start",
            START.isoformat(),
            "--seed",
            str(seed),
            "--export-every",
            "7",
            "--quiet",
        ]
    )
    print(f"  generated in {wall:.0f} s", flush=True)
    return inbox


def cli_env(inbox: Path, work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        COMPLIANCE_INBOX=str(inbox),
        COMPLIANCE_WAREHOUSE=str(work / "warehouse.duckdb"),
        COMPLIANCE_REPORTS=str(work / "reports"),
        COMPLIANCE_HASH_KEY=KEY,
        COMPLIANCE_RAW_RETENTION_DAYS="400",  # keep the cached inbox intact
        DAGSTER_HOME=str(work / "dagster_home"),
    )
    return env


def day_seconds(out: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"\] (\d{4}-\d{2}-\d{2}) \w+ in ([\d.]+)s", out)}


def ingestion_vs_parser(inbox: Path, warehouse_before: Path, day: date) -> dict[str, float]:
    """Baseline (a): DuckDB alone counting the day's lines vs our ingestion of that day."""
    code = f"""
import json, shutil, time, duckdb
from datetime import date
from pathlib import Path
from assets.landing.ingest import ingest_day, list_day_files
from pipelines.warehouse import connect
inbox, day = Path({str(inbox)!r}), date.fromisoformat({day.isoformat()!r})
files = [str(c.path) for c in list_day_files(inbox, day)]
t = time.perf_counter()
n = duckdb.connect().execute("SELECT count(*) FROM read_json(?, format='newline_delimited', union_by_name=true, ignore_errors=true)", [files]).fetchall()[0][0]
parser = time.perf_counter() - t
res = {{}}
for label, db in (("empty", Path({str(warehouse_before)!r}).with_suffix(".empty.duckdb")), ("history", Path({str(warehouse_before)!r}))):
    db.unlink(missing_ok=True) if label == "empty" else None
    with connect(db, {KEY!r}) as con:
        t = time.perf_counter(); r = ingest_day(con, inbox, day); res[label] = time.perf_counter() - t
print(json.dumps({{"lines": n, "parser_s": parser, "ingest_empty_s": res["empty"], "ingest_history_s": res["history"], "accepted": r.accepted}}))
"""
    _, rss, out = timed([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)})
    data = json.loads(out.strip().splitlines()[-1])
    data["rss_mb"] = rss
    return data


def bench_size(label: str, accounts: int, days: int, cache_root: Path, pandas: bool) -> dict:
    print(f"== {label}: {accounts:,} accounts", flush=True)
    cache = cache_root / label
    inbox = generate(cache, accounts, days, seed=42)
    plan = json.loads((inbox / "_plan" / "plan.json").read_text())
    total_events = plan["totals"]["accepted"]
    work = cache / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = cli_env(inbox, work)
    last = START + timedelta(days=days - 1)

    backfill_wall, backfill_rss, out = timed(
        [
            sys.executable,
            "-m",
            "pipelines",
            "backfill",
            "--from",
            START.isoformat(),
            "--to",
            (last - timedelta(days=1)).isoformat(),
        ],
        env,
    )
    per_day = day_seconds(out)
    snapshot = work / "before_last.duckdb"
    shutil.copyfile(work / "warehouse.duckdb", snapshot)

    nightly_wall, nightly_rss, out = timed(
        [sys.executable, "-m", "pipelines", "nightly", "--date", last.isoformat()], env
    )
    nightly_in_process = day_seconds(out).get(last.isoformat(), float("nan"))
    db_mb = (work / "warehouse.duckdb").stat().st_size / 1e6

    ingest = ingestion_vs_parser(inbox, snapshot, last)
    result = {
        "label": label,
        "accounts": accounts,
        "events_total": total_events,
        "events_last_day": plan["days"][last.isoformat()]["received"],
        "backfill_wall_s": backfill_wall,
        "backfill_days": len(per_day),
        "backfill_rss_mb": backfill_rss,
        "nightly_wall_s": nightly_wall,
        "nightly_in_process_s": nightly_in_process,
        "nightly_rss_mb": nightly_rss,
        "warehouse_mb": db_mb,
        "ingest": ingest,
    }
    if pandas:
        print("  pandas baseline ...", flush=True)
        try:
            wall, rss, out = timed(
                [
                    sys.executable,
                    str(ROOT / "bench" / "pandas_baseline.py"),
                    "--inbox",
                    str(inbox),
                    "--until",
                    last.isoformat(),
                ]
            )
            result["pandas"] = {"wall_s": wall, "rss_mb": rss, **json.loads(out.strip().splitlines()[-1])}
        except RuntimeError as exc:
            result["pandas"] = {"error": str(exc).splitlines()[0]}
    snapshot.unlink(missing_ok=True)
    snapshot.with_suffix(".empty.duckdb").unlink(missing_ok=True)
    print(json.dumps(result, indent=1), flush=True)
    return result


def growth_exponent(results: list[dict]) -> float | None:
    pts = [
        (math.log(r["events_total"]), math.log(r["nightly_in_process_s"]))
        for r in results
        if r["nightly_in_process_s"] > 0
    ]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def render(results: list[dict], machine: str) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine}. Command: `.venv/bin/python bench/run.py`. 30 days, ~10 events per account,",
        "exports every 7 days. Times are wall seconds; RSS is the peak resident set of the process.",
        "",
        "| size | events (30 d) | backfill 29 d (s) | backfill peak RSS (MB) | nightly day at full history (s, in-process) | nightly wall incl. start-up (s) | nightly peak RSS (MB) | warehouse (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['label']} | {r['events_total']:,} | {r['backfill_wall_s']:.0f} | {r['backfill_rss_mb']:.0f} | "
            f"{r['nightly_in_process_s']:.1f} | {r['nightly_wall_s']:.1f} | {r['nightly_rss_mb']:.0f} | {r['warehouse_mb']:.0f} |"
        )
    lines += [
        "",
        "## Ingestion against the DuckDB parser limit (baseline a)",
        "",
        "| size | lines in the day | parser limit `count(*)` (s) | ingestion, empty warehouse (s) | ingestion, full history (s) | ratio to parser | events/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        i = r["ingest"]
        lines.append(
            f"| {r['label']} | {i['lines']:,} | {i['parser_s']:.2f} | {i['ingest_empty_s']:.2f} | {i['ingest_history_s']:.2f} | "
            f"{i['ingest_history_s'] / i['parser_s']:.1f}x | {i['accepted'] / i['ingest_history_s']:,.0f} |"
        )
    pandas_rows = [r for r in results if "pandas" in r and "wall_s" in r["pandas"]]
    if pandas_rows:
        lines += [
            "",
            "## Against a straightforward pandas implementation (baseline b)",
            "",
            "pandas recomputes consent history, membership and the eight rules over the whole history, which is",
            "what one nightly run of the pipeline does too (plus ingestion, purge, verification, report and checks).",
            "",
            "| size | pandas wall (s) | pandas peak RSS (MB) | pipeline nightly (s) | pipeline peak RSS (MB) | speed-up |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in pandas_rows:
            p = r["pandas"]
            lines.append(
                f"| {r['label']} | {p['wall_s']:.1f} | {p['rss_mb']:.0f} | {r['nightly_wall_s']:.1f} | {r['nightly_rss_mb']:.0f} | "
                f"{p['wall_s'] / r['nightly_wall_s']:.1f}x |"
            )
    k = growth_exponent(results)
    if k is not None:
        lines += [
            "",
            f"Fitted growth exponent of the nightly day's time against total events: **{k:.2f}** (1.0 = linear).",
        ]
    by = {r["label"]: r for r in results}
    if "1m" in by and "3m" in by:
        ratio = by["3m"]["nightly_in_process_s"] / by["1m"]["nightly_in_process_s"]
        lines.append(f"Nightly day at 3M / at 1M: **{ratio:.2f}x** (target ≤ 3x).")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m,3m")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "cache")
    parser.add_argument("--no-pandas", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.md")
    args = parser.parse_args()
    results = []
    for label in args.sizes.split(","):
        results.append(
            bench_size(label, SIZES[label], args.days, args.cache, pandas=not args.no_pandas and label != "3m")
        )
        (args.cache / "results.json").write_text(json.dumps(results, indent=1))
    machine = f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    text = render(results, machine)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
