/*
 * The PostgreSQL backend. Times are timestamptz; the interface speaks
 * epoch milliseconds, converted in SQL (to_timestamp(ms / 1000.0) is exact
 * to the microsecond, extract(epoch ...) returns numeric). A batch of
 * points is one statement: the rows travel as array parameters expanded
 * with unnest, so the SQL text stays the same whatever the batch size
 * (no per-size statements, one round trip), and data-modifying CTEs insert
 * the points and fold the new ones into the three rollups.
 */
#include "tsdb_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_IN "to_timestamp(? / 1000.0)"
#define TS_OUT(col) "(extract(epoch FROM " col ") * 1000)::int8"
#define EPOCH "TIMESTAMPTZ '1970-01-01 00:00:00+00'"

/* Folds the points the insert returned into a rollup table. */
#define ROLLUP_CTE(table, width)                                             \
    "INSERT INTO " table " AS r (series_id, bucket, min, max, sum, count, "  \
    "last, last_ts) SELECT series_id, date_bin(INTERVAL '" width "', ts, "   \
    EPOCH ") AS b, min(value), max(value), sum(value), count(*), "           \
    "(array_agg(value ORDER BY ts DESC))[1], max(ts) FROM ins "              \
    "WHERE value IS NOT NULL GROUP BY series_id, b "                         \
    "ON CONFLICT (series_id, bucket) DO UPDATE SET "                         \
    "min = LEAST(r.min, EXCLUDED.min), max = GREATEST(r.max, EXCLUDED.max), "\
    "sum = r.sum + EXCLUDED.sum, count = r.count + EXCLUDED.count, "         \
    "last = CASE WHEN EXCLUDED.last_ts >= r.last_ts THEN EXCLUDED.last "     \
    "ELSE r.last END, last_ts = GREATEST(r.last_ts, EXCLUDED.last_ts)"

/* Inserts a batch and folds the new points into the three rollups;
 * returns (series, ms) of each new point. */
#define POINTS_BULK                                                          \
    "WITH input AS (SELECT u.series_id, to_timestamp(u.ms / 1000.0) AS ts, " \
    "u.value, u.value_text FROM unnest(?::int8[], ?::int8[], "               \
    "?::float8[], ?::text[]) AS u(series_id, ms, value, value_text)), "      \
    "ins AS (INSERT INTO ts_points (series_id, ts, value, value_text) "      \
    "SELECT series_id, ts, value, value_text FROM input "                    \
    "ON CONFLICT (series_id, ts) DO NOTHING "                                \
    "RETURNING series_id, ts, value), "                                      \
    "r5 AS (" ROLLUP_CTE("ts_rollup_5m", "5 minutes") "), "                  \
    "r1h AS (" ROLLUP_CTE("ts_rollup_1h", "1 hour") "), "                    \
    "r1d AS (" ROLLUP_CTE("ts_rollup_1d", "1 day") ") "                      \
    "SELECT series_id, " TS_OUT("ts") " FROM ins"

/* Only when some points of a batch were there already: (series, ms) of
 * each stored point whose value differs from the batch's (the new points
 * now hold the batch's values, so they are not among them). The lookup is
 * a LATERAL ... LIMIT 1 so that it stays one index probe per input row: as
 * a plain join the planner hashes the whole table. */
#define POINTS_CHANGED                                                       \
    "SELECT i.series_id, i.ms FROM unnest(?::int8[], ?::int8[], "            \
    "?::float8[], ?::text[]) AS i(series_id, ms, value, value_text) "        \
    "CROSS JOIN LATERAL (SELECT p.value, p.value_text FROM ts_points p "     \
    "WHERE p.series_id = i.series_id AND p.ts = to_timestamp(i.ms / 1000.0) "\
    "LIMIT 1) p WHERE p.value IS DISTINCT FROM i.value "                     \
    "OR p.value_text IS DISTINCT FROM i.value_text"

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

#define QUERY_ROLLUP(table)                                                  \
    "SELECT s.metric, " TS_OUT("r.bucket") ", s.value_type, r.min, r.max, "  \
    "r.sum, r.count, r.last FROM ts_series s JOIN " table " r "              \
    "ON r.series_id = s.id WHERE s.organization_id = ? "                     \
    "AND s.entity_type = ? AND s.entity_id = ? "                             \
    "AND r.bucket >= " TS_IN " AND r.bucket < " TS_IN                        \
    " ORDER BY r.bucket DESC, s.metric LIMIT ?"
