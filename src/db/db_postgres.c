/*
 * PostgreSQL driver over libpq: a fixed pool of connections opened at
 * db_open. Statements go through PQexecParams with text parameters and no
 * named prepared statements, so nothing outlives a transaction on the
 * server (PgBouncer in transaction mode is fine). A result is fetched
 * whole; db_step walks its rows.
 */
#include "db_internal.h"
#include "db_pg.h"

#include "core.h"

#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs from pg_type.dat; stable across releases. */
enum {
    OID_BOOL = 16,
    OID_INT8 = 20,
    OID_FLOAT8 = 701,
    OID_TIMESTAMP = 1114,
    OID_TIMESTAMPTZ = 1184,
};

/* Key of the advisory lock taken in each migration's transaction
 * ("argusmig"). */
#define MIGRATE_LOCK_KEY "7021788523169409383"

struct pg_conn {
    struct db_conn base;
    PGconn *h;
    char err[512];
};

struct pg_db {
    struct db base;
    char *url;
    struct pg_conn *conns;
    int nconns;
    struct db__pool pool;
};

struct pg_stmt {
    struct db_stmt base;
    char *sql; /* rewritten to $n */
    int nparams;
    char **params; /* owned; NULL is SQL NULL */
    Oid *types;
    PGresult *res;
    int row;       /* current row, -1 before the first */
    bool executed;
    int err;       /* returned again by db_step after a failure */
    char (*iso)[CORE_TIME_ISO_LEN]; /* per column, for timestamps */
};

static struct pg_conn *conn_of(struct db_conn *c)
{
    return (struct pg_conn *)c;
}

static struct pg_stmt *stmt_of(struct db_stmt *s)
{
    return (struct pg_stmt *)s;
}

/* libpq's messages end with a newline; the log wants one line. */
static void set_err(struct pg_conn *c, const char *msg)
{
    snprintf(c->err, sizeof c->err, "%s", msg ? msg : "unknown error");
    size_t n = strlen(c->err);
    while (n > 0 && (c->err[n - 1] == '\n' || c->err[n - 1] == ' '))
        c->err[--n] = '\0';
    for (char *p = c->err; *p; p++) {
        if (*p == '\n')
            *p = ' ';
    }
}

static int map_sqlstate(const char *st)
{
    if (!st)
        return CORE_EDB;
    if (strcmp(st, "23505") == 0)
        return CORE_ECONFLICT;
    if (strncmp(st, "23", 2) == 0)
        return CORE_ECONSTRAINT;
    /* lock_not_available (lock_timeout, NOWAIT), deadlock and
     * serialization failures: the store was busy, a retry may succeed. */
    if (strcmp(st, "55P03") == 0 || strcmp(st, "40P01") == 0 ||
        strcmp(st, "40001") == 0)
        return CORE_EBUSY;
    return CORE_EDB;
}

/* Records and logs a failed result (res may be NULL). The primary message
 * goes to db_errmsg; the log gets it too except for data exceptions (class
 * 22), whose messages quote the offending input. DETAIL, which quotes key
 * values, is never used. */
static int fail(struct pg_conn *c, const PGresult *res)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg =
        res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *cons =
        res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    if (!msg)
        msg = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
                                                 : PQerrorMessage(c->h);
    set_err(c, msg);
    char logged[sizeof c->err];
    if (st && strncmp(st, "22", 2) == 0)
        snprintf(logged, sizeof logged, "(withheld: data exception)");
    else
        db__log_text(logged, sizeof logged, c->err);
    core_log_warn("db", "postgres error sqlstate=%s%s%s msg=\"%s\"",
                  st ? st : "none", cons ? " constraint=" : "",
                  cons ? cons : "", logged);
    return map_sqlstate(st);
}

/* Runs sql without parameters and checks its outcome. */
static int run(struct pg_conn *c, const char *sql)
{
    PGresult *res = PQexec(c->h, sql);
    ExecStatusType s = PQresultStatus(res);
    int rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ||
                     s == PGRES_EMPTY_QUERY
                 ? CORE_OK
                 : fail(c, res);
    PQclear(res);
    return rc;
}

