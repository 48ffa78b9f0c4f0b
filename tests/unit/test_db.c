/*
 * src/db against both drivers. The same driver tests run on SQLite (a
 * temporary directory) and on PostgreSQL: $ARGUS_TEST_PG_URL if set,
 * otherwise a private server started with scripts/pg-test.sh for the run.
 * Each store the tests need is fresh: a file for SQLite, a database for
 * PostgreSQL, dropped at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "db_internal.h"
#include "pg_fixture.h"

#define MAX_STORES 8

struct backend {
    enum db_dialect dialect;
    char dir[128];       /* SQLite files, or the private server's folder */
    char base_url[512];  /* PostgreSQL: the database we may create others in */
    bool started;        /* we started the server (and may restart it) */
    struct db *admin;    /* PostgreSQL: creates and drops test databases */
    struct db *db;       /* the store most tests use */
    char stores[MAX_STORES][64];
    int nstores;
};

/* ----------------------------------------------------------------- helpers */

static void exec_ok(struct db_conn *c, const char *sql)
{
    int rc = db_exec(c, sql);
    if (rc != CORE_OK)
        fail_msg("exec failed: %s: %s\n  sql: %s", core_err_name(rc),
                 db_errmsg(c), sql);
}

static struct db_stmt *prepare_ok(struct db_conn *c, const char *sql)
{
    struct db_stmt *s = NULL;
    int rc = db_prepare(c, sql, &s);
    if (rc != CORE_OK)
        fail_msg("prepare failed: %s: %s\n  sql: %s", core_err_name(rc),
                 db_errmsg(c), sql);
    return s;
}

static void step_row(struct db_stmt *s, bool want_row)
{
    bool row = !want_row;
    int rc = db_step(s, &row);
    if (rc != CORE_OK)
        fail_msg("step failed: %s", core_err_name(rc));
    assert_int_equal(row, want_row);
}

/* The single integer that sql (no parameters) returns. */
static int64_t query_int(struct db_conn *c, const char *sql)
{
    struct db_stmt *s = prepare_ok(c, sql);
    step_row(s, true);
    int64_t v = db_col_int64(s, 0);
    db_finalize(s);
    return v;
}

static const char *pick(const struct backend *b, const char *sqlite,
                        const char *pg)
{
    return b->dialect == DB_SQLITE ? sqlite : pg;
}

static struct db_conn *acquire_ok(struct db *db, bool write)
{
    struct db_conn *c = NULL;
    int rc = db_conn_acquire(db, write, &c);
    if (rc != CORE_OK)
        fail_msg("acquire failed: %s", core_err_name(rc));
    return c;
}

static double elapsed_ms(uint64_t since_ns)
{
    return (double)(core_time_mono_ns() - since_ns) / 1e6;
}

/* The URL of a fresh, empty store called name. */
static void fresh_store(struct backend *b, const char *name, char *url,
                        size_t n)
{
    if (b->dialect == DB_SQLITE) {
        /* Nested folders: db_open creates them. */
        snprintf(url, n, "sqlite:%s/%s/nested/%s.db", b->dir, name, name);
        return;
    }
    assert_true(b->nstores < MAX_STORES);
    char *dbname = b->stores[b->nstores++];
    snprintf(dbname, sizeof b->stores[0], "argus_test_%d_%s", (int)getpid(),
             name);
    char sql[160];
    struct db_conn *c = acquire_ok(b->admin, true);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", dbname);
    exec_ok(c, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
    exec_ok(c, sql);
    db_conn_release(c);

    /* Same server and parameters, another database: replace the path. */
    const char *u = b->base_url;
    const char *host = strstr(u, "://") + 3;
    size_t hostlen = strcspn(host, "/?");
    const char *params = host + strcspn(host, "?");
    snprintf(url, n, "%.*s/%s%s", (int)(host - u + hostlen), u, dbname,
             params);
}

static struct db *open_ok(const char *url, int pool, int busy_ms)
{
    struct db_options o = {.pool_size = pool, .busy_timeout_ms = busy_ms};
    struct db *db = NULL;
    int rc = db_open(url, &o, &db);
    if (rc != CORE_OK)
        fail_msg("db_open failed: %s", core_err_name(rc));
    return db;
}

/* --------------------------------------------------------- group set-up */

static int sqlite_setup(void **state)
{
    struct backend *b = calloc(1, sizeof *b);
    if (!b)
        return -1;
    b->dialect = DB_SQLITE;
    snprintf(b->dir, sizeof b->dir, "/tmp/argus-dbtest-XXXXXX");
    if (!mkdtemp(b->dir)) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        free(b);
        return -1;
    }
    char url[512];
    snprintf(url, sizeof url, "sqlite:%s/main/nested/main.db", b->dir);
    struct db_options o = {.pool_size = 4, .busy_timeout_ms = 5000};
    if (db_open(url, &o, &b->db) != CORE_OK) {
        fprintf(stderr, "cannot open %s\n", url);
        return -1;
    }
    *state = b;
    return 0;
}


static int teardown(void **state);

/* On failure the group's teardown is not run: stop what was started. */
static int pg_setup(void **state)
{
    struct backend *b = calloc(1, sizeof *b);
    if (!b)
        return -1;
    b->dialect = DB_POSTGRES;
    *state = b;
    const char *env = getenv("ARGUS_TEST_PG_URL");
    if (env && *env) {
        snprintf(b->base_url, sizeof b->base_url, "%s", env);
    } else {
        snprintf(b->dir, sizeof b->dir, "/tmp/argus-pgtest-XXXXXX");
        if (!mkdtemp(b->dir))
            goto fail;
        if (test_pg_script("start", b->dir, b->base_url, sizeof b->base_url) != 0)
            goto fail;
        b->started = true;
    }
    struct db_options o = {.pool_size = 1, .busy_timeout_ms = 5000};
    if (db_open(b->base_url, &o, &b->admin) != CORE_OK) {
        fprintf(stderr, "test_db: cannot connect to PostgreSQL\n");
        goto fail;
    }
    char url[600];
    fresh_store(b, "main", url, sizeof url);
    o.pool_size = 4;
    if (db_open(url, &o, &b->db) != CORE_OK)
        goto fail;
    return 0;
fail:
    if (!b->started && b->dir[0])
        rmdir(b->dir);
    teardown(state);
    *state = NULL;
    return -1;
}

