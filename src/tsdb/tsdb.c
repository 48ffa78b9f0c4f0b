/*
 * The tsdb handle: per-connection state (prepared statements, the series a
 * transaction created), the shared series cache, the write path common to
 * both backends (resolve series, sort, de-duplicate, recompute the buckets
 * of changed points) and the queries.
 *
 * Series cache: the shared map holds only series known to be committed, so
 * that a rolled-back transaction can never leave an id in it that another
 * series later reuses. A series this connection created goes to its
 * pending map; tsdb_commit moves those to the shared map, tsdb_rollback
 * drops them. A series found in the store that is not pending on this
 * connection was committed by someone (rows a connection sees are
 * committed or its own), so it goes to the shared map at once.
 */
#include "tsdb_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const int64_t tsdb__res_ms[TSDB_NRES] = {5 * 60 * 1000, 60 * 60 * 1000,
                                         24 * 60 * 60 * 1000};

/* Adding a backend is one file and one entry here. */
static const struct tsdb__backend *const backends[] = {
    &tsdb__sqlite,
    &tsdb__postgres,
};

struct tsdb {
    struct db *db;
    const struct tsdb__backend *be;
    pthread_mutex_t mu; /* conns and cache */
    struct tsdb__conn **conns;
    size_t nconns;
    struct tsdb__map cache;
    /* The folder thread (tsdb_fold_in_background). */
    pthread_mutex_t fold_mu;
    pthread_cond_t fold_cv;
    pthread_t folder;
    bool folding, fold_stop;
};

/* "org|d|entity|metric" with the ids lower-cased. */
#define KEY_MAX 1024

static const char *entity_name(enum tsdb_entity e)
{
    return e == TSDB_ASSET ? "asset" : "device";
}

static const char *vtype_name(enum tsdb_vtype v)
{
    return v == TSDB_STRING ? "string" : v == TSDB_BOOL ? "boolean" : "number";
}

static enum tsdb_vtype vtype_parse(const char *s)
{
    if (s && strcmp(s, "string") == 0)
        return TSDB_STRING;
    if (s && strcmp(s, "boolean") == 0)
        return TSDB_BOOL;
    return TSDB_NUMBER;
}

/* A hex digit's lower-case form; 0 for any other byte (NUL included). */
static const unsigned char hex_lower[256] = {
    ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4',
    ['5'] = '5', ['6'] = '6', ['7'] = '7', ['8'] = '8', ['9'] = '9',
    ['a'] = 'a', ['b'] = 'b', ['c'] = 'c', ['d'] = 'd', ['e'] = 'e',
    ['f'] = 'f', ['A'] = 'a', ['B'] = 'b', ['C'] = 'c', ['D'] = 'd',
    ['E'] = 'e', ['F'] = 'f'};

bool tsdb__uuid_lower(char out[CORE_UUID_STR_LEN], const char *in)
{
    if (!in)
        return false;
    /* One pass, no locale, a table lookup per digit: this runs for every
     * raw message (three ids) and series key, where core_uuid_valid +
     * core_uuid_normalize cost more than the rest of the key handling
     * together. Groups of 8-4-4-4-12 digits, a dash after each but the
     * last; a NUL fails the checks before anything past it is read. */
    static const int ends[5] = {8, 13, 18, 23, 36};
    int i = 0;
    for (int g = 0; g < 5; g++) {
        for (; i < ends[g]; i++) {
            unsigned char l = hex_lower[(unsigned char)in[i]];
            if (!l)
                return false;
            out[i] = (char)l;
        }
        if (g < 4) {
            if (in[i] != '-')
                return false;
            out[i++] = '-';
        }
    }
    out[36] = '\0';
    return in[36] == '\0';
}

/* Copies a UUID lower-cased; CORE_EINVAL unless it is one. */
static int uuid_copy(char out[CORE_UUID_STR_LEN], const char *in)
{
    return tsdb__uuid_lower(out, in) ? CORE_OK : CORE_EINVAL;
}

/* ------------------------------------------------------------ lifecycle */

int tsdb_create(struct db *db, struct tsdb **out)
{
    if (!db || !out)
        return CORE_EINVAL;
    *out = NULL;
    const struct tsdb__backend *be = NULL;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        if (backends[i]->dialect == db_dialect(db))
            be = backends[i];
    }
    if (!be)
        return CORE_EUNSUPPORTED;
    struct tsdb *t = calloc(1, sizeof *t);
    if (!t)
        return CORE_ENOMEM;
    t->db = db;
    t->be = be;
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->fold_mu, NULL);
    pthread_cond_init(&t->fold_cv, NULL);
    tsdb__map_init(&t->cache);
    *out = t;
    return CORE_OK;
}

