"""Hostile text made safe for logs, Dagster metadata, the CLI, alerts and the report.

Every name the inbox brings (an event file's name, a folder's name, an export system's name,
``<inbox>/snapshots/<system>/``), every data value and every exception text is hostile when it is
logged or shown: a file may be called ``jan.novak@example.cz.jsonl`` or ``Jana Nováková, Dlouhá 7.jsonl``.
None of that may reach Python logging, ``context.log``, Dagster metadata or exception messages (all
of which end up under DAGSTER_HOME: event log, compute logs), the CLI's output, the alerts or the
report files. The warehouse keeps the real names (``landing.files.source_file``,
``landing.rejected.source_file``, ``landing.export_files.system``): it legitimately holds personal
data until erasure.

* `label(name, kind)`, `file_label(name)`, `system_label(name)`, `path_label(path)`: a name from the
  inbox. It is shown as it is when it looks machine-made (ASCII letters, digits, ``.``, ``_`` and
  ``-`` only, and every word of it a known word or a hexadecimal number with a digit in it:
  ``part-0001.jsonl.gz``, ``2026-10-01``, ``1572540315117.04d5dc9d-4e8c.gz``, ``crm``,
  ``marketing_list``). Anything else becomes a stable label, ``file#3f2a9c1b``: the first 8 hex digits
  of HMAC-SHA256(COMPLIANCE_HASH_KEY, name). The same name has the same label in every run and every
  log, whatever its kind; without the key, a label cannot be checked against a guessed address.
  To find a file from its label: ``python -m pipelines.safe_text <inbox>/events/<day>`` lists the
  labels of that folder's entries (the arrival day is always logged beside a file's label).
* `system_file_name(system)`: the name of a file the report writes for one export system
  (``remediation/<file>``): ``<system>.csv`` when the system's name is a plain file name, else
  ``system-<16 hex>.csv``, keyed like its label (see the function). `safe_path(path)` shows a
  relative path the report wrote (in an alert) only when every part of it is such a name.
* `safe_name(value)`: identifiers the code makes (step keys, check names, rule ids, run ids, class
  names): the value when it is a plain identifier, else ``[redacted]``.
* `redact(text)`: free text for one console or log line (exception messages): quoted values and
  anything e-mail-like are masked. `error_text(exc)` is ``ClassName: <redacted message>``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import sys
from pathlib import PurePath
from typing import Any

REDACTED = "[redacted]"

# Plain identifiers only: step keys, check names, rule ids, asset keys, job names, run ids, class
# names. No "@", no spaces, no quotes: nothing that could carry an e-mail, a name or an address.
_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/\[\]-]{0,119}")

_MACHINE_NAME = re.compile(r"[A-Za-z0-9._-]{1,120}")
_WORD_SEPARATORS = re.compile(r"[._-]+")
_HEX_WITH_DIGIT = re.compile(r"[0-9a-fA-F]*[0-9][0-9a-fA-F]*")
#: Words a machine-made inbox name may hold besides numbers: file types, the usual parts of an
#: exporter's file names, the systems of CONTRACT 2.2, the residual locations of CONTRACT 5 and the
#: report's own folder names (``remediation``).
KNOWN_WORDS = frozenset(
    {
        "batch",
        "club",
        "crm",
        "csv",
        "event",
        "events",
        "export",
        "exports",
        "gz",
        "inbox",
        "json",
        "jsonl",
        "list",
        "marketing",
        "part",
        "remediation",
        "roster",
        "rudderstack",
        "segment",
        "snapshots",
        "track",
        "warehouse",
    }
)
LABEL_DIGITS = 8

_EMAIL_LIKE = re.compile(r"[^\s@'\"<>()\[\]{},;:]+@[^\s@'\"<>()\[\]{},;:]+")
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")


def safe_name(value: Any) -> str:
    """`value` if it is a plain identifier, else the fixed text `[redacted]`."""
    text = str(value)
    return text if _SAFE.fullmatch(text) else REDACTED


def is_machine_name(name: str) -> bool:
    """True when `name` looks machine-made: no word of it can be a person's name or address."""
    if not _MACHINE_NAME.fullmatch(name):
        return False
    words = [w for w in _WORD_SEPARATORS.split(name) if w]
    return bool(words) and all(w.lower() in KNOWN_WORDS or _HEX_WITH_DIGIT.fullmatch(w) for w in words)


def _key() -> bytes:
    from pipelines import config

    try:
        return config.resolve_hash_key(os.environ).encode()
    except config.ConfigError:  # production without a key: the run itself refuses to start
        return config.DEV_HASH_KEY.encode()


def digest(name: str, digits: int = LABEL_DIGITS) -> str:
    """The label's digest of `name`: keyed, short, the same for the same name in every run. More
    `digits` give a longer prefix of the same HMAC (so it starts with the label's digest)."""
    data = name.encode("utf-8", "surrogateescape")
    return hmac.new(_key(), b"label\0" + data, hashlib.sha256).hexdigest()[:digits]


