"""Erasure: the purge, byte-level erasure, the verifier, the register and its checks.

Most cases drive the erasure functions night by night on a connection (fast); the integration
tests run the Dagster job and look at the warehouse file's bytes.
"""

from __future__ import annotations

import gzip
import json
import re
import uuid
from datetime import date, datetime, time, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

import assets.purge.purge as purge_module
from assets.compaction.assets import WAREHOUSE_COMPACTION
from assets.compliance.violations import VIOLATIONS
from assets.core.accounts import ACCOUNTS as CORE_ACCOUNTS
from assets.erasure.assets import ERASURE_REGISTER, RAW_RETENTION
from assets.erasure.verifier import build_register
from assets.landing.assets import EVENTS, EXPORT_KEYS, FILES, REJECTED
from assets.landing.contract import PERSONAL_PROPERTIES
from assets.purge.assets import PURGE_LOG
from assets.purge.inbox_redaction import RedactionResult, email_replacement
from assets.purge.purge import REDACTED
from assets.purge.state import DUE_DATE_SQL, due_date
from pipelines.clock import PRAGUE
from tests.helpers import created, deleted, email_changed, event, night, register, run_job, text_columns, unique

#: Ingestion and the erasure assets only: independent of the other modules' progress.
ERASURE_ONLY = dg.AssetSelection.assets(
    EVENTS, REJECTED, FILES, EXPORT_KEYS, PURGE_LOG, RAW_RETENTION, ERASURE_REGISTER, WAREHOUSE_COMPACTION
)
#: Every asset that writes warehouse tables plus the erasure checks (the other modules' checks and
#: the report have their own tests).
WAREHOUSE = (
    ERASURE_ONLY
    | dg.AssetSelection.assets(CORE_ACCOUNTS, VIOLATIONS, ["core", "consent_history"], ["core", "club_membership"])
).without_checks() | dg.AssetSelection.checks_for_assets(WAREHOUSE_COMPACTION, ERASURE_REGISTER)


def high_entropy_email() -> str:
    return f"zq{uuid.uuid4().hex}@example.cz"


