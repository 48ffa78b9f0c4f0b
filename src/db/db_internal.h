/*
 * db internals shared by db.c, the pool, the migration runner and the two
 * drivers. Nothing outside src/db (and its unit test) includes this.
 */
#ifndef ARGUS_DB_INTERNAL_H
#define ARGUS_DB_INTERNAL_H

#include "core.h"
#include "db.h"

#include <pthread.h>

/* A bound parameter as db.c hands it to a driver. text is borrowed for the
 * duration of the bind call; drivers copy it. */
enum db_value_kind {
    DB_VALUE_NULL,
    DB_VALUE_TEXT,
    DB_VALUE_INT64,
    DB_VALUE_DOUBLE,
    DB_VALUE_BOOL,
};

struct db_value {
    enum db_value_kind kind;
    union {
        const char *text;
        int64_t i64;
        double dbl;
        bool b;
    } u;
};

struct db_migration {
    int version;
    const char *name;
    const char *sql;
};

/* A driver. Each driver embeds struct db, struct db_conn and struct db_stmt
 * as the first member of its own structs and casts back. db.c checks NULL
 * handles and arguments and dispatches here (drivers check parameter and
 * column ranges); nothing outside a driver knows its name. */
struct db_ops {
    const char *name;
    enum db_dialect dialect;
    /* URL prefixes this driver accepts, NULL-terminated. */
    const char *const *prefixes;

    int (*open)(const char *url, const struct db_options *opts,
                struct db **out);
    void (*close)(struct db *db);

    int (*conn_acquire)(struct db *db, bool write, struct db_conn **out);
    void (*conn_release)(struct db_conn *c);
    int (*begin)(struct db_conn *c);
    int (*commit)(struct db_conn *c);
    /* A no-op when no transaction is open. */
    int (*rollback)(struct db_conn *c);
    /* True while a transaction is open on c (also one begun by db_exec). */
    bool (*in_transaction)(struct db_conn *c);
    int (*exec)(struct db_conn *c, const char *sql);
    const char *(*errmsg)(struct db_conn *c);
    /* db_log_sync; NULL where commits are durable already. */
    int (*log_sync)(struct db *db);

    int (*prepare)(struct db_conn *c, const char *sql, struct db_stmt **out);
    int (*bind)(struct db_stmt *s, int idx, const struct db_value *v);
    int (*step)(struct db_stmt *s, bool *row);
    int64_t (*changes)(struct db_stmt *s);
    int (*reset)(struct db_stmt *s);
    void (*finalize)(struct db_stmt *s);

    int (*col_count)(struct db_stmt *s);
    const char *(*col_name)(struct db_stmt *s, int i);
    bool (*col_is_null)(struct db_stmt *s, int i);
    const char *(*col_text)(struct db_stmt *s, int i);
    int64_t (*col_int64)(struct db_stmt *s, int i);
    double (*col_double)(struct db_stmt *s, int i);
    bool (*col_bool)(struct db_stmt *s, int i);

    /* Migration support: the embedded migrations of this dialect and the
     * DDL of schema_migrations. */
    const struct db_migration *migrations;
    const size_t *nmigrations;
    const char *migrations_table_sql;
    /* Serialises migrators; called first inside each migration's
     * transaction (a transaction-scoped lock, so it works behind PgBouncer
     * in transaction mode). NULL when BEGIN already serialises them. */
    int (*migrate_lock)(struct db_conn *c);
};

extern const struct db_ops db_sqlite_ops;
extern const struct db_ops db_postgres_ops;

struct db {
    const struct db_ops *ops;
    struct db_options opts; /* defaults filled in */
};

struct db_conn {
    struct db *db;
};

struct db_stmt {
    struct db_conn *conn;
};

/* Copies a server message for a log line's msg="..." field: double quotes
 * become single quotes and control characters spaces, so that the line
 * stays one parseable line. */
void db__log_text(char *dst, size_t n, const char *src);

/* ------------------------------------------------------------------ pool
 * A fixed set of connections handed out one thread at a time. take waits
 * on a condition variable (monotonic clock) up to timeout_ms, then returns
 * CORE_EBUSY. The pool does not own the connections: the driver closes
 * them after db__pool_fini. */
struct db__pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct db_conn **idle;
    int nidle;
    int cap;
    bool inited;
    /* Metrics of this pool (label pool=<name>). */
    struct core_metric_series *m_in_use, *m_waits, *m_exhausted;
};

/* name labels the pool's metrics ("writer", "readers", "postgres"). */
int db__pool_init(struct db__pool *p, const char *name, int cap);
void db__pool_fini(struct db__pool *p);
/* Adds a connection while the pool is being filled (not thread-safe). */
void db__pool_add(struct db__pool *p, struct db_conn *c);
int db__pool_take(struct db__pool *p, int timeout_ms, struct db_conn **out);
void db__pool_put(struct db__pool *p, struct db_conn *c);

/* -------------------------------------------------------------- migrations */

/* Embedded at build time from src/db/migrations/<dialect>/NNNN_name.sql by
 * gen_migrations.cmake, in ascending version order. */
extern const struct db_migration db__migrations_sqlite[];
extern const size_t db__migrations_sqlite_count;
extern const struct db_migration db__migrations_postgres[];
extern const size_t db__migrations_postgres_count;

/* Applies those of list[0..n) not yet recorded in schema_migrations, in
 * order. db_migrate is this with the driver's embedded list. */
int db__migrate_list(struct db *db, const struct db_migration *list,
                     size_t n, int *applied);

/* ------------------------------------------------------------- postgres */

/* Rewrites '?' placeholders to $1..$n outside '...' and E'...' literals,
 * "..." identifiers, $tag$...$tag$ strings and comments. The caller frees
 * the result with free(); *nparams receives n. Returns NULL on allocation
 * failure. */
char *db__pg_rewrite(const char *sql, int *nparams);

/* Converts PostgreSQL's text form of a timestamptz ("2026-11-23
 * 12:00:00.123456+00") or timestamp (no offset, read as UTC) into
 * "YYYY-MM-DDTHH:MM:SS.mmmZ" (truncated to milliseconds). Returns
 * CORE_EPARSE for values it cannot represent (infinity, BC, years > 9999). */
int db__pg_time_to_iso(const char *pg, char out[CORE_TIME_ISO_LEN]);

/* SQLite: the name of the VFS that gathers WAL writes (db_sqlite_vfs.c),
 * registered on first use; NULL if it could not be (then the default). */
#define DB_SQLITE_VFS "argus-wal"
const char *db__sqlite_vfs(void);

#endif
