"""Secrets: the development key warns loudly, production refuses to run without a key, and the key
never reaches a log, Dagster metadata, a report or the warehouse file.

The CLI's own behaviour (the warning on stderr, exit 2 in production without a key) is tested in
tests/pipelines/test_cli.py and tests/pipelines/test_config.py; here: the Dagster path (UI, schedule, sensor runs load
the Definitions and log through the instance) and an end-to-end search for the key.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipelines.config import DEV_HASH_KEY
from pipelines.resources import Warehouse
from tests.helpers import contents

REPO = Path(__file__).resolve().parents[2]
#: Distinctive, so that any occurrence anywhere is this key.
SECRET = "Zq7-secret-hash-key-4f1c9e2b-never-logged"
DAY = "2026-10-01"


def key_forms(key: str) -> dict[str, bytes]:
    """The key as it could be written: plain, base64, hex, and the HMAC pads the SQL macros embed
    (key XOR ipad / opad as the \\xNN literal of the TEMP macros, and as raw bytes)."""
    raw = key.encode()
    if len(raw) > 64:
        raw = hashlib.sha256(raw).digest()
    raw = raw.ljust(64, b"\0")
    forms = {"plain": key.encode(), "base64": base64.b64encode(key.encode()), "hex": key.encode().hex().encode()}
    for name, pad in (("ipad", 0x36), ("opad", 0x5C)):
        padded = bytes(b ^ pad for b in raw)
        forms[name] = padded
        forms[f"{name} literal"] = "".join(f"\\x{b:02X}" for b in padded).encode()
    return forms


def _env(tmp_path: Path, **extra: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPLIANCE_", "DAGSTER_"))}
    env.update(
        COMPLIANCE_INBOX=str(tmp_path / "inbox"),
        COMPLIANCE_WAREHOUSE=str(tmp_path / "warehouse.duckdb"),
        COMPLIANCE_REPORTS=str(tmp_path / "reports"),
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        PYTHONPATH=str(REPO),
    )
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


# ---------------------------------------------------------------------------------------------
# The development key warns in every Dagster run; production refuses to load without a key
# ---------------------------------------------------------------------------------------------


def test_the_dev_key_warning_is_in_every_dagster_runs_log(tmp_path):
    instance = dg.DagsterInstance.ephemeral()

    @dg.asset
    def touch(warehouse: Warehouse) -> None:
        with warehouse.get_connection() as con:
            con.execute("SELECT 1").fetchall()

    database = str(tmp_path / "warehouse.duckdb")
    for key, expected in ((DEV_HASH_KEY, 1), (SECRET, 0)):
        resources = {"warehouse": Warehouse(database=database, hash_key=key)}
        result = dg.materialize([touch], resources=resources, instance=instance)
        assert result.success
        logs = instance.all_logs(result.run_id)
        warnings = [e for e in logs if "SECURITY WARNING" in e.user_message]
        assert len(warnings) == expected
        assert all(e.level == logging.WARNING and "COMPLIANCE_HASH_KEY" in e.user_message for e in warnings)
        assert not [e for e in logs if DEV_HASH_KEY in e.user_message or SECRET in e.user_message]


@pytest.mark.parametrize(
    "key, fragment",
    [(None, "is not set"), ("", "is not set"), ("  ", "is not set"), (DEV_HASH_KEY, "public development key")],
    ids=["unset", "empty", "blank", "the dev key"],
)
def test_in_production_the_dagster_definitions_refuse_to_load(tmp_path, key, fragment):
    """What the UI, the daemon and `dagster job execute` load first: it fails with a clear message."""
    env = _env(tmp_path, COMPLIANCE_ENV="production", COMPLIANCE_HASH_KEY=key)
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", "import pipelines.definitions"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "COMPLIANCE_HASH_KEY" in proc.stderr and fragment in proc.stderr
    assert DEV_HASH_KEY not in proc.stderr


def test_in_production_with_a_key_the_definitions_hold_a_reference_not_the_key(tmp_path):
    env = _env(tmp_path, COMPLIANCE_ENV="production", COMPLIANCE_HASH_KEY=SECRET)
    code = (
        "from pipelines.definitions import defs\n"
        "from dagster._core.snap import JobSnap\n"
        "from dagster_shared.serdes import serialize_value\n"
        "job = defs.resolve_job_def('nightly_compliance')\n"
        "print(serialize_value(JobSnap.from_job_def(job)))\n"
        "print(repr(defs.resources))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "COMPLIANCE_HASH_KEY" in proc.stdout  # the resource names the variable ...
    assert SECRET not in proc.stdout + proc.stderr  # ... never its value


# ---------------------------------------------------------------------------------------------
# A whole run with a real key: the key is nowhere
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_key_never_appears_in_logs_metadata_reports_or_the_warehouse(tmp_path):
    env = _env(tmp_path, COMPLIANCE_HASH_KEY=SECRET, COMPLIANCE_ENV="production")
    generate = [sys.executable, "-m", "pipelines", "generate", "--out", str(tmp_path / "inbox"), "--accounts", "60"]
    generate += ["--days", "1", "--start", DAY, "--seed", "2", "--quiet"]
    assert subprocess.run(generate, cwd=REPO, env=env, capture_output=True, timeout=120).returncode == 0
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines", "nightly", "--date", DAY],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert b"SECURITY WARNING" not in proc.stderr  # a real key: no warning

    blobs = {"CLI output": proc.stdout + proc.stderr}
    for folder in ("dagster_home", "reports"):
        blobs |= {f"{folder}/{name}": data for name, data in contents(tmp_path / folder).items()}
    warehouse = [p for p in tmp_path.iterdir() if p.name.startswith("warehouse.duckdb")]
    blobs |= {p.name: p.read_bytes() for p in warehouse if p.is_file()}
    assert any(name.endswith("(dump)") for name in blobs)  # the instance's databases were read
    assert "warehouse.duckdb" in blobs
    found = [(name, form) for name, data in blobs.items() for form, b in key_forms(SECRET).items() if b in data]
    assert not found, found

    # the keys it made are there: the search reads the right files
    from pipelines.keys import subject_key

    summary = (tmp_path / "reports" / DAY / "erasure_register.csv").read_text()
    assert any(subject_key(SECRET, f"acc_{i:07d}") in summary for i in range(1, 61))
