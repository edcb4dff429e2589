"""The compliance report: figures of CONTRACT 6.2, files, escaping, determinism and its checks."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assets.reports.charts import nice_ticks
from assets.reports.csvsafe import csv_bytes, neutralise, redact
from assets.reports.html import days_cell, e
from assets.reports.publish import MANIFEST_FILE, REPORT_FILES, publish_report
from assets.reports.summary import rule_ids
from checks.reports import evaluate_reconciliation, evaluate_rule_ids, evaluate_summary
from checks.reports_files import evaluate_files
from pipelines.clock import PRAGUE, end_of_day, start_of_day
from tests.helpers import event

D = date(2026, 11, 3)
START, END = start_of_day(D), end_of_day(D)
POLICY_RULES = [
    "email_change_not_via_care_center",
    "care_action_outside_hours",
    "password_changed_without_reset",
    "marketing_without_consent",
    "activity_after_deletion",
    "club_member_without_consent",
    "marketing_list_without_consent",
    "erasure_overdue",
]
ROOT = Path(__file__).resolve().parents[2]
AS_OF = b'<time id="data-as-of" datetime="2026-11-04T00:00:00+01:00">the end of 2026-11-03 (Europe/Prague)</time>'


def key(n: int) -> str:
    return hashlib.sha256(f"subject-{n}".encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Rows inserted directly into the tables behind the contract's (the keyed history and the vault)
# ---------------------------------------------------------------------------------------------


def add_subject(con, n: int) -> None:
    con.execute(
        "INSERT INTO vault.accounts SELECT ?, ? WHERE ? NOT IN (SELECT subject_key FROM vault.accounts)",
        [key(n), f"acc_{n}", key(n)],
    )


def add_account(con, n: int, created_at: datetime, status: str = "active") -> None:
    add_subject(con, n)
    con.execute(
        "INSERT INTO keyed.accounts (subject_key, created_at, status) VALUES (?, ?, ?)",
        [key(n), created_at, status],
    )


def add_interval(con, n: int, valid_from: datetime, valid_to: datetime | None = None, reason: str | None = None):
    add_subject(con, n)
    con.execute(
        "INSERT INTO keyed.club_membership (subject_key, valid_from, valid_to, end_reason) VALUES (?, ?, ?, ?)",
        [key(n), valid_from, valid_to, reason],
    )


def add_event(con, message_id: str, name: str, n: int, occurred_at: datetime, arrival: date, **extra) -> None:
    props = extra.get("properties", {})
    add_subject(con, n)
    con.execute(
        """INSERT INTO keyed.events (message_id, event, subject_key, occurred_at, channel, properties,
                                     consent_granted, source_file, line_number, arrival_date)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            message_id,
            name,
            key(n),
            occurred_at,
            extra.get("channel", "web"),
            json.dumps(props),
            extra.get("granted"),
            extra.get("source_file", "part-0000.jsonl"),
            extra.get("line", 1),
            arrival,
        ],
    )


def add_violation(con, rule: str, n: int, detected_on: date, message_id: str | None = None, **extra) -> None:
    con.execute(
        "INSERT INTO keyed.violations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            rule,
            extra.get("severity", "high"),
            key(n),
            extra.get("occurred_at", START + timedelta(hours=10)),
            detected_on,
            message_id,
            extra.get("system"),
            extra.get("details", "evidence"),
        ],
    )


def add_rejected(con, line: int, reason: str, raw_line: str, day: date = D) -> None:
    con.execute(
        "INSERT INTO keyed.rejected (source_file, line_number, reason, arrival_date)"
        " VALUES ('part-0000.jsonl', ?, ?, ?)",
        [line, reason, day],
    )
    con.execute(
        "INSERT INTO vault.quarantine (arrival_date, source_file, line_number, raw_line)"
        " VALUES (?, 'part-0000.jsonl', ?, ?)",
        [day, line, raw_line],
    )


def add_erasure(con, n: int, deleted_at: datetime, due: date, status: str, residual: str | None = None) -> None:
    con.execute(
        "INSERT INTO compliance.erasure_register VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
        [key(n), deleted_at, due, status, residual, deleted_at.date(), D],
    )


def add_file(con, day: date, name: str, received: int, accepted: int, duplicates: int, rejected: int) -> None:
    con.execute(
        "INSERT INTO landing.files (arrival_date, source_file, bytes, received, accepted, duplicates, rejected,"
        " readable, ingested_at) VALUES (?, ?, 100, ?, ?, ?, ?, true, now())",
        [day, name, received, accepted, duplicates, rejected],
    )


