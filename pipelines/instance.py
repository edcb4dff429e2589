"""The Dagster instance folder ($DAGSTER_HOME): created with this project's instance settings
(pipelines/dagster.yaml: the run queue and the `warehouse` pool limit) before anything starts Dagster.

`make ui` and `python -m pipelines prepare-instance` call `prepare_dagster_home`; so do the CLI's
`nightly` and `backfill`. Dagster itself refuses to start when $DAGSTER_HOME is set to a folder that
does not exist, and uses a throw-away instance without these settings when it is not set at all:
`instance_hint` says what to do then (the definitions log it when `dg dev` loads them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipelines.config import DEFAULT_DAGSTER_HOME, ENV_DAGSTER_HOME, ConfigError

SETTINGS_FILE = Path(__file__).resolve().parent / "dagster.yaml"
PREPARE_COMMAND = "python -m pipelines prepare-instance"


def dagster_home(env: dict[str, str] | os._Environ = os.environ) -> Path:
    """$DAGSTER_HOME as an absolute path (Dagster requires one), default `.dagster_home`."""
    raw = env.get(ENV_DAGSTER_HOME, "")
    return Path(raw.strip() or DEFAULT_DAGSTER_HOME).expanduser().resolve()


def prepare_dagster_home(env: dict[str, str] | os._Environ = os.environ) -> Path:
    """Create $DAGSTER_HOME if missing and put pipelines/dagster.yaml in it if it has no
    dagster.yaml (an existing one is never changed). Sets $DAGSTER_HOME in `env` to the absolute
    path. A folder that cannot be used is one ConfigError line."""
    home = dagster_home(env)
    env[ENV_DAGSTER_HOME] = str(home)
    try:
        home.mkdir(parents=True, exist_ok=True)
        target = home / "dagster.yaml"
        if not target.exists():  # atomically: another process may be reading it already
            partial = home / f".dagster.yaml.{os.getpid()}.tmp"
            shutil.copyfile(SETTINGS_FILE, partial)
            os.replace(partial, target)
    except OSError as exc:
        raise ConfigError(
            f"{ENV_DAGSTER_HOME} {home} cannot be used: {exc.strerror or exc}; "
            f"point {ENV_DAGSTER_HOME} at a folder you can write to"
        ) from None
    return home


def instance_hint(env: dict[str, str] | os._Environ = os.environ) -> str | None:
    """One line saying what to do when `dg dev` (or `dagster dev`) serves the definitions on an
    instance without this project's settings; None when the instance is prepared (or outside
    `dg dev`: the CLI prepares its instance itself)."""
    if env.get("DAGSTER_IS_DEV_CLI") != "1":
        return None
    if not env.get(ENV_DAGSTER_HOME, "").strip():
        return (
            f"{ENV_DAGSTER_HOME} is not set: Dagster uses a temporary instance without this project's run "
            f"queue and warehouse pool, and forgets it on exit. Start the UI with `make ui` instead "
            f"(or export {ENV_DAGSTER_HOME}=$PWD/{DEFAULT_DAGSTER_HOME} and run `{PREPARE_COMMAND}` first)"
        )
    if not (dagster_home(env) / "dagster.yaml").is_file():
        return (
            f"{ENV_DAGSTER_HOME} {dagster_home(env)} has no dagster.yaml: the instance runs without this "
            f"project's run queue and warehouse pool. Run `{PREPARE_COMMAND}` and restart"
        )
    return None
