"""The `_SUCCESS` arrival sensor, the failure / violations alerts and the pluggable notifier."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest

from pipelines import config, notify, sensors
from pipelines.jobs import NIGHTLY_JOB_NAME
from pipelines.partitions import nightly_partitions
from tests.helpers import event

PII = ["jana.novakova@example.cz", "Nováková", "Vinohradská 12", "acc_000042"]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


@dataclass
class Webhook:
    url: str
    status: int
    received: list[dict] = field(default_factory=list)
    #: Statuses to answer first, one per request, before `status`.
    script: list[int] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A tiny HTTP server on 127.0.0.1 that records every POSTed JSON body."""
    hook = Webhook(url="", status=200)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.received.append(json.loads(body))
            hook.headers.append(dict(self.headers))
            self.send_response(hook.script.pop(0) if hook.script else hook.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0KEN-secret"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    inbox, reports = tmp_path / "inbox", tmp_path / "reports"
    inbox.mkdir()
    monkeypatch.setenv("COMPLIANCE_INBOX", str(inbox))
    monkeypatch.setenv("COMPLIANCE_REPORTS", str(reports))
    monkeypatch.delenv(notify.ENV_WEBHOOK_URL, raising=False)
    monkeypatch.delenv(notify.ENV_NOTIFIER, raising=False)
    return inbox, reports


def read_alerts(reports: Path) -> list[dict]:
    path = reports / notify.ALERTS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def marker(inbox: Path, day: date | str, mtime_ns: int | None = None) -> Path:
    folder = inbox / "events" / str(day)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / sensors.MARKER
    path.touch()
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def last_day() -> date:
    return date.fromisoformat(nightly_partitions.get_last_partition_key())


def evaluate(instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = sensors.arrival_folder_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def finished_run(instance: dg.DagsterInstance, day: str | None, *, fail_with: Exception | None = None) -> dg.DagsterRun:
    """A real run of a stand-in job named like the nightly job, finished on `instance`."""

    @dg.op
    def work():
        if fail_with is not None:
            raise fail_with

    @dg.job(name=NIGHTLY_JOB_NAME)
    def stand_in():
        work()

    tags = {sensors.PARTITION_TAG: day} if day else {}
    result = stand_in.execute_in_process(instance=instance, raise_on_error=False, tags=tags)
    return instance.get_run_by_id(result.run_id)


def status_context(instance: dg.DagsterInstance, run: dg.DagsterRun, event_type: dg.DagsterEventType):
    dagster_event = instance.all_logs(run.run_id, of_type=event_type)[0].dagster_event
    return dg.build_run_status_sensor_context(
        sensor_name="test", dagster_event=dagster_event, dagster_instance=instance, dagster_run=run
    )


def write_summary(reports: Path, day: str, violations: dict, **more) -> None:
    folder = reports / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps({"run_date": day, "violations": violations, **more}))


# ---------------------------------------------------------------------------------------------
# the notifier
# ---------------------------------------------------------------------------------------------


def test_alert_payload_redacts_anything_that_is_not_a_plain_identifier():
    alert = notify.build_alert(
        notify.RUN_FAILURE,
        day="2026-11-03",
        run_id="0f8c2d6e-1111-2222-3333-444455556666",
        job=NIGHTLY_JOB_NAME,
        failed_steps=["ingest_arrival_day", "jana.novakova@example.cz", "Jana Nováková"],
        failed_checks=["compliance/violations:rules_evaluated", "Vinohradská 12, Praha"],
        error_classes=["ValueError", "boom: jana.novakova@example.cz"],
    )
    text = json.dumps(alert, ensure_ascii=False)
    for value in ("jana.novakova@example.cz", "Nováková", "Vinohradská", "Praha", "boom"):
        assert value not in text
    assert alert["failed_steps"] == ["[redacted]", "ingest_arrival_day"]
    assert alert["failed_checks"] == ["[redacted]", "compliance/violations:rules_evaluated"]
    assert alert["error_classes"] == ["ValueError", "[redacted]"]
    assert alert["event"] == "run_failure" and alert["severity"] == "error"
    assert alert["day"] == "2026-11-03"
    assert "ingest_arrival_day" in alert["text"] and "0f8c2d6e" in alert["text"]


def test_alert_counts_must_be_integers_and_types_known():
    with pytest.raises(TypeError):
        notify.build_alert(notify.VIOLATIONS_FOUND, day="2026-11-03", run_id="r", job="j", counts={"x": "3"})
    with pytest.raises(TypeError):
        notify.build_alert(notify.VIOLATIONS_FOUND, day="2026-11-03", run_id="r", job="j", counts={"x": True})
    with pytest.raises(ValueError):
        notify.build_alert("something_else", day="2026-11-03", run_id="r", job="j")
    alert = notify.build_alert(notify.VIOLATIONS_FOUND, day="not a day", run_id=None, job="j", counts={"a": 2, "b": 1})
    assert alert["day"] == "[redacted]" and alert["run_id"] is None
    assert alert["counts"] == {"a": 2, "b": 1} and alert["total"] == 3
    assert alert["text"].startswith("[WARNING] j [redacted]: 3 new violation(s) (a=2, b=1)")


def test_file_notifier_appends_one_json_line_per_alert_and_logs(tmp_path, caplog):
    path = tmp_path / "nested" / "alerts.jsonl"
    notifier = notify.FileNotifier(path)
    first = notify.build_alert(notify.VIOLATIONS_FOUND, day="2026-11-03", run_id="r1", job="j", counts={"a": 1})
    second = notify.build_alert(notify.RUN_FAILURE, day="2026-11-04", run_id="r2", job="j", failed_steps=["s"])
    with caplog.at_level(logging.WARNING, logger="pipelines.notify"):
        notifier.send(first)
        notifier.send(second)
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [first, second]
    assert [r.getMessage() for r in caplog.records] == [f"ALERT {first['text']}", f"ALERT {second['text']}"]


def test_webhook_receives_the_alert_as_json(webhook):
    alert = notify.build_alert(notify.VIOLATIONS_FOUND, day="2026-11-03", run_id="r1", job="j", counts={"a": 4})
    notify.WebhookNotifier(webhook.url).send(alert)
    assert webhook.received == [alert]
    assert webhook.headers[0]["Content-Type"] == "application/json"


def fast(url: str, **kw) -> notify.WebhookNotifier:
    """The webhook notifier with the production attempts and short waits (milliseconds)."""
    return notify.WebhookNotifier(url, first_wait=0.01, max_wait=0.02, **kw)


def test_webhook_failures_are_logged_without_the_url_and_never_raised(webhook, caplog):
    alert = notify.build_alert(notify.VIOLATIONS_FOUND, day="2026-11-03", run_id="r1", job="j", counts={"a": 1})
    webhook.status = 500
    closed_port = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    dead_url = f"http://127.0.0.1:{closed_port.server_address[1]}/hooks/T0KEN-secret"
    closed_port.server_close()
    with caplog.at_level(logging.ERROR, logger="pipelines.notify"):
        fast(webhook.url).send(alert)
        fast(dead_url, timeout=2).send(alert)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "after 4 attempt(s) (HTTP 500)" in messages[0]
    assert "after 4 attempt(s) (ConnectionRefusedError)" in messages[1]
    assert not any("T0KEN" in m or "127.0.0.1" in m for m in messages)
    assert len(webhook.received) == notify.WEBHOOK_ATTEMPTS  # every 500 was a delivery attempt


@pytest.mark.parametrize(
    "first_answers", [[503], [500, 429], [502, 503, 504]], ids=["503", "500 then 429", "three 5xx"]
)
def test_webhook_retries_5xx_and_429_then_delivers_once(tmp_path, webhook, caplog, first_answers):
    alert = notify.build_alert(notify.VIOLATIONS_FOUND, day="2026-11-03", run_id="r1", job="j", counts={"a": 1})
    webhook.script = list(first_answers)
    failures = tmp_path / "alerts.jsonl"
    with caplog.at_level(logging.ERROR, logger="pipelines.notify"):
        fast(webhook.url, failures=failures).send(alert)
    assert webhook.received == [alert] * (len(first_answers) + 1)  # the same body each time, then delivered
    assert caplog.records == []
    assert not failures.exists()  # delivered: nothing to record


@pytest.mark.parametrize("status", [400, 401, 404])
def test_webhook_does_not_retry_a_client_error(tmp_path, webhook, status):
    alert = notify.build_alert(notify.VIOLATIONS_FOUND, day="2026-11-03", run_id="r1", job="j", counts={"a": 1})
    webhook.status = status
    fast(webhook.url, failures=tmp_path / "alerts.jsonl").send(alert)
    assert len(webhook.received) == 1
    [line] = read_alerts(tmp_path)
    assert (line["attempts"], line["error_class"]) == (1, f"HTTP {status}")


def test_a_webhook_that_always_fails_is_recorded_in_alerts_jsonl_without_the_url(tmp_path, webhook):
    """The production notifier (default attempts and waits): bounded, then one `delivery: failed` line."""
    import time

    webhook.status = 503
    reports = tmp_path / "reports"
    alert = notify.build_alert(notify.RUN_FAILURE, day="2026-11-03", run_id="run-7", job="nightly_compliance")
    started = time.monotonic()
    notify.default_notifier({"COMPLIANCE_REPORTS": str(reports), notify.ENV_WEBHOOK_URL: webhook.url}).send(alert)
    took = time.monotonic() - started
    assert len(webhook.received) == notify.WEBHOOK_ATTEMPTS == 4
    assert took < notify.WEBHOOK_TOTAL_SECONDS  # waits of 0.5 + 1 + 2 s: a sensor tick is not stuck
    kept, failed = read_alerts(reports)
    assert kept == alert
    assert failed == {
        "schema_version": 1,
        "event": notify.DELIVERY_FAILED,
        "delivery": "failed",
        "channel": "webhook",
        "alert_event": "run_failure",
        "job": "nightly_compliance",
        "day": "2026-11-03",
        "run_id": "run-7",
        "attempts": 4,
        "error_class": "HTTP 503",
        "created_at": failed["created_at"],
    }
    raw = (reports / notify.ALERTS_FILE).read_text()
    assert "T0KEN" not in raw and "127.0.0.1" not in raw and "hooks" not in raw


def test_a_dead_webhook_is_bounded_by_the_time_budget(tmp_path):
    """An address that never answers: each attempt's timeout is cut to what is left of the budget."""
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(0)  # accepts the connection into the backlog, never answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/hooks/T0KEN-secret"
    try:
        started = time.monotonic()
        fast(url, timeout=1.0, total_seconds=1.2, failures=tmp_path / "alerts.jsonl").send(
            notify.build_alert(notify.RUN_FAILURE, day="2026-11-03", run_id="r1", job="j")
        )
        took = time.monotonic() - started
    finally:
        silent.close()
    assert took < 1.7  # a second full 1 s attempt would end after 2 s
    [line] = read_alerts(tmp_path)
    assert line["error_class"] in ("TimeoutError", "timeout") and line["attempts"] == 2


def test_webhook_url_must_be_http():
    with pytest.raises(ValueError):
        notify.WebhookNotifier("file:///etc/passwd")


def test_default_notifier_writes_the_file_and_posts_only_when_the_url_is_set(tmp_path, webhook):
    alert = notify.build_alert(notify.VIOLATIONS_FOUND, day="2026-11-03", run_id="r1", job="j", counts={"a": 1})
    env = {"COMPLIANCE_REPORTS": str(tmp_path / "reports")}
    notify.default_notifier(env).send(alert)
    assert webhook.received == []
    notify.default_notifier({**env, notify.ENV_WEBHOOK_URL: webhook.url}).send(alert)
    assert webhook.received == [alert]
    assert len(read_alerts(tmp_path / "reports")) == 2


def test_a_custom_notifier_is_plugged_in_by_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_REPORTS", str(tmp_path))
    notifier = notify.load_notifier({notify.ENV_NOTIFIER: "pipelines.notify:default_notifier"})
    assert isinstance(notifier, notify.CompositeNotifier)
    assert isinstance(notify.load_notifier({}), notify.CompositeNotifier)
    with pytest.raises(ValueError):
        notify.load_notifier({notify.ENV_NOTIFIER: "pipelines.notify"})
    with pytest.raises(TypeError):  # the factory must return a Notifier
        notify.load_notifier({notify.ENV_NOTIFIER: "pipelines.partitions:today_in_prague"})


# ---------------------------------------------------------------------------------------------
# alerts from runs
# ---------------------------------------------------------------------------------------------


def test_run_failure_alert_names_the_step_and_error_class_but_never_the_message(dirs):
    _, reports = dirs
    instance = dg.DagsterInstance.ephemeral()
    run = finished_run(instance, "2026-11-03", fail_with=ValueError(f"bad row {PII[0]} {PII[1]} {PII[2]} {PII[3]}"))
    assert run.status == dg.DagsterRunStatus.FAILURE
    sensors.run_failure_alert(status_context(instance, run, dg.DagsterEventType.RUN_FAILURE).for_run_failure())
    [alert] = read_alerts(reports)
    assert alert["event"] == "run_failure"
    assert alert["day"] == "2026-11-03" and alert["run_id"] == run.run_id and alert["job"] == NIGHTLY_JOB_NAME
    assert alert["failed_steps"] == ["work"] and alert["error_classes"] == ["ValueError"]
    assert alert["failure_reason"] == "STEP_FAILURE"
    expected = f"run {run.run_id} failed (STEP_FAILURE); steps: work; errors: ValueError."
    assert alert["text"] == f"[ERROR] {NIGHTLY_JOB_NAME} 2026-11-03: {expected}"
    raw = (reports / notify.ALERTS_FILE).read_text()
    for value in [*PII, "bad row"]:
        assert value not in raw


def test_run_failure_alert_names_a_failed_blocking_check(dirs):
    _, reports = dirs
    instance = dg.DagsterInstance.ephemeral()

    @dg.asset(key=["compliance", "violations"])
    def violations():
        return 1

    @dg.asset_check(asset=violations, blocking=True)
    def rules_evaluated():
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, description=PII[0])

    result = dg.materialize(
        [violations, rules_evaluated],
        instance=instance,
        raise_on_error=False,
        tags={sensors.PARTITION_TAG: "2026-11-04"},
    )
    run = instance.get_run_by_id(result.run_id)
    [alert] = sensors.alerts_for_run(instance, run)
    assert alert["failed_checks"] == ["compliance/violations:rules_evaluated"]
    assert alert["failed_steps"] == ["compliance__violations_rules_evaluated"]
    assert alert["error_classes"] == ["DagsterAssetCheckFailedError"]
    assert read_alerts(reports) == [alert]
    assert PII[0] not in json.dumps(alert)


