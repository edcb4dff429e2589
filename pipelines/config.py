"""Runtime settings from the environment (CONTRACT section 1), with their defaults."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
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
#: Nights a purge may wait for the byte-level compaction (0: the same night). Compaction copies
#: the whole warehouse, so it is batched: erased values are gone from the tables the night of
#: the purge, and from the file's free blocks within this many nights (docs/scaling.md).
ENV_COMPACTION_DELAY = "COMPLIANCE_COMPACTION_DELAY_DAYS"
#: Set by the CLI before the Definitions are imported, when it is asked for days outside the default
#: partition window (the partitions end with yesterday); read by pipelines.partitions at import.
ENV_FIRST_PARTITION = "COMPLIANCE_FIRST_PARTITION"
ENV_LAST_PARTITION = "COMPLIANCE_LAST_PARTITION"

DEFAULTS = {
    ENV_INBOX: "data/inbox",
    ENV_WAREHOUSE: "data/warehouse.duckdb",
    ENV_REPORTS: "data/reports",
    ENV_RETENTION: "28",
    ENV_COMPACTION_DELAY: "6",
}


class ConfigError(Exception):
    """A configuration problem, reported to the user as one clear line."""


@dataclass(frozen=True)
class Settings:
    inbox: Path
    warehouse: Path
    reports: Path
    retention_days: int
    hash_key: str = field(repr=False)
    environment: str = "development"
    compaction_delay_days: int = 6

    @property
    def using_dev_key(self) -> bool:
        return self.hash_key == DEV_HASH_KEY


def parse_retention(raw: str) -> int:
    try:
        days = int(raw)
    except ValueError:
        raise ConfigError(f"{ENV_RETENTION} must be a whole number of days, got {raw!r}") from None
    if days < 1:
        raise ConfigError(f"{ENV_RETENTION} must be at least 1, got {days}")
    return days


def parse_compaction_delay(raw: str) -> int:
    try:
        days = int(raw)
    except ValueError:
        raise ConfigError(f"{ENV_COMPACTION_DELAY} must be a whole number of days, got {raw!r}") from None
    if not 0 <= days <= 27:
        raise ConfigError(f"{ENV_COMPACTION_DELAY} must be between 0 and 27 days (within the erasure SLA), got {days}")
    return days


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


def load_settings(env: dict[str, str] | os._Environ = os.environ) -> Settings:
    def get(name: str) -> str:
        value = env.get(name, "")
        return value if value.strip() else DEFAULTS[name]

    return Settings(
        inbox=Path(get(ENV_INBOX)),
        warehouse=Path(get(ENV_WAREHOUSE)),
        reports=Path(get(ENV_REPORTS)),
        retention_days=parse_retention(get(ENV_RETENTION)),
        hash_key=resolve_hash_key(env),
        environment=env.get(ENV_ENVIRONMENT, "development").strip().lower() or "development",
        compaction_delay_days=parse_compaction_delay(get(ENV_COMPACTION_DELAY)),
    )
