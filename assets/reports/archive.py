"""The report archive's tamper-evident chain: every day's MANIFEST.sha256, linked to the day before.

**Format.** `<reports>/<D>/MANIFEST.sha256` is in `sha256sum` format, one line per file the
pipeline wrote in the day's folder, by relative path (`violations.csv`, `remediation/crm.csv`),
sorted. Before them, one more line records the chain:

    <sha256 of the previous day's MANIFEST.sha256 bytes>  ../<previous day>/MANIFEST.sha256

The previous day is the nearest earlier day folder of the reports root that holds a
MANIFEST.sha256 (days that never ran are skipped). The first day of the archive has no such
line: no earlier manifest, no link.

**Why a line and not a separate file.** `sha256sum -c MANIFEST.sha256`, run in the day's folder,
checks the link as it checks the files: the path resolves to the previous day's manifest beside
it. The folder keeps exactly the files CONTRACT 6.2 names plus the manifest, and one file holds
everything a day asserts. (`sha256sum -c --ignore-missing` checks a day copied on its own.) The
price: the link is a line a reader must recognise; `verify_archive` accepts it only in the form
`../YYYY-MM-DD/MANIFEST.sha256`, at most once, naming an earlier day.

**Names.** Paths are written as `sha256sum` writes them: a name holding a backslash, a line feed
or a carriage return is escaped (`\\\\`, `\\n`, `\\r`) and its line starts with a backslash.

**Determinism.** Every hashed file holds the same bytes for the same inputs (the page states the
data's day, not when it was generated), so re-running a day rewrites the same manifest and the
next day's link stays valid; an erasure since the first run changes nothing in them (the
data-quality sample keeps the accounts erased since: checks/core.py, `accounts_frame`). A re-run
whose output differs breaks the next day's link: new code, or changed inputs. So does publishing a
day late, after a later day linked over its absence. `verify-archive` names that next day;
re-running the later days in order (`backfill`) links them again, and the report asset's
`manifest_sha256` in Dagster keeps every manifest each run published.

**What the chain proves.** Changing a file of day D breaks D's manifest; changing D's manifest to
match breaks D+1's link, and so on up to the newest day, whose manifest nothing later covers: its
sha256 is recorded outside the archive (the report asset's Dagster metadata, `manifest_sha256`)
and printed by `verify-archive`, to be compared with that copy.

**Verification** (`verify_day`, `verify_archive`): pure functions over the filesystem. A day
passes when its manifest exists and parses, every listed file exists and matches, every file in
the folder is listed (the pipeline's own hidden temporaries, `.<name>.<random>.tmp`, excepted),
and its link names the nearest earlier day holding a manifest, with that manifest's sha256; with
no earlier manifest there must be no link. A day in the range without a folder was not published:
not a failure by itself, but the next day's link then names a missing manifest if the folder was
deleted, or skips a folder that holds one if the day was published afterwards.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

MANIFEST_FILE = "MANIFEST.sha256"
DAY_NAME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: write_atomic's temporaries (assets/reports/publish.py): `.<name>.<random>.tmp`, removed by the next run.
HIDDEN_TEMPORARY = re.compile(r"\..+\.tmp", re.DOTALL)
_LINK = re.compile(rf"\.\./(?P<day>[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})/{re.escape(MANIFEST_FILE)}")
_LINE = re.compile(rb"(?P<escaped>\\?)(?P<digest>[0-9a-f]{64}) [ *](?P<name>.+)", re.DOTALL)
_ESCAPES = {b"\\": b"\\\\", b"\n": b"\\n", b"\r": b"\\r"}
_UNESCAPE = re.compile(rb"\\(.?)", re.DOTALL)
_UNESCAPES = {b"\\": b"\\", b"n": b"\n", b"r": b"\r"}


class ManifestError(ValueError):
    """A manifest line that is not `<sha256>  <name>`, or a name that is not a path in the folder."""


def link_name(previous: date) -> str:
    """The chain line's path, relative to a day's folder: `../<previous day>/MANIFEST.sha256`."""
    return f"../{previous.isoformat()}/{MANIFEST_FILE}"


def sha256_file(path: Path) -> str:
    """Lowercase hex SHA-256 of a file's bytes, read in chunks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def check_relative(name: str) -> None:
    """Refuse a name that is not a plain relative path inside the day's folder (ManifestError)."""
    parts = name.split("/")
    if not name or "\0" in name or any(part in ("", ".", "..") for part in parts):
        raise ManifestError(f"{name!r} is not a relative path inside the day's folder")


