"""The report archive (issue 28): each day's MANIFEST.sha256 links to the previous day's, and
`python -m pipelines verify-archive` names the first day and file that do not match."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import date, datetime
from pathlib import Path

import pytest

from assets.reports.archive import (
    MANIFEST_FILE,
    link_name,
    manifest_bytes,
    parse_manifest,
    verify_archive,
)
from assets.reports.publish import REPORT_FILES, publish_report
from pipelines.cli import main
from pipelines.clock import PRAGUE
from tests.helpers import core_created, derive_on, event, grant, withdraw

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
DAYS = (D1, D2, D3)
SHA256SUM = shutil.which("sha256sum")


def marketing(acc: str, ts: str) -> dict:
    return event("Marketing Message Sent", acc, ts, properties={"campaign_id": "c-1", "medium": "email"})


#: Three arrival days whose reports hold violations: marketing without consent on D1 and on D3.
EVENTS = {
    D1: [
        core_created("acc_1", "2026-11-01T09:00:00+01:00"),
        grant("acc_1", "2026-11-01T09:05:00+01:00"),
        core_created("acc_2", "2026-11-01T10:00:00+01:00"),
        marketing("acc_2", "2026-11-01T12:00:00+01:00"),
    ],
    D2: [withdraw("acc_1", "2026-11-02T08:00:00+01:00")],
    D3: [marketing("acc_1", "2026-11-03T12:00:00+01:00")],
}


def publish_day(env, day: date, at: datetime | None = None):
    """Ingest the day and derive its state in SQL, then publish its report (no Dagster: fast)."""
    with env.connect() as con:
        derive_on(con, env, day)
        return publish_report(con, env.reports, day, run_id=f"run-{day}", generated_at=at)


@pytest.fixture
def archive(env):
    """Three published days, in order."""
    for day, lines in EVENTS.items():
        env.write_events(day, "part-0000.jsonl", lines)
    published = {day: publish_day(env, day) for day in DAYS}
    return env, published


def verify(capsys, start: date = D1, end: date = D3) -> tuple[int, list[str], str]:
    """`python -m pipelines verify-archive --from start --to end` in this process: (exit code, stdout lines, stderr)."""
    capsys.readouterr()
    code = main(["verify-archive", "--from", start.isoformat(), "--to", end.isoformat()])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def folder(env, day: date) -> Path:
    return env.reports / day.isoformat()


def all_bytes(env) -> dict[str, bytes]:
    return {str(p.relative_to(env.reports)): p.read_bytes() for p in sorted(env.reports.rglob("*")) if p.is_file()}


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------------------------
# The chain as published
# ---------------------------------------------------------------------------------------------


def test_three_days_form_a_chain_that_verifies(archive, capsys):
    env, published = archive
    manifests = {day: (folder(env, day) / MANIFEST_FILE).read_bytes() for day in DAYS}
    assert b"../" not in manifests[D1], "the first day of the archive links to nothing"
    for before, day in ((D1, D2), (D2, D3)):
        entries = parse_manifest(manifests[day])
        assert entries[0] == (link_name(before), hashlib.sha256(manifests[before]).hexdigest())
        assert sorted(name for name, _ in entries[1:]) == sorted(REPORT_FILES)
        assert published[day].previous_day == before
    assert published[D3].manifest_sha256 == hashlib.sha256(manifests[D3]).hexdigest()
    assert b"marketing_without_consent" in (folder(env, D1) / "violations.csv").read_bytes()

    code, out, err = verify(capsys)
    assert code == 0, (out, err)
    assert out[:3] == ["2026-11-01 ok", "2026-11-02 ok", "2026-11-03 ok"]
    assert out[3].startswith("3 day(s) from 2026-11-01 to 2026-11-03: 3 match, 0 not published")
    assert published[D3].manifest_sha256 in out[3]
    assert len(out) == 4 and err == ""


@pytest.mark.skipif(SHA256SUM is None, reason="no sha256sum binary on this machine")
def test_sha256sum_checks_a_published_folder_and_its_link(archive):
    env, _ = archive
    done = subprocess.run([SHA256SUM, "-c", MANIFEST_FILE], cwd=folder(env, D2), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(done.stdout.splitlines()) == sorted(
        [f"{link_name(D1)}: OK", *(f"{name}: OK" for name in REPORT_FILES)]
    )
    flip_one_byte(folder(env, D1) / MANIFEST_FILE)
    done = subprocess.run([SHA256SUM, "-c", MANIFEST_FILE], cwd=folder(env, D2), capture_output=True, text=True)
    assert done.returncode == 1 and f"{link_name(D1)}: FAILED" in done.stdout


# ---------------------------------------------------------------------------------------------
# What verify-archive finds: the first day that does not match, and the file
# ---------------------------------------------------------------------------------------------


def edit_old_violations_csv(env) -> None:
    flip_one_byte(folder(env, D1) / "violations.csv")


def edit_and_cover_up_in_the_manifest(env) -> None:
    """Edit D1's violations.csv and rewrite D1's manifest to match: D1 holds together, D2's link does not."""
    path = folder(env, D1) / "violations.csv"
    flip_one_byte(path)
    old = next(d for n, d in parse_manifest((folder(env, D1) / MANIFEST_FILE).read_bytes()) if n == "violations.csv")
    manifest = folder(env, D1) / MANIFEST_FILE
    manifest.write_bytes(
        manifest.read_bytes().replace(old.encode(), hashlib.sha256(path.read_bytes()).hexdigest().encode())
    )


