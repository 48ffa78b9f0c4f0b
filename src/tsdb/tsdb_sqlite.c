/*
 * The SQLite backend. Times in points and rollups are epoch milliseconds
 * (INTEGER), so keys are integers only. The write path is one prepared
 * statement step per point plus one upsert per (series, bucket) and
 * resolution, with the batch aggregated in memory first: a batch sorted by
 * series and time turns each bucket's points into one upsert.
 */
#include "tsdb_internal.h"

#include <stdlib.h>
#include <string.h>

/* Deferred rollups: a connection folds its log when its oldest unfolded
 * row is this old, or when it has logged this many rows. */
#define FOLD_MS 500
#define FOLD_ROWS 50000

#define ROLLUP_UPSERT(table)                                                 \
    "INSERT INTO " table " (series_id, bucket, min, max, sum, count, last, " \
    "last_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "                              \
    "ON CONFLICT (bucket, series_id) DO UPDATE SET "                         \
    "min = min(min, excluded.min), max = max(max, excluded.max), "           \
    "sum = sum + excluded.sum, count = count + excluded.count, "             \
    "last = CASE WHEN excluded.last_ts >= last_ts THEN excluded.last "       \
    "ELSE last END, last_ts = max(last_ts, excluded.last_ts)"

/* The bucket follows from the last point's time (floor, also before
 * 1970). Parameters: (series, from, to) for the aggregate, then for the
 * last point. */
#define RECOMPUTE(table, width)                                              \
    "INSERT INTO " table " (series_id, bucket, min, max, sum, count, last, " \
    "last_ts) SELECT l.series_id, l.ts - (((l.ts % " width ") + " width      \
    ") % " width "), a.mn, a.mx, a.sm, a.n, l.value, l.ts FROM "             \
    "(SELECT min(value) AS mn, max(value) AS mx, sum(value) AS sm, "         \
    "count(*) AS n FROM ts_points WHERE series_id = ? AND ts >= ? "          \
    "AND ts < ? AND value IS NOT NULL) a JOIN "                              \
    "(SELECT series_id, ts, value FROM ts_points WHERE series_id = ? "       \
    "AND ts >= ? AND ts < ? AND value IS NOT NULL ORDER BY ts DESC "         \
    "LIMIT 1) l ON 1"

/* Every metric of an entity: merged by time, then metric. */
#define QUERY_POINTS                                                         \
    "SELECT s.metric, p.ts, s.value_type, p.value, p.value_text "            \
    "FROM ts_series s JOIN ts_points p ON p.series_id = s.id "               \
    "WHERE s.organization_id = ? AND s.entity_type = ? AND s.entity_id = ? " \
    "AND p.ts >= ? AND p.ts < ? ORDER BY p.ts DESC, s.metric LIMIT ?"

/* One metric: the series id comes first, as a scalar, so that the rows are
 * read newest first straight from the key and the limit stops the scan. */
#define SERIES_ID                                                            \
    "(SELECT id FROM ts_series WHERE organization_id = ? "                   \
    "AND entity_type = ? AND entity_id = ? AND metric = ?)"
#define QUERY_POINTS_METRIC                                                  \
    "SELECT s.metric, p.ts, s.value_type, p.value, p.value_text "            \
    "FROM ts_points p JOIN ts_series s ON s.id = p.series_id "               \
    "WHERE p.series_id = " SERIES_ID " AND p.ts >= ? AND p.ts < ? "          \
    "ORDER BY p.ts DESC LIMIT ?"

/* Rollup rows: the folded rows of the table plus the log's rows not
 * folded yet (re-bucketed to the table's width), merged per (series,
 * bucket): min of mins, max of maxes, sums, and the last value of the
 * latest last_ts (on a tie the log's, newest first: written later). sel
 * picks the series from parameters ?1..?3 (and ?4, the metric); lo and hi
 * name the parameters of the range. SQLite numbers parameters, so those
 * used twice are bound once, at the positions tsdb_query binds. */
#define LOG_BUCKET(width)                                                    \
    "(bucket - (((bucket % " width ") + " width ") % " width "))"
