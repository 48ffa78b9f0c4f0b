/*
 * The Redis Streams backend (hiredis, blocking connections).
 *
 * Keys, for stream S, group G and partition p:
 *   argus:S:p           the partition: a Redis stream, fields k=key v=payload
 *   argus:S:G:lease:p   the lease: the holder's token, with a PX expiry
 *   argus:S:G:members   live consumers: a sorted set, token → expiry (ms)
 *
 * Each group is a Redis consumer group on every partition, created at id 0
 * so that it sees the entries still retained. Publishing runs a script that
 * appends only while the partition holds fewer than `capacity` entries,
 * first trimming (XTRIM MINID) the entries every group is done with: below
 * each group's oldest pending entry, or its last-delivered id. A consumer
 * that takes a partition over first claims (XAUTOCLAIM) the pending entries
 * of the consumers before it, then reads new ones (XREADGROUP >).
 *
 * Durability is the server's: publish returns after the server's reply,
 * which with `appendonly yes` and `appendfsync always` means on disk, with
 * `everysec` at most a second later.
 *
 * Connections: one for publish, lag and broadcast, shared under a mutex;
 * one per consumer (it blocks in XREADGROUP); one per subscription, read by
 * its own thread.
 */
#include "bus_internal.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SUB "bus.redis"

/* ---------------------------------------------------------------- scripts */

struct script {
    const char *body;
    char sha[41];
};

/* Trims KEYS[1] to the entries some group still needs: below each group's
 * oldest pending entry, or up to and including its last-delivered id when
 * nothing is pending, nobody needs an entry. Without groups nothing is
 * trimmed. */
#define TRIM_FUNCTION                                                       \
    "local function lt(a, b)\n"                                             \
    "  local am, as = string.match(a, '(%d+)-(%d+)')\n"                     \
    "  local bm, bs = string.match(b, '(%d+)-(%d+)')\n"                     \
    "  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), "         \
    "tonumber(bs)\n"                                                        \
    "  return am < bm or (am == bm and as < bs)\n"                          \
    "end\n"                                                                 \
    "local function trim(key)\n"                                            \
    "  local floor = nil\n"                                                 \
    "  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do\n"         \
    "    local name, pending, last\n"                                       \
    "    for i = 1, #g, 2 do\n"                                             \
    "      if g[i] == 'name' then name = g[i + 1]\n"                        \
    "      elseif g[i] == 'pending' then pending = g[i + 1]\n"              \
    "      elseif g[i] == 'last-delivered-id' then last = g[i + 1] end\n"   \
    "    end\n"                                                             \
    "    local lm, ls = string.match(last, '(%d+)-(%d+)')\n"                \
    "    local f = lm .. '-' .. (tonumber(ls) + 1)\n"                         \
    "    if pending > 0 then\n"                                             \
    "      f = redis.call('XPENDING', key, name, '-', '+', 1)[1][1]\n"      \
    "    end\n"                                                             \
    "    if floor == nil or lt(f, floor) then floor = f end\n"              \
    "  end\n"                                                               \
    "  if floor then redis.call('XTRIM', key, 'MINID', floor) end\n"        \
    "end\n"

/* KEYS[1] partition, KEYS[2] its running total of weights; ARGV capacity,
 * key, payload, weight. Appends only below the capacity, trimming first
 * when the partition looks full. Each entry carries its weight (w) and the
 * running total after it (c), so what the partition holds is the total
 * less the running total before its first entry: two O(1) reads, whatever
 * the trim removed. (Entries from before weights existed count one each.)
 * A partition that holds nothing takes any entry, however heavy. */
static struct script script_publish = {
    .body = TRIM_FUNCTION
    "local cap = tonumber(ARGV[1])\n"
    "local w = tonumber(ARGV[4])\n"
    "local function used(key)\n"
    "  local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]\n"
    "  if not first then return 0 end\n"
    "  local f, c, fw = first[2], nil, 1\n"
    "  for i = 1, #f, 2 do\n"
    "    if f[i] == 'c' then c = tonumber(f[i + 1])\n"
    "    elseif f[i] == 'w' then fw = tonumber(f[i + 1]) end\n"
    "  end\n"
    "  if not c then return redis.call('XLEN', key) end\n"
    "  return tonumber(redis.call('GET', KEYS[2]) or '0') - (c - fw)\n"
    "end\n"
    "local u = used(KEYS[1])\n"
    "if u > 0 and u + w > cap then\n"
    "  trim(KEYS[1])\n"
    "  u = used(KEYS[1])\n"
    "  if u > 0 and u + w > cap then\n"
    "    return redis.error_reply('OVERLOAD partition full')\n"
    "  end\n"
    "end\n"
    "local n = redis.call('INCRBY', KEYS[2], w)\n"
    "return redis.call('XADD', KEYS[1], '*', 'k', ARGV[2], 'v', ARGV[3], "
    "'c', n, 'w', w)\n",
};

