-- Deferred rollups on PostgreSQL (docs/decisions/0003-tsdb.md, "Deferred
-- rollups"). A write of new points appends one row per (series, 5-minute
-- bucket) it touched, with that batch's aggregate, instead of upserting
-- three rollup tables; about twice a second a writer folds the rows into
-- ts_rollup_5m/_1h/_1d and deletes them in the same transaction (DELETE
-- ... RETURNING, one folder at a time by an advisory lock). Rollup queries
-- add the rows still here, so they stay exact.
--
-- No index: appends touch the last page; the fold and the queries read
-- the whole table, which holds well under a second of writes. Deleted
-- rows are many, so vacuum is asked for early (and writers vacuum it
-- themselves after their commits; see tsdb_postgres.c).
CREATE TABLE ts_rollup_log (
    series_id bigint NOT NULL,
    bucket timestamptz NOT NULL,      -- start of the UTC 5-minute bucket
    min double precision NOT NULL,
    max double precision NOT NULL,
    sum double precision NOT NULL,
    count bigint NOT NULL,
    last double precision NOT NULL,
    last_ts timestamptz NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0,
        autovacuum_vacuum_threshold = 10000,
        autovacuum_vacuum_insert_scale_factor = 0,
        autovacuum_vacuum_insert_threshold = 10000,
        autovacuum_vacuum_cost_delay = 0);
