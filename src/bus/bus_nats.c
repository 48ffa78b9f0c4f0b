/*
 * The NATS JetStream backend (libnats).
 *
 * For stream S (S' = S with '.' as '_'), group G and partition p:
 *   JetStream stream ARGUS_S'   subjects argus.S'.<p>, interest retention,
 *                               max_msgs_per_subject = capacity and
 *                               max_bytes = capacity x partitions x 1 KiB,
 *                               discard-new per subject: a full partition
 *                               refuses publishes (CORE_EOVERLOAD), and a
 *                               message is kept until every group acked it
 *   durable pull consumer G'_p  filter argus.S'.<p>, explicit ack, ack_wait
 *   (G'_p_g<N>)                 later generations, made when a crashed
 *                               holder's partition is taken over
 *   KV bucket argus_S'_G'       TTL = lease_ms; key p<p> = holder's token
 *                               (compare-and-set on the revision; expiry
 *                               frees a dead holder's lease), m.<token> =
 *                               a live member, rewritten every lease round
 *
 * Messages are framed as a 4-byte big-endian key length, the key, then the
 * payload (the server's max_payload must exceed the largest message).
 *
 * A consumer pulls from all its partitions through one inbox subscription
 * (<inbox>.<p>), with one outstanding pull request per partition, so that a
 * single wait covers every partition. It acknowledges by publishing +ACK to
 * a message's reply subject. Giving a partition up, it waits for the
 * partition's pull to end and NAKs what it holds unacknowledged of it, so
 * the next holder receives those first. Taking over from a crashed holder,
 * it restarts the durable at the ack floor (nats_partition_gained).
 */
#include "bus_internal.h"

#include <nats/nats.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "bus.nats"
#define DURABLE_MAX (BUS_NAME_MAX + 64) /* group_<p>_g<gen> */

struct nats_stream_known {
    struct nats_stream_known *next;
    char name[BUS_NAME_MAX + 1];
};

/* A publish context: its own JetStream context, so its async publishes
 * and their acks are its own. Several let publishers on different threads
 * wait for their acks at the same time, over the one connection. */
#define NATS_PUBLISHERS 4
struct nats_pub {
    jsCtx *js;
    _Atomic int err; /* first error of the current publish batch */
    bool busy;       /* under nats_bus.lock */
};

struct nats_bus {
    natsConnection *nc;
    jsCtx *js;            /* consumers, management */
    pthread_mutex_t lock; /* guards known and pubs[].busy */
    pthread_cond_t pub_free;
    struct nats_stream_known *known; /* JetStream streams known to exist */
    struct nats_pub pubs[NATS_PUBLISHERS];
};

static int status_err(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return CORE_OK;
    case NATS_NO_MEMORY:
        return CORE_ENOMEM;
    case NATS_TIMEOUT:
        return CORE_ETIMEOUT;
    case NATS_MAX_PAYLOAD:
        return CORE_ETOOBIG;
    case NATS_NOT_FOUND:
        return CORE_ENOTFOUND;
    default:
        return CORE_EIO;
    }
}

static int fail(const char *what, natsStatus s)
{
    core_log_warn(SUB, "msg=\"%s failed\" err=\"%s\"", what,
                  natsStatus_GetText(s));
    return status_err(s);
}

static void js_names(const char *stream, char *js_stream, size_t cap,
                     char *subj_base, size_t scap)
{
    char s[BUS_NAME_MAX + 1];
    bus__sanitize(stream, s, sizeof s);
    snprintf(js_stream, cap, "ARGUS_%s", s);
    snprintf(subj_base, scap, "argus.%s", s);
}

/* A pub-ack error, on a library thread; the publisher that owns the
 * context waits in js_PublishAsyncComplete. */
static void pub_err_cb(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    struct nats_pub *pub = closure;
    int err = CORE_EIO;
    if (pae->ErrCode == JSStreamStoreFailedErr ||
        (pae->ErrText && strstr(pae->ErrText, "maximum")))
        err = CORE_EOVERLOAD;
    else
        core_log_warn(SUB, "msg=\"publish refused\" code=%d err=\"%s\"",
                      (int)pae->ErrCode, pae->ErrText ? pae->ErrText : "");
    int expected = CORE_OK;
    atomic_compare_exchange_strong(&pub->err, &expected, err);
}

static int nats_open(struct bus *bus)
{
    if (!bus->host)
        return CORE_EINVAL;
    struct nats_bus *nb = calloc(1, sizeof *nb);
    if (!nb)
        return CORE_ENOMEM;
    pthread_mutex_init(&nb->lock, NULL);
    pthread_cond_init(&nb->pub_free, NULL);
    char url[300];
    snprintf(url, sizeof url, "nats://%s:%d", bus->host, bus->port);
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, url);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, 5000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nb->nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        core_log_error(SUB, "msg=\"cannot connect\" url=%s err=\"%s\"", url,
                       natsStatus_GetText(s));
        goto fail;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    s = natsConnection_JetStream(&nb->js, nb->nc, &jo);
    for (int i = 0; i < NATS_PUBLISHERS && s == NATS_OK; i++) {
        jo.PublishAsync.ErrHandler = pub_err_cb;
        jo.PublishAsync.ErrHandlerClosure = &nb->pubs[i];
        jo.PublishAsync.MaxPending = 1024;
        jo.PublishAsync.StallWait = 10000;
        s = natsConnection_JetStream(&nb->pubs[i].js, nb->nc, &jo);
    }
    if (s != NATS_OK)
        goto fail;
    bus->impl = nb;
    return CORE_OK;