#define ROLLUP_MERGED(table, width, sel, lo, hi)                             \
    "SELECT r.sid, r.b, min(r.mn) AS mn, max(r.mx) AS mx, sum(r.sm) AS sm, " \
    "sum(r.n) AS n, max(r.lv) AS lv FROM (SELECT sid, b, mn, mx, sm, n, "    \
    "first_value(lv) OVER (PARTITION BY sid, b ORDER BY lts DESC, src DESC, "\
    "seq DESC) AS lv FROM (SELECT series_id AS sid, bucket AS b, min AS mn, "\
    "max AS mx, sum AS sm, count AS n, last AS lv, last_ts AS lts, 0 AS src, "\
    "0 AS seq FROM " table " WHERE series_id " sel " AND bucket >= " lo      \
    " AND bucket < " hi " UNION ALL SELECT series_id, " LOG_BUCKET(width)    \
    ", min, max, sum, count, last, last_ts, 1, seq FROM ts_rollup_log "      \
    "WHERE series_id " sel " AND " LOG_BUCKET(width) " >= " lo " AND "       \
    LOG_BUCKET(width) " < " hi ")) r GROUP BY r.sid, r.b"
#define ENTITY_SERIES                                                        \
    "IN (SELECT id FROM ts_series WHERE organization_id = ?1 "               \
    "AND entity_type = ?2 AND entity_id = ?3)"
#define METRIC_SERIES                                                        \
    "= (SELECT id FROM ts_series WHERE organization_id = ?1 "                \
    "AND entity_type = ?2 AND entity_id = ?3 AND metric = ?4)"
#define QUERY_ROLLUP(table, width)                                           \
    "SELECT s.metric, m.b, s.value_type, m.mn, m.mx, m.sm, m.n, m.lv FROM (" \
    ROLLUP_MERGED(table, width, ENTITY_SERIES, "?4", "?5")                   \
    ") m JOIN ts_series s ON s.id = m.sid ORDER BY m.b DESC, s.metric "      \
    "LIMIT ?6"
#define QUERY_ROLLUP_METRIC(table, width)                                    \
    "SELECT s.metric, m.b, s.value_type, m.mn, m.mx, m.sm, m.n, m.lv FROM (" \
    ROLLUP_MERGED(table, width, METRIC_SERIES, "?5", "?6")                   \
    ") m JOIN ts_series s ON s.id = m.sid ORDER BY m.b DESC LIMIT ?7"

/* Raw messages go in TSDB_RAW_MANY rows per statement: a statement's
 * fixed cost (step, halt, reset) is then shared by 16 rows. */
#define TSDB_RAW_MANY 16
#define RAW_ROW "(?, ?, ?, ?, ?, ?)"
#define RAW_ROWS2 RAW_ROW ", " RAW_ROW
#define RAW_ROWS4 RAW_ROWS2 ", " RAW_ROWS2
#define RAW_ROWS8 RAW_ROWS4 ", " RAW_ROWS4
#define RAW_ROWS16 RAW_ROWS8 ", " RAW_ROWS8

/* New points go in TSDB_POINTS_MANY rows per statement, which a conflict
 * aborts whole (see points_many): a flush's inserts went from ~830 k to
 * ~1 M points/s. */
