"""The benchmark's own arithmetic: what it reports as met or missed must follow the issue's targets."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from bench import floors, measure, report

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_run_under_test", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def result(label: str, accounts: int, nightly_s: float, **over) -> dict:
    """A result as bench_size() writes it, with only the fields the report reads."""
    run = {
        "in_process_s": nightly_s,
        "wall_s": nightly_s + 4,
        "rss_mb": 1000.0,
        "load_before": 1.0,
        "load_after": 1.0,
        "warehouse_mb": 100.0,
        "events_in_warehouse": accounts * 9,
        "steps": {"purge__purge_log": nightly_s / 2},
    }
    r = {
        "label": label,
        "accounts": accounts,
        "events_total": accounts * 10,
        "events_last_day": accounts // 3,
        "backfill": {"wall_s": 100.0, "rss_mb": 1000.0, "days": 1, "per_day_s": {"2026-09-01": 3.0}},
        "nightly_runs": [run],
        "nightly": run,
        "one_core": None,
        "compaction_night": {**run, "in_process_s": nightly_s + 1},
        "ingest": {
            "lines": 1000,
            "parser_s": 1.0,
            "parser_csv_s": 1.0,
            "ingest_empty_s": 2.0,
            "ingest_history_s": 2.0,
            "accepted": 990,
        },
        "snapshot_mb": 100.0,
    }
    for key, value in over.items():
        section, _, field = key.partition("__")
        if field:
            r[section] = {**r[section], field: value}
        else:
            r[section] = value
    return r


def verdict(results: list[dict], prefix: str) -> bool:
    """Met or not, for the one target whose text starts with `prefix`."""
    (ok,) = [ok for target, _, _, ok in report.targets(results) if target.startswith(prefix)]
    return ok


NIGHTLY_1M = "Nightly day at 1M"
NIGHTLY_3M = "Nightly day at 3M"
PARSER = "Ingestion of a day"
HISTORY = "Ingestion time depends"
RSS = "Peak RSS"


def test_growth_exponent_of_a_square_root_curve_is_one_half():
    results = [result(label, n, 10 * math.sqrt(n / 100_000)) for label, n in (("100k", 100_000), ("1m", 10**6))]
    assert report.growth_exponent(results) == pytest.approx(0.5)
    assert report.growth_exponent(results[:1]) is None  # one size: no curve


def test_targets_at_their_exact_boundaries():
    one = result("1m", 10**6, 30.0, ingest__ingest_history_s=2.0, ingest__ingest_empty_s=1.6)
    three = result("3m", 3 * 10**6, 90.0)
    both = [one, three]
    assert verdict(both, NIGHTLY_1M) is False  # "< 30 s": 30.0 s is not under it
    assert verdict(both, PARSER) is True  # "≤ 2×": exactly 2.0× the parser is within
    assert verdict(both, HISTORY) is True  # exactly 1.25× counts as independent
    assert verdict(both, NIGHTLY_3M) is True  # 3M at exactly 3× the 1M time
    assert verdict(both, RSS) is True  # 1000 MB

    one_worse = result("1m", 10**6, 29.9, ingest__ingest_history_s=2.01, ingest__ingest_empty_s=1.6)
    three_worse = result("3m", 3 * 10**6, 89.71, nightly__rss_mb=3072.0)
    both = [one_worse, three_worse]
    assert verdict(both, NIGHTLY_1M) is True
    assert verdict(both, PARSER) is False
    assert verdict(both, HISTORY) is False
    assert verdict(both, NIGHTLY_3M) is False  # 89.71 / 29.9 > 3
    assert verdict(both, RSS) is False  # 3 GB is not under 3 GB


def test_peak_rss_at_3m_counts_the_backfill_too():
    three = result("3m", 3 * 10**6, 90.0, backfill__rss_mb=5000.0)
    (rss,) = [(measured, ok) for target, measured, _, ok in report.targets([three]) if target.startswith("Peak RSS")]
    assert rss == ("5000 MB", False)


def test_pandas_ratio_needs_speed_and_lower_memory():
    fast_but_fat = result("1m", 10**6, 5.0, pandas={"wall_s": 90.0, "rss_mb": 500.0})  # 10x, RSS above pandas
    (row,) = [r for r in report.targets([fast_but_fat]) if "pandas" in r[0]]
    assert row[1].startswith("10.0×") and row[3] is False
    lean = result("1m", 10**6, 5.0, pandas={"wall_s": 90.0, "rss_mb": 5000.0})
    (row,) = [r for r in report.targets([lean]) if "pandas" in r[0]]
    assert row[3] is True


def test_merge_keeps_earlier_sizes_and_replaces_remeasured_ones(bench):
    earlier = [result("3m", 3 * 10**6, 90.0), result("1m", 10**6, 60.0)]
    merged = bench.merge_results(earlier, [result("1m", 10**6, 50.0), result("100k", 10**5, 9.0)])
    assert [(r["label"], r["nightly"]["in_process_s"]) for r in merged] == [("100k", 9.0), ("1m", 50.0), ("3m", 90.0)]


def test_report_names_each_size_with_its_own_date_and_commit():
    a = result("100k", 10**5, 9.0, measured="2026-12-05 17:00", commit="abc1234")
    b = result("3m", 3 * 10**6, 90.0, measured="2026-12-05 18:30", commit="def5678+changes")
    text = report.render([a, b], "2 cores, 24 GiB")
    assert "- 100k: measured 2026-12-05 17:00 at commit `abc1234`" in text
    assert "- 3m: measured 2026-12-05 18:30 at commit `def5678+changes`" in text
    assert text.index("| 100k |") < text.index("| 3m |")


def test_durable_copy_is_byte_identical_and_independent(tmp_path):
    src = tmp_path / "w.duckdb"
    src.write_bytes(bytes(range(256)) * 1000)
    dst = tmp_path / "copy.duckdb"
    measure.copy_durable(src, dst)
    assert dst.read_bytes() == src.read_bytes()
    src.write_bytes(b"changed")
    assert dst.stat().st_size == 256_000


def test_backfill_day_peaks_are_read_from_the_progress_lines_and_rendered():
    out = (
        "Backfilling 3 day(s) from 2026-09-01 to 2026-09-03\n"
        "[1/3] 2026-09-01 ok in 31.2s received=10 accepted=10 new_violations=0 peak_rss=986MB\n"
        "WARNING pipelines.notify: ALERT ...\n"
        "[2/3] 2026-09-02 FAILED in 2.0s the worker process died before finishing this day\n"
        "[3/3] 2026-09-03 ok in 52.6s received=10 accepted=10 new_violations=1 peak_rss=2099MB\n"
    )
    assert measure.day_peaks(out) == {"2026-09-01": 986.0, "2026-09-03": 2099.0}  # none for the failed day
    assert list(measure.day_seconds(out)) == ["2026-09-01", "2026-09-02", "2026-09-03"]
    r = result("1m", 1_000_000, 30.0)
    r["backfill"]["per_day_rss_mb"] = measure.day_peaks(out)
    text = report.render([r], "2 cores")
    assert "| 1m | 986 | 2099 |" in text
    assert "peak RSS of the process that ran the day" not in report.render([result("1m", 1_000_000, 30.0)], "x")


def test_ingestion_floor_is_the_cheaper_bare_load_over_the_parser_and_judges_nothing():
    small = result("100k", 10**5, 9.0, ingest__load_json_s=2.7, ingest__load_lines_s=2.5)  # parser 1.0 s
    big = result("1m", 10**6, 30.0, ingest__load_json_s=2.9, ingest__load_lines_s=3.1)
    (row,) = [r for r in report.targets([small, big]) if r[0].startswith("… floor")]
    assert row[1] == "2.5× (100k) to 2.9× (1m)"
    assert row[3] is None  # a floor is measured beside the target, not met or missed
    (row,) = [r for r in report.targets([small]) if r[0].startswith("… floor")]
    assert row[1] == "2.5× (100k)"  # one size: one figure
    assert floors.bare_load_s(result("1m", 10**6, 30.0)) is None  # older results: no floor row
    assert not [r for r in report.targets([result("1m", 10**6, 30.0)]) if r[0].startswith("… floor")]


def test_pandas_ceiling_adds_the_fixed_cost_the_bare_load_and_one_read():
    fixed = {"wall_s": 10.0, "in_process_s": 7.0, "rss_mb": 400.0, "accounts": 1000, "days": 3,
             "runs": [{"in_process_s": 7.0}], "measured": "2026-12-06 18:00", "commit": "abc1234"}  # fmt: skip
    one = result(
        "1m",
        10**6,
        50.0,
        pandas={"wall_s": 110.0, "rss_mb": 8000.0},
        ingest__load_json_s=0.75,
        ingest__load_lines_s=0.5,
        verification={"read_s": 0.5, "columns": 83},
    )
    (row,) = [r for r in report.targets([one], fixed) if r[0].startswith("… ceiling")]
    assert row[1] == "10.0× (110.0 s / 11.0 s)" and row[3] is None  # 10.0 + 0.5 + 0.5
    assert not [r for r in report.targets([one]) if r[0].startswith("… ceiling")]  # no fixed cost measured
    text = report.render([one], "2 cores", fixed=fixed)
    assert "| (a floor) |" in text and "**7.0 s** in process" in text and "1m 0.50 s (83 columns)" in text
    assert "| 0.75 / 0.50 / – | 0.5× |" in text  # not measured: a dash
    cheaper = result("1m", 10**6, 50.0, ingest__load_lines_s=0.5, ingest__load_uncompressed_s=0.3)
    assert floors.bare_load_s(cheaper) == 0.3  # the cheapest way counts


def test_results_md_holds_only_the_latest_run(bench, tmp_path, monkeypatch):
    """bench/results.md is rewritten from the latest run: an earlier run's text, or sizes measured at
    another commit, never come back (git keeps the earlier runs)."""
    cache, out = tmp_path / "cache", tmp_path / "results.md"
    cache.mkdir()
    out.write_text("# Benchmark results\n\nOLD RUN\n\n# Earlier run: somewhen\n\n| 3m | 1 |\n")
    earlier = [
        result("100k", 10**5, 9.0, measured="t0", commit="abc1234"),  # this commit: the same run set
        result("3m", 3 * 10**6, 90.0, measured="t0", commit="0ld0ld0"),  # another commit: another run
    ]
    (cache / "results.json").write_text(bench.json.dumps(earlier))
    monkeypatch.setattr(bench, "git_commit", lambda: "abc1234")
    monkeypatch.setattr(
        bench,
        "bench_size",
        lambda label, accounts, days, cache_root, args: result(label, accounts, 50.0, measured="t1", commit="abc1234"),
    )
    common = ["--sizes", "1m", "--no-pandas", "--no-fixed-cost", "--cache", str(cache), "--out", str(out)]

    assert bench.main([*common, "--keep"]) == 0
    text = out.read_text()
    assert text.startswith("# Benchmark results\n")
    assert [line for line in text.splitlines() if line.startswith("# ")] == ["# Benchmark results"]
    assert "OLD RUN" not in text and "Earlier run" not in text
    assert "| 100k |" in text and "| 1m |" in text  # the same commit's sizes, in one table
    assert "| 3m |" not in text and "0ld0ld0" not in text

    assert bench.main(common) == 0  # without --keep: this invocation's sizes only
    text = out.read_text()
    assert "| 1m |" in text and "| 100k |" not in text and "| 3m |" not in text
    assert text.count("# Benchmark results") == 1
