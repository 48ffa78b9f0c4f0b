/*
 * The in-process backend: the same semantics as Redis and JetStream (groups,
 * leases, pending entries, redelivery, bounded partitions) in memory, for
 * `argus serve` and for tests. Every bus opened with "mem" in a process
 * shares one state, as clients of one server would.
 *
 * A partition is a ring of entries with sequence numbers first..end-1. Each
 * group keeps, per partition, the next sequence to deliver and the sorted
 * list of delivered, unacknowledged entries (its pending list). Entries
 * below every group's pending list and next sequence are freed.
 */
#include "bus_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mem_entry {
    char *data; /* key, NUL, payload, NUL */
    size_t key_len;
    size_t len;
};

struct mem_part {
    struct mem_entry *ring; /* entry of seq s is ring[s % cap] */
    size_t cap;
    uint64_t first, end;
};

struct mem_pending {
    uint64_t seq;
    uint32_t deliveries;
};

/* A group's state on one partition. */
struct mem_gpart {
    uint64_t next;
    struct mem_pending *pend;
    size_t npend, cappend;
    const struct bus_consumer *holder;
    uint64_t lease_until_ns;
};

struct mem_group {
    struct mem_group *next;
    char *name;
    struct mem_gpart *parts;
    uint32_t members;
};

struct mem_stream {
    struct mem_stream *next;
    char *name;
    uint32_t nparts;
    struct mem_part *parts;
    struct mem_group *groups;
};

struct mem_sub {
    struct bus *bus; /* first, as bus_unsubscribe expects */
    struct mem_sub *next;
    char *channel;
    bus_message_cb cb;
    void *arg;
};

/* The process-wide state, shared by every open "mem" bus. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled on publish and lease release */
    bool cond_ready;
    unsigned refs;
    struct mem_stream *streams;
    pthread_rwlock_t sublock;
    struct mem_sub *subs;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .sublock = PTHREAD_RWLOCK_INITIALIZER};

struct mem_consumer {
    struct bus_consumer base;
    struct mem_stream *stream;
    struct mem_group *group;
    bool *claim;         /* [nparts] pending entries still to take over */
    uint64_t *claim_seq; /* [nparts] next pending seq to take over */
    uint32_t rr;         /* partition to look at first */
    struct core_buf arena;
    size_t *offs;        /* per delivered message: offset of its data */
    size_t noffs, capoffs;
};

/* --------------------------------------------------------------- streams */

static void stream_free(struct mem_stream *s)
{
    for (uint32_t p = 0; p < s->nparts; p++) {
        struct mem_part *pt = &s->parts[p];
        for (uint64_t q = pt->first; q < pt->end; q++)
            free(pt->ring[q % pt->cap].data);
        free(pt->ring);
    }
    free(s->parts);
    struct mem_group *gr = s->groups;
    while (gr) {
        struct mem_group *nx = gr->next;
        for (uint32_t p = 0; p < s->nparts; p++)
            free(gr->parts[p].pend);
        free(gr->parts);
        free(gr->name);
        free(gr);
        gr = nx;
    }
    free(s->name);
    free(s);
}

