/*
 * The embedded runner: one writer thread takes queued submissions in
 * batches (group commit) and tells each submitter once they are durable.
 * The queue is bounded; a full queue refuses new submissions at once, so
 * memory stays bounded under overload and the sender is told to retry.
 *
 * Deferred points (SQLite, no bus): a batch's raw rows, the devices'
 * last_seen_at and a pipeline_pending row (its organisation and receive
 * times) are committed, and the submitters answered; the batch's points
 * are written by a later flush that covers every batch committed since,
 * in a transaction per slice of the devices (SLICES), the last of which
 * deletes their pending rows. That flush runs as soon as
 * the queue is empty, so at moderate rates points follow at once; under
 * load the batches pile up for up to DEFER_MS (DEFER_MS_LOADED at high
 * rates) or DEFER_MAX messages, and
 * one points transaction per many raw commits writes a leaf page per
 * series once instead of once per commit. A crash in between loses
 * nothing: at start the pending ranges are replayed from the raw store
 * (idempotently: points are keyed by series and time). Readers that need
 * their own writes call pipeline_sync() first.
 *
 * Otherwise (PostgreSQL, or any store with a bus for the stages) a batch
 * is stored whole in one transaction, or published to the bus.
 */
#include "pipeline_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct submission {
    struct submission *next;
    struct pipeline_msg *msgs; /* owned */
    size_t n;
    pipeline_done_cb done;
    void *ctx;
};

/* A submission committed to the raw store, to answer once durable. */
struct ack {
    pipeline_done_cb done;
    void *ctx;
    size_t n;
};

/* Deferred points: at most DEFER_MS after the first waiting raw commit,
 * or DEFER_MAX messages, and they are written even while submissions wait.
 * Under load (messages arriving faster than DEFER_RATE per millisecond)
 * they wait up to DEFER_MS_LOADED instead: a points transaction costs
 * mostly a leaf page per series it touches, whatever the number of points,
 * so fewer, larger ones leave the writer more time for raw commits. At
 * 10,000 messages/s (where the latency target is set) nothing changes;
 * flat out, single-message requests went from ~30 k to 38–43 k/s and
 * batches from ~130 k to 139–149 k/s (three bench runs), with points then
 * up to ~150 ms behind. */
#define DEFER_MS 20
#define DEFER_MS_LOADED 100
#define DEFER_RATE 20
#define DEFER_MAX 20000 /* waiting; the flush under way may hold as many */
/* The points of a flush are written in this many transactions, each with
 * the devices of one slice (by a hash of their id), with raw commits let
 * in between: the writer is then never held by points for more than a
 * slice's worth, so acknowledgements keep flowing (flat out, the 202's
 * p99 went from ~50-80 ms to ~15 ms; throughput the same). A device's
 * series are touched by one slice only, so the slices together write each
 * series' leaf page once, as one transaction would. The pending rows go
 * with the last slice; a crash before it replays the whole flush (points
 * are idempotent). */
#define SLICES 8u
/* A points transaction that fails is retried after a pause; after this
 * many failures in a row its messages are dropped from memory, and their
 * pending rows stay for the replay at the next start. */
#define DEFER_ATTEMPTS 5

/* Writer threads: one, or with a bus as many as it publishes at once
 * (bus_publishers): each takes the next batch off the queue while the
 * others wait for their acks. */
#define WRITERS_MAX 8
struct writer {
    struct pipeline *p;
    pthread_t thread;
};

struct pipeline {
    struct db *db;
    struct tsdb *tsdb;
    struct pipeline_config cfg;
    struct writer writers[WRITERS_MAX];
    unsigned nwriters; /* started */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct submission *head, *tail;
    size_t queued; /* messages */
    bool stopping;
    bool joined;
    int64_t last_sweep_ms;
    int64_t last_partitions_ms;
    /* Deferred points (see the top): the writer's, except that the counts
     * and flush are read and set by pipeline_sync() under lock. */
    bool defer;
    bool relaxed; /* the store commits without fsync anyway */
    struct submission *pend_head, *pend_tail; /* raw committed, FIFO */
    size_t pend_n;                            /* their messages */
    int64_t pend_lo, pend_hi;                 /* their pipeline_pending rows */
    int64_t pend_since_ms;                    /* first one committed */
    /* The flush being written, in slices (see SLICES): the pending list
     * as it was when it began; cyc_slice is the next slice to write. */
    struct submission *cyc_head;
    size_t cyc_n, cyc_points;
    int64_t cyc_lo, cyc_hi;
    unsigned cyc_slice;
    size_t cyc_off[SLICES + 1];            /* where each slice begins */
    const struct pipeline_msg **cyc_order; /* the messages, by slice */
    unsigned char *cyc_key;                /* each message's slice */
    size_t cyc_cap;
    bool cyc_ordered; /* cyc_order is built */
    bool raw_turn; /* a raw batch goes before the next slice */
    int64_t retry_at_ms;
    unsigned failures;
    uint64_t acked, written; /* messages answered / with points committed */
    bool flush;              /* pipeline_sync() waits */
    pthread_cond_t written_cv;
    /* With deferred points the raw commits do not wait for the disk
     * either: the syncer thread makes them durable (db_log_sync), many
     * commits per fdatasync, and only then answers their submitters,
     * while the writer goes on with the next batch. Under lock. */
    struct ack *acks;
    size_t nacks, acks_cap;
    bool sync_stop;
    pthread_cond_t sync_cv;
    pthread_t syncer;
    struct core_metric_series *m_msgs, *m_failed, *m_points, *m_batch,
        *m_commit, *m_queue, *m_dlq, *m_e2e, *m_pending;
};

const double pipeline__e2e_buckets[PIPELINE_E2E_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075,
    0.1,   0.15,   0.25,  0.5,  1,     2.5,  5,    10,   30};

struct db *pipeline__db(struct pipeline *p)
{
    return p->db;
}

size_t pipeline_queued(struct pipeline *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->queued;
    pthread_mutex_unlock(&p->lock);
    return n;
}

