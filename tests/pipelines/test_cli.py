"""`python -m pipelines ...` in a subprocess (CONTRACT 3): backfill, nightly catch-up, exit codes."""

import fcntl
import io
import json
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.day_run import redact
from tests.helpers import Cli

REPO = Path(__file__).resolve().parents[2]


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def generate(cli: Cli, start: str, days: int, *extra: str) -> dict:
    proc = cli(
        "generate",
        *("--out", str(cli.inbox), "--accounts", "200", "--days", str(days), "--start", start, "--seed", "1"),
        *("--bad-line-rate", "0.03", "--duplicate-rate", "0.02", "--quiet", *extra),
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads((cli.inbox / "_plan" / "plan.json").read_text())


def landing_by_day(cli: Cli) -> dict[str, dict]:
    """What the warehouse holds per arrival day, in the shape of the generator's plan."""
    got: dict[str, dict] = {}
    for day, file, received, accepted, duplicates, rejected in cli.query(
        "SELECT arrival_date::VARCHAR, source_file, received, accepted, duplicates, rejected FROM landing.files"
    ):
        d = got.setdefault(day, {"received": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "files": {}})
        d["files"][file] = {"received": received, "accepted": accepted, "duplicates": duplicates, "rejected": rejected}
        for k, v in zip(
            ("received", "accepted", "duplicates", "rejected"), (received, accepted, duplicates, rejected), strict=True
        ):
            d[k] += v
    for day, reason, n in cli.query(
        "SELECT arrival_date::VARCHAR, reason, count(*) FROM landing.rejected GROUP BY ALL"
    ):
        got[day].setdefault("rejected_by_reason", {})[reason] = n
    for day, n in cli.query("SELECT arrival_date::VARCHAR, count(*) FROM landing.events GROUP BY ALL"):
        got[day]["events_rows"] = n
    for d in got.values():
        d.setdefault("rejected_by_reason", {})
        d.setdefault("events_rows", 0)
    return got


def assert_matches_plan(got: dict, plan: dict, days: list[str]) -> None:
    for day in days:
        expected = plan["days"][day]
        assert got[day]["files"] == expected["files"], day
        for k in ("received", "accepted", "duplicates", "rejected", "rejected_by_reason"):
            assert got[day][k] == expected[k], (day, k)
        assert got[day]["events_rows"] == expected["accepted"], day


def day_list(start: str, n: int) -> list[str]:
    first = date.fromisoformat(start)
    return [(first + timedelta(days=i)).isoformat() for i in range(n)]


def landing_snapshot(cli: Cli, days: list[str]) -> list:
    """The landing rows of `days`, without the columns an erasure may blank in a later run."""
    marks = ",".join(f"'{d}'" for d in days)
    return [
        cli.query(
            "SELECT message_id, event, subject_key, occurred_at, channel, consent_granted, email_key, source_file, "
            f"line_number, arrival_date FROM landing.events WHERE arrival_date IN ({marks}) ORDER BY ALL"
        ),
        cli.query(
            "SELECT source_file, line_number, reason, subject_key, message_id, arrival_date "
            f"FROM landing.rejected WHERE arrival_date IN ({marks}) ORDER BY ALL"
        ),
        cli.query(f"SELECT * FROM landing.files WHERE arrival_date IN ({marks}) ORDER BY ALL"),
    ]


def test_redact_masks_values_and_addresses():
    line = "Conversion Error: Could not convert string 'jana@example.cz' to INT32; got \"Národní 1\" from x@y.cz"
    assert redact(line) == "Conversion Error: Could not convert string '…' to INT32; got '…' from <e-mail>"
    assert len(redact("x" * 1000)) == 200


# ---------------------------------------------------------------------------------------------
# End to end over generated days
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_backfill_then_nightly_hold_exactly_what_the_generator_planned(cli):
    # Oct 24-26 2026 includes the 25-hour DST day; the last day also gets an unreadable file
    start, n = "2026-10-24", 3
    plan = generate(cli, start, n, "--corrupt-files", "1")
    days = day_list(start, n)

    proc = cli("backfill", "--from", days[0], "--to", days[1])
    progress = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    assert [line.split()[1] for line in progress] == days[:2]  # one line a day, in order
    got = landing_by_day(cli)
    assert set(got) == set(days[:2])
    assert_matches_plan(got, plan, days[:2])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SECURITY WARNING" not in proc.stderr  # a real key is set
    for day in days[:2]:
        assert (cli.reports / day / "summary.json").is_file()
    before = landing_snapshot(cli, days[:2])

    # nightly for the last day: days 1-2 were run, so only day 3 runs
    proc = cli("nightly", "--date", days[2])
    got = landing_by_day(cli)
    assert_matches_plan(got, plan, days)
    assert got[days[2]]["files"]["part-9999.jsonl.gz"] == {"received": 1, "accepted": 0, "duplicates": 0, "rejected": 1}
    assert landing_snapshot(cli, days[:2]) == before  # earlier days are not ingested again
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Catching up" not in proc.stdout
    assert [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("[")] == [days[2]]
    assert sorted(d for (d,) in cli.query("SELECT DISTINCT run_date::VARCHAR FROM ops.runs")) == days

    # CLI runs alert like scheduled ones (the generator plants violations): counts by rule, no identities
    alerts = [json.loads(line) for line in (cli.reports / "alerts.jsonl").read_text().splitlines()]
    found = {a["day"]: a for a in alerts if a["event"] == "violations_found"}
    assert found, alerts
    for day, alert in found.items():
        summary = json.loads((cli.reports / day / "summary.json").read_text())
        assert alert["counts"] == {r: v["new"] for r, v in summary["violations"].items() if v["new"]}
    assert "@" not in (cli.reports / "alerts.jsonl").read_text()


@pytest.mark.slow
def test_nightly_catches_up_in_order_and_a_rerun_changes_nothing(cli):
    start, n = "2026-10-01", 2
    plan = generate(cli, start, n)
    days = day_list(start, n)
    proc = cli("nightly", "--date", days[-1], COMPLIANCE_HASH_KEY=None)
    assert "Catching up on 1 unprocessed day(s)" in proc.stdout
    assert [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("[")] == days
    assert "SECURITY WARNING" in proc.stderr and "COMPLIANCE_HASH_KEY" in proc.stderr
    assert_matches_plan(landing_by_day(cli), plan, days)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(d for (d,) in cli.query("SELECT DISTINCT run_date::VARCHAR FROM ops.runs")) == days

    everything = landing_snapshot(cli, days)
    summary = (cli.reports / days[-1] / "summary.json").read_text()
    proc = cli("nightly", "--date", days[-1], COMPLIANCE_HASH_KEY=None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Catching up" not in proc.stdout
    assert landing_snapshot(cli, days) == everything
    assert (
        json.loads((cli.reports / days[-1] / "summary.json").read_text())["quality"] == json.loads(summary)["quality"]
    )


# ---------------------------------------------------------------------------------------------
# Usage and configuration errors: exit 2 with one clear line, before anything runs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["nightly", "--date", "2026-02-30"], "'2026-02-30': not a valid date (day is out of range for month)"),
        (["nightly", "--date", "yesterday"], "invalid date 'yesterday', expected YYYY-MM-DD"),
        (["nightly", "--date", "20261001"], "invalid date '20261001', expected YYYY-MM-DD"),
        (["backfill", "--from", "2026-10-01", "--to", "2026-13-01"], "'2026-13-01': not a valid date (month must be"),
        (["nightly", "--date", "9999-12-31"], "invalid date"),  # its end of day does not exist
        (["backfill", "--from", "0001-01-01", "--to", "2026-10-01"], "invalid date"),
        (["backfill", "--from", "2026-10-05", "--to", "2026-10-01"], "after --to"),
        (["nightly"], "--date"),
        (["backfill", "--from", "2026-10-01"], "--to"),
        (["fortnightly"], "invalid choice"),
        ([], "required"),
    ],
    ids=[
        "Feb 30",
        "words",
        "compact form",
        "month 13",
        "year 9999",
        "year 1",
        "from after to",
        "no date",
        "no --to",
        "unknown command",
        "no command",
    ],
)
def test_bad_usage_exits_2_with_one_line(cli, args, fragment):
    proc = cli(*args, timeout=60)
    assert proc.returncode == 2
    assert fragment in one_error_line(proc)
    assert proc.stdout == ""
    assert not cli.warehouse.exists()