static void conn_destroy(struct tsdb__conn *tc)
{
    if (!tc)
        return;
    for (int i = 0; i < TSDB_SQL_COUNT; i++)
        db_finalize(tc->stmts[i]);
    tsdb__map_fini(&tc->pending);
    tsdb__map_fini(&tc->seen);
    free(tc->items);
    for (size_t i = 0; i < sizeof tc->arrays / sizeof tc->arrays[0]; i++)
        core_buf_fini(&tc->arrays[i]);
    free(tc);
}

void tsdb_destroy(struct tsdb *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->fold_mu);
    bool folding = t->folding;
    t->fold_stop = true;
    pthread_cond_broadcast(&t->fold_cv);
    pthread_mutex_unlock(&t->fold_mu);
    if (folding)
        pthread_join(t->folder, NULL);
    pthread_cond_destroy(&t->fold_cv);
    pthread_mutex_destroy(&t->fold_mu);
    for (size_t i = 0; i < t->nconns; i++)
        conn_destroy(t->conns[i]);
    free(t->conns);
    tsdb__map_fini(&t->cache);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* The state of connection c, created on first sight. Connections live as
 * long as their store, so a linear list of a pool's few is enough. */
static int conn_get(struct tsdb *t, struct db_conn *c, struct tsdb__conn **out)
{
    struct tsdb__conn *tc = NULL;
    int rc = CORE_OK;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->nconns; i++) {
        if (t->conns[i]->c == c) {
            tc = t->conns[i];
            break;
        }
    }
    if (!tc) {
        struct tsdb__conn **grown =
            realloc(t->conns, (t->nconns + 1) * sizeof *grown);
        tc = calloc(1, sizeof *tc);
        if (grown)
            t->conns = grown;
        if (!grown || !tc) {
            free(tc);
            tc = NULL;
            rc = CORE_ENOMEM;
        } else {
            tc->c = c;
            tc->be = t->be;
            tsdb__map_init(&tc->pending);
            tsdb__map_init(&tc->seen);
            for (size_t i = 0; i < sizeof tc->arrays / sizeof tc->arrays[0];
                 i++)
                core_buf_init(&tc->arrays[i]);
            t->conns[t->nconns++] = tc;
        }
    }
    pthread_mutex_unlock(&t->mu);
    *out = tc;
    return rc;
}

/* conn_get for the write paths: also applies the backend's writer
 * settings the first time. The connection is ours (one thread) here. */
static int conn_get_writer(struct tsdb *t, struct db_conn *c,
                           struct tsdb__conn **out)
{
    int rc = conn_get(t, c, out);
    struct tsdb__conn *tc = *out;
    if (rc == CORE_OK && !tc->writer_inited) {
        if (tc->be->writer_init)
            rc = tc->be->writer_init(tc);
        tc->writer_inited = rc == CORE_OK;
    }
    return rc;
}

/* ----------------------------------------------------------- statements */

int tsdb__stmt(struct tsdb__conn *tc, enum tsdb__stmt id, struct db_stmt **out)
{
    struct db_stmt *s = tc->stmts[id];
    if (s) {
        db_reset(s);
        *out = s;
        return CORE_OK;
    }
    const char *sql = tc->be->sql[id];
    if (!sql)
        return CORE_EINTERNAL;
    int rc = db_prepare(tc->c, sql, &s);
    if (rc != CORE_OK) {
        core_log_error("tsdb", "prepare failed stmt=%d err=%s", (int)id,
                       core_err_name(rc));
        return rc;
    }
    tc->stmts[id] = s;
    *out = s;
    return CORE_OK;
}

int tsdb__run(struct tsdb__conn *tc, struct db_stmt *s)
{
    bool row = true;
    int rc = CORE_OK;
    while (rc == CORE_OK && row)
        rc = db_step(s, &row);
    return rc;
}

int tsdb__bind_value(struct db_stmt *s, int idx, const struct tsdb__item *it)
{
    int rc;
    if (it->str) {
        rc = db_bind_null(s, idx);
        if (rc == CORE_OK)
            rc = db_bind_text(s, idx + 1, it->str);
    } else {
        rc = db_bind_double(s, idx, it->num);
        if (rc == CORE_OK)
            rc = db_bind_null(s, idx + 1);
    }
    return rc;
}