int pipeline_submit(struct pipeline *p, struct pipeline_msg *msgs, size_t n,
                    pipeline_done_cb done, void *ctx)
{
    struct submission *s = malloc(sizeof *s);
    struct pipeline_msg *copy = malloc(n * sizeof *copy);
    if (!s || !copy) {
        free(s);
        free(copy);
        return CORE_ENOMEM;
    }
    pthread_mutex_lock(&p->lock);
    int rc = CORE_OK;
    if (p->stopping)
        rc = CORE_ESHUTDOWN;
    else if (p->queued + n > p->cfg.queue_capacity)
        rc = CORE_EOVERLOAD;
    if (rc == CORE_OK) {
        memcpy(copy, msgs, n * sizeof *copy);
        *s = (struct submission){NULL, copy, n, done, ctx};
        if (p->tail)
            p->tail->next = s;
        else
            p->head = s;
        p->tail = s;
        p->queued += n;
        core_metric_set(p->m_queue, (double)p->queued);
        pthread_cond_signal(&p->wake);
    }
    pthread_mutex_unlock(&p->lock);
    if (rc) {
        free(s);
        free(copy);
    }
    return rc;
}

/* Points of a batch, built in one array reused across batches. */
struct points {
    struct tsdb_point *v;
    size_t n, cap;
};

/* Adds a message's points. prev_n is how many points the message added
 * just before had (0 for none): when this message is from the same device,
 * its points reuse that message's device id and metric name pointers for
 * equal strings, so that tsdb's memo (keyed by string addresses) knows the
 * series without building and looking up its key again. */
static int points_add(struct points *pts, const struct pipeline_msg *m,
                      size_t prev_n)
{
    if (pts->n + m->nmetrics > pts->cap) {
        size_t cap = pts->cap ? pts->cap : 4096;
        while (cap < pts->n + m->nmetrics)
            cap *= 2;
        struct tsdb_point *v = realloc(pts->v, cap * sizeof *v);
        if (!v)
            return CORE_ENOMEM;
        pts->v = v;
        pts->cap = cap;
    }
    const struct tsdb_point *q = prev_n ? pts->v + pts->n - prev_n : NULL;
    const char *org = m->org_id, *dev = m->device_id;
    if (q && strcmp(q->entity_id, dev) == 0 && strcmp(q->org_id, org) == 0) {
        org = q->org_id;
        dev = q->entity_id;
    } else {
        q = NULL;
    }
    for (size_t i = 0; i < m->nmetrics; i++) {
        const struct pipeline_metric *x = &m->metrics[i];
        const char *key = x->key;
        if (q && i < prev_n && strcmp(q[i].metric, key) == 0)
            key = q[i].metric;
        pts->v[pts->n++] = (struct tsdb_point){
            .org_id = org,
            .entity = TSDB_DEVICE,
            .entity_id = dev,
            .metric = key,
            .ts_ms = m->ts_ms,
            .type = x->type,
            .num = x->num,
            .str = x->str,
        };
    }
    return CORE_OK;
}

/* last_seen_at moves forward only; a silent device that speaks again is
 * online (other statuses — maintenance, inactive — are the operator's).
 * It moves in steps of at least a second: a device heard again within a
 * second of its stored last_seen_at is left as it is, so that a busy
 * device's row (and its page) is not rewritten by every commit.
 *
 * One statement serves up to PIPELINE_IN_MAX devices heard in the same second
 * (each set to the latest receive time of that second), so a batch from
 * many devices costs a few statements, not one per device: on PostgreSQL
 * each statement is a round trip. */
struct touch {
    const char *dev;
    int64_t ms;
};

static int touch_cmp(const void *a, const void *b)
{
    const struct touch *x = a, *y = b;
    int64_t sx = x->ms / 1000, sy = y->ms / 1000;
    if (sx != sy)
        return sx < sy ? -1 : 1;
    int c = strcmp(x->dev, y->dev);
    return c ? c : (x->ms < y->ms ? -1 : x->ms > y->ms);
}

int pipeline__sql_in(struct core_buf *sql, const char *head, size_t n)
{
    core_buf_reset(sql);
    core_buf_puts(sql, head);
    core_buf_puts(sql, " (?");
    for (size_t i = 1; i < n; i++)
        core_buf_puts(sql, ", ?");
    core_buf_putc(sql, ')');
    return sql->oom ? CORE_ENOMEM : CORE_OK;
}

static int touch_run(struct db_conn *c, struct core_buf *sql,
                     const struct touch *t, size_t n, int64_t ms)
{
    struct db_stmt *s;
    int rc = pipeline__sql_in(
        sql,
        "UPDATE devices SET last_seen_at = ?, status = CASE WHEN status = "
        "'offline' THEN 'online' ELSE status END WHERE (last_seen_at IS NULL "
        "OR last_seen_at < ? OR status = 'offline') AND id IN",
        n);
    if (rc == CORE_OK)
        rc = db_prepare(c, sql->data, &s);
    if (rc)
        return rc;
    char iso[CORE_TIME_ISO_LEN], stale[CORE_TIME_ISO_LEN];
    core_time_format_iso(ms, iso);
    core_time_format_iso(ms - 1000, stale);
    db_bind_text(s, 1, iso);
    db_bind_text(s, 2, stale);
    for (size_t i = 0; i < n; i++)
        db_bind_text(s, (int)i + 3, t[i].dev);
    bool row;
    rc = db_step(s, &row);
    db_finalize(s);
    return rc;
}