fail:
    for (int i = 0; i < NATS_PUBLISHERS; i++)
        jsCtx_Destroy(nb->pubs[i].js);
    jsCtx_Destroy(nb->js);
    if (nb->nc)
        natsConnection_Destroy(nb->nc);
    pthread_cond_destroy(&nb->pub_free);
    pthread_mutex_destroy(&nb->lock);
    free(nb);
    return status_err(s) == CORE_ENOMEM ? CORE_ENOMEM : CORE_EIO;
}

static void nats_close(struct bus *bus)
{
    struct nats_bus *nb = bus->impl;
    for (int i = 0; i < NATS_PUBLISHERS; i++)
        jsCtx_Destroy(nb->pubs[i].js);
    jsCtx_Destroy(nb->js);
    natsConnection_Close(nb->nc);
    natsConnection_Destroy(nb->nc);
    while (nb->known) {
        struct nats_stream_known *k = nb->known;
        nb->known = k->next;
        free(k);
    }
    pthread_cond_destroy(&nb->pub_free);
    pthread_mutex_destroy(&nb->lock);
    free(nb);
}

/* Creates the JetStream stream of `stream` unless it is known to exist.
 * Called with nb->lock held. */
static int stream_ensure(struct bus *bus, const char *stream)
{
    struct nats_bus *nb = bus->impl;
    for (struct nats_stream_known *k = nb->known; k; k = k->next)
        if (strcmp(k->name, stream) == 0)
            return CORE_OK;
    char name[BUS_NAME_MAX + 16], base[BUS_NAME_MAX + 16];
    char subject[BUS_NAME_MAX + 24];
    js_names(stream, name, sizeof name, base, sizeof base);
    snprintf(subject, sizeof subject, "%s.*", base);
    const char *subjects[] = {subject};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Retention = js_InterestPolicy;
    sc.Storage = js_FileStorage;
    sc.MaxMsgsPerSubject = (int64_t)bus->cfg.capacity;
    /* Entries may be bundles of many messages: their bytes are bounded
     * too, at 1 KiB per message of capacity over the whole stream. */
    uint64_t bytes = bus->cfg.capacity * bus->cfg.partitions;
    sc.MaxBytes = bytes > (uint64_t)INT64_MAX / 1024 ? INT64_MAX
                                                     : (int64_t)(bytes * 1024);
    sc.Discard = js_DiscardNew;
    sc.DiscardNewPerSubject = true;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddStream(&si, nb->js, &sc, NULL, &jerr);
    if (s != NATS_OK) {
        /* It exists already (made by another process, maybe with other
         * limits): use it as it is. */
        s = js_GetStreamInfo(&si, nb->js, name, NULL, &jerr);
        if (s != NATS_OK)
            return fail("stream create", s);
    }
    jsStreamInfo_Destroy(si);
    struct nats_stream_known *k = calloc(1, sizeof *k);
    if (!k)
        return CORE_ENOMEM;
    snprintf(k->name, sizeof k->name, "%s", stream);
    k->next = nb->known;
    nb->known = k;
    return CORE_OK;
}

static int nats_publish(struct bus *bus, const char *stream,
                        const struct bus_pub *msgs, const uint32_t *parts,
                        size_t n)
{
    struct nats_bus *nb = bus->impl;
    char name[BUS_NAME_MAX + 16], base[BUS_NAME_MAX + 16];
    js_names(stream, name, sizeof name, base, sizeof base);
    struct core_buf frame;
    core_buf_init(&frame);
    pthread_mutex_lock(&nb->lock);
    int err = stream_ensure(bus, stream);
    struct nats_pub *pub = NULL;
    while (!err && !pub) {
        for (int i = 0; i < NATS_PUBLISHERS && !pub; i++)
            if (!nb->pubs[i].busy)
                pub = &nb->pubs[i];
        if (!pub)
            pthread_cond_wait(&nb->pub_free, &nb->lock);
    }
    if (err) {
        pthread_mutex_unlock(&nb->lock);
        return err;
    }
    pub->busy = true;
    pthread_mutex_unlock(&nb->lock);
    atomic_store(&pub->err, CORE_OK);
    for (size_t i = 0; i < n && !err; i++) {
        char subject[BUS_NAME_MAX + 32];
        snprintf(subject, sizeof subject, "%s.%u", base, parts[i]);
        if (msgs[i].key_len > UINT32_MAX) {
            err = CORE_ETOOBIG;
            break;
        }
        uint32_t kl = (uint32_t)msgs[i].key_len;
        unsigned char hdr[4] = {(unsigned char)(kl >> 24),
                                (unsigned char)(kl >> 16),
                                (unsigned char)(kl >> 8), (unsigned char)kl};
        core_buf_reset(&frame);
        core_buf_append(&frame, hdr, 4);
        core_buf_append(&frame, msgs[i].key, msgs[i].key_len);
        core_buf_append(&frame, msgs[i].payload, msgs[i].len);
        if (frame.oom) {
            err = CORE_ENOMEM;
            break;
        }
        if (frame.len > INT32_MAX) {
            err = CORE_ETOOBIG;
            break;
        }
        natsStatus s = js_PublishAsync(pub->js, subject, frame.data,
                                       (int)frame.len, NULL);
        if (s != NATS_OK)
            err = fail("publish", s);
    }
    /* Durable once every publish ack is in (or refused). */
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 10000;
    natsStatus s = js_PublishAsyncComplete(pub->js, &po);
    if (s != NATS_OK && !err)
        err = fail("publish ack wait", s);
    if (!err)
        err = atomic_load(&pub->err);
    pthread_mutex_lock(&nb->lock);
    pub->busy = false;
    pthread_cond_signal(&nb->pub_free);
    pthread_mutex_unlock(&nb->lock);
    core_buf_fini(&frame);
    return err;
}

/*
 * Durable consumers have generations: G'_p is generation 0, G'_p_g<N>
 * generation N. A consumer taking over a crashed holder's partition starts
 * a new generation at the old one's ack floor (see nats_partition_gained);
 * the highest generation present is the current one.
 */
