/*
 * SQLite driver. WAL mode lets readers run beside the single writer: one
 * read-write connection behind a pool of size one (so writers queue in
 * this process, and BEGIN IMMEDIATE plus busy_timeout queue them across
 * processes) and pool_size read-only connections, so a write through a
 * reader fails loudly instead of taking the write lock behind the pool's
 * back.
 *
 * Checkpoints (copying the WAL into the database file) run on a thread of
 * their own with a read-write connection of their own, not on the writer:
 * SQLite's automatic checkpoint runs inside the commit that crosses the
 * threshold, which stalled that commit (and everyone waiting on it) for
 * tens of milliseconds at ingest rates. The writer's WAL hook wakes the
 * checkpointer once CKPT_PAGES frames are in the WAL; a PASSIVE checkpoint
 * copies what it can without blocking the writer or readers, and the WAL
 * starts over from the beginning at a later commit once all of it has been
 * copied (see CKPT_PAGES_MAX for the last frames).
 */
#include "db_internal.h"

#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Prepared statements are kept per connection and handed out again for
 * the same SQL text: preparing costs more than running most statements
 * the API and the pipeline issue. db_finalize returns a cached statement
 * to the cache instead of freeing it. */
#define STMT_CACHE 64

/* WAL frames (pages) after which the checkpointer is woken, and after which
 * the writer checkpoints itself. 10,000 pages (40 MB) measured best for
 * ingest: a page rewritten by many commits in between is copied once.
 * While commits keep coming, the checkpointer rarely copies the very last
 * frames, and the WAL starts over only once all are copied; at
 * CKPT_PAGES_MAX the writer copies the residue (what came since the
 * checkpointer's last pass: little), so the WAL stays near 40–60 MB. */
#define CKPT_PAGES 10000
#define CKPT_PAGES_MAX 14000

struct sqlite_stmt;

struct cache_entry {
    char *sql;
    uint64_t hash;
    uint64_t used; /* LRU clock */
    bool busy;     /* handed out, not yet finalized */
    struct sqlite_stmt *stmt;
};

struct sqlite_conn {
    struct db_conn base;
    sqlite3 *h;
    bool writer;
    uint64_t clock;
    struct cache_entry cache[STMT_CACHE];
    char err[512];
};

struct sqlite_db {
    struct db base;
    char *path;
    struct sqlite_conn *conns; /* [0] is the writer, then the readers */
    int nconns;
    struct db__pool writer;
    struct db__pool readers;
    /* The checkpointer: its connection and thread, woken by the writer's
     * WAL hook (ckpt_due) or told to stop. */
    sqlite3 *ckpt_h;
    pthread_t ckpt_thread;
    bool ckpt_started;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    bool ckpt_due, ckpt_stop;
    /* db_log_sync: the WAL file, opened on first use (-1 before). The
     * writer connection keeps the WAL in place for as long as the store is
     * open (SQLite removes it when the last connection closes), so the
     * descriptor stays the file's. */
    pthread_mutex_t wal_mu;
    int wal_fd;
};

enum stmt_state { ST_FRESH, ST_ROWS, ST_DONE, ST_FAILED };

struct sqlite_stmt {
    struct db_stmt base;
    sqlite3_stmt *st;
    enum stmt_state state;
    int err; /* returned again by db_step after a failure */
    int64_t changes;
    struct cache_entry *cached; /* NULL when not kept */
};

static uint64_t sql_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void cache_clear(struct sqlite_conn *c)
{
    for (int i = 0; i < STMT_CACHE; i++) {
        struct cache_entry *e = &c->cache[i];
        if (e->stmt) {
            sqlite3_finalize(e->stmt->st);
            free(e->stmt);
        }
        free(e->sql);
        memset(e, 0, sizeof *e);
    }
}

static struct sqlite_conn *conn_of(struct db_conn *c)
{
    return (struct sqlite_conn *)c;
}

static struct sqlite_stmt *stmt_of(struct db_stmt *s)
{
    return (struct sqlite_stmt *)s;
}

static int map_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        return rc == SQLITE_CONSTRAINT_UNIQUE ||
                       rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
                       rc == SQLITE_CONSTRAINT_ROWID
                   ? CORE_ECONFLICT
                   : CORE_ECONSTRAINT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return CORE_EBUSY;
    case SQLITE_NOMEM:
        return CORE_ENOMEM;
    case SQLITE_RANGE:
        return CORE_ERANGE;
    case SQLITE_MISUSE:
        return CORE_EINVAL;
    case SQLITE_TOOBIG:
        return CORE_ETOOBIG;
    default:
        return CORE_EDB;
    }
}