static int touch_devices(struct db_conn *c, struct submission *batch)
{
    size_t total = 0;
    for (struct submission *b = batch; b; b = b->next)
        total += b->n;
    struct touch *t = malloc((total ? total : 1) * sizeof *t);
    if (!t)
        return CORE_ENOMEM;
    size_t n = 0;
    for (struct submission *b = batch; b; b = b->next)
        for (size_t i = 0; i < b->n; i++)
            t[n++] = (struct touch){b->msgs[i].device_id, b->msgs[i].received_ms};
    /* By second, then device: the last entry of a (second, device) run has
     * that device's latest time in the second. */
    qsort(t, n, sizeof *t, touch_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (u && t[u - 1].ms / 1000 == t[i].ms / 1000 &&
            strcmp(t[u - 1].dev, t[i].dev) == 0)
            t[u - 1].ms = t[i].ms;
        else
            t[u++] = t[i];
    }
    struct core_buf sql;
    core_buf_init(&sql);
    int rc = CORE_OK;
    for (size_t i = 0; i < u && rc == CORE_OK;) {
        /* A run of one second, in chunks; all set to its latest time. */
        size_t j = i;
        int64_t latest = t[i].ms;
        while (j < u && t[j].ms / 1000 == t[i].ms / 1000 && j - i < PIPELINE_IN_MAX) {
            if (t[j].ms > latest)
                latest = t[j].ms;
            j++;
        }
        rc = touch_run(c, &sql, &t[i], j - i, latest);
        i = j;
    }
    core_buf_fini(&sql);
    free(t);
    return rc;
}

/* The raw rows of a list of submissions, in the caller's transaction. */
static int archive(struct pipeline *p, struct db_conn *c,
                   struct submission *batch)
{
    int rc = CORE_OK;
    struct tsdb_raw raws[64];
    for (struct submission *b = batch; b && rc == CORE_OK; b = b->next) {
        for (size_t i = 0; i < b->n && rc == CORE_OK; i += 64) {
            size_t k = b->n - i < 64 ? b->n - i : 64;
            for (size_t j = 0; j < k; j++) {
                const struct pipeline_msg *m = &b->msgs[i + j];
                raws[j] = (struct tsdb_raw){m->raw_id, m->org_id, m->device_id,
                                            m->received_ms, m->transport,
                                            m->payload, m->payload_len};
            }
            rc = tsdb_raw_append(p->tsdb, c, raws, k);
        }
    }
    return rc;
}

/* The points of a list of submissions, in the caller's transaction. */
static int write_points(struct pipeline *p, struct db_conn *c,
                        struct submission *batch, struct points *pts)
{
    int rc = CORE_OK;
    size_t prev_n = 0;
    pts->n = 0;
    for (struct submission *b = batch; b && rc == CORE_OK; b = b->next) {
        for (size_t i = 0; i < b->n && rc == CORE_OK; i++) {
            size_t before = pts->n;
            rc = points_add(pts, &b->msgs[i], prev_n);
            prev_n = pts->n - before;
        }
    }
    if (rc == CORE_OK)
        rc = tsdb_points_write(p->tsdb, c, pts->v, pts->n, NULL);
    return rc;
}

/* Archive, points and device-writer for a list of submissions, inside the
 * caller's transaction on the writer connection. */
static int store_in_tx(struct pipeline *p, struct db_conn *c,
                       struct submission *batch, struct points *pts)
{
    int rc = p->cfg.no_archive ? CORE_OK : archive(p, c, batch);
    if (rc == CORE_OK)
        rc = write_points(p, c, batch, pts);
    if (rc == CORE_OK)
        rc = touch_devices(c, batch);
    return rc;
}

/* ------------------------------------------------------- deferred points */

/* One pipeline_pending row per organisation of the batch, with the range
 * of its messages' receive times; *lo and *hi get the first and last row
 * numbers (ascending: the writer is alone). */
struct org_range {
    const char *org;
    int64_t from, to;
};

static int pending_insert(struct db_conn *c, const struct org_range *r,
                          size_t n, int64_t *lo, int64_t *hi)
{
    struct db_stmt *s;
    int rc = db_prepare(c,
                        "INSERT INTO pipeline_pending (organization_id, from_ms, "
                        "to_ms) VALUES (?, ?, ?) RETURNING seq",
                        &s);
    for (size_t i = 0; i < n && rc == CORE_OK; i++) {
        bool row = false;
        db_reset(s);
        rc = db_bind_text(s, 1, r[i].org);
        if (rc == CORE_OK)
            rc = db_bind_int64(s, 2, r[i].from);
        if (rc == CORE_OK)
            rc = db_bind_int64(s, 3, r[i].to);
        if (rc == CORE_OK)
            rc = db_step(s, &row);
        if (rc == CORE_OK && !row)
            rc = CORE_EINTERNAL;
        if (rc == CORE_OK) {
            *hi = db_col_int64(s, 0);
            if (!*lo)
                *lo = *hi;
        }
    }
    if (s)
        db_finalize(s);
    return rc;
}

static int pending_add(struct db_conn *c, struct submission *batch,
                       int64_t *lo, int64_t *hi)
{
    struct org_range r[8];
    size_t n = 0;
    int rc = CORE_OK;
    *lo = *hi = 0;
    for (struct submission *b = batch; b && rc == CORE_OK; b = b->next) {
        for (size_t i = 0; i < b->n && rc == CORE_OK; i++) {
            const struct pipeline_msg *m = &b->msgs[i];
            size_t j = 0;
            while (j < n && strcmp(r[j].org, m->org_id) != 0)
                j++;
            if (j == n && n == sizeof r / sizeof r[0]) {
                rc = pending_insert(c, r, n, lo, hi);
                j = n = 0;
            }
            if (j == n)
                r[n++] = (struct org_range){m->org_id, m->received_ms,
                                            m->received_ms};
            if (m->received_ms < r[j].from)
                r[j].from = m->received_ms;
            if (m->received_ms > r[j].to)
                r[j].to = m->received_ms;
        }
    }
    if (rc == CORE_OK && n)
        rc = pending_insert(c, r, n, lo, hi);
    return rc;
}

/* Commits on the writer connection without waiting for the disk
 * (synchronous=NORMAL), for the deferred-points writer: the syncer or the
 * next durable commit makes them durable. The connection is shared with
 * other writers, so it goes back to FULL afterwards, unless the store was
 * opened relaxed (p->relaxed, read once at start). */
static void pragma(struct pipeline *p, struct db_conn *c, const char *sql)
{
    struct db_stmt *s;
    bool row;
    /* Prepared (and so cached by the connection), not parsed at each of
     * the two calls per commit. */
    if (!p->relaxed && db_prepare(c, sql, &s) == CORE_OK) {
        db_step(s, &row);
        db_finalize(s);
    }
}

