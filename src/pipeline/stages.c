/*
 * The distributed stages: each is a consumer group on its stream, one
 * thread per stage in this process, any number of processes. A batch is
 * processed and its effects committed before it is acknowledged, and every
 * effect is idempotent, so a crash at any point redelivers the batch and
 * changes nothing twice. A batch that fails for a transient reason (the
 * store or the bus away) is retried with a growing pause; a message that can
 * never pass goes to the DLQ with the stage and the reason.
 */
#include "pipeline_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct stage;
typedef int (*stage_fn)(struct stage *s, const struct bus_msg *msgs,
                        size_t n);

struct stage {
    struct pipeline_workers *w;
    const char *name;   /* also the consumer group */
    const char *stream; /* consumed */
    stage_fn process;
    struct bus_consumer *consumer;
    pthread_t thread;
    bool running;
    struct core_buf buf; /* scratch for envelopes */
    int64_t lag_at_ms;
    struct core_metric_series *m_ok, *m_dead, *m_malformed, *m_retries,
        *m_seconds, *m_e2e;
};

/* Device-writer consumers per process on PostgreSQL: while one waits for
 * its transaction, the other decodes its next batch, and the server works
 * on two transactions at once (each consumer holds half the partitions,
 * so they write different devices). SQLite has one writer: one consumer. */
#define DEVICE_WRITERS_PG 2

struct pipeline_workers {
    struct pipeline_workers_config cfg;
    struct pipeline *store; /* device-writer's transactions (no archive) */
    struct stage stages[3 + DEVICE_WRITERS_PG - 1];
    size_t nstages;
    atomic_bool stopping;
};

static const struct {
    enum pipeline_stage bit;
    const char *name;
} stage_names[] = {
    {PIPELINE_STAGE_ARCHIVE, "archive"},
    {PIPELINE_STAGE_NORMALIZE, "normalize"},
    {PIPELINE_STAGE_DEVICE_WRITER, "device-writer"},
};
#define NSTAGES (sizeof stage_names / sizeof stage_names[0])

int pipeline_stages_parse(const char *list, unsigned *mask, char *err,
                          size_t err_len)
{
    *mask = 0;
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        bool found = false;
        if (len == 3 && memcmp(p, "all", 3) == 0) {
            *mask |= PIPELINE_STAGE_ALL;
            found = true;
        }
        for (size_t i = 0; i < NSTAGES && !found; i++) {
            if (strlen(stage_names[i].name) == len &&
                memcmp(stage_names[i].name, p, len) == 0) {
                *mask |= stage_names[i].bit;
                found = true;
            }
        }
        if (!found) {
            snprintf(err, err_len,
                     "unknown stage '%.*s' (stages: archive, normalize, "
                     "device-writer, or all)",
                     (int)(len < 40 ? len : 40), p);
            return CORE_EINVAL;
        }
        p = e ? e + 1 : NULL;
    }
    if (!*mask) {
        snprintf(err, err_len, "no stage named");
        return CORE_EINVAL;
    }
    return CORE_OK;
}

int pipeline_declare_groups(struct bus *bus)
{
    int rc = bus_group_declare(bus, PIPELINE_STREAM_RAW, "archive");
    if (rc == CORE_OK)
        rc = bus_group_declare(bus, PIPELINE_STREAM_RAW, "normalize");
    if (rc == CORE_OK)
        rc = bus_group_declare(bus, PIPELINE_STREAM_NORMALIZED,
                               "device-writer");
    return rc;
}

/* ------------------------------------------------------------- dead list */

struct dead_list {
    struct pipeline_dead *v;
    size_t n;
};

/* Copies what the entry needs: the bus message dies with the next consume,
 * the entry is written later in the batch. */
