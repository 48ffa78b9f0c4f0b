/*
 * The PostgreSQL backend. Times are timestamptz; the interface speaks
 * epoch milliseconds. The write path (points, rollup deltas, raw
 * messages) sends binary array parameters straight through libpq
 * (db_pg.h): one statement per batch inserts the points and appends the
 * batch's rollup deltas to ts_rollup_log, which writers fold into the
 * 5 min / 1 h / 1 day tables about twice a second, one at a time
 * (docs/decisions/0003-tsdb.md, "Deferred rollups (PostgreSQL)"). The
 * other statements go through db.h, converting times in SQL
 * (to_timestamp(ms / 1000.0) is exact to the microsecond, extract(epoch
 * ...) returns numeric); rollup queries merge the log's rows.
 */
#include "tsdb_internal.h"

#include "db_pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_IN "to_timestamp(? / 1000.0)"
#define TS_OUT(col) "(extract(epoch FROM " col ") * 1000)::int8"
#define EPOCH "TIMESTAMPTZ '1970-01-01 00:00:00+00'"

/* ------------------------------------------------------------ bulk SQL
 * These go straight to libpq with binary array parameters ($n, typed by
 * OID), not through db.h: no number is printed or parsed on either side.
 * Times travel as timestamptz (microseconds since 2000-01-01). */

/* The rollup merge of a fold: LEAST/GREATEST/sums, and the last value of
 * the greater last_ts (on a tie the incoming one, written later). */
#define ROLLUP_MERGE                                                         \
    " ON CONFLICT (series_id, bucket) DO UPDATE SET "                        \
    "min = LEAST(r.min, EXCLUDED.min), max = GREATEST(r.max, EXCLUDED.max), "\
    "sum = r.sum + EXCLUDED.sum, count = r.count + EXCLUDED.count, "         \
    "last = CASE WHEN EXCLUDED.last_ts >= r.last_ts THEN EXCLUDED.last "     \
    "ELSE r.last END, last_ts = GREATEST(r.last_ts, EXCLUDED.last_ts)"
#define LOG_COLS "series_id, bucket, min, max, sum, count, last, last_ts"

/* A batch: the points ($1..$4) inserted unless stored, and the batch's
 * rollup deltas ($5..$12, computed by the caller assuming every point is
 * new) appended to the log only if every one of the $13 points was. The
 * row says how many were new and, when not all, which. */
static const char PG_POINTS_BULK[] =
    "WITH ins AS (INSERT INTO ts_points (series_id, ts, value, value_text) "
    "SELECT * FROM unnest($1::int8[], $2::timestamptz[], $3::float8[], "
    "$4::text[]) ON CONFLICT (series_id, ts) DO NOTHING "
    "RETURNING series_id, ts), "
    "n AS (SELECT count(*) AS n FROM ins), "
    "lg AS (INSERT INTO ts_rollup_log (" LOG_COLS ") SELECT * FROM "
    "unnest($5::int8[], $6::timestamptz[], $7::float8[], $8::float8[], "
    "$9::float8[], $10::int8[], $11::float8[], $12::timestamptz[]) "
    "WHERE (SELECT n FROM n) = $13) "
    "SELECT n, CASE WHEN n < $13 THEN (SELECT array_agg(series_id) FROM ins) "
    "END, CASE WHEN n < $13 THEN (SELECT array_agg(ts) FROM ins) END FROM n";
/* It keeps the keys it inserted (RETURNING) in a tuplestore, which past
 * work_mem (4 MB by default) spills to a temporary file: a batch of more
 * points raises work_mem for its transaction. */
#define BULK_WORK_MEM_POINTS 20000
/* The same without ON CONFLICT (see PLAIN_MIN): every point new. */
static const char PG_POINTS_PLAIN[] =
    "WITH ins AS (INSERT INTO ts_points (series_id, ts, value, value_text) "
    "SELECT * FROM unnest($1::int8[], $2::timestamptz[], $3::float8[], "
    "$4::text[])) "
    "INSERT INTO ts_rollup_log (" LOG_COLS ") SELECT * FROM "
    "unnest($5::int8[], $6::timestamptz[], $7::float8[], $8::float8[], "
    "$9::float8[], $10::int8[], $11::float8[], $12::timestamptz[])";

/* The deltas of the new points when a batch met stored ones. */
static const char PG_LOG_INSERT[] =
    "INSERT INTO ts_rollup_log (" LOG_COLS ") SELECT * FROM "
    "unnest($1::int8[], $2::timestamptz[], $3::float8[], $4::float8[], "
    "$5::float8[], $6::int8[], $7::float8[], $8::timestamptz[])";

/* Only when some points of a batch were there already: (series, ts) of
 * each stored point whose value differs from the batch's (the new points
 * now hold the batch's values, so they are not among them). The lookup is
 * a LATERAL ... LIMIT 1 so that it stays one index probe per input row: as
 * a plain join the planner hashes the whole table. */
