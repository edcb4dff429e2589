"""Alerts: a pluggable notifier with a file/log default and an optional webhook.

An alert is a small dict built by `build_alert`: the event type, the day, the run id, the job, counts
by rule, the names of failing steps and checks, and the report files to act on (`files`: for an
overdue erasure, the remediation lists that name an overdue subject, e.g. `remediation/crm.csv`,
relative to `<reports>/<day>/`). It never holds personal data: every free-text value goes through
`safe_name` (pipelines.safe_text: it refuses anything that is not a plain identifier, so no e-mail
address, name or postal address can pass), every file through `safe_path` (each part a plain file
name or a keyed system file name, else `[redacted]`), counts must be integers, and exception
messages are never included (only an exception's class name).

Delivery (`default_notifier`):

* always: one JSON line appended to `<reports>/alerts.jsonl` and one WARNING log line;
* if `COMPLIANCE_ALERT_WEBHOOK_URL` is set: an HTTP POST of the same JSON, retried with exponential
  backoff (tenacity) on network errors and HTTP 5xx/429 only, at most WEBHOOK_ATTEMPTS attempts within
  WEBHOOK_TOTAL_SECONDS, so a sensor tick is never stuck. A delivery that still fails is logged (class
  name only; the URL may embed a token and is never logged or written), recorded as one
  `"event": "delivery_failed"` line in `alerts.jsonl`, and not raised.

Plugging in another channel: subclass `Notifier`, and either pass it to the sensors' helpers or point
`COMPLIANCE_NOTIFIER` at a zero-argument factory, `package.module:function`, that returns a Notifier.
"""

from __future__ import annotations

import http.client
import importlib
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import tenacity

from pipelines import config
from pipelines.safe_text import REDACTED, safe_name, safe_path

log = logging.getLogger(__name__)

ENV_WEBHOOK_URL = config.ENV_ALERT_WEBHOOK_URL
ENV_NOTIFIER = config.ENV_NOTIFIER
ALERTS_FILE = "alerts.jsonl"
#: One attempt's timeout; attempts, the first wait (doubling, at most WEBHOOK_MAX_WAIT_SECONDS) and
#: the time budget of a delivery, all attempts and waits included: far below a sensor tick's 60 s.
WEBHOOK_TIMEOUT_SECONDS = 5.0
WEBHOOK_ATTEMPTS = 4
WEBHOOK_FIRST_WAIT_SECONDS = 0.5
WEBHOOK_MAX_WAIT_SECONDS = 2.0
WEBHOOK_TOTAL_SECONDS = 15.0
#: The line `alerts.jsonl` gets when a webhook delivery failed after its attempts.
DELIVERY_FAILED = "delivery_failed"
SCHEMA_VERSION = 1

#: Alert types. `run_failure`: a nightly run failed; `violations_found`: a successful run found new
#: violations for its day; `no_data`: not one event arrived for the run's day (an outage);
#: `data_incomplete`: the day had under half its usual events, or a stale export
#: (assets/landing/freshness.py).
RUN_FAILURE = "run_failure"
VIOLATIONS_FOUND = "violations_found"
NO_DATA = "no_data"
DATA_INCOMPLETE = "data_incomplete"
EVENT_TYPES = (RUN_FAILURE, VIOLATIONS_FOUND, NO_DATA, DATA_INCOMPLETE)
SEVERITY = {RUN_FAILURE: "error", VIOLATIONS_FOUND: "warning", NO_DATA: "error", DATA_INCOMPLETE: "warning"}

MAX_NAMES = 50


def _names(values: Iterable[Any]) -> list[str]:
    out = sorted({safe_name(v) for v in values})
    return out[:MAX_NAMES]


def _day(value: date | str | None) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        return REDACTED


