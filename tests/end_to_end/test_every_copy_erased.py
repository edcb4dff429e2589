"""Every copy the pipeline holds is erased the same night, byte for byte (CONTRACT 5, "Same-night
erasure of every copy the pipeline holds").

Through the Dagster job: an account deleted on day D has identifiers in `.jsonl` and `.jsonl.gz`
files of earlier retained days, in a rejected line and in another account's free text. Before the
night of D their bytes are in the warehouse's folder and in the inbox; after it, in no file of the
warehouse's folder (the database, its WAL, any other file beside it, recursively) and in no
retained inbox event file (decompressed), in the case they were written or lowercased. The register
shows the subject verified, and never names the pipeline's own copies.
"""

from __future__ import annotations

import gzip
import uuid
from datetime import date
from pathlib import Path

from assets.erasure.locations import parse
from tests.helpers import Env, created, deleted, email_changed, event, grant, run_job, unique

D = "2026-11-03"
EARLIER = ("2026-11-01", "2026-11-02")


def folder_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def inbox_event_files(env: Env) -> dict[str, bytes]:
    root = env.inbox / "events"
    return {
        str(p.relative_to(root)): gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def hits(files: dict[str, bytes], needles: list[bytes]) -> list[tuple[str, bytes]]:
    return [(name, n) for name, data in files.items() for n in needles if n in data]


def locations(env: Env) -> list[set[str]]:
    return [
        {name for name, _ in parse(loc)}
        for (loc,) in env.query("SELECT residual_locations FROM compliance.erasure_register")
    ]


def test_every_copy_of_an_erased_subject_is_gone_the_night_of_its_deletion(env, monkeypatch):
    env.warehouse = env.root / "warehouse" / "warehouse.duckdb"  # a folder of its own, grepped whole
    env.warehouse.parent.mkdir()
    monkeypatch.setenv("COMPLIANCE_WAREHOUSE", str(env.warehouse))
    erased, alena, bohdan = unique("acc_"), unique("acc_"), unique("acc_")
    first_mail, second_mail = f"Zq{uuid.uuid4().hex}@Example.CZ", f"zq{uuid.uuid4().hex}@example.cz"
    first_name, last_name, street = unique("Zbyn"), unique("Vrb"), unique("Ulice ")
    day1, day2 = EARLIER
    env.write_events(
        day1,
        "part-0000.jsonl",
        [
            created(erased, f"{day1}T09:00:00+01:00", first_mail, first_name=first_name, last_name=last_name),
            created(alena, f"{day1}T09:30:00+01:00", f"alena{uuid.uuid4().hex[:6]}@example.cz", first_name="Alena"),
            # another account's free text names the erased account
            event("Signed In", alena, f"{day1}T10:00:00+01:00", properties={"note": f"asked about {erased}"}),
            # a rejected line (not JSON) naming it and its e-mail as written
            '{"messageId": "r-1", "note": "' + erased + " " + first_mail + '", broken',
        ],
    )
    env.write_events(
        day1,
        "part-0001.jsonl.gz",
        [
            email_changed(erased, f"{day1}T11:00:00+01:00", second_mail, first_mail),
            event(
                "Address Changed",
                erased,
                f"{day1}T12:00:00+01:00",
                properties={"street": street, "city": "Brno", "postal_code": "602 00", "country": "CZ"},
            ),
        ],
        gz=True,
    )
    env.write_events(
        day2,
        "part-0000.jsonl.gz",
        [
            event("Signed In", erased, f"{day2}T09:00:00+01:00"),
            created(bohdan, f"{day2}T09:30:00+01:00", f"bohdan{uuid.uuid4().hex[:6]}@example.cz"),
            # the lowercased first e-mail in another account's free text
            event("Signed In", bohdan, f"{day2}T10:00:00+01:00", properties={"note": f"was {first_mail.lower()}"}),
            grant(bohdan, f"{day2}T10:30:00+01:00"),
        ],
        gz=True,
    )
    env.write_events(D, "part-0000.jsonl", [deleted(erased, f"{D}T10:00:00+01:00")])
    # the CRM held the subject, its latest export on D no longer does: nothing downstream is left
    env.write_export("crm", day1, [{"account_id": erased, "email": second_mail}, {"account_id": alena}])
    env.write_export("crm", D, [{"account_id": alena}, {"account_id": bohdan}])

    for day in EARLIER:
        run_job(env, day)
        assert all(not loc & {"inbox", "warehouse"} for loc in locations(env))
    values = [erased, first_mail, first_mail.lower(), second_mail, first_name, last_name, street]
    needles = sorted({v.encode() for v in values}, key=len, reverse=True)
    # before the night of D every identifier's bytes are in the warehouse's folder and in the inbox
    warehouse_before = b"".join(folder_files(env.warehouse.parent).values())
    assert [n for n in needles if n not in warehouse_before] == []
    assert env.warehouse.parent.joinpath("warehouse.duckdb").exists()
    inbox_before = inbox_event_files(env)
    assert [n for n in needles if not any(n in data for data in inbox_before.values())] == []
    assert {name for name, _ in hits(inbox_before, needles)} == {
        f"{day1}/part-0000.jsonl",
        f"{day1}/part-0001.jsonl.gz",
        f"{day2}/part-0000.jsonl.gz",
        f"{D}/part-0000.jsonl",  # the deletion itself names the account
    }

    result = run_job(env, D)

    assert result.success
    beside = folder_files(env.warehouse.parent)
    assert "warehouse.duckdb" in beside
    assert hits(beside, needles) == []  # the database, its WAL and every file beside it, recursively
    assert hits(inbox_event_files(env), needles) == []
    assert hits(folder_files(env.reports), needles) == []
    subject = env.subject_key(erased)
    assert env.query(
        "SELECT status, residual_locations, verified_on FROM compliance.erasure_register WHERE subject_key = ?",
        [subject],
    ) == [("verified", None, date(2026, 11, 3))]
    assert all(not loc & {"inbox", "warehouse"} for loc in locations(env))
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["erased_subjects_fully_purged"] and checks["erased_subjects_redacted_from_inbox"]

    run_job(env, D)  # a re-run leaves it so
    assert hits(folder_files(env.warehouse.parent), needles) == []
    assert hits(inbox_event_files(env), needles) == []
    assert env.query("SELECT status, residual_locations FROM compliance.erasure_register") == [("verified", None)]