static void durable_name(const char *group, uint32_t p, long gen, char *out,
                         size_t cap)
{
    char g[BUS_NAME_MAX + 1];
    bus__sanitize(group, g, sizeof g);
    if (gen > 0)
        snprintf(out, cap, "%s_%u_g%ld", g, p, gen);
    else
        snprintf(out, cap, "%s_%u", g, p);
}

/* The generation that name is of (group, p), or -1 when it is not one. */
static long durable_gen(const char *name, const char *group, uint32_t p)
{
    char base[DURABLE_MAX];
    durable_name(group, p, 0, base, sizeof base);
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0)
        return -1;
    if (name[bl] == '\0')
        return 0;
    if (name[bl] != '_' || name[bl + 1] != 'g' || !name[bl + 2])
        return -1;
    char *end;
    long gen = strtol(name + bl + 2, &end, 10);
    return *end == '\0' && gen > 0 ? gen : -1;
}

static long current_gen(const jsConsumerNamesList *names, const char *group,
                        uint32_t p)
{
    long best = -1;
    for (int i = 0; names && i < names->Count; i++) {
        long gen = durable_gen(names->List[i], group, p);
        if (gen > best)
            best = gen;
    }
    return best;
}

/* The stream's consumer names; *names is NULL when there are none. */
static int names_get(struct nats_bus *nb, const char *js_stream,
                     jsConsumerNamesList **names)
{
    *names = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_ConsumerNames(names, nb->js, js_stream, NULL, &jerr);
    if (s == NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
        *names = NULL;
        return CORE_OK;
    }
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
        return CORE_ENOTFOUND;
    return s == NATS_OK ? CORE_OK : fail("consumer names", s);
}

/* Creates generation gen of (group, p), delivering from start_seq (0: from
 * the first message retained). An existing one is kept as it is. */
static int durable_create(struct bus *bus, const char *js_stream,
                          const char *subj_base, const char *group,
                          uint32_t p, long gen, uint64_t start_seq)
{
    struct nats_bus *nb = bus->impl;
    char durable[DURABLE_MAX], filter[BUS_NAME_MAX + 32];
    durable_name(group, p, gen, durable, sizeof durable);
    snprintf(filter, sizeof filter, "%s.%u", subj_base, p);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.FilterSubject = filter;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = start_seq ? js_DeliverByStartSequence : js_DeliverAll;
    cc.OptStartSeq = start_seq;
    cc.AckWait = (int64_t)bus->cfg.ack_wait_ms * 1000000;
    cc.MaxAckPending = 20000;
    cc.MaxDeliver = -1;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddConsumer(&ci, nb->js, js_stream, &cc, NULL, &jerr);
    if (s != NATS_OK) {
        /* Made before, maybe with another ack_wait: keep it. */
        s = js_GetConsumerInfo(&ci, nb->js, js_stream, durable, NULL, &jerr);
        if (s != NATS_OK)
            return fail("consumer create", s);
    }
    jsConsumerInfo_Destroy(ci);
    return CORE_OK;
}

static int nats_group_declare(struct bus *bus, const char *stream,
                              const char *group)
{
    struct nats_bus *nb = bus->impl;
    char name[BUS_NAME_MAX + 16], base[BUS_NAME_MAX + 16];
    js_names(stream, name, sizeof name, base, sizeof base);
    pthread_mutex_lock(&nb->lock);
    int err = stream_ensure(bus, stream);
    pthread_mutex_unlock(&nb->lock);
    jsConsumerNamesList *names = NULL;
    if (!err)
        err = names_get(nb, name, &names);
    for (uint32_t p = 0; !err && p < bus->cfg.partitions; p++)
        if (current_gen(names, group, p) < 0)
            err = durable_create(bus, name, base, group, p, 0, 0);
    if (names)
        jsConsumerNamesList_Destroy(names);
    return err;
}

static int nats_group_lag(struct bus *bus, const char *stream,
                          const char *group, uint64_t *lag)
{
    struct nats_bus *nb = bus->impl;
    char name[BUS_NAME_MAX + 16], base[BUS_NAME_MAX + 16];
    js_names(stream, name, sizeof name, base, sizeof base);
    jsConsumerNamesList *names = NULL;
    int err = names_get(nb, name, &names);
    uint64_t sum = 0;
    for (uint32_t p = 0; !err && p < bus->cfg.partitions; p++) {
        long gen = current_gen(names, group, p);
        if (gen < 0) {
            err = CORE_ENOTFOUND;
            break;
        }
        char durable[DURABLE_MAX];
        durable_name(group, p, gen, durable, sizeof durable);
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetConsumerInfo(&ci, nb->js, name, durable, NULL,
                                          &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
            err = CORE_ENOTFOUND;
            break;
        }
        if (s != NATS_OK) {
            err = fail("consumer info", s);
            break;
        }
        sum += ci->NumPending + (uint64_t)ci->NumAckPending;
        jsConsumerInfo_Destroy(ci);
    }
    if (names)
        jsConsumerNamesList_Destroy(names);
    *lag = sum;
    return err;
}

/* ------------------------------------------------------------- consumers */

struct nats_pull {
    bool active;
    size_t remaining;  /* messages the request may still bring */
    uint64_t until_ns; /* the request has surely ended by then */
};

/* A message delivered to this consumer and not acknowledged yet. */
struct nats_unacked {
    uint64_t seq;
    char *reply; /* its ack subject */
};

struct nats_unacked_list {
    struct nats_unacked *v;
    size_t n, cap;
};

