"""`make ui` on a fresh clone (issue 25 items 2, 3, 7): no DAGSTER_HOME folder yet, and the UI comes
up with the code location `consent_compliance` and the schedule and sensors switched off.

Runs the Makefile's `ui` recipe with this test's virtual environment (`VENV`, its install step
marked done with `-o`) and a DAGSTER_HOME path that does not exist, on a free 127.0.0.1 port, waits
for the code location over GraphQL, then stops the process group it started.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import stop_process_group

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent

pytestmark = pytest.mark.slow

QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message }
      ... on RepositoryLocation { repositories {
        schedules { name scheduleState { status } } sensors { name sensorState { status } } } } } } } } }
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(url: str) -> dict | None:
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": QUERY}).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["data"]["workspaceOrError"]
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError, KeyError):
        return None


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_ui_starts_on_a_fresh_dagster_home(tmp_path):
    home = tmp_path / "fresh" / "dagster_home"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPLIANCE_", "DAGSTER_"))}
    env.update(COMPLIANCE_INBOX=str(tmp_path / "inbox"), COMPLIANCE_REPORTS=str(tmp_path / "reports"))
    cmd = ["make", "--no-print-directory", "ui", f"VENV={VENV}", "-o", f"{VENV}/.installed"]
    cmd += [f"DAGSTER_HOME={home}", f"UI_ARGS=-h 127.0.0.1 -p {port}"]
    log = tmp_path / "make_ui.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, entry = time.monotonic() + 180, None
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"make ui exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            data = _graphql(f"http://127.0.0.1:{port}")
            if data and data.get("locationEntries") and data["locationEntries"][0]["loadStatus"] == "LOADED":
                [entry] = data["locationEntries"]
                break
            time.sleep(1)
        assert entry, f"the UI did not load the code location:\n{log.read_text()[-3000:]}"
    finally:
        stop_process_group(proc)
    text = log.read_text()
    assert "Traceback" not in text and "is not a directory" not in text, text[-3000:]
    assert (home / "dagster.yaml").read_text() == (REPO / "pipelines" / "dagster.yaml").read_text()
    assert entry["name"] == "consent_compliance"
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    [repo] = location["repositories"]
    # A laptop starts no nightly automation (COMPLIANCE_AUTOMATION unset, not production).
    assert repo["schedules"] and {s["scheduleState"]["status"] for s in repo["schedules"]} == {"STOPPED"}
    assert repo["sensors"] and {s["sensorState"]["status"] for s in repo["sensors"]} == {"STOPPED"}
