"""Helpers shared by the test modules: what more than one of them uses is here, so that no test
module imports another. The fixtures stay in tests/conftest.py.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from assets.compliance.violations import evaluate_rules
from assets.core.accounts import build_accounts
from assets.core.consent import build_consent_history
from assets.core.membership import build_club_membership
from assets.erasure.retention import apply_retention
from assets.erasure.verifier import build_register
from assets.landing.exports import ingest_exports
from assets.landing.ingest import ingest_day
from assets.purge.inbox_redaction import redact_inbox
from assets.purge.purge import purge
from pipelines.keys import email_key, subject_key
from pipelines.resources import ComplianceSettings, Warehouse
from pipelines.warehouse import connect, vault_path

# ---------------------------------------------------------------------------------------------
# Events and the per-test environment (the `env` fixture of tests/conftest.py)
# ---------------------------------------------------------------------------------------------

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


def iso(dt: datetime) -> str:
    return dt.isoformat()


# ---------------------------------------------------------------------------------------------
# The erasure flow night by night, and the Dagster job (tests/erasure, tests/purge, reruns)
# ---------------------------------------------------------------------------------------------

ERASURE_STEPS = ("purge__purge_log", "erasure__raw_retention", "erasure__erasure_register", "compaction__warehouse")


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def created(account_id: str, ts: str, email: str, **props: str) -> dict:
    return event("Account Created", account_id, ts, properties={"email": email, **props})


def email_changed(account_id: str, ts: str, new: str, previous: str) -> dict:
    return event(
        "Email Changed",
        account_id,
        ts,
        channel="care_center",
        agentId="agent-1",
        properties={"email": new, "previous_email": previous},
    )


def deleted(account_id: str, ts: str, **kw) -> dict:
    return event("Account Deleted", account_id, ts, **kw)


def night(env, day: str | date, *, rules: bool = False) -> None:
    """One night of the erasure flow without Dagster: ingest, purge, inbox redaction, retention, register (and,
    with `rules`, the core tables and the rules)."""
    day = date.fromisoformat(str(day))
    with env.connect() as con:
        ingest_day(con, env.inbox, day)
        ingest_exports(con, env.inbox, day)
        purge(con, day)
        redact_inbox(con, env.inbox, day)
        apply_retention(con, env.inbox, day, env.retention_days)
        build_register(con, day, env.inbox)
        if rules:
            build_accounts(con, day)
            build_consent_history(con, day)
            build_club_membership(con, day)
            evaluate_rules(con, day)


def register(env) -> dict[str, tuple]:
    rows = env.query(
        """SELECT subject_key, status, due_date, residual_locations, verified_on, deleted_at, erased_on
           FROM compliance.erasure_register"""
    )
    return {r[0]: r[1:] for r in rows}


def run_job(env, day: str, selection=None) -> dg.ExecuteInProcessResult:
    """Run the Dagster job for `day`; the ingestion and erasure steps must succeed."""
    result = env.run(day, selection=selection)
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert not [s for s in failed if s.startswith(("ingest_arrival_day", "landing__", *ERASURE_STEPS))], failed
    return result


def text_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """(table name, table as SQL, column) of every text column of every base table of the warehouse
    and of its identity vault (named `vault.<schema>.<table>`)."""
    rows = con.execute(
        """SELECT CASE WHEN c.table_catalog = current_database() THEN '' ELSE c.table_catalog END,
                  c.table_schema, c.table_name, c.column_name
           FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_catalog, table_schema, table_name)
           WHERE t.table_type = 'BASE TABLE' AND c.table_catalog IN (current_database(), 'vault')
             AND (c.data_type LIKE '%VARCHAR%' OR c.data_type LIKE '%JSON%')"""
    ).fetchall()
    return [
        (
            ".".join(p for p in (catalog, schema, table) if p),
            ".".join(f'"{p}"' for p in (catalog, schema, table) if p),
            column,
        )
        for catalog, schema, table, column in rows
    ]


# ---------------------------------------------------------------------------------------------
# Core state and the rules in SQL, without Dagster (tests/core, tests/compliance)
# ---------------------------------------------------------------------------------------------

CORE_AND_VIOLATIONS = dg.AssetSelection.assets(["compliance", "violations"]).upstream().required_multi_asset_neighbors()


def derive(env, day: str | date, *, rules: bool = True) -> None:
    """Ingest arrival day `day` and rebuild core (and the rules) in SQL, without Dagster: fast."""
    with env.connect() as con:
        derive_on(con, env, day, rules=rules)


def derive_on(con, env, day: str | date, *, rules: bool = True) -> list | None:
    """`derive` on an open connection; returns the rules' outcomes (None without the rules)."""
    day = date.fromisoformat(str(day))
    ingest_day(con, env.inbox, day)
    ingest_exports(con, env.inbox, day)
    build_accounts(con, day)
    build_consent_history(con, day)
    build_club_membership(con, day)
    return evaluate_rules(con, day) if rules else None