def remove_a_file(env) -> None:
    (folder(env, D2) / "summary.json").unlink()


def add_a_file(env) -> None:
    (folder(env, D2) / "export.csv").write_text("added later\n")


def delete_the_middle_day(env) -> None:
    shutil.rmtree(folder(env, D2))


def drop_the_link(env) -> None:
    manifest = folder(env, D2) / MANIFEST_FILE
    manifest.write_bytes(b"".join(line for line in manifest.read_bytes().splitlines(True) if b"../" not in line))


def delete_a_manifest(env) -> None:
    (folder(env, D2) / MANIFEST_FILE).unlink()


def garble_a_manifest(env) -> None:
    with open(folder(env, D2) / MANIFEST_FILE, "ab") as fh:
        fh.write(b"not a checksum line\n")


@pytest.mark.parametrize(
    "tamper, expected",
    [
        (edit_old_violations_csv, ["2026-11-01 violations.csv: sha256 does not match the manifest"]),
        (
            edit_and_cover_up_in_the_manifest,
            [
                "2026-11-01 ok",
                "2026-11-02 ../2026-11-01/MANIFEST.sha256: sha256 does not match that day's manifest",
            ],
        ),
        (remove_a_file, ["2026-11-01 ok", "2026-11-02 summary.json: listed in the manifest but missing"]),
        (add_a_file, ["2026-11-01 ok", "2026-11-02 export.csv: in the folder but not in the manifest"]),
        (
            delete_the_middle_day,
            [
                "2026-11-01 ok",
                "2026-11-02 not published",
                "2026-11-03 ../2026-11-02/MANIFEST.sha256: linked, but that day's manifest is not in the archive",
            ],
        ),
        (
            drop_the_link,
            [
                "2026-11-01 ok",
                "2026-11-02 ../2026-11-01/MANIFEST.sha256: not linked: the manifest does not record the previous "
                "day's manifest",
            ],
        ),
        (delete_a_manifest, ["2026-11-01 ok", "2026-11-02 MANIFEST.sha256: missing: the folder has no manifest"]),
        (garble_a_manifest, ["2026-11-01 ok", "2026-11-02 MANIFEST.sha256: line 6 is not `<sha256>  <file>`"]),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_verify_archive_names_the_first_day_and_file_that_do_not_match(archive, capsys, tamper, expected):
    env, _ = archive
    assert verify(capsys)[0] == 0
    tamper(env)
    code, out, err = verify(capsys)
    assert code == 1, out
    assert out == expected, "the failing day is the last line: later days are not checked"
    failing_day = expected[-1].split()[0]
    assert err == f"error: {failing_day} does not match its manifest or its link; later days were not checked\n"


def test_a_one_byte_edit_of_an_old_violations_csv_fails_with_that_day_and_file(archive, capsys):
    """The issue's definition of done, as a regulator would run it."""
    env, _ = archive
    path = folder(env, D1) / "violations.csv"
    size = path.stat().st_size
    flip_one_byte(path)
    assert path.stat().st_size == size
    code, out, _ = verify(capsys)
    assert code == 1
    assert out == ["2026-11-01 violations.csv: sha256 does not match the manifest"]


def test_the_link_is_checked_against_a_day_before_the_range(archive, capsys):
    env, _ = archive
    edit_and_cover_up_in_the_manifest(env)
    code, out, _ = verify(capsys, D2, D3)
    assert code == 1
    assert out == ["2026-11-02 ../2026-11-01/MANIFEST.sha256: sha256 does not match that day's manifest"]
    assert verify(capsys, D1, D1)[0] == 0, "D1 alone holds together: only the next link shows the cover-up"


def test_a_day_that_never_ran_is_not_published_but_one_published_late_breaks_the_skip(env, capsys):
    for day, lines in EVENTS.items():
        env.write_events(day, "part-0000.jsonl", lines)
    publish_day(env, D1)
    with env.connect() as con:  # D2 never ran: D3 links to D1
        derive_on(con, env, D2)
    assert publish_day(env, D3).previous_day == D1
    code, out, _ = verify(capsys)
    assert code == 0
    assert out[:3] == ["2026-11-01 ok", "2026-11-02 not published", "2026-11-03 ok"]
    assert "2 match, 1 not published" in out[3]
    # A folder appearing inside the chain afterwards (published late, or planted) breaks the link over it.
    publish_day(env, D2)
    code, out, _ = verify(capsys)
    assert code == 1
    assert (
        out[-1] == "2026-11-03 ../2026-11-01/MANIFEST.sha256: the link skips 2026-11-02, whose folder holds a manifest"
    )
    # Not published over several days: one line.
    code, out, _ = verify(capsys, date(2026, 10, 20), date(2026, 10, 31))
    assert code == 0 and out[0] == "2026-10-20 to 2026-10-31 not published (12 days)"


def test_hidden_temporaries_are_ignored_and_hostile_names_are_shown_safely(archive, capsys):
    env, _ = archive
    (folder(env, D2) / ".violations.csv.k3j4h5.tmp").write_bytes(b"a run killed while writing")
    assert verify(capsys)[0] == 0, "write_atomic's leftovers are not report files (the next run removes them)"
    hostile = "jan.novak@example.cz\x1b[31m\nDlouhá 7.csv"
    (folder(env, D2) / "remediation").mkdir()
    (folder(env, D2) / "remediation" / hostile).write_text("x\n")
    code, out, _ = verify(capsys)
    assert code == 1
    assert out[-1].startswith("2026-11-02 remediation/file#")
    assert out[-1].endswith(": in the folder but not in the manifest")
    assert "@" not in "\n".join(out) and "\x1b" not in "\n".join(out) and len(out) == 2


# ---------------------------------------------------------------------------------------------
# Re-runs: same inputs, same bytes, and the chain holds
# ---------------------------------------------------------------------------------------------


def test_publishing_the_same_day_twice_gives_the_same_manifest_bytes(archive, capsys):
    env, _ = archive
    before = all_bytes(env)
    publish_day(env, D3, at=datetime(2026, 11, 4, 2, 0, tzinfo=PRAGUE))
    publish_day(env, D3, at=datetime(2026, 11, 5, 7, 45, 12, tzinfo=PRAGUE))
    assert all_bytes(env) == before


def test_rerunning_a_day_after_the_next_exists_keeps_the_next_link(env, capsys):
    """Real nightly runs (the Dagster job, as the CLI runs it): D2 again after D3 is published."""
    for day, lines in EVENTS.items():
        env.write_events(day, "part-0000.jsonl", lines)
    for day in DAYS:
        assert env.run(day).success, day
    before = all_bytes(env)
    assert any(
        name.endswith("violations.csv") and b"marketing_without_consent" in data for name, data in before.items()
    )
    assert env.run(D2).success
    after = all_bytes(env)
    assert after.keys() == before.keys()
    assert [name for name in after if after[name] != before[name]] == []
    code, out, _ = verify(capsys)
    assert code == 0 and out[:3] == ["2026-11-01 ok", "2026-11-02 ok", "2026-11-03 ok"]


# ---------------------------------------------------------------------------------------------
# The manifest format and the command's usage
# ---------------------------------------------------------------------------------------------


NAMES = ["plain.csv", "remediation/crm.csv", "back\\slash.csv", "line\nfeed.csv", "carriage\rreturn.csv", " lead.csv"]


def test_manifest_names_are_escaped_as_sha256sum_writes_them(tmp_path):
    digests = {}
    for i, name in enumerate(NAMES):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"file {i}\n".encode())
        digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    data = manifest_bytes(digests, None)
    assert len(data.splitlines()) == len(NAMES)
    assert parse_manifest(data) == sorted(digests.items())
    if SHA256SUM is not None:
        (tmp_path / MANIFEST_FILE).write_bytes(data)
        done = subprocess.run([SHA256SUM, "--strict", "-c", MANIFEST_FILE], cwd=tmp_path, capture_output=True)
        assert done.returncode == 0, done.stdout + done.stderr
    for bad in ("../x.csv", "/etc/passwd", "a//b", "./a", ""):
        with pytest.raises(ValueError):
            manifest_bytes({bad: "0" * 64}, None)


def test_verify_archive_is_a_pure_function_of_the_folders(archive):
    env, _ = archive
    results = list(verify_archive(env.reports, date(2026, 10, 31), D3))
    assert [(r.day, r.published, r.ok) for r in results] == [
        (date(2026, 10, 31), False, False),
        (D1, True, True),
        (D2, True, True),
        (D3, True, True),
    ]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--from", "2026-11-03", "--to", "2026-11-01"], "--from 2026-11-03 is after --to 2026-11-01"),
        (["--from", "2026-11-01", "--to", "2026-02-30"], "not a valid date"),
        (["--from", "20261101", "--to", "2026-11-03"], "expected YYYY-MM-DD"),
        (["--from", "2026-11-01"], "--to"),
    ],
)
def test_bad_usage_exits_2_with_one_line(env, capsys, args, fragment):
    try:
        code = main(["verify-archive", *args])
    except SystemExit as exc:  # argparse refuses it before the command runs
        code = exc.code
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == "" and len(captured.err.splitlines()) == 1 and fragment in captured.err


def test_a_missing_reports_folder_exits_2(env, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COMPLIANCE_REPORTS", str(tmp_path / "nowhere"))
    assert main(["verify-archive", "--from", "2026-11-01", "--to", "2026-11-03"]) == 2
    assert "COMPLIANCE_REPORTS" in capsys.readouterr().err