def test_missing_inbox_exits_2(cli, tmp_path):
    proc = cli("nightly", "--date", "2026-10-01", COMPLIANCE_INBOX=str(tmp_path / "nowhere"), timeout=60)
    assert proc.returncode == 2
    assert "COMPLIANCE_INBOX" in one_error_line(proc)


def test_unwritable_reports_folder_exits_2(cli, tmp_path):
    # root ignores permission bits, so use a path under a regular file, which nobody can create
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = cli("backfill", "--from", "2026-10-01", "--to", "2026-10-01", COMPLIANCE_REPORTS=str(blocker / "reports"))
    assert proc.returncode == 2
    assert "reports folder" in one_error_line(proc)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        proc = cli("nightly", "--date", "2026-10-01", COMPLIANCE_REPORTS=str(locked))
        assert proc.returncode == 2
        assert "not writable" in one_error_line(proc)


@pytest.mark.parametrize(
    "command", [["nightly", "--date", "2026-10-01"], ["backfill", "--from", "2026-10-01", "--to", "2026-10-02"]]
)
def test_a_warehouse_that_is_not_a_duckdb_database_exits_2(cli, command):
    cli.warehouse.write_text("this is not a database\n")
    proc = cli(*command, timeout=120)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "not a usable DuckDB database" in line and "COMPLIANCE_WAREHOUSE" in line
    assert cli.warehouse.read_text() == "this is not a database\n"  # left as it was


