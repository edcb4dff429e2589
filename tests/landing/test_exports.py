"""Downstream exports (CONTRACT 2.2): the latest export at or before D per system, keys only."""

import logging
import os
import time
from datetime import date

import pytest

from assets.landing.exports import ingest_exports

PLAIN = {
    "ids": ["acc_000001", "acc_000002", "acc_000003"],
    "emails": ["jana.novakova@example.cz", "petr.svoboda@example.com", "eva@example.net"],
}


def ingest(env, day: str):
    with env.connect() as con:
        return {r.system: r for r in ingest_exports(con, env.inbox, date.fromisoformat(day))}


def keys(env, system: str) -> list[tuple]:
    return env.query(
        "SELECT export_date::VARCHAR, row_number, subject_key, email_key FROM landing.export_keys "
        "WHERE system = ? ORDER BY row_number",
        [system],
    )


def test_latest_export_at_or_before_the_day_per_system(env):
    # crm exports weekly, marketing_list daily; an export dated after D is never read for D
    env.write_export("crm", "2026-10-01", [{"account_id": "acc_1", "email": "a@example.cz"}])
    env.write_export("crm", "2026-10-08", [{"account_id": "acc_8", "email": "h@example.cz"}])
    for d in ("2026-10-05", "2026-10-06", "2026-10-07", "2026-10-09"):
        env.write_export("marketing_list", d, [{"account_id": f"acc_{d[-1]}", "email": ""}])

    got = ingest(env, "2026-10-07")
    assert {s: (r.export_date.isoformat(), r.status) for s, r in got.items()} == {
        "crm": ("2026-10-01", "ingested"),
        "marketing_list": ("2026-10-07", "ingested"),
    }
    assert keys(env, "crm") == [("2026-10-01", 1, env.subject_key("acc_1"), env.email_key("a@example.cz"))]
    assert keys(env, "marketing_list") == [("2026-10-07", 1, env.subject_key("acc_7"), None)]

    ingest(env, "2026-10-08")
    assert keys(env, "crm") == [("2026-10-08", 1, env.subject_key("acc_8"), env.email_key("h@example.cz"))]
    assert keys(env, "marketing_list") == [("2026-10-07", 1, env.subject_key("acc_7"), None)]

    # a re-run of an earlier day reads that day's latest exports again
    ingest(env, "2026-10-05")
    assert keys(env, "crm") == [("2026-10-01", 1, env.subject_key("acc_1"), env.email_key("a@example.cz"))]
    assert keys(env, "marketing_list") == [("2026-10-05", 1, env.subject_key("acc_5"), None)]


def test_a_system_with_no_export_yet_has_no_keys(env):
    env.write_export("club_roster", "2026-10-10", [{"account_id": "acc_1", "email": "a@example.cz"}])
    assert ingest(env, "2026-10-10")["club_roster"].status == "ingested"
    got = ingest(env, "2026-10-09")  # a backfill of an earlier day: the export did not exist yet
    assert got["club_roster"].status == "none" and got["club_roster"].export_date is None
    assert keys(env, "club_roster") == []


def test_only_keys_are_stored_never_plain_identifiers(env):
    rows = [
        {"account_id": PLAIN["ids"][0], "email": "  Jana.Novakova@Example.CZ ", "first_name": "Jana"},
        {"account_id": PLAIN["ids"][1], "email": PLAIN["emails"][1], "first_name": "Petr"},
        {"account_id": PLAIN["ids"][2], "email": PLAIN["emails"][2], "first_name": "Eva"},
    ]
    env.write_export("crm", "2026-10-01", rows, header=["account_id", "email", "first_name"])
    result = ingest(env, "2026-10-01")["crm"]
    assert (result.rows_total, result.rows_keyed) == (3, 3)
    assert keys(env, "crm") == [
        ("2026-10-01", i + 1, env.subject_key(PLAIN["ids"][i]), env.email_key(PLAIN["emails"][i])) for i in range(3)
    ]
    dumped = repr(env.query("SELECT * FROM landing.export_keys")) + repr(
        env.query("SELECT * FROM landing.export_files")
    )
    for value in [*PLAIN["ids"], *PLAIN["emails"], "Jana", "Petr", "@"]:
        assert value.lower() not in dumped.lower()
    # nor anywhere in the database file itself
    with env.connect() as con:
        con.execute("CHECKPOINT")
    data = b"".join(p.read_bytes() for p in env.root.glob("warehouse.duckdb*"))
    for value in [*PLAIN["ids"], *PLAIN["emails"], "Novakova"]:
        assert value.encode() not in data