static int teardown(void **state)
{
    struct backend *b = *state;
    if (!b)
        return 0;
    db_close(b->db);
    if (b->admin) {
        struct db_conn *c = NULL;
        if (db_conn_acquire(b->admin, true, &c) == CORE_OK) {
            for (int i = 0; i < b->nstores; i++) {
                char sql[160];
                snprintf(sql, sizeof sql,
                         "DROP DATABASE IF EXISTS %s WITH (FORCE)",
                         b->stores[i]);
                db_exec(c, sql);
            }
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
    free(b);
    return 0;
}

/* ---------------------------------------------------------- value tests */

static void test_text_roundtrip(void **state)
{
    struct backend *b = *state;
    struct db_conn *c = acquire_ok(b->db, true);
    exec_ok(c, "DROP TABLE IF EXISTS t_text");
    exec_ok(c, "CREATE TABLE t_text (id INTEGER PRIMARY KEY, v TEXT)");

    size_t long_len = 300000;
    char *long_text = malloc(long_len + 1);
    assert_non_null(long_text);
    for (size_t i = 0; i < long_len; i++)
        long_text[i] = (char)('a' + i % 26);
    long_text[long_len] = '\0';
    const char *values[] = {"héllo wörld ✓ 日本語 🚀", "", long_text,
                            "quote ' and \" and \\ and ?", NULL};
    const int n = 5;

    struct db_stmt *s = prepare_ok(c, "INSERT INTO t_text (id, v) "
                                      "VALUES (?, ?)");
    for (int i = 0; i < n; i++) {
        assert_int_equal(db_bind_int64(s, 1, i), CORE_OK);
        assert_int_equal(db_bind_text(s, 2, values[i]), CORE_OK);
        step_row(s, false);
        assert_int_equal(db_reset(s), CORE_OK);
    }
    db_finalize(s);

    s = prepare_ok(c, "SELECT id, v FROM t_text ORDER BY id");
    for (int i = 0; i < n; i++) {
        step_row(s, true);
        assert_int_equal(db_col_count(s), 2);
        assert_string_equal(db_col_name(s, 1), "v");
        assert_int_equal(db_col_int64(s, 0), i);
        if (values[i]) {
            assert_false(db_col_is_null(s, 1));
            assert_string_equal(db_col_text(s, 1), values[i]);
        } else {
            assert_true(db_col_is_null(s, 1));
            assert_null(db_col_text(s, 1));
        }
    }
    step_row(s, false);
    step_row(s, false); /* stays at the end; never runs again */
    db_finalize(s);
    free(long_text);
    db_conn_release(c);
}

static void test_int64_extremes(void **state)
{
    struct backend *b = *state;
    struct db_conn *c = acquire_ok(b->db, true);
    exec_ok(c, "DROP TABLE IF EXISTS t_int");
    exec_ok(c, "CREATE TABLE t_int (id INTEGER PRIMARY KEY, v BIGINT)");
    const int64_t values[] = {INT64_MIN, INT64_MAX, 0, -1,
                              (INT64_C(1) << 53) + 1};
    const char *texts[] = {"-9223372036854775808", "9223372036854775807",
                           "0", "-1", "9007199254740993"};
    struct db_stmt *s = prepare_ok(c, "INSERT INTO t_int VALUES (?, ?)");
    for (int i = 0; i < 5; i++) {
        db_bind_int64(s, 1, i);
        db_bind_int64(s, 2, values[i]);
        step_row(s, false);
        db_reset(s);
    }
    db_finalize(s);
    s = prepare_ok(c, "SELECT v FROM t_int ORDER BY id");
    for (int i = 0; i < 5; i++) {
        step_row(s, true);
        assert_true(db_col_int64(s, 0) == values[i]);
        assert_string_equal(db_col_text(s, 0), texts[i]);
    }
    db_finalize(s);

    /* A parameter read straight back, and compared with a column. */
    s = prepare_ok(c, "SELECT COUNT(*) FROM t_int WHERE v = ? OR v = ?");
    db_bind_int64(s, 1, INT64_MIN);
    db_bind_int64(s, 2, INT64_MAX);
    step_row(s, true);
    assert_int_equal(db_col_int64(s, 0), 2);
    db_finalize(s);
    db_conn_release(c);
}

static void test_doubles(void **state)
{
    struct backend *b = *state;
    struct db_conn *c = acquire_ok(b->db, true);
    exec_ok(c, "DROP TABLE IF EXISTS t_dbl");
    exec_ok(c, "CREATE TABLE t_dbl (id INTEGER PRIMARY KEY, "
               "v DOUBLE PRECISION)");
    const double values[] = {0.1, -2.5e-300, 1e300, 3.141592653589793,
                             0.0, -1.0 / 3.0, 123456789.125};
    const int n = (int)(sizeof values / sizeof values[0]);
    struct db_stmt *s = prepare_ok(c, "INSERT INTO t_dbl VALUES (?, ?)");
    for (int i = 0; i < n; i++) {
        db_bind_int64(s, 1, i);
        db_bind_double(s, 2, values[i]);
        step_row(s, false);
        db_reset(s);
    }
    db_finalize(s);
    s = prepare_ok(c, "SELECT v, v * 2 FROM t_dbl ORDER BY id");
    for (int i = 0; i < n; i++) {
        step_row(s, true);
        assert_true(db_col_double(s, 0) == values[i]); /* exact */
        assert_true(db_col_double(s, 1) == values[i] * 2);
    }
    db_finalize(s);
    db_conn_release(c);
}

static void test_bools(void **state)
{
    struct backend *b = *state;
    struct db_conn *c = acquire_ok(b->db, true);
    exec_ok(c, "DROP TABLE IF EXISTS t_bool");
    exec_ok(c, pick(b, "CREATE TABLE t_bool (id INTEGER PRIMARY KEY, "
                       "v INTEGER)",
                    "CREATE TABLE t_bool (id INTEGER PRIMARY KEY, "
                    "v boolean)"));
    struct db_stmt *s = prepare_ok(c, "INSERT INTO t_bool VALUES (?, ?)");
    db_bind_int64(s, 1, 1);
    db_bind_bool(s, 2, true);
    step_row(s, false);
    db_reset(s);
    db_bind_int64(s, 1, 2);
    db_bind_bool(s, 2, false);
    step_row(s, false);
    db_reset(s);
    db_bind_int64(s, 1, 3);
    db_bind_null(s, 2);
    step_row(s, false);
    db_finalize(s);

    s = prepare_ok(c, "SELECT v FROM t_bool ORDER BY id");
    step_row(s, true);
    assert_true(db_col_bool(s, 0));
    assert_string_equal(db_col_text(s, 0), "1"); /* same on both */
    assert_int_equal(db_col_int64(s, 0), 1);
    step_row(s, true);
    assert_false(db_col_bool(s, 0));
    assert_string_equal(db_col_text(s, 0), "0");
    assert_int_equal(db_col_int64(s, 0), 0);
    step_row(s, true);
    assert_true(db_col_is_null(s, 0));
    assert_false(db_col_bool(s, 0));
    db_finalize(s);

    /* A bool parameter in a WHERE clause. */
    s = prepare_ok(c, "SELECT COUNT(*) FROM t_bool WHERE v = ?");
    db_bind_bool(s, 1, true);
    step_row(s, true);
    assert_int_equal(db_col_int64(s, 0), 1);
    db_finalize(s);
    db_conn_release(c);
}

static void test_nulls(void **state)
{
    struct backend *b = *state;
    struct db_conn *c = acquire_ok(b->db, false);
    struct db_stmt *s = prepare_ok(c, "SELECT ?, ?, NULL");
    db_bind_null(s, 1);
    db_bind_text(s, 2, NULL); /* NULL text binds SQL NULL */
    step_row(s, true);
    for (int i = 0; i < 3; i++) {
        assert_true(db_col_is_null(s, i));
        assert_null(db_col_text(s, i));
        assert_int_equal(db_col_int64(s, i), 0);
        assert_true(db_col_double(s, i) == 0.0);
        assert_false(db_col_bool(s, i));
    }
    /* Out of range columns read as NULL too. */
    assert_null(db_col_text(s, 3));
    assert_null(db_col_text(s, -1));
    assert_null(db_col_name(s, 7));
    db_finalize(s);

    /* Parameters out of range are refused. */
    s = prepare_ok(c, "SELECT ?");
    assert_int_equal(db_bind_int64(s, 0, 1), CORE_ERANGE);
    assert_int_equal(db_bind_int64(s, 2, 1), CORE_ERANGE);
    db_finalize(s);
    db_conn_release(c);
}

static void test_timestamps(void **state)
{
    struct backend *b = *state;
    struct db_conn *c = acquire_ok(b->db, true);
    exec_ok(c, "DROP TABLE IF EXISTS t_time");
    exec_ok(c, pick(b, "CREATE TABLE t_time (id INTEGER PRIMARY KEY, "
                       "at TEXT)",
                    "CREATE TABLE t_time (id INTEGER PRIMARY KEY, "
                    "at timestamptz)"));
    const char *values[] = {"2026-11-23T12:00:00.123Z",
                            "2026-01-01T00:00:00.000Z",
                            "1999-12-31T23:59:59.999Z",
                            "1970-01-01T00:00:00.001Z"};
    struct db_stmt *s = prepare_ok(c, "INSERT INTO t_time VALUES (?, ?)");
    for (int i = 0; i < 4; i++) {
        db_bind_int64(s, 1, i);
        db_bind_text(s, 2, values[i]);
        step_row(s, false);
        db_reset(s);
    }
    db_finalize(s);
    s = prepare_ok(c, "SELECT at FROM t_time ORDER BY at");
    const int order[] = {3, 2, 1, 0};
    for (int i = 0; i < 4; i++) {
        step_row(s, true);
        assert_string_equal(db_col_text(s, 0), values[order[i]]);
    }
    db_finalize(s);

    /* Range comparison with a bound time. */
    s = prepare_ok(c, "SELECT COUNT(*) FROM t_time WHERE at >= ?");
    db_bind_text(s, 1, "2026-01-01T00:00:00.000Z");
    step_row(s, true);
    assert_int_equal(db_col_int64(s, 0), 2);
    db_finalize(s);

    if (b->dialect == DB_POSTGRES) {
        /* Microseconds are cut to milliseconds; offsets become Z;
         * timestamp without zone reads as UTC; what ISO cannot hold passes
         * through. */
        s = prepare_ok(c, "SELECT '2026-11-23 12:00:00.123456+02'::"
                          "timestamptz, '2026-11-23 12:00:00'::timestamp, "
                          "'infinity'::timestamptz, now()");
        step_row(s, true);
        assert_string_equal(db_col_text(s, 0), "2026-11-23T10:00:00.123Z");
        assert_string_equal(db_col_text(s, 1), "2026-11-23T12:00:00.000Z");
        assert_string_equal(db_col_text(s, 2), "infinity");
        int64_t now_ms;
        assert_int_equal(core_time_parse_iso(db_col_text(s, 3), &now_ms),
                         CORE_OK);
        assert_int_equal(strlen(db_col_text(s, 3)), 24);
        db_finalize(s);
    }
    db_conn_release(c);
}

/* ------------------------------------------------------ errors and state */

static void test_constraint_errors(void **state)
{
    struct backend *b = *state;
    struct db_conn *c = acquire_ok(b->db, true);
    exec_ok(c, "DROP TABLE IF EXISTS t_child");
    exec_ok(c, "DROP TABLE IF EXISTS t_parent");
    exec_ok(c, "CREATE TABLE t_parent (id INTEGER PRIMARY KEY, "
               "email TEXT UNIQUE, n INTEGER CHECK (n >= 0))");
    exec_ok(c, "CREATE TABLE t_child (id INTEGER PRIMARY KEY, "
               "parent_id INTEGER NOT NULL REFERENCES t_parent (id))");
    exec_ok(c, "INSERT INTO t_parent VALUES (1, 'a@example.com', 1)");

    struct {
        const char *sql;
        int want;
    } cases[] = {
        {"INSERT INTO t_parent VALUES (1, 'b@example.com', 1)",
         CORE_ECONFLICT}, /* primary key */
        {"INSERT INTO t_parent VALUES (2, 'a@example.com', 1)",
         CORE_ECONFLICT}, /* unique */
        {"INSERT INTO t_parent VALUES (3, 'c@example.com', -1)",
         CORE_ECONSTRAINT}, /* check */
        {"INSERT INTO t_child VALUES (1, 42)", CORE_ECONSTRAINT}, /* fk */
        {"INSERT INTO t_child VALUES (2, NULL)",
         CORE_ECONSTRAINT}, /* not null */
        {"SELECT no_such_column FROM t_parent", CORE_EDB},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct db_stmt *s = NULL;
        bool row = true;
        int rc = db_prepare(c, cases[i].sql, &s);
        if (rc == CORE_OK) /* SQLite finds some errors at prepare */
            rc = db_step(s, &row);
        if (rc != cases[i].want)
            fail_msg("%s: got %s, want %s", cases[i].sql, core_err_name(rc),
                     core_err_name(cases[i].want));
        if (s)
            assert_false(row);
        assert_true(strlen(db_errmsg(c)) > 0);
        if (s) /* the error sticks until reset */
            assert_int_equal(db_step(s, &row), cases[i].want);
        db_finalize(s);
    }
    /* db_exec maps the same way. */
    assert_int_equal(db_exec(c, "INSERT INTO t_parent VALUES "
                                "(9, 'a@example.com', 1)"),
                     CORE_ECONFLICT);
    db_conn_release(c);
}

static int64_t count_rows(struct db *db, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table);
    struct db_conn *c = acquire_ok(db, false);
    int64_t n = query_int(c, sql);
    db_conn_release(c);
    return n;
}

static void test_transactions(void **state)
{
    struct backend *b = *state;
    struct db_conn *c = acquire_ok(b->db, true);
    exec_ok(c, "DROP TABLE IF EXISTS t_tx");
    exec_ok(c, "CREATE TABLE t_tx (id INTEGER PRIMARY KEY)");

    assert_int_equal(db_begin(c), CORE_OK);
    exec_ok(c, "INSERT INTO t_tx VALUES (1)");
    assert_int_equal(db_commit(c), CORE_OK);

    assert_int_equal(db_begin(c), CORE_OK);
    exec_ok(c, "INSERT INTO t_tx VALUES (2)");
    assert_int_equal(db_rollback(c), CORE_OK);
    assert_int_equal(db_rollback(c), CORE_OK); /* none open: no-op */
    db_conn_release(c);
    assert_int_equal(count_rows(b->db, "t_tx"), 1);

    /* A transaction left open is rolled back on release. */
    c = acquire_ok(b->db, true);
    assert_int_equal(db_begin(c), CORE_OK);
    exec_ok(c, "INSERT INTO t_tx VALUES (3)");
    db_conn_release(c);
    assert_int_equal(count_rows(b->db, "t_tx"), 1);
    c = acquire_ok(b->db, true);
    assert_int_equal(db_begin(c), CORE_OK); /* not "already in one" */
    assert_int_equal(db_rollback(c), CORE_OK);

    /* A failed statement inside a transaction: PostgreSQL aborts the whole
     * transaction and db_commit says so; SQLite undoes the statement only. */
    assert_int_equal(db_begin(c), CORE_OK);
    exec_ok(c, "INSERT INTO t_tx VALUES (4)");
    assert_int_equal(db_exec(c, "INSERT INTO t_tx VALUES (1)"),
                     CORE_ECONFLICT);
    if (b->dialect == DB_POSTGRES) {
        assert_int_equal(db_commit(c), CORE_EDB);
        db_conn_release(c);
        assert_int_equal(count_rows(b->db, "t_tx"), 1);
    } else {
        assert_int_equal(db_commit(c), CORE_OK);
        db_conn_release(c);
        assert_int_equal(count_rows(b->db, "t_tx"), 2);
    }
}

static void test_placeholders_in_literals(void **state)
{
    struct backend *b = *state;
    struct db_conn *c = acquire_ok(b->db, false);
    struct db_stmt *s = prepare_ok(c, "SELECT '?' AS a, ? AS \"b?\", "
                                      "'it''s ?' AS c, /* ? */ ? AS d "
                                      "-- trailing ?\n");
    assert_int_equal(db_bind_text(s, 1, "one"), CORE_OK);
    assert_int_equal(db_bind_int64(s, 2, 2), CORE_OK);
    assert_int_equal(db_bind_int64(s, 3, 3), CORE_ERANGE);
    step_row(s, true);
    assert_string_equal(db_col_text(s, 0), "?");
    assert_string_equal(db_col_name(s, 1), "b?");
    assert_string_equal(db_col_text(s, 1), "one");
    assert_string_equal(db_col_text(s, 2), "it's ?");
    assert_int_equal(db_col_int64(s, 3), 2);
    step_row(s, false);
    db_finalize(s);
    db_conn_release(c);
}

/* A prepared statement is one statement; several go through db_exec. */
static void test_one_statement_per_prepare(void **state)
{
    struct backend *b = *state;
    struct db_conn *c = acquire_ok(b->db, false);
    const char *sqls[] = {"SELECT 1; SELECT 2", "SELECT 1; SELECT nonsense("};
    for (int i = 0; i < 2; i++) {
        struct db_stmt *s = NULL;
        bool row = false;
        int rc = db_prepare(c, sqls[i], &s);
        if (rc == CORE_OK)
            rc = db_step(s, &row);
        assert_int_not_equal(rc, CORE_OK);
        db_finalize(s);
    }
    /* A trailing semicolon and comment are fine. */
    struct db_stmt *s = prepare_ok(c, "SELECT 7; -- done");
    step_row(s, true);
    assert_int_equal(db_col_int64(s, 0), 7);
    db_finalize(s);
    db_conn_release(c);
}

static void test_changes_and_reset(void **state)
{
    struct backend *b = *state;
    struct db_conn *c = acquire_ok(b->db, true);
    exec_ok(c, "DROP TABLE IF EXISTS t_chg");
    exec_ok(c, "CREATE TABLE t_chg (id INTEGER PRIMARY KEY, n INTEGER)");

    /* One statement run five times. */
    struct db_stmt *ins = prepare_ok(c, "INSERT INTO t_chg VALUES (?, ?)");
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(db_bind_int64(ins, 1, i), CORE_OK);
        assert_int_equal(db_bind_int64(ins, 2, i * 10), CORE_OK);
        step_row(ins, false);
        assert_int_equal(db_changes(ins), 1);
        /* Binding again needs a reset first. */
        assert_int_equal(db_bind_int64(ins, 1, 99), CORE_EINVAL);
        assert_int_equal(db_reset(ins), CORE_OK);
    }
    /* reset forgets bindings: unbound parameters are NULL. */
    assert_int_equal(db_bind_int64(ins, 1, 6), CORE_OK);
    step_row(ins, false);
    db_finalize(ins);

    struct db_stmt *s = prepare_ok(c, "UPDATE t_chg SET n = n + 1 "
                                      "WHERE n > ?");
    db_bind_int64(s, 1, 20);
    step_row(s, false);
    assert_int_equal(db_changes(s), 3);
    db_reset(s);
    db_bind_int64(s, 1, 1000);
    step_row(s, false);
    assert_int_equal(db_changes(s), 0);
    db_finalize(s);

    s = prepare_ok(c, "DELETE FROM t_chg WHERE n IS NULL");
    step_row(s, false);
    assert_int_equal(db_changes(s), 1);
    db_finalize(s);

    /* A query re-runs after reset and sees the same rows. */
    s = prepare_ok(c, "SELECT id FROM t_chg ORDER BY id");
    for (int round = 0; round < 2; round++) {
        for (int i = 1; i <= 5; i++) {
            step_row(s, true);
            assert_int_equal(db_col_int64(s, 0), i);
        }
        step_row(s, false);
        assert_int_equal(db_changes(s), 0);
        assert_int_equal(db_reset(s), CORE_OK);
    }
    db_finalize(s);
    db_conn_release(c);
}

