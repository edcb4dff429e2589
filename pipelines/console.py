"""The console of the CLI and of its worker processes: warnings and errors only."""

from __future__ import annotations

import logging
import warnings


def quiet_console() -> None:
    """Warnings and errors only on the console, for the CLI and its worker processes alike."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # libraries that lower their own level stay quiet too
        handler.setLevel(logging.WARNING)
    # Dagster's notices about preview/beta APIs are for developers, not for the nightly console.
    warnings.filterwarnings("ignore", message=r".*is currently in (preview|beta)")
