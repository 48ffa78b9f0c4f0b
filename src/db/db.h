/*
 * db: a small portable SQL layer so that domain code writes its SQL once.
 *
 * Two drivers sit behind it, chosen by URL:
 *   sqlite:PATH            SQLite in WAL mode: one writer connection guarded
 *                          by a mutex, a pool of reader connections.
 *   postgres://... or postgresql://...
 *                          PostgreSQL through libpq, a fixed-size pool.
 *
 * SQL is written with '?' placeholders; the PostgreSQL driver rewrites them
 * to $1..$n (outside string literals, quoted identifiers, dollar-quoted
 * strings and comments). Every other '?' is a placeholder, so jsonb's ?
 * operators are written jsonb_exists(a, b) and the like. Statements
 * run through PQexecParams with text parameters, so no named prepared
 * statements are left on the server (works behind PgBouncer in transaction
 * mode).
 *
 * Values cross the layer as text, integers, doubles, booleans or NULL.
 * Portable column types the migrations use:
 *   ids        TEXT (SQLite) / uuid (PostgreSQL), canonical lowercase
 *   times      TEXT "YYYY-MM-DDTHH:MM:SS.mmmZ" (SQLite) / timestamptz;
 *              the PostgreSQL driver returns timestamptz columns in the
 *              same ISO form, so callers never see the difference
 *   json       TEXT (SQLite) / jsonb
 *   booleans   INTEGER 0/1 (SQLite) / boolean; read with db_col_bool
 *              (db_col_text gives "1"/"0" on both)
 *
 * Threading: a struct db is shared by all threads; a struct db_conn belongs
 * to one thread between acquire and release; a struct db_stmt belongs to
 * its connection.
 */
#ifndef ARGUS_DB_H
#define ARGUS_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum db_dialect {
    DB_SQLITE,
    DB_POSTGRES,
};

struct db;
struct db_conn;
struct db_stmt;

struct db_options {
    int pool_size;          /* PostgreSQL connections, SQLite readers; 0 = 4 */
    int busy_timeout_ms;    /* waiting for a pooled connection; 0 = 5000 */
    /* SQLite only. false (the default): every commit is fsynced before it
     * returns, so a committed transaction survives a power loss. true:
     * commits survive a crash of the process but the last ones may be lost
     * with the machine (synchronous=NORMAL), for disks where fsync is
     * slow. */
    bool sqlite_relaxed_sync;
};

/* Opens a store by URL (see above). opts may be NULL for defaults. For
 * SQLite, missing parent directories are created. Returns CORE_OK,
 * CORE_EINVAL for an unknown scheme, CORE_EDB or CORE_EIO when the store
 * cannot be reached (the reason is logged). */
int db_open(const char *url, const struct db_options *opts, struct db **out);
/* Closes every connection. Accepts NULL and a half-opened handle. */
void db_close(struct db *db);
enum db_dialect db_dialect(const struct db *db);

/* Checks a connection out of the pool. write=true asks for a connection
 * that may write: in SQLite this is the single writer (callers queue on
 * it); in PostgreSQL every connection may write. Waits up to
 * busy_timeout_ms, then returns CORE_EBUSY. A PostgreSQL connection the
 * server dropped (restart, failover) is re-established here; CORE_EDB if
 * that fails. */
int db_conn_acquire(struct db *db, bool write, struct db_conn **out);
/* Returns a connection to its pool; a transaction left open is rolled
 * back. Accepts NULL. */
void db_conn_release(struct db_conn *c);

/* In SQLite, BEGIN on the writer takes the write lock at once (BEGIN
 * IMMEDIATE). A statement that fails inside a transaction: PostgreSQL
 * aborts the whole transaction, and db_commit then rolls it back and
 * returns CORE_EDB; SQLite undoes that statement only. Callers roll back
 * on error and so see the same on both. db_rollback with no transaction
 * open is a no-op. */
int db_begin(struct db_conn *c);
int db_commit(struct db_conn *c);
int db_rollback(struct db_conn *c);

/* Runs one or more statements without parameters (migrations, DDL).
 * Errors as db_step. */
int db_exec(struct db_conn *c, const char *sql);

/* SQLite: makes every transaction committed before the call durable
 * (fdatasync of the write-ahead log), including those committed with
 * PRAGMA synchronous=NORMAL, so that a writer can commit without waiting
 * for the disk and have another thread wait instead. Safe to call from
 * any thread. PostgreSQL: nothing to do (commits are durable). */
int db_log_sync(struct db *db);

/* Prepares sql ('?' placeholders). The statement is borrowed from the
 * connection until db_finalize. SQLite reports errors in the SQL here,
 * PostgreSQL at the first db_step. */
int db_prepare(struct db_conn *c, const char *sql, struct db_stmt **out);
/* Parameters are 1-based, as in SQLite. Text is copied. */
int db_bind_text(struct db_stmt *s, int idx, const char *v);
int db_bind_int64(struct db_stmt *s, int idx, int64_t v);
int db_bind_double(struct db_stmt *s, int idx, double v);
int db_bind_bool(struct db_stmt *s, int idx, bool v);
int db_bind_null(struct db_stmt *s, int idx);
/* Executes on the first call and moves to the next row on each call.
 * *row is true while a row is available. Errors: CORE_ECONFLICT for a
 * unique-key violation, CORE_ECONSTRAINT for other constraint violations
 * (foreign key, check, not null), CORE_EBUSY when the store is locked
 * beyond the timeout, CORE_EDB otherwise (db_errmsg says why). */
int db_step(struct db_stmt *s, bool *row);
/* Rows changed by the last INSERT/UPDATE/DELETE run by this statement;
 * 0 for other statements. Final once db_step has returned row = false
 * (SQLite counts RETURNING rows as they are stepped). */
int64_t db_changes(struct db_stmt *s);
/* Forgets the result and the bindings so the statement can run again. */
int db_reset(struct db_stmt *s);
void db_finalize(struct db_stmt *s);

/* Columns of the current row, 0-based. Text stays valid until the next
 * db_step, db_reset or db_finalize. NULL columns, and columns out of range
 * or with no current row, read as NULL / 0 / false. Count and names are
 * known after the first db_step (SQLite knows them at prepare). */
int db_col_count(struct db_stmt *s);
const char *db_col_name(struct db_stmt *s, int i);
bool db_col_is_null(struct db_stmt *s, int i);
const char *db_col_text(struct db_stmt *s, int i);
int64_t db_col_int64(struct db_stmt *s, int i);
double db_col_double(struct db_stmt *s, int i);
bool db_col_bool(struct db_stmt *s, int i);

/* The last error message of the connection, for logs; never NULL. It is
 * the server's primary message (never PostgreSQL's DETAIL, which quotes
 * key values), but a data exception's message may quote the bad input. */
const char *db_errmsg(struct db_conn *c);

/* Applies the migrations of the store's dialect that are not yet applied,
 * each in its own transaction, recording them in schema_migrations.
 * Several processes may call it at once: one applies, the others wait
 * (PostgreSQL advisory lock; SQLite's writer lock). *applied (may be NULL)
 * receives how many ran. */
int db_migrate(struct db *db, int *applied);

#endif