/* KEYS[1] partition. */
static struct script script_trim = {
    .body = TRIM_FUNCTION "trim(KEYS[1])\nreturn 0\n",
};

/* KEYS[1] lease; ARGV token, ms. */
static struct script script_renew = {
    .body = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
            "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
            "end\n"
            "return 0\n",
};

/* KEYS[1] lease; ARGV token. */
static struct script script_release = {
    .body = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
            "  return redis.call('DEL', KEYS[1])\n"
            "end\n"
            "return 0\n",
};

/* KEYS[1] members; ARGV token, ms. The server's clock decides expiry, so
 * consumers on hosts with skewed clocks agree. */
static struct script script_beat = {
    .body = "local t = redis.call('TIME')\n"
            "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) "
            "/ 1000)\n"
            "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
            "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
            "redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)\n"
            "return redis.call('ZCARD', KEYS[1])\n",
};

static struct script *const scripts[] = {
    &script_publish, &script_trim, &script_renew, &script_release,
    &script_beat};
static pthread_mutex_t scripts_lock = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------ connections */

struct rconn {
    redisContext *ctx;
    const struct bus *bus;
    int timeout_ms;
};

/* Connects (again, after an error) when needed. */
static int rconn_ready(struct rconn *rc)
{
    if (rc->ctx && !rc->ctx->err)
        return CORE_OK;
    if (rc->ctx) {
        core_log_warn(SUB, "msg=reconnecting err=\"%s\"", rc->ctx->errstr);
        redisFree(rc->ctx);
        rc->ctx = NULL;
    }
    struct timeval tv = {rc->timeout_ms / 1000,
                         (rc->timeout_ms % 1000) * 1000};
    struct timeval ctv = {5, 0};
    rc->ctx = redisConnectWithTimeout(rc->bus->host, rc->bus->port, ctv);
    if (!rc->ctx || rc->ctx->err) {
        core_log_error(SUB, "msg=\"cannot connect\" host=%s port=%d err=\"%s\"",
                       rc->bus->host, rc->bus->port,
                       rc->ctx ? rc->ctx->errstr : "out of memory");
        if (rc->ctx)
            redisFree(rc->ctx);
        rc->ctx = NULL;
        return CORE_EIO;
    }
    redisSetTimeout(rc->ctx, tv);
    return CORE_OK;
}

static void rconn_fini(struct rconn *rc)
{
    if (rc->ctx)
        redisFree(rc->ctx);
    rc->ctx = NULL;
}

/* Runs one command; *out is the reply (caller frees) unless it is an error
 * reply, which is logged and turned into CORE_EIO (or CORE_EOVERLOAD for
 * the publish script's refusal). */
static int reply_check(redisReply *r, redisReply **out)
{
    *out = NULL;
    if (!r)
        return CORE_EIO;
    if (r->type == REDIS_REPLY_ERROR) {
        int err = strncmp(r->str, "OVERLOAD", 8) == 0 ? CORE_EOVERLOAD
                                                       : CORE_EIO;
        if (err == CORE_EIO)
            core_log_warn(SUB, "msg=\"server error\" err=\"%s\"", r->str);
        freeReplyObject(r);
        return err;
    }
    *out = r;
    return CORE_OK;
}

static int rcmd(struct rconn *rc, redisReply **out, int argc,
                const char **argv, const size_t *lens)
{
    *out = NULL;
    int err = rconn_ready(rc);
    if (err)
        return err;
    return reply_check(redisCommandArgv(rc->ctx, argc, argv, lens), out);
}

/* EVALSHA, falling back to EVAL when the server lost its script cache. */
static int rscript(struct rconn *rc, redisReply **out, struct script *s,
                   int nkeys, int nargs, const char **args,
                   const size_t *lens)
{
    const char *argv[8];
    size_t alen[8];
    char nk[8];
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = s->sha;
    argv[2] = nk;
    for (int i = 0; i < nargs; i++) {
        argv[3 + i] = args[i];
        alen[3 + i] = lens ? lens[i] : strlen(args[i]);
    }
    alen[0] = 7;
    alen[1] = strlen(s->sha);
    alen[2] = strlen(nk);
    int err = rconn_ready(rc);
    if (err)
        return err;
    redisReply *r = redisCommandArgv(rc->ctx, 3 + nargs, argv, alen);
    if (r && r->type == REDIS_REPLY_ERROR &&
        strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        argv[0] = "EVAL";
        alen[0] = 4;
        argv[1] = s->body;
        alen[1] = strlen(s->body);
        r = redisCommandArgv(rc->ctx, 3 + nargs, argv, alen);
    }
    return reply_check(r, out);
}