/* Called with g.lock held. */
static struct mem_stream *stream_get(const char *name, uint32_t nparts,
                                     bool create)
{
    for (struct mem_stream *s = g.streams; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    if (!create)
        return NULL;
    struct mem_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->name = strdup(name);
    s->nparts = nparts;
    s->parts = calloc(nparts, sizeof *s->parts);
    if (!s->name || !s->parts) {
        free(s->name);
        free(s->parts);
        free(s);
        return NULL;
    }
    s->next = g.streams;
    g.streams = s;
    return s;
}

static struct mem_group *group_get(struct mem_stream *s, const char *name,
                                   bool create)
{
    for (struct mem_group *gr = s->groups; gr; gr = gr->next)
        if (strcmp(gr->name, name) == 0)
            return gr;
    if (!create)
        return NULL;
    struct mem_group *gr = calloc(1, sizeof *gr);
    if (!gr)
        return NULL;
    gr->name = strdup(name);
    gr->parts = calloc(s->nparts, sizeof *gr->parts);
    if (!gr->name || !gr->parts) {
        free(gr->name);
        free(gr->parts);
        free(gr);
        return NULL;
    }
    /* A new group starts at the oldest retained entry. */
    for (uint32_t p = 0; p < s->nparts; p++)
        gr->parts[p].next = s->parts[p].first;
    gr->next = s->groups;
    s->groups = gr;
    return gr;
}

/* Frees the entries every group is done with. Without groups nothing is
 * freed: the partition fills up to its capacity and publish then fails. */
static void part_trim(struct mem_stream *s, uint32_t p)
{
    if (!s->groups)
        return;
    struct mem_part *pt = &s->parts[p];
    uint64_t floor = pt->end;
    for (struct mem_group *gr = s->groups; gr; gr = gr->next) {
        struct mem_gpart *gp = &gr->parts[p];
        uint64_t f = gp->npend ? gp->pend[0].seq : gp->next;
        if (f < floor)
            floor = f;
    }
    for (; pt->first < floor; pt->first++) {
        free(pt->ring[pt->first % pt->cap].data);
        pt->ring[pt->first % pt->cap].data = NULL;
    }
}

static int part_append(struct mem_stream *s, uint32_t p, uint64_t capacity,
                       const struct bus_pub *m)
{
    struct mem_part *pt = &s->parts[p];
    if (pt->end - pt->first >= capacity) {
        part_trim(s, p);
        if (pt->end - pt->first >= capacity)
            return CORE_EOVERLOAD;
    }
    if (pt->end - pt->first == pt->cap) {
        /* Grow the ring (up to the capacity), re-placing by the new
         * modulus. */
        size_t ncap = pt->cap ? pt->cap * 2 : 64;
        if (ncap > capacity)
            ncap = (size_t)capacity;
        struct mem_entry *nr = calloc(ncap, sizeof *nr);
        if (!nr)
            return CORE_ENOMEM;
        for (uint64_t q = pt->first; q < pt->end; q++)
            nr[q % ncap] = pt->ring[q % pt->cap];
        free(pt->ring);
        pt->ring = nr;
        pt->cap = ncap;
    }
    char *data = malloc(m->key_len + m->len + 2);
    if (!data)
        return CORE_ENOMEM;
    if (m->key_len)
        memcpy(data, m->key, m->key_len);
    data[m->key_len] = '\0';
    if (m->len)
        memcpy(data + m->key_len + 1, m->payload, m->len);
    data[m->key_len + 1 + m->len] = '\0';
    pt->ring[pt->end % pt->cap] =
        (struct mem_entry){.data = data, .key_len = m->key_len, .len = m->len};
    pt->end++;
    return CORE_OK;
}

/* ------------------------------------------------------------------ open */

static int mem_open(struct bus *bus)
{
    pthread_mutex_lock(&g.lock);
    int err = CORE_OK;
    if (!g.cond_ready) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (pthread_cond_init(&g.cond, &ca) != 0)
            err = CORE_ENOMEM;
        else
            g.cond_ready = true;
        pthread_condattr_destroy(&ca);
    }
    if (!err)
        g.refs++;
    pthread_mutex_unlock(&g.lock);
    return err;
}

/* The last close drops every stream, as a restarted server would without
 * persistence. */
static void mem_close(struct bus *bus)
{
    pthread_mutex_lock(&g.lock);
    if (--g.refs == 0) {
        while (g.streams) {
            struct mem_stream *s = g.streams;
            g.streams = s->next;
            stream_free(s);
        }
    }
    pthread_mutex_unlock(&g.lock);
}

static int mem_publish(struct bus *bus, const char *stream,
                       const struct bus_pub *msgs, const uint32_t *parts,
                       size_t n)
{
    int err = CORE_OK;
    pthread_mutex_lock(&g.lock);
    struct mem_stream *s = stream_get(stream, bus->cfg.partitions, true);
    if (!s) {
        err = CORE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n && !err; i++)
        err = part_append(s, parts[i] % s->nparts, bus->cfg.capacity,
                          &msgs[i]);
    pthread_cond_broadcast(&g.cond);
out:
    pthread_mutex_unlock(&g.lock);
    return err;
}