static int dead_add(struct dead_list *dl, const char *stage,
                    const struct pipeline_env *env, const char *reason)
{
    struct pipeline_dead *d = &dl->v[dl->n];
    char *r = strdup(reason);
    char *ids = malloc(3 * CORE_UUID_STR_LEN);
    char *payload = strndup(env->body, env->body_len);
    if (!r || !ids || !payload) {
        free(r);
        free(ids);
        free(payload);
        return CORE_ENOMEM;
    }
    memcpy(ids, env->raw_id, CORE_UUID_STR_LEN);
    memcpy(ids + CORE_UUID_STR_LEN, env->org_id, CORE_UUID_STR_LEN);
    memcpy(ids + 2 * CORE_UUID_STR_LEN, env->device_id, CORE_UUID_STR_LEN);
    *d = (struct pipeline_dead){stage,
                                r,
                                ids,
                                ids + CORE_UUID_STR_LEN,
                                ids + 2 * CORE_UUID_STR_LEN,
                                payload,
                                env->received_ms};
    dl->n++;
    return CORE_OK;
}

static void dead_free(struct dead_list *dl)
{
    for (size_t i = 0; i < dl->n; i++) {
        free((char *)dl->v[i].reason);
        free((char *)dl->v[i].raw_id);
        free((char *)dl->v[i].payload);
    }
    free(dl->v);
}

static int dead_put(struct db_conn *c, void *ctx)
{
    struct dead_list *dl = ctx;
    int rc = CORE_OK;
    for (size_t i = 0; i < dl->n && rc == CORE_OK; i++)
        rc = pipeline_dlq_put(c, &dl->v[i]);
    return rc;
}

/* The dead entries in a transaction of their own. */
static int dead_commit(struct db *db, struct dead_list *dl)
{
    if (!dl->n)
        return CORE_OK;
    struct db_conn *c;
    int rc = db_conn_acquire(db, true, &c);
    if (rc)
        return rc;
    rc = db_begin(c);
    if (rc == CORE_OK)
        rc = dead_put(c, dl);
    if (rc == CORE_OK)
        rc = db_commit(c);
    else
        db_rollback(c);
    db_conn_release(c);
    return rc;
}

/* A message that is not even an envelope cannot be put in an
 * organisation's DLQ: it is counted, logged with its position, and
 * acknowledged (only a foreign publisher can have written it). */
static void malformed(struct stage *s, const struct bus_msg *m,
                      const char *reason)
{
    core_metric_add(s->m_malformed, 1);
    core_log_error("pipeline",
                   "msg=\"message is not an envelope; skipped\" stage=%s "
                   "stream=%s partition=%u id=%s bytes=%zu reason=\"%s\"",
                   s->name, m->stream, m->partition, m->id, m->len, reason);
}

/* Decodes the batch's bus messages (envelopes, or bundles of them) into
 * *envs (*ne of them, caller frees); a message that is not of the expected
 * kind is counted as malformed and left out whole. */
static int decode_all(struct stage *s, const struct bus_msg *msgs, size_t n,
                      enum pipeline_env_kind kind, struct pipeline_env **envs,
                      size_t *ne)
{
    size_t cap = 0;
    *envs = NULL;
    *ne = 0;
    for (size_t i = 0; i < n; i++) {
        char reason[128];
        size_t before = *ne;
        int rc = pipeline__env_decode_msg(msgs[i].payload, msgs[i].len, envs,
                                          ne, &cap, reason, sizeof reason);
        if (rc == CORE_ENOMEM)
            return rc;
        if (rc) {
            malformed(s, &msgs[i], reason);
            continue;
        }
        for (size_t j = before; j < *ne; j++) {
            if ((*envs)[j].kind != kind) {
                malformed(s, &msgs[i], "envelope of the wrong kind");
                *ne = before;
                break;
            }
        }
    }
    return CORE_OK;
}

/* --------------------------------------------------------------- archive */