static void on_notice(void *arg, const char *msg)
{
    (void)arg;
    if (core_log_level_g >= CORE_LOG_DEBUG) {
        char logged[512];
        db__log_text(logged, sizeof logged, msg);
        core_log_debug("db", "postgres notice msg=\"%s\"", logged);
    }
}

/* Session settings every connection starts with, again after a reset.
 * Times come back in UTC and in ISO form, which the timestamp conversion
 * relies on. */
static int session_setup(struct pg_conn *c)
{
    return run(c, "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'");
}

static int connect_one(struct pg_db *d, struct pg_conn *c)
{
    /* Defaults first: settings in the URL override them. */
    const char *const keys[] = {"connect_timeout", "fallback_application_name",
                                "client_encoding", "dbname", NULL};
    const char *const vals[] = {"10", "argus", "UTF8", d->url, NULL};
    c->base.db = &d->base;
    c->h = PQconnectdbParams(keys, vals, 1);
    if (!c->h)
        return CORE_ENOMEM;
    if (PQstatus(c->h) != CONNECTION_OK) {
        char logged[sizeof c->err];
        set_err(c, PQerrorMessage(c->h));
        db__log_text(logged, sizeof logged, c->err);
        core_log_error("db", "postgres connect failed msg=\"%s\"", logged);
        return CORE_EIO;
    }
    PQsetNoticeProcessor(c->h, on_notice, NULL);
    return session_setup(c);
}

static void pg_close(struct db *db)
{
    struct pg_db *d = (struct pg_db *)db;
    for (int i = 0; d->conns && i < d->nconns; i++)
        PQfinish(d->conns[i].h); /* accepts NULL */
    db__pool_fini(&d->pool);
    free(d->conns);
    free(d->url);
    free(d);
}

static int pg_open(const char *url, const struct db_options *opts,
                   struct db **out)
{
    struct pg_db *d = calloc(1, sizeof *d);
    if (!d)
        return CORE_ENOMEM;
    d->base.ops = &db_postgres_ops;
    d->base.opts = *opts;
    int rc = CORE_ENOMEM;
    d->url = strdup(url);
    d->nconns = opts->pool_size;
    d->conns = calloc((size_t)d->nconns, sizeof *d->conns);
    if (!d->url || !d->conns)
        goto fail;
    if ((rc = db__pool_init(&d->pool, "postgres", d->nconns)) != CORE_OK)
        goto fail;
    for (int i = 0; i < d->nconns; i++) {
        if ((rc = connect_one(d, &d->conns[i])) != CORE_OK)
            goto fail;
        db__pool_add(&d->pool, &d->conns[i].base);
    }
    *out = &d->base;
    return CORE_OK;
fail:
    pg_close(&d->base);
    return rc;
}

/* An idle connection has nothing to read unless the server is closing it
 * (shutdown, restart, pg_terminate_backend send an error and hang up), so
 * a readable socket at checkout, like a bad status, means reconnect. */
static int ensure_alive(struct pg_conn *c)
{
    bool bad = PQstatus(c->h) != CONNECTION_OK;
    if (!bad) {
        struct pollfd pfd = {.fd = PQsocket(c->h), .events = POLLIN};
        bad = pfd.fd < 0 || poll(&pfd, 1, 0) != 0;
    }
    if (!bad)
        return CORE_OK;
    core_log_warn("db", "postgres connection lost; reconnecting");
    PQreset(c->h);
    if (PQstatus(c->h) != CONNECTION_OK) {
        char logged[sizeof c->err];
        set_err(c, PQerrorMessage(c->h));
        db__log_text(logged, sizeof logged, c->err);
        core_log_error("db", "postgres reconnect failed msg=\"%s\"",
                       logged);
        return CORE_EDB;
    }
    return session_setup(c);
}