bool tsdb__same_value(struct db_stmt *s, int col, const struct tsdb__item *it)
{
    if (it->str) {
        const char *v = db_col_text(s, col + 1);
        return db_col_is_null(s, col) && v && strcmp(v, it->str) == 0;
    }
    /* Both backends return doubles exactly (%.17g on PostgreSQL). */
    return !db_col_is_null(s, col) && db_col_is_null(s, col + 1) &&
           db_col_double(s, col) == it->num;
}

/* ----------------------------------------------------------------- raw */

int tsdb_raw_append(struct tsdb *t, struct db_conn *c,
                    const struct tsdb_raw *msgs, size_t n)
{
    if (!t || !c || (!msgs && n > 0))
        return CORE_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const struct tsdb_raw *m = &msgs[i];
        char scratch[CORE_UUID_STR_LEN];
        if (!m->id || !m->org_id || !m->device_id || !m->transport ||
            !m->payload || !tsdb__uuid_lower(scratch, m->id) ||
            !tsdb__uuid_lower(scratch, m->org_id) ||
            !tsdb__uuid_lower(scratch, m->device_id) ||
            memchr(m->payload, '\0', m->payload_len) ||
            m->payload[m->payload_len] != '\0')
            return CORE_EINVAL;
    }
    if (n == 0)
        return CORE_OK;
    struct tsdb__conn *tc;
    int rc = conn_get_writer(t, c, &tc);
    return rc == CORE_OK ? t->be->raw_append(tc, msgs, n) : rc;
}

int tsdb_raw_retention(struct tsdb *t, struct db_conn *c,
                       int64_t older_than_ms, int64_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (!t || !c)
        return CORE_EINVAL;
    struct tsdb__conn *tc;
    int rc = conn_get_writer(t, c, &tc);
    if (rc != CORE_OK)
        return rc;
    char cutoff[CORE_TIME_ISO_LEN];
    core_time_format_iso(older_than_ms, cutoff);
    int64_t n = 0;
    rc = db_begin(c);
    if (rc != CORE_OK)
        return rc;
    /* Open the gate the triggers check, delete, close it: all in this
     * transaction, so the gate is never open for anyone else. */
    struct db_stmt *s = NULL;
    rc = tsdb__stmt(tc, TSDB_SQL_RAW_GATE_OPEN, &s);
    if (rc == CORE_OK)
        rc = db_bind_text(s, 1, cutoff);
    if (rc == CORE_OK)
        rc = tsdb__run(tc, s);
    if (rc == CORE_OK)
        rc = tsdb__stmt(tc, TSDB_SQL_RAW_DELETE, &s);
    if (rc == CORE_OK)
        rc = db_bind_text(s, 1, cutoff);
    if (rc == CORE_OK)
        rc = tsdb__run(tc, s);
    if (rc == CORE_OK) {
        n = db_changes(s);
        rc = tsdb__stmt(tc, TSDB_SQL_RAW_GATE_CLOSE, &s);
    }
    if (rc == CORE_OK)
        rc = tsdb__run(tc, s);
    if (rc == CORE_OK)
        rc = db_commit(c);
    if (rc != CORE_OK) {
        db_rollback(c);
        return rc;
    }
    core_log_info("tsdb", "raw retention cutoff=%s deleted=%" PRId64, cutoff,
                  n);
    if (deleted)
        *deleted = n;
    return CORE_OK;
}

int tsdb_points_retention(struct tsdb *t, struct db_conn *c,
                          int64_t older_than_ms, int64_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (!t || !c)
        return CORE_EINVAL;
    struct tsdb__conn *tc;
    struct db_stmt *s = NULL;
    int64_t dropped = 0;
    int rc = conn_get_writer(t, c, &tc);
    /* PostgreSQL partitions points by month (migration 0005): months that
     * end before the cutoff go whole, the DELETE takes the rest. */
    if (rc == CORE_OK && db_dialect(t->db) == DB_POSTGRES) {
        struct db_stmt *d;
        rc = db_prepare(c, "SELECT argus_ts_partitions_drop(to_timestamp(? / 1000.0))",
                        &d);
        if (rc == CORE_OK) {
            bool row;
            db_bind_int64(d, 1, older_than_ms);
            rc = db_step(d, &row);
            if (rc == CORE_OK && row)
                dropped = db_col_int64(d, 0);
            db_finalize(d);
        }
    }
    if (rc == CORE_OK)
        rc = tsdb__stmt(tc, TSDB_SQL_POINTS_DELETE, &s);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, 1, older_than_ms);
    if (rc == CORE_OK)
        rc = tsdb__run(tc, s);
    if (rc != CORE_OK)
        return rc;
    int64_t n = db_changes(s) + dropped;
    core_log_info("tsdb", "points retention before_ms=%" PRId64
                          " deleted=%" PRId64,
                  older_than_ms, n);
    if (deleted)
        *deleted = n;
    return CORE_OK;
}