def add_check(con, name: str, asset: str, severity: str, passed: bool, evaluated: int, failed: int) -> None:
    con.execute(
        "INSERT INTO ops.check_results VALUES (?, ?, ?, ?, ?, ?, ?, 'test', '', 'run')",
        [D, name, asset, severity, passed, evaluated, failed],
    )


@pytest.fixture
def seeded(env):
    """A warehouse with a boundary case for every figure of the summary."""
    with env.connect() as con:
        # accounts.active: created by the end of D (the instant itself counts), not later
        add_account(con, 1, START - timedelta(days=3))
        add_account(con, 2, END, status="deletion_requested")
        add_account(con, 3, END + timedelta(seconds=1))
        # club: open at the end of D / joined on D / left on D (start of D inclusive, end exclusive)
        add_interval(con, 1, START - timedelta(days=2))  # member
        add_interval(con, 2, START, None)  # joined on D at 00:00, member
        add_interval(con, 4, START - timedelta(days=5), START + timedelta(hours=1), "consent_withdrawn")  # left
        add_interval(con, 5, START - timedelta(days=5), START - timedelta(seconds=1), "consent_withdrawn")  # left D-1
        add_interval(con, 6, START + timedelta(hours=2), END - timedelta(seconds=1), "account_deleted")  # joined+left
        # consent events occurring on D that arrived by D
        add_event(con, "c1", "Marketing Consent Granted", 2, START, D, granted=True)
        add_event(con, "c2", "Segment Consent Preference Updated", 6, START + timedelta(hours=2), D, granted=True)
        add_event(con, "c3", "Marketing Consent Withdrawn", 4, START + timedelta(hours=1), D, granted=False)
        add_event(con, "c4", "Marketing Consent Granted", 7, START - timedelta(seconds=1), D, granted=True)  # D-1
        add_event(
            con, "c5", "Marketing Consent Granted", 8, START + timedelta(hours=3), D + timedelta(days=1), granted=True
        )  # arrives later
        add_event(con, "c6", "Signed In", 1, START + timedelta(hours=4), D)
        # erasure register: statuses on D; a deletion after the end of D is not yet erased
        add_erasure(con, 10, START - timedelta(days=40), D - timedelta(days=9), "overdue", "crm")
        add_erasure(con, 11, START - timedelta(days=5), D + timedelta(days=26), "pending", "inbox,warehouse")
        add_erasure(con, 12, START - timedelta(days=2), D + timedelta(days=29), "verified")
        add_erasure(con, 13, END + timedelta(hours=1), D + timedelta(days=31), "pending", "crm")
        # violations: D-1, D, and D+1 (not yet detected on D)
        add_violation(con, "marketing_without_consent", 1, D - timedelta(days=1), "m-a")
        add_violation(con, "marketing_without_consent", 1, D, "m-b")
        add_violation(con, "club_member_without_consent", 2, D, system="club_roster")
        add_violation(con, "care_action_outside_hours", 3, D + timedelta(days=1), "m-c", severity="medium")
        # landing files of D (and of another day, not counted)
        add_file(con, D, "part-0000.jsonl", 10, 7, 2, 1)
        add_file(con, D, "part-0001.jsonl.gz", 1, 0, 0, 1)
        add_file(con, D - timedelta(days=1), "part-0000.jsonl", 50, 50, 0, 0)
        # check results of the day; the report's own checks are not counted
        add_check(con, "landing_day_batch_meets_expectations", "landing/events", "ERROR", True, 8, 0)
        add_check(con, "erased_subjects_clean_downstream", "erasure/erasure_register", "WARN", False, 5, 2)
        add_check(con, "summary_matches_tables", "reports/compliance_report", "ERROR", False, 6, 6)
    return env


def publish(env, day: date = D, generated_at: datetime | None = None):
    with env.connect() as con:
        return publish_report(con, env.reports, day, run_id="test-run", generated_at=generated_at)


def test_rule_ids_come_from_the_registry_in_policy_order():
    assert rule_ids() == POLICY_RULES