static void lazy_commits(struct pipeline *p, struct db_conn *c)
{
    pragma(p, c, "PRAGMA synchronous=NORMAL");
}

static void durable_commits(struct pipeline *p, struct db_conn *c)
{
    pragma(p, c, "PRAGMA synchronous=FULL");
}

/* Whether the writer connection commits without fsync already. */
static bool store_relaxed(struct db *db)
{
    struct db_conn *c;
    struct db_stmt *s;
    bool relaxed = false;
    if (db_conn_acquire(db, true, &c))
        return false;
    if (db_prepare(c, "PRAGMA synchronous", &s) == CORE_OK) {
        bool row;
        relaxed = db_step(s, &row) == CORE_OK && row && db_col_int64(s, 0) < 2;
        db_finalize(s);
    }
    db_conn_release(c);
    return relaxed;
}

/* The acknowledging half: raw rows, last_seen_at, pending rows; durable
 * once the syncer has synced the log. */
static int store_raw(struct pipeline *p, struct submission *batch,
                     int64_t *lo, int64_t *hi)
{
    struct db_conn *c;
    int rc = db_conn_acquire(p->db, true, &c);
    if (rc)
        return rc;
    lazy_commits(p, c);
    rc = db_begin(c);
    if (rc == CORE_OK)
        rc = archive(p, c, batch);
    if (rc == CORE_OK)
        rc = touch_devices(c, batch);
    if (rc == CORE_OK)
        rc = pending_add(c, batch, lo, hi);
    if (rc == CORE_OK)
        rc = db_commit(c);
    if (rc)
        db_rollback(c);
    durable_commits(p, c);
    db_conn_release(c);
    return rc;
}

static unsigned slice_of(const char *device_id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)device_id; *c; c++)
        h = (h ^ *c) * 16777619u;
    return h % SLICES;
}

/* Orders the flush's messages by slice (a counting sort, in arrival order
 * within a slice): cyc_off[k] is where slice k begins in cyc_order. */
static int slice_messages(struct pipeline *p)
{
    if (p->cyc_n > p->cyc_cap) {
        const struct pipeline_msg **v =
            realloc(p->cyc_order, p->cyc_n * sizeof *v);
        unsigned char *k = realloc(p->cyc_key, p->cyc_n);
        if (v)
            p->cyc_order = v;
        if (k)
            p->cyc_key = k;
        if (!v || !k)
            return CORE_ENOMEM;
        p->cyc_cap = p->cyc_n;
    }
    size_t count[SLICES] = {0}, j = 0;
    for (struct submission *b = p->cyc_head; b; b = b->next)
        for (size_t i = 0; i < b->n; i++, j++)
            count[p->cyc_key[j] = (unsigned char)slice_of(b->msgs[i].device_id)]++;
    p->cyc_off[0] = 0;
    for (unsigned k = 0; k < SLICES; k++)
        p->cyc_off[k + 1] = p->cyc_off[k] + count[k];
    size_t at[SLICES];
    memcpy(at, p->cyc_off, sizeof at);
    j = 0;
    for (struct submission *b = p->cyc_head; b; b = b->next)
        for (size_t i = 0; i < b->n; i++, j++)
            p->cyc_order[at[p->cyc_key[j]]++] = &b->msgs[i];
    return CORE_OK;
}

/* The points of the flush's next slice, in the caller's transaction. */
static int write_slice(struct pipeline *p, struct db_conn *c,
                       struct points *pts)
{
    int rc = CORE_OK;
    size_t prev_n = 0;
    pts->n = 0;
    for (size_t i = p->cyc_off[p->cyc_slice];
         i < p->cyc_off[p->cyc_slice + 1] && rc == CORE_OK; i++) {
        size_t before = pts->n;
        rc = points_add(pts, p->cyc_order[i], prev_n);
        prev_n = pts->n - before;
    }
    if (rc == CORE_OK && pts->n)
        rc = tsdb_points_write(p->tsdb, c, pts->v, pts->n, NULL);
    return rc;
}

/* The points of the flush's next slice (cyc_slice), and with the last
 * slice the flush's pending rows gone, in one transaction. Nobody waits
 * for it to be durable: the next sync of the
 * log covers it (the WAL is sequential); if the machine stops before that,
 * the deletion of the pending rows is lost with the points, and the rows
 * are replayed at the next start. */
static int store_pending(struct pipeline *p, struct points *pts)
{
    struct db_conn *c;
    int rc = db_conn_acquire(p->db, true, &c);
    if (rc)
        return rc;
    struct db_stmt *s;
    lazy_commits(p, c);
    rc = db_begin(c);
    if (rc == CORE_OK)
        rc = write_slice(p, c, pts);
    if (rc == CORE_OK && p->cyc_slice + 1 == SLICES && p->cyc_hi &&
        (rc = db_prepare(c, "DELETE FROM pipeline_pending WHERE seq BETWEEN ? "
                            "AND ?", &s)) == CORE_OK) {
        bool row;
        rc = db_bind_int64(s, 1, p->cyc_lo);
        if (rc == CORE_OK)
            rc = db_bind_int64(s, 2, p->cyc_hi);
        if (rc == CORE_OK)
            rc = db_step(s, &row);
        db_finalize(s);
    }
    if (rc == CORE_OK)
        rc = tsdb_commit(p->tsdb, c);
    if (rc)
        tsdb_rollback(p->tsdb, c);
    durable_commits(p, c);
    db_conn_release(c);
    return rc;
}

/* Frees submissions already answered. */
static void release(struct submission *s)
{
    while (s) {
        struct submission *next = s->next;
        for (size_t i = 0; i < s->n; i++)
            pipeline_msg_fini(&s->msgs[i]);
        free(s->msgs);
        free(s);
        s = next;
    }
}

/* Writes the next slice of the flush under way (the writer thread),
 * beginning one with the pending list if none is. */
