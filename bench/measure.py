"""Running the benchmark's commands and timing them: the CLI in a subprocess (wall time, the child's
peak RSS), one nightly run from a post-backfill warehouse, and the facts read back from its
Dagster instance and warehouse."""

from __future__ import annotations

import json
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


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def timed(cmd: list[str], env: dict[str, str] | None = None, *, echo: bool = True) -> tuple[float, float, str]:
    """Run `cmd`; returns (wall seconds, the child's own peak RSS in MB, output)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    chunks = []
    assert proc.stdout is not None
    for line in proc.stdout:
        chunks.append(line)
        if echo and (line.startswith("[") or "Backfilling" in line):
            print("    " + line.rstrip(), flush=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    out = "".join(chunks)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[:5])} exited {code}:\n{out[-3000:]}")
    return wall, usage.ru_maxrss / 1024, out


def copy_durable(src: Path, dst: Path) -> None:
    """Copy a warehouse file and flush the copy to disk before anything is timed on it.

    A copy leaves its whole file as dirty pages in the page cache, and DuckDB's first COMMIT that
    writes data blocks fsyncs the file: without this, the first such COMMIT of the run being timed
    pays for writing out the benchmark's own copy (1.4-1.8 s for the 1.6 GB warehouse at 1M,
    measured). A production warehouse is not a fresh copy."""
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def git_commit() -> str:
    """The checked-out commit, with "+changes" when the tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True)  # fmt: skip
    except OSError:
        return "?"
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def python_snippet(code: str) -> dict:
    """Run `code` in a fresh interpreter with the project on the path; it prints one JSON line."""
    _, rss, out = timed([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)}, echo=False)
    data = json.loads(out.strip().splitlines()[-1])
    data.setdefault("snippet_rss_mb", rss)  # the snippet's own process, not a pipeline run's
    return data


def generate(cache: Path, accounts: int, days: int, seed: int) -> Path:
    inbox = cache / "inbox"
    plan = inbox / "_plan" / "plan.json"
    if plan.exists():
        params = json.loads(plan.read_text()).get("params", {})
        if params.get("accounts") == accounts and params.get("days") == days and params.get("seed") == seed:
            return inbox
    cache.mkdir(parents=True, exist_ok=True)
    print(f"  generating {accounts:,} accounts x {days} days ...", flush=True)
    cmd = [sys.executable, "-m", "pipelines", "generate", "--out", str(inbox), "--accounts", str(accounts)]
    cmd += ["--days", str(days), "--start", START.isoformat(), "--seed", str(seed), "--export-every", "7", "--quiet"]
    wall, _, _ = timed(cmd)
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


def backfill_command(last: date) -> list[str]:
    """The CLI backfill of every day before `last`, the nightly day."""
    cmd = [sys.executable, "-m", "pipelines", "backfill", "--from", START.isoformat()]
    return [*cmd, "--to", (last - timedelta(days=1)).isoformat()]


def day_seconds(out: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"\] (\d{4}-\d{2}-\d{2}) \w+ in ([\d.]+)s", out)}


def day_peaks(out: str) -> dict[str, float]:
    """Each day's peak RSS (MB) from the CLI's progress lines (`peak_rss=…MB`), where printed."""
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"\] (\d{4}-\d{2}-\d{2}) \w+ in [\d.]+s .*?peak_rss=(\d+)MB", out)
    }


def last_run_steps(work: Path) -> dict:
    """Per-step durations of the latest run in the size's Dagster instance, and warehouse facts."""
    code = f"""
import json, os
os.environ["DAGSTER_HOME"] = {str(work / "dagster_home")!r}
import dagster as dg, duckdb
with dg.DagsterInstance.get() as instance:
    run = instance.get_runs(limit=1)[0]
    steps = {{s.step_key: round(s.end_time - s.start_time, 3) for s in instance.get_run_step_stats(run.run_id)
             if s.start_time and s.end_time}}
con = duckdb.connect({str(work / "warehouse.duckdb")!r}, read_only=True)
events = con.execute("SELECT count(*) FROM landing.events").fetchall()[0][0]
con.close()
print(json.dumps({{"run_id": run.run_id, "partition": run.tags.get("dagster/partition"), "steps": steps,
                   "events_in_warehouse": events}}))
"""
    return python_snippet(code)


def nightly(
    env: dict[str, str], work: Path, snapshot: Path, last: date, *, one_core: bool = False, compact: bool = False
) -> dict:
    """One nightly run of `last` from the post-backfill warehouse; wall, RSS, in-process time, steps.

    With `compact`, the run is a compaction night (COMPLIANCE_COMPACTION_DELAY_DAYS=0: the purges
    waiting since the backfill's last compaction are compacted tonight)."""
    if compact:
        env = {**env, "COMPLIANCE_COMPACTION_DELAY_DAYS": "0"}
    copy_durable(snapshot, work / "warehouse.duckdb")
    (work / "warehouse.duckdb.wal").unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pipelines", "nightly", "--date", last.isoformat()]
    if one_core:
        cmd = ["taskset", "-c", "0", *cmd]
    load_before = loadavg()
    wall, rss, out = timed(cmd, env)
    steps = last_run_steps(work)
    return {
        "wall_s": wall,
        "rss_mb": rss,
        "in_process_s": day_seconds(out).get(last.isoformat(), float("nan")),
        "load_before": load_before,
        "load_after": loadavg(),
        "warehouse_mb": (work / "warehouse.duckdb").stat().st_size / 1e6,
        **steps,
    }


def median_run(runs: list[dict]) -> dict:
    """The run with the median in-process time (its own step durations are kept together)."""
    ordered = sorted(runs, key=lambda r: r["in_process_s"])
    return ordered[(len(ordered) - 1) // 2]
