"""Hostile input: fuzz the ingestion, replay a corpus of the nastiest inputs found.

Hypothesis writes arrival-day folders of hostile files (random bytes, truncated and mutated
events, wrong types in every field, deep nesting, NUL bytes, invalid UTF-8, mixed line endings,
BOMs, gzip that is or is not gzip, empty files, names with spaces and unicode, names that are
not UTF-8, symlinks pointing outside the inbox, symlinked folders) and calls
`assets.landing.ingest.ingest_day` on a tmp warehouse. Whatever the input:

* it never raises;
* every file is accounted for: received = accepted + duplicates + rejected;
* the day's received lines equal the non-blank lines actually in the files, counted here
  independently (an unreadable file or a symlink counts 1 received / 1 rejected at line 0);
* every accepted line is in landing.events at its own file and line number with its own
  messageId, every rejected line is in landing.rejected with its raw text, and every line counted
  as a duplicate repeats an accepted messageId;
* nothing outside the inbox is read: a symlink is recorded as unreadable at line 0, a symlinked
  folder is not entered, and the outside files' content never reaches the warehouse.

`tests/landing/fuzz_corpus/index.json` lists the nastiest inputs found, each with the exact outcome it
must keep; `test_corpus_case` replays them and `test_the_whole_run_survives_the_corpus` runs every
asset of the nightly job over all of them at once.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.landing.contract import CHANNELS, EVENTS, REQUIRED_PROPERTIES
from assets.landing.ingest import ingest_day
from pipelines.warehouse import connect
from tests.helpers import TEST_KEY

CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"
BOM = b"\xef\xbb\xbf"
ASCII_SPACE = b" \t\r\n\x0b\x0c"  # what a blank line may hold (the contract's "only whitespace")
OUTSIDE_ID = "outside-the-inbox-7f3a"  # the messageId of the only line outside the inbox
EVENT_SUFFIXES = (".jsonl", ".jsonl.gz")
LANDING = ("landing.events", "landing.rejected", "landing.files")
OLD_TS = "2026-01-01T09:15:00+01:00"  # before every arrival day used here


# ---------------------------------------------------------------------------------------------
# The model: what the contract says a folder holds, computed without the pipeline
# ---------------------------------------------------------------------------------------------


@dataclass
class Expected:
    name: str  # as stored in source_file
    received: int
    readable: bool
    lines: dict[int, bytes]  # non-blank physical lines by number, without the line ending


def stored_name(raw: bytes) -> str:
    """A file name as the warehouse keeps it: UTF-8 text, undecodable bytes as \\xNN."""
    return raw.decode("utf-8", "backslashreplace")


def physical_lines(data: bytes) -> list[bytes]:
    if data.startswith(BOM):
        data = data[len(BOM) :]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def expected_files(folder: Path) -> dict[str, Expected]:
    """Every event file of an arrival folder, as the contract counts it."""
    found = {}
    if folder.is_symlink() or not folder.is_dir():
        return found
    for raw in os.listdir(os.fsencode(folder)):
        name = stored_name(raw)
        if not name.endswith(EVENT_SUFFIXES):
            continue
        path = Path(os.fsdecode(os.fsencode(folder) + b"/" + raw))
        if path.is_symlink():
            found[name] = Expected(name, 1, False, {})
            continue
        if not path.is_file():
            continue
        data = path.read_bytes()
        try:
            if name.endswith(".gz"):
                if not data:
                    raise EOFError("an empty file is not a gzip stream")
                data = gzip.decompress(data)
            data.decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError):
            found[name] = Expected(name, 1, False, {})
            continue
        lines = {i: line.rstrip(b"\r\n") for i, line in enumerate(physical_lines(data), 1) if line.strip(ASCII_SPACE)}
        found[name] = Expected(name, len(lines), True, lines)
    return found


def _first_key_wins(pairs):
    # DuckDB's JSON reader keeps the first of duplicate keys; Python's json keeps the last
    doc = {}
    for k, v in pairs:
        doc.setdefault(k, v)
    return doc


def message_id_of(line: bytes) -> str:
    def reject(name):
        raise ValueError(name)

    return json.loads(line.decode(), parse_constant=reject, object_pairs_hook=_first_key_wins)["messageId"]


def assert_day_holds(con, inbox: Path, day: date, result) -> None:
    """The invariants of the module docstring, for one ingested arrival day."""
    expected = expected_files(inbox / "events" / day.isoformat())
    files = {
        r[0]: r[1:]
        for r in con.execute(
            """SELECT source_file, received, accepted, duplicates, rejected, readable, problem
               FROM landing.files WHERE arrival_date = ?""",
            [day],
        ).fetchall()
    }
    assert set(files) == set(expected)
    assert {f.source_file for f in result.files} == set(expected)
    assert sum(e.received for e in expected.values()) == result.received
    for name, exp in expected.items():
        received, accepted, duplicates, rejected, readable, problem = files[name]
        assert received == accepted + duplicates + rejected, name
        assert (received, readable) == (exp.received, exp.readable), name
        events = con.execute(
            "SELECT line_number, message_id FROM landing.events WHERE arrival_date = ? AND source_file = ?",
            [day, name],
        ).fetchall()
        rejects = con.execute(
            "SELECT line_number, reason, raw_line FROM landing.rejected WHERE arrival_date = ? AND source_file = ?",
            [day, name],
        ).fetchall()
        assert (len(events), len(rejects)) == (accepted, rejected), name
        if not readable:
            assert [(n, reason) for n, reason, _ in rejects] == [(0, "unreadable_file")], name
            assert problem in {"symlink_not_followed", "corrupt_gzip", "not_utf8", "unreadable"}, name
            continue
        event_lines = {n for n, _ in events}
        rejected_lines = {n for n, _, _ in rejects}
        assert len(event_lines) == accepted and len(rejected_lines) == rejected, name
        assert not event_lines & rejected_lines
        assert event_lines | rejected_lines <= set(exp.lines), name
        for n, message_id in events:  # each accepted row is its own line
            assert message_id_of(exp.lines[n]) == message_id, (name, n)
        for n, _, raw in rejects:  # each rejected row keeps its line, whatever it holds
            assert raw == exp.lines[n].decode(), (name, n)
        accepted_ids = {m for (m,) in con.execute("SELECT message_id FROM landing.events").fetchall()}
        for n in set(exp.lines) - event_lines - rejected_lines:  # the rest are duplicates
            assert message_id_of(exp.lines[n]) in accepted_ids, (name, n)
    everything = (
        con.execute(
            "SELECT count(*) FROM landing.events WHERE message_id = ? OR properties::VARCHAR LIKE ?",
            [OUTSIDE_ID, f"%{OUTSIDE_ID}%"],
        ).fetchall()[0][0]
        + con.execute("SELECT count(*) FROM landing.rejected WHERE contains(raw_line, ?)", [OUTSIDE_ID]).fetchall()[0][
            0
        ]
    )
    assert everything == 0, "a line from outside the inbox was read"


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)
message_ids = st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(["m-1", "m-2", "m-3"]))
field_paths = st.sampled_from(
    [
        ("messageId",),
        ("type",),
        ("event",),
        ("userId",),
        ("timestamp",),
        ("properties",),
        ("context",),
        ("context", "channel"),
        ("context", "consent"),
        ("properties", "email"),
        ("properties", "previous_email"),
        ("properties", "postal_code"),
        ("properties", "notice_version"),
        ("properties", "campaign_id"),
        ("properties", "medium"),
    ]
)
DELETE = object()


@st.composite
def events(draw) -> dict:
    name = draw(st.sampled_from(EVENTS))
    props = {p: draw(st.sampled_from(["x", "110 00", "CZ", "v1"])) for p in REQUIRED_PROPERTIES[name]}
    if "email" in props:
        props["email"] = draw(st.sampled_from(["a@example.cz", " B@Example.CZ ", "c@d.e"]))
    doc = {
        "messageId": draw(message_ids),
        "type": "track",
        "event": name,
        "userId": draw(st.sampled_from(["acc_1", "acc_2", "acc_ž"])),
        "timestamp": OLD_TS,
        "properties": props,
        "context": {"channel": draw(st.sampled_from(CHANNELS))},
    }
    for _ in range(draw(st.integers(0, 2))):  # wrong types (or nothing) in any field
        path = draw(field_paths)
        value = draw(st.one_of(st.just(DELETE), json_values))
        target = doc
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        if value is DELETE:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
    return doc


def _dump(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def lines(draw) -> bytes:
    kind = draw(
        st.sampled_from(
            ["event", "event", "event", "mutated", "bytes", "text", "truncated", "nested", "nul", "blank", "lenient"]
        )
    )
    if kind == "event":
        return _dump(draw(events()))
    if kind == "mutated":  # a valid event with one byte changed
        data = bytearray(_dump(draw(events())))
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(1, 255).filter(lambda b: b != 10))
        return bytes(data)
    if kind == "bytes":
        return draw(st.binary(max_size=60)).replace(b"\n", b"")
    if kind == "text":
        return draw(st.text(max_size=60)).encode("utf-8", "surrogatepass").replace(b"\n", b"")
    if kind == "truncated":
        data = _dump(draw(events()))
        return data[: draw(st.integers(0, len(data)))]
    if kind == "nested":
        depth = draw(st.integers(1, 5000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        inner = b"1" if opener != b"[" else b""
        return opener * depth + inner + closer * draw(st.integers(0, depth))
    if kind == "nul":
        data = _dump(draw(events()))
        i = draw(st.integers(0, len(data)))
        return data[:i] + draw(st.sampled_from([b"\x00", b"\\u0000"])) + data[i:]
    if kind == "blank":
        return draw(st.sampled_from([b"", b" ", b"\t \t", b"\r", b"\x0b\x0c", b"\xc2\xa0"]))
    return draw(st.sampled_from([b'{"messageId": "m-1",}', b'{"messageId": NaN}', b"[1,]", b"Infinity"]))


@st.composite
def file_contents(draw) -> bytes:
    body = b""
    for line in draw(st.lists(lines(), max_size=12)):
        body += line + draw(st.sampled_from([b"\n", b"\r\n", b"\r\r\n"]))
    if body and draw(st.booleans()):
        body = body.rstrip(b"\n")  # no final line ending
    if draw(st.integers(0, 4)) == 0:
        body = BOM + body
    return body


name_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="/\x00"), min_size=1, max_size=24
)


@st.composite
def file_names(draw) -> bytes:
    stem = draw(st.one_of(name_text, st.sampled_from(["part 0001", "část ž 😀", "a\nb", "<b>'\"", "=1+1"])))
    raw = stem.encode()
    if draw(st.integers(0, 5)) == 0:
        raw += b"\xff\xfe"  # not UTF-8
    suffix = draw(st.sampled_from([".jsonl", ".jsonl", ".jsonl.gz", ".json", ".JSONL", ".jsonl.tmp"]))
    return raw[:200] + suffix.encode()


@dataclass
class FileSpec:
    name: bytes
    content: bytes
    gzip_mode: str  # how a .gz file is written: ok | truncated | plain | empty


@st.composite
def day_folders(draw) -> tuple[list[FileSpec], list[str]]:
    specs = []
    for name in draw(st.lists(file_names(), max_size=5, unique=True)):
        mode = draw(st.sampled_from(["ok", "ok", "truncated", "plain", "empty"]))
        specs.append(FileSpec(name, draw(file_contents()), mode))
    extras = draw(st.lists(st.sampled_from(["link_file", "link_dir", "dangling", "subdir"]), max_size=3, unique=True))
    return specs, extras


# ---------------------------------------------------------------------------------------------
# Writing a folder
# ---------------------------------------------------------------------------------------------


class Sandbox:
    """One warehouse and inbox for many examples: each example is a new arrival day."""

    def __init__(self, root: Path):
        self.root = root
        self.inbox = root / "inbox"
        self.outside = make_outside(root)
        self.days = (date(2026, 11, 3) + timedelta(days=i) for i in itertools.count())

    def write(self, specs: list[FileSpec], extras: list[str]) -> date:
        day = next(self.days)
        folder = self.inbox / "events" / day.isoformat()
        folder.mkdir(parents=True)
        for spec in specs:
            data = spec.content
            if spec.name.endswith(b".gz"):
                data = {
                    "ok": gzip.compress(data),
                    "truncated": gzip.compress(data)[: max(0, len(gzip.compress(data)) - 7)],
                    "plain": data,
                    "empty": b"",
                }[spec.gzip_mode]
            with open(os.fsencode(folder) + b"/" + spec.name, "wb") as fh:
                fh.write(data)
        links = {
            "link_file": ("linked.jsonl", self.outside / "events.jsonl"),
            "link_dir": ("linked-folder.jsonl", self.outside / "folder"),
            "dangling": ("dangling.jsonl", self.outside / "nothing-here"),
        }
        for extra in extras:
            if extra == "subdir":  # a folder is not an event file, even when named like one
                (folder / "nested.jsonl").mkdir()
                (folder / "nested.jsonl" / "part-0000.jsonl").write_bytes(b"{}\n")
            else:
                name, target = links[extra]
                (folder / name).symlink_to(target)
        return day


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    box = Sandbox(tmp_path_factory.mktemp("fuzz"))
    with connect(box.root / "warehouse.duckdb", TEST_KEY) as con:
        box.con = con
        yield box


@settings(
    max_examples=int(os.environ.get("COMPLIANCE_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    database=None,
)
@given(folder=day_folders())
def test_any_folder_is_ingested_and_every_line_accounted_for(sandbox, folder):
    specs, extras = folder
    day = sandbox.write(specs, extras)
    result = ingest_day(sandbox.con, sandbox.inbox, day)
    assert result.status == "ingested"
    assert_day_holds(sandbox.con, sandbox.inbox, day, result)
    # a rerun over the same files changes nothing (an empty folder reads as "retained_history")
    before = [sandbox.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in LANDING]
    assert ingest_day(sandbox.con, sandbox.inbox, day).status in {"unchanged", "retained_history"}
    assert [sandbox.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in LANDING] == before


# ---------------------------------------------------------------------------------------------
# The corpus: the nastiest cases found, as regression fixtures
# ---------------------------------------------------------------------------------------------

CORPUS_DAY = date(2026, 11, 3)
INDEX = json.loads((CORPUS / "index.json").read_text())


def _generated(spec: dict) -> bytes:
    if spec["generate"] == "long_lines":
        event = {
            "messageId": "long-valid",
            "type": "track",
            "event": "Signed In",
            "userId": "acc_1",
            "timestamp": OLD_TS,
            "properties": {"pad": "x" * spec["size"]},
            "context": {"channel": "web"},
        }
        return json.dumps(event).encode() + b"\n" + b"y" * spec["size"] + b"\n"
    assert spec["generate"] == "deep_nesting"
    arrays = b"[" * 200_000 + b"]" * 200_000
    objects = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    return arrays + b"\n" + objects + b"\n" + b"[" * 1_000_000 + b"\n"


def make_outside(root: Path) -> Path:
    """Files outside the inbox that symlinks point at; their only messageId is OUTSIDE_ID."""
    outside = root / "outside"
    (outside / "folder").mkdir(parents=True)
    line = json.dumps(
        {
            "messageId": OUTSIDE_ID,
            "type": "track",
            "event": "Signed In",
            "userId": "acc_outside",
            "timestamp": OLD_TS,
            "context": {"channel": "web"},
        }
    )
    (outside / "events.jsonl").write_text(line + "\n")
    (outside / "folder" / "part-0000.jsonl").write_text(line + "\n")
    return outside


def install(case: dict, inbox: Path, outside: Path) -> Path:
    """Write one corpus case into `inbox` as the arrival folder of CORPUS_DAY."""
    folder = inbox / "events" / CORPUS_DAY.isoformat()
    if case.get("day_folder") == "symlink-to-outside":
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.symlink_to(outside / "folder", target_is_directory=True)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    targets = {"outside-file": outside / "events.jsonl", "outside-folder": outside / "folder"}
    for spec in case["files"]:
        raw = bytes.fromhex(spec["name_hex"]) if "name_hex" in spec else spec["name"].encode()
        path = os.fsencode(folder) + b"/" + raw
        if "symlink" in spec:
            os.symlink(targets.get(spec["symlink"], outside / "nothing-here"), path)
        elif spec.get("folder"):
            os.mkdir(path)
            with open(path + b"/part-0000.jsonl", "wb") as fh:
                fh.write((CORPUS / "valid-one-event.jsonl").read_bytes())
        else:
            data = _generated(spec) if "generate" in spec else (CORPUS / spec["source"]).read_bytes()
            with open(path, "wb") as fh:
                fh.write(data)
    return folder


def assert_case_outcome(con, case: dict) -> None:
    files = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT source_file, received, accepted, duplicates, rejected, readable, problem FROM landing.files"
        ).fetchall()
    }
    wanted = {}
    for spec in case["files"]:
        name = spec.get("stored_name", spec.get("name"))
        if spec["expect"] is None:
            assert name not in files, name
        else:
            wanted[name] = spec["expect"]
    assert set(files) == set(wanted)
    for name, expect in wanted.items():
        received, accepted, duplicates, rejected, readable, problem = files[name]
        assert [received, accepted, duplicates, rejected] == expect["counts"], name
        assert (readable, problem) == (expect["readable"], expect["problem"]), name
        rows = con.execute("SELECT line_number, reason FROM landing.rejected WHERE source_file = ?", [name]).fetchall()
        assert {str(n): r for n, r in rows} == expect["rejected"], name
        rows = con.execute(
            "SELECT line_number, message_id FROM landing.events WHERE source_file = ?", [name]
        ).fetchall()
        assert {str(n): m for n, m in rows} == expect["accepted"], name


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=[pytest.mark.slow] if c.get("slow") else [], id=c["id"]) for c in INDEX["cases"]],
)
def test_corpus_case(case, tmp_path):
    inbox = tmp_path / "inbox"
    install(case, inbox, make_outside(tmp_path))
    with connect(tmp_path / "warehouse.duckdb", TEST_KEY) as con:
        result = ingest_day(con, inbox, CORPUS_DAY)
        assert_case_outcome(con, case)
        assert_day_holds(con, inbox, CORPUS_DAY, result)


def test_the_corpus_files_are_all_used():
    used = {spec.get("source") for case in INDEX["cases"] for spec in case["files"]}
    assert {p.name for p in CORPUS.iterdir()} - {"index.json"} == used - {None}


def test_the_whole_run_survives_the_corpus(env):
    """Every asset and check of the nightly job over every corpus file at once, plus folders under
    events/ whose names are not UTF-8 and hostile values in an export: the run succeeds."""
    outside = make_outside(env.root)
    for case in INDEX["cases"]:
        if not case.get("slow") and "day_folder" not in case:
            install(case, env.inbox, outside)
    junk = os.fsencode(env.inbox / "events") + b"/junk-\xff/sub-\xfe"
    os.makedirs(junk)
    with open(junk + b"/f-\xfd.jsonl", "wb") as fh:  # read by the erasure verifier's inbox scan
        fh.write(b'{"userId": "acc_1", "email": "a@example.cz"}\n\xff\n')
    env.write_export(
        "crm", CORPUS_DAY, [{"account_id": "acc\x001", "email": "=1+1"}, {"account_id": "", "email": "\x00"}]
    )
    result = env.run(CORPUS_DAY)
    failures = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert not failures
    assert result.success
    with env.connect() as con:
        stats = con.execute(
            "SELECT sum(received), sum(accepted), sum(duplicates), sum(rejected) FROM landing.files"
        ).fetchall()[0]
        assert stats[0] == sum(stats[1:]) and stats[0] > 100
        assert con.execute("SELECT count(*) FROM ops.runs WHERE run_date = ?", [CORPUS_DAY]).fetchall() == [(1,)]
        # the erasure verifier read the inbox (the junk folder too), but nothing behind a symlink
        keys = {k for (k,) in con.execute("SELECT lower(hex(key)) FROM ops.inbox_keys").fetchall()}
        assert env.subject_key("acc_1") in keys
        assert env.subject_key("acc_outside") not in keys
    summary = json.loads((env.reports / CORPUS_DAY.isoformat() / "summary.json").read_text())
    assert summary["quality"]["received"] == stats[0]