/* ------------------------------------------------------------------ bus */

struct redis_bus {
    pthread_mutex_t lock; /* guards main */
    struct rconn main;
};

static void key_part(char *out, size_t cap, const char *stream, uint32_t p)
{
    snprintf(out, cap, "argus:%s:%u", stream, p);
}

static int redis_open(struct bus *bus)
{
    if (!bus->host)
        return CORE_EINVAL;
    struct redis_bus *rb = calloc(1, sizeof *rb);
    if (!rb)
        return CORE_ENOMEM;
    pthread_mutex_init(&rb->lock, NULL);
    rb->main = (struct rconn){.bus = bus, .timeout_ms = 10000};
    int err = rconn_ready(&rb->main);
    /* Load the scripts into this server's cache. A script's SHA1 is the
     * same on every server, so the first open records it and later opens
     * leave it alone (other threads read it without the lock). */
    pthread_mutex_lock(&scripts_lock);
    for (size_t i = 0; !err && i < sizeof scripts / sizeof scripts[0]; i++) {
        const char *argv[] = {"SCRIPT", "LOAD", scripts[i]->body};
        redisReply *r;
        err = rcmd(&rb->main, &r, 3, argv, NULL);
        if (!err) {
            if (r->type != REDIS_REPLY_STRING || r->len != 40)
                err = CORE_EIO;
            else if (!scripts[i]->sha[0])
                memcpy(scripts[i]->sha, r->str, 41);
            freeReplyObject(r);
        }
    }
    pthread_mutex_unlock(&scripts_lock);
    if (!err) {
        /* Durability depends on the server's append-only file. */
        const char *argv[] = {"CONFIG", "GET", "appendonly"};
        redisReply *r;
        if (rcmd(&rb->main, &r, 3, argv, NULL) == CORE_OK) {
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                strcmp(r->element[1]->str, "yes") != 0)
                core_log_warn(SUB, "msg=\"appendonly is off: published "
                                   "messages are not durable\"");
            freeReplyObject(r);
        }
    }
    if (err) {
        rconn_fini(&rb->main);
        pthread_mutex_destroy(&rb->lock);
        free(rb);
        return err;
    }
    bus->impl = rb;
    return CORE_OK;
}

static void redis_close(struct bus *bus)
{
    struct redis_bus *rb = bus->impl;
    rconn_fini(&rb->main);
    pthread_mutex_destroy(&rb->lock);
    free(rb);
}

static int redis_publish(struct bus *bus, const char *stream,
                         const struct bus_pub *msgs, const uint32_t *parts,
                         size_t n)
{
    struct redis_bus *rb = bus->impl;
    char cap[24];
    snprintf(cap, sizeof cap, "%llu", (unsigned long long)bus->cfg.capacity);
    pthread_mutex_lock(&rb->lock);
    int err = CORE_OK;
    /* A server that restarted has lost its script cache: the batch fails
     * with NOSCRIPT as a whole, and is sent once more after a reload. */
    for (int attempt = 0; attempt < 2; attempt++) {
        err = rconn_ready(&rb->main);
        if (err)
            goto out;
        /* Pipelined: every script call is sent, then every reply read. */
        for (size_t i = 0; i < n; i++) {
            char key[BUS_NAME_MAX + 32], total[BUS_NAME_MAX + 34], weight[12];
            key_part(key, sizeof key, stream, parts[i]);
            snprintf(total, sizeof total, "%s:n", key);
            snprintf(weight, sizeof weight, "%u",
                     msgs[i].weight ? msgs[i].weight : 1u);
            const char *argv[] = {"EVALSHA", script_publish.sha, "2", key,
                                  total, cap, msgs[i].key ? msgs[i].key : "",
                                  msgs[i].payload ? msgs[i].payload : "",
                                  weight};
            size_t lens[] = {7, 40, 1, strlen(key), strlen(total), strlen(cap),
                             msgs[i].key_len, msgs[i].len, strlen(weight)};
            redisAppendCommandArgv(rb->main.ctx, 9, argv, lens);
        }
        bool noscript = false;
        for (size_t i = 0; i < n; i++) {
            redisReply *r = NULL;
            if (redisGetReply(rb->main.ctx, (void **)&r) != REDIS_OK) {
                err = CORE_EIO;
                break;
            }
            if (r->type == REDIS_REPLY_ERROR &&
                strncmp(r->str, "NOSCRIPT", 8) == 0) {
                noscript = true;
                freeReplyObject(r);
                continue;
            }
            redisReply *ok;
            int e = reply_check(r, &ok);
            if (ok)
                freeReplyObject(ok);
            if (e && !err)
                err = e;
        }
        if (!noscript || err == CORE_EIO)
            break;
        const char *argv[] = {"SCRIPT", "LOAD", script_publish.body};
        redisReply *r;
        err = rcmd(&rb->main, &r, 3, argv, NULL);
        if (err)
            break;
        freeReplyObject(r);
    }
out:
    pthread_mutex_unlock(&rb->lock);
    return err;
}