def test_violations_alert_counts_new_violations_by_rule_only(dirs, webhook, monkeypatch):
    _, reports = dirs
    monkeypatch.setenv(notify.ENV_WEBHOOK_URL, webhook.url)
    instance = dg.DagsterInstance.ephemeral()
    run = finished_run(instance, "2026-11-05")
    write_summary(
        reports,
        "2026-11-05",
        {
            "email_change_not_via_care_center": {"total": 7, "new": 2},
            "erasure_overdue": {"total": 1, "new": 1},
            "marketing_without_consent": {"total": 4, "new": 0},
        },
    )
    sensors.day_findings_alert(status_context(instance, run, dg.DagsterEventType.RUN_SUCCESS))
    [alert] = read_alerts(reports)
    assert alert["event"] == "violations_found" and alert["severity"] == "warning"
    assert alert["counts"] == {"email_change_not_via_care_center": 2, "erasure_overdue": 1}
    assert alert["total"] == 3 and alert["day"] == "2026-11-05" and alert["run_id"] == run.run_id
    assert webhook.received == [alert]


@pytest.mark.parametrize(
    "violations",
    [
        {"email_change_not_via_care_center": {"total": 7, "new": 0}},  # old violations only
        None,  # no summary.json for the day
        "not json",  # unreadable summary
    ],
)
def test_no_violations_alert_without_new_violations(dirs, violations):
    _, reports = dirs
    instance = dg.DagsterInstance.ephemeral()
    run = finished_run(instance, "2026-11-06")
    if isinstance(violations, dict):
        write_summary(reports, "2026-11-06", violations)
    elif violations is not None:
        (reports / "2026-11-06").mkdir(parents=True)
        (reports / "2026-11-06" / "summary.json").write_text(violations)
    result = sensors.day_findings_alert(status_context(instance, run, dg.DagsterEventType.RUN_SUCCESS))
    assert isinstance(result, dg.SkipReason)
    assert read_alerts(reports) == []