def core_created(acc: str, ts: str, email: str | None = None, **kw) -> dict:
    """Account Created with a default e-mail; keywords go to `event` (`created` puts them in the
    properties). test_core and test_rules import it as `created`."""
    return event("Account Created", acc, ts, properties={"email": email or f"{acc}@example.cz"}, **kw)


def grant(acc: str, ts: str, **kw) -> dict:
    return event("Marketing Consent Granted", acc, ts, properties={"notice_version": "2026-01", "source": "web"}, **kw)


def withdraw(acc: str, ts: str, **kw) -> dict:
    return event("Marketing Consent Withdrawn", acc, ts, properties={"source": "preferences"}, **kw)


def segment(acc: str, ts: str, preferences: dict | None, **kw) -> dict:
    consent = {} if preferences is None else {"consent": {"categoryPreferences": preferences}}
    return event("Segment Consent Preference Updated", acc, ts, **consent, **kw)


# ---------------------------------------------------------------------------------------------
# A whole warehouse and a day's report files as comparable state (tests/end_to_end)
# ---------------------------------------------------------------------------------------------

MANIFEST = "MANIFEST.sha256"


#: The erasure scan's memory: ops.scan_cache remembers columns found clean (by a fingerprint of
#: their values), ops.scan_values values found clean (by a digest) and ops.scan_value_keys their
#: tokens' keys. What they hold depends on which rows existed when each scan ran (the rerun after
#: a kill scans the killed run's report rows; the uninterrupted run scanned before it wrote them),
#: and they fingerprint run ids and themselves.
#: They are performance caches, not content: a stale entry would show as a wrong erasure status or
#: check result, and those are compared.
VOLATILE_TABLES = {"ops.scan_cache", "ops.scan_values", "ops.scan_value_keys"}


#: Columns whose values legitimately differ between two runs over the same inputs: wall-clock times,
#: Dagster run ids, the compaction's byte sizes (a copied DuckDB file's size depends on the
#: history of the file it was copied from) and the file manifests, which hold each file's mtime:
#: an inbox file the night redacts in place gets the wall clock's (assets/landing/inbox_files.py;
#: compare the inbox files' bytes instead). Every other column of every table is compared, ops.*
#: bookkeeping included, except the tables in VOLATILE_TABLES.
VOLATILE_COLUMNS = {
    "landing.files": {"ingested_at"},
    "landing.export_files": {"ingested_at"},
    "ops.ingested_days": {"ingested_at", "manifest"},
    "ops.runs": {"dagster_run_id", "finished_at"},
    "ops.check_results": {"dagster_run_id"},
    "reports.daily_summary": {"dagster_run_id", "generated_at"},
    "compliance.purge_log": {"purged_at"},
    "vault.main.purge_counts": {"purged_at"},
    "ops.compaction_due": {"requested_at"},
    "ops.compactions": {"bytes_before", "bytes_after", "compacted_at"},
    "ops.inbox_scans": {"scanned_at", "manifest"},
    "ops.inbox_rewrites": {"mtime_before_ns", "mtime_after_ns", "rewritten_at"},
    "ops.inbox_redactions": {"redacted_at"},
    "ops.retention_log": {"deleted_at"},
    "ops.schema_migrations": {"applied_at"},
}