def _line(digest: str, name: str) -> bytes:
    raw = os.fsencode(name)
    escaped = re.sub(rb"[\\\n\r]", lambda m: _ESCAPES[m[0]], raw)
    return (b"\\" if escaped != raw else b"") + digest.encode() + b"  " + escaped + b"\n"


def manifest_bytes(digests: Mapping[str, str], previous: tuple[date, bytes] | None) -> bytes:
    """The day's MANIFEST.sha256: the link to `previous` (its day and manifest bytes), then every file by path."""
    lines = []
    if previous is not None:
        lines.append(_line(hashlib.sha256(previous[1]).hexdigest(), link_name(previous[0])))
    for name in sorted(digests):
        check_relative(name)
        if not re.fullmatch(r"[0-9a-f]{64}", digests[name]):
            raise ManifestError(f"the digest of {name!r} is not a lowercase hex SHA-256")
        lines.append(_line(digests[name], name))
    return b"".join(lines)


def parse_manifest(data: bytes) -> list[tuple[str, str]]:
    """(name, sha256) of every line, in order; a line `sha256sum -c` would not read is a ManifestError."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    entries = []
    for number, line in enumerate(lines, 1):
        match = _LINE.fullmatch(line)
        if match is None:
            raise ManifestError(f"line {number} is not `<sha256>  <file>`")
        name = match["name"]
        if match["escaped"]:
            if not all(m[1] in _UNESCAPES for m in _UNESCAPE.finditer(name)):
                raise ManifestError(f"line {number} holds an unknown escape")
            name = _UNESCAPE.sub(lambda m: _UNESCAPES[m[1]], name)
        entries.append((os.fsdecode(name), match["digest"].decode()))
    return entries


def day_folders(root: Path) -> dict[date, Path]:
    """Every folder of the reports root named as a day (YYYY-MM-DD); other entries are not days."""
    found = {}
    try:
        names = os.listdir(root)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    for name in names:
        if DAY_NAME.fullmatch(name) and (root / name).is_dir():
            try:
                found[date.fromisoformat(name)] = root / name
            except ValueError:  # 2026-02-30: named like a day, but not one
                continue
    return found


def manifest_days(root: Path) -> list[date]:
    """Days whose folder holds a MANIFEST.sha256, in order: the chain's members."""
    return sorted(day for day, folder in day_folders(root).items() if (folder / MANIFEST_FILE).is_file())


def previous_day(days: list[date], day: date) -> date | None:
    """The nearest day of `days` (sorted) before `day`, or None."""
    earlier = [d for d in days if d < day]
    return earlier[-1] if earlier else None


def previous_manifest(root: Path, day: date) -> tuple[date, bytes] | None:
    """The nearest earlier day holding a manifest, and that manifest's bytes (None: `day` starts the chain)."""
    previous = previous_day(manifest_days(root), day)
    if previous is None:
        return None
    return previous, (root / previous.isoformat() / MANIFEST_FILE).read_bytes()


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """What does not match: the day, the file (a relative path, or the link's `../<day>/MANIFEST.sha256`), why."""

    day: date
    name: str
    reason: str


@dataclass(frozen=True)
class DayResult:
    """One day of the range: published or not, its problems (none: it matches), its manifest's sha256."""

    day: date
    published: bool
    problems: tuple[Problem, ...] = ()
    manifest_sha256: str | None = None

    @property
    def ok(self) -> bool:
        """True when the day matches its manifest and its link (a day not published is not ok)."""
        return self.published and not self.problems


