"""One subject's file: everything the warehouse knows of a subject, by its keys, as of the day the
core tables hold (``ops.core_state``), for a compliance officer who must demonstrate consent
(GDPR Art. 7(1)) or answer for an erasure.

A subject is found by its account id or an e-mail (hashed here with the key of CONTRACT 4, never
stored or shown), or by its ``subject_key`` or the first 12 or more hex digits of it, as the report
and the CSVs show it. An e-mail leads to every subject that ever held it (an e-mail can pass to a
new account after an erasure), each with a file of its own.

The file holds keys, times, enums and the evidence the rules keep; never an account id, an e-mail,
a name or an address. Free text from the inbox (a consent source, a notice version, a message id)
is shown as the report shows it: anything e-mail-shaped removed, escaped on the page. Inbox file
and system names are shown by their safe labels (``pipelines.safe_text``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb

from assets.compliance.rules import CONSENT_AT_SEND
from assets.core.as_of import install_as_of_views
from assets.erasure.locations import parse
from assets.landing.contract import MEDIUMS
from pipelines.keys import email_key, subject_key

#: The core tables whose as-of day is the file's (they are merged in one run, so they agree).
CORE_TABLES = ("keyed.accounts", "keyed.consent_history", "keyed.club_membership")
#: A subject key or its prefix: 12 to 64 lowercase hex digits (the report shows 12).
KEY_PREFIX = re.compile(r"[0-9a-f]{12,64}")
#: The file's name: the first this many hex digits of the subject key.
FILE_KEY_DIGITS = 16


class NotFound(LookupError):
    """No subject matches the lookup (the CLI's exit code 4)."""


class Ambiguous(LookupError):
    """A key prefix matches more than one subject."""


@dataclass(frozen=True)
class Lookup:
    """How a subject is looked for: `kind` is account_id, email or subject_key."""

    kind: str
    value: str

    def __repr__(self) -> str:  # never the identifier, even in a traceback
        return f"Lookup(kind={self.kind!r})"


@dataclass
class SubjectFile:
    subject_key: str
    as_of: date
    status: str
    account: dict[str, Any]
    consent: list[dict[str, Any]] = field(default_factory=list)
    club: list[dict[str, Any]] = field(default_factory=list)
    marketing: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    tombstone: dict[str, Any] | None = None

    @property
    def file_stem(self) -> str:
        return self.subject_key[:FILE_KEY_DIGITS]


def as_of_day(con: duckdb.DuckDBPyConnection) -> date | None:
    """The day whose end the core tables hold; None before the first night."""
    rows = con.execute(
        "SELECT min(as_of), count(DISTINCT table_name) FROM ops.core_state WHERE table_name IN (SELECT unnest(?))",
        [list(CORE_TABLES)],
    ).fetchall()
    day, tables = rows[0]
    return day if tables == len(CORE_TABLES) else None


#: Every subject the warehouse knows, by its key: accepted or rejected lines, accounts, erasures.
_KNOWN_SUBJECTS = """
    SELECT subject_key FROM keyed.accounts
    UNION SELECT subject_key FROM compliance.erasure_register
    UNION SELECT DISTINCT subject_key FROM keyed.events
    UNION SELECT DISTINCT subject_key FROM keyed.rejected WHERE subject_key IS NOT NULL
"""


def resolve(con: duckdb.DuckDBPyConnection, hash_key: str, lookup: Lookup) -> list[str]:
    """The subject keys the lookup names, sorted; NotFound when none, Ambiguous for a prefix of several."""
    if lookup.kind == "account_id":
        key = subject_key(hash_key, lookup.value)
        found = con.execute(f"SELECT subject_key FROM ({_KNOWN_SUBJECTS}) WHERE subject_key = ?", [key]).fetchall()
    elif lookup.kind == "email":
        key = email_key(hash_key, lookup.value)
        found = con.execute(
            """SELECT DISTINCT subject_key FROM (
                   SELECT subject_key FROM keyed.events WHERE email_key = $k OR previous_email_key = $k
                   UNION ALL SELECT subject_key FROM keyed.accounts WHERE email_key = $k
                   UNION ALL SELECT subject_key FROM compliance.erased_identifiers WHERE kind = 'email' AND key = $k
               ) ORDER BY subject_key""",
            {"k": key},
        ).fetchall()
    elif lookup.kind == "subject_key":
        prefix = lookup.value.strip().lower()
        if not KEY_PREFIX.fullmatch(prefix):
            raise ValueError("a subject key is 12 to 64 hex digits (the report shows the first 12)")
        found = con.execute(
            f"SELECT subject_key FROM ({_KNOWN_SUBJECTS}) WHERE starts_with(subject_key, ?) ORDER BY ALL LIMIT 3",
            [prefix],
        ).fetchall()
        if len(found) > 1:
            raise Ambiguous(f"the key prefix {prefix} matches more than one subject: give more digits")
    else:
        raise ValueError(f"unknown lookup kind {lookup.kind!r}")
    if not found:
        raise NotFound(f"no subject found by that {lookup.kind.replace('_', ' ')}")
    return sorted(r[0] for r in found)


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def gather(con: duckdb.DuckDBPyConnection, key: str, day: date) -> SubjectFile:
    """The subject's file as of the end of `day` (the core tables' day, ``as_of_day``)."""
    install_as_of_views(con, day)
    k, p = {"k": key}, {"k": key, "day": day}
    account = _dicts(
        con.execute("SELECT created_at, status, deletion_requested_at FROM keyed.accounts WHERE subject_key = $k", k)
    )
    register = _dicts(
        con.execute(
            """SELECT deleted_at, due_date, status, residual_locations, verified_on, erased_on, checked_on,
                      date_diff('day', checked_on, due_date) AS days_left
               FROM compliance.erasure_register WHERE subject_key = $k""",
            k,
        )
    )
    consent = _dicts(
        con.execute(
            """SELECT occurred_at, granted, event, source, notice_version, channel, message_id,
                      arrival_date, source_file, line_number
               FROM keyed.consent_history WHERE subject_key = $k ORDER BY consent_seq""",
            k,
        )
    )
    club = _dicts(
        con.execute(
            """SELECT valid_from, valid_to, end_reason, opened_by_message_id, closed_by_message_id
               FROM keyed.club_membership WHERE subject_key = $k ORDER BY valid_from""",
            k,
        )
    )
    # Every marketing send with the consent the subject held at that instant, as the rule
    # marketing_without_consent judges it (CONSENT_AT_SEND).
    marketing = _dicts(
        con.execute(
            f"""
            WITH sends AS (
                SELECT message_id, subject_key, occurred_at, channel,
                       CASE WHEN properties->>'$.medium' IN ({", ".join(f"'{m}'" for m in MEDIUMS)})
                            THEN properties->>'$.medium' END AS medium,
                       properties->>'$.campaign_id' AS campaign_id,
                       arrival_date, source_file, line_number
                FROM known_events WHERE subject_key = $k AND event = 'Marketing Message Sent'
            ), consent_at_send AS ({CONSENT_AT_SEND})
            SELECT s.occurred_at, s.message_id, s.campaign_id, s.channel, s.medium,
                   CASE WHEN d.deleted_at <= s.occurred_at THEN 'account deleted'
                        WHEN c.granted THEN 'granted'
                        WHEN c.granted IS NULL THEN 'no consent event'
                        ELSE 'withdrawn' END AS consent_at_send,
                   c.consent_at, c.consent_message_id,
                   v.rule AS violation
            FROM sends s
            LEFT JOIN consent_at_send c USING (message_id)
            LEFT JOIN deletions d ON d.subject_key = $k
            LEFT JOIN keyed.violations v
                   ON v.rule = 'marketing_without_consent' AND v.message_id = s.message_id AND v.detected_on <= $day
            ORDER BY s.occurred_at, s.arrival_date, s.source_file, s.line_number
            """,
            p,
        )
    )
    violations = _dicts(
        con.execute(
            """SELECT rule, severity, occurred_at, detected_on, message_id, system, details
               FROM keyed.violations WHERE subject_key = $k AND detected_on <= $day
               ORDER BY detected_on, occurred_at NULLS LAST, rule, message_id NULLS LAST, system NULLS LAST""",
            p,
        )
    )
    tombstone = None
    if register:
        tombstone = register[0]
        tombstone["residual_locations"] = [name for name, _ in parse(tombstone["residual_locations"])]
        tombstone["found"] = [
            {"day": d, "locations": [name for name, _ in parse(locations)]}
            for d, locations in _residual_days(con, key, day)
        ]
    if tombstone is not None:
        status = "erased"
    elif account:
        status = account[0]["status"]
    else:
        status = "no account record"
    return SubjectFile(
        subject_key=key,
        as_of=day,
        status=status,
        account=account[0] if account else {},
        consent=consent,
        club=club,
        marketing=marketing,
        violations=violations,
        tombstone=tombstone,
    )


def _residual_days(con: duckdb.DuckDBPyConnection, key: str, day: date) -> list[tuple[date, str]]:
    """(day, residual_locations) of each day residual data of the subject was found, up to `day`.
    A warehouse that the current code has not yet opened for writing has no such table: no days."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'ops' AND table_name = 'residual_days'"
    ).fetchall()[0][0]
    if not exists:
        return []
    return con.execute(
        """SELECT checked_on, residual_locations FROM ops.residual_days
           WHERE subject_key = ? AND checked_on <= ? ORDER BY checked_on""",
        [key, day],
    ).fetchall()