def test_summary_figures_follow_the_contract(seeded):
    published = publish(seeded)
    summary = json.loads((published.folder / "summary.json").read_text())
    violations = {rule: {"total": 0, "new": 0} for rule in POLICY_RULES}
    violations["marketing_without_consent"] = {"total": 2, "new": 1}
    violations["club_member_without_consent"] = {"total": 1, "new": 1}
    assert summary == {
        "run_date": "2026-11-03",
        "accounts": {"active": 2},
        "club": {"members": 2, "joined": 2, "left": 2},
        "consent": {"granted": 2, "withdrawn": 1},
        "erasure": {"erased_total": 3, "verified": 1, "pending": 1, "overdue": 1},
        "violations": violations,
        "quality": {
            "received": 11,
            "accepted": 7,
            "duplicates": 2,
            "rejected": 2,
            "expectations_evaluated": 13,
            "expectations_failed": 2,
        },
        # one earlier day of data: too little history to judge the volume
        "freshness": {"status": "not_judged", "usual_received": None, "history_days": 1, "stale_exports": 0},
        # the remediation lists: rows of compliance.erasure_remediation (none seeded here)
        "remediation": [],
        "status": "violations_found",
    }
    assert list(summary["violations"]) == POLICY_RULES


def test_report_files_manifest_and_bookkeeping(seeded):
    published = publish(seeded)
    folder = published.folder
    assert folder == seeded.reports / "2026-11-03"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*REPORT_FILES, MANIFEST_FILE])
    lines = (folder / MANIFEST_FILE).read_text().splitlines()
    assert len(lines) == 4
    for line in lines:
        digest, name = line.split("  ")
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    with seeded.connect() as con:
        assert con.execute("SELECT run_date, dagster_run_id, status FROM ops.runs").fetchall() == [
            (D, "test-run", "published")
        ]
        stored = con.execute("SELECT status, summary FROM reports.daily_summary").fetchall()
    assert stored[0][0] == "violations_found"
    assert json.loads(stored[0][1]) == json.loads((folder / "summary.json").read_text())


def test_same_inputs_give_byte_identical_files(seeded):
    """The page says which day's data it shows, not when it was generated: every file, the page and
    the manifest included, is the same bytes on a re-run; the generation time is in daily_summary."""
    first = publish(seeded, generated_at=datetime(2026, 11, 4, 2, 0, tzinfo=PRAGUE))
    before = {p.name: p.read_bytes() for p in first.folder.iterdir()}
    second = publish(seeded, generated_at=datetime(2026, 11, 4, 3, 30, 15, tzinfo=PRAGUE))
    after = {p.name: p.read_bytes() for p in second.folder.iterdir()}
    assert sorted(after) == sorted([*REPORT_FILES, MANIFEST_FILE])
    for name in after:
        assert before[name] == after[name], name
    page = after["compliance_report.html"]
    assert AS_OF in page
    assert b"02:00:00" not in page and b"03:30:15" not in page and b"generated-at" not in page
    assert not [p for p in second.folder.iterdir() if p.name.startswith(".")], "temporary files left behind"
    with seeded.connect() as con:
        assert con.execute("SELECT count(*) FROM ops.runs").fetchall() == [(1,)]
        assert con.execute("SELECT generated_at FROM reports.daily_summary").fetchall() == [
            (datetime(2026, 11, 4, 3, 30, 15, tzinfo=PRAGUE),)
        ]


def add_export(con, system: str, export_date: date) -> None:
    con.execute(
        "INSERT INTO landing.export_files VALUES (?, ?, ?, 1, 1, true, NULL, now())",
        [system, export_date, f"snapshots/{system}/{export_date}.csv"],
    )


def test_headline_status(env):
    published = publish(env)
    assert published.data.status == "no_data", "a day without a single event is an outage, not a clean day"
    page = (published.folder / "compliance_report.html").read_text()
    assert 'data-status="no_data"' in page and "No event arrived for 2026-11-03" in page
    with env.connect() as con:
        add_file(con, D, "part-0000.jsonl", 1, 1, 0, 0)
        add_check(con, "landing_files_look_healthy", "landing/files", "WARN", False, 3, 1)
    published = publish(env)
    assert json.loads((published.folder / "summary.json").read_text())["status"] == "all_clear"
    page = (published.folder / "compliance_report.html").read_text()
    assert "Every ERROR check passed; 1 warning(s)" in page, "the headline names the failed warning"
    with env.connect() as con:
        add_violation(con, "erasure_overdue", 9, D - timedelta(days=2), system="crm")
    assert publish(env).data.status == "all_clear", "an old violation is not news"
    with env.connect() as con:
        add_erasure(con, 9, START - timedelta(days=40), D - timedelta(days=1), "overdue", "crm")
    assert publish(env).data.status == "violations_found", "an overdue erasure is an open breach"
    with env.connect() as con:
        add_check(con, "accounts_meet_expectations", "core/accounts", "ERROR", False, 6, 1)
    published = publish(env)
    assert published.data.status == "data_quality_failed"
    page = (published.folder / "compliance_report.html").read_text()
    assert 'data-status="data_quality_failed"' in page
    assert "Data quality failed" in page and "accounts_meet_expectations (core/accounts)" in page