static int redis_group_declare(struct bus *bus, const char *stream,
                               const char *group)
{
    struct redis_bus *rb = bus->impl;
    pthread_mutex_lock(&rb->lock);
    int err = rconn_ready(&rb->main);
    uint32_t np = bus->cfg.partitions;
    for (uint32_t p = 0; !err && p < np; p++) {
        char key[BUS_NAME_MAX + 32];
        key_part(key, sizeof key, stream, p);
        const char *argv[] = {"XGROUP", "CREATE", key, group, "0",
                              "MKSTREAM"};
        redisAppendCommandArgv(rb->main.ctx, 6, argv, NULL);
    }
    for (uint32_t p = 0; !err && p < np; p++) {
        redisReply *r = NULL;
        if (redisGetReply(rb->main.ctx, (void **)&r) != REDIS_OK) {
            err = CORE_EIO;
            break;
        }
        if (r->type == REDIS_REPLY_ERROR &&
            strncmp(r->str, "BUSYGROUP", 9) != 0) {
            core_log_warn(SUB, "msg=\"XGROUP CREATE failed\" err=\"%s\"",
                          r->str);
            err = CORE_EIO;
        }
        freeReplyObject(r);
    }
    pthread_mutex_unlock(&rb->lock);
    return err;
}

static const redisReply *field(const redisReply *flat, const char *name)
{
    for (size_t i = 0; i + 1 < flat->elements; i += 2)
        if (flat->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(flat->element[i]->str, name) == 0)
            return flat->element[i + 1];
    return NULL;
}

static int redis_group_lag(struct bus *bus, const char *stream,
                           const char *group, uint64_t *lag)
{
    struct redis_bus *rb = bus->impl;
    uint64_t sum = 0;
    int err = CORE_OK;
    pthread_mutex_lock(&rb->lock);
    for (uint32_t p = 0; !err && p < bus->cfg.partitions; p++) {
        char key[BUS_NAME_MAX + 32];
        key_part(key, sizeof key, stream, p);
        const char *argv[] = {"XINFO", "GROUPS", key};
        err = rconn_ready(&rb->main);
        if (err)
            break;
        redisReply *r = redisCommandArgv(rb->main.ctx, 3, argv, NULL);
        if (r && r->type == REDIS_REPLY_ERROR &&
            strstr(r->str, "no such key")) {
            freeReplyObject(r);
            err = CORE_ENOTFOUND;
            break;
        }
        err = reply_check(r, &r);
        if (err)
            break;
        const redisReply *g = NULL;
        for (size_t i = 0; i < r->elements && !g; i++) {
            const redisReply *name = field(r->element[i], "name");
            if (name && strcmp(name->str, group) == 0)
                g = r->element[i];
        }
        if (!g) {
            err = CORE_ENOTFOUND;
        } else {
            const redisReply *pend = field(g, "pending");
            const redisReply *lg = field(g, "lag");
            sum += pend ? (uint64_t)pend->integer : 0;
            if (lg && lg->type == REDIS_REPLY_INTEGER) {
                sum += (uint64_t)lg->integer;
            } else {
                /* The server cannot tell (entries were deleted in the
                 * middle): count the whole partition. */
                const char *a2[] = {"XLEN", key};
                redisReply *l;
                if (rcmd(&rb->main, &l, 2, a2, NULL) == CORE_OK) {
                    sum += (uint64_t)l->integer;
                    freeReplyObject(l);
                }
            }
        }
        freeReplyObject(r);
    }
    pthread_mutex_unlock(&rb->lock);
    *lag = sum;
    return err;
}

/* ------------------------------------------------------------- consumers */