#define TSDB_POINTS_MANY 32
#define POINT_ROW "(?, ?, ?, ?)"
#define POINT_ROWS2 POINT_ROW ", " POINT_ROW
#define POINT_ROWS4 POINT_ROWS2 ", " POINT_ROWS2
#define POINT_ROWS8 POINT_ROWS4 ", " POINT_ROWS4
#define POINT_ROWS16 POINT_ROWS8 ", " POINT_ROWS8
#define POINT_ROWS32 POINT_ROWS16 ", " POINT_ROWS16

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
        "received_at, transport, payload) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
    [TSDB_SQL_RAW_INSERT_MANY] =
        "INSERT INTO telemetry_raw (id, organization_id, device_id, "
        "received_at, transport, payload) VALUES " RAW_ROWS16
        " ON CONFLICT DO NOTHING",
    [TSDB_SQL_RAW_GATE_OPEN] =
        "INSERT INTO telemetry_raw_retention (cutoff) VALUES (?)",
    /* A range of the key per organisation; the organisations are found
     * by skip-scan (a seek each), not by reading the table. */
    [TSDB_SQL_RAW_DELETE] =
        "WITH RECURSIVE orgs(o) AS (SELECT (SELECT organization_id FROM "
        "telemetry_raw ORDER BY organization_id LIMIT 1) UNION ALL SELECT "
        "(SELECT organization_id FROM telemetry_raw WHERE organization_id > o "
        "ORDER BY organization_id LIMIT 1) FROM orgs WHERE o IS NOT NULL) "
        "DELETE FROM telemetry_raw WHERE organization_id IN (SELECT o FROM "
        "orgs) AND received_at < ?",
    [TSDB_SQL_RAW_GATE_CLOSE] = "DELETE FROM telemetry_raw_retention",
    /* Series by series, so that each delete is a range of the key. */
    [TSDB_SQL_POINTS_DELETE] =
        "DELETE FROM ts_points WHERE series_id IN (SELECT id FROM ts_series) "
        "AND ts < ?",
    [TSDB_SQL_POINT_INSERT] =
        "INSERT INTO ts_points (series_id, ts, value, value_text) "
        "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    /* No ON CONFLICT: a stored point aborts the statement (and only it). */
    [TSDB_SQL_POINT_INSERT_MANY] =
        "INSERT INTO ts_points (series_id, ts, value, value_text) VALUES "
        POINT_ROWS32,
    [TSDB_SQL_POINT_GET] = "SELECT value, value_text FROM ts_points "
                           "WHERE series_id = ? AND ts = ?",
    [TSDB_SQL_POINT_UPDATE] = "UPDATE ts_points SET value = ?, "
                              "value_text = ? WHERE series_id = ? AND ts = ?",
    [TSDB_SQL_ROLLUP_5M] = ROLLUP_UPSERT("ts_rollup_5m"),
    [TSDB_SQL_ROLLUP_1H] = ROLLUP_UPSERT("ts_rollup_1h"),
    [TSDB_SQL_ROLLUP_1D] = ROLLUP_UPSERT("ts_rollup_1d"),
    [TSDB_SQL_RECOMPUTE_DEL_5M] =
        "DELETE FROM ts_rollup_5m WHERE series_id = ? AND bucket = ?",
    [TSDB_SQL_RECOMPUTE_DEL_1H] =
        "DELETE FROM ts_rollup_1h WHERE series_id = ? AND bucket = ?",
    [TSDB_SQL_RECOMPUTE_DEL_1D] =
        "DELETE FROM ts_rollup_1d WHERE series_id = ? AND bucket = ?",
    [TSDB_SQL_RECOMPUTE_5M] = RECOMPUTE("ts_rollup_5m", "300000"),
    [TSDB_SQL_RECOMPUTE_1H] = RECOMPUTE("ts_rollup_1h", "3600000"),
    [TSDB_SQL_RECOMPUTE_1D] = RECOMPUTE("ts_rollup_1d", "86400000"),
    [TSDB_SQL_QUERY_POINTS] = QUERY_POINTS,
    [TSDB_SQL_QUERY_POINTS_METRIC] = QUERY_POINTS_METRIC,
    [TSDB_SQL_QUERY_5M] = QUERY_ROLLUP("ts_rollup_5m", "300000"),
    [TSDB_SQL_QUERY_5M_METRIC] = QUERY_ROLLUP_METRIC("ts_rollup_5m", "300000"),
    [TSDB_SQL_QUERY_1H] = QUERY_ROLLUP("ts_rollup_1h", "3600000"),
    [TSDB_SQL_QUERY_1H_METRIC] = QUERY_ROLLUP_METRIC("ts_rollup_1h", "3600000"),
    [TSDB_SQL_QUERY_1D] = QUERY_ROLLUP("ts_rollup_1d", "86400000"),
    [TSDB_SQL_QUERY_1D_METRIC] = QUERY_ROLLUP_METRIC("ts_rollup_1d", "86400000"),
    [TSDB_SQL_LATEST] =
        "SELECT s.metric, p.ts, s.value_type, p.value, p.value_text "
        "FROM ts_series s JOIN ts_points p ON p.series_id = s.id "
        "AND p.ts = (SELECT max(ts) FROM ts_points WHERE series_id = s.id) "
        "WHERE s.organization_id = ? AND s.entity_type = ? "
        "AND s.entity_id = ? ORDER BY s.metric",
    [TSDB_SQL_LOG_INSERT] =
        "INSERT INTO ts_rollup_log (series_id, bucket, min, max, sum, count, "
        "last, last_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    /* In write order (rowid order: no sort). */
    [TSDB_SQL_LOG_READ] =
        "SELECT series_id, bucket, min, max, sum, count, last, last_ts "
        "FROM ts_rollup_log ORDER BY seq",
    [TSDB_SQL_LOG_DELETE] = "DELETE FROM ts_rollup_log",
};