static const char PG_POINTS_CHANGED[] =
    "SELECT i.series_id, i.ts FROM unnest($1::int8[], $2::timestamptz[], "
    "$3::float8[], $4::text[]) AS i(series_id, ts, value, value_text) "
    "CROSS JOIN LATERAL (SELECT p.value, p.value_text FROM ts_points p "
    "WHERE p.series_id = i.series_id AND p.ts = i.ts LIMIT 1) p "
    "WHERE p.value IS DISTINCT FROM i.value "
    "OR p.value_text IS DISTINCT FROM i.value_text";

#define PG_RAW_ROWS                                                          \
    "INSERT INTO telemetry_raw (id, organization_id, device_id, "            \
    "received_at, transport, payload) SELECT * FROM unnest($1::uuid[], "     \
    "$2::uuid[], $3::uuid[], $4::timestamptz[], $5::text[], $6::text[])"
static const char PG_RAW_INSERT[] = PG_RAW_ROWS " ON CONFLICT (id) DO NOTHING";
static const char PG_RAW_PLAIN[] = PG_RAW_ROWS;

/* Plain first: a batch of at least PLAIN_MIN rows is inserted without ON
 * CONFLICT inside a savepoint, and only when that meets a row already
 * stored (a redelivery or replay: unique_violation) again with it. ON
 * CONFLICT costs every row an index probe before the insert and a
 * speculative insertion, a fifth of the server's CPU on this path. */
#define PLAIN_MIN 256

/* The fold: takes the log rows this transaction can see (DELETE ...
 * RETURNING: a row is folded by one transaction only, whoever else tries),
 * merges them per (series, 5-minute bucket) and folds those into the three
 * tables, each upserted in key order. One folder at a time: FOLD_TRY skips
 * when another transaction holds the lock (the periodic fold), FOLD_WAIT
 * waits for it (flush, rebuilds). Ties of last_ts cannot occur among new
 * points (one point per series and time). */
#define FOLD_LOCK_KEY "7021788523169409384" /* "argusmig" + 1 */
#define FOLD(lock)                                                           \
    "WITH d AS (DELETE FROM ts_rollup_log WHERE (SELECT " lock ") "          \
    "RETURNING " LOG_COLS "), "                                              \
    "f AS (SELECT series_id, bucket, min(min) AS mn, max(max) AS mx, "       \
    "sum(sum) AS sm, sum(count)::int8 AS n, "                                \
    "(array_agg(last ORDER BY last_ts DESC))[1] AS lv, max(last_ts) AS lts " \
    "FROM d GROUP BY series_id, bucket), "                                   \
    "r5 AS (INSERT INTO ts_rollup_5m AS r (" LOG_COLS ") SELECT * FROM f "   \
    "ORDER BY series_id, bucket" ROLLUP_MERGE "), "                          \
    "r1h AS (" FOLD_UP("ts_rollup_1h", "1 hour") "), "                       \
    "r1d AS (" FOLD_UP("ts_rollup_1d", "1 day") ") "                         \
    "SELECT count(*) FROM d"
#define FOLD_UP(table, width)                                                \
    "INSERT INTO " table " AS r (" LOG_COLS ") SELECT series_id, "           \
    "date_bin(INTERVAL '" width "', bucket, " EPOCH ") AS b, min(mn), "      \
    "max(mx), sum(sm), sum(n)::int8, (array_agg(lv ORDER BY lts DESC))[1], "\
    "max(lts) FROM f GROUP BY series_id, b ORDER BY series_id, b"            \
    ROLLUP_MERGE
static const char PG_FOLD_TRY[] =
    FOLD("pg_try_advisory_xact_lock(" FOLD_LOCK_KEY ")");
static const char PG_FOLD_WAIT[] =
    FOLD("true FROM pg_advisory_xact_lock(" FOLD_LOCK_KEY ")");

#define RECOMPUTE(table, width)                                              \
    "INSERT INTO " table " (series_id, bucket, min, max, sum, count, last, " \
    "last_ts) SELECT l.series_id, date_bin(INTERVAL '" width "', l.ts, "     \
    EPOCH "), a.mn, a.mx, a.sm, a.n, l.value, l.ts FROM "                    \
    "(SELECT min(value) AS mn, max(value) AS mx, sum(value) AS sm, "         \
    "count(*) AS n FROM ts_points WHERE series_id = ? AND ts >= " TS_IN      \
    " AND ts < " TS_IN " AND value IS NOT NULL) a JOIN "                     \
    "(SELECT series_id, ts, value FROM ts_points WHERE series_id = ? "       \
    "AND ts >= " TS_IN " AND ts < " TS_IN " AND value IS NOT NULL "          \
    "ORDER BY ts DESC LIMIT 1) l ON true"

/* Every metric of an entity: merged by time, then metric. */
#define QUERY_POINTS                                                         \
    "SELECT s.metric, " TS_OUT("p.ts") ", s.value_type, p.value, "           \
    "p.value_text FROM ts_series s JOIN ts_points p ON p.series_id = s.id "  \
    "WHERE s.organization_id = ? AND s.entity_type = ? AND s.entity_id = ? " \
    "AND p.ts >= " TS_IN " AND p.ts < " TS_IN                                \
    " ORDER BY p.ts DESC, s.metric LIMIT ?"

