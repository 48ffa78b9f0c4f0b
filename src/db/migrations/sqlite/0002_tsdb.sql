-- Time series (src/tsdb): the immutable raw store, the series dictionary,
-- points and their 5-minute, 1-hour and 1-day rollups.
--
-- Points and rollups are keyed by integers only (series id, epoch
-- milliseconds UTC) in WITHOUT ROWID tables, so that a row is its key plus
-- a value or two. telemetry_raw follows the portable conventions of
-- src/db (ids and ISO times as TEXT) because other subsystems read it.
-- No foreign keys: the write path is hot, and raw telemetry outlives the
-- devices it came from.

CREATE TABLE telemetry_raw (
    id TEXT PRIMARY KEY,              -- UUIDv7, assigned at ingest
    organization_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    received_at TEXT NOT NULL,        -- "YYYY-MM-DDTHH:MM:SS.mmmZ"
    transport TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX telemetry_raw_received ON telemetry_raw (received_at);
-- By organisation and time (replays; a device's replay filters that range).
-- No index leads with device_id: with many devices per batch it would cost
-- a page write per device per commit, which measured 2-3x the raw append.
CREATE INDEX telemetry_raw_org ON telemetry_raw (organization_id, received_at);

-- Append-only: UPDATE is always refused; DELETE only for rows older than
-- the cutoff that a retention job writes into telemetry_raw_retention
-- inside its own transaction (and removes again before committing), so
-- the gate is never open outside that transaction.
CREATE TABLE telemetry_raw_retention (
    cutoff TEXT NOT NULL
);

CREATE TRIGGER telemetry_raw_no_update BEFORE UPDATE ON telemetry_raw
BEGIN
    SELECT RAISE(ABORT, 'telemetry_raw is append-only');
END;

CREATE TRIGGER telemetry_raw_no_delete BEFORE DELETE ON telemetry_raw
WHEN NOT EXISTS (SELECT 1 FROM telemetry_raw_retention
                 WHERE OLD.received_at < cutoff)
BEGIN
    SELECT RAISE(ABORT, 'telemetry_raw is append-only');
END;

-- The series dictionary: one row per (organisation, entity, metric).
CREATE TABLE ts_series (
    id INTEGER PRIMARY KEY,
    organization_id TEXT NOT NULL,
    entity_type TEXT NOT NULL CHECK (entity_type IN ('device', 'asset')),
    entity_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    value_type TEXT NOT NULL CHECK (value_type IN ('number', 'boolean', 'string'))
);
CREATE UNIQUE INDEX ts_series_key
    ON ts_series (organization_id, entity_type, entity_id, metric);

-- value holds numbers and booleans (0/1); value_text strings (value NULL).
CREATE TABLE ts_points (
    series_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,              -- epoch milliseconds, UTC
    value REAL,
    value_text TEXT,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;

-- Rollups of the numeric points of a series; bucket is the start of a UTC
-- 5-minute, hour or day bucket in epoch milliseconds; last is the value at
-- last_ts, the greatest time in the bucket.
--
-- Stored time-major, (bucket, series_id): the rows a batch updates (the
-- current bucket of every series) sit together in a few pages instead of a
-- page per series, which is what a commit has to write. Queries by series
-- go through the (series_id, bucket) index, which changes only when a new
-- bucket row appears, not on each update.
CREATE TABLE ts_rollup_5m (
    series_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    count INTEGER NOT NULL,
    last REAL NOT NULL,
    last_ts INTEGER NOT NULL,
    PRIMARY KEY (bucket, series_id)
) WITHOUT ROWID;
CREATE INDEX ts_rollup_5m_series ON ts_rollup_5m (series_id, bucket);

CREATE TABLE ts_rollup_1h (
    series_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    count INTEGER NOT NULL,
    last REAL NOT NULL,
    last_ts INTEGER NOT NULL,
    PRIMARY KEY (bucket, series_id)
) WITHOUT ROWID;
CREATE INDEX ts_rollup_1h_series ON ts_rollup_1h (series_id, bucket);

CREATE TABLE ts_rollup_1d (
    series_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    count INTEGER NOT NULL,
    last REAL NOT NULL,
    last_ts INTEGER NOT NULL,
    PRIMARY KEY (bucket, series_id)
) WITHOUT ROWID;
CREATE INDEX ts_rollup_1d_series ON ts_rollup_1d (series_id, bucket);
