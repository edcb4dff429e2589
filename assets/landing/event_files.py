"""The arrival day's event files: listing them (never following symlinks), their manifest, and reading
them into one Arrow table of lines.

Files are read as bytes and cut into lines with numpy (exact physical line numbers, UTF-8 checked
by Arrow).
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

EVENT_SUFFIXES = (".jsonl", ".jsonl.gz")
_BOM = b"\xef\xbb\xbf"


@dataclass
class Candidate:
    seq: int
    name: str
    path: Path
    size: int | None
    mtime_ns: int | None
    problem: str | None = None  # why the file cannot be read at all


def day_folder(inbox: Path, day: date) -> Path:
    return inbox / "events" / day.isoformat()


def list_day_files(inbox: Path, day: date) -> list[Candidate]:
    """The day's event files in file-name order. Symlinks are never followed."""
    folder = day_folder(inbox, day)
    if folder.is_symlink() or not folder.is_dir():
        return []
    candidates: list[Candidate] = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(EVENT_SUFFIXES):
            continue
        path = folder / name
        # A name that is not UTF-8 (os.listdir's surrogate escapes) is stored with its bytes as \xNN.
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if path.is_symlink():
            candidates.append(Candidate(len(candidates), name, path, None, None, "symlink_not_followed"))
            continue
        try:
            st = path.stat()
        except OSError:
            candidates.append(Candidate(len(candidates), name, path, None, None, "unreadable"))
            continue
        if not path.is_file():
            continue
        candidates.append(Candidate(len(candidates), name, path, st.st_size, st.st_mtime_ns))
    return candidates


def manifest_of(candidates: list[Candidate]) -> str:
    return json.dumps([[c.name, c.size, c.mtime_ns, c.problem] for c in candidates])


def _read_bytes(c: Candidate) -> bytes:
    with open(c.path, "rb") as fh:
        raw = fh.read()
    if c.name.endswith(".gz"):
        if not raw:  # an empty file is not a gzip stream (`gzip -t` rejects it too)
            raise EOFError("empty gzip file")
        raw = gzip.decompress(raw)
    return raw


def _split_lines(seq: int, name: str, data: bytes) -> pa.Table:
    """Cut bytes into lines (LF; a trailing CR is removed later) with 1-based line numbers."""
    start = len(_BOM) if data.startswith(_BOM) else 0  # a UTF-8 BOM is tolerated and dropped
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    ends = newlines + 1
    if len(data) and data[-1:] != b"\n":
        ends = np.append(ends, len(data))
    offsets = np.empty(len(ends) + 1, dtype=np.int64)
    offsets[0] = start
    offsets[1:] = ends
    if len(ends):
        offsets[1] = max(offsets[1], start)
    lines = pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))
    lines.validate(full=True)  # raises on invalid UTF-8
    n = len(ends)
    return pa.table(
        {
            "file_seq": pa.array(np.full(n, seq, dtype=np.int32)),
            "source_file": pa.repeat(pa.scalar(name, type=pa.string()), n),
            "line_number": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "line": lines,
        }
    )


def _read_file(c: Candidate) -> pa.Table | None:
    """The file's lines, or None with `c.problem` set when it cannot be read."""
    try:
        return _split_lines(c.seq, c.name, _read_bytes(c))
    except (OSError, EOFError, zlib.error):
        c.problem = "corrupt_gzip" if c.name.endswith(".gz") else "unreadable"
    except (pa.ArrowInvalid, UnicodeDecodeError):
        c.problem = "not_utf8"
    return None


def read_day(candidates: list[Candidate]) -> tuple[pa.Table, list[Candidate]]:
    """All readable lines of the day as one Arrow table, plus the files that could not be read.

    Files are read, decompressed, cut and UTF-8 checked in threads (zlib, numpy and Arrow release
    the GIL), one per core; lines keep the files' order."""
    readable = [c for c in candidates if not c.problem]
    workers = min(len(readable), os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="read-day") as pool:
            read = list(pool.map(_read_file, readable))
    else:
        read = [_read_file(c) for c in readable]
    tables = [t for t in read if t is not None]
    unreadable = [c for c in candidates if c.problem]
    schema = pa.schema(
        [
            ("file_seq", pa.int32()),
            ("source_file", pa.string()),
            ("line_number", pa.int64()),
            ("line", pa.large_string()),
        ]
    )
    tables = [t.cast(schema) for t in tables]
    return (pa.concat_tables(tables) if tables else schema.empty_table()), unreadable
