"""The rule registry: the eight policy rules of POLICY.md, each with its id, severity, description and SQL.

Adding a rule means adding one `Rule` to `RULES`. The violations asset evaluates every rule the
same way and keeps the first row per uniqueness key (CONTRACT 6.1):

- an ``event`` rule raises one row per offending event (unique on rule, message_id);
- an ``export`` rule raises one row per (rule, subject, system), on the first day it is found.

Each rule's SQL is a SELECT returning the columns of `CANDIDATE_COLUMNS`. It reads these relations
(see `assets.core.as_of` and `SHARED_VIEWS` below), all as of the end of day D:

- ``known_events``: accepted events that arrived by D and occurred by the end of D;
- ``deletions(subject_key, deleted_at)``: each subject's first "Account Deleted";
- ``keyed.accounts``, ``keyed.consent_history`` (``consent_seq`` orders a subject's consent events);
- ``care_hours(opens, closes, ...)`` per care_center event (`assets.compliance.care_hours`);
- ``export_accounts``: each row of a system's latest export, mapped to a non-erased account, with
  the account's consent at the end of the export's day;
- ``compliance.erasure_register``.

``details`` is evidence for compliance officers. It holds no personal data and nothing copied from
free-text input: only event names, channels, mediums (validated at ingestion), system names, dates
and durations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from assets.erasure.locations import decode_sql, is_pipeline_sql, split_sql

CANDIDATE_COLUMNS = ("subject_key", "occurred_at", "message_id", "system", "details")

SEVERITIES = ("critical", "high", "medium", "low")


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Literal["critical", "high", "medium", "low"]
    kind: Literal["event", "export"]
    #: Plain language, shown to compliance officers in the report.
    description: str
    #: A SELECT returning CANDIDATE_COLUMNS: every offence known as of the end of D.
    sql: str

    @property
    def unique_on(self) -> tuple[str, ...]:
        """The contract's uniqueness key of a violation row of this rule (besides `rule`)."""
        return ("message_id",) if self.kind == "event" else ("subject_key", "system")


# Relations the export rules share, for one evaluation, built after the core tables for day D (which
# do not change while the rules run). The two small ones are TEMP tables; the per-row mapping and
# the consent are TEMP views, so that each export rule computes only its own system's rows and no
# copy of the exports' millions of rows stays pinned in memory while the rules run.
SHARED_VIEWS = """
CREATE OR REPLACE TEMP TABLE export_days AS
SELECT DISTINCT system, export_date, end_of_local_day(export_date) AS end_of_export_day
FROM landing.export_keys;

-- The e-mail each non-erased account held at the end of each export's day. Only accounts that
-- ever held an e-mail found on an export row without an account id can be matched by e-mail.
CREATE OR REPLACE TEMP TABLE email_at_export AS
SELECT d.system, d.export_date, e.subject_key, e.email_key
FROM export_days d
JOIN known_events e ON e.occurred_at <= d.end_of_export_day
WHERE e.event IN ('Account Created', 'Email Changed') AND e.email_key IS NOT NULL
  AND e.subject_key IN (SELECT subject_key FROM keyed.accounts)
  AND e.subject_key IN (SELECT subject_key FROM known_events
                        WHERE email_key IN (SELECT email_key FROM landing.export_keys WHERE subject_key IS NULL))
QUALIFY row_number() OVER (
    PARTITION BY d.system, d.export_date, e.subject_key
    ORDER BY e.occurred_at DESC, e.arrival_date DESC, e.source_file DESC, e.line_number DESC) = 1;

-- Each export row, mapped to a non-erased account: by its account_id when it has one,
-- otherwise by the account that held its e-mail at the end of the export's day.
CREATE OR REPLACE TEMP VIEW export_rows_mapped AS
SELECT k.system, k.export_date, d.end_of_export_day, k.row_number, a.subject_key,
       'account_id' AS matched_by
FROM landing.export_keys k
JOIN export_days d USING (system, export_date)
JOIN keyed.accounts a ON a.subject_key = k.subject_key
UNION ALL
SELECT k.system, k.export_date, d.end_of_export_day, k.row_number, a.subject_key,
       'e-mail' AS matched_by
FROM landing.export_keys k
JOIN export_days d USING (system, export_date)
JOIN email_at_export m ON m.system = k.system AND m.export_date = k.export_date AND m.email_key = k.email_key
JOIN keyed.accounts a ON a.subject_key = m.subject_key
WHERE k.subject_key IS NULL;

-- The mapped rows with the account's consent at the end of the export's day:
-- the value of its latest consent event at or before that instant; none = no consent.
CREATE OR REPLACE TEMP VIEW export_accounts AS
WITH consent_at_end_of_export_day AS (
    SELECT x.system, x.export_date, x.subject_key,
           arg_max(c.granted, c.consent_seq) AS granted
    FROM (SELECT DISTINCT system, export_date, end_of_export_day, subject_key FROM export_rows_mapped) x
    JOIN keyed.consent_history c ON c.subject_key = x.subject_key AND c.occurred_at <= x.end_of_export_day
    GROUP BY ALL
)
SELECT x.*, coalesce(c.granted, false) AS consented, c.granted IS NULL AS never_consented
FROM export_rows_mapped x
LEFT JOIN consent_at_end_of_export_day c USING (system, export_date, subject_key);
"""


