"""core.accounts, core.consent_history and core.club_membership: state as of the end of D."""

from __future__ import annotations

import dagster as dg

from tests.helpers import CORE_AND_VIOLATIONS, deleted, derive, event, grant, segment, withdraw
from tests.helpers import core_created as created

D1, D2, D3 = "2026-11-03", "2026-11-04", "2026-11-05"


def intervals(env, acc: str) -> list[tuple[str, str | None, str | None]]:
    """(valid_from, valid_to, end_reason) of an account, as ISO strings in UTC."""
    rows = env.query(
        """SELECT strftime(timezone('UTC', valid_from), '%Y-%m-%dT%H:%M:%SZ'),
                  strftime(timezone('UTC', valid_to), '%Y-%m-%dT%H:%M:%SZ'), end_reason
           FROM core.club_membership WHERE subject_key = ? ORDER BY valid_from""",
        [env.subject_key(acc)],
    )
    return rows


# -- core.accounts ------------------------------------------------------------------------------


def test_accounts_status_current_email_and_erasure(env):
    env.write_events(
        D1,
        "a.jsonl",
        [
            created("acc_active", "2026-11-03T09:00:00+01:00", "old@example.cz"),
            event(
                "Email Changed",
                "acc_active",
                "2026-11-03T10:00:00+01:00",
                channel="care_center",
                properties={"email": " New@Example.cz ", "previous_email": "old@example.cz"},
            ),
            created("acc_requested", "2026-11-03T09:00:00+01:00"),
            event("Account Deletion Requested", "acc_requested", "2026-11-03T11:00:00+01:00"),
            created("acc_deleted", "2026-11-03T09:00:00+01:00"),
            event("Account Deletion Requested", "acc_deleted", "2026-11-03T11:00:00+01:00"),
            deleted("acc_deleted", "2026-11-03T11:05:00+01:00"),
            # Deleted after the end of D (arrives on D: allowed up to 1 h late): erased on D+1 only.
            created("acc_deleted_tomorrow", "2026-11-03T09:00:00+01:00"),
            deleted("acc_deleted_tomorrow", "2026-11-04T00:30:00+01:00"),
            # Created after the end of D: not an account yet.
            created("acc_tomorrow", "2026-11-04T00:10:00+01:00"),
            # Activity without a creation: not an account.
            event("Signed In", "acc_uncreated", "2026-11-03T09:00:00+01:00"),
        ],
    )
    derive(env, D1)
    rows = env.query("SELECT account_id, status, email_key, created_at FROM core.accounts ORDER BY account_id")
    assert [(r[0], r[1]) for r in rows] == [
        ("acc_active", "active"),
        ("acc_deleted_tomorrow", "active"),
        ("acc_requested", "deletion_requested"),
    ]
    by_id = {r[0]: r for r in rows}
    assert by_id["acc_active"][2] == env.email_key("new@example.cz")
    assert by_id["acc_requested"][2] == env.email_key("acc_requested@example.cz")
    assert by_id["acc_active"][3].isoformat() == "2026-11-03T09:00:00+01:00"
    assert env.query("SELECT count(*) FROM core.accounts WHERE subject_key = ?", [env.subject_key("acc_deleted")]) == [
        (0,)
    ]

    derive(env, D2)  # nothing new arrives; the late-occurring events now fall inside the window
    ids = [r[0] for r in env.query("SELECT account_id FROM core.accounts ORDER BY account_id")]
    assert ids == ["acc_active", "acc_requested", "acc_tomorrow"]


def test_current_email_is_the_latest_by_occurrence_not_by_arrival(env):
    env.write_events(
        D1,
        "a.jsonl",
        [
            created("acc_1", "2026-11-03T09:00:00+01:00", "first@example.cz"),
            event(
                "Email Changed",
                "acc_1",
                "2026-11-03T12:00:00+01:00",
                channel="care_center",
                properties={"email": "third@example.cz"},
            ),
        ],
    )
    # An earlier change that arrives a day late does not override the later one.
    env.write_events(
        D2,
        "a.jsonl",
        [
            event(
                "Email Changed",
                "acc_1",
                "2026-11-03T10:00:00+01:00",
                channel="care_center",
                properties={"email": "second@example.cz"},
            )
        ],
    )
    derive(env, D1)
    derive(env, D2)
    assert env.query("SELECT email_key FROM core.accounts") == [(env.email_key("third@example.cz"),)]


