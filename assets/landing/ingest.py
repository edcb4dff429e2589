"""Ingest one arrival day of event files into landing.events / landing.rejected (CONTRACT 2.1).

Files are read as bytes and cut into lines with numpy (exact physical line numbers, UTF-8
checked by Arrow); every rule of the contract is then checked set-based in DuckDB SQL. The only
Python per-line work is a strict re-parse of the rare lines DuckDB's lenient JSON parser accepts
but JSON forbids (trailing commas, NaN, Infinity).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from assets.landing.contract import (
    CHANNELS,
    EMAIL_PROPERTIES,
    EVENTS,
    MEDIUMS,
    MESSAGE_ID_MAX,
    REQUIRED_PROPERTIES,
)
from pipelines.clock import end_of_day
from pipelines.safe_text import file_label

log = logging.getLogger(__name__)

EVENT_SUFFIXES = (".jsonl", ".jsonl.gz")
#: The rejection reason of a file that cannot be read at all (one row, line 0); the cause
#: (corrupt_gzip, not_utf8, symlink_not_followed, unreadable) is kept in landing.files.problem.
UNREADABLE_FILE = "unreadable_file"
_BOM = b"\xef\xbb\xbf"
_WS = "chr(32) || chr(9) || chr(10) || chr(13) || chr(12) || chr(11)"


@dataclass
class FileStats:
    source_file: str
    bytes: int | None
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    readable: bool = True


@dataclass
class DayIngest:
    arrival_date: date
    status: str  # 'ingested' | 'unchanged' | 'no_folder' | 'retained_history'
    files: list[FileStats] = field(default_factory=list)

    @property
    def received(self) -> int:
        return sum(f.received for f in self.files)

    @property
    def accepted(self) -> int:
        return sum(f.accepted for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)


# ---------------------------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    seq: int
    name: str
    path: Path
    size: int | None
    mtime_ns: int | None
    problem: str | None = None  # why the file cannot be read at all


def day_folder(inbox: Path, day: date) -> Path:
    return inbox / "events" / day.isoformat()


def list_day_files(inbox: Path, day: date) -> list[_Candidate]:
    """The day's event files in file-name order. Symlinks are never followed."""
    folder = day_folder(inbox, day)
    if folder.is_symlink() or not folder.is_dir():
        return []
    candidates: list[_Candidate] = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(EVENT_SUFFIXES):
            continue
        path = folder / name
        # A name that is not UTF-8 (os.listdir's surrogate escapes) is stored with its bytes as \xNN.
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if path.is_symlink():
            candidates.append(_Candidate(len(candidates), name, path, None, None, "symlink_not_followed"))
            continue
        try:
            st = path.stat()
        except OSError:
            candidates.append(_Candidate(len(candidates), name, path, None, None, "unreadable"))
            continue
        if not path.is_file():
            continue
        candidates.append(_Candidate(len(candidates), name, path, st.st_size, st.st_mtime_ns))
    return candidates


def manifest_of(candidates: list[_Candidate]) -> str:
    return json.dumps([[c.name, c.size, c.mtime_ns, c.problem] for c in candidates])


def _read_bytes(c: _Candidate) -> bytes:
    with open(c.path, "rb") as fh:
        raw = fh.read()
    if c.name.endswith(".gz"):
        if not raw:  # an empty file is not a gzip stream (`gzip -t` rejects it too)
            raise EOFError("empty gzip file")
        raw = gzip.decompress(raw)
    return raw


def _split_lines(seq: int, name: str, data: bytes) -> pa.Table:
    """Cut bytes into lines (LF; a trailing CR is removed later) with 1-based line numbers."""
    start = len(_BOM) if data.startswith(_BOM) else 0  # a UTF-8 BOM is tolerated and dropped
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    ends = newlines + 1
    if len(data) and data[-1:] != b"\n":
        ends = np.append(ends, len(data))
    offsets = np.empty(len(ends) + 1, dtype=np.int64)
    offsets[0] = start
    offsets[1:] = ends
    if len(ends):
        offsets[1] = max(offsets[1], start)
    lines = pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))
    lines.validate(full=True)  # raises on invalid UTF-8
    n = len(ends)
    return pa.table(
        {
            "file_seq": pa.array(np.full(n, seq, dtype=np.int32)),
            "source_file": pa.repeat(pa.scalar(name, type=pa.string()), n),
            "line_number": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "line": lines,
        }
    )


