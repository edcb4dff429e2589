"""The erasure series: the nightly last day three times from the same post-backfill state, with no,
one and 10,000 new erasures, to show what an erasure costs a night.

The variants change the last day's arrival folder of the working inbox (`<work>/inbox/events/<D>/`,
hard-linked from the generated inbox; `bench.measure.link_tree`), never a file of the generated
inbox in the cache. A file is changed only by writing its new content beside it and renaming it over
the link (what the pipeline's own redaction does), which leaves the other link, and so the cached
file, as it was:

* ``none``: every ``"Account Deleted"`` line removed from the day's files, every other line kept
  byte for byte (so the night erases nothing new);
* ``one``: the same, plus ``zz-bench-erasures.jsonl`` holding one contract-valid ``Account Deleted``
  event (CONTRACT 2.1, the generator's shape) of an account that exists and is not deleted;
* ``ten_thousand``: the same with 10,000 such events (at most half the live accounts, at small sizes).

The accounts come from the generator's plan (``_plan/plan.json``): its ``params.accounts`` are
``acc_0000001`` … ``acc_<N>`` (``generator/accounts.py``), each created before the end of the
generated period, and ``deletions`` lists every account the inbox deletes (a re-registration's old
account among them). The deletions are timed at 23:59 local time on the day, after the accounts'
other events of the day.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.measure import nightly

#: The variants, in the order they are run, and how many new erasures each holds (None: as many as
#: `ten_thousand_count` allows).
VARIANTS = {"none": 0, "one": 1, "ten_thousand": None}
DELETED = "Account Deleted"
#: The extra file of the `one` and `ten_thousand` variants; last in file-name order.
EXTRA_FILE = "zz-bench-erasures.jsonl"
#: The Dagster steps the series reports (step keys of `get_run_step_stats`).
PURGE_STEP = "purge__purge_log"
REGISTER_STEP = "erasure__erasure_register"
COMPACTION_STEP = "compaction__warehouse_compaction"
FULLY_PURGED_STEP = "compaction__warehouse_compaction_erased_subjects_fully_purged"
STEPS = (PURGE_STEP, REGISTER_STEP, COMPACTION_STEP, FULLY_PURGED_STEP)
BOM = b"\xef\xbb\xbf"
PRAGUE = ZoneInfo("Europe/Prague")


def is_deletion(line: bytes) -> bool:
    """An `Account Deleted` line: its JSON's `event`, or, for a line that is not JSON (a broken copy),
    the event name in quotes anywhere in it."""
    text = line.strip()
    try:
        obj = json.loads(text)
    except ValueError:
        return f'"{DELETED}"'.encode() in text
    return isinstance(obj, dict) and obj.get("event") == DELETED


def split_lines(data: bytes) -> list[bytes]:
    """The lines of a file with their own endings (`\\n` or `\\r\\n`), the last one possibly without."""
    return [piece for piece in re.split(rb"(?<=\n)", data) if piece]


def read_event_file(path: Path) -> bytes | None:
    """A day file's bytes, decompressed; None when it cannot be read (a corrupt gzip holds no event)."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            return gzip.decompress(data)
        except (OSError, EOFError):
            return None
    return data


def replace_file(path: Path, data: bytes) -> None:
    """Write `data` as `path` (gzip-compressed for a .gz name) beside it, then rename it over `path`:
    the old inode, shared with the cached inbox, is never written."""
    tmp = path.with_name(path.name + ".bench-tmp")
    tmp.write_bytes(gzip.compress(data, compresslevel=6, mtime=0) if path.name.endswith(".gz") else data)
    os.replace(tmp, path)


def drop_deletions(folder: Path) -> dict[str, int]:
    """Remove every `Account Deleted` line from the event files of `folder` (the `none` variant).

    Only the files that hold one are replaced; every other line, its ending and a leading BOM are
    kept byte for byte."""
    files = removed = 0
    for path in sorted(folder.iterdir()):
        if not path.is_file() or not (path.name.endswith(".jsonl") or path.name.endswith(".jsonl.gz")):
            continue
        data = read_event_file(path)
        if data is None:
            continue
        bom = BOM if data.startswith(BOM) else b""
        lines = split_lines(data[len(bom) :])
        kept = [line for line in lines if not is_deletion(line)]
        if len(kept) == len(lines):
            continue
        replace_file(path, bom + b"".join(kept))
        files += 1
        removed += len(lines) - len(kept)
    return {"files_changed": files, "deletion_lines_removed": removed}