def plain_hits(env, needles: list[str]) -> list[tuple[str, str, str]]:
    """Generic substring search (case-insensitive) for the needles in every text column of every table."""
    if not needles:
        return []
    pattern = "|".join(re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", n.lower()) for n in needles)
    hits = []
    with env.connect() as con:
        for name, table, column in text_columns(con):
            found = con.execute(
                f"""SELECT DISTINCT unnest(regexp_extract_all(lower("{column}"::VARCHAR), ?))
                    FROM {table} WHERE regexp_matches(lower("{column}"::VARCHAR), ?)""",
                [pattern, pattern],
            ).fetchall()
            hits += [(name, column, n) for (n,) in found]
    return hits


def file_bytes(env) -> bytes:
    """Every file the pipeline keeps beside the warehouse: the warehouse, its vault, their WALs, and
    anything in a folder named after them (DuckDB's spill folder). The inbox, the exports and the
    reports under the same test folder are judged elsewhere."""
    stem = env.warehouse.stem
    files = [p for p in env.warehouse.parent.iterdir() if p.is_file()]
    files += [p for d in env.warehouse.parent.iterdir() if d.is_dir() and d.name.startswith(stem) for p in d.rglob("*")]
    return b"".join(p.read_bytes() for p in sorted(files) if p.is_file())


# ---------------------------------------------------------------------------------------------
# The purge and byte-level erasure (integration)
# ---------------------------------------------------------------------------------------------


def test_erased_subject_is_gone_from_every_table_and_from_the_file_bytes(env):
    erased_id, live_id = unique("acc_"), unique("acc_")
    first_mail, second_mail, live_mail = high_entropy_email(), high_entropy_email(), high_entropy_email()
    first_name, last_name, street = unique("Zbyn"), unique("Vrb"), unique("Ulice ")
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [
            created(erased_id, "2026-11-02T09:00:00+01:00", first_mail, first_name=first_name, last_name=last_name),
            email_changed(erased_id, "2026-11-02T10:00:00+01:00", second_mail, first_mail),
            event(
                "Address Changed",
                erased_id,
                "2026-11-02T11:00:00+01:00",
                properties={"street": street, "city": "Zorbetice", "postal_code": "999 01", "country": "CZ"},
            ),
            event("Marketing Consent Granted", erased_id, "2026-11-02T11:30:00+01:00",
                  properties={"notice_version": "v1"}),
            created(live_id, "2026-11-02T09:30:00+01:00", live_mail, first_name="Eva"),
            # rejected lines: one of the erased subject, one naming its old e-mail without a userId
            json.dumps({"messageId": "r-1", "type": "track", "event": "Signed In", "userId": erased_id,
                        "context": {"channel": "web"}, "properties": {"email": first_mail}}),
            '{"messageId": "r-2", "note": "' + second_mail + '", broken',
            json.dumps({"messageId": "r-3", "type": "track", "event": "Signed In", "userId": live_id}),
        ],
    )  # fmt: skip
    env.write_events("2026-11-03", "part-0000.jsonl", [deleted(erased_id, "2026-11-03T10:00:00+01:00")])
    env.write_export("crm", "2026-11-03", [{"account_id": erased_id, "email": second_mail}])

    run_job(env, "2026-11-02", WAREHOUSE)
    needles = [erased_id, first_mail, second_mail, first_name, last_name, street]
    assert {n for _, _, n in plain_hits(env, needles)} == {n.lower() for n in needles}  # there before the deletion
    before = file_bytes(env)
    assert first_mail.encode() in before and second_mail.encode() in before

    result = run_job(env, "2026-11-03", WAREHOUSE)

    assert result.success
    assert env.query("SELECT count(*) FROM core.accounts WHERE account_id = ?", [live_id]) == [(1,)]
    assert plain_hits(env, needles) == []
    data = file_bytes(env)
    for needle in needles:
        assert needle.encode() not in data, needle
    # Rows stay, keyed by subject_key alone; the live customer is untouched.
    subject = env.subject_key(erased_id)
    rows = env.query("SELECT account_id, properties FROM landing.events WHERE subject_key = ?", [subject])
    assert len(rows) == 5 and all(a is None for a, _ in rows)
    assert not any(set(json.loads(p or "{}")) & set(PERSONAL_PROPERTIES) for _, p in rows)
    assert env.query("SELECT account_id, properties->>'email' FROM landing.events WHERE account_id = ?", [live_id]) == [
        (live_id, live_mail)
    ]
    rejected = env.query("SELECT message_id, raw_line IS NULL, purged FROM landing.rejected ORDER BY line_number")
    assert rejected == [("r-1", True, True), (None, False, True), ("r-3", False, False)]
    # another subject's broken line keeps everything but the erased e-mail, which is erased where it stands
    assert env.query("SELECT raw_line FROM landing.rejected WHERE purged AND raw_line IS NOT NULL") == [
        ('{"messageId": "r-2", "note": "' + REDACTED + '", broken',)
    ]
    # The keys of every identifier it ever had are recorded, and nothing else.
    assert sorted(env.query("SELECT kind, key FROM compliance.erased_identifiers")) == sorted(
        [("account_id", subject), ("email", env.email_key(first_mail)), ("email", env.email_key(second_mail))]
    )
    assert env.query("SELECT count(*) FROM ops.compactions WHERE run_date = DATE '2026-11-03'") == [(1,)]
    assert env.query("SELECT count(*) FROM ops.compaction_due") == [(0,)]
    purged = dict(env.query("SELECT table_name, rows_purged FROM compliance.purge_log WHERE run_date = '2026-11-03'"))
    # in the vault only: history is never rewritten
    assert purged == {"vault.accounts": 1, "vault.event_properties": 3, "vault.quarantine": 2}
    # The register: still in the CRM export, within the month; the retained inbox was redacted the
    # same night, so the pipeline's own copies are not among the locations.
    assert register(env)[subject][:4] == (
        "pending",
        date(2026, 12, 3),
        "crm",
        None,
    )
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["erased_subjects_fully_purged"] is True
    assert checks["erased_subjects_redacted_from_inbox"] is True
    assert checks["erased_subjects_clean_downstream"] is False  # WARN: downstream residuals
    # Metadata, check results and logs show counts and shortened keys, never an identifier.
    [register_materialization] = result.asset_materializations_for_node("erasure__erasure_register")
    assert register_materialization.metadata["status/pending"].value == 1
    rendered = [str(e.message) for e in result.all_events if e.message]
    rendered += [entry.user_message for entry in env.instance.all_logs(result.run_id)]
    for node in (
        "purge__purge_log",
        "erasure__raw_retention",
        "erasure__erasure_register",
        "compaction__warehouse_compaction",
    ):
        for m in result.asset_materializations_for_node(node):
            rendered += [str(v.value) for v in m.metadata.values()]
    for evaluation in result.get_asset_check_evaluations():
        rendered += [str(v.value) for v in evaluation.metadata.values()]
    rendered += [str(r) for r in env.query("SELECT * FROM ops.check_results")]
    text = "\n".join(rendered)
    assert subject[:12] in text  # shortened keys are shown
    assert [n for n in needles if n in text] == []


class SimulatedKill(BaseException):
    """Stands for a SIGKILL at one point of the purge: nothing after it runs."""