def _read_file(c: _Candidate) -> pa.Table | None:
    """The file's lines, or None with `c.problem` set when it cannot be read."""
    try:
        return _split_lines(c.seq, c.name, _read_bytes(c))
    except (OSError, EOFError, zlib.error):
        c.problem = "corrupt_gzip" if c.name.endswith(".gz") else "unreadable"
    except (pa.ArrowInvalid, UnicodeDecodeError):
        c.problem = "not_utf8"
    return None


def read_day(candidates: list[_Candidate]) -> tuple[pa.Table, list[_Candidate]]:
    """All readable lines of the day as one Arrow table, plus the files that could not be read.

    Files are read, decompressed, cut and UTF-8 checked in threads (zlib, numpy and Arrow release
    the GIL), one per core; lines keep the files' order."""
    readable = [c for c in candidates if not c.problem]
    workers = min(len(readable), os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="read-day") as pool:
            read = list(pool.map(_read_file, readable))
    else:
        read = [_read_file(c) for c in readable]
    tables = [t for t in read if t is not None]
    unreadable = [c for c in candidates if c.problem]
    schema = pa.schema(
        [
            ("file_seq", pa.int32()),
            ("source_file", pa.string()),
            ("line_number", pa.int64()),
            ("line", pa.large_string()),
        ]
    )
    tables = [t.cast(schema) for t in tables]
    return (pa.concat_tables(tables) if tables else schema.empty_table()), unreadable


# ---------------------------------------------------------------------------------------------
# Validation SQL (built from the contract tables in assets.landing.contract)
# ---------------------------------------------------------------------------------------------

_EVENT_STRUCT = (
    '{"messageId":"JSON","type":"JSON","event":"JSON","userId":"JSON",'
    '"timestamp":"JSON","properties":"JSON","context":"JSON"}'
)
# An ISO-8601 UTC offset is less than a day: hours 00-23, minutes 00-59 ("+25:00" is no offset).
_TS_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]([01]\d|2[0-3])(:?[0-5]\d)?)$"
_TS_WITHOUT_OFFSET = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_SCALAR = "('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE')"


def _blank(expr: str) -> str:
    """SQL: `expr` is empty or whitespace only.

    `expr < '!'` (its first byte is at most a space, or it is empty) is a byte-wise test that
    rules out almost every value before the trim, which costs ~0.4 s per million values.
    """
    return f"({expr} < '!' AND trim({expr}, {_WS}) = '')"


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


#: The properties the contract checks, parsed once per line into a struct of JSON fragments.
_CHECKED_PROPERTIES = tuple(
    dict.fromkeys(
        [
            *(p for ps in REQUIRED_PROPERTIES.values() for p in ps),
            *(p for ps in EMAIL_PROPERTIES.values() for p in ps),
            "medium",
        ]
    )
)
_PROPS_STRUCT = "{" + ",".join(f'"{p}":"JSON"' for p in _CHECKED_PROPERTIES) + "}"
_CTX_STRUCT = '{"channel":"JSON","agentId":"JSON","consent":"JSON"}'
_EVENTS_WITH_CHECKED_PROPERTIES = tuple(
    e for e in EVENTS if REQUIRED_PROPERTIES[e] or e in EMAIL_PROPERTIES or e == "Marketing Message Sent"
)