def test_page_sections_and_register_colours(seeded):
    page = (publish(seeded).folder / "compliance_report.html").read_text()
    for section in ("figures", "trends", "erasure", "violations", "consent", "quality", "provenance"):
        assert f'<section id="{section}">' in page
    for rule in POLICY_RULES:
        assert f'id="rule-{rule}"' in page
    assert page.count('<svg class="chart"') == 3
    assert "<script" not in page.lower()
    assert "default-src 'none'" in page
    assert "Withdrawing marketing consent therefore ends IQOS CLUB membership." in page
    assert '<td class="num days-overdue">overdue 9 d</td>' in page
    assert '<td class="num days-green">26 d</td>' in page
    assert '<td class="num days-done">done</td>' in page
    assert key(13)[:12] not in page, "a deletion after the end of D is not in the register yet"
    assert key(10) not in page, "keys are shown shortened"
    assert "inbox,warehouse" in page


@pytest.mark.parametrize(
    ("days_left", "status", "css"),
    [
        (30, "pending", "days-green"),
        (10, "pending", "days-green"),
        (9, "pending", "days-amber"),
        (5, "pending", "days-amber"),
        (4, "pending", "days-red"),
        (0, "pending", "days-red"),
        (-1, "pending", "days-overdue"),
        (3, "overdue", "days-overdue"),
        (-4, "verified", "days-done"),
    ],
)
def test_days_left_colour_boundaries(days_left, status, css):
    assert days_cell(days_left, status)[0] == css


def test_register_csv_has_no_negative_numbers(seeded):
    rows = list(csv.DictReader(io.StringIO((publish(seeded).folder / "erasure_register.csv").read_text())))
    overdue = next(r for r in rows if r["status"] == "overdue")
    assert (overdue["days_left"], overdue["days_overdue"]) == ("0", "9")
    assert [r["status"] for r in rows] == ["overdue", "pending", "verified"]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        (None, ""),
        (42, "42"),
    ],
)
def test_csv_cells_are_neutralised(value, cell):
    assert neutralise(value) == cell


def test_csv_quotes_every_field_and_removes_emails():
    data = csv_bytes(["a", "b"], [["x", 'say "hi"'], ["mail me: Jan.Novak@example.cz", "=1"]]).decode()
    assert data == '"a","b"\r\n"x","say ""hi"""\r\n"mail me: [e-mail removed]","\'=1"\r\n'
    assert redact("no address here") == "no address here"


def test_html_escape_covers_attributes_and_text():
    assert e('<img src=x onerror="alert(1)">') == "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;"
    assert e("it's") == "it&#39;s"
    assert e("a@b.cz") == "[e-mail removed]"


def test_nice_ticks():
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(3) == [0, 1, 2, 3]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(390) == [0, 100, 200, 300, 400]
    assert nice_ticks(1234)[-1] >= 1234


def test_hostile_values_come_out_inert(env):
    hostile_id = '=HYPERLINK("http://x","y")'
    with env.connect() as con:
        add_violation(con, "email_change_not_via_care_center", 1, D, hostile_id, details="<script>alert(1)</script>")
        add_violation(con, "club_member_without_consent", 2, D, system="<img src=x onerror=alert(1)>")
        add_event(
            con,
            "c1",
            "Marketing Consent Granted",
            2,
            START + timedelta(hours=1),
            D,
            granted=True,
            properties={"source": "<img src=x onerror=alert(1)>", "notice_version": "jan.novak@example.cz"},
        )
        add_file(con, D, "<b>bold</b>.jsonl", 1, 1, 0, 0)
    folder = publish(env).folder
    page = (folder / "compliance_report.html").read_text()
    assert "<script>alert" not in page and "<img" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "=HYPERLINK(&#34;http://x&#34;,&#34;y&#34;)" in page
    everything = b"".join((folder / name).read_bytes() for name in REPORT_FILES)
    assert b"example.cz" not in everything
    rows = list(csv.DictReader(io.StringIO((folder / "violations.csv").read_text())))
    assert {r["message_id"] for r in rows} == {"'" + hostile_id, ""}
    assert {r["system"] for r in rows} == {"", "<img src=x onerror=alert(1)>"}