/* Statements may be reused behind db_prepare (SQLite keeps a cache per
 * connection): the same SQL prepared twice at once gives two independent
 * statements, a finalized one comes back without its bindings or its
 * half-read result, and more distinct statements than any cache holds all
 * work. */
static void test_prepare_reuse(void **state)
{
    struct backend *b = *state;
    struct db_conn *c = acquire_ok(b->db, false);
    const char *sql = "SELECT ? AS v UNION ALL SELECT ? ORDER BY 1";
    struct db_stmt *a = prepare_ok(c, sql);
    struct db_stmt *x = prepare_ok(c, sql);
    assert_ptr_not_equal(a, x);
    db_bind_int64(a, 1, 1);
    db_bind_int64(a, 2, 2);
    db_bind_int64(x, 1, 10);
    db_bind_int64(x, 2, 20);
    step_row(a, true);
    step_row(x, true);
    assert_int_equal(db_col_int64(a, 0), 1);
    assert_int_equal(db_col_int64(x, 0), 10);
    db_finalize(a); /* mid-result, with bindings */
    db_finalize(x);
    for (int round = 0; round < 3; round++) {
        struct db_stmt *s = prepare_ok(c, sql);
        step_row(s, true);
        assert_true(db_col_is_null(s, 0)); /* no bindings carried over */
        db_finalize(s);
    }
    for (int i = 0; i < 200; i++) {
        char q[64];
        snprintf(q, sizeof q, "SELECT %d + ?", i);
        struct db_stmt *s = prepare_ok(c, q);
        db_bind_int64(s, 1, 1);
        step_row(s, true);
        assert_int_equal(db_col_int64(s, 0), i + 1);
        db_finalize(s);
    }
    db_conn_release(c);
}

