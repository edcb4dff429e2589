"""No personal data leaks: after a backfill over generated data, no e-mail address, name or
address value the generator wrote is anywhere outside the warehouse and the inbox.

The scan covers every file under DAGSTER_HOME (run storage, event logs with every asset's and
check's metadata, schedules, compute logs; SQLite databases are read both as raw bytes, which
include free pages, and as a logical dump), every file under the reports folder (the day folders
and alerts.jsonl), and the CLI's stdout and stderr. A value counts as found in any of the forms
it can take there: as is, JSON-escaped (with or without \\u escapes: Dagster's serialisation,
summary.json), HTML-escaped, CSV-quoted.

To prove that the search can find what it looks for, the same search run over the inbox and
the warehouse (which hold the data legitimately) finds the values.

Beside the generated data, the inbox gets hostile names and values: e-mails, names and
addresses in event file names, in a corrupt gzip file's name, in folder names, in the
names of export systems (`snapshots/<system>/`), and in fields the generator leaves alone
(messageId, type, event, timestamp, context.channel, context.agentId, campaign_id, invalid JSON).
Every one of them must stay out of DAGSTER_HOME, the CLI output and the reports. A retention of
one day makes the second night delete the first night's folder and export files, so that the
retention log and its metadata see the hostile names too.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest

from pipelines.safe_text import file_label
from tests.helpers import contents, read_only

REPO = Path(__file__).resolve().parents[2]
KEY = "pii-scan-test-key"
START, END = "2026-10-01", "2026-10-02"
EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
#: The personal properties of CONTRACT 2.1 (and the personal columns of the CRM export).
PERSONAL = ("email", "previous_email", "first_name", "last_name", "street", "city", "postal_code")
#: Values shorter than this are skipped: 3-letter first names (Jan, Eva, Vít) occur inside ordinary
#: words and identifiers ("January", "evaluated"), so finding one would prove nothing. Every longer
#: value is searched, including the generator's hostile ones.
MIN_LENGTH = 4

# ---------------------------------------------------------------------------------------------
# Hostile input planted beside the generated data
# ---------------------------------------------------------------------------------------------

#: Event files of the second day named with personal data (the corrupt gzip one cannot be read).
HOSTILE_FILE = "Zdeňka.Přibylová@example.cz.jsonl"
HOSTILE_SPACED_FILE = "Květoslav Dvořáček - Na Příkopě 12.jsonl"
HOSTILE_GZIP = "Bořivoj.Šimůnek@example.cz.jsonl.gz"
#: A folder among the day's files (skipped: not a file), and a folder under events/ that is no day.
HOSTILE_DAY_SUBFOLDER = "Zbyněk Horáček, Újezd 450.jsonl"
HOSTILE_EVENTS_FOLDER = "Miroslava.Kučerová@example.cz"
#: Systems (`snapshots/<system>/`): one readable, holding erased subjects (so that it is a residual
#: location of the erasure register), one whose export has neither account_id nor email.
HOSTILE_SYSTEM = "Ctibor.Vondráček@example.cz"
HOSTILE_UNREADABLE_SYSTEM = "Libuše Nováčková, Karlova 5"
#: Values in fields the generator never puts personal data in (each line is rejected or accepted
#: as noted; a rejection reason must never echo the value).
HOSTILE_MESSAGE_ID = "Radmila.Kovandová@example.cz"  # rejected: bad timestamp
HOSTILE_LONG_MESSAGE_ID = "Přemysl Otakar, Vodičkova 681/14, Praha " * 3  # rejected: over 100 characters
HOSTILE_TYPE = "Libor Kopecký"  # rejected: type is not "track"
HOSTILE_EVENT = "Bohumil Šťastný"  # rejected: unknown event
HOSTILE_CHANNEL = "Na Poříčí 1049/28, Praha 1"  # rejected: unknown channel
HOSTILE_TIMESTAMP = "ludmila.cerna@example.cz"  # rejected: not a timestamp
HOSTILE_JSON = "Věnceslava.Hořejší@example.cz"  # rejected: invalid JSON
HOSTILE_CAMPAIGN = "Vlastimila Hrubá, Dlouhá 7"  # accepted: campaign_id
HOSTILE_AGENT = "Kristýna Marešová"  # accepted: context.agentId
HOSTILE_EVIDENCE_ID = "Jaroslava.Dusková@example.cz"  # accepted, and evidence of a violation

#: Every planted value; none may leave the inbox and the warehouse.
PLANTED = {
    HOSTILE_FILE,
    "Zdeňka.Přibylová",
    "Květoslav Dvořáček",
    "Na Příkopě 12",
    HOSTILE_GZIP.removesuffix(".jsonl.gz"),
    "Bořivoj.Šimůnek",
    "Zbyněk Horáček",
    "Újezd 450",
    HOSTILE_EVENTS_FOLDER,
    "Miroslava.Kučerová",
    HOSTILE_SYSTEM,
    "Ctibor.Vondráček",
    HOSTILE_MESSAGE_ID,
    "Přemysl Otakar",
    "Vodičkova 681/14",
    HOSTILE_TYPE,
    HOSTILE_EVENT,
    HOSTILE_CHANNEL,
    HOSTILE_TIMESTAMP,
    HOSTILE_JSON,
    HOSTILE_CAMPAIGN,
    HOSTILE_AGENT,
    HOSTILE_EVIDENCE_ID,
}
#: A system's name is shown, escaped, in the report (CONTRACT 2.2; an e-mail in it is removed there
#: as everywhere in the reports): these may be in the report files, nowhere else.
PLANTED_SYSTEM_NAMES = {HOSTILE_UNREADABLE_SYSTEM, "Libuše Nováčková", "Karlova 5"}


def _line(message_id: str, event: str, timestamp: str, *, channel: str = "web", **fields) -> dict:
    doc = {
        "messageId": message_id,
        "type": "track",
        "event": event,
        "userId": "acc_pii_0001",
        "timestamp": timestamp,
        "properties": {},
        "context": {"channel": channel},
    }
    for name, value in fields.items():
        if name in ("agentId",):
            doc["context"][name] = value
        elif name in doc:
            doc[name] = value
        else:
            doc["properties"][name] = value
    return doc


def plant_hostile_input(inbox: Path, erased: list[str]) -> None:
    """Write the hostile files, folders and systems beside the generated inbox."""
    day = inbox / "events" / END
    at = f"{END}T09:00:00+02:00"
    lines = [
        _line("m-pii-0001", "Signed In", at),
        _line(HOSTILE_MESSAGE_ID, "Signed In", f"{END}T25:00:00+02:00"),
        _line(HOSTILE_LONG_MESSAGE_ID, "Signed In", at),
        _line("m-pii-0002", "Signed In", at, type=HOSTILE_TYPE),
        _line("m-pii-0003", HOSTILE_EVENT, at),
        _line("m-pii-0004", "Signed In", at, channel=HOSTILE_CHANNEL),
        _line("m-pii-0005", "Signed In", HOSTILE_TIMESTAMP),
        _line("m-pii-0006", "Marketing Message Sent", at, campaign_id=HOSTILE_CAMPAIGN, medium="email"),
        _line("m-pii-0007", "Signed In", at, channel="care_center", agentId=HOSTILE_AGENT),
        # an e-mail change on the web breaks a rule: its messageId is the violation's evidence
        _line(HOSTILE_EVIDENCE_ID, "Email Changed", at, email="pii.planted.new@example.cz"),
    ]
    text = "\n".join(json.dumps(d, ensure_ascii=False) for d in lines)
    text += '\n{"messageId": "m-pii-0008", "' + HOSTILE_JSON + '"\n'
    (day / HOSTILE_FILE).write_text(text, encoding="utf-8")
    (day / HOSTILE_SPACED_FILE).write_text(json.dumps(_line("m-pii-0009", "Signed In", at)) + "\n")
    (day / HOSTILE_GZIP).write_bytes(b"this is not a gzip stream")
    (day / HOSTILE_DAY_SUBFOLDER).mkdir()
    (day / HOSTILE_DAY_SUBFOLDER / "part-0000.jsonl").write_text(json.dumps(_line("m-pii-0010", "Signed In", at)))
    (inbox / "events" / HOSTILE_EVENTS_FOLDER).mkdir()
    (inbox / "events" / HOSTILE_EVENTS_FOLDER / "part-0000.jsonl").write_text("{}\n")
    system = inbox / "snapshots" / HOSTILE_SYSTEM
    system.mkdir()
    for export_day in (START, END):
        rows = "".join(f"{a},{a}.pii@example.cz,Ctibor,Vondráček\n" for a in erased)
        (system / f"{export_day}.csv").write_text("account_id,email,first_name,last_name\n" + rows, encoding="utf-8")
    unreadable = inbox / "snapshots" / HOSTILE_UNREADABLE_SYSTEM
    unreadable.mkdir()
    (unreadable / f"{END}.csv").write_text("jmeno,ulice\nLibuše,Karlova 5\n", encoding="utf-8")


def inbox_blob(inbox: Path) -> bytes:
    """Every name and every line under the inbox (gzip opened where it can be), as bytes."""
    names = b"\n".join(os.fsencode(p.relative_to(inbox)) for p in sorted(inbox.rglob("*")))
    csvs = b"".join(p.read_bytes() for p in sorted((inbox / "snapshots").rglob("*.csv")))
    return names + b"\n" + b"\n".join(inbox_lines(inbox)) + b"\n" + csvs


@dataclass
class Backfill:
    inbox: Path
    warehouse: Path
    reports: Path
    home: Path
    output: bytes
    #: As the inbox was before the backfill (retention deletes the first day's files).
    values: set[str] = field(default_factory=set)
    emails: set[bytes] = field(default_factory=set)
    inbox_before: bytes = b""


@pytest.fixture(scope="module")
def backfill(tmp_path_factory) -> Backfill:
    root = tmp_path_factory.mktemp("pii")
    b = Backfill(root / "inbox", root / "warehouse.duckdb", root / "reports", root / "dagster_home", b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPLIANCE_", "DAGSTER_"))}
    env.update(
        COMPLIANCE_INBOX=str(b.inbox),
        COMPLIANCE_WAREHOUSE=str(b.warehouse),
        COMPLIANCE_REPORTS=str(b.reports),
        COMPLIANCE_HASH_KEY=KEY,
        COMPLIANCE_RAW_RETENTION_DAYS="1",
        DAGSTER_HOME=str(b.home),
        PYTHONPATH=str(REPO),
    )
    generate = [sys.executable, "-m", "pipelines", "generate", "--out", str(b.inbox), "--accounts", "150"]
    generate += ["--days", "2", "--start", START, "--seed", "11", "--corrupt-files", "1", "--quiet"]
    proc = subprocess.run(generate, cwd=REPO, env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads((b.inbox / "_plan" / "plan.json").read_text())
    assert plan["deletions"], "the generator plants deletions in the first days"
    plant_hostile_input(b.inbox, [d["account_id"] for d in plan["deletions"]])
    b.values, b.emails = identities(b.inbox)
    b.inbox_before = inbox_blob(b.inbox)
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines", "backfill", "--from", START, "--to", END],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout.decode()[-2000:] + proc.stderr.decode()[-3000:]
    b.output = proc.stdout + proc.stderr
    return b


# ---------------------------------------------------------------------------------------------
# What to look for, and where
# ---------------------------------------------------------------------------------------------


def inbox_lines(inbox: Path):
    for path in sorted(p for p in (inbox / "events").rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError):
                continue
        yield from data.splitlines()


def identities(inbox: Path) -> tuple[set[str], set[bytes]]:
    """(every personal value the generator wrote, every e-mail-shaped string in the inbox)."""
    values: set[str] = set()
    emails: set[bytes] = set()
    for line in inbox_lines(inbox):
        emails.update(EMAIL.findall(line))
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        props = doc.get("properties") if isinstance(doc, dict) else None
        if isinstance(props, dict):
            values.update(v for k, v in props.items() if k in PERSONAL and isinstance(v, str))
    for path in sorted(p for p in (inbox / "snapshots").rglob("*.csv") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        emails.update(EMAIL.findall(text.encode()))
        for row in csv.DictReader(io.StringIO(text)):
            values.update(v for k, v in row.items() if k in PERSONAL and isinstance(v, str))
    values = {v.strip() for v in values if len(v.strip()) >= MIN_LENGTH}
    return values, emails


def forms(value: str) -> set[bytes]:
    """The byte strings a value becomes in a file: as is, in JSON (with or without \\u escapes),
    HTML-escaped, in a quoted CSV field."""
    return {
        value.encode(),
        json.dumps(value)[1:-1].encode(),
        json.dumps(value, ensure_ascii=False)[1:-1].encode(),
        html.escape(value).encode(),
        html.escape(value, quote=False).encode(),
        value.replace('"', '""').encode(),
    }


def leaks(blobs: dict[str, bytes], values: set[str]) -> list[tuple[str, str, str]]:
    """(file, "e-mail" | "value", what) for every e-mail-shaped string and every value found."""
    patterns = {form: value for value in values for form in forms(value)}
    found = []
    for name, data in blobs.items():
        for match in EMAIL.finditer(data):
            found.append((name, "e-mail", match.group(0)[:80].decode(errors="replace")))
        for form, value in patterns.items():
            if form in data:
                found.append((name, "value", value))
    return found


def values_found(blob: bytes, values: set[str]) -> set[str]:
    return {what for _, kind, what in leaks({"": blob}, values) if kind == "value"}


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_identity_in_dagster_home_reports_or_cli_output(backfill):
    values, emails = backfill.values, backfill.emails
    # the generator wrote names, streets, cities, postal codes and e-mails, hostile ones included
    assert len(values) > 200 and len(emails) > 100
    assert {"<script>alert(1)</script>", "=cmd|' /C calc'!A0"} <= values

    home, reports = contents(backfill.home), contents(backfill.reports)
    assert any(name.endswith(".db") for name in home), sorted(home)  # run storage and event logs
    assert {f"{day}/{f}" for day in (START, END) for f in ("summary.json", "violations.csv")} <= reports.keys()
    found = leaks(home, values) + leaks(reports, values) + leaks({"CLI output": backfill.output}, values)
    assert not found, found[:20]


@pytest.mark.slow
def test_the_search_finds_identities_where_they_legitimately_are(backfill):
    # the same search over the inbox and the warehouse's own text finds them: the scan is not blind
    values, emails = backfill.values, backfill.emails

    con = read_only(backfill.warehouse)
    try:
        rows = con.execute("SELECT properties::VARCHAR FROM landing.events WHERE properties IS NOT NULL").fetchall()
    finally:
        con.close()
    warehouse = "\n".join(r[0] for r in rows).encode()
    assert {kind for _, kind, _ in leaks({"warehouse": warehouse}, values)} == {"e-mail", "value"}
    inbox = backfill.inbox_before
    assert {what.encode() for _, _, what in leaks({"inbox": inbox}, set())} >= emails
    assert values_found(inbox, values) == values
    assert len(values_found(warehouse, values)) > 50
    assert values_found(json.dumps(sorted(values)).encode(), values) == values  # ASCII only: \\uXXXX escapes
    page = "<td>".join(html.escape(v) for v in sorted(values)).encode()
    assert values_found(page, values) == values


@pytest.mark.slow
def test_dagster_metadata_previews_show_keys_and_counts(backfill, monkeypatch):
    values = backfill.values | PLANTED | PLANTED_SYSTEM_NAMES
    with dg.DagsterInstance.from_config(str(backfill.home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 2
        previews = []
        for run in runs:
            for kind in (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION):
                for record in instance.get_records_for_run(run.run_id, of_type=kind).records:
                    data = record.event_log_entry.dagster_event.event_specific_data
                    entry = getattr(data, "materialization", data)
                    for label, value in (entry.metadata or {}).items():
                        text = json.dumps(label + " " + str(getattr(value, "value", value)), ensure_ascii=False)
                        assert not EMAIL.search(text.encode()), (label, text[:200])
                        assert not [v for v in values if v in text], (label, text[:200])
                        if label == "preview":
                            previews.append(str(value.value))
    assert len(previews) >= 10
    assert any(re.search(r"\b[0-9a-f]{12}…", p) for p in previews)  # shortened keys
    # a file is shown by its name when it is machine-made, else by its label (pipelines.safe_text)
    monkeypatch.setenv("COMPLIANCE_HASH_KEY", KEY)
    shown = "\n".join(previews)
    assert "| part-0000.jsonl |" in shown and "| part-9999.jsonl.gz |" in shown
    for name in (HOSTILE_FILE, HOSTILE_SPACED_FILE, HOSTILE_GZIP):
        assert f"| {file_label(name)} |" in shown


@pytest.mark.slow
def test_hostile_names_and_values_stay_in_the_inbox_and_the_warehouse(backfill):
    # the planted values are in the inbox (names and lines) and the warehouse: the search can find them
    assert values_found(backfill.inbox_before, PLANTED | PLANTED_SYSTEM_NAMES) == PLANTED | PLANTED_SYSTEM_NAMES

    con = read_only(backfill.warehouse)
    try:
        stored = con.execute(
            """SELECT string_agg(source_file || ' ' || reason || ' ' || coalesce(raw_line, ''), chr(10))
               FROM landing.rejected"""
        ).fetchall()[0][0]
        files = {r[0] for r in con.execute("SELECT source_file FROM landing.files").fetchall()}
        reasons = {r[0] for r in con.execute("SELECT DISTINCT reason FROM landing.rejected").fetchall()}
        hostile = con.execute(
            "SELECT line_number, reason FROM landing.rejected WHERE source_file IN (?, ?) ORDER BY ALL",
            [HOSTILE_FILE, HOSTILE_GZIP],
        ).fetchall()
        systems = dict(
            con.execute("SELECT system, bool_and(readable) FROM landing.export_files GROUP BY ALL").fetchall()
        )
        deleted = {r[0] for r in con.execute("SELECT path FROM ops.retention_log").fetchall()}
        residual = {r[0] for r in con.execute("SELECT residual_locations FROM compliance.erasure_register").fetchall()}
    finally:
        con.close()
    # each hostile line was rejected with its file and line; the unreadable file as line 0
    assert {HOSTILE_FILE, HOSTILE_SPACED_FILE, HOSTILE_GZIP} <= files
    assert hostile == [
        (0, "unreadable_file"),
        (2, "invalid_timestamp"),
        (3, "invalid_message_id"),
        (4, "invalid_type"),
        (5, "unknown_event"),
        (6, "unknown_channel"),
        (7, "invalid_timestamp"),
        (11, "invalid_json"),
    ]
    # the hostile systems went through ingestion (one readable, one not), retention and the register
    assert systems.get(HOSTILE_SYSTEM) is True and systems.get(HOSTILE_UNREADABLE_SYSTEM) is False, systems
    assert f"snapshots/{HOSTILE_SYSTEM}/{START}.csv" in deleted, deleted
    assert any(HOSTILE_SYSTEM in (r or "") for r in residual), residual
    expected = {HOSTILE_MESSAGE_ID, "Přemysl Otakar", HOSTILE_TYPE, HOSTILE_EVENT, HOSTILE_CHANNEL}
    assert values_found(stored.encode(), expected | {HOSTILE_TIMESTAMP, HOSTILE_JSON}) == expected | {
        HOSTILE_TIMESTAMP,
        HOSTILE_JSON,
    }
    # a reason names the rule, never the value that broke it
    assert not values_found("\n".join(reasons).encode(), PLANTED | backfill.values), reasons

    home, reports = contents(backfill.home), contents(backfill.reports)
    outside = {**{f"DAGSTER_HOME/{k}": v for k, v in home.items()}, "CLI output": backfill.output}
    found = [(where, v) for where, blob in outside.items() for v in values_found(blob, PLANTED | PLANTED_SYSTEM_NAMES)]
    found += [(f"reports/{where}", v) for where, blob in reports.items() for v in values_found(blob, PLANTED)]
    assert not found, found[:20]


@pytest.mark.slow
def test_erased_subjects_are_gone_from_every_file_beside_the_warehouse(backfill):
    """CONTRACT 5: after the run, no file the warehouse keeps (the database, its WAL, any state file
    beside it) holds the bytes of an erased subject's account id or of an e-mail only it had."""

    from pipelines.keys import subject_key

    plan = json.loads((backfill.inbox / "_plan" / "plan.json").read_text())
    con = read_only(backfill.warehouse)
    try:
        erased_keys = {k for (k,) in con.execute("SELECT subject_key FROM compliance.erasure_register").fetchall()}
    finally:
        con.close()
    erased = {d["account_id"] for d in plan["deletions"] if subject_key(KEY, d["account_id"]) in erased_keys}
    assert erased, "the backfill erases some of the planted deletions"
    emails_of: dict[str, set[str]] = {}
    for line in backfill.inbox_before.splitlines():
        try:
            record = json.loads(line)
            props = record.get("properties") or {}
            owner = record.get("userId")
        except (ValueError, AttributeError):
            continue
        for prop in ("email", "previous_email"):
            if isinstance(props, dict) and isinstance(props.get(prop), str) and isinstance(owner, str):
                emails_of.setdefault(props[prop].strip().lower(), set()).add(owner)
    only_erased = {mail for mail, owners in emails_of.items() if owners <= erased and "@" in mail}
    needles = sorted({a.encode() for a in erased} | {m.encode() for m in only_erased}, key=len, reverse=True)
    assert only_erased and all(n in backfill.inbox_before.lower() for n in needles)  # the search can find them

    beside = [p for p in backfill.warehouse.parent.iterdir() if p.is_file()]
    assert backfill.warehouse in beside
    for path in beside:
        data = path.read_bytes().lower()
        assert [n.decode() for n in needles if n.lower() in data] == [], path.name