struct nats_consumer {
    struct bus_consumer base;
    kvStore *kv;
    natsSubscription *sub;
    char inbox[64];
    char js_stream[BUS_NAME_MAX + 16];
    struct nats_pull *pull; /* [nparts] */
    uint64_t *rev;          /* [nparts] our lease's KV revision */
    bool *expired;          /* [nparts] the lease we took had expired */
    long *gen;              /* [nparts] durable generation in use */
    uint64_t *redo_upto;    /* [nparts] stream seqs up to this one were
                               delivered by an earlier generation */
    struct nats_unacked_list *unacked; /* [nparts], in delivery order */
    natsMsg **batch;        /* the last batch's messages */
    size_t nbatch, capbatch;
    natsMsg **queue;        /* received, not yet returned */
    size_t nqueue, capqueue;
    struct core_buf arena;  /* keys and ids of the last batch */
    char member_key[64];
};

static int nats_consumer_alloc(struct bus *bus, struct bus_consumer **out)
{
    struct nats_consumer *nc = calloc(1, sizeof *nc);
    if (!nc)
        return CORE_ENOMEM;
    core_buf_init(&nc->arena);
    *out = &nc->base;
    return CORE_OK;
}

static int nats_consumer_init(struct bus_consumer *c)
{
    struct nats_consumer *cn = (struct nats_consumer *)c;
    struct nats_bus *nb = c->bus->impl;
    char base[BUS_NAME_MAX + 16];
    js_names(c->stream, cn->js_stream, sizeof cn->js_stream, base,
             sizeof base);
    cn->pull = calloc(c->nparts, sizeof *cn->pull);
    cn->rev = calloc(c->nparts, sizeof *cn->rev);
    cn->expired = calloc(c->nparts, sizeof *cn->expired);
    cn->gen = calloc(c->nparts, sizeof *cn->gen);
    cn->redo_upto = calloc(c->nparts, sizeof *cn->redo_upto);
    cn->unacked = calloc(c->nparts, sizeof *cn->unacked);
    if (!cn->pull || !cn->rev || !cn->expired || !cn->gen ||
        !cn->redo_upto || !cn->unacked)
        return CORE_ENOMEM;
    snprintf(cn->member_key, sizeof cn->member_key, "m.%s", c->token);

    char bucket[2 * BUS_NAME_MAX + 16], s[BUS_NAME_MAX + 1],
        g[BUS_NAME_MAX + 1];
    bus__sanitize(c->stream, s, sizeof s);
    bus__sanitize(c->group, g, sizeof g);
    snprintf(bucket, sizeof bucket, "argus_%s_%s", s, g);
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = bucket;
    kc.History = 1;
    kc.TTL = (int64_t)c->bus->cfg.lease_ms * 1000000;
    kc.StorageType = js_MemoryStorage;
    natsStatus st = js_CreateKeyValue(&cn->kv, nb->js, &kc);
    if (st != NATS_OK)
        st = js_KeyValue(&cn->kv, nb->js, bucket);
    if (st != NATS_OK)
        return fail("lease bucket", st);

    unsigned char rnd[8];
    char hex[17], subject[96];
    core_random_bytes(rnd, sizeof rnd);
    core_hex_encode(rnd, sizeof rnd, hex);
    snprintf(cn->inbox, sizeof cn->inbox, "_INBOX.argus.%s", hex);
    snprintf(subject, sizeof subject, "%s.*", cn->inbox);
    st = natsConnection_SubscribeSync(&cn->sub, nb->nc, subject);
    if (st != NATS_OK)
        return fail("subscribe", st);
    natsSubscription_SetPendingLimits(cn->sub, -1, 512 * 1024 * 1024);
    return CORE_OK;
}

static void batch_release(struct nats_consumer *cn)
{
    for (size_t i = 0; i < cn->nbatch; i++)
        natsMsg_Destroy(cn->batch[i]);
    cn->nbatch = 0;
}

static void nats_consumer_free(struct bus_consumer *c)
{
    struct nats_consumer *cn = (struct nats_consumer *)c;
    batch_release(cn);
    for (size_t i = 0; i < cn->nqueue; i++)
        natsMsg_Destroy(cn->queue[i]);
    if (cn->sub) {
        natsSubscription_Unsubscribe(cn->sub);
        natsSubscription_Destroy(cn->sub);
    }
    if (cn->kv)
        kvStore_Destroy(cn->kv);
    free(cn->pull);
    free(cn->rev);
    free(cn->expired);
    free(cn->gen);
    free(cn->redo_upto);
    for (uint32_t p = 0; cn->unacked && p < c->nparts; p++) {
        for (size_t i = 0; i < cn->unacked[p].n; i++)
            free(cn->unacked[p].v[i].reply);
        free(cn->unacked[p].v);
    }
    free(cn->unacked);
    free(cn->batch);
    free(cn->queue);
    core_buf_fini(&cn->arena);
    free(cn);
}

static int nats_member_beat(struct bus_consumer *c, uint32_t *members)
{
    struct nats_consumer *cn = (struct nats_consumer *)c;
    natsStatus s = kvStore_PutString(NULL, cn->kv, cn->member_key, "1");
    if (s != NATS_OK)
        return fail("member beat", s);
    kvKeysList keys = {0};
    s = kvStore_Keys(&keys, cn->kv, NULL);
    if (s != NATS_OK && s != NATS_NOT_FOUND)
        return fail("member list", s);
    uint32_t count = 0;
    for (int i = 0; i < keys.Count; i++)
        if (strncmp(keys.Keys[i], "m.", 2) == 0)
            count++;
    kvKeysList_Destroy(&keys);
    *members = count ? count : 1;
    return CORE_OK;
}

static void nats_member_leave(struct bus_consumer *c)
{
    struct nats_consumer *cn = (struct nats_consumer *)c;
    if (cn->kv)
        kvStore_Delete(cn->kv, cn->member_key);
}

static void lease_name(uint32_t p, char *out, size_t cap)
{
    snprintf(out, cap, "p%u", p);
}