/* One metric: the series id comes first, as a scalar, so that the rows are
 * read newest first straight from the key and the limit stops the scan
 * (as a join, the planner sorts the whole range). */
#define SERIES_ID                                                            \
    "(SELECT id FROM ts_series WHERE organization_id = ? "                   \
    "AND entity_type = ? AND entity_id = ? AND metric = ?)"
#define QUERY_POINTS_METRIC                                                  \
    "SELECT s.metric, " TS_OUT("p.ts") ", s.value_type, p.value, "           \
    "p.value_text FROM ts_points p JOIN ts_series s ON s.id = p.series_id "  \
    "WHERE p.series_id = " SERIES_ID " AND p.ts >= " TS_IN                   \
    " AND p.ts < " TS_IN " ORDER BY p.ts DESC LIMIT ?"

/* Rollup rows: the folded rows of the table plus the log's rows not folded
 * yet (re-bucketed to the table's width), merged per (series, bucket): min
 * of mins, max of maxes, sums, and the last value of the greatest last_ts
 * (on a tie the log's, written later). The parameters come once, in the
 * order tsdb_query binds them, into q; the log is small (under a second
 * of writes), the table is read through its key. */
#define ROLLUP_MERGED(table, width, metric_param, metric_cond)               \
    "WITH q AS (SELECT ?::uuid AS org, ?::text AS et, ?::uuid AS ent, "      \
    metric_param TS_IN " AS lo, " TS_IN " AS hi), "                          \
    "ids AS (SELECT s.id FROM ts_series s, q WHERE s.organization_id = "     \
    "q.org AND s.entity_type = q.et AND s.entity_id = q.ent" metric_cond     \
    "), u AS (SELECT r.series_id AS sid, r.bucket AS b, r.min AS mn, "       \
    "r.max AS mx, r.sum AS sm, r.count AS n, r.last AS lv, r.last_ts AS lts, "\
    "0 AS src FROM " table " r, q WHERE r.series_id IN (SELECT id FROM ids) "\
    "AND r.bucket >= q.lo AND r.bucket < q.hi UNION ALL "                    \
    "SELECT l.series_id, date_bin(INTERVAL '" width "', l.bucket, " EPOCH    \
    "), l.min, l.max, l.sum, l.count, l.last, l.last_ts, 1 "                 \
    "FROM ts_rollup_log l, q WHERE l.series_id IN (SELECT id FROM ids) "     \
    "AND l.bucket >= date_bin(INTERVAL '" width "', q.lo, " EPOCH ") "       \
    "AND l.bucket < q.hi), "                                                 \
    "m AS (SELECT sid, b, min(mn) AS mn, max(mx) AS mx, sum(sm) AS sm, "     \
    "sum(n)::int8 AS n, (array_agg(lv ORDER BY lts DESC, src DESC))[1] "     \
    "AS lv FROM u WHERE b >= (SELECT lo FROM q) GROUP BY sid, b) "           \
    "SELECT s.metric, " TS_OUT("m.b") ", s.value_type, m.mn, m.mx, m.sm, "   \
    "m.n, m.lv FROM m JOIN ts_series s ON s.id = m.sid "
#define QUERY_ROLLUP(table, width)                                           \
    ROLLUP_MERGED(table, width, "", "")                                      \
    "ORDER BY m.b DESC, s.metric LIMIT ?"
#define QUERY_ROLLUP_METRIC(table, width)                                    \
    ROLLUP_MERGED(table, width, "?::text AS metric, ",                       \
                  " AND s.metric = q.metric") "ORDER BY m.b DESC LIMIT ?"

