"""Ingest one arrival day of event files (CONTRACT 2.1), pseudonymised at the door.

The day is skipped when its files are those already ingested (the manifest); otherwise its lines
are read (``event_files``) and checked (``event_validation``), the first accepted copy of a
messageId is kept, subjects are keyed, and each file's counts go to landing.files.

Plain identifiers go to the identity vault (``pipelines/warehouse/vault.sql``), the rest to the
keyed history: an account id to ``vault.accounts`` and its key to the history; the properties of an
event that carries a personal one (``contract.PERSONAL_PROPERTIES``) to ``vault.event_properties``,
the others to ``keyed.events``; a rejected line's text to ``vault.quarantine``. One DuckDB
transaction writes one database file, so the vault's rows are written first, idempotently, and the
history's in one transaction after them: a kill in between leaves vault rows that the re-run finds
in place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from assets.landing.contract import PERSONAL_PROPERTIES
from assets.landing.event_files import Candidate, day_folder, list_day_files, manifest_of, read_day
from assets.landing.event_validation import stage_day_lines
from assets.landing.inbox_files import finish_rewrites
from pipelines.safe_text import file_label
from pipelines.warehouse import transaction

log = logging.getLogger(__name__)

#: The rejection reason of a file that cannot be read at all (one row, line 0); the cause
#: (corrupt_gzip, not_utf8, symlink_not_followed, unreadable) is kept in landing.files.problem.
UNREADABLE_FILE = "unreadable_file"


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
    finish_rewrites(con, inbox)  # a redaction cut short: its file and the manifest agree again
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
        stage_day_lines(con, day)
    finally:
        con.unregister("_day_lines")

    _classify_duplicates(con, day, [c.name for c in candidates] if previous is not None else [])
    _keys(con)
    _write_vault(con, day)
    try:
        with transaction(con):
            if previous is not None:
                # The folder changed since it was ingested (a late file): ingest its files afresh. Rows
                # of files that are gone (retention deleted the folder before a late file re-created it)
                # are history and stay; their messageIds remain accepted.
                names = [c.name for c in candidates]
                for table in ("keyed.events", "keyed.rejected", "landing.files"):
                    con.execute(
                        f"DELETE FROM {table} WHERE arrival_date = ? AND list_contains(?::VARCHAR[], source_file)",
                        [day, names],
                    )
                con.execute("DELETE FROM ops.ingested_days WHERE arrival_date = ?", [day])
            _write(con, day, unreadable, candidates)
            con.execute("INSERT INTO ops.ingested_days VALUES (?, ?, ?, now())", [day, manifest, len(candidates)])
    finally:
        for t in ("_checked", "_classified", "_keys"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    return recorded_stats(con, day, "ingested")


def _classify_duplicates(con: duckdb.DuckDBPyConnection, day: date, refreshed: list[str]) -> None:
    """First accepted copy of a messageId wins; later copies, here or in history, are duplicates.

    TEMP _classified(file_seq, line_number, is_duplicate) has one row per valid line: only the
    narrow key columns go through the window and the join with history, never the parsed line.
    History leaves out the rows of the `refreshed` files of `day`, which this ingestion replaces.
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
            FROM keyed.events e SEMI JOIN valid v ON e.message_id = v.message_id
            WHERE NOT (e.arrival_date = $day AND list_contains($refreshed::VARCHAR[], e.source_file))
        )
        SELECT v.file_seq, v.line_number, (v.copy_no > 1 OR s.message_id IS NOT NULL) AS is_duplicate
        FROM valid v LEFT JOIN seen s USING (message_id)
        """,
        {"day": day, "refreshed": refreshed},
    )


def _keys(con: duckdb.DuckDBPyConnection) -> None:
    """TEMP _keys(user_id, subject_key) of the day's userIds."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _keys AS
        SELECT user_id,
               -- a line redacted in place (assets/purge/inbox_redaction.py) names its erased subject by key
               CASE WHEN regexp_full_match(user_id, 'erased:[0-9a-f]{64}') THEN substr(user_id, 8)
                    ELSE hmac_subject(user_id) END AS subject_key
        FROM (SELECT DISTINCT user_id FROM _checked WHERE t_user = 'VARCHAR' AND user_id IS NOT NULL)
        """
    )


#: The properties of a line that carries a personal one (CONTRACT 5's identifiers) go to the vault.
_PERSONAL_PATHS = "[" + ", ".join(f"'$.{p}'" for p in PERSONAL_PROPERTIES) + "]"
_HAS_PERSONAL = f"coalesce(list_bool_or(json_exists(c.props, {_PERSONAL_PATHS})), false)"
_WITHOUT_PERSONAL = "c.props"
for _prop in PERSONAL_PROPERTIES:
    _WITHOUT_PERSONAL = f"json_remove({_WITHOUT_PERSONAL}, '$.{_prop}')"


def _write_vault(con: duckdb.DuckDBPyConnection, day: date) -> None:
    """The day's plain identifiers into the vault, each once: new subjects' account ids, the
    properties of accepted events that carry a personal one, rejected lines' text."""
    try:
        with transaction(con):
            con.execute(
                """
                INSERT INTO vault.accounts
                SELECT k.subject_key, k.user_id FROM _keys k
                WHERE NOT regexp_full_match(k.user_id, 'erased:[0-9a-f]{64}')
                  AND k.subject_key NOT IN (SELECT subject_key FROM vault.accounts)
                """
            )
            con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE _personal AS
                SELECT c.message_id, k.subject_key,
                       CASE WHEN c.event IN ('Account Created', 'Email Changed')
                            THEN hmac_email(c.props->>'$.email') END AS email_key,
                       CASE WHEN c.event = 'Email Changed' AND json_type(c.props, '$.previous_email') = 'VARCHAR'
                            THEN hmac_email(c.props->>'$.previous_email') END AS previous_email_key,
                       c.props AS properties
                FROM _checked c JOIN _classified d USING (file_seq, line_number) JOIN _keys k USING (user_id)
                WHERE NOT d.is_duplicate AND {_HAS_PERSONAL}
                """
            )
            con.execute("DELETE FROM vault.event_properties WHERE message_id IN (SELECT message_id FROM _personal)")
            con.execute("INSERT INTO vault.event_properties SELECT * FROM _personal")
            con.execute(
                """
                DELETE FROM vault.quarantine
                WHERE arrival_date = $day AND source_file IN (SELECT DISTINCT source_file FROM _checked)
                """,
                {"day": day},
            )
            con.execute(
                """
                INSERT INTO vault.quarantine (arrival_date, source_file, line_number, subject_key, raw_line)
                SELECT $day, c.source_file, c.line_number, k.subject_key, rtrim(c.line, chr(10) || chr(13))
                FROM _checked c LEFT JOIN _keys k ON c.t_user = 'VARCHAR' AND k.user_id = c.user_id
                WHERE c.reason IS NOT NULL
                ORDER BY c.file_seq, c.line_number
                """,
                {"day": day},
            )
    finally:
        con.execute("DROP TABLE IF EXISTS _personal")


def _write(con, day: date, unreadable: list[Candidate], candidates: list[Candidate]) -> None:
    con.execute(
        f"""
        INSERT INTO keyed.events
        SELECT c.message_id, c.event, k.subject_key, c.occurred_at, c.channel,
               c.agent_id,
               CASE WHEN {_HAS_PERSONAL} THEN {_WITHOUT_PERSONAL} ELSE c.props END,
               CASE c.event
                   WHEN 'Marketing Consent Granted' THEN true
                   WHEN 'Marketing Consent Withdrawn' THEN false
                   WHEN 'Segment Consent Preference Updated' THEN coalesce(list_bool_or(list_transform(
                       map_entries(from_json(
                           coalesce(c.ctx->'$.consent.categoryPreferences', '{{}}'),
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
        INSERT INTO keyed.rejected (source_file, line_number, reason, arrival_date, subject_key, message_id)
        SELECT c.source_file, c.line_number, c.reason, ?::DATE,
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
            """INSERT INTO keyed.rejected (source_file, line_number, reason, arrival_date)
               VALUES (?, 0, ?, ?)""",
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