static void test_pool_exhaustion(void **state)
{
    struct backend *b = *state;
    char url[600];
    fresh_store(b, "pool", url, sizeof url);
    struct db *db = open_ok(url, 1, 50);
    struct db_conn *c1 = acquire_ok(db, false), *c2 = NULL;

    uint64_t t0 = core_time_mono_ns();
    assert_int_equal(db_conn_acquire(db, false, &c2), CORE_EBUSY);
    double waited = elapsed_ms(t0);
    assert_null(c2);
    assert_true(waited >= 45 && waited < 2000);

    /* In PostgreSQL writers share the pool; SQLite has one writer of its
     * own beside the readers. */
    if (b->dialect == DB_POSTGRES) {
        assert_int_equal(db_conn_acquire(db, true, &c2), CORE_EBUSY);
    } else {
        struct db_conn *w = acquire_ok(db, true);
        assert_int_equal(db_conn_acquire(db, true, &c2), CORE_EBUSY);
        db_conn_release(w);
    }
    db_conn_release(c1);
    c2 = acquire_ok(db, false);
    db_conn_release(c2);
    db_close(db);
}

/* A lock held past the timeout is CORE_EBUSY: SQLite's write lock taken
 * by another handle, a PostgreSQL table lock under lock_timeout. */
static void test_lock_timeout_is_busy(void **state)
{
    struct backend *b = *state;
    struct db_conn *holder = acquire_ok(b->db, true);
    exec_ok(holder, "CREATE TABLE IF NOT EXISTS t_lock (id INTEGER)");
    assert_int_equal(db_begin(holder), CORE_OK);
    if (b->dialect == DB_SQLITE) {
        char url[600];
        snprintf(url, sizeof url, "sqlite:%s/main/nested/main.db", b->dir);
        struct db *other = open_ok(url, 1, 50);
        struct db_conn *c = acquire_ok(other, true);
        uint64_t t0 = core_time_mono_ns();
        assert_int_equal(db_begin(c), CORE_EBUSY);
        assert_true(elapsed_ms(t0) >= 45);
        db_conn_release(c);
        db_close(other);
    } else {
        exec_ok(holder, "LOCK TABLE t_lock");
        struct db_conn *c = acquire_ok(b->db, true);
        exec_ok(c, "SET lock_timeout = '50ms'");
        assert_int_equal(db_exec(c, "SELECT * FROM t_lock"), CORE_EBUSY);
        exec_ok(c, "RESET lock_timeout");
        db_conn_release(c);
    }
    assert_int_equal(db_rollback(holder), CORE_OK);
    db_conn_release(holder);
}