@pytest.mark.parametrize("killed_in", ["_purge_account_ids", "_copy_vault_log"])
def test_a_purge_killed_after_its_vault_transaction_logs_what_an_uninterrupted_one_logs(env, monkeypatch, killed_in):
    account, live, mail = unique("acc_"), unique("acc_"), high_entropy_email()
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [created(account, "2026-11-02T09:00:00+01:00", mail), deleted(account, "2026-11-02T18:00:00+01:00")],
    )
    broken = f'{{"event": "Signed In", "userId": "{live}", "note": "wrote as {mail}" '  # not JSON: quarantined
    (env.inbox / "events" / "2026-11-02" / "part-0001.jsonl").write_text(broken + "\n")

    def killed(*_args, **_kwargs):
        raise SimulatedKill

    with monkeypatch.context() as m:
        m.setattr(purge_module, killed_in, killed)
        with pytest.raises(SimulatedKill):
            night(env, "2026-11-02")
    assert env.query("SELECT count(*) FROM vault.accounts WHERE subject_key = ?", [env.subject_key(account)]) == [(0,)]

    night(env, "2026-11-02")  # the re-run finds the vault purged already

    logged = env.query("SELECT table_name, rows_purged FROM compliance.purge_log ORDER BY ALL")
    assert logged == [("vault.accounts", 1), ("vault.event_properties", 1), ("vault.quarantine", 1)]
    night(env, "2026-11-02")  # boundary: a re-run that purges nothing adds nothing
    assert env.query("SELECT table_name, rows_purged FROM compliance.purge_log ORDER BY ALL") == logged


def test_a_late_event_of_an_erased_subject_is_purged_in_its_own_run(env):
    account, mail, street = unique("acc_"), high_entropy_email(), unique("Late street ")
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [created(account, "2026-11-02T09:00:00+01:00", mail), deleted(account, "2026-11-02T18:00:00+01:00")],
    )
    # Occurred before the deletion, arrived the next day (and so is no activity after deletion).
    late = event(
        "Address Changed",
        account,
        "2026-11-02T12:00:00+01:00",
        properties={"street": street, "postal_code": "110 00", "country": "CZ"},
    )
    env.write_events("2026-11-03", "part-0000.jsonl", [late])
    run_job(env, "2026-11-02", ERASURE_ONLY)
    assert env.query("SELECT count(*) FROM ops.compactions") == [(1,)]

    run_job(env, "2026-11-03", ERASURE_ONLY)

    assert env.query("SELECT account_id, properties FROM landing.events WHERE message_id = ?", [late["messageId"]]) == [
        (None, "{}")
    ]
    # its own run deletes what it brought into the vault: the account id again, the address
    assert dict(
        env.query("SELECT table_name, rows_purged FROM compliance.purge_log WHERE run_date = '2026-11-03'")
    ) == {
        "vault.accounts": 1,
        "vault.event_properties": 1,
    }
    assert env.query("SELECT run_date FROM ops.compactions ORDER BY run_date") == [
        (date(2026, 11, 2),),
        (date(2026, 11, 3),),
    ]
    assert plain_hits(env, [account, mail, street]) == []
    data = file_bytes(env)
    assert street.encode() not in data and account.encode() not in data


def test_a_night_without_anything_to_purge_does_not_compact_and_reruns_change_nothing(env):
    account = unique("acc_")
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [
            created(account, "2026-11-02T09:00:00+01:00", high_entropy_email()),
            deleted(account, "2026-11-02T18:00:00+01:00"),
        ],
    )
    env.write_events("2026-11-03", "part-0000.jsonl", [event("Signed In", "acc_other", "2026-11-03T09:00:00+01:00")])
    run_job(env, "2026-11-02", ERASURE_ONLY)
    state = (
        "SELECT 'register', * FROM compliance.erasure_register",
        "SELECT 'ids', * FROM compliance.erased_identifiers",
        "SELECT 'log', * EXCLUDE (purged_at) FROM compliance.purge_log",
        "SELECT 'retention', * FROM ops.retention_log",
    )
    before = sorted(str(r) for sql in state for r in env.query(sql))

    night(env, "2026-11-02")  # a re-run changes nothing
    assert sorted(str(r) for sql in state for r in env.query(sql)) == before
    run_job(env, "2026-11-03", ERASURE_ONLY)  # nothing new to purge: no compaction

    assert env.query("SELECT run_date FROM ops.compactions") == [(date(2026, 11, 2),)]
    assert env.query("SELECT count(*) FROM compliance.purge_log WHERE run_date = '2026-11-03'") == [(0,)]
    # nothing left anywhere: the retained inbox was redacted the night of the deletion
    assert env.query("SELECT status, checked_on, verified_on FROM compliance.erasure_register") == [
        ("verified", date(2026, 11, 3), date(2026, 11, 2))
    ]


