-- The table the embedded SQLite writer keeps its deferred-points ranges in
-- (see the SQLite migration of the same number). PostgreSQL with the
-- in-process bus writes points in the acknowledging transaction, so the
-- table stays empty here; it exists so both stores share one schema.
CREATE TABLE pipeline_pending (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid NOT NULL,
    from_ms bigint NOT NULL,
    to_ms bigint NOT NULL
);
