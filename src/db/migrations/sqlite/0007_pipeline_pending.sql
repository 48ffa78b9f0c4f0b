-- Embedded (SQLite, in-process bus): ingest acknowledges a message once its
-- raw row is committed, and writes its points in a later, larger
-- transaction (src/pipeline/runner.c, "Deferred points"). Each raw commit
-- adds a row per organisation here with the receive-time range of its
-- messages; the points commit that covers them deletes the rows. Rows
-- left after a crash are the ranges whose points may be missing: at start
-- they are replayed from the raw store (idempotently) and deleted.
CREATE TABLE pipeline_pending (
    seq INTEGER PRIMARY KEY,
    organization_id TEXT NOT NULL,
    from_ms INTEGER NOT NULL,        -- receive times, epoch ms, inclusive
    to_ms INTEGER NOT NULL
);
