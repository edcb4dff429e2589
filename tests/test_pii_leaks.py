"""No personal data leaks (issue 7.4): after a backfill over generated data, no e-mail address,
name or address value the generator wrote is anywhere outside the warehouse and the inbox.

The scan covers every file under DAGSTER_HOME (run storage, event logs with every asset's and
check's metadata, schedules, compute logs; SQLite databases are read both as raw bytes, which
include free pages, and as a logical dump), every file under the reports folder (the day folders
and alerts.jsonl), and the CLI's stdout and stderr. A value counts as found in any of the forms
it can take there: as is, JSON-escaped (with or without \\u escapes: Dagster's serialisation,
summary.json), HTML-escaped, CSV-quoted.

To prove that the search can find what it looks for, the same search run over the inbox and
the warehouse (which hold the data legitimately) finds the values.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[1]
KEY = "pii-scan-test-key"
START, END = "2026-10-01", "2026-10-02"
EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
#: The personal properties of CONTRACT 2.1 (and the personal columns of the CRM export).
PERSONAL = ("email", "previous_email", "first_name", "last_name", "street", "city", "postal_code")
#: Values shorter than this are skipped: 3-letter first names (Jan, Eva, Vít) occur inside ordinary
#: words and identifiers ("January", "evaluated"), so finding one would prove nothing. Every longer
#: value is searched, including the generator's hostile ones.
MIN_LENGTH = 4


@dataclass
class Backfill:
    inbox: Path
    warehouse: Path
    reports: Path
    home: Path
    output: bytes


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
        DAGSTER_HOME=str(b.home),
        PYTHONPATH=str(REPO),
    )
    generate = [sys.executable, "-m", "pipelines", "generate", "--out", str(b.inbox), "--accounts", "150"]
    generate += ["--days", "2", "--start", START, "--seed", "11", "--corrupt-files", "1", "--quiet"]
    proc = subprocess.run(generate, cwd=REPO, env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads((b.inbox / "_plan" / "plan.json").read_text())
    assert plan["deletions"], "the generator plants deletions in the first days"
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
    for path in sorted((inbox / "events").rglob("*.jsonl*")):
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
    for path in sorted((inbox / "snapshots").rglob("*.csv")):
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


def sqlite_dump(path: Path) -> bytes:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(con.iterdump()).encode("utf-8", "surrogateescape")
    finally:
        con.close()


def contents(root: Path) -> dict[str, bytes]:
    """Every file under `root` as bytes; an SQLite database also as its logical dump."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found[str(path.relative_to(root))] = data
        if data.startswith(b"SQLite format 3\x00"):
            found[f"{path.relative_to(root)} (dump)"] = sqlite_dump(path)
    return found


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
    values, emails = identities(backfill.inbox)
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
    values, emails = identities(backfill.inbox)
    import duckdb

    con = duckdb.connect(str(backfill.warehouse), read_only=True)
    try:
        rows = con.execute("SELECT properties::VARCHAR FROM landing.events WHERE properties IS NOT NULL").fetchall()
    finally:
        con.close()
    warehouse = "\n".join(r[0] for r in rows).encode()
    assert {kind for _, kind, _ in leaks({"warehouse": warehouse}, values)} == {"e-mail", "value"}
    inbox = b"\n".join(inbox_lines(backfill.inbox))
    inbox += b"".join(p.read_bytes() for p in sorted((backfill.inbox / "snapshots").rglob("*.csv")))
    assert {what.encode() for _, _, what in leaks({"inbox": inbox}, set())} == emails
    assert values_found(inbox, values) == values
    assert len(values_found(warehouse, values)) > 50
    assert values_found(json.dumps(sorted(values)).encode(), values) == values  # ASCII only: \\uXXXX escapes
    page = "<td>".join(html.escape(v) for v in sorted(values)).encode()
    assert values_found(page, values) == values


@pytest.mark.slow
def test_dagster_metadata_previews_show_keys_and_counts(backfill):
    values, _ = identities(backfill.inbox)
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
                        text = json.dumps(str(getattr(value, "value", value)), ensure_ascii=False)
                        assert not EMAIL.search(text.encode()), (label, text[:200])
                        assert not [v for v in values if v in text], (label, text[:200])
                        if label == "preview":
                            previews.append(str(value.value))
    assert len(previews) >= 10
    assert any(re.search(r"\b[0-9a-f]{12}…", p) for p in previews)  # shortened keys
