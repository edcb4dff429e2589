"""Redaction of the retained inbox files in place, the night of an erasure (CONTRACT 5).

"Same-night erasure of every copy the pipeline holds": after the night of a deletion, no retained
event file holds an identifier of the erased subject, every line stays (other subjects' lines as
they were, a token of the subject replaced where it stands), and what was changed is recorded as
keys and counts. "Re-runs": a redacted file re-read gives the same day figures, a re-run changes no
file of a later date, and an e-mail a live account holds now is never the erased subject's. A
rewrite is atomic: a kill at any point leaves the old file or the new one, and the next run
finishes or discards what it left (assets/landing/inbox_files.py).
"""

from __future__ import annotations

import gzip
import json
import os
import uuid
from datetime import date
from pathlib import Path

import pytest

import assets.landing.inbox_files as inbox_files
from assets.landing.ingest import ingest_day
from assets.purge.inbox_redaction import RedactionResult, account_replacement, email_replacement
from assets.purge.inbox_scan import scan_inbox
from assets.purge.line_redaction import ERASED_LINE
from tests.helpers import (
    Env,
    created,
    deleted,
    email_changed,
    event,
    grant,
    night,
    register,
    run_job,
    unique,
)

DAY1, DAY2, DAY3 = "2026-11-02", "2026-11-03", "2026-11-04"
BOM = b"\xef\xbb\xbf"


def mail(prefix: str = "zq") -> str:
    return f"{prefix}{uuid.uuid4().hex}@example.cz"


