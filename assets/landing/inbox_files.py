"""The retained inbox event files as the pipeline keeps them: listing them, and rewriting one in place
atomically (CONTRACT 5, "redacted in place").

A rewrite is crash-safe in three steps, so that a SIGKILL at any moment leaves the old file or the
new one, never a torn one, and never a day that looks changed to the next run:

1. the new content is written beside the file (``.<name>.redact``) and fsynced;
2. one transaction records the rewrite (``ops.inbox_rewrites``: sizes and mtimes before and after,
   state ``pending``) and puts the new file's size and mtime into the arrival day's ingested
   manifest (``ops.ingested_days``), so a re-run of that day sees the files it ingested, with what
   the caller keeps about the file (``Rewrite.on_record``: the redaction's key cache);
3. ``os.replace`` swaps the file in, the folder is fsynced, and the rewrite is marked ``done``.

``finish_rewrites`` (run before a day is ingested and before each redaction) completes a rewrite cut
short after step 2 and removes a copy left by one cut short before it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from pipelines.warehouse import transaction
from pipelines.warehouse.compaction import fsync_path

#: The suffix of a rewrite's new content while it is written beside the file.
REWRITE_SUFFIX = ".redact"
#: Folders that retention is deleting (``assets/erasure/retention.py``): never read or rewritten.
TRASH_PREFIX = ".retention-"


def events_root(inbox: Path) -> Path:
    return inbox / "events"


def shown_relative(path: Path, root: Path) -> str:
    """A file's path under <inbox>/events/ as stored: a name that is not UTF-8 keeps its bytes as \\xNN."""
    return os.fsencode(path.relative_to(root)).decode("utf-8", "backslashreplace")


def inbox_folders(inbox: Path) -> dict[str, list[tuple[str, Path]]]:
    """Every regular file under <inbox>/events/, grouped by its first folder ('.' for files at the top).

    Symlinks are never followed, folders being deleted by retention and rewrite copies are skipped.
    """
    root = events_root(inbox)
    folders: dict[str, list[tuple[str, Path]]] = {}
    if root.is_symlink() or not root.is_dir():
        return folders
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(
            d
            for d in dirs
            if not os.path.islink(os.path.join(current, d))
            and not (current == str(root) and d.startswith(TRASH_PREFIX))
        )
        for name in sorted(files):
            path = Path(current) / name
            if name.endswith(REWRITE_SUFFIX) or path.is_symlink() or not path.is_file():
                continue
            relative = shown_relative(path, root)
            folder = relative.split("/", 1)[0] if "/" in relative else "."
            folders.setdefault(folder, []).append((relative, path))
    return folders


def visible(folder: str, day: date) -> bool:
    """Arrival folders after D do not exist yet for the run of D; other folders always count."""
    try:
        return date.fromisoformat(folder) <= day
    except ValueError:
        return True


def arrival_day(folder: str) -> date | None:
    """The arrival day a folder name stands for (``YYYY-MM-DD`` exactly), else None."""
    try:
        day = date.fromisoformat(folder)
    except ValueError:
        return None
    return day if day.isoformat() == folder else None


#: Statements that commit with a rewrite's record (step 2), given the file's (size, mtime_ns) before
#: and after: what the redaction keeps about the file must describe the file the rewrite leaves.
OnRecord = Callable[[duckdb.DuckDBPyConnection, tuple[int, int], tuple[int, int]], None]


@dataclass(frozen=True)
class Rewrite:
    """New content for one retained file (`relative` to <inbox>/events/)."""

    relative: str
    path: Path
    content: bytes
    on_record: OnRecord | None = None


def _copy_path(path: Path) -> Path:
    return path.with_name("." + path.name + REWRITE_SUFFIX)


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _with_file_stat(manifest: str, name: str, size: int, mtime_ns: int) -> str:
    """The ingested manifest (``event_files.manifest_of``) with one file's size and mtime replaced."""
    entries = json.loads(manifest)
    for entry in entries:
        if entry[0] == name:
            entry[1], entry[2] = size, mtime_ns
    return json.dumps(entries)


