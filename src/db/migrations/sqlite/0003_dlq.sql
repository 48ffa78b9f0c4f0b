-- The dead-letter queue: messages a stage could not process, with the
-- stage, the reason and the message itself, until someone replays or
-- deletes them. One entry per (raw message, stage): a message that fails
-- again updates its entry (attempts, reason) instead of adding another.
CREATE TABLE dlq (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw_id TEXT,
    device_id TEXT,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX dlq_org ON dlq (organization_id, created_at);
CREATE UNIQUE INDEX dlq_raw_stage ON dlq (raw_id, stage) WHERE raw_id IS NOT NULL;