static void flush_step(struct pipeline *p, struct points *pts)
{
    if (!p->cyc_head) {
        p->cyc_head = p->pend_head;
        p->cyc_n = p->pend_n;
        p->cyc_lo = p->pend_lo;
        p->cyc_hi = p->pend_hi;
        p->cyc_slice = 0;
        p->cyc_points = 0;
        p->pend_head = p->pend_tail = NULL;
        p->pend_n = 0;
        p->pend_lo = p->pend_hi = 0;
        p->cyc_ordered = false;
    }
    int rc = CORE_OK;
    if (!p->cyc_ordered)
        p->cyc_ordered = (rc = slice_messages(p)) == CORE_OK;
    /* Slices without a message need no transaction (the last one deletes
     * the pending rows, so it always has one). */
    while (rc == CORE_OK && p->cyc_slice + 1 < SLICES &&
           p->cyc_off[p->cyc_slice] == p->cyc_off[p->cyc_slice + 1])
        p->cyc_slice++;
    if (rc == CORE_OK)
        rc = store_pending(p, pts);
    int64_t now = core_time_now_ms();
    if (rc) {
        p->failures++;
        bool give_up = p->failures >= DEFER_ATTEMPTS;
        core_log_error("pipeline", "msg=\"points not stored%s\" messages=%zu "
                       "attempt=%u err=%s", give_up ? ", left to the replay "
                       "at the next start" : "", p->cyc_n, p->failures,
                       core_err_name(rc));
        int64_t pause = 100LL << (p->failures < 6 ? p->failures : 6);
        p->retry_at_ms = now + (pause > 5000 ? 5000 : pause);
        if (!give_up)
            return;
        p->failures = 0;
        core_metric_add(p->m_failed, (double)p->cyc_n);
    } else {
        p->failures = 0;
        p->cyc_points += pts->n;
        if (++p->cyc_slice < SLICES)
            return;
        core_metric_add(p->m_msgs, (double)p->cyc_n);
        core_metric_add(p->m_points, (double)p->cyc_points);
        for (struct submission *b = p->cyc_head; b; b = b->next)
            for (size_t i = 0; i < b->n; i++)
                core_metric_observe(p->m_e2e,
                                    (double)(now - b->msgs[i].received_ms) / 1e3);
    }
    release(p->cyc_head);
    pthread_mutex_lock(&p->lock);
    p->written += p->cyc_n;
    pthread_cond_broadcast(&p->written_cv);
    pthread_mutex_unlock(&p->lock);
    p->cyc_head = NULL;
    p->cyc_n = 0;
    core_metric_set(p->m_pending, (double)p->pend_n);
}

/* Replays what a crash left between a raw commit and its points. */
static void recover_pending(struct pipeline *p)
{
    struct db_conn *c;
    if (db_conn_acquire(p->db, false, &c))
        return;
    struct org_range *r = NULL;
    size_t n = 0, cap = 0;
    int64_t last = 0;
    struct db_stmt *s;
    int rc = db_prepare(c, "SELECT organization_id, from_ms, to_ms, seq FROM "
                           "pipeline_pending ORDER BY seq", &s);
    bool row;
    while (rc == CORE_OK && (rc = db_step(s, &row)) == CORE_OK && row) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct org_range *g = realloc(r, cap * sizeof *r);
            if (!g) {
                rc = CORE_ENOMEM;
                break;
            }
            r = g;
        }
        r[n++] = (struct org_range){strdup(db_col_text(s, 0)),
                                    db_col_int64(s, 1), db_col_int64(s, 2)};
        last = db_col_int64(s, 3);
    }
    if (s)
        db_finalize(s);
    db_conn_release(c);
    size_t replayed = 0, dead = 0;
    for (size_t i = 0; i < n && rc == CORE_OK; i++) {
        if (!r[i].org) {
            rc = CORE_ENOMEM;
            break;
        }
        /* A range holds one raw commit's messages, and those of others
         * received meanwhile; the limit grows until it holds them all. */
        for (size_t limit = 4 * p->cfg.batch_max;; limit *= 2) {
            size_t ok, bad;
            bool more;
            rc = pipeline_replay(p, &p->cfg.limits, r[i].org, NULL, r[i].from,
                                 r[i].to + 1, limit, &ok, &bad, &more);
            if (rc || !more) {
                replayed += ok;
                dead += bad;
                break;
            }
        }
    }
    if (rc == CORE_OK && n && db_conn_acquire(p->db, true, &c) == CORE_OK) {
        if (db_prepare(c, "DELETE FROM pipeline_pending WHERE seq <= ?", &s) ==
            CORE_OK) {
            db_bind_int64(s, 1, last);
            rc = db_step(s, &row);
            db_finalize(s);
        }
        db_conn_release(c);
    }
    if (n)
        core_log_info("pipeline", "msg=\"points replayed after a stop\" "
                      "ranges=%zu messages=%zu dead=%zu err=%s", n, replayed,
                      dead, core_err_name(rc));
    for (size_t i = 0; i < n; i++)
        free((char *)r[i].org);
    free(r);
}

/* Hands a raw-committed submission's answer to the syncer (the writer). */
static int ack_later(struct pipeline *p, struct submission *b)
{
    pthread_mutex_lock(&p->lock);
    if (p->nacks == p->acks_cap) {
        size_t cap = p->acks_cap ? p->acks_cap * 2 : 256;
        struct ack *a = realloc(p->acks, cap * sizeof *a);
        if (!a) {
            pthread_mutex_unlock(&p->lock);
            return CORE_ENOMEM;
        }
        p->acks = a;
        p->acks_cap = cap;
    }
    p->acks[p->nacks++] = (struct ack){b->done, b->ctx, b->n};
    pthread_cond_signal(&p->sync_cv);
    pthread_mutex_unlock(&p->lock);
    return CORE_OK;
}

/* The syncer: one fdatasync for every raw commit made since the last one,
 * then their answers. Messages count as queued until answered, so the
 * queue's capacity bounds them too. */