def account_id(n: int) -> str:
    return f"acc_{n:07d}"  # generator/accounts.py: AccountLifecycle.account


def live_accounts(plan: dict) -> list[str]:
    """The plan's accounts that the inbox never deletes: each exists by the end of the period."""
    deleted = {d["account_id"] for d in plan.get("deletions", [])}
    deleted |= {r["old_account_id"] for r in plan.get("reregistrations", [])}
    return [a for a in map(account_id, range(1, plan["params"]["accounts"] + 1)) if a not in deleted]


def ten_thousand_count(live: int) -> int:
    """The `ten_thousand` variant's erasures: 10,000, or half the live accounts when there are fewer."""
    return min(10_000, live // 2)


def deletion_line(account: str, day: date, i: int) -> str:
    """One contract-valid `Account Deleted` (CONTRACT 2.1, Segment track), at 23:59 local time on `day`."""
    occurred = datetime.combine(day, time(23, 59), PRAGUE).isoformat()
    return json.dumps(
        {
            "messageId": f"m-bench-erasure-{day.isoformat()}-{i:05d}",
            "type": "track",
            "event": DELETED,
            "userId": account,
            "timestamp": occurred,
            "context": {"channel": "system"},
        },
        separators=(",", ":"),
    )


def build_variant(folder: Path, variant: str, plan: dict, day: date, *, seed: int = 7) -> dict:
    """Turn the day folder `folder` (a hard-linked working copy) into `variant`; what it did.

    Never writes into an existing file: a changed file is replaced by rename (`replace_file`), the
    extra file is new."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    done = {"variant": variant, **drop_deletions(folder)}
    live = live_accounts(plan)
    wanted = VARIANTS[variant]
    n = ten_thousand_count(len(live)) if wanted is None else wanted
    if n > len(live):
        raise ValueError(f"{variant}: {n} erasures wanted, {len(live)} live accounts in the plan")
    accounts = sorted(random.Random(f"{seed}-{variant}").sample(live, n))
    if accounts:
        extra = folder / EXTRA_FILE
        if extra.exists():
            raise FileExistsError(f"{extra} is there already: the folder is not a fresh copy of the day")
        tmp = extra.with_name(extra.name + ".bench-tmp")
        tmp.write_text("".join(deletion_line(a, day, i) + "\n" for i, a in enumerate(accounts)), encoding="utf-8")
        os.replace(tmp, extra)
    return {**done, "erasures_added": len(accounts), "live_accounts": len(live)}


def erasure_series(env: dict[str, str], work: Path, snapshot: Path, last: date, plan: dict) -> dict:
    """The last day's night once per variant, each from the post-backfill state `snapshot`."""
    folder = work / "inbox" / "events" / last.isoformat()
    nights = {}
    for variant in VARIANTS:
        run = nightly(env, work, snapshot, last, prepare=lambda v=variant: build_variant(folder, v, plan, last))
        nights[variant] = night_summary(run)
        n = nights[variant]
        print(f"  erasure night {variant} ({n['erasures_added']:,} new): {n['in_process_s']:.1f} s in process, "
              f"{n['wall_s']:.1f} s wall, {n['rss_mb']:.0f} MB peak RSS, compacted {','.join(n['compacted']) or 'none'}, "
              f"{n['inbox_files_redacted']} inbox file(s) redacted", flush=True)  # fmt: skip
    return nights


def night_summary(run: dict) -> dict:
    """What the report needs of one night of the series (the step durations of interest, the facts)."""
    keep = ("wall_s", "rss_mb", "in_process_s", "load_before", "load_after", "warehouse_mb", "vault_mb")
    facts = ("compacted", "inbox_files_redacted", "inbox_lines_redacted", "inbox_rewrites", "erased_subjects")
    prepared = run.get("prepared", {})
    return {
        **{k: run[k] for k in keep if k in run},
        **{k: run[k] for k in facts if k in run},
        "erasures_added": prepared.get("erasures_added", 0),
        "deletion_lines_removed": prepared.get("deletion_lines_removed", 0),
        "steps": {k: v for k, v in run.get("steps", {}).items() if k in STEPS},
        "steps_total_s": sum(run.get("steps", {}).values()),
    }


def purge_and_scans_s(night: dict) -> float:
    """The purge step, the erasure register (its scans are not timed apart from it: the whole step)
    and the `erased_subjects_fully_purged` check."""
    steps = night["steps"]
    return sum(steps.get(k, 0.0) for k in (PURGE_STEP, REGISTER_STEP, FULLY_PURGED_STEP))
