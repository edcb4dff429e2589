"""The report in a real browser: headless Chromium (Debian's package), driven over the DevTools protocol.

The page is loaded from a file with the network blocked. No request may leave the page, nothing
may fail to load, the console stays clean, the three charts render with a size, and the hostile
values planted in the input (a ``<script>``, an ``<img onerror>``, a ``=HYPERLINK(...)``) come out
as inert text (a hostile file name as its label): no dialog opens, no script or image element
exists, the CSV cell is neutralised.
A full-page screenshot is saved to tests/artifacts/report.png, the headline of a day without
data to tests/artifacts/report_no_data.png and a subject's file to tests/artifacts/subject_file.png
(git-ignored), for a person to look at.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines.safe_text import file_label
from tests import system_deps
from tests.helpers import event

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
FILE_IMG = "<img src=x onerror=alert(2)>"
HYPERLINK = '=HYPERLINK("http://x","y")'

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, url: str):
        from websockets.sync.client import connect

        self.ws = connect(url, max_size=None, open_timeout=30)
        self.next_id = 0
        self.events: list[dict] = []

    def _receive(self, deadline: float) -> dict:
        return json.loads(self.ws.recv(timeout=max(0.05, deadline - time.monotonic())))

    def send(self, method: str, params: dict | None = None, timeout: float = 60) -> dict:
        self.next_id += 1
        message_id = self.next_id
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.events:
                if message["method"] == method:
                    return message
            message = self._receive(deadline)
            if "method" in message:
                self.events.append(message)

    def drain(self, seconds: float) -> None:
        """Collect events that arrive within `seconds` (late console messages, requests)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                message = self._receive(deadline)
            except TimeoutError:
                return
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def named(self, method: str) -> list[dict]:
        return [m["params"] for m in self.events if m["method"] == method]

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium with no network: every host resolves to nothing, background traffic off."""
    binary = system_deps.chromium()
    profile = tmp_path / "chromium-profile"
    process = subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1280,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 90
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start (exit code {process.poll()})")
            time.sleep(0.2)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
            pages = [t for t in json.load(response) if t["type"] == "page"]
        client = DevTools(pages[0]["webSocketDebuggerUrl"])
        try:
            yield client
        finally:
            client.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def plant_hostile_inbox(env) -> None:
    """Two arrival days; the second carries hostile values in properties, a message id and a file name."""
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [
            event("Account Created", "acc_1", "2026-11-02T09:00:00+01:00", properties={"email": "jan@example.cz"}),
            event("Account Created", "acc_2", "2026-11-02T09:10:00+01:00", properties={"email": "eva@example.cz"}),
            event(
                "Marketing Consent Granted",
                "acc_1",
                "2026-11-02T09:20:00+01:00",
                properties={"notice_version": "v3", "source": "web_form"},
            ),
            event(
                "Marketing Consent Granted",
                "acc_2",
                "2026-11-02T09:30:00+01:00",
                properties={"notice_version": "v3", "source": "web_form"},
            ),
        ],
    )
    env.write_events(
        "2026-11-03",
        "part-0000.jsonl",
        [
            event("Account Created", "acc_3", "2026-11-03T08:00:00+01:00", properties={"email": "petr@example.cz"}),
            event(
                "Marketing Consent Granted",
                "acc_3",
                "2026-11-03T08:05:00+01:00",
                properties={"notice_version": SCRIPT, "source": IMG},
            ),
            event(
                "Email Changed",
                "acc_1",
                "2026-11-03T09:00:00+01:00",
                channel="web",
                properties={"email": "jan.novak@example.cz"},
                message_id=HYPERLINK,
            ),
            event("Marketing Consent Withdrawn", "acc_2", "2026-11-03T10:00:00+01:00", properties={"source": "app"}),
            event("Account Deleted", "acc_1", "2026-11-03T11:00:00+01:00"),
        ],
    )
    env.write_events("2026-11-03", f"{FILE_IMG}.jsonl", [event("Signed In", "acc_2", "2026-11-03T12:00:00+01:00")])


def test_report_renders_offline_with_charts_and_inert_hostile_values(env, browser):
    plant_hostile_inbox(env)
    for day in ("2026-11-02", "2026-11-03"):
        env.run(day)  # success or not, the report is published; its content is asserted below
    folder = env.reports / "2026-11-03"
    page = folder / "compliance_report.html"
    assert page.exists()

    cdp = browser
    open_offline(cdp, page)

    # Nothing but the page itself was requested, nothing failed, the console is clean, no dialog.
    requested = [r["request"]["url"] for r in cdp.named("Network.requestWillBeSent")]
    assert requested and all(url == page.as_uri() for url in requested), requested
    assert cdp.named("Network.loadingFailed") == []
    assert [m for m in cdp.named("Runtime.consoleAPICalled") if m["type"] in ("error", "warning", "assert")] == []
    assert cdp.named("Runtime.exceptionThrown") == []
    assert [e["entry"] for e in cdp.named("Log.entryAdded") if e["entry"]["level"] in ("error", "warning")] == []
    assert cdp.named("Page.javascriptDialogOpening") == []

    # The three charts render with a size and with marks in them.
    charts = cdp.evaluate(
        """Array.from(document.querySelectorAll('svg.chart')).map(svg => {
             const box = svg.getBoundingClientRect();
             return {id: svg.id, width: box.width, height: box.height,
                     marks: svg.querySelectorAll('rect, polyline, circle').length};
           })"""
    )
    assert [c["id"] for c in charts] == ["chart-club", "chart-violations", "chart-erasures"]
    assert all(c["width"] > 200 and c["height"] > 150 and c["marks"] > 0 for c in charts), charts

    # Hostile values are text, not markup: no script or image element, no handler ran.
    dom = cdp.evaluate(
        """({scripts: document.scripts.length, images: document.images.length,
             handlers: document.querySelectorAll('[onerror], [onload], [onclick]').length,
             text: document.body.innerText, verdict: document.getElementById('verdict').dataset.status})"""
    )
    assert (dom["scripts"], dom["images"], dom["handlers"]) == (0, 0, 0)
    for value in (SCRIPT, IMG, HYPERLINK):
        assert value in dom["text"], value
    # a file name that is not machine-made is shown by its label, never as it is (pipelines.safe_text)
    assert FILE_IMG not in dom["text"] and file_label(f"{FILE_IMG}.jsonl") in dom["text"]
    assert "example.cz" not in dom["text"]
    assert dom["verdict"] in ("violations_found", "data_quality_failed")
    assert "Violations found" in dom["text"] or "Data quality failed" in dom["text"]

    # The CSV cell is neutralised; no report file holds an e-mail address.
    rows = list(csv.DictReader(io.StringIO((folder / "violations.csv").read_text(encoding="utf-8"))))
    assert "'" + HYPERLINK in {r["message_id"] for r in rows}
    assert HYPERLINK not in {r["message_id"] for r in rows}
    for name in ("compliance_report.html", "summary.json", "violations.csv", "erasure_register.csv"):
        assert b"example.cz" not in (folder / name).read_bytes(), name

    # A full-page screenshot, for a person to look at.
    screenshot(cdp, "report.png")
    assert cdp.named("Page.javascriptDialogOpening") == []


def open_offline(cdp: DevTools, page: Path) -> None:
    """Load the page from its file with every network request blocked."""
    for domain in ("Page", "Network", "Runtime", "Log"):
        cdp.send(f"{domain}.enable")
    cdp.send("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]})
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
    )
    cdp.send(
        "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    )
    cdp.send("Page.navigate", {"url": page.as_uri()})
    cdp.wait_for("Page.loadEventFired")
    cdp.drain(1.0)


def screenshot(cdp: DevTools, name: str, height: int | None = None) -> None:
    """Save a screenshot (the full page unless `height` is given) to tests/artifacts/<name>."""
    height = height or int(cdp.send("Page.getLayoutMetrics")["cssContentSize"]["height"])
    shot = cdp.send(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1},
        },
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
    (ARTIFACTS / name).write_bytes(png)


def test_a_day_without_data_is_red_and_says_so(env, browser):
    """The day after the last delivery: no event arrived. The page must not look like a clean day."""
    plant_hostile_inbox(env)
    for day in ("2026-11-02", "2026-11-03", "2026-11-04"):
        env.run(day)
    page = env.reports / "2026-11-04" / "compliance_report.html"
    open_offline(browser, page)
    dom = browser.evaluate(
        """({verdict: document.getElementById('verdict').dataset.status,
             header: getComputedStyle(document.querySelector('header.status')).backgroundColor,
             text: document.querySelector('header.status').innerText})"""
    )
    assert dom["verdict"] == "no_data"
    assert dom["header"] == "rgb(179, 38, 30)", "the headline is red"
    assert "No data" in dom["text"] and "No event arrived for 2026-11-04" in dom["text"]
    assert "All clear" not in dom["text"]
    screenshot(browser, "report_no_data.png", height=900)


def test_subject_file_renders_offline_with_inert_hostile_values(env, browser):
    """A subject's file (python -m pipelines subject) in the browser: offline, no script, hostile
    consent texts inert; the withdrawal, the send after it and its violation on one page."""
    from pipelines.cli import main

    plant_hostile_inbox(env)
    env.write_events(
        "2026-11-03",
        "part-0001.jsonl",
        [
            event(
                "Marketing Consent Granted",
                "acc_3",
                "2026-11-03T08:30:00+01:00",
                properties={"notice_version": "v4", "source": "app"},
            ),
            event("Marketing Consent Withdrawn", "acc_3", "2026-11-03T10:00:00+01:00", properties={"source": IMG}),
            event(
                "Marketing Message Sent",
                "acc_3",
                "2026-11-03T12:00:00+01:00",
                channel="system",
                properties={"campaign_id": SCRIPT, "medium": "sms"},
                message_id="m-send-after-withdrawal",
            ),
        ],
    )
    for day in ("2026-11-02", "2026-11-03"):
        env.run(day)
    assert main(["subject", "--subject-key", env.subject_key("acc_3")]) == 0
    page = env.reports / "subjects" / f"{env.subject_key('acc_3')[:16]}.html"

    open_offline(browser, page)
    requested = [r["request"]["url"] for r in browser.named("Network.requestWillBeSent")]
    assert requested and all(url == page.as_uri() for url in requested), requested
    assert browser.named("Runtime.exceptionThrown") == [] and browser.named("Page.javascriptDialogOpening") == []
    dom = browser.evaluate(
        """({scripts: document.scripts.length, images: document.images.length,
             handlers: document.querySelectorAll('[onerror], [onload], [onclick]').length,
             text: document.body.innerText, status: document.getElementById('status').dataset.status,
             failed: Array.from(document.querySelectorAll('#marketing tr.failed')).map(r => r.innerText)})"""
    )
    assert (dom["scripts"], dom["images"], dom["handlers"]) == (0, 0, 0)
    assert dom["status"] == "active"
    for value in (SCRIPT, IMG, "m-send-after-withdrawal", "marketing_without_consent"):
        assert value in dom["text"], value
    assert len(dom["failed"]) == 1 and "withdrawn" in dom["failed"][0] and "m-send-after-withdrawal" in dom["failed"][0]
    assert "example.cz" not in dom["text"] and "acc_3" not in dom["text"]
    screenshot(browser, "subject_file.png")