static int pg_conn_acquire(struct db *db, bool write, struct db_conn **out)
{
    struct pg_db *d = (struct pg_db *)db;
    struct db_conn *c;
    int rc = db__pool_take(&d->pool, db->opts.busy_timeout_ms, &c);
    if (rc != CORE_OK)
        return rc;
    rc = ensure_alive(conn_of(c));
    if (rc != CORE_OK) {
        db__pool_put(&d->pool, c); /* retried at its next checkout */
        return rc;
    }
    *out = c;
    return CORE_OK;
}

static void pg_conn_release(struct db_conn *c)
{
    db__pool_put(&((struct pg_db *)c->db)->pool, c);
}

static bool pg_in_transaction(struct db_conn *conn)
{
    PGTransactionStatusType t = PQtransactionStatus(conn_of(conn)->h);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR ||
           t == PQTRANS_ACTIVE;
}

static int pg_begin(struct db_conn *conn)
{
    return run(conn_of(conn), "BEGIN");
}

/* COMMIT of a transaction that an error aborted "succeeds" with a
 * ROLLBACK tag; callers must learn that nothing was committed. */
static int pg_commit(struct db_conn *conn)
{
    struct pg_conn *c = conn_of(conn);
    if (PQtransactionStatus(c->h) == PQTRANS_INERROR) {
        run(c, "ROLLBACK");
        set_err(c, "transaction aborted by an earlier error; rolled back");
        core_log_warn("db", "postgres commit of an aborted transaction; "
                            "rolled back");
        return CORE_EDB;
    }
    return run(c, "COMMIT");
}

static int pg_rollback(struct db_conn *conn)
{
    return pg_in_transaction(conn) ? run(conn_of(conn), "ROLLBACK") : CORE_OK;
}

static int pg_exec(struct db_conn *conn, const char *sql)
{
    return run(conn_of(conn), sql);
}

PGconn *db__pg_handle(struct db_conn *c)
{
    return c && c->db->ops == &db_postgres_ops ? conn_of(c)->h : NULL;
}

int db__pg_check(struct db_conn *c, const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK
               ? CORE_OK
               : fail(conn_of(c), res);
}

static const char *pg_errmsg(struct db_conn *conn)
{
    return conn_of(conn)->err;
}

static void clear_result(struct pg_stmt *s)
{
    PQclear(s->res);
    s->res = NULL;
    free(s->iso);
    s->iso = NULL;
    s->row = -1;
    s->executed = false;
    s->err = CORE_OK;
}

static void clear_params(struct pg_stmt *s)
{
    for (int i = 0; i < s->nparams; i++) {
        free(s->params[i]);
        s->params[i] = NULL;
        s->types[i] = 0;
    }
}

static void pg_finalize(struct db_stmt *stmt)
{
    struct pg_stmt *s = stmt_of(stmt);
    clear_result(s);
    if (s->params)
        clear_params(s);
    free(s->params);
    free(s->types);
    free(s->sql);
    free(s);
}

static int pg_prepare(struct db_conn *conn, const char *sql,
                      struct db_stmt **out)
{
    struct pg_stmt *s = calloc(1, sizeof *s);
    if (!s)
        return CORE_ENOMEM;
    s->base.conn = conn;
    s->row = -1;
    s->sql = db__pg_rewrite(sql, &s->nparams);
    if (!s->sql)
        goto nomem;
    if (s->nparams > 0) {
        s->params = calloc((size_t)s->nparams, sizeof *s->params);
        s->types = calloc((size_t)s->nparams, sizeof *s->types);
        if (!s->params || !s->types)
            goto nomem;
    }
    *out = &s->base;
    return CORE_OK;
nomem:
    pg_finalize(&s->base);
    return CORE_ENOMEM;
}

/* Integers, doubles and booleans carry their type so that the server can
 * resolve contexts like jsonb_build_object(?, ?); text and NULL stay
 * untyped ("unknown") so that they fit uuid, timestamptz and jsonb
 * columns. */