def test_the_blocking_check_fails_when_a_table_added_later_holds_an_erased_identifier(env):
    account, mail = unique("acc_"), high_entropy_email()
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [created(account, "2026-11-02T09:00:00+01:00", mail), deleted(account, "2026-11-02T18:00:00+01:00")],
    )
    run_job(env, "2026-11-02", ERASURE_ONLY)
    with env.connect() as con:  # a table nobody told the erasure module about
        con.execute("CREATE SCHEMA IF NOT EXISTS scratch")
        con.execute("CREATE TABLE scratch.notes (id INTEGER, note VARCHAR NOT NULL, payload JSON)")
        con.execute(
            "INSERT INTO scratch.notes VALUES (1, ?, ?), (2, 'nothing here', '{}')",
            [f"Customer wrote from <{mail.upper()}> today", json.dumps({"ref": {"userId": account}})],
        )

    checked = env.run("2026-11-02", selection=dg.AssetSelection.assets(WAREHOUSE_COMPACTION))
    assert not checked.success
    [evaluation] = checked.get_asset_check_evaluations()
    assert evaluation.check_name == "erased_subjects_fully_purged" and not evaluation.passed
    assert evaluation.metadata["found_in/scratch.notes.note"].value == 1
    assert env.query(
        "SELECT passed, failed FROM ops.check_results WHERE check_name = 'erased_subjects_fully_purged'"
    ) == [(False, 1)]
    with env.connect() as con:  # the verifier sees it as residual data in the warehouse (the inbox was redacted)
        build_register(con, date(2026, 11, 2), env.inbox)
    assert register(env)[env.subject_key(account)][2] == "warehouse"

    run_job(env, "2026-11-02", ERASURE_ONLY)  # the next purge finds it generically and erases it where it stands

    assert env.query("SELECT id, note, payload FROM scratch.notes ORDER BY id") == [
        (1, f"Customer wrote from <{REDACTED}> today", json.dumps({"ref": {"userId": REDACTED}})),
        (2, "nothing here", "{}"),
    ]
    assert env.query("SELECT passed FROM ops.check_results WHERE check_name = 'erased_subjects_fully_purged'") == [
        (True,)
    ]
    assert mail.encode() not in file_bytes(env) and mail.upper().encode() not in file_bytes(env)


# ---------------------------------------------------------------------------------------------
# The verifier and the register
# ---------------------------------------------------------------------------------------------


def test_reregistration_with_the_same_email_is_not_residual(env):
    env.retention_days = 1  # yesterday's inbox folders go, so only exports and today's files count
    old, new, mail = unique("acc_"), unique("acc_"), high_entropy_email()
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [created(old, "2026-11-02T09:00:00+01:00", mail), deleted(old, "2026-11-02T18:00:00+01:00")],
    )
    env.write_export("marketing_list", "2026-11-02", [{"email": mail}])
    env.write_events("2026-11-04", "part-0000.jsonl", [created(new, "2026-11-04T09:00:00+01:00", f"  {mail.upper()} ")])
    env.write_export("marketing_list", "2026-11-04", [{"account_id": new, "email": mail}])
    subject = env.subject_key(old)

    night(env, "2026-11-02")
    night(env, "2026-11-03")
    assert register(env)[subject][:3] == ("pending", date(2026, 12, 2), "marketing_list")
    night(env, "2026-11-04")

    # The same address now belongs to a live account: neither the export nor its event is residual.
    assert register(env)[subject][:4] == ("verified", date(2026, 12, 2), None, date(2026, 11, 4))
    assert env.query("SELECT properties->>'email' FROM landing.events WHERE account_id = ?", [new]) == [
        (f"  {mail.upper()} ",)
    ]
    assert env.query("SELECT count(*) FROM compliance.purge_log WHERE run_date = '2026-11-04'") == [(0,)]


def test_an_earlier_email_is_found_in_an_export_and_unrelated_rows_are_not(env):
    account, first, second, other = unique("acc_"), high_entropy_email(), high_entropy_email(), high_entropy_email()
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl.gz",
        [
            created(account, "2026-11-02T09:00:00+01:00", first),
            email_changed(account, "2026-11-02T10:00:00+01:00", second, first),
            deleted(account, "2026-11-02T18:00:00+01:00"),
            created("acc_someone_else", "2026-11-02T09:00:00+01:00", other),
        ],
        gz=True,
    )
    env.write_export("marketing_list", "2026-11-02", [{"email": f" {first.upper()}"}, {"email": other}])
    env.write_export("club_roster", "2026-11-02", [{"account_id": "acc_someone_else", "email": other}])
    env.write_export("crm", "2026-11-01", [{"account_id": account}])  # latest CRM export <= D
    night(env, "2026-11-02")

    status, _, locations, *_ = register(env)[env.subject_key(account)]
    # the exports only: the retained .jsonl.gz file was redacted the same night
    assert (status, locations) == ("pending", "crm,marketing_list")


