"""Writing the inbox: day folders of rotating event files, export files, unreadable files."""

from __future__ import annotations

import gzip
import random
import shutil
from collections import Counter
from pathlib import Path

from generator.calendar import Calendar
from generator.contract import EXPORT_HEADERS, SYSTEMS, UNREADABLE_FILE_REASON

DEFAULT_LINES_PER_FILE = 250_000


class DayWriter:
    def __init__(self, folder: Path, gz: bool, lines_per_file: int, crlf: bool, bom: bool) -> None:
        self.folder = folder
        self.gz = gz
        self.lpf = lines_per_file
        self.sep = "\r\n" if crlf else "\n"
        self.bom = bom
        self.part = -1
        self.raw = None
        self.fh = None
        self.n = 0
        self.files: dict[str, dict] = {}
        self.reasons: Counter = Counter()
        self.cur: dict | None = None

    def _open(self) -> None:
        self.close()
        self.part += 1
        name = f"part-{self.part:04d}.jsonl" + (".gz" if self.gz else "")
        self.raw = open(self.folder / name, "wb")
        if self.gz:
            self.fh = gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, mtime=0, compresslevel=1)
        else:
            self.fh = self.raw
        self.cur = self.files[name] = {"received": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
        self.n = 0
        if self.bom and self.part == 0:
            self.fh.write("\ufeff".encode())

    def write(self, lines: list[str], tags: list) -> None:
        i, total = 0, len(lines)
        if self.fh is None and total == 0:
            return
        while i < total:
            if self.fh is None or self.n >= self.lpf:
                self._open()
            take = min(self.lpf - self.n, total - i)
            part = lines[i : i + take]
            self.fh.write((self.sep.join(part) + self.sep).encode("utf-8"))
            cur = self.cur
            for tag, cnt in Counter(tags[i : i + take]).items():
                if tag == 0:
                    cur["accepted"] += cnt
                elif tag == 1:
                    cur["duplicates"] += cnt
                elif tag == 2:
                    continue
                else:
                    cur["rejected"] += cnt
                    self.reasons[tag] += cnt
                cur["received"] += cnt
            self.n += take
            i += take

    def ensure_file(self) -> None:
        if self.fh is None and self.part < 0:
            self._open()

    def close(self) -> None:
        if self.fh is not None:
            if self.gz:
                self.fh.close()
            self.raw.close()
        self.fh = self.raw = None


def prepare_out(out: Path) -> None:
    plan = out / "_plan" / "plan.json"
    owned = [out / "events", out / "snapshots", out / "_plan"]
    if plan.exists():
        for p in owned:
            if p.exists():
                shutil.rmtree(p)
    else:
        for p in owned[:2]:
            if p.exists() and any(p.iterdir()):
                raise FileExistsError(f"{p} is not empty and {out} holds no generator plan; refusing to overwrite it")
    out.mkdir(parents=True, exist_ok=True)


def day_writers(
    ev_root: Path,
    cal: Calendar,
    days: int,
    lines_per_file: int,
    gzip_days: list[int],
    crlf_days: list[int],
    bom_days: list[int],
) -> list[DayWriter]:
    """One writer per arrival day, its folder created."""
    writers = []
    gz_set, crlf_set, bom_set = set(gzip_days), set(crlf_days), set(bom_days)
    for i in range(days):
        folder = ev_root / cal.dates[i]
        folder.mkdir(parents=True, exist_ok=True)
        writers.append(DayWriter(folder, i in gz_set, max(1, int(lines_per_file)), i in crlf_set, i in bom_set))
    return writers


def export_files(out: Path, cal: Calendar, export_days: list[int]) -> dict[str, list[Path]]:
    """Every export file of every system, created with its header row only."""
    export_paths = {}
    for s in SYSTEMS:
        sdir = out / "snapshots" / s
        sdir.mkdir(parents=True, exist_ok=True)
        export_paths[s] = [sdir / f"{cal.dates[x]}.csv" for x in export_days]
        for p in export_paths[s]:
            p.write_text(EXPORT_HEADERS[s], encoding="utf-8", newline="")
    return export_paths


def append_exports(export_paths: dict[str, list[Path]], exports: dict[str, list[str]]) -> None:
    """Append a chunk's rows to each export file."""
    for s in SYSTEMS:
        for p, text in zip(export_paths[s], exports[s], strict=True):
            if text:
                with open(p, "a", encoding="utf-8", newline="") as fh:
                    fh.write(text)


def write_corrupt_files(
    ev_root: Path, cal: Calendar, writers: list[DayWriter], seed: int, days: int, corrupt_files: int
) -> list[str]:
    """An unreadable file on each of the last ``corrupt_files`` days; their paths under ``events/``."""
    corrupt = []
    crng = random.Random(f"synthetic-inbox/{seed}/corrupt")
    for k in range(min(max(0, corrupt_files), days)):
        d = days - 1 - k
        data = bytes(crng.getrandbits(8) for _ in range(200 + crng.randrange(800)))
        data = b"PK\x03\x04" + data  # never the gzip magic
        name = "part-9999.jsonl.gz"
        (ev_root / cal.dates[d] / name).write_bytes(data)
        writers[d].files[name] = {"received": 1, "accepted": 0, "duplicates": 0, "rejected": 1}
        writers[d].reasons[UNREADABLE_FILE_REASON] += 1
        corrupt.append(f"{cal.dates[d]}/{name}")
    return corrupt