/* Records and logs a failure. SQLite's messages name tables and
 * constraints, never bound values. */
static int fail(struct sqlite_conn *c, int rc, const char *msg)
{
    snprintf(c->err, sizeof c->err, "%s",
             msg ? msg : (c->h ? sqlite3_errmsg(c->h) : sqlite3_errstr(rc)));
    char logged[sizeof c->err];
    db__log_text(logged, sizeof logged, c->err);
    int code = map_code(rc);
    /* A key already present is an answer for the caller to act on (a 409,
     * a row-by-row retry), not a fault. */
    core_log(code == CORE_ECONFLICT ? CORE_LOG_DEBUG : CORE_LOG_WARN, "db",
             "sqlite error code=%d (%s) msg=\"%s\"", rc, sqlite3_errstr(rc),
             logged);
    return code;
}

/* mkdir -p of the directories above path. */
static int make_parents(const char *path)
{
    char *dup = strdup(path);
    int rc = CORE_OK;
    if (!dup)
        return CORE_ENOMEM;
    for (char *p = dup + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dup, 0755) != 0 && errno != EEXIST) {
            core_log_error("db", "cannot create directory path=%s err=%s",
                           dup, strerror(errno));
            rc = CORE_EIO;
            break;
        }
        *p = '/';
    }
    free(dup);
    return rc;
}

static int pragma_exec(struct sqlite_conn *c, const char *sql)
{
    int rc = sqlite3_exec(c->h, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? CORE_OK : fail(c, rc, NULL);
}

/* Switches the file to WAL (a no-op once it is). Two connections doing so
 * at once on a new file get SQLITE_BUSY at once, without the busy handler,
 * so this retries up to timeout_ms. Returns an SQLite code. */
static int set_wal(struct sqlite_conn *c, int timeout_ms)
{
    uint64_t deadline = core_time_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(c->h, "PRAGMA journal_mode=WAL", -1, &st,
                                    NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        /* journal_mode answers with the mode it ended up in. */
        if (rc == SQLITE_ROW)
            rc = sqlite3_stricmp((const char *)sqlite3_column_text(st, 0),
                                 "wal") == 0
                     ? SQLITE_OK
                     : SQLITE_ERROR;
        sqlite3_finalize(st);
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            return rc;
        if (core_time_mono_ns() >= deadline)
            return rc;
        sqlite3_sleep(2);
    }
}

static int open_conn(struct sqlite_db *d, struct sqlite_conn *c, bool writer)
{
    int flags = SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                        : SQLITE_OPEN_READONLY);
    c->base.db = &d->base;
    c->writer = writer;
    int rc = sqlite3_open_v2(d->path, &c->h, flags, db__sqlite_vfs());
    if (rc != SQLITE_OK) {
        fail(c, rc, NULL);
        core_log_error("db", "cannot open sqlite path=%s", d->path);
        return CORE_EIO;
    }
    sqlite3_extended_result_codes(c->h, 1);
    sqlite3_busy_timeout(c->h, d->base.opts.busy_timeout_ms);
    if (!writer)
        return CORE_OK;

    rc = set_wal(c, d->base.opts.busy_timeout_ms);
    if (rc != SQLITE_OK) {
        core_log_error("db", "sqlite cannot use WAL mode path=%s", d->path);
        return fail(c, rc, NULL);
    }
    /* FULL in WAL mode: the WAL is fsynced at each commit. The pipeline
     * commits in groups, so this costs one fsync per batch. */
    rc = pragma_exec(c, d->base.opts.sqlite_relaxed_sync
                            ? "PRAGMA synchronous=NORMAL"
                            : "PRAGMA synchronous=FULL");
    if (rc == CORE_OK)
        rc = pragma_exec(c, "PRAGMA foreign_keys=ON");
    return rc;
}

/* Runs on the writer's thread after each commit, with the WAL's size in
 * frames. */
static int wal_hook(void *arg, sqlite3 *h, const char *name, int frames)
{
    struct sqlite_db *d = arg;
    if (frames >= CKPT_PAGES_MAX) {
        /* The residue, or all of it when the checkpointer is behind (what
         * SQLite's automatic checkpoint would do); SQLITE_BUSY at once
         * while the checkpointer holds the checkpoint lock. */
        sqlite3_wal_checkpoint_v2(h, name, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                  NULL);
    } else if (frames >= CKPT_PAGES) {
        pthread_mutex_lock(&d->ckpt_mu);
        if (!d->ckpt_due) {
            d->ckpt_due = true;
            pthread_cond_signal(&d->ckpt_cv);
        }
        pthread_mutex_unlock(&d->ckpt_mu);
    }
    return SQLITE_OK;
}