struct redis_consumer {
    struct bus_consumer base;
    struct rconn conn;
    bool *claim;          /* [nparts] pending entries to take over */
    char (*cursor)[48];   /* [nparts] XAUTOCLAIM cursor */
    redisReply *keep[2];  /* the replies the last batch points into */
    uint32_t rr;
    char members_key[BUS_NAME_MAX * 2 + 32];
};

static void lease_key(const struct bus_consumer *c, uint32_t p, char *out,
                      size_t cap)
{
    snprintf(out, cap, "argus:%s:%s:lease:%u", c->stream, c->group, p);
}

static int redis_consumer_alloc(struct bus *bus, struct bus_consumer **out)
{
    struct redis_consumer *rc = calloc(1, sizeof *rc);
    if (!rc)
        return CORE_ENOMEM;
    *out = &rc->base;
    return CORE_OK;
}

static int redis_consumer_init(struct bus_consumer *c)
{
    struct redis_consumer *rc = (struct redis_consumer *)c;
    /* XREADGROUP blocks for up to a lease round; the socket waits longer. */
    rc->conn = (struct rconn){.bus = c->bus,
                              .timeout_ms = (int)c->bus->cfg.lease_ms + 10000};
    rc->claim = calloc(c->nparts, sizeof *rc->claim);
    rc->cursor = calloc(c->nparts, sizeof *rc->cursor);
    if (!rc->claim || !rc->cursor)
        return CORE_ENOMEM;
    snprintf(rc->members_key, sizeof rc->members_key, "argus:%s:%s:members",
             c->stream, c->group);
    return rconn_ready(&rc->conn);
}

static void keep_release(struct redis_consumer *rc)
{
    for (int i = 0; i < 2; i++) {
        if (rc->keep[i])
            freeReplyObject(rc->keep[i]);
        rc->keep[i] = NULL;
    }
}

static void redis_consumer_free(struct bus_consumer *c)
{
    struct redis_consumer *rc = (struct redis_consumer *)c;
    keep_release(rc);
    rconn_fini(&rc->conn);
    free(rc->claim);
    free(rc->cursor);
    free(rc);
}

static int redis_member_beat(struct bus_consumer *c, uint32_t *members)
{
    struct redis_consumer *rc = (struct redis_consumer *)c;
    char ms[16];
    snprintf(ms, sizeof ms, "%u", c->bus->cfg.lease_ms);
    const char *args[] = {rc->members_key, c->token, ms};
    redisReply *r;
    int err = rscript(&rc->conn, &r, &script_beat, 1, 3, args, NULL);
    if (err)
        return err;
    *members = r->type == REDIS_REPLY_INTEGER ? (uint32_t)r->integer : 1;
    freeReplyObject(r);
    return CORE_OK;
}

static void redis_member_leave(struct bus_consumer *c)
{
    struct redis_consumer *rc = (struct redis_consumer *)c;
    if (!rc->conn.ctx)
        return;
    const char *argv[] = {"ZREM", rc->members_key, c->token};
    redisReply *r;
    if (rcmd(&rc->conn, &r, 3, argv, NULL) == CORE_OK)
        freeReplyObject(r);
}

static int redis_lease_acquire(struct bus_consumer *c, uint32_t p, bool *ok)
{
    struct redis_consumer *rc = (struct redis_consumer *)c;
    char key[BUS_NAME_MAX * 2 + 32], ms[16];
    lease_key(c, p, key, sizeof key);
    snprintf(ms, sizeof ms, "%u", c->bus->cfg.lease_ms);
    const char *argv[] = {"SET", key, c->token, "NX", "PX", ms};
    redisReply *r;
    int err = rcmd(&rc->conn, &r, 6, argv, NULL);
    if (err)
        return err;
    *ok = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return CORE_OK;
}

static int redis_lease_renew(struct bus_consumer *c, uint32_t p, bool *ok)
{
    struct redis_consumer *rc = (struct redis_consumer *)c;
    char key[BUS_NAME_MAX * 2 + 32], ms[16];
    lease_key(c, p, key, sizeof key);
    snprintf(ms, sizeof ms, "%u", c->bus->cfg.lease_ms);
    const char *args[] = {key, c->token, ms};
    redisReply *r;
    int err = rscript(&rc->conn, &r, &script_renew, 1, 3, args, NULL);
    if (err)
        return err;
    *ok = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (*ok) {
        /* Housekeeping once per lease round: the holder of a partition
         * frees the entries every group is done with, so the stream stays
         * near its backlog rather than its capacity. */
        char part[BUS_NAME_MAX + 32];
        key_part(part, sizeof part, c->stream, p);
        const char *targs[] = {part};
        if (rscript(&rc->conn, &r, &script_trim, 1, 1, targs, NULL) ==
            CORE_OK)
            freeReplyObject(r);
    }
    return CORE_OK;
}

