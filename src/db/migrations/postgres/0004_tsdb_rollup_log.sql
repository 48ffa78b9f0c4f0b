-- Deferred rollups are SQLite's (ts_rollup_log there): PostgreSQL folds a
-- batch into its rollups in the one statement that writes the points.
-- Nothing to change; kept so that both stores share version numbers.
SELECT 1;