/* -------------------------------------------------------------- series */

/* Built with copies rather than snprintf: it runs for every point whose
 * strings the memo has not seen. */
static int series_key(const struct tsdb_point *p, char *key, size_t n)
{
    /* "org|d|entity|metric": 36 + 3 + 36 + 1 bytes before the metric. */
    enum { ENT = CORE_UUID_STR_LEN - 1 + 3, METRIC = ENT + CORE_UUID_STR_LEN };
    if (!tsdb__uuid_lower(key, p->org_id) ||
        !tsdb__uuid_lower(key + ENT, p->entity_id) || !p->metric ||
        !*p->metric)
        return CORE_EINVAL;
    size_t mlen = strlen(p->metric);
    if (METRIC + mlen >= n)
        return CORE_ETOOBIG;
    key[ENT - 3] = '|';
    key[ENT - 2] = p->entity == TSDB_ASSET ? 'a' : 'd';
    key[ENT - 1] = '|';
    key[METRIC - 1] = '|';
    memcpy(key + METRIC, p->metric, mlen + 1);
    return CORE_OK;
}

/* Looks a series up in the store and creates it if it is missing. */
static int series_fetch(struct tsdb *t, struct tsdb__conn *tc,
                        const struct tsdb_point *p, const char *key,
                        uint64_t h, int64_t *id)
{
    char org[CORE_UUID_STR_LEN], ent[CORE_UUID_STR_LEN];
    uuid_copy(org, p->org_id);
    uuid_copy(ent, p->entity_id);
    struct db_stmt *s = NULL;
    bool row = false;
    bool created = false;
    int rc;
    /* Twice at most: a concurrent creator (PostgreSQL) makes the insert do
     * nothing, and the second look finds its row. */
    for (int attempt = 0; attempt < 2 && !row; attempt++) {
        rc = tsdb__stmt(tc, TSDB_SQL_SERIES_GET, &s);
        if (rc == CORE_OK)
            rc = db_bind_text(s, 1, org);
        if (rc == CORE_OK)
            rc = db_bind_text(s, 2, entity_name(p->entity));
        if (rc == CORE_OK)
            rc = db_bind_text(s, 3, ent);
        if (rc == CORE_OK)
            rc = db_bind_text(s, 4, p->metric);
        if (rc == CORE_OK)
            rc = db_step(s, &row);
        if (rc != CORE_OK)
            return rc;
        if (row)
            *id = db_col_int64(s, 0);
        db_reset(s); /* no read left open on the connection */
        if (row)
            break;
        rc = tsdb__stmt(tc, TSDB_SQL_SERIES_ADD, &s);
        if (rc == CORE_OK)
            rc = db_bind_text(s, 1, org);
        if (rc == CORE_OK)
            rc = db_bind_text(s, 2, entity_name(p->entity));
        if (rc == CORE_OK)
            rc = db_bind_text(s, 3, ent);
        if (rc == CORE_OK)
            rc = db_bind_text(s, 4, p->metric);
        if (rc == CORE_OK)
            rc = db_bind_text(s, 5, vtype_name(p->type));
        if (rc == CORE_OK)
            rc = db_step(s, &row);
        if (rc != CORE_OK)
            return rc;
        if (row) {
            *id = db_col_int64(s, 0);
            created = true;
            tsdb__run(tc, s); /* finish the statement */
        }
    }
    if (!row)
        return CORE_EINTERNAL;
    int64_t pending_id;
    if (created ||
        (tsdb__map_get(&tc->pending, key, h, &pending_id) &&
         pending_id == *id))
        return tsdb__map_put(&tc->pending, key, h, *id);
    /* Committed by someone: share it. */
    tsdb__map_del(&tc->pending, key, h);
    pthread_mutex_lock(&t->mu);
    rc = tsdb__map_put(&t->cache, key, h, *id);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* ------------------------------------------------------------- points */

static inline bool item_less(const struct tsdb__item *x,
                             const struct tsdb__item *y)
{
    if (x->series != y->series)
        return x->series < y->series;
    if (x->ts != y->ts)
        return x->ts < y->ts;
    return x->idx < y->idx;
}

/* Sorts by (series, time, position): a merge sort with the comparison
 * inlined (qsort's call per comparison was ~9 % of the writer thread),
 * which also takes runs already in order (a device's messages usually
 * are) at the cost of one comparison. tmp holds n / 2 + 1 items. */
static void items_sort(struct tsdb__item *v, struct tsdb__item *tmp, size_t n)
{
    if (n <= 12) {
        for (size_t i = 1; i < n; i++) {
            struct tsdb__item x = v[i];
            size_t j = i;
            for (; j > 0 && item_less(&x, &v[j - 1]); j--)
                v[j] = v[j - 1];
            v[j] = x;
        }
        return;
    }
    size_t h = n / 2;
    items_sort(v, tmp, h);
    items_sort(v + h, tmp, n - h);
    if (!item_less(&v[h], &v[h - 1]))
        return;
    memcpy(tmp, v, h * sizeof *v);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        v[k++] = item_less(&v[j], &tmp[i]) ? v[j++] : tmp[i++];
    while (i < h)
        v[k++] = tmp[i++];
}

/* Resolves the series of every point into tc->items. Cache hits take the
 * lock once for the whole batch; misses go to the store one by one. */
static int items_build(struct tsdb *t, struct tsdb__conn *tc,
                       const struct tsdb_point *pts, size_t n)
{
    /* n items, then room for items_sort's n / 2 + 1. */
    size_t want = n + n / 2 + 1;
    if (tc->items_cap < want) {
        struct tsdb__item *grown = realloc(tc->items, want * sizeof *grown);
        if (!grown)
            return CORE_ENOMEM;
        tc->items = grown;
        tc->items_cap = want;
    }
    /* Validation and cache lookups in one pass, before anything reaches
     * the store. The lock is held for one lookup at a time, not while
     * keys are built. */
    char key[KEY_MAX];
    size_t misses = 0;
    memset(tc->memo, 0, sizeof tc->memo);
    for (size_t i = 0; i < n; i++) {
        struct tsdb__item *it = &tc->items[i];
        const struct tsdb_point *p = &pts[i];
        if ((p->type == TSDB_STRING ? !p->str : !isfinite(p->num)) ||
            (p->type != TSDB_NUMBER && p->type != TSDB_BOOL &&
             p->type != TSDB_STRING))
            return CORE_EINVAL;
        it->idx = i;
        it->ts = p->ts_ms;
        it->fate = TSDB_FATE_SAME;
        it->str = p->type == TSDB_STRING ? p->str : NULL;
        it->num = p->type == TSDB_STRING ? 0 : p->num;
        /* Two-way: a pair of slots chosen by the top bits of a
         * multiplicative hash, the most recently used first, so that two
         * series of a batch that share a slot do not evict each other on
         * every point. */
        uint64_t mix = ((uint64_t)(uintptr_t)p->org_id ^
                        ((uint64_t)(uintptr_t)p->entity_id >> 3) ^
                        ((uint64_t)(uintptr_t)p->metric << 7) ^
                        (uint64_t)p->entity) *
                       0x9e3779b97f4a7c15ull;
        struct tsdb__memo *mm = &tc->memo[(mix >> 40) % TSDB_MEMO & ~(size_t)1];
        struct tsdb__memo *same = NULL;
        for (int w = 0; w < 2 && !same; w++) {
            struct tsdb__memo *e = &mm[w];
            if (e->metric && e->org == p->org_id &&
                e->entity_id == p->entity_id && e->metric == p->metric &&
                e->entity == (int)p->entity)
                same = e;
        }
        if (same) {
            it->series = same->series;
            misses += it->series < 0;
            if (same != mm) {
                struct tsdb__memo tmp = mm[0];
                mm[0] = mm[1];
                mm[1] = tmp;
            }
            continue;
        }
        mm[1] = mm[0];
        if (series_key(p, key, sizeof key) != CORE_OK ||
            (p->entity != TSDB_DEVICE && p->entity != TSDB_ASSET))
            return CORE_EINVAL;
        it->series = -1;
        uint64_t h = tsdb__hash(key);
        pthread_mutex_lock(&t->mu);
        bool hit = tsdb__map_get(&t->cache, key, h, &it->series);
        pthread_mutex_unlock(&t->mu);
        misses += !hit;
        *mm = (struct tsdb__memo){p->org_id, p->entity_id, p->metric,
                                  (int)p->entity, it->series};
    }
    /* Misses: each distinct series is read (or created) once per call;
     * tc->seen remembers the answers of this call. Pending ids are re-read
     * like misses, since the transaction that made them may have ended
     * with db_rollback. */
    tsdb__map_clear(&tc->seen);
    for (size_t i = 0; misses > 0 && i < n; i++) {
        struct tsdb__item *it = &tc->items[i];
        if (it->series >= 0)
            continue;
        series_key(&pts[i], key, sizeof key);
        uint64_t h = tsdb__hash(key);
        if (tsdb__map_get(&tc->seen, key, h, &it->series))
            continue;
        int rc = series_fetch(t, tc, &pts[i], key, h, &it->series);
        if (rc == CORE_OK)
            rc = tsdb__map_put(&tc->seen, key, h, it->series);
        if (rc != CORE_OK)
            return rc;
    }
    return CORE_OK;
}

/* Rebuilds the rollup rows of the buckets holding CHANGED points from the
 * points themselves (rare: a redelivery with another value). */
static int recompute_changed(struct tsdb__conn *tc, const struct tsdb__item *items,
                             size_t n)
{
    for (int r = 0; r < TSDB_NRES; r++) {
        int64_t w = tsdb__res_ms[r];
        int64_t last_series = -1, last_bucket = 0;
        for (size_t i = 0; i < n; i++) {
            const struct tsdb__item *it = &items[i];
            if (it->fate != TSDB_FATE_CHANGED)
                continue;
            int64_t b = tsdb__bucket(it->ts, w);
            if (it->series == last_series && b == last_bucket)
                continue;
            last_series = it->series;
            last_bucket = b;
            struct db_stmt *s = NULL;
            int rc = tsdb__stmt(tc, TSDB_SQL_RECOMPUTE_DEL_5M + r, &s);
            if (rc == CORE_OK)
                rc = db_bind_int64(s, 1, it->series);
            if (rc == CORE_OK)
                rc = db_bind_int64(s, 2, b);
            if (rc == CORE_OK)
                rc = tsdb__run(tc, s);
            if (rc == CORE_OK)
                rc = tsdb__stmt(tc, TSDB_SQL_RECOMPUTE_5M + r, &s);
            /* (series, from, to) twice: the aggregate and its last. */
            for (int k = 0; k < 2 && rc == CORE_OK; k++) {
                rc = db_bind_int64(s, 1 + 3 * k, it->series);
                if (rc == CORE_OK)
                    rc = db_bind_int64(s, 2 + 3 * k, b);
                if (rc == CORE_OK)
                    rc = db_bind_int64(s, 3 + 3 * k, b + w);
            }
            if (rc == CORE_OK)
                rc = tsdb__run(tc, s);
            if (rc != CORE_OK)
                return rc;
        }
    }
    return CORE_OK;
}

int tsdb_points_write(struct tsdb *t, struct db_conn *c,
                      const struct tsdb_point *pts, size_t n, size_t *written)
{
    if (written)
        *written = 0;
    if (!t || !c || (!pts && n > 0))
        return CORE_EINVAL;
    if (n == 0)
        return CORE_OK;
    struct tsdb__conn *tc;
    int rc = conn_get_writer(t, c, &tc);
    if (rc == CORE_OK) {
        pthread_mutex_lock(&t->fold_mu);
        tc->fold_elsewhere = t->folding;
        pthread_mutex_unlock(&t->fold_mu);
        rc = items_build(t, tc, pts, n);
    }
    if (rc != CORE_OK)
        return rc;

    /* Sorted by (series, time, position), the last of equal keys wins. */
    struct tsdb__item *items = tc->items;
    items_sort(items, items + n, n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && items[m - 1].series == items[i].series &&
            items[m - 1].ts == items[i].ts)
            m--;
        items[m++] = items[i];
    }

    rc = t->be->points_apply(tc, items, m);
    /* A changed point's buckets are rebuilt from the points, which hold
     * what the log still has for them: fold first, or it would count
     * twice. */
    bool changed = false;
    for (size_t i = 0; i < m && !changed; i++)
        changed = items[i].fate == TSDB_FATE_CHANGED;
    if (rc == CORE_OK && changed && t->be->rollup_fold)
        rc = t->be->rollup_fold(tc);
    if (rc == CORE_OK)
        rc = recompute_changed(tc, items, m);
    if (t->be->points_finish)
        rc = t->be->points_finish(tc, rc);
    if (rc != CORE_OK)
        return rc;
    if (written) {
        for (size_t i = 0; i < m; i++)
            *written += items[i].fate != TSDB_FATE_SAME;
    }
    return CORE_OK;
}