static const char *const sql[TSDB_SQL_COUNT] = {
    [TSDB_SQL_SERIES_GET] =
        "SELECT id FROM ts_series WHERE organization_id = ? "
        "AND entity_type = ? AND entity_id = ? AND metric = ?",
    [TSDB_SQL_SERIES_ADD] =
        "INSERT INTO ts_series (organization_id, entity_type, entity_id, "
        "metric, value_type) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING RETURNING id",
    [TSDB_SQL_RAW_GATE_OPEN] =
        "SELECT set_config('argus.retention_before', ?, true)",
    [TSDB_SQL_RAW_DELETE] = "DELETE FROM telemetry_raw WHERE received_at < ?",
    [TSDB_SQL_RAW_GATE_CLOSE] =
        "SELECT set_config('argus.retention_before', '', true)",
    [TSDB_SQL_POINTS_DELETE] = "DELETE FROM ts_points WHERE ts < " TS_IN,
    [TSDB_SQL_POINT_UPDATE] = "UPDATE ts_points SET value = ?, "
                              "value_text = ? WHERE series_id = ? AND ts = "
                              TS_IN,
    [TSDB_SQL_RECOMPUTE_DEL_5M] = "DELETE FROM ts_rollup_5m WHERE series_id "
                                  "= ? AND bucket = " TS_IN,
    [TSDB_SQL_RECOMPUTE_DEL_1H] = "DELETE FROM ts_rollup_1h WHERE series_id "
                                  "= ? AND bucket = " TS_IN,
    [TSDB_SQL_RECOMPUTE_DEL_1D] = "DELETE FROM ts_rollup_1d WHERE series_id "
                                  "= ? AND bucket = " TS_IN,
    [TSDB_SQL_RECOMPUTE_5M] = RECOMPUTE("ts_rollup_5m", "5 minutes"),
    [TSDB_SQL_RECOMPUTE_1H] = RECOMPUTE("ts_rollup_1h", "1 hour"),
    [TSDB_SQL_RECOMPUTE_1D] = RECOMPUTE("ts_rollup_1d", "1 day"),
    [TSDB_SQL_QUERY_POINTS] = QUERY_POINTS,
    [TSDB_SQL_QUERY_POINTS_METRIC] = QUERY_POINTS_METRIC,
    [TSDB_SQL_QUERY_5M] = QUERY_ROLLUP("ts_rollup_5m", "5 minutes"),
    [TSDB_SQL_QUERY_5M_METRIC] = QUERY_ROLLUP_METRIC("ts_rollup_5m", "5 minutes"),
    [TSDB_SQL_QUERY_1H] = QUERY_ROLLUP("ts_rollup_1h", "1 hour"),
    [TSDB_SQL_QUERY_1H_METRIC] = QUERY_ROLLUP_METRIC("ts_rollup_1h", "1 hour"),
    [TSDB_SQL_QUERY_1D] = QUERY_ROLLUP("ts_rollup_1d", "1 day"),
    [TSDB_SQL_QUERY_1D_METRIC] = QUERY_ROLLUP_METRIC("ts_rollup_1d", "1 day"),
    [TSDB_SQL_LATEST] =
        "SELECT s.metric, " TS_OUT("p.ts") ", s.value_type, p.value, "
        "p.value_text FROM ts_series s JOIN ts_points p "
        "ON p.series_id = s.id AND p.ts = (SELECT max(ts) FROM ts_points "
        "WHERE series_id = s.id) WHERE s.organization_id = ? "
        "AND s.entity_type = ? AND s.entity_id = ? ORDER BY s.metric",
};

/* -------------------------------------------------- binary array params
 * The binary form of a one-dimensional array (array_send): ndim, has-nulls
 * flag, element type, then length and lower bound of the dimension, then
 * each element as its length (-1: NULL) and its bytes, all big-endian. */

enum {
    OID_INT8 = 20,
    OID_TEXT = 25,
    OID_FLOAT8 = 701,
    OID_TIMESTAMPTZ = 1184,
    OID_UUID = 2950,
    OID_INT8_ARRAY = 1016,
    OID_TEXT_ARRAY = 1009,
    OID_FLOAT8_ARRAY = 1022,
    OID_TIMESTAMPTZ_ARRAY = 1185,
    OID_UUID_ARRAY = 2951,
};

#define ARR_HEADER 20
/* Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define PG_EPOCH_US INT64_C(946684800000000)
/* Epoch milliseconds a timestamptz can hold without overflow on the way
 * (PostgreSQL's own range, years 4713 BC to 294276 AD, is narrower and is
 * checked by the server). */
#define MS_LIMIT (INT64_MAX / 1000 - PG_EPOCH_US / 1000)

static inline void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* An array being built: its buffer, element count and NULLs. */
struct arr {
    struct core_buf *b;
    uint32_t n;
    bool nulls;
};

static void arr_open(struct arr *a, struct core_buf *b, uint32_t elem)
{
    a->b = b;
    a->n = 0;
    a->nulls = false;
    core_buf_reset(b);
    unsigned char h[ARR_HEADER];
    put32(h, 1);
    put32(h + 4, 0);
    put32(h + 8, elem);
    put32(h + 12, 0);
    put32(h + 16, 1);
    core_buf_append(b, h, sizeof h);
}

static void arr_raw(struct arr *a, const void *v, uint32_t len)
{
    unsigned char l[4];
    put32(l, len);
    core_buf_append(a->b, l, 4);
    core_buf_append(a->b, v, len);
    a->n++;
}

static void arr_int(struct arr *a, int64_t v)
{
    unsigned char e[12];
    put32(e, 8);
    put32(e + 4, (uint32_t)((uint64_t)v >> 32));
    put32(e + 8, (uint32_t)v);
    core_buf_append(a->b, e, sizeof e);
    a->n++;
}

static void arr_double(struct arr *a, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    arr_int(a, (int64_t)u);
}

/* Epoch ms (within MS_LIMIT) as a timestamptz. */
static void arr_time(struct arr *a, int64_t ms)
{
    arr_int(a, ms * 1000 - PG_EPOCH_US);
}

static void arr_null(struct arr *a)
{
    unsigned char l[4];
    put32(l, UINT32_MAX);
    core_buf_append(a->b, l, 4);
    a->n++;
    a->nulls = true;
}

