"""Remediation lists (issue 28): `<reports>/<D>/remediation/<system file>` lists, for each downstream
system still holding an erased subject's data, the export rows to delete.

The scenario is the overdue subject of test_erasure's status test: erased on 2027-01-31, due
2027-02-28, still in the CRM export of 2027-03-01 (overdue). A second subject, erased on
2027-03-01, is pending in the marketing list only. Nights run without Dagster (`night`), then the
report is published on the same warehouse.
"""

from __future__ import annotations

import csv
import json
import os
import re
from datetime import date
from types import SimpleNamespace

import markupsafe
import pytest

from assets.reports.csvsafe import FORMULA_PREFIXES
from assets.reports.publish import MANIFEST_FILE, publish_report
from assets.reports.remediation import REMEDIATION_COLUMNS
from checks.erasure import REMEDIATION_AGREES_SQL
from checks.reports_files import evaluate_files
from pipelines import notify, sensors
from pipelines.safe_text import REDACTED, digest, is_system_file_name, safe_path, system_file_name
from tests.helpers import created, deleted, night, register, unique

DELETED_ON, OVERDUE_DAY = "2027-01-31", "2027-03-01"
FALLBACK = re.compile(r"system-[0-9a-f]{16}\.csv")


def write_bytes_export(env, system: str, day: str, text: str, *, bom: bool = True):
    """A hand-written export: exactly these bytes (CRLF, a BOM, quoted line breaks, blank lines)."""
    folder = env.inbox / "snapshots" / system
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{day}.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def publish(env, day: str):
    with env.connect() as con:
        return publish_report(con, env.reports, date.fromisoformat(day), run_id="test-run")