/* A lease is free when its key is absent (expired) or empty (released). */
static int nats_lease_acquire(struct bus_consumer *c, uint32_t p, bool *ok)
{
    struct nats_consumer *cn = (struct nats_consumer *)c;
    char key[16];
    lease_name(p, key, sizeof key);
    *ok = false;
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get(&e, cn->kv, key);
    if (s == NATS_NOT_FOUND) {
        s = kvStore_CreateString(&cn->rev[p], cn->kv, key, c->token);
        *ok = s == NATS_OK;
        cn->expired[p] = true; /* or never taken */
        return CORE_OK;
    }
    cn->expired[p] = false;
    if (s != NATS_OK)
        return fail("lease get", s);
    const char *holder = kvEntry_ValueString(e);
    if (!holder || !*holder || strcmp(holder, c->token) == 0) {
        s = kvStore_UpdateString(&cn->rev[p], cn->kv, key, c->token,
                                 kvEntry_Revision(e));
        *ok = s == NATS_OK;
    }
    kvEntry_Destroy(e);
    return CORE_OK;
}

static int nats_lease_renew(struct bus_consumer *c, uint32_t p, bool *ok)
{
    struct nats_consumer *cn = (struct nats_consumer *)c;
    char key[16];
    lease_name(p, key, sizeof key);
    uint64_t rev = 0;
    natsStatus s =
        kvStore_UpdateString(&rev, cn->kv, key, c->token, cn->rev[p]);
    *ok = s == NATS_OK;
    if (*ok)
        cn->rev[p] = rev;
    return CORE_OK;
}

static void nats_lease_release(struct bus_consumer *c, uint32_t p)
{
    struct nats_consumer *cn = (struct nats_consumer *)c;
    char key[16];
    lease_name(p, key, sizeof key);
    kvStore_UpdateString(NULL, cn->kv, key, "", cn->rev[p]);
}

/*
 * Taking over a partition whose holder died (its lease expired), the
 * messages it received unacknowledged would come back only after ack_wait,
 * and JetStream would meanwhile hand us newer messages of the partition,
 * breaking per-key order (and nats-server 2.9 can misplace a redelivery
 * when only the dead holder's stale pull requests are waiting). So when
 * such messages exist we start a new generation of the durable at the old
 * one's ack floor, then delete the old one: everything unacknowledged comes
 * again at once, in order, followed by the new messages. Messages acked out
 * of order above the floor come again too (at least once). The new
 * generation is made before the old is deleted, so that interest retention
 * never sees the partition without a consumer of the group.
 */
static void nats_partition_gained(struct bus_consumer *c, uint32_t p)
{
    struct nats_consumer *cn = (struct nats_consumer *)c;
    struct nats_bus *nb = c->bus->impl;
    char base[BUS_NAME_MAX + 16], js_stream[BUS_NAME_MAX + 16];
    js_names(c->stream, js_stream, sizeof js_stream, base, sizeof base);
    cn->redo_upto[p] = 0;
    jsConsumerNamesList *names = NULL;
    if (names_get(nb, js_stream, &names) != CORE_OK)
        return;
    long gen = current_gen(names, c->group, p);
    cn->gen[p] = gen > 0 ? gen : 0;
    /* Older generations left by a takeover that was cut short. */
    for (int i = 0; names && i < names->Count; i++) {
        long g = durable_gen(names->List[i], c->group, p);
        if (g >= 0 && g < cn->gen[p])
            js_DeleteConsumer(nb->js, js_stream, names->List[i], NULL, NULL);
    }
    if (names)
        jsConsumerNamesList_Destroy(names);
    if (!cn->expired[p])
        return;
    char durable[DURABLE_MAX];
    durable_name(c->group, p, cn->gen[p], durable, sizeof durable);
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s =
        js_GetConsumerInfo(&ci, nb->js, js_stream, durable, NULL, &jerr);
    if (s != NATS_OK) {
        fail("consumer info", s);
        return;
    }
    int64_t unacked = ci->NumAckPending;
    uint64_t floor = ci->AckFloor.Stream;
    uint64_t delivered = ci->Delivered.Stream;
    jsConsumerInfo_Destroy(ci);
    if (unacked <= 0)
        return;
    long next = cn->gen[p] + 1;
    if (durable_create(c->bus, js_stream, base, c->group, p, next,
                       floor + 1) != CORE_OK)
        return; /* the old generation redelivers after ack_wait */
    js_DeleteConsumer(nb->js, js_stream, durable, NULL, NULL);
    cn->gen[p] = next;
    cn->redo_upto[p] = delivered;
    core_log_info(SUB,
                  "msg=\"took over a crashed holder's partition\" stream=%s "
                  "group=%s partition=%u unacked=%lld generation=%ld",
                  c->stream, c->group, p, (long long)unacked, next);
}

/* The partition of a message: the last token of its subject (a stream
 * subject argus.S.<p>, or our inbox <inbox>.<p> for status messages). */
static uint32_t msg_partition(natsMsg *m)
{
    const char *subj = natsMsg_GetSubject(m);
    const char *dot = strrchr(subj, '.');
    return dot ? (uint32_t)strtoul(dot + 1, NULL, 10) : UINT32_MAX;
}

static bool is_js_msg(natsMsg *m)
{
    const char *reply = natsMsg_GetReply(m);
    return reply && strncmp(reply, "$JS.ACK.", 8) == 0;
}

/* Counts a message received for a pull request; the request ends with its
 * last message (the server sends no status then). */
static void pull_count(struct nats_consumer *cn, natsMsg *m)
{
    uint32_t p = msg_partition(m);
    if (p < cn->base.nparts && cn->pull[p].active &&
        --cn->pull[p].remaining == 0)
        cn->pull[p].active = false;
}

static void nak(struct bus *bus, natsMsg *m)
{
    struct nats_bus *nb = bus->impl;
    natsConnection_Publish(nb->nc, natsMsg_GetReply(m), "-NAK", 4);
}