static void arr_text(struct arr *a, const char *s, size_t len)
{
    arr_raw(a, s, (uint32_t)len);
}

/* A UUID (checked by the caller) as its 16 bytes. */
static void arr_uuid(struct arr *a, const char *s)
{
    unsigned char u[16];
    int k = 0;
    for (int i = 0; s[i] && k < 32; i++) {
        int c = (unsigned char)s[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0)
            continue;
        if (k % 2 == 0)
            u[k / 2] = (unsigned char)(v << 4);
        else
            u[k / 2] |= (unsigned char)v;
        k++;
    }
    arr_raw(a, u, sizeof u);
}

/* Writes the count and the NULL flag into the header. */
static int arr_close(struct arr *a)
{
    if (a->b->oom)
        return CORE_ENOMEM;
    unsigned char *h = (unsigned char *)a->b->data;
    put32(h + 4, a->nulls);
    put32(h + 12, a->n);
    return CORE_OK;
}

/* A binary int8[] or timestamptz[] of a result: its elements' count and
 * where they start; false unless it is one-dimensional without NULLs. */
static bool arr_read(const unsigned char *p, int len, uint32_t *n,
                     const unsigned char **elems)
{
    if (len < 12 || get32(p) != 1 || get32(p + 4) != 0 || len < ARR_HEADER)
        return false;
    *n = get32(p + 12);
    *elems = p + ARR_HEADER;
    return (uint64_t)len == ARR_HEADER + (uint64_t)*n * 12;
}

/* ------------------------------------------------------------- execution */

/* Sends stmt on tc's connection with narrays binary parameters taken from
 * tc->arrays[first..) (types[i]) plus, when extra is set, one int8 after
 * them; results in binary. The result is unchecked (NULL without a
 * connection). */
static PGresult *pg_exec(struct tsdb__conn *tc, const char *stmt, int first,
                         int narrays, const Oid *types, const int64_t *extra)
{
    PGconn *h = db__pg_handle(tc->c);
    if (!h)
        return NULL;
    const char *values[16];
    int lengths[16], formats[16];
    Oid oids[16];
    unsigned char ext[8];
    int np = 0;
    for (int i = 0; i < narrays; i++, np++) {
        values[np] = tc->arrays[first + i].data;
        lengths[np] = (int)tc->arrays[first + i].len;
        formats[np] = 1;
        oids[np] = types[i];
    }
    if (extra) {
        put32(ext, (uint32_t)((uint64_t)*extra >> 32));
        put32(ext + 4, (uint32_t)*extra);
        values[np] = (const char *)ext;
        lengths[np] = 8;
        formats[np] = 1;
        oids[np] = OID_INT8;
        np++;
    }
    return PQexecParams(h, stmt, np, oids, values, lengths, formats, 1);
}

/* pg_exec, checked: *out (may be NULL) receives a good result, which the
 * caller clears. */
static int pg_run(struct tsdb__conn *tc, const char *stmt, int first,
                  int narrays, const Oid *types, const int64_t *extra,
                  PGresult **out)
{
    if (out)
        *out = NULL;
    if (!db__pg_handle(tc->c))
        return CORE_EINTERNAL;
    PGresult *res = pg_exec(tc, stmt, first, narrays, types, extra);
    int rc = db__pg_check(tc->c, res);
    if (rc == CORE_OK && out)
        *out = res;
    else
        PQclear(res);
    return rc;
}

/* Runs stmt (arrays as pg_run) in a savepoint without logging a
 * unique_violation: *dup says whether it met one, and then it was rolled
 * back to the savepoint, the transaction still usable. */
static int pg_run_plain(struct tsdb__conn *tc, const char *stmt,
                        int narrays, const Oid *types, bool *dup)
{
    *dup = false;
    int rc = pg_run(tc, "SAVEPOINT tsdb_plain", 0, 0, NULL, NULL, NULL);
    if (rc)
        return rc;
    PGresult *res = pg_exec(tc, stmt, 0, narrays, types, NULL);
    const char *st = PQresultStatus(res) == PGRES_FATAL_ERROR
                         ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                         : NULL;
    if (st && strcmp(st, "23505") == 0) {
        PQclear(res);
        *dup = true;
        return pg_run(tc, "ROLLBACK TO SAVEPOINT tsdb_plain", 0, 0, NULL,
                      NULL, NULL);
    }
    rc = db__pg_check(tc->c, res);
    PQclear(res);
    if (rc == CORE_OK)
        rc = pg_run(tc, "RELEASE SAVEPOINT tsdb_plain", 0, 0, NULL, NULL, NULL);
    return rc;
}

/* ------------------------------------------------------------- writes */