def _property_checks() -> str:
    """CASE arms for the per-event property rules, over the parsed struct `p`."""
    arms: list[str] = []
    for event, props in REQUIRED_PROPERTIES.items():
        for prop in props:
            e = event.replace("'", "''")
            arms.append(
                f"WHEN event = '{e}' AND coalesce(json_type(p.{prop}), 'NULL') = 'NULL' THEN 'missing_property:{prop}'"
            )
            arms.append(f"WHEN event = '{e}' AND json_type(p.{prop}) NOT IN {_SCALAR} THEN 'invalid_property:{prop}'")
            value = f"(p.{prop}->>'$')"
            arms.append(f"WHEN event = '{e}' AND {_blank(value)} THEN 'missing_property:{prop}'")
    for event, props in EMAIL_PROPERTIES.items():
        for prop in props:
            e = event.replace("'", "''")
            arms.append(
                f"WHEN event = '{e}' AND coalesce(json_type(p.{prop}), 'NULL') <> 'NULL' "
                f"AND (json_type(p.{prop}) <> 'VARCHAR' "
                f"OR NOT regexp_matches(trim(p.{prop}->>'$', {_WS}), '{_EMAIL}')) "
                f"THEN 'invalid_email:properties.{prop}'"
            )
    return "\n            ".join(arms)


def validation_sql(lenient: bool) -> str:
    """SQL from the registered Arrow table _day_lines into TEMP table _checked: each line's first
    broken rule (reason, NULL = valid) and the fields the inserts need.

    One pass, nothing in between is materialised. With `lenient`, the lines of TEMP table
    _lenient (file_seq, line_number) are not JSON. The line itself is kept for rejected lines only,
    with its line break (trimmed where it is stored)."""
    not_lenient = "(file_seq, line_number) NOT IN (SELECT (file_seq, line_number) FROM _lenient)" if lenient else "true"
    return f"""
    CREATE OR REPLACE TEMP TABLE _checked AS
    WITH lines AS (
        SELECT file_seq, source_file, line_number, line,
               json_valid(line) AND {not_lenient} AS is_json
        FROM _day_lines
    ), objects AS (
        SELECT *,
               -- valid JSON whose first non-blank character is an opening brace is an object
               is_json AND starts_with(ltrim(line, {_WS}), '{{') AS is_object
        FROM lines
        WHERE is_json OR NOT {_blank("line")}   -- blank lines are ignored and not counted
    ), _docs AS (
        SELECT *,
               -- only objects are parsed into the event struct: try() falls back to row-by-row
               -- evaluation for a whole vector when one of its rows fails, so no broken line
               -- may reach it
               CASE WHEN is_object THEN try(from_json(line, '{_EVENT_STRUCT}')) END AS j
        FROM objects
    ), fields AS (
        SELECT
            file_seq, source_file, line_number, line, is_json, is_object,
            json_type(j.messageId) AS t_mid, j.messageId->>'$' AS message_id,
            json_type(j.type) AS t_type, j.type->>'$' AS type_value,
            json_type(j.event) AS t_event, j.event->>'$' AS event,
            json_type(j.userId) AS t_user, j.userId->>'$' AS user_id,
            json_type(j.timestamp) AS t_ts, j.timestamp->>'$' AS ts_text,
            json_type(j.properties) AS t_props,
            CASE WHEN json_type(j.properties) = 'OBJECT' THEN j.properties END AS props,
            json_type(j.context) AS t_ctx,
            CASE WHEN json_type(j.context) = 'OBJECT' THEN j.context END AS ctx
        FROM _docs
    ), parsed AS (
        SELECT *,
            -- context and the checked properties are parsed once each, the properties only for
            -- the events whose properties the contract checks
            from_json(ctx, '{_CTX_STRUCT}') AS c,
            from_json(CASE WHEN event IN {_sql_list(_EVENTS_WITH_CHECKED_PROPERTIES)} THEN props END,
                      '{_PROPS_STRUCT}') AS p
        FROM fields
    ), typed AS (
        SELECT *,
            json_type(c.channel) AS t_channel,
            c.channel->>'$' AS channel,
            CASE WHEN json_type(c.agentId) = 'VARCHAR' THEN c.agentId->>'$' END AS agent_id,
            CASE WHEN t_ts = 'VARCHAR' AND regexp_matches(ts_text, '{_TS_WITH_OFFSET}')
                 THEN TRY_CAST(ts_text AS TIMESTAMPTZ) END AS occurred_at
        FROM parsed
    ), checked AS (
    SELECT *,
        CASE
            WHEN NOT is_json THEN 'invalid_json'
            WHEN NOT is_object THEN 'not_an_object'
            WHEN coalesce(t_mid, 'NULL') = 'NULL' THEN 'missing_field:messageId'
            WHEN t_mid <> 'VARCHAR' OR {_blank("message_id")}
                 OR length(message_id) > {MESSAGE_ID_MAX} THEN 'invalid_message_id'
            WHEN coalesce(t_type, 'NULL') = 'NULL' THEN 'missing_field:type'
            WHEN t_type <> 'VARCHAR' OR type_value <> 'track' THEN 'invalid_type'
            WHEN coalesce(t_event, 'NULL') = 'NULL' THEN 'missing_field:event'
            WHEN t_event <> 'VARCHAR' OR event NOT IN {_sql_list(EVENTS)} THEN 'unknown_event'
            WHEN coalesce(t_user, 'NULL') = 'NULL' THEN 'missing_field:userId'
            WHEN t_user <> 'VARCHAR' OR {_blank("user_id")} THEN 'invalid_user_id'
            WHEN coalesce(t_ts, 'NULL') = 'NULL' THEN 'missing_field:timestamp'
            WHEN t_ts = 'VARCHAR' AND regexp_matches(ts_text, '{_TS_WITHOUT_OFFSET}')
                 THEN 'timestamp_without_offset'
            WHEN occurred_at IS NULL THEN 'invalid_timestamp'
            WHEN occurred_at > $latest_allowed THEN 'timestamp_too_late'
            WHEN coalesce(t_channel, 'NULL') = 'NULL' THEN 'missing_field:context.channel'
            WHEN t_channel <> 'VARCHAR' OR channel NOT IN {_sql_list(CHANNELS)} THEN 'unknown_channel'
            WHEN coalesce(t_props, 'NULL') NOT IN ('NULL', 'OBJECT') THEN 'invalid_properties'
            {_property_checks()}
            WHEN event = 'Marketing Message Sent'
                 AND coalesce(json_type(p.medium), 'NULL') <> 'NULL'
                 AND (json_type(p.medium) <> 'VARCHAR'
                      OR p.medium->>'$' NOT IN {_sql_list(MEDIUMS)}) THEN 'invalid_property:medium'
            WHEN event = 'Segment Consent Preference Updated'
                 AND (coalesce(json_type(c.consent), 'NULL') NOT IN ('NULL', 'OBJECT')
                      OR coalesce(json_type(c.consent, '$.categoryPreferences'), 'NULL')
                         NOT IN ('NULL', 'OBJECT'))
                 THEN 'invalid_property:context.consent.categoryPreferences'
        END AS reason
    FROM typed
    )
    SELECT file_seq, source_file, line_number, CASE WHEN reason IS NOT NULL THEN line END AS line,
           t_mid, message_id, event, t_user, user_id, occurred_at, channel, agent_id, props, ctx, reason
    FROM checked
    """