/* For the writer: a bigger page cache than SQLite's 2 MB default (a batch
 * touches a leaf page per series in ts_points, and reading those back from
 * the WAL costs more than the memory). Checkpoints are the driver's: it
 * runs them on a thread of its own every 10,000 WAL pages (40 MB), so that
 * a page rewritten by many commits in between is copied into the database
 * once (+17 % points/s with 100 devices per batch against 1,000) and no
 * commit waits for the copy. Setting wal_autocheckpoint here would take
 * them back onto the writer. */
static int sq_writer_init(struct tsdb__conn *tc)
{
    return db_exec(tc->c, "PRAGMA cache_size = -65536");
}

/* Binds message m as row j (0-based) of a raw insert. */
static int raw_bind(struct db_stmt *s, int j, const struct tsdb_raw *m)
{
    char id[CORE_UUID_STR_LEN], org[CORE_UUID_STR_LEN],
        dev[CORE_UUID_STR_LEN], at[CORE_TIME_ISO_LEN];
    /* Checked by tsdb_raw_append. The driver copies bound text. */
    tsdb__uuid_lower(id, m->id);
    tsdb__uuid_lower(org, m->org_id);
    tsdb__uuid_lower(dev, m->device_id);
    core_time_format_iso(m->received_ms, at);
    int at0 = 6 * j;
    int rc = db_bind_text(s, at0 + 1, id);
    if (rc == CORE_OK)
        rc = db_bind_text(s, at0 + 2, org);
    if (rc == CORE_OK)
        rc = db_bind_text(s, at0 + 3, dev);
    if (rc == CORE_OK)
        rc = db_bind_text(s, at0 + 4, at);
    if (rc == CORE_OK)
        rc = db_bind_text(s, at0 + 5, m->transport);
    if (rc == CORE_OK)
        rc = db_bind_text(s, at0 + 6, m->payload);
    return rc;
}

static int sq_raw_append(struct tsdb__conn *tc, const struct tsdb_raw *msgs,
                         size_t n)
{
    size_t i = 0;
    int rc = CORE_OK;
    for (; rc == CORE_OK && n - i >= TSDB_RAW_MANY; i += TSDB_RAW_MANY) {
        struct db_stmt *s = NULL;
        rc = tsdb__stmt(tc, TSDB_SQL_RAW_INSERT_MANY, &s);
        for (int j = 0; j < TSDB_RAW_MANY && rc == CORE_OK; j++)
            rc = raw_bind(s, j, &msgs[i + (size_t)j]);
        if (rc == CORE_OK)
            rc = tsdb__run(tc, s);
    }
    for (; rc == CORE_OK && i < n; i++) {
        struct db_stmt *s = NULL;
        rc = tsdb__stmt(tc, TSDB_SQL_RAW_INSERT, &s);
        if (rc == CORE_OK)
            rc = raw_bind(s, 0, &msgs[i]);
        if (rc == CORE_OK)
            rc = tsdb__run(tc, s);
    }
    return rc;
}