static int pg_raw_append(struct tsdb__conn *tc, const struct tsdb_raw *msgs,
                         size_t n)
{
    static const Oid types[6] = {OID_UUID_ARRAY, OID_UUID_ARRAY,
                                 OID_UUID_ARRAY, OID_TIMESTAMPTZ_ARRAY,
                                 OID_TEXT_ARRAY, OID_TEXT_ARRAY};
    static const uint32_t elems[6] = {OID_UUID, OID_UUID, OID_UUID,
                                      OID_TIMESTAMPTZ, OID_TEXT, OID_TEXT};
    struct arr a[6];
    for (int k = 0; k < 6; k++)
        arr_open(&a[k], &tc->arrays[k], elems[k]);
    for (size_t i = 0; i < n; i++) {
        const struct tsdb_raw *m = &msgs[i];
        if (m->received_ms > MS_LIMIT || m->received_ms < -MS_LIMIT)
            return CORE_EINVAL;
        arr_uuid(&a[0], m->id);
        arr_uuid(&a[1], m->org_id);
        arr_uuid(&a[2], m->device_id);
        arr_time(&a[3], m->received_ms);
        arr_text(&a[4], m->transport, strlen(m->transport));
        arr_text(&a[5], m->payload, m->payload_len);
    }
    int rc = CORE_OK;
    for (int k = 0; k < 6 && rc == CORE_OK; k++)
        rc = arr_close(&a[k]);
    bool dup = true;
    if (rc == CORE_OK && n >= PLAIN_MIN)
        rc = pg_run_plain(tc, PG_RAW_PLAIN, 6, types, &dup);
    if (rc == CORE_OK && dup)
        rc = pg_run(tc, PG_RAW_INSERT, 0, 6, types, NULL, NULL);
    return rc;
}

/* The item of (series, ts) in items sorted by series and time. */
static struct tsdb__item *item_find(struct tsdb__item *items, size_t n,
                                    int64_t series, int64_t ts)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct tsdb__item *it = &items[mid];
        if (it->series == series && it->ts == ts)
            return it;
        if (it->series < series || (it->series == series && it->ts < ts))
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* A stored timestamptz back to epoch ms (points are whole ms). */
static int64_t time_ms(uint64_t us)
{
    return ((int64_t)us + PG_EPOCH_US) / 1000;
}

static int update_point(struct tsdb__conn *tc, const struct tsdb__item *it)
{
    struct db_stmt *s = NULL;
    int rc = tsdb__stmt(tc, TSDB_SQL_POINT_UPDATE, &s);
    if (rc == CORE_OK)
        rc = tsdb__bind_value(s, 1, it);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, 3, it->series);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, 4, it->ts);
    if (rc == CORE_OK)
        rc = tsdb__run(tc, s);
    return rc;
}

static const Oid point_types[4] = {OID_INT8_ARRAY, OID_TIMESTAMPTZ_ARRAY,
                                   OID_FLOAT8_ARRAY, OID_TEXT_ARRAY};
static const Oid log_types[8] = {
    OID_INT8_ARRAY,   OID_TIMESTAMPTZ_ARRAY, OID_FLOAT8_ARRAY,
    OID_FLOAT8_ARRAY, OID_FLOAT8_ARRAY,      OID_INT8_ARRAY,
    OID_FLOAT8_ARRAY, OID_TIMESTAMPTZ_ARRAY};

/* The rollup deltas of items[0..n) (all of them, or only the NEW ones) as
 * eight arrays from tc->arrays[first]: one row per (series, 5-minute
 * bucket) of numeric points. Items are sorted by series and time, so a
 * bucket's points are a run and its last is the run's last. */
static int log_arrays(struct tsdb__conn *tc, int first,
                      const struct tsdb__item *items, size_t n, bool only_new,
                      size_t *rows)
{
    static const uint32_t elems[8] = {OID_INT8,   OID_TIMESTAMPTZ, OID_FLOAT8,
                                      OID_FLOAT8, OID_FLOAT8,      OID_INT8,
                                      OID_FLOAT8, OID_TIMESTAMPTZ};
    struct arr a[8];
    for (int k = 0; k < 8; k++)
        arr_open(&a[k], &tc->arrays[first + k], elems[k]);
    const int64_t w = tsdb__res_ms[0];
    *rows = 0;
    for (size_t i = 0; i < n;) {
        const struct tsdb__item *it = &items[i];
        if (it->str || (only_new && it->fate != TSDB_FATE_NEW)) {
            i++;
            continue;
        }
        int64_t b = tsdb__bucket(it->ts, w);
        double mn = it->num, mx = it->num, sum = 0;
        int64_t count = 0;
        const struct tsdb__item *last = it;
        for (; i < n && items[i].series == it->series &&
               items[i].ts < b + w;
             i++) {
            const struct tsdb__item *x = &items[i];
            if (x->str || (only_new && x->fate != TSDB_FATE_NEW))
                continue;
            mn = x->num < mn ? x->num : mn;
            mx = x->num > mx ? x->num : mx;
            sum += x->num;
            count++;
            last = x;
        }
        arr_int(&a[0], it->series);
        arr_time(&a[1], b);
        arr_double(&a[2], mn);
        arr_double(&a[3], mx);
        arr_double(&a[4], sum);
        arr_int(&a[5], count);
        arr_double(&a[6], last->num);
        arr_time(&a[7], last->ts);
        (*rows)++;
    }
    int rc = CORE_OK;
    for (int k = 0; k < 8 && rc == CORE_OK; k++)
        rc = arr_close(&a[k]);
    return rc;
}