def read_list(folder, path: str) -> list[dict[str, str]]:
    with open(folder / path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == REMEDIATION_COLUMNS
        return list(reader)


def remediation_bytes(folder) -> dict[str, bytes]:
    sub = folder / "remediation"
    return {f"remediation/{p.name}": p.read_bytes() for p in sorted(sub.iterdir())} if sub.is_dir() else {}


def crm_export(account: str, mail: str) -> str:
    """The CRM export of the overdue day: the subject in data records 2 (account id), 4 (its e-mail,
    upper-cased and padded) and 5 (both). Record 2 spans two lines (a quoted line break) and a blank
    line follows it, so records and physical lines differ."""
    return (
        "account_id,Email,note\r\n"
        "acc_other_1,other.one@example.cz,plain\r\n"
        f'{account},,"line one\r\nline two"\r\n'
        "\r\n"
        "acc_other_2,other.two@example.cz,x\r\n"
        f',  {mail.upper()} ,"say ""hi"""\r\n'
        f"{account},{mail},both\r\n"
    )


@pytest.fixture
def scenario(env):
    """The overdue subject in crm on 2027-03-01, a pending one in marketing_list, club_roster clean."""
    env.retention_days = 1  # only the day's exports and inbox folder stay
    overdue, overdue_mail = unique("acc_"), f"zq{unique('')}@example.cz"
    pending, pending_mail = unique("acc_"), f"zq{unique('')}@example.cz"
    env.write_events(
        DELETED_ON,
        "part-0000.jsonl",
        [
            created(overdue, f"{DELETED_ON}T09:00:00+01:00", overdue_mail),
            deleted(overdue, f"{DELETED_ON}T22:30:00+01:00"),
        ],
    )
    env.write_export("crm", DELETED_ON, [{"account_id": overdue, "email": overdue_mail}])
    night(env, DELETED_ON, rules=True)

    env.write_events(
        OVERDUE_DAY,
        "part-0000.jsonl",
        [
            created(pending, f"{OVERDUE_DAY}T09:00:00+01:00", pending_mail),
            deleted(pending, f"{OVERDUE_DAY}T12:00:00+01:00"),
        ],
    )
    crm = write_bytes_export(env, "crm", OVERDUE_DAY, crm_export(overdue, overdue_mail))
    env.write_export(
        "marketing_list", OVERDUE_DAY, [{"email": "live@example.cz"}, {"email": pending_mail}], header=["email"]
    )
    env.write_export("club_roster", OVERDUE_DAY, [{"account_id": "acc_live", "email": "live@example.cz"}])
    night(env, OVERDUE_DAY, rules=True)
    return SimpleNamespace(
        overdue=overdue,
        overdue_mail=overdue_mail,
        pending=pending,
        pending_mail=pending_mail,
        crm=crm,
        published=publish(env, OVERDUE_DAY),
    )


def test_the_overdue_subject_is_in_its_systems_list_with_exactly_its_row_numbers(env, scenario):
    subject, other = env.subject_key(scenario.overdue), env.subject_key(scenario.pending)
    assert register(env)[subject][:3] == ("overdue", date(2027, 2, 28), "crm")
    assert register(env)[other][:3] == ("pending", date(2027, 4, 1), "marketing_list")
    folder = scenario.published.folder

    # only the systems with residual data get a list; club_roster has none
    assert sorted(remediation_bytes(folder)) == ["remediation/crm.csv", "remediation/marketing_list.csv"]
    crm = read_list(folder, "remediation/crm.csv")
    assert [(r["subject_key"], r["row_number"], r["matched_on"]) for r in crm] == [
        (subject, "2", "account_id"),
        (subject, "4", "email"),
        (subject, "5", "account_id+email"),
    ]
    assert {
        (r["export_file"], r["deleted_at"], r["due_date"], r["days_left"], r["days_overdue"], r["status"]) for r in crm
    } == {("snapshots/crm/2027-03-01.csv", "2027-01-31T22:30:00+01:00", "2027-02-28", "0", "1", "overdue")}
    # ... and in no other system's list
    marketing = read_list(folder, "remediation/marketing_list.csv")
    assert [(r["subject_key"], r["row_number"], r["matched_on"], r["status"], r["days_left"]) for r in marketing] == [
        (other, "2", "email", "pending", "31")
    ]

    # the row numbers are the owners' count: csv.DictReader over their own export, from 1
    with open(scenario.crm, newline="", encoding="utf-8-sig") as fh:
        theirs = [
            str(i)
            for i, row in enumerate(csv.DictReader(fh), 1)
            if row["account_id"].strip() == scenario.overdue or row["Email"].strip().lower() == scenario.overdue_mail
        ]
    assert theirs == ["2", "4", "5"]
    # ... which is what landing.export_keys.row_number means
    assert env.query(
        """SELECT DISTINCT row_number FROM landing.export_keys
           WHERE system = 'crm' AND (subject_key = ? OR email_key = ?) ORDER BY 1""",
        [subject, env.email_key(scenario.overdue_mail)],
    ) == [(2,), (4,), (5,)]


def test_the_lists_and_the_register_agree_and_the_check_sees_a_difference(env, scenario):
    with env.connect() as con:
        assert con.execute(REMEDIATION_AGREES_SQL).fetchall() == [(0, 2)]
        # a (subject, system) pair the register names but the lists lack, and one they list that it does not
        con.execute("DELETE FROM compliance.erasure_remediation WHERE system = 'crm'")
        assert con.execute(REMEDIATION_AGREES_SQL).fetchall() == [(1, 2)]
        con.execute(
            "INSERT INTO compliance.erasure_remediation VALUES (?, 'club_roster', DATE '2027-03-01', 1, 'email')",
            [env.subject_key(scenario.pending)],
        )
        assert con.execute(REMEDIATION_AGREES_SQL).fetchall() == [(2, 2)]


def test_no_remediation_list_holds_a_plain_identifier(env, scenario):
    files = remediation_bytes(scenario.published.folder)
    assert files
    needles = [scenario.overdue, scenario.overdue_mail, scenario.pending, scenario.pending_mail]
    needles += ["acc_other_1", "other.one", "acc_live", "live@"]  # nor anyone else's
    for name, data in files.items():
        for needle in needles:
            assert needle.lower().encode() not in data.lower(), (name, needle)
        assert b"@" not in data, name
    # the report's blocking file check reads the lists too
    folder = scenario.published.folder
    assert evaluate_files(folder)[0].passed
    original = (folder / "remediation/crm.csv").read_bytes()
    (folder / "remediation/crm.csv").write_bytes(original.replace(b"overdue", b"pending", 1))  # no e-mail
    outcome, names = evaluate_files(folder)
    assert not outcome.passed and names == ["remediation/crm.csv"]  # the manifest covers the lists
    (folder / "remediation/crm.csv").write_bytes(original)
    with open(folder / "remediation/crm.csv", "ab") as fh:
        fh.write(f'"{scenario.overdue_mail}"\r\n'.encode())
    outcome, names = evaluate_files(folder)
    assert not outcome.passed and names == ["remediation/crm.csv"]


def test_the_report_links_each_list_and_the_overdue_alert_names_it(env, scenario):
    folder = scenario.published.folder
    page = (folder / "compliance_report.html").read_text()
    assert '<a href="remediation/crm.csv"><code>remediation/crm.csv</code></a>' in page
    assert '<a href="remediation/marketing_list.csv">' in page
    crm_row = page[page.index('<a href="remediation/crm.csv">') :].split("</tr>")[0]
    assert '<td class="num">3</td><td class="num">1</td><td class="num">1</td>' in crm_row  # rows, subjects, overdue
    # the manifest covers the lists (sha256sum -c from the day's folder)
    manifest = (folder / MANIFEST_FILE).read_text()
    assert "  remediation/crm.csv\n" in manifest and "  remediation/marketing_list.csv\n" in manifest

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["violations"]["erasure_overdue"]["new"] == 1
    assert summary["remediation"] == [
        {"file": "remediation/crm.csv", "rows": 3, "subjects": 1, "overdue_subjects": 1},
        {"file": "remediation/marketing_list.csv", "rows": 1, "subjects": 1, "overdue_subjects": 0},
    ]
    run = SimpleNamespace(tags={sensors.PARTITION_TAG: OVERDUE_DAY}, run_id="run-1", job_name="nightly_compliance")
    alert = sensors.violations_alert(run, env.reports)
    assert alert["files"] == ["remediation/crm.csv"]  # the pending marketing_list is not overdue
    assert "remediation/crm.csv" in alert["text"]
    text = json.dumps(alert)
    for needle in (scenario.overdue, scenario.overdue_mail, scenario.pending, scenario.pending_mail, "@"):
        assert needle not in text


def test_a_rerun_of_the_day_removes_the_list_of_a_system_with_no_residual_left(env, scenario):
    folder = scenario.published.folder
    assert (folder / "remediation/crm.csv").is_file()
    # the CRM re-delivers the day's export, cleaned
    write_bytes_export(env, "crm", OVERDUE_DAY, "account_id,email\r\nacc_other_1,other.one@example.cz\r\n")
    later = os.stat(scenario.crm).st_mtime + 5
    os.utime(scenario.crm, (later, later))
    night(env, OVERDUE_DAY, rules=True)
    publish(env, OVERDUE_DAY)

    assert register(env)[env.subject_key(scenario.overdue)][0] == "verified"
    assert sorted(remediation_bytes(folder)) == ["remediation/marketing_list.csv"]
    assert "remediation/crm.csv" not in (folder / MANIFEST_FILE).read_text()
    assert 'href="remediation/crm.csv"' not in (folder / "compliance_report.html").read_text()
    assert not [p for p in (folder / "remediation").iterdir() if p.name.startswith(".")], "temporary files"

    # the marketing list cleaned too: no list at all, and no folder
    env.write_export("marketing_list", OVERDUE_DAY, [{"email": "live@example.cz"}], header=["email"])
    path = env.inbox / "snapshots/marketing_list" / f"{OVERDUE_DAY}.csv"
    os.utime(path, (later, later))
    night(env, OVERDUE_DAY, rules=True)
    publish(env, OVERDUE_DAY)
    assert not (folder / "remediation").exists()
    assert json.loads((folder / "summary.json").read_text())["remediation"] == []


# -- hostile system names ------------------------------------------------------------------------

HOSTILE = [
    "crm\nnext line",
    "=cmd|' \\C calc'!A0",
    "-rf",
    "...",
    ".hidden",
    "CRM",
    "x" * 255,  # the longest folder name
    "ž" * 127,  # 254 bytes
    "ops@example.cz",
    "<b>legacy<\\b> crm",
]


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("crm", "crm.csv"),
        ("marketing_list", "marketing_list.csv"),
        ("club_roster", "club_roster.csv"),
        ("crm-2026", "crm-2026.csv"),
        *[(name, None) for name in [*HOSTILE, "x" * 300, "..", ".", "", "legacy crm", "jan.novak", "a/b", "crm "]],
    ],
)
def test_a_system_file_name_is_the_name_when_plain_else_keyed(env, system, expected):
    name = system_file_name(system)
    assert name == (expected or name) and is_system_file_name(name)
    assert len(name.encode()) <= 255 and "/" not in name and not name.startswith((".", "-"))
    if expected is None:
        assert FALLBACK.fullmatch(name)
        assert name[len("system-") :].startswith(digest(system))  # the digest of the system's label
        assert system_file_name(system) == name  # stable


