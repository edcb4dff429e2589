"""Ingestion of arrival-day event files (CONTRACT 2.1): rejection reasons, duplicates, files, counts.

Most tests call `ingest_day` directly on a tmp warehouse; the Dagster path is covered by
tests/pipelines/test_definitions.py and by `test_dagster_rerun_of_the_ingestion_changes_nothing` below.
"""

import copy
import gzip
import hashlib
import hmac
import json
import os
from datetime import date

import dagster as dg
import pytest

from assets.landing.contract import REJECTION_REASONS, REQUIRED_PROPERTIES
from assets.landing.ingest import ingest_day
from pipelines.warehouse import connect
from tests.helpers import TEST_KEY, event

DAY = date(2026, 11, 3)  # CET (+01:00): end of DAY is 2026-11-04T00:00:00+01:00
TS = "2026-11-03T09:15:00+01:00"
DROP = object()  # marks a field to remove

VALID_PROPERTIES = {
    "Account Created": {"email": "jan.novak@example.cz", "first_name": "Jan", "last_name": "Novák"},
    "Email Changed": {"email": "new@example.cz", "previous_email": "old@example.cz"},
    "Address Changed": {"street": "Národní 1", "city": "Praha", "postal_code": "110 00", "country": "CZ"},
    "Marketing Consent Granted": {"notice_version": "2026-01", "source": "preferences"},
    "Marketing Consent Withdrawn": {"source": "preferences"},
    "Marketing Message Sent": {"campaign_id": "cmp-1", "medium": "email"},
}


def good(
    name: str = "Signed In", *, account: str = "acc_1", ts: str = TS, message_id: str | None = None, **fields
) -> dict:
    """A valid event of `name`; `fields` override paths, "__" separated (e.g. context__channel=...)."""
    channel = "care_center" if name == "Email Changed" else "web"
    props = copy.deepcopy(VALID_PROPERTIES.get(name, {}))
    ev = event(name, account, ts, channel=channel, properties=props, message_id=message_id)
    for dotted, value in fields.items():
        set_path(ev, dotted.split("__"), value)
    return ev


def set_path(doc: dict, path: list[str], value) -> None:
    for key in path[:-1]:
        if not isinstance(doc.get(key), dict):
            doc[key] = {}
        doc = doc[key]
    if value is DROP:
        doc.pop(path[-1], None)
    else:
        doc[path[-1]] = value


def as_text(line) -> str:
    return json.dumps(line, ensure_ascii=False) if isinstance(line, dict) else line


def ingest(env, day: date = DAY):
    with env.connect() as con:
        return ingest_day(con, env.inbox, day)