@pytest.mark.parametrize(
    "variable, make, fragment",
    [
        ("COMPLIANCE_WAREHOUSE", lambda root: root / "wh-dir", "is not a file"),
        ("COMPLIANCE_WAREHOUSE", lambda root: root / "a-file" / "warehouse.duckdb", "warehouse folder"),
        ("DAGSTER_HOME", lambda root: root / "a-file" / "dagster_home", "DAGSTER_HOME"),
        ("COMPLIANCE_RAW_RETENTION_DAYS", lambda root: "four weeks", "COMPLIANCE_RAW_RETENTION_DAYS"),
    ],
    ids=["warehouse is a folder", "warehouse under a file", "dagster home under a file", "bad retention"],
)
def test_bad_configuration_exits_2(cli, tmp_path, variable, make, fragment):
    (tmp_path / "wh-dir").mkdir()
    (tmp_path / "a-file").write_text("x")
    proc = cli("nightly", "--date", "2026-10-01", timeout=120, **{variable: str(make(tmp_path))})
    assert proc.returncode == 2
    assert fragment in one_error_line(proc)


@pytest.mark.parametrize(
    "command", [["nightly", "--date", "2026-10-01"], ["backfill", "--from", "2026-10-01", "--to", "2026-10-02"]]
)
@pytest.mark.parametrize(
    "variable, value, fragment",
    [
        ("COMPLIANCE_RAW_RETENTION_DAYS", "1000000000", "COMPLIANCE_RAW_RETENTION_DAYS must be a whole number"),
        ("COMPLIANCE_RAW_RETENTION_DAYS", "٢٨", "COMPLIANCE_RAW_RETENTION_DAYS must be a whole number"),
        ("COMPLIANCE_COMPACTION_DELAY_DAYS", "+6", "COMPLIANCE_COMPACTION_DELAY_DAYS must be a whole number"),
        ("COMPLIANCE_DUCKDB_MEMORY_LIMIT", "-1GB", "COMPLIANCE_DUCKDB_MEMORY_LIMIT='-1GB' is not a DuckDB memory size"),
    ],
    ids=["retention overflow", "retention arabic-indic digits", "delay with a sign", "negative memory limit"],
)
def test_an_out_of_bounds_number_is_refused_before_any_run(cli, command, variable, value, fragment):
    """A number out of its bounds (1000000000 days would overflow the retention step's date
    arithmetic) is refused at start: exit 2, one line, and nothing is created."""
    events = cli.inbox / "events" / "2026-10-01"
    events.mkdir(parents=True)
    (events / "a.jsonl").write_text("")
    proc = cli(*command, timeout=120, **{variable: value})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert fragment in one_error_line(proc)
    assert proc.stdout == ""
    assert not (cli.reports / "2026-10-01").exists()
    assert not cli.warehouse.exists()


