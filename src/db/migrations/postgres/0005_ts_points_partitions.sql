-- Points partitioned by month (native range partitioning) when TimescaleDB
-- did not make ts_points a hypertable: retention then drops whole months
-- instead of deleting row by row, and a month's index stays small. The
-- primary key (series_id, ts) contains the partition key, so the write
-- path's ON CONFLICT works unchanged.
--
-- argus_ts_partitions_ensure() creates the months from this one to two
-- ahead; Argus calls it at start and hourly. Points outside every month
-- (backfills older than the first partition) land in ts_points_default.
-- argus_ts_partitions_drop(cutoff) drops the months that end at or before
-- cutoff; the retention job then deletes what is left below it.

CREATE FUNCTION argus_ts_partition_create(month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    name text := 'ts_points_p' || to_char(month, 'YYYYMM');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF ts_points FOR VALUES FROM (%L) TO (%L)',
                   name, month::timestamp AT TIME ZONE 'UTC',
                   (month + INTERVAL '1 month') AT TIME ZONE 'UTC');
    RETURN true;
EXCEPTION WHEN check_violation THEN
    -- The default partition holds points of that month already (written
    -- before the month was made): they stay there, and so do later ones.
    RAISE WARNING 'ts_points: month % stays in ts_points_default: %', month, SQLERRM;
    RETURN false;
WHEN duplicate_table THEN
    RETURN false; -- another process made it at the same moment
END
$$;

CREATE FUNCTION argus_ts_partitions_ensure() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    made integer := 0;
    m date;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table
                   WHERE partrelid = to_regclass('ts_points')) THEN
        RETURN 0; -- a hypertable or a plain table: nothing to do
    END IF;
    FOR i IN 0..2 LOOP
        m := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i))::date;
        IF argus_ts_partition_create(m) THEN
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END
$$;

CREATE FUNCTION argus_ts_partitions_drop(cutoff timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    p record;
    n bigint := 0;
    rows bigint;
BEGIN
    FOR p IN
        SELECT c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                             'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = to_regclass('ts_points')
          AND c.relname ~ '^ts_points_p[0-9]{6}$'
    LOOP
        IF p.upper <= cutoff THEN
            EXECUTE format('SELECT count(*) FROM %I', p.relname) INTO rows;
            EXECUTE format('DROP TABLE %I', p.relname);
            n := n + rows;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

DO $$
DECLARE
    first date;
    m date;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = to_regclass('ts_points')) <> 'r' THEN
        RETURN;
    END IF;
    IF to_regclass('_timescaledb_catalog.hypertable') IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM _timescaledb_catalog.hypertable
                   WHERE table_name = 'ts_points') THEN
            RETURN; -- TimescaleDB chunks it already
        END IF;
    END IF;
    ALTER TABLE ts_points RENAME TO ts_points_plain;
    ALTER TABLE ts_points_plain RENAME CONSTRAINT ts_points_pkey TO ts_points_plain_pkey;
    CREATE TABLE ts_points (
        series_id bigint NOT NULL,
        ts timestamptz NOT NULL,
        value double precision,
        value_text TEXT,
        PRIMARY KEY (series_id, ts)
    ) PARTITION BY RANGE (ts);
    CREATE TABLE ts_points_default PARTITION OF ts_points DEFAULT;
    -- Months from the oldest point (or this month) to two ahead, made
    -- before the rows move so that none lands in the default partition.
    first := date_trunc('month', coalesce((SELECT min(ts) FROM ts_points_plain),
                                          now()) AT TIME ZONE 'UTC')::date;
    m := first;
    WHILE m <= (date_trunc('month', now() AT TIME ZONE 'UTC') + INTERVAL '2 months')::date LOOP
        PERFORM argus_ts_partition_create(m);
        m := (m + INTERVAL '1 month')::date;
    END LOOP;
    INSERT INTO ts_points SELECT series_id, ts, value, value_text FROM ts_points_plain;
    DROP TABLE ts_points_plain;
END
$$;