def rewrite_files(con: duckdb.DuckDBPyConnection, run_date: date, rewrites: list[Rewrite]) -> None:
    """Replace each file's content atomically, in the three steps of the module docstring."""
    for rewrite in rewrites:
        copy = _copy_path(rewrite.path)
        before = _stat(rewrite.path)
        if before is None:
            continue  # gone since it was read (retention of another run): nothing left to redact
        with open(copy, "wb") as fh:
            fh.write(rewrite.content)
            fh.flush()
            os.fsync(fh.fileno())
        after = _stat(copy)
        folder, _, name = rewrite.relative.rpartition("/")
        day = arrival_day(folder) if folder and "/" not in folder else None
        with transaction(con):
            con.execute(
                "DELETE FROM ops.inbox_rewrites WHERE path = ? AND state = 'pending'",
                [rewrite.relative],
            )
            con.execute(
                "INSERT INTO ops.inbox_rewrites VALUES (?, ?, ?, ?, ?, ?, 'pending', now())",
                [run_date, rewrite.relative, before[0], before[1], after[0], after[1]],
            )
            if day is not None:
                _record_manifest(con, day, name, before, after)
            if rewrite.on_record is not None:
                rewrite.on_record(con, before, after)
        os.replace(copy, rewrite.path)
        fsync_path(rewrite.path.parent)
        con.execute(
            "UPDATE ops.inbox_rewrites SET state = 'done' WHERE path = ? AND state = 'pending'", [rewrite.relative]
        )


def _record_manifest(
    con: duckdb.DuckDBPyConnection, day: date, name: str, before: tuple[int, int], after: tuple[int, int]
) -> None:
    """Put the new file's size and mtime into the day's ingested manifest, where it held the old ones."""
    rows = con.execute("SELECT manifest FROM ops.ingested_days WHERE arrival_date = ?", [day]).fetchall()
    if not rows:
        return  # never ingested: its ingestion will read the redacted file
    entries = json.loads(rows[0][0])
    if not any(e[0] == name and (e[1], e[2]) == before for e in entries):
        return  # the folder changed since it was ingested: its next ingestion reads it afresh
    con.execute(
        "UPDATE ops.ingested_days SET manifest = ? WHERE arrival_date = ?",
        [_with_file_stat(rows[0][0], name, *after), day],
    )


def finish_rewrites(con: duckdb.DuckDBPyConnection, inbox: Path) -> int:
    """Complete or discard rewrites cut short by a crash; returns how many were completed."""
    root = events_root(inbox)
    completed = 0
    for relative, size_before, mtime_before, size_after, mtime_after in con.execute(
        """SELECT path, size_before, mtime_before_ns, size_after, mtime_after_ns
           FROM ops.inbox_rewrites WHERE state = 'pending' ORDER BY path"""
    ).fetchall():
        path = root / relative
        copy = _copy_path(path)
        now = _stat(path)
        if now == (size_before, mtime_before) and _stat(copy) == (size_after, mtime_after):
            os.replace(copy, path)  # step 3 was not reached: the recorded copy is complete
            fsync_path(path.parent)
            completed += 1
        elif copy.exists() and not copy.is_symlink():
            copy.unlink()
        con.execute("UPDATE ops.inbox_rewrites SET state = 'done' WHERE path = ? AND state = 'pending'", [relative])
    if root.is_dir() and not root.is_symlink():
        for current, dirs, files in os.walk(root, followlinks=False):
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(current, d))]
            for name in files:
                stray = Path(current) / name
                original = name[1 : -len(REWRITE_SUFFIX)]
                if (
                    name.startswith(".")
                    and name.endswith(REWRITE_SUFFIX)
                    and original  # only the copy of a file that is there: a producer's own files stay
                    and (Path(current) / original).is_file()
                    and not stray.is_symlink()
                ):
                    stray.unlink()  # a copy written before its rewrite was recorded (step 1)
    return completed