# -- core.consent_history -----------------------------------------------------------------------


def test_consent_history_follows_segment_semantics(env):
    env.write_events(
        D1,
        "a.jsonl",
        [
            created("acc_1", "2026-11-03T08:00:00+01:00"),
            grant("acc_1", "2026-11-03T09:00:00+01:00", message_id="grant"),
            withdraw("acc_1", "2026-11-03T09:10:00+01:00", message_id="withdraw"),
            segment(
                "acc_1", "2026-11-03T09:20:00+01:00", {"Marketing": True, "Analytics": False}, message_id="seg-true"
            ),
            segment("acc_1", "2026-11-03T09:30:00+01:00", {"marketing": False}, message_id="seg-false"),
            segment("acc_1", "2026-11-03T09:40:00+01:00", {"MARKETING": True}, message_id="seg-upper"),
            segment("acc_1", "2026-11-03T09:50:00+01:00", {"analytics": True}, message_id="seg-missing-key"),
            segment("acc_1", "2026-11-03T09:55:00+01:00", None, message_id="seg-no-preferences"),
            segment("acc_1", "2026-11-03T09:58:00+01:00", {"marketing": "true"}, message_id="seg-string"),
            event("Signed In", "acc_1", "2026-11-03T10:00:00+01:00"),
            event("Account Deletion Requested", "acc_1", "2026-11-03T10:05:00+01:00"),
            grant("acc_1", "2026-11-04T00:20:00+01:00", message_id="after-end-of-day"),
        ],
    )
    derive(env, D1, rules=False)
    rows = env.query(
        """SELECT message_id, granted, source, notice_version, account_id, consent_seq
           FROM core.consent_history ORDER BY consent_seq"""
    )
    assert [(r[0], r[1]) for r in rows] == [
        ("grant", True),
        ("withdraw", False),
        ("seg-true", True),
        ("seg-false", False),
        ("seg-upper", True),
        ("seg-missing-key", False),
        ("seg-no-preferences", False),
        ("seg-string", False),  # only a JSON true grants
    ]
    assert rows[0][2:5] == ("web", "2026-01", "acc_1")
    assert rows[1][2:4] == ("preferences", None)
    assert [r[5] for r in rows] == list(range(1, 9))


# -- core.club_membership -----------------------------------------------------------------------


