"""The benchmark: one command, three sizes, two baselines, a scaling curve, the targets.

    .venv/bin/python bench/run.py                      # 100k, 1M and 3M accounts (hours)
    .venv/bin/python bench/run.py --sizes 100k,1m      # a subset
    .venv/bin/python bench/run.py --sizes 3m --reuse   # re-measure on a cached backfill
    .venv/bin/python bench/run.py --sizes 100k,1m --reuse 1m   # backfill 100k again, reuse 1M's

For each size it generates (or reuses, cached under bench/cache/<size>/inbox) a 30-day inbox with
~10 events per account, runs a full backfill of the first 29 days and then the 30th day as the
nightly run at full history, each as the real CLI in a subprocess. It records wall time and peak
RSS (wait4, the child's own), the in-process time of the nightly day (the CLI's own "ok in N s",
which excludes process start-up), the per-step durations of that nightly run from the Dagster
instance (`get_run_step_stats`), ingestion against DuckDB's parser limit on the same files
(baseline a), the pandas baseline (b, not at 3M unless --pandas-3m), and the machine load.

The commands run against a working inbox (bench/cache/<size>/run/inbox, hard-linked from the
generated one), because a night with an erasure redacts retained inbox files in place; the generated
inbox is never changed. The nightly day is run `--repeats` times, each from the same post-backfill
state (the warehouse, its identity vault and the working inbox's event files, `bench.measure.save_state`),
and the median is reported (other processes share this machine; timings are noisy). With `--one-core`
the nightly day also runs pinned to one core (`taskset -c 0`), for the parallel fraction in
docs/scaling.md. The erasure series (bench/erasure.py; `--no-erasure-series` skips it) runs the
nightly day three more times from that state, with no, one and 10,000 new erasures in the day's
folder. The post-backfill warehouse, vault, working inbox and Dagster instance are kept under
bench/cache/<size>/backfilled/; `--reuse` starts from there instead of backfilling again.
Beside the sizes it measures the night's fixed cost (the same job on a 1,000-account, 3-day inbox)
and two floors under the targets: the day's bare load into a DuckDB file (no validation) and one read
of every text column of the warehouse. `--no-fixed-cost` skips the fixed cost. `--history 30,60,90`
adds the history series (bench/history.py): the same accounts and daily traffic with 30, 60 and 90
days of history, one nightly day each (`--history-size`, 100k by default).
Results are printed, written to bench/results.md and kept as JSON in bench/cache/results.json (the
fixed cost in bench/cache/fixed_cost.json). bench/results.md holds only the latest run: it is
rewritten from this invocation's results, never appended to (git keeps the earlier runs). With
`--keep`, sizes measured by an earlier invocation at the same commit join the table, so a long size
can be measured on its own; results of any other commit are left out.

This module runs the sizes and the command line; bench/measure.py runs and times the commands,
bench/floors.py measures the baselines and floors, bench/report.py writes bench/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the `bench` modules, run as a script

from bench.erasure import erasure_series  # noqa: E402
from bench.floors import fixed_cost, ingestion_vs_parser, read_text_columns  # noqa: E402
from bench.history import history_series  # noqa: E402
from bench.measure import (  # noqa: E402
    ROOT,
    SIZES,
    START,
    WAREHOUSE,
    backfill_command,
    cli_env,
    copy_run_dir,
    database_files,
    day_peaks,
    day_seconds,
    generate,
    git_commit,
    last_run_steps,
    loadavg,
    median_run,
    nightly,
    save_state,
    timed,
    working_inbox,
)
from bench.report import previous_peak_rss, write_results  # noqa: E402


def bench_size(label: str, accounts: int, days: int, cache_root: Path, args: argparse.Namespace) -> dict:
    print(f"== {label}: {accounts:,} accounts (load {loadavg()})", flush=True)
    cache = cache_root / label
    inbox = generate(cache, accounts, days, seed=42)
    plan = json.loads((inbox / "_plan" / "plan.json").read_text())
    work, kept = cache / "run", cache / "backfilled"
    last = START + timedelta(days=days - 1)
    env = cli_env(work / "inbox", work)
    shutil.rmtree(work, ignore_errors=True)
    # A kept backfill has its own working inbox (kept/inbox, redacted by the backfill's erasures); one
    # kept before the identity vault and the in-place redaction has none and is not reused.
    if label in args.reuse and (kept / "done.json").exists() and (kept / "inbox").is_dir():
        copy_run_dir(kept, work)
        backfill = json.loads((kept / "done.json").read_text())
        print(f"  reusing the backfill of {backfill['finished']}", flush=True)
    else:
        work.mkdir(parents=True)
        working_inbox(inbox, work)
        load_before = loadavg()
        wall, rss, out = timed(backfill_command(last), env)
        per_day = day_seconds(out)
        backfill = {
            "wall_s": wall,
            "rss_mb": rss,  # the largest process's peak; each day's own (sampled) peak is below it
            "days": len(per_day),
            "per_day_s": per_day,
            "per_day_rss_mb": day_peaks(out),
            "load_before": load_before,
            "load_after": loadavg(),
            "finished": time.strftime("%Y-%m-%d %H:%M"),
            "last_day_steps": last_run_steps(work)["steps"],
        }
        copy_run_dir(work, kept)
        (kept / "done.json").write_text(json.dumps(backfill, indent=1))
    # The post-backfill state every night below starts from: the warehouse, its vault and the
    # working inbox's event files (hard links: a night's redaction replaces files, never writes them).
    snapshot = cache / "before_last"
    save_state(work, snapshot)

    runs = []
    for i in range(args.repeats):
        run = nightly(env, work, snapshot, last)
        print(f"  nightly #{i + 1}: {run['in_process_s']:.1f} s in process, {run['wall_s']:.1f} s wall, "
              f"{run['rss_mb']:.0f} MB peak RSS (load {run['load_before']} -> {run['load_after']})", flush=True)  # fmt: skip
        runs.append(run)
    one_core = nightly(env, work, snapshot, last, one_core=True) if args.one_core else None
    erasure = erasure_series(env, work, snapshot, last, plan) if args.erasure_series else None
    warehouse_before = snapshot / WAREHOUSE
    ingest = ingestion_vs_parser(inbox, warehouse_before, last)
    verification = read_text_columns(warehouse_before)
    result = {
        "label": label,
        "accounts": accounts,
        "events_total": plan["totals"]["accepted"],
        "events_last_day": plan["days"][last.isoformat()]["received"],
        "backfill": backfill,
        "nightly_runs": runs,
        "nightly": median_run(runs),
        "one_core": one_core,
        "erasure_nights": erasure,
        "ingest": ingest,
        "verification": verification,
        "snapshot_mb": sum(f.stat().st_size for f in database_files(warehouse_before)) / 1e6,
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "commit": git_commit(),
    }
    if args.pandas and (label != "3m" or args.pandas_3m):
        print("  pandas baseline ...", flush=True)
        try:
            cmd = [sys.executable, str(ROOT / "bench" / "pandas_baseline.py"), "--inbox", str(inbox)]
            wall, rss, out = timed([*cmd, "--until", last.isoformat()])
            result["pandas"] = {"wall_s": wall, "rss_mb": rss, **json.loads(out.strip().splitlines()[-1])}
        except RuntimeError as exc:
            result["pandas"] = {"error": str(exc).splitlines()[0]}
    shutil.rmtree(snapshot, ignore_errors=True)
    print(
        json.dumps({k: v for k, v in result.items() if k not in ("nightly_runs",)}, indent=1, default=str), flush=True
    )
    return result


def merge_results(earlier: list[dict], measured: list[dict]) -> list[dict]:
    """This invocation's results, plus earlier ones of the sizes it did not measure, smallest first."""
    now = {r["label"] for r in measured}
    return sorted([r for r in earlier if r["label"] not in now] + measured, key=lambda r: r["accounts"])


