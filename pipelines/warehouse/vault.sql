-- The identity vault: every plain identifier the pipeline holds, in its own DuckDB file beside the
-- warehouse (`<warehouse stem>.vault.duckdb`), attached to every warehouse connection as `vault`.
--
-- It is small (one row per subject, per event that carries personal properties, per rejected line)
-- so that the byte-level erasure of a night with erasures copies it, not the history: an erasure
-- deletes the subject's rows here, and assets/compaction rewrites this file the same night.
-- Applied with schema.sql on each read-write open.

-- The account id of every subject known (accepted or rejected lines), by its key.
CREATE TABLE IF NOT EXISTS vault.accounts (
    subject_key   VARCHAR NOT NULL,
    account_id    VARCHAR NOT NULL
);
-- An accepted event's properties as they arrived, for every event that carried a personal one
-- (e-mail, previous e-mail, names, address values); keyed.events holds the rest.
CREATE TABLE IF NOT EXISTS vault.event_properties (
    message_id          VARCHAR NOT NULL,
    subject_key         VARCHAR NOT NULL,
    email_key           VARCHAR,
    previous_email_key  VARCHAR,
    properties          JSON NOT NULL
);
-- Quarantine: the raw text of every rejected line (hostile free text that may hold anything).
CREATE TABLE IF NOT EXISTS vault.quarantine (
    arrival_date  DATE NOT NULL,
    source_file   VARCHAR NOT NULL,
    line_number   BIGINT NOT NULL,
    subject_key   VARCHAR,                    -- key of the line's userId, where one could be read
    raw_line      VARCHAR,                    -- NULL once it held an erased identifier
    purged        BOOLEAN NOT NULL DEFAULT false
);
-- Rows the purge changed here, per day and table (assets/purge/purge.py): counts, written in the
-- transaction that changed them and copied to compliance.purge_log.
CREATE TABLE IF NOT EXISTS vault.purge_counts (
    run_date      DATE NOT NULL,
    table_name    VARCHAR NOT NULL,
    rows_purged   BIGINT NOT NULL,
    purged_at     TIMESTAMPTZ NOT NULL
);
