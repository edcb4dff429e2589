"""Command-line options of ``python -m pipelines generate`` (and ``python -m generator``)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from generator.inbox import generate
from generator.writer import DEFAULT_LINES_PER_FILE


def _date_arg(s: str) -> date:
    try:
        return date.fromisoformat(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {s!r}") from e


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``generate`` options to ``parser``."""
    parser.add_argument("--out", type=Path, required=True, help="inbox directory to write")
    parser.add_argument("--accounts", type=int, required=True, help="number of accounts")
    parser.add_argument("--days", type=int, required=True, help="number of arrival days")
    parser.add_argument("--start", type=_date_arg, required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument(
        "--bad-line-rate", type=float, default=0.002, help="share of lines that break the contract (rejected)"
    )
    parser.add_argument("--violation-rate", type=float, default=0.002, help="rate of planted policy violations")
    parser.add_argument(
        "--duplicate-rate", type=float, default=0.002, help="share of lines sent again with the same messageId"
    )
    parser.add_argument(
        "--late-rate", type=float, default=0.01, help="share of events arriving on a later day than they occurred"
    )
    parser.add_argument("--gzip-every", type=int, default=3, help="every N-th day is gzip (0: never)")
    parser.add_argument("--export-every", type=int, default=1, help="export every N days")
    parser.add_argument("--corrupt-files", type=int, default=0, help="unreadable files on the last days")
    parser.add_argument("--events-per-account", type=float, default=10.0, help="mean events per account over the days")
    parser.add_argument(
        "--lines-per-file", type=int, default=DEFAULT_LINES_PER_FILE, help="lines per event file before the next part"
    )
    parser.add_argument("--workers", type=int, default=None, help="simulation processes (output is the same)")
    parser.add_argument("--no-quirks", dest="quirks", action="store_false", help="no BOM, CRLF or blank lines")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def main_from_args(args: argparse.Namespace) -> int:
    """Run :func:`generate` from parsed arguments; print a one-line summary."""
    t = time.monotonic()
    quiet = getattr(args, "quiet", False)

    def prog(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        plan = generate(
            args.out,
            args.accounts,
            args.days,
            args.start,
            args.seed,
            bad_line_rate=args.bad_line_rate,
            violation_rate=args.violation_rate,
            duplicate_rate=args.duplicate_rate,
            late_rate=args.late_rate,
            gzip_every=args.gzip_every,
            export_every=args.export_every,
            corrupt_files=args.corrupt_files,
            events_per_account=args.events_per_account,
            lines_per_file=getattr(args, "lines_per_file", DEFAULT_LINES_PER_FILE),
            workers=getattr(args, "workers", None),
            quirks=getattr(args, "quirks", True),
            progress=None if quiet else prog,
        )
    except (FileExistsError, ValueError) as e:
        print(f"generate: error: {e}", file=sys.stderr)
        return 2
    tot = plan["totals"]
    print(
        f"generated {args.accounts} accounts over {args.days} days: {tot['received']} lines "
        f"({tot['accepted']} accepted, {tot['duplicates']} duplicates, {tot['rejected']} rejected), "
        f"{len(plan['violations'])} planted violations, {len(plan['deletions'])} deletions "
        f"in {time.monotonic() - t:.1f}s"
    )
    return 0