# ---------------------------------------------------------------------------------------------
# Through Dagster: the asset, its checks, ordering and the gate
# ---------------------------------------------------------------------------------------------

REPORT_KEY = dg.AssetKey(["reports", "compliance_report"])
REPORT_CHECKS = (
    "summary_matches_tables",
    "reconciliation_holds",
    "all_rule_ids_present",
    "blocking_quality_checks_passed",
    "report_files_are_safe_and_intact",
)


def _steps_started(result) -> list[str]:
    return [ev.step_key for ev in result.all_events if ev.event_type_value == "STEP_START"]


@pytest.mark.slow
def test_nightly_run_publishes_a_checked_report_after_every_upstream_check(env):
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [
            event("Account Created", "acc_1", "2026-11-02T09:00:00+01:00", properties={"email": "a@example.cz"}),
            event(
                "Marketing Consent Granted",
                "acc_1",
                "2026-11-02T09:05:00+01:00",
                properties={"notice_version": "v3", "source": "web_form"},
            ),
            event(
                "Email Changed",
                "acc_1",
                "2026-11-02T10:00:00+01:00",
                channel="web",
                properties={"email": "b@example.cz"},
            ),
            "{not json",
        ],
    )
    result = env.run("2026-11-02")
    assert result.success
    summary = json.loads((env.reports / "2026-11-02" / "summary.json").read_text())
    assert summary["accounts"] == {"active": 1}
    assert summary["club"] == {"members": 1, "joined": 1, "left": 0}
    assert summary["consent"] == {"granted": 1, "withdrawn": 0}
    assert summary["violations"]["email_change_not_via_care_center"] == {"total": 1, "new": 1}
    assert {k: summary["quality"][k] for k in ("received", "accepted", "duplicates", "rejected")} == {
        "received": 4,
        "accepted": 3,
        "duplicates": 0,
        "rejected": 1,
    }
    # The report ran last: after every other asset and check, so each check is counted in its figures;
    # only the report's own checks ran after it.
    steps = _steps_started(result)
    report_step = steps.index("reports__compliance_report")
    assert sorted(steps[report_step + 1 :]) == sorted(f"reports__compliance_report_{c}" for c in REPORT_CHECKS)
    assert "landing__events_landing_day_batch_meets_expectations" in steps[:report_step]
    rows = env.query(
        """SELECT coalesce(sum(evaluated), 0), coalesce(sum(failed), 0), count(*) FROM ops.check_results
           WHERE run_date = DATE '2026-11-02' AND asset <> 'reports/compliance_report'"""
    )
    assert (summary["quality"]["expectations_evaluated"], summary["quality"]["expectations_failed"]) == rows[0][:2]
    assert rows[0][2] >= 8
    # The report's own checks all passed and are blocking ERROR checks.
    evaluations = {ev.check_name: ev for ev in result.get_asset_check_evaluations() if ev.asset_key == REPORT_KEY}
    assert set(evaluations) == set(REPORT_CHECKS)
    assert all(ev.passed for ev in evaluations.values())
    assert env.query("SELECT status FROM ops.runs WHERE run_date = DATE '2026-11-02'") == [("published",)]
    page = (env.reports / "2026-11-02" / "compliance_report.html").read_text()
    assert "landing_day_batch_meets_expectations" in page and "message_id is unique in the day&#39;s batch" in page
    assert "example.cz" not in page


EVALUATIONS = {
    "summary": lambda con, folder: evaluate_summary(con, folder, D),
    "reconciliation": lambda con, folder: evaluate_reconciliation(con, folder, D),
    "rule_ids": lambda con, folder: evaluate_rule_ids(con, folder, D),
    "files": lambda con, folder: evaluate_files(folder),
}
REPORT_ONLY = dg.AssetSelection.assets(REPORT_KEY) | dg.AssetSelection.checks_for_assets(REPORT_KEY)


