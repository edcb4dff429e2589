"""End to end through the Dagster UI: webserver + daemon, GraphQL, one partition's run, a screenshot.

Starts `dagster-webserver -w workspace.yaml` and `dagster-daemon run -w workspace.yaml` on a free
127.0.0.1 port over a small generated inbox, asserts over GraphQL that every asset, check, schedule
and sensor of `pipelines.definitions.defs` is served, launches the nightly job for one partition
through the run queue and waits for it to succeed, then takes a headless Chromium screenshot of the
global asset lineage (all groups expanded) into tests/artifacts/ui_asset_graph.png.
"""

from __future__ import annotations

import html
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests import system_deps
from tests.helpers import stop_process_group

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
SCREENSHOT = ARTIFACTS / "ui_asset_graph.png"
BIN = Path(sys.executable).parent
LOCATION = "consent_compliance"  # workspace.yaml's location_name (tests/pipelines/test_code_location.py)
REPOSITORY = "__repository__"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


@dataclass
class UI:
    url: str
    root: Path
    reports: Path
    day: str
    logs: list[Path]

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
        assert "errors" not in payload, payload["errors"]
        return payload["data"]

    def logs_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{_tail(p)}" for p in self.logs)


def _start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    fh = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def _instance_yaml() -> str:
    """The laptop instance (pipelines/dagster.yaml: run queue and pool limits), without the welcome dialog."""
    text = (ROOT / "pipelines" / "dagster.yaml").read_text()
    if not re.search(r"^nux:", text, re.M):
        text += "\nnux:\n  enabled: false\n"
    return text


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> Iterator[UI]:
    from pipelines.partitions import nightly_partitions

    root = tmp_path_factory.mktemp("ui")
    home, inbox, reports = root / "dagster_home", root / "inbox", root / "reports"
    home.mkdir()
    (home / "dagster.yaml").write_text(_instance_yaml())
    last = nightly_partitions.get_last_partition_key()
    first_day = (date.fromisoformat(last) - timedelta(days=3)).isoformat()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPLIANCE_", "DAGSTER_PG_"))}
    env.update(
        DAGSTER_HOME=str(home),
        COMPLIANCE_INBOX=str(inbox),
        COMPLIANCE_WAREHOUSE=str(root / "warehouse.duckdb"),
        COMPLIANCE_REPORTS=str(reports),
        COMPLIANCE_HASH_KEY="ui-test-key",
        PYTHONPATH=str(ROOT),
    )
    subprocess.run(
        [sys.executable, "-m", "pipelines", "generate", "--out", str(inbox), "--accounts", "200", "--days", "2"]
        + ["--start", first_day, "--seed", "5", "--quiet"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    # Create the instance's SQLite storage once, before two processes race to create it (the race
    # leaves two alembic heads and the code location fails to load).
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)):
        pass
    port = _free_port()
    web_log, daemon_log = root / "webserver.log", root / "daemon.log"
    web = _start(
        [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)], env, web_log
    )
    daemon = None
    handle = UI(f"http://127.0.0.1:{port}", root, reports, first_day, [web_log, daemon_log])
    try:
        deadline = time.monotonic() + 180
        while True:
            if web.poll() is not None:
                pytest.fail(f"dagster-webserver exited with {web.returncode}\n{handle.logs_tail()}")
            try:
                with urllib.request.urlopen(f"{handle.url}/server_info", timeout=5) as r:
                    if json.loads(r.read()).get("dagster_webserver_version"):
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dagster-webserver did not answer /server_info\n{handle.logs_tail()}")
            time.sleep(1)
        daemon = _start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, daemon_log)
        yield handle
    finally:
        if daemon is not None:
            stop_process_group(daemon)
        stop_process_group(web)


WORKSPACE = """
{ workspaceOrError { __typename
    ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename
        ... on PythonError { message }
        ... on RepositoryLocation { name repositories { name
            jobs { name }
            schedules { name scheduleState { status } }
            sensors { name sensorState { status } } } } } } }
    ... on PythonError { message } } }
"""

ASSETS = """
{ assetNodes { assetKey { path } groupName
    assetChecksOrError { __typename ... on AssetChecks { checks { name } } } } }
"""

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) { __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message } } }
"""

RUN = """
query Run($runId: ID!) { runOrError(runId: $runId) { __typename
    ... on Run { status tags { key value } stepStats { stepKey status } } } }
