-- PostgreSQL partitions ts_points by month here; SQLite has nothing to
-- partition. Kept so that both stores share version numbers.
SELECT 1;
