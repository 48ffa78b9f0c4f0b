/*
 * The portable layer: picks a driver by URL and dispatches to its ops
 * table. Argument checks common to every driver live here.
 */
#include "db_internal.h"

#include "core.h"

#include <string.h>

/* Adding a driver is one file and one entry here. */
static const struct db_ops *const drivers[] = {
    &db_sqlite_ops,
    &db_postgres_ops,
};

static const struct db_ops *driver_for(const char *url)
{
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++) {
        for (const char *const *p = drivers[i]->prefixes; *p; p++) {
            if (strncmp(url, *p, strlen(*p)) == 0)
                return drivers[i];
        }
    }
    return NULL;
}

int db_open(const char *url, const struct db_options *opts, struct db **out)
{
    if (!url || !out)
        return CORE_EINVAL;
    *out = NULL;
    struct db_options o = {0};
    if (opts)
        o = *opts;
    if (o.pool_size < 0 || o.busy_timeout_ms < 0)
        return CORE_EINVAL;
    if (o.pool_size == 0)
        o.pool_size = 4;
    if (o.busy_timeout_ms == 0)
        o.busy_timeout_ms = 5000;
    const struct db_ops *ops = driver_for(url);
    if (!ops) {
        /* The URL itself may carry a password: never logged. */
        core_log_warn("db", "unknown store URL scheme (want sqlite: or "
                            "postgres://)");
        return CORE_EINVAL;
    }
    return ops->open(url, &o, out);
}

void db_close(struct db *db)
{
    if (db)
        db->ops->close(db);
}

enum db_dialect db_dialect(const struct db *db)
{
    return db->ops->dialect;
}

int db_conn_acquire(struct db *db, bool write, struct db_conn **out)
{
    if (!db || !out)
        return CORE_EINVAL;
    *out = NULL;
    return db->ops->conn_acquire(db, write, out);
}

void db_conn_release(struct db_conn *c)
{
    if (!c)
        return;
    const struct db_ops *ops = c->db->ops;
    if (ops->in_transaction(c)) {
        core_log_warn("db", "connection released inside a transaction; "
                            "rolling back");
        ops->rollback(c);
    }
    ops->conn_release(c);
}

int db_begin(struct db_conn *c)
{
    return c ? c->db->ops->begin(c) : CORE_EINVAL;
}

int db_commit(struct db_conn *c)
{
    return c ? c->db->ops->commit(c) : CORE_EINVAL;
}

int db_rollback(struct db_conn *c)
{
    return c ? c->db->ops->rollback(c) : CORE_EINVAL;
}

int db_exec(struct db_conn *c, const char *sql)
{
    return c && sql ? c->db->ops->exec(c, sql) : CORE_EINVAL;
}

int db_log_sync(struct db *db)
{
    if (!db)
        return CORE_EINVAL;
    return db->ops->log_sync ? db->ops->log_sync(db) : CORE_OK;
}

int db_prepare(struct db_conn *c, const char *sql, struct db_stmt **out)
{
    if (!c || !sql || !out)
        return CORE_EINVAL;
    *out = NULL;
    return c->db->ops->prepare(c, sql, out);
}

static int bind(struct db_stmt *s, int idx, struct db_value v)
{
    return s ? s->conn->db->ops->bind(s, idx, &v) : CORE_EINVAL;
}

int db_bind_text(struct db_stmt *s, int idx, const char *v)
{
    if (!v)
        return db_bind_null(s, idx);
    return bind(s, idx, (struct db_value){DB_VALUE_TEXT, {.text = v}});
}

int db_bind_int64(struct db_stmt *s, int idx, int64_t v)
{
    return bind(s, idx, (struct db_value){DB_VALUE_INT64, {.i64 = v}});
}

int db_bind_double(struct db_stmt *s, int idx, double v)
{
    return bind(s, idx, (struct db_value){DB_VALUE_DOUBLE, {.dbl = v}});
}

int db_bind_bool(struct db_stmt *s, int idx, bool v)
{
    return bind(s, idx, (struct db_value){DB_VALUE_BOOL, {.b = v}});
}

int db_bind_null(struct db_stmt *s, int idx)
{
    return bind(s, idx, (struct db_value){DB_VALUE_NULL, {.text = NULL}});
}

int db_step(struct db_stmt *s, bool *row)
{
    if (!s || !row)
        return CORE_EINVAL;
    *row = false;
    return s->conn->db->ops->step(s, row);
}

int64_t db_changes(struct db_stmt *s)
{
    return s ? s->conn->db->ops->changes(s) : 0;
}

int db_reset(struct db_stmt *s)
{
    return s ? s->conn->db->ops->reset(s) : CORE_EINVAL;
}

void db_finalize(struct db_stmt *s)
{
    if (s)
        s->conn->db->ops->finalize(s);
}

int db_col_count(struct db_stmt *s)
{
    return s ? s->conn->db->ops->col_count(s) : 0;
}

const char *db_col_name(struct db_stmt *s, int i)
{
    return s ? s->conn->db->ops->col_name(s, i) : NULL;
}

bool db_col_is_null(struct db_stmt *s, int i)
{
    return s ? s->conn->db->ops->col_is_null(s, i) : true;
}

const char *db_col_text(struct db_stmt *s, int i)
{
    return s ? s->conn->db->ops->col_text(s, i) : NULL;
}

int64_t db_col_int64(struct db_stmt *s, int i)
{
    return s ? s->conn->db->ops->col_int64(s, i) : 0;
}

double db_col_double(struct db_stmt *s, int i)
{
    return s ? s->conn->db->ops->col_double(s, i) : 0.0;
}

bool db_col_bool(struct db_stmt *s, int i)
{
    return s ? s->conn->db->ops->col_bool(s, i) : false;
}

const char *db_errmsg(struct db_conn *c)
{
    return c ? c->db->ops->errmsg(c) : "no connection";
}

void db__log_text(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < n; i++) {
        char c = src[i];
        dst[i] = c == '"' ? '\'' : (unsigned char)c < 0x20 ? ' ' : c;
    }
    if (n > 0)
        dst[i] = '\0';
}

int db_migrate(struct db *db, int *applied)
{
    if (applied)
        *applied = 0;
    if (!db)
        return CORE_EINVAL;
    return db__migrate_list(db, db->ops->migrations, *db->ops->nmigrations,
                            applied);
}
