"""Several days run in worker processes that are replaced every few days.

One day runs in the CLI process itself (covered by tests/pipelines/test_cli.py and the crash suite): not
here, because this test process imported the Definitions, and their resources, for other tests.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import date, timedelta

import pytest

from pipelines import config, day_run, runner
from pipelines.instance import prepare_dagster_home
from tests.helpers import event

FIRST = date(2026, 10, 1)


@pytest.fixture
def days(env, monkeypatch) -> list[date]:
    """Four arrival days with one account each, and the CLI's environment."""
    found = []
    for i in range(4):
        day = FIRST + timedelta(days=i)
        env.write_events(day, "events.jsonl", [event("Account Created", f"w-{i}", f"{day}T10:00:00+02:00",
                                                     properties={"email": f"w{i}@example.test"})])  # fmt: skip
        found.append(day)
    prepare_dagster_home()
    return found


@pytest.mark.slow
def test_days_run_one_at_a_time_in_workers_replaced_every_n_days(env, days, monkeypatch):
    monkeypatch.setattr(runner, "DAYS_PER_WORKER", 2)
    progress, outcomes = [], []
    settings = config.load_settings()

    def backfill_as_the_cli_does() -> None:
        with runner.warehouse_lock(settings):  # the workers' runs must not wait for this lock
            outcomes.extend(runner.run_days(settings, days[:3], lambda i, n, o: progress.append((i, n, o.day))))

    cli = threading.Thread(target=backfill_as_the_cli_does, daemon=True)
    cli.start()
    cli.join(timeout=600)
    assert not cli.is_alive(), "the days did not finish: a worker waits for its own CLI's warehouse lock?"
    assert [o.success for o in outcomes] == [True, True, True], [o.failures for o in outcomes]
    assert progress == [(1, 3, days[0]), (2, 3, days[1]), (3, 3, days[2])]
    first, second, third = (o.pid for o in outcomes)
    assert first == second != third  # two days per worker, then a fresh one
    # (small days: far below the peak after which a worker is replaced sooner)
    assert all(o.peak_rss_mb < runner.RECYCLE_AFTER_PEAK_MB for o in outcomes)
    assert os.getpid() not in (first, third)
    assert env.query("SELECT count(*) FROM landing.events") == [(3,)]
    assert [o.summary["quality"]["accepted"] for o in outcomes] == [1, 1, 1]
    # each day's own peak, measured in its worker: the size of a process that imported Dagster
    assert all(100 < o.peak_rss_mb < 3000 for o in outcomes), [o.peak_rss_mb for o in outcomes]


@pytest.mark.slow
def test_a_worker_whose_day_peaked_above_the_budget_is_replaced_before_the_next_day(env, days, monkeypatch):
    monkeypatch.setattr(runner, "DAYS_PER_WORKER", 7)
    monkeypatch.setattr(runner, "RECYCLE_AFTER_PEAK_MB", 50)  # below any process that imported Dagster
    outcomes = runner.run_days(config.load_settings(), days[:3], lambda *_: None)
    assert [o.success for o in outcomes] == [True, True, True], [o.failures for o in outcomes]
    assert all(o.peak_rss_mb > 50 for o in outcomes)
    pids = [o.pid for o in outcomes]
    assert len(set(pids)) == 3 and os.getpid() not in pids  # every day in a fresh worker
    assert env.query("SELECT count(*) FROM landing.events") == [(3,)]


@pytest.mark.slow
def test_a_worker_killed_during_a_day_fails_that_day_and_the_next_days_still_run(env, days):
    import dagster as dg

    def kill_worker_once_day_two_runs(pid: int) -> None:
        """SIGKILL the worker as soon as the run of days[1] has started (as the OOM killer would)."""
        with dg.DagsterInstance.get() as instance:
            started = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={"dagster/partition": str(days[1])})
            deadline = time.monotonic() + 120
            while not instance.get_run_records(filters=started) and time.monotonic() < deadline:
                time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)

    killer = []

    def progress(i, n, outcome):
        if i == 1:
            killer.append(threading.Thread(target=kill_worker_once_day_two_runs, args=(outcome.pid,)))
            killer[0].start()

    outcomes = runner.run_days(config.load_settings(), days[:3], progress)
    killer[0].join()
    assert [o.success for o in outcomes] == [True, False, True]
    assert outcomes[1].failures == [runner.WORKER_DIED]
    assert outcomes[2].pid not in (outcomes[0].pid, os.getpid())
    with dg.DagsterInstance.get() as instance:  # the killed day's run does not stay STARTED
        (record,) = instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/partition": str(days[1])}))
        assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE
    # the day that failed is run again like any failed night (with the day after it, so that the
    # days run in a worker: an in-process run here would use the Definitions this test process
    # imported first, with another test's warehouse), and ends as if it never failed
    again = runner.run_days(config.load_settings(), days[1:3], lambda *_: None)
    assert [o.success for o in again] == [True, True]
    per_day = env.query("SELECT arrival_date, count(*) FROM landing.events GROUP BY ALL ORDER BY 1")
    ingested = env.query("SELECT arrival_date FROM ops.ingested_days ORDER BY 1")
    assert per_day == [(d, 1) for d in days[:3]], (per_day, ingested, [(o.day, o.success, o.seconds) for o in outcomes])


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="Linux only: /proc/self/statm")
def test_a_days_peak_rss_is_its_own_and_leaves_the_process_high_water_mark_alone():
    """A large day is not reported again for a small one after it, and ru_maxrss (what `time -v`
    and the benchmark read) still holds the large day's peak."""
    import resource

    def touched(mb: int) -> bytearray:
        ballast = bytearray(mb * 2**20)
        ballast[::4096] = b"x" * len(ballast[::4096])
        return ballast

    with day_run.PeakRss() as before:
        pass
    with day_run.PeakRss(interval=0.005) as large_day:
        ballast = touched(300)
        time.sleep(0.05)
        del ballast
    with day_run.PeakRss() as small_day:
        time.sleep(0.05)
    assert large_day.peak_mb - before.peak_mb > 250
    assert small_day.peak_mb < large_day.peak_mb - 250
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 >= large_day.peak_mb - 5