int tsdb_rollups_flush(struct tsdb *t, struct db_conn *c)
{
    if (!t || !c)
        return CORE_EINVAL;
    if (!t->be->rollup_fold)
        return CORE_OK;
    struct tsdb__conn *tc;
    int rc = conn_get_writer(t, c, &tc);
    return rc == CORE_OK ? t->be->rollup_fold(tc) : rc;
}

/* One fold of the folder thread, then the backend's housekeeping. */
static void fold_once(struct tsdb *t)
{
    struct db_conn *c;
    int rc = db_conn_acquire(t->db, true, &c);
    if (rc != CORE_OK) {
        core_log_warn("tsdb", "msg=\"no connection to fold the rollup log\" err=%s",
                      core_err_name(rc));
        return;
    }
    struct tsdb__conn *tc;
    rc = conn_get_writer(t, c, &tc);
    if (rc == CORE_OK)
        rc = t->be->fold_background(tc);
    if (rc == CORE_OK && t->be->after_commit)
        t->be->after_commit(tc);
    db_conn_release(c);
    if (rc != CORE_OK)
        core_log_warn("tsdb", "msg=\"rollup log fold failed; retrying\" err=%s",
                      core_err_name(rc));
}

static void *folder_main(void *arg)
{
    struct tsdb *t = arg;
    pthread_mutex_lock(&t->fold_mu);
    while (!t->fold_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)(t->be->fold_ms % 1000) * 1000000L;
        until.tv_sec += t->be->fold_ms / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&t->fold_cv, &t->fold_mu, &until);
        if (t->fold_stop)
            break;
        pthread_mutex_unlock(&t->fold_mu);
        fold_once(t);
        pthread_mutex_lock(&t->fold_mu);
    }
    pthread_mutex_unlock(&t->fold_mu);
    return NULL;
}