static void *syncer_main(void *arg)
{
    struct pipeline *p = arg;
    struct ack *mine = NULL;
    size_t mine_cap = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->nacks && !p->sync_stop)
            pthread_cond_wait(&p->sync_cv, &p->lock);
        if (!p->nacks)
            break;
        /* Swap arrays: the writer appends to the other one meanwhile. */
        struct ack *take = p->acks;
        size_t n = p->nacks, cap = p->acks_cap;
        p->acks = mine;
        p->acks_cap = mine_cap;
        p->nacks = 0;
        mine = take;
        mine_cap = cap;
        pthread_mutex_unlock(&p->lock);
        int rc = db_log_sync(p->db);
        size_t msgs = 0;
        for (size_t i = 0; i < n; i++)
            msgs += mine[i].n;
        if (rc) {
            core_log_error("pipeline", "msg=\"raw commits not made durable; "
                           "their senders are told to send again\" "
                           "messages=%zu err=%s", msgs, core_err_name(rc));
            core_metric_add(p->m_failed, (double)msgs);
        }
        /* Counted before they are answered: a sender that queries at once
         * must find its messages among those pipeline_sync() waits for. */
        pthread_mutex_lock(&p->lock);
        p->queued -= msgs;
        if (rc == CORE_OK)
            p->acked += msgs;
        core_metric_set(p->m_queue, (double)p->queued);
        pthread_mutex_unlock(&p->lock);
        for (size_t i = 0; i < n; i++)
            mine[i].done(rc, mine[i].ctx);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    free(mine);
    return NULL;
}

void pipeline_sync(struct pipeline *p)
{
    if (!p || !p->defer)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&p->lock);
    uint64_t target = p->acked;
    while (p->written < target && !p->joined) {
        p->flush = true;
        pthread_cond_signal(&p->wake);
        if (pthread_cond_timedwait(&p->written_cv, &p->lock, &until))
            break;
    }
    pthread_mutex_unlock(&p->lock);
}

/* One transaction: the batch, then also() (may be NULL) on the same
 * connection; committed through tsdb, so that the series made in it are
 * cached only once they are committed. */
static int store(struct pipeline *p, struct submission *batch,
                 struct points *pts,
                 int (*also)(struct db_conn *c, void *ctx), void *ctx)
{
    struct db_conn *c;
    int rc = db_conn_acquire(p->db, true, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == CORE_OK)
        rc = store_in_tx(p, c, batch, pts);
    if (rc == CORE_OK && also)
        rc = also(c, ctx);
    if (rc == CORE_OK)
        rc = tsdb_commit(p->tsdb, c);
    if (rc)
        tsdb_rollback(p->tsdb, c);
    db_conn_release(c);
    return rc;
}

/* Bus mode: the batch's messages go to the raw stream in one pipelined
 * publish, bundled per partition (their device's); durable once the bus
 * has them all. A failed publish fails the whole batch (its senders retry;
 * a message the bus did take is then published twice, which the stages'
 * idempotence absorbs). */
static int publish(struct pipeline *p, struct submission *batch,
                   struct core_buf *buf, size_t n)
{
    const char **keys = malloc(n * sizeof *keys);
    size_t *ends = malloc(n * sizeof *ends);
    int rc = keys && ends ? CORE_OK : CORE_ENOMEM;
    size_t k = 0;
    core_buf_reset(buf);
    for (struct submission *b = batch; b && rc == CORE_OK; b = b->next) {
        for (size_t i = 0; i < b->n; i++, k++) {
            const struct pipeline_msg *m = &b->msgs[i];
            pipeline__env_encode(buf, PIPELINE_ENV_RAW, m, m->payload,
                                 m->payload_len);
            ends[k] = buf->len;
            keys[k] = m->device_id;
        }
    }
    if (rc == CORE_OK && buf->oom)
        rc = CORE_ENOMEM;
    if (rc == CORE_OK)
        rc = pipeline__publish(p->cfg.bus, PIPELINE_STREAM_RAW, buf->data, ends,
                               keys, n);
    free(keys);
    free(ends);
    return rc;
}

int pipeline_store_sync(struct pipeline *p, struct pipeline_msg *msgs,
                        size_t n, int (*also)(struct db_conn *c, void *ctx),
                        void *ctx)
{
    struct submission s = {NULL, msgs, n, NULL, NULL};
    struct points pts = {0};
    int rc = store(p, &s, &pts, also, ctx);
    free(pts.v);
    return rc;
}

/* Devices silent for longer than offline_after go offline. */
static void sweep_offline(struct pipeline *p, int64_t now)
{
    if (now - p->last_sweep_ms < 10000)
        return;
    p->last_sweep_ms = now;
    struct db_conn *c;
    if (db_conn_acquire(p->db, true, &c))
        return;
    char iso[CORE_TIME_ISO_LEN];
    core_time_format_iso(now - p->cfg.offline_after_ms, iso);
    struct db_stmt *s;
    if (db_prepare(c,
                   "UPDATE devices SET status = 'offline' WHERE status = "
                   "'online' AND (last_seen_at IS NULL OR last_seen_at < ?)",
                   &s) == CORE_OK) {
        bool row;
        db_bind_text(s, 1, iso);
        if (db_step(s, &row) == CORE_OK && db_changes(s) > 0)
            core_log_info("pipeline", "msg=\"devices went offline\" count=%lld",
                          (long long)db_changes(s));
        db_finalize(s);
    }
    /* PostgreSQL: the coming months' partitions of the points, hourly
     * (a no-op where TimescaleDB or nothing partitions them). */
    if (db_dialect(p->db) == DB_POSTGRES && now - p->last_partitions_ms >= 3600000 &&
        db_prepare(c, "SELECT argus_ts_partitions_ensure()", &s) == CORE_OK) {
        bool row;
        if (db_step(s, &row) == CORE_OK) {
            p->last_partitions_ms = now;
            if (row && db_col_int64(s, 0) > 0)
                core_log_info("pipeline", "msg=\"point partitions made\" count=%lld",
                              (long long)db_col_int64(s, 0));
        }
        db_finalize(s);
    }
    /* The DLQ's size, for the alert on entries piling up. */
    if (db_prepare(c, "SELECT count(*) FROM dlq", &s) == CORE_OK) {
        bool row;
        if (db_step(s, &row) == CORE_OK && row)
            core_metric_set(p->m_dlq, (double)db_col_int64(s, 0));
        db_finalize(s);
    }
    db_conn_release(c);
}