def content(path: Path) -> bytes:
    """A retained event file's lines as bytes: a .gz file decompressed."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def event_files(env: Env) -> dict[str, bytes]:
    """Every retained event file under <inbox>/events/ (decompressed), by its relative path."""
    root = env.inbox / "events"
    return {str(p.relative_to(root)): content(p) for p in sorted(root.rglob("*")) if p.is_file()}


def found(files: dict[str, bytes], needles: list[str]) -> list[tuple[str, str]]:
    """(file, needle) for every needle whose bytes, in any case, are in a file."""
    return [(name, n) for name, data in files.items() for n in needles if n.lower().encode() in data.lower()]


def stats(env: Env, folder: str) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted((env.inbox / "events" / folder).iterdir())}


def no_redaction(*_args, **_kw) -> RedactionResult:
    return RedactionResult()


class SimulatedKill(BaseException):
    """Stands for a SIGKILL at one point of a rewrite: nothing after it runs."""


# ---------------------------------------------------------------------------------------------
# The night of a deletion, through the Dagster job
# ---------------------------------------------------------------------------------------------


def test_the_night_of_a_deletion_redacts_every_identifier_from_every_retained_file(env):
    erased, live = unique("acc_"), unique("acc_")
    first_mail, second_mail, live_mail = f"Zq{uuid.uuid4().hex}@Example.CZ", mail(), mail("live")
    first_name, last_name, street, city = unique("Zbyn"), unique("Vrb"), unique("Ulice "), unique("Zorb")
    needles = [erased, first_mail, second_mail, first_name, last_name, street, city]
    # another account's note names the erased id and its first e-mail, lowercased
    note = f"Ticket about {erased} (from {first_mail.lower()})."
    rejected_other = '{"messageId": "r-1", "note": "customer ' + erased + ' called", broken'
    rejected_own = '{"messageId": "r-2", "userId": "' + erased + '", "properties": {"first_name": "' + first_name
    plain = env.write_events(
        DAY1,
        "part-0000.jsonl",
        [
            created(erased, f"{DAY1}T09:00:00+01:00", first_mail, first_name=first_name, last_name=last_name),
            created(live, f"{DAY1}T09:10:00+01:00", live_mail, first_name="Eva"),
            event("Signed In", live, f"{DAY1}T11:00:00+01:00", properties={"note": note}),
            rejected_other,
            rejected_own,
            grant(live, f"{DAY1}T12:00:00+01:00"),
        ],
    )
    gz = env.write_events(
        DAY1,
        "part-0001.jsonl.gz",
        [
            email_changed(erased, f"{DAY1}T10:00:00+01:00", second_mail, first_mail),
            event(
                "Address Changed",
                erased,
                f"{DAY1}T11:00:00+01:00",
                properties={"street": street, "city": city, "postal_code": "999 01", "country": "CZ"},
            ),
            event("Signed In", live, f"{DAY1}T13:00:00+01:00"),
        ],
        gz=True,
    )
    own_line, live_line = (
        json.dumps(event("Signed In", acc, f"{DAY1}T14:00:00+01:00")).encode() for acc in (erased, live)
    )
    crlf = env.inbox / "events" / DAY1 / "part-0002.jsonl"
    crlf.write_bytes(own_line + b"\r\n" + live_line + b"\r\n")
    bom = env.inbox / "events" / DAY1 / "part-0003.jsonl"
    bom.write_bytes(BOM + own_line + b"\n" + live_line + b"\n")
    env.write_events(DAY2, "part-0000.jsonl", [deleted(erased, f"{DAY2}T10:00:00+01:00")])

    run_job(env, DAY1)
    before = event_files(env)
    # the bytes are there before the night of the deletion (the test can fail)
    assert {n for _, n in found(before, needles)} == set(needles)
    assert first_mail.encode() in before[f"{DAY1}/part-0000.jsonl"]
    assert first_mail.lower().encode() in before[f"{DAY1}/part-0000.jsonl"]
    assert second_mail.encode() in before[f"{DAY1}/part-0001.jsonl.gz"]

    result = run_job(env, DAY2)

    after = event_files(env)
    assert found(after, needles) == []
    assert after.keys() == before.keys()
    subject = env.subject_key(erased)
    id_after = account_replacement(subject).encode()
    mail_after = email_replacement(env.email_key(first_mail)).encode()
    for name, data in before.items():
        old, new = data.split(b"\n"), after[name].split(b"\n")
        assert len(new) == len(old), name  # every file keeps its line count
        for a, b in zip(old, new, strict=True):
            if not [n for n in needles if n.lower().encode() in a.lower()]:
                assert b == a, name  # lines that do not mention the subject are byte-identical
    old_lines, new_lines = before[f"{DAY1}/part-0000.jsonl"].split(b"\n"), after[f"{DAY1}/part-0000.jsonl"].split(b"\n")
    # another account's free text: just the tokens replaced, every other byte kept
    assert new_lines[2] == old_lines[2].replace(erased.encode(), id_after).replace(
        first_mail.lower().encode(), mail_after
    )
    # a rejected line that is not JSON: the id replaced where it stands
    assert new_lines[3] == rejected_other.replace(erased, id_after.decode()).encode()
    # the erased subject's own broken line: its name cannot be told apart, so the line goes whole
    assert new_lines[4] == ERASED_LINE.encode()
    # the subject's own lines stay lines of the same events, keyed by its subject_key
    own = json.loads(new_lines[0])
    assert (own["userId"], own["event"], own["properties"]) == (
        account_replacement(subject),
        "Account Created",
        {"email": mail_after.decode(), "first_name": "[erased]", "last_name": "[erased]"},
    )
    changed = json.loads(after[f"{DAY1}/part-0001.jsonl.gz"].split(b"\n")[0])
    assert changed["properties"] == {
        "email": email_replacement(env.email_key(second_mail)),
        "previous_email": mail_after.decode(),
    }
    assert gz.read_bytes()[:2] == b"\x1f\x8b"  # still a gzip file
    # a CRLF file keeps its CRLF, a file starting with a BOM keeps it
    assert crlf.read_bytes() == own_line.replace(erased.encode(), id_after) + b"\r\n" + live_line + b"\r\n"
    assert bom.read_bytes() == BOM + own_line.replace(erased.encode(), id_after) + b"\n" + live_line + b"\n"
    assert plain.read_bytes() == after[f"{DAY1}/part-0000.jsonl"]
    assert not [p for p in (env.inbox / "events").rglob("*") if p.name.endswith(".redact")]
    # the night verifies it: nothing left anywhere, and the ERROR check passed
    assert register(env)[subject][:4] == ("verified", date(2026, 12, 3), None, date(2026, 11, 3))
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["erased_subjects_redacted_from_inbox"] is True
    [purge] = result.asset_materializations_for_node("purge__purge_log")
    assert purge.metadata["inbox_files_redacted"].value == 5  # DAY1's four files and DAY2's
    assert purge.metadata["inbox_lines_replaced_whole"].value == 1


def test_the_error_check_fails_when_the_inbox_cannot_be_redacted(env, monkeypatch):
    """The verifier still reads the retained files: with the redaction prevented, the subject is
    `inbox` and the ERROR check fails; a downstream finding it is not."""
    monkeypatch.setattr("assets.purge.assets.redact_inbox", no_redaction)
    account = unique("acc_")
    path = env.write_events(
        DAY1,
        "part-0000.jsonl",
        [created(account, f"{DAY1}T09:00:00+01:00", mail()), deleted(account, f"{DAY1}T18:00:00+01:00")],
    )

    result = env.run(DAY1)

    assert account.encode() in path.read_bytes()
    assert register(env)[env.subject_key(account)][:3] == ("pending", date(2026, 12, 2), "inbox")
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["erased_subjects_redacted_from_inbox"] is False
    assert checks["erased_subjects_clean_downstream"] is True  # the inbox is not a downstream system
    assert env.query(
        "SELECT passed, failed FROM ops.check_results WHERE check_name = 'erased_subjects_redacted_from_inbox'"
    ) == [(False, 1)]


# ---------------------------------------------------------------------------------------------
# An e-mail a live account holds now
# ---------------------------------------------------------------------------------------------


def test_an_email_a_live_account_reregistered_with_is_kept_in_its_lines(env):
    """CONTRACT 5: an e-mail is the erased subject's identifier only while no live account holds it."""
    erased, live, address = unique("acc_"), unique("acc_"), mail()
    env.write_events(
        DAY1,
        "part-0000.jsonl",
        [created(erased, f"{DAY1}T09:00:00+01:00", address), deleted(erased, f"{DAY1}T18:00:00+01:00")],
    )
    later = env.write_events(
        DAY2,
        "part-0000.jsonl",
        [
            created(live, f"{DAY2}T09:00:00+01:00", address),
            event("Signed In", live, f"{DAY2}T10:00:00+01:00", properties={"note": f"login as {address}"}),
        ],
    )
    registered = later.read_bytes()

    night(env, DAY1)  # the address is the erased subject's that night: gone from its own line
    assert address.encode() not in (env.inbox / "events" / DAY1 / "part-0000.jsonl").read_bytes()
    night(env, DAY2)

    assert later.read_bytes() == registered
    night(env, DAY1)  # re-runs of either day, now that the live account holds it
    night(env, DAY2)
    assert later.read_bytes() == registered
    assert env.query("SELECT count(*) FROM ops.inbox_redactions WHERE path LIKE ?", [f"{DAY2}/%"]) == [(0,)]


