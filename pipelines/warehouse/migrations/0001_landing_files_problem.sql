-- landing.files.problem: why an unreadable file could not be read (NULL for readable files).
-- Warehouses made before the column existed lack it (it was added by the ingest step).
ALTER TABLE landing.files ADD COLUMN IF NOT EXISTS problem VARCHAR;