def label(name: Any, kind: str = "name") -> str:
    """`name` when it looks machine-made, else `<kind>#<digest>` (e.g. `file#3f2a9c1b`)."""
    text = str(name)
    return text if is_machine_name(text) else f"{kind}#{digest(text)}"


def file_label(name: str | PurePath) -> str:
    """An inbox file for logs and metadata: its name (the last part of a path) or `file#<digest>`."""
    return label(name.name if isinstance(name, PurePath) else name, "file")


def system_label(name: str) -> str:
    """An export system (`<inbox>/snapshots/<system>/`) or residual location, or `system#<digest>`."""
    return label(name, "system")


def path_label(path: str | PurePath) -> str:
    """A path relative to the inbox, each part shown or labelled: `snapshots/name#9c1b3f2a/2026-10-01.csv`."""
    return "/".join(label(part) for part in PurePath(path).parts)


#: Hex digits of a keyed file name (64 bits: two systems of one report never share a file).
FILE_DIGITS = 16
_SYSTEM_FILE_FALLBACK = re.compile(rf"system-[0-9a-f]{{{FILE_DIGITS}}}\.csv")
_PLAIN_FILE_START = re.compile(r"[a-z0-9]")


def is_plain_file_name(name: str) -> bool:
    """True when `name` can be a file name as it is: machine-made (`is_machine_name`: ASCII letters,
    digits, ``.``, ``_``, ``-``, at most 120 characters, every word a known word or a number),
    lower-case (a file system that ignores case would merge ``CRM`` and ``crm``), and starting with
    a letter or a digit (no hidden ``.name``, no ``-name`` a command would take for an option)."""
    return bool(_PLAIN_FILE_START.match(name)) and name == name.lower() and is_machine_name(name)


def system_file_name(system: str) -> str:
    """The file name of an export system's file in the report (``remediation/<file name>``).

    ``<system>.csv`` when `is_plain_file_name(system)` (``crm.csv``, ``marketing_list.csv``); for
    any other name (spaces, other scripts, upper case, a leading ``=``, ``-`` or ``.``, ``..``, a
    line break, a name too long) ``system-<h>.csv``, where ``<h>`` is the first 16 hex digits of
    the keyed HMAC that gives the system's label: ``system#3f2a9c1b`` in the logs is the file
    ``system-3f2a9c1b….csv``. The same name gets the same file every night. ``system`` is not a
    known word, so a plain name never takes the form of a keyed one. At most 124 bytes.
    """
    if is_plain_file_name(system):
        return f"{system}.csv"
    return f"system-{digest(system, FILE_DIGITS)}.csv"


def is_system_file_name(name: str) -> bool:
    """True when `name` is a name `system_file_name` can return."""
    return bool(_SYSTEM_FILE_FALLBACK.fullmatch(name)) or (name.endswith(".csv") and is_plain_file_name(name))


def safe_path(path: Any) -> str:
    """A path the report wrote, relative to its day folder (``remediation/crm.csv``), for an alert:
    shown when every part is a plain file name or a keyed system file name, else `[redacted]`."""
    parts = str(path).split("/")
    shown = len(parts) <= 4 and all(is_plain_file_name(p) or is_system_file_name(p) for p in parts)
    return str(path) if shown else REDACTED


def redact(text: str, limit: int = 200) -> str:
    """One line safe for the console and the logs: quoted values and anything e-mail-like are masked."""
    text = _QUOTED.sub("'…'", text)
    text = _EMAIL_LIKE.sub("<e-mail>", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_text(exc: BaseException, limit: int = 500) -> str:
    """`ClassName: message` of an exception, the message redacted (file names, values, addresses)."""
    return redact(f"{type(exc).__name__}: {exc}", limit)


class RedactedError(Exception):
    """An exception whose message was redacted (see `redacted_exception`), when its class could not
    be rebuilt with the redacted message."""


def redacted_exception(exc: Exception) -> Exception:
    """`exc` again, of the same class where possible, with its message redacted and no cause: raise it
    ``from None`` with ``exc``'s traceback, so that the Dagster event log (which records the message
    and every chained cause) holds no file name or value that `exc` quoted. Dagster's own exceptions
    (control flow, its own messages) are returned as they are."""
    if type(exc).__module__.split(".")[0] in ("dagster", "dagster_shared"):
        return exc
    text = redact(str(exc), 500)
    if text == str(exc) and exc.__cause__ is None and exc.__context__ is None:
        return exc
    try:
        clean = type(exc)(text)
        if str(clean) != text:
            raise TypeError
    except Exception:
        clean = RedactedError(error_text(exc))
    return clean.with_traceback(exc.__traceback__)


def _main(argv: list[str]) -> int:
    """`python -m pipelines.safe_text FOLDER...`: each entry's label beside its real name."""
    if not argv:
        print("usage: python -m pipelines.safe_text FOLDER...  (lists each entry's label and name)", file=sys.stderr)
        return 2
    for folder in argv:
        for name in sorted(os.listdir(folder)):
            # as ingestion names it: a name that is not UTF-8 keeps its bytes as \xNN
            name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            print(f"{label(name, 'file')}\t{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