"""


def _repository(ui: UI) -> dict:
    deadline = time.monotonic() + 120
    while True:
        data = ui.graphql(WORKSPACE)["workspaceOrError"]
        assert data["__typename"] == "Workspace", data
        [entry] = data["locationEntries"]
        location = entry["locationOrLoadError"]
        if entry["loadStatus"] == "LOADED" and location:
            assert location["__typename"] == "RepositoryLocation", location.get("message")
            assert location["name"] == LOCATION
            [repo] = location["repositories"]
            assert repo["name"] == REPOSITORY
            return repo
        assert time.monotonic() < deadline, f"code location not loaded: {entry}\n{ui.logs_tail()}"
        time.sleep(1)


def test_webserver_serves_every_asset_check_schedule_and_sensor(ui):
    from pipelines.definitions import defs
    from pipelines.jobs import NIGHTLY_JOB_NAME

    repo_def = defs.get_repository_def()
    graph = repo_def.asset_graph
    expected_assets = {tuple(k.path) for k in graph.get_all_asset_keys()}
    expected_checks = {(tuple(k.asset_key.path), k.name) for k in graph.asset_check_keys}
    expected_schedules = {s.name for s in repo_def.schedule_defs}
    expected_sensors = {s.name for s in repo_def.sensor_defs}
    assert expected_assets and expected_checks and expected_schedules and expected_sensors

    repo = _repository(ui)
    assert NIGHTLY_JOB_NAME in {j["name"] for j in repo["jobs"]}
    assert {s["name"] for s in repo["schedules"]} == expected_schedules
    assert {s["name"] for s in repo["sensors"]} == expected_sensors
    # Off outside production (COMPLIANCE_AUTOMATION unset): the UI on a laptop starts no nightly runs.
    assert {s["scheduleState"]["status"] for s in repo["schedules"]} == {"STOPPED"}
    assert {s["sensorState"]["status"] for s in repo["sensors"]} == {"STOPPED"}

    nodes = ui.graphql(ASSETS)["assetNodes"]
    served_assets = {tuple(n["assetKey"]["path"]) for n in nodes}
    served_checks = {
        (tuple(n["assetKey"]["path"]), c["name"])
        for n in nodes
        if n["assetChecksOrError"]["__typename"] == "AssetChecks"
        for c in n["assetChecksOrError"]["checks"]
    }
    assert served_assets == expected_assets
    assert served_checks == expected_checks
    groups = {tuple(n["assetKey"]["path"]): n["groupName"] for n in nodes}
    assert groups == {tuple(k.path): graph.get(k).group_name for k in graph.get_all_asset_keys()}


def test_a_partition_run_launched_over_graphql_succeeds(ui):
    from pipelines.jobs import NIGHTLY_JOB_NAME

    _repository(ui)
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": NIGHTLY_JOB_NAME},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": ui.day}]},
    }
    launched = ui.graphql(LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    deadline = time.monotonic() + 420
    while True:
        run = ui.graphql(RUN, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        if run["status"] in TERMINAL:
            break
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']}\n{ui.logs_tail()}"
        time.sleep(2)
    failed = [s["stepKey"] for s in run["stepStats"] if s["status"] == "FAILURE"]
    assert run["status"] == "SUCCESS", f"run {run_id} ended {run['status']}; failed steps: {failed}"
    assert {"key": "dagster/partition", "value": ui.day} in run["tags"]
    assert run["stepStats"] and not failed
    summary = json.loads((ui.reports / ui.day / "summary.json").read_text())
    assert summary["run_date"] == ui.day


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])


def _shown(name: str, texts: set[str]) -> bool:
    """The graph shows a long name shortened with an ellipsis, e.g. `wareho…_compaction`."""
    if name in texts:
        return True
    for text in texts:
        left, sep, right = text.partition("…")
        if sep and len(left) + len(right) >= 6 and name.startswith(left) and name.endswith(right):
            return True
    return False


@pytest.mark.browser
def test_screenshot_of_the_asset_graph(ui):
    from pipelines.definitions import defs

    chromium = system_deps.chromium()
    graph = defs.get_repository_def().asset_graph
    keys = list(graph.get_all_asset_keys())
    group_names = sorted({graph.get(k).group_name for k in keys})
    # Expand every group (the lineage page collapses them by default).
    expanded = ",".join(f"global@global:{g}" for g in group_names)
    url = f"{ui.url}/asset-groups?expanded={urllib.parse.quote(expanded, safe='')}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if SCREENSHOT.exists():
        SCREENSHOT.unlink()
    cmd = [chromium, "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]
    if os.geteuid() == 0:
        cmd.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
    cmd += ["--window-size=1800,1800", "--virtual-time-budget=30000", f"--screenshot={SCREENSHOT}", "--dump-dom", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert SCREENSHOT.exists(), f"no screenshot: {proc.stderr[-2000:]}"
    assert _png_size(SCREENSHOT) == (1800, 1800)
    assert SCREENSHOT.stat().st_size > 50_000  # an empty or error page compresses to a few kB
    texts = {html.unescape(t).strip() for t in re.findall(r">([^<>]+)<", proc.stdout)}
    assert "Global asset lineage" in texts
    missing_groups = [g for g in group_names if g not in texts]
    missing_assets = [k.to_user_string() for k in keys if not _shown(k.path[-1], texts)]
    assert not missing_groups and not missing_assets, (missing_groups, missing_assets)
