"""Warehouse connections: Prague time, the memory limit, the key macros, and the schema in place.

One process writes the warehouse at a time (DuckDB allows one read-write process per file): the
CLI holds the warehouse lock (`pipelines.warehouse.lock`) and every Dagster asset runs in the
`warehouse` pool.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipelines import config
from pipelines.config import ConfigError
from pipelines.keys import install_key_macros
from pipelines.warehouse import migrations
from pipelines.warehouse.compaction import recover

log = logging.getLogger(__name__)

TIMEZONE = "Europe/Prague"

#: Every persistent table (pipelines/warehouse/schema.sql), applied on each read-write open.
SCHEMA_SQL = (Path(__file__).parent / "schema.sql").read_text(encoding="utf-8")
#: The identity vault's tables (vault.sql), in the file attached as `vault`.
VAULT_SQL = (Path(__file__).parent / "vault.sql").read_text(encoding="utf-8")
#: The contract's tables as views over the keyed history and the vault (views.sql), after the migrations.
VIEWS_SQL = (Path(__file__).parent / "views.sql").read_text(encoding="utf-8")
#: The name the vault is attached under on every warehouse connection.
VAULT = "vault"


def vault_path(database: Path) -> Path:
    """The identity vault's file beside the warehouse: `warehouse.duckdb` -> `warehouse.vault.duckdb`."""
    return database.with_name(database.stem + ".vault" + (database.suffix or ".duckdb"))


#: DuckDB's memory limit on every warehouse connection, from COMPLIANCE_DUCKDB_MEMORY_LIMIT (a DuckDB
#: size such as "2GB", or "" for DuckDB's own default of 80 % of RAM). Past it, DuckDB evicts cached
#: blocks and spills joins and sorts to a temporary directory next to the warehouse, so the
#: process's peak memory stays bounded as history grows (bench/results.md, docs/scaling.md T2).
#: The rest of a nightly process (Python, Dagster, GX, pandas frames) takes 0.8-0.9 GB. A lower
#: default (1536MB) lowers a 3M night's peak, but a 3M backfill then runs out of memory in the
#: violations step, so the default is 2GB (docs/scaling.md).
#: The variable is validated with the other settings (pipelines.config.parse_memory_limit: a size
#: from 64MiB to 16TiB), so that a bad value stops the CLI at start rather than a step.
ENV_MEMORY_LIMIT = config.ENV_MEMORY_LIMIT
DEFAULT_MEMORY_LIMIT = config.DEFAULT_MEMORY_LIMIT


def apply_connection_settings(con: duckdb.DuckDBPyConnection) -> None:
    """Settings of every connection the pipeline opens: the memory limit, and no progress bars
    (backfill workers printed them into the run's output and logs)."""
    con.execute("SET enable_progress_bar = false")
    limit = _configured_memory_limit()
    if limit:
        try:
            _set_memory_limit(con, limit)
        except duckdb.Error as exc:
            raise ConfigError(f"{ENV_MEMORY_LIMIT}={limit!r} is not a DuckDB memory size: {exc}") from None


def _configured_memory_limit() -> str:
    """COMPLIANCE_DUCKDB_MEMORY_LIMIT, or the default; "" leaves DuckDB's own. ConfigError if invalid."""
    return config.configured_memory_limit(os.environ)


def _set_memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> None:
    """SET memory_limit to a DuckDB size ("2GB"), or back to DuckDB's default for ""."""
    con.execute(f"SET memory_limit = '{limit.replace(chr(39), '')}'" if limit else "RESET memory_limit")


#: Bytes per unit of the memory limit as DuckDB prints it ("953.6 MiB", "1.8 GiB").
_PRINTED_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}


def _memory_limit(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]


def _printed_bytes(printed: str) -> float | None:
    number, _, unit = printed.partition(" ")
    try:
        return float(number) * _PRINTED_UNITS[unit]
    except (ValueError, KeyError):
        return None


def _restore_memory_limit(con: duckdb.DuckDBPyConnection, before: str) -> None:
    """Put the limit back: the configured value when that is what it was, else `before` as DuckDB
    printed it (truncated to 0.1 of a unit: the printed value would not give back 2GB exactly)."""
    try:
        _set_memory_limit(con, _configured_memory_limit())
    except (duckdb.Error, ConfigError):
        pass  # not a valid size: the connection cannot have been opened with it
    if _memory_limit(con) != before:
        _set_memory_limit(con, before)