def test_failed_error_check_is_stated_and_fails_the_run(env):
    with env.connect() as con:
        add_check(con, "landing_day_batch_meets_expectations", "landing/events", "ERROR", False, 8, 2)
        add_check(con, "landing_files_look_healthy", "landing/files", "WARN", False, 3, 1)
    result = env.run(D, selection=REPORT_ONLY)
    assert not result.success
    summary = json.loads((env.reports / str(D) / "summary.json").read_text())
    assert summary["status"] == "data_quality_failed"
    assert (summary["quality"]["expectations_evaluated"], summary["quality"]["expectations_failed"]) == (11, 3)
    evaluations = {ev.check_name: ev.passed for ev in result.get_asset_check_evaluations()}
    assert evaluations["blocking_quality_checks_passed"] is False
    assert evaluations["summary_matches_tables"] is True
    assert env.query(
        "SELECT passed, evaluated, failed FROM ops.check_results WHERE check_name = 'blocking_quality_checks_passed'"
    ) == [(False, 1, 1)]


def test_a_warning_alone_does_not_fail_the_run(env):
    with env.connect() as con:
        add_file(con, D, "part-0000.jsonl", 1, 1, 0, 0)
        add_event(con, "m-1", "Signed In", 1, START + timedelta(hours=1), D)
        add_check(con, "landing_files_look_healthy", "landing/files", "WARN", False, 3, 1)
    result = env.run(D, selection=REPORT_ONLY)
    assert result.success
    assert json.loads((env.reports / str(D) / "summary.json").read_text())["status"] == "all_clear"


def test_report_checks_catch_a_wrong_or_altered_report(env):
    with env.connect() as con:
        add_file(con, D, "part-0000.jsonl", 10, 7, 2, 1)
        add_event(con, "m-1", "Signed In", 1, START + timedelta(hours=1), D)
    assert env.run(D, selection=REPORT_ONLY).success is False, "7 accepted lines but 1 row in landing.events"
    with env.connect() as con:
        con.execute("UPDATE landing.files SET accepted = 1, duplicates = 9, rejected = 0")
    assert env.run(D, selection=REPORT_ONLY).success
    folder = env.reports / str(D)
    with env.connect() as con:
        assert all(evaluate(con, folder)[0].passed for evaluate in EVALUATIONS.values())
    # Tamper with the published summary: the report's checks see it.
    summary = json.loads((folder / "summary.json").read_text())
    summary["accounts"]["active"] = 99
    del summary["violations"]["erasure_overdue"]
    (folder / "summary.json").write_text(json.dumps(summary))
    with env.connect() as con:
        results = {name: evaluate(con, folder) for name, evaluate in EVALUATIONS.items()}
    assert {name: outcome.passed for name, (outcome, _) in results.items()} == {
        "summary": False,
        "reconciliation": True,
        "rule_ids": False,
        "files": False,
    }
    failing = {name: outcome.failing() for name, (outcome, _) in results.items()}
    assert failing["summary"] == [
        "every contract figure is in summary.json",
        "summary.json equals the figures recomputed from the tables",
        "summary.json equals reports.daily_summary (the trend charts' source)",
    ]
    assert results["summary"][1] == [
        "accounts.active",
        "violations.erasure_overdue.new",
        "violations.erasure_overdue.total",
    ]
    assert failing["rule_ids"] == ["summary.json lists exactly the 8 registered rule ids"]
    assert results["rule_ids"][1] == ["erasure_overdue"]
    assert failing["files"] == ["MANIFEST.sha256 matches every file and the previous day's manifest"]
    assert results["files"][1] == ["summary.json"]


#: Values a spreadsheet would run, guarded as `'@SUM(1+1)` in the CSVs: the file check must not read
#: the guard and the '@' as an address, or it would fail the night and every later one.
#: Text that looks like a reference (`@import`, `src=https://...`) is only text on the page.
FORMULA_VALUES = [
    "@SUM(1+1)",
    "=1+1",
    "+cmd",
    "-x",
    "'@x",
    "@example.cz",
    "-@SUM(A1)",
    "=@x.y1",
    "@import",
    "src=https://tracker.example/x.png",
    "url(//x/y.css)",
]


TEMPLATE_HOSTILE = "<script>alert(1)</script>{{ 7*7 }}{% if true %}x{% endif %}"


