"""The eight policy rules, each pinned at its boundaries, and the violations ledger."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from assets.compliance.care_hours import care_hours_on
from assets.compliance.rules import RULES, RULES_BY_ID
from assets.compliance.violations import unmatched_export_rows
from tests.helpers import CORE_AND_VIOLATIONS, deleted, derive, derive_on, event, grant, segment, withdraw
from tests.helpers import core_created as created

D1, D2, D3 = "2026-11-03", "2026-11-04", "2026-11-05"
PRAGUE = ZoneInfo("Europe/Prague")


def raised(env, rule: str) -> set[str]:
    """message_ids raised by an event rule."""
    return {r[0] for r in env.query("SELECT message_id FROM compliance.violations WHERE rule = ?", [rule])}


def rules_of(env, message_id: str) -> set[str]:
    return {r[0] for r in env.query("SELECT rule FROM compliance.violations WHERE message_id = ?", [message_id])}


def care(acc: str, ts: str, mid: str) -> dict:
    return event("Signed In", acc, ts, channel="care_center", message_id=mid, agentId="agent-7")


# -- registry -----------------------------------------------------------------------------------


def test_registry_holds_the_eight_policy_rules():
    assert [r.id for r in RULES] == [
        "email_change_not_via_care_center",
        "care_action_outside_hours",
        "password_changed_without_reset",
        "marketing_without_consent",
        "activity_after_deletion",
        "club_member_without_consent",
        "marketing_list_without_consent",
        "erasure_overdue",
    ]
    severities = {r.id: r.severity for r in RULES}
    assert severities["erasure_overdue"] == "critical"
    assert severities["care_action_outside_hours"] == "medium"
    assert {severities[r] for r in severities if r not in ("erasure_overdue", "care_action_outside_hours")} == {"high"}
    assert {r.id for r in RULES if r.kind == "export"} == {
        "club_member_without_consent",
        "marketing_list_without_consent",
        "erasure_overdue",
    }
    assert RULES_BY_ID["erasure_overdue"].unique_on == ("subject_key", "system")
    assert RULES_BY_ID["activity_after_deletion"].unique_on == ("message_id",)
    for rule in RULES:
        assert len(rule.description) > 40 and rule.sql.strip().upper().startswith(("SELECT", "WITH"))


# -- email_change_not_via_care_center -----------------------------------------------------------


def test_email_change_only_via_care_center(env):
    lines = [created("acc_1", "2026-11-03T09:00:00+01:00")]
    for channel in ("care_center", "web", "app", "system"):
        lines.append(
            event(
                "Email Changed",
                "acc_1",
                "2026-11-03T10:00:00+01:00",
                channel=channel,
                message_id=f"email-{channel}",
                properties={"email": f"{channel}@example.cz"},
            )
        )
    env.write_events(D1, "a.jsonl", lines)
    derive(env, D1)
    assert raised(env, "email_change_not_via_care_center") == {"email-web", "email-app", "email-system"}
    details = dict(
        env.query(
            "SELECT message_id, details FROM compliance.violations WHERE rule = 'email_change_not_via_care_center'"
        )
    )
    assert details["email-web"] == "channel=web"
    assert "@" not in " ".join(details.values())


# -- care_action_outside_hours ------------------------------------------------------------------

CARE_CASES = [
    # (timestamp, outside hours?, why)
    ("2026-11-03T19:59:59+01:00", False, "weekday, last second inside"),
    ("2026-11-03T20:00:00+01:00", True, "weekday, end is exclusive"),
    ("2026-11-03T07:59:59+01:00", True, "weekday, before opening"),
    ("2026-11-03T08:00:00+01:00", False, "weekday, start is inclusive"),
    ("2026-11-03T18:59:59Z", False, "weekday in UTC: 19:59:59 local"),
    ("2026-11-03T19:00:00Z", True, "weekday in UTC: 20:00 local"),
    ("2026-11-07T09:59:00+01:00", True, "Saturday 09:59"),
    ("2026-11-07T10:00:00+01:00", False, "Saturday 10:00"),
    ("2026-11-07T17:59:59+01:00", False, "Saturday 17:59:59"),
    ("2026-11-07T18:00:00+01:00", True, "Saturday 18:00"),
    ("2026-11-17T09:59:00+01:00", True, "public holiday (Tue 17 Nov) 09:59"),
    ("2026-11-17T10:00:00+01:00", False, "public holiday 10:00"),
    ("2026-11-17T18:00:00+01:00", True, "public holiday 18:00, although a weekday"),
    ("2026-12-24T09:59:59+01:00", True, "Christmas Eve (Thu) 09:59:59"),
    ("2026-12-24T10:00:00+01:00", False, "Christmas Eve 10:00"),
    ("2026-11-17T04:00:00+10:00", False, "Mon 16 Nov 19:00 local, written with a holiday's date"),
    ("2026-11-17T21:30:00-10:00", False, "Wed 18 Nov 08:30 local, written with a holiday's date"),
    ("2026-11-06T23:30:00Z", True, "Friday in UTC but Saturday 00:30 local"),
    # Autumn DST change, Sunday 2026-10-25: 03:00 CEST -> 02:00 CET; Sunday hours 10-18.
    ("2026-10-25T09:59:00+01:00", True, "DST end day, 09:59 CET"),
    ("2026-10-25T08:59:59Z", True, "DST end day, 09:59:59 CET in UTC"),
    ("2026-10-25T09:00:00Z", False, "DST end day, 10:00 CET in UTC"),
    ("2026-10-25T10:00:00+02:00", True, "DST end day, +02:00 offset is 09:00 CET"),
    ("2026-10-25T11:00:00+02:00", False, "DST end day, +02:00 offset is 10:00 CET"),
    ("2026-10-25T17:00:00Z", True, "DST end day, 18:00 CET in UTC"),
    ("2026-10-25T18:00:00+02:00", False, "DST end day, +02:00 offset is 17:00 CET"),
    ("2026-10-26T20:59:59+02:00", False, "Monday after, +02:00 offset is 19:59:59 CET"),
    ("2026-10-26T21:00:00+02:00", True, "Monday after, +02:00 offset is 20:00 CET"),
    # Spring DST change, Sunday 2026-03-29: 02:00 CET -> 03:00 CEST.
    ("2026-03-29T07:59:59Z", True, "DST start day, 09:59:59 CEST in UTC"),
    ("2026-03-29T08:00:00Z", False, "DST start day, 10:00 CEST in UTC"),
    ("2026-03-29T09:30:00+01:00", False, "DST start day, +01:00 offset is 10:30 CEST"),
    ("2026-03-29T08:59:00+01:00", True, "DST start day, +01:00 offset is 09:59 CEST"),
    ("2026-03-29T17:00:00+01:00", True, "DST start day, +01:00 offset is 18:00 CEST"),
    ("2026-03-30T17:59:59Z", False, "Monday after, 19:59:59 CEST in UTC"),
    ("2026-03-30T18:00:00Z", True, "Monday after, 20:00 CEST in UTC"),
]


def test_care_hours_table_is_the_policy():
    assert care_hours_on(date(2026, 11, 3)) == (time(8), time(20))
    assert care_hours_on(date(2026, 11, 7)) == (time(10), time(18))
    assert care_hours_on(date(2026, 11, 17)) == (time(10), time(18))  # Struggle for Freedom and Democracy Day
    assert care_hours_on(date(2026, 4, 6)) == (time(10), time(18))  # Easter Monday, from the holidays library


def test_care_action_outside_hours_boundaries(env):
    # Each case is its own event, in the arrival folder of its local occurrence day.
    by_day: dict[str, list[dict]] = {}
    for n, (ts, _outside, _why) in enumerate(CARE_CASES):
        local_day = datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(PRAGUE).date().isoformat()
        by_day.setdefault(local_day, []).append(care(f"acc_{n}", ts, f"care-{n}"))
    for day in sorted(by_day):
        env.write_events(day, "a.jsonl", by_day[day])
    for day in sorted(by_day):
        derive(env, day)
    got = raised(env, "care_action_outside_hours")
    wrong = [(ts, why) for n, (ts, outside, why) in enumerate(CARE_CASES) if (f"care-{n}" in got) != outside]
    assert wrong == []
    details = dict(
        env.query("SELECT message_id, details FROM compliance.violations WHERE rule = 'care_action_outside_hours'")
    )
    assert details["care-1"] == "local time 20:00:00 Tue 2026-11-03; open 08:00-20:00"
    assert details["care-10"] == "local time 09:59:00 Tue 2026-11-17 (public holiday); open 10:00-18:00"
    assert details["care-19"] == "local time 09:59:59 Sun 2026-10-25; open 10:00-18:00"
    assert env.query("SELECT name FROM compliance.czech_holidays WHERE day = DATE '2026-11-17'") != []


def test_care_hours_apply_to_care_center_events_only(env):
    env.write_events(
        D1,
        "a.jsonl",
        [
            event("Signed In", "acc_1", "2026-11-03T23:00:00+01:00", channel="web", message_id="web-night"),
            event("Signed In", "acc_1", "2026-11-03T23:00:00+01:00", channel="system", message_id="system-night"),
            care("acc_1", "2026-11-03T23:00:00+01:00", "care-night"),
        ],
    )
    derive(env, D1)
    assert raised(env, "care_action_outside_hours") == {"care-night"}


# -- password_changed_without_reset -------------------------------------------------------------


def test_password_change_needs_a_reset_email_within_24_hours(env):
    def reset(acc, ts):
        return event("Password Reset Email Sent", acc, ts, channel="system")

    def changed(acc, ts, mid):
        return event("Password Changed", acc, ts, message_id=mid)

    env.write_events(
        "2026-11-02",
        "a.jsonl",
        [
            reset("acc_23h", "2026-11-02T12:00:00+01:00"),
            reset("acc_25h", "2026-11-02T12:00:00+01:00"),
            reset("acc_24h", "2026-11-02T12:00:00+01:00"),
            reset("acc_other", "2026-11-02T12:00:00+01:00"),
            reset("acc_two", "2026-11-02T10:00:00+01:00"),
        ],
    )
    env.write_events(
        D1,
        "a.jsonl",
        [
            changed("acc_23h", "2026-11-03T11:00:00+01:00", "pw-23h"),
            changed("acc_25h", "2026-11-03T13:00:00+01:00", "pw-25h"),
            changed("acc_24h", "2026-11-03T12:00:00+01:00", "pw-24h-exactly"),
            changed("acc_none", "2026-11-03T12:00:00+01:00", "pw-no-reset"),
            changed("acc_someone_else", "2026-11-03T11:00:00+01:00", "pw-other-account"),
            # the reset e-mail comes one minute after the change: too late
            changed("acc_after", "2026-11-03T12:00:00+01:00", "pw-reset-after"),
            reset("acc_after", "2026-11-03T12:01:00+01:00"),
            # a fresh reset e-mail makes a later change fine, even with an old one around
            reset("acc_two", "2026-11-03T09:00:00+01:00"),
            changed("acc_two", "2026-11-03T09:30:00+01:00", "pw-fresh-reset"),
            # the reset e-mail at the same instant counts
            reset("acc_same", "2026-11-03T09:00:00+01:00"),
            changed("acc_same", "2026-11-03T09:00:00+01:00", "pw-same-instant"),
        ],
    )
    derive(env, "2026-11-02")
    derive(env, D1)
    assert raised(env, "password_changed_without_reset") == {
        "pw-25h",
        "pw-no-reset",
        "pw-other-account",
        "pw-reset-after",
    }
    details = dict(
        env.query("SELECT message_id, details FROM compliance.violations WHERE rule = 'password_changed_without_reset'")
    )
    assert details["pw-25h"] == "reset e-mail 25.0 h before"
    assert details["pw-no-reset"] == "no reset e-mail before the change"


def test_password_window_is_24_real_hours_across_dst(env):
    """24 hours are elapsed time: the wall clock gains or loses an hour on the DST days."""

    def reset(acc, ts):
        return event("Password Reset Email Sent", acc, ts, channel="system")

    env.write_events(
        "2026-10-24",
        "a.jsonl",
        [reset("acc_autumn_in", "2026-10-24T12:00:00+02:00"), reset("acc_autumn_out", "2026-10-24T12:00:00+02:00")],
    )
    env.write_events(
        "2026-10-25",
        "a.jsonl",
        [
            # 11:00 CET = 24 h after 12:00 CEST (wall clock: 23 h): inside
            event("Password Changed", "acc_autumn_in", "2026-10-25T11:00:00+01:00", message_id="autumn-24h"),
            # 11:30 CET = 24.5 h after (wall clock: 23.5 h): outside
            event("Password Changed", "acc_autumn_out", "2026-10-25T10:30:00Z", message_id="autumn-24.5h"),
        ],
    )
    env.write_events("2026-03-28", "a.jsonl", [reset("acc_spring", "2026-03-28T12:00:00+01:00")])
    env.write_events(
        "2026-03-29",
        "a.jsonl",
        # 12:30 CEST = 23.5 h after 12:00 CET (wall clock: 24.5 h): inside
        [event("Password Changed", "acc_spring", "2026-03-29T12:30:00+02:00", message_id="spring-23.5h")],
    )
    for day in ("2026-03-28", "2026-03-29", "2026-10-24", "2026-10-25"):
        derive(env, day)
    assert raised(env, "password_changed_without_reset") == {"autumn-24.5h"}


# -- marketing_without_consent ------------------------------------------------------------------


def send(acc: str, ts: str, mid: str) -> dict:
    return event(
        "Marketing Message Sent",
        acc,
        ts,
        channel="system",
        message_id=mid,
        properties={"campaign_id": "c-1", "medium": "email"},
    )


def test_marketing_send_around_a_withdrawal(env):
    env.write_events(
        D1,
        "a.jsonl",
        [
            created("acc_1", "2026-11-03T08:00:00+01:00"),
            send("acc_1", "2026-11-03T08:59:00+01:00", "before-grant"),
            grant("acc_1", "2026-11-03T09:00:00+01:00"),
            send("acc_1", "2026-11-03T09:00:00+01:00", "at-grant"),
            send("acc_1", "2026-11-03T11:59:00+01:00", "minute-before-withdrawal"),
            withdraw("acc_1", "2026-11-03T12:00:00+01:00"),
            send("acc_1", "2026-11-03T12:00:00+01:00", "at-withdrawal"),
            send("acc_1", "2026-11-03T12:01:00+01:00", "minute-after-withdrawal"),
            segment("acc_1", "2026-11-03T13:00:00+01:00", {"Marketing": True}),
            send("acc_1", "2026-11-03T13:01:00+01:00", "after-segment-grant"),
            segment("acc_1", "2026-11-03T14:00:00+01:00", {"analytics": True}),
            send("acc_1", "2026-11-03T14:01:00+01:00", "after-segment-key-missing"),
            created("acc_never", "2026-11-03T08:00:00+01:00"),
            send("acc_never", "2026-11-03T10:00:00+01:00", "never-consented"),
        ],
    )
    derive(env, D1)
    assert raised(env, "marketing_without_consent") == {
        "before-grant",
        "at-withdrawal",
        "minute-after-withdrawal",
        "after-segment-key-missing",
        "never-consented",
    }
    details = dict(env.query("SELECT message_id, details FROM compliance.violations"))
    assert details["minute-after-withdrawal"] == "consent withdrawn before the send; medium=email"
    assert details["never-consented"] == "no consent event before the send; medium=email"


def test_send_to_a_deleted_account_raises_only_marketing_without_consent(env):
    env.write_events(
        D1,
        "a.jsonl",
        [
            created("acc_1", "2026-11-03T08:00:00+01:00"),
            grant("acc_1", "2026-11-03T09:00:00+01:00"),
            send("acc_1", "2026-11-03T11:59:00+01:00", "send-before-deletion"),
            deleted("acc_1", "2026-11-03T12:00:00+01:00"),
            send("acc_1", "2026-11-03T12:00:00+01:00", "send-at-deletion"),
            send("acc_1", "2026-11-03T12:01:00+01:00", "send-after-deletion"),
            grant("acc_1", "2026-11-03T12:30:00+01:00", message_id="grant-after-deletion"),
            send("acc_1", "2026-11-03T12:31:00+01:00", "send-after-late-grant"),
        ],
    )
    result = env.run(D1, selection=CORE_AND_VIOLATIONS)
    assert result.success
    assert rules_of(env, "send-before-deletion") == set()
    assert rules_of(env, "send-at-deletion") == {"marketing_without_consent"}
    assert rules_of(env, "send-after-deletion") == {"marketing_without_consent"}
    assert rules_of(env, "send-after-late-grant") == {"marketing_without_consent"}
    # the grant after the deletion is activity after deletion; it restores nothing
    assert rules_of(env, "grant-after-deletion") == {"activity_after_deletion"}
    details = dict(env.query("SELECT message_id, details FROM compliance.violations"))
    assert details["send-after-deletion"].startswith("account deleted before the send")


def test_late_withdrawal_is_judged_when_it_arrives(env):
    env.write_events(
        D1,
        "a.jsonl",
        [
            created("acc_1", "2026-11-03T08:00:00+01:00"),
            grant("acc_1", "2026-11-03T09:00:00+01:00"),
            send("acc_1", "2026-11-03T12:01:00+01:00", "send"),
        ],
    )
    env.write_events(D2, "a.jsonl", [withdraw("acc_1", "2026-11-03T12:00:00+01:00")])
    derive(env, D1)
    assert raised(env, "marketing_without_consent") == set()
    derive(env, D2)
    assert env.query("SELECT message_id, detected_on::VARCHAR FROM compliance.violations") == [("send", D2)]


# -- activity_after_deletion --------------------------------------------------------------------


def test_activity_after_deletion(env):
    env.write_events(
        D1,
        "a.jsonl",
        [
            created("acc_1", "2026-11-03T08:00:00+01:00"),
            event("Signed In", "acc_1", "2026-11-03T11:59:00+01:00", message_id="before"),
            event("Account Deletion Requested", "acc_1", "2026-11-03T11:58:00+01:00", message_id="request"),
            deleted("acc_1", "2026-11-03T12:00:00+01:00", message_id="deletion"),
            event("Signed In", "acc_1", "2026-11-03T12:00:00+01:00", message_id="same-instant"),
            event("Signed In", "acc_1", "2026-11-03T12:01:00+01:00", channel="app", message_id="after"),
            event("Password Reset Requested", "acc_1", "2026-11-03T13:00:00+01:00", message_id="after-2"),
            deleted("acc_1", "2026-11-03T14:00:00+01:00", message_id="second-deletion"),
            send("acc_1", "2026-11-03T13:00:00+01:00", "send-after"),
            # another account's activity is unaffected
            created("acc_2", "2026-11-03T08:00:00+01:00"),
            event("Signed In", "acc_2", "2026-11-03T13:00:00+01:00", message_id="other-account"),
        ],
    )
    # An event that happened before the deletion but arrives later is not activity after it.
    env.write_events(
        D2,
        "a.jsonl",
        [
            event(
                "Address Changed",
                "acc_1",
                "2026-11-03T11:00:00+01:00",
                message_id="late",
                properties={"postal_code": "11000", "country": "CZ"},
            )
        ],
    )
    derive(env, D1)
    derive(env, D2)
    assert raised(env, "activity_after_deletion") == {"after", "after-2", "second-deletion"}
    assert rules_of(env, "send-after") == {"marketing_without_consent"}
    details = dict(env.query("SELECT message_id, details FROM compliance.violations"))
    assert details["after"] == "event=Signed In; channel=app; 1 min after deletion"
    assert details["after-2"] == "event=Password Reset Requested; channel=web; 60 min after deletion"
    assert details["second-deletion"] == "event=Account Deleted; channel=web; 2.0 h after deletion"


# -- export rules -------------------------------------------------------------------------------


def test_export_rules_judge_consent_at_the_end_of_the_export_day(env):
    env.write_events(
        D1,
        "a.jsonl",
        [
            created("acc_consented", "2026-11-03T08:00:00+01:00", "consented@example.cz"),
            grant("acc_consented", "2026-11-03T09:00:00+01:00"),
            created("acc_withdrawn", "2026-11-03T08:00:00+01:00", "withdrawn@example.cz"),
            grant("acc_withdrawn", "2026-11-03T09:00:00+01:00"),
            withdraw("acc_withdrawn", "2026-11-03T23:59:00+01:00"),
            created("acc_never", "2026-11-03T08:00:00+01:00", "never@example.cz"),
            created("acc_withdraws_tomorrow", "2026-11-03T08:00:00+01:00", "tomorrow@example.cz"),
            grant("acc_withdraws_tomorrow", "2026-11-03T09:00:00+01:00"),
            withdraw("acc_withdraws_tomorrow", "2026-11-04T00:01:00+01:00"),
            # matched by e-mail: the address it held at the end of the export day (changed the day after)
            created("acc_by_email", "2026-11-03T08:00:00+01:00", "Mover@Example.cz"),
            # held this address earlier in the day only: the row is not this account
            created("acc_old_address", "2026-11-03T08:00:00+01:00", "gone@example.cz"),
            event(
                "Email Changed",
                "acc_old_address",
                "2026-11-03T10:00:00+01:00",
                channel="care_center",
                properties={"email": "current@example.cz"},
            ),
            # erased accounts are erasure residuals, not these rules
            created("acc_erased", "2026-11-03T08:00:00+01:00", "erased@example.cz"),
            deleted("acc_erased", "2026-11-03T10:00:00+01:00"),
        ],
    )
    env.write_events(
        D2,
        "a.jsonl",
        [
            event(
                "Email Changed",
                "acc_by_email",
                "2026-11-04T09:00:00+01:00",
                channel="care_center",
                properties={"email": "moved@example.cz"},
            )
        ],
    )
    roster = [
        {"account_id": "acc_consented", "email": "consented@example.cz"},
        {"account_id": "acc_withdrawn", "email": ""},
        {"account_id": "acc_never", "email": "never@example.cz"},
        {"account_id": "acc_never", "email": ""},  # twice on the list: one violation
        {"account_id": "acc_withdraws_tomorrow", "email": ""},
        {"account_id": "", "email": " mover@example.CZ "},
        {"account_id": "", "email": "gone@example.cz"},
        {"account_id": "acc_erased", "email": "erased@example.cz"},
        {"account_id": "acc_unknown", "email": "unknown@example.cz"},
    ]
    env.write_export("club_roster", D1, roster)
    env.write_export("marketing_list", D1, [{"account_id": "acc_never", "email": ""}], header=["account_id"])
    env.write_export("crm", D1, roster)  # not a consent-judged system
    derive(env, D1)
    derive(env, D2)  # no new export: the D1 exports are still the latest, and nothing is raised twice
    derive(env, D2)
    rows = env.query(
        """SELECT rule, account_id, system, detected_on::VARCHAR, message_id, details
           FROM compliance.violations ORDER BY rule, account_id"""
    )
    assert [r[:5] for r in rows] == [
        ("club_member_without_consent", "acc_by_email", "club_roster", D1, None),
        ("club_member_without_consent", "acc_never", "club_roster", D1, None),
        ("club_member_without_consent", "acc_withdrawn", "club_roster", D1, None),
        ("marketing_list_without_consent", "acc_never", "marketing_list", D1, None),
    ]
    details = {(r[0], r[1]): r[5] for r in rows}
    assert details[("club_member_without_consent", "acc_by_email")] == (
        "on the club_roster export of 2026-11-03 (matched by e-mail); no consent event by the end of that day"
    )
    assert details[("club_member_without_consent", "acc_withdrawn")].endswith(
        "consent withdrawn by the end of that day"
    )
    assert not any("@" in d or "acc_" in d for d in details.values())


def test_export_rules_are_raised_once_per_subject_and_system_not_every_night(env):
    env.write_events(
        D1,
        "a.jsonl",
        [created("acc_1", "2026-11-03T08:00:00+01:00"), created("acc_2", "2026-11-03T08:00:00+01:00")],
    )
    for day in (D1, D2, D3):
        env.write_export("club_roster", day, [{"account_id": "acc_1"}], header=["account_id"])
    env.write_export("marketing_list", D2, [{"account_id": "acc_1"}, {"account_id": "acc_2"}], header=["account_id"])
    env.run(D1, selection=CORE_AND_VIOLATIONS)
    env.run(D2, selection=CORE_AND_VIOLATIONS)
    result = env.run(D3, selection=CORE_AND_VIOLATIONS)
    assert result.success
    rows = env.query("SELECT rule, account_id, system, detected_on::VARCHAR FROM compliance.violations ORDER BY ALL")
    assert rows == [
        ("club_member_without_consent", "acc_1", "club_roster", D1),
        ("marketing_list_without_consent", "acc_1", "marketing_list", D2),
        ("marketing_list_without_consent", "acc_2", "marketing_list", D2),
    ]


def test_export_rules_keep_no_copy_of_the_export_rows_and_count_the_unmatched_ones(env):
    """The per-row mapping is computed per rule, not materialised: at 3M accounts a TEMP copy of the
    exports' 5.4M rows held most of the violations step's memory (docs/scaling.md)."""
    env.write_events(
        D1,
        "a.jsonl",
        [created(f"acc_{i}", "2026-11-03T08:00:00+01:00") for i in range(200)]
        + [created("acc_mail", "2026-11-03T08:00:00+01:00", "mail@example.cz")],
    )
    roster = [{"account_id": f"acc_{i}", "email": ""} for i in range(200)]
    roster += [
        {"account_id": "", "email": "MAIL@example.cz"},  # matched by e-mail
        {"account_id": "acc_unknown", "email": ""},  # no such account: unmatched
        {"account_id": "", "email": "nobody@example.cz"},  # nobody holds it: unmatched
    ]
    env.write_export("club_roster", D1, roster)
    env.write_export("marketing_list", D1, roster[:150])
    with env.connect() as con:
        outcomes = {o.rule: o for o in derive_on(con, env, D1)}
        assert unmatched_export_rows(con) == [("club_roster", 203, 2), ("marketing_list", 150, 0)]
        temp_rows = con.execute(
            "SELECT table_name, estimated_size FROM duckdb_tables() WHERE temporary ORDER BY estimated_size DESC"
        ).fetchall()
    # nobody consented: every matched account is an offence, once per system
    assert outcomes["club_member_without_consent"].new == 201
    assert outcomes["marketing_list_without_consent"].new == 150
    assert all(rows < 10 for _, rows in temp_rows), temp_rows


# -- erasure_overdue ----------------------------------------------------------------------------


def test_erasure_overdue_one_row_per_subject_and_location(env):
    env.write_events(D1, "a.jsonl", [created("acc_1", "2026-11-03T08:00:00+01:00")])

    def register(status: str, locations: str | None, subject: str = "k-overdue") -> None:
        with env.connect() as con:
            con.execute("DELETE FROM compliance.erasure_register WHERE subject_key = ?", [subject])
            con.execute(
                """INSERT INTO compliance.erasure_register
                   (subject_key, deleted_at, due_date, status, residual_locations, verified_on, erased_on, checked_on)
                   VALUES (?, '2026-10-01 12:00:00+02', DATE '2026-11-01', ?, ?, NULL,
                           DATE '2026-10-01', DATE '2026-11-03')""",
                [subject, status, locations],
            )

    register("overdue", "crm,warehouse")
    register("pending", "inbox", subject="k-pending")
    register("verified", None, subject="k-verified")
    derive(env, D1)
    derive(env, D1)
    register("overdue", "crm,inbox,warehouse")
    derive(env, D2)
    rows = env.query(
        """SELECT subject_key, system, detected_on::VARCHAR, account_id, message_id, occurred_at, severity
           FROM compliance.violations WHERE rule = 'erasure_overdue' ORDER BY detected_on, system"""
    )
    assert [r[:3] for r in rows] == [
        ("k-overdue", "crm", D1),
        ("k-overdue", "warehouse", D1),
        ("k-overdue", "inbox", D2),
    ]
    assert all(r[3] is None and r[4] is None and r[6] == "critical" for r in rows)
    assert rows[0][5].isoformat() == "2026-10-01T12:00:00+02:00"


# -- the ledger ---------------------------------------------------------------------------------


def test_rerunning_a_day_adds_nothing_and_the_ledger_is_kept(env):
    env.write_events(
        D1,
        "a.jsonl",
        [
            created("acc_1", "2026-11-03T08:00:00+01:00"),
            event("Email Changed", "acc_1", "2026-11-03T10:00:00+01:00", properties={"email": "x@example.cz"}),
            send("acc_1", "2026-11-03T10:00:00+01:00", "send-1"),
        ],
    )
    env.write_export("club_roster", D1, [{"account_id": "acc_1"}], header=["account_id"])
    first = env.run(D1, selection=CORE_AND_VIOLATIONS)
    assert first.success
    before = env.query("SELECT * FROM compliance.violations ORDER BY ALL")
    assert len(before) == 3
    again = env.run(D1, selection=CORE_AND_VIOLATIONS)
    assert again.success
    assert env.query("SELECT * FROM compliance.violations ORDER BY ALL") == before
    env.run(D2, selection=CORE_AND_VIOLATIONS)
    assert env.query("SELECT * FROM compliance.violations ORDER BY ALL") == before

    (mat,) = again.asset_materializations_for_node("compliance__violations")
    assert mat.metadata["dagster/row_count"].value == 3
    assert mat.metadata["new_today"].value == 3  # rows detected on D1, whichever run of D1 added them
    preview = mat.metadata["preview"].value
    assert "| marketing_without_consent | high | 1 | 1 | 1 |" in preview
    assert "acc_1" not in preview and "@" not in preview
    evaluations = {e.check_name: e.passed for e in again.get_asset_check_evaluations()}
    assert evaluations["violations_are_unique"] is True


def test_uniqueness_check_detects_duplicates(env):
    from checks.compliance import DUPLICATES_SQL, EVENT_RULES, EXPORT_RULES

    with env.connect() as con:
        con.execute(
            """INSERT INTO keyed.violations VALUES
               ('marketing_without_consent', 'high', 'k1', NULL, DATE '2026-11-03', 'm-1', NULL, ''),
               ('marketing_without_consent', 'high', 'k1', NULL, DATE '2026-11-04', 'm-1', NULL, ''),
               ('club_member_without_consent', 'high', 'k1', NULL, DATE '2026-11-03', NULL, 'club_roster', ''),
               ('club_member_without_consent', 'high', 'k1', NULL, DATE '2026-11-04', NULL, 'club_roster', ''),
               ('marketing_list_without_consent', 'high', 'k1', NULL, DATE '2026-11-04', NULL,
                'marketing_list', ''),
               ('made_up_rule', 'low', 'k1', NULL, DATE '2026-11-04', NULL, NULL, '')"""
        )
        params = {"event_rules": EVENT_RULES, "export_rules": EXPORT_RULES, "all_rules": EVENT_RULES + EXPORT_RULES}
        assert con.execute(DUPLICATES_SQL, params).fetchall() == [(2, 1, 6)]


# -- backfill over generated data ---------------------------------------------------------------


@pytest.mark.slow
def test_backfill_over_generated_data_finds_what_the_generator_planted(env):
    """Per day and rule, the new violations are exactly the planted ones (erasure_overdue needs > 1 month)."""
    from generator import generate

    start = date(2026, 10, 23)  # spans the autumn DST change (Sun 25 Oct) and a holiday (Wed 28 Oct)
    plan = generate(env.inbox, 200, 6, start, 3, violation_rate=0.05, export_every=2, late_rate=0.03)
    days = [(start + timedelta(days=i)).isoformat() for i in range(6)]
    for day in days:
        assert env.run(day, selection=CORE_AND_VIOLATIONS).success, day

    planted = Counter((v["detected_on"], v["rule"]) for v in plan["violations"])
    found = Counter(
        env.query("SELECT detected_on::VARCHAR, rule FROM compliance.violations WHERE rule <> 'erasure_overdue'")
    )
    assert sum(planted.values()) > 50 and {rule for _, rule in planted} == {r.id for r in RULES[:7]}
    assert found == planted
    # ... and they are the same offences: same evidence event, or same subject and system.
    expected = {
        (v["detected_on"], v["rule"], v["message_id"], v["system"], env.subject_key(v["account_id"]))
        for v in plan["violations"]
    }
    rows = env.query(
        """SELECT detected_on::VARCHAR, rule, message_id, system, subject_key
           FROM compliance.violations WHERE rule <> 'erasure_overdue'"""
    )
    assert set(rows) == expected
