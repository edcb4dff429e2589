"""pipelines.safe_text: hostile names, values and exception texts made safe for logs and metadata."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines import day_run, notify
from pipelines.resources import Warehouse
from pipelines.safe_text import (
    REDACTED,
    RedactedError,
    error_text,
    file_label,
    is_machine_name,
    label,
    path_label,
    redact,
    redacted_exception,
    safe_name,
    system_label,
)

REPO = Path(__file__).resolve().parents[2]

#: Names an inbox may bring: e-mails, names, addresses, markup, other scripts, control characters.
HOSTILE_NAMES = [
    "jan.novak@example.cz.jsonl",
    "Zdeňka.Přibylová@example.cz.jsonl",
    "Květoslav Dvořáček - Na Příkopě 12.jsonl",
    "jan.novak.jsonl",
    "Novak_Jan-2026-10-01.jsonl",
    "novak.jsonl.gz",
    "<img src=x onerror=alert(1)>.jsonl",
    "=cmd|' /C calc'!A0.jsonl",
    "Иван Петров.jsonl",
    "a\nb.jsonl",
    "part 0001.jsonl",
    "bad\\xff.jsonl",
    "",
    ".",
    "x" * 200 + "0.jsonl",
    "Ctibor.Vondráček@example.cz",
    "Libuše Nováčková, Karlova 5",
    "legacy crm",
    "Jana",
]
MACHINE_NAMES = [
    "part-0000.jsonl",
    "part-9999.jsonl.gz",
    "2026-10-01",
    "2026-10-01.csv",
    "1572540315117.04d5dc9d-4e8c-4bb5-91c5-8aa6a7c8f8e3.gz",
    "crm",
    "marketing_list",
    "club_roster",
    "warehouse",
    "inbox",
    "events",
]


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("COMPLIANCE_HASH_KEY", "safe-text-test-key")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_name_that_is_not_machine_made_becomes_a_keyed_label(name):
    assert not is_machine_name(name)
    shown = file_label(name)
    assert shown.startswith("file#") and len(shown) == len("file#") + 8
    assert int(shown[5:], 16) >= 0  # hex
    expected = hmac.new(b"safe-text-test-key", b"label\0" + name.encode(), hashlib.sha256).hexdigest()[:8]
    assert shown == f"file#{expected}"
    assert system_label(name) == f"system#{expected}"  # the same digest, whatever the kind


@pytest.mark.parametrize("name", MACHINE_NAMES)
def test_a_machine_made_name_is_shown_as_it_is(name):
    assert file_label(name) == system_label(name) == label(name) == name


def test_labels_are_stable_keyed_and_distinct(monkeypatch):
    a, b = "jan.novak@example.cz.jsonl", "eva.novakova@example.cz.jsonl"
    assert file_label(a) == file_label(a) and file_label(a) != file_label(b)
    assert file_label(Path("/inbox/events/2026-10-01") / a) == file_label(a)  # the name, not the folder
    keyed = file_label(a)
    monkeypatch.setenv("COMPLIANCE_HASH_KEY", "another-key")
    assert file_label(a) != keyed  # without the key, a label cannot be checked against a guess
    monkeypatch.delenv("COMPLIANCE_HASH_KEY")
    monkeypatch.setenv("COMPLIANCE_ENV", "production")  # refused by the run; a label never raises
    assert file_label(a).startswith("file#")


def test_path_label_labels_each_part():
    shown = path_label("snapshots/Ctibor.Vondráček@example.cz/2026-10-01.csv")
    assert shown.startswith("snapshots/name#") and shown.endswith("/2026-10-01.csv")
    assert "Ctibor" not in shown and "@" not in shown
    assert path_label("events/2026-10-01") == "events/2026-10-01"


def test_safe_name_is_the_one_of_the_alerts():
    assert notify.safe_name is safe_name and notify.REDACTED == REDACTED
    assert safe_name("compliance/violations:rules_evaluated") == "compliance/violations:rules_evaluated"
    assert safe_name("boom: jana.novakova@example.cz") == REDACTED


def test_redact_is_the_one_of_the_cli():
    assert day_run.redact is redact
    line = "Conversion Error: Could not convert string 'Jan Novák' to INT32; got \"x\" from jan@example.cz"
    assert redact(line) == "Conversion Error: Could not convert string '…' to INT32; got '…' from <e-mail>"
    assert error_text(OSError(13, "Permission denied", "/inbox/jan@example.cz.jsonl")) == (
        "PermissionError: [Errno 13] Permission denied: '…'"
    )


def test_redacted_exception_keeps_the_class_and_drops_values_and_causes():
    try:
        try:
            raise ValueError("jan@example.cz")
        except ValueError:
            raise FileNotFoundError(2, "No such file", "/inbox/events/2026-10-01/Jana Nováková.jsonl") from None
    except FileNotFoundError as exc:
        clean = redacted_exception(exc)
    assert type(clean) is FileNotFoundError and str(clean) == "[Errno 2] No such file: '…'"
    assert clean.__traceback__ is not None
    odd = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "Jana Nováková")  # cannot be rebuilt from a text
    assert isinstance(redacted_exception(odd), RedactedError)
    plain = RuntimeError("compaction aborted")
    assert redacted_exception(plain) is plain
    failure = dg.Failure("a dagster failure")
    assert redacted_exception(failure) is failure


def test_a_step_failure_in_the_event_log_quotes_no_value(env):
    """An exception raised while a warehouse connection is open is stored in the event log redacted."""
    hostile = "/inbox/events/2026-10-01/Zdeňka.Přibylová@example.cz.jsonl"

    @dg.asset
    def fails(warehouse: Warehouse):
        with warehouse.get_connection() as con:
            con.execute("SELECT 1")
            try:
                con.execute("SELECT CAST(? AS INTEGER)", ["Květoslav Dvořáček"]).fetchall()
            except duckdb.Error:
                raise PermissionError(13, "Permission denied", hostile) from None

    result = dg.materialize(
        [fails], resources={"warehouse": env.resources()["warehouse"]}, instance=env.instance, raise_on_error=False
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    text = repr(failure.event_specific_data.error)
    assert "PermissionError" in text and "Permission denied" in text
    for value in ("Zdeňka", "Přibylová", "example.cz", "Květoslav", "Dvořáček"):
        assert value not in text


def test_an_unreadable_file_is_logged_by_its_label(env, caplog):
    from assets.landing.ingest import ingest_day

    day = "2026-10-01"
    env.write_events(day, "part-0000.jsonl", [])
    folder = env.inbox / "events" / day
    (folder / "Bořivoj.Šimůnek@example.cz.jsonl.gz").write_bytes(b"not gzip")
    with caplog.at_level(logging.WARNING), env.connect() as con:
        ingest_day(con, env.inbox, date.fromisoformat(day))
    text = caplog.text
    assert file_label("Bořivoj.Šimůnek@example.cz.jsonl.gz") in text and "cannot be read" in text
    assert "Šimůnek" not in text and "@" not in text


def test_the_command_line_lists_labels_beside_names(tmp_path):
    for name in ("part-0000.jsonl", "jan.novak@example.cz.jsonl"):
        (tmp_path / name).write_text("")
    env = {**os.environ, "COMPLIANCE_HASH_KEY": "safe-text-test-key", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.safe_text", str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"{file_label('jan.novak@example.cz.jsonl')}\tjan.novak@example.cz.jsonl" in lines
    assert "part-0000.jsonl\tpart-0000.jsonl" in lines
