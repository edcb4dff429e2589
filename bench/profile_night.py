"""Where a nightly run spends its time and memory, statement by statement.

    .venv/bin/python bench/profile_night.py --size 1m            # needs a cached backfill (bench/run.py)
    .venv/bin/python bench/profile_night.py --size 1m --top 40

Copies the post-backfill state of a size (bench/cache/<size>/backfilled/: the warehouse, its
identity vault and the working inbox, hard-linked), runs the nightly job for the 30th day in this
process with every DuckDB statement timed, and prints the slowest statements with the function of
assets/, checks/ or pipelines/ that ran them, plus the totals per function and one line per erasure
scan of the night. Statements are shown by their first characters
of SQL text only (no data values).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import KEY, SIZES, START, cli_env, copy_run_dir  # noqa: E402
from pipelines.day_run import resident_mb  # noqa: E402

TIMES: list[tuple[float, str, str]] = []
#: Peak resident set (MB) of this process while each statement ran, in TIMES order.
PEAKS: list[float] = []


class RssSampler(threading.Thread):
    """Samples this process's resident set every few milliseconds; `take()` returns the peak since the last call."""

    def __init__(self, interval: float = 0.01):
        super().__init__(daemon=True)
        self.interval, self.peak = interval, 0.0

    def rss(self) -> float:
        return resident_mb() or 0.0

    def run(self) -> None:
        while True:
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def take(self) -> float:
        peak, self.peak = max(self.peak, self.rss()), self.rss()
        return peak


SAMPLER = RssSampler()
#: Characters of SQL text kept per statement (--dump keeps more).
SQL_CHARS = 110


def _caller() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if any(f"/{p}/" in path for p in ("assets", "checks")) or "/pipelines/warehouse/" in path:
            return f"{Path(path).parent.name}/{Path(path).stem}.{frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


class TimedConnection:
    """Delegates to a DuckDB connection and records how long each execute() takes."""

    def __init__(self, con):
        self._con = con

    def execute(self, sql, *args, **kwargs):
        SAMPLER.take()
        started = time.perf_counter()
        result = self._con.execute(sql, *args, **kwargs)
        TIMES.append((time.perf_counter() - started, _caller(), " ".join(str(sql).split())[:SQL_CHARS]))
        PEAKS.append(SAMPLER.take())
        return result

    def executemany(self, sql, *args, **kwargs):
        SAMPLER.take()
        started = time.perf_counter()
        result = self._con.executemany(sql, *args, **kwargs)
        TIMES.append((time.perf_counter() - started, _caller(), "MANY " + " ".join(str(sql).split())[:SQL_CHARS]))
        PEAKS.append(SAMPLER.take())
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._con.close()


#: The statement each erasure scan (`scan_warehouse`) starts with.
SCAN_START = "CREATE OR REPLACE TEMP TABLE _warehouse_hits"
#: The modules of assets/purge/ whose functions make up the erasure scan (as `_caller` names them).
SCAN_MODULES = ("purge/scan.", "purge/scan_memory.", "purge/tokens.", "purge/columns.")


def print_scans(times: list[tuple[float, str, str]]) -> None:
    """Seconds of each erasure scan of the night by scan function, the scans in the order they ran
    (the purge's, the register's, the blocking check's): statements of the scan's modules from one
    scan's first statement to the next one's."""
    scans: list[dict[str, float]] = []
    for t, fn, sql in times:
        if fn == "purge/scan.scan_warehouse" and sql.startswith(SCAN_START):
            scans.append(defaultdict(float))
        if scans and fn.startswith(SCAN_MODULES):
            scans[-1][fn.removeprefix("purge/")] += t
    if not scans:
        return
    print("\n-- erasure scans, in the order they ran (seconds of SQL by scan function)")
    for number, scan in enumerate(scans, 1):
        parts = ", ".join(f"{fn} {t:.2f}" for fn, t in sorted(scan.items(), key=lambda x: -x[1]) if t >= 0.01)
        print(f"{number}. {sum(scan.values()):6.2f}  {parts}")


