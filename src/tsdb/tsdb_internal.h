/*
 * tsdb internals shared by tsdb.c, the series map and the two backends.
 * Nothing outside src/tsdb includes this.
 */
#ifndef ARGUS_TSDB_INTERNAL_H
#define ARGUS_TSDB_INTERNAL_H

#include "core.h"
#include "db.h"
#include "tsdb.h"

#include <pthread.h>

/* ------------------------------------------------------------ series map
 * Open addressing from a series key ("org|d|entity|metric") to its id.
 * Keys are copied. Not thread-safe: callers lock. */
struct tsdb__map_slot {
    char *key; /* NULL: empty; TOMBSTONE: removed */
    uint64_t hash;
    int64_t id;
};

struct tsdb__map {
    struct tsdb__map_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t used; /* live keys plus tombstones */
    size_t live;
};

uint64_t tsdb__hash(const char *key);
void tsdb__map_init(struct tsdb__map *m);
void tsdb__map_fini(struct tsdb__map *m);
void tsdb__map_clear(struct tsdb__map *m);
bool tsdb__map_get(const struct tsdb__map *m, const char *key, uint64_t h,
                   int64_t *id);
int tsdb__map_put(struct tsdb__map *m, const char *key, uint64_t h,
                  int64_t id);
void tsdb__map_del(struct tsdb__map *m, const char *key, uint64_t h);
/* Puts every key of src into dst. Fails only with CORE_ENOMEM. */
int tsdb__map_merge(struct tsdb__map *dst, const struct tsdb__map *src);

/* ------------------------------------------------------------ statements
 * Every statement tsdb runs, prepared once per connection and reset
 * between uses. Each backend gives the SQL of those it uses (NULL for the
 * others); the ROLLUP and RECOMPUTE rows come in 5 min, 1 h, 1 day order. */
enum tsdb__stmt {
    TSDB_SQL_SERIES_GET,
    TSDB_SQL_SERIES_ADD,
    TSDB_SQL_RAW_INSERT,
    TSDB_SQL_RAW_INSERT_MANY, /* SQLite: TSDB_RAW_MANY rows per statement */
    TSDB_SQL_RAW_GATE_OPEN,
    TSDB_SQL_RAW_DELETE,
    TSDB_SQL_RAW_GATE_CLOSE,
    TSDB_SQL_POINTS_DELETE,
    TSDB_SQL_POINT_INSERT,
    TSDB_SQL_POINT_INSERT_MANY, /* SQLite: TSDB_POINTS_MANY rows */
    TSDB_SQL_POINT_GET,
    TSDB_SQL_POINT_UPDATE,
    TSDB_SQL_POINTS_BULK,
    TSDB_SQL_POINTS_CHANGED, /* PostgreSQL: stored points a batch changes */
    TSDB_SQL_ROLLUP_5M,
    TSDB_SQL_ROLLUP_1H,
    TSDB_SQL_ROLLUP_1D,
    TSDB_SQL_RECOMPUTE_DEL_5M,
    TSDB_SQL_RECOMPUTE_DEL_1H,
    TSDB_SQL_RECOMPUTE_DEL_1D,
    TSDB_SQL_RECOMPUTE_5M,
    TSDB_SQL_RECOMPUTE_1H,
    TSDB_SQL_RECOMPUTE_1D,
    TSDB_SQL_QUERY_POINTS,
    TSDB_SQL_QUERY_POINTS_METRIC,
    TSDB_SQL_QUERY_5M,
    TSDB_SQL_QUERY_5M_METRIC,
    TSDB_SQL_QUERY_1H,
    TSDB_SQL_QUERY_1H_METRIC,
    TSDB_SQL_QUERY_1D,
    TSDB_SQL_QUERY_1D_METRIC,
    TSDB_SQL_LATEST,
    TSDB_SQL_LOG_INSERT, /* deferred rollups (SQLite) */
    TSDB_SQL_LOG_READ,
    TSDB_SQL_LOG_DELETE,
    TSDB_SQL_COUNT
};

#define TSDB_NRES 3
extern const int64_t tsdb__res_ms[TSDB_NRES]; /* 5 min, 1 h, 1 day */

/* Floor division: the start of the bucket of width w holding ts. */
static inline int64_t tsdb__bucket(int64_t ts, int64_t w)
{
    int64_t r = ts % w;
    return r < 0 ? ts - r - w : ts - r;
}

/* What happened to a point of a batch. */
enum tsdb__fate { TSDB_FATE_SAME, TSDB_FATE_NEW, TSDB_FATE_CHANGED };