static void test_reader_cannot_write(void **state)
{
    struct backend *b = *state;
    if (b->dialect != DB_SQLITE)
        skip(); /* every PostgreSQL connection may write */
    struct db_conn *c = acquire_ok(b->db, true);
    exec_ok(c, "CREATE TABLE IF NOT EXISTS t_ro (id INTEGER PRIMARY KEY)");
    db_conn_release(c);
    c = acquire_ok(b->db, false);
    assert_int_equal(db_exec(c, "INSERT INTO t_ro VALUES (1)"), CORE_EDB);
    assert_non_null(strstr(db_errmsg(c), "readonly"));
    db_conn_release(c);
}

/* ----------------------------------------------- readers beside a writer */

#define RW_READERS 3
#define RW_ROWS 200

struct rw_shared {
    struct db *db;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool tx_open;
    int readers_checked;
    atomic_bool writer_done;
    atomic_int errors;
    struct timespec deadline;
    char err[256];
};

static void rw_error(struct rw_shared *sh, const char *what)
{
    pthread_mutex_lock(&sh->mu);
    if (atomic_fetch_add(&sh->errors, 1) == 0)
        snprintf(sh->err, sizeof sh->err, "%s", what);
    pthread_cond_broadcast(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
}

/* Waits (mutex held) until ready(sh), an error elsewhere or the deadline;
 * returns ready(sh). */
static bool rw_wait(struct rw_shared *sh, bool (*ready)(struct rw_shared *))
{
    while (!ready(sh) && atomic_load(&sh->errors) == 0) {
        if (pthread_cond_timedwait(&sh->cv, &sh->mu, &sh->deadline) ==
            ETIMEDOUT)
            return ready(sh);
    }
    return ready(sh);
}

static bool tx_is_open(struct rw_shared *sh)
{
    return sh->tx_open;
}

static bool readers_done(struct rw_shared *sh)
{
    return sh->readers_checked == RW_READERS;
}

static int64_t rw_count(struct rw_shared *sh, bool *ok)
{
    struct db_conn *c = NULL;
    struct db_stmt *s = NULL;
    bool row = false;
    int64_t n = -1;
    *ok = false;
    if (db_conn_acquire(sh->db, false, &c) != CORE_OK)
        return -1;
    if (db_prepare(c, "SELECT COUNT(*) FROM t_rw", &s) == CORE_OK &&
        db_step(s, &row) == CORE_OK && row) {
        n = db_col_int64(s, 0);
        *ok = true;
    }
    db_finalize(s);
    db_conn_release(c);
    return n;
}

static void *rw_reader(void *arg)
{
    struct rw_shared *sh = arg;
    bool ok;
    pthread_mutex_lock(&sh->mu);
    bool open = rw_wait(sh, tx_is_open);
    pthread_mutex_unlock(&sh->mu);
    if (!open) {
        rw_error(sh, "reader: timed out waiting for the writer");
        return NULL;
    }
    /* The writer holds an open transaction: reading must neither block nor
     * see its row. */
    if (rw_count(sh, &ok) != 0 || !ok) {
        rw_error(sh, "reader: saw uncommitted data or failed");
        return NULL;
    }
    pthread_mutex_lock(&sh->mu);
    sh->readers_checked++;
    pthread_cond_broadcast(&sh->cv);
    pthread_mutex_unlock(&sh->mu);

    /* Then counts only grow, up to every row once the writer is done. */
    int64_t last = 0;
    for (;;) {
        bool done = atomic_load(&sh->writer_done);
        int64_t n = rw_count(sh, &ok);
        if (!ok || n < last) {
            rw_error(sh, "reader: count failed or went backwards");
            return NULL;
        }
        last = n;
        if (done) {
            if (n != RW_ROWS + 1)
                rw_error(sh, "reader: final count is wrong");
            return NULL;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > sh->deadline.tv_sec || atomic_load(&sh->errors)) {
            rw_error(sh, "reader: deadline passed");
            return NULL;
        }
    }
}

static void *rw_writer(void *arg)
{
    struct rw_shared *sh = arg;
    struct db_conn *c = NULL;
    if (db_conn_acquire(sh->db, true, &c) != CORE_OK ||
        db_begin(c) != CORE_OK ||
        db_exec(c, "INSERT INTO t_rw VALUES (0)") != CORE_OK) {
        rw_error(sh, "writer: first insert failed");
        db_conn_release(c);
        return NULL;
    }
    pthread_mutex_lock(&sh->mu);
    sh->tx_open = true;
    pthread_cond_broadcast(&sh->cv);
    bool checked = rw_wait(sh, readers_done);
    pthread_mutex_unlock(&sh->mu);
    if (!checked || db_commit(c) != CORE_OK) {
        rw_error(sh, "writer: readers did not check in, or commit failed");
        db_conn_release(c);
        return NULL;
    }
    db_conn_release(c);
    for (int i = 1; i <= RW_ROWS; i++) {
        struct db_stmt *s = NULL;
        bool row;
        int rc = db_conn_acquire(sh->db, true, &c);
        if (rc == CORE_OK)
            rc = db_prepare(c, "INSERT INTO t_rw VALUES (?)", &s);
        if (rc == CORE_OK)
            rc = db_bind_int64(s, 1, i);
        if (rc == CORE_OK)
            rc = db_step(s, &row);
        db_finalize(s);
        db_conn_release(c);
        if (rc != CORE_OK) {
            rw_error(sh, "writer: insert failed");
            break;
        }
    }
    atomic_store(&sh->writer_done, true);
    return NULL;
}

static void test_readers_beside_writer(void **state)
{
    struct backend *b = *state;
    struct db_conn *c = acquire_ok(b->db, true);
    exec_ok(c, "DROP TABLE IF EXISTS t_rw");
    exec_ok(c, "CREATE TABLE t_rw (id INTEGER PRIMARY KEY)");
    db_conn_release(c);

    struct rw_shared sh = {.db = b->db};
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&sh.cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&sh.mu, NULL);
    clock_gettime(CLOCK_MONOTONIC, &sh.deadline);
    sh.deadline.tv_sec += 10;

    pthread_t readers[RW_READERS], writer;
    for (int i = 0; i < RW_READERS; i++)
        assert_int_equal(pthread_create(&readers[i], NULL, rw_reader, &sh),
                         0);
    assert_int_equal(pthread_create(&writer, NULL, rw_writer, &sh), 0);
    pthread_join(writer, NULL);
    for (int i = 0; i < RW_READERS; i++)
        pthread_join(readers[i], NULL);
    pthread_cond_destroy(&sh.cv);
    pthread_mutex_destroy(&sh.mu);
    if (atomic_load(&sh.errors))
        fail_msg("%s", sh.err);
    assert_int_equal(count_rows(b->db, "t_rw"), RW_ROWS + 1);
}