def reference_hmac(message: str) -> str:
    return hmac.new(TEST_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()


def table(env, name: str) -> list[tuple]:
    return env.query(f"SELECT * FROM {name} ORDER BY ALL")


# ---------------------------------------------------------------------------------------------
# One line per case: every rejection reason, and the accepted boundaries next to them
# ---------------------------------------------------------------------------------------------

_VALID_LINE = json.dumps(good(message_id="tpl"))


def _raw(replace: str, by: str, message_id: str) -> str:
    text = _VALID_LINE.replace('"tpl"', json.dumps(message_id))
    assert replace in text
    return text.replace(replace, by, 1)


def _cases() -> list[tuple[str, object, str | None]]:
    cases: list[tuple[str, object, str | None]] = [
        # invalid JSON, including what DuckDB's lenient parser would accept
        ("not json", "{not json", "invalid_json"),
        ("truncated", _VALID_LINE[:-5], "invalid_json"),
        ("trailing comma", _raw('"web"}}', '"web"},}', "trailing-comma"), "invalid_json"),
        (
            "trailing comma in array",
            _raw('"properties": {}', '"properties": {"a": [1, 2,]}', "tc-array"),
            "invalid_json",
        ),
        ("NaN", _raw('"properties": {}', '"properties": {"x": NaN}', "nan"), "invalid_json"),
        ("Infinity", _raw('"properties": {}', '"properties": {"x": -Infinity}', "inf"), "invalid_json"),
        ("single quotes", "{'messageId': 'sq'}", "invalid_json"),
        ("two objects on a line", _VALID_LINE + ' {"a": 1}', "invalid_json"),
        ("BOM not at the start of the file", "\ufeff" + _VALID_LINE.replace('"tpl"', '"mid-bom"'), "invalid_json"),
        ("array", "[1, 2]", "not_an_object"),
        ("null", "null", "not_an_object"),
        ("string", '"track"', "not_an_object"),
        ("number", "42", "not_an_object"),
        # messageId
        ("empty object", "{}", "missing_field:messageId"),
        ("messageId missing", good(messageId=DROP), "missing_field:messageId"),
        ("messageId null", good(messageId=None), "missing_field:messageId"),
        ("messageId a number", good(messageId=12345), "invalid_message_id"),
        ("messageId an object", good(messageId={"id": "m-1"}), "invalid_message_id"),
        ("messageId true", good(messageId=True), "invalid_message_id"),
        ("messageId empty", good(messageId=""), "invalid_message_id"),
        ("messageId blank", good(messageId="   "), "invalid_message_id"),
        # blankness is tested byte-wise first (value < '!'), then trimmed: both sides of that edge
        ("messageId all six whitespace characters", good(messageId=" \t\n\r\f\v"), "invalid_message_id"),
        ("messageId a control character first", good(messageId="\u0001m-ctl"), None),
        ("messageId whitespace first", good(messageId=" m-lead"), None),
        ("messageId '!'", good(messageId="!"), None),
        ("messageId a no-break space", good(messageId="\u00a0"), None),
        ("messageId 101 chars", good(messageId="m" * 101), "invalid_message_id"),
        ("messageId 100 chars", good(messageId="m" * 100), None),
        ("messageId 100 non-ASCII chars", good(messageId="ž" * 100), None),
        # type
        ("type missing", good(type=DROP), "missing_field:type"),
        ("type null", good(type=None), "missing_field:type"),
        ("type identify", good(type="identify"), "invalid_type"),
        ("type Track", good(type="Track"), "invalid_type"),
        ("type a number", good(type=1), "invalid_type"),
        # event
        ("event missing", good(event=DROP), "missing_field:event"),
        ("event unknown", good(event="Account Hacked"), "unknown_event"),
        ("event lower case", good(event="signed in"), "unknown_event"),
        ("event a number", good(event=7), "unknown_event"),
        # userId
        ("userId missing", good(userId=DROP), "missing_field:userId"),
        ("userId null", good(userId=None), "missing_field:userId"),
        ("userId a number", good(userId=42), "invalid_user_id"),
        ("userId empty", good(userId=""), "invalid_user_id"),
        ("userId blank", good(userId="\t\v "), "invalid_user_id"),
        ("userId a control character first", good(userId="\u0001acc"), None),
        # timestamp
        ("timestamp missing", good(timestamp=DROP), "missing_field:timestamp"),
        ("timestamp null", good(timestamp=None), "missing_field:timestamp"),
        ("timestamp without offset", good(timestamp="2026-11-03T09:15:00"), "timestamp_without_offset"),
        ("timestamp with fraction, no offset", good(timestamp="2026-11-03T09:15:00.123"), "timestamp_without_offset"),
        ("date only", good(timestamp="2026-11-03"), "timestamp_without_offset"),
        ("timestamp words", good(timestamp="yesterday"), "invalid_timestamp"),
        ("timestamp Feb 30", good(timestamp="2026-02-30T10:00:00Z"), "invalid_timestamp"),
        ("timestamp hour 25", good(timestamp="2026-11-03T25:00:00Z"), "invalid_timestamp"),
        ("timestamp offset +25:00", good(timestamp="2026-11-03T09:15:00+25:00"), "invalid_timestamp"),
        ("timestamp offset minutes 75", good(timestamp="2026-11-03T09:15:00+01:75"), "invalid_timestamp"),
        ("timestamp epoch number", good(timestamp=1762157700), "invalid_timestamp"),
        ("timestamp empty", good(timestamp=""), "invalid_timestamp"),
        ("timestamp Z", good(timestamp="2026-11-03T08:15:00Z"), None),
        ("timestamp +0100", good(timestamp="2026-11-03T09:15:00+0100"), None),
        ("timestamp -05:00", good(timestamp="2026-11-03T03:15:00.250-05:00"), None),
        # later than the end of the arrival day + 1 h (end of Nov 3 is Nov 4 00:00 +01:00)
        ("end of day + 1 h", good(timestamp="2026-11-04T01:00:00+01:00"), None),
        ("end of day + 1 h in UTC", good(timestamp="2026-11-04T00:00:00Z"), None),
        ("end of day + 1 h + 1 s", good(timestamp="2026-11-04T01:00:01+01:00"), "timestamp_too_late"),
        ("end of day + 1 h + 1 us in UTC", good(timestamp="2026-11-04T00:00:00.000001Z"), "timestamp_too_late"),
        ("a year late", good(timestamp="2027-11-03T09:15:00+01:00"), "timestamp_too_late"),
        ("long before the arrival day", good(timestamp="2020-01-01T00:00:00+01:00"), None),
        # context.channel
        ("context missing", good(context=DROP), "missing_field:context.channel"),
        ("context a string", good(context="web"), "missing_field:context.channel"),
        ("channel missing", good(context__channel=DROP), "missing_field:context.channel"),
        ("channel null", good(context__channel=None), "missing_field:context.channel"),
        ("channel unknown", good(context__channel="email"), "unknown_channel"),
        ("channel upper case", good(context__channel="WEB"), "unknown_channel"),
        ("channel a number", good(context__channel=3), "unknown_channel"),
        # properties
        ("properties a list", good(properties=[1]), "invalid_properties"),
        ("properties a string", good(properties="{}"), "invalid_properties"),
        ("properties null", good(properties=None), None),
        ("properties missing where none are needed", good(properties=DROP), None),
        # Marketing Message Sent: medium
        ("medium fax", good("Marketing Message Sent", properties__medium="fax"), "invalid_property:medium"),
        ("medium upper case", good("Marketing Message Sent", properties__medium="SMS"), "invalid_property:medium"),
        ("medium a number", good("Marketing Message Sent", properties__medium=1), "invalid_property:medium"),
        ("medium push", good("Marketing Message Sent", properties__medium="push"), None),
        ("medium missing", good("Marketing Message Sent", properties__medium=DROP), None),
        # Segment consent
        (
            "categoryPreferences a list",
            good("Segment Consent Preference Updated", context__consent__categoryPreferences=[True]),
            "invalid_property:context.consent.categoryPreferences",
        ),
        (
            "categoryPreferences a string",
            good("Segment Consent Preference Updated", context__consent__categoryPreferences="marketing"),
            "invalid_property:context.consent.categoryPreferences",
        ),
        (
            "consent a string",
            good("Segment Consent Preference Updated", context__consent="yes"),
            "invalid_property:context.consent.categoryPreferences",
        ),
        # e-mail addresses
        (
            "email not an address",
            good("Account Created", properties__email="jan.novak"),
            "invalid_email:properties.email",
        ),
        (
            "email without domain dot",
            good("Account Created", properties__email="a@b"),
            "invalid_email:properties.email",
        ),
        ("email two @", good("Account Created", properties__email="a@@b.cz"), "invalid_email:properties.email"),
        ("email inner space", good("Account Created", properties__email="a b@c.cz"), "invalid_email:properties.email"),
        ("email a number", good("Account Created", properties__email=5), "invalid_email:properties.email"),
        ("new email invalid", good("Email Changed", properties__email="nope"), "invalid_email:properties.email"),
        (
            "previous email invalid",
            good("Email Changed", properties__previous_email="nope@"),
            "invalid_email:properties.previous_email",
        ),
        ("email padded and upper case", good("Account Created", properties__email="  Jan@Example.CZ "), None),
        ("previous email null", good("Email Changed", properties__previous_email=None), None),
        # the first broken rule wins
        ("no messageId and no event", good(messageId=DROP, event=DROP), "missing_field:messageId"),
        ("bad type and bad channel", good(type="page", context__channel="fax"), "invalid_type"),
        ("late and bad channel", good(timestamp="2026-11-05T00:00:00Z", context__channel="fax"), "timestamp_too_late"),
    ]
    for name, props in REQUIRED_PROPERTIES.items():
        for prop in props:
            reason = f"missing_property:{prop}"
            cases += [
                (f"{name}: {prop} missing", good(name, **{f"properties__{prop}": DROP}), reason),
                (f"{name}: {prop} null", good(name, **{f"properties__{prop}": None}), reason),
                (f"{name}: {prop} empty", good(name, **{f"properties__{prop}": ""}), reason),
                (f"{name}: {prop} blank", good(name, **{f"properties__{prop}": " \t"}), reason),
                (f"{name}: properties missing", good(name, properties=DROP), f"missing_property:{props[0]}"),
                (
                    f"{name}: {prop} an object",
                    good(name, **{f"properties__{prop}": {"v": 1}}),
                    f"invalid_property:{prop}",
                ),
            ]
    for name in VALID_PROPERTIES | dict.fromkeys(REQUIRED_PROPERTIES):
        cases.append((f"{name}: valid", good(name), None))
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def case_results(tmp_path_factory):
    """Ingest every case as one line of one file; return {line_number: (reason | None, raw_line)}."""
    root = tmp_path_factory.mktemp("cases")
    folder = root / "inbox" / "events" / DAY.isoformat()
    folder.mkdir(parents=True)
    (folder / "cases.jsonl").write_text("".join(as_text(line) + "\n" for _, line, _ in CASES), encoding="utf-8")
    with connect(root / "warehouse.duckdb", TEST_KEY) as con:
        stats = ingest_day(con, root / "inbox", DAY)
        accepted = con.execute("SELECT line_number FROM landing.events").fetchall()
        rejected = con.execute("SELECT line_number, reason, raw_line FROM landing.rejected").fetchall()
    results = {n: (None, None) for (n,) in accepted}
    for n, reason, raw in rejected:
        assert n not in results
        results[n] = (reason, raw)
    return stats, results


@pytest.mark.parametrize(
    "line_number, line, reason",
    [pytest.param(i, line, reason, id=name) for i, (name, line, reason) in enumerate(CASES, 1)],
)
def test_each_line_gets_the_contract_reason(case_results, line_number, line, reason):
    _, results = case_results
    assert results[line_number][0] == reason
    if reason is not None:
        assert results[line_number][1] == as_text(line)  # the raw line is kept as it was


def test_every_rejection_reason_is_covered_and_known(case_results):
    stats, results = case_results
    produced = {reason for reason, _ in results.values() if reason}
    assert produced <= set(REJECTION_REASONS)
    # unreadable_file has its own tests below (corrupt gzip, not UTF-8, symlink)
    assert produced | {"unreadable_file"} == set(REJECTION_REASONS)
    expected_rejected = sum(1 for _, _, r in CASES if r)
    assert (stats.received, stats.accepted, stats.duplicates, stats.rejected) == (
        len(CASES),
        len(CASES) - expected_rejected,
        0,
        expected_rejected,
    )


# ---------------------------------------------------------------------------------------------
# Late timestamps around DST changes (Europe/Prague)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "day, limit_utc, limit_local",
    [
        # the day before autumn DST: ends at Oct 25 00:00 +02:00
        ("2026-10-24", "2026-10-24T23:00:00Z", "2026-10-25T01:00:00+02:00"),
        # Oct 25 has 25 hours: it ends at Oct 26 00:00 +01:00
        ("2026-10-25", "2026-10-26T00:00:00Z", "2026-10-26T01:00:00+01:00"),
        # the day before spring DST: ends at Mar 29 00:00 +01:00
        ("2026-03-28", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00+01:00"),
        # Mar 29 has 23 hours: it ends at Mar 30 00:00 +02:00
        ("2026-03-29", "2026-03-29T23:00:00Z", "2026-03-30T01:00:00+02:00"),
    ],
)
def test_timestamp_limit_is_end_of_arrival_day_plus_one_hour_across_dst(env, day, limit_utc, limit_local):
    one_second_later = limit_utc.replace(":00:00Z", ":00:01Z")
    env.write_events(
        day,
        "part-0000.jsonl",
        [
            good(ts=limit_utc, message_id="at-limit-utc"),
            good(ts=limit_local, message_id="at-limit-local"),
            good(ts=one_second_later, message_id="one-second-late"),
        ],
    )
    stats = ingest(env, date.fromisoformat(day))
    assert (stats.accepted, stats.rejected) == (2, 1)
    assert env.query("SELECT message_id FROM landing.events ORDER BY 1") == [("at-limit-local",), ("at-limit-utc",)]
    assert env.query("SELECT line_number, reason FROM landing.rejected") == [(3, "timestamp_too_late")]


# ---------------------------------------------------------------------------------------------
# Duplicates: the first accepted copy wins
# ---------------------------------------------------------------------------------------------


def test_duplicate_within_a_file_first_copy_wins_even_if_content_differs(env):
    env.write_events(
        DAY,
        "part-0000.jsonl",
        [
            good("Signed In", message_id="m-dup", account="acc_1"),
            good("Password Changed", message_id="m-dup", account="acc_2"),
            good("Signed In", message_id="m-other"),
        ],
    )
    stats = ingest(env)
    assert (stats.received, stats.accepted, stats.duplicates, stats.rejected) == (3, 2, 1, 0)
    assert env.query("SELECT event, account_id, line_number FROM landing.events WHERE message_id = 'm-dup'") == [
        ("Signed In", "acc_1", 1)
    ]
    assert env.query("SELECT count(*) FROM landing.rejected") == [(0,)]


def test_duplicates_across_files_follow_file_name_order(env):
    # written first, but "part-0001" sorts after "part-0000": the copy in part-0000 wins
    env.write_events(DAY, "part-0001.jsonl", [good("Password Changed", message_id="m-x", account="acc_late")])
    env.write_events(DAY, "part-0000.jsonl", [good("Signed In", message_id="m-x", account="acc_early")])
    ingest(env)
    assert env.query("SELECT event, account_id, source_file FROM landing.events") == [
        ("Signed In", "acc_early", "part-0000.jsonl")
    ]
    assert env.query("SELECT source_file, accepted, duplicates FROM landing.files ORDER BY 1") == [
        ("part-0000.jsonl", 1, 0),
        ("part-0001.jsonl", 0, 1),
    ]


def test_duplicate_of_an_earlier_day_is_not_applied_again(env):
    env.write_events("2026-11-02", "part-0000.jsonl", [good(message_id="m-1", ts="2026-11-02T10:00:00+01:00")])
    env.write_events(
        DAY,
        "part-0000.jsonl",
        [good("Password Changed", message_id="m-1"), good(message_id="m-2")],
    )
    ingest(env, date(2026, 11, 2))
    stats = ingest(env)
    assert (stats.received, stats.accepted, stats.duplicates, stats.rejected) == (2, 1, 1, 0)
    assert env.query("SELECT message_id, event, arrival_date::VARCHAR FROM landing.events ORDER BY 1") == [
        ("m-1", "Signed In", "2026-11-02"),
        ("m-2", "Signed In", "2026-11-03"),
    ]


def test_a_rejected_first_copy_does_not_block_a_later_valid_copy(env):
    env.write_events(
        DAY,
        "part-0000.jsonl",
        [
            good(message_id="m-1", context__channel="fax"),  # rejected
            good(message_id="m-1", account="acc_ok"),  # the first ACCEPTED copy
            good(message_id="m-1", account="acc_dup"),  # a duplicate of it
            good(message_id="m-1", userId=7),  # invalid: rejected, not a duplicate
        ],
    )
    stats = ingest(env)
    assert (stats.received, stats.accepted, stats.duplicates, stats.rejected) == (4, 1, 1, 2)
    assert env.query("SELECT account_id, line_number FROM landing.events") == [("acc_ok", 2)]
    assert env.query("SELECT line_number, reason FROM landing.rejected ORDER BY 1") == [
        (1, "unknown_channel"),
        (4, "invalid_user_id"),
    ]


# ---------------------------------------------------------------------------------------------
# Files: gz, unreadable files, BOM/CRLF/blank lines, names, symlinks
# ---------------------------------------------------------------------------------------------


def test_gzip_files_are_read_like_plain_ones(env):
    env.write_events(DAY, "part-0000.jsonl.gz", [good(message_id="g-1"), "{bad", good(message_id="g-1")], gz=True)
    env.write_events(DAY, "part-0001.jsonl", [good(message_id="p-1")])
    stats = ingest(env)
    assert [(f.source_file, f.received, f.accepted, f.duplicates, f.rejected) for f in stats.files] == [
        ("part-0000.jsonl.gz", 3, 1, 1, 1),
        ("part-0001.jsonl", 1, 1, 0, 0),
    ]
    assert env.query("SELECT source_file, line_number, reason FROM landing.rejected") == [
        ("part-0000.jsonl.gz", 2, "invalid_json")
    ]


@pytest.mark.parametrize(
    "name, data, problem",
    [
        ("part-0000.jsonl.gz", b"PK\x03\x04 this is not gzip at all", "corrupt_gzip"),
        ("part-0000.jsonl.gz", gzip.compress(b'{"a": 1}\n' * 50, mtime=0)[:-12], "corrupt_gzip"),  # truncated
        ("part-0000.jsonl.gz", b"", "corrupt_gzip"),  # empty: not a gzip stream
        ("part-0000.jsonl", b'{"messageId": "caf\xe9"}\n', "not_utf8"),  # Latin-1
        ("part-0000.jsonl", b"\xed\xa0\x80\n", "not_utf8"),  # an encoded surrogate
        ("part-0000.jsonl.gz", gzip.compress(b"\xff\xfe{\x00}\x00\n", mtime=0), "not_utf8"),
    ],
    ids=["not gzip", "truncated gzip", "empty gzip", "latin-1", "surrogate", "gzip of UTF-16"],
)
def test_an_unreadable_file_is_one_rejected_row_at_line_zero_and_the_run_goes_on(env, name, data, problem):
    folder = env.inbox / "events" / DAY.isoformat()
    folder.mkdir(parents=True)
    (folder / name).write_bytes(data)
    env.write_events(DAY, "part-0001.jsonl", [good(message_id="ok-1"), good(message_id="ok-2")])
    stats = ingest(env)
    assert (stats.received, stats.accepted, stats.duplicates, stats.rejected) == (3, 2, 0, 1)
    assert env.query("SELECT source_file, line_number, reason, raw_line FROM landing.rejected") == [
        (name, 0, "unreadable_file", None)
    ]
    assert env.query(
        "SELECT source_file, received, accepted, duplicates, rejected, readable, problem FROM landing.files ORDER BY 1"
    ) == [
        (name, 1, 0, 0, 1, False, problem),
        ("part-0001.jsonl", 2, 2, 0, 0, True, None),
    ]
    # a file with invalid UTF-8 is unreadable as a whole: none of its lines is applied
    assert env.query("SELECT count(*) FROM landing.events WHERE source_file = ?", [name]) == [(0,)]


def test_bom_crlf_and_blank_lines_keep_physical_line_numbers(env):
    lines = [
        json.dumps(good(message_id="l1")),  # line 1, after the BOM
        "",  # line 2: empty
        "   \t ",  # line 3: whitespace only
        json.dumps(good(message_id="l4")),  # line 4
        "\x0c",  # line 5: form feed only (whitespace)
        "{broken",  # line 6
        json.dumps(good(message_id="l7")),  # line 7, the last line has no line break
    ]
    data = b"\xef\xbb\xbf" + "\r\n".join(lines).encode()
    folder = env.inbox / "events" / DAY.isoformat()
    folder.mkdir(parents=True)
    (folder / "part-0000.jsonl").write_bytes(data)
    stats = ingest(env)
    assert (stats.received, stats.accepted, stats.duplicates, stats.rejected) == (4, 3, 0, 1)
    assert env.query("SELECT message_id, line_number FROM landing.events ORDER BY 2") == [
        ("l1", 1),
        ("l4", 4),
        ("l7", 7),
    ]
    # the raw line is kept without its CR
    assert env.query("SELECT line_number, reason, raw_line FROM landing.rejected") == [(6, "invalid_json", "{broken")]


def test_files_not_named_jsonl_or_jsonl_gz_are_ignored(env):
    for name in ["notes.txt", "part-0000.json", "part-0000.jsonl.bak", "part-0000.JSONL", "part.gz", "part.jsonl.zip"]:
        env.write_events(DAY, name, [good(message_id=f"ignored-{name}")])
    (env.inbox / "events" / DAY.isoformat() / "folder.jsonl").mkdir()
    env.write_events(DAY, "part-0001.jsonl", [good(message_id="read")])
    stats = ingest(env)
    assert [f.source_file for f in stats.files] == ["part-0001.jsonl"]
    assert env.query("SELECT message_id FROM landing.events") == [("read",)]
    assert env.query("SELECT count(*) FROM landing.rejected") == [(0,)]


def test_a_symlink_is_not_followed(env, tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps(good(message_id="secret")) + "\n")
    env.write_events(DAY, "part-0000.jsonl", [good(message_id="real")])
    (env.inbox / "events" / DAY.isoformat() / "part-0001.jsonl").symlink_to(outside)
    stats = ingest(env)
    assert (stats.received, stats.accepted, stats.rejected) == (2, 1, 1)
    assert env.query("SELECT message_id FROM landing.events") == [("real",)]
    assert env.query("SELECT source_file, line_number, reason, raw_line FROM landing.rejected") == [
        ("part-0001.jsonl", 0, "unreadable_file", None)
    ]
    assert env.query("SELECT readable, problem FROM landing.files WHERE source_file = 'part-0001.jsonl'") == [
        (False, "symlink_not_followed")
    ]


def test_a_day_without_a_folder_and_an_empty_file(env):
    assert ingest(env).status == "no_folder"
    assert env.query("SELECT count(*) FROM landing.files") == [(0,)]
    env.write_events(DAY, "part-0000.jsonl", [])
    stats = ingest(env)
    assert stats.status == "ingested"
    assert env.query("SELECT source_file, received, accepted, rejected, readable FROM landing.files") == [
        ("part-0000.jsonl", 0, 0, 0, True)
    ]


# ---------------------------------------------------------------------------------------------
# Reconciliation, idempotency, late files
# ---------------------------------------------------------------------------------------------


def _mixed_day(env) -> None:
    env.write_events("2026-11-02", "part-0000.jsonl", [good(message_id="old-1", ts="2026-11-02T10:00:00+01:00")])
    env.write_events(
        DAY,
        "part-0000.jsonl",
        [
            good(message_id="a-1"),
            good(message_id="a-1"),  # duplicate in the file
            good(message_id="old-1"),  # duplicate of an earlier day
            "",
            "{bad json",
            good(message_id="a-2", context__channel="sms"),
            good("Account Created", message_id="a-3", properties__email="x"),
            good("Account Created", message_id="a-4", account="acc_4"),
        ],
    )
    env.write_events(DAY, "part-0001.jsonl.gz", [good(message_id="a-4"), good(message_id="b-1")], gz=True)
    (env.inbox / "events" / DAY.isoformat() / "part-0002.jsonl.gz").write_bytes(b"not gzip")


def test_received_equals_accepted_plus_duplicates_plus_rejected_per_file(env):
    _mixed_day(env)
    ingest(env, date(2026, 11, 2))
    stats = ingest(env)
    rows = env.query(
        """SELECT f.source_file, f.received, f.accepted, f.duplicates, f.rejected,
                  (SELECT count(*) FROM landing.events e
                   WHERE e.arrival_date = f.arrival_date AND e.source_file = f.source_file),
                  (SELECT count(*) FROM landing.rejected r
                   WHERE r.arrival_date = f.arrival_date AND r.source_file = f.source_file)
           FROM landing.files f WHERE f.arrival_date = ? ORDER BY 1""",
        [DAY],
    )
    assert [r[:5] for r in rows] == [
        ("part-0000.jsonl", 7, 2, 2, 3),
        ("part-0001.jsonl.gz", 2, 1, 1, 0),
        ("part-0002.jsonl.gz", 1, 0, 0, 1),
    ]
    for _, received, accepted, duplicates, rejected, events, rejected_rows in rows:
        assert received == accepted + duplicates + rejected
        assert (events, rejected_rows) == (accepted, rejected)
    assert (stats.received, stats.accepted, stats.duplicates, stats.rejected) == (10, 3, 3, 4)


def test_rerunning_a_day_changes_nothing(env):
    _mixed_day(env)
    ingest(env, date(2026, 11, 2))
    first = ingest(env)
    tables = ["landing.events", "landing.rejected", "landing.files", "ops.ingested_days"]
    before = {t: table(env, t) for t in tables}
    second = ingest(env)
    assert second.status == "unchanged"
    assert second.files == first.files
    assert {t: table(env, t) for t in tables} == before  # byte-equal, ingested_at included


def test_reingesting_a_touched_day_gives_the_same_rows(env):
    _mixed_day(env)
    ingest(env, date(2026, 11, 2))
    first = ingest(env)
    before = env.query("SELECT * EXCLUDE (ingested_at) FROM landing.files ORDER BY ALL")
    events = table(env, "landing.events")
    rejected = table(env, "landing.rejected")
    # a new modification time changes the manifest: the day is ingested afresh, not on top
    path = env.inbox / "events" / DAY.isoformat() / "part-0000.jsonl"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    second = ingest(env)
    assert second.status == "ingested"
    assert second.files == first.files
    assert env.query("SELECT * EXCLUDE (ingested_at) FROM landing.files ORDER BY ALL") == before
    assert table(env, "landing.events") == events
    assert table(env, "landing.rejected") == rejected
    assert env.query("SELECT count(*) FROM ops.ingested_days") == [(2,)]


def test_a_late_file_reingests_the_day_consistently(env):
    env.write_events(DAY, "part-0001.jsonl", [good(message_id="m-1"), good(message_id="m-2"), "{bad"])
    first = ingest(env)
    assert (first.received, first.accepted, first.rejected) == (3, 2, 1)
    # a late file arrives; its name sorts first, so its copy of m-2 is now the first accepted copy
    env.write_events(
        DAY,
        "part-0000.jsonl",
        [good("Password Changed", message_id="m-2"), good(message_id="m-3"), good(message_id="m-3")],
    )
    env.write_events(DAY, "part-0002.jsonl", [good(message_id="m-1"), good(message_id="m-4")])
    second = ingest(env)
    assert second.status == "ingested"
    assert [(f.source_file, f.received, f.accepted, f.duplicates, f.rejected) for f in second.files] == [
        ("part-0000.jsonl", 3, 2, 1, 0),
        ("part-0001.jsonl", 3, 1, 1, 1),
        ("part-0002.jsonl", 2, 1, 1, 0),
    ]
    assert env.query("SELECT message_id, event, source_file FROM landing.events ORDER BY 1") == [
        ("m-1", "Signed In", "part-0001.jsonl"),
        ("m-2", "Password Changed", "part-0000.jsonl"),
        ("m-3", "Signed In", "part-0000.jsonl"),
        ("m-4", "Signed In", "part-0002.jsonl"),
    ]
    assert env.query("SELECT source_file, line_number FROM landing.rejected") == [("part-0001.jsonl", 3)]
    assert env.query("SELECT count(*), max(files) FROM ops.ingested_days") == [(1, 3)]


def test_a_day_whose_folder_was_removed_keeps_its_history(env):
    env.write_events(DAY, "part-0000.jsonl", [good(message_id="m-1"), "{bad"])
    ingest(env)
    before = [table(env, t) for t in ("landing.events", "landing.rejected", "landing.files")]
    for p in (env.inbox / "events" / DAY.isoformat()).iterdir():
        p.unlink()
    (env.inbox / "events" / DAY.isoformat()).rmdir()
    stats = ingest(env)
    assert stats.status == "retained_history"
    assert (stats.received, stats.accepted, stats.rejected) == (2, 1, 1)
    assert [table(env, t) for t in ("landing.events", "landing.rejected", "landing.files")] == before


def test_a_late_file_after_retention_keeps_the_days_history(env):
    env.write_events(DAY, "part-0001.jsonl", [good("Account Created", message_id="m-1"), "{bad"])
    ingest(env)
    kept = [table(env, t) for t in ("landing.events", "landing.rejected")]
    folder = env.inbox / "events" / DAY.isoformat()
    for p in folder.iterdir():  # retention deletes the ingested folder ...
        p.unlink()
    folder.rmdir()
    # ... and later a late file re-creates it
    env.write_events(DAY, "part-0000.jsonl", [good("Password Changed", message_id="m-1"), good(message_id="m-2")])
    stats = ingest(env)
    assert stats.status == "ingested"
    assert [(f.source_file, f.received, f.accepted, f.duplicates, f.rejected) for f in stats.files] == [
        ("part-0000.jsonl", 2, 1, 1, 0),
        ("part-0001.jsonl", 2, 1, 0, 1),  # history: the file is gone, its rows are not
    ]
    assert env.query("SELECT message_id, event FROM landing.events ORDER BY 1") == [
        ("m-1", "Account Created"),
        ("m-2", "Signed In"),
    ]
    assert table(env, "landing.rejected") == kept[1]
    assert ingest(env).status == "unchanged"


def test_dagster_rerun_of_the_ingestion_changes_nothing(env):
    _mixed_day(env)
    ingestion = dg.AssetSelection.assets(["landing", "events"]).required_multi_asset_neighbors()
    assert env.run("2026-11-02", selection=ingestion).success
    assert env.run(DAY, selection=ingestion).success
    before = [table(env, t) for t in ("landing.events", "landing.rejected", "landing.files")]
    result = env.run(DAY, selection=ingestion)
    assert result.success
    assert [table(env, t) for t in ("landing.events", "landing.rejected", "landing.files")] == before
    mats = {m.asset_key: m for m in result.asset_materializations_for_node("ingest_arrival_day")}
    assert mats[dg.AssetKey(["landing", "events"])].metadata["dagster/row_count"].value == 4
    assert mats[dg.AssetKey(["landing", "rejected"])].metadata["rejected_today"].value == 4


# ---------------------------------------------------------------------------------------------
# What an accepted row holds: keys, consent, time
# ---------------------------------------------------------------------------------------------


def test_accepted_row_holds_the_contract_columns_and_keys(env):
    env.write_events(
        DAY,
        "part-0000.jsonl",
        [
            good(
                "Account Created", account="acc_ž1", message_id="c-1", properties__email="  Jana.Novakova@Example.CZ "
            ),
            good(
                "Email Changed",
                account="acc_ž1",
                message_id="c-2",
                ts="2026-11-03T08:30:00Z",
                context__agentId="agent-7",
                properties__email="NEW@example.cz",
                properties__previous_email="Jana.Novakova@example.cz",
            ),
            good("Signed In", account="acc_2", message_id="c-3", userId="acc_2"),
            good(message_id="c-4", userId="acc_3", context__channel="fax"),  # rejected, still keyed
        ],
    )
    ingest(env)
    rows = env.query(
        """SELECT message_id, account_id, subject_key, occurred_at = ?::TIMESTAMPTZ, channel, agent_id,
                  email_key, previous_email_key, source_file, line_number, arrival_date
           FROM landing.events WHERE message_id = 'c-2'""",
        ["2026-11-03T09:30:00+01:00"],
    )
    assert rows == [
        (
            "c-2",
            "acc_ž1",
            reference_hmac("acc_ž1"),
            True,
            "care_center",
            "agent-7",
            reference_hmac("new@example.cz"),
            reference_hmac("jana.novakova@example.cz"),
            "part-0000.jsonl",
            2,
            DAY,
        )
    ]
    assert env.query(
        "SELECT email_key, json_extract_string(properties, '$.email') FROM landing.events WHERE message_id = 'c-1'"
    ) == [(reference_hmac("jana.novakova@example.cz"), "  Jana.Novakova@Example.CZ ")]
    assert env.query("SELECT email_key, previous_email_key FROM landing.events WHERE message_id = 'c-3'") == [
        (None, None)
    ]
    assert env.query("SELECT account_id, subject_key, message_id FROM landing.rejected") == [
        ("acc_3", reference_hmac("acc_3"), "c-4")
    ]
    assert env.subject_key("acc_ž1") == reference_hmac("acc_ž1")


SEGMENT = "Segment Consent Preference Updated"


@pytest.mark.parametrize(
    "consent, granted",
    [
        ({"categoryPreferences": {"Marketing": True}}, True),
        ({"categoryPreferences": {"marketing": True, "Advertising": False}}, True),
        ({"categoryPreferences": {"MARKETING": True}}, True),
        ({"categoryPreferences": {"Marketing": False}}, False),
        ({"categoryPreferences": {"Analytics": True}}, False),  # key missing
        ({"categoryPreferences": {}}, False),
        ({}, False),  # categoryPreferences missing
        (DROP, False),  # context.consent missing
        ({"categoryPreferences": None}, False),
        ({"categoryPreferences": {"Marketing": None}}, False),
        ({"categoryPreferences": {"Marketing": "true"}}, False),  # a string is not the value true
        ({"categoryPreferences": {"marketing_emails": True}}, False),  # the key must match, not contain
    ],
)
def test_segment_consent_semantics(env, consent, granted):
    env.write_events(DAY, "part-0000.jsonl", [good(SEGMENT, message_id="s-1", context__consent=consent)])
    ingest(env)
    assert env.query("SELECT consent_granted FROM landing.events") == [(granted,)]


def test_consent_value_of_consent_events_only(env):
    env.write_events(
        DAY,
        "part-0000.jsonl",
        [
            good("Marketing Consent Granted", message_id="g"),
            good("Marketing Consent Withdrawn", message_id="w"),
            good("Marketing Consent Withdrawn", message_id="w-no-props", properties=DROP),
            good("Account Deleted", message_id="d"),
            good("Marketing Message Sent", message_id="s"),
        ],
    )
    ingest(env)
    assert env.query("SELECT message_id, consent_granted FROM landing.events ORDER BY 1") == [
        ("d", None),
        ("g", True),
        ("s", None),
        ("w", False),
        ("w-no-props", False),
    ]


def test_occurred_at_is_the_instant_of_the_timestamp(env):
    env.write_events(
        DAY,
        "part-0000.jsonl",
        [
            good(message_id="z", ts="2026-11-03T08:15:00Z"),
            good(message_id="plus", ts="2026-11-03T09:15:00+01:00"),
            good(message_id="minus", ts="2026-11-03T03:15:00-05:00"),
            good(message_id="frac", ts="2026-11-03T09:15:00.5+01:00"),
        ],
    )
    ingest(env)
    rows = env.query(
        """SELECT message_id, epoch(occurred_at) - epoch('2026-11-03T08:15:00Z'::TIMESTAMPTZ)
           FROM landing.events ORDER BY 1"""
    )
    assert rows == [("frac", 0.5), ("minus", 0.0), ("plus", 0.0), ("z", 0.0)]


def test_large_line_counts_stay_exact(env):
    # many files and lines: counting and line numbers are set-based, not per line
    lines = [good(message_id=f"bulk-{i}") if i % 50 else "{bad" for i in range(1, 5001)]
    lines += [good(message_id="bulk-1")]  # a duplicate at the end
    env.write_events(DAY, "part-0000.jsonl", lines[:2500])
    env.write_events(DAY, "part-0001.jsonl.gz", lines[2500:], gz=True)
    stats = ingest(env)
    assert (stats.received, stats.accepted, stats.duplicates, stats.rejected) == (5001, 4900, 1, 100)
    assert env.query(
        "SELECT min(line_number), max(line_number) FROM landing.rejected WHERE source_file = 'part-0001.jsonl.gz'"
    ) == [(50, 2500)]


def test_every_path_is_relative_to_the_inbox(env):
    # source_file is the file name only: no inbox path leaks into the warehouse
    env.write_events(DAY, "part-0000.jsonl", [good(message_id="p"), "{bad"])
    ingest(env)
    names = env.query(
        "SELECT source_file FROM landing.events UNION ALL SELECT source_file FROM landing.rejected "
        "UNION ALL SELECT source_file FROM landing.files"
    )
    assert {n for (n,) in names} == {"part-0000.jsonl"}
    assert str(env.inbox) not in json.dumps(env.query("SELECT manifest FROM ops.ingested_days"))


def test_an_empty_arrival_folder_ingests_nothing_and_does_not_fail(tmp_path):
    from datetime import date

    from assets.landing.ingest import ingest_day
    from pipelines.warehouse import connect

    (tmp_path / "inbox" / "events" / "2026-11-03").mkdir(parents=True)
    with connect(tmp_path / "w.duckdb", "k") as con:
        result = ingest_day(con, tmp_path / "inbox", date(2026, 11, 3))
        assert (result.received, result.accepted, result.rejected) == (0, 0, 0)
        assert con.execute("SELECT count(*) FROM landing.files").fetchall() == [(0,)]