/* Whether the pending points are to be written now: a reader waits, the
 * writer stops, they are many or old enough (see DEFER_MS), or the queue stayed empty
 * for IDLE_US (idle: a sender answered a moment ago usually sends again
 * within that, and its messages then join the next raw commit instead of
 * waiting behind a points transaction). */
#define IDLE_US 1000
static bool points_due(const struct pipeline *p, int64_t now, bool idle)
{
    int64_t age = now - p->pend_since_ms;
    bool loaded = (int64_t)p->pend_n >= age * DEFER_RATE;
    return p->pend_n && now >= p->retry_at_ms &&
           (idle || p->flush || p->stopping || p->pend_n >= DEFER_MAX ||
            age >= (loaded ? DEFER_MS_LOADED : DEFER_MS));
}

/* Answers a stored (or failed) list of submissions. With deferred points
 * the stored ones move to the pending list, their points still to write. */
static void answer(struct pipeline *p, struct submission *batch, int rc,
                   bool one_by_one, struct core_buf *buf)
{
    while (batch) {
        struct submission *next = batch->next;
        int own = rc;
        if (one_by_one) {
            batch->next = NULL;
            own = publish(p, batch, buf, batch->n);
            core_metric_add(own ? p->m_failed : p->m_msgs, (double)batch->n);
            if (own)
                core_log_error("pipeline", "msg=\"not published\" "
                               "messages=%zu err=%s",
                               batch->n, core_err_name(own));
        }
        bool keep = own == CORE_OK && p->defer;
        int64_t now = core_time_now_ms();
        for (size_t i = 0; i < batch->n && !keep; i++) {
            struct pipeline_msg *m = &batch->msgs[i];
            if (own == CORE_OK && !p->cfg.bus)
                core_metric_observe(p->m_e2e,
                                    (double)(now - m->received_ms) / 1e3);
            pipeline_msg_fini(m);
        }
        if (!keep || ack_later(p, batch) != CORE_OK) {
            if (keep) { /* no memory to queue it: wait for the disk here */
                own = db_log_sync(p->db);
                pthread_mutex_lock(&p->lock);
                p->queued -= batch->n;
                p->acked += own ? 0 : batch->n;
                pthread_mutex_unlock(&p->lock);
            }
            batch->done(own, batch->ctx);
        }
        if (keep) {
            batch->next = NULL;
            if (p->pend_tail)
                p->pend_tail->next = batch;
            else
                p->pend_head = batch;
            p->pend_tail = batch;
        } else {
            free(batch->msgs);
            free(batch);
        }
        batch = next;
    }
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct pipeline *p = w->p;
    bool first = w == p->writers; /* it also sweeps devices offline */
    struct points pts = {0};
    struct core_buf buf;
    core_buf_init(&buf);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        bool points, idle = false;
        for (;;) {
            int64_t now = core_time_now_ms();
            points = (p->cyc_head && now >= p->retry_at_ms) ||
                     points_due(p, now, idle && !p->head);
            /* New batches wait while the pending points are at their
             * bound (the queue then fills and ingest refuses). */
            if (points || (p->head && p->pend_n < DEFER_MAX) ||
                (p->stopping && !p->head && !p->pend_n && !p->cyc_head))
                break;
            int64_t wait_us = !p->pend_n && !p->cyc_head ? 5000000
                              : p->retry_at_ms > now ? (p->retry_at_ms - now) * 1000
                                                     : IDLE_US;
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += wait_us / 1000000;
            until.tv_nsec += (wait_us % 1000000) * 1000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&p->wake, &p->lock, &until);
            idle = !p->head;
            if (first && !p->head && !p->pend_n && !p->cyc_head && !p->stopping) {
                pthread_mutex_unlock(&p->lock);
                sweep_offline(p, core_time_now_ms());
                pthread_mutex_lock(&p->lock);
            }
        }
        /* Within a flush, its slices and raw batches take turns. */
        if (points && p->cyc_head && p->raw_turn && p->head &&
            p->pend_n < DEFER_MAX)
            points = false;
        p->raw_turn = points;
        if (points) {
            p->flush = false;
            pthread_mutex_unlock(&p->lock);
            flush_step(p, &pts);
            continue;
        }
        if (!p->head) { /* stopping, and nothing left */
            pthread_mutex_unlock(&p->lock);
            break;
        }
        /* Whole submissions, up to batch_max messages (at least one). */
        struct submission *batch = p->head, *last = p->head;
        size_t n = last->n;
        while (last->next && n + last->next->n <= p->cfg.batch_max) {
            last = last->next;
            n += last->n;
        }
        p->head = last->next;
        if (!p->head)
            p->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&p->lock);

        uint64_t t0 = core_time_mono_ns();
        pts.n = 0;
        int64_t lo = 0, hi = 0;
        int rc = p->cfg.bus ? publish(p, batch, &buf, n)
                 : p->defer ? store_raw(p, batch, &lo, &hi)
                            : store(p, batch, &pts, NULL, NULL);
        size_t npoints = pts.n;
        double secs = (double)(core_time_mono_ns() - t0) / 1e9;
        /* A message too big for the bus fails only its own submission:
         * when the batch had several, each is published on its own. */
        bool one_by_one = rc == CORE_ETOOBIG && batch != last;
        if (rc && !one_by_one) {
            core_log_error("pipeline", "msg=\"batch not stored\" messages=%zu err=%s",
                           n, core_err_name(rc));
            core_metric_add(p->m_failed, (double)n);
        } else if (!rc) {
            if (!p->defer) {
                core_metric_add(p->m_msgs, (double)n);
                core_metric_add(p->m_points, (double)npoints);
            }
            core_metric_observe(p->m_batch, (double)n);
            core_metric_observe(p->m_commit, secs);
        }
        if (p->defer && rc == CORE_OK) {
            if (!p->pend_n)
                p->pend_since_ms = core_time_now_ms();
            if (!p->pend_lo)
                p->pend_lo = lo;
            p->pend_hi = hi;
            p->pend_n += n;
            core_metric_set(p->m_pending, (double)(p->pend_n + p->cyc_n));
        }
        if (!p->defer || rc) { /* else the syncer, once they are durable */
            pthread_mutex_lock(&p->lock);
            p->queued -= n;
            core_metric_set(p->m_queue, (double)p->queued);
            pthread_mutex_unlock(&p->lock);
        }
        answer(p, batch, rc, one_by_one, &buf);
        if (first)
            sweep_offline(p, core_time_now_ms());
    }
    free(pts.v);
    core_buf_fini(&buf);
    return NULL;
}