/* SQLite's WAL writes go through the gathering VFS (db_sqlite_vfs.c):
 * every commit is visible to a reader at once — small ones, ones past the
 * buffer, ones after a transaction that spilled pages into the WAL and
 * rolled back — and the file passes an integrity check when reopened. */
static void test_wal_gathered_writes(void **state)
{
    struct backend *b = *state;
    if (b->dialect != DB_SQLITE)
        return;
    assert_non_null(db__sqlite_vfs());
    char url[640];
    snprintf(url, sizeof url, "sqlite:%s/gather.db", b->dir);
    struct db_options o = {.pool_size = 1, .busy_timeout_ms = 5000};
    struct db *db = NULL;
    assert_int_equal(db_open(url, &o, &db), CORE_OK);
    struct db_conn *w = NULL, *r = NULL;
    assert_int_equal(db_conn_acquire(db, true, &w), CORE_OK);
    assert_int_equal(db_conn_acquire(db, false, &r), CORE_OK);
    exec_ok(w, "CREATE TABLE g (k INTEGER PRIMARY KEY, v BLOB NOT NULL)");
    exec_ok(w, "PRAGMA cache_size = 8"); /* pages spill mid-transaction */
    /* No sync at commit (as the pipeline's writer): nothing but the VFS
     * puts the frames in the file before the reader looks. */
    exec_ok(w, "PRAGMA synchronous = NORMAL");
    int64_t rows = 0, bytes = 0;
    for (int i = 0; i < 120; i++) {
        int64_t size = i % 40 == 39 ? 600000 : 1 + (i * 7919) % 20000;
        char sql[128];
        snprintf(sql, sizeof sql,
                 "INSERT INTO g (v) VALUES (randomblob(%" PRId64 "))", size);
        assert_int_equal(db_begin(w), CORE_OK);
        exec_ok(w, sql);
        if (i % 17 == 16) {
            exec_ok(w, "INSERT INTO g (v) VALUES (randomblob(1000000))");
            assert_int_equal(db_rollback(w), CORE_OK);
        } else {
            assert_int_equal(db_commit(w), CORE_OK);
            rows++;
            bytes += size;
        }
        struct db_stmt *s =
            prepare_ok(r, "SELECT count(*), coalesce(sum(length(v)), 0) FROM g");
        bool row = false;
        assert_int_equal(db_step(s, &row), CORE_OK);
        assert_true(row);
        assert_int_equal(db_col_int64(s, 0), rows);
        assert_int_equal(db_col_int64(s, 1), bytes);
        db_finalize(s);
    }
    db_conn_release(r);
    db_conn_release(w);
    db_close(db);

    assert_int_equal(db_open(url, &o, &db), CORE_OK);
    assert_int_equal(db_conn_acquire(db, false, &r), CORE_OK);
    struct db_stmt *s = prepare_ok(r, "PRAGMA integrity_check");
    bool row = false;
    assert_int_equal(db_step(s, &row), CORE_OK);
    assert_true(row);
    assert_string_equal(db_col_text(s, 0), "ok");
    db_finalize(s);
    s = prepare_ok(r, "SELECT count(*), sum(length(v)) FROM g");
    assert_int_equal(db_step(s, &row), CORE_OK);
    assert_int_equal(db_col_int64(s, 0), rows);
    assert_int_equal(db_col_int64(s, 1), bytes);
    db_finalize(s);
    db_conn_release(r);
    db_close(db);
}

/* ------------------------------------------------------------ migrations */