static int pg_bind(struct db_stmt *stmt, int idx, const struct db_value *v)
{
    struct pg_stmt *s = stmt_of(stmt);
    struct pg_conn *c = conn_of(stmt->conn);
    char num[32];
    const char *text = NULL;
    Oid type = 0;
    if (idx < 1 || idx > s->nparams) {
        snprintf(c->err, sizeof c->err, "bind parameter %d of %d", idx,
                 s->nparams);
        return CORE_ERANGE;
    }
    if (s->executed) { /* as SQLite: bind after step needs db_reset */
        snprintf(c->err, sizeof c->err, "bind after step without reset");
        return CORE_EINVAL;
    }
    switch (v->kind) {
    case DB_VALUE_TEXT:
        text = v->u.text;
        break;
    case DB_VALUE_INT64:
        snprintf(num, sizeof num, "%lld", (long long)v->u.i64);
        text = num, type = OID_INT8;
        break;
    case DB_VALUE_DOUBLE:
        /* %.17g round-trips every finite double; PostgreSQL spells the
         * others NaN, Infinity, -Infinity. */
        if (isnan(v->u.dbl))
            snprintf(num, sizeof num, "NaN");
        else if (isinf(v->u.dbl))
            snprintf(num, sizeof num, v->u.dbl > 0 ? "Infinity" : "-Infinity");
        else
            snprintf(num, sizeof num, "%.17g", v->u.dbl);
        text = num, type = OID_FLOAT8;
        break;
    case DB_VALUE_BOOL:
        text = v->u.b ? "true" : "false", type = OID_BOOL;
        break;
    default:
        break;
    }
    char *copy = NULL;
    if (text && !(copy = strdup(text)))
        return CORE_ENOMEM;
    free(s->params[idx - 1]);
    s->params[idx - 1] = copy;
    s->types[idx - 1] = type;
    return CORE_OK;
}

static int execute(struct pg_stmt *s)
{
    struct pg_conn *c = conn_of(s->base.conn);
    s->executed = true;
    s->res = PQexecParams(c->h, s->sql, s->nparams, s->types,
                          (const char *const *)s->params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(s->res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        s->err = st == PGRES_EMPTY_QUERY ? CORE_EINVAL : fail(c, s->res);
        if (st == PGRES_EMPTY_QUERY)
            set_err(c, "empty statement");
        return s->err;
    }
    int ncols = PQnfields(s->res);
    for (int i = 0; i < ncols; i++) {
        Oid t = PQftype(s->res, i);
        if (t == OID_TIMESTAMP || t == OID_TIMESTAMPTZ) {
            s->iso = calloc((size_t)ncols, sizeof *s->iso);
            if (!s->iso) {
                s->err = CORE_ENOMEM;
                return s->err;
            }
            break;
        }
    }
    return CORE_OK;
}

static int pg_step(struct db_stmt *stmt, bool *row)
{
    struct pg_stmt *s = stmt_of(stmt);
    if (!s->executed) {
        int rc = execute(s);
        if (rc != CORE_OK)
            return rc;
    } else if (s->err != CORE_OK) {
        return s->err;
    }
    int n = PQntuples(s->res);
    if (s->row < n)
        s->row++;
    *row = s->row < n;
    return CORE_OK;
}

/* PQcmdTuples counts SELECT rows too; only writes count here, as in
 * SQLite. */
static int64_t pg_changes(struct db_stmt *stmt)
{
    static const char *const writes[] = {"INSERT ", "UPDATE ", "DELETE ",
                                         "MERGE "};
    struct pg_stmt *s = stmt_of(stmt);
    if (!s->res)
        return 0;
    const char *tag = PQcmdStatus(s->res);
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        if (strncmp(tag, writes[i], strlen(writes[i])) == 0)
            return strtoll(PQcmdTuples(s->res), NULL, 10);
    }
    return 0;
}

static int pg_reset(struct db_stmt *stmt)
{
    struct pg_stmt *s = stmt_of(stmt);
    clear_result(s);
    clear_params(s);
    return CORE_OK;
}

/* The current row's value of column i, or NULL (no row, out of range, SQL
 * NULL). */