static int mem_group_declare(struct bus *bus, const char *stream,
                             const char *group)
{
    int err = CORE_OK;
    pthread_mutex_lock(&g.lock);
    struct mem_stream *s = stream_get(stream, bus->cfg.partitions, true);
    if (!s || !group_get(s, group, true))
        err = CORE_ENOMEM;
    pthread_mutex_unlock(&g.lock);
    return err;
}

static int mem_group_lag(struct bus *bus, const char *stream,
                         const char *group, uint64_t *lag)
{
    int err = CORE_ENOTFOUND;
    pthread_mutex_lock(&g.lock);
    struct mem_stream *s = stream_get(stream, 0, false);
    struct mem_group *gr = s ? group_get(s, group, false) : NULL;
    if (gr) {
        uint64_t sum = 0;
        for (uint32_t p = 0; p < s->nparts; p++)
            sum += s->parts[p].end - gr->parts[p].next + gr->parts[p].npend;
        *lag = sum;
        err = CORE_OK;
    }
    pthread_mutex_unlock(&g.lock);
    return err;
}

/* ------------------------------------------------------------- consumers */

static int mem_consumer_alloc(struct bus *bus, struct bus_consumer **out)
{
    struct mem_consumer *mc = calloc(1, sizeof *mc);
    if (!mc)
        return CORE_ENOMEM;
    core_buf_init(&mc->arena);
    *out = &mc->base;
    return CORE_OK;
}

static int mem_consumer_init(struct bus_consumer *c)
{
    struct mem_consumer *mc = (struct mem_consumer *)c;
    mc->claim = calloc(c->nparts, sizeof *mc->claim);
    mc->claim_seq = calloc(c->nparts, sizeof *mc->claim_seq);
    if (!mc->claim || !mc->claim_seq)
        return CORE_ENOMEM;
    int err = CORE_OK;
    pthread_mutex_lock(&g.lock);
    mc->stream = stream_get(c->stream, 0, false);
    mc->group = mc->stream ? group_get(mc->stream, c->group, false) : NULL;
    if (!mc->group)
        err = CORE_ENOTFOUND;
    else if (mc->stream->nparts != c->nparts)
        err = CORE_EINVAL; /* opened with other partitions than the stream */
    else
        mc->group->members++;
    pthread_mutex_unlock(&g.lock);
    if (err)
        mc->group = NULL;
    return err;
}

static void mem_consumer_free(struct bus_consumer *c)
{
    struct mem_consumer *mc = (struct mem_consumer *)c;
    free(mc->claim);
    free(mc->claim_seq);
    free(mc->offs);
    core_buf_fini(&mc->arena);
    free(mc);
}

static int mem_member_beat(struct bus_consumer *c, uint32_t *members)
{
    struct mem_consumer *mc = (struct mem_consumer *)c;
    pthread_mutex_lock(&g.lock);
    *members = mc->group->members;
    pthread_mutex_unlock(&g.lock);
    return CORE_OK;
}

static void mem_member_leave(struct bus_consumer *c)
{
    struct mem_consumer *mc = (struct mem_consumer *)c;
    if (!mc->group)
        return;
    pthread_mutex_lock(&g.lock);
    mc->group->members--;
    pthread_mutex_unlock(&g.lock);
}

static int mem_lease_acquire(struct bus_consumer *c, uint32_t p, bool *ok)
{
    struct mem_consumer *mc = (struct mem_consumer *)c;
    uint64_t now = core_time_mono_ns();
    pthread_mutex_lock(&g.lock);
    struct mem_gpart *gp = &mc->group->parts[p];
    *ok = !gp->holder || gp->holder == c || gp->lease_until_ns <= now;
    if (*ok) {
        gp->holder = c;
        gp->lease_until_ns = now + (uint64_t)c->bus->cfg.lease_ms * 1000000;
    }
    pthread_mutex_unlock(&g.lock);
    return CORE_OK;
}

static int mem_lease_renew(struct bus_consumer *c, uint32_t p, bool *ok)
{
    struct mem_consumer *mc = (struct mem_consumer *)c;
    pthread_mutex_lock(&g.lock);
    struct mem_gpart *gp = &mc->group->parts[p];
    *ok = gp->holder == c;
    if (*ok)
        gp->lease_until_ns = core_time_mono_ns() +
                             (uint64_t)c->bus->cfg.lease_ms * 1000000;
    pthread_mutex_unlock(&g.lock);
    return CORE_OK;
}

