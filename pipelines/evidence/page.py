"""A subject's file as written: `<reports>/subjects/<first 16 hex of the key>.html` and `.json`.

The page is self-contained and offline like the nightly report, with the same safety: no script,
a Content-Security-Policy that forbids every request, the report's style sheet inlined, and every
value autoescaped after e-mail-shaped text is removed from it (``assets/reports/html.py``). The
JSON holds the same facts: strings from the data with e-mail-shaped text removed, inbox file names
as their safe labels. Both are the same bytes for the same warehouse: no wall-clock time in them.
"""

from __future__ import annotations

import functools
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import jinja2

from assets.reports.csvsafe import redact
from assets.reports.html import css, environment
from assets.reports.publish import write_atomic
from assets.reports.summary import code_version, rules
from pipelines.clock import PRAGUE
from pipelines.evidence.subject import Lookup, NotFound, SubjectFile, as_of_day, gather, resolve
from pipelines.safe_text import file_label

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "subject_file.html.j2"
#: `<reports>/<SUBJECTS_FOLDER>/`: beside the day folders, never inside one (a day's manifest covers its folder).
SUBJECTS_FOLDER = "subjects"


@functools.cache
def _environment() -> jinja2.Environment:
    """The report's environment (its redacting finalize, autoescape, helpers), with this folder's templates first."""
    base = environment()
    return base.overlay(loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(TEMPLATES), base.loader]))


def _value(name: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime):
        return value.astimezone(PRAGUE).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [_value(name, v) for v in value]
    if isinstance(value, dict):
        return {k: _value(k, v) for k, v in value.items()}
    if name == "source_file":
        return file_label(str(value))
    return redact(value)


def as_json(f: SubjectFile) -> dict[str, Any]:
    """The file's facts, keys only, in a stable order."""
    return {
        "subject_key": f.subject_key,
        "as_of": f.as_of.isoformat(),
        "status": f.status,
        "account": _value("account", f.account),
        "consent_history": _value("consent", f.consent),
        "club_intervals": _value("club", f.club),
        "marketing_messages": _value("marketing", f.marketing),
        "violations": _value("violations", f.violations),
        "erasure": _value("erasure", f.tombstone),
        "code_version": code_version(),
    }


def render(f: SubjectFile) -> str:
    """The subject's page."""
    described = {r.id: r.description for r in rules()}
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            css=css(),
            f=f,
            key=f.subject_key,
            day=f.as_of.isoformat(),
            described=described,
            withdrawals=sum(1 for c in f.consent if not c["granted"]),
            version=code_version(),
        )
    )


def write(f: SubjectFile, reports_root: Path) -> tuple[Path, Path]:
    """Write the page and the JSON atomically; returns their paths."""
    folder = reports_root / SUBJECTS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    page, data = folder / f"{f.file_stem}.html", folder / f"{f.file_stem}.json"
    write_atomic(data, (json.dumps(as_json(f), indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    write_atomic(page, render(f).encode("utf-8"))
    return page, data


def publish(
    con: duckdb.DuckDBPyConnection, hash_key: str, lookup: Lookup, reports_root: Path
) -> list[tuple[SubjectFile, Path, Path]]:
    """Find the subject(s) of `lookup` and write each one's file; NotFound when there is none."""
    day = as_of_day(con)
    if day is None:
        raise NotFound("the warehouse holds no processed day yet")
    keys = resolve(con, hash_key, lookup)
    return [(f, *write(f, reports_root)) for f in (gather(con, key, day) for key in keys)]