int tsdb_fold_in_background(struct tsdb *t)
{
    if (!t)
        return CORE_EINVAL;
    if (!t->be->fold_background)
        return CORE_OK;
    int rc = CORE_OK;
    pthread_mutex_lock(&t->fold_mu);
    if (!t->folding && !t->fold_stop) {
        if (pthread_create(&t->folder, NULL, folder_main, t) == 0)
            t->folding = true;
        else
            rc = CORE_EINTERNAL;
    }
    pthread_mutex_unlock(&t->fold_mu);
    return rc;
}

/* ------------------------------------------------------------ commit */

static void pending_settle(struct tsdb *t, struct db_conn *c, bool committed)
{
    struct tsdb__conn *tc;
    if (conn_get(t, c, &tc) != CORE_OK || tc->pending.live == 0)
        return;
    if (committed) {
        pthread_mutex_lock(&t->mu);
        tsdb__map_merge(&t->cache, &tc->pending);
        pthread_mutex_unlock(&t->mu);
    }
    tsdb__map_clear(&tc->pending);
}

int tsdb_commit(struct tsdb *t, struct db_conn *c)
{
    if (!t || !c)
        return CORE_EINVAL;
    int rc = db_commit(c);
    if (rc != CORE_OK)
        db_rollback(c);
    pending_settle(t, c, rc == CORE_OK);
    struct tsdb__conn *tc;
    if (rc == CORE_OK && t->be->after_commit && conn_get(t, c, &tc) == CORE_OK)
        t->be->after_commit(tc);
    return rc;
}

