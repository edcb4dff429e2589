"""Shared fixtures: an isolated inbox / warehouse / reports / DAGSTER_HOME per test (tmp_path)."""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from pipelines.keys import email_key, subject_key
from pipelines.resources import ComplianceSettings, Warehouse
from pipelines.warehouse import connect

TEST_KEY = "test-hash-key-0123456789"
_ids = itertools.count(1)


def event(
    event_name: str,
    account_id: str,
    timestamp: str,
    *,
    channel: str = "web",
    properties: dict[str, Any] | None = None,
    message_id: str | None = None,
    **context: Any,
) -> dict[str, Any]:
    """A contract-valid Segment track event (override anything to make it invalid)."""
    return {
        "messageId": message_id or f"m-{next(_ids):06d}",
        "type": "track",
        "event": event_name,
        "userId": account_id,
        "timestamp": timestamp,
        "properties": properties or {},
        "context": {"channel": channel, **context},
    }


@dataclass
class Env:
    root: Path
    inbox: Path
    warehouse: Path
    reports: Path
    dagster_home: Path
    key: str = TEST_KEY
    retention_days: int = 28
    #: The tests check the bytes right after the night of a purge: compact that same night.
    compaction_delay_days: int = 0
    _instance: dg.DagsterInstance | None = field(default=None, repr=False)

    # -- inputs -------------------------------------------------------------------------------
    def write_events(self, day: date | str, name: str, lines: list[dict | str | bytes], *, gz: bool = False) -> Path:
        folder = self.inbox / "events" / str(day)
        folder.mkdir(parents=True, exist_ok=True)
        chunks = []
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line, ensure_ascii=False)
            chunks.append(line if isinstance(line, bytes) else line.encode())
        data = b"".join(c + b"\n" for c in chunks)
        path = folder / name
        path.write_bytes(gzip.compress(data) if gz else data)
        return path

    def write_export(
        self, system: str, day: date | str, rows: list[dict[str, str]], header: list[str] | None = None
    ) -> Path:
        folder = self.inbox / "snapshots" / system
        folder.mkdir(parents=True, exist_ok=True)
        header = header or ["account_id", "email"]
        lines = [",".join(header)] + [",".join(r.get(h, "") for h in header) for r in rows]
        path = folder / f"{day}.csv"
        path.write_text("\n".join(lines) + "\n")
        return path

    # -- running ------------------------------------------------------------------------------
    def resources(self) -> dict[str, Any]:
        return {
            "warehouse": Warehouse(database=str(self.warehouse), hash_key=self.key),
            "settings": ComplianceSettings(
                inbox=str(self.inbox),
                reports=str(self.reports),
                retention_days=self.retention_days,
                compaction_delay_days=self.compaction_delay_days,
            ),
        }

    @property
    def instance(self) -> dg.DagsterInstance:
        if self._instance is None:
            self._instance = dg.DagsterInstance.ephemeral()
        return self._instance

    def run(self, day: date | str, *, selection: Any = None) -> dg.ExecuteInProcessResult:
        """Materialise every asset and check of the nightly job for one day."""
        from pipelines.definitions import ALL_ASSETS, ALL_CHECKS

        return dg.materialize(
            [*ALL_ASSETS, *ALL_CHECKS],
            partition_key=str(day),
            resources=self.resources(),
            instance=self.instance,
            selection=selection,
            raise_on_error=False,
        )

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.warehouse, self.key) as con:
            yield con

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()

    # -- keys ---------------------------------------------------------------------------------
    def subject_key(self, account_id: str) -> str:
        return subject_key(self.key, account_id)

    def email_key(self, email: str) -> str:
        return email_key(self.key, email)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    e = Env(
        root=tmp_path,
        inbox=tmp_path / "inbox",
        warehouse=tmp_path / "warehouse.duckdb",
        reports=tmp_path / "reports",
        dagster_home=tmp_path / "dagster_home",
    )
    e.inbox.mkdir()
    e.dagster_home.mkdir()
    monkeypatch.setenv("COMPLIANCE_INBOX", str(e.inbox))
    monkeypatch.setenv("COMPLIANCE_WAREHOUSE", str(e.warehouse))
    monkeypatch.setenv("COMPLIANCE_REPORTS", str(e.reports))
    monkeypatch.setenv("COMPLIANCE_HASH_KEY", e.key)
    monkeypatch.setenv("DAGSTER_HOME", str(e.dagster_home))
    return e


def iso(dt: datetime) -> str:
    return dt.isoformat()