def test_status_is_pending_until_the_due_date_then_overdue_then_verified(env):
    env.retention_days = 1  # yesterday's inbox folder and exports go: only today's CRM export counts
    account, mail = unique("acc_"), high_entropy_email()
    env.write_events(
        "2027-01-31",
        "part-0000.jsonl",
        [created(account, "2027-01-31T09:00:00+01:00", mail), deleted(account, "2027-01-31T22:30:00+01:00")],
    )
    subject = env.subject_key(account)
    expected = {
        "2027-01-31": ("pending", "crm", None),  # the retained inbox is redacted the same night
        "2027-02-28": ("pending", "crm", None),  # the due date itself
        "2027-03-01": ("overdue", "crm", None),
    }
    for day, (status, locations, verified_on) in expected.items():
        env.write_export("crm", day, [{"account_id": account, "email": mail}])
        night(env, day)
        assert register(env)[subject][:4] == (status, date(2027, 2, 28), locations, verified_on), day

    env.write_export("crm", "2027-03-02", [{"account_id": "acc_other", "email": "other@example.cz"}])
    night(env, "2027-03-02")
    assert register(env)[subject][:4] == ("verified", date(2027, 2, 28), None, date(2027, 3, 2))
    night(env, "2027-03-02")  # re-run: the same
    assert register(env)[subject][:4] == ("verified", date(2027, 2, 28), None, date(2027, 3, 2))

    env.write_export("crm", "2027-03-05", [{"email": f"{mail.upper()} "}])  # the data came back
    night(env, "2027-03-05")
    assert register(env)[subject][:4] == ("overdue", date(2027, 2, 28), "crm", date(2027, 3, 2))
    assert env.query("SELECT deleted_at, erased_on FROM compliance.erasure_register") == [
        (env.query("SELECT TIMESTAMPTZ '2027-01-31 22:30:00+01:00'")[0][0], date(2027, 1, 31))
    ]


def test_the_first_date_verified_survives_a_rerun_of_an_earlier_day(env):
    """verified_on is the first date verified (CONTRACT 6): a re-run of a day before the deletion drops
    the subject's row (it is not erased as of that day), and the next run of a later day gives it
    back with that first date, not the later run's."""
    account = unique("acc_")
    env.write_events(
        "2026-11-02", "part-0000.jsonl", [created(account, "2026-11-02T09:00:00+01:00", high_entropy_email())]
    )
    env.write_events("2026-11-03", "part-0000.jsonl", [deleted(account, "2026-11-03T18:00:00+01:00")])
    subject = env.subject_key(account)
    for day in ("2026-11-02", "2026-11-03", "2026-11-04"):
        night(env, day)
    assert register(env)[subject][:4] == ("verified", date(2026, 12, 3), None, date(2026, 11, 3))

    night(env, "2026-11-02")
    assert register(env) == {}
    night(env, "2026-11-04")

    assert register(env)[subject][:4] == ("verified", date(2026, 12, 3), None, date(2026, 11, 3))


def test_a_deletion_is_seen_from_the_end_of_the_day_it_occurred_and_arrived(env):
    account = unique("acc_")
    # Arrives on Nov 2 but occurs 30 minutes after its end (accepted: within the hour).
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [
            created(account, "2026-11-02T09:00:00+01:00", high_entropy_email()),
            deleted(account, "2026-11-03T00:30:00+01:00"),
        ],
    )
    night(env, "2026-11-02")
    assert register(env) == {}
    assert env.query("SELECT count(*) FROM landing.events WHERE account_id IS NULL") == [(0,)]
    night(env, "2026-11-03")
    [(status, due, _locations, verified_on, *_rest)] = register(env).values()
    # erased on Nov 3, and verified that night: its retained inbox lines were redacted
    assert (status, due, verified_on, _rest[-1]) == (
        "verified",
        date(2026, 12, 3),
        date(2026, 11, 3),
        date(2026, 11, 3),
    )
    assert env.query("SELECT count(*) FROM landing.events WHERE account_id IS NOT NULL") == [(0,)]


@pytest.mark.parametrize(
    ("deleted_on", "due"),
    [
        ("2027-01-31", "2027-02-28"),
        ("2028-01-31", "2028-02-29"),  # leap year
        ("2028-01-29", "2028-02-29"),
        ("2026-03-31", "2026-04-30"),
        ("2026-08-31", "2026-09-30"),
        ("2026-12-31", "2027-01-31"),
        ("2026-11-15", "2026-12-15"),
        ("2026-02-28", "2026-03-28"),
    ],
)
def test_due_date_is_one_calendar_month_clamped_to_the_month_end(deleted_on, due):
    deleted_day, due_day = date.fromisoformat(deleted_on), date.fromisoformat(due)
    assert due_date(deleted_day) == due_day
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # The SQL rule takes the local (Prague) date of the deletion instant: late evening UTC of the
    # day before is already that day in Prague.
    instant = f"{(deleted_day - timedelta(days=1)).isoformat()} 23:30:00+00"
    assert con.execute(f"SELECT {DUE_DATE_SQL.format(ts='?::TIMESTAMPTZ')}", [instant]).fetchall() == [(due_day,)]