def test_markup_and_template_syntax_in_values_reach_the_page_as_text(env):
    """The page is a Jinja2 template: a value holding markup is autoescaped, and one holding
    template syntax is text, never evaluated (a system name, evidence details, a rejected reason,
    a rule id seen in the data but not registered)."""
    with env.connect() as con:
        add_violation(con, "marketing_without_consent", 1, D, "m-1", system=TEMPLATE_HOSTILE, details=TEMPLATE_HOSTILE)
        add_violation(con, TEMPLATE_HOSTILE, 2, D, "m-2")
        add_rejected(con, 1, TEMPLATE_HOSTILE, "{}")
        add_file(con, D, "part-0000.jsonl", 1, 0, 0, 1)
    page = (publish(env).folder / "compliance_report.html").read_text()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;{{ 7*7 }}{% if true %}x{% endif %}"
    assert "<script" not in page.lower() and "alert(1)</script>" not in page
    assert f"<td>{escaped}</td>" in page  # system
    assert f"<td>{escaped}</td></tr>" in page  # evidence details
    assert f"<td><code>{escaped}</code></td>" in page  # rejected reason
    assert page.count(escaped) >= 4  # and the unregistered rule id, in its section
    assert "49x" not in page  # what evaluating it would give
    assert evaluate_files(publish(env).folder)[0].passed


def test_formula_values_pass_the_file_check_that_night_and_the_next(env):
    with env.connect() as con:
        for i, value in enumerate(FORMULA_VALUES):
            add_violation(con, "marketing_without_consent", i, D, value, system=value, details=value)
            add_rejected(con, i + 1, value, value)
        add_file(con, D, "part-0000.jsonl", len(FORMULA_VALUES), 0, 0, len(FORMULA_VALUES))
    for day in (D, D + timedelta(days=1)):
        result = env.run(day, selection=REPORT_ONLY)
        evaluations = {ev.check_name: ev for ev in result.get_asset_check_evaluations()}
        assert evaluations["report_files_are_safe_and_intact"].passed, evaluations["report_files_are_safe_and_intact"]
        assert result.success, day
        folder = env.reports / str(day)
        outcome, names = evaluate_files(folder)
        assert outcome.passed and names == []
        rows = list(csv.DictReader(io.StringIO((folder / "violations.csv").read_text(encoding="utf-8"))))
        assert sorted(r["message_id"] for r in rows) == sorted(neutralise(v) for v in FORMULA_VALUES)
    page = (env.reports / str(D) / "compliance_report.html").read_text()
    assert "<code>@SUM(1+1)</code>" in page  # a rejected reason, as it is (HTML-escaped)


def test_file_check_finds_real_addresses_in_every_file_but_not_guards(env):
    folder = publish(env).folder
    for name, planted in [
        ("violations.csv", '"x","jan.novak@example.cz"\r\n'),
        ("erasure_register.csv", "\"'-o'brien@mail.example.ie\"\r\n"),
        ("summary.json", None),
        ("compliance_report.html", "<p>o&#x27;brien+tag@Example.COM</p>"),
    ]:
        path = folder / name
        original = path.read_bytes()
        if planted is None:
            summary = json.loads(original)
            summary["note"] = "\u017e\u0161@p\u0159\u00edklad.cz"
            path.write_text(json.dumps(summary, ensure_ascii=True))
        else:
            path.write_bytes(
                original.replace(b"</main>", planted.encode() + b"</main>")
                if name.endswith(".html")
                else original + planted.encode()
            )
        outcome, names = evaluate_files(folder)
        assert "no report file holds an e-mail address" in outcome.failing(), name
        assert name in names
        path.write_bytes(original)
    for name, planted in [
        ("violations.csv", '"\'@SUM(1+1)","\'@example.cz","\'-x","a@b"\r\n'),
        ("compliance_report.html", "<p><code>@SUM(1+1)</code> &#39;@example.cz &#34;@x.cz &#x27;@x.cz &quot;@x.cz</p>"),
    ]:
        path = folder / name
        original = path.read_bytes()
        path.write_bytes(
            original.replace(b"</main>", planted.encode() + b"</main>")
            if name.endswith(".html")
            else original + planted.encode()
        )
        outcome, _ = evaluate_files(folder)
        assert "no report file holds an e-mail address" not in outcome.failing(), name
        path.write_bytes(original)


