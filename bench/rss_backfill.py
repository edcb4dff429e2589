"""Peak RSS of a backfill with and without handing freed memory back to the OS (malloc_trim).

    .venv/bin/python bench/rss_backfill.py --size 1m --days 8

Runs `python -m pipelines backfill` over the first `--days` days of a cached bench inbox
(bench/run.py generates it) twice from an empty warehouse: as shipped, and with
`pipelines.warehouse.release_freed_memory` turned into a no-op. Prints both peak RSS figures
(the child's own, from wait4) and the wall times.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import SIZES, START, cli_env, timed  # noqa: E402

NO_TRIM = (
    "import sys, pipelines.warehouse as w, pipelines.resources as r; "
    "w.release_freed_memory = r.release_freed_memory = lambda: None; "
    "from pipelines.cli import main; sys.exit(main(sys.argv[1:]))"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1m", choices=sorted(SIZES))
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "cache")
    args = parser.parse_args()
    inbox = args.cache / args.size / "inbox"
    if not inbox.is_dir():
        sys.exit(f"no cached inbox at {inbox}: run bench/run.py --sizes {args.size} first")
    last = START + timedelta(days=args.days - 1)
    rows = []
    for label, head in (("malloc_trim after every connection", ["-m", "pipelines"]), ("no trim", ["-c", NO_TRIM])):
        work = args.cache / args.size / "rss"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        cmd = [sys.executable, *head, "backfill", "--from", START.isoformat(), "--to", last.isoformat()]
        wall, rss, _ = timed(cmd, cli_env(inbox, work))
        rows.append((label, wall, rss))
        print(f"{label}: {args.days} days in {wall:.0f} s, peak RSS {rss:.0f} MB", flush=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n| {args.size}, {args.days}-day backfill | wall (s) | peak RSS (MB) |\n|---|---:|---:|")
    for label, wall, rss in rows:
        print(f"| {label} | {wall:.0f} | {rss:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