static const struct db_migration test_migrations[] = {
    {1, "create", "CREATE TABLE mig_items (id INTEGER PRIMARY KEY, "
                  "note TEXT NOT NULL)"},
    {2, "seed", "INSERT INTO mig_items VALUES (1, 'one; with ? and ''');\n"
                "-- a comment\n"
                "INSERT INTO mig_items VALUES (2, 'two');"},
    {3, "more", "INSERT INTO mig_items VALUES (3, 'three')"},
    /* Fails halfway: its first statement must be undone. */
    {4, "broken", "CREATE TABLE mig_partial (id INTEGER);\n"
                  "INSERT INTO no_such_table VALUES (1);"},
};

/* SQLite: a WAL past the checkpoint threshold reaches the database file
 * with no further commit (the driver's checkpointer thread copies it, the
 * writer's automatic checkpoint being off), and the data reads back.
 * PostgreSQL has nothing to check. */
static void test_background_checkpoint(void **state)
{
    struct backend *b = *state;
    if (b->dialect != DB_SQLITE)
        return;
    char url[640], path[512];
    snprintf(path, sizeof path, "%s/ckpt.db", b->dir);
    snprintf(url, sizeof url, "sqlite:%s", path);
    struct db_options o = {.pool_size = 1, .busy_timeout_ms = 5000};
    struct db *db = NULL;
    assert_int_equal(db_open(url, &o, &db), CORE_OK);
    struct db_conn *c = NULL;
    assert_int_equal(db_conn_acquire(db, true, &c), CORE_OK);
    exec_ok(c, "CREATE TABLE big (b BLOB)");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    off_t before = st.st_size;
    /* About 10,500 pages of 4 KiB in one commit: past the point where the
     * checkpointer is woken (10,000), short of where the writer would
     * checkpoint itself (14,000). */
    assert_int_equal(db_begin(c), CORE_OK);
    for (int i = 0; i < 10; i++)
        exec_ok(c, "INSERT INTO big VALUES (zeroblob(4300000))");
    assert_int_equal(db_commit(c), CORE_OK);
    db_conn_release(c);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        assert_int_equal(stat(path, &st), 0);
        if (st.st_size > before + 40000000)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10)
            fail_msg("the database file stayed at %lld bytes",
                     (long long)st.st_size);
        usleep(10000);
    }
    assert_int_equal(db_conn_acquire(db, false, &c), CORE_OK);
    struct db_stmt *s = prepare_ok(c, "SELECT count(*), sum(length(b)) FROM big");
    bool row = false;
    assert_int_equal(db_step(s, &row), CORE_OK);
    assert_true(row);
    assert_int_equal(db_col_int64(s, 0), 10);
    assert_int_equal(db_col_int64(s, 1), 43000000);
    db_finalize(s);
    db_conn_release(c);
    db_close(db);
}

static void test_migrate_list(void **state)
{
    struct backend *b = *state;
    char url[600];
    fresh_store(b, "mig", url, sizeof url);
    struct db *db = open_ok(url, 2, 5000);
    int applied = -1;

    assert_int_equal(db__migrate_list(db, NULL, 0, &applied), CORE_OK);
    assert_int_equal(applied, 0);
    assert_int_equal(db__migrate_list(db, test_migrations, 2, &applied),
                     CORE_OK);
    assert_int_equal(applied, 2);
    assert_int_equal(db__migrate_list(db, test_migrations, 2, &applied),
                     CORE_OK);
    assert_int_equal(applied, 0);
    assert_int_equal(db__migrate_list(db, test_migrations, 3, &applied),
                     CORE_OK);
    assert_int_equal(applied, 1);
    assert_int_equal(count_rows(db, "mig_items"), 3);

    assert_int_equal(db__migrate_list(db, test_migrations, 4, &applied),
                     CORE_EDB);
    assert_int_equal(applied, 0);
    struct db_conn *c = acquire_ok(db, false);
    assert_int_equal(query_int(c, "SELECT COUNT(*) FROM schema_migrations"),
                     3);
    assert_int_equal(query_int(c, "SELECT MAX(version) FROM "
                                  "schema_migrations"),
                     3);
    struct db_stmt *s = prepare_ok(c, "SELECT name, applied_at FROM "
                                      "schema_migrations WHERE version = ?");
    db_bind_int64(s, 1, 2);
    step_row(s, true);
    assert_string_equal(db_col_text(s, 0), "seed");
    int64_t at;
    assert_int_equal(core_time_parse_iso(db_col_text(s, 1), &at), CORE_OK);
    assert_true(llabs(at - core_time_now_ms()) < 60000);
    db_finalize(s);

    /* The failed migration left nothing behind. */
    bool row;
    s = NULL;
    int rc = db_prepare(c, "SELECT * FROM mig_partial", &s);
    if (rc == CORE_OK)
        rc = db_step(s, &row);
    assert_int_equal(rc, CORE_EDB);
    db_finalize(s);
    db_conn_release(c);
    db_close(db);
}

struct mig_thread {
    const char *url;
    pthread_barrier_t *start;
    int rc;
    int applied;
};

static void *mig_run(void *arg)
{
    struct mig_thread *t = arg;
    struct db_options o = {.pool_size = 1, .busy_timeout_ms = 5000};
    struct db *db = NULL;
    t->rc = db_open(t->url, &o, &db);
    pthread_barrier_wait(t->start); /* open both, then race */
    if (t->rc == CORE_OK)
        t->rc = db__migrate_list(db, test_migrations, 3, &t->applied);
    db_close(db);
    return NULL;
}