@pytest.mark.parametrize(
    "header, rows, expected",
    [
        (["email"], [{"email": "A@Example.cz"}, {"email": ""}], [(None, "a@example.cz"), (None, None)]),
        (["account_id"], [{"account_id": "acc_1"}, {"account_id": ""}], [("acc_1", None), (None, None)]),
        (
            ["email", "joined_on", "account_id"],  # any column order, extra columns allowed
            [
                {"email": "b@example.cz", "joined_on": "2026-01-01", "account_id": "acc_2"},
                {"email": "", "joined_on": "2026-01-02", "account_id": "acc_3"},
                {"email": "c@example.cz", "joined_on": "", "account_id": ""},
                {"email": "", "joined_on": "x", "account_id": ""},
                {"email": "  ", "joined_on": "x", "account_id": "  "},  # blank counts as empty
            ],
            [("acc_2", "b@example.cz"), ("acc_3", None), (None, "c@example.cz"), (None, None), (None, None)],
        ),
    ],
    ids=["email only", "account_id only", "both, empty values"],
)
def test_header_with_either_column_and_empty_values(env, header, rows, expected):
    env.write_export("marketing_list", "2026-10-01", rows, header=header)
    result = ingest(env, "2026-10-01")["marketing_list"]
    assert result.status == "ingested"
    assert (result.rows_total, result.rows_keyed) == (len(rows), sum(1 for i, e in expected if i or e))
    assert keys(env, "marketing_list") == [
        ("2026-10-01", n, env.subject_key(i) if i else None, env.email_key(e) if e else None)
        for n, (i, e) in enumerate(expected, 1)
    ]


def test_quoted_fields_bom_and_crlf(env):
    folder = env.inbox / "snapshots" / "crm"
    folder.mkdir(parents=True)
    (folder / "2026-10-01.csv").write_bytes(
        b'\xef\xbb\xbfaccount_id,name,email\r\n"acc_1","Nov\xc3\xa1k, Jan","jan@example.cz"\r\nacc_2,"a ""b""",\r\n'
    )
    ingest(env, "2026-10-01")
    assert keys(env, "crm") == [
        ("2026-10-01", 1, env.subject_key("acc_1"), env.email_key("jan@example.cz")),
        ("2026-10-01", 2, env.subject_key("acc_2"), None),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"id,mail\nacc_1,jan@example.cz\n",  # neither column
        b"acc_1,jan@example.cz\nacc_2,eva@example.cz\n",  # no header at all: the first row is data
        b"account_id;email\nacc_1;jan@example.cz\n",  # not comma-separated
        b"",  # empty file
        "account_id,email\nacc_1,jan\xe9@example.cz\n".encode("latin-1"),  # not UTF-8
    ],
    ids=["neither column", "no header", "semicolons", "empty", "latin-1"],
)
def test_an_unusable_export_is_recorded_and_keeps_no_keys(env, caplog, data):
    env.write_export("crm", "2026-09-30", [{"account_id": "acc_old", "email": "old@example.cz"}])
    ingest(env, "2026-09-30")
    assert len(keys(env, "crm")) == 1
    (env.inbox / "snapshots" / "crm" / "2026-10-01.csv").write_bytes(data)
    caplog.set_level(logging.INFO)
    result = ingest(env, "2026-10-01")["crm"]
    assert result.status == "unreadable"
    # the system's state on D is unknown: the older export's keys are not kept as if current
    assert keys(env, "crm") == []
    files = env.query(
        "SELECT export_date::VARCHAR, source_file, rows_total, rows_keyed, readable, problem "
        "FROM landing.export_files WHERE export_date = '2026-10-01'"
    )
    assert len(files) == 1 and files[0][:5] == ("2026-10-01", "2026-10-01.csv", 0, 0, False)
    problem = files[0][5]
    assert problem
    for text in [problem, caplog.text]:
        assert "@" not in text and "acc_1" not in text
    # a re-run records it once, the same way
    ingest(env, "2026-10-01")
    assert env.query("SELECT count(*) FROM landing.export_files WHERE export_date = '2026-10-01'") == [(1,)]