/* Marks the items a result's arrays (series, ts) name as NEW. */
static int mark_new(struct tsdb__item *items, size_t n, PGresult *res,
                    size_t *fresh)
{
    if (PQgetisnull(res, 0, 1) || PQgetisnull(res, 0, 2))
        return CORE_OK; /* nothing new */
    uint32_t ns, nt;
    const unsigned char *ps, *pt;
    if (!arr_read((const unsigned char *)PQgetvalue(res, 0, 1),
                  PQgetlength(res, 0, 1), &ns, &ps) ||
        !arr_read((const unsigned char *)PQgetvalue(res, 0, 2),
                  PQgetlength(res, 0, 2), &nt, &pt) ||
        ns != nt)
        return CORE_EINTERNAL;
    for (uint32_t i = 0; i < ns; i++) {
        struct tsdb__item *it =
            item_find(items, n, (int64_t)get64(ps + 12 * i + 4),
                      time_ms(get64(pt + 12 * i + 4)));
        if (!it)
            return CORE_EINTERNAL;
        it->fate = TSDB_FATE_NEW;
        (*fresh)++;
    }
    return CORE_OK;
}

/* The stored points a batch changes: marks them CHANGED. */
static int mark_changed(struct tsdb__item *items, size_t n, PGresult *res,
                        size_t *changed)
{
    for (int r = 0; r < PQntuples(res); r++) {
        if (PQgetlength(res, r, 0) != 8 || PQgetlength(res, r, 1) != 8)
            return CORE_EINTERNAL;
        struct tsdb__item *it = item_find(
            items, n, (int64_t)get64((const unsigned char *)PQgetvalue(res, r, 0)),
            time_ms(get64((const unsigned char *)PQgetvalue(res, r, 1))));
        if (!it)
            return CORE_EINTERNAL;
        if (it->fate != TSDB_FATE_NEW) {
            it->fate = TSDB_FATE_CHANGED;
            (*changed)++;
        }
    }
    return CORE_OK;
}

/* Deferred rollups: how often a writer folds the log (about twice a
 * second, or after this many rows of its own), and after how many folded
 * rows it vacuums the log (autovacuum looks once a minute, by which time a
 * busy log has grown by millions of dead rows that every fold would scan). */
#define FOLD_MS 500
#define FOLD_ROWS 50000
#define VACUUM_ROWS 200000

static int fold(struct tsdb__conn *tc, bool wait)
{
    PGresult *res = NULL;
    int rc = pg_run(tc, wait ? PG_FOLD_WAIT : PG_FOLD_TRY, 0, 0, NULL, NULL,
                    &res);
    if (rc == CORE_OK) {
        if (PQntuples(res) == 1 && PQgetlength(res, 0, 0) == 8)
            tc->log_deleted +=
                (int64_t)get64((const unsigned char *)PQgetvalue(res, 0, 0));
        tc->log_rows = 0;
        tc->log_since_ms = 0;
    }
    PQclear(res);
    return rc;
}

static int pg_rollup_fold(struct tsdb__conn *tc)
{
    return fold(tc, true);
}

static int pg_fold_background(struct tsdb__conn *tc)
{
    return fold(tc, false);
}

/* A batch is one statement when every point is new (the steady state);
 * one that meets stored points (replay, redelivery) learns which were new,
 * logs their deltas, and asks which stored ones it changes. A change is
 * rebuilt from the points (tsdb.c) once the log is folded, and that is
 * exact only if no other transaction can add to the log meanwhile: its
 * points would be in the rebuild and its deltas still in the log. So such
 * a write first takes a lock on the log that waits for the transactions
 * writing to it and keeps new ones out until it ends (rare: a redelivery
 * with other values), inside a transaction of its own if the caller has
 * none (points_finish ends it). */