def test_hostile_systems_get_safe_file_names_and_guarded_cells(env):
    day = "2026-11-02"
    account = unique("acc_")
    env.write_events(
        day,
        "part-0000.jsonl",
        [created(account, f"{day}T09:00:00+01:00", f"{account}@example.cz"), deleted(account, f"{day}T18:00:00+01:00")],
    )  # fmt: skip
    # and names the register encodes (its separator, a percent sign, a pipeline location's name)
    systems = [*HOSTILE, "legacy, crm", "100%2C", "warehouse"]
    for system in systems:
        env.write_export(system, day, [{"account_id": "acc_live"}, {"account_id": account}], header=["account_id"])
    unreadable = env.inbox / "snapshots" / "účetnictví"
    unreadable.mkdir()
    (unreadable / f"{day}.csv").write_bytes("email\nk\xe9@example.cz\n".encode("latin-1"))
    night(env, day, rules=True)
    folder = publish(env, day).folder

    systems.append("účetnictví")
    files = remediation_bytes(folder)
    expected = {f"remediation/{system_file_name(s)}": s for s in systems}
    assert sorted(files) == sorted(expected)  # one file each, no two alike
    assert expected["remediation/warehouse.csv"] == "warehouse"  # a plain name is kept; every other is keyed
    assert all(FALLBACK.fullmatch(p.removeprefix("remediation/")) for p in expected if p != "remediation/warehouse.csv")
    page = (folder / "compliance_report.html").read_text()
    subject = env.subject_key(account)
    for path, system in expected.items():
        rows = read_list(folder, path)
        cells = [c for r in rows for c in r.values()]
        assert not any(c.startswith(FORMULA_PREFIXES) for c in cells), path
        [row] = rows
        assert row["subject_key"] == subject and row["status"] == "pending"
        if system == "účetnictví":  # unreadable: the system is named, with no row number
            assert (row["row_number"], row["matched_on"]) == ("", "export_unreadable")
        else:
            assert (row["row_number"], row["matched_on"]) == ("2", "account_id")
        if "@" in system:  # masked like every report value
            assert row["export_file"] == "[e-mail removed]" and b"@" not in files[path]
        else:
            assert row["export_file"] == f"snapshots/{system}/{day}.csv"  # the name exactly, line break too
        # linked from the page, the system's name escaped beside it
        assert f'<a href="{path}"><code>{path}</code></a>' in page
        if "@" not in system:
            assert f'<td>{markupsafe.escape(system)}</td><td><a href="{path}">' in page
    assert "<b>legacy" not in page
    with env.connect() as con:
        assert con.execute(REMEDIATION_AGREES_SQL).fetchall() == [(0, len(systems))]