static void redis_lease_release(struct bus_consumer *c, uint32_t p)
{
    struct redis_consumer *rc = (struct redis_consumer *)c;
    char key[BUS_NAME_MAX * 2 + 32];
    lease_key(c, p, key, sizeof key);
    const char *args[] = {key, c->token};
    redisReply *r;
    if (rscript(&rc->conn, &r, &script_release, 1, 2, args, NULL) == CORE_OK)
        freeReplyObject(r);
}

static void redis_partition_gained(struct bus_consumer *c, uint32_t p)
{
    struct redis_consumer *rc = (struct redis_consumer *)c;
    rc->claim[p] = true;
    strcpy(rc->cursor[p], "0-0");
}

static void redis_partition_lost(struct bus_consumer *c, uint32_t p)
{
    struct redis_consumer *rc = (struct redis_consumer *)c;
    rc->claim[p] = false;
}

/* "1700000000000-5" → an increasing 64-bit position. */
static uint64_t id_seq(const char *id)
{
    char *dash;
    unsigned long long ms = strtoull(id, &dash, 10);
    unsigned long long sq = *dash == '-' ? strtoull(dash + 1, NULL, 10) : 0;
    return (uint64_t)ms << 20 | (sq & 0xfffff);
}

/* Fills *m from an entry reply [id, [k, key, v, payload]]. */
static bool entry_to_msg(const struct bus_consumer *c, uint32_t p,
                         const redisReply *e, uint32_t deliveries,
                         struct bus_msg *m)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return false;
    const redisReply *k = field(e->element[1], "k");
    const redisReply *v = field(e->element[1], "v");
    if (!k || !v)
        return false;
    *m = (struct bus_msg){
        .stream = c->stream,
        .partition = p,
        .id = e->element[0]->str,
        .key = k->str,
        .key_len = k->len,
        .payload = v->str,
        .len = v->len,
        .deliveries = deliveries,
        .seq = id_seq(e->element[0]->str),
    };
    return true;
}

/* Takes over pending entries of partitions just gained, oldest first. */
static int fetch_claims(struct redis_consumer *rc, struct bus_msg *out,
                        size_t max, size_t *n)
{
    struct bus_consumer *c = &rc->base;
    for (uint32_t p = 0; p < c->nparts; p++) {
        if (!c->held[p] || !rc->claim[p])
            continue;
        char key[BUS_NAME_MAX + 32], count[16];
        key_part(key, sizeof key, c->stream, p);
        snprintf(count, sizeof count, "%zu", max);
        const char *argv[] = {"XAUTOCLAIM", key, c->group, c->name, "0",
                              rc->cursor[p], "COUNT", count};
        redisReply *r;
        int err = rcmd(&rc->conn, &r, 8, argv, NULL);
        if (err)
            return err;
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
            freeReplyObject(r);
            return CORE_EIO;
        }
        snprintf(rc->cursor[p], sizeof rc->cursor[p], "%s", r->element[0]->str);
        if (strcmp(rc->cursor[p], "0-0") == 0)
            rc->claim[p] = false;
        const redisReply *entries = r->element[1];
        if (entries->elements == 0) {
            freeReplyObject(r);
            continue;
        }
        /* The delivery counts, which XAUTOCLAIM raised but does not
         * return. */
        const char *first = entries->element[0]->element[0]->str;
        const char *last =
            entries->element[entries->elements - 1]->element[0]->str;
        const char *a2[] = {"XPENDING", key, c->group, first, last, count,
                            c->name};
        redisReply *pend = NULL;
        if (rcmd(&rc->conn, &pend, 7, a2, NULL) != CORE_OK)
            pend = NULL;
        for (size_t i = 0; i < entries->elements && *n < max; i++) {
            const redisReply *e = entries->element[i];
            if (e->type != REDIS_REPLY_ARRAY)
                continue;
            uint32_t dc = 2;
            for (size_t j = 0; pend && j < pend->elements; j++) {
                const redisReply *pe = pend->element[j];
                if (pe->elements == 4 &&
                    strcmp(pe->element[0]->str, e->element[0]->str) == 0) {
                    dc = (uint32_t)pe->element[3]->integer;
                    break;
                }
            }
            if (entry_to_msg(c, p, e, dc, &out[*n]))
                (*n)++;
        }
        if (pend)
            freeReplyObject(pend);
        rc->keep[0] = r;
        return CORE_OK; /* one partition's claims per batch */
    }
    return CORE_OK;
}

