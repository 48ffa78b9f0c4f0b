-- The dead-letter queue: messages a stage could not process, with the
-- stage, the reason and the message itself, until someone replays or
-- deletes them. One entry per (raw message, stage): a message that fails
-- again updates its entry (attempts, reason) instead of adding another.
CREATE TABLE dlq (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    stage text NOT NULL,
    reason text NOT NULL,
    raw_id uuid,
    device_id uuid,
    payload text NOT NULL,
    received_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX dlq_org ON dlq (organization_id, created_at);
CREATE UNIQUE INDEX dlq_raw_stage ON dlq (raw_id, stage) WHERE raw_id IS NOT NULL;