/* Decides the fate of a point the insert found already stored. */
static int settle_existing(struct tsdb__conn *tc, struct tsdb__item *it)
{
    struct db_stmt *s = NULL;
    bool row = false;
    int rc = tsdb__stmt(tc, TSDB_SQL_POINT_GET, &s);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, 1, it->series);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, 2, it->ts);
    if (rc == CORE_OK)
        rc = db_step(s, &row);
    if (rc != CORE_OK)
        return rc;
    if (!row || tsdb__same_value(s, 0, it)) {
        it->fate = TSDB_FATE_SAME;
        db_reset(s);
        return CORE_OK;
    }
    db_reset(s);
    it->fate = TSDB_FATE_CHANGED;
    rc = tsdb__stmt(tc, TSDB_SQL_POINT_UPDATE, &s);
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

/* A (series, bucket) aggregate: one run of a batch, or a fold's sum. */
struct rollup_row {
    int64_t series, bucket;
    double mn, mx, sum, last;
    int64_t count, last_ts;
};

static void rollup_merge(struct rollup_row *a, const struct rollup_row *x)
{
    a->mn = x->mn < a->mn ? x->mn : a->mn;
    a->mx = x->mx > a->mx ? x->mx : a->mx;
    a->sum += x->sum;
    a->count += x->count;
    if (x->last_ts >= a->last_ts) {
        a->last = x->last;
        a->last_ts = x->last_ts;
    }
}

/* Binds a row to an insert or upsert of (series_id, bucket, min, max, sum,
 * count, last, last_ts) and runs it. */
static int rollup_put(struct tsdb__conn *tc, enum tsdb__stmt id,
                      const struct rollup_row *a)
{
    struct db_stmt *s = NULL;
    int rc = tsdb__stmt(tc, id, &s);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, 1, a->series);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, 2, a->bucket);
    if (rc == CORE_OK)
        rc = db_bind_double(s, 3, a->mn);
    if (rc == CORE_OK)
        rc = db_bind_double(s, 4, a->mx);
    if (rc == CORE_OK)
        rc = db_bind_double(s, 5, a->sum);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, 6, a->count);
    if (rc == CORE_OK)
        rc = db_bind_double(s, 7, a->last);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, 8, a->last_ts);
    if (rc == CORE_OK)
        rc = tsdb__run(tc, s);
    return rc;
}

/* One log row per (series, 5-minute bucket) run of NEW numeric points:
 * items are sorted by series then time, so a bucket's points are adjacent
 * and the last of them is the latest. */
static int rollup_log(struct tsdb__conn *tc, const struct tsdb__item *items,
                      size_t n)
{
    int64_t w = tsdb__res_ms[0];
    size_t i = 0, logged = 0;
    while (i < n) {
        const struct tsdb__item *it = &items[i];
        if (it->fate != TSDB_FATE_NEW || it->str) {
            i++;
            continue;
        }
        struct rollup_row a = {it->series, tsdb__bucket(it->ts, w), it->num,
                               it->num, 0, it->num, 0, it->ts};
        for (; i < n && items[i].series == it->series &&
               tsdb__bucket(items[i].ts, w) == a.bucket;
             i++) {
            const struct tsdb__item *p = &items[i];
            if (p->fate != TSDB_FATE_NEW || p->str)
                continue;
            struct rollup_row x = {0, 0, p->num, p->num, p->num, p->num, 1,
                                   p->ts};
            rollup_merge(&a, &x);
        }
        int rc = rollup_put(tc, TSDB_SQL_LOG_INSERT, &a);
        if (rc != CORE_OK)
            return rc;
        logged++;
    }
    if (logged && tc->log_rows == 0)
        tc->log_since_ms = core_time_now_ms();
    tc->log_rows += logged;
    return CORE_OK;
}

/* A fold's aggregates, one per (series, 5-minute bucket), in an
 * open-addressing table that is then sorted by (series, bucket). */
struct fold_set {
    struct rollup_row *v;
    size_t n, cap; /* cap: a power of two, or 0 */
};

