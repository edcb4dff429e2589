"""Raw retention (CONTRACT 5): delete ingested inbox days once they are N days old.

The run for D deletes ``events/F/`` where D - F >= N days, but only when F was ingested and the
folder still holds exactly the files that were ingested (a file that arrived later was not). It
deletes ``snapshots/<system>/F.csv`` under the same rule when that export was ingested. Symlinks
are never followed and nothing outside the inbox is touched. Every deletion is logged (path
relative to the inbox, never data) in ``ops.retention_log``. A folder is first renamed to a hidden
``.retention-<name>`` beside it (atomic), then removed, so a deletion cut short by a crash never
leaves a half folder that looks like an arrival day: the next run finishes it.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from assets.landing.event_files import list_day_files, manifest_of
from assets.landing.exports import export_dates, shown, systems
from assets.landing.inbox_files import TRASH_PREFIX
from pipelines.safe_text import path_label


@dataclass(frozen=True)
class Deletion:
    kind: str  # 'events' | 'snapshot'
    path: str  # relative to the inbox

    @property
    def shown(self) -> str:
        """The path for logs and Dagster metadata: a system's name (any text) only if it is
        machine-made, else its keyed label; ops.retention_log keeps the path itself."""
        if self.kind != "snapshot":
            return self.path
        folder, _, name = self.path.rpartition("/")
        return f"snapshots/{shown(folder.removeprefix('snapshots/'))}/{name}"


@dataclass
class RetentionResult:
    deleted: list[Deletion]
    kept_unsafe: list[str]  # old folders kept because they hold files that were never ingested


def _inside(inbox: Path, path: Path) -> bool:
    """The real path is inside the inbox and no component below the inbox is a symlink."""
    root = inbox.resolve()
    try:
        relative = path.relative_to(inbox)
    except ValueError:
        return False
    probe = inbox
    for part in relative.parts:
        probe = probe / part
        if probe.is_symlink():
            return False
    return path.resolve().is_relative_to(root)


def _event_folders(inbox: Path) -> list[tuple[date, Path]]:
    root = inbox / "events"
    if root.is_symlink() or not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        try:
            day = date.fromisoformat(entry.name)
        except ValueError:
            continue
        if entry.name == day.isoformat() and entry.is_dir() and not entry.is_symlink():
            found.append((day, entry))
    return sorted(found)


def apply_retention(
    con: duckdb.DuckDBPyConnection, inbox: Path, day: date, days: int, log: logging.Logger | None = None
) -> RetentionResult:
    """Delete the inbox folders and export files of `day`'s retention; returns what went."""
    log = log or logging.getLogger(__name__)
    cutoff = day - timedelta(days=days)  # F <= cutoff  <=>  D - F >= N
    result = RetentionResult([], [])
    ingested = dict(
        con.execute("SELECT arrival_date, manifest FROM ops.ingested_days WHERE arrival_date <= ?", [cutoff]).fetchall()
    )
    _finish_interrupted(inbox, log)
    for folder_day, folder in _event_folders(inbox):
        if folder_day > cutoff or folder_day not in ingested or not _inside(inbox, folder):
            continue
        relative = f"events/{folder_day.isoformat()}"
        if manifest_of(list_day_files(inbox, folder_day)) != ingested[folder_day]:
            result.kept_unsafe.append(relative)
            log.warning("Retention kept %s: it holds files that were never ingested", relative)
            continue
        _delete(con, day, Deletion("events", relative), folder, log)
        result.deleted.append(Deletion("events", relative))

    exported = {
        (s, d)
        for s, d in con.execute(
            "SELECT system, export_date FROM landing.export_files WHERE readable AND export_date <= ?", [cutoff]
        ).fetchall()
    }
    for system in systems(inbox):
        for export_day, path in export_dates(inbox, system):
            if export_day > cutoff or (system, export_day) not in exported or not _inside(inbox, path):
                continue
            deletion = Deletion("snapshot", f"snapshots/{system}/{path.name}")
            _delete(con, day, deletion, path, log)
            result.deleted.append(deletion)
    return result


def _finish_interrupted(inbox: Path, log: logging.Logger) -> None:
    root = inbox / "events"
    if root.is_symlink() or not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.name.startswith(TRASH_PREFIX) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
            log.info(
                "Retention finished an interrupted deletion of events/%s", path_label(entry.name[len(TRASH_PREFIX) :])
            )


def _delete(con: duckdb.DuckDBPyConnection, day: date, deletion: Deletion, path: Path, log: logging.Logger) -> None:
    con.execute("INSERT INTO ops.retention_log VALUES (?, ?, ?, now())", [day, deletion.kind, deletion.path])
    if path.is_dir() and not path.is_symlink():
        trash = path.with_name(TRASH_PREFIX + path.name)
        if trash.exists():
            shutil.rmtree(trash)
        os.rename(path, trash)  # atomic: the arrival day is gone at once
        shutil.rmtree(trash)  # removes symlinks inside, never what they point to
    else:
        os.unlink(path)
    log.info("Retention deleted %s", deletion.shown)