def test_an_email_the_erased_subject_left_for_a_live_account_is_kept_in_the_same_folder(env):
    """Boundary: the e-mail changed away before the deletion and another account took it the same
    day, in the same file: the live account's lines keep it; the subject's later e-mail and its id go."""
    erased, live, taken, later_mail = unique("acc_"), unique("acc_"), mail(), mail()
    lines = [
        created(erased, f"{DAY1}T09:00:00+01:00", taken),
        email_changed(erased, f"{DAY1}T10:00:00+01:00", later_mail, taken),
        created(live, f"{DAY1}T11:00:00+01:00", taken),
        event("Signed In", live, f"{DAY1}T12:00:00+01:00", properties={"note": f"{taken} asked"}),
        deleted(erased, f"{DAY1}T18:00:00+01:00"),
    ]
    path = env.write_events(DAY1, "part-0000.jsonl", lines)
    original = path.read_bytes().split(b"\n")

    night(env, DAY1)

    redacted = path.read_bytes().split(b"\n")
    assert redacted[2:4] == original[2:4]  # the live account's lines, byte for byte
    data = path.read_bytes()
    assert erased.encode() not in data and later_mail.encode() not in data
    assert register(env)[env.subject_key(erased)][:3] == ("verified", date(2026, 12, 2), None)


# ---------------------------------------------------------------------------------------------
# Re-runs and re-ingestion of redacted files
# ---------------------------------------------------------------------------------------------

FILE_FIGURES = """SELECT arrival_date, source_file, received, accepted, duplicates, rejected, readable
                  FROM landing.files ORDER BY ALL"""


