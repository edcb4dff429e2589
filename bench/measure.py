"""Running the benchmark's commands and timing them: the CLI in a subprocess (wall time, the child's
peak RSS), one nightly run from a post-backfill state, and the facts read back from its Dagster
instance and warehouse.

A run's state is three things that must move together: the warehouse file (the keyed history), its
identity vault beside it (`pipelines.warehouse.vault_path`) and the inbox's event files, which a
night with an erasure redacts in place (each rewritten file replaces the old one by rename, so the
old inode is never modified). The bench runs the CLI against a working inbox under the run's
directory, a hard-linked copy of the generated one (`link_tree`): the generated inbox in the cache is
never run against and stays as generated. `save_state` / `restore_state` snapshot and put back all
three (the databases copied, both WALs removed, the event files hard-linked again)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from pipelines.warehouse import vault_path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"10k": 10_000, "30k": 30_000, "100k": 100_000, "1m": 1_000_000, "3m": 3_000_000}  # 10k: a quick smoke run
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


#: The warehouse file in a run's directory, a snapshot and a kept backfill; its vault is beside it.
WAREHOUSE = "warehouse.duckdb"


def database_files(warehouse: Path) -> tuple[Path, Path]:
    """The warehouse file and its identity vault: the two files a state is made of."""
    return warehouse, vault_path(warehouse)


def wal_of(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


def link_tree(src: Path, dst: Path) -> None:
    """Make `dst` a copy of the tree `src` whose files are hard links to `src`'s (`cp -al`).

    Cheap at any size, and safe as long as nothing modifies a file in place: the pipeline rewrites
    an inbox file beside it and renames it over the old name, which leaves the other link as it was."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dst, copy_function=os.link)


def fold_wal(database: Path) -> None:
    """Fold a database's WAL into its file (a CLI that exits normally leaves none), so that a copy of
    the file alone is the whole database."""
    if wal_of(database).exists():
        import duckdb

        con = duckdb.connect(str(database))  # alone: the warehouse's views name the vault, nothing here binds them
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()


def save_state(work: Path, snapshot: Path) -> None:
    """Snapshot a run's state into the directory `snapshot`: the warehouse and its vault (copied and
    flushed, WALs folded in first) and the working inbox's `events/` tree (hard links)."""
    snapshot.mkdir(parents=True, exist_ok=True)
    for src in database_files(work / WAREHOUSE):
        fold_wal(src)
        dst = snapshot / src.name
        wal_of(dst).unlink(missing_ok=True)
        copy_durable(src, dst)
    link_tree(work / "inbox" / "events", snapshot / "events")


def restore_state(snapshot: Path, work: Path) -> None:
    """Put a snapshot back (`save_state`): both database files copied (flushed), both WALs and any
    interrupted compaction copy removed, the inbox's `events/` tree hard-linked again."""
    for src in database_files(snapshot / WAREHOUSE):
        dst = work / src.name
        for stale in (wal_of(dst), dst.with_name(dst.name + ".compact"), wal_of(dst.with_name(dst.name + ".compact"))):
            stale.unlink(missing_ok=True)
        copy_durable(src, dst)
    link_tree(snapshot / "events", work / "inbox" / "events")


def copy_run_dir(src: Path, dst: Path) -> None:
    """Copy a run's directory (a backfilled state to keep, or a kept one to run from): the warehouse
    and its vault copied and flushed (WALs folded in), the Dagster instance copied, the working inbox
    hard-linked, the reports and the run lock left out."""
    shutil.rmtree(dst, ignore_errors=True)
    databases = database_files(src / WAREHOUSE)
    skipped = (
        {"reports", "inbox", f"{WAREHOUSE}.lock"} | {f.name for f in databases} | {wal_of(f).name for f in databases}
    )
    shutil.copytree(src, dst, ignore=lambda folder, names: skipped & set(names) if Path(folder) == src else set())
    for database in databases:
        fold_wal(database)
        copy_durable(database, dst / database.name)
    link_tree(src / "inbox", dst / "inbox")


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


#: The generator's mean events per account over 30 days; a longer inbox gets proportionally more, so
#: that the daily traffic stays the same (the history series, bench/history.py).
EVENTS_PER_ACCOUNT_30D = 10.0


def generate(
    cache: Path, accounts: int, days: int, seed: int, events_per_account: float = EVENTS_PER_ACCOUNT_30D
) -> Path:
    inbox = cache / "inbox"
    plan = inbox / "_plan" / "plan.json"
    wanted = {"accounts": accounts, "days": days, "seed": seed, "events_per_account": events_per_account}
    if plan.exists():
        params = json.loads(plan.read_text()).get("params", {})
        if all(params.get(k) == v for k, v in wanted.items()):
            return inbox
    cache.mkdir(parents=True, exist_ok=True)
    print(f"  generating {accounts:,} accounts x {days} days ...", flush=True)
    cmd = [sys.executable, "-m", "pipelines", "generate", "--out", str(inbox), "--accounts", str(accounts)]
    cmd += ["--days", str(days), "--start", START.isoformat(), "--seed", str(seed), "--export-every", "7", "--quiet"]
    cmd += ["--events-per-account", str(events_per_account)]
    wall, _, _ = timed(cmd)
    print(f"  generated in {wall:.0f} s", flush=True)
    return inbox