static void *checkpointer_main(void *arg)
{
    struct sqlite_db *d = arg;
    pthread_mutex_lock(&d->ckpt_mu);
    for (;;) {
        while (!d->ckpt_due && !d->ckpt_stop)
            pthread_cond_wait(&d->ckpt_cv, &d->ckpt_mu);
        if (d->ckpt_stop)
            break;
        d->ckpt_due = false;
        pthread_mutex_unlock(&d->ckpt_mu);
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(d->ckpt_h, NULL,
                                           SQLITE_CHECKPOINT_PASSIVE, &log,
                                           &done);
        if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
            core_log_warn("db", "sqlite checkpoint failed code=%d (%s)", rc,
                          sqlite3_errstr(rc));
        pthread_mutex_lock(&d->ckpt_mu);
    }
    pthread_mutex_unlock(&d->ckpt_mu);
    return NULL;
}

/* Opens the checkpointer's connection and starts its thread, then hands
 * the writer's checkpoints to it. On failure the writer keeps SQLite's
 * automatic checkpoints. */
static void checkpointer_start(struct sqlite_db *d, struct sqlite_conn *w)
{
    sqlite3 *h = NULL;
    if (sqlite3_open_v2(d->path, &h,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        db__sqlite_vfs()) != SQLITE_OK ||
        sqlite3_exec(h, d->base.opts.sqlite_relaxed_sync
                            ? "PRAGMA synchronous=NORMAL"
                            : "PRAGMA synchronous=FULL",
                     NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close_v2(h);
        sqlite3_wal_autocheckpoint(w->h, CKPT_PAGES);
        core_log_warn("db", "msg=\"no checkpoint thread; the writer "
                            "checkpoints\" path=%s", d->path);
        return;
    }
    sqlite3_busy_timeout(h, d->base.opts.busy_timeout_ms);
    d->ckpt_h = h;
    if (pthread_create(&d->ckpt_thread, NULL, checkpointer_main, d) != 0) {
        sqlite3_close_v2(h);
        d->ckpt_h = NULL;
        sqlite3_wal_autocheckpoint(w->h, CKPT_PAGES);
        return;
    }
    d->ckpt_started = true;
    sqlite3_wal_hook(w->h, wal_hook, d);
}

static void checkpointer_stop(struct sqlite_db *d)
{
    if (d->ckpt_started) {
        pthread_mutex_lock(&d->ckpt_mu);
        d->ckpt_stop = true;
        pthread_cond_signal(&d->ckpt_cv);
        pthread_mutex_unlock(&d->ckpt_mu);
        pthread_join(d->ckpt_thread, NULL);
        d->ckpt_started = false;
    }
    sqlite3_close_v2(d->ckpt_h); /* accepts NULL */
    d->ckpt_h = NULL;
}

static void sq_close(struct db *db)
{
    struct sqlite_db *d = (struct sqlite_db *)db;
    /* The checkpointer first (the writer, closing last, checkpoints what
     * is left). */
    checkpointer_stop(d);
    if (d->conns && d->conns[0].h)
        sqlite3_wal_hook(d->conns[0].h, NULL, NULL);
    /* Readers first: the writer, closing last, checkpoints the WAL and
     * removes it. */
    for (int i = d->conns ? d->nconns - 1 : -1; i >= 0; i--) {
        cache_clear(&d->conns[i]);
        sqlite3_close_v2(d->conns[i].h); /* accepts NULL */
    }
    db__pool_fini(&d->writer);
    db__pool_fini(&d->readers);
    pthread_cond_destroy(&d->ckpt_cv);
    pthread_mutex_destroy(&d->ckpt_mu);
    if (d->wal_fd >= 0)
        close(d->wal_fd);
    pthread_mutex_destroy(&d->wal_mu);
    free(d->conns);
    free(d->path);
    free(d);
}

static int sq_open(const char *url, const struct db_options *opts,
                   struct db **out)
{
    const char *path = url + strlen("sqlite:");
    if (strncmp(path, "//", 2) == 0) /* sqlite:///abs/path */
        path += 2;
    /* Each connection of :memory: would be a database of its own. */
    if (*path == '\0' || strcmp(path, ":memory:") == 0) {
        core_log_warn("db", "sqlite URL needs a file path");
        return CORE_EINVAL;
    }
    struct sqlite_db *d = calloc(1, sizeof *d);
    if (!d)
        return CORE_ENOMEM;
    d->base.ops = &db_sqlite_ops;
    d->base.opts = *opts;
    pthread_mutex_init(&d->ckpt_mu, NULL);
    pthread_cond_init(&d->ckpt_cv, NULL);
    pthread_mutex_init(&d->wal_mu, NULL);
    d->wal_fd = -1;
    int rc = CORE_ENOMEM;
    d->path = strdup(path);
    d->nconns = 1 + opts->pool_size;
    d->conns = calloc((size_t)d->nconns, sizeof *d->conns);
    if (!d->path || !d->conns)
        goto fail;
    if ((rc = make_parents(d->path)) != CORE_OK ||
        (rc = db__pool_init(&d->writer, "writer", 1)) != CORE_OK ||
        (rc = db__pool_init(&d->readers, "readers", opts->pool_size)) != CORE_OK)
        goto fail;
    /* The writer first: it creates the file and switches it to WAL, which
     * read-only connections cannot do. */
    for (int i = 0; i < d->nconns; i++) {
        rc = open_conn(d, &d->conns[i], i == 0);
        if (rc != CORE_OK)
            goto fail;
        if (i == 0)
            checkpointer_start(d, &d->conns[0]);
        db__pool_add(i == 0 ? &d->writer : &d->readers, &d->conns[i].base);
    }
    *out = &d->base;
    return CORE_OK;
fail:
    sq_close(&d->base);
    return rc;
}

static int sq_conn_acquire(struct db *db, bool write, struct db_conn **out)
{
    struct sqlite_db *d = (struct sqlite_db *)db;
    return db__pool_take(write ? &d->writer : &d->readers,
                         db->opts.busy_timeout_ms, out);
}

static void sq_conn_release(struct db_conn *conn)
{
    struct sqlite_conn *c = conn_of(conn);
    struct sqlite_db *d = (struct sqlite_db *)conn->db;
    /* A statement left mid-result would keep a read snapshot (and, on the
     * writer, block checkpoints) while the connection idles. */
    for (sqlite3_stmt *st = sqlite3_next_stmt(c->h, NULL); st;
         st = sqlite3_next_stmt(c->h, st)) {
        if (sqlite3_stmt_busy(st))
            sqlite3_reset(st);
    }
    db__pool_put(c->writer ? &d->writer : &d->readers, conn);
}

static int sq_exec(struct db_conn *conn, const char *sql)
{
    struct sqlite_conn *c = conn_of(conn);
    char *msg = NULL;
    int rc = sqlite3_exec(c->h, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        return CORE_OK;
    int err = fail(c, sqlite3_extended_errcode(c->h), msg);
    sqlite3_free(msg);
    return err;
}

/* The writer takes the write lock at BEGIN: a deferred transaction that
 * reads first and then writes can fail with SQLITE_BUSY without waiting. */
static int sq_begin(struct db_conn *conn)
{
    return sq_exec(conn, conn_of(conn)->writer ? "BEGIN IMMEDIATE" : "BEGIN");
}

static bool sq_in_transaction(struct db_conn *conn)
{
    return !sqlite3_get_autocommit(conn_of(conn)->h);
}

static int sq_commit(struct db_conn *conn)
{
    return sq_exec(conn, "COMMIT");
}

static int sq_rollback(struct db_conn *conn)
{
    return sq_in_transaction(conn) ? sq_exec(conn, "ROLLBACK") : CORE_OK;
}

static const char *sq_errmsg(struct db_conn *conn)
{
    return conn_of(conn)->err;
}

static int sq_prepare(struct db_conn *conn, const char *sql,
                      struct db_stmt **out)
{
    struct sqlite_conn *c = conn_of(conn);
    uint64_t h = sql_hash(sql);
    struct cache_entry *slot = NULL;
    for (int i = 0; i < STMT_CACHE; i++) {
        struct cache_entry *e = &c->cache[i];
        if (e->sql && !e->busy && e->hash == h && strcmp(e->sql, sql) == 0) {
            e->busy = true;
            e->used = ++c->clock;
            *out = &e->stmt->base;
            return CORE_OK;
        }
        /* The least recently used idle entry makes room if needed. */
        if (!e->busy && (!slot || (slot->sql && (!e->sql || e->used < slot->used))))
            slot = e;
    }
    struct sqlite_stmt *s = calloc(1, sizeof *s);
    if (!s)
        return CORE_ENOMEM;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(c->h, sql, -1, &s->st, &tail);
    if (rc != SQLITE_OK) {
        free(s);
        return fail(c, sqlite3_extended_errcode(c->h), NULL);
    }
    if (!s->st) { /* only whitespace or comments */
        free(s);
        snprintf(c->err, sizeof c->err, "empty statement");
        return CORE_EINVAL;
    }
    /* SQLite would silently ignore a second statement (PostgreSQL refuses
     * it): refuse it here too. */
    if (tail && *tail) {
        sqlite3_stmt *next = NULL;
        rc = sqlite3_prepare_v2(c->h, tail, -1, &next, NULL);
        if (rc != SQLITE_OK || next) {
            sqlite3_finalize(next);
            sqlite3_finalize(s->st);
            free(s);
            snprintf(c->err, sizeof c->err,
                     "more than one statement; use db_exec");
            return CORE_EINVAL;
        }
    }
    s->base.conn = conn;
    char *copy = slot ? strdup(sql) : NULL;
    if (copy) {
        if (slot->stmt) {
            sqlite3_finalize(slot->stmt->st);
            free(slot->stmt);
        }
        free(slot->sql);
        *slot = (struct cache_entry){copy, h, ++c->clock, true, s};
        s->cached = slot;
    }
    *out = &s->base;
    return CORE_OK;
}

static int sq_bind(struct db_stmt *stmt, int idx, const struct db_value *v)
{
    struct sqlite_stmt *s = stmt_of(stmt);
    int rc;
    switch (v->kind) {
    case DB_VALUE_TEXT:
        rc = sqlite3_bind_text(s->st, idx, v->u.text, -1, SQLITE_TRANSIENT);
        break;
    case DB_VALUE_INT64:
        rc = sqlite3_bind_int64(s->st, idx, v->u.i64);
        break;
    case DB_VALUE_DOUBLE:
        rc = sqlite3_bind_double(s->st, idx, v->u.dbl);
        break;
    case DB_VALUE_BOOL:
        rc = sqlite3_bind_int(s->st, idx, v->u.b ? 1 : 0);
        break;
    default:
        rc = sqlite3_bind_null(s->st, idx);
        break;
    }
    if (rc == SQLITE_OK)
        return CORE_OK;
    /* Range and misuse are programming errors: not worth a log line each. */
    snprintf(conn_of(stmt->conn)->err, sizeof conn_of(stmt->conn)->err,
             "bind parameter %d: %s", idx, sqlite3_errstr(rc));
    return map_code(rc);
}

static int sq_step(struct db_stmt *stmt, bool *row)
{
    struct sqlite_stmt *s = stmt_of(stmt);
    struct sqlite_conn *c = conn_of(stmt->conn);
    /* sqlite3_step after SQLITE_DONE would run the statement again. */
    if (s->state == ST_DONE)
        return CORE_OK;
    if (s->state == ST_FAILED)
        return s->err;
    int rc = sqlite3_step(s->st);
    if (rc == SQLITE_ROW) {
        s->state = ST_ROWS;
        *row = true;
        return CORE_OK;
    }
    if (rc == SQLITE_DONE) {
        s->state = ST_DONE;
        s->changes = sqlite3_stmt_readonly(s->st) ? 0 : sqlite3_changes64(c->h);
        return CORE_OK;
    }
    s->state = ST_FAILED;
    s->err = fail(c, rc, NULL);
    return s->err;
}

static int64_t sq_changes(struct db_stmt *stmt)
{
    return stmt_of(stmt)->changes;
}

static int sq_reset(struct db_stmt *stmt)
{
    struct sqlite_stmt *s = stmt_of(stmt);
    /* sqlite3_reset repeats the last step's error; it was reported then. */
    sqlite3_reset(s->st);
    sqlite3_clear_bindings(s->st);
    s->state = ST_FRESH;
    s->err = CORE_OK;
    s->changes = 0;
    return CORE_OK;
}

static void sq_finalize(struct db_stmt *stmt)
{
    struct sqlite_stmt *s = stmt_of(stmt);
    if (s->cached) {
        sq_reset(stmt);
        s->cached->busy = false;
        return;
    }
    sqlite3_finalize(s->st);
    free(s);
}

/* Columns exist only while a row is current. */
static sqlite3_stmt *row_of(struct db_stmt *stmt, int i)
{
    struct sqlite_stmt *s = stmt_of(stmt);
    if (s->state != ST_ROWS || i < 0 || i >= sqlite3_column_count(s->st))
        return NULL;
    return s->st;
}

static int sq_col_count(struct db_stmt *stmt)
{
    return sqlite3_column_count(stmt_of(stmt)->st);
}

static const char *sq_col_name(struct db_stmt *stmt, int i)
{
    struct sqlite_stmt *s = stmt_of(stmt);
    if (i < 0 || i >= sqlite3_column_count(s->st))
        return NULL;
    return sqlite3_column_name(s->st, i);
}

static bool sq_col_is_null(struct db_stmt *stmt, int i)
{
    sqlite3_stmt *st = row_of(stmt, i);
    return !st || sqlite3_column_type(st, i) == SQLITE_NULL;
}

static const char *sq_col_text(struct db_stmt *stmt, int i)
{
    sqlite3_stmt *st = row_of(stmt, i);
    return st ? (const char *)sqlite3_column_text(st, i) : NULL;
}

static int64_t sq_col_int64(struct db_stmt *stmt, int i)
{
    sqlite3_stmt *st = row_of(stmt, i);
    return st ? sqlite3_column_int64(st, i) : 0;
}

static double sq_col_double(struct db_stmt *stmt, int i)
{
    sqlite3_stmt *st = row_of(stmt, i);
    return st ? sqlite3_column_double(st, i) : 0.0;
}

/* Booleans are INTEGER 0/1; text written by hand ("true", "t") counts
 * too. */
static bool sq_col_bool(struct db_stmt *stmt, int i)
{
    sqlite3_stmt *st = row_of(stmt, i);
    if (!st)
        return false;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        return sqlite3_column_int64(st, i) != 0;
    case SQLITE_FLOAT:
        return sqlite3_column_double(st, i) != 0.0;
    case SQLITE_TEXT: {
        const char *t = (const char *)sqlite3_column_text(st, i);
        return t && (t[0] == 't' || t[0] == 'T' ||
                     (t[0] >= '1' && t[0] <= '9'));
    }
    default:
        return false;
    }
}

static int sq_log_sync(struct db *db)
{
    struct sqlite_db *d = (struct sqlite_db *)db;
    pthread_mutex_lock(&d->wal_mu);
    if (d->wal_fd < 0) {
        size_t len = strlen(d->path);
        char *wal = malloc(len + 5);
        if (wal) {
            memcpy(wal, d->path, len);
            memcpy(wal + len, "-wal", 5);
            d->wal_fd = open(wal, O_RDONLY | O_CLOEXEC);
            if (d->wal_fd < 0)
                core_log_error("db", "msg=\"cannot open the WAL to sync it\" "
                               "path=%s errno=%d", wal, errno);
            free(wal);
        }
    }
    int fd = d->wal_fd;
    pthread_mutex_unlock(&d->wal_mu);
    if (fd < 0)
        return CORE_EIO;
    if (fdatasync(fd) != 0) {
        core_log_error("db", "msg=\"fdatasync of the WAL failed\" errno=%d", errno);
        return CORE_EIO;
    }
    return CORE_OK;
}

static const char *const sqlite_prefixes[] = {"sqlite:", NULL};

const struct db_ops db_sqlite_ops = {
    .name = "sqlite",
    .dialect = DB_SQLITE,
    .prefixes = sqlite_prefixes,
    .open = sq_open,
    .close = sq_close,
    .conn_acquire = sq_conn_acquire,
    .conn_release = sq_conn_release,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .in_transaction = sq_in_transaction,
    .exec = sq_exec,
    .errmsg = sq_errmsg,
    .log_sync = sq_log_sync,
    .prepare = sq_prepare,
    .bind = sq_bind,
    .step = sq_step,
    .changes = sq_changes,
    .reset = sq_reset,
    .finalize = sq_finalize,
    .col_count = sq_col_count,
    .col_name = sq_col_name,
    .col_is_null = sq_col_is_null,
    .col_text = sq_col_text,
    .col_int64 = sq_col_int64,
    .col_double = sq_col_double,
    .col_bool = sq_col_bool,
    .migrations = db__migrations_sqlite,
    .nmigrations = &db__migrations_sqlite_count,
    .migrations_table_sql =
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at TEXT NOT NULL)",
    .migrate_lock = NULL,
};
