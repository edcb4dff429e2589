"""Runtime settings from the environment (CONTRACT section 1), with their defaults."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

log = logging.getLogger(__name__)

#: Public development key. Using it is allowed outside production, with a loud warning.
DEV_HASH_KEY = "dev-only-compliance-hash-key-do-not-use-in-production"

ENV_INBOX = "COMPLIANCE_INBOX"
ENV_WAREHOUSE = "COMPLIANCE_WAREHOUSE"
ENV_REPORTS = "COMPLIANCE_REPORTS"
ENV_HASH_KEY = "COMPLIANCE_HASH_KEY"
ENV_RETENTION = "COMPLIANCE_RAW_RETENTION_DAYS"
ENV_ENVIRONMENT = "COMPLIANCE_ENV"
#: Nights a purge may wait for the byte-level compaction. 0, the default, is what CONTRACT 5 asks:
#: after the run of D no file of the warehouse holds an erased identifier's bytes. Compaction
#: copies the whole warehouse, so a deployment that accepts erased bytes in the file's free blocks
#: for a few nights may batch it (the tables are clean the night of the purge either way).
ENV_COMPACTION_DELAY = "COMPLIANCE_COMPACTION_DELAY_DAYS"
#: The first day of the nightly partitions (YYYY-MM-DD). Unset or blank: the first day found in the
#: inbox (an arrival folder or an export) or in the reports (a published day), read by
#: pipelines.partitions when the Definitions load.
ENV_FIRST_DAY = "COMPLIANCE_FIRST_DAY"
#: Alerts (pipelines.notify): an optional webhook, and an optional notifier factory `package.module:function`.
ENV_ALERT_WEBHOOK_URL = "COMPLIANCE_ALERT_WEBHOOK_URL"
ENV_NOTIFIER = "COMPLIANCE_NOTIFIER"
#: DuckDB's memory limit per connection (pipelines.warehouse applies it); set but blank means
#: DuckDB's own default (80 % of RAM), unset means DEFAULT_MEMORY_LIMIT.
ENV_MEMORY_LIMIT = "COMPLIANCE_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2GB"
#: Whether the schedule and the sensors start switched on (`on`) or off (`off`) in an instance that
#: has no stored state for them (a switch in the UI is stored and wins over it). Unset or blank:
#: `on` when COMPLIANCE_ENV=production, else `off`, so a laptop's `make ui` starts no nightly runs
#: and a production deployment that predates the variable keeps its automation.
ENV_AUTOMATION = "COMPLIANCE_AUTOMATION"
#: The Dagster instance folder (Dagster's own variable): created, with pipelines/dagster.yaml in it,
#: by pipelines.instance.prepare_dagster_home. Relative values are taken from the working directory.
ENV_DAGSTER_HOME = "DAGSTER_HOME"
DEFAULT_DAGSTER_HOME = ".dagster_home"

#: Bounds of every numeric setting. A value outside them is refused at start (ConfigError: the CLI
#: exits 2 with one line; Definitions fail to load; ComplianceSettings refuses it as run config),
#: never at a step: a huge day count makes `day - timedelta(days=N)` raise OverflowError in the
#: retention step, a night without a report.
#:
#: Retention: 10 years. Far beyond any storage-limitation period for raw personal data, and it
#: keeps every date computed from it valid for every supported run date (pipelines.cli:
#: 1971-01-01 to 9998-12-31; `date - timedelta(days=N)` needs N <= 719,162 from 1971).
MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 1, 3650
#: Compaction delay: a purge must be byte-level erased within the 1-month erasure SLA (CONTRACT 5);
#: 27 nights is within the shortest month.
MIN_COMPACTION_DELAY_DAYS, MAX_COMPACTION_DELAY_DAYS = 0, 27
#: DuckDB memory limit: a floor well above the sizes DuckDB fails its first query with (0GB and 2KB:
#: "could not allocate block"); 16 TiB is beyond the RAM of any machine this runs on. DuckDB itself would take "-1GB"
#: (as 16 EiB, no limit at all) and "1e3GB"; both are refused here.
MIN_MEMORY_LIMIT_BYTES, MAX_MEMORY_LIMIT_BYTES = 64 * 2**20, 16 * 2**40

DEFAULTS = {
    ENV_INBOX: "data/inbox",
    ENV_WAREHOUSE: "data/warehouse.duckdb",
    ENV_REPORTS: "data/reports",
    ENV_RETENTION: "28",
    ENV_COMPACTION_DELAY: "0",
}


#: Every variable the pipeline reads, its default as shown to people, and its meaning
#: (`python -m pipelines --help` lists them).
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (ENV_INBOX, DEFAULTS[ENV_INBOX], "landing zone: events/<YYYY-MM-DD>/, snapshots/<system>/"),
    (ENV_WAREHOUSE, DEFAULTS[ENV_WAREHOUSE], "the DuckDB database file"),
    (ENV_REPORTS, DEFAULTS[ENV_REPORTS], "where reports (and alerts.jsonl) are published"),
    (ENV_HASH_KEY, "a public development key (warned)", "secret for the keyed hashes"),
    (
        ENV_RETENTION,
        DEFAULTS[ENV_RETENTION],
        f"days an ingested inbox folder is kept ({MIN_RETENTION_DAYS}-{MAX_RETENTION_DAYS})",
    ),
    (
        ENV_COMPACTION_DELAY,
        DEFAULTS[ENV_COMPACTION_DELAY],
        f"nights a purge may wait for compaction ({MIN_COMPACTION_DELAY_DAYS}-{MAX_COMPACTION_DELAY_DAYS})",
    ),
    (ENV_MEMORY_LIMIT, DEFAULT_MEMORY_LIMIT, "DuckDB memory limit per connection (blank: DuckDB's default)"),
    (ENV_ENVIRONMENT, "development", "production refuses to run without COMPLIANCE_HASH_KEY"),
    (ENV_FIRST_DAY, "the first day in the inbox or the reports", "first day of the nightly partitions"),
    (ENV_ALERT_WEBHOOK_URL, "unset", "also POST every alert to this URL"),
    (ENV_NOTIFIER, "unset", "alert notifier factory, package.module:function"),
    (ENV_DAGSTER_HOME, DEFAULT_DAGSTER_HOME, "the Dagster instance (run history)"),
)


class ConfigError(Exception):
    """A configuration problem, reported to the user as one clear line."""


class WarehouseBusy(Exception):
    """Another process holds the warehouse lock (the CLI exits with code 3)."""


@dataclass(frozen=True)
class Settings:
    inbox: Path
    warehouse: Path
    reports: Path
    retention_days: int
    hash_key: str = field(repr=False)
    environment: str = "development"
    compaction_delay_days: int = 0
    #: DuckDB size ("2GB"), or "" for DuckDB's own default.
    duckdb_memory_limit: str = DEFAULT_MEMORY_LIMIT
    #: The schedule and the sensors start switched on (COMPLIANCE_AUTOMATION).
    automation: bool = False
    #: COMPLIANCE_FIRST_DAY, or None: the partitions start at the first day in the inbox or the reports.
    first_day: date | None = None

    @property
    def using_dev_key(self) -> bool:
        return self.hash_key == DEV_HASH_KEY


#: Whole numbers as people write them: ASCII digits only. int() also takes "+28", "-0", "2_8" and
#: other scripts' digits ("٢٨" is 28), which no one means in a configuration file.
_WHOLE_NUMBER = re.compile(r"[0-9]+")
#: Longer than this is out of every bound; int() of a huge string would be slow (or refused).
_MAX_DIGITS = 12


def _shown(raw: str) -> str:
    """The value as it goes into an error: repr (one line, whatever it holds), and not too long."""
    return repr(raw) if len(raw) <= 40 else repr(raw[:40]) + f"... ({len(raw)} characters)"


def parse_bounded_int(name: str, raw: str, low: int, high: int, unit: str = "days", why: str = "") -> int:
    """A whole number from low to high; surrounding whitespace is ignored. Anything else (a sign,
    a fraction, an exponent, hex, non-ASCII digits, out of bounds) is one clear ConfigError line."""
    text = raw.strip()
    expected = f"{name} must be a whole number of {unit} from {low} to {high}{why}"
    if not _WHOLE_NUMBER.fullmatch(text):
        raise ConfigError(f"{expected}, got {_shown(raw)}")
    if len(text.lstrip("0")) > _MAX_DIGITS or not low <= int(text) <= high:
        raise ConfigError(f"{expected}, got {_shown(text)}")
    return int(text)


def parse_retention(raw: str) -> int:
    return parse_bounded_int(ENV_RETENTION, raw, MIN_RETENTION_DAYS, MAX_RETENTION_DAYS)


def parse_compaction_delay(raw: str) -> int:
    return parse_bounded_int(
        ENV_COMPACTION_DELAY,
        raw,
        MIN_COMPACTION_DELAY_DAYS,
        MAX_COMPACTION_DELAY_DAYS,
        why=" (within the erasure SLA)",
    )


#: DuckDB sizes as the README documents them: a decimal number and a unit (1000- or 1024-based).
_MEMORY_SIZE = re.compile(r"([0-9]{1,12}(?:\.[0-9]{1,6})?) ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)
_MEMORY_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_memory_limit(raw: str) -> str:
    """COMPLIANCE_DUCKDB_MEMORY_LIMIT: "" (DuckDB's default), or a size from 64MiB to 16TiB."""
    text = raw.strip()
    if not text:
        return ""
    match = _MEMORY_SIZE.fullmatch(text)
    size = float(match[1]) * _MEMORY_UNITS[match[2].lower()] if match else None
    if size is None or not MIN_MEMORY_LIMIT_BYTES <= size <= MAX_MEMORY_LIMIT_BYTES:
        raise ConfigError(
            f"{ENV_MEMORY_LIMIT}={_shown(raw)} is not a DuckDB memory size from 64MiB to 16TiB (e.g. 2GB, 512MiB)"
        )
    return text


def configured_memory_limit(env: dict[str, str] | os._Environ = os.environ) -> str:
    """The memory limit to apply: the variable's value ("" when set blank), else the default."""
    return parse_memory_limit(env.get(ENV_MEMORY_LIMIT, DEFAULT_MEMORY_LIMIT))


_AUTOMATION_VALUES = {"on": True, "off": False}


def parse_automation(raw: str) -> bool:
    """COMPLIANCE_AUTOMATION: `on` or `off` (any case, surrounding whitespace ignored)."""
    value = _AUTOMATION_VALUES.get(raw.strip().lower())
    if value is None:
        raise ConfigError(f"{ENV_AUTOMATION} must be on or off, got {_shown(raw)}")
    return value


def _environment(env: dict[str, str] | os._Environ) -> str:
    return env.get(ENV_ENVIRONMENT, "development").strip().lower() or "development"


def automation_enabled(env: dict[str, str] | os._Environ = os.environ) -> bool:
    """Whether the schedule and the sensors default to RUNNING: COMPLIANCE_AUTOMATION when set,
    else on in production (COMPLIANCE_ENV=production) and off everywhere else."""
    raw = env.get(ENV_AUTOMATION, "")
    if not raw.strip():
        return _environment(env) == "production"
    return parse_automation(raw)


def resolve_hash_key(env: dict[str, str] | os._Environ = os.environ) -> str:
    """Return the HMAC key; refuse to run in production without one, warn on the dev key."""
    key = env.get(ENV_HASH_KEY, "")
    environment = env.get(ENV_ENVIRONMENT, "development").strip().lower()
    if not key.strip():  # unset, empty or only whitespace (e.g. `COMPLIANCE_HASH_KEY= ` in a .env file)
        if environment == "production":
            raise ConfigError(
                f"{ENV_HASH_KEY} is not set and {ENV_ENVIRONMENT}=production: refusing to run "
                "with the public development key"
            )
        return DEV_HASH_KEY
    if environment == "production" and key == DEV_HASH_KEY:
        raise ConfigError(f"{ENV_HASH_KEY} is the public development key: refusing to run")
    return key


def warn_if_dev_key(key: str, logger: logging.Logger | None = None) -> None:
    if key == DEV_HASH_KEY:
        (logger or log).warning(
            "SECURITY WARNING: %s is not set; subject_key/email_key are computed with the PUBLIC "
            "development key and are NOT pseudonymous. Set %s before processing real data.",
            ENV_HASH_KEY,
            ENV_HASH_KEY,
        )


def setting(name: str, env: Mapping[str, str] = os.environ) -> str:
    """A variable of DEFAULTS: its value, or its default when unset or blank."""
    value = env.get(name, "")
    return value if value.strip() else DEFAULTS[name]


#: Days the Dagster partitions and Prague-time arithmetic can represent (end of D + 1 h must exist).
FIRST_SUPPORTED_DAY, LAST_SUPPORTED_DAY = date(1971, 1, 1), date(9998, 12, 31)


def configured_first_day(env: Mapping[str, str] = os.environ) -> date | None:
    """COMPLIANCE_FIRST_DAY as a date, or None when unset or blank; anything else is a ConfigError."""
    raw = env.get(ENV_FIRST_DAY, "").strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw) if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw) else None
    except ValueError:
        day = None
    if day is None or not FIRST_SUPPORTED_DAY <= day <= LAST_SUPPORTED_DAY:
        raise ConfigError(
            f"{ENV_FIRST_DAY}={_shown(raw)} is not a day (YYYY-MM-DD) "
            f"from {FIRST_SUPPORTED_DAY} to {LAST_SUPPORTED_DAY}"
        )
    return day


def load_settings(env: dict[str, str] | os._Environ = os.environ) -> Settings:
    def get(name: str) -> str:
        return setting(name, env)

    return Settings(
        inbox=Path(get(ENV_INBOX)),
        warehouse=Path(get(ENV_WAREHOUSE)),
        reports=Path(get(ENV_REPORTS)),
        retention_days=parse_retention(get(ENV_RETENTION)),
        hash_key=resolve_hash_key(env),
        environment=_environment(env),
        compaction_delay_days=parse_compaction_delay(get(ENV_COMPACTION_DELAY)),
        duckdb_memory_limit=configured_memory_limit(env),
        automation=automation_enabled(env),
        first_day=configured_first_day(env),
    )