def prevent_inbox_redaction(monkeypatch) -> None:
    """The night of `tests.helpers.night` without its inbox redaction: what the verifier finds then."""
    monkeypatch.setattr("tests.helpers.redact_inbox", lambda *_args, **_kw: RedactionResult())


def test_residual_in_a_retained_inbox_file_is_found_until_retention_deletes_it(env, monkeypatch):
    """With the night's redaction prevented (the file cannot be rewritten), the verifier still
    reads every retained event file, and the subject stays `inbox` until retention deletes them."""
    prevent_inbox_redaction(monkeypatch)
    env.retention_days = 2
    account, mail = unique("acc_"), high_entropy_email()
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [created(account, "2026-11-02T09:00:00+01:00", mail), deleted(account, "2026-11-02T18:00:00+01:00")],
    )
    # A stray copy in a folder that is no arrival day is still a retained event file.
    (env.inbox / "events" / "resent").mkdir()
    (env.inbox / "events" / "resent" / "copy.jsonl").write_text(f'{{"email": "{mail}"}}\n')
    subject = env.subject_key(account)
    night(env, "2026-11-02")
    night(env, "2026-11-03")
    assert register(env)[subject][2] == "inbox"
    (env.inbox / "events" / "resent" / "copy.jsonl").unlink()
    night(env, "2026-11-03")
    assert register(env)[subject][2] == "inbox"  # the arrival folder is still retained

    night(env, "2026-11-04")  # D - F = 2 days: deleted, and the status is computed after it

    assert not (env.inbox / "events" / "2026-11-02").exists()
    assert register(env)[subject][:4] == ("verified", date(2026, 12, 2), None, date(2026, 11, 4))
    assert env.query("SELECT count(*) FROM ops.inbox_keys WHERE folder = '2026-11-02'") == [(0,)]


def test_the_night_redacts_every_retained_file_a_stray_copy_never_ingested_too(env):
    """CONTRACT 5: every retained event file under <inbox>/events/ is the pipeline's copy, a stray
    copy in a folder that is no arrival day (never ingested) too: the night of the deletion redacts
    them all, so the subject is verified that night, and retention still deletes the folder later."""
    env.retention_days = 2
    account, mail = unique("acc_"), high_entropy_email()
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [created(account, "2026-11-02T09:00:00+01:00", mail), deleted(account, "2026-11-02T18:00:00+01:00")],
    )
    stray = env.inbox / "events" / "resent" / "copy.jsonl"
    stray.parent.mkdir()
    stray.write_text(f'{{"email": "{mail}"}}\n')
    arrival = env.inbox / "events" / "2026-11-02" / "part-0000.jsonl"
    assert mail.encode() in arrival.read_bytes() and account.encode() in arrival.read_bytes()
    subject = env.subject_key(account)

    night(env, "2026-11-02")

    assert stray.read_text() == f'{{"email": "{email_replacement(env.email_key(mail))}"}}\n'  # just the token
    assert mail.encode() not in arrival.read_bytes() and account.encode() not in arrival.read_bytes()
    assert register(env)[subject][:4] == ("verified", date(2026, 12, 2), None, date(2026, 11, 2))
    night(env, "2026-11-04")  # D - F = 2 days: the redacted folder goes all the same
    assert not arrival.parent.exists() and stray.exists()
    assert register(env)[subject][:4] == ("verified", date(2026, 12, 2), None, date(2026, 11, 2))


def test_an_inbox_key_cache_in_the_old_text_format_is_rebuilt_and_still_finds_residuals(env, monkeypatch):
    prevent_inbox_redaction(monkeypatch)  # a residual in the inbox for the rebuilt cache to find
    account, mail = unique("acc_"), high_entropy_email()
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [created(account, "2026-11-02T09:00:00+01:00", mail), deleted(account, "2026-11-02T18:00:00+01:00")],
    )
    subject = env.subject_key(account)
    night(env, "2026-11-02")
    assert register(env)[subject][2] == "inbox"
    # The cache as an earlier version wrote it: keys as 64-character hex text, a scan recorded, and
    # no record of schema migrations (that version had none: pipelines/warehouse/migrations/).
    with env.connect() as con:
        con.execute("DROP TABLE ops.schema_migrations")
        con.execute("CREATE TABLE ops.old_keys AS SELECT folder, kind, lower(hex(key)) AS key FROM ops.inbox_keys")
        con.execute("DROP TABLE ops.inbox_keys")
        con.execute("ALTER TABLE ops.old_keys RENAME TO inbox_keys")
        assert con.execute("SELECT count(*) FROM ops.inbox_keys WHERE key = ?", [subject]).fetchall() == [(1,)]

    night(env, "2026-11-03")

    types = env.query(
        """SELECT data_type FROM information_schema.columns
           WHERE table_schema = 'ops' AND table_name = 'inbox_keys' AND column_name = 'key'"""
    )
    assert types == [("BLOB",)]  # no longer a text column: the warehouse scan does not read it
    # rebuilt from the retained folders (not left empty), and the residual is still found there
    assert env.query("SELECT count(*) FROM ops.inbox_keys WHERE key = unhex(?)", [subject]) == [(1,)]
    assert register(env)[subject][2] == "inbox"