def summary_quality(env: Env, day: str) -> dict:
    return json.loads((env.reports / day / "summary.json").read_text())["quality"]


def test_a_redacted_day_gives_the_same_figures_on_a_rerun_and_in_a_fresh_warehouse(env, tmp_path):
    erased, live = unique("acc_"), unique("acc_")
    long_mail = f"{'a' * 40}{uuid.uuid4().hex[:8]}@example.cz"  # longer than its replacement
    dup = f"dup-{erased}"
    lines = [
        created(erased, f"{DAY1}T09:00:00+01:00", long_mail, first_name="Zbynek"),
        created(live, f"{DAY1}T09:10:00+01:00", mail("live")),
        # a messageId naming the subject, twice: the second copy is a duplicate, and stays one
        event("Signed In", erased, f"{DAY1}T10:00:00+01:00", message_id=dup),
        event("Signed In", erased, f"{DAY1}T10:05:00+01:00", message_id=dup),
        # a messageId of exactly 100 characters naming the id: accepted, and must stay so
        event("Signed In", live, f"{DAY1}T10:10:00+01:00", message_id=f"{'m' * (99 - len(erased))}-{erased}"),
        event("Signed In", erased, f"{DAY1}T10:30:00+01:00", channel="fax"),  # rejected: unknown channel
        '{"messageId": "r-1", "userId": "' + erased + '", broken',
    ]
    env.write_events(DAY1, "part-0000.jsonl", lines)
    too_long = f"{'x' * (109 - len(long_mail))}:{long_mail}"
    env.write_events(
        DAY1,
        "part-0001.jsonl.gz",
        [
            event("Signed In", live, f"{DAY1}T11:00:00+01:00", message_id=dup),
            # a messageId of 110 characters naming the long e-mail: rejected, and must stay so
            event("Signed In", live, f"{DAY1}T11:10:00+01:00", message_id=too_long),
        ],
        gz=True,
    )
    env.write_events(
        DAY2,
        "part-0000.jsonl",
        [event("Signed In", erased, f"{DAY2}T09:00:00+01:00"), deleted(erased, f"{DAY2}T10:00:00+01:00")],
    )
    run_job(env, DAY1)
    first_ingestion = env.query(FILE_FIGURES)
    quality = {DAY1: summary_quality(env, DAY1)}
    run_job(env, DAY2)
    first_ingestion = sorted({*first_ingestion, *env.query(FILE_FIGURES)})
    quality[DAY2] = summary_quality(env, DAY2)
    assert [r[2:6] for r in first_ingestion] == [(7, 4, 1, 2), (2, 0, 1, 1), (2, 2, 0, 0)]
    assert erased.encode() not in (env.inbox / "events" / DAY1 / "part-0000.jsonl").read_bytes()
    ingested = env.query("SELECT arrival_date, source_file, bytes, ingested_at FROM landing.files ORDER BY ALL")

    for day in (DAY1, DAY2):  # re-runs of the redacted day and of the deletion day
        result = run_job(env, day)
        [materialization] = [
            m for m in result.asset_materializations_for_node("ingest_arrival_day") if m.asset_key.path[-1] == "events"
        ]
        assert materialization.metadata["status"].value == "unchanged", day
        assert summary_quality(env, day) == quality[day], day
    assert env.query("SELECT arrival_date, source_file, bytes, ingested_at FROM landing.files ORDER BY ALL") == ingested
    assert env.query(FILE_FIGURES) == first_ingestion

    fresh = Env(
        root=tmp_path / "fresh",
        inbox=env.inbox,
        warehouse=tmp_path / "fresh" / "warehouse.duckdb",
        reports=tmp_path / "fresh" / "reports",
        dagster_home=tmp_path / "fresh" / "dagster_home",
    )
    fresh.root.mkdir()
    with fresh.connect() as con:
        for day in (DAY1, DAY2):
            assert ingest_day(con, fresh.inbox, date.fromisoformat(day)).status == "ingested"
    assert fresh.query(FILE_FIGURES) == first_ingestion
    subject = env.subject_key(erased)
    # the redacted lines name the erased subject by its key, and put no account id in the vault
    assert fresh.query("SELECT DISTINCT account_id FROM landing.events WHERE subject_key = ?", [subject]) == [(None,)]
    assert fresh.query("SELECT count(*) FROM landing.events WHERE subject_key = ?", [subject]) == env.query(
        "SELECT count(*) FROM landing.events WHERE subject_key = ?", [subject]
    )


