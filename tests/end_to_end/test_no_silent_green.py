"""An outage never looks like a clean day, through the command line: the day after the last
delivery is `no_data` (red, alerted) and a missing export is stale (alerted), with exit code 0
(CONTRACT 3 fails a run only on a blocking check) and the headline saying so."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

LAST = "2026-11-08"
AFTER = "2026-11-09"


def summary(cli, day: str) -> dict:
    return json.loads((cli.reports / day / "summary.json").read_text(encoding="utf-8"))


def alerts(cli) -> list[dict]:
    path = cli.reports / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_missing_export_then_a_day_without_data_are_reported_and_alerted(cli):
    generated = cli(
        "generate",
        *("--out", str(cli.inbox), "--accounts", "150", "--days", "8", "--start", "2026-11-01", "--seed", "3"),
        "--quiet",
    )
    assert generated.returncode == 0, generated.stderr
    # The CRM's export of the last day did not come: the latest one is a day old, a daily system.
    (cli.inbox / "snapshots" / "crm" / f"{LAST}.csv").unlink()

    proc = cli("nightly", "--date", LAST)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = summary(cli, LAST)
    assert last["freshness"]["stale_exports"] == 1
    assert last["freshness"]["status"] in ("ok", "not_judged")  # the events all came
    page = (cli.reports / LAST / "compliance_report.html").read_text(encoding="utf-8")
    assert last["status"] in ("incomplete", "violations_found")
    assert ">stale<" in page and ("Incomplete input" in page or "also incomplete" in page)
    [stale] = [a for a in alerts(cli) if a["day"] == LAST and a["event"] == "data_incomplete"]
    assert stale["counts"]["stale_exports"] == 1

    # The day after the last delivery: no event file at all.
    proc = cli("nightly", "--date", AFTER)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{AFTER} ok" in proc.stdout and "NO DATA for the day" in proc.stdout, proc.stdout
    after = summary(cli, AFTER)
    assert after["status"] == "no_data" and after["freshness"]["status"] == "no_data"
    assert after["quality"]["received"] == 0
    assert after["freshness"]["stale_exports"] == 3, "every daily export is now a day old"
    page = (cli.reports / AFTER / "compliance_report.html").read_text(encoding="utf-8")
    assert 'data-status="no_data"' in page and f"No event arrived for {AFTER}" in page
    assert "All clear" not in page
    [outage] = [a for a in alerts(cli) if a["day"] == AFTER]
    assert (outage["event"], outage["severity"]) == ("no_data", "error")
    assert outage["counts"]["events_received"] == 0 and outage["counts"]["stale_exports"] == 3