/* A status message ends the pull request of its partition: 404 (no
 * messages), 408 (expired), 409 (refused). 100 is a heartbeat. */
static void status_seen(struct nats_consumer *cn, natsMsg *m)
{
    const char *st = NULL;
    uint32_t p = msg_partition(m);
    if (natsMsgHeader_Get(m, "Status", &st) == NATS_OK && st &&
        strcmp(st, "100") == 0)
        return;
    if (p < cn->base.nparts)
        cn->pull[p].active = false;
}

static int queue_push(struct nats_consumer *cn, natsMsg *m)
{
    if (cn->nqueue == cn->capqueue) {
        size_t ncap = cn->capqueue ? cn->capqueue * 2 : 64;
        natsMsg **nq = realloc(cn->queue, ncap * sizeof *nq);
        if (!nq)
            return CORE_ENOMEM;
        cn->queue = nq;
        cn->capqueue = ncap;
    }
    cn->queue[cn->nqueue++] = m;
    return CORE_OK;
}

/* Giving partition p up: let its pull request end (setting aside what
 * arrives for other partitions), and NAK what we hold of it, so that the
 * next holder gets those messages at once and in order. */
static void nats_partition_lost(struct bus_consumer *c, uint32_t p)
{
    struct nats_consumer *cn = (struct nats_consumer *)c;
    struct nats_bus *nb = c->bus->impl;
    for (;;) {
        /* What the library has received already, then what the partition's
         * pull may still bring. */
        int pending = 0, bytes = 0;
        natsSubscription_GetPending(cn->sub, &pending, &bytes);
        bool waiting = cn->pull[p].active &&
                       core_time_mono_ns() < cn->pull[p].until_ns;
        if (pending <= 0 && !waiting)
            break;
        natsMsg *m = NULL;
        int64_t wait = 1000;
        if (pending <= 0)
            wait = (int64_t)((cn->pull[p].until_ns - core_time_mono_ns()) /
                             1000000) + 1;
        if (natsSubscription_NextMsg(&m, cn->sub, wait) != NATS_OK)
            break;
        if (!is_js_msg(m)) {
            status_seen(cn, m);
            natsMsg_Destroy(m);
            continue;
        }
        pull_count(cn, m);
        if (queue_push(cn, m) != CORE_OK) {
            natsMsg_Destroy(m); /* redelivered after ack_wait */
        }
    }
    cn->pull[p].active = false;
    /* NAKs in delivery order, which is sequence order: first what the
     * caller received, then what was set aside. The server redelivers NAKed
     * messages in the order the NAKs arrive. */
    struct nats_unacked_list *ul = &cn->unacked[p];
    for (size_t i = 0; i < ul->n; i++) {
        natsConnection_Publish(nb->nc, ul->v[i].reply, "-NAK", 4);
        free(ul->v[i].reply);
    }
    ul->n = 0;
    size_t keep = 0;
    for (size_t i = 0; i < cn->nqueue; i++) {
        natsMsg *m = cn->queue[i];
        if (msg_partition(m) == p) {
            nak(c->bus, m);
            natsMsg_Destroy(m);
        } else {
            cn->queue[keep++] = m;
        }
    }
    cn->nqueue = keep;
    natsConnection_FlushTimeout(nb->nc, 5000);
}

/* Asks for up to batch messages of partition p, answered to <inbox>.<p>.
 * A request lives at least PULL_MIN_MS, beyond the fetch that made it if
 * need be (what it brings later is returned by the next fetch): when a
 * redelivery falls due while no live request waits, nats-server 2.9 takes
 * it off its redelivery queue until the next ack check, out of order, and
 * very short requests made that frequent. */
#define PULL_MIN_MS 500

static int pull_request(struct nats_consumer *cn, uint32_t p, size_t batch,
                        int wait_ms)
{
    if (wait_ms > 0 && wait_ms < PULL_MIN_MS)
        wait_ms = PULL_MIN_MS;
    struct nats_bus *nb = cn->base.bus->impl;
    char subj[2 * BUS_NAME_MAX + 128], reply[96], body[96];
    char durable[DURABLE_MAX];
    durable_name(cn->base.group, p, cn->gen[p], durable, sizeof durable);
    snprintf(subj, sizeof subj, "$JS.API.CONSUMER.MSG.NEXT.%s.%s",
             cn->js_stream, durable);
    snprintf(reply, sizeof reply, "%s.%u", cn->inbox, p);
    if (wait_ms <= 0)
        snprintf(body, sizeof body, "{\"batch\":%zu,\"no_wait\":true}", batch);
    else
        snprintf(body, sizeof body, "{\"batch\":%zu,\"expires\":%lld}", batch,
                 (long long)wait_ms * 1000000);
    natsStatus s = natsConnection_PublishRequest(nb->nc, subj, reply, body,
                                                 (int)strlen(body));
    if (s != NATS_OK)
        return fail("pull request", s);
    cn->pull[p].active = true;
    cn->pull[p].remaining = batch;
    /* The server ends a request at its expiry, but does not always say so
     * (a request that delivered part of its batch can end silently): 100 ms
     * past the expiry it is taken as ended and a new one is made. With a
     * 1 s margin a quiet partition went without a live request for up to
     * that long, and at a steady 10 k messages/s the end-to-end p95 was
     * ~0.9 s instead of ~80 ms. */
    cn->pull[p].until_ns = core_time_mono_ns() +
                           (uint64_t)(wait_ms > 0 ? wait_ms : 0) * 1000000 +
                           (wait_ms > 0 ? 100000000ULL : 200000000ULL);
    return CORE_OK;
}

/* Reads "$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>"
 * (or the longer form with domain and account hash). */
