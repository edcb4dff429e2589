"""Remediation lists: which export rows each downstream system must delete (issue 28).

For each downstream system that still holds residual data of an erased subject on D, the report
writes ``<reports>/<D>/remediation/<file>`` (`REMEDIATION_DIR`). Only those systems get a file: a
re-run of D removes the file of a system that has none left (`remove_stale`), and the folder
itself when it is empty. The rows are ``compliance.erasure_remediation``, written by the verifier
with the register from the same facts (``assets/erasure/verifier.py``), so a system is in a
subject's ``residual_locations`` on D exactly when the subject has a row in that system's file
(check ``remediation_lists_match_the_register``).

**Columns** (`REMEDIATION_COLUMNS`), one row per (export file, row number, subject):

- ``export_file``: the export the verifier read, relative to the inbox, as CONTRACT 2.2 names it:
  ``snapshots/<system>/<YYYY-MM-DD>.csv`` (the system's latest export dated at or before D). The
  folder's name is written as ingestion names it (a name that is not UTF-8 keeps its bytes as
  ``\\xNN``);
- ``row_number``: the data record of that file holding the identifier, counted from 1 = the first
  record after the header. A quoted field's line breaks stay inside its record and blank lines are
  not records: it is the position of the row as Python's ``csv.DictReader`` or
  ``pandas.read_csv`` yield them (index + 1), and the spreadsheet row minus 1 (the header) when the
  file has no blank line and no line break inside a field. It is ``landing.export_keys.row_number``
  (``assets/landing/exports.py``). Empty when the export could not be read (``matched_on`` =
  ``export_unreadable``): the system's state is unknown and it must deliver a readable export;
- ``matched_on``: the column that holds the identifier: ``account_id``, ``email`` (an e-mail the
  subject had that no live account holds), ``account_id+email``, or ``export_unreadable``;
- ``subject_key``: the full key (64 hex digits, CONTRACT 4), as in ``erasure_register.csv``;
- ``deleted_at``, ``due_date``, ``days_left``, ``days_overdue``, ``status`` (``pending`` or
  ``overdue``): as in ``erasure_register.csv`` (``days_left`` = max(0, due_date − D),
  ``days_overdue`` = max(0, D − due_date)).

Sorted by export_file, row_number (empty first), subject_key. No plain identifier: the system's
owners find the rows by number in their own export. Every cell goes through ``csvsafe.csv_bytes``
(formula guard, e-mail masking), like the other CSVs of the report.

**File name** (``pipelines.safe_text.system_file_name``): ``<system>.csv`` when the system's name
is a plain file name (machine-made, lower-case, starting with a letter or digit: ``crm.csv``,
``marketing_list.csv``), else ``system-<16 hex>.csv``, keyed like the system's label
(``system#3f2a9c1b`` is ``system-3f2a9c1b….csv``). Never more than 124 bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from pathlib import Path

import duckdb

from assets.reports.csvsafe import csv_bytes
from pipelines.clock import PRAGUE, end_of_day
from pipelines.safe_text import system_file_name

REMEDIATION_DIR = "remediation"
REMEDIATION_COLUMNS = (
    "export_file",
    "row_number",
    "matched_on",
    "subject_key",
    "deleted_at",
    "due_date",
    "days_left",
    "days_overdue",
    "status",
)

#: (system, *REMEDIATION_COLUMNS) of every remediation row of $day, by system then file order.
ROWS_SQL = """
SELECT m.system,
       'snapshots/' || m.system || '/' || strftime(m.export_date, '%Y-%m-%d') || '.csv' AS export_file,
       m.row_number, m.matched_on, m.subject_key, r.deleted_at, r.due_date,
       greatest(0, datediff('day', $day, r.due_date)) AS days_left,
       greatest(0, datediff('day', r.due_date, $day)) AS days_overdue,
       r.status
