"""Publish `<reports>/<D>/`: the page, summary.json, the two CSVs, the remediation lists
(`remediation/<file>`, remediation.py) and MANIFEST.sha256.

Every file is written atomically (a temporary file in the same folder, fsynced, then os.replace),
so a reader never sees a half-written report. The same inputs give the same bytes in every file:
the page states the data's day and the code version, not when it was generated (that time is in
reports.daily_summary). The manifest lists every file by its path in the day's folder and links
to the previous day's manifest (assets/reports/archive.py), so re-running a day keeps the chain.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from assets.reports.archive import DAY_NAME, MANIFEST_FILE, check_relative, manifest_bytes, previous_manifest
from assets.reports.csvsafe import csv_bytes
from assets.reports.html import render
from assets.reports.remediation import REMEDIATION_DIR, remediation_contents, remove_stale
from assets.reports.status import day_status
from assets.reports.summary import (
    VIOLATION_COLUMNS,
    ReportData,
    code_version,
    compute_summary,
    failed_error_checks,
    gather,
    rule_ids,
)
from pipelines.clock import PRAGUE
from pipelines.safe_text import label

HTML_FILE = "compliance_report.html"
SUMMARY_FILE = "summary.json"
VIOLATIONS_FILE = "violations.csv"
REGISTER_FILE = "erasure_register.csv"
REPORT_FILES = (HTML_FILE, SUMMARY_FILE, VIOLATIONS_FILE, REGISTER_FILE)

REGISTER_CSV_COLUMNS = (
    "subject_key",
    "deleted_at",
    "due_date",
    "days_left",
    "days_overdue",
    "status",
    "residual_locations",
    "verified_on",
    "erased_on",
)


@dataclass
class Published:
    """What publish_report wrote: the day's folder, its data, the files' digests and the manifest's link."""

    folder: Path
    data: ReportData
    #: sha256 of every file the manifest lists, by its path in the day's folder.
    digests: dict[str, str]
    #: sha256 of MANIFEST.sha256 itself: the chain's newest link until the next day is published.
    manifest_sha256: str = ""
    #: The day the manifest links to (None: the first day of the archive).
    previous_day: date | None = None


def write_atomic(path: Path, content: bytes) -> None:
    """Write `content` to `path` so that readers see the old file or the new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path, names: tuple[str, ...] = (*REPORT_FILES, MANIFEST_FILE)) -> None:
    """A run killed while writing leaves write_atomic's hidden temporary file behind: remove it.
    `names` are paths in the day's folder (`remediation/crm.csv`)."""
    for name in names:
        path = folder / name
        if path.parent.is_dir():
            for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
                leftover.unlink(missing_ok=True)


def shown_path(name: str) -> str:
    """A path of a day's report folder (a verify-archive problem) for the console or Dagster metadata:
    the pipeline's own names as they are (the report files, the manifest, `remediation`, `..`, a
    day), any other part as safe_text shows an inbox name (no control character, no personal data)."""
    own = {"..", REMEDIATION_DIR, MANIFEST_FILE, *REPORT_FILES}
    return "/".join(
        part if part in own or DAY_NAME.fullmatch(part) else label(part, "file") for part in name.split("/")
    )


def _iso(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(PRAGUE).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def violations_csv(data: ReportData) -> bytes:
    """Every violation detected by the day (no account_id: keys only)."""
    return csv_bytes(VIOLATION_COLUMNS, ([_iso(v) for v in row] for row in data.violations))


def register_csv(data: ReportData) -> bytes:
    rows = []
    for key, deleted_at, due, days_left, status, residual, verified_on, erased_on in data.register:
        rows.append(
            [
                key,
                _iso(deleted_at),
                _iso(due),
                max(0, int(days_left)),
                max(0, -int(days_left)),
                status,
                residual or "",
                _iso(verified_on),
                _iso(erased_on),
            ]
        )
    return csv_bytes(REGISTER_CSV_COLUMNS, rows)


def summary_json(summary: dict) -> bytes:
    return (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def publish_report(
    con: duckdb.DuckDBPyConnection,
    reports_root: Path,
    day: date,
    *,
    run_id: str | None = None,
    generated_at: datetime | None = None,
) -> Published:
    """Compute the day's figures, record them, and publish the day's report folder.

    `generated_at` (default: now) goes to reports.daily_summary only; no published file holds it."""
    generated_at = generated_at or datetime.now(PRAGUE).replace(microsecond=0)
    summary = compute_summary(con, day, rule_ids())
    status = day_status(summary, failed_error_checks(con, day))
    summary_out = {**summary, "status": status}
    # Today's row first: the trend charts read every run up to and including today.
    con.execute("DELETE FROM reports.daily_summary WHERE run_date = ?", [day])
    con.execute(
        "INSERT INTO reports.daily_summary VALUES (?, ?, ?, ?, ?, ?)",
        [day, status, json.dumps(summary_out), code_version(), run_id, generated_at],
    )
    data = gather(con, day, summary)

    folder = reports_root / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    # Every file of the day's folder, by its path in it: the manifest lists exactly these.
    contents = {
        **remediation_contents(con, day),  # first: the page links to them
        SUMMARY_FILE: summary_json(summary_out),
        VIOLATIONS_FILE: violations_csv(data),
        REGISTER_FILE: register_csv(data),
        HTML_FILE: render(data).encode("utf-8"),
    }
    for name in contents:
        check_relative(name)  # before anything is written
    remove_stale_temporaries(folder, (*contents, MANIFEST_FILE))
    digests = {}
    for name, content in contents.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, content)
        digests[name] = hashlib.sha256(content).hexdigest()
    previous = previous_manifest(reports_root, day)
    manifest = manifest_bytes(digests, previous)
    write_atomic(folder / MANIFEST_FILE, manifest)
    # after the manifest, so every file a manifest lists exists: a re-run of the day removes the list
    # of a system that has no residual left
    remove_stale(folder, set(contents))

    # Last: the day is processed (the CLI's catch-up reads ops.runs).
    con.execute("DELETE FROM ops.runs WHERE run_date = ?", [day])
    con.execute("INSERT INTO ops.runs VALUES (?, ?, 'published', ?)", [day, run_id, datetime.now(PRAGUE)])
    return Published(folder, data, digests, hashlib.sha256(manifest).hexdigest(), previous[0] if previous else None)