static bool ack_meta(const char *reply, uint32_t *delivered, uint64_t *sseq)
{
    const char *tok[16];
    int nt = 0;
    for (const char *q = reply; q && nt < 16; q = strchr(q, '.')) {
        if (*q == '.')
            q++;
        tok[nt++] = q;
    }
    int base;
    if (nt == 9)
        base = 2;
    else if (nt >= 11)
        base = 4;
    else
        return false;
    *delivered = (uint32_t)strtoul(tok[base + 2], NULL, 10);
    *sseq = strtoull(tok[base + 3], NULL, 10);
    return true;
}

static int batch_add(struct nats_consumer *cn, natsMsg *m, struct bus_msg *out,
                     size_t *offs)
{
    uint32_t p = msg_partition(m);
    uint32_t delivered;
    uint64_t sseq;
    const unsigned char *d = (const unsigned char *)natsMsg_GetData(m);
    int dl = natsMsg_GetDataLength(m);
    if (p >= cn->base.nparts || !cn->base.held[p] ||
        !ack_meta(natsMsg_GetReply(m), &delivered, &sseq) || dl < 4) {
        nak(cn->base.bus, m);
        natsMsg_Destroy(m);
        return 1; /* skipped */
    }
    uint32_t kl = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
                  (uint32_t)d[2] << 8 | d[3];
    if ((size_t)kl > (size_t)dl - 4) {
        core_log_warn(SUB, "msg=\"malformed message acknowledged\" seq=%llu",
                      (unsigned long long)sseq);
        natsConnection_Publish(((struct nats_bus *)cn->base.bus->impl)->nc,
                               natsMsg_GetReply(m), "+ACK", 4);
        natsMsg_Destroy(m);
        return 1;
    }
    if (cn->nbatch == cn->capbatch) {
        size_t ncap = cn->capbatch ? cn->capbatch * 2 : 64;
        natsMsg **nbt = realloc(cn->batch, ncap * sizeof *nbt);
        if (!nbt) {
            nak(cn->base.bus, m);
            natsMsg_Destroy(m);
            return -1;
        }
        cn->batch = nbt;
        cn->capbatch = ncap;
    }
    cn->batch[cn->nbatch++] = m;
    /* Remembered until acknowledged, so that giving the partition up can
     * NAK it; without memory it simply comes back after ack_wait. */
    struct nats_unacked_list *ul = &cn->unacked[p];
    if (ul->n == ul->cap) {
        size_t ncap = ul->cap ? ul->cap * 2 : 64;
        struct nats_unacked *nv = realloc(ul->v, ncap * sizeof *nv);
        if (nv) {
            ul->v = nv;
            ul->cap = ncap;
        }
    }
    if (ul->n < ul->cap) {
        char *reply = strdup(natsMsg_GetReply(m));
        if (reply)
            ul->v[ul->n++] = (struct nats_unacked){sseq, reply};
    }
    /* Key and id go to the arena (the key needs its NUL); offsets are
     * turned into pointers when the batch is complete. */
    *offs = cn->arena.len;
    core_buf_append(&cn->arena, d + 4, kl);
    core_buf_putc(&cn->arena, '\0');
    core_buf_printf(&cn->arena, "%llu", (unsigned long long)sseq);
    core_buf_putc(&cn->arena, '\0');
    *out = (struct bus_msg){
        .stream = cn->base.stream,
        .partition = p,
        .key_len = kl,
        /* libnats keeps a NUL after the data */
        .payload = d + 4 + kl,
        .len = (size_t)dl - 4 - kl,
        /* A new generation counts from 1 what an older one delivered. */
        .deliveries = delivered > 1                ? delivered
                      : sseq <= cn->redo_upto[p] ? 2
                                                 : 1,
        .seq = sseq,
        .ref = m,
    };
    return 0;
}

static int nats_fetch(struct bus_consumer *c, struct bus_msg *out, size_t max,
                      int timeout_ms, size_t *n)
{
    struct nats_consumer *cn = (struct nats_consumer *)c;
    batch_release(cn);
    core_buf_reset(&cn->arena);
    size_t *offs = calloc(max, sizeof *offs);
    if (!offs)
        return CORE_ENOMEM;
    int err = CORE_OK;
    uint64_t now = core_time_mono_ns();
    uint64_t deadline = now + (uint64_t)timeout_ms * 1000000;
    for (uint32_t p = 0; p < c->nparts; p++) {
        if (!c->held[p])
            continue;
        if (cn->pull[p].active && now >= cn->pull[p].until_ns)
            cn->pull[p].active = false; /* its end was lost */
        if (!cn->pull[p].active) {
            err = pull_request(cn, p, max, timeout_ms);
            if (err)
                goto out;
        }
    }
    /* Messages set aside while a partition was given up come first. */
    size_t q = 0;
    for (; q < cn->nqueue && *n < max; q++) {
        int r = batch_add(cn, cn->queue[q], &out[*n], &offs[*n]);
        if (r < 0) {
            q++;
            err = CORE_ENOMEM;
            break;
        }
        if (r == 0)
            (*n)++;
    }
    if (q) {
        memmove(cn->queue, cn->queue + q,
                (cn->nqueue - q) * sizeof *cn->queue);
        cn->nqueue -= q;
    }
    if (err)
        goto out;
    if (c->nheld == 0 && *n == 0) {
        poll(NULL, 0, timeout_ms);
        goto out;
    }
    while (*n < max) {
        int64_t wait;
        if (*n == 0) {
            now = core_time_mono_ns();
            if (now >= deadline)
                break;
            wait = (int64_t)((deadline - now + 999999) / 1000000);
        } else {
            int pending = 0, bytes = 0;
            natsSubscription_GetPending(cn->sub, &pending, &bytes);
            if (pending <= 0)
                break;
            wait = 1000;
        }
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, cn->sub, wait);
        if (s == NATS_TIMEOUT)
            break;
        if (s != NATS_OK) {
            err = fail("next message", s);
            break;
        }
        if (!is_js_msg(m)) {
            status_seen(cn, m);
            natsMsg_Destroy(m);
            continue;
        }
        pull_count(cn, m);
        int r = batch_add(cn, m, &out[*n], &offs[*n]);
        if (r < 0) {
            err = CORE_ENOMEM;
            break;
        }
        if (r == 0)
            (*n)++;
    }