FROM compliance.erasure_remediation m
JOIN compliance.erasure_register r USING (subject_key)
WHERE r.deleted_at <= $day_end
ORDER BY m.system, export_file, m.row_number NULLS FIRST, m.subject_key
"""

#: Per system: rows, subjects and overdue subjects of $day.
FILES_SQL = """
SELECT m.system, count(*) AS rows, count(DISTINCT m.subject_key) AS subjects,
       count(DISTINCT m.subject_key) FILTER (WHERE r.status = 'overdue') AS overdue_subjects
FROM compliance.erasure_remediation m
JOIN compliance.erasure_register r USING (subject_key)
WHERE r.deleted_at <= $day_end
GROUP BY m.system
ORDER BY m.system
"""


@dataclass(frozen=True)
class RemediationFile:
    """One system's remediation list: its path under the day's folder and its counts."""

    system: str
    path: str  # remediation/<file name>
    rows: int
    subjects: int
    overdue_subjects: int

    @property
    def name(self) -> str:
        return self.path.removeprefix(f"{REMEDIATION_DIR}/")


def _path(system: str) -> str:
    return f"{REMEDIATION_DIR}/{system_file_name(system)}"


def remediation_files(con: duckdb.DuckDBPyConnection, day: date) -> list[RemediationFile]:
    """The day's remediation lists, one per system with residual rows, ordered by path."""
    found = [
        RemediationFile(system, _path(system), int(rows), int(subjects), int(overdue))
        for system, rows, subjects, overdue in con.execute(FILES_SQL, {"day_end": end_of_day(day)}).fetchall()
    ]
    paths = [f.path for f in found]
    if len(set(paths)) != len(paths):  # 64-bit keyed names: never seen; a merged list would be wrong
        raise RuntimeError("two export systems share a remediation file name")
    return sorted(found, key=lambda f: f.path)


def _iso(value) -> str:
    if isinstance(value, datetime):
        return value.astimezone(PRAGUE).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def remediation_contents(con: duckdb.DuckDBPyConnection, day: date) -> dict[str, bytes]:
    """{``remediation/<file name>``: CSV bytes} for every system with residual rows on `day`."""
    rows = con.execute(ROWS_SQL, {"day": day, "day_end": end_of_day(day)}).fetchall()
    contents = {}
    for system, group in groupby(rows, key=lambda row: row[0]):
        contents[_path(system)] = csv_bytes(
            REMEDIATION_COLUMNS,
            (
                [export_file, row_number, matched_on, key, _iso(deleted_at), _iso(due), left, overdue, status]
                for _, export_file, row_number, matched_on, key, deleted_at, due, left, overdue, status in group
            ),
        )
    return dict(sorted(contents.items()))


def remove_stale(folder: Path, keep: set[str]) -> list[str]:
    """Remove the files of ``<folder>/remediation/`` that are not `keep` (paths as ``remediation/<name>``),
    and the folder when it is left empty: the folder holds the day's lists and nothing else.
    Returns the removed paths."""
    sub = folder / REMEDIATION_DIR
    if not sub.is_dir() or sub.is_symlink():
        return []
    removed = []
    for entry in sorted(os.listdir(sub)):
        path = f"{REMEDIATION_DIR}/{entry}"
        target = sub / entry
        if path in keep or (target.is_dir() and not target.is_symlink()):
            continue
        target.unlink(missing_ok=True)
        removed.append(path)
    try:
        sub.rmdir()  # only when empty
    except OSError:
        pass
    return removed


def overdue_paths(summary: dict) -> list[str]:
    """The paths of summary.json's ``remediation`` entries that list an overdue subject."""
    entries = summary.get("remediation") if isinstance(summary, dict) else None
    if not isinstance(entries, list):
        return []
    found = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        path, overdue = entry.get("file"), entry.get("overdue_subjects")
        if isinstance(path, str) and isinstance(overdue, int) and not isinstance(overdue, bool) and overdue > 0:
            found.append(path)
    return sorted(found)
