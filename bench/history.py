"""The history series: the same accounts and the same daily traffic, a longer history.

For each history length H (days), an inbox of H days is generated with the accounts of the size
and H/30 times the 30-day events per account (so a day carries the same traffic at every length),
the first H - 1 days are backfilled with the CLI, and the H-th day is run as the nightly day, from
the same post-backfill state each time (`bench.measure.nightly`). A night whose cost follows the
day and not the history takes the same time at every length: the report gives each night, the
ratio of the longest history's night to the shortest's, and the least-squares line through the
nights (seconds per day of history).
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.measure import EVENTS_PER_ACCOUNT_30D, backfill_and_nights, generate, git_commit, loadavg, median_run


def history_night(label: str, accounts: int, days: int, cache_root: Path, repeats: int) -> dict:
    """Backfill `days` - 1 days of a `days`-day inbox, then time its last day as the nightly run."""
    print(f"== history {label}, {days} days (load {loadavg()})", flush=True)
    cache = cache_root / f"{label}-history-{days}d"
    inbox = generate(cache, accounts, days, seed=42, events_per_account=EVENTS_PER_ACCOUNT_30D * days / 30)
    backfill_wall, backfill_rss, runs = backfill_and_nights(cache, inbox, days, repeats)
    night = median_run(runs)
    print(f"  nightly: {night['in_process_s']:.1f} s in process, {night['wall_s']:.1f} s wall", flush=True)
    return {
        "days": days,
        "events_per_account": EVENTS_PER_ACCOUNT_30D * days / 30,
        "backfill_wall_s": backfill_wall,
        "backfill_rss_mb": backfill_rss,
        "runs": [r["in_process_s"] for r in runs],
        **{k: night[k] for k in ("in_process_s", "wall_s", "rss_mb", "warehouse_mb", "vault_mb", "load_before")},
        "load_after": night["load_after"],
        "events_in_warehouse": night.get("events_in_warehouse"),
        "steps": night["steps"],
    }


def history_series(label: str, accounts: int, lengths: list[int], cache_root: Path, repeats: int) -> dict:
    nights = [history_night(label, accounts, days, cache_root, repeats) for days in sorted(lengths)]
    return {
        "label": label,
        "accounts": accounts,
        "nights": nights,
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "commit": git_commit(),
    }