# ---------------------------------------------------------------------------------------------
# A backfill over generated data
# ---------------------------------------------------------------------------------------------


def _generated_events(inbox: Path) -> list[tuple[date, dict]]:
    """(arrival day, event) of every parseable line the generator wrote."""
    found = []
    for folder in sorted((inbox / "events").iterdir()):
        for path in sorted(folder.iterdir()):
            data = path.read_bytes()
            if path.name.endswith(".gz"):
                try:
                    data = gzip.decompress(data)
                except (OSError, EOFError):
                    continue
            for line in data.decode("utf-8", errors="replace").splitlines():
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if isinstance(doc, dict) and isinstance(doc.get("userId"), str):
                    found.append((date.fromisoformat(folder.name), doc))
    return found


def _held_emails(events: list[tuple[date, dict]], erased: set[str], day: date) -> set[str]:
    """lower(trim(e-mail)) currently held by an account not erased by the end of `day`."""
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=PRAGUE)
    latest: dict[str, tuple[datetime, str]] = {}
    for arrival, doc in events:
        props = doc.get("properties") or {}
        if doc.get("event") not in ("Account Created", "Email Changed") or not isinstance(props.get("email"), str):
            continue
        try:
            at = datetime.fromisoformat(doc["timestamp"])
        except (KeyError, TypeError, ValueError):
            continue
        if arrival <= day and at <= end and doc["userId"] not in erased:
            if doc["userId"] not in latest or at > latest[doc["userId"]][0]:
                latest[doc["userId"]] = (at, props["email"].strip().lower())
    return {mail for _, mail in latest.values()}


@pytest.mark.slow
def test_a_backfill_over_generated_data_purges_everything_and_matches_the_plan(env):
    from generator import generate

    env.retention_days = 1  # inbox days go the next night, so statuses turn on the exports
    start, days = date(2026, 10, 26), 8
    plan = generate(env.inbox, 200, days, start, 20261105)
    deletions = plan["deletions"]
    assert deletions and plan["reregistrations"] and plan["late_events_after_deletion"]
    events = _generated_events(env.inbox)
    emails: dict[str, set[str]] = {}
    for _, doc in events:
        props = doc.get("properties") or {}
        for prop in ("email", "previous_email"):
            if isinstance(props.get(prop), str):
                emails.setdefault(doc["userId"], set()).add(props[prop].strip().lower())
    ever_seen = {}
    for day in (start + timedelta(days=i) for i in range(days)):
        result = run_job(env, day.isoformat(), WAREHOUSE)
        assert result.success, day
        erased = {d["account_id"]: d for d in deletions if date.fromisoformat(d["deleted_on"]) <= day}
        held = _held_emails(events, set(erased), day)
        # Nothing identifying an erased subject is left in any table or in the file's bytes.
        needles = sorted({a for a in erased} | {m for a in erased for m in emails.get(a, ()) if m not in held})
        assert plain_hits(env, needles) == [], day
        data = file_bytes(env)
        assert [n for n in needles if n.encode() in data] == [], day
        # The register follows the plan: downstream systems by the plan, the inbox by what is left.
        visible = "\n".join(
            p.read_text(errors="replace") if not p.name.endswith(".gz") else gzip.decompress(p.read_bytes()).decode()
            for folder in (env.inbox / "events").iterdir()
            if date.fromisoformat(folder.name) <= day
            for p in folder.iterdir()
        ).lower()
        actual = register(env)
        assert len(actual) == len(erased), day
        for account, deletion in erased.items():
            mine = {m for m in emails.get(account, ()) if m not in held}
            in_inbox = f'"userid":"{account}"' in visible or any(m in visible for m in mine)
            dirty = sorted(
                s for s, clean_on in deletion["downstream_clean_on"].items()
                if clean_on is None or date.fromisoformat(clean_on) > day
            ) + (["inbox"] if in_inbox else [])  # fmt: skip
            due = date.fromisoformat(deletion["due_date"])
            status = "verified" if not dirty else ("pending" if day <= due else "overdue")
            subject = env.subject_key(account)
            got_status, got_due, got_locations, verified_on, deleted_at, _ = actual[subject]
            assert (got_status, got_due, got_locations) == (status, due, ",".join(sorted(dirty)) or None), (
                day,
                account,
            )
            assert deleted_at == datetime.fromisoformat(deletion["deleted_at"])
            if status == "verified":
                ever_seen.setdefault(account, day)
            assert verified_on == ever_seen.get(account), (day, account)
    assert {r[0] for r in env.query("SELECT status FROM compliance.erasure_register")} >= {"verified", "pending"}
    late = env.query(
        "SELECT count(*), count(account_id) FROM landing.events WHERE message_id IN (SELECT unnest(?::VARCHAR[]))",
        [plan["late_events_after_deletion"]],
    )
    assert late == [(len(plan["late_events_after_deletion"]), 0)]


