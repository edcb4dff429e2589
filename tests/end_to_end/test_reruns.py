"""Re-runs in any order change nothing (CONTRACT 3 and 5, "Re-runs").

A re-run of an earlier day sees the warehouse as it is *now*: it holds later days' events, among
them accounts that registered an e-mail after an erased subject had it. Such an e-mail belongs to
a live account now and must never be purged by the re-run, though no live account held it on the
day re-run. The property test generates small histories with deletions and re-registrations and
arbitrary sequences of re-run ranges; the scenario test runs the Dagster job and its reports.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.reports.archive import verify_archive
from tests.helpers import Env, created, deleted, email_changed, event, night, run_job, unique

START = date(2026, 11, 2)
DAYS = 4
#: Tables a re-run must leave as the clean run left them (timestamps of the run itself excluded).
STABLE = {
    "landing.events": """SELECT message_id, account_id, subject_key, properties::VARCHAR, arrival_date
                         FROM landing.events""",
    "landing.rejected": "SELECT source_file, line_number, reason, raw_line, account_id FROM landing.rejected",
    "compliance.erased_identifiers": "SELECT subject_key, kind, key FROM compliance.erased_identifiers",
}
#: Tables that hold the state as of the last day run: equal again once the last day is run again.
STATEFUL = {
    "compliance.erasure_register": """SELECT subject_key, deleted_at, due_date, status, residual_locations,
                                             verified_on FROM compliance.erasure_register""",
    "landing.export_keys": "SELECT system, export_date, row_number, subject_key, email_key FROM landing.export_keys",
    "compliance.erasure_remediation": """SELECT subject_key, system, export_date, row_number, matched_on
                                         FROM compliance.erasure_remediation""",
}


def snapshot(env: Env, queries: dict[str, str]) -> dict[str, list[tuple]]:
    return {name: sorted(env.query(sql), key=repr) for name, sql in queries.items()}


def day(n: int) -> date:
    return START + timedelta(days=n)


def ts(n: int, hour: int) -> str:
    return f"{day(n)}T{hour:02d}:00:00+01:00"


@st.composite
def histories(draw):
    """Accounts drawing e-mails from a small pool (so they are re-registered), some deleted."""
    pool = [f"shared{i}-{unique('')[:8]}@example.cz" for i in range(3)]
    accounts = []
    for i in range(draw(st.integers(2, 5))):
        born = draw(st.integers(0, DAYS - 1))
        account = {
            "id": unique(f"acc_{i}_"),
            "born": born,
            "email": draw(st.sampled_from(pool)),
            "change": None,
            "deleted": None,
        }
        if draw(st.booleans()) and born < DAYS - 1:
            account["change"] = (draw(st.integers(born + 1, DAYS - 1)), draw(st.sampled_from(pool)))
        if draw(st.booleans()):
            account["deleted"] = draw(st.integers(born, DAYS - 1))
        accounts.append(account)
    exports = {
        n: draw(st.lists(st.sampled_from(pool), max_size=2, unique=True)) for n in range(DAYS) if draw(st.booleans())
    }
    reruns = draw(
        st.lists(st.tuples(st.integers(0, DAYS - 1), st.integers(0, DAYS - 1)).map(sorted), min_size=1, max_size=3)
    )
    return pool, accounts, exports, reruns


def write_history(env: Env, accounts: list[dict], exports: dict[int, list[str]]) -> None:
    lines: dict[int, list[dict]] = {n: [] for n in range(DAYS)}
    for a in accounts:
        lines[a["born"]].append(created(a["id"], ts(a["born"], 9), a["email"]))
        if a["change"]:
            n, new = a["change"]
            lines[n].append(email_changed(a["id"], ts(n, 10), new, a["email"]))
        if a["deleted"] is not None:
            lines[a["deleted"]].append(deleted(a["id"], ts(a["deleted"], 18)))
        # free text of another account's event naming this account (found and purged "anywhere")
        lines[a["born"]].append(
            event("Signed In", unique("other_"), ts(a["born"], 11), properties={"note": f"ticket for {a['id']}"})
        )
    for n, events in lines.items():
        env.write_events(day(n), "part-0000.jsonl", events)
    for n, emails in exports.items():
        env.write_export("marketing_list", day(n), [{"email": e} for e in emails])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_reruns_in_any_order_change_nothing_and_never_touch_a_live_subject(env, history):
    pool, accounts, exports, reruns = history
    env.retention_days = 365
    for path in sorted(env.root.glob("*")):
        if path.is_file():  # a fresh warehouse for every example
            path.unlink()
    shutil.rmtree(env.inbox, ignore_errors=True)
    write_history(env, accounts, exports)
    for n in range(DAYS):
        night(env, day(n))
    clean, clean_state = snapshot(env, STABLE), snapshot(env, STATEFUL)
    live = {a["id"] for a in accounts if a["deleted"] is None}
    live_rows = env.query(
        "SELECT message_id, properties::VARCHAR FROM landing.events WHERE account_id IN (SELECT unnest(?::VARCHAR[]))",
        [sorted(live)],
    )

    for first, last in reruns:
        for n in range(first, last + 1):
            night(env, day(n))
        assert snapshot(env, STABLE) == clean, f"re-run of {day(first)}..{day(last)} changed history"
    assert (
        env.query(
            """SELECT message_id, properties::VARCHAR FROM landing.events
               WHERE account_id IN (SELECT unnest(?::VARCHAR[]))""",
            [sorted(live)],
        )
        == live_rows
    )
    night(env, day(DAYS - 1))
    assert snapshot(env, STATEFUL) == clean_state


def test_a_rerun_before_a_reregistration_keeps_the_live_accounts_email_and_its_reports(env):
    """Deleted on D+1, the same e-mail registered on D+2, then D..D+1 re-run."""
    old, new, mail = unique("acc_"), unique("acc_"), f"{unique('zq')}@example.cz"
    env.write_events("2026-11-02", "part-0000.jsonl", [created(old, "2026-11-02T09:00:00+01:00", mail)])
    env.write_events("2026-11-03", "part-0000.jsonl", [deleted(old, "2026-11-03T18:00:00+01:00")])
    env.write_events("2026-11-04", "part-0000.jsonl", [created(new, "2026-11-04T09:00:00+01:00", mail)])
    days = ("2026-11-02", "2026-11-03", "2026-11-04")
    for d in days:
        run_job(env, d)
    events = env.query("SELECT message_id, account_id, properties::VARCHAR FROM landing.events ORDER BY ALL")
    files = {p: p.read_bytes() for d in days for p in sorted((env.reports / d).iterdir())}
    later = {p: p.stat().st_mtime_ns for p in (env.reports / "2026-11-04").iterdir()}

    for d in days[:2]:
        result = run_job(env, d)
        assert result.success, d

    assert env.query("SELECT message_id, account_id, properties::VARCHAR FROM landing.events ORDER BY ALL") == events
    assert env.query("SELECT properties->>'email' FROM landing.events WHERE account_id = ?", [new]) == [(mail,)]
    # every file the same bytes, the page and the manifest included: the archive's chain holds
    for path, data in files.items():
        assert path.read_bytes() == data, path
    assert {p: p.stat().st_mtime_ns for p in (env.reports / "2026-11-04").iterdir()} == later
    assert all(not r.problems for r in verify_archive(env.reports, date(2026, 11, 2), date(2026, 11, 4)))


@pytest.mark.parametrize("rerun", ["2026-11-02", "2026-11-03"])
def test_a_rerun_never_purges_an_email_a_live_account_took_after_an_earlier_holder_changed_it(env, rerun):
    """The e-mail leaves the erased subject by a change, then a live account takes it later."""
    old, new, first, second = unique("acc_"), unique("acc_"), f"{unique('a')}@example.cz", f"{unique('b')}@example.cz"
    env.write_events("2026-11-02", "p.jsonl", [created(old, "2026-11-02T09:00:00+01:00", first)])
    env.write_events(
        "2026-11-03",
        "p.jsonl",
        [email_changed(old, "2026-11-03T09:00:00+01:00", second, first), deleted(old, "2026-11-03T19:00:00+01:00")],
    )
    env.write_events("2026-11-04", "p.jsonl", [created(new, "2026-11-04T09:00:00+01:00", first)])
    for d in ("2026-11-02", "2026-11-03", "2026-11-04"):
        night(env, d)
    night(env, rerun)
    assert env.query("SELECT properties->>'email' FROM landing.events WHERE account_id = ?", [new]) == [(first,)]
    # the erased subject's own e-mails are gone from its rows all the same
    assert env.query(
        "SELECT count(*) FROM landing.events WHERE subject_key = ? AND properties::VARCHAR LIKE '%@%'",
        [env.subject_key(old)],
    ) == [(0,)]