@pytest.mark.parametrize("key", [None, "", "   "])
def test_production_without_a_key_exits_2_with_one_line(cli, key):
    proc = cli("nightly", "--date", "2026-10-01", COMPLIANCE_ENV="production", COMPLIANCE_HASH_KEY=key, timeout=60)
    assert proc.returncode == 2
    assert "COMPLIANCE_HASH_KEY" in one_error_line(proc)
    assert not cli.warehouse.exists()


def test_dev_key_warning_is_printed_when_no_key_is_set(cli):
    # the warning comes before any work; the inverted range then stops the run cheaply
    proc = cli("backfill", "--from", "2026-10-02", "--to", "2026-10-01", COMPLIANCE_HASH_KEY=None, timeout=60)
    assert proc.returncode == 2
    assert "SECURITY WARNING" in proc.stderr and "COMPLIANCE_HASH_KEY is not set" in proc.stderr
    proc = cli("backfill", "--from", "2026-10-02", "--to", "2026-10-01", timeout=60)
    assert "SECURITY WARNING" not in proc.stderr


# ---------------------------------------------------------------------------------------------
# Exit 3: another process holds the warehouse
# ---------------------------------------------------------------------------------------------


def test_a_second_cli_run_exits_3_while_the_lock_is_held(cli):
    lock = cli.warehouse.with_name(cli.warehouse.name + ".lock")
    with open(lock, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = cli("nightly", "--date", "2026-10-01", timeout=60)
        assert proc.returncode == 3
        assert "lock" in one_error_line(proc)
        proc = cli("backfill", "--from", "2026-10-01", "--to", "2026-10-02", timeout=60)
        assert proc.returncode == 3
    assert not cli.reports.joinpath("2026-10-01").exists()


def test_a_process_holding_the_duckdb_file_open_means_exit_3(cli):
    con = duckdb.connect(str(cli.warehouse))  # e.g. a run started from the Dagster UI
    try:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
        proc = cli("backfill", "--from", "2026-10-01", "--to", "2026-10-01", timeout=120)
        assert proc.returncode == 3
        assert "another process" in one_error_line(proc)
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# Guards on the days a run may take (issue 25, items 4 and 5), relative to today in Prague
# ---------------------------------------------------------------------------------------------


def today() -> date:
    from pipelines.clock import today as prague_today

    return prague_today()


def arrival_folders(cli: Cli, *days: date) -> None:
    for day in days:
        (cli.inbox / "events" / day.isoformat()).mkdir(parents=True, exist_ok=True)


@pytest.mark.parametrize(
    "args",
    [
        lambda t: ["nightly", "--date", t.isoformat()],
        lambda t: ["nightly", "--date", t.replace(year=t.year + 1).isoformat()],  # a year typo
        lambda t: ["backfill", "--from", (t - timedelta(days=2)).isoformat(), "--to", t.isoformat()],
        lambda t: [
            "backfill",
            "--from",
            (t - timedelta(days=2)).isoformat(),
            "--to",
            (t + timedelta(days=1)).isoformat(),
        ],
    ],
    ids=["today", "a year ahead", "backfill to today", "backfill to tomorrow"],
)
def test_a_day_that_has_not_ended_is_refused_with_one_line(cli, args):
    arrival_folders(cli, today() - timedelta(days=3))
    proc = cli(*args(today()), timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = one_error_line(proc)
    assert "has not ended yet in Europe/Prague" in line
    assert f"the last day that can run is {today() - timedelta(days=1)}" in line
    assert proc.stdout == ""
    assert not cli.warehouse.exists() and not (cli.root / "dagster_home").exists()


def test_dry_run_prints_the_plan_in_order_and_runs_nothing(cli):
    first, target = today() - timedelta(days=6), today() - timedelta(days=1)
    arrival_folders(cli, first, first + timedelta(days=2))
    proc = cli("nightly", "--date", target.isoformat(), "--dry-run", timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"Plan: 6 day(s) from {first} to {target}, in order (dry run: nothing runs)"
    assert lines[1:] == [(first + timedelta(days=i)).isoformat() for i in range(6)]
    proc = cli("backfill", "--from", (first + timedelta(days=1)).isoformat(), "--to", target.isoformat(), "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[1:] == [(first + timedelta(days=i)).isoformat() for i in range(1, 6)]
    assert not cli.warehouse.exists()
    assert not (cli.root / "dagster_home").exists()
    assert list(cli.reports.iterdir()) == []


def test_a_day_before_the_first_partition_day_is_refused_unless_configured(cli):
    first = today() - timedelta(days=5)
    arrival_folders(cli, first)
    earlier = (first - timedelta(days=2)).isoformat()
    proc = cli("backfill", "--from", earlier, "--to", first.isoformat(), "--dry-run", timeout=60)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert f"{earlier} is before the first partition day {first}" in line
    assert f"set COMPLIANCE_FIRST_DAY={earlier}" in line
    proc = cli("backfill", "--from", earlier, "--to", first.isoformat(), "--dry-run", COMPLIANCE_FIRST_DAY=earlier)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[1] == earlier


def test_a_bad_first_day_setting_exits_2(cli):
    proc = cli("nightly", "--date", "2026-10-01", "--dry-run", COMPLIANCE_FIRST_DAY="2026-13-01", timeout=60)
    assert proc.returncode == 2
    assert "COMPLIANCE_FIRST_DAY='2026-13-01' is not a day" in one_error_line(proc)


def test_a_long_plan_asks_on_a_terminal_and_stops_unless_confirmed(cli):
    """stdin a terminal (a pty) and 40 days: the CLI asks; "n" stops it with one line, exit 2, before any run."""
    import pty

    first = today() - timedelta(days=40)
    arrival_folders(cli, first)
    env = dict(cli.env)
    main_fd, terminal = pty.openpty()
    try:
        os.write(main_fd, b"n\n")
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines", "nightly", "--date", (today() - timedelta(days=1)).isoformat()],
            cwd=REPO,
            env=env,
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.close(terminal)
        os.close(main_fd)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"Run 40 day(s) from {first} to {today() - timedelta(days=1)}? Pass --yes" in proc.stdout
    assert "not confirmed: 40 day(s)" in one_error_line(proc) and "pass --yes" in proc.stderr
    assert not cli.warehouse.exists() or cli.query("SELECT count(*) FROM ops.runs") == [(0,)]
    assert not any(cli.reports.iterdir())


class _Terminal:
    """A stdin that is a terminal, answering `answer` to the question (or failing the test if asked
    when it must not be)."""

    def __init__(self, answer: str | None):
        self.answer, self.asked = answer, 0

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        self.asked += 1
        assert self.answer is not None, "asked for confirmation"
        return self.answer + "\n"


@pytest.fixture
def in_process(cli, monkeypatch):
    """`main([...])` in this process with the days' runs replaced by a recorder (no job runs)."""
    from pipelines import runner
    from pipelines.day_run import DayOutcome

    for key, value in cli.env.items():
        if key.startswith(("COMPLIANCE_", "DAGSTER_")):
            monkeypatch.setenv(key, value)
    ran: list[list[date]] = []

    def run_days(settings, days, progress):
        ran.append(list(days))
        outcomes = [DayOutcome(d, True, f"run-{i}", 0.01) for i, d in enumerate(days, 1)]
        for i, outcome in enumerate(outcomes, 1):
            progress(i, len(days), outcome)
        return outcomes

    monkeypatch.setattr(runner, "run_days", run_days)
    return ran


@pytest.mark.parametrize(
    "days, terminal, answer, flags, asked, runs",
    [
        (40, False, None, [], 0, True),  # cron, CI: not a terminal, no question, runs as before
        (40, True, "y", [], 1, True),
        (40, True, "n", [], 1, False),
        (40, True, None, ["--yes"], 0, True),
        (31, True, None, [], 0, True),  # at the threshold: no question
    ],
    ids=["not a terminal", "confirmed", "declined", "--yes", "31 days"],
)
def test_confirmation_only_for_a_long_plan_on_a_terminal(cli, in_process, monkeypatch, days, terminal, answer, flags, asked, runs):  # noqa: E501  # fmt: skip
    from pipelines.cli import main

    first = today() - timedelta(days=days)
    arrival_folders(cli, first)
    stdin = _Terminal(answer) if terminal else open(os.devnull)  # noqa: SIM115 - replaced for this test only
    monkeypatch.setattr(sys, "stdin", stdin)
    try:
        code = main(["nightly", "--date", (today() - timedelta(days=1)).isoformat(), *flags])
    finally:
        if not terminal:
            stdin.close()
    if terminal:
        assert stdin.asked == asked
    assert code == (0 if runs else 2)
    assert in_process == ([[first + timedelta(days=i) for i in range(days)]] if runs else [])


def test_progress_lines_show_days_done_to_go_and_time_left(cli, in_process, monkeypatch, capsys):
    from pipelines.cli import main

    first = today() - timedelta(days=4)
    arrival_folders(cli, first)
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # not a terminal
    assert main(["backfill", "--from", first.isoformat(), "--to", (today() - timedelta(days=1)).isoformat()]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [re.search(r"\| (\d+) done, (\d+) to go, ~(\S+) left", line).groups()[:2] for line in lines] == [
        ("1", "3"),
        ("2", "2"),
        ("3", "1"),
        ("4", "0"),
    ]


def test_the_eta_is_the_mean_day_time_so_far_times_the_days_to_go(monkeypatch, capsys):
    from pipelines import cli as cli_module
    from pipelines.day_run import DayOutcome

    clock = iter([1000.0, 1000.0 + 90, 1000.0 + 200])  # start; after day 1 (90 s); after day 2 (110 s)
    monkeypatch.setattr(cli_module.time, "monotonic", lambda: next(clock))
    progress = cli_module.Progress()
    progress(1, 5, DayOutcome(date(2026, 11, 1), True, "r1", 90.0))
    progress(2, 5, DayOutcome(date(2026, 11, 2), True, "r2", 110.0))
    first, second = capsys.readouterr().out.splitlines()
    assert first.endswith("| 1 done, 4 to go, ~6m00s left")  # 90 s a day, 4 days
    assert second.endswith("| 2 done, 3 to go, ~5m00s left")  # 100 s a day, 3 days


# ---------------------------------------------------------------------------------------------
# The CLI explains itself (issue 25, item 9)
# ---------------------------------------------------------------------------------------------


def test_help_lists_the_commands_the_exit_codes_and_the_variables_with_defaults(cli):
    from pipelines import config

    proc = cli("--help", timeout=60)
    assert proc.returncode == 0
    for command in ("nightly", "backfill", "generate"):
        assert re.search(rf"^\s+{command}\s+\S", proc.stdout, re.M), command
    for code in ("0", "1", "2", "3"):
        assert re.search(rf"^\s+{code}\s+\S", proc.stdout, re.M), code
    for name, default, _ in config.VARIABLES:
        assert re.search(rf"^\s+{name}\s.*\(default: {re.escape(default)}\)$", proc.stdout, re.M), name
    assert {name for name, _, _ in config.VARIABLES} >= {
        "COMPLIANCE_INBOX",
        "COMPLIANCE_WAREHOUSE",
        "COMPLIANCE_REPORTS",
        "COMPLIANCE_HASH_KEY",
        "COMPLIANCE_RAW_RETENTION_DAYS",
        "COMPLIANCE_FIRST_DAY",
    }


def test_every_option_has_help_text():
    import argparse

    from pipelines.cli import build_parser

    def walk(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from ((f"{name} {opt}", h) for opt, h in walk(sub))
            else:
                yield "/".join(action.option_strings) or action.dest, action.help

    missing = [name for name, text in walk(build_parser()) if not text or text == argparse.SUPPRESS]
    assert missing == []


@pytest.mark.slow
def test_alerts_print_after_their_day_s_progress_line(cli):
    """A catch-up over generated days (violations planted): each day's ALERT comes after its line."""
    first = today() - timedelta(days=4)
    generate(cli, first.isoformat(), 3)
    days = day_list(first.isoformat(), 3)
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines", "backfill", "--from", days[0], "--to", days[-1]],
        cwd=REPO,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream: the order the terminal shows
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    lines = proc.stdout.splitlines()
    progress = {line.split()[1]: i for i, line in enumerate(lines) if line.startswith("[")}
    assert list(progress) == days
    alerts = [(i, line) for i, line in enumerate(lines) if "ALERT" in line]
    assert alerts, proc.stdout
    for i, line in alerts:
        day = re.search(r"nightly_compliance (\d{4}-\d{2}-\d{2})", line)[1]
        assert progress[day] < i, (day, lines)  # after its day's line ...
        later = [progress[d] for d in days if d > day]
        assert all(i < j for j in later), (day, lines)  # ... and before the next day's
    assert "| 1 done, 2 to go, ~" in proc.stdout and "| 3 done, 0 to go, ~0s left" in proc.stdout
