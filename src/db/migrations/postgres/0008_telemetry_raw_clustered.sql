-- SQLite makes telemetry_raw one clustered B-tree here. PostgreSQL keeps
-- its heap and indexes (bulk inserts through unnest, and plain inserts
-- first, keep their cost low). Kept so that both stores share version
-- numbers.
SELECT 1;