def _quote(*parts: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """The warehouse read-only with its identity vault attached, as an outside reader opens it."""
    con = duckdb.connect(str(path), read_only=True)
    vault = vault_path(path)
    if vault.exists():
        con.execute("ATTACH ? AS vault (READ_ONLY)", [str(vault)])
    return con


def warehouse_state(path: Path, volatile: dict[str, set[str]] | None = None) -> dict[str, tuple[int, str]]:
    """{schema.table: (rows, sha256 of the columns and the ordered rows without volatile columns)}."""
    volatile = {
        t: VOLATILE_COLUMNS.get(t, set()) | (volatile or {}).get(t, set())
        for t in {*VOLATILE_COLUMNS, *(volatile or {})}
    }
    con = read_only(path)
    try:
        state = {}
        tables = con.execute(
            """SELECT database_name = current_database(), database_name, schema_name, table_name
               FROM duckdb_tables() WHERE NOT temporary ORDER BY ALL"""
        ).fetchall()
        for own, database, schema, table in tables:
            name = f"{schema}.{table}" if own else f"{database}.{schema}.{table}"
            if name in VOLATILE_TABLES:
                continue
            columns = [
                c
                for (c,) in con.execute(
                    """SELECT column_name FROM duckdb_columns()
                       WHERE database_name = ? AND schema_name = ? AND table_name = ? ORDER BY column_index""",
                    [database, schema, table],
                ).fetchall()
            ]
            kept = [c for c in columns if c not in volatile.get(name, set())]
            rows = con.execute(
                f"SELECT {', '.join(_quote(c) for c in kept)} FROM {_quote(database, schema, table)} ORDER BY ALL"
            ).fetchall()
            digest = hashlib.sha256(json.dumps(columns).encode())
            for row in rows:
                digest.update(repr(row).encode())
            state[name] = (len(rows), digest.hexdigest())
        return state
    finally:
        con.close()


def report_state(folder: Path, volatile: tuple[re.Pattern, ...] = ()) -> dict[str, bytes]:
    """Every file of the day's report folder, by its path in it: the same inputs give the same bytes.
    With `volatile` patterns: the page without them, and the manifest without the page's line (its
    digest covers the removed bytes)."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        data = path.read_bytes()
        if volatile and name == "compliance_report.html":
            for pattern in volatile:
                data = pattern.sub(b"", data)
        if volatile and name == MANIFEST:
            data = b"\n".join(line for line in data.splitlines() if not line.endswith(b"  compliance_report.html"))
        files[name] = data
    return files


# ---------------------------------------------------------------------------------------------
# Every file under a folder as bytes (tests/end_to_end/test_pii_leaks, tests/pipelines/test_secrets)
# ---------------------------------------------------------------------------------------------


def sqlite_dump(path: Path) -> bytes:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(con.iterdump()).encode("utf-8", "surrogateescape")
    finally:
        con.close()


def contents(root: Path) -> dict[str, bytes]:
    """Every file under `root` as bytes; an SQLite database also as its logical dump."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found[str(path.relative_to(root))] = data
        if data.startswith(b"SQLite format 3\x00"):
            found[f"{path.relative_to(root)} (dump)"] = sqlite_dump(path)
    return found


# ---------------------------------------------------------------------------------------------
# The command line in a subprocess (the `cli` fixture of tests/conftest.py)
# ---------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
CLI_KEY = "cli-test-key"
EMAIL_IN_OUTPUT = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


class Cli:
    """`python -m pipelines ...` in a subprocess, on its own inbox, warehouse, reports and DAGSTER_HOME."""

    def __init__(self, root: Path):
        self.root = root
        self.inbox = root / "inbox"
        self.warehouse = root / "warehouse.duckdb"
        self.reports = root / "reports"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPLIANCE_", "DAGSTER_"))}
        self.env.update(
            {
                "COMPLIANCE_INBOX": str(self.inbox),
                "COMPLIANCE_WAREHOUSE": str(self.warehouse),
                "COMPLIANCE_REPORTS": str(self.reports),
                "COMPLIANCE_HASH_KEY": CLI_KEY,
                "DAGSTER_HOME": str(root / "dagster_home"),
                "PYTHONPATH": str(REPO),
            }
        )

    def __call__(
        self, *args: str, timeout: float = 300, stdin: str | None = None, **env: str | None
    ) -> subprocess.CompletedProcess:
        run_env = dict(self.env)
        for k, v in env.items():
            if v is None:
                run_env.pop(k, None)
            else:
                run_env[k] = v
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines", *args],
            cwd=REPO,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
        )
        # whatever happens, the console never shows an e-mail address
        output = proc.stdout + proc.stderr
        found = EMAIL_IN_OUTPUT.search(output)
        assert found is None, f"e-mail address in CLI output: {found[0]!r}"
        assert "Traceback" not in output, output[-3000:]
        return proc

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        con = read_only(self.warehouse)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


def stop_process_group(proc: subprocess.Popen) -> None:
    """Stop the process group we started (the server and the code servers it spawned)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    else:
        try:  # the leader exited; its children may still be there
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def generate_inbox(out: Path, *, accounts: int, days: int, start: str, seed: int) -> Path:
    """A generated inbox at `out` (`python -m pipelines generate` in a subprocess); returns `out`."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines", "generate", "--out", str(out), "--accounts", str(accounts)]
        + ["--days", str(days), "--start", start, "--seed", str(seed), "--quiet"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return out