static int stage_archive(struct stage *s, const struct bus_msg *msgs, size_t n)
{
    struct pipeline_env *envs;
    size_t ne;
    int rc = decode_all(s, msgs, n, PIPELINE_ENV_RAW, &envs, &ne);
    struct tsdb_raw *raws = malloc((ne ? ne : 1) * sizeof *raws);
    struct dead_list dl = {calloc(ne ? ne : 1, sizeof *dl.v), 0};
    /* The raw store takes NUL-terminated text; inside a bundle a body is
     * followed by the next envelope, so the bodies are copied, each with
     * its NUL, into one block. */
    size_t total = 0;
    for (size_t i = 0; i < ne; i++)
        total += envs[i].body_len + 1;
    char *texts = malloc(total ? total : 1), *at = texts;
    if (rc == CORE_OK && (!raws || !dl.v || !texts))
        rc = CORE_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < ne && rc == CORE_OK; i++) {
        const struct pipeline_env *e = &envs[i];
        /* The raw store keeps text; a NUL inside could not be stored. */
        if (memchr(e->body, '\0', e->body_len)) {
            rc = dead_add(&dl, "archive", e, "the message contains a NUL byte");
            continue;
        }
        memcpy(at, e->body, e->body_len);
        at[e->body_len] = '\0';
        raws[k++] = (struct tsdb_raw){e->raw_id,      e->org_id,
                                      e->device_id,   e->received_ms,
                                      e->transport,   at,
                                      e->body_len};
        at += e->body_len + 1;
    }
    if (rc == CORE_OK && (k || dl.n)) {
        struct db_conn *c;
        rc = db_conn_acquire(s->w->cfg.db, true, &c);
        if (rc == CORE_OK) {
            rc = db_begin(c);
            for (size_t i = 0; i < k && rc == CORE_OK; i += 256)
                rc = tsdb_raw_append(s->w->cfg.tsdb, c, raws + i,
                                     k - i < 256 ? k - i : 256);
            if (rc == CORE_OK)
                rc = dead_put(c, &dl);
            if (rc == CORE_OK)
                rc = db_commit(c);
            else
                db_rollback(c);
            db_conn_release(c);
        }
    }
    if (rc == CORE_OK) {
        core_metric_add(s->m_ok, (double)k);
        core_metric_add(s->m_dead, (double)dl.n);
    }
    dead_free(&dl);
    free(texts);
    free(raws);
    free(envs);
    return rc;
}

/* ------------------------------------------------------------- normalize */

/* The devices of a batch that still exist, with their organisations:
 * looked up together, one statement per 100 distinct devices, sorted by
 * id for the lookups that follow. */
struct alive {
    char dev[CORE_UUID_STR_LEN];
    char org[CORE_UUID_STR_LEN];
};

struct alive_set {
    struct alive *v;
    size_t n;
};

static int alive_cmp(const void *a, const void *b)
{
    return strcmp(((const struct alive *)a)->dev, ((const struct alive *)b)->dev);
}