static struct rollup_row *fold_slot(struct fold_set *f, int64_t series,
                                    int64_t bucket)
{
    if (2 * (f->n + 1) > f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 4096;
        struct rollup_row *v = malloc(cap * sizeof *v);
        if (!v)
            return NULL;
        for (size_t i = 0; i < cap; i++)
            v[i].count = 0; /* count 0: empty */
        for (size_t i = 0; i < f->cap; i++) {
            if (!f->v[i].count)
                continue;
            uint64_t h = ((uint64_t)f->v[i].series * 0x9e3779b97f4a7c15ull) ^
                         (uint64_t)f->v[i].bucket;
            size_t j = (size_t)(h * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
            while (v[j].count)
                j = (j + 1) & (cap - 1);
            v[j] = f->v[i];
        }
        free(f->v);
        f->v = v;
        f->cap = cap;
    }
    uint64_t h = ((uint64_t)series * 0x9e3779b97f4a7c15ull) ^ (uint64_t)bucket;
    size_t j = (size_t)(h * 0x9e3779b97f4a7c15ull >> 20) & (f->cap - 1);
    while (f->v[j].count &&
           (f->v[j].series != series || f->v[j].bucket != bucket))
        j = (j + 1) & (f->cap - 1);
    if (!f->v[j].count)
        f->n++;
    return &f->v[j];
}

static int row_cmp(const void *a, const void *b)
{
    const struct rollup_row *x = a, *y = b;
    if (x->series != y->series)
        return x->series < y->series ? -1 : 1;
    return x->bucket < y->bucket ? -1 : x->bucket > y->bucket;
}

/* Folds the whole log into the three rollup tables and empties it, under
 * a savepoint: inside the caller's transaction when there is one, a
 * transaction of its own otherwise, so that rows are never both folded and
 * still in the log. The log is read in write order (the later of equal
 * last_ts wins, as it would have in an upsert) into one aggregate per
 * (series, 5-minute bucket); sorted by series and bucket, those make the
 * 1 h and 1 d buckets in runs, each upserted once. Emptying the whole
 * table (no WHERE) takes SQLite's truncate path instead of a delete per
 * row: nothing else writes between the read and the delete, on this
 * connection in this transaction. */
static int sq_rollup_fold(struct tsdb__conn *tc)
{
    int rc = db_exec(tc->c, "SAVEPOINT tsdb_fold");
    if (rc != CORE_OK)
        return rc;
    struct fold_set f = {0};
    struct db_stmt *s = NULL;
    rc = tsdb__stmt(tc, TSDB_SQL_LOG_READ, &s);
    for (bool row = true; rc == CORE_OK && row;) {
        rc = db_step(s, &row);
        if (rc != CORE_OK || !row)
            break;
        struct rollup_row x = {db_col_int64(s, 0), db_col_int64(s, 1),
                               db_col_double(s, 2), db_col_double(s, 3),
                               db_col_double(s, 4), db_col_double(s, 6),
                               db_col_int64(s, 5), db_col_int64(s, 7)};
        struct rollup_row *a = fold_slot(&f, x.series, x.bucket);
        if (!a)
            rc = CORE_ENOMEM;
        else if (!a->count)
            *a = x;
        else
            rollup_merge(a, &x);
    }
    if (s)
        db_reset(s);
    if (rc == CORE_OK && f.n > 0) {
        /* Compact the live slots, then sort them. */
        size_t k = 0;
        for (size_t i = 0; i < f.cap; i++)
            if (f.v[i].count)
                f.v[k++] = f.v[i];
        qsort(f.v, k, sizeof *f.v, row_cmp);
        for (int r = 0; r < TSDB_NRES && rc == CORE_OK; r++) {
            struct rollup_row acc = f.v[0];
            acc.bucket = tsdb__bucket(acc.bucket, tsdb__res_ms[r]);
            for (size_t i = 1; i <= k && rc == CORE_OK; i++) {
                int64_t b = i < k ? tsdb__bucket(f.v[i].bucket,
                                                 tsdb__res_ms[r])
                                  : 0;
                if (i < k && f.v[i].series == acc.series && b == acc.bucket) {
                    rollup_merge(&acc, &f.v[i]);
                    continue;
                }
                rc = rollup_put(tc, TSDB_SQL_ROLLUP_5M + r, &acc);
                if (i < k) {
                    acc = f.v[i];
                    acc.bucket = b;
                }
            }
        }
    }
    free(f.v);
    if (rc == CORE_OK) {
        rc = tsdb__stmt(tc, TSDB_SQL_LOG_DELETE, &s);
        if (rc == CORE_OK)
            rc = tsdb__run(tc, s);
    }
    if (rc != CORE_OK) {
        db_exec(tc->c, "ROLLBACK TO tsdb_fold");
        db_exec(tc->c, "RELEASE tsdb_fold");
        return rc;
    }
    rc = db_exec(tc->c, "RELEASE tsdb_fold");
    if (rc == CORE_OK) {
        tc->log_rows = 0;
        tc->log_since_ms = 0;
    }
    return rc;
}

/* Binds a point's series, time and value to parameters at .. at + 3. */
static int bind_point(struct db_stmt *s, int at, const struct tsdb__item *it)
{
    int rc = db_bind_int64(s, at, it->series);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, at + 1, it->ts);
    if (rc == CORE_OK)
        rc = tsdb__bind_value(s, at + 2, it);
    return rc;
}

