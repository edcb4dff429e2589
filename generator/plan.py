"""The plan: the ground truth written to ``<out>/_plan/plan.json``; the pipeline never reads it.

It holds counts, planted violations, deletions and re-registrations: account
ids and message ids only, never an e-mail address, a name or a postal address.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from generator.calendar import Calendar
from generator.contract import UNREADABLE_FILE_REASON
from generator.writer import DayWriter


def layout_days(
    days: int, gzip_every: int, export_every: int, quirks: bool
) -> tuple[list[int], list[int], list[int], list[int]]:
    """Day indexes of the exports, the gzip days, the CRLF days and the BOM days."""
    export_days = [i for i in range(days) if export_every > 0 and i % export_every == 0]
    gzip_days = [i for i in range(days) if gzip_every > 0 and i % gzip_every == gzip_every - 1]
    crlf_days = [i for i in range(days) if quirks and i % 9 == 4]
    bom_days = [i for i in range(days) if quirks and i % 11 == 6]
    return export_days, gzip_days, crlf_days, bom_days


def build_plan(
    *,
    params: dict,
    cal: Calendar,
    writers: list[DayWriter],
    export_days: list[int],
    gzip_days: list[int],
    crlf_days: list[int],
    bom_days: list[int],
    blank_lines: int,
    corrupt: list[str],
    violations: list[dict],
    deletions: list[dict],
    reregs: list[dict],
    late_after_del: list[str],
) -> dict:
    """The plan, from the writers' per-file counts and the chunks' records (sorted in place)."""
    plan_days = {}
    tot = Counter()
    for i, w in enumerate(writers):
        files = dict(sorted(w.files.items()))
        agg = Counter()
        for st in files.values():
            agg.update(st)
        day = {k: agg.get(k, 0) for k in ("received", "accepted", "duplicates", "rejected")}
        day["rejected_by_reason"] = dict(sorted(w.reasons.items()))
        day["files"] = files
        plan_days[cal.dates[i]] = day
        tot.update({k: day[k] for k in ("received", "accepted", "duplicates", "rejected")})

    violations.sort(
        key=lambda v: (v["detected_on"], v["rule"], v["account_id"], v["message_id"] or "", v["system"] or "")
    )
    deletions.sort(key=lambda x: (x["deleted_on"], x["account_id"]))
    plan = {
        "params": params,
        "layout": {
            "gzip_days": [cal.dates[i] for i in gzip_days],
            "export_dates": [cal.dates[i] for i in export_days],
            "crlf_days": [cal.dates[i] for i in crlf_days],
            "bom_days": [cal.dates[i] for i in bom_days],
            "blank_lines": blank_lines,
            "corrupt_files": corrupt,
            "unreadable_file_reason": UNREADABLE_FILE_REASON,
        },
        "totals": {k: tot.get(k, 0) for k in ("received", "accepted", "duplicates", "rejected")},
        "days": plan_days,
        "violations": violations,
        "deletions": deletions,
        "reregistrations": reregs,
        "late_events_after_deletion": sorted(late_after_del),
    }
    return plan


def write_plan(out: Path, plan: dict) -> None:
    (out / "_plan").mkdir(parents=True, exist_ok=True)
    with open(out / "_plan" / "plan.json", "w", encoding="utf-8", newline="\n") as fh:
        json.dump(plan, fh, indent=1, ensure_ascii=True)
        fh.write("\n")