@pytest.mark.parametrize(
    ("freshness", "received", "expected"),
    [
        ({"status": "no_data", "usual_received": 700, "stale_exports": 0}, 0, ("no_data", "error")),
        ({"status": "incomplete", "usual_received": 700, "stale_exports": 0}, 120, ("data_incomplete", "warning")),
        ({"status": "ok", "usual_received": 700, "stale_exports": 2}, 690, ("data_incomplete", "warning")),
        ({"status": "ok", "usual_received": 700, "stale_exports": 0}, 690, None),
        ({"status": "not_judged", "usual_received": None, "stale_exports": 0}, 5, None),
    ],
)
def test_a_day_without_or_with_too_little_input_is_alerted(dirs, freshness, received, expected):
    """An outage never passes silently: the day's summary says it, and so does an alert (counts only)."""
    _, reports = dirs
    instance = dg.DagsterInstance.ephemeral()
    run = finished_run(instance, "2026-11-07")
    write_summary(reports, "2026-11-07", {}, freshness=freshness, quality={"received": received})
    alerts = sensors.alerts_for_run(instance, run)
    assert read_alerts(reports) == alerts
    if expected is None:
        assert alerts == []
        return
    [alert] = alerts
    assert (alert["event"], alert["severity"]) == expected
    assert alert["counts"] == {
        "events_received": received,
        "events_usual": freshness["usual_received"] or 0,
        "stale_exports": freshness["stale_exports"],
    }