def test_membership_regrants_withdrawals_and_deletion(env):
    env.write_events(
        D1,
        "a.jsonl",
        [
            # re-grants: a grant while a member opens nothing new
            created("acc_regrant", "2026-11-03T07:00:00+01:00"),
            grant("acc_regrant", "2026-11-03T08:00:00+01:00"),
            grant("acc_regrant", "2026-11-03T09:00:00+01:00"),
            withdraw("acc_regrant", "2026-11-03T10:00:00+01:00"),
            withdraw("acc_regrant", "2026-11-03T10:30:00+01:00"),
            grant("acc_regrant", "2026-11-03T11:00:00+01:00"),
            segment("acc_regrant", "2026-11-03T11:30:00+01:00", {"marketing": True}),
            # withdraw-without-grant opens and closes nothing
            created("acc_withdraw_only", "2026-11-03T07:00:00+01:00"),
            withdraw("acc_withdraw_only", "2026-11-03T08:00:00+01:00"),
            created("acc_withdraw_then_grant", "2026-11-03T07:00:00+01:00"),
            withdraw("acc_withdraw_then_grant", "2026-11-03T08:00:00+01:00"),
            grant("acc_withdraw_then_grant", "2026-11-03T09:00:00+01:00"),
            # deletion closes; a deletion request changes nothing; later events change nothing
            created("acc_deleted", "2026-11-03T07:00:00+01:00"),
            grant("acc_deleted", "2026-11-03T08:00:00+01:00"),
            event("Account Deletion Requested", "acc_deleted", "2026-11-03T09:00:00+01:00"),
            deleted("acc_deleted", "2026-11-03T09:05:00+01:00"),
            withdraw("acc_deleted", "2026-11-03T09:10:00+01:00"),
            grant("acc_deleted", "2026-11-03T09:20:00+01:00"),
            # deleted while not a member: nothing to close
            created("acc_deleted_nonmember", "2026-11-03T07:00:00+01:00"),
            deleted("acc_deleted_nonmember", "2026-11-03T09:05:00+01:00"),
            grant("acc_deleted_nonmember", "2026-11-03T09:20:00+01:00"),
            # Segment withdraw (key missing) closes with consent_withdrawn
            created("acc_segment", "2026-11-03T07:00:00+01:00"),
            segment("acc_segment", "2026-11-03T08:00:00+01:00", {"marketing": True}),
            segment("acc_segment", "2026-11-03T09:00:00+01:00", {"advertising": True}),
            # granted and withdrawn at one instant (withdrawal ingested last): never a member
            created("acc_same_instant", "2026-11-03T07:00:00+01:00"),
            grant("acc_same_instant", "2026-11-03T08:00:00+01:00"),
            withdraw("acc_same_instant", "2026-11-03T08:00:00+01:00"),
            # withdrawn and granted again at one instant: membership never lapses, one interval
            created("acc_regrant_same_instant", "2026-11-03T07:00:00+01:00"),
            grant("acc_regrant_same_instant", "2026-11-03T08:00:00+01:00"),
            withdraw("acc_regrant_same_instant", "2026-11-03T09:00:00+01:00"),
            grant("acc_regrant_same_instant", "2026-11-03T09:00:00+01:00"),
            # withdrawn and deleted at one instant: the deletion is the end reason
            created("acc_withdrawn_and_deleted", "2026-11-03T07:00:00+01:00"),
            grant("acc_withdrawn_and_deleted", "2026-11-03T08:00:00+01:00"),
            withdraw("acc_withdrawn_and_deleted", "2026-11-03T09:00:00+01:00"),
            deleted("acc_withdrawn_and_deleted", "2026-11-03T09:00:00+01:00"),
        ],
    )
    derive(env, D1, rules=False)
    assert intervals(env, "acc_regrant") == [
        ("2026-11-03T07:00:00Z", "2026-11-03T09:00:00Z", "consent_withdrawn"),
        ("2026-11-03T10:00:00Z", None, None),
    ]
    assert intervals(env, "acc_withdraw_only") == []
    assert intervals(env, "acc_withdraw_then_grant") == [("2026-11-03T08:00:00Z", None, None)]
    assert intervals(env, "acc_deleted") == [("2026-11-03T07:00:00Z", "2026-11-03T08:05:00Z", "account_deleted")]
    assert intervals(env, "acc_deleted_nonmember") == []
    assert intervals(env, "acc_segment") == [("2026-11-03T07:00:00Z", "2026-11-03T08:00:00Z", "consent_withdrawn")]
    assert intervals(env, "acc_same_instant") == []
    assert intervals(env, "acc_regrant_same_instant") == [("2026-11-03T07:00:00Z", None, None)]
    assert intervals(env, "acc_withdrawn_and_deleted") == [
        ("2026-11-03T07:00:00Z", "2026-11-03T08:00:00Z", "account_deleted")
    ]
    # The opening and closing events are kept as evidence.
    opened, closed = env.query(
        "SELECT opened_by_message_id, closed_by_message_id FROM core.club_membership WHERE subject_key = ?",
        [env.subject_key("acc_deleted")],
    )[0]
    kinds = dict(env.query("SELECT message_id, event FROM landing.events WHERE message_id IN (?, ?)", [opened, closed]))
    assert kinds == {opened: "Marketing Consent Granted", closed: "Account Deleted"}


def test_membership_as_of_end_of_day_includes_late_events(env):
    env.write_events(
        D1,
        "a.jsonl",
        [
            created("acc_1", "2026-11-03T07:00:00+01:00"),
            grant("acc_1", "2026-11-03T08:00:00+01:00"),
            # occurs after the end of D1 (arrives in D1's folder): not yet part of D1's state
            withdraw("acc_1", "2026-11-04T00:30:00+01:00"),
        ],
    )
    # A withdrawal that occurred on D1 but arrives on D2 closes the interval when it arrives.
    env.write_events(D2, "a.jsonl", [withdraw("acc_1", "2026-11-03T20:00:00+01:00")])
    derive(env, D1, rules=False)
    assert intervals(env, "acc_1") == [("2026-11-03T07:00:00Z", None, None)]
    derive(env, D2, rules=False)
    assert intervals(env, "acc_1") == [("2026-11-03T07:00:00Z", "2026-11-03T19:00:00Z", "consent_withdrawn")]