def _export_without_consent_sql(system: str) -> str:
    return f"""
SELECT subject_key,
       end_of_export_day AS occurred_at,
       NULL AS message_id,
       system,
       'on the ' || system || ' export of ' || strftime(export_date, '%Y-%m-%d')
           || ' (matched by ' || matched_by || '); '
           || CASE WHEN never_consented THEN 'no consent event by the end of that day'
                   ELSE 'consent withdrawn by the end of that day' END AS details
FROM export_accounts
WHERE system = '{system}'
  AND NOT consented
"""


#: Each send of a relation `sends` (message_id, subject_key, occurred_at) with the consent its subject
#: held at that instant: the latest consent event at or before the send (one at the same instant
#: counts), its value, message id and time. marketing_without_consent judges by it; a subject's file
#: (pipelines/evidence) shows it.
CONSENT_AT_SEND = """
    SELECT s.message_id, arg_max(c.granted, c.consent_seq) AS granted,
           arg_max(c.message_id, c.consent_seq) AS consent_message_id,
           arg_max(c.occurred_at, c.consent_seq) AS consent_at
    FROM sends s
    JOIN keyed.consent_history c ON c.subject_key = s.subject_key AND c.occurred_at <= s.occurred_at
    GROUP BY s.message_id
"""

RULES: list[Rule] = [
    Rule(
        id="email_change_not_via_care_center",
        severity="high",
        kind="event",
        description=(
            "An e-mail address was changed outside Customer Care. Customers cannot change their e-mail "
            "themselves: only a Customer Care agent may do it (channel care_center)."
        ),
        sql="""
SELECT subject_key, occurred_at, message_id, NULL AS system,
       'channel=' || channel AS details
FROM known_events
WHERE event = 'Email Changed'
  AND channel <> 'care_center'
""",
    ),
    Rule(
        id="care_action_outside_hours",
        severity="medium",
        kind="event",
        description=(
            "A Customer Care agent acted outside Customer Care hours: weekdays 08:00-20:00, weekends and "
            "Czech public holidays 10:00-18:00, Prague local time (start inclusive, end exclusive)."
        ),
        sql="""
SELECT subject_key, occurred_at, message_id, NULL AS system,
       'local time ' || strftime(local_time, '%H:%M:%S %a %Y-%m-%d')
           || CASE WHEN is_holiday THEN ' (public holiday)' ELSE '' END
           || '; open ' || left(opens::VARCHAR, 5) || '-' || left(closes::VARCHAR, 5) AS details
FROM care_hours
WHERE NOT (local_time::TIME >= opens AND local_time::TIME < closes)
""",
    ),
    Rule(
        id="password_changed_without_reset",
        severity="high",
        kind="event",
        description=(
            "A password was changed without a password-reset e-mail sent to the same account in the "
            "24 hours before the change."
        ),
        sql="""
WITH changes AS (
    SELECT * FROM known_events WHERE event = 'Password Changed'
), last_reset_email AS (
    SELECT p.message_id, max(r.occurred_at) AS sent_at
    FROM changes p
    JOIN known_events r ON r.subject_key = p.subject_key AND r.event = 'Password Reset Email Sent'
                       AND r.occurred_at <= p.occurred_at
    GROUP BY p.message_id
)
SELECT p.subject_key, p.occurred_at, p.message_id, NULL AS system,
       CASE WHEN l.sent_at IS NULL THEN 'no reset e-mail before the change'
            ELSE 'reset e-mail ' || round(epoch(p.occurred_at - l.sent_at) / 3600, 1) || ' h before' END AS details
FROM changes p
LEFT JOIN last_reset_email l USING (message_id)
WHERE l.sent_at IS NULL
   OR l.sent_at < p.occurred_at - INTERVAL 24 HOUR
""",
    ),
    Rule(
        id="marketing_without_consent",
        severity="high",
        kind="event",
        description=(
            "A marketing message was sent to an account that held no marketing consent at that instant: "
            "its latest consent event before the send was a withdrawal, it had none, or the account was "
            "already deleted."
        ),
        sql=f"""
WITH sends AS (
    SELECT * FROM known_events WHERE event = 'Marketing Message Sent'
), consent_at_send AS ({CONSENT_AT_SEND})
SELECT s.subject_key, s.occurred_at, s.message_id, NULL AS system,
       CASE WHEN d.deleted_at <= s.occurred_at THEN 'account deleted before the send'
            WHEN c.granted IS NULL THEN 'no consent event before the send'
            ELSE 'consent withdrawn before the send' END
           || CASE WHEN s.properties->>'$.medium' IN ('email', 'sms', 'push')
                   THEN '; medium=' || (s.properties->>'$.medium') ELSE '' END AS details
FROM sends s
LEFT JOIN consent_at_send c USING (message_id)
LEFT JOIN deletions d USING (subject_key)
WHERE coalesce(d.deleted_at <= s.occurred_at, false)
   OR NOT coalesce(c.granted, false)
""",
    ),
    Rule(
        id="activity_after_deletion",
        severity="high",
        kind="event",
        description=(
            "An account showed activity after it was deleted. Marketing messages to deleted accounts are "
            "reported under marketing_without_consent instead."
        ),
        sql="""
SELECT e.subject_key, e.occurred_at, e.message_id, NULL AS system,
       'event=' || e.event || '; channel=' || e.channel || '; '
           || CASE WHEN e.occurred_at - d.deleted_at < INTERVAL 2 HOUR
                   THEN floor(epoch(e.occurred_at - d.deleted_at) / 60)::BIGINT || ' min'
                   ELSE round(epoch(e.occurred_at - d.deleted_at) / 3600, 1) || ' h' END
           || ' after deletion' AS details
FROM known_events e
JOIN deletions d USING (subject_key)
WHERE e.occurred_at > d.deleted_at
  AND e.event <> 'Marketing Message Sent'
""",
    ),
    Rule(
        id="club_member_without_consent",
        severity="high",
        kind="export",
        description=(
            "An account is on the IQOS CLUB roster without marketing consent at the end of the roster's "
            "export day. Withdrawing marketing consent ends CLUB membership."
        ),
        sql=_export_without_consent_sql("club_roster"),
    ),
    Rule(
        id="marketing_list_without_consent",
        severity="high",
        kind="export",
        description=(
            "An account is on the marketing list without marketing consent at the end of the list's export day."
        ),
        sql=_export_without_consent_sql("marketing_list"),
    ),
    Rule(
        id="erasure_overdue",
        severity="critical",
        kind="export",
        description=(
            "A deleted customer's identifiers are still found after the erasure due date (one calendar month "
            "after the deletion, GDPR Art. 12(3) and Art. 17): in the warehouse, the inbox or a downstream system."
        ),
        sql=f"""
WITH locations AS (
    SELECT r.subject_key, r.deleted_at, r.due_date, r.checked_on, {decode_sql("loc.token")} AS system,
           {is_pipeline_sql("loc.token")} AS pipeline
    FROM compliance.erasure_register r,
         unnest({split_sql("r.residual_locations")}) AS loc(token)
    WHERE r.status = 'overdue'
), unreadable AS (   -- systems whose latest export at or before the register's day could not be read
    SELECT l.system, l.checked_on
    FROM (SELECT DISTINCT system, checked_on FROM locations WHERE NOT pipeline) l
    JOIN landing.export_files f ON f.system = l.system AND f.export_date <= l.checked_on
    QUALIFY row_number() OVER (PARTITION BY l.system, l.checked_on ORDER BY f.export_date DESC) = 1
        AND NOT f.readable
)
SELECT l.subject_key, l.deleted_at AS occurred_at, NULL AS message_id, l.system,
       'due ' || strftime(l.due_date, '%Y-%m-%d') || '; '
           || CASE WHEN u.system IS NOT NULL
                   THEN 'erasure cannot be verified in ' || l.system || ': its latest export could not be read'
                   ELSE 'identifiers still found in ' || l.system END AS details
FROM locations l
LEFT JOIN unreadable u ON NOT l.pipeline AND u.system = l.system AND u.checked_on = l.checked_on
""",
    ),
]

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}
assert len(RULES_BY_ID) == len(RULES), "rule ids must be unique"
