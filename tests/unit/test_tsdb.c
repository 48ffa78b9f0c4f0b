/*
 * src/tsdb against both backends: the same tests run on SQLite (a
 * temporary directory) and on PostgreSQL ($ARGUS_TEST_PG_URL if set,
 * otherwise a private server started with scripts/pg-test.sh for the run).
 * Each backend gets one fresh, migrated store; tests keep apart by using
 * their own organisation ids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "db.h"
#include "tsdb.h"
#include "pg_fixture.h"

struct backend {
    enum db_dialect dialect;
    char dir[128];
    char base_url[512];
    bool started;
    struct db *admin;
    char store[64];
    struct db *db;
    struct tsdb *t;
};

/* 2026-11-23T00:00:00Z: tests write around it. */
#define T0 INT64_C(1795392000000)
#define MIN_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)

/* ----------------------------------------------------------------- helpers */

static void uuid_of(char out[CORE_UUID_STR_LEN], unsigned a, unsigned b)
{
    snprintf(out, CORE_UUID_STR_LEN, "%08x-0000-7000-8000-%012x", a, b);
}

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static struct db_conn *acquire_ok(struct db *db, bool write)
{
    struct db_conn *c = NULL;
    int rc = db_conn_acquire(db, write, &c);
    if (rc != CORE_OK)
        fail_msg("acquire failed: %s", core_err_name(rc));
    return c;
}

static void exec_ok(struct db_conn *c, const char *sql)
{
    int rc = db_exec(c, sql);
    if (rc != CORE_OK)
        fail_msg("exec failed: %s: %s\n  sql: %s", core_err_name(rc),
                 db_errmsg(c), sql);
}

/* The integer sql returns with one text parameter (or none). */
static int64_t query_int(struct db_conn *c, const char *sql, const char *arg)
{
    struct db_stmt *s = NULL;
    bool row = false;
    int rc = db_prepare(c, sql, &s);
    if (rc == CORE_OK && arg)
        rc = db_bind_text(s, 1, arg);
    if (rc == CORE_OK)
        rc = db_step(s, &row);
    if (rc != CORE_OK || !row)
        fail_msg("query failed: %s: %s\n  sql: %s", core_err_name(rc),
                 db_errmsg(c), sql);
    int64_t v = db_col_int64(s, 0);
    db_finalize(s);
    return v;
}

static void write_points(struct backend *b, struct tsdb *t,
                         const struct tsdb_point *pts, size_t n,
                         size_t want_written)
{
    struct db_conn *c = acquire_ok(b->db, true);
    size_t written = 99999;
    assert_int_equal(db_begin(c), CORE_OK);
    int rc = tsdb_points_write(t, c, pts, n, &written);
    if (rc != CORE_OK)
        fail_msg("points_write: %s: %s", core_err_name(rc), db_errmsg(c));
    assert_int_equal(tsdb_commit(t, c), CORE_OK);
    db_conn_release(c);
    if (want_written != SIZE_MAX)
        assert_int_equal(written, want_written);
}

/* Collected query rows. */
struct rows {
    struct tsdb_row r[4096];
    char metric[4096][32];
    char str[4096][32];
    size_t n;
};

static int collect(const struct tsdb_row *row, void *ctx)
{
    struct rows *rs = ctx;
    if (rs->n >= 4096)
        return -100;
    rs->r[rs->n] = *row;
    snprintf(rs->metric[rs->n], sizeof rs->metric[0], "%s", row->metric);
    rs->r[rs->n].metric = rs->metric[rs->n];
    if (row->str) {
        snprintf(rs->str[rs->n], sizeof rs->str[0], "%s", row->str);
        rs->r[rs->n].str = rs->str[rs->n];
    }
    rs->n++;
    return 0;
}

static void run_query(struct backend *b, struct tsdb *t,
                      const struct tsdb_query *q, struct rows *rs)
{
    struct db_conn *c = acquire_ok(b->db, false);
    rs->n = 0;
    int rc = tsdb_query(t, c, q, collect, rs);
    if (rc != CORE_OK)
        fail_msg("query: %s: %s", core_err_name(rc), db_errmsg(c));
    db_conn_release(c);
}

static void run_latest(struct backend *b, const char *org, const char *ent,
                       struct rows *rs)
{
    struct db_conn *c = acquire_ok(b->db, false);
    rs->n = 0;
    int rc = tsdb_latest(b->t, c, org, TSDB_DEVICE, ent, collect, rs);
    if (rc != CORE_OK)
        fail_msg("latest: %s: %s", core_err_name(rc), db_errmsg(c));
    db_conn_release(c);
}

static struct tsdb_point num_point(const char *org, const char *dev,
                                   const char *metric, int64_t ts, double v)
{
    return (struct tsdb_point){.org_id = org, .entity = TSDB_DEVICE,
                               .entity_id = dev, .metric = metric,
                               .ts_ms = ts, .type = TSDB_NUMBER, .num = v};
}

/* --------------------------------------------------------- group set-up */

static int teardown(void **state);


static int open_store(struct backend *b, const char *url)
{
    struct db_options o = {.pool_size = 4, .busy_timeout_ms = 5000};
    if (db_open(url, &o, &b->db) != CORE_OK)
        return -1;
    if (db_migrate(b->db, NULL) != CORE_OK) {
        fprintf(stderr, "test_tsdb: migration failed\n");
        return -1;
    }
    return tsdb_create(b->db, &b->t) == CORE_OK ? 0 : -1;
}

static int sqlite_setup(void **state)
{
    struct backend *b = calloc(1, sizeof *b);
    if (!b)
        return -1;
    *state = b;
    b->dialect = DB_SQLITE;
    snprintf(b->dir, sizeof b->dir, "/tmp/argus-tsdbtest-XXXXXX");
    if (!mkdtemp(b->dir)) {
        b->dir[0] = '\0';
        goto fail;
    }
    char url[256];
    snprintf(url, sizeof url, "sqlite:%s/tsdb.db", b->dir);
    if (open_store(b, url) != 0)
        goto fail;
    return 0;
fail:
    teardown(state);
    *state = NULL;
    return -1;
}

static int pg_setup(void **state)
{
    struct backend *b = calloc(1, sizeof *b);
    if (!b)
        return -1;
    *state = b;
    b->dialect = DB_POSTGRES;
    const char *env = getenv("ARGUS_TEST_PG_URL");
    if (env && *env) {
        snprintf(b->base_url, sizeof b->base_url, "%s", env);
    } else {
        snprintf(b->dir, sizeof b->dir, "/tmp/argus-pgtsdb-XXXXXX");
        if (!mkdtemp(b->dir)) {
            b->dir[0] = '\0';
            goto fail;
        }
        if (test_pg_script("start", b->dir, b->base_url, sizeof b->base_url) != 0)
            goto fail;
        b->started = true;
    }
    struct db_options o = {.pool_size = 1, .busy_timeout_ms = 5000};
    if (db_open(b->base_url, &o, &b->admin) != CORE_OK)
        goto fail;
    snprintf(b->store, sizeof b->store, "argus_tsdb_test_%d", (int)getpid());
    struct db_conn *c = acquire_ok(b->admin, true);
    char sql[160];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", b->store);
    exec_ok(c, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", b->store);
    exec_ok(c, sql);
    db_conn_release(c);
    /* Same server and parameters, another database. */
    const char *u = b->base_url;
    const char *host = strstr(u, "://") + 3;
    size_t hostlen = strcspn(host, "/?");
    const char *params = host + strcspn(host, "?");
    char url[700];
    snprintf(url, sizeof url, "%.*s/%s%s", (int)(host - u + hostlen), u,
             b->store, params);
    if (open_store(b, url) != 0)
        goto fail;
    return 0;
fail:
    teardown(state);
    *state = NULL;
    return -1;
}

static int teardown(void **state)
{
    struct backend *b = *state;
    if (!b)
        return 0;
    tsdb_destroy(b->t);
    db_close(b->db);
    if (b->admin) {
        struct db_conn *c = NULL;
        if (b->store[0] && db_conn_acquire(b->admin, true, &c) == CORE_OK) {
            char sql[160];
            snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)",
                     b->store);
            db_exec(c, sql);
            db_conn_release(c);
        }
        db_close(b->admin);
    }
    if (b->dialect == DB_SQLITE && b->dir[0]) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", b->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", b->dir);
    }
    if (b->started)
        test_pg_script("stop", b->dir, NULL, 0);
    else if (b->dialect == DB_POSTGRES && b->dir[0])
        rmdir(b->dir); /* made for a server that did not start */
    free(b);
    return 0;
}

