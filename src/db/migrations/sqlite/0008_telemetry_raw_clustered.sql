-- telemetry_raw becomes one B-tree: a WITHOUT ROWID table keyed by
-- (organization_id, received_at, id). It was four (the rowid table, the
-- id key's index and two time indexes), and each message cost an insert
-- into each; the raw append was about 40 % of the embedded writer's time.
--
-- The key serves every read: a replay is a range of one organisation's
-- receive times (ordered as the key is), retention a range per
-- organisation below the cutoff (found by skip-scan over the key's first
-- column), and a message stored again is the same key (redeliveries and
-- replays carry its id, organisation and receive time), so
-- ON CONFLICT DO NOTHING keeps it idempotent without a unique index on id.
CREATE TABLE telemetry_raw_new (
    id TEXT NOT NULL,                 -- UUIDv7, assigned at ingest
    organization_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    received_at TEXT NOT NULL,        -- "YYYY-MM-DDTHH:MM:SS.mmmZ"
    transport TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (organization_id, received_at, id)
) WITHOUT ROWID;
INSERT INTO telemetry_raw_new (id, organization_id, device_id, received_at,
                               transport, payload)
    SELECT id, organization_id, device_id, received_at, transport, payload
    FROM telemetry_raw;
DROP TABLE telemetry_raw;
ALTER TABLE telemetry_raw_new RENAME TO telemetry_raw;

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