#define QUERY_ROLLUP_METRIC(table)                                           \
    "SELECT s.metric, " TS_OUT("r.bucket") ", s.value_type, r.min, r.max, "  \
    "r.sum, r.count, r.last FROM " table " r JOIN ts_series s "              \
    "ON s.id = r.series_id WHERE r.series_id = " SERIES_ID                   \
    " AND r.bucket >= " TS_IN " AND r.bucket < " TS_IN                       \
    " ORDER BY r.bucket DESC LIMIT ?"

static const char *const sql[TSDB_SQL_COUNT] = {
    [TSDB_SQL_SERIES_GET] =
        "SELECT id FROM ts_series WHERE organization_id = ? "
        "AND entity_type = ? AND entity_id = ? AND metric = ?",
    [TSDB_SQL_SERIES_ADD] =
        "INSERT INTO ts_series (organization_id, entity_type, entity_id, "
        "metric, value_type) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING RETURNING id",
    [TSDB_SQL_RAW_INSERT] =
        "INSERT INTO telemetry_raw (id, organization_id, device_id, "
        "received_at, transport, payload) SELECT * FROM unnest(?::uuid[], "
        "?::uuid[], ?::uuid[], ?::timestamptz[], ?::text[], ?::text[]) "
        "ON CONFLICT (id) DO NOTHING",
    [TSDB_SQL_RAW_GATE_OPEN] =
        "SELECT set_config('argus.retention_before', ?, true)",
    [TSDB_SQL_RAW_DELETE] = "DELETE FROM telemetry_raw WHERE received_at < ?",
    [TSDB_SQL_RAW_GATE_CLOSE] =
        "SELECT set_config('argus.retention_before', '', true)",
    [TSDB_SQL_POINTS_DELETE] = "DELETE FROM ts_points WHERE ts < " TS_IN,
    [TSDB_SQL_POINT_UPDATE] = "UPDATE ts_points SET value = ?, "
                              "value_text = ? WHERE series_id = ? AND ts = "
                              TS_IN,
    [TSDB_SQL_POINTS_BULK] = POINTS_BULK,
    [TSDB_SQL_POINTS_CHANGED] = POINTS_CHANGED,
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
    [TSDB_SQL_QUERY_5M] = QUERY_ROLLUP("ts_rollup_5m"),
    [TSDB_SQL_QUERY_5M_METRIC] = QUERY_ROLLUP_METRIC("ts_rollup_5m"),
    [TSDB_SQL_QUERY_1H] = QUERY_ROLLUP("ts_rollup_1h"),
    [TSDB_SQL_QUERY_1H_METRIC] = QUERY_ROLLUP_METRIC("ts_rollup_1h"),
    [TSDB_SQL_QUERY_1D] = QUERY_ROLLUP("ts_rollup_1d"),
    [TSDB_SQL_QUERY_1D_METRIC] = QUERY_ROLLUP_METRIC("ts_rollup_1d"),
    [TSDB_SQL_LATEST] =
        "SELECT s.metric, " TS_OUT("p.ts") ", s.value_type, p.value, "
        "p.value_text FROM ts_series s JOIN ts_points p "
        "ON p.series_id = s.id AND p.ts = (SELECT max(ts) FROM ts_points "
        "WHERE series_id = s.id) WHERE s.organization_id = ? "
        "AND s.entity_type = ? AND s.entity_id = ? ORDER BY s.metric",
};

/* ------------------------------------------------------ array literals
 * '{1,2,NULL}' and '{"a","b\"c"}': every text element is quoted, so that
 * no element can be mistaken for NULL or split. */

static void arr_open(struct core_buf *b)
{
    core_buf_reset(b);
    core_buf_putc(b, '{');
}

static void arr_sep(struct core_buf *b)
{
    if (b->len > 1)
        core_buf_putc(b, ',');
}

static void arr_int(struct core_buf *b, int64_t v)
{
    arr_sep(b);
    core_buf_printf(b, "%" PRId64, v);
}

static void arr_double(struct core_buf *b, double v)
{
    arr_sep(b);
    core_buf_printf(b, "%.17g", v); /* finite: checked by the caller */
}

static void arr_null(struct core_buf *b)
{
    arr_sep(b);
    core_buf_puts(b, "NULL");
}

