-- PostgreSQL gets its deferred-rollup log here (SQLite has had one since
-- 0004). Nothing to change; kept so that both stores share version numbers.
SELECT 1;
