"""bench/results.md: the targets judged from the results, the scaling fit, and the tables of the
latest run."""

from __future__ import annotations

import math
from pathlib import Path

from bench.erasure import COMPACTION_STEP, FULLY_PURGED_STEP, PURGE_STEP, REGISTER_STEP, VARIANTS, purge_and_scans_s
from bench.floors import BARE_LOADS, bare_load_s, best_night_s
from bench.measure import EVENTS_PER_ACCOUNT_30D

#: The issue's targets, evaluated by `targets()`.
INGEST_VS_PARSER_MAX = 2.0
NIGHTLY_1M_MAX_S = 30.0
PANDAS_SPEEDUP_MIN = 10.0
RSS_3M_MAX_MB = 3 * 1024
HISTORY_EFFECT_MAX = 1.25  # ingestion with full history / on an empty warehouse
SCALE_3M_OVER_1M_MAX = 3.0
#: The erasure nights' targets (bench/erasure.py), evaluated by `erasure_targets()`.
ONE_OVER_NONE_MAX = 1.1  # the night of one erasure / a night with none (in-process)
PURGE_AND_SCANS_MAX_S = 2.0  # the purge, the register's scans and the fully-purged check, one erasure
TEN_THOUSAND_EXTRA_MAX_S = 10.0  # 10,000 erasures - none (in-process seconds)
#: The history series' target: the night of the longest history at most this many times the shortest's.
LONGEST_OVER_SHORTEST_MAX = 1.15
#: The heading of the erasure nights' section; `previous_peak_rss()` reads it back.
ERASURE_HEADING = "## Erasure nights"


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares y = a + b x."""
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if not sxx:
        return None
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - b * mx, b


def growth_exponent(results: list[dict]) -> float | None:
    pts = [(math.log(r["events_total"]), math.log(r["nightly"]["in_process_s"])) for r in results]
    fit = fit_line(pts)
    return None if fit is None else fit[1]


def targets(results: list[dict], fixed: dict | None = None) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, basis, met) for each target of the issue that these results can judge.

    Rows whose `met` is None are not targets but floors measured beside them: how close any
    implementation on this machine could come."""
    by = {r["label"]: r for r in results}
    rows = []
    worst = max(results, key=lambda r: r["ingest"]["ingest_history_s"] / r["ingest"]["parser_s"])
    ratio = worst["ingest"]["ingest_history_s"] / worst["ingest"]["parser_s"]
    rows.append(
        (
            f"Ingestion of a day ≤ {INGEST_VS_PARSER_MAX:g}× DuckDB's parser limit on the same files",
            f"{ratio:.1f}× (worst size, {worst['label']})",
            "ingestion with full history / `read_json` count(*)",
            ratio <= INGEST_VS_PARSER_MAX,
        )
    )
    floors = [(load / r["ingest"]["parser_s"], r["label"]) for r in results if (load := bare_load_s(r)) is not None]
    if floors:
        rows.append(
            (
                "… floor: DuckDB alone writing the day's rows into a new database file (no validation, keys or dedupe)",
                " to ".join(dict.fromkeys(f"{x:.1f}× ({label})" for x, label in (min(floors), max(floors)))),
                "the cheapest `CREATE TABLE AS` (from `read_json`, `read_csv` lines, lines uncompressed) "
                "/ `read_json` count(*)",
                None,
            )
        )
    if "1m" in by:
        t = by["1m"]["nightly"]["in_process_s"]
        rows.append(
            (
                f"Nightly day at 1M accounts < {NIGHTLY_1M_MAX_S:g} s wall, all assets and checks, no start-up",
                f"{t:.1f} s",
                "median in-process time of the nightly run",
                t < NIGHTLY_1M_MAX_S,
            )
        )
        p = by["1m"].get("pandas", {})
        if "wall_s" in p:
            n = by["1m"]["nightly"]
            speedup = p["wall_s"] / n["wall_s"]
            rows.append(
                (
                    f"≥ {PANDAS_SPEEDUP_MIN:g}× faster than the pandas baseline at 1M, with a lower peak RSS",
                    f"{speedup:.1f}×; RSS {n['rss_mb']:.0f} MB vs pandas {p['rss_mb']:.0f} MB",
                    "pandas wall / pipeline nightly wall (both with start-up)",
                    speedup >= PANDAS_SPEEDUP_MIN and n["rss_mb"] < p["rss_mb"],
                )
            )
            floor = best_night_s(by["1m"], fixed)
            if floor is not None:
                rows.append(
                    (
                        "… ceiling: the speed-up a 1M night could show if it did nothing but the unavoidable",
                        f"{p['wall_s'] / floor:.1f}× ({p['wall_s']:.1f} s / {floor:.1f} s)",
                        f"pandas wall / (the fixed cost, {fixed['wall_s']:.1f} s wall, + the 1M day's bare load "
                        "+ one read of every text column)",
                        None,
                    )
                )
    if "3m" in by:
        rss = max(by["3m"]["nightly"]["rss_mb"], by["3m"]["backfill"]["rss_mb"])
        rows.append(
            (
                f"Peak RSS < {RSS_3M_MAX_MB / 1024:g} GB at 3M accounts",
                f"{rss:.0f} MB",
                "max of the backfill's and the nightly run's peak RSS",
                rss < RSS_3M_MAX_MB,
            )
        )
    effect = max(r["ingest"]["ingest_history_s"] / r["ingest"]["ingest_empty_s"] for r in results)
    rows.append(
        (
            "Ingestion time depends on the day's data only, not on history",
            f"full history / empty warehouse: {effect:.2f}× (worst size)",
            f"same day's files ingested into both; ≤ {HISTORY_EFFECT_MAX:g}× counts as independent",
            effect <= HISTORY_EFFECT_MAX,
        )
    )
    if "1m" in by and "3m" in by:
        scale = by["3m"]["nightly"]["in_process_s"] / by["1m"]["nightly"]["in_process_s"]
        rows.append(
            (
                f"Nightly day at 3M ≤ {SCALE_3M_OVER_1M_MAX:g}× the time at 1M (linear or better)",
                f"{scale:.2f}×",
                "median in-process times",
                scale <= SCALE_3M_OVER_1M_MAX,
            )
        )
    return rows


