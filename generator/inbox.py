"""generate(): simulate every chunk, write the inbox in chunk order, then write and return the plan."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from generator.calendar import calendar_for
from generator.chunk import chunk_ranges, run_chunks, worker_count
from generator.plan import build_plan, layout_days, write_plan
from generator.writer import (
    DEFAULT_LINES_PER_FILE,
    append_exports,
    day_writers,
    export_files,
    prepare_out,
    write_corrupt_files,
)


def generate(
    out: Path,
    accounts: int,
    days: int,
    start: date,
    seed: int,
    *,
    bad_line_rate: float = 0.002,
    violation_rate: float = 0.002,
    duplicate_rate: float = 0.002,
    late_rate: float = 0.01,
    gzip_every: int = 3,
    export_every: int = 1,
    corrupt_files: int = 0,
    events_per_account: float = 10.0,
    progress: Callable[[str], None] | None = None,
    lines_per_file: int = DEFAULT_LINES_PER_FILE,
    workers: int | None = None,
    quirks: bool = True,
) -> dict:
    """Write a synthetic inbox under ``out`` and return its plan (ground truth).

    ``lines_per_file``: lines per event file before rotating to the next part.
    ``workers``: simulation processes (default: 1 for small runs, else up to
    the CPU count, at most 4).  The output does not depend on it.
    ``quirks``: include contract-tolerated oddities (a BOM, CRLF days, blank
    lines).
    """
    out = Path(out)
    if isinstance(start, str):
        start = date.fromisoformat(start)
    if accounts < 0 or days < 1:
        raise ValueError("accounts must be >= 0 and days >= 1")
    if accounts > 9_999_999:
        raise ValueError("at most 9,999,999 accounts")
    t_start = time.monotonic()
    cal = calendar_for(start, days)
    export_days, gzip_days, crlf_days, bom_days = layout_days(days, gzip_every, export_every, quirks)
    cfg = {
        "start": start.isoformat(),
        "days": days,
        "seed": int(seed),
        "bad_line_rate": float(bad_line_rate),
        "violation_rate": float(violation_rate),
        "duplicate_rate": float(duplicate_rate),
        "late_rate": float(late_rate),
        "events_per_account": float(events_per_account),
        "export_days": export_days,
        "quirks": bool(quirks),
    }
    prepare_out(out)
    ev_root = out / "events"
    writers = day_writers(ev_root, cal, days, lines_per_file, gzip_days, crlf_days, bom_days)
    export_paths = export_files(out, cal, export_days)

    chunks = chunk_ranges(accounts)
    workers = worker_count(accounts, workers, len(chunks))

    violations: list[dict] = []
    deletions: list[dict] = []
    reregs: list[dict] = []
    late_after_del: list[str] = []
    eod: dict[int, list[str]] = {}
    blank_lines = 0
    done_accounts = 0
    lines_written = 0

    def consume(res: dict) -> None:
        nonlocal blank_lines, done_accounts, lines_written
        for d, (lines, tags) in enumerate(res["days"]):
            if lines:
                writers[d].write(lines, tags)
                lines_written += len(lines)
        for d, line in res["eod"]:
            eod.setdefault(d, []).append(line)
        append_exports(export_paths, res["exports"])
        violations.extend(res["violations"])
        deletions.extend(res["deletions"])
        reregs.extend(res["reregistrations"])
        late_after_del.extend(res["late_events_after_deletion"])
        blank_lines += res["blank_lines"]
        done_accounts += res["accounts"]
        if progress is not None:
            progress(
                f"generate: chunk {res['index'] + 1}/{len(chunks)}, accounts {done_accounts}/{accounts}, "
                f"lines {lines_written}, {time.monotonic() - t_start:.1f}s"
            )

    run_chunks(cfg, chunks, workers, consume)

    # duplicates kept for the end of their day (usually another file)
    for d in sorted(eod):
        writers[d].write(eod[d], [1] * len(eod[d]))
    for w in writers:
        w.ensure_file()
        w.close()

    # corrupt files on the last days
    corrupt = write_corrupt_files(ev_root, cal, writers, seed, days, corrupt_files)

    params = {
        "accounts": accounts,
        "days": days,
        "start": start.isoformat(),
        "seed": int(seed),
        "bad_line_rate": float(bad_line_rate),
        "violation_rate": float(violation_rate),
        "duplicate_rate": float(duplicate_rate),
        "late_rate": float(late_rate),
        "gzip_every": gzip_every,
        "export_every": export_every,
        "corrupt_files": corrupt_files,
        "events_per_account": float(events_per_account),
        "lines_per_file": int(lines_per_file),
        "quirks": bool(quirks),
    }
    plan = build_plan(
        params=params,
        cal=cal,
        writers=writers,
        export_days=export_days,
        gzip_days=gzip_days,
        crlf_days=crlf_days,
        bom_days=bom_days,
        blank_lines=blank_lines,
        corrupt=corrupt,
        violations=violations,
        deletions=deletions,
        reregs=reregs,
        late_after_del=late_after_del,
    )
    write_plan(out, plan)
    if progress is not None:
        progress(f"generate: done, {plan['totals']['received']} lines, {time.monotonic() - t_start:.1f}s")
    return plan