def test_rerun_is_idempotent(env):
    env.write_export("crm", "2026-10-01", [{"account_id": f"acc_{i}", "email": f"u{i}@example.cz"} for i in range(50)])
    env.write_export("club_roster", "2026-10-01", [{"account_id": "acc_1", "email": ""}])
    first = ingest(env, "2026-10-01")
    before = (
        env.query("SELECT * FROM landing.export_keys ORDER BY ALL"),
        env.query("SELECT * FROM landing.export_files ORDER BY ALL"),
    )
    second = ingest(env, "2026-10-01")
    assert {s: r.status for s, r in second.items()} == {"club_roster": "unchanged", "crm": "unchanged"}
    assert {s: (r.rows_total, r.rows_keyed) for s, r in second.items()} == {
        s: (r.rows_total, r.rows_keyed) for s, r in first.items()
    }
    after = (
        env.query("SELECT * FROM landing.export_keys ORDER BY ALL"),
        env.query("SELECT * FROM landing.export_files ORDER BY ALL"),
    )
    assert after == before
    assert env.query("SELECT system, count(*) FROM landing.export_keys GROUP BY 1 ORDER BY 1") == [
        ("club_roster", 1),
        ("crm", 50),
    ]


def test_files_and_folders_that_are_not_exports_are_ignored(env, tmp_path):
    env.write_export("crm", "2026-10-01", [{"account_id": "acc_1", "email": ""}])
    folder = env.inbox / "snapshots" / "crm"
    (folder / "2026-10-02.csv.tmp").write_text("account_id\nacc_tmp\n")
    (folder / "latest.csv").write_text("account_id\nacc_latest\n")
    (folder / "2026-02-30.csv").write_text("account_id\nacc_bad_date\n")
    (env.inbox / "snapshots" / "stray.csv").write_text("account_id\nacc_stray\n")
    got = ingest(env, "2026-10-05")
    assert list(got) == ["crm"]
    assert got["crm"].export_date == date(2026, 10, 1)
    assert keys(env, "crm") == [("2026-10-01", 1, env.subject_key("acc_1"), None)]


def test_a_symlinked_export_is_not_followed_and_is_unusable(env, tmp_path):
    env.write_export("crm", "2026-10-01", [{"account_id": "acc_1", "email": ""}])
    outside = tmp_path / "outside.csv"
    outside.write_text("account_id,email\nacc_link,link@example.cz\n")
    (env.inbox / "snapshots" / "crm" / "2026-10-02.csv").symlink_to(outside)
    result = ingest(env, "2026-10-02")["crm"]
    # the latest export of D exists but is not read; an older one does not stand in for it
    assert (result.status, result.export_date) == ("unreadable", date(2026, 10, 2))
    assert keys(env, "crm") == []
    assert env.query("SELECT readable, problem FROM landing.export_files WHERE export_date = '2026-10-02'") == [
        (False, "symlink not followed")
    ]


def test_a_redelivered_export_of_the_same_date_is_loaded_again(env):
    path = env.write_export("crm", "2026-10-01", [{"account_id": "acc_1", "email": ""}])
    ingest(env, "2026-10-01")
    assert ingest(env, "2026-10-01")["crm"].status == "unchanged"
    env.write_export("crm", "2026-10-01", [{"account_id": "acc_2", "email": ""}, {"account_id": "acc_3", "email": ""}])
    later = time.time_ns() + 60 * 10**9  # rewritten after it was loaded
    os.utime(path, ns=(later, later))
    result = ingest(env, "2026-10-01")["crm"]
    assert (result.status, result.rows_total) == ("ingested", 2)
    assert [k[2] for k in keys(env, "crm")] == [env.subject_key("acc_2"), env.subject_key("acc_3")]
    assert env.query("SELECT count(*) FROM landing.export_files") == [(1,)]