out:
    if (cn->arena.oom && !err)
        err = CORE_ENOMEM;
    if (err) {
        for (size_t i = 0; i < cn->nbatch; i++)
            nak(c->bus, cn->batch[i]);
        batch_release(cn);
        *n = 0;
    }
    for (size_t i = 0; i < *n; i++) {
        out[i].key = cn->arena.data + offs[i];
        out[i].id = out[i].key + out[i].key_len + 1;
    }
    free(offs);
    return err;
}

static int nats_ack(struct bus_consumer *c, const struct bus_msg *msgs,
                    size_t n)
{
    struct nats_consumer *cn = (struct nats_consumer *)c;
    struct nats_bus *nb = c->bus->impl;
    for (size_t i = 0; i < n; i++) {
        /* Acks usually come in delivery order: the search ends early. */
        struct nats_unacked_list *ul = &cn->unacked[msgs[i].partition];
        size_t k = 0;
        while (k < ul->n && ul->v[k].seq != msgs[i].seq)
            k++;
        if (k == ul->n)
            continue; /* not ours (any more): acked or handed over */
        natsStatus s =
            natsConnection_Publish(nb->nc, ul->v[k].reply, "+ACK", 4);
        if (s != NATS_OK)
            return fail("ack", s);
        free(ul->v[k].reply);
        memmove(&ul->v[k], &ul->v[k + 1], (ul->n - k - 1) * sizeof *ul->v);
        ul->n--;
    }
    /* A round trip: the server has processed the acks when it answers. */
    natsStatus s = natsConnection_FlushTimeout(nb->nc, 10000);
    return s == NATS_OK ? CORE_OK : fail("ack flush", s);
}

/* ---------------------------------------------------------------- pub/sub */

struct nats_sub {
    struct bus *bus; /* first, as bus_unsubscribe expects */
    natsSubscription *sub;
    char *channel;
    bus_message_cb cb;
    void *arg;
};

static void channel_subject(char *out, size_t cap, const char *channel)
{
    snprintf(out, cap, "argus.bc.%s", channel);
}

static void sub_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                    void *closure)
{
    struct nats_sub *s = closure;
    s->cb(s->channel, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
          s->arg);
    natsMsg_Destroy(m);
}

static int nats_subscribe(struct bus *bus, const char *channel,
                          bus_message_cb cb, void *arg, struct bus_sub **out)
{
    struct nats_bus *nb = bus->impl;
    struct nats_sub *s = calloc(1, sizeof *s);
    if (!s || !(s->channel = strdup(channel))) {
        free(s);
        return CORE_ENOMEM;
    }
    s->bus = bus;
    s->cb = cb;
    s->arg = arg;
    char subject[BUS_NAME_MAX + 16];
    channel_subject(subject, sizeof subject, channel);
    natsStatus st = natsConnection_Subscribe(&s->sub, nb->nc, subject,
                                             sub_msg, s);
    /* The round trip makes the server know the subscription on return. */
    if (st == NATS_OK)
        st = natsConnection_FlushTimeout(nb->nc, 5000);
    if (st != NATS_OK) {
        if (s->sub)
            natsSubscription_Destroy(s->sub);
        free(s->channel);
        free(s);
        return fail("subscribe", st);
    }
    *out = (struct bus_sub *)s;
    return CORE_OK;
}

static void nats_unsubscribe(struct bus_sub *sub)
{
    struct nats_sub *s = (struct nats_sub *)sub;
    /* Drain: unsubscribe, finish the messages already received, and only
     * then return, so the callback is not running any more. */
    if (natsSubscription_Drain(s->sub) == NATS_OK)
        natsSubscription_WaitForDrainCompletion(s->sub, 10000);
    else
        natsSubscription_Unsubscribe(s->sub);
    natsSubscription_Destroy(s->sub);
    free(s->channel);
    free(s);
}

static int nats_broadcast(struct bus *bus, const char *channel,
                          const void *payload, size_t len)
{
    struct nats_bus *nb = bus->impl;
    char subject[BUS_NAME_MAX + 16];
    channel_subject(subject, sizeof subject, channel);
    if (len > INT32_MAX)
        return CORE_ETOOBIG;
    natsStatus s = natsConnection_Publish(nb->nc, subject, payload, (int)len);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(nb->nc, 5000);
    return s == NATS_OK ? CORE_OK : fail("broadcast", s);
}

const struct bus_ops bus_nats_ops = {
    .name = "nats",
    .scheme = "nats",
    .publishers = NATS_PUBLISHERS,
    .open = nats_open,
    .close = nats_close,
    .publish = nats_publish,
    .group_declare = nats_group_declare,
    .group_lag = nats_group_lag,
    .consumer_alloc = nats_consumer_alloc,
    .consumer_init = nats_consumer_init,
    .consumer_free = nats_consumer_free,
    .member_beat = nats_member_beat,
    .member_leave = nats_member_leave,
    .lease_acquire = nats_lease_acquire,
    .lease_renew = nats_lease_renew,
    .lease_release = nats_lease_release,
    .partition_gained = nats_partition_gained,
    .partition_lost = nats_partition_lost,
    .fetch = nats_fetch,
    .ack = nats_ack,
    .subscribe = nats_subscribe,
    .unsubscribe = nats_unsubscribe,
    .broadcast = nats_broadcast,
};