# ---------------------------------------------------------------------------------------------
# What the redaction records
# ---------------------------------------------------------------------------------------------


def test_the_redaction_records_files_lines_keys_and_counts_and_no_identifier(env):
    erased, live, first_mail, second_mail = unique("acc_"), unique("acc_"), mail(), mail()
    env.write_events(
        DAY1,
        "part-0000.jsonl",
        [
            created(erased, f"{DAY1}T09:00:00+01:00", first_mail),
            event("Signed In", live, f"{DAY1}T10:00:00+01:00"),
            event(
                "Signed In",
                live,
                f"{DAY1}T11:00:00+01:00",
                properties={"note": f"{erased} / {erased} wrote as {first_mail} and {first_mail.upper()}"},
            ),
            deleted(erased, f"{DAY1}T18:00:00+01:00"),
        ],
    )
    env.write_events(
        DAY1,
        "part-0001.jsonl.gz",
        [email_changed(erased, f"{DAY1}T10:00:00+01:00", second_mail, first_mail)],
        gz=True,
    )
    subject = env.subject_key(erased)

    night(env, DAY1)

    rows = env.query(
        """SELECT run_date, folder, path, line_number, subject_key, kind, replaced, whole_line
           FROM ops.inbox_redactions ORDER BY path, line_number, kind"""
    )
    d = date(2026, 11, 2)
    assert rows == [
        (d, DAY1, f"{DAY1}/part-0000.jsonl", 1, subject, "account_id", 1, False),
        (d, DAY1, f"{DAY1}/part-0000.jsonl", 1, subject, "email", 1, False),
        (d, DAY1, f"{DAY1}/part-0000.jsonl", 3, subject, "account_id", 1, False),
        (d, DAY1, f"{DAY1}/part-0000.jsonl", 3, subject, "email", 2, False),  # two spellings of one address
        (d, DAY1, f"{DAY1}/part-0000.jsonl", 4, subject, "account_id", 1, False),
        (d, DAY1, f"{DAY1}/part-0001.jsonl.gz", 1, subject, "account_id", 1, False),
        (d, DAY1, f"{DAY1}/part-0001.jsonl.gz", 1, subject, "email", 2, False),
    ]
    # keys and counts only: no identifier in any text of the redaction's records
    recorded = "\n".join(
        str(r) for t in ("ops.inbox_redactions", "ops.inbox_rewrites") for r in env.query(f"SELECT * FROM {t}")
    ).lower()
    for needle in (erased, first_mail, second_mail):
        assert needle.lower() not in recorded
    assert env.query("SELECT count(*), count(*) FILTER (WHERE state = 'done') FROM ops.inbox_rewrites") == [(2, 2)]

    night(env, DAY1)  # a re-run finds nothing left: nothing more is recorded
    assert env.query("SELECT count(*) FROM ops.inbox_redactions") == [(len(rows),)]


def cached_keys(con) -> list[tuple]:
    """The scan's cache: each key with its line count, and where it stands beside its own lines."""
    return con.execute(
        """SELECT folder, kind, hex(key), lines, NULL, NULL FROM ops.inbox_keys
           UNION ALL SELECT folder, kind, hex(key), NULL, path, line_number FROM ops.inbox_lines ORDER BY ALL"""
    ).fetchall()