/* ------------------------------------------------------------ raw store */

static void raw_msg(struct tsdb_raw *m, const char *id,
                    const char *org, const char *dev, int64_t at,
                    const char *payload)
{
    *m = (struct tsdb_raw){.id = id, .org_id = org, .device_id = dev,
                           .received_ms = at, .transport = "http",
                           .payload = payload,
                           .payload_len = strlen(payload)};
}

static void test_raw_append_idempotent_immutable(void **state)
{
    struct backend *b = *state;
    char org[CORE_UUID_STR_LEN], dev[CORE_UUID_STR_LEN];
    char ids[4][CORE_UUID_STR_LEN];
    uuid_of(org, 0x100, 1);
    uuid_of(dev, 0x100, 2);
    for (unsigned i = 0; i < 4; i++)
        uuid_of(ids[i], 0x101, i);
    struct tsdb_raw m[4];
    raw_msg(&m[0], ids[0], org, dev, T0, "{\"t\":1}");
    raw_msg(&m[1], ids[1], org, dev, T0 + 1, "{\"quote\":\"a\\\"b\",\"u\":\"é\"}");
    raw_msg(&m[2], ids[2], org, dev, T0 + 2, "{}");

    struct db_conn *c = acquire_ok(b->db, true);
    assert_int_equal(db_begin(c), CORE_OK);
    assert_int_equal(tsdb_raw_append(b->t, c, m, 3), CORE_OK);
    assert_int_equal(db_commit(c), CORE_OK);

    /* Redelivery: the same ids (one with another payload) and one new. */
    raw_msg(&m[0], ids[0], org, dev, T0, "{\"t\":\"changed\"}");
    raw_msg(&m[3], ids[3], org, dev, T0 + 3, "[1,2]");
    assert_int_equal(db_begin(c), CORE_OK);
    assert_int_equal(tsdb_raw_append(b->t, c, m, 4), CORE_OK);
    assert_int_equal(db_commit(c), CORE_OK);

    const char *count_sql =
        "SELECT count(*) FROM telemetry_raw WHERE organization_id = ?";
    assert_int_equal(query_int(c, count_sql, org), 4);
    assert_int_equal(
        query_int(c, "SELECT count(*) FROM telemetry_raw WHERE id = ? "
                     "AND payload = '{\"t\":1}'",
                  ids[0]),
        1);
    assert_int_equal(
        query_int(c, "SELECT count(*) FROM telemetry_raw WHERE payload = "
                     "'{\"quote\":\"a\\\"b\",\"u\":\"é\"}' AND id = ?",
                  ids[1]),
        1);

    /* Neither UPDATE nor DELETE gets through, in or out of a
     * transaction. */
    assert_int_equal(db_exec(c, "UPDATE telemetry_raw SET payload = 'x'"),
                     CORE_ECONSTRAINT);
    assert_int_equal(db_exec(c, "DELETE FROM telemetry_raw"),
                     CORE_ECONSTRAINT);
    assert_int_equal(db_begin(c), CORE_OK);
    assert_int_equal(db_exec(c, "DELETE FROM telemetry_raw WHERE "
                                "received_at < '2030-01-01T00:00:00.000Z'"),
                     CORE_ECONSTRAINT);
    db_rollback(c);
    if (b->dialect == DB_POSTGRES)
        assert_int_equal(db_exec(c, "TRUNCATE telemetry_raw"),
                         CORE_ECONSTRAINT);
    assert_int_equal(query_int(c, count_sql, org), 4);

    /* Bad input is refused before the store sees it. */
    raw_msg(&m[0], ids[0], "not-a-uuid", dev, T0, "{}");
    assert_int_equal(tsdb_raw_append(b->t, c, m, 1), CORE_EINVAL);
    static const char *const bad_ids[] = {
        "0000010a-0000-7000-8000-00000000000",   /* a digit short */
        "0000010a-0000-7000-8000-0000000000000", /* a digit more */
        "0000010a0-000-7000-8000-000000000000",  /* a dash moved */
        "0000010g-0000-7000-8000-000000000000",  /* not hex */
        "0000010a-0000-7000-8000_000000000000",  /* not a dash */
        "0000010a-0000-7000-8000-00000000000\xc1"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        raw_msg(&m[0], bad_ids[i], org, dev, T0, "{}");
        assert_int_equal(tsdb_raw_append(b->t, c, m, 1), CORE_EINVAL);
    }
    /* Upper-case hex is the same id, stored lower-case. */
    char upper[CORE_UUID_STR_LEN];
    uuid_of(upper, 0x101ABC, 0xDEF);
    for (char *u = upper; *u; u++)
        *u = (char)toupper((unsigned char)*u);
    raw_msg(&m[0], upper, org, dev, T0 + 9, "{}");
    assert_int_equal(tsdb_raw_append(b->t, c, m, 1), CORE_OK);
    assert_int_equal(query_int(c, "SELECT count(*) FROM telemetry_raw WHERE "
                                  "id = '00101abc-0000-7000-8000-000000000def'",
                               NULL),
                     1);
    assert_int_equal(query_int(c, count_sql, org), 5);
    static const char nul_inside[8] = "{}\0{}";
    raw_msg(&m[0], ids[0], org, dev, T0, nul_inside);
    m[0].payload_len = 5; /* a NUL inside */
    assert_int_equal(tsdb_raw_append(b->t, c, m, 1), CORE_EINVAL);
    m[0].payload_len = 1; /* not where the text ends */
    assert_int_equal(tsdb_raw_append(b->t, c, m, 1), CORE_EINVAL);
    db_conn_release(c);
}

/* More messages than one multi-row statement holds, with an id repeated
 * inside the call and a redelivery that overlaps: each id stored once,
 * with its first payload. */
/* Batches big enough for PostgreSQL's plain insert (tsdb_postgres.c,
 * PLAIN_MIN), with ids repeated inside a batch and across batches, and
 * one batch of new ids only. */
