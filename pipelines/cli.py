"""Command line: `python -m pipelines {nightly,backfill,generate,prepare-instance}` (CONTRACT section 3).

Exit codes: 0 success; 1 a day's run failed (a blocking check or a step); 2 bad usage or
configuration; 3 the warehouse is locked by another run.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from pipelines import config
from pipelines.console import quiet_console
from pipelines.instance import prepare_dagster_home

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_BUSY = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit 2
        self.exit(EXIT_CONFIG, f"error: {message}\n")


#: Days the Dagster partitions and Prague-time arithmetic can represent (end of D + 1 h must exist).
FIRST_SUPPORTED_DAY, LAST_SUPPORTED_DAY = date(1971, 1, 1), date(9998, 12, 31)


def _date(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}, expected YYYY-MM-DD") from None
    if not FIRST_SUPPORTED_DAY <= day <= LAST_SUPPORTED_DAY:
        raise argparse.ArgumentTypeError(
            f"invalid date {text!r}, expected a day from {FIRST_SUPPORTED_DAY} to {LAST_SUPPORTED_DAY}"
        )
    return day


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m pipelines", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    nightly = sub.add_parser("nightly", help="run day D, catching up on unprocessed earlier days")
    nightly.add_argument("--date", required=True, type=_date, help="the day to process (YYYY-MM-DD)")

    backfill = sub.add_parser("backfill", help="run every day from D1 to D2, in order")
    backfill.add_argument("--from", dest="start", required=True, type=_date)
    backfill.add_argument("--to", dest="end", required=True, type=_date)

    sub.add_parser(
        "prepare-instance",
        help="create $DAGSTER_HOME (default .dagster_home) with the project's instance settings if missing",
    )

    generate = sub.add_parser("generate", help="write a synthetic, contract-valid inbox")
    import generator

    generator.add_arguments(generate)
    return parser


def _progress(i: int, n: int, outcome) -> None:
    status = "ok" if outcome.success else "FAILED"
    parts = [f"[{i}/{n}] {outcome.day} {status} in {outcome.seconds:.1f}s"]
    s = outcome.summary
    if s:
        q = s.get("quality", {})
        v = sum(r.get("new", 0) for r in s.get("violations", {}).values())
        parts.append(
            f"received={q.get('received', 0)} accepted={q.get('accepted', 0)} "
            f"duplicates={q.get('duplicates', 0)} rejected={q.get('rejected', 0)} new_violations={v}"
        )
    if outcome.peak_rss_mb is not None:
        parts.append(f"peak_rss={outcome.peak_rss_mb:.0f}MB")
    if outcome.failures:
        parts.append("; ".join(sorted(set(outcome.failures))))
    print(" ".join(parts), flush=True)


def _run(args) -> int:
    from pipelines import runner

    settings = config.load_settings()
    runner.validate_paths(settings)
    config.warn_if_dev_key(settings.hash_key)
    prepare_dagster_home()
    if args.command == "backfill":
        if args.start > args.end:
            raise config.ConfigError(f"--from {args.start} is after --to {args.end}")
        with runner.warehouse_lock(settings):
            runner.check_warehouse(settings)
            days = runner.date_range(args.start, args.end)
            print(f"Backfilling {len(days)} day(s) from {args.start} to {args.end}", flush=True)
            outcomes = runner.run_days(settings, days, _progress)
    else:
        with runner.warehouse_lock(settings):
            runner.check_warehouse(settings)
            days = runner.nightly_plan(settings, args.date)
            if len(days) > 1:
                print(f"Catching up on {len(days) - 1} unprocessed day(s) before {args.date}", flush=True)
            outcomes = runner.run_days(settings, days, _progress)
    failed = [o for o in outcomes if not o.success]
    if failed:
        print(
            f"{len(failed)} of {len(outcomes)} day(s) failed: " + ", ".join(str(o.day) for o in failed),
            file=sys.stderr,
            flush=True,
        )
        return EXIT_FAILED
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    quiet_console()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "generate":
        import generator

        return generator.main_from_args(args)
    try:
        if args.command == "prepare-instance":
            print(f"Dagster instance ready: DAGSTER_HOME={prepare_dagster_home()}", flush=True)
            return EXIT_OK
        return _run(args)
    except config.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except config.WarehouseBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BUSY
