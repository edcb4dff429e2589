"""A subject's file (issue 28): the consent proof, the marketing sends with the consent at each
instant, the violations with their evidence and the erasure tombstone, keys only; from the CLI
(identifier on standard input, exit 4 when unknown) and from the Dagster job (a key in run config)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from assets.reports.csvsafe import report_file_holds_email
from tests.helpers import CLI_KEY, TEST_KEY, Cli, created, deleted, event

ALICE, BOB, CAROL = "acc_alice_0001", "acc_bob_0002", "acc_carol_0003"
ALICE_EMAIL, BOB_EMAIL = "alice.novakova@example.cz", "bob.dvorak@example.cz"
NAMES = ("Alice", "Nováková", "Bob", "Dvořák")
DAY1, DAY2 = "2026-11-02", "2026-11-03"


def _scenario(env) -> None:
    env.write_events(
        DAY1,
        "a.jsonl",
        [
            created(ALICE, "2026-11-02T09:00:00+01:00", ALICE_EMAIL, first_name="Alice", last_name="Nováková"),
            event(
                "Marketing Consent Granted",
                ALICE,
                "2026-11-02T09:05:00+01:00",
                message_id="m-grant",
                properties={"notice_version": "v3", "source": f"signup form of {ALICE_EMAIL}"},
            ),
            event(
                "Marketing Message Sent",
                ALICE,
                "2026-11-02T15:00:00+01:00",
                message_id="m-send-ok",
                channel="system",
                properties={"campaign_id": "winter-1", "medium": "email"},
            ),
            created(BOB, "2026-11-02T10:00:00+01:00", BOB_EMAIL, first_name="Bob", last_name="Dvořák"),
        ],
    )
    env.write_events(
        DAY2,
        "a.jsonl",
        [
            event(
                "Marketing Consent Withdrawn",
                ALICE,
                "2026-11-03T10:00:00+01:00",
                message_id="m-withdraw",
                properties={"source": "preference centre"},
            ),
            event(
                "Marketing Message Sent",
                ALICE,
                "2026-11-03T12:00:00+01:00",
                message_id="m-send-after",
                channel="system",
                properties={"campaign_id": "winter-2", "medium": "sms"},
            ),
            deleted(BOB, "2026-11-03T11:00:00+01:00"),
            # a new account takes Bob's e-mail after his erasure
            created(CAROL, "2026-11-03T13:00:00+01:00", BOB_EMAIL),
        ],
    )
    # the CRM still lists Bob after his erasure: residual data in `crm`
    env.write_export("crm", DAY2, [{"account_id": BOB, "email": BOB_EMAIL}])
    for day in (DAY1, DAY2):
        result = env.run(day)
        assert result.success, [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]


def _cli(env) -> Cli:
    cli = Cli(env.root)
    cli.env["COMPLIANCE_HASH_KEY"] = TEST_KEY
    assert CLI_KEY != TEST_KEY
    return cli


def _files(env) -> dict[str, bytes]:
    folder = env.reports / "subjects"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def _assert_no_identity(files: dict[str, bytes]) -> None:
    for name, data in files.items():
        for plain in (ALICE, BOB, CAROL, ALICE_EMAIL, BOB_EMAIL, *NAMES):
            assert plain.encode() not in data, (name, plain)
        assert not report_file_holds_email(name, data), name


@pytest.fixture
def scenario(env):
    _scenario(env)
    return env


def test_withdrawal_then_send_is_shown_with_its_violation_and_no_identity(scenario):
    env = scenario
    proc = _cli(env)("subject", "--account-id", stdin=ALICE + "\n")
    assert proc.returncode == 0, proc.stderr
    key = env.subject_key(ALICE)
    files = _files(env)
    assert set(files) == {f"{key[:16]}.html", f"{key[:16]}.json"}
    assert key[:16] in proc.stdout and ALICE not in proc.stdout + proc.stderr

    data = json.loads(files[f"{key[:16]}.json"])
    assert data["subject_key"] == key and data["as_of"] == DAY2 and data["status"] == "active"
    assert [(c["message_id"], c["granted"], c["notice_version"]) for c in data["consent_history"]] == [
        ("m-grant", True, "v3"),
        ("m-withdraw", False, None),
    ]
    assert data["consent_history"][0]["source"] == "signup form of [e-mail removed]"  # free text: redacted
    sends = {s["message_id"]: s for s in data["marketing_messages"]}
    assert sends["m-send-ok"]["consent_at_send"] == "granted" and sends["m-send-ok"]["violation"] is None
    after = sends["m-send-after"]
    assert (after["consent_at_send"], after["consent_message_id"], after["violation"]) == (
        "withdrawn",
        "m-withdraw",
        "marketing_without_consent",
    )
    assert [(v["rule"], v["message_id"], v["details"]) for v in data["violations"]] == [
        ("marketing_without_consent", "m-send-after", "consent withdrawn before the send; medium=sms")
    ]
    assert [
        (c["end_reason"], c["opened_by_message_id"], c["closed_by_message_id"]) for c in data["club_intervals"]
    ] == [("consent_withdrawn", "m-grant", "m-withdraw")]
    assert data["erasure"] is None

    page = files[f"{key[:16]}.html"].decode()
    for shown in ("m-withdraw", "m-send-after", "marketing_without_consent", "consent withdrawn before the send"):
        assert shown in page
    assert "<script" not in page.lower() and "default-src 'none'" in page
    _assert_no_identity(files)

    # the e-mail leads to the same subject; the same warehouse gives the same bytes
    proc = _cli(env)("subject", "--email", stdin=f"  {ALICE_EMAIL.upper()}\n")
    assert proc.returncode == 0, proc.stderr
    assert _files(env) == files


def test_erased_subject_shows_its_tombstone_and_where_residual_data_was_found(scenario):
    env = scenario
    from pipelines.cli import main

    assert main(["subject", "--subject-key", env.subject_key(BOB)[:12]]) == 0
    key = env.subject_key(BOB)
    files = _files(env)
    data = json.loads(files[f"{key[:16]}.json"])
    assert data["status"] == "erased"
    erasure = data["erasure"]
    assert erasure["deleted_at"].startswith("2026-11-03T11:00:00")
    assert (erasure["status"], erasure["residual_locations"], erasure["verified_on"]) == ("pending", ["crm"], None)
    assert erasure["found"] == [{"day": DAY2, "locations": ["crm"]}]
    assert "Where residual data was found" in files[f"{key[:16]}.html"].decode()
    _assert_no_identity(files)

    # the e-mail Bob held, and Carol holds now, leads to both subjects: a file each
    proc = _cli(env)("subject", "--email", BOB_EMAIL)
    assert proc.returncode == 0, proc.stderr
    carol = env.subject_key(CAROL)
    assert set(_files(env)) == {f"{k[:16]}.{ext}" for k in (key, carol) for ext in ("html", "json")}
    assert json.loads(_files(env)[f"{carol[:16]}.json"])["status"] == "active"
    _assert_no_identity(_files(env))


def test_unknown_subject_is_not_found_with_exit_4_and_no_file(scenario):
    env = scenario
    cli = _cli(env)
    proc = cli("subject", "--account-id", stdin="acc_nobody\n")
    assert proc.returncode == 4 and "not found" in proc.stderr and "acc_nobody" not in proc.stderr
    proc = cli("subject", "--email", "nobody@example.cz")
    assert proc.returncode == 4
    assert _files(env) == {}
    # an empty identifier or a malformed key is a usage error (exit 2), never a search
    assert cli("subject", "--account-id", stdin="\n").returncode == 2
    assert cli("subject", "--subject-key", "not-hex").returncode == 2
    assert _files(env) == {}


def test_the_dagster_job_takes_a_key_and_writes_the_same_file(scenario):
    env = scenario
    from pipelines.definitions import defs
    from pipelines.jobs import SUBJECT_FILE_JOB_NAME

    key = env.subject_key(ALICE)
    job = defs.resolve_job_def(SUBJECT_FILE_JOB_NAME)

    def run(prefix: str) -> dg.ExecuteInProcessResult:
        return job.execute_in_process(
            run_config={"ops": {"write_subject_file": {"config": {"subject_key": prefix}}}},
            resources=env.resources(),
            instance=env.instance,
            raise_on_error=False,
        )

    result = run(key[:12].upper())
    assert result.success
    files = _files(env)
    assert set(files) == {f"{key[:16]}.html", f"{key[:16]}.json"}
    metadata = [e.event_specific_data.metadata for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    assert metadata[0]["violations"].value == 1 and metadata[0]["subject_key"].value == key
    logs = "".join(str(r.dagster_event or r.user_message) for r in env.instance.all_logs(result.run_id))
    assert ALICE not in logs and ALICE_EMAIL not in logs

    missing = run("0" * 12 if not key.startswith("0" * 12) else "f" * 12)
    assert not missing.success
    assert _files(env) == files


def test_subject_file_page_and_json_are_deterministic(scenario, tmp_path: Path):
    env = scenario
    from pipelines.cli import main

    assert main(["subject", "--subject-key", env.subject_key(ALICE)]) == 0
    first = _files(env)
    assert main(["subject", "--subject-key", env.subject_key(ALICE)]) == 0
    assert _files(env) == first


def test_residual_days_are_listed_and_a_warehouse_without_them_says_so(scenario):
    """Bob leaves the CRM's export on day 3: verified then, residual found on day 2. A warehouse that
    kept no per-day record (before ops.residual_days) shows no day, and says it was verified later."""
    env = scenario
    from pipelines.cli import main

    env.write_export("crm", "2026-11-04", [{"account_id": ALICE, "email": ALICE_EMAIL}])
    assert env.run("2026-11-04").success
    key = env.subject_key(BOB)
    assert main(["subject", "--account-id", BOB]) == 0
    erasure = json.loads(_files(env)[f"{key[:16]}.json"])["erasure"]
    assert (erasure["status"], erasure["verified_on"], erasure["erased_on"]) == ("verified", "2026-11-04", DAY2)
    assert erasure["found"] == [{"day": DAY2, "locations": ["crm"]}]
    page = _files(env)[f"{key[:16]}.html"].decode()
    assert "residual data was found on the nights in between" not in page

    env.query("DELETE FROM ops.residual_days")
    assert main(["subject", "--account-id", BOB]) == 0
    page = _files(env)[f"{key[:16]}.html"].decode()
    assert "No day with residual data is recorded" in page
    assert "Verified on 2026-11-04, after the\nerasure run of 2026-11-03" in page