static void mem_lease_release(struct bus_consumer *c, uint32_t p)
{
    struct mem_consumer *mc = (struct mem_consumer *)c;
    pthread_mutex_lock(&g.lock);
    struct mem_gpart *gp = &mc->group->parts[p];
    if (gp->holder == c)
        gp->holder = NULL;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
}

/* A new holder first takes over the partition's pending entries (those a
 * previous holder received and did not acknowledge), in order. */
static void mem_partition_gained(struct bus_consumer *c, uint32_t p)
{
    struct mem_consumer *mc = (struct mem_consumer *)c;
    mc->claim[p] = true;
    mc->claim_seq[p] = 0;
}

static void mem_partition_lost(struct bus_consumer *c, uint32_t p)
{
    struct mem_consumer *mc = (struct mem_consumer *)c;
    mc->claim[p] = false;
}

/* Called with g.lock held: appends entry seq of partition p to the batch. */
static int deliver(struct mem_consumer *mc, uint32_t p, uint64_t seq,
                   uint32_t deliveries, struct bus_msg *m)
{
    struct mem_part *pt = &mc->stream->parts[p];
    const struct mem_entry *e = &pt->ring[seq % pt->cap];
    size_t off = mc->arena.len;
    core_buf_append(&mc->arena, e->data, e->key_len + e->len + 2);
    core_buf_printf(&mc->arena, "%u-%llu", p, (unsigned long long)seq);
    core_buf_putc(&mc->arena, '\0');
    if (mc->arena.oom)
        return CORE_ENOMEM;
    mc->offs[mc->noffs++] = off;
    *m = (struct bus_msg){
        .stream = mc->base.stream,
        .partition = p,
        .key_len = e->key_len,
        .len = e->len,
        .deliveries = deliveries,
        .seq = seq,
    };
    return CORE_OK;
}

static int pending_add(struct mem_gpart *gp, uint64_t seq)
{
    if (gp->npend == gp->cappend) {
        size_t ncap = gp->cappend ? gp->cappend * 2 : 16;
        struct mem_pending *np = realloc(gp->pend, ncap * sizeof *np);
        if (!np)
            return CORE_ENOMEM;
        gp->pend = np;
        gp->cappend = ncap;
    }
    gp->pend[gp->npend++] = (struct mem_pending){seq, 1};
    return CORE_OK;
}

/* Called with g.lock held: fills out[] from the held partitions. */
static int collect(struct mem_consumer *mc, struct bus_msg *out, size_t max,
                   size_t *n)
{
    struct bus_consumer *c = &mc->base;
    for (uint32_t i = 0; i < c->nparts && *n < max; i++) {
        uint32_t p = (mc->rr + i) % c->nparts;
        if (!c->held[p])
            continue;
        struct mem_gpart *gp = &mc->group->parts[p];
        if (mc->claim[p]) {
            for (size_t k = 0; k < gp->npend && *n < max; k++) {
                struct mem_pending *pe = &gp->pend[k];
                if (pe->seq < mc->claim_seq[p])
                    continue;
                pe->deliveries++;
                int err = deliver(mc, p, pe->seq, pe->deliveries, &out[*n]);
                if (err)
                    return err;
                (*n)++;
                mc->claim_seq[p] = pe->seq + 1;
            }
            if (*n >= max)
                break;
            mc->claim[p] = false;
        }
        struct mem_part *pt = &mc->stream->parts[p];
        while (gp->next < pt->end && *n < max) {
            int err = pending_add(gp, gp->next);
            if (!err)
                err = deliver(mc, p, gp->next, 1, &out[*n]);
            if (err)
                return err;
            gp->next++;
            (*n)++;
        }
    }
    mc->rr = (mc->rr + 1) % c->nparts;
    return CORE_OK;
}