static int redis_fetch(struct bus_consumer *c, struct bus_msg *out,
                       size_t max, int timeout_ms, size_t *n)
{
    struct redis_consumer *rc = (struct redis_consumer *)c;
    keep_release(rc);
    int err = fetch_claims(rc, out, max, n);
    if (err || *n)
        return err;
    /* New entries only from partitions whose takeover is complete. */
    uint32_t ready = 0;
    for (uint32_t p = 0; p < c->nparts; p++)
        ready += c->held[p] && !rc->claim[p];
    if (ready == 0) {
        /* Nothing to read until the next lease round. */
        poll(NULL, 0, timeout_ms);
        return CORE_OK;
    }
    /* XREADGROUP over those partitions: COUNT is per stream, so read at
     * most max streams with max / streams entries each. */
    uint32_t nkeys = ready < max ? ready : (uint32_t)max;
    size_t per = max / nkeys;
    size_t argc = 0;
    size_t cap = 10 + 2 * (size_t)nkeys;
    const char **argv = calloc(cap, sizeof *argv);
    char(*keys)[BUS_NAME_MAX + 32] = calloc(nkeys, sizeof *keys);
    uint32_t *kp = calloc(nkeys, sizeof *kp);
    if (!argv || !keys || !kp) {
        err = CORE_ENOMEM;
        goto out;
    }
    char count[16], block[16];
    snprintf(count, sizeof count, "%zu", per);
    snprintf(block, sizeof block, "%d", timeout_ms);
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = c->group;
    argv[argc++] = c->name;
    argv[argc++] = "COUNT";
    argv[argc++] = count;
    if (timeout_ms > 0) {
        argv[argc++] = "BLOCK";
        argv[argc++] = block;
    }
    argv[argc++] = "STREAMS";
    uint32_t k = 0;
    for (uint32_t i = 0; i < c->nparts && k < nkeys; i++) {
        uint32_t p = (rc->rr + i) % c->nparts;
        if (c->held[p] && !rc->claim[p]) {
            key_part(keys[k], sizeof keys[k], c->stream, p);
            kp[k++] = p;
        }
    }
    rc->rr = (rc->rr + 1) % c->nparts;
    for (uint32_t i = 0; i < k; i++)
        argv[argc++] = keys[i];
    for (uint32_t i = 0; i < k; i++)
        argv[argc++] = ">";
    redisReply *r;
    err = rcmd(&rc->conn, &r, (int)argc, argv, NULL);
    if (err)
        goto out;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t s = 0; s < r->elements; s++) {
            const redisReply *sr = r->element[s];
            if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2)
                continue;
            uint32_t p = UINT32_MAX;
            for (uint32_t i = 0; i < k; i++)
                if (strcmp(keys[i], sr->element[0]->str) == 0)
                    p = kp[i];
            if (p == UINT32_MAX)
                continue;
            const redisReply *entries = sr->element[1];
            for (size_t i = 0; i < entries->elements && *n < max; i++)
                if (entry_to_msg(c, p, entries->element[i], 1, &out[*n]))
                    (*n)++;
        }
    }
    rc->keep[1] = r;
out:
    free(argv);
    free(keys);
    free(kp);
    return err;
}

static int redis_ack(struct bus_consumer *c, const struct bus_msg *msgs,
                     size_t n)
{
    struct redis_consumer *rc = (struct redis_consumer *)c;
    int err = rconn_ready(&rc->conn);
    if (err)
        return err;
    for (size_t i = 0; i < n; i++) {
        char key[BUS_NAME_MAX + 32];
        key_part(key, sizeof key, c->stream, msgs[i].partition);
        const char *argv[] = {"XACK", key, c->group, msgs[i].id};
        redisAppendCommandArgv(rc->conn.ctx, 4, argv, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(rc->conn.ctx, (void **)&r) != REDIS_OK)
            return CORE_EIO;
        redisReply *ok;
        int e = reply_check(r, &ok);
        if (ok)
            freeReplyObject(ok);
        if (e && !err)
            err = e;
    }
    return err;
}

/* ---------------------------------------------------------------- pub/sub */

struct redis_sub {
    struct bus *bus; /* first, as bus_unsubscribe expects */
    pthread_mutex_t lock; /* guards conn.ctx against unsubscribe */
    struct rconn conn;
    pthread_t thread;
    atomic_bool stop;
    char *channel;
    char key[BUS_NAME_MAX + 16];
    bus_message_cb cb;
    void *arg;
};