static void arr_text(struct core_buf *b, const char *s)
{
    arr_sep(b);
    core_buf_putc(b, '"');
    for (const char *p = s;;) {
        size_t run = strcspn(p, "\"\\");
        core_buf_append(b, p, run);
        p += run;
        if (!*p)
            break;
        core_buf_putc(b, '\\');
        core_buf_putc(b, *p++);
    }
    core_buf_putc(b, '"');
}

static int arr_close(struct core_buf *bufs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        core_buf_putc(&bufs[i], '}');
        if (bufs[i].oom)
            return CORE_ENOMEM;
    }
    return CORE_OK;
}

/* ------------------------------------------------------------- writes */

static int pg_raw_append(struct tsdb__conn *tc, const struct tsdb_raw *msgs,
                         size_t n)
{
    struct core_buf *a = tc->arrays;
    for (int k = 0; k < 6; k++)
        arr_open(&a[k]);
    for (size_t i = 0; i < n; i++) {
        const struct tsdb_raw *m = &msgs[i];
        char at[CORE_TIME_ISO_LEN];
        core_time_format_iso(m->received_ms, at);
        arr_text(&a[0], m->id);
        arr_text(&a[1], m->org_id);
        arr_text(&a[2], m->device_id);
        arr_text(&a[3], at);
        arr_text(&a[4], m->transport);
        arr_text(&a[5], m->payload);
    }
    int rc = arr_close(a, 6);
    struct db_stmt *s = NULL;
    if (rc == CORE_OK)
        rc = tsdb__stmt(tc, TSDB_SQL_RAW_INSERT, &s);
    for (int k = 0; k < 6 && rc == CORE_OK; k++)
        rc = db_bind_text(s, k + 1, a[k].data);
    if (rc == CORE_OK)
        rc = tsdb__run(tc, s);
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

static int pg_points_apply(struct tsdb__conn *tc, struct tsdb__item *items,
                           size_t n)
{
    struct core_buf *a = tc->arrays;
    for (int k = 0; k < 4; k++)
        arr_open(&a[k]);
    for (size_t i = 0; i < n; i++) {
        const struct tsdb__item *it = &items[i];
        arr_int(&a[0], it->series);
        arr_int(&a[1], it->ts);
        if (it->str) {
            arr_null(&a[2]);
            arr_text(&a[3], it->str);
        } else {
            arr_double(&a[2], it->num);
            arr_null(&a[3]);
        }
    }
    int rc = arr_close(a, 4);
    /* The common case, every point new, is one statement; a batch that
     * meets stored points (a replay, a redelivery) asks which changed. */
    size_t fresh = 0, changed = 0;
    struct db_stmt *s = NULL;
    for (int pass = 0; pass < 2 && rc == CORE_OK; pass++) {
        if (pass == 1 && fresh == n)
            break;
        if (pass == 1)
            db_reset(s);
        rc = tsdb__stmt(tc, pass ? TSDB_SQL_POINTS_CHANGED : TSDB_SQL_POINTS_BULK,
                        &s);
        for (int k = 0; k < 4 && rc == CORE_OK; k++)
            rc = db_bind_text(s, k + 1, a[k].data);
        for (bool row = true; rc == CORE_OK;) {
            rc = db_step(s, &row);
            if (rc != CORE_OK || !row)
                break;
            struct tsdb__item *it =
                item_find(items, n, db_col_int64(s, 0), db_col_int64(s, 1));
            if (!it) {
                rc = CORE_EINTERNAL;
                break;
            }
            if (pass == 0) {
                it->fate = TSDB_FATE_NEW;
                fresh++;
            } else if (it->fate != TSDB_FATE_NEW) {
                it->fate = TSDB_FATE_CHANGED;
                changed++;
            }
        }
    }
    if (rc != CORE_OK)
        return rc;
    db_reset(s);
    for (size_t i = 0; changed > 0 && i < n && rc == CORE_OK; i++) {
        if (items[i].fate == TSDB_FATE_CHANGED)
            rc = update_point(tc, &items[i]);
    }
    return rc;
}

const struct tsdb__backend tsdb__postgres = {
    .name = "postgres",
    .dialect = DB_POSTGRES,
    .sql = sql,
    .writer_init = NULL,
    .raw_append = pg_raw_append,
    .points_apply = pg_points_apply,
};