static int pg_points_apply(struct tsdb__conn *tc, struct tsdb__item *items,
                           size_t n)
{
    struct arr a[4];
    arr_open(&a[0], &tc->arrays[0], OID_INT8);
    arr_open(&a[1], &tc->arrays[1], OID_TIMESTAMPTZ);
    arr_open(&a[2], &tc->arrays[2], OID_FLOAT8);
    arr_open(&a[3], &tc->arrays[3], OID_TEXT);
    for (size_t i = 0; i < n; i++) {
        const struct tsdb__item *it = &items[i];
        if (it->ts > MS_LIMIT || it->ts < -MS_LIMIT)
            return CORE_EINVAL;
        arr_int(&a[0], it->series);
        arr_time(&a[1], it->ts);
        if (it->str) {
            arr_null(&a[2]);
            arr_text(&a[3], it->str, strlen(it->str));
        } else {
            arr_double(&a[2], it->num);
            arr_null(&a[3]);
        }
    }
    int rc = CORE_OK;
    for (int k = 0; k < 4 && rc == CORE_OK; k++)
        rc = arr_close(&a[k]);
    size_t rows = 0, fresh = 0, changed = 0;
    if (rc == CORE_OK)
        rc = log_arrays(tc, 4, items, n, false, &rows);
    PGresult *res = NULL;
    int64_t total = (int64_t)n;
    static const Oid bulk_types[12] = {
        OID_INT8_ARRAY,   OID_TIMESTAMPTZ_ARRAY, OID_FLOAT8_ARRAY,
        OID_TEXT_ARRAY,   OID_INT8_ARRAY,        OID_TIMESTAMPTZ_ARRAY,
        OID_FLOAT8_ARRAY, OID_FLOAT8_ARRAY,      OID_FLOAT8_ARRAY,
        OID_INT8_ARRAY,   OID_FLOAT8_ARRAY,      OID_TIMESTAMPTZ_ARRAY};
    bool dup = true;
    if (rc == CORE_OK && n >= PLAIN_MIN)
        rc = pg_run_plain(tc, PG_POINTS_PLAIN, 12, bulk_types, &dup);
    if (rc == CORE_OK && dup && n > BULK_WORK_MEM_POINTS)
        rc = pg_run(tc, "SET LOCAL work_mem = '64MB'", 0, 0, NULL, NULL, NULL);
    if (rc == CORE_OK && dup)
        rc = pg_run(tc, PG_POINTS_BULK, 0, 12, bulk_types, &total, &res);
    if (rc == CORE_OK && dup &&
        (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != 8))
        rc = CORE_EINTERNAL;
    if (rc == CORE_OK &&
        (!dup ||
         (int64_t)get64((const unsigned char *)PQgetvalue(res, 0, 0)) == total)) {
        for (size_t i = 0; i < n; i++)
            items[i].fate = TSDB_FATE_NEW;
        fresh = n;
    } else if (rc == CORE_OK) {
        rc = mark_new(items, n, res, &fresh);
    }
    PQclear(res);
    res = NULL;
    if (rc == CORE_OK && fresh < n) {
        rc = pg_run(tc, PG_POINTS_CHANGED, 0, 4, point_types, NULL, &res);
        if (rc == CORE_OK)
            rc = mark_changed(items, n, res, &changed);
        PQclear(res);
        rows = 0;
        /* The statement logged nothing: the deltas of the new ones. */
        if (rc == CORE_OK && fresh > 0)
            rc = log_arrays(tc, 4, items, n, true, &rows);
        if (rc == CORE_OK && rows > 0)
            rc = pg_run(tc, PG_LOG_INSERT, 4, 8, log_types, NULL, NULL);
    }
    if (rc != CORE_OK)
        return rc;
    if (rows > 0) {
        if (tc->log_rows == 0)
            tc->log_since_ms = core_time_now_ms();
        tc->log_rows += rows;
    }
    if (changed > 0) {
        if (PQtransactionStatus(db__pg_handle(tc->c)) == PQTRANS_IDLE) {
            rc = db_begin(tc->c);
            tc->own_txn = rc == CORE_OK;
        }
        if (rc == CORE_OK)
            rc = db_exec(tc->c, "LOCK TABLE ts_rollup_log IN SHARE ROW "
                                "EXCLUSIVE MODE");
        for (size_t i = 0; i < n && rc == CORE_OK; i++) {
            if (items[i].fate == TSDB_FATE_CHANGED)
                rc = update_point(tc, &items[i]);
        }
        return rc; /* tsdb.c folds and rebuilds */
    }
    if (!tc->fold_elsewhere && tc->log_rows > 0 &&
        (tc->log_rows >= FOLD_ROWS ||
         core_time_now_ms() - tc->log_since_ms >= FOLD_MS))
        rc = fold(tc, false);
    return rc;
}

static int pg_points_finish(struct tsdb__conn *tc, int rc)
{
    if (!tc->own_txn)
        return rc;
    tc->own_txn = false;
    if (rc == CORE_OK)
        return db_commit(tc->c);
    db_rollback(tc->c);
    return rc;
}

/* Outside any transaction, after a commit: vacuums the log once this
 * connection's folds have deleted VACUUM_ROWS rows since the last time
 * (SKIP_LOCKED: when another writer is vacuuming it, that is enough). */
static void pg_after_commit(struct tsdb__conn *tc)
{
    if (tc->log_deleted < VACUUM_ROWS)
        return;
    tc->log_deleted = 0;
    int rc = db_exec(tc->c, "VACUUM (SKIP_LOCKED) ts_rollup_log");
    if (rc != CORE_OK)
        core_log_warn("tsdb", "vacuum of ts_rollup_log failed err=%s",
                      core_err_name(rc));
}

const struct tsdb__backend tsdb__postgres = {
    .name = "postgres",
    .dialect = DB_POSTGRES,
    .sql = sql,
    .writer_init = NULL,
    .raw_append = pg_raw_append,
    .points_apply = pg_points_apply,
    .rollup_fold = pg_rollup_fold,
    .points_finish = pg_points_finish,
    .after_commit = pg_after_commit,
    .fold_background = pg_fold_background,
    .fold_ms = FOLD_MS,
};