def working_inbox(inbox: Path, work: Path) -> Path:
    """The inbox a run reads and redacts: `<work>/inbox`, hard-linked from the generated `inbox`."""
    link_tree(inbox, work / "inbox")
    return work / "inbox"


def cli_env(inbox: Path, work: Path) -> dict[str, str]:
    """The CLI's environment for a run in `work` on `inbox`, every other setting at the product's
    default: the raw retention too (28 days), so that the retained inbox a night redacts is what a
    deployment keeps, not the whole generated history."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
    env.update(
        COMPLIANCE_INBOX=str(inbox),
        COMPLIANCE_WAREHOUSE=str(work / "warehouse.duckdb"),
        COMPLIANCE_REPORTS=str(work / "reports"),
        COMPLIANCE_HASH_KEY=KEY,
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
    """Per-step durations of the latest run in the size's Dagster instance, and what the run did,
    read back from the warehouse file alone (the keyed history and the ops tables need no vault):
    which database files its compaction copied, the inbox files and lines it redacted, the erased
    subjects after it."""
    code = f"""
import json, os
os.environ["DAGSTER_HOME"] = {str(work / "dagster_home")!r}
import dagster as dg, duckdb
with dg.DagsterInstance.get() as instance:
    run = instance.get_runs(limit=1)[0]
    steps = {{s.step_key: round(s.end_time - s.start_time, 3) for s in instance.get_run_step_stats(run.run_id)
             if s.start_time and s.end_time}}
day = run.tags.get("dagster/partition")
con = duckdb.connect({str(work / WAREHOUSE)!r}, read_only=True)
one = lambda sql, *p: con.execute(sql, list(p)).fetchall()[0]
events = one("SELECT count(*) FROM keyed.events")[0]
compacted = [r[0] for r in con.execute(
    "SELECT database FROM ops.compactions WHERE run_date = ? ORDER BY compacted_at", [day]).fetchall()]
files, lines = one("SELECT count(DISTINCT path), count(DISTINCT (path, line_number)) FROM ops.inbox_redactions WHERE run_date = ?", day)
rewrites = one("SELECT count(*) FROM ops.inbox_rewrites WHERE run_date = ? AND state = 'done'", day)[0]
erased = one("SELECT count(DISTINCT subject_key) FROM compliance.erased_identifiers WHERE kind = 'account_id'")[0]
con.close()
print(json.dumps({{"run_id": run.run_id, "partition": day, "steps": steps, "events_in_warehouse": events,
                   "compacted": compacted, "inbox_files_redacted": files, "inbox_lines_redacted": lines,
                   "inbox_rewrites": rewrites, "erased_subjects": erased}}))
"""
    return python_snippet(code)


def nightly(
    env: dict[str, str],
    work: Path,
    snapshot: Path,
    last: date,
    *,
    one_core: bool = False,
    prepare: Callable[[], dict] | None = None,
) -> dict:
    """One nightly run of `last` from the post-backfill state `snapshot` (`save_state`); wall, RSS,
    in-process time, steps and what the night did.

    The warehouse, its vault and the inbox's event files are put back first (`restore_state`), so
    every run starts from the same state. `prepare`, if given, is called after that and before the
    run (it may change the working inbox); what it returns is kept under "prepared"."""
    restore_state(snapshot, work)
    prepared = prepare() if prepare is not None else None
    cmd = [sys.executable, "-m", "pipelines", "nightly", "--date", last.isoformat()]
    if one_core:
        cmd = ["taskset", "-c", "0", *cmd]
    load_before = loadavg()
    wall, rss, out = timed(cmd, env)
    steps = last_run_steps(work)
    warehouse, vault = database_files(work / WAREHOUSE)
    run = {
        "wall_s": wall,
        "rss_mb": rss,
        "in_process_s": day_seconds(out).get(last.isoformat(), float("nan")),
        "load_before": load_before,
        "load_after": loadavg(),
        "warehouse_mb": warehouse.stat().st_size / 1e6,
        "vault_mb": vault.stat().st_size / 1e6,
        **steps,
    }
    if prepared is not None:
        run["prepared"] = prepared
    return run


def backfill_and_nights(
    cache: Path, inbox: Path, days: int, repeats: int, *, echo: bool = True
) -> tuple[float, float, list[dict]]:
    """Backfill the first `days` - 1 days of `inbox` into a fresh `<cache>/run`, then run the last
    day as the nightly run `repeats` times, each from the same post-backfill state (`nightly`).
    Returns the backfill's wall seconds and peak RSS (MB), and the nights."""
    work, last = cache / "run", START + timedelta(days=days - 1)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = cli_env(working_inbox(inbox, work), work)
    wall, rss, _ = timed(backfill_command(last), env, echo=echo)
    snapshot = cache / "before_last"
    save_state(work, snapshot)
    runs = [nightly(env, work, snapshot, last) for _ in range(repeats)]
    shutil.rmtree(snapshot, ignore_errors=True)
    return wall, rss, runs


def median_run(runs: list[dict]) -> dict:
    """The run with the median in-process time (its own step durations are kept together)."""
    ordered = sorted(runs, key=lambda r: r["in_process_s"])
    return ordered[(len(ordered) - 1) // 2]
