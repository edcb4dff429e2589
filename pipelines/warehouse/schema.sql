-- Every persistent table of the warehouse, in one place.
--
-- Applied (idempotently: IF NOT EXISTS) each time the warehouse is opened for writing, by
-- pipelines.warehouse.connection.open_connection, with vault.sql (the identity vault, a separate
-- file) before the pending migrations (pipelines/warehouse/migrations/) and views.sql (the
-- contract's tables) after them. A new warehouse gets the current layout from these files alone,
-- an older one is brought to it by the migrations. TEMP tables and views made per connection are
-- not schema and stay with the code that makes them.
--
-- assets/schemas.py reads this file for the assets' Dagster column schemas: the trailing
-- `-- comments` of a column become its description.

CREATE SCHEMA IF NOT EXISTS landing;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS compliance;
CREATE SCHEMA IF NOT EXISTS reports;
CREATE SCHEMA IF NOT EXISTS ops;
CREATE SCHEMA IF NOT EXISTS keyed;

-- Pseudonymous history (schema keyed): keys, enums, times and free text that passed validation.
-- Plain identifiers live in the vault (vault.sql); the contract's tables are views that add them
-- back (views.sql): an erasure deletes in the vault and never rewrites this history.

-- Accepted events, one row per messageId (the idempotency key); contract view landing.events.
CREATE TABLE IF NOT EXISTS keyed.events (
    message_id          VARCHAR NOT NULL,
    event               VARCHAR NOT NULL,
    subject_key         VARCHAR NOT NULL,
    occurred_at         TIMESTAMPTZ NOT NULL,
    channel             VARCHAR NOT NULL,
    agent_id            VARCHAR,
    properties          JSON,                 -- without the personal properties (vault.event_properties)
    consent_granted     BOOLEAN,              -- the consent value of a consent event, else NULL
    email_key           VARCHAR,              -- email_key of properties.email, where present
    previous_email_key  VARCHAR,              -- email_key of properties.previous_email
    source_file         VARCHAR NOT NULL,
    line_number         BIGINT NOT NULL,
    arrival_date        DATE NOT NULL
);

-- Lines that broke a rule of CONTRACT 2.1, kept with their reason; the raw line is in vault.quarantine.
-- Contract view landing.rejected.
CREATE TABLE IF NOT EXISTS keyed.rejected (
    source_file   VARCHAR NOT NULL,
    line_number   BIGINT NOT NULL,
    reason        VARCHAR NOT NULL,
    arrival_date  DATE NOT NULL,
    subject_key   VARCHAR,                    -- key of the line's userId, where one could be read
    message_id    VARCHAR
);

-- One row per ingested event file: the reconciliation received = accepted + duplicates + rejected.
CREATE TABLE IF NOT EXISTS landing.files (
    arrival_date  DATE NOT NULL,
    source_file   VARCHAR NOT NULL,
    bytes         BIGINT,
    received      BIGINT NOT NULL,
    accepted      BIGINT NOT NULL,
    duplicates    BIGINT NOT NULL,
    rejected      BIGINT NOT NULL,
    readable      BOOLEAN NOT NULL,
    ingested_at   TIMESTAMPTZ NOT NULL,
    problem       VARCHAR                     -- why an unreadable file could not be read
);

-- Downstream exports, pseudonymised: keys only, never a plain identifier.
CREATE TABLE IF NOT EXISTS landing.export_files (
    system        VARCHAR NOT NULL,
    export_date   DATE NOT NULL,
    source_file   VARCHAR NOT NULL,
    rows_total    BIGINT NOT NULL,
    rows_keyed    BIGINT NOT NULL,
    readable      BOOLEAN NOT NULL,
    problem       VARCHAR,
    ingested_at   TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS landing.export_keys (
    system        VARCHAR NOT NULL,
    export_date   DATE NOT NULL,
    row_number    BIGINT NOT NULL,
    subject_key   VARCHAR,                    -- key of account_id, where the row has one
    email_key     VARCHAR                     -- key of lower(trim(email)), where the row has one
);

-- The core tables are merged each night by assets/core (changed.py): the rows of the subjects whose
-- state can have changed are computed again. Contract views core.accounts, core.consent_history and
-- core.club_membership add account_id.
CREATE TABLE IF NOT EXISTS keyed.accounts (
    subject_key            VARCHAR NOT NULL,
    created_at             TIMESTAMPTZ,          -- first Account Created
    status                 VARCHAR NOT NULL,     -- 'active' | 'deletion_requested'
    email_key              VARCHAR,              -- key of the current e-mail
    deletion_requested_at  TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS keyed.consent_history (
    subject_key     VARCHAR NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    granted         BOOLEAN NOT NULL,
    source          VARCHAR,
    notice_version  VARCHAR,
    message_id      VARCHAR NOT NULL,
    event           VARCHAR,                  -- the consent event (grant, withdraw or Segment)
    channel         VARCHAR,
    consent_seq     BIGINT,                   -- order within the subject's history
    arrival_date    DATE,
    source_file     VARCHAR,
    line_number     BIGINT
);
CREATE TABLE IF NOT EXISTS keyed.club_membership (
    subject_key   VARCHAR NOT NULL,
    valid_from    TIMESTAMPTZ NOT NULL,
    valid_to      TIMESTAMPTZ,                -- NULL while open
    end_reason    VARCHAR,                    -- 'consent_withdrawn' | 'account_deleted' | NULL
    opened_by_message_id  VARCHAR,
    closed_by_message_id  VARCHAR
);

-- The ledger of policy violations; contract view compliance.violations adds account_id.
CREATE TABLE IF NOT EXISTS keyed.violations (
    rule          VARCHAR NOT NULL,
    severity      VARCHAR NOT NULL,
    subject_key   VARCHAR NOT NULL,
    occurred_at   TIMESTAMPTZ,
    detected_on   DATE NOT NULL,
    message_id    VARCHAR,                    -- evidence; NULL for export-based rules
    system        VARCHAR,                    -- NULL for event-based rules
    details       VARCHAR
);

-- The tombstone: keys, dates and the verification result. Never a plain identifier.
CREATE TABLE IF NOT EXISTS compliance.erasure_register (
    subject_key         VARCHAR NOT NULL,
    deleted_at          TIMESTAMPTZ NOT NULL,
    due_date            DATE NOT NULL,
    status              VARCHAR NOT NULL,
    residual_locations  VARCHAR,
    verified_on         DATE,
    erased_on           DATE NOT NULL,        -- the run that first saw the deletion
    checked_on          DATE NOT NULL
);
-- Where each erased subject's residual data stands in a downstream system's latest export, by row
-- (assets/erasure/verifier.py): the facts behind the register's system locations, rewritten with it.
-- Keys and row numbers only; the report's remediation lists (assets/reports/remediation.py).
CREATE TABLE IF NOT EXISTS compliance.erasure_remediation (
    subject_key   VARCHAR NOT NULL,
    system        VARCHAR NOT NULL,           -- the export system (its folder's name)
    export_date   DATE NOT NULL,              -- the export file used: snapshots/<system>/<export_date>.csv
    row_number    BIGINT,                     -- landing.export_keys.row_number; NULL: the export could not be read
    matched_on    VARCHAR NOT NULL            -- 'account_id' | 'email' | 'account_id+email' | 'export_unreadable'
);
CREATE TABLE IF NOT EXISTS compliance.erased_identifiers (
    subject_key   VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,           -- 'account_id' | 'email'
    key           VARCHAR NOT NULL            -- subject_key or email_key
);
-- The first date each erased subject was verified (assets/erasure/verifier.py): the register holds
-- the subjects erased as of the day last run, so a re-run of an earlier day drops later ones' rows.
CREATE TABLE IF NOT EXISTS ops.erasure_verified (
    subject_key   VARCHAR NOT NULL,
    verified_on   DATE NOT NULL
);

-- Where each erased subject's residual data was found, one row per day it was found (the register
-- holds the latest day only): the tombstone of a subject's file (pipelines/evidence). Keys and location
-- tokens only (assets/erasure/locations.py).
CREATE TABLE IF NOT EXISTS ops.residual_days (
    subject_key         VARCHAR NOT NULL,
    checked_on          DATE NOT NULL,
    residual_locations  VARCHAR NOT NULL
);

-- Pipeline bookkeeping.
CREATE TABLE IF NOT EXISTS ops.ingested_days (
    arrival_date  DATE NOT NULL,
    manifest      VARCHAR NOT NULL,
    files         BIGINT NOT NULL,
    ingested_at   TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.runs (
    run_date        DATE NOT NULL,
    dagster_run_id  VARCHAR,
    status          VARCHAR NOT NULL,
    finished_at     TIMESTAMPTZ NOT NULL
);
-- The day whose end each core table holds the state of (assets/core/changed.py); none: computed whole next.
CREATE TABLE IF NOT EXISTS ops.core_state (
    table_name    VARCHAR NOT NULL,
    as_of         DATE NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.retention_log (
    run_date      DATE NOT NULL,
    kind          VARCHAR NOT NULL,           -- 'events' | 'snapshot'
    path          VARCHAR NOT NULL,           -- relative to the inbox
    deleted_at    TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.check_results (
    run_date        DATE NOT NULL,
    check_name      VARCHAR NOT NULL,
    asset           VARCHAR NOT NULL,
    severity        VARCHAR NOT NULL,         -- 'ERROR' | 'WARN'
    passed          BOOLEAN NOT NULL,
    evaluated       BIGINT NOT NULL,          -- expectations (or SQL assertions) evaluated
    failed          BIGINT NOT NULL,
    description     VARCHAR,
    details         VARCHAR,
    dagster_run_id  VARCHAR
);

-- Applied schema migrations (pipelines/warehouse/migrations/), one row each.
CREATE TABLE IF NOT EXISTS ops.schema_migrations (
    version       INTEGER NOT NULL PRIMARY KEY,
    name          VARCHAR NOT NULL,
    applied_at    TIMESTAMPTZ NOT NULL
);

-- Erasure (assets/erasure/): keys, counts and dates only.
CREATE TABLE IF NOT EXISTS compliance.purge_log (
    run_date      DATE NOT NULL,
    table_name    VARCHAR NOT NULL,
    rows_purged   BIGINT NOT NULL,
    purged_at     TIMESTAMPTZ NOT NULL
);
-- Keys found in each retained inbox event folder, cached by the folder's file manifest.
CREATE TABLE IF NOT EXISTS ops.inbox_scans (
    folder        VARCHAR NOT NULL,
    manifest      VARCHAR NOT NULL,
    scanned_at    TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.inbox_keys (
    folder        VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,           -- 'account_id' | 'email'
    key           BLOB NOT NULL,              -- the 32 bytes of the subject_key or email_key of a token found there
    lines         BIGINT                      -- the folder's lines that hold it
);
-- Where each kept key of ops.inbox_keys stands, by file and line, unless the line is the key's own subject's
-- as the keyed history knows it (assets/purge/inbox_scan.py): the lines the redaction reads besides the
-- erased subjects' own.
CREATE TABLE IF NOT EXISTS ops.inbox_lines (
    folder        VARCHAR NOT NULL,
    path          VARCHAR NOT NULL,           -- relative to <inbox>/events/
    line_number   BIGINT NOT NULL,            -- 1-based
    kind          VARCHAR NOT NULL,           -- 'account_id' | 'email'
    key           BLOB NOT NULL
);
-- Retained inbox event files rewritten in place to redact erased subjects (assets/landing/inbox_files.py):
-- the file's size and mtime before and after, so a rewrite cut short is finished by the next run.
CREATE TABLE IF NOT EXISTS ops.inbox_rewrites (
    run_date         DATE NOT NULL,
    path             VARCHAR NOT NULL,        -- relative to <inbox>/events/
    size_before      BIGINT NOT NULL,
    mtime_before_ns  BIGINT NOT NULL,
    size_after       BIGINT NOT NULL,
    mtime_after_ns   BIGINT NOT NULL,
    state            VARCHAR NOT NULL,        -- 'pending' until the new file is in place, then 'done'
    rewritten_at     TIMESTAMPTZ NOT NULL
);
-- What each inbox redaction changed (assets/purge/inbox_redaction.py): keys and counts, never a value.
CREATE TABLE IF NOT EXISTS ops.inbox_redactions (
    run_date      DATE NOT NULL,
    folder        VARCHAR NOT NULL,
    path          VARCHAR NOT NULL,           -- relative to <inbox>/events/
    line_number   BIGINT NOT NULL,
    subject_key   VARCHAR NOT NULL,           -- the erased subject whose identifier stood there
    kind          VARCHAR NOT NULL,           -- 'account_id' | 'email'
    replaced      BIGINT NOT NULL,            -- distinct tokens of that kind replaced on the line
    whole_line    BOOLEAN NOT NULL,           -- the line could only be replaced whole, by [erased]
    redacted_at   TIMESTAMPTZ NOT NULL
);
-- Text columns the residual scan found clean, by a fingerprint of their values and of the targets.
CREATE TABLE IF NOT EXISTS ops.scan_cache (
    table_name    VARCHAR NOT NULL,
    column_name   VARCHAR NOT NULL,
    fingerprint   VARCHAR NOT NULL,
    targets       VARCHAR NOT NULL,
    scanned_at    TIMESTAMPTZ NOT NULL
);
-- A purge freed strings inside a database file: its compaction is due until one succeeds.
CREATE TABLE IF NOT EXISTS ops.compaction_due (
    run_date      DATE NOT NULL,
    requested_at  TIMESTAMPTZ NOT NULL,
    database      VARCHAR NOT NULL DEFAULT 'warehouse'  -- 'warehouse' | 'vault'
);
CREATE TABLE IF NOT EXISTS ops.compactions (
    run_date      DATE NOT NULL,
    bytes_before  BIGINT NOT NULL,
    bytes_after   BIGINT NOT NULL,
    compacted_at  TIMESTAMPTZ NOT NULL,
    database      VARCHAR NOT NULL DEFAULT 'warehouse'  -- 'warehouse' | 'vault'
);

-- The residual scan's memory (assets/purge/scan_memory.py): digests of values verified clean, 32
-- bits of the keyed hash of each of their tokens (the index a new target is joined with), the
-- targets they were verified against, and the version of the tokeniser and hash that made them.
CREATE TABLE IF NOT EXISTS ops.scan_values (
    digest        UBIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.scan_value_keys (
    digest        UBIGINT NOT NULL,
    key           UINTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.scan_targets (
    kind          VARCHAR NOT NULL,
    key           VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.scan_state (
    version       VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS ops.scan_target_lengths (
    key           VARCHAR NOT NULL,
    length        INTEGER NOT NULL
);

-- One row per expectation of a Great Expectations suite (checks/gx_runner.py), so the report can
-- list every expectation, pass or fail, with its counts. ops.check_results holds the suite total.
CREATE TABLE IF NOT EXISTS ops.expectation_results (
    run_date     DATE NOT NULL,
    check_name   VARCHAR NOT NULL,
    asset        VARCHAR NOT NULL,
    position     INTEGER NOT NULL,          -- order within the suite
    statement    VARCHAR NOT NULL,          -- the expectation in plain language
    expectation  VARCHAR NOT NULL,          -- GX type, e.g. expect_column_values_to_not_be_null
    column_name  VARCHAR,
    success      BOOLEAN NOT NULL,
    evaluated    BIGINT NOT NULL,           -- rows looked at
    unexpected   BIGINT NOT NULL,           -- rows that broke it
    error        VARCHAR
);

-- The report's summary of each run date (assets/reports/summary.py).
CREATE TABLE IF NOT EXISTS reports.daily_summary (
    run_date        DATE NOT NULL,
    status          VARCHAR NOT NULL,
    summary         JSON NOT NULL,            -- the day's summary.json
    code_version    VARCHAR NOT NULL,
    dagster_run_id  VARCHAR,
    generated_at    TIMESTAMPTZ NOT NULL
);