static void test_raw_append_many(void **state)
{
    struct backend *b = *state;
    enum { N = 400, DISTINCT = 297 };
    char org[CORE_UUID_STR_LEN], dev[CORE_UUID_STR_LEN];
    static char ids[N][CORE_UUID_STR_LEN];
    static char text[N][32];
    uuid_of(org, 0x110, 1);
    uuid_of(dev, 0x110, 2);
    static struct tsdb_raw m[N];
    for (unsigned i = 0; i < N; i++) {
        /* 297.. are 0.. again, received at the same time */
        uuid_of(ids[i], 0x111, i % DISTINCT);
        snprintf(text[i], sizeof text[i], "{\"n\":%u}", i);
        raw_msg(&m[i], ids[i], org, dev, T0 + i % DISTINCT, text[i]);
    }
    struct db_conn *c = acquire_ok(b->db, true);
    const char *count_sql =
        "SELECT count(*) FROM telemetry_raw WHERE organization_id = ?";
    assert_int_equal(db_begin(c), CORE_OK);
    assert_int_equal(tsdb_raw_append(b->t, c, m, 280), CORE_OK);
    assert_int_equal(db_commit(c), CORE_OK);
    assert_int_equal(query_int(c, count_sql, org), 280);
    assert_int_equal(db_begin(c), CORE_OK);
    assert_int_equal(tsdb_raw_append(b->t, c, m, N), CORE_OK);
    assert_int_equal(db_commit(c), CORE_OK);
    assert_int_equal(db_begin(c), CORE_OK);
    assert_int_equal(tsdb_raw_append(b->t, c, m + 5, N - 5), CORE_OK);
    assert_int_equal(db_commit(c), CORE_OK);
    assert_int_equal(query_int(c, count_sql, org), DISTINCT);
    assert_int_equal(query_int(c, "SELECT count(*) FROM telemetry_raw WHERE "
                                  "id = ? AND payload = '{\"n\":1}'",
                               ids[1]),
                     1);
    assert_int_equal(query_int(c, "SELECT count(*) FROM telemetry_raw WHERE "
                                  "id = ? AND payload = '{\"n\":296}'",
                               ids[296]),
                     1);
    db_conn_release(c);
}

