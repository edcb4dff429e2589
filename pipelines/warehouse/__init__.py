"""The DuckDB warehouse and its identity vault: their schema, migrations, connections, the run lock
and the crash-safe byte-level compaction.

* `schema.sql`: every persistent table of the warehouse (the keyed history); `vault.sql`: the
  identity vault's, a second file attached as `vault`; `views.sql`: the contract's tables as views
  over both; `migrations/`: numbered upgrades of older warehouses. All are applied when the
  warehouse is opened for writing (`connection.open_connection`).
* `connection`: opening the warehouse with its vault, and its DuckDB memory limit.
* `lock`: one pipeline run writes the warehouse at a time.
* `compaction`: copy a database file (the warehouse or the vault) into a fresh file so deleted
  values leave no bytes behind.
* `transaction`: one transaction as a context manager (committed, or rolled back on any error).

The names below are the package's interface; `open_connection` and `compaction_hook` are looked
up here at call time, so a wrapper or hook installed on the package (tests, bench) takes effect.
"""

from collections.abc import Callable

import duckdb  # noqa: F401 (tests patch `pipelines.warehouse.duckdb.connect`)

from pipelines.warehouse.compaction import COMPACTION_MEMORY_LIMIT, compact, compaction_path, recover, wal_path
from pipelines.warehouse.connection import (
    DEFAULT_MEMORY_LIMIT,
    ENV_MEMORY_LIMIT,
    SCHEMA_SQL,
    TIMEZONE,
    VAULT,
    apply_connection_settings,
    connect,
    memory_limit_at_most,
    open_connection,
    vault_path,
)
from pipelines.warehouse.lock import (
    RUN_LOCK_TIMEOUT_SECONDS,
    WarehouseBusy,
    acquire_run_lock,
    cli_lock,
    held_locks,
    lock_path,
)
from pipelines.warehouse.transaction import transaction

#: Test hook: called with the name of each compaction stage as it is reached ("checkpointed",
#: "copying", "copied", "synced", "replaced"). Tests kill the process there; production leaves it None.
compaction_hook: Callable[[str], None] | None = None

__all__ = [
    "COMPACTION_MEMORY_LIMIT",
    "DEFAULT_MEMORY_LIMIT",
    "ENV_MEMORY_LIMIT",
    "RUN_LOCK_TIMEOUT_SECONDS",
    "SCHEMA_SQL",
    "TIMEZONE",
    "VAULT",
    "WarehouseBusy",
    "acquire_run_lock",
    "apply_connection_settings",
    "cli_lock",
    "compact",
    "compaction_hook",
    "compaction_path",
    "connect",
    "held_locks",
    "lock_path",
    "memory_limit_at_most",
    "open_connection",
    "recover",
    "transaction",
    "vault_path",
    "wal_path",
]