def test_core_assets_materialise_with_metadata_and_checks(env):
    env.write_events(
        D1,
        "a.jsonl",
        [
            created("acc_1", "2026-11-03T07:00:00+01:00", "someone@example.cz"),
            grant("acc_1", "2026-11-03T08:00:00+01:00"),
            created("acc_2", "2026-11-03T07:00:00+01:00"),
            grant("acc_2", "2026-11-03T08:00:00+01:00"),
            withdraw("acc_2", "2026-11-03T09:00:00+01:00"),
            event("Account Deletion Requested", "acc_2", "2026-11-03T10:00:00+01:00"),
            grant("acc_orphan", "2026-11-03T08:00:00+01:00"),  # no Account Created: WARN check
        ],
    )
    result = env.run(D1, selection=CORE_AND_VIOLATIONS)
    assert result.success
    expected_rows = {"core__accounts": 2, "core__consent_history": 4, "core__club_membership": 3}
    for node, rows in expected_rows.items():
        (mat,) = result.asset_materializations_for_node(node)
        assert mat.metadata["dagster/row_count"].value == rows
        preview = mat.metadata["preview"].value
        assert "acc_" not in preview and "@" not in preview
    (accounts_mat,) = result.asset_materializations_for_node("core__accounts")
    assert "| active | 1 | 1 |" in accounts_mat.metadata["preview"].value
    assert "| deletion_requested | 1 | 1 |" in accounts_mat.metadata["preview"].value

    from pipelines.definitions import defs

    for key in (["core", "accounts"], ["core", "consent_history"], ["core", "club_membership"]):
        spec = defs.resolve_assets_def(dg.AssetKey(key)).specs_by_key[dg.AssetKey(key)]
        assert spec.kinds == {"duckdb"} and spec.group_name == "core" and spec.description
        assert dg.AssetKey(["purge", "purge_log"]) in {d.asset_key for d in spec.deps}

    mine = ["club_intervals_do_not_overlap", "club_intervals_are_well_ordered", "consent_rows_reference_known_subjects"]
    checks = dict(
        env.query(
            "SELECT check_name, passed FROM ops.check_results WHERE run_date = ? AND list_contains(?, check_name)",
            [D1, mine],
        )
    )
    assert checks == {
        "club_intervals_do_not_overlap": True,
        "club_intervals_are_well_ordered": True,
        "consent_rows_reference_known_subjects": False,  # acc_orphan
    }
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations["consent_rows_reference_known_subjects"] is False
    assert evaluations["club_intervals_do_not_overlap"] is True


def test_membership_checks_fail_on_broken_intervals(env):
    """The ERROR checks are real: overlapping or inverted intervals fail them."""
    from checks.core import ILL_ORDERED_SQL, OVERLAPS_SQL

    with env.connect() as con:
        con.execute(
            """INSERT INTO keyed.club_membership (subject_key, valid_from, valid_to, end_reason) VALUES
               ('k1', '2026-11-03 08:00+01', '2026-11-03 10:00+01', 'consent_withdrawn'),
               ('k1', '2026-11-03 09:00+01', NULL, NULL),
               ('k2', '2026-11-03 08:00+01', '2026-11-03 08:00+01', 'consent_withdrawn'),
               ('k3', '2026-11-03 08:00+01', '2026-11-03 09:00+01', NULL),
               ('k4', '2026-11-03 08:00+01', '2026-11-03 09:00+01', 'account_deleted'),
               ('k4', '2026-11-03 09:00+01', NULL, NULL)"""
        )
        assert con.execute(OVERLAPS_SQL).fetchall() == [(1, 4)]
        assert con.execute(ILL_ORDERED_SQL).fetchall() == [(2, 6)]