/* Connects and subscribes; on return the server delivers to us. */
static int sub_connect(struct redis_sub *s)
{
    pthread_mutex_lock(&s->lock);
    int err = atomic_load(&s->stop) ? CORE_ESHUTDOWN : rconn_ready(&s->conn);
    if (!err) {
        /* No read timeout: the thread waits for messages indefinitely. */
        redisSetTimeout(s->conn.ctx, (struct timeval){0, 0});
        const char *argv[] = {"SUBSCRIBE", s->key};
        redisReply *r;
        err = rcmd(&s->conn, &r, 2, argv, NULL);
        if (!err)
            freeReplyObject(r); /* the confirmation */
    }
    pthread_mutex_unlock(&s->lock);
    return err;
}

/* Reads messages until unsubscribed; a lost connection is made again
 * (broadcasts sent meanwhile are lost, as pub/sub is not durable). */
static void *sub_run(void *arg)
{
    struct redis_sub *s = arg;
    int backoff_ms = 100;
    while (!atomic_load(&s->stop)) {
        redisReply *r = NULL;
        if (redisGetReply(s->conn.ctx, (void **)&r) != REDIS_OK || !r) {
            if (atomic_load(&s->stop))
                break;
            core_log_warn(SUB, "msg=\"subscription lost\" channel=%s",
                          s->channel);
            while (!atomic_load(&s->stop) && sub_connect(s) != CORE_OK) {
                poll(NULL, 0, backoff_ms);
                backoff_ms = backoff_ms < 2000 ? backoff_ms * 2 : 2000;
            }
            continue;
        }
        backoff_ms = 100;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            strcmp(r->element[0]->str, "message") == 0)
            s->cb(s->channel, r->element[2]->str, r->element[2]->len, s->arg);
        freeReplyObject(r);
    }
    return NULL;
}

static int redis_subscribe(struct bus *bus, const char *channel,
                           bus_message_cb cb, void *arg, struct bus_sub **out)
{
    struct redis_sub *s = calloc(1, sizeof *s);
    if (!s)
        return CORE_ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    s->bus = bus;
    s->cb = cb;
    s->arg = arg;
    s->conn = (struct rconn){.bus = bus, .timeout_ms = 5000};
    snprintf(s->key, sizeof s->key, "argus:bc:%s", channel);
    s->channel = strdup(channel);
    int err = s->channel ? sub_connect(s) : CORE_ENOMEM;
    if (err)
        goto fail;
    if (pthread_create(&s->thread, NULL, sub_run, s) != 0) {
        err = CORE_ENOMEM;
        goto fail;
    }
    *out = (struct bus_sub *)s;
    return CORE_OK;

fail:
    rconn_fini(&s->conn);
    pthread_mutex_destroy(&s->lock);
    free(s->channel);
    free(s);
    return err;
}

static void redis_unsubscribe(struct bus_sub *sub)
{
    struct redis_sub *s = (struct redis_sub *)sub;
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->stop, true);
    if (s->conn.ctx)
        shutdown(s->conn.ctx->fd, SHUT_RDWR); /* wakes the reader */
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    rconn_fini(&s->conn);
    pthread_mutex_destroy(&s->lock);
    free(s->channel);
    free(s);
}

static int redis_broadcast(struct bus *bus, const char *channel,
                           const void *payload, size_t len)
{
    struct redis_bus *rb = bus->impl;
    char key[BUS_NAME_MAX + 16];
    snprintf(key, sizeof key, "argus:bc:%s", channel);
    const char *argv[] = {"PUBLISH", key, len ? payload : ""};
    size_t lens[] = {7, strlen(key), len};
    pthread_mutex_lock(&rb->lock);
    redisReply *r;
    int err = rcmd(&rb->main, &r, 3, argv, lens);
    if (!err)
        freeReplyObject(r);
    pthread_mutex_unlock(&rb->lock);
    return err;
}

const struct bus_ops bus_redis_ops = {
    .name = "redis",
    .scheme = "redis",
    .open = redis_open,
    .close = redis_close,
    .publish = redis_publish,
    .group_declare = redis_group_declare,
    .group_lag = redis_group_lag,
    .consumer_alloc = redis_consumer_alloc,
    .consumer_init = redis_consumer_init,
    .consumer_free = redis_consumer_free,
    .member_beat = redis_member_beat,
    .member_leave = redis_member_leave,
    .lease_acquire = redis_lease_acquire,
    .lease_renew = redis_lease_renew,
    .lease_release = redis_lease_release,
    .partition_gained = redis_partition_gained,
    .partition_lost = redis_partition_lost,
    .fetch = redis_fetch,
    .ack = redis_ack,
    .subscribe = redis_subscribe,
    .unsubscribe = redis_unsubscribe,
    .broadcast = redis_broadcast,
};