def _strict_json_ok(line: str) -> bool:
    def _reject_constant(name: str) -> float:
        raise ValueError(name)

    try:
        json.loads(line, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# The day
# ---------------------------------------------------------------------------------------------


def _previous_manifest(con: duckdb.DuckDBPyConnection, day: date) -> str | None:
    rows = con.execute("SELECT manifest FROM ops.ingested_days WHERE arrival_date = ?", [day]).fetchall()
    return rows[0][0] if rows else None


def recorded_stats(con: duckdb.DuckDBPyConnection, day: date, status: str) -> DayIngest:
    rows = con.execute(
        """SELECT source_file, bytes, received, accepted, duplicates, rejected, readable
           FROM landing.files WHERE arrival_date = ? ORDER BY source_file""",
        [day],
    ).fetchall()
    return DayIngest(day, status, [FileStats(*r) for r in rows])


def ingest_day(con: duckdb.DuckDBPyConnection, inbox: Path, day: date) -> DayIngest:
    """Ingest arrival day `day`. Re-ingesting unchanged files changes nothing."""
    candidates = list_day_files(inbox, day)
    manifest = manifest_of(candidates)
    previous = _previous_manifest(con, day)
    if previous is not None and (previous == manifest or not candidates):
        # Same files as last time, or the folder is gone (retention): keep what we have.
        return recorded_stats(con, day, "unchanged" if candidates else "retained_history")
    if not candidates and not day_folder(inbox, day).is_dir():
        return DayIngest(day, "no_folder")

    lines, unreadable = read_day(candidates)
    con.register("_day_lines", lines)
    try:
        _stage(con, day)
    finally:
        con.unregister("_day_lines")

    con.execute("BEGIN TRANSACTION")
    try:
        if previous is not None:
            # The folder changed since it was ingested (a late file): ingest its files afresh. Rows
            # of files that are gone (retention deleted the folder before a late file re-created it)
            # are history and stay; their messageIds remain accepted.
            names = [c.name for c in candidates]
            for table in ("landing.events", "landing.rejected", "landing.files"):
                con.execute(
                    f"DELETE FROM {table} WHERE arrival_date = ? AND list_contains(?::VARCHAR[], source_file)",
                    [day, names],
                )
            con.execute("DELETE FROM ops.ingested_days WHERE arrival_date = ?", [day])
        _classify_duplicates(con)
        _write(con, day, unreadable, candidates)
        con.execute("INSERT INTO ops.ingested_days VALUES (?, ?, ?, now())", [day, manifest, len(candidates)])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        for t in ("_checked", "_classified", "_keys"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    return recorded_stats(con, day, "ingested")


def _stage(con: duckdb.DuckDBPyConnection, day: date) -> None:
    """Parse and validate the day's lines into TEMP table _checked (never the database file)."""
    # DuckDB's JSON reader is lenient (trailing commas, NaN, Infinity); JSON is not. (Two literal
    # searches and a regex without alternation: half the time of one regex `,\s*[\]}]|NaN|Infinity`.)
    suspects = con.execute(
        r"""SELECT file_seq, line_number, line FROM _day_lines
            WHERE (contains(line, 'NaN') OR contains(line, 'Infinity') OR regexp_matches(line, ',\s*[\]}]'))
              AND json_valid(line)"""
    ).fetchall()
    bad = [(seq, n) for seq, n, text in suspects if not _strict_json_ok(text)]
    if bad:
        con.execute("CREATE OR REPLACE TEMP TABLE _lenient (file_seq INTEGER, line_number BIGINT)")
        con.executemany("INSERT INTO _lenient VALUES (?, ?)", bad)
    latest_allowed = end_of_day(day) + timedelta(hours=1)
    try:
        con.execute(validation_sql(bool(bad)), {"latest_allowed": latest_allowed})
    finally:
        con.execute("DROP TABLE IF EXISTS _lenient")


def _classify_duplicates(con: duckdb.DuckDBPyConnection) -> None:
    """First accepted copy of a messageId wins; later copies, here or in history, are duplicates.

    TEMP _classified(file_seq, line_number, is_duplicate) has one row per valid line: only the
    narrow key columns go through the window and the join with history, never the parsed line.
    """
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _classified AS
        WITH valid AS (
            SELECT file_seq, line_number, message_id,
                   row_number() OVER (PARTITION BY message_id ORDER BY file_seq, line_number) AS copy_no
            FROM _checked WHERE reason IS NULL
        ), seen AS (
            SELECT DISTINCT e.message_id
            FROM landing.events e SEMI JOIN valid v ON e.message_id = v.message_id
        )
        SELECT v.file_seq, v.line_number, (v.copy_no > 1 OR s.message_id IS NOT NULL) AS is_duplicate
        FROM valid v LEFT JOIN seen s USING (message_id)
        """
    )


def _write(con, day: date, unreadable: list[_Candidate], candidates: list[_Candidate]) -> None:
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _keys AS
        SELECT user_id, hmac_subject(user_id) AS subject_key
        FROM (SELECT DISTINCT user_id FROM _checked WHERE t_user = 'VARCHAR' AND user_id IS NOT NULL)
        """
    )
    con.execute(
        """
        INSERT INTO landing.events
        SELECT c.message_id, c.event, c.user_id, k.subject_key, c.occurred_at, c.channel,
               c.agent_id,
               c.props,
               CASE c.event
                   WHEN 'Marketing Consent Granted' THEN true
                   WHEN 'Marketing Consent Withdrawn' THEN false
                   WHEN 'Segment Consent Preference Updated' THEN coalesce(list_bool_or(list_transform(
                       map_entries(from_json(
                           coalesce(c.ctx->'$.consent.categoryPreferences', '{}'),
                           '"MAP(VARCHAR, JSON)"')),
                       lambda e: lower(e.key) = 'marketing' AND e.value::VARCHAR = 'true')), false)
               END,
               CASE WHEN c.event IN ('Account Created', 'Email Changed')
                    THEN hmac_email(c.props->>'$.email') END,
               CASE WHEN c.event = 'Email Changed' AND json_type(c.props, '$.previous_email') = 'VARCHAR'
                    THEN hmac_email(c.props->>'$.previous_email') END,
               c.source_file, c.line_number, ?::DATE
        FROM _checked c JOIN _classified d USING (file_seq, line_number) JOIN _keys k USING (user_id)
        WHERE NOT d.is_duplicate
        ORDER BY c.file_seq, c.line_number
        """,
        [day],
    )
    con.execute(
        """
        INSERT INTO landing.rejected
            (source_file, line_number, reason, raw_line, arrival_date, account_id, subject_key, message_id)
        SELECT c.source_file, c.line_number, c.reason, rtrim(c.line, chr(10) || chr(13)), ?::DATE,
               CASE WHEN c.t_user = 'VARCHAR' THEN c.user_id END,
               k.subject_key,
               CASE WHEN c.t_mid = 'VARCHAR' THEN left(c.message_id, 200) END
        FROM _checked c LEFT JOIN _keys k ON c.t_user = 'VARCHAR' AND k.user_id = c.user_id
        WHERE c.reason IS NOT NULL
        ORDER BY c.file_seq, c.line_number
        """,
        [day],
    )
    for c in unreadable:
        con.execute(
            """INSERT INTO landing.rejected (source_file, line_number, reason, raw_line, arrival_date)
               VALUES (?, 0, ?, NULL, ?)""",
            [c.name, UNREADABLE_FILE, day],
        )
    counts = {
        seq: (received, accepted, duplicates, rejected)
        for seq, received, accepted, duplicates, rejected in con.execute(
            """
            SELECT file_seq,
                   count(*) AS received,
                   count(*) FILTER (WHERE reason IS NULL AND NOT is_duplicate) AS accepted,
                   count(*) FILTER (WHERE reason IS NULL AND is_duplicate) AS duplicates,
                   count(*) FILTER (WHERE reason IS NOT NULL) AS rejected
            FROM (SELECT c.file_seq, c.reason, coalesce(d.is_duplicate, false) AS is_duplicate
                  FROM _checked c
                  LEFT JOIN _classified d USING (file_seq, line_number))
            GROUP BY file_seq
            """
        ).fetchall()
    }
    bad = {c.seq for c in unreadable}
    rows = []
    for c in candidates:
        if c.seq in bad:
            log.warning("Event file %s/%s cannot be read: %s", day, file_label(c.name), c.problem)
            rows.append((day, c.name, c.size, 1, 0, 0, 1, False, c.problem))
        else:
            r, a, d, j = counts.get(c.seq, (0, 0, 0, 0))
            rows.append((day, c.name, c.size, r, a, d, j, True, None))
    if not rows:  # an arrival folder with no event files: nothing arrived that day
        return
    con.executemany(
        """INSERT INTO landing.files
               (arrival_date, source_file, bytes, received, accepted, duplicates, rejected, readable, problem,
                ingested_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())""",
        rows,
    )