static int mem_fetch(struct bus_consumer *c, struct bus_msg *out, size_t max,
                     int timeout_ms, size_t *n)
{
    struct mem_consumer *mc = (struct mem_consumer *)c;
    core_buf_reset(&mc->arena);
    mc->noffs = 0;
    if (max > mc->capoffs) {
        size_t *no = realloc(mc->offs, max * sizeof *no);
        if (!no)
            return CORE_ENOMEM;
        mc->offs = no;
        mc->capoffs = max;
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    int err = CORE_OK;
    pthread_mutex_lock(&g.lock);
    for (;;) {
        err = collect(mc, out, max, n);
        if (err || *n || timeout_ms == 0)
            break;
        if (pthread_cond_timedwait(&g.cond, &g.lock, &until) != 0)
            break;
    }
    pthread_mutex_unlock(&g.lock);
    /* The arena may have moved while it grew: point the messages at it now
     * that it is complete. */
    for (size_t i = 0; i < *n; i++) {
        char *d = mc->arena.data + mc->offs[i];
        out[i].key = d;
        out[i].payload = d + out[i].key_len + 1;
        out[i].id = d + out[i].key_len + out[i].len + 2;
    }
    return err;
}

static int mem_ack(struct bus_consumer *c, const struct bus_msg *msgs,
                   size_t n)
{
    struct mem_consumer *mc = (struct mem_consumer *)c;
    pthread_mutex_lock(&g.lock);
    for (size_t i = 0; i < n; i++) {
        struct mem_gpart *gp = &mc->group->parts[msgs[i].partition];
        size_t lo = 0, hi = gp->npend;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (gp->pend[mid].seq < msgs[i].seq)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < gp->npend && gp->pend[lo].seq == msgs[i].seq) {
            memmove(&gp->pend[lo], &gp->pend[lo + 1],
                    (gp->npend - lo - 1) * sizeof *gp->pend);
            gp->npend--;
        }
    }
    for (size_t i = 0; i < n; i++)
        part_trim(mc->stream, msgs[i].partition);
    pthread_mutex_unlock(&g.lock);
    return CORE_OK;
}

/* ---------------------------------------------------------------- pub/sub */

static int mem_subscribe(struct bus *bus, const char *channel,
                         bus_message_cb cb, void *arg, struct bus_sub **out)
{
    struct mem_sub *s = calloc(1, sizeof *s);
    if (!s || !(s->channel = strdup(channel))) {
        free(s);
        return CORE_ENOMEM;
    }
    s->bus = bus;
    s->cb = cb;
    s->arg = arg;
    pthread_rwlock_wrlock(&g.sublock);
    s->next = g.subs;
    g.subs = s;
    pthread_rwlock_unlock(&g.sublock);
    *out = (struct bus_sub *)s;
    return CORE_OK;
}

static void mem_unsubscribe(struct bus_sub *sub)
{
    struct mem_sub *s = (struct mem_sub *)sub;
    pthread_rwlock_wrlock(&g.sublock);
    for (struct mem_sub **pp = &g.subs; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    pthread_rwlock_unlock(&g.sublock);
    free(s->channel);
    free(s);
}

static int mem_broadcast(struct bus *bus, const char *channel,
                         const void *payload, size_t len)
{
    pthread_rwlock_rdlock(&g.sublock);
    for (struct mem_sub *s = g.subs; s; s = s->next)
        if (strcmp(s->channel, channel) == 0)
            s->cb(channel, payload, len, s->arg);
    pthread_rwlock_unlock(&g.sublock);
    return CORE_OK;
}

const struct bus_ops bus_mem_ops = {
    .name = "mem",
    .scheme = "mem",
    .open = mem_open,
    .close = mem_close,
    .publish = mem_publish,
    .group_declare = mem_group_declare,
    .group_lag = mem_group_lag,
    .consumer_alloc = mem_consumer_alloc,
    .consumer_init = mem_consumer_init,
    .consumer_free = mem_consumer_free,
    .member_beat = mem_member_beat,
    .member_leave = mem_member_leave,
    .lease_acquire = mem_lease_acquire,
    .lease_renew = mem_lease_renew,
    .lease_release = mem_lease_release,
    .partition_gained = mem_partition_gained,
    .partition_lost = mem_partition_lost,
    .fetch = mem_fetch,
    .ack = mem_ack,
    .subscribe = mem_subscribe,
    .unsubscribe = mem_unsubscribe,
    .broadcast = mem_broadcast,
};