def build_alert(
    event_type: str,
    *,
    day: date | str | None,
    run_id: str | None,
    job: str,
    counts: Mapping[str, int] | None = None,
    failed_steps: Iterable[str] = (),
    failed_checks: Iterable[str] = (),
    error_classes: Iterable[str] = (),
    failure_reason: str | None = None,
    files: Iterable[str] = (),
) -> dict[str, Any]:
    """A PII-free alert payload. Unknown text becomes `[redacted]`; counts must be whole numbers;
    `files` are report files relative to the day's folder (`remediation/crm.csv`)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown alert type {event_type!r}")
    clean_counts: dict[str, int] = {}
    for rule, n in sorted((counts or {}).items()):
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError("alert counts must be integers")
        clean_counts[safe_name(rule)] = n
    alert: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event": event_type,
        "severity": SEVERITY[event_type],
        "job": safe_name(job),
        "day": _day(day),
        "run_id": safe_name(run_id) if run_id else None,
        "counts": clean_counts,
        "total": sum(clean_counts.values()),
        "failed_steps": _names(failed_steps),
        "failed_checks": _names(failed_checks),
        "error_classes": _names(error_classes),
        "failure_reason": safe_name(failure_reason) if failure_reason else None,
        "files": sorted({safe_path(f) for f in files})[:MAX_NAMES],
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    alert["text"] = alert_text(alert)
    return alert


def alert_text(alert: Mapping[str, Any]) -> str:
    """One human line (chat webhooks show it), built only from the already-sanitised fields."""
    head = f"[{alert['severity'].upper()}] {alert['job']} {alert['day'] or '?'}"
    if alert["event"] == VIOLATIONS_FOUND:
        rules = ", ".join(f"{rule}={n}" for rule, n in alert["counts"].items() if n)
        text = f"{head}: {alert['total']} new violation(s) ({rules}). Run {alert['run_id']}."
        if alert.get("files"):
            text += f" Remediation lists with an overdue erasure: {', '.join(alert['files'])}."
        return text
    if alert["event"] in (NO_DATA, DATA_INCOMPLETE):
        c = alert["counts"]
        what = "no data" if alert["event"] == NO_DATA else "incomplete input"
        return (
            f"{head}: {what}: {c.get('events_received', 0)} event(s) where {c.get('events_usual', 0)} "
            f"is usual (0: not known yet); {c.get('stale_exports', 0)} stale export(s). Run {alert['run_id']}."
        )
    reason = f" ({alert['failure_reason']})" if alert.get("failure_reason") else ""
    parts = [f"{head}: run {alert['run_id']} failed{reason}"]
    if alert["failed_steps"]:
        parts.append("steps: " + ", ".join(alert["failed_steps"]))
    if alert["failed_checks"]:
        parts.append("checks: " + ", ".join(alert["failed_checks"]))
    if alert["error_classes"]:
        parts.append("errors: " + ", ".join(alert["error_classes"]))
    return "; ".join(parts) + "."


class Notifier:
    """Deliver an alert somewhere. Implementations must not raise on delivery problems."""

    def send(self, alert: dict[str, Any]) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class FileNotifier(Notifier):
    """Append each alert as one JSON line to a file, and log it at WARNING level."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def send(self, alert: dict[str, Any]) -> None:
        log.warning("ALERT %s", alert.get("text", alert.get("event")))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(alert, sort_keys=True, ensure_ascii=True) + "\n")
        except OSError as exc:
            log.error("could not write alert file %s: %s", self.path, type(exc).__name__)


def _retryable(exc: BaseException) -> bool:
    """Network errors, timeouts and HTTP 5xx/429 are worth another attempt; other HTTP answers are not."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code == 429
    return isinstance(exc, OSError | http.client.HTTPException)  # URLError, timeouts, refused, reset


def _error_class(exc: BaseException) -> str:
    """What failed, without the URL: `HTTP 503`, or the class of the underlying network error."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        return type(exc.reason).__name__
    return type(exc).__name__


