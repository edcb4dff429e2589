"""Dagster resources: the DuckDB warehouse and the compliance settings, from the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr

from pipelines import config
from pipelines.safe_text import redacted_exception
from pipelines.warehouse import acquire_run_lock, compact, open_connection, vault_path


class Warehouse(DuckDBResource):
    """The DuckDB warehouse, opened in Prague time with the keyed-hash macros and the schema."""

    hash_key: str = Field(description="HMAC key for subject_key / email_key (CONTRACT section 4).")
    _run_lock: Any = PrivateAttr(default=None)
    #: During a run, the connection held open for it: each step's connection is a cursor of it.
    _root: Any = PrivateAttr(default=None)
    _in_run: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Once per run: warn loudly on the development key, and take the warehouse lock (waiting
        while another run, e.g. the CLI, holds it) before the first step claims its pool slot."""
        run = getattr(context, "dagster_run", None)
        if run is not None and run.is_finished:  # e.g. execute_job re-creating a finished run's context
            return
        config.warn_if_dev_key(self.hash_key, context.log)
        self._run_lock = acquire_run_lock(Path(self.database), context.log)
        self._in_run = True

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._close_root()  # before the lock: the next run must find the file closed
        self._in_run = False
        if self._run_lock is not None:
            self._run_lock.release()
            self._run_lock = None

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for a step's work. An exception raised while it is open leaves with its
        message redacted (`pipelines.safe_text.redacted_exception`): the step failure it becomes is
        stored in the Dagster event log, and its text may quote an inbox file name or a value.

        During a run (this process holds the warehouse lock), the database is opened once, by
        the first step, and each step gets a cursor of that connection (`open_connection`'s
        `root`): its own TEMP tables, no file opened and no schema applied again. A step that
        fails closes the run's connection, so the next step starts from the file."""
        path = Path(self.database)
        if self._in_run:
            if self._root is None:
                self._root = open_connection(path, self.hash_key)
            con = open_connection(path, self.hash_key, root=self._root)
        else:
            con = open_connection(path, self.hash_key)
        failed = False
        try:
            yield con
        except BaseException as exc:
            failed = True
            clean = redacted_exception(exc) if isinstance(exc, Exception) else exc
            if clean is exc:
                raise
            raise clean from None
        finally:
            con.close()
            if failed:
                self._close_root()

    def _close_root(self) -> None:
        if self._root is not None:
            root, self._root = self._root, None
            root.close()

    def compact(self, database: str = "warehouse") -> dict[str, int]:
        """Copy the warehouse, or its identity vault (`database` "vault"), into a fresh file
        (byte-level erasure). The run's connection is closed first: no connection may be open
        during the copy, and the next step opens the fresh file."""
        self._close_root()
        path = Path(self.database)
        return compact(vault_path(path) if database == "vault" else path)


class ComplianceSettings(dg.ConfigurableResource):
    """Where the inbox and reports live, how long raw inbox days are kept, how long a compaction may wait."""

    inbox: str = Field(description="Landing zone: events/<day>/*.jsonl[.gz], snapshots/<system>/<day>.csv")
    reports: str = Field(description="Reports are published to <reports>/<YYYY-MM-DD>/")
    # The bounds of pipelines.config, also for run config set in the UI's launchpad: out of them,
    # the run fails at resource initialisation with a validation error naming the field and the
    # bound, not with an OverflowError in the retention step.
    retention_days: int = Field(
        default=28,
        ge=config.MIN_RETENTION_DAYS,
        le=config.MAX_RETENTION_DAYS,
        description=f"Days an ingested inbox day folder is kept (at most {config.MAX_RETENTION_DAYS}).",
    )
    compaction_delay_days: int = Field(
        default=0,
        ge=config.MIN_COMPACTION_DELAY_DAYS,
        le=config.MAX_COMPACTION_DELAY_DAYS,
        description="Nights a purge may wait for the byte-level compaction (0, the default: the same night, "
        "as CONTRACT 5 asks; at most "
        f"{config.MAX_COMPACTION_DELAY_DAYS}).",
    )

    @property
    def inbox_path(self) -> Path:
        return Path(self.inbox)

    @property
    def reports_path(self) -> Path:
        return Path(self.reports)


def _env_or_default(name: str) -> str | dg.EnvVar:
    """An EnvVar when the variable is set (the UI shows its name, never its value), else the default."""
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else config.DEFAULTS[name]


def build_resources() -> dict[str, object]:
    # Fail early and clearly on a bad configuration (e.g. production without a key).
    settings = config.load_settings()
    hash_key = dg.EnvVar(config.ENV_HASH_KEY) if not settings.using_dev_key else config.DEV_HASH_KEY
    return {
        "warehouse": Warehouse(database=_env_or_default(config.ENV_WAREHOUSE), hash_key=hash_key),
        "settings": ComplianceSettings(
            inbox=_env_or_default(config.ENV_INBOX),
            reports=_env_or_default(config.ENV_REPORTS),
            retention_days=settings.retention_days,
            compaction_delay_days=settings.compaction_delay_days,
        ),
    }