def erasure_sizes(results: list[dict]) -> list[dict]:
    """The results that ran the erasure series (all three nights)."""
    return [r for r in results if r.get("erasure_nights") and all(v in r["erasure_nights"] for v in VARIANTS)]


def erasure_peak_rss(r: dict) -> float:
    return max(n["rss_mb"] for n in r["erasure_nights"].values())


def erasure_targets(results: list[dict], previous_rss: dict[str, float] | None = None) -> list[tuple]:
    """(target, size, measured, met) for each erasure target and each size that ran the series.

    `previous_rss`: the previous run's peak RSS of the size's erasure nights (or, before there was a
    series, of its nightly run), from the previous results file (`previous_peak_rss`)."""
    rows = []
    for r in erasure_sizes(results):
        e, label = r["erasure_nights"], r["label"]
        none, one, ten = e["none"], e["one"], e["ten_thousand"]
        ratio = one["in_process_s"] / none["in_process_s"]
        whole = "warehouse" in one.get("compacted", [])
        rows.append(
            (
                f"The night of one erasure ≤ {ONE_OVER_NONE_MAX:g}× a night with none, with no whole-warehouse copy",
                label,
                f"{ratio:.2f}× ({one['in_process_s']:.1f} s / {none['in_process_s']:.1f} s); compacted: "
                f"{', '.join(one.get('compacted', [])) or 'nothing'}",
                ratio <= ONE_OVER_NONE_MAX and not whole,
            )
        )
        scans = purge_and_scans_s(one)
        rows.append(
            (
                f"Purge + residual scans ≤ {PURGE_AND_SCANS_MAX_S:g} s on the night of one erasure",
                label,
                f"{scans:.2f} s",
                scans <= PURGE_AND_SCANS_MAX_S,
            )
        )
        extra = ten["in_process_s"] - none["in_process_s"]
        rows.append(
            (
                f"{ten['erasures_added']:,} erasures cost ≤ {TEN_THOUSAND_EXTRA_MAX_S:g} s more than none",
                label,
                f"{extra:+.1f} s",
                extra <= TEN_THOUSAND_EXTRA_MAX_S,
            )
        )
        peak, before = erasure_peak_rss(r), (previous_rss or {}).get(label)
        rows.append(
            (
                "Peak RSS of the erasure nights not above the previous run's",
                label,
                f"{peak:.0f} MB; " + ("no earlier figure" if before is None else f"previous run {before:.0f} MB"),
                None if before is None else peak <= before,
            )
        )
    return rows


