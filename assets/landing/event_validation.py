"""The contract's rules for event lines (CONTRACT 2.1) as one set-based DuckDB statement over the
day's lines, built from the contract tables in ``assets.landing.contract``.

The only Python per-line work is a strict re-parse of the rare lines DuckDB's lenient JSON parser
accepts but JSON forbids (trailing commas, NaN, Infinity).
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import duckdb

from assets.landing.contract import (
    CHANNELS,
    EMAIL_PROPERTIES,
    EVENTS,
    MEDIUMS,
    MESSAGE_ID_MAX,
    REQUIRED_PROPERTIES,
)
from pipelines.clock import end_of_day

_WS = "chr(32) || chr(9) || chr(10) || chr(13) || chr(12) || chr(11)"

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


def stage_day_lines(con: duckdb.DuckDBPyConnection, day: date) -> None:
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