/* A point of a batch once its series is known. */
struct tsdb__item {
    int64_t series;
    int64_t ts;
    double num;
    const char *str; /* string points; num is unused */
    size_t idx;      /* position in the caller's array: the last one wins */
    enum tsdb__fate fate;
};

/* A point's series by the identity of its strings: within one call the
 * caller's strings do not change, so equal pointers mean an equal key that
 * was already validated and looked up. Messages repeat the same device and
 * metric names across a batch; this skips building, checking and hashing
 * the key for them. */
#define TSDB_MEMO 128 /* even: pairs of slots */
struct tsdb__memo {
    const char *org, *entity_id, *metric;
    int entity;
    int64_t series; /* -1: missed the cache, resolved later */
};

/* What tsdb keeps per connection: its statements, the series it created
 * in a transaction not known to be committed, and batch scratch space. */
struct tsdb__conn {
    struct db_conn *c;
    const struct tsdb__backend *be;
    bool writer_inited;
    struct db_stmt *stmts[TSDB_SQL_COUNT];
    struct tsdb__map pending;
    struct tsdb__map seen; /* series resolved by the current call */
    struct tsdb__memo memo[TSDB_MEMO];
    struct tsdb__item *items;
    size_t items_cap;
    /* Deferred rollups: rows this connection logged since its last fold,
     * and when the first of them was. */
    size_t log_rows;
    int64_t log_since_ms;
    /* PostgreSQL: binary array parameters, whether tsdb opened the
     * transaction a rebuild of changed points runs in, and the log rows
     * this connection's folds deleted since it last vacuumed the log. */
    struct core_buf arrays[12];
    bool own_txn;
    int64_t log_deleted;
    /* A folder thread folds the log (tsdb_fold_in_background): writes
     * leave it alone. Set by tsdb before every write. */
    bool fold_elsewhere;
};

/* A backend: its SQL and the bulk paths that differ. */
struct tsdb__backend {
    const char *name;
    enum db_dialect dialect;
    const char *const *sql; /* TSDB_SQL_COUNT entries */
    /* Settings for a connection tsdb writes on, run once per connection
     * before its first write. May be NULL. */
    int (*writer_init)(struct tsdb__conn *tc);
    int (*raw_append)(struct tsdb__conn *tc, const struct tsdb_raw *msgs,
                      size_t n);
    /* Inserts items[0..n) (sorted by series and time, one per key), sets
     * each fate, stores changed values, and adds the NEW numeric points to
     * the rollups. Recomputing the buckets of CHANGED points is left to
     * the caller. */
    int (*points_apply)(struct tsdb__conn *tc, struct tsdb__item *items,
                        size_t n);
    /* Folds rollup deltas kept aside by points_apply into the rollup
     * tables, atomically. NULL when the backend keeps none. */
    int (*rollup_fold)(struct tsdb__conn *tc);
    /* Called at the end of every points write with its outcome, which it
     * may replace (a backend that opened a transaction ends it). May be
     * NULL. */
    int (*points_finish)(struct tsdb__conn *tc, int rc);
    /* Called after tsdb_commit committed on tc (housekeeping that must run
     * outside a transaction). May be NULL. */
    void (*after_commit)(struct tsdb__conn *tc);
    /* The folder thread's fold, every fold_ms on a connection of its own
     * outside any transaction: skips when another folder holds the log.
     * NULL (and 0) when the backend folds as it writes. */
    int (*fold_background)(struct tsdb__conn *tc);
    int fold_ms;
};

extern const struct tsdb__backend tsdb__sqlite;
extern const struct tsdb__backend tsdb__postgres;

/* The statement id of c, prepared on first use and reset; logs failures. */
int tsdb__stmt(struct tsdb__conn *tc, enum tsdb__stmt id,
               struct db_stmt **out);
/* Copies a UUID lower-cased into out; false (out undefined) unless in is
 * one (36 characters, hex digits and dashes in place). */
bool tsdb__uuid_lower(char out[CORE_UUID_STR_LEN], const char *in);

/* Steps a statement that returns no rows (or whose rows are ignored). */
int tsdb__run(struct tsdb__conn *tc, struct db_stmt *s);

/* Binds a point's value: (value, value_text) at idx, idx + 1. */
int tsdb__bind_value(struct db_stmt *s, int idx, const struct tsdb__item *it);
/* True when the stored (value, value_text) of column col, col + 1 of s's
 * row equals the item's. */
bool tsdb__same_value(struct db_stmt *s, int col, const struct tsdb__item *it);

#endif