def _lower_memory_limit(con: duckdb.DuckDBPyConnection, limit: str, before: str) -> bool:
    """SET the smaller limit; False (with a warning) when DuckDB cannot evict enough to get under it
    (no room left for its temporary files, say): the block then runs with the memory it had."""
    try:
        _set_memory_limit(con, limit)
    except duckdb.Error as exc:
        log.warning("DuckDB's memory limit stays at %s, not %s: %s", before, limit, str(exc).splitlines()[0])
        return False
    return True


@contextmanager
def memory_limit_at_most(con: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """Run the block with DuckDB's memory limit lowered to `limit` (a DuckDB size) if it is higher,
    then put it back.

    For one large join or aggregate: DuckDB partitions and spills those when they do not fit, and
    evicts (spills) TEMP tables to make room, so a smaller budget costs little time and keeps the
    process's peak down (``assets/purge/scan.py``). If DuckDB cannot get under it, the block runs
    with the limit it had, and a warning says so."""
    before = _memory_limit(con)
    if not _lower_memory_limit(con, limit, before):
        yield
        return
    lowered, was = _printed_bytes(_memory_limit(con)), _printed_bytes(before)
    if lowered is None or was is None or was <= lowered:
        _restore_memory_limit(con, before)  # it was that low already (or unreadable): leave it
        yield
        return
    try:
        yield
    finally:
        _restore_memory_limit(con, before)


def open_connection(
    database: Path, hash_key: str, *, read_only: bool = False, root: duckdb.DuckDBPyConnection | None = None
):
    """Open the warehouse with Prague time, the key macros and the schema in place.

    With `root`, a connection this process already holds open on the same warehouse (a run's,
    `pipelines.resources.Warehouse`), the new connection is a cursor of it: the database file, its
    vault and the schema are in place already, and only what belongs to a connection (its time
    zone, settings and TEMP macros) is set up. A night of the nightly job opened the file about 34
    times, each time applying the schema, and checkpointed it on each close."""
    if root is not None:
        con = root.cursor()
        try:
            _connection_settings(con, hash_key)
        except Exception:
            con.close()
            raise
        return con
    if database.exists() and database.is_dir():
        raise ConfigError(f"warehouse {database} is a directory, not a DuckDB database file")
    vault = vault_path(database)
    if not read_only:
        database.parent.mkdir(parents=True, exist_ok=True)
        recover(database)
        recover(vault)
    try:
        con = duckdb.connect(str(database), read_only=read_only)
    except duckdb.IOException as exc:
        message = str(exc).splitlines()[0]
        if "lock" in message.lower():
            raise ConfigError(f"warehouse {database} is in use by another process") from None
        raise ConfigError(f"warehouse {database} is not a usable DuckDB database: {message}") from None
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
        raise ConfigError(f"warehouse {database} is not a usable DuckDB database: {message}") from None
    try:
        _connection_settings(con, hash_key)
        _attach_vault(con, vault, read_only=read_only)
        if not read_only:
            con.execute(SCHEMA_SQL)
            con.execute(VAULT_SQL)
            migrations.apply_pending(con)
            con.execute(VIEWS_SQL)
    except Exception:
        con.close()
        raise
    return con


def _connection_settings(con: duckdb.DuckDBPyConnection, hash_key: str) -> None:
    """What each connection of the database needs of its own: Prague time, the settings, the key macros."""
    con.execute(f"SET TimeZone = '{TIMEZONE}'")
    apply_connection_settings(con)
    install_key_macros(con, hash_key)


def _attach_vault(con: duckdb.DuckDBPyConnection, vault: Path, *, read_only: bool) -> None:
    """ATTACH the identity vault as `vault` (once per database instance; connections share it).

    Read-only, a warehouse with no vault yet (never opened for writing by this code) gets none:
    its keyed tables read, its contract views do not."""
    if read_only and not vault.exists():
        return
    mode = " (READ_ONLY)" if read_only else ""
    try:
        con.execute(f"ATTACH IF NOT EXISTS '{_sql_path(vault)}' AS {VAULT}{mode}")
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
        raise ConfigError(f"identity vault {vault} is not a usable DuckDB database: {message}") from None


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


@contextmanager
def connect(database: Path, hash_key: str, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    # Looked up on the package, so that a wrapper installed there (tests, bench) sees every connection.
    from pipelines import warehouse

    con = warehouse.open_connection(database, hash_key, read_only=read_only)
    try:
        yield con
    finally:
        con.close()