def _table_rows(text: str, heading: str | None = None) -> list[dict[str, str]]:
    """The first markdown table after `heading` (or the first one in `text`), as dicts by header."""
    lines = text.splitlines()
    start = 0
    if heading is not None:
        if heading not in lines:
            return []
        start = lines.index(heading)
    rows, header = [], None
    for line in lines[start:]:
        if not line.startswith("|"):
            if header is not None:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set(line) <= set("|-: "):
            rows.append(dict(zip(header, cells, strict=False)))
    return rows


def _number(cell: str) -> float | None:
    try:
        return float(cell.replace(",", "").split()[0].strip("*"))
    except (ValueError, IndexError):
        return None


def previous_peak_rss(text: str) -> dict[str, float]:
    """Peak RSS (MB) by size in a previous results.md: the highest of its erasure nights where it has
    them, else its nightly run's ("nightly peak RSS (MB)" of the first table)."""
    found: dict[str, float] = {}
    for row in _table_rows(text):
        mb = _number(row.get("nightly peak RSS (MB)", ""))
        if mb is not None and row.get("size"):
            found[row["size"]] = mb
    erasure: dict[str, float] = {}
    for row in _table_rows(text, ERASURE_HEADING):
        mb = _number(row.get("peak RSS (MB)", ""))
        if mb is not None and row.get("size"):
            erasure[row["size"]] = max(mb, erasure.get(row["size"], 0.0))
    return {**found, **erasure}


