"""Hostile downstream exports (CONTRACT 2.2).

System names: a system is any folder under snapshots/, whatever its name; the name survives end
to end (export keys and files, the register's residual_locations, erasure_overdue) and is shown
escaped, never raw in logs or Dagster metadata.

RFC 4180 files: a valid file (quoted commas, doubled quotes, line breaks inside quotes, CRLF, a
BOM, header case and spaces, repeated columns) is read exactly; a file that cannot be read is
named, fails `exports_are_readable`, and never leaves an erased subject `verified`.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import unquote

import markupsafe
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from assets.landing.exports import ingest_exports
from pipelines.keys import email_key, subject_key
from pipelines.warehouse import connect
from tests.helpers import TEST_KEY, event, night

DAY = "2026-11-02"
HOSTILE_NAMES = [
    "legacy crm",
    '=HYPERLINK("https:evil.example","x")',
    "=cmd|' \\C calc'!A0",
    "x" * 150,
    "účetnictví",
    "legacy, crm",  # the register's separator
    "a,b,c",
    "100%2C",  # looks percent-encoded
    "warehouse",  # the pipeline's own location names
    "inbox",
    " crm ",
    "crm\nnext line",
    "<script>alert(1)<\\script>",
    'O\'Brien "quoted"',
    "+1-2",
    "-sum",
]


# -- helpers ------------------------------------------------------------------------------------


def created(account_id: str, ts: str, email: str) -> dict:
    return event("Account Created", account_id, ts, properties={"email": email})


def deleted(account_id: str, ts: str) -> dict:
    return event("Account Deleted", account_id, ts)


def rfc4180(rows: list[list[str]], *, newline: str = "\r\n", quote_all: bool = False) -> str:
    """RFC 4180 text: a field holding a comma, a quote, CR or LF is quoted (quotes doubled).

    Python's csv.writer leaves a bare CR unquoted when the line terminator is LF, which no reader
    can tell from a CRLF line end, so the tests write the files themselves.
    """

    def field(value: str, alone: bool) -> str:
        quoted = quote_all or any(c in value for c in ',"\r\n') or (alone and value == "")
        return '"' + value.replace('"', '""') + '"' if quoted else value

    return "".join(",".join(field(v, len(row) == 1) for v in row) + newline for row in rows)


def write_csv(
    folder: Path, day: str, rows: list[list[str]], *, bom: bool = False, newline: str = "\r\n", quote_all: bool = False
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{day}.csv"
    text = rfc4180(rows, newline=newline, quote_all=quote_all)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def locations(env, account: str) -> tuple[str, list[str]]:
    """(status, downstream systems) of the subject's register row.

    residual_locations is split on ',' and each token other than the pipeline's own copies
    (`warehouse`, `inbox`) is percent-decoded back to the system's name (assets/erasure/locations.py).
    """
    [(status, text)] = env.query(
        "SELECT status, residual_locations FROM compliance.erasure_register WHERE subject_key = ?",
        [env.subject_key(account)],
    )
    return status, [unquote(t) for t in (text or "").split(",") if t and t not in ("warehouse", "inbox")]


def erased_subject(env, account: str, mail: str) -> None:
    env.write_events(
        DAY,
        "part-0000.jsonl",
        [created(account, f"{DAY}T09:00:00+01:00", mail), deleted(account, f"{DAY}T18:00:00+01:00")],
    )


# -- the system's name ---------------------------------------------------------------------------

NAMES = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="/\x00"), min_size=1, max_size=120
).filter(lambda n: n not in (".", "..") and len(n.encode()) <= 255)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES)
@example(name="legacy crm")
@example(name='=HYPERLINK("x")')
@example(name="y" * 200)
@example(name="účetnictví")
@example(name="a,b")
@example(name="year=2026")  # DuckDB would read it as a hive partition
@example(name="crm*")  # or as a glob
@example(name="[ab]?")
def test_every_folder_under_snapshots_is_a_system_whatever_its_name(tmp_path, name):
    with tempfile.TemporaryDirectory(dir=tmp_path) as root:
        inbox, warehouse = Path(root) / "inbox", Path(root) / "w.duckdb"
        write_csv(inbox / "snapshots" / name, "2026-10-01", [["account_id", "email"], ["acc_1", "a@example.cz"]])
        with connect(warehouse, TEST_KEY) as con:
            got = {r.system: r for r in ingest_exports(con, inbox, date(2026, 10, 1))}
            assert list(got) == [name]
            assert got[name].status == "ingested"
            assert con.execute("SELECT system, subject_key, email_key FROM landing.export_keys").fetchall() == [
                (name, subject_key(TEST_KEY, "acc_1"), email_key(TEST_KEY, "a@example.cz"))
            ]
            assert con.execute("SELECT system, readable FROM landing.export_files").fetchall() == [(name, True)]


def test_a_folder_name_that_is_not_utf8_is_a_system_too(env):
    folder = os.fsencode(env.inbox / "snapshots") + b"/crm-\xff\xfe"
    os.makedirs(folder)
    with open(folder + b"/2026-10-01.csv", "wb") as fh:
        fh.write(b"account_id\nacc_1\n")
    with env.connect() as con:
        got = ingest_exports(con, env.inbox, date(2026, 10, 1))
    assert [(r.system, r.status) for r in got] == [("crm-\\xff\\xfe", "ingested")]
    assert env.query("SELECT system, subject_key FROM landing.export_keys") == [
        ("crm-\\xff\\xfe", env.subject_key("acc_1"))
    ]


@pytest.mark.parametrize("system", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_an_erased_subject_only_in_a_hostile_system_is_pending_and_that_system_is_named(env, system):
    account, mail = "acc_hostile_1", "hostile.one@example.cz"
    erased_subject(env, account, mail)
    write_csv(env.inbox / "snapshots" / system, DAY, [["email", "account_id"], [mail.upper(), ""]])
    write_csv(env.inbox / "snapshots" / "crm", DAY, [["account_id"], ["acc_someone_else"]])
    night(env, DAY)
    status, names = locations(env, account)
    assert status == "pending"
    assert names == [system]  # exactly that system: not split, not trimmed, not taken for the pipeline's
    # the raw token of a system named like a pipeline location is not that location
    [(raw,)] = env.query("SELECT residual_locations FROM compliance.erasure_register")
    assert raw.split(",") != ["warehouse"] and raw.split(",") != ["inbox"]


def test_erasure_overdue_names_a_hostile_system_exactly(env):
    system = "legacy, crm"
    account, mail = "acc_hostile_2", "hostile.two@example.cz"
    erased_subject(env, account, mail)
    for day in (DAY, "2026-12-03"):  # the due date is 2026-12-02; the inbox folder goes by then
        write_csv(env.inbox / "snapshots" / system, day, [["account_id"], [account]])
        night(env, day, rules=True)
    assert locations(env, account) == ("overdue", [system])
    rows = dict(env.query("SELECT system, details FROM compliance.violations WHERE rule = 'erasure_overdue'"))
    assert list(rows) == [system]
    assert "identifiers still found in legacy, crm" in rows[system]


# -- valid CSV the reader must read ----------------------------------------------------------------

#: Header names: the key columns in any case and with spaces, repeated; others that only look alike.
KEY_NAMES = ["account_id", "Account_ID", " ACCOUNT_ID ", "email", "EMAIL", " Email ", "\temail"]
OTHER_NAMES = ["email_1", "account_id_1", "Account ID", "e-mail", "name", 'notes, "quoted"\nline', ""]
#: Field text: commas, quotes, CR, LF, CRLF, spaces, non-ASCII (lower() agrees in Python and SQL).
FIELD = st.text(alphabet=st.sampled_from(list("ab,\"\r\n ;'=@.xyzÁčž_-1")), max_size=12)


@st.composite
def exports(draw):
    names = draw(st.lists(st.sampled_from(KEY_NAMES + OTHER_NAMES), min_size=1, max_size=7))
    if not any(n.strip().lower() in ("account_id", "email") for n in names):
        names.append(draw(st.sampled_from(KEY_NAMES)))
    rows = draw(st.lists(st.lists(FIELD, min_size=len(names), max_size=len(names)), max_size=8))
    return names, rows


def expected_keys(names: list[str], row: list[str]) -> tuple[set[str], set[str]]:
    ids = {v.strip(" ") for n, v in zip(names, row, strict=True) if n.strip().lower() == "account_id"}
    mails = {v for n, v in zip(names, row, strict=True) if n.strip().lower() == "email"}
    id_keys = {subject_key(TEST_KEY, v) for v in ids if v}
    mail_keys = {email_key(TEST_KEY, v) for v in mails if v.strip(" \t\n\r\f\v")}
    return id_keys, mail_keys


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(export=exports(), bom=st.booleans(), newline=st.sampled_from(["\r\n", "\n"]), quote_all=st.booleans())
@example(
    export=(["account_id", "notes", "email"], [["acc_1", 'line 1\nline 2, "quoted"\r\n', "a@example.cz"]]),
    bom=True,
    newline="\r\n",
    quote_all=False,
)
@example(
    export=(["email", "EMAIL", "email_1", "Account_ID"], [["a@x.cz", "b@x.cz", "c@x.cz", "acc_1"]]),
    bom=False,
    newline="\n",
    quote_all=True,
)
def test_every_account_id_and_email_value_of_a_valid_csv_is_keyed(tmp_path, export, bom, newline, quote_all):
    names, rows = export
    with tempfile.TemporaryDirectory(dir=tmp_path) as root:
        inbox, warehouse = Path(root) / "inbox", Path(root) / "w.duckdb"
        write_csv(
            inbox / "snapshots" / "crm", "2026-10-01", [names, *rows], bom=bom, newline=newline, quote_all=quote_all
        )
        with connect(warehouse, TEST_KEY) as con:
            [result] = ingest_exports(con, inbox, date(2026, 10, 1))
            assert (result.status, result.problem) == ("ingested", None)
            keys = con.execute("SELECT row_number, subject_key, email_key FROM landing.export_keys").fetchall()
    expected = [expected_keys(names, row) for row in rows]
    assert result.rows_total == len(rows)
    assert result.rows_keyed == sum(1 for ids, mails in expected if ids or mails)
    assert {r for r, _, _ in keys} == set(range(1, len(rows) + 1))  # data record ordinals
    for n, (ids, mails) in enumerate(expected, 1):
        assert {k for r, k, _ in keys if r == n and k} == ids, n
        assert {k for r, _, k in keys if r == n and k} == mails, n


def test_repeated_columns_count_and_a_genuine_email_1_column_is_not_a_key(env):
    folder = env.inbox / "snapshots" / "marketing_list"
    write_csv(
        folder,
        "2026-10-01",
        [
            ["Email ", "email_1", " EMAIL", "account_id", "ACCOUNT_ID"],
            ["first@example.cz", "not.a.key@example.cz", "second@example.cz", "acc_1", "acc_2"],
            ["", "x@example.cz", "", "", ""],
        ],
    )
    with env.connect() as con:
        [result] = ingest_exports(con, env.inbox, date(2026, 10, 1))
    assert (result.rows_total, result.rows_keyed) == (2, 1)
    rows = env.query("SELECT row_number, subject_key, email_key FROM landing.export_keys ORDER BY ALL")
    assert {r[1] for r in rows if r[1]} == {env.subject_key("acc_1"), env.subject_key("acc_2")}
    assert {r[2] for r in rows if r[2]} == {env.email_key("first@example.cz"), env.email_key("second@example.cz")}
    assert env.email_key("not.a.key@example.cz") not in {r[2] for r in rows}
    assert all(r[1] for r in rows if r[0] == 1)  # a record with an account id is matched by it
    assert [r for r in rows if r[0] == 2] == [(2, None, None)]


def test_an_erased_subject_only_after_a_multiline_quoted_field_is_pending(env):
    account, mail = "acc_multiline_1", "multi.line@example.cz"
    erased_subject(env, account, mail)
    body = (
        "account_id,note,email\r\n"
        'acc_other,"first line\r\nsecond, line\nthird ""quoted"" line",other@example.cz\r\n'
        f'{account},"a\nb",{mail}\r\n'
    )
    (env.inbox / "snapshots" / "crm").mkdir(parents=True)
    (env.inbox / "snapshots" / "crm" / f"{DAY}.csv").write_bytes(b"\xef\xbb\xbf" + body.encode())
    night(env, DAY)
    assert env.query("SELECT rows_total, rows_keyed, readable FROM landing.export_files") == [(2, 2, True)]
    assert env.query(
        "SELECT row_number FROM landing.export_keys WHERE subject_key = ?", [env.subject_key(account)]
    ) == [(2,)]
    assert locations(env, account) == ("pending", ["crm"])


@pytest.mark.parametrize(
    "data, problem",
    [
        ("account_id,email\r\n{account},jan\xe9@example.cz\r\n".encode("latin-1"), "not UTF-8 text"),
        (b'account_id,email\n"{account},x@example.cz\n', "unbalanced quotes: a quoted field is not closed"),
    ],
    ids=["latin-1", "unterminated quote"],
)
def test_an_unreadable_export_keeps_an_erased_subject_pending_and_names_the_system(env, caplog, data, problem):
    account, mail = "acc_unreadable_1", "unreadable.one@example.cz"
    erased_subject(env, account, mail)
    folder = env.inbox / "snapshots" / "legacy crm"
    folder.mkdir(parents=True)
    (folder / f"{DAY}.csv").write_bytes(data.replace(b"{account}", account.encode()))
    night(env, DAY)
    files = env.query("SELECT system, readable, problem FROM landing.export_files")
    assert files == [("legacy crm", False, problem)]
    # the system's state is unknown: the subject is not verified, and the system is named
    assert locations(env, account) == ("pending", ["legacy crm"])
    assert account not in caplog.text and "legacy crm" not in caplog.text  # no raw values or names logged


def test_past_the_due_date_an_unreadable_export_is_overdue_and_says_it_cannot_be_verified(env):
    account, mail = "acc_unreadable_2", "unreadable.two@example.cz"
    erased_subject(env, account, mail)
    folder = env.inbox / "snapshots" / "crm"
    write_csv(folder, DAY, [["account_id"], [account]])
    night(env, DAY, rules=True)
    assert locations(env, account) == ("pending", ["crm"])  # the CRM still holds it: not verified yet
    (folder / "2026-12-03.csv").write_bytes("account_id\nacc_\xe9\n".encode("latin-1"))
    night(env, "2026-12-03", rules=True)
    assert locations(env, account) == ("overdue", ["crm"])
    [(system, details)] = env.query("SELECT system, details FROM compliance.violations WHERE rule = 'erasure_overdue'")
    assert system == "crm" and "cannot be verified" in details
    # a readable export without the subject verifies it again
    write_csv(folder, "2026-12-04", [["account_id"], ["acc_other"]])
    night(env, "2026-12-04", rules=True)
    assert locations(env, account) == ("verified", [])


def test_an_unreadable_export_does_not_undo_an_erasure_verified_before(env):
    """A verified erasure keeps its proof: an unreadable export later shows nothing either way, and
    naming it would raise erasure_overdue for every subject ever erased."""
    account, mail = "acc_unreadable_3", "unreadable.three@example.cz"
    env.retention_days = 1
    erased_subject(env, account, mail)
    folder = env.inbox / "snapshots" / "crm"
    write_csv(folder, DAY, [["account_id"], ["acc_other"]])
    night(env, DAY, rules=True)
    later = (date.fromisoformat(DAY) + timedelta(days=1)).isoformat()
    night(env, later, rules=True)  # retention deletes the day's inbox folder: nothing is left
    assert locations(env, account) == ("verified", [])
    (folder / "2026-12-03.csv").write_bytes("account_id\nacc_\xe9\n".encode("latin-1"))
    night(env, "2026-12-03", rules=True)
    assert env.query("SELECT readable FROM landing.export_files WHERE export_date = '2026-12-03'") == [(False,)]
    assert locations(env, account) == ("verified", [])
    assert env.query("SELECT count(*) FROM compliance.violations WHERE rule = 'erasure_overdue'") == [(0,)]


# -- end to end: the Dagster job, its check, metadata, logs and the report -----------------------


def test_dagster_run_with_hostile_system_names_and_an_unreadable_export(env):
    account, mail = "acc_e2e_hostile", "e2e.hostile@example.cz"
    erased_subject(env, account, mail)
    hostile = '=HYPERLINK("https:evil.example","<b>click<\\b>")'
    secret = "crm of jana.novakova@example.cz"  # a folder name that carries personal data
    write_csv(env.inbox / "snapshots" / hostile, DAY, [["Account_ID", "notes"], [account, "a\nb"]])
    write_csv(env.inbox / "snapshots" / secret, DAY, [["email"], ["someone@example.cz"]])
    broken = env.inbox / "snapshots" / "účetnictví"
    broken.mkdir(parents=True)
    (broken / f"{DAY}.csv").write_bytes("email\nk\xe9@example.cz\n".encode("latin-1"))

    result = env.run(DAY)

    status, names = locations(env, account)
    assert status == "pending" and names == sorted([hostile, "účetnictví"])
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["exports_are_readable"] is False
    assert env.query("SELECT passed FROM ops.check_results WHERE check_name = 'exports_are_readable'") == [(False,)]
    # the report names the unreadable export and shows every name escaped
    folder = env.reports / DAY
    page = (folder / "compliance_report.html").read_text()
    assert str(markupsafe.escape(hostile)) in page and hostile not in page  # the page's own escaper
    assert "účetnictví" in page and "not UTF-8 text" in page
    with open(folder / "erasure_register.csv", newline="", encoding="utf-8") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
    # logs and Dagster metadata never show a system name that is not a plain identifier
    rendered = [str(e.message) for e in result.all_events if e.message]
    rendered += [entry.user_message for entry in env.instance.all_logs(result.run_id)]
    for node in {e.node_name for e in result.all_events if e.is_step_event}:
        for m in result.asset_materializations_for_node(node):
            rendered += [f"{k} {v.value}" for k, v in m.metadata.items()]
    for evaluation in result.get_asset_check_evaluations():
        rendered += [f"{k} {v.value}" for k, v in evaluation.metadata.items()]
    text = json.dumps(rendered, ensure_ascii=False)
    for needle in (secret, "jana.novakova", "HYPERLINK", "účetnictví", account, mail):
        assert needle not in text, needle