int pipeline_create(struct db *db, struct tsdb *tsdb,
                    const struct pipeline_config *cfg, struct pipeline **out)
{
    struct pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return CORE_ENOMEM;
    p->db = db;
    p->tsdb = tsdb;
    p->cfg = *cfg;
    if (!p->cfg.queue_capacity)
        p->cfg.queue_capacity = 100000;
    if (!p->cfg.batch_max)
        p->cfg.batch_max = 1000;
    if (!p->cfg.offline_after_ms)
        p->cfg.offline_after_ms = 300000;
    if (p->cfg.bus) {
        int rc = pipeline_declare_groups(p->cfg.bus);
        if (rc) {
            free(p);
            return rc;
        }
    }
    pipeline_limits_default(&p->cfg.limits);
    /* Points are written here (no bus): on PostgreSQL a thread folds the
     * rollup log, out of the writers' transactions (should it not start,
     * the writers fold as they go). */
    if (!p->cfg.bus && tsdb && tsdb_fold_in_background(tsdb) != CORE_OK)
        core_log_warn("pipeline", "msg=\"no folder thread; writers fold the "
                                  "rollup log\"");
    /* Deferred points need one process writing (recovery replays every
     * pending range): the embedded SQLite store. */
    p->defer = !p->cfg.bus && !p->cfg.no_archive && db_dialect(db) == DB_SQLITE;
    p->relaxed = p->defer && store_relaxed(db);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->written_cv, NULL);
    pthread_cond_init(&p->sync_cv, NULL);

    static const char *const result[] = {"result", NULL};
    struct core_metric *msgs = core_metric_register(
        "argus_pipeline_messages_total",
        "Messages through the embedded pipeline, by result.",
        CORE_METRIC_COUNTER, result, NULL, 0);
    p->m_msgs = core_metric_series(msgs, cfg->bus ? "published" : "stored");
    p->m_failed = core_metric_series(msgs, "failed");
    p->m_points = core_metric_series(
        core_metric_register("argus_pipeline_points_total",
                             "Device points written.", CORE_METRIC_COUNTER,
                             NULL, NULL, 0));
    static const double sizes[] = {1, 10, 50, 100, 250, 500, 1000, 5000};
    p->m_batch = core_metric_series(core_metric_register(
        "argus_pipeline_batch_messages", "Messages per group commit.",
        CORE_METRIC_HISTOGRAM, NULL, sizes, sizeof sizes / sizeof sizes[0]));
    p->m_commit = core_metric_series(core_metric_register(
        "argus_pipeline_commit_seconds",
        "Time to store one batch and commit before acknowledging it (raw "
        "and devices; points too, unless they are deferred).",
        CORE_METRIC_HISTOGRAM, NULL, NULL, 0));
    p->m_queue = core_metric_series(core_metric_register(
        "argus_pipeline_queued_messages",
        "Messages accepted and waiting to be stored.", CORE_METRIC_GAUGE,
        NULL, NULL, 0));
    p->m_e2e = core_metric_series(core_metric_register(
        "argus_pipeline_e2e_seconds",
        "From a message's receipt by ingest to its points committed.",
        CORE_METRIC_HISTOGRAM, NULL, pipeline__e2e_buckets,
        PIPELINE_E2E_BUCKETS));
    p->m_pending = core_metric_series(core_metric_register(
        "argus_pipeline_points_pending_messages",
        "Messages acknowledged (raw stored) whose points are not written "
        "yet (embedded SQLite; see argus_pipeline_e2e_seconds).",
        CORE_METRIC_GAUGE, NULL, NULL, 0));
    p->m_dlq = core_metric_series(core_metric_register(
        "argus_dlq_entries", "Entries in the dead-letter queue (every "
        "organisation), counted every 10 s.",
        CORE_METRIC_GAUGE, NULL, NULL, 0));
    p->last_sweep_ms = 0; /* the first sweep runs at once */
    if (p->defer) /* before anything new is taken */
        recover_pending(p);
    bool syncer = false;
    unsigned want = p->cfg.bus ? bus_publishers(p->cfg.bus) : 1;
    if (want > WRITERS_MAX)
        want = WRITERS_MAX;
    if (!p->defer || (syncer = pthread_create(&p->syncer, NULL, syncer_main,
                                              p) == 0)) {
        for (; p->nwriters < want; p->nwriters++) {
            struct writer *w = &p->writers[p->nwriters];
            w->p = p;
            if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
                break;
        }
    }
    if (!p->nwriters) {
        if (syncer) {
            pthread_mutex_lock(&p->lock);
            p->sync_stop = true;
            pthread_cond_signal(&p->sync_cv);
            pthread_mutex_unlock(&p->lock);
            pthread_join(p->syncer, NULL);
        }
        pthread_cond_destroy(&p->wake);
        pthread_cond_destroy(&p->written_cv);
        pthread_cond_destroy(&p->sync_cv);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return CORE_EINTERNAL;
    }
    *out = p;
    return CORE_OK;
}

void pipeline_stop(struct pipeline *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    bool joined = p->joined;
    p->stopping = true;
    p->joined = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    if (joined)
        return;
    for (unsigned i = 0; i < p->nwriters; i++)
        pthread_join(p->writers[i].thread, NULL);
    if (p->defer) { /* after the writer: it hands the syncer its last acks */
        pthread_mutex_lock(&p->lock);
        p->sync_stop = true;
        pthread_cond_signal(&p->sync_cv);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->syncer, NULL);
    }
}

void pipeline_destroy(struct pipeline *p)
{
    if (!p)
        return;
    pipeline_stop(p);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->written_cv);
    pthread_cond_destroy(&p->sync_cv);
    pthread_mutex_destroy(&p->lock);
    free(p->acks);
    free(p->cyc_order);
    free(p->cyc_key);
    free(p);
}
