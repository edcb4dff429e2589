-- The contract's tables (CONTRACT 6.1) as views over the pseudonymous history (schema keyed) and
-- the identity vault (vault.sql): account_id, the personal properties and rejected raw lines are
-- read from the vault, so they are NULL (or gone) once the subject is erased.
-- Applied on each read-write open, after the migrations. Reading them needs the vault attached:
-- open the warehouse with pipelines.warehouse.connect (or ATTACH '<stem>.vault.duckdb' AS vault).

CREATE OR REPLACE VIEW landing.events AS
SELECT e.message_id, e.event, a.account_id, e.subject_key, e.occurred_at, e.channel, e.agent_id,
       coalesce(p.properties, e.properties) AS properties,
       e.consent_granted, e.email_key, e.previous_email_key, e.source_file, e.line_number, e.arrival_date
FROM keyed.events e
LEFT JOIN vault.accounts a ON a.subject_key = e.subject_key
LEFT JOIN vault.event_properties p ON p.message_id = e.message_id;

CREATE OR REPLACE VIEW landing.rejected AS
SELECT r.source_file, r.line_number, r.reason, q.raw_line, r.arrival_date,
       a.account_id, r.subject_key, r.message_id, coalesce(q.purged, false) AS purged
FROM keyed.rejected r
LEFT JOIN vault.quarantine q
       ON q.arrival_date = r.arrival_date AND q.source_file = r.source_file AND q.line_number = r.line_number
LEFT JOIN vault.accounts a ON a.subject_key = r.subject_key;

CREATE OR REPLACE VIEW core.accounts AS
SELECT a.account_id, k.* FROM keyed.accounts k LEFT JOIN vault.accounts a ON a.subject_key = k.subject_key;

CREATE OR REPLACE VIEW core.consent_history AS
SELECT a.account_id, k.* FROM keyed.consent_history k LEFT JOIN vault.accounts a ON a.subject_key = k.subject_key;

CREATE OR REPLACE VIEW core.club_membership AS
SELECT a.account_id, k.* FROM keyed.club_membership k LEFT JOIN vault.accounts a ON a.subject_key = k.subject_key;

CREATE OR REPLACE VIEW compliance.violations AS
SELECT k.rule, k.severity, k.subject_key, a.account_id, k.occurred_at, k.detected_on, k.message_id, k.system,
       k.details
FROM keyed.violations k LEFT JOIN vault.accounts a ON a.subject_key = k.subject_key;
