"""Run days of the nightly job (CONTRACT 3); verify the report archive; generate a test inbox; prepare the instance."""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import date

from assets.reports.status import INCOMPLETE, NO_DATA
from pipelines import config
from pipelines.console import quiet_console
from pipelines.instance import prepare_dagster_home

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_BUSY, EXIT_NOT_FOUND = 0, 1, 2, 3, 4
EXIT_CODES = (
    (
        EXIT_OK,
        "every day ran and every blocking check passed; verify-archive: every published day matches; "
        "subject: its file is written",
    ),
    (EXIT_FAILED, "a day's run failed (a blocking check or a step); verify-archive: a file or a link does not match"),
    (EXIT_CONFIG, "bad usage or configuration, a day not allowed, or a plan not confirmed (one line on stderr)"),
    (EXIT_BUSY, "another run holds the warehouse lock"),
    (EXIT_NOT_FOUND, "subject: no subject found (no file is written)"),
)
#: `--account-id` / `--email` given without a value: the identifier is read from standard input.
FROM_STDIN = "-"
#: A plan longer than this many days asks for confirmation when stdin is a terminal (or --yes).
CONFIRM_ABOVE_DAYS = 31

FIRST_SUPPORTED_DAY, LAST_SUPPORTED_DAY = config.FIRST_SUPPORTED_DAY, config.LAST_SUPPORTED_DAY
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit 2
        self.exit(EXIT_CONFIG, f"error: {message}\n")