static void test_raw_retention(void **state)
{
    struct backend *b = *state;
    char org[CORE_UUID_STR_LEN], dev[CORE_UUID_STR_LEN];
    char ids[6][CORE_UUID_STR_LEN];
    uuid_of(org, 0x200, 1);
    uuid_of(dev, 0x200, 2);
    struct tsdb_raw m[6];
    /* Three from 2020 (older than any other test's), three from now. */
    int64_t old = INT64_C(1577836800000);
    for (unsigned i = 0; i < 6; i++) {
        uuid_of(ids[i], 0x201, i);
        raw_msg(&m[i], ids[i], org, dev, i < 3 ? old + i * DAY_MS : T0 + i,
                "{}");
    }
    struct db_conn *c = acquire_ok(b->db, true);
    assert_int_equal(db_begin(c), CORE_OK);
    assert_int_equal(tsdb_raw_append(b->t, c, m, 6), CORE_OK);
    assert_int_equal(db_commit(c), CORE_OK);

    /* The cutoff is exclusive: the row at old + 2 days stays. */
    int64_t deleted = -1;
    assert_int_equal(tsdb_raw_retention(b->t, c, old + 2 * DAY_MS, &deleted),
                     CORE_OK);
    assert_int_equal(deleted, 2);
    const char *count_sql =
        "SELECT count(*) FROM telemetry_raw WHERE organization_id = ?";
    assert_int_equal(query_int(c, count_sql, org), 4);
    assert_int_equal(tsdb_raw_retention(b->t, c, old + 3 * DAY_MS, &deleted),
                     CORE_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(query_int(c, count_sql, org), 3);

    /* The gate is closed again afterwards. */
    assert_int_equal(db_exec(c, "DELETE FROM telemetry_raw"),
                     CORE_ECONSTRAINT);
    assert_int_equal(query_int(c, count_sql, org), 3);
    db_conn_release(c);
}

/* -------------------------------------------------------------- points */

/* Folds SQLite's deferred rollup deltas into the rollup tables. */
static void flush_rollups(struct backend *b, struct tsdb *t)
{
    struct db_conn *c = acquire_ok(b->db, true);
    assert_int_equal(tsdb_rollups_flush(t, c), CORE_OK);
    db_conn_release(c);
}

/* Rows of each rollup and points of an organisation, as one number each
 * (the rollup tables after a fold). */
static void snapshot(struct backend *b, const char *org, int64_t out[5])
{
    flush_rollups(b, b->t);
    static const char *const sql[5] = {
        "SELECT count(*) FROM ts_points p JOIN ts_series s ON s.id = "
        "p.series_id WHERE s.organization_id = ?",
        "SELECT count(*) + coalesce(sum(r.count), 0) + "
        "coalesce(sum(r.sum), 0) FROM ts_rollup_5m r JOIN ts_series s ON "
        "s.id = r.series_id WHERE s.organization_id = ?",
        "SELECT count(*) + coalesce(sum(r.count), 0) + "
        "coalesce(sum(r.sum), 0) FROM ts_rollup_1h r JOIN ts_series s ON "
        "s.id = r.series_id WHERE s.organization_id = ?",
        "SELECT count(*) + coalesce(sum(r.count), 0) + "
        "coalesce(sum(r.sum), 0) FROM ts_rollup_1d r JOIN ts_series s ON "
        "s.id = r.series_id WHERE s.organization_id = ?",
        "SELECT count(*) FROM ts_series WHERE organization_id = ?",
    };
    struct db_conn *c = acquire_ok(b->db, false);
    for (int i = 0; i < 5; i++)
        out[i] = query_int(c, sql[i], org);
    db_conn_release(c);
}

static void test_points_idempotent(void **state)
{
    struct backend *b = *state;
    char org[CORE_UUID_STR_LEN], dev[2][CORE_UUID_STR_LEN];
    uuid_of(org, 0x300, 1);
    uuid_of(dev[0], 0x300, 2);
    uuid_of(dev[1], 0x300, 3);
    struct tsdb_point p[200];
    static const char *const metrics[] = {"temp", "hum", "co2", "door"};
    size_t n = 0;
    for (int i = 0; i < 50; i++) {
        for (int k = 0; k < 4; k++) {
            p[n] = num_point(org, dev[i % 2], metrics[k],
                             T0 + (int64_t)i * 37 * MIN_MS, i * 1.5 + k);
            if (k == 3) {
                p[n].type = TSDB_BOOL;
                p[n].num = i % 3 == 0;
            }
            n++;
        }
    }
    write_points(b, b->t, p, n, n);
    int64_t before[5], after[5];
    snapshot(b, org, before);
    assert_int_equal(before[0], (int64_t)n);
    assert_int_equal(before[4], 8);
    /* The same batch again, and again in two halves. */
    write_points(b, b->t, p, n, 0);
    write_points(b, b->t, p, n / 2, 0);
    write_points(b, b->t, p + n / 2, n - n / 2, 0);
    snapshot(b, org, after);
    assert_memory_equal(before, after, sizeof before);
    /* New points with one stored point among them, past the first 32
     * (SQLite inserts 32 at a time and goes row by row from a conflict):
     * every new one is stored and counted once. */
    struct tsdb_point q[100];
    for (int i = 0; i < 100; i++)
        q[i] = num_point(org, dev[0], "fresh", T0 + (int64_t)i * MIN_MS, i);
    write_points(b, b->t, &q[45], 1, 1);
    write_points(b, b->t, q, 100, 99);
    snapshot(b, org, after);
    assert_int_equal(after[0], before[0] + 100);
    write_points(b, b->t, q, 100, 0);
}

static void test_points_replace(void **state)
{
    struct backend *b = *state;
    char org[CORE_UUID_STR_LEN], dev[CORE_UUID_STR_LEN];
    uuid_of(org, 0x400, 1);
    uuid_of(dev, 0x400, 2);
    struct tsdb_point p[3] = {
        num_point(org, dev, "v", T0 + 1000, 10),
        num_point(org, dev, "v", T0 + 2000, 20),
        num_point(org, dev, "v", T0 + 3000, 30),
    };
    write_points(b, b->t, p, 3, 3);
    /* A redelivery with another value at 3000 (the bucket's last) and an
     * unchanged one. */
    struct tsdb_point q[2] = {num_point(org, dev, "v", T0 + 3000, 5),
                              num_point(org, dev, "v", T0 + 1000, 10)};
    write_points(b, b->t, q, 2, 1);
    /* Within one call the last of equal keys wins. */
    struct tsdb_point r[2] = {num_point(org, dev, "v", T0 + 2000, 7),
                              num_point(org, dev, "v", T0 + 2000, 8)};
    write_points(b, b->t, r, 2, 1);

    struct rows *rs = malloc(sizeof *rs);
    assert_non_null(rs);
    struct tsdb_query qq = {.org_id = org, .entity = TSDB_DEVICE,
                            .entity_id = dev, .metric = "v",
                            .from_ms = T0, .to_ms = T0 + DAY_MS,
                            .limit = 10, .agg = TSDB_AGG_NONE};
    run_query(b, b->t, &qq, rs);
    assert_int_equal(rs->n, 3);
    assert_true(rs->r[0].ts_ms == T0 + 3000 && rs->r[0].last == 5);
    assert_true(rs->r[1].ts_ms == T0 + 2000 && rs->r[1].last == 8);
    assert_true(rs->r[2].ts_ms == T0 + 1000 && rs->r[2].last == 10);
    for (int agg = TSDB_AGG_5MIN; agg <= TSDB_AGG_1DAY; agg++) {
        qq.agg = (enum tsdb_agg)agg;
        run_query(b, b->t, &qq, rs);
        assert_int_equal(rs->n, 1);
        assert_int_equal(rs->r[0].ts_ms, T0);
        assert_int_equal(rs->r[0].count, 3);
        assert_true(rs->r[0].min == 5 && rs->r[0].max == 10);
        assert_true(rs->r[0].sum == 23 && rs->r[0].last == 5);
    }
    /* A number replaced by a string leaves the rollups without it. */
    struct tsdb_point s = num_point(org, dev, "v", T0 + 3000, 0);
    s.type = TSDB_STRING;
    s.str = "text";
    write_points(b, b->t, &s, 1, 1);
    qq.agg = TSDB_AGG_5MIN;
    run_query(b, b->t, &qq, rs);
    assert_int_equal(rs->n, 1);
    assert_true(rs->r[0].count == 2 && rs->r[0].sum == 18 &&
                rs->r[0].last == 8 && rs->r[0].max == 10);
    free(rs);
}

/* The model: every (series, time) → value written last. */
struct mpoint {
    int series;
    int64_t ts;
    double v;
    bool set;
};

#define M_SERIES 6
#define M_SLOTS 600

struct agg {
    double min, max, sum, last;
    int64_t count, last_ts;
};

static const char *const model_metrics[2] = {"a", "b"};

/* Checks every series' points and rollups against the model. */
static void check_model(struct backend *b, const char *org,
                        char dev[3][CORE_UUID_STR_LEN],
                        const struct mpoint *model)
{
    const char *const *metrics = model_metrics;
    struct rows *rs = malloc(sizeof *rs);
    assert_non_null(rs);
    struct agg *want = malloc(M_SLOTS * sizeof *want);
    int64_t *bstart = malloc(M_SLOTS * sizeof *bstart);
    assert_true(want && bstart);
    static const int64_t widths[3] = {5 * MIN_MS, HOUR_MS, DAY_MS};
    size_t checked = 0;
    for (int s = 0; s < M_SERIES; s++) {
        struct tsdb_query q = {.org_id = org, .entity = TSDB_DEVICE,
                               .entity_id = dev[s / 2],
                               .metric = metrics[s % 2],
                               .from_ms = T0 - 2 * DAY_MS,
                               .to_ms = T0 + 3 * DAY_MS, .limit = 100000};
        /* Raw points, newest first. */
        q.agg = TSDB_AGG_NONE;
        run_query(b, b->t, &q, rs);
        size_t j = 0;
        for (int k = M_SLOTS - 1; k >= 0; k--) {
            const struct mpoint *m = &model[s * M_SLOTS + k];
            if (!m->set)
                continue;
            assert_true(j < rs->n);
            assert_int_equal(rs->r[j].ts_ms, m->ts);
            assert_true(rs->r[j].last == m->v);
            j++;
        }
        assert_int_equal(j, rs->n);
        for (int r = 0; r < 3; r++) {
            /* Naive recomputation: bucket by bucket from the model. */
            size_t nb = 0;
            for (int k = 0; k < M_SLOTS; k++) {
                const struct mpoint *m = &model[s * M_SLOTS + k];
                if (!m->set)
                    continue;
                int64_t bs = m->ts - m->ts % widths[r];
                if (nb == 0 || bstart[nb - 1] != bs) {
                    bstart[nb] = bs;
                    want[nb] = (struct agg){m->v, m->v, 0, m->v, 0, m->ts};
                    nb++;
                }
                struct agg *a = &want[nb - 1];
                a->min = fmin(a->min, m->v);
                a->max = fmax(a->max, m->v);
                a->sum += m->v;
                a->count++;
                if (m->ts >= a->last_ts) {
                    a->last = m->v;
                    a->last_ts = m->ts;
                }
            }
            q.agg = (enum tsdb_agg)(TSDB_AGG_5MIN + r);
            run_query(b, b->t, &q, rs);
            assert_int_equal(rs->n, nb);
            for (size_t i = 0; i < nb; i++) {
                const struct tsdb_row *row = &rs->r[nb - 1 - i];
                const struct agg *a = &want[i];
                assert_int_equal(row->ts_ms, bstart[i]);
                assert_int_equal(row->count, a->count);
                if (row->min != a->min || row->max != a->max ||
                    row->sum != a->sum || row->last != a->last ||
                    fabs(row->avg - a->sum / (double)a->count) > 1e-9)
                    fail_msg("series %d res %d bucket %" PRId64
                             ": got min %g max %g sum %g last %g, want "
                             "%g %g %g %g",
                             s, r, bstart[i], row->min, row->max, row->sum,
                             row->last, a->min, a->max, a->sum, a->last);
                checked++;
            }
        }
        /* All metrics of the device at once: the same buckets, merged
         * the same way (the entity query's path through the log). */
        if (s % 2 == 0) {
            q.metric = NULL;
            q.agg = TSDB_AGG_1HOUR;
            run_query(b, b->t, &q, rs);
            int64_t total = 0;
            for (size_t i = 0; i < rs->n; i++)
                total += rs->r[i].count;
            int64_t points = 0;
            for (int k = 0; k < 2 * M_SLOTS; k++)
                points += model[s * M_SLOTS + k].set;
            assert_int_equal(total, points);
        }
    }
    assert_true(checked > 100);
    free(bstart);
    free(want);
    free(rs);
}

/* SQLite: whether the deferred rollup log holds rows (PostgreSQL has none). */
static void expect_log(struct backend *b, bool rows)
{
    if (b->dialect != DB_SQLITE)
        return;
    struct db_conn *c = acquire_ok(b->db, false);
    int64_t n = query_int(c, "SELECT count(*) FROM ts_rollup_log", NULL);
    db_conn_release(c);
    if ((n > 0) != rows)
        fail_msg("ts_rollup_log has %" PRId64 " rows", n);
}

/* Rollups are checked with the deferred deltas unfolded, partly folded
 * (the same buckets in the tables and in the log) and all folded. */
static void test_rollups_against_model(void **state)
{
    struct backend *b = *state;
    char org[CORE_UUID_STR_LEN], dev[3][CORE_UUID_STR_LEN];
    uuid_of(org, 0x500, 1);
    for (unsigned i = 0; i < 3; i++)
        uuid_of(dev[i], 0x500, 10 + i);
    const char *const *metrics = model_metrics;
    /* Series s: device s / 2, metric s % 2. Times: slot k of a series is
     * at T0 - 1 day + k * 7 min 13 s, spanning about three days. */
    struct mpoint *model = calloc(M_SERIES * M_SLOTS, sizeof *model);
    assert_non_null(model);
    rng_state = 0x9e3779b97f4a7c15ull;
    struct tsdb_point batch[300];
    for (int round = 0; round < 12; round++) {
        size_t n = 50 + rng() % 250;
        for (size_t i = 0; i < n; i++) {
            int s = (int)(rng() % M_SERIES);
            int k = (int)(rng() % M_SLOTS);
            /* Quarter steps: sums are exact in any order. */
            double v = (double)((int64_t)(rng() % 4001) - 2000) * 0.25;
            int64_t ts = T0 - DAY_MS + (int64_t)k * 433000;
            batch[i] = num_point(org, dev[s / 2], metrics[s % 2], ts, v);
            struct mpoint *m = &model[s * M_SLOTS + k];
            *m = (struct mpoint){s, ts, v, true};
        }
        write_points(b, b->t, batch, n, SIZE_MAX);
        /* Now and then a redelivery of the whole batch. */
        if (round % 4 == 3)
            write_points(b, b->t, batch, n, 0);
        /* After the first batch (all new points) the deltas are still in
         * SQLite's log (folds come a second after a write, or before a
         * changed point's buckets are rebuilt), so queries merge them. */
        if (round == 0) {
            expect_log(b, true);
            check_model(b, org, dev, model);
        }
    }
    /* New points only, in buckets the tables already hold: both have
     * rows of the same buckets now. */
    size_t n = 0;
    for (int s = 0; s < M_SERIES && n < 200; s++) {
        for (int k = 0; k < M_SLOTS && n < 200; k += 7) {
            struct mpoint *m = &model[s * M_SLOTS + k];
            if (m->set)
                continue;
            int64_t ts = T0 - DAY_MS + (int64_t)k * 433000;
            double v = (double)(k % 50) * 0.5;
            batch[n++] = num_point(org, dev[s / 2], metrics[s % 2], ts, v);
            *m = (struct mpoint){s, ts, v, true};
        }
    }
    write_points(b, b->t, batch, n, n);
    expect_log(b, true);
    check_model(b, org, dev, model);
    flush_rollups(b, b->t);
    expect_log(b, false);
    check_model(b, org, dev, model);
    free(model);
}

static void test_queries(void **state)
{
    struct backend *b = *state;
    char org[CORE_UUID_STR_LEN], dev[CORE_UUID_STR_LEN],
        other[CORE_UUID_STR_LEN];
    uuid_of(org, 0x600, 1);
    uuid_of(dev, 0x600, 2);
    uuid_of(other, 0x600, 3);
    struct tsdb_point p[41];
    size_t n = 0;
    /* temp every minute for 20 minutes, hum every 2 minutes, one point of
     * another device. */
    for (int i = 0; i < 20; i++)
        p[n++] = num_point(org, dev, "temp", T0 + i * MIN_MS, 20 + i);
    for (int i = 0; i < 20; i += 2)
        p[n++] = num_point(org, dev, "hum", T0 + i * MIN_MS, 50 + i);
    p[n++] = num_point(org, other, "temp", T0, 99);
    write_points(b, b->t, p, n, n);

    struct rows *rs = malloc(sizeof *rs);
    assert_non_null(rs);
    /* One metric, a range [from, to) and a limit: newest first. */
    struct tsdb_query q = {.org_id = org, .entity = TSDB_DEVICE,
                           .entity_id = dev, .metric = "temp",
                           .from_ms = T0 + 5 * MIN_MS,
                           .to_ms = T0 + 15 * MIN_MS, .limit = 100,
                           .agg = TSDB_AGG_NONE};
    run_query(b, b->t, &q, rs);
    assert_int_equal(rs->n, 10);
    for (size_t i = 0; i < rs->n; i++) {
        assert_int_equal(rs->r[i].ts_ms, T0 + (14 - (int64_t)i) * MIN_MS);
        assert_true(rs->r[i].last == 34 - (double)i);
        assert_int_equal(rs->r[i].count, 1);
        assert_int_equal(rs->r[i].type, TSDB_NUMBER);
        assert_string_equal(rs->r[i].metric, "temp");
    }
    q.limit = 3;
    run_query(b, b->t, &q, rs);
    assert_int_equal(rs->n, 3);
    assert_int_equal(rs->r[2].ts_ms, T0 + 12 * MIN_MS);

    /* Every metric: by time, then metric. */
    q.metric = NULL;
    q.limit = 5;
    q.from_ms = T0;
    q.to_ms = T0 + 20 * MIN_MS;
    run_query(b, b->t, &q, rs);
    assert_int_equal(rs->n, 5);
    assert_true(rs->r[0].ts_ms == T0 + 19 * MIN_MS &&
                strcmp(rs->r[0].metric, "temp") == 0);
    assert_true(rs->r[1].ts_ms == T0 + 18 * MIN_MS &&
                strcmp(rs->r[1].metric, "hum") == 0);
    assert_true(rs->r[2].ts_ms == T0 + 18 * MIN_MS &&
                strcmp(rs->r[2].metric, "temp") == 0);

    /* 5-minute buckets of both metrics: 4 buckets × 2. */
    q.agg = TSDB_AGG_5MIN;
    q.limit = 100;
    run_query(b, b->t, &q, rs);
    assert_int_equal(rs->n, 8);
    assert_int_equal(rs->r[0].ts_ms, T0 + 15 * MIN_MS);
    assert_string_equal(rs->r[0].metric, "hum");
    assert_int_equal(rs->r[0].count, 2); /* 16 and 18 */
    assert_string_equal(rs->r[1].metric, "temp");
    assert_int_equal(rs->r[1].count, 5);
    assert_true(rs->r[1].min == 35 && rs->r[1].max == 39 &&
                rs->r[1].avg == 37 && rs->r[1].last == 39);
    /* A bucket is in the range when its start is. */
    q.from_ms = T0 + 1;
    run_query(b, b->t, &q, rs);
    assert_int_equal(rs->n, 6);

    /* Hours and days: one bucket per metric. */
    q.from_ms = T0;
    q.agg = TSDB_AGG_1HOUR;
    q.metric = "temp";
    run_query(b, b->t, &q, rs);
    assert_int_equal(rs->n, 1);
    assert_true(rs->r[0].count == 20 && rs->r[0].sum == 590 &&
                rs->r[0].last == 39);
    q.agg = TSDB_AGG_1DAY;
    run_query(b, b->t, &q, rs);
    assert_int_equal(rs->n, 1);
    assert_int_equal(rs->r[0].ts_ms, T0);

    /* Nothing of another organisation or entity type leaks in. */
    char org2[CORE_UUID_STR_LEN];
    uuid_of(org2, 0x600, 9);
    q.org_id = org2;
    run_query(b, b->t, &q, rs);
    assert_int_equal(rs->n, 0);
    q.org_id = org;
    q.entity = TSDB_ASSET;
    run_query(b, b->t, &q, rs);
    assert_int_equal(rs->n, 0);

    /* A callback's non-zero return stops the query and comes back. */
    struct db_conn *c = acquire_ok(b->db, false);
    q.entity = TSDB_DEVICE;
    q.agg = TSDB_AGG_NONE;
    q.limit = 1000;
    rs->n = 4095;
    assert_int_equal(tsdb_query(b->t, c, &q, collect, rs), -100);
    q.limit = 0;
    assert_int_equal(tsdb_query(b->t, c, &q, collect, rs), CORE_EINVAL);
    db_conn_release(c);
    free(rs);
}

static void test_latest(void **state)
{
    struct backend *b = *state;
    char org[CORE_UUID_STR_LEN], dev[CORE_UUID_STR_LEN];
    uuid_of(org, 0x700, 1);
    uuid_of(dev, 0x700, 2);
    struct tsdb_point p[7] = {
        num_point(org, dev, "temp", T0 + 5000, 21.5),
        num_point(org, dev, "temp", T0 + 9000, 22.5),
        num_point(org, dev, "temp", T0 + 1000, 20.5),
        num_point(org, dev, "on", T0 + 2000, 1),
        num_point(org, dev, "on", T0 + 3000, 0),
        num_point(org, dev, "state", T0 + 4000, 0),
        num_point(org, dev, "state", T0 + 8000, 0),
    };
    p[3].type = p[4].type = TSDB_BOOL;
    p[5].type = p[6].type = TSDB_STRING;
    p[5].str = "idle";
    p[6].str = "run \"fast\" \\ ✓";
    write_points(b, b->t, p, 7, 7);
    struct rows *rs = malloc(sizeof *rs);
    assert_non_null(rs);
    run_latest(b, org, dev, rs);
    assert_int_equal(rs->n, 3);
    assert_string_equal(rs->r[0].metric, "on");
    assert_int_equal(rs->r[0].type, TSDB_BOOL);
    assert_true(rs->r[0].last == 0 && rs->r[0].ts_ms == T0 + 3000);
    assert_string_equal(rs->r[1].metric, "state");
    assert_int_equal(rs->r[1].type, TSDB_STRING);
    assert_string_equal(rs->r[1].str, "run \"fast\" \\ ✓");
    assert_string_equal(rs->r[2].metric, "temp");
    assert_true(rs->r[2].last == 22.5 && rs->r[2].count == 1);
    /* Strings have no rollups. */
    struct tsdb_query q = {.org_id = org, .entity = TSDB_DEVICE,
                           .entity_id = dev, .metric = "state",
                           .from_ms = T0, .to_ms = T0 + DAY_MS,
                           .limit = 10, .agg = TSDB_AGG_1HOUR};
    run_query(b, b->t, &q, rs);
    assert_int_equal(rs->n, 0);
    q.agg = TSDB_AGG_NONE;
    run_query(b, b->t, &q, rs);
    assert_int_equal(rs->n, 2);
    assert_string_equal(rs->r[1].str, "idle");
    /* An entity with no points. */
    char none[CORE_UUID_STR_LEN];
    uuid_of(none, 0x700, 3);
    run_latest(b, org, none, rs);
    assert_int_equal(rs->n, 0);
    free(rs);
}

static void test_series_cache_two_handles(void **state)
{
    struct backend *b = *state;
    char org[CORE_UUID_STR_LEN], dev[CORE_UUID_STR_LEN], up[CORE_UUID_STR_LEN];
    uuid_of(org, 0x800, 1);
    uuid_of(dev, 0x800, 2);
    /* The same device in upper case is the same series. */
    snprintf(up, sizeof up, "%s", dev);
    for (char *q = up; *q; q++)
        *q = (char)(*q >= 'a' && *q <= 'f' ? *q - 32 : *q);
    struct tsdb *t2 = NULL;
    assert_int_equal(tsdb_create(b->db, &t2), CORE_OK);

    struct tsdb_point p = num_point(org, dev, "m", T0, 1);
    write_points(b, b->t, &p, 1, 1);
    p = num_point(org, up, "m", T0 + 1000, 2);
    write_points(b, t2, &p, 1, 1);
    p = num_point(org, dev, "m2", T0, 3);
    write_points(b, t2, &p, 1, 1);
    p = num_point(org, dev, "m2", T0 + 1000, 4);
    write_points(b, b->t, &p, 1, 1);
    int64_t snap[5];
    snapshot(b, org, snap);
    assert_int_equal(snap[4], 2); /* series */
    assert_int_equal(snap[0], 4); /* points */

    /* A series created in a transaction that is rolled back is forgotten,
     * whether the rollback went through tsdb or not. */
    for (int via_tsdb = 0; via_tsdb < 2; via_tsdb++) {
        struct db_conn *c = acquire_ok(b->db, true);
        char metric[16];
        snprintf(metric, sizeof metric, "gone%d", via_tsdb);
        p = num_point(org, dev, metric, T0, 5);
        assert_int_equal(db_begin(c), CORE_OK);
        assert_int_equal(tsdb_points_write(b->t, c, &p, 1, NULL), CORE_OK);
        if (via_tsdb)
            assert_int_equal(tsdb_rollback(b->t, c), CORE_OK);
        else
            assert_int_equal(db_rollback(c), CORE_OK);
        /* Another series takes the id the rolled-back one had (SQLite
         * reuses it), then the first comes back. */
        struct tsdb_point q = num_point(org, dev, "taker", T0 + via_tsdb, 6);
        assert_int_equal(db_begin(c), CORE_OK);
        assert_int_equal(tsdb_points_write(t2, c, &q, 1, NULL), CORE_OK);
        assert_int_equal(tsdb_commit(t2, c), CORE_OK);
        db_conn_release(c);
        write_points(b, b->t, &p, 1, 1);
        struct rows *rs = malloc(sizeof *rs);
        assert_non_null(rs);
        struct tsdb_query qq = {.org_id = org, .entity = TSDB_DEVICE,
                                .entity_id = dev, .metric = metric,
                                .from_ms = T0, .to_ms = T0 + 1000,
                                .limit = 10, .agg = TSDB_AGG_NONE};
        run_query(b, b->t, &qq, rs);
        assert_int_equal(rs->n, 1);
        assert_true(rs->r[0].last == 5);
        qq.metric = "taker";
        qq.agg = TSDB_AGG_5MIN;
        run_query(b, b->t, &qq, rs);
        assert_int_equal(rs->n, 1);
        assert_int_equal(rs->r[0].count, 1 + via_tsdb);
        free(rs);
    }
    tsdb_destroy(t2);
}

static void test_points_retention(void **state)
{
    struct backend *b = *state;
    char org[CORE_UUID_STR_LEN], dev[CORE_UUID_STR_LEN];
    uuid_of(org, 0xa00, 1);
    uuid_of(dev, 0xa00, 2);
    /* Older than every other test's points: 2019. */
    int64_t old = INT64_C(1546300800000);
    struct tsdb_point p[4] = {
        num_point(org, dev, "m", old, 1),
        num_point(org, dev, "m", old + HOUR_MS, 2),
        num_point(org, dev, "m", old + 2 * HOUR_MS, 3),
        num_point(org, dev, "n", old + 3 * HOUR_MS, 4),
    };
    write_points(b, b->t, p, 4, 4);
    int64_t before[5], after[5], deleted = -1;
    snapshot(b, org, before);
    struct db_conn *c = acquire_ok(b->db, true);
    assert_int_equal(tsdb_points_retention(b->t, c, old + 2 * HOUR_MS,
                                           &deleted),
                     CORE_OK);
    db_conn_release(c);
    assert_int_equal(deleted, 2);
    snapshot(b, org, after);
    assert_int_equal(after[0], 2);
    /* The rollups are all still there. */
    assert_memory_equal(before + 1, after + 1, 4 * sizeof before[0]);
    struct rows *rs = malloc(sizeof *rs);
    assert_non_null(rs);
    struct tsdb_query q = {.org_id = org, .entity = TSDB_DEVICE,
                           .entity_id = dev, .metric = "m",
                           .from_ms = old, .to_ms = old + DAY_MS,
                           .limit = 10, .agg = TSDB_AGG_1DAY};
    run_query(b, b->t, &q, rs);
    assert_int_equal(rs->n, 1);
    assert_true(rs->r[0].count == 3 && rs->r[0].sum == 6);
    q.agg = TSDB_AGG_NONE;
    run_query(b, b->t, &q, rs);
    assert_int_equal(rs->n, 1);
    free(rs);
}

/* One call far bigger than a usual batch, with many new series: scratch
 * space grows, every series is created once, nothing is lost. */
static void test_large_batch(void **state)
{
    struct backend *b = *state;
    enum { N = 6000, DEVICES = 60 };
    char org[CORE_UUID_STR_LEN], dev[DEVICES][CORE_UUID_STR_LEN];
    uuid_of(org, 0xb00, 1);
    for (unsigned i = 0; i < DEVICES; i++)
        uuid_of(dev[i], 0xb00, 100 + i);
    static const char *const metrics[5] = {"m0", "m1", "m2", "m3", "m4"};
    struct tsdb_point *p = calloc(N, sizeof *p);
    assert_non_null(p);
    for (int i = 0; i < N; i++)
        p[i] = num_point(org, dev[(i / 5) % DEVICES], metrics[i % 5],
                         T0 + (int64_t)(i / (5 * DEVICES)) * 1000, i);
    write_points(b, b->t, p, N, N);
    write_points(b, b->t, p, N, 0);
    int64_t snap[5];
    snapshot(b, org, snap);
    assert_int_equal(snap[0], N);
    assert_int_equal(snap[4], DEVICES * 5);
    free(p);
}

static void test_invalid_points(void **state)
{
    struct backend *b = *state;
    char org[CORE_UUID_STR_LEN], dev[CORE_UUID_STR_LEN];
    uuid_of(org, 0x900, 1);
    uuid_of(dev, 0x900, 2);
    struct db_conn *c = acquire_ok(b->db, true);
    struct tsdb_point p[2] = {num_point(org, dev, "ok", T0, 1),
                              num_point(org, dev, "bad", T0, NAN)};
    size_t written = 7;
    assert_int_equal(tsdb_points_write(b->t, c, p, 2, &written), CORE_EINVAL);
    assert_int_equal(written, 0);
    p[1] = num_point(org, "nope", "bad", T0, 1);
    assert_int_equal(tsdb_points_write(b->t, c, p, 2, NULL), CORE_EINVAL);
    p[1] = num_point(org, dev, "", T0, 1);
    assert_int_equal(tsdb_points_write(b->t, c, p, 2, NULL), CORE_EINVAL);
    p[1] = num_point(org, dev, "s", T0, 1);
    p[1].type = TSDB_STRING;
    assert_int_equal(tsdb_points_write(b->t, c, p, 2, NULL), CORE_EINVAL);
    assert_int_equal(tsdb_points_write(b->t, c, p, 0, &written), CORE_OK);
    db_conn_release(c);
    int64_t snap[5];
    snapshot(b, org, snap);
    assert_int_equal(snap[0], 0);
    assert_int_equal(snap[4], 0); /* no series either */
}


/* ------------------------------------------------------ deferred rollups */

/* Rows in the deferred rollup log (both stores have one). */
static int64_t log_rows(struct backend *b)
{
    struct db_conn *c = acquire_ok(b->db, false);
    int64_t n = query_int(c, "SELECT count(*) FROM ts_rollup_log", NULL);
    db_conn_release(c);
    return n;
}

/* Sums count and sum over every bucket of a device's metric "v" in the
 * day from T0 at resolution agg, through tsdb_query. */
static void agg_totals(struct backend *b, const char *org, const char *dev,
                       enum tsdb_agg agg, int64_t *count, double *sum,
                       struct rows *rs)
{
    struct tsdb_query q = {.org_id = org, .entity = TSDB_DEVICE,
                           .entity_id = dev, .metric = "v", .from_ms = T0,
                           .to_ms = T0 + DAY_MS, .limit = 4096, .agg = agg};
    run_query(b, b->t, &q, rs);
    *count = 0;
    *sum = 0;
    for (size_t i = 0; i < rs->n; i++) {
        *count += rs->r[i].count;
        *sum += rs->r[i].sum;
    }
}

/* Queries read the unfolded log as well: the same answers before and
 * after a fold, and a changed value is rebuilt exactly with its bucket's
 * other deltas still in the log. */
static void test_rollups_unfolded_tail(void **state)
{
    struct backend *b = *state;
    char org[CORE_UUID_STR_LEN], dev[CORE_UUID_STR_LEN];
    uuid_of(org, 0x900, 1);
    uuid_of(dev, 0x900, 2);
    struct rows *rs = malloc(sizeof *rs);
    assert_non_null(rs);
    flush_rollups(b, b->t);
    struct tsdb_point p[4] = {
        num_point(org, dev, "v", T0 + 1000, 1),
        num_point(org, dev, "v", T0 + 2000, 2),
        num_point(org, dev, "v", T0 + 10 * MIN_MS, 4),
        num_point(org, dev, "v", T0 + 2 * HOUR_MS, 8),
    };
    write_points(b, b->t, p, 2, 2);
    flush_rollups(b, b->t); /* the first two in the tables ... */
    write_points(b, b->t, p + 2, 2, 2); /* ... the others in the log */
    assert_true(log_rows(b) > 0);
    int64_t n;
    double sum;
    for (int pass = 0; pass < 2; pass++) {
        for (int agg = TSDB_AGG_5MIN; agg <= TSDB_AGG_1DAY; agg++) {
            agg_totals(b, org, dev, (enum tsdb_agg)agg, &n, &sum, rs);
            assert_int_equal(n, 4);
            assert_true(sum == 15);
        }
        /* 1 h: [T0, T0+1h) holds 1, 2, 4 with last 4; the 5 min bucket
         * of T0 holds 1, 2 (folded) only. */
        struct tsdb_query q = {.org_id = org, .entity = TSDB_DEVICE,
                               .entity_id = dev, .metric = "v",
                               .from_ms = T0, .to_ms = T0 + HOUR_MS,
                               .limit = 10, .agg = TSDB_AGG_1HOUR};
        run_query(b, b->t, &q, rs);
        assert_int_equal(rs->n, 1);
        assert_true(rs->r[0].min == 1 && rs->r[0].max == 4 &&
                    rs->r[0].last == 4 && rs->r[0].count == 3);
        flush_rollups(b, b->t);
        assert_int_equal(log_rows(b), 0);
    }
    /* A redelivery that changes 2 -> 20 while a new point of the same
     * buckets waits in the log. */
    struct tsdb_point more = num_point(org, dev, "v", T0 + 3000, 16);
    write_points(b, b->t, &more, 1, 1);
    struct tsdb_point chg = num_point(org, dev, "v", T0 + 2000, 20);
    write_points(b, b->t, &chg, 1, 1);
    write_points(b, b->t, &chg, 1, 0); /* again: nothing changes */
    for (int pass = 0; pass < 2; pass++) {
        for (int agg = TSDB_AGG_5MIN; agg <= TSDB_AGG_1DAY; agg++) {
            agg_totals(b, org, dev, (enum tsdb_agg)agg, &n, &sum, rs);
            assert_int_equal(n, 5);
            assert_true(sum == 1 + 20 + 16 + 4 + 8);
        }
        flush_rollups(b, b->t);
    }
    free(rs);
}

/* Several writers at once, each folding now and then inside its own
 * transactions (PostgreSQL: separate connections and transactions; SQLite:
 * its single writer, one at a time): every point counted exactly once. */
struct writer_arg {
    struct backend *b;
    const char *org;
    char (*devs)[CORE_UUID_STR_LEN];
    int id;
    int rc;
};

#define W_THREADS 3
#define W_BATCHES 40
#define W_DEVS 4

static void *writer_main(void *p)
{
    struct writer_arg *w = p;
    struct tsdb_point pts[W_DEVS * 5];
    for (int k = 0; k < W_BATCHES && w->rc == CORE_OK; k++) {
        size_t n = 0;
        for (int d = 0; d < W_DEVS; d++) {
            for (int j = 0; j < 5; j++) {
                /* Distinct times per writer, the same buckets for all. */
                int64_t ts = T0 + ((int64_t)k * 5 + j) * 7 * MIN_MS / 5 +
                             w->id;
                pts[n++] = num_point(w->org, w->devs[d], "v", ts, 1 + w->id);
            }
        }
        struct db_conn *c = NULL;
        int rc = db_conn_acquire(w->b->db, true, &c);
        if (rc == CORE_OK)
            rc = db_begin(c);
        if (rc == CORE_OK)
            rc = tsdb_points_write(w->b->t, c, pts, n, NULL);
        if (rc == CORE_OK && k % 7 == w->id)
            rc = tsdb_rollups_flush(w->b->t, c);
        if (rc == CORE_OK)
            rc = tsdb_commit(w->b->t, c);
        else
            tsdb_rollback(w->b->t, c);
        db_conn_release(c);
        w->rc = rc;
    }
    return NULL;
}

static void test_rollups_concurrent_folds(void **state)
{
    struct backend *b = *state;
    char org[CORE_UUID_STR_LEN], devs[W_DEVS][CORE_UUID_STR_LEN];
    uuid_of(org, 0x901, 1);
    for (int d = 0; d < W_DEVS; d++)
        uuid_of(devs[d], 0x901, 10 + (unsigned)d);
    /* Series first, so that the writers only meet in the log and the
     * rollup rows. */
    for (int d = 0; d < W_DEVS; d++) {
        struct tsdb_point p = num_point(org, devs[d], "v", T0 - DAY_MS, 0);
        write_points(b, b->t, &p, 1, 1);
    }
    pthread_t th[W_THREADS];
    struct writer_arg args[W_THREADS];
    for (int i = 0; i < W_THREADS; i++) {
        args[i] = (struct writer_arg){b, org, devs, i, CORE_OK};
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &args[i]),
                         0);
    }
    for (int i = 0; i < W_THREADS; i++) {
        pthread_join(th[i], NULL);
        if (args[i].rc != CORE_OK)
            fail_msg("writer %d: %s", i, core_err_name(args[i].rc));
    }
    struct rows *rs = malloc(sizeof *rs);
    assert_non_null(rs);
    const int64_t per_dev = (int64_t)W_THREADS * W_BATCHES * 5;
    const double dev_sum = (double)W_BATCHES * 5 * (1 + 2 + 3);
    for (int pass = 0; pass < 2; pass++) {
        for (int d = 0; d < W_DEVS; d++) {
            for (int agg = TSDB_AGG_5MIN; agg <= TSDB_AGG_1DAY; agg++) {
                int64_t n;
                double sum;
                agg_totals(b, org, devs[d], (enum tsdb_agg)agg, &n, &sum, rs);
                assert_int_equal(n, per_dev);
                assert_true(sum == dev_sum);
            }
        }
        flush_rollups(b, b->t); /* the same after the last fold */
    }
    assert_int_equal(log_rows(b), 0);
    free(rs);
}