static const char *value_of(struct pg_stmt *s, int i)
{
    if (!s->res || s->err != CORE_OK || s->row < 0 ||
        s->row >= PQntuples(s->res) || i < 0 || i >= PQnfields(s->res) ||
        PQgetisnull(s->res, s->row, i))
        return NULL;
    return PQgetvalue(s->res, s->row, i);
}

static int pg_col_count(struct db_stmt *stmt)
{
    struct pg_stmt *s = stmt_of(stmt);
    return s->res ? PQnfields(s->res) : 0;
}

static const char *pg_col_name(struct db_stmt *stmt, int i)
{
    struct pg_stmt *s = stmt_of(stmt);
    if (!s->res || i < 0 || i >= PQnfields(s->res))
        return NULL;
    return PQfname(s->res, i);
}

static bool pg_col_is_null(struct db_stmt *stmt, int i)
{
    return value_of(stmt_of(stmt), i) == NULL;
}

/* Timestamps read as "YYYY-MM-DDTHH:MM:SS.mmmZ" (values that form cannot
 * hold, such as infinity, as PostgreSQL writes them); booleans as "1" and
 * "0", the way SQLite stores them. */
static const char *pg_col_text(struct db_stmt *stmt, int i)
{
    struct pg_stmt *s = stmt_of(stmt);
    const char *v = value_of(s, i);
    if (!v)
        return NULL;
    Oid t = PQftype(s->res, i);
    if (t == OID_BOOL)
        return v[0] == 't' ? "1" : "0";
    if ((t == OID_TIMESTAMPTZ || t == OID_TIMESTAMP) &&
        db__pg_time_to_iso(v, s->iso[i]) == CORE_OK)
        return s->iso[i];
    return v;
}

static int64_t pg_col_int64(struct db_stmt *stmt, int i)
{
    struct pg_stmt *s = stmt_of(stmt);
    const char *v = value_of(s, i);
    if (!v)
        return 0;
    if (PQftype(s->res, i) == OID_BOOL)
        return v[0] == 't';
    return strtoll(v, NULL, 10);
}

static double pg_col_double(struct db_stmt *stmt, int i)
{
    const char *v = value_of(stmt_of(stmt), i);
    return v ? strtod(v, NULL) : 0.0;
}

static bool pg_col_bool(struct db_stmt *stmt, int i)
{
    struct pg_stmt *s = stmt_of(stmt);
    const char *v = value_of(s, i);
    if (!v)
        return false;
    if (PQftype(s->res, i) == OID_BOOL)
        return v[0] == 't';
    return v[0] == 't' || v[0] == 'T' || strtod(v, NULL) != 0.0;
}

static int pg_migrate_lock(struct db_conn *conn)
{
    return run(conn_of(conn),
               "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")");
}

static const char *const postgres_prefixes[] = {"postgres://",
                                                "postgresql://", NULL};

const struct db_ops db_postgres_ops = {
    .name = "postgres",
    .dialect = DB_POSTGRES,
    .prefixes = postgres_prefixes,
    .open = pg_open,
    .close = pg_close,
    .conn_acquire = pg_conn_acquire,
    .conn_release = pg_conn_release,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .in_transaction = pg_in_transaction,
    .exec = pg_exec,
    .errmsg = pg_errmsg,
    .prepare = pg_prepare,
    .bind = pg_bind,
    .step = pg_step,
    .changes = pg_changes,
    .reset = pg_reset,
    .finalize = pg_finalize,
    .col_count = pg_col_count,
    .col_name = pg_col_name,
    .col_is_null = pg_col_is_null,
    .col_text = pg_col_text,
    .col_int64 = pg_col_int64,
    .col_double = pg_col_double,
    .col_bool = pg_col_bool,
    .migrations = db__migrations_postgres,
    .nmigrations = &db__migrations_postgres_count,
    .migrations_table_sql =
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at timestamptz NOT NULL)",
    .migrate_lock = pg_migrate_lock,
};
