-- Time series (src/tsdb): the immutable raw store, the series dictionary,
-- points and their 5-minute, 1-hour and 1-day rollups.
--
-- Times are timestamptz (8 bytes, like bigint) so that TimescaleDB's
-- policies, time_bucket and plain SQL users see real times; buckets are
-- aligned to UTC. No foreign keys: the write path is hot, and raw
-- telemetry outlives the devices it came from.

CREATE TABLE telemetry_raw (
    id uuid PRIMARY KEY,              -- UUIDv7, assigned at ingest
    organization_id uuid NOT NULL,
    device_id uuid NOT NULL,
    received_at timestamptz NOT NULL,
    transport TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX telemetry_raw_received ON telemetry_raw (received_at);
-- By organisation and time (replays; a device's replay filters that range).
-- No index leads with device_id: with many devices per batch it would cost
-- a page write per device per commit, which measured 2-3x the raw append.
CREATE INDEX telemetry_raw_org ON telemetry_raw (organization_id, received_at);

-- Append-only: UPDATE and TRUNCATE are always refused; DELETE only for
-- rows older than the cutoff a retention job sets for its own transaction
-- with set_config('argus.retention_before', <iso time>, true). This guards
-- against mistakes; permissions are what guard against intent.
CREATE FUNCTION telemetry_raw_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cutoff text := current_setting('argus.retention_before', true);
BEGIN
    IF TG_OP = 'DELETE' AND cutoff IS NOT NULL AND cutoff <> '' THEN
        IF OLD.received_at < cutoff::timestamptz THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'telemetry_raw is append-only'
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER telemetry_raw_immutable BEFORE UPDATE OR DELETE ON telemetry_raw
    FOR EACH ROW EXECUTE FUNCTION telemetry_raw_guard();
CREATE TRIGGER telemetry_raw_no_truncate BEFORE TRUNCATE ON telemetry_raw
    FOR EACH STATEMENT EXECUTE FUNCTION telemetry_raw_guard();

-- The series dictionary: one row per (organisation, entity, metric).
CREATE TABLE ts_series (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid NOT NULL,
    entity_type TEXT NOT NULL CHECK (entity_type IN ('device', 'asset')),
    entity_id uuid NOT NULL,
    metric TEXT NOT NULL,
    value_type TEXT NOT NULL CHECK (value_type IN ('number', 'boolean', 'string'))
);
CREATE UNIQUE INDEX ts_series_key
    ON ts_series (organization_id, entity_type, entity_id, metric);

-- value holds numbers and booleans (0/1); value_text strings (value NULL).
CREATE TABLE ts_points (
    series_id bigint NOT NULL,
    ts timestamptz NOT NULL,
    value double precision,
    value_text TEXT,
    PRIMARY KEY (series_id, ts)
);

-- Rollups of the numeric points of a series; bucket is the start of a UTC
-- 5-minute, hour or day bucket; last is the value at last_ts, the greatest
-- time in the bucket. A row is updated many times: free space in each page
-- (fillfactor) lets those be HOT updates that leave the index alone.
CREATE TABLE ts_rollup_5m (
    series_id bigint NOT NULL,
    bucket timestamptz NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    sum double precision NOT NULL,
    count bigint NOT NULL,
    last double precision NOT NULL,
    last_ts timestamptz NOT NULL,
    PRIMARY KEY (series_id, bucket)
) WITH (fillfactor = 70);

CREATE TABLE ts_rollup_1h (LIKE ts_rollup_5m INCLUDING ALL) WITH (fillfactor = 70);
CREATE TABLE ts_rollup_1d (LIKE ts_rollup_5m INCLUDING ALL) WITH (fillfactor = 70);

-- TimescaleDB, when the server has it: points become a hypertable (1-day
-- chunks) compressed after 7 days and dropped after 90; rollups are kept.
-- UNTESTED here (the extension is not packaged in Debian); without it,
-- ts_points stays a plain table and retention is tsdb's explicit job.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND current_setting('shared_preload_libraries', true) LIKE '%timescaledb%' THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        PERFORM create_hypertable('ts_points', 'ts',
                                  chunk_time_interval => INTERVAL '1 day');
        ALTER TABLE ts_points SET (timescaledb.compress,
                                   timescaledb.compress_segmentby = 'series_id',
                                   timescaledb.compress_orderby = 'ts DESC');
        PERFORM add_compression_policy('ts_points', INTERVAL '7 days');
        PERFORM add_retention_policy('ts_points', INTERVAL '90 days');
    END IF;
EXCEPTION WHEN OTHERS THEN
    -- An extension that is there but unusable leaves a plain table.
    RAISE WARNING 'timescaledb not used: %', SQLERRM;
END
$$;
