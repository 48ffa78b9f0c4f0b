/*
 * The embedded runner: one writer thread takes queued submissions in
 * batches and runs archive → normalize's points → device-writer in one
 * transaction per batch (group commit), then tells each submitter. The
 * queue is bounded; a full queue refuses new submissions at once, so
 * memory stays bounded under overload and the sender is told to retry.
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

struct pipeline {
    struct db *db;
    struct tsdb *tsdb;
    struct pipeline_config cfg;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct submission *head, *tail;
    size_t queued; /* messages */
    bool stopping;
    bool joined;
    int64_t last_sweep_ms;
    int64_t last_partitions_ms;
    struct core_metric_series *m_msgs, *m_failed, *m_points, *m_batch,
        *m_commit, *m_queue, *m_dlq, *m_e2e;
};

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

/* Archive, points and device-writer for a list of submissions, inside the
 * caller's transaction on the writer connection. */
static int store_in_tx(struct pipeline *p, struct db_conn *c,
                       struct submission *batch, struct points *pts)
{
    int rc = CORE_OK;
    struct tsdb_raw raws[64];
    size_t prev_n = 0;
    pts->n = 0;
    for (struct submission *b = batch; b && rc == CORE_OK; b = b->next) {
        for (size_t i = 0; i < b->n && rc == CORE_OK && !p->cfg.no_archive;
             i += 64) {
            size_t k = b->n - i < 64 ? b->n - i : 64;
            for (size_t j = 0; j < k; j++) {
                const struct pipeline_msg *m = &b->msgs[i + j];
                raws[j] = (struct tsdb_raw){m->raw_id, m->org_id, m->device_id,
                                            m->received_ms, m->transport,
                                            m->payload, m->payload_len};
            }
            rc = tsdb_raw_append(p->tsdb, c, raws, k);
        }
        for (size_t i = 0; i < b->n && rc == CORE_OK; i++) {
            size_t before = pts->n;
            rc = points_add(pts, &b->msgs[i], prev_n);
            prev_n = pts->n - before;
        }
    }
    if (rc == CORE_OK)
        rc = tsdb_points_write(p->tsdb, c, pts->v, pts->n, NULL);
    if (rc == CORE_OK)
        rc = touch_devices(c, batch);
    return rc;
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
 * publish, keyed by device; durable once the bus has them all. A failed
 * publish fails the whole batch (its senders retry; a message the bus did
 * take is then published twice, which the stages' idempotence absorbs). */
static int publish(struct pipeline *p, struct submission *batch,
                   struct core_buf *buf, size_t n)
{
    struct bus_pub *pubs = malloc(n * sizeof *pubs);
    size_t *ends = malloc(n * sizeof *ends);
    int rc = pubs && ends ? CORE_OK : CORE_ENOMEM;
    size_t k = 0;
    core_buf_reset(buf);
    for (struct submission *b = batch; b && rc == CORE_OK; b = b->next) {
        for (size_t i = 0; i < b->n; i++, k++) {
            const struct pipeline_msg *m = &b->msgs[i];
            pipeline__env_encode(buf, PIPELINE_ENV_RAW, m, m->payload,
                                 m->payload_len);
            ends[k] = buf->len;
        }
    }
    if (rc == CORE_OK && buf->oom)
        rc = CORE_ENOMEM;
    if (rc == CORE_OK) {
        /* The buffer may have moved while it grew: pointers only now. */
        k = 0;
        for (struct submission *b = batch; b; b = b->next) {
            for (size_t i = 0; i < b->n; i++, k++) {
                size_t start = k ? ends[k - 1] : 0;
                pubs[k] = (struct bus_pub){b->msgs[i].device_id,
                                           strlen(b->msgs[i].device_id),
                                           buf->data + start, ends[k] - start};
            }
        }
        rc = bus_stream_publish_batch(p->cfg.bus, PIPELINE_STREAM_RAW, pubs, n);
    }
    free(pubs);
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

static void *writer_main(void *arg)
{
    struct pipeline *p = arg;
    struct points pts = {0};
    struct core_buf buf;
    core_buf_init(&buf);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->head && !p->stopping) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 5;
            pthread_cond_timedwait(&p->wake, &p->lock, &until);
            if (!p->head && !p->stopping) {
                pthread_mutex_unlock(&p->lock);
                sweep_offline(p, core_time_now_ms());
                pthread_mutex_lock(&p->lock);
            }
        }
        if (!p->head && p->stopping) {
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
        int rc = p->cfg.bus ? publish(p, batch, &buf, n)
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
            core_metric_add(p->m_msgs, (double)n);
            core_metric_add(p->m_points, (double)npoints);
            core_metric_observe(p->m_batch, (double)n);
            core_metric_observe(p->m_commit, secs);
        }
        pthread_mutex_lock(&p->lock);
        p->queued -= n;
        core_metric_set(p->m_queue, (double)p->queued);
        pthread_mutex_unlock(&p->lock);
        while (batch) {
            struct submission *next = batch->next;
            int own = rc;
            if (one_by_one) {
                batch->next = NULL;
                own = publish(p, batch, &buf, batch->n);
                core_metric_add(own ? p->m_failed : p->m_msgs,
                                (double)batch->n);
                if (own)
                    core_log_error("pipeline", "msg=\"not published\" "
                                   "messages=%zu err=%s",
                                   batch->n, core_err_name(own));
            }
            int64_t now = core_time_now_ms();
            for (size_t i = 0; i < batch->n; i++) {
                if (own == CORE_OK && !p->cfg.bus)
                    core_metric_observe(p->m_e2e,
                                        (double)(now - batch->msgs[i].received_ms) / 1e3);
                pipeline_msg_fini(&batch->msgs[i]);
            }
            free(batch->msgs);
            batch->done(own, batch->ctx);
            free(batch);
            batch = next;
        }
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
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);

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
        "Time to store one batch (raw, points, devices) and commit.",
        CORE_METRIC_HISTOGRAM, NULL, NULL, 0));
    p->m_queue = core_metric_series(core_metric_register(
        "argus_pipeline_queued_messages",
        "Messages accepted and waiting to be stored.", CORE_METRIC_GAUGE,
        NULL, NULL, 0));
    p->m_e2e = core_metric_series(core_metric_register(
        "argus_pipeline_e2e_seconds",
        "From a message's receipt by ingest to its points committed.",
        CORE_METRIC_HISTOGRAM, NULL, NULL, 0));
    p->m_dlq = core_metric_series(core_metric_register(
        "argus_dlq_entries", "Entries in the dead-letter queue (every "
        "organisation), counted every 10 s.",
        CORE_METRIC_GAUGE, NULL, NULL, 0));
    p->last_sweep_ms = 0; /* the first sweep runs at once */
    if (pthread_create(&p->thread, NULL, writer_main, p) != 0) {
        pthread_cond_destroy(&p->wake);
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
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    if (!joined)
        pthread_join(p->thread, NULL);
}

void pipeline_destroy(struct pipeline *p)
{
    if (!p)
        return;
    pipeline_stop(p);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
