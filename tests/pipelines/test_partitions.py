"""The partition window (issue 25, item 4): from the first day of the inbox or the reports, or
COMPLIANCE_FIRST_DAY, to yesterday in Prague; read from directory listings when the Definitions load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipelines.clock import last_complete_day
from pipelines.config import ConfigError
from pipelines.partitions import first_partition_day

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def roots(tmp_path) -> dict[str, str]:
    (tmp_path / "inbox").mkdir()
    return {"COMPLIANCE_INBOX": str(tmp_path / "inbox"), "COMPLIANCE_REPORTS": str(tmp_path / "reports")}


def test_the_window_starts_at_the_first_arrival_folder(roots):
    events = Path(roots["COMPLIANCE_INBOX"]) / "events"
    for name in ("2026-10-05", "2026-10-03", "2026-11-01"):
        (events / name).mkdir(parents=True)
    assert first_partition_day(roots) == date(2026, 10, 3)


def test_names_that_are_not_a_day_do_not_move_the_window(roots):
    events = Path(roots["COMPLIANCE_INBOX"]) / "events"
    (events / "2026-10-03").mkdir(parents=True)
    for name in ("20261001", "2026-W40-1", "jana@example.cz"):
        (events / name).mkdir()
    (events / "2026-09-01").write_text("a file, not an arrival folder")
    assert first_partition_day(roots) == date(2026, 10, 3)


def test_an_earlier_export_or_published_day_starts_the_window(roots):
    """An export before the first arrival folder is planned by `nightly`; a published day whose
    arrival folder raw retention deleted stays re-runnable."""
    inbox, reports = Path(roots["COMPLIANCE_INBOX"]), Path(roots["COMPLIANCE_REPORTS"])
    (inbox / "events" / "2026-10-03").mkdir(parents=True)
    (inbox / "snapshots" / "crm").mkdir(parents=True)
    (inbox / "snapshots" / "crm" / "2026-10-02.csv").write_text("account_id\n")
    assert first_partition_day(roots) == date(2026, 10, 2)
    (reports / "2026-09-01").mkdir(parents=True)
    assert first_partition_day(roots) == date(2026, 9, 1)


def test_the_configured_first_day_wins(roots):
    (Path(roots["COMPLIANCE_INBOX"]) / "events" / "2026-10-03").mkdir(parents=True)
    assert first_partition_day({**roots, "COMPLIANCE_FIRST_DAY": "2026-10-10"}) == date(2026, 10, 10)
    assert first_partition_day({**roots, "COMPLIANCE_FIRST_DAY": " "}) == date(2026, 10, 3)  # blank: unset
    with pytest.raises(ConfigError, match="COMPLIANCE_FIRST_DAY"):
        first_partition_day({**roots, "COMPLIANCE_FIRST_DAY": "2026-02-30"})


def test_an_empty_or_missing_inbox_starts_yesterday_and_never_later(roots, tmp_path):
    assert first_partition_day(roots) == last_complete_day()
    assert first_partition_day({"COMPLIANCE_INBOX": str(tmp_path / "nowhere")}) == last_complete_day()
    tomorrow = last_complete_day() + timedelta(days=2)
    (Path(roots["COMPLIANCE_INBOX"]) / "events" / tomorrow.isoformat()).mkdir(parents=True)
    assert first_partition_day(roots) == last_complete_day()  # the schedule's day is always a partition


def test_the_definitions_load_their_window_from_the_inbox_and_say_how_to_backfill(tmp_path):
    """What the UI shows: the job's partitions from the first arrival folder to yesterday, and a
    description that says how to backfill; no variable set by the CLI is involved."""
    inbox = tmp_path / "inbox"
    first = last_complete_day() - timedelta(days=9)
    (inbox / "events" / first.isoformat()).mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPLIANCE_", "DAGSTER_"))}
    env.update(
        COMPLIANCE_INBOX=str(inbox),
        COMPLIANCE_REPORTS=str(tmp_path / "reports"),
        COMPLIANCE_WAREHOUSE=str(tmp_path / "warehouse.duckdb"),
        COMPLIANCE_HASH_KEY="partitions-test-key",
        PYTHONPATH=str(REPO),
    )
    script = (
        "import json\n"
        "from pipelines.definitions import defs\n"
        "job = defs.resolve_job_def('nightly_compliance')\n"
        "keys = job.partitions_def.get_partition_keys()\n"
        "print(json.dumps({'first': keys[0], 'last': keys[-1], 'n': len(keys), 'description': job.description}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (got["first"], got["last"], got["n"]) == (first.isoformat(), last_complete_day().isoformat(), 10)
    assert "python -m pipelines backfill --from D1 --to D2" in got["description"]
    assert "COMPLIANCE_FIRST_DAY" in got["description"]