def test_an_alert_names_report_files_only_when_they_are_safe():
    alert = notify.build_alert(
        notify.VIOLATIONS_FOUND,
        day="2027-03-01",
        run_id="r1",
        job="j",
        counts={"erasure_overdue": 1},
        files=[
            "remediation/crm.csv",
            "remediation/system-0123456789abcdef.csv",
            "remediation/jan.novak@example.cz.csv",
            "remediation/Jana Novakova.csv",
            "../../etc/passwd",
            "remediation/.hidden.csv",
        ],
    )
    assert alert["files"] == [REDACTED, "remediation/crm.csv", "remediation/system-0123456789abcdef.csv"]
    assert "Novakova" not in json.dumps(alert) and "@" not in json.dumps(alert)
    assert safe_path("remediation/crm.csv") == "remediation/crm.csv"
    assert notify.build_alert(notify.VIOLATIONS_FOUND, day="2027-03-01", run_id="r1", job="j")["files"] == []


def test_the_nightly_job_publishes_the_lists_passes_its_checks_and_alerts_with_the_overdue_list(env):
    """The Dagster job end to end: the agreement check passes (an ERROR check must never false-alarm),
    the report's file check reads the lists, and the run's alert names the overdue system's list."""
    account, mail = unique("acc_"), f"zq{unique('')}@example.cz"
    env.write_events(
        "2026-10-01",
        "part-0000.jsonl",
        [created(account, "2026-10-01T09:00:00+02:00", mail), deleted(account, "2026-10-01T18:00:00+02:00")],
    )
    for day in ("2026-10-01", "2026-11-02"):  # due 2026-11-01
        write_bytes_export(env, "crm", day, f"email,account_id\r\nlive@example.cz,acc_live\r\n{mail},\r\n")
        result = env.run(day)
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks["remediation_lists_match_the_register"] is True, day
        assert checks["report_files_are_safe_and_intact"] is True, day
        folder = env.reports / day
        [row] = read_list(folder, "remediation/crm.csv")
        assert (row["row_number"], row["matched_on"]) == ("2", "email")
    assert row["status"] == "overdue" and row["days_overdue"] == "1"
    run = env.instance.get_run_by_id(result.run_id)
    alert = sensors.violations_alert(run, env.reports)
    assert alert["counts"]["erasure_overdue"] == 1 and alert["files"] == ["remediation/crm.csv"]