def folder_files(folder: Path) -> set[str]:
    """Every file under `folder` as a relative path with `/`, symbolic links included and not
    followed, the pipeline's hidden temporaries left out."""
    found = set()
    for current, dirs, files in os.walk(folder):
        base = Path(current).relative_to(folder)
        links = [d for d in dirs if os.path.islink(os.path.join(current, d))]
        for name in [*files, *links]:
            if not HIDDEN_TEMPORARY.fullmatch(name):
                found.add((base / name).as_posix())
    return found


def _link_problem(root: Path, day: date, links: list[tuple[str, str]], days: list[date]) -> Problem | None:
    """The chain link of `day`'s manifest against the nearest earlier day holding a manifest."""
    expected = previous_day(days, day)
    if not links:
        if expected is None:
            return None
        return Problem(day, link_name(expected), "not linked: the manifest does not record the previous day's manifest")
    if len(links) > 1:
        return Problem(day, links[1][0], "a second link: a manifest links to one earlier day only")
    link, digest = links[0]
    match = _LINK.fullmatch(link)
    try:
        linked = date.fromisoformat(match["day"]) if match else None
    except ValueError:
        linked = None
    if linked is None or linked >= day:
        return Problem(day, link, "not a link to an earlier day's manifest")
    if linked not in days:
        return Problem(day, link, "linked, but that day's manifest is not in the archive")
    if linked != expected:
        return Problem(day, link, f"the link skips {expected}, whose folder holds a manifest")
    try:
        actual = sha256_file(root / linked.isoformat() / MANIFEST_FILE)
    except OSError as exc:
        return Problem(day, link, f"that day's manifest cannot be read ({exc.strerror})")
    if actual != digest:
        return Problem(day, link, "sha256 does not match that day's manifest")
    return None


def verify_day(root: Path, day: date, days: list[date] | None = None) -> DayResult:
    """Check one day's folder against its manifest, and its link against the previous day's manifest."""
    folder = root / day.isoformat()
    if not folder.is_dir():
        return DayResult(day, published=False)
    days = manifest_days(root) if days is None else days
    path = folder / MANIFEST_FILE
    if not path.is_file():
        return DayResult(day, True, (Problem(day, MANIFEST_FILE, "missing: the folder has no manifest"),))
    try:
        data = path.read_bytes()
    except OSError as exc:
        return DayResult(day, True, (Problem(day, MANIFEST_FILE, f"cannot be read ({exc.strerror})"),))
    own = hashlib.sha256(data).hexdigest()
    try:
        entries = parse_manifest(data)
    except ManifestError as exc:
        return DayResult(day, True, (Problem(day, MANIFEST_FILE, str(exc)),), own)

    problems: list[Problem] = []
    links = [(name, digest) for name, digest in entries if name.startswith("../")]
    listed: dict[str, str] = {}
    for name, digest in entries:
        if name.startswith("../"):
            continue
        try:
            check_relative(name)
        except ManifestError:
            problems.append(Problem(day, name, "listed in the manifest, but not a path inside the day's folder"))
            continue
        if name == MANIFEST_FILE or name in listed:
            problems.append(Problem(day, name, "listed twice, or the manifest lists itself"))
            continue
        listed[name] = digest
    for name, digest in listed.items():
        file = folder / name
        if not file.is_file():
            problems.append(Problem(day, name, "listed in the manifest but missing"))
            continue
        try:
            actual = sha256_file(file)
        except OSError as exc:
            problems.append(Problem(day, name, f"cannot be read ({exc.strerror or type(exc).__name__})"))
            continue
        if actual != digest:
            problems.append(Problem(day, name, "sha256 does not match the manifest"))
    for name in sorted(folder_files(folder) - set(listed) - {MANIFEST_FILE}):
        problems.append(Problem(day, name, "in the folder but not in the manifest"))

    problem = _link_problem(root, day, links, days)
    if problem is not None:
        problems.append(problem)
    return DayResult(day, True, tuple(problems), own)


def verify_archive(root: Path, start: date, end: date) -> Iterator[DayResult]:
    """`verify_day` for every day from `start` to `end`, in order (links may reach before `start`)."""
    days = manifest_days(root)
    published = set(day_folders(root))
    day = start
    while day <= end:
        yield verify_day(root, day, days) if day in published else DayResult(day, published=False)
        day += timedelta(days=1)