def test_alerts_for_run_ignore_a_successful_run_without_partition(dirs):
    _, reports = dirs
    instance = dg.DagsterInstance.ephemeral()
    run = finished_run(instance, None)
    assert sensors.alerts_for_run(instance, run) == []
    assert read_alerts(reports) == []


def test_the_sensors_are_in_the_definitions_and_on_as_configured():
    from pipelines.definitions import defs

    # on or off by COMPLIANCE_AUTOMATION (tests/pipelines/test_automation.py)
    expected = dg.DefaultSensorStatus.RUNNING if config.automation_enabled() else dg.DefaultSensorStatus.STOPPED
    for name in ("arrival_folder_sensor", "run_failure_alert", "day_findings_alert"):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == expected
    assert defs.resolve_sensor_def("arrival_folder_sensor").job_name == NIGHTLY_JOB_NAME
    assert defs.resolve_sensor_def("arrival_folder_sensor").minimum_interval_seconds == 60


# ---------------------------------------------------------------------------------------------
# the _SUCCESS arrival sensor
# ---------------------------------------------------------------------------------------------


def test_no_marker_no_run(dirs):
    inbox, _ = dirs
    (inbox / "events" / str(last_day())).mkdir(parents=True)  # a folder still being written
    result = evaluate(dg.DagsterInstance.ephemeral())
    assert not result.run_requests
    assert "no new _SUCCESS marker" in result.skip_reason.skip_message