/* tsdb_fold_in_background: on PostgreSQL the log is folded by the
 * tsdb's own thread, with no further write to do it; the rollups are the
 * same either way. */
static void test_rollups_folded_in_background(void **state)
{
    struct backend *b = *state;
    char org[CORE_UUID_STR_LEN], dev[CORE_UUID_STR_LEN];
    uuid_of(org, 0xc00, 1);
    uuid_of(dev, 0xc00, 2);
    struct tsdb *t = NULL;
    assert_int_equal(tsdb_create(b->db, &t), CORE_OK);
    assert_int_equal(tsdb_fold_in_background(t), CORE_OK);
    assert_int_equal(tsdb_fold_in_background(t), CORE_OK); /* once */
    struct tsdb_point p[40];
    for (int i = 0; i < 40; i++)
        p[i] = num_point(org, dev, "v", T0 + (int64_t)i * MIN_MS, i);
    write_points(b, t, p, 40, 40);
    static const char log_sql[] =
        "SELECT count(*) FROM ts_rollup_log l JOIN ts_series s ON "
        "s.id = l.series_id WHERE s.organization_id = ?";
    static const char day_sql[] =
        "SELECT count(*) FROM ts_rollup_1d r JOIN ts_series s ON "
        "s.id = r.series_id WHERE s.organization_id = ?";
    if (b->dialect == DB_POSTGRES) {
        int64_t logged = 1, days = 0;
        for (int i = 0; i < 100 && (logged || !days); i++) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
            struct db_conn *c = acquire_ok(b->db, false);
            logged = query_int(c, log_sql, org);
            days = query_int(c, day_sql, org);
            db_conn_release(c);
        }
        assert_int_equal(logged, 0);
        assert_int_equal(days, 1);
    }
    struct rows *rs = malloc(sizeof *rs);
    assert_non_null(rs);
    for (int agg = TSDB_AGG_5MIN; agg <= TSDB_AGG_1DAY; agg++) {
        int64_t n;
        double sum;
        agg_totals(b, org, dev, (enum tsdb_agg)agg, &n, &sum, rs);
        assert_int_equal(n, 40);
        assert_true(sum == 40 * 39 / 2);
    }
    free(rs);
    tsdb_destroy(t); /* stops the thread */
}

int main(void)
{
    core_init();
    /* The same list runs against each backend. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_append_idempotent_immutable),
        cmocka_unit_test(test_raw_append_many),
        cmocka_unit_test(test_raw_retention),
        cmocka_unit_test(test_points_idempotent),
        cmocka_unit_test(test_points_replace),
        cmocka_unit_test(test_rollups_against_model),
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_latest),
        cmocka_unit_test(test_series_cache_two_handles),
        cmocka_unit_test(test_points_retention),
        cmocka_unit_test(test_large_batch),
        cmocka_unit_test(test_invalid_points),
        cmocka_unit_test(test_rollups_unfolded_tail),
        cmocka_unit_test(test_rollups_concurrent_folds),
        cmocka_unit_test(test_rollups_folded_in_background),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("sqlite", tests, sqlite_setup,
                                          teardown);
    failed += cmocka_run_group_tests_name("postgres", tests, pg_setup,
                                          teardown);
    return failed ? 1 : 0;
}
