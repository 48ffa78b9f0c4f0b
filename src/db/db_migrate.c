/*
 * The migration runner, the same for every driver. Each migration runs in
 * its own transaction together with its schema_migrations row, and the
 * "already applied?" check happens inside that transaction, so a crash
 * leaves either both or neither and concurrent migrators never apply one
 * twice: in PostgreSQL each transaction first takes a transaction-scoped
 * advisory lock (so this works behind PgBouncer in transaction mode);
 * SQLite holds the writer connection and takes the write lock with BEGIN
 * IMMEDIATE (which also serialises other processes).
 */
#include "db_internal.h"

#include "core.h"

static int is_applied(struct db_conn *c, int version, bool *yes)
{
    struct db_stmt *s = NULL;
    int rc = db_prepare(c, "SELECT 1 FROM schema_migrations WHERE version = ?",
                        &s);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, 1, version);
    if (rc == CORE_OK)
        rc = db_step(s, yes);
    db_finalize(s);
    return rc;
}

static int record(struct db_conn *c, const struct db_migration *m)
{
    char now[CORE_TIME_ISO_LEN];
    struct db_stmt *s = NULL;
    bool row;
    core_time_format_iso(core_time_now_ms(), now);
    int rc = db_prepare(c,
                        "INSERT INTO schema_migrations (version, name, "
                        "applied_at) VALUES (?, ?, ?)",
                        &s);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, 1, m->version);
    if (rc == CORE_OK)
        rc = db_bind_text(s, 2, m->name);
    if (rc == CORE_OK)
        rc = db_bind_text(s, 3, now);
    if (rc == CORE_OK)
        rc = db_step(s, &row);
    db_finalize(s);
    return rc;
}

/* Applies m unless already recorded; *ran tells which. */
static int apply_one(struct db_conn *c, const struct db_migration *m,
                     bool *ran)
{
    bool done = false;
    *ran = false;
    int rc = db_begin(c);
    if (rc != CORE_OK)
        return rc;
    if (c->db->ops->migrate_lock && (rc = c->db->ops->migrate_lock(c)))
        goto out;
    rc = is_applied(c, m->version, &done);
    if (rc != CORE_OK || done)
        goto out;
    rc = db_exec(c, m->sql);
    if (rc == CORE_OK)
        rc = record(c, m);
    if (rc == CORE_OK)
        rc = db_commit(c);
    if (rc == CORE_OK)
        *ran = true;
out:
    if (rc != CORE_OK || done)
        db_rollback(c);
    return rc;
}

/* An older build run against a store migrated by a newer one works on a
 * schema it does not know: worth a line in the log. */
static void warn_if_newer(struct db_conn *c, int known)
{
    struct db_stmt *s = NULL;
    bool row = false;
    if (db_prepare(c, "SELECT MAX(version) FROM schema_migrations", &s) ==
            CORE_OK &&
        db_step(s, &row) == CORE_OK && row &&
        db_col_int64(s, 0) > known)
        core_log_warn("db", "store has migrations this build does not know "
                            "store_version=%lld build_version=%d",
                      (long long)db_col_int64(s, 0), known);
    db_finalize(s);
}

int db__migrate_list(struct db *db, const struct db_migration *list,
                     size_t n, int *applied)
{
    const struct db_ops *ops = db->ops;
    struct db_conn *c = NULL;
    int count = 0;
    int rc;

    if (applied)
        *applied = 0;
    /* Another migrator of this process may hold the writer for longer than
     * busy_timeout_ms: waiting is what migrators do (PostgreSQL's advisory
     * lock waits without bound too). */
    while ((rc = db_conn_acquire(db, true, &c)) == CORE_EBUSY)
        core_log_info("db", "migrate: waiting for the writer connection");
    if (rc != CORE_OK)
        return rc;
    /* The bookkeeping table, created under the same lock: concurrent
     * CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL. */
    rc = db_begin(c);
    if (rc == CORE_OK && ops->migrate_lock)
        rc = ops->migrate_lock(c);
    if (rc == CORE_OK)
        rc = db_exec(c, ops->migrations_table_sql);
    if (rc == CORE_OK)
        rc = db_commit(c);
    if (rc != CORE_OK) {
        db_rollback(c);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        bool ran;
        rc = apply_one(c, &list[i], &ran);
        if (rc != CORE_OK) {
            char logged[256];
            db__log_text(logged, sizeof logged, db_errmsg(c));
            core_log_error("db", "migration failed version=%d name=%s "
                                 "err=%s msg=\"%s\"",
                           list[i].version, list[i].name, core_err_name(rc),
                           logged);
            goto out;
        }
        if (ran) {
            count++;
            core_log_info("db", "migration applied version=%d name=%s",
                          list[i].version, list[i].name);
        }
    }
    warn_if_newer(c, n > 0 ? list[n - 1].version : 0);
out:
    db_conn_release(c);
    if (applied)
        *applied = count;
    return rc;
}