def test_a_marker_requests_the_day_once(dirs):
    inbox, _ = dirs
    day = last_day()
    marker(inbox, day, mtime_ns=1_700_000_000_000_000_000)
    instance = dg.DagsterInstance.ephemeral()
    first = evaluate(instance)
    [request] = first.run_requests
    assert request.partition_key == day.isoformat()
    assert request.run_key == f"{day}:1700000000000000000"
    assert request.tags["trigger"] == "arrival_sensor"
    again = evaluate(instance, first.cursor)
    assert not again.run_requests


def test_a_rewritten_marker_requests_the_day_again(dirs):
    inbox, _ = dirs
    day = last_day() - timedelta(days=2)
    path = marker(inbox, day, mtime_ns=1_700_000_000_000_000_000)
    instance = dg.DagsterInstance.ephemeral()
    first = evaluate(instance)
    os.utime(path, ns=(1_700_000_100_000_000_000, 1_700_000_100_000_000_000))
    second = evaluate(instance, first.cursor)
    [request] = second.run_requests
    assert request.run_key == f"{day}:1700000100000000000"


def test_days_are_requested_in_order_and_incomplete_days_wait(dirs):
    inbox, _ = dirs
    last = last_day()
    for day in (last, last - timedelta(days=3), last - timedelta(days=1), last + timedelta(days=1)):
        marker(inbox, day, mtime_ns=1_700_000_000_000_000_000)
    (inbox / "events" / "not-a-day").mkdir()
    (inbox / "events" / "not-a-day" / sensors.MARKER).touch()
    (inbox / "events" / last.strftime("%Y%m%d")).mkdir()  # parses as a date, but not the contract's name
    (inbox / "events" / last.strftime("%Y%m%d") / sensors.MARKER).touch()
    tomorrow = (last + timedelta(days=1)).isoformat()
    result = evaluate(dg.DagsterInstance.ephemeral())
    assert [r.partition_key for r in result.run_requests] == [
        (last - timedelta(days=3)).isoformat(),
        (last - timedelta(days=1)).isoformat(),
        last.isoformat(),
    ]
    assert tomorrow not in json.loads(result.cursor)
    # After midnight the waiting day becomes a partition; until then it is reported as waiting.
    later = evaluate(dg.DagsterInstance.ephemeral(), result.cursor)
    assert not later.run_requests and tomorrow in later.skip_reason.skip_message