def render_erasure(results: list[dict], previous_rss: dict[str, float] | None = None) -> list[str]:
    """The "Erasure nights" section, or nothing when no size ran the series."""
    sizes = erasure_sizes(results)
    if not sizes:
        return []
    lines = [
        "",
        ERASURE_HEADING,
        "",
        "The nightly day run three more times from the same post-backfill state (warehouse, identity vault and",
        "inbox event files put back before each run; bench/erasure.py): `none` is the day with every",
        "`Account Deleted` line removed, `one` adds one deletion of a live account, `ten_thousand` adds",
        '10,000 (half the live accounts at small sizes). "purge + residual scans" is the purge step, the',
        "whole erasure register step (its residual scans of the warehouse, the vault and the inbox are not",
        'timed apart from the rest of the step) and the `erased_subjects_fully_purged` check. "compacted" is',
        'what `ops.compactions` records for the day; "inbox files rewritten" is `ops.inbox_rewrites`',
        "(lines redacted: `ops.inbox_redactions`). `none` is not free of purges: an event of a subject erased",
        "earlier that arrives on the day is erased in its own run (CONTRACT 5), vault compaction included.",
        "",
        "| size | night | new erasures | in-process (s) | wall (s) | purge (s) | erasure register (s) | fully-purged check (s) | purge + residual scans (s) | compaction step (s) | compacted | inbox files rewritten (lines redacted) | peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in sizes:
        for variant in VARIANTS:
            n = r["erasure_nights"][variant]
            st = n["steps"]
            lines.append(
                f"| {r['label']} | {variant} | {n['erasures_added']:,} | {n['in_process_s']:.1f} | {n['wall_s']:.1f} | "
                f"{st.get(PURGE_STEP, 0):.2f} | {st.get(REGISTER_STEP, 0):.2f} | {st.get(FULLY_PURGED_STEP, 0):.2f} | "
                f"{purge_and_scans_s(n):.2f} | {st.get(COMPACTION_STEP, 0):.2f} | "
                f"{', '.join(n.get('compacted', [])) or 'nothing'} | "
                f"{n.get('inbox_rewrites', 0)} ({n.get('inbox_lines_redacted', 0):,}) | {n['rss_mb']:.0f} |"
            )
    lines += [
        "",
        "| size | one / none (in-process) | ten_thousand − none (s, in-process) | one / none (wall) | ten_thousand − none (s, wall) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in sizes:
        e = r["erasure_nights"]
        none, one, ten = e["none"], e["one"], e["ten_thousand"]
        lines.append(
            f"| {r['label']} | {one['in_process_s'] / none['in_process_s']:.2f}× | "
            f"{ten['in_process_s'] - none['in_process_s']:+.1f} | {one['wall_s'] / none['wall_s']:.2f}× | "
            f"{ten['wall_s'] - none['wall_s']:+.1f} |"
        )
    lines += ["", "| target | size | measured | met |", "|---|---|---|---|"]
    for target, label, measured, met in erasure_targets(results, previous_rss):
        verdict = "–" if met is None else "yes" if met else "**no**"
        lines.append(f"| {target} | {label} | {measured} | {verdict} |")
    return lines


def write_results(
    out: Path,
    results: list[dict],
    machine: str,
    notes: str = "",
    fixed: dict | None = None,
    previous_rss: dict[str, float] | None = None,
    history: dict | None = None,
) -> str:
    """Render the latest run and replace `out` with it (nothing of the file's earlier text is kept;
    `previous_rss`, read from it before by the caller, is compared with, not copied)."""
    text = render(results, machine, notes, fixed, previous_rss, history)
    out.write_text(text)
    return text


def short_step(key: str) -> str:
    return key.replace("__", "/")


def render(
    results: list[dict],
    machine: str,
    notes: str = "",
    fixed: dict | None = None,
    previous_rss: dict[str, float] | None = None,
    history: dict | None = None,
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine}. Command: `.venv/bin/python bench/run.py` (see its docstring). 30 days, ~10",
        "events per account, weekly exports; the first 29 days are backfilled, the 30th is the nightly",
        "day at full history. Every setting is the product's default, the raw inbox retention too (28",
        "days), so a night redacts the retained inbox files a deployment keeps. Times are wall seconds;",
        "RSS is the process's peak resident set. The machine is shared with other work: the load average",
        "(1 min) is given for every measurement.",
        "",
    ]
    if notes:
        lines += [notes, ""]
    for r in results:
        if r.get("measured"):
            lines.append(f"- {r['label']}: measured {r['measured']} at commit `{r.get('commit', '?')}`")
    lines.append("")
    lines += [
        "| size | events (30 d) | backfill 29 d (s) | backfill peak RSS (MB) | nightly day at full history (s, in-process) | nightly wall incl. start-up (s) | nightly peak RSS (MB) | warehouse + vault (MB) | load (before → after) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        b, n = r["backfill"], r["nightly"]
        runs = ", ".join(f"{x['in_process_s']:.1f}" for x in r["nightly_runs"])
        lines.append(
            f"| {r['label']} | {r['events_total']:,} | {b['wall_s']:.0f} | {b['rss_mb']:.0f} | "
            f"{n['in_process_s']:.1f} (runs: {runs}) | {n['wall_s']:.1f} | {n['rss_mb']:.0f} | "
            f"{n['warehouse_mb']:.0f} + {n.get('vault_mb', 0):.0f} | "
            f"{n['load_before']} → {n['load_after']} |"
        )
    lines += ["", "## Targets", "", "| target | measured | how | met |", "|---|---|---|---|"]
    for target, measured, basis, met in targets(results, fixed):
        verdict = "(a floor)" if met is None else "yes" if met else "**no**"
        lines.append(f"| {target} | {measured} | {basis} | {verdict} |")
    if fixed:
        runs = ", ".join(f"{r['in_process_s']:.1f}" for r in fixed["runs"])
        lines += [
            "",
            "## The night's fixed cost",
            "",
            f"The same nightly job on a {fixed['accounts']:,}-account, {fixed['days']}-day inbox (measured "
            f"{fixed['measured']} at commit `{fixed['commit']}`): **{fixed['in_process_s']:.1f} s** in process "
            f"(runs: {runs}), **{fixed['wall_s']:.1f} s** wall with start-up, {fixed['rss_mb']:.0f} MB peak RSS.",
            "Python and Dagster start-up, the run's steps, the GX import and the report cost about this at any",
            "size. The floors in the targets above add it to what the size itself cannot avoid.",
        ]

    lines += [
        "",
        "## Nightly day by step (median run, seconds)",
        "",
        "From `DagsterInstance.get_run_step_stats` of the nightly run; steps run one at a time (pool",
        "`warehouse`), so they add up to the run's time. Checks are named `<asset>_<check>`.",
        "",
        "| step | " + " | ".join(r["label"] for r in results) + " |",
        "|---|" + "---:|" * len(results),
    ]
    keys = sorted(
        {k for r in results for k in r["nightly"]["steps"]},
        key=lambda k: -max(r["nightly"]["steps"].get(k, 0) for r in results),
    )
    for k in keys:
        cells = []
        for r in results:
            v = r["nightly"]["steps"].get(k)
            total = sum(r["nightly"]["steps"].values())
            cells.append("" if v is None else f"{v:.2f} ({100 * v / total:.0f} %)")
        lines.append(f"| {short_step(k)} | " + " | ".join(cells) + " |")
    lines.append(
        "| **sum of steps** | " + " | ".join(f"**{sum(r['nightly']['steps'].values()):.1f}**" for r in results) + " |"
    )

    lines += render_erasure(results, previous_rss)
    lines += render_history(history)

    lines += [
        "",
        "## Ingestion against the DuckDB parser limit (baseline a)",
        "",
        "The parser limit is DuckDB alone counting the day's lines with `read_json` (and, for reference, with",
        "`read_csv` reading whole lines); our ingestion is `ingest_day` on the same files, into an empty",
        "warehouse and into the full-history warehouse (best of 2 for the parser, one run each for ingestion).",
        "",
        "The bare load is DuckDB alone writing the day's rows into a new database file, from `read_json`",
        "(`SELECT *`), from `read_csv` lines, and from `read_csv` lines with compression forced off, with no",
        "validation, keys or dedupe (best of 2 each); the cheapest is the floor of any ingestion that keeps",
        "the day in the warehouse.",
        "",
        "| size | lines in the day | `read_json` count(*) (s) | `read_csv` lines (s) | bare load, `read_json` / lines / uncompressed lines (s) | cheapest bare load / `read_json` count | ingestion, empty warehouse (s) | ingestion, full history (s) | ratio to `read_json` | history / empty | events/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        i, load = r["ingest"], bare_load_s(r)
        ways = " / ".join(f"{i[k]:.2f}" if k in i else "–" for k in BARE_LOADS)
        bare = f"{ways} | {load / i['parser_s']:.1f}×" if load is not None else " | "
        lines.append(
            f"| {r['label']} | {i['lines']:,} | {i['parser_s']:.2f} | {i.get('parser_csv_s', float('nan')):.2f} | "
            f"{bare} | "
            f"{i['ingest_empty_s']:.2f} | {i['ingest_history_s']:.2f} | {i['ingest_history_s'] / i['parser_s']:.1f}× | "
            f"{i['ingest_history_s'] / i['ingest_empty_s']:.2f} | {i['accepted'] / i['ingest_history_s']:,.0f} |"
        )
    read = [r for r in results if "verification" in r]
    if read:
        lines += [
            "",
            "Reading every text column of the full-history warehouse once (DuckDB alone, best of 2 passes),",
            "the floor of any night that verifies the erasures (CONTRACT 5): "
            + "; ".join(
                f"{r['label']} {r['verification']['read_s']:.2f} s ({r['verification']['columns']} columns)"
                for r in read
            )
            + ".",
        ]
    pandas_rows = [r for r in results if "pandas" in r and "wall_s" in r["pandas"]]
    if pandas_rows:
        lines += [
            "",
            "## Against a straightforward pandas implementation (baseline b)",
            "",
            "`bench/pandas_baseline.py` recomputes consent history, membership and the eight rules over the whole",
            "history from the JSON files, the way one night of a plain script would. The pipeline's nightly run",
            "does that too (from the warehouse), plus ingestion, the purge, verification, compaction, the report",
            "and every check. Both walls include process start-up.",
            "",
            "| size | pandas wall (s) | pandas peak RSS (MB) | pipeline nightly wall (s) | pipeline peak RSS (MB) | speed-up |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in pandas_rows:
            p, n = r["pandas"], r["nightly"]
            lines.append(
                f"| {r['label']} | {p['wall_s']:.1f} | {p['rss_mb']:.0f} | {n['wall_s']:.1f} | {n['rss_mb']:.0f} | "
                f"{p['wall_s'] / n['wall_s']:.1f}× |"
            )
    lines += ["", "## Scaling", ""]
    k = growth_exponent(results)
    if k is not None:
        lines.append(
            f"Fitted growth exponent of the nightly day's time against total events: **{k:.2f}** (1.0 = linear)."
        )
    fit = fit_line([(r["nightly"]["events_in_warehouse"] / 1e6, r["nightly"]["in_process_s"]) for r in results])
    if fit:
        lines.append(
            f"Least-squares line over the sizes: t_night ≈ {fit[0]:.1f} s + {fit[1]:.2f} s per million rows of history."
        )
    by = {r["label"]: r for r in results}
    if "1m" in by and "3m" in by:
        ratio = by["3m"]["nightly"]["in_process_s"] / by["1m"]["nightly"]["in_process_s"]
        lines.append(f"Nightly day at 3M / at 1M: **{ratio:.2f}×** (target ≤ 3×).")
    one = [r for r in results if r.get("one_core")]
    if one:
        lines += ["", "| size | nightly, 2 cores (s) | nightly, 1 core (s) | parallel fraction p = 2(1 − t₂/t₁) |"]
        lines.append("|---|---:|---:|---:|")
        for r in one:
            t2, t1 = r["nightly"]["in_process_s"], r["one_core"]["in_process_s"]
            lines.append(f"| {r['label']} | {t2:.1f} | {t1:.1f} | {2 * (1 - t2 / t1):.2f} |")
    lines += ["", "## Backfill, day by day (in-process seconds)", ""]
    lines.append("| size | " + " | ".join(f"d{i}" for i in range(1, 30)) + " |")
    lines.append("|---|" + "---:|" * 29)
    for r in results:
        per = list(r["backfill"].get("per_day_s", {}).values())
        lines.append(f"| {r['label']} | " + " | ".join(f"{v:.0f}" for v in per) + " |")
    peaks = [r for r in results if r["backfill"].get("per_day_rss_mb")]
    if peaks:
        lines += ["", "## Backfill, day by day (peak RSS of the process that ran the day, MB)", ""]
        lines.append("| size | " + " | ".join(f"d{i}" for i in range(1, 30)) + " |")
        lines.append("|---|" + "---:|" * 29)
        for r in peaks:
            per = list(r["backfill"]["per_day_rss_mb"].values())
            lines.append(f"| {r['label']} | " + " | ".join(f"{v:.0f}" for v in per) + " |")
    return "\n".join(lines) + "\n"


def render_history(history: dict | None) -> list[str]:
    if not history or not history.get("nights"):
        return []
    nights = history["nights"]
    lines = [
        "",
        "## History series: the same accounts and daily traffic, a longer history",
        "",
        f"{history['accounts']:,} accounts; H days of inbox with {EVENTS_PER_ACCOUNT_30D:g} × H / 30 events per account,",
        "the first H − 1 days backfilled, the H-th run as the nightly day (bench/history.py; measured",
        f"{history['measured']} at commit `{history['commit']}`).",
        "",
        "| history (days) | events in the warehouse | nightly (s, in-process) | runs | wall incl. start-up (s) | peak RSS (MB) | warehouse + vault (MB) | backfill of H − 1 days (s) | load (before → after) |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for n in nights:
        events = n.get("events_in_warehouse")
        lines.append(
            f"| {n['days']} | {'–' if events is None else f'{events:,}'} | "
            f"{n['in_process_s']:.1f} | {', '.join(f'{x:.1f}' for x in n['runs'])} | {n['wall_s']:.1f} | "
            f"{n['rss_mb']:.0f} | {n['warehouse_mb']:.0f} + {n.get('vault_mb', 0):.0f} | "
            f"{n['backfill_wall_s']:.0f} | {n['load_before']} → {n['load_after']} |"
        )
    shortest, longest = nights[0], nights[-1]
    if len(nights) > 1:
        ratio = longest["in_process_s"] / shortest["in_process_s"]
        fit = fit_line([(n["days"], n["in_process_s"]) for n in nights])
        met = "yes" if ratio <= LONGEST_OVER_SHORTEST_MAX else "**no**"
        lines += [
            "",
            f"- {longest['days']}-day night / {shortest['days']}-day night: **{ratio:.2f}×** "
            f"(target ≤ {LONGEST_OVER_SHORTEST_MAX}×: {met}).",
        ]
        if fit is not None:
            a, b = fit
            lines.append(
                f"- Fitted growth (least squares over the {len(nights)} nights): {a:.1f} s + {b:.3f} s per day "
                f"of history, {100 * b * 30 / (a + b * 30):.0f} % of the 30-day night per 30 more days."
            )
    return lines