def _date(text: str) -> date:
    if not _ISO_DAY.fullmatch(text):
        raise argparse.ArgumentTypeError(f"invalid date {text!r}, expected YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:  # the form is right, the calendar says no (month 13, February 30)
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: not a valid date ({exc})") from None
    if not FIRST_SUPPORTED_DAY <= day <= LAST_SUPPORTED_DAY:
        raise argparse.ArgumentTypeError(
            f"invalid date {text!r}, expected a day from {FIRST_SUPPORTED_DAY} to {LAST_SUPPORTED_DAY}"
        )
    return day


def _epilog() -> str:
    codes = "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES)
    width = max(len(name) for name, _, _ in config.VARIABLES)
    variables = "\n".join(
        f"  {name:<{width}}  {meaning} (default: {default})" for name, default, meaning in config.VARIABLES
    )
    return (
        "Days are calendar days in Europe/Prague; only days that have ended can run.\n\n"
        f"exit codes:\n{codes}\n\nenvironment variables:\n{variables}"
    )


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print the days that would run, in order, and exit")
    parser.add_argument(
        "--yes",
        action="store_true",
        help=f"run a plan of more than {CONFIRM_ABOVE_DAYS} days without asking (asked only on a terminal)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m pipelines",
        description=__doc__.splitlines()[0],
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="command")

    nightly = sub.add_parser(
        "nightly",
        help="run day D, catching up on unprocessed earlier days",
        description="Run day D, after every unprocessed earlier day (from the first day in the inbox), in order.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    nightly.add_argument("--date", required=True, type=_date, help="the day to process (YYYY-MM-DD), before today")
    _add_plan_options(nightly)

    backfill = sub.add_parser(
        "backfill",
        help="run every day from D1 to D2, in order",
        description="Run every day from D1 to D2, in order, each publishing its report (processed days run again).",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backfill.add_argument("--from", dest="start", required=True, type=_date, help="the first day (YYYY-MM-DD)")
    backfill.add_argument("--to", dest="end", required=True, type=_date, help="the last day (YYYY-MM-DD), before today")
    _add_plan_options(backfill)

    subject = sub.add_parser(
        "subject",
        help="write one subject's file (consent proof, CLUB, marketing sends, violations, erasure)",
        description="Write <reports>/subjects/<key prefix>.html and .json for one subject, as of the last "
        "processed day. An account id or e-mail given without a value is read from standard input (not "
        "echoed on a terminal), so that it stays out of shell history; only its keys are ever written.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    who = subject.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--account-id", nargs="?", const=FROM_STDIN, metavar="ID", help="the account id (omit ID: read from stdin)"
    )
    who.add_argument(
        "--email",
        nargs="?",
        const=FROM_STDIN,
        metavar="EMAIL",
        help="an e-mail the subject holds or held; each subject that held it gets a file (omit EMAIL: read from stdin)",
    )
    who.add_argument(
        "--subject-key", metavar="KEY", help="the subject_key, or its first 12+ hex digits as the report shows it"
    )

    verify = sub.add_parser(
        "verify-archive",
        help="check the published reports from D1 to D2 against their manifests and the chain of manifests",
        description=(
            "Check every day folder of COMPLIANCE_REPORTS from D1 to D2, in order: each file against the\n"
            "day's MANIFEST.sha256, no file left unlisted, and the manifest's link to the previous day's\n"
            "manifest (which may be before D1). One line a day; stops at the first day that does not match,\n"
            "naming it and the file. A day without a folder was not published: not a failure, unless the\n"
            "next day's link shows that its folder was deleted. Reads files only: no warehouse, no Dagster."
        ),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("--from", dest="start", required=True, type=_date, help="the first day to check (YYYY-MM-DD)")
    verify.add_argument("--to", dest="end", required=True, type=_date, help="the last day to check (YYYY-MM-DD)")

    sub.add_parser(
        "prepare-instance",
        help="create $DAGSTER_HOME (default .dagster_home) with the project's instance settings if missing",
    )

    generate = sub.add_parser("generate", help="write a synthetic, contract-valid inbox")
    import generator

    generator.add_arguments(generate)
    return parser


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """One line a day; in a run of several days, also days done, days to go and the time left
    (the mean wall time of a day so far, times the days to go)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, i: int, n: int, outcome) -> None:
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
            if s.get("status") in (NO_DATA, INCOMPLETE):  # an outage is never a quiet "ok"
                parts.append("NO DATA for the day" if s["status"] == NO_DATA else "INCOMPLETE input")
        if outcome.peak_rss_mb is not None:
            parts.append(f"peak_rss={outcome.peak_rss_mb:.0f}MB")
        if n > 1:
            left = (time.monotonic() - self.started) / i * (n - i)
            parts.append(f"| {i} done, {n - i} to go, ~{_duration(left)} left")
        if outcome.failures:
            parts.append("; ".join(sorted(set(outcome.failures))))
        print(" ".join(parts), flush=True)


def _describe(days: list[date]) -> str:
    return f"{len(days)} day(s) from {days[0]} to {days[-1]}"


def _check_range(args) -> None:
    """Refuse a --from after --to (backfill, verify-archive)."""
    if args.start > args.end:
        raise config.ConfigError(f"--from {args.start} is after --to {args.end}")


def _check_ended(args) -> None:
    """Refuse a day that has not ended yet in Europe/Prague (before anything is opened)."""
    from pipelines.clock import last_complete_day

    last_asked = args.end if args.command == "backfill" else args.date
    last = last_complete_day()
    if last_asked > last:
        option = "--to" if args.command == "backfill" else "--date"
        raise config.ConfigError(
            f"{option} {last_asked} has not ended yet in Europe/Prague; the last day that can run is {last}"
        )


def _confirm(days: list[date]) -> None:
    """Ask on the terminal before a long plan; anything but yes stops here (exit 2)."""
    try:
        answer = input(f"Run {_describe(days)}? Pass --yes to skip this question. [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise config.ConfigError(f"not confirmed: {_describe(days)}; check the dates, or pass --yes")


def _run(args) -> int:
    from pipelines import runner

    settings = config.load_settings()
    runner.validate_paths(settings)
    config.warn_if_dev_key(settings.hash_key)
    if args.command == "backfill":
        _check_range(args)
    _check_ended(args)
    if not args.dry_run:
        prepare_dagster_home()

    def plan() -> list[date]:
        runner.check_warehouse(settings)
        if args.command == "backfill":
            days = runner.date_range(args.start, args.end)
        else:
            days = runner.nightly_plan(settings, args.date)
        runner.check_window(days)
        return days

    with runner.warehouse_lock(settings):
        days = plan()
        if args.dry_run:
            print(f"Plan: {_describe(days)}, in order (dry run: nothing runs)")
            print("\n".join(d.isoformat() for d in days), flush=True)
            return EXIT_OK
        asks = len(days) > CONFIRM_ABOVE_DAYS and not args.yes and sys.stdin.isatty()
        if not asks:
            return _execute(runner, settings, args, days)
    _confirm(days)  # with the lock released: a nightly cron run is not blocked by a question
    with runner.warehouse_lock(settings):
        return _execute(runner, settings, args, plan())


def _execute(runner, settings, args, days: list[date]) -> int:
    if args.command == "backfill":
        print(f"Backfilling {_describe(days)}", flush=True)
    elif len(days) > 1:
        print(f"Catching up on {len(days) - 1} unprocessed day(s) before {args.date}", flush=True)
    outcomes = runner.run_days(settings, days, Progress())
    failed = [o for o in outcomes if not o.success]
    if failed:
        print(
            f"{len(failed)} of {len(outcomes)} day(s) failed: " + ", ".join(str(o.day) for o in failed),
            file=sys.stderr,
            flush=True,
        )
        return EXIT_FAILED
    return EXIT_OK


def _identifier(value: str, what: str) -> str:
    """The identifier given, or read from standard input: without echo on a terminal, else one line."""
    if value == FROM_STDIN:
        if sys.stdin.isatty():
            import getpass

            value = getpass.getpass(f"{what}: ")
        else:
            value = sys.stdin.readline().rstrip("\r\n")
    if not value.strip():
        raise config.ConfigError(f"no {what} given (on the command line or standard input)")
    return value


def _subject(args) -> int:
    from pipelines import runner
    from pipelines.evidence.page import publish
    from pipelines.evidence.subject import Ambiguous, Lookup, NotFound
    from pipelines.warehouse import connect

    if args.account_id is not None:
        lookup = Lookup("account_id", _identifier(args.account_id, "account id"))
    elif args.email is not None:
        lookup = Lookup("email", _identifier(args.email, "e-mail"))
    else:
        lookup = Lookup("subject_key", args.subject_key)
    settings = config.load_settings()
    if not settings.warehouse.is_file():
        raise config.ConfigError(f"no warehouse at {settings.warehouse} (COMPLIANCE_WAREHOUSE): run a night first")
    with runner.warehouse_lock(settings):
        runner.check_warehouse(settings)
        try:
            with connect(settings.warehouse, settings.hash_key, read_only=True) as con:
                written = publish(con, settings.hash_key, lookup, settings.reports)
        except NotFound as exc:
            print(f"not found: {exc}", file=sys.stderr)
            return EXIT_NOT_FOUND
        except (Ambiguous, ValueError) as exc:
            raise config.ConfigError(str(exc)) from None
    for f, page, data in written:
        print(f"subject {f.file_stem}: {f.status}, as of {f.as_of}: {page} and {data.name}", flush=True)
    return EXIT_OK


def _not_published(first: date, last: date) -> str:
    if first == last:
        return f"{first} not published"
    return f"{first} to {last} not published ({(last - first).days + 1} days)"


def _verify_archive(args) -> int:
    """verify-archive: one line a day (runs of days without a folder on one line), the first failing day's
    problems, then exit 1; or a summary line and exit 0."""
    from assets.reports.archive import MANIFEST_FILE, verify_archive
    from assets.reports.publish import shown_path

    _check_range(args)
    root = config.load_settings().reports
    if not root.is_dir():
        raise config.ConfigError(f"reports folder {root} does not exist or is not a directory (COMPLIANCE_REPORTS)")
    ok = missing = 0
    gap: list[date] = []
    last = None
    for result in verify_archive(root, args.start, args.end):
        if not result.published:
            missing += 1
            gap.append(result.day)
            continue
        if gap:
            print(_not_published(gap[0], gap[-1]), flush=True)
            gap = []
        if result.problems:
            for problem in result.problems:
                print(f"{problem.day} {shown_path(problem.name)}: {problem.reason}", flush=True)
            print(f"error: {result.day} does not match its manifest or its link; later days were not checked",
                  file=sys.stderr)  # fmt: skip
            return EXIT_FAILED
        ok += 1
        last = result
        print(f"{result.day} ok", flush=True)
    if gap:
        print(_not_published(gap[0], gap[-1]), flush=True)
    summary = f"{ok + missing} day(s) from {args.start} to {args.end}: {ok} match, {missing} not published"
    if last is not None:  # nothing in the range covers the last day's manifest: an outside copy does
        summary += (
            f"; {MANIFEST_FILE} of {last.day} has sha256 {last.manifest_sha256}, to compare with the copy kept "
            "outside the archive (the report asset's manifest_sha256 in Dagster)"
        )
    print(summary, flush=True)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    quiet_console()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "generate":
        import generator

        return generator.main_from_args(args)
    try:
        if args.command == "subject":
            return _subject(args)
        if args.command == "prepare-instance":
            print(f"Dagster instance ready: DAGSTER_HOME={prepare_dagster_home()}", flush=True)
            return EXIT_OK
        if args.command == "verify-archive":
            return _verify_archive(args)
        return _run(args)
    except config.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except config.WarehouseBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BUSY