def test_a_day_already_run_after_its_marker_is_not_requested(dirs):
    inbox, _ = dirs
    day = last_day() - timedelta(days=1)
    instance = dg.DagsterInstance.ephemeral()
    an_hour_ago = int((time.time() - 3600) * 1e9)
    marker(inbox, day, mtime_ns=an_hour_ago)
    finished_run(instance, day.isoformat())  # e.g. the 02:00 schedule, or a lost cursor
    assert not evaluate(instance).run_requests
    # ...but a marker written after that run (a late file was delivered) is new work.
    marker(inbox, day, mtime_ns=int((time.time() + 3600) * 1e9))
    [request] = evaluate(instance).run_requests
    assert request.partition_key == day.isoformat()


def test_a_failed_run_does_not_cover_the_marker(dirs):
    inbox, _ = dirs
    day = last_day() - timedelta(days=1)
    instance = dg.DagsterInstance.ephemeral()
    marker(inbox, day, mtime_ns=int((time.time() - 3600) * 1e9))
    finished_run(instance, day.isoformat(), fail_with=RuntimeError("x"))
    assert [r.partition_key for r in evaluate(instance).run_requests] == [day.isoformat()]


def test_the_cursor_forgets_folders_removed_by_retention(dirs):
    inbox, _ = dirs
    old, new = last_day() - timedelta(days=30), last_day() - timedelta(days=1)
    old_marker = marker(inbox, old, mtime_ns=1_700_000_000_000_000_000)
    marker(inbox, new, mtime_ns=1_700_000_000_000_000_000)
    instance = dg.DagsterInstance.ephemeral()
    first = evaluate(instance)
    assert set(json.loads(first.cursor)) == {old.isoformat(), new.isoformat()}
    old_marker.unlink()
    old_marker.parent.rmdir()
    second = evaluate(instance, first.cursor)
    assert set(json.loads(second.cursor)) == {new.isoformat()} and not second.run_requests


def test_a_corrupt_cursor_is_treated_as_empty(dirs):
    inbox, _ = dirs
    marker(inbox, last_day(), mtime_ns=1_700_000_000_000_000_000)
    for cursor in ("{not json", "[1, 2]", json.dumps({"2026-01-01": "x"})):
        assert len(evaluate(dg.DagsterInstance.ephemeral(), cursor).run_requests) == 1


def test_the_marker_is_not_read_as_an_event_file(env):
    """The ingestion reads *.jsonl / *.jsonl.gz only: a `_SUCCESS` marker adds no row and no rejection."""
    day = "2026-11-03"
    env.write_events(day, "part-0000.jsonl", [event("Signed In", "acc_1", "2026-11-03T09:15:00+01:00")])
    (env.inbox / "events" / day / sensors.MARKER).write_text("")
    ingestion = dg.AssetSelection.assets(["landing", "events"]).required_multi_asset_neighbors()
    assert env.run(day, selection=ingestion).success
    assert env.query("SELECT count(*) FROM landing.events") == [(1,)]
    assert env.query("SELECT count(*) FROM landing.rejected") == [(0,)]
    assert env.query("SELECT source_file FROM landing.files") == [("part-0000.jsonl",)]


@pytest.mark.slow
def test_retention_deletes_a_folder_that_holds_a_marker(env):
    """`_SUCCESS` is not an event file: it neither blocks nor survives the raw retention of its folder."""
    env.retention_days = 1
    env.write_events("2026-11-03", "part-0000.jsonl", [event("Signed In", "acc_1", "2026-11-03T09:15:00+01:00")])
    (env.inbox / "events" / "2026-11-03" / sensors.MARKER).write_text("")
    assert env.run("2026-11-03").success
    assert (env.inbox / "events" / "2026-11-03" / sensors.MARKER).exists()
    assert env.run("2026-11-04").success
    assert not (env.inbox / "events" / "2026-11-03").exists()