int tsdb_rollback(struct tsdb *t, struct db_conn *c)
{
    if (!t || !c)
        return CORE_EINVAL;
    int rc = db_rollback(c);
    pending_settle(t, c, false);
    return rc;
}

/* ------------------------------------------------------------- queries */

static int emit_rows(struct db_stmt *s, bool points, tsdb_row_cb cb,
                     void *ctx)
{
    for (;;) {
        bool row = false;
        int rc = db_step(s, &row);
        if (rc != CORE_OK || !row)
            return rc;
        /* Columns: metric, ts, value_type, then (value, value_text) for
         * points or (min, max, sum, count, last) for buckets. */
        struct tsdb_row r = {
            .metric = db_col_text(s, 0),
            .ts_ms = db_col_int64(s, 1),
            .type = vtype_parse(db_col_text(s, 2)),
        };
        if (points) {
            if (!db_col_is_null(s, 4)) {
                r.type = TSDB_STRING;
                r.str = db_col_text(s, 4);
            } else {
                if (r.type == TSDB_STRING)
                    r.type = TSDB_NUMBER;
                r.min = r.max = r.avg = r.sum = r.last = db_col_double(s, 3);
            }
            r.count = 1;
        } else {
            if (r.type == TSDB_STRING)
                r.type = TSDB_NUMBER;
            r.min = db_col_double(s, 3);
            r.max = db_col_double(s, 4);
            r.sum = db_col_double(s, 5);
            r.count = db_col_int64(s, 6);
            r.last = db_col_double(s, 7);
            r.avg = r.count > 0 ? r.sum / (double)r.count : 0;
        }
        rc = cb(&r, ctx);
        if (rc != 0)
            return rc;
    }
}