def same_run(earlier: list[dict], commit: str) -> list[dict]:
    """The earlier results that belong to the latest run: those measured at `commit`.

    `--keep` merges only these, so bench/results.md never mixes in a run of other code."""
    return [r for r in earlier if r.get("commit") == commit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m,3m")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "cache")
    parser.add_argument("--repeats", type=int, default=2, help="nightly runs per size (median reported)")
    parser.add_argument("--one-core", action="store_true", help="also run the nightly day on one core")
    parser.add_argument(
        "--no-erasure-series",
        dest="erasure_series",
        action="store_false",
        help="skip the erasure nights (the last day with no, one and 10,000 new erasures; bench/erasure.py)",
    )
    parser.add_argument(
        "--reuse",
        nargs="?",
        const="all",
        default="",
        help="reuse a cached backfill when there is one: for every size, or for the sizes given (--reuse 1m,3m)",
    )
    parser.add_argument("--no-pandas", dest="pandas", action="store_false")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="also report the sizes an earlier invocation measured at the same commit (bench/cache/results.json)",
    )
    parser.add_argument("--pandas-3m", action="store_true", help="run the pandas baseline at 3M too")
    parser.add_argument(
        "--no-fixed-cost", dest="fixed_cost", action="store_false", help="do not measure the night's fixed cost"
    )
    parser.add_argument(
        "--history",
        default="",
        help="history lengths in days for the history series (e.g. 30,60,90; bench/history.py); none by default",
    )
    parser.add_argument("--history-size", default="100k", help="the size of the history series")
    parser.add_argument("--notes", default="", help="a paragraph placed under the header of results.md")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.md")
    parser.add_argument(
        "--previous",
        type=Path,
        help="the previous run's results, for the erasure nights' peak RSS target "
        "(default: --out before it is rewritten, else bench/results.md)",
    )
    args = parser.parse_args(argv)
    previous = args.previous or (args.out if args.out.exists() else ROOT / "bench" / "results.md")
    previous_rss = previous_peak_rss(previous.read_text()) if previous.exists() else {}
    args.reuse = set(args.sizes.split(",")) if args.reuse == "all" else set(filter(None, args.reuse.split(",")))
    results_file = args.cache / "results.json"
    sizes = args.sizes.split(",")
    # With --keep, sizes an earlier invocation measured at this commit join this run's table, so a
    # long size can be measured on its own; other commits' results are another run and are dropped.
    commit = git_commit()
    earlier = same_run(json.loads(results_file.read_text()), commit) if args.keep and results_file.exists() else []
    results = []
    for label in sizes:
        results.append(bench_size(label, SIZES[label], args.days, args.cache, args))
        results_file.write_text(json.dumps(merge_results(earlier, results), indent=1, default=str))
    results = merge_results(earlier, results)
    fixed_file = args.cache / "fixed_cost.json"
    if args.fixed_cost:
        fixed = fixed_cost(args.cache, args.repeats)
        fixed_file.write_text(json.dumps(fixed, indent=1))
    else:
        kept = json.loads(fixed_file.read_text()) if args.keep and fixed_file.exists() else None
        fixed = kept if kept is not None and kept.get("commit") == commit else None
    history_file = args.cache / "history.json"
    if args.history:
        lengths = [int(x) for x in args.history.split(",")]
        history = history_series(args.history_size, SIZES[args.history_size], lengths, args.cache, args.repeats)
        history_file.write_text(json.dumps(history, indent=1))
    else:
        kept = json.loads(history_file.read_text()) if args.keep and history_file.exists() else None
        history = kept if kept is not None and kept.get("commit") == commit else None
    machine = f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    print(write_results(args.out, results, machine, args.notes, fixed, previous_rss, history))
    return 0


if __name__ == "__main__":
    sys.exit(main())