/* Inserts items[0 .. TSDB_POINTS_MANY) in one statement, all of them new
 * points. A point already stored (a replay, a redelivery, two messages
 * with the same time) aborts the statement, whose inserts SQLite then
 * undoes, leaving the transaction as it was: CORE_ECONFLICT, and the
 * caller goes row by row. */
static int points_many(struct tsdb__conn *tc, struct tsdb__item *items)
{
    struct db_stmt *s = NULL;
    int rc = tsdb__stmt(tc, TSDB_SQL_POINT_INSERT_MANY, &s);
    for (int j = 0; j < TSDB_POINTS_MANY && rc == CORE_OK; j++)
        rc = bind_point(s, 4 * j + 1, &items[j]);
    if (rc == CORE_OK)
        rc = tsdb__run(tc, s);
    if (rc == CORE_OK)
        for (int j = 0; j < TSDB_POINTS_MANY; j++)
            items[j].fate = TSDB_FATE_NEW;
    return rc;
}

/* One point: new, or settled against the stored one. */
static int point_one(struct tsdb__conn *tc, struct tsdb__item *it)
{
    struct db_stmt *ins = NULL;
    int rc = tsdb__stmt(tc, TSDB_SQL_POINT_INSERT, &ins);
    if (rc == CORE_OK)
        rc = bind_point(ins, 1, it);
    if (rc == CORE_OK)
        rc = tsdb__run(tc, ins);
    if (rc != CORE_OK)
        return rc;
    if (db_changes(ins) == 1) {
        it->fate = TSDB_FATE_NEW;
        return CORE_OK;
    }
    return settle_existing(tc, it);
}

static int sq_points_apply(struct tsdb__conn *tc, struct tsdb__item *items,
                           size_t n)
{
    /* Whole statements of new points until one meets a stored point;
     * from there on (a replay, most likely) row by row. */
    size_t i = 0;
    int rc = CORE_OK;
    while (n - i >= TSDB_POINTS_MANY &&
           (rc = points_many(tc, &items[i])) == CORE_OK)
        i += TSDB_POINTS_MANY;
    if (rc == CORE_ECONFLICT)
        rc = CORE_OK;
    for (; i < n && rc == CORE_OK; i++)
        rc = point_one(tc, &items[i]);
    if (rc == CORE_OK)
        rc = rollup_log(tc, items, n);
    if (rc == CORE_OK && tc->log_rows > 0 &&
        (tc->log_rows >= FOLD_ROWS ||
         core_time_now_ms() - tc->log_since_ms >= FOLD_MS))
        rc = sq_rollup_fold(tc);
    return rc;
}

const struct tsdb__backend tsdb__sqlite = {
    .name = "sqlite",
    .dialect = DB_SQLITE,
    .sql = sql,
    .writer_init = sq_writer_init,
    .raw_append = sq_raw_append,
    .points_apply = sq_points_apply,
    .rollup_fold = sq_rollup_fold,
};
