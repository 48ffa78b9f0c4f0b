/*
 * tsdb: the time-series write and read paths — the immutable raw store,
 * the series dictionary, points, rollups (5 min, 1 h, 1 day) and queries —
 * on SQLite and PostgreSQL, each with its fastest bulk path.
 *
 * Writes run inside the caller's transaction on a write connection, so a
 * batch of raw messages and the points derived from them commit together
 * (or the caller commits raw first and points later: both are idempotent).
 * A transaction that wrote points ends with tsdb_commit or tsdb_rollback,
 * which also tell the series cache whether the series it created exist
 * (db_commit and db_rollback work too, but then new series are looked up
 * in the store on every write until a later tsdb_commit).
 *
 * Threading: a struct tsdb is shared by all threads. It keeps prepared
 * statements per connection, so a connection is used by one thread at a
 * time (as db.h requires). tsdb_destroy runs before db_close.
 *
 * Errors are those of db.h (CORE_EDB, CORE_EBUSY, CORE_ECONSTRAINT, ...),
 * CORE_EINVAL for bad arguments and CORE_ENOMEM.
 */
#ifndef ARGUS_TSDB_H
#define ARGUS_TSDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

enum tsdb_entity { TSDB_DEVICE, TSDB_ASSET };
enum tsdb_vtype { TSDB_NUMBER, TSDB_BOOL, TSDB_STRING };

/* One point. Strings are borrowed for the duration of the call. */
struct tsdb_point {
    const char *org_id;
    enum tsdb_entity entity;
    const char *entity_id;
    const char *metric;
    int64_t ts_ms; /* epoch milliseconds, UTC */
    enum tsdb_vtype type;
    double num;      /* TSDB_NUMBER; TSDB_BOOL as 0/1 */
    const char *str; /* TSDB_STRING */
};

/* One raw message as received, with its envelope. */
struct tsdb_raw {
    const char *id; /* UUIDv7 raw id */
    const char *org_id;
    const char *device_id;
    int64_t received_ms;
    const char *transport; /* "http", "mqtt" */
    const char *payload;   /* the message text as received, NUL-terminated */
    size_t payload_len;    /* strlen(payload): text with no NUL inside */
};

struct tsdb;

/* Creates the tsdb over an open, migrated store (borrowed until
 * tsdb_destroy). Returns CORE_OK or CORE_ENOMEM. */
int tsdb_create(struct db *db, struct tsdb **out);
/* Finalizes every statement it prepared; call it while no other thread
 * uses the tsdb, before db_close. Accepts NULL. */
void tsdb_destroy(struct tsdb *t);

/* Appends raw messages; a message already stored (the same id with the
 * same organisation and receive time, as redeliveries and replays send it
 * again) is left as it is, even with another payload. Stored rows can be neither updated nor
 * deleted (the store refuses with CORE_ECONSTRAINT) except by
 * tsdb_raw_retention. CORE_EINVAL for ids that are not UUIDs or a payload
 * whose payload_len is not its strlen. */
int tsdb_raw_append(struct tsdb *t, struct db_conn *c,
                    const struct tsdb_raw *msgs, size_t n);

/* Deletes the raw messages received before older_than_ms (epoch ms) in a
 * transaction of its own: c is a write connection with no transaction
 * open. *deleted (may be NULL) receives how many rows went. */
int tsdb_raw_retention(struct tsdb *t, struct db_conn *c,
                       int64_t older_than_ms, int64_t *deleted);

/* Deletes the points older than older_than_ms (epoch ms), in the caller's
 * transaction if one is open. Rollups are kept (aggregates outlive raw
 * points); a changed value later written into a bucket whose points were
 * deleted rebuilds that bucket from the points that remain. *deleted (may
 * be NULL) receives how many points went. */
int tsdb_points_retention(struct tsdb *t, struct db_conn *c,
                          int64_t older_than_ms, int64_t *deleted);

/* How many points a writer puts in one transaction unless configured
 * otherwise (tsdb_points_write itself takes any number). */
#define TSDB_WRITE_BATCH_DEFAULT 1000

/* Writes points, creating series as needed. Idempotent by (series, time):
 * writing the same point again changes nothing; a different value at the
 * same time replaces it (within one call, the last one wins). Rollups of
 * numeric and boolean points stay exact either way; string points have no
 * rollups. *written (may be NULL) receives how many points were new or
 * changed. A series keeps the value type of its first point. */
int tsdb_points_write(struct tsdb *t, struct db_conn *c,
                      const struct tsdb_point *pts, size_t n, size_t *written);

/* SQLite keeps the rollup contributions of recent writes in a small log
 * and folds them into the rollup tables about twice a second, as a write
 * goes by (queries add what is not folded yet, so they are exact either
 * way). This folds now, atomically, inside the caller's transaction if one
 * is open on the write connection c. A no-op on PostgreSQL. For tests and
 * for tidying up before a shutdown or a backup. */
int tsdb_rollups_flush(struct tsdb *t, struct db_conn *c);

/* PostgreSQL: from now on a thread of this tsdb folds the rollup log
 * (about twice a second, in a statement of its own) and vacuums it, and
 * points writes never do: a write's transaction then takes what its own
 * points take, not a fold of everyone's deltas besides (~70 ms at 10,000
 * messages/s, which went into the end-to-end p99). Any number of
 * processes may run one; they take turns. The thread holds a connection
 * of the pool while it folds. A no-op on SQLite (its folds cost little
 * and stay with the writer) and when already started; tsdb_destroy stops
 * it. */
int tsdb_fold_in_background(struct tsdb *t);

/* db_commit, then the series created in the transaction join the shared
 * cache; on failure (the transaction was rolled back) they are forgotten.
 * Returns what db_commit returned. */
int tsdb_commit(struct tsdb *t, struct db_conn *c);
/* db_rollback, and the series created in the transaction are forgotten. */
int tsdb_rollback(struct tsdb *t, struct db_conn *c);

enum tsdb_agg { TSDB_AGG_NONE, TSDB_AGG_5MIN, TSDB_AGG_1HOUR, TSDB_AGG_1DAY };

struct tsdb_query {
    const char *org_id;
    enum tsdb_entity entity;
    const char *entity_id;
    const char *metric; /* NULL: every metric of the entity */
    int64_t from_ms;    /* inclusive (a bucket's start, for rollups) */
    int64_t to_ms;      /* exclusive */
    int64_t limit;      /* rows (points or buckets), newest first; > 0 */
    enum tsdb_agg agg;
};

/* One row of a query: a point (agg NONE: count 1, min = max = avg = sum =
 * last = the value) or a bucket of a rollup. str is set for string points
 * (and the numbers are 0). Borrowed for the duration of the callback. */
struct tsdb_row {
    const char *metric;
    int64_t ts_ms; /* the point's time or the bucket's start */
    enum tsdb_vtype type;
    double min, max, avg, sum, last;
    int64_t count;
    const char *str;
};

typedef int (*tsdb_row_cb)(const struct tsdb_row *row, void *ctx);

/* Calls cb for each row, newest first (then by metric); a non-zero return
 * from cb stops the query and is returned. Rollup queries read the rollup
 * tables (and, on SQLite, the deltas not folded into them yet), never the
 * points. Any connection may be used. */
int tsdb_query(struct tsdb *t, struct db_conn *c, const struct tsdb_query *q,
               tsdb_row_cb cb, void *ctx);
/* The latest point of each metric of an entity (count = 1), by metric. */
int tsdb_latest(struct tsdb *t, struct db_conn *c, const char *org_id,
                enum tsdb_entity entity, const char *entity_id,
                tsdb_row_cb cb, void *ctx);

#endif
