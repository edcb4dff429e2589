"""A chunk of accounts simulated together, with its own random stream; chunks run in order or in parallel.

Accounts are simulated in fixed-size chunks, each with its own ``random.Random``
seeded from ``(seed, chunk index)``, and chunk results are consumed strictly in
chunk order whatever the number of worker processes: same arguments and seed,
same bytes.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from datetime import date

from generator.accounts import AccountLifecycle
from generator.bad_lines import BadLines
from generator.calendar import calendar_for
from generator.care import CareCenter
from generator.consent import Consent
from generator.contract import REJECT_REASONS, SYSTEMS
from generator.encoding import M40, splitmix
from generator.events import EventStream
from generator.exports import Exports, export_texts
from generator.marketing import Marketing
from generator.planted import Planted

#: Accounts simulated per chunk.  Part of the output definition: changing it
#: changes the bytes produced for a given seed.
CHUNK_ACCOUNTS = 20_000


class ChunkSim(AccountLifecycle, Exports, Planted, BadLines, CareCenter, Consent, Marketing, EventStream):
    """Simulates accounts ``lo..hi-1`` (1-based numbers) of one chunk."""

    def __init__(self, cfg: dict, index: int, lo: int, hi: int) -> None:
        self.cfg = cfg
        self.cal = cal = calendar_for(date.fromisoformat(cfg["start"]), cfg["days"])
        self.index = index
        self.lo, self.hi = lo, hi
        seed = cfg["seed"]
        self.rng = random.Random(f"synthetic-inbox/{seed}/{index}")
        self.mid_salt = splitmix(seed * 0x9E3779B97F4A7C15 + 0x1234567)
        self.mail_salt = splitmix(seed + 0xABCDEF) & M40
        n = cal.n
        self.n = n
        self.limit = cal.t_end - 1
        self.buf: list[list] = [[] for _ in range(n)]  # (t, line, tag)
        self.tail: list[list] = [[] for _ in range(n)]  # (line, tag)
        self.eod: list[tuple[int, str]] = []
        self.segs: dict[str, list] = {s: [] for s in SYSTEMS}
        self.violations: list[dict] = []
        self.deletions: list[dict] = []
        self.reregs: list[dict] = []
        self.late_after_del: list[str] = []
        self.pending_rereg: list[tuple] = []
        self.vr = cfg["violation_rate"]
        self.blr = cfg["bad_line_rate"]
        self.dr = cfg["duplicate_rate"]
        self.lr = cfg["late_rate"]
        self.epa = cfg["events_per_account"]
        self.export_days = cfg["export_days"]
        first = index == 0
        self.force: set[str] = set()  # chunk 0: make sure every case occurs
        self.force_ev: list[str] = []  # chunk 0: event rules still to plant
        if first:
            self.force |= {"rereg", "email_then_delete"}
            if self.lr > 0:
                self.force.add("late_after_deletion")
            if self.vr > 0:
                self.force_ev = [
                    "care_ooh_special",
                    "care_ooh_weekday",
                    "email_change_not_via_care_center",
                    "marketing_without_consent",
                    "password_changed_without_reset",
                ]
                self.force |= {
                    "marketing_without_consent_deleted",
                    "activity_after_deletion",
                    "marketing_list_without_consent",
                    "club_member_without_consent",
                }
        self.hostile_sends = 2 if first else 0
        self.hostile_sources = 2 if first else 0
        self.bad_cycle = 0 if (first and self.blr > 0) else len(REJECT_REASONS)
        self.dup_cycle = 0 if (first and self.dr > 0) else 3
        self.blank_lines = 0

    def run(self) -> dict:
        r = self.rng.random
        for pos, a in enumerate(range(self.lo, self.hi)):
            self.account(a, pos)
        days = []
        quirks = self.cfg["quirks"]
        for d in range(self.n):
            items = self.buf[d]
            items.sort(key=_first)
            lines = [x[1] for x in items]
            tags = [x[2] for x in items]
            for line, tag in self.tail[d]:
                lines.append(line)
                tags.append(tag)
            if quirks and lines and r() < 0.15:
                at = int(r() * len(lines))
                lines.insert(at, " \t ")
                tags.insert(at, 2)
                self.blank_lines += 1
            days.append((lines, tags))
        self.buf = self.tail = None
        exports = export_texts(self.segs, self.export_days)
        return {
            "index": self.index,
            "accounts": self.hi - self.lo,
            "days": days,
            "eod": self.eod,
            "exports": exports,
            "violations": self.violations,
            "deletions": self.deletions,
            "reregistrations": self.reregs,
            "late_events_after_deletion": self.late_after_del,
            "blank_lines": self.blank_lines,
        }


def _first(x: tuple) -> int:
    return x[0]


def run_chunk(cfg: dict, index: int, lo: int, hi: int) -> dict:
    return ChunkSim(cfg, index, lo, hi).run()


def chunk_ranges(accounts: int) -> list[tuple[int, int, int]]:
    """(chunk index, first account number, last account number + 1) of every chunk."""
    return [
        (i, lo, min(accounts + 1, lo + CHUNK_ACCOUNTS)) for i, lo in enumerate(range(1, accounts + 1, CHUNK_ACCOUNTS))
    ]


def worker_count(accounts: int, workers: int | None, chunks: int) -> int:
    """Simulation processes: by default 1 for small runs, else up to the CPU count, at most 4."""
    if workers is None:
        workers = 1 if accounts <= 2 * CHUNK_ACCOUNTS else min(4, os.cpu_count() or 1)
    workers = max(1, min(int(workers), chunks or 1))
    return workers


def run_chunks(cfg: dict, chunks: list[tuple[int, int, int]], workers: int, consume: Callable[[dict], None]) -> None:
    """Simulate every chunk and hand each result to ``consume``, in chunk order."""
    if workers == 1:
        for c in chunks:
            consume(run_chunk(cfg, *c))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            pending = []
            it = iter(chunks)
            for c in it:
                pending.append(ex.submit(run_chunk, cfg, *c))
                if len(pending) >= workers + 1:
                    break
            while pending:
                res = pending.pop(0).result()
                nxt_c = next(it, None)
                if nxt_c is not None:
                    pending.append(ex.submit(run_chunk, cfg, *nxt_c))
                consume(res)
                del res