class WebhookNotifier(Notifier):
    """POST the alert as JSON, retrying with exponential backoff on network errors and HTTP 5xx/429.

    A delivery that fails is logged by its error class only and, when `failures` is given, recorded
    there as one JSON line (the alert's event, day and run id, `delivery: failed`, the attempts and
    the error class). The URL is never logged or recorded: it may embed a token."""

    def __init__(
        self,
        url: str,
        timeout: float = WEBHOOK_TIMEOUT_SECONDS,
        *,
        failures: Path | str | None = None,
        attempts: int = WEBHOOK_ATTEMPTS,
        first_wait: float = WEBHOOK_FIRST_WAIT_SECONDS,
        max_wait: float = WEBHOOK_MAX_WAIT_SECONDS,
        total_seconds: float = WEBHOOK_TOTAL_SECONDS,
    ) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"{ENV_WEBHOOK_URL} must be an http(s) URL")
        self.url = url
        self.timeout = timeout
        self.failures = Path(failures) if failures is not None else None
        self.attempts = attempts
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.total_seconds = total_seconds

    def _post(self, body: bytes, deadline: float) -> None:
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "consent-compliance-alerts/1"},
        )
        timeout = max(0.1, min(self.timeout, deadline - time.monotonic()))  # the last attempt fits the budget
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
            response.read()

    def send(self, alert: dict[str, Any]) -> None:
        body = json.dumps(alert, sort_keys=True, ensure_ascii=True).encode()
        deadline = time.monotonic() + self.total_seconds
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts) | tenacity.stop_before_delay(self.total_seconds),
            wait=tenacity.wait_exponential(multiplier=self.first_wait, max=self.max_wait),
            retry=tenacity.retry_if_exception(_retryable),
            reraise=True,
        )
        try:
            retrying(self._post, body, deadline)
        except Exception as exc:  # the last attempt's error, or one not worth retrying: never break the sensor
            attempts = retrying.statistics.get("attempt_number", 1)
            error = _error_class(exc)
            log.error(
                "alert webhook delivery failed after %d attempt(s) (%s); alert kept in the alert file", attempts, error
            )
            self._record_failure(alert, attempts, error)

    def _record_failure(self, alert: Mapping[str, Any], attempts: int, error: str) -> None:
        if self.failures is None:
            return
        line = {
            "schema_version": SCHEMA_VERSION,
            "event": DELIVERY_FAILED,
            "delivery": "failed",
            "channel": "webhook",
            "alert_event": alert.get("event"),
            "job": alert.get("job"),
            "day": alert.get("day"),
            "run_id": alert.get("run_id"),
            "attempts": attempts,
            "error_class": error,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:
            self.failures.parent.mkdir(parents=True, exist_ok=True)
            with self.failures.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line, sort_keys=True, ensure_ascii=True) + "\n")
        except OSError as exc:
            log.error("could not write alert file %s: %s", self.failures, type(exc).__name__)


class CompositeNotifier(Notifier):
    """Send to every notifier in turn; one failing does not stop the others."""

    def __init__(self, notifiers: Iterable[Notifier]) -> None:
        self.notifiers = list(notifiers)

    def send(self, alert: dict[str, Any]) -> None:
        for notifier in self.notifiers:
            try:
                notifier.send(alert)
            except Exception as exc:
                log.error("notifier %s failed: %s", type(notifier).__name__, type(exc).__name__)


def alerts_path(env: Mapping[str, str] = os.environ) -> Path:
    return Path(config.setting(config.ENV_REPORTS, env)) / ALERTS_FILE


def default_notifier(env: Mapping[str, str] = os.environ) -> Notifier:
    """The file/log notifier, plus the webhook when `COMPLIANCE_ALERT_WEBHOOK_URL` is set."""
    path = alerts_path(env)
    notifiers: list[Notifier] = [FileNotifier(path)]
    url = env.get(ENV_WEBHOOK_URL, "").strip()
    if url:
        notifiers.append(WebhookNotifier(url, failures=path))
    return CompositeNotifier(notifiers)


def load_notifier(env: Mapping[str, str] = os.environ) -> Notifier:
    """`COMPLIANCE_NOTIFIER=package.module:factory` if set, else `default_notifier`."""
    spec = env.get(ENV_NOTIFIER, "").strip()
    if not spec:
        return default_notifier(env)
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{ENV_NOTIFIER} must look like package.module:factory")
    notifier = getattr(importlib.import_module(module_name), attr)()
    if not isinstance(notifier, Notifier):
        raise TypeError(f"{ENV_NOTIFIER} factory must return a pipelines.notify.Notifier")
    return notifier