int tsdb_query(struct tsdb *t, struct db_conn *c, const struct tsdb_query *q,
               tsdb_row_cb cb, void *ctx)
{
    char org[CORE_UUID_STR_LEN], ent[CORE_UUID_STR_LEN];
    if (!t || !c || !q || !cb || q->limit <= 0 || q->agg < TSDB_AGG_NONE ||
        q->agg > TSDB_AGG_1DAY || uuid_copy(org, q->org_id) != CORE_OK ||
        uuid_copy(ent, q->entity_id) != CORE_OK)
        return CORE_EINVAL;
    struct tsdb__conn *tc;
    int rc = conn_get(t, c, &tc);
    if (rc != CORE_OK)
        return rc;
    static const enum tsdb__stmt ids[4][2] = {
        {TSDB_SQL_QUERY_POINTS, TSDB_SQL_QUERY_POINTS_METRIC},
        {TSDB_SQL_QUERY_5M, TSDB_SQL_QUERY_5M_METRIC},
        {TSDB_SQL_QUERY_1H, TSDB_SQL_QUERY_1H_METRIC},
        {TSDB_SQL_QUERY_1D, TSDB_SQL_QUERY_1D_METRIC},
    };
    struct db_stmt *s = NULL;
    rc = tsdb__stmt(tc, ids[q->agg][q->metric != NULL], &s);
    int i = 1;
    if (rc == CORE_OK)
        rc = db_bind_text(s, i++, org);
    if (rc == CORE_OK)
        rc = db_bind_text(s, i++, entity_name(q->entity));
    if (rc == CORE_OK)
        rc = db_bind_text(s, i++, ent);
    if (rc == CORE_OK && q->metric)
        rc = db_bind_text(s, i++, q->metric);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, i++, q->from_ms);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, i++, q->to_ms);
    if (rc == CORE_OK)
        rc = db_bind_int64(s, i++, q->limit);
    if (rc == CORE_OK)
        rc = emit_rows(s, q->agg == TSDB_AGG_NONE, cb, ctx);
    db_reset(s); /* let go of the read snapshot */
    return rc;
}

int tsdb_latest(struct tsdb *t, struct db_conn *c, const char *org_id,
                enum tsdb_entity entity, const char *entity_id,
                tsdb_row_cb cb, void *ctx)
{
    char org[CORE_UUID_STR_LEN], ent[CORE_UUID_STR_LEN];
    if (!t || !c || !cb || uuid_copy(org, org_id) != CORE_OK ||
        uuid_copy(ent, entity_id) != CORE_OK)
        return CORE_EINVAL;
    struct tsdb__conn *tc;
    int rc = conn_get(t, c, &tc);
    if (rc != CORE_OK)
        return rc;
    struct db_stmt *s = NULL;
    rc = tsdb__stmt(tc, TSDB_SQL_LATEST, &s);
    if (rc == CORE_OK)
        rc = db_bind_text(s, 1, org);
    if (rc == CORE_OK)
        rc = db_bind_text(s, 2, entity_name(entity));
    if (rc == CORE_OK)
        rc = db_bind_text(s, 3, ent);
    if (rc == CORE_OK)
        rc = emit_rows(s, true, cb, ctx);
    db_reset(s);
    return rc;
}