static void test_migrate_concurrently(void **state)
{
    struct backend *b = *state;
    char url[600];
    fresh_store(b, "migc", url, sizeof url);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    struct mig_thread t[2] = {{url, &start, -1, 0}, {url, &start, -1, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, mig_run, &t[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    assert_int_equal(t[0].rc, CORE_OK);
    assert_int_equal(t[1].rc, CORE_OK);
    assert_int_equal(t[0].applied + t[1].applied, 3);

    struct db *db = open_ok(url, 1, 5000);
    assert_int_equal(count_rows(db, "mig_items"), 3);
    assert_int_equal(count_rows(db, "schema_migrations"), 3);
    db_close(db);
}

/* The migrations shipped in src/db/migrations apply, once. */
static void test_migrate_embedded(void **state)
{
    struct backend *b = *state;
    char url[600];
    fresh_store(b, "migreal", url, sizeof url);
    struct db *db = open_ok(url, 1, 5000);
    int want = (int)*db->ops->nmigrations;
    int applied = -1;
    assert_int_equal(db_migrate(db, &applied), CORE_OK);
    assert_int_equal(applied, want);
    assert_int_equal(db_migrate(db, &applied), CORE_OK);
    assert_int_equal(applied, 0);
    assert_int_equal(db_migrate(db, NULL), CORE_OK);
    assert_int_equal(count_rows(db, "schema_migrations"), want);
    db_close(db);
}

/* ----------------------------------------------------- server restarts */

static void test_pg_survives_restart(void **state)
{
    struct backend *b = *state;
    if (b->dialect != DB_POSTGRES || !b->started)
        skip(); /* only a server of our own may be restarted */
    struct db_conn *c[4];
    for (int i = 0; i < 4; i++) { /* all four pooled connections */
        c[i] = acquire_ok(b->db, false);
        assert_int_equal(query_int(c[i], "SELECT 1"), 1);
    }
    for (int i = 0; i < 4; i++)
        db_conn_release(c[i]);
    assert_int_equal(test_pg_script("restart", b->dir, NULL, 0), 0);
    for (int i = 0; i < 4; i++) {
        c[i] = acquire_ok(b->db, false);
        assert_int_equal(query_int(c[i], "SELECT 2"), 2);
        /* Session settings are back after the reconnect. */
        struct db_stmt *s = prepare_ok(c[i], "SHOW TimeZone");
        step_row(s, true);
        assert_string_equal(db_col_text(s, 0), "UTC");
        db_finalize(s);
    }
    for (int i = 0; i < 4; i++)
        db_conn_release(c[i]);
}

/* ------------------------------------------------- backend-free tests */

static void test_open_errors(void **state)
{
    (void)state;
    struct db *db = (struct db *)1;
    assert_int_equal(db_open("mysql://x/y", NULL, &db), CORE_EINVAL);
    assert_null(db);
    assert_int_equal(db_open("sqlite:", NULL, &db), CORE_EINVAL);
    assert_int_equal(db_open("sqlite::memory:", NULL, &db), CORE_EINVAL);
    struct db_options bad = {.pool_size = -1};
    assert_int_equal(db_open("sqlite:/tmp/x.db", &bad, &db), CORE_EINVAL);
    struct db_options quick = {.pool_size = 1};
    int rc = db_open("postgres://nobody@127.0.0.1:1/none", &quick, &db);
    assert_true(rc == CORE_EIO || rc == CORE_EDB);
    assert_null(db);
    db_close(NULL);
    db_conn_release(NULL);
    db_finalize(NULL);
}

static void test_pg_rewrite(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
        int n;
    } cases[] = {
        {"", "", 0},
        {"SELECT ?", "SELECT $1", 1},
        {"SELECT ?, ?,?", "SELECT $1, $2,$3", 3},
        {"SELECT '?', ?", "SELECT '?', $1", 1},
        {"SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1", 1},
        {"SELECT E'\\'?', ?", "SELECT E'\\'?', $1", 1},
        {"SELECT e'a\\\\', ?", "SELECT e'a\\\\', $1", 1},
        {"SELECT 'a\\', ?", "SELECT 'a\\', $1", 1}, /* no escapes here */
        {"SELECT \"a?\"\"b\", ?", "SELECT \"a?\"\"b\", $1", 1},
        {"SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2", 2},
        {"SELECT /* ? /* ? */ ? */ ?", "SELECT /* ? /* ? */ ? */ $1", 1},
        {"SELECT $$?$$, $t$ ? $ ? $t$, ?", "SELECT $$?$$, $t$ ? $ ? $t$, $1",
         1},
        {"SELECT a$b$, ?", "SELECT a$b$, $1", 1}, /* identifier, no tag */
        {"SELECT 'unterminated ?", "SELECT 'unterminated ?", 0},
        {"SELECT ?::int + 'x'", "SELECT $1::int + 'x'", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = -1;
        char *out = db__pg_rewrite(cases[i].in, &n);
        assert_non_null(out);
        if (strcmp(out, cases[i].out) != 0 || n != cases[i].n)
            fail_msg("rewrite(%s) = %s (%d), want %s (%d)", cases[i].in, out,
                     n, cases[i].out, cases[i].n);
        free(out);
    }
}

static void test_pg_time_to_iso(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
    } ok[] = {
        {"2026-11-23 12:00:00.123+00", "2026-11-23T12:00:00.123Z"},
        {"2026-11-23 12:00:00+00", "2026-11-23T12:00:00.000Z"},
        {"2026-11-23 12:00:00.1+00", "2026-11-23T12:00:00.100Z"},
        {"2026-11-23 12:00:00.999999+00", "2026-11-23T12:00:00.999Z"},
        {"2026-11-23 12:00:00.5-05", "2026-11-23T17:00:00.500Z"},
        {"2026-11-23 00:30:00+05:30", "2026-11-22T19:00:00.000Z"},
        {"2026-11-23 00:30:00+05:30:00", "2026-11-22T19:00:00.000Z"},
        {"2026-11-23 12:00:00.25", "2026-11-23T12:00:00.250Z"},
        {"0001-01-01 00:00:00+00", "0001-01-01T00:00:00.000Z"},
    };
    const char *bad[] = {"infinity", "-infinity",
                         "0044-03-15 12:00:00+00 BC",
                         "12026-11-23 12:00:00+00", "2026-11-23",
                         "2026-11-23 12:00:00+0",
                         "2026-11-23 12:00:00+05:30:12"};
    char out[CORE_TIME_ISO_LEN];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (db__pg_time_to_iso(ok[i].in, out) != CORE_OK ||
            strcmp(out, ok[i].out) != 0)
            fail_msg("%s: got %s, want %s", ok[i].in, out, ok[i].out);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (db__pg_time_to_iso(bad[i], out) != CORE_EPARSE)
            fail_msg("%s: accepted", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest common[] = {
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_pg_rewrite),
        cmocka_unit_test(test_pg_time_to_iso),
    };
    /* The same list runs against each driver. */
    const struct CMUnitTest drivers[] = {
        cmocka_unit_test(test_text_roundtrip),
        cmocka_unit_test(test_int64_extremes),
        cmocka_unit_test(test_doubles),
        cmocka_unit_test(test_bools),
        cmocka_unit_test(test_nulls),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_constraint_errors),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_placeholders_in_literals),
        cmocka_unit_test(test_one_statement_per_prepare),
        cmocka_unit_test(test_changes_and_reset),
        cmocka_unit_test(test_prepare_reuse),
        cmocka_unit_test(test_pool_exhaustion),
        cmocka_unit_test(test_lock_timeout_is_busy),
        cmocka_unit_test(test_reader_cannot_write),
        cmocka_unit_test(test_readers_beside_writer),
        cmocka_unit_test(test_background_checkpoint),
        cmocka_unit_test(test_wal_gathered_writes),
        cmocka_unit_test(test_migrate_list),
        cmocka_unit_test(test_migrate_concurrently),
        cmocka_unit_test(test_migrate_embedded),
        cmocka_unit_test(test_pg_survives_restart),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("db", common, NULL, NULL);
    failed += cmocka_run_group_tests_name("sqlite", drivers, sqlite_setup,
                                          teardown);
    failed += cmocka_run_group_tests_name("postgres", drivers, pg_setup,
                                          teardown);
    return failed ? 1 : 0;
}