def print_python(profiler, top: int) -> None:
    """The functions of this repository (assets/, checks/, pipelines/) by cumulative time, SQL included."""
    import pstats

    stats = pstats.Stats(profiler).stats
    rows = []
    for (path, line, name), (_cc, calls, own, cumulative, _callers) in stats.items():
        relative = Path(path).resolve()
        if relative.is_relative_to(ROOT) and relative.parts[len(ROOT.parts)] in ("assets", "checks", "pipelines"):
            rows.append((cumulative, own, calls, f"{relative.relative_to(ROOT)}:{line} {name}"))
    print(f"\n-- Python: cumulative / own seconds, calls, function (top {top} of this repo)")
    for cumulative, own, calls, where in sorted(rows, reverse=True)[:top]:
        print(f"{cumulative:7.2f} {own:7.2f} {calls:7d}  {where}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1m", choices=sorted(SIZES))
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "cache")
    parser.add_argument("--dump", type=Path, help="also write every statement, in order, to this TSV file")
    parser.add_argument(
        "--variant", choices=("none", "one", "ten_thousand"), help="the night of an erasure series (bench/erasure.py)"
    )
    parser.add_argument(
        "--python",
        type=int,
        metavar="N",
        help="also profile the Python of the night (cProfile) and print its N costliest functions of this repo",
    )
    args = parser.parse_args()
    if args.dump:
        global SQL_CHARS
        SQL_CHARS = 600
    cache = args.cache / args.size
    kept = cache / "backfilled"
    if not (kept / "done.json").exists():
        sys.exit(f"no cached backfill under {kept}: run bench/run.py --sizes {args.size} first")
    if not (kept / "inbox").is_dir():
        sys.exit(f"the backfill under {kept} has no working inbox (kept before the vault): run bench/run.py again")
    work = cache / "profile"
    copy_run_dir(kept, work)  # the warehouse, its vault, the inbox as the backfill left it
    last = START + timedelta(days=args.days - 1)
    if args.variant:
        import json

        from bench.erasure import build_variant

        plan = json.loads((cache / "inbox" / "_plan" / "plan.json").read_text())
        print(build_variant(work / "inbox" / "events" / last.isoformat(), args.variant, plan, last))
    os.environ.update(cli_env(work / "inbox", work))
    os.environ["COMPLIANCE_HASH_KEY"] = KEY

    import pipelines.resources as resources
    import pipelines.warehouse as warehouse

    original = warehouse.open_connection

    def timed_open(*a, **k):
        return TimedConnection(original(*a, **k))

    resources.open_connection = timed_open
    warehouse.open_connection = timed_open

    from pipelines import config
    from pipelines.runner import run_days

    SAMPLER.start()
    profiler = None
    if args.python:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    outcomes = run_days(config.load_settings(), [last], lambda i, n, o: None)
    wall = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        print_python(profiler, args.python)
    print(f"nightly {last}: success={outcomes[0].success} in {wall:.1f} s; SQL total {sum(t for t, *_ in TIMES):.1f} s")
    by_fn: dict[str, float] = defaultdict(float)
    for t, fn, _ in TIMES:
        by_fn[fn] += t
    print("\n-- by function")
    for fn, t in sorted(by_fn.items(), key=lambda x: -x[1])[: args.top]:
        print(f"{t:7.2f}  {fn}")
    print_scans(TIMES)
    print("\n-- slowest statements")
    for t, fn, sql in sorted(TIMES, reverse=True)[: args.top]:
        print(f"{t:7.2f}  {fn:45s} {sql}")
    print(f"\n-- highest peak resident set (MB) while a statement ran; process peak {max(PEAKS, default=0):.0f} MB")
    for peak, (t, fn, sql) in sorted(zip(PEAKS, TIMES, strict=True), key=lambda x: -x[0])[: args.top]:
        print(f"{peak:7.0f}  {t:7.2f}  {fn:45s} {sql}")
    if args.dump:
        args.dump.write_text(
            "".join(f"{t:.3f}\t{m:.0f}\t{fn}\t{sql}\n" for (t, fn, sql), m in zip(TIMES, PEAKS, strict=True))
        )
    return 0 if outcomes[0].success else 1


if __name__ == "__main__":
    sys.exit(main())
