"""`dg check defs` (the `[tool.dg]` project in pyproject.toml) validates the Definitions, as CI does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DG = Path(sys.executable).parent / "dg"


def _dg_check_defs(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(ROOT / "pipelines" / "dagster.yaml", home / "dagster.yaml")  # telemetry off
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
    env.update(DAGSTER_HOME=str(home), PYTHONPATH=str(ROOT), **extra)
    return subprocess.run([str(DG), "check", "defs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_dg_check_defs_passes(tmp_path):
    proc = _dg_check_defs(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "All definitions loaded successfully" in proc.stdout + proc.stderr


def test_dg_check_defs_fails_when_the_definitions_cannot_load(tmp_path):
    # Production without COMPLIANCE_HASH_KEY refuses to build the resources: validation must say so.
    proc = _dg_check_defs(tmp_path, COMPLIANCE_ENV="production")
    assert proc.returncode != 0
    assert "COMPLIANCE_HASH_KEY" in proc.stdout + proc.stderr