def test_a_redacted_folder_keeps_the_keys_a_fresh_scan_finds_without_being_read_again(env):
    erased, live, address = unique("acc_"), unique("acc_"), mail()
    env.write_events(
        DAY1,
        "part-0000.jsonl",
        [
            created(erased, f"{DAY1}T09:00:00+01:00", address, first_name="Zbynek"),
            event("Signed In", live, f"{DAY1}T10:00:00+01:00", properties={"note": f"{erased} asked, {address}"}),
            event("Signed In", live, f"{DAY1}T11:00:00+01:00", properties={"note": f"{address} {address.upper()}"}),
        ],
    )
    env.write_events(DAY1, "part-0001.jsonl.gz", [event("Signed In", erased, f"{DAY1}T12:00:00+01:00")], gz=True)
    broken = f'{{"event": "Signed In", "userId": "{erased}", "note": "kept {live}" '.encode()  # not JSON
    (env.inbox / "events" / DAY1 / "part-0002.jsonl").write_bytes(broken + b"\n")
    env.write_events(DAY2, "part-0000.jsonl", [deleted(erased, f"{DAY2}T10:00:00+01:00")])
    night(env, DAY1)
    with env.connect() as con:
        before = cached_keys(con)
    assert any(f == DAY1 and k == env.subject_key(erased).upper() and p for f, _, k, _, p, _ in before)

    night(env, DAY2)

    rewritten = env.query("SELECT DISTINCT path FROM ops.inbox_rewrites ORDER BY path")
    assert [p for (p,) in rewritten] == [f"{DAY1}/part-{n}" for n in ("0000.jsonl", "0001.jsonl.gz", "0002.jsonl")] + [
        f"{DAY2}/part-0000.jsonl"
    ]
    with env.connect() as con:
        kept = cached_keys(con)
        assert scan_inbox(con, env.inbox, date(2026, 11, 3)) == 0  # the cache describes the files as they are
        con.execute("DELETE FROM ops.inbox_scans")
        con.execute("DELETE FROM ops.inbox_keys")
        assert scan_inbox(con, env.inbox, date(2026, 11, 3)) == 2
        fresh = cached_keys(con)
    assert kept == fresh
    assert kept != before
    assert not [k for _, _, k, *_ in kept if k in (env.subject_key(erased).upper(), env.email_key(address).upper())]


# ---------------------------------------------------------------------------------------------
# A re-run changes no file of a later date
# ---------------------------------------------------------------------------------------------


def test_a_rerun_of_an_earlier_day_touches_no_folder_of_a_later_arrival_day(env):
    erased, live, address = unique("acc_"), unique("acc_"), mail()
    env.write_events(
        DAY1,
        "part-0000.jsonl",
        [created(erased, f"{DAY1}T09:00:00+01:00", address), deleted(erased, f"{DAY1}T18:00:00+01:00")],
    )
    note = {"note": f"about {erased} <{address}>"}
    env.write_events(DAY2, "part-0000.jsonl", [event("Signed In", live, f"{DAY2}T09:00:00+01:00", properties=note)])
    env.write_events(DAY3, "part-0000.jsonl", [event("Signed In", live, f"{DAY3}T09:00:00+01:00", properties=note)])
    late = event("Signed In", erased, f"{DAY1}T12:00:00+01:00")  # the subject's own event, arrived late
    env.write_events(DAY3, "part-0001.jsonl.gz", [late], gz=True)
    os.utime(env.inbox / "events" / DAY3 / "part-0001.jsonl.gz", ns=(1_700_000_000_000_000_000,) * 2)
    untouched = {DAY2: stats(env, DAY2), DAY3: stats(env, DAY3)}

    night(env, DAY1)  # the first run of DAY1 leaves the later folders to their own runs
    assert {DAY2: stats(env, DAY2), DAY3: stats(env, DAY3)} == untouched
    assert address.encode() not in (env.inbox / "events" / DAY1 / "part-0000.jsonl").read_bytes()
    night(env, DAY2)
    assert stats(env, DAY3) == untouched[DAY3]
    redacted = stats(env, DAY2)
    assert redacted != untouched[DAY2]  # its own run redacts it

    night(env, DAY1)  # re-runs of earlier days: no file of a later date changes
    night(env, DAY2)
    night(env, DAY1)
    assert {DAY2: stats(env, DAY2), DAY3: stats(env, DAY3)} == {DAY2: redacted, DAY3: untouched[DAY3]}

    night(env, DAY3)  # boundary: the day's own run redacts it
    assert [n for n, (data, _) in stats(env, DAY3).items() if data != untouched[DAY3][n][0]] == [
        "part-0000.jsonl",
        "part-0001.jsonl.gz",
    ]
    assert not [n for n, data in event_files(env).items() if erased.encode() in data or address.encode() in data]


# ---------------------------------------------------------------------------------------------
# Crash safety of the rewrite
# ---------------------------------------------------------------------------------------------