def test_compaction_waits_for_the_oldest_purge_to_be_delay_nights_old_and_then_erases_the_bytes(env):
    """Purges are batched: with a delay of 2 nights, a purge on Nov 2 is compacted on Nov 4,
    together with the purge of Nov 3; the tables are clean from the night of each purge."""
    env.compaction_delay_days = 2
    first, second = unique("acc_"), unique("acc_")
    first_mail, second_mail = high_entropy_email(), high_entropy_email()
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [created(first, "2026-11-02T09:00:00+01:00", first_mail), deleted(first, "2026-11-02T18:00:00+01:00")],
    )
    env.write_events(
        "2026-11-03",
        "part-0000.jsonl",
        [created(second, "2026-11-03T09:00:00+01:00", second_mail), deleted(second, "2026-11-03T18:00:00+01:00")],
    )
    env.write_events("2026-11-04", "part-0000.jsonl", [event("Signed In", "acc_other", "2026-11-04T09:00:00+01:00")])

    result = run_job(env, "2026-11-02", ERASURE_ONLY)
    assert env.query("SELECT count(*) FROM ops.compactions") == [(0,)]
    assert plain_hits(env, [first, first_mail]) == []  # the tables are clean the same night
    [materialization] = result.asset_materializations_for_node("compaction__warehouse_compaction")
    assert materialization.metadata["compacted/vault"].value is False
    assert materialization.metadata["compaction_due_by/vault"].value == "2026-11-04"

    run_job(env, "2026-11-03", ERASURE_ONLY)  # the oldest purge is 1 night old: still waiting
    assert env.query("SELECT count(*) FROM ops.compactions") == [(0,)]
    assert env.query("SELECT run_date FROM ops.compaction_due ORDER BY run_date") == [
        (date(2026, 11, 2),),
        (date(2026, 11, 3),),
    ]

    run_job(env, "2026-11-04", ERASURE_ONLY)  # 2 nights old: one compaction for both purges
    assert env.query("SELECT run_date FROM ops.compactions") == [(date(2026, 11, 4),)]
    assert env.query("SELECT count(*) FROM ops.compaction_due") == [(0,)]
    data = file_bytes(env)
    for needle in (first, first_mail, second, second_mail):
        assert needle.encode() not in data, needle


@pytest.mark.parametrize("raw", ["-1", "28", "a week"])
def test_a_compaction_delay_outside_the_sla_is_a_configuration_error(raw):
    from pipelines.config import ConfigError, parse_compaction_delay

    with pytest.raises(ConfigError, match="COMPLIANCE_COMPACTION_DELAY_DAYS"):
        parse_compaction_delay(raw)
    assert parse_compaction_delay("0") == 0 and parse_compaction_delay("27") == 27


def test_a_broken_line_naming_an_erased_subject_loses_its_whole_text_in_the_vault(env):
    """A rejected line that is not JSON cannot be keyed, but names the subject as its userId: the
    names in it cannot be told from the rest, so its whole text leaves the quarantine (the vault),
    as the inbox redaction replaces the line whole. Another subject's broken line keeps its text."""
    account, name, other = unique("acc_"), unique("Bohumila"), unique("acc_")
    env.write_events(
        "2026-11-02",
        "part-0000.jsonl",
        [
            created(account, "2026-11-02T09:00:00+01:00", high_entropy_email()),
            f'{{"userId": "{account}", "properties": {{"first_name": "{name}"}}, broken',
            f'{{"userId": "{other}", "properties": {{"first_name": "Kept"}}, broken',
        ],
    )
    env.write_events("2026-11-03", "part-0000.jsonl", [deleted(account, "2026-11-03T10:00:00+01:00")])
    night(env, "2026-11-02")
    assert env.query("SELECT count(*) FROM landing.rejected WHERE raw_line LIKE ?", [f"%{name}%"]) == [(1,)]

    night(env, "2026-11-03")

    rows = env.query("SELECT line_number, raw_line IS NULL, purged FROM landing.rejected ORDER BY line_number")
    assert rows == [(2, True, True), (3, False, False)]
    assert plain_hits(env, [name, account]) == []
    assert env.query("SELECT raw_line FROM landing.rejected WHERE line_number = 3")[0][0].startswith(
        f'{{"userId": "{other}"'
    )