def test_file_check_finds_emails_scripts_and_external_references(env):
    folder = publish(env).folder
    assert evaluate_files(folder)[0].passed
    page = folder / "compliance_report.html"
    html = page.read_text()
    for planted, statement in [
        ("<p>jan.novak@example.cz</p>", "no report file holds an e-mail address"),
        ("<script>alert(1)</script>", "the page holds no script"),
        ('<img src="https://tracker.example/x.png">', "the page references nothing outside itself"),
        ("<style>@import 'x.css';</style>", "the page references nothing outside itself"),
    ]:
        page.write_text(html.replace("</main>", planted + "</main>"))
        outcome, _ = evaluate_files(folder)
        assert statement in outcome.failing(), planted
        assert "MANIFEST.sha256 matches every file and the previous day's manifest" in outcome.failing()


@pytest.mark.slow
def test_a_failed_error_check_fails_the_cli_exit_code(env):
    env.write_events(D, "part-0000.jsonl", [event("Signed In", "acc_1", "2026-11-03T09:15:00+01:00")])
    with env.connect() as con:  # an upstream ERROR check of the day that failed (not blocking in Dagster)
        add_check(con, "upstream_fact_holds", "landing/events", "ERROR", False, 1, 1)
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "pipelines", "nightly", "--date", str(D)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    assert "check blocking_quality_checks_passed failed" in done.stdout
    summary = json.loads((env.reports / str(D) / "summary.json").read_text())
    assert summary["status"] == "data_quality_failed"
    assert env.query("SELECT status FROM ops.runs") == [("published",)]


@pytest.mark.parametrize(
    ("today", "status", "usual"),
    [
        (49, "incomplete", 100),  # under half the trailing median
        (50, "all_clear", 100),  # exactly half: a quiet day, not an outage
        (0, "no_data", 100),
    ],
)
def test_an_incomplete_day_is_amber_and_says_what_is_usual(env, today, status, usual):
    with env.connect() as con:
        for back in range(1, 8):  # seven earlier days of data: enough history to judge the volume
            add_file(con, D - timedelta(days=back), "part-0000.jsonl", 100, 100, 0, 0)
        if today:
            add_file(con, D, "part-0000.jsonl", today, today, 0, 0)
    published = publish(env)
    summary = json.loads((published.folder / "summary.json").read_text())
    assert summary["status"] == status
    assert summary["freshness"]["usual_received"] == usual and summary["freshness"]["history_days"] == 7
    if status == "incomplete":
        page = (published.folder / "compliance_report.html").read_text()
        assert 'class="status amber"' in page and "under half" in page


def test_six_days_of_history_do_not_judge_the_volume(env):
    with env.connect() as con:
        for back in range(1, 7):
            add_file(con, D - timedelta(days=back), "part-0000.jsonl", 100, 100, 0, 0)
        add_file(con, D, "part-0000.jsonl", 1, 1, 0, 0)
    summary = json.loads((publish(env).folder / "summary.json").read_text())
    freshness = {"status": "not_judged", "usual_received": None, "history_days": 6, "stale_exports": 0}
    assert summary["freshness"] == freshness
    assert summary["status"] == "all_clear"


def test_an_export_older_than_its_cadence_is_stale(env):
    with env.connect() as con:
        add_file(con, D, "part-0000.jsonl", 1, 1, 0, 0)
        for back in (1, 2, 3):  # a daily system whose export of D did not come
            add_export(con, "crm", D - timedelta(days=back))
        for back in (0, 7, 14):  # a weekly system, on time
            add_export(con, "club_roster", D - timedelta(days=back))
        for back in (6, 13):  # a weekly system, 6 days into its week: not yet due
            add_export(con, "marketing_list", D - timedelta(days=back))
        add_export(con, "legacy", D - timedelta(days=30))  # one export only: no cadence to judge by
    published = publish(env)
    ages = {a.system: (a.age_days, a.cadence_days, a.stale) for a in published.data.export_ages}
    assert ages == {
        "crm": (1, 1.0, True),
        "club_roster": (0, 7.0, False),
        "marketing_list": (6, 7.0, False),
        "legacy": (30, None, False),
    }
    summary = json.loads((published.folder / "summary.json").read_text())
    assert summary["freshness"]["stale_exports"] == 1 and summary["status"] == "incomplete"
    page = (published.folder / "compliance_report.html").read_text()
    assert '<section id="input">' in page and ">stale<" in page