def crash_scenario(env: Env) -> tuple[str, Path]:
    """An erased subject with lines in an ingested folder (DAY1) and its deletion on DAY2."""
    erased = unique("acc_")
    path = env.write_events(
        DAY1,
        "part-0000.jsonl",
        [
            created(erased, f"{DAY1}T09:00:00+01:00", mail(), first_name="Zbynek"),
            event("Signed In", unique("acc_"), f"{DAY1}T10:00:00+01:00"),
        ],
    )
    env.write_events(DAY2, "part-0000.jsonl", [deleted(erased, f"{DAY2}T10:00:00+01:00")])
    night(env, DAY1)
    return erased, path


@pytest.mark.parametrize("recovery", ["next night", "finish_rewrites"])
def test_a_rewrite_killed_before_its_swap_is_finished_by_the_next_run(env, monkeypatch, recovery):
    erased, path = crash_scenario(env)
    original = path.read_bytes()
    copy = path.with_name(f".{path.name}.redact")
    real_replace = os.replace

    def killed_at_swap(src, dst, *args, **kwargs):
        if Path(dst) == path:  # killed between the recorded rewrite and os.replace
            raise SimulatedKill
        return real_replace(src, dst, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(inbox_files.os, "replace", killed_at_swap)
        with pytest.raises(SimulatedKill):
            night(env, DAY2)

    # what the kill leaves: the old file whole, the complete new one beside it, the rewrite pending
    assert path.read_bytes() == original and erased.encode() not in copy.read_bytes()
    assert env.query("SELECT path, state FROM ops.inbox_rewrites") == [(f"{DAY1}/part-0000.jsonl", "pending")]
    if recovery == "next night":
        night(env, DAY2)
    else:
        with env.connect() as con:
            assert inbox_files.finish_rewrites(con, env.inbox) == 1

    assert not copy.exists()
    assert erased.encode() not in path.read_bytes() and b"Zbynek" not in path.read_bytes()
    assert len(path.read_bytes().split(b"\n")) == len(original.split(b"\n"))
    assert env.query("SELECT state FROM ops.inbox_rewrites WHERE path = ?", [f"{DAY1}/{path.name}"]) == [("done",)]
    assert env.query("SELECT count(*) FROM ops.inbox_rewrites WHERE state = 'pending'") == [(0,)]
    with env.connect() as con:  # the day's ingested manifest names the file as it is now
        assert ingest_day(con, env.inbox, date.fromisoformat(DAY1)).status == "unchanged"
    night(env, DAY2)
    assert register(env)[env.subject_key(erased)][2] is None


def test_a_copy_written_before_its_rewrite_was_recorded_is_removed_and_the_original_stays(env, monkeypatch):
    erased, path = crash_scenario(env)
    original = path.read_bytes()
    # a copy a kill left in a folder with nothing to redact: removed, the file beside it untouched
    clean = env.write_events(
        "2026-11-01", "part-0000.jsonl", [event("Signed In", "acc_x", "2026-11-01T09:00:00+01:00")]
    )
    clean_stat = (clean.read_bytes(), clean.stat().st_mtime_ns)
    stray = clean.with_name(f".{clean.name}.redact")
    stray.write_bytes(b'{"messageId": "half')

    def killed_before_record(*_args, **_kw):
        raise SimulatedKill

    with monkeypatch.context() as m:  # killed after the copy was written, before the transaction commits
        m.setattr(inbox_files, "_record_manifest", killed_before_record)
        with pytest.raises(SimulatedKill):
            night(env, DAY2)
    copy = path.with_name(f".{path.name}.redact")
    assert copy.exists() and path.read_bytes() == original
    assert env.query("SELECT count(*) FROM ops.inbox_rewrites") == [(0,)]
    with env.connect() as con:  # nothing was recorded: the copy is discarded, never swapped in
        assert inbox_files.finish_rewrites(con, env.inbox) == 0
    assert not copy.exists() and not stray.exists()
    assert path.read_bytes() == original
    assert (clean.read_bytes(), clean.stat().st_mtime_ns) == clean_stat

    night(env, DAY2)  # the next night redacts it afresh

    assert erased.encode() not in path.read_bytes()
    assert not [p for p in (env.inbox / "events").rglob("*") if p.name.endswith(".redact")]
    with env.connect() as con:
        assert ingest_day(con, env.inbox, date.fromisoformat(DAY1)).status == "unchanged"