static int id_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int alive_load(struct db *db, const struct pipeline_env *envs,
                      size_t n, struct alive_set *set)
{
    const char **ids = malloc(n * sizeof *ids);
    set->v = malloc(n * sizeof *set->v);
    set->n = 0;
    if (!ids || !set->v) {
        free(ids);
        return CORE_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (envs[i].body)
            ids[k++] = envs[i].device_id;
    qsort(ids, k, sizeof *ids, id_cmp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(ids[u - 1], ids[i]) != 0)
            ids[u++] = ids[i];
    struct db_conn *c = NULL;
    int rc = u ? db_conn_acquire(db, false, &c) : CORE_OK;
    struct core_buf sql;
    core_buf_init(&sql);
    for (size_t at = 0; at < u && rc == CORE_OK; at += PIPELINE_IN_MAX) {
        size_t m = u - at < PIPELINE_IN_MAX ? u - at : PIPELINE_IN_MAX;
        struct db_stmt *st;
        rc = pipeline__sql_in(&sql, "SELECT id, organization_id FROM devices "
                                    "WHERE deleted_at IS NULL AND id IN",
                              m);
        if (rc == CORE_OK)
            rc = db_prepare(c, sql.data, &st);
        if (rc)
            break;
        for (size_t i = 0; i < m; i++)
            db_bind_text(st, (int)i + 1, ids[at + i]);
        bool row;
        while ((rc = db_step(st, &row)) == CORE_OK && row) {
            struct alive *a = &set->v[set->n++];
            snprintf(a->dev, sizeof a->dev, "%s", db_col_text(st, 0));
            snprintf(a->org, sizeof a->org, "%s", db_col_text(st, 1));
        }
        db_finalize(st);
    }
    if (c)
        db_conn_release(c);
    core_buf_fini(&sql);
    free(ids);
    qsort(set->v, set->n, sizeof *set->v, alive_cmp);
    return rc;
}

static bool alive_has(const struct alive_set *set, const char *org,
                      const char *dev)
{
    struct alive key;
    snprintf(key.dev, sizeof key.dev, "%s", dev);
    const struct alive *a = bsearch(&key, set->v, set->n, sizeof *set->v,
                                    alive_cmp);
    return a && strcmp(a->org, org) == 0;
}

/* The normalised body: the built-in format with an epoch-ms timestamp and
 * the metrics object as it was sent (the device-writer parses it with the
 * same parser, so it reads the same values). */
static int normalized_body(const struct pipeline_msg *m, struct core_buf *b)
{
    core_buf_reset(b);
    core_buf_printf(b, "{\"deviceId\":\"%s\",\"timestamp\":%lld,\"metrics\":",
                    m->device_id, (long long)m->ts_ms);
    core_buf_append(b, m->metrics_text, m->metrics_text_len);
    core_buf_append(b, "}", 1);
    return b->oom ? CORE_ENOMEM : CORE_OK;
}

/* One message: CORE_OK with *reason empty when it normalised (its
 * envelope appended to out), CORE_OK with a reason when it is dead. */
static int normalize_one(struct stage *s, const struct pipeline_env *e,
                         const struct alive_set *alive, struct core_buf *body,
                         struct core_buf *out, char *reason, size_t rlen)
{
    reason[0] = '\0';
    struct pipeline_msg m;
    int rc = pipeline_parse_stored("the message", e->body, e->body_len,
                                   e->received_ms, &s->w->cfg.limits, &m,
                                   reason, rlen);
    if (rc == CORE_EINVAL)
        return CORE_OK;
    if (rc)
        return rc;
    if (strcmp(m.device_id, e->device_id) != 0) {
        snprintf(reason, rlen, "received for device %s but names %s",
                 e->device_id, m.device_id);
    } else if (!alive_has(alive, e->org_id, e->device_id)) {
        snprintf(reason, rlen, "device %s no longer exists", e->device_id);
    } else {
        memcpy(m.raw_id, e->raw_id, sizeof m.raw_id);
        memcpy(m.org_id, e->org_id, sizeof m.org_id);
        m.received_ms = e->received_ms;
        m.transport = e->transport;
        rc = normalized_body(&m, body);
        if (rc == CORE_OK)
            pipeline__env_encode(out, PIPELINE_ENV_NORM, &m, body->data,
                                 body->len);
    }
    pipeline_msg_fini(&m);
    return rc;
}

static int stage_normalize(struct stage *s, const struct bus_msg *msgs,
                           size_t n)
{
    struct pipeline_env *envs;
    size_t ne;
    int rc = decode_all(s, msgs, n, PIPELINE_ENV_RAW, &envs, &ne);
    const char **keys = malloc((ne ? ne : 1) * sizeof *keys);
    size_t *ends = malloc((ne ? ne : 1) * sizeof *ends);
    struct dead_list dl = {calloc(ne ? ne : 1, sizeof *dl.v), 0};
    struct core_buf body;
    core_buf_init(&body);
    struct core_buf *out = &s->buf;
    core_buf_reset(out);
    struct alive_set alive = {NULL, 0};
    if (rc == CORE_OK && (!keys || !ends || !dl.v))
        rc = CORE_ENOMEM;
    size_t k = 0;
    if (rc == CORE_OK && ne)
        rc = alive_load(s->w->cfg.db, envs, ne, &alive);
    for (size_t i = 0; i < ne && rc == CORE_OK; i++) {
        char reason[256];
        rc = normalize_one(s, &envs[i], &alive, &body, out, reason, sizeof reason);
        if (rc)
            break;
        if (reason[0]) {
            rc = dead_add(&dl, "normalize", &envs[i], reason);
        } else {
            ends[k] = out->len;
            keys[k] = envs[i].device_id;
            k++;
        }
    }
    if (rc == CORE_OK && out->oom)
        rc = CORE_ENOMEM;
    if (rc == CORE_OK && k)
        rc = pipeline__publish(s->w->cfg.bus, PIPELINE_STREAM_NORMALIZED,
                               out->data, ends, keys, k);
    if (rc == CORE_OK)
        rc = dead_commit(s->w->cfg.db, &dl);
    if (rc == CORE_OK) {
        core_metric_add(s->m_ok, (double)k);
        core_metric_add(s->m_dead, (double)dl.n);
    }
    dead_free(&dl);
    free(alive.v);
    core_buf_fini(&body);
    free(ends);
    free(keys);
    free(envs);
    return rc;
}

/* --------------------------------------------------------- device-writer */

static int stage_device_writer(struct stage *s, const struct bus_msg *msgs,
                               size_t n)
{
    struct pipeline_env *envs;
    size_t ne;
    int rc = decode_all(s, msgs, n, PIPELINE_ENV_NORM, &envs, &ne);
    struct pipeline_msg *pm = calloc(ne ? ne : 1, sizeof *pm);
    struct dead_list dl = {calloc(ne ? ne : 1, sizeof *dl.v), 0};
    if (rc == CORE_OK && (!pm || !dl.v))
        rc = CORE_ENOMEM;
    size_t k = 0;
    /* normalize has judged the message already: its checks passed against
     * the same receive time, so no limit but the structure applies here. */
    struct pipeline_limits lim = s->w->cfg.limits;
    lim.max_future_ms = INT64_MAX / 4;
    for (size_t i = 0; i < ne && rc == CORE_OK; i++) {
        const struct pipeline_env *e = &envs[i];
        char reason[256] = "";
        int nrc = pipeline_parse_stored("the normalised message", e->body,
                                        e->body_len, e->received_ms, &lim,
                                        &pm[k], reason, sizeof reason);
        if (nrc == CORE_EINVAL) {
            rc = dead_add(&dl, "device-writer", e, reason);
        } else if (nrc) {
            rc = nrc;
        } else {
            struct pipeline_msg *m = &pm[k++];
            memcpy(m->raw_id, e->raw_id, sizeof m->raw_id);
            memcpy(m->org_id, e->org_id, sizeof m->org_id);
            memcpy(m->device_id, e->device_id, sizeof m->device_id);
            m->transport = e->transport;
        }
    }
    if (rc == CORE_OK && (k || dl.n))
        rc = pipeline_store_sync(s->w->store, pm, k, dead_put, &dl);
    if (rc == CORE_OK) {
        int64_t now = core_time_now_ms();
        for (size_t i = 0; i < k; i++)
            core_metric_observe(s->m_e2e,
                                (double)(now - pm[i].received_ms) / 1e3);
        core_metric_add(s->m_ok, (double)k);
        core_metric_add(s->m_dead, (double)dl.n);
    }
    for (size_t i = 0; i < k; i++)
        pipeline_msg_fini(&pm[i]);
    dead_free(&dl);
    free(pm);
    free(envs);
    return rc;
}

/* ---------------------------------------------------------------- runner */

/* Retry pauses: 100 ms, doubling up to 5 s. */
static int64_t next_pause(int64_t pause)
{
    return pause ? (pause * 2 > 5000 ? 5000 : pause * 2) : 100;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Refreshes the group's lag gauge (argus_bus_lag_messages), at most once
 * a second: it costs the bus a round trip per partition. */
static void update_lag(struct stage *s)
{
    int64_t now = core_time_now_ms();
    if (now - s->lag_at_ms < 1000)
        return;
    s->lag_at_ms = now;
    uint64_t lag;
    (void)bus_group_lag(s->w->cfg.bus, s->stream, s->name, &lag);
}

static void *stage_main(void *arg)
{
    struct stage *s = arg;
    struct pipeline_workers *w = s->w;
    /* Bus messages are mostly bundles of several envelopes (up to
     * PIPELINE_BUNDLE_MSGS / _BYTES each): a quarter of batch_max of them
     * per batch keeps a batch's transaction and memory bounded. */
    size_t max = w->cfg.batch_max / 4 ? w->cfg.batch_max / 4 : 1;
    struct bus_msg *msgs = calloc(max, sizeof *msgs);
    int64_t pause = 0;
    while (msgs && !atomic_load(&w->stopping)) {
        size_t n = 0;
        int rc = bus_consumer_consume(s->consumer, msgs, max, 250, &n);
        if (rc) {
            pause = next_pause(pause);
            core_log_warn("pipeline",
                          "msg=\"cannot consume; retrying\" stage=%s err=%s "
                          "retry_ms=%lld",
                          s->name, core_err_name(rc), (long long)pause);
            sleep_ms(pause);
            continue;
        }
        update_lag(s);
        if (!n)
            continue;
        uint64_t t0 = core_time_mono_ns();
        pause = 0;
        while ((rc = s->process(s, msgs, n)) != CORE_OK) {
            core_metric_add(s->m_retries, 1);
            pause = next_pause(pause);
            core_log_error("pipeline",
                           "msg=\"batch failed; retrying\" stage=%s messages=%zu "
                           "err=%s retry_ms=%lld",
                           s->name, n, core_err_name(rc), (long long)pause);
            if (atomic_load(&w->stopping))
                break; /* unacknowledged: delivered again elsewhere */
            sleep_ms(pause);
        }
        pause = 0;
        if (rc == CORE_OK) {
            rc = bus_consumer_ack(s->consumer, msgs, n);
            if (rc)
                core_log_warn("pipeline",
                              "msg=\"ack failed; the batch will be delivered "
                              "again\" stage=%s err=%s",
                              s->name, core_err_name(rc));
            core_metric_observe(s->m_seconds,
                                (double)(core_time_mono_ns() - t0) / 1e9);
        }
    }
    free(msgs);
    return NULL;
}

static void metrics_init(struct stage *s)
{
    static const char *const sr[] = {"stage", "result", NULL};
    static const char *const st[] = {"stage", NULL};
    struct core_metric *msgs = core_metric_register(
        "argus_stage_messages_total",
        "Messages a pipeline stage finished, by result (ok, dead = to the "
        "DLQ, malformed = not an envelope).",
        CORE_METRIC_COUNTER, sr, NULL, 0);
    s->m_ok = core_metric_series(msgs, s->name, "ok");
    s->m_dead = core_metric_series(msgs, s->name, "dead");
    s->m_malformed = core_metric_series(msgs, s->name, "malformed");
    s->m_retries = core_metric_series(core_metric_register(
        "argus_stage_batch_retries_total",
        "Batches a stage had to retry (store or bus unavailable).",
        CORE_METRIC_COUNTER, st, NULL, 0), s->name);
    s->m_seconds = core_metric_series(core_metric_register(
        "argus_stage_batch_seconds",
        "Time from a batch's delivery to its acknowledgement.",
        CORE_METRIC_HISTOGRAM, st, NULL, 0), s->name);
    s->m_e2e = core_metric_series(core_metric_register(
        "argus_pipeline_e2e_seconds",
        "From a message's receipt by ingest to its points committed.",
        CORE_METRIC_HISTOGRAM, NULL, pipeline__e2e_buckets,
        PIPELINE_E2E_BUCKETS));
}

int pipeline_workers_start(const struct pipeline_workers_config *cfg,
                           struct pipeline_workers **out)
{
    struct pipeline_workers *w = calloc(1, sizeof *w);
    if (!w)
        return CORE_ENOMEM;
    w->cfg = *cfg;
    if (!w->cfg.batch_max)
        w->cfg.batch_max = 1000;
    pipeline_limits_default(&w->cfg.limits);
    atomic_init(&w->stopping, false);
    struct pipeline_config pc = {.batch_max = w->cfg.batch_max,
                                 .offline_after_ms = cfg->offline_after_ms,
                                 .no_archive = true};
    int rc = pipeline_declare_groups(cfg->bus);
    if (rc == CORE_OK && (cfg->stages & PIPELINE_STAGE_DEVICE_WRITER))
        rc = pipeline_create(cfg->db, cfg->tsdb, &pc, &w->store);
    /* Unique among this group's live consumers: pid and random bits. */
    char name[25];
    unsigned char rnd[3];
    core_random_bytes(rnd, sizeof rnd);
    snprintf(name, sizeof name, "w%d-%02x%02x%02x", (int)getpid(), rnd[0],
             rnd[1], rnd[2]);
    static const stage_fn fns[] = {stage_archive, stage_normalize,
                                   stage_device_writer};
    static const char *const streams[] = {
        PIPELINE_STREAM_RAW, PIPELINE_STREAM_RAW, PIPELINE_STREAM_NORMALIZED};
    for (size_t i = 0; i < NSTAGES && rc == CORE_OK; i++) {
        if (!(cfg->stages & stage_names[i].bit))
            continue;
        int copies = fns[i] == stage_device_writer &&
                             db_dialect(cfg->db) == DB_POSTGRES
                         ? DEVICE_WRITERS_PG
                         : 1;
        for (int j = 0; j < copies && rc == CORE_OK; j++) {
            struct stage *s = &w->stages[w->nstages++];
            s->w = w;
            s->name = stage_names[i].name;
            s->stream = streams[i];
            s->process = fns[i];
            core_buf_init(&s->buf);
            metrics_init(s);
            char cname[40];
            if (j)
                snprintf(cname, sizeof cname, "%s-%d", name, j);
            else
                snprintf(cname, sizeof cname, "%s", name);
            rc = bus_consumer_create(cfg->bus, s->stream, s->name, cname,
                                     &s->consumer);
        }
    }
    for (size_t i = 0; i < w->nstages && rc == CORE_OK; i++) {
        if (pthread_create(&w->stages[i].thread, NULL, stage_main,
                           &w->stages[i]) != 0)
            rc = CORE_EINTERNAL;
        else
            w->stages[i].running = true;
    }
    if (rc) {
        pipeline_workers_stop(w);
        return rc;
    }
    core_log_info("pipeline", "msg=\"stages started\" consumer=%s stages=%zu "
                              "bus=%s",
                  name, w->nstages, bus_backend_name(cfg->bus));
    *out = w;
    return CORE_OK;
}

void pipeline_workers_stop(struct pipeline_workers *w)
{
    if (!w)
        return;
    atomic_store(&w->stopping, true);
    for (size_t i = 0; i < w->nstages; i++) {
        struct stage *s = &w->stages[i];
        if (s->running)
            pthread_join(s->thread, NULL);
        bus_consumer_destroy(s->consumer);
        core_buf_fini(&s->buf);
    }
    pipeline_destroy(w->store);
    free(w);
}
