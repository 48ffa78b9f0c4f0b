/*
 * The backend-independent half of the bus: URL dispatch, argument checks,
 * partitioning, metrics, and the lease balancing that gives each consumer
 * of a group its share of the partitions.
 */
#include "bus_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "bus"

static const struct bus_ops *const backends[] = {
    &bus_mem_ops,
    &bus_redis_ops,
    &bus_nats_ops,
};

/* Metric families, registered on the first bus_open (registering again
 * returns the same family). */
static struct core_metric *m_published, *m_consumed, *m_acked,
    *m_redelivered, *m_errors, *m_lag;

static void metrics_register(void)
{
    static const char *const by_stream[] = {"stream", NULL};
    static const char *const by_group[] = {"stream", "group", NULL};
    static const char *const by_op[] = {"backend", "op", NULL};
    m_published = core_metric_register(
        "argus_bus_published_total", "Messages published and durable.",
        CORE_METRIC_COUNTER, by_stream, NULL, 0);
    m_consumed = core_metric_register(
        "argus_bus_consumed_total", "Messages delivered to consumers.",
        CORE_METRIC_COUNTER, by_group, NULL, 0);
    m_acked = core_metric_register("argus_bus_acked_total",
                                   "Messages acknowledged by consumers.",
                                   CORE_METRIC_COUNTER, by_group, NULL, 0);
    m_redelivered = core_metric_register(
        "argus_bus_redelivered_total",
        "Deliveries of messages delivered before (deliveries > 1).",
        CORE_METRIC_COUNTER, by_group, NULL, 0);
    m_errors = core_metric_register("argus_bus_errors_total",
                                    "Bus operations that failed.",
                                    CORE_METRIC_COUNTER, by_op, NULL, 0);
    m_lag = core_metric_register(
        "argus_bus_lag_messages",
        "Messages of a stream not yet acknowledged by a group.",
        CORE_METRIC_GAUGE, by_group, NULL, 0);
}

void bus__error(struct bus *bus, const char *op, int err)
{
    core_metric_add(core_metric_series(m_errors, bus->ops->name, op), 1);
    core_log_debug(SUB, "op=%s backend=%s err=%s", op, bus->ops->name,
                   core_err_name(err));
}

void bus__sanitize(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        out[i] = ok ? ch : '_';
    }
    out[i] = '\0';
}

/* Stream, group, consumer and channel names become parts of Redis keys and
 * NATS subjects: letters, digits, '.', '_' and '-' only. */
static bool name_valid(const char *s)
{
    if (!s || !*s || strlen(s) > BUS_NAME_MAX)
        return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
              ch == '-'))
            return false;
    }
    return true;
}

void bus_config_init(struct bus_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->url = "mem";
    cfg->partitions = 16;
    cfg->capacity = 100000;
    cfg->lease_ms = 10000;
    cfg->ack_wait_ms = 30000;
}

/* Parses "scheme://host:port" (port required, host may be empty for
 * 127.0.0.1). */
static int url_parse_host(struct bus *bus, const char *scheme)
{
    const char *p = bus->url + strlen(scheme);
    if (strncmp(p, "://", 3) != 0)
        return CORE_EINVAL;
    p += 3;
    const char *colon = strrchr(p, ':');
    const char *end = p + strcspn(p, "/?");
    if (!colon || colon > end)
        return CORE_EINVAL;
    char *stop;
    long port = strtol(colon + 1, &stop, 10);
    if (stop == colon + 1 || stop != end || port <= 0 || port > 65535)
        return CORE_EINVAL;
    size_t hlen = (size_t)(colon - p);
    bus->host = hlen ? strndup(p, hlen) : strdup("127.0.0.1");
    if (!bus->host)
        return CORE_ENOMEM;
    bus->port = (int)port;
    return CORE_OK;
}

int bus_open(const struct bus_config *cfg, struct bus **out)
{
    *out = NULL;
    if (!cfg || !cfg->url || cfg->partitions < 1 || cfg->partitions > 1024 ||
        cfg->capacity < 1 || cfg->lease_ms < 300 || cfg->ack_wait_ms < 100)
        return CORE_EINVAL;
    const struct bus_ops *ops = NULL;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        size_t sl = strlen(backends[i]->scheme);
        if (strncmp(cfg->url, backends[i]->scheme, sl) == 0 &&
            (cfg->url[sl] == '\0' || cfg->url[sl] == ':')) {
            ops = backends[i];
            break;
        }
    }
    if (!ops) {
        core_log_error(SUB, "msg=\"unknown bus URL\" url=%s", cfg->url);
        return CORE_EINVAL;
    }
    metrics_register();

    int err = CORE_ENOMEM;
    struct bus *bus = calloc(1, sizeof *bus);
    if (!bus)
        goto fail;
    bus->ops = ops;
    bus->cfg = *cfg;
    bus->url = strdup(cfg->url);
    if (!bus->url)
        goto fail;
    bus->cfg.url = bus->url;
    if (strchr(bus->url, ':')) {
        err = url_parse_host(bus, ops->scheme);
        if (err)
            goto fail;
    }
    err = ops->open(bus);
    if (err)
        goto fail;
    core_log_info(SUB, "msg=opened backend=%s partitions=%u", ops->name,
                  cfg->partitions);
    *out = bus;
    return CORE_OK;

fail:
    if (bus) {
        free(bus->host);
        free(bus->url);
        free(bus);
    }
    return err;
}

void bus_close(struct bus *bus)
{
    if (!bus)
        return;
    bus->ops->close(bus);
    free(bus->host);
    free(bus->url);
    free(bus);
}

const char *bus_backend_name(const struct bus *bus)
{
    return bus->ops->name;
}

unsigned bus_publishers(const struct bus *bus)
{
    return bus->ops->publishers ? bus->ops->publishers : 1;
}

uint32_t bus_partitions(const struct bus *bus)
{
    return bus->cfg.partitions;
}

uint32_t bus_partition_for(const void *key, size_t key_len,
                           uint32_t partitions)
{
    const unsigned char *k = key;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < key_len; i++) {
        h ^= k[i];
        h *= 1099511628211ULL;
    }
    return partitions ? (uint32_t)(h % partitions) : 0;
}

/* ------------------------------------------------------------- publishing */

int bus_stream_publish(struct bus *bus, const char *stream, const void *key,
                       size_t key_len, const void *payload, size_t len)
{
    struct bus_pub m = {key, key_len, payload, len, 1};
    return bus_stream_publish_batch(bus, stream, &m, 1);
}

int bus_stream_publish_batch(struct bus *bus, const char *stream,
                             const struct bus_pub *msgs, size_t n)
{
    if (!bus || !name_valid(stream) || (n && !msgs))
        return CORE_EINVAL;
    if (n == 0)
        return CORE_OK;
    uint32_t one;
    uint32_t *parts = n == 1 ? &one : malloc(n * sizeof *parts);
    if (!parts)
        return CORE_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((msgs[i].key_len && !msgs[i].key) ||
            (msgs[i].len && !msgs[i].payload)) {
            if (parts != &one)
                free(parts);
            return CORE_EINVAL;
        }
        parts[i] = bus_partition_for(msgs[i].key, msgs[i].key_len,
                                     bus->cfg.partitions);
    }
    int err = bus->ops->publish(bus, stream, msgs, parts, n);
    if (parts != &one)
        free(parts);
    if (err) {
        bus__error(bus, "publish", err);
        return err;
    }
    core_metric_add(core_metric_series(m_published, stream), (double)n);
    return CORE_OK;
}

/* ---------------------------------------------------------- consumer groups */

int bus_group_declare(struct bus *bus, const char *stream, const char *group)
{
    if (!bus || !name_valid(stream) || !name_valid(group))
        return CORE_EINVAL;
    int err = bus->ops->group_declare(bus, stream, group);
    if (err)
        bus__error(bus, "group_declare", err);
    return err;
}

int bus_group_lag(struct bus *bus, const char *stream, const char *group,
                  uint64_t *lag)
{
    *lag = 0;
    if (!bus || !name_valid(stream) || !name_valid(group))
        return CORE_EINVAL;
    int err = bus->ops->group_lag(bus, stream, group, lag);
    if (err) {
        if (err != CORE_ENOTFOUND)
            bus__error(bus, "lag", err);
        return err;
    }
    core_metric_set(core_metric_series(m_lag, stream, group), (double)*lag);
    return CORE_OK;
}

static void consumer_free_base(struct bus_consumer *c)
{
    free(c->stream);
    free(c->group);
    free(c->name);
    free(c->held);
    free(c->outstanding);
}

int bus_consumer_create(struct bus *bus, const char *stream,
                        const char *group, const char *name,
                        struct bus_consumer **out)
{
    *out = NULL;
    if (!bus || !name_valid(stream) || !name_valid(group) ||
        !name_valid(name) || strlen(name) > 24)
        return CORE_EINVAL;
    int err = bus_group_declare(bus, stream, group);
    if (err)
        return err;
    struct bus_consumer *c = NULL;
    err = bus->ops->consumer_alloc(bus, &c);
    if (err)
        return err;
    c->bus = bus;
    c->nparts = bus->cfg.partitions;
    c->stream = strdup(stream);
    c->group = strdup(group);
    c->name = strdup(name);
    c->held = calloc(c->nparts, sizeof *c->held);
    c->outstanding = calloc(c->nparts, sizeof *c->outstanding);
    if (!c->stream || !c->group || !c->name || !c->held || !c->outstanding) {
        err = CORE_ENOMEM;
        goto fail;
    }
    unsigned char rnd[8];
    char hex[17];
    core_random_bytes(rnd, sizeof rnd);
    core_hex_encode(rnd, sizeof rnd, hex);
    snprintf(c->token, sizeof c->token, "%s.%s", name, hex);
    c->start = bus_partition_for(c->token, strlen(c->token), c->nparts);
    c->m_consumed = core_metric_series(m_consumed, stream, group);
    c->m_acked = core_metric_series(m_acked, stream, group);
    c->m_redelivered = core_metric_series(m_redelivered, stream, group);
    err = bus->ops->consumer_init(c);
    if (err)
        goto fail;
    *out = c;
    return CORE_OK;

fail:
    bus__error(bus, "consumer_create", err);
    consumer_free_base(c);
    bus->ops->consumer_free(c);
    return err;
}

static void partition_drop(struct bus_consumer *c, uint32_t p)
{
    c->held[p] = false;
    c->nheld--;
    c->outstanding[p] = 0;
    c->bus->ops->partition_lost(c, p);
}

void bus_consumer_destroy(struct bus_consumer *c)
{
    if (!c)
        return;
    const struct bus_ops *ops = c->bus->ops;
    for (uint32_t p = 0; p < c->nparts; p++) {
        if (c->held[p]) {
            partition_drop(c, p);
            ops->lease_release(c, p);
        }
    }
    ops->member_leave(c);
    consumer_free_base(c);
    ops->consumer_free(c);
}

uint32_t bus_consumer_partitions_held(const struct bus_consumer *c)
{
    return c->nheld;
}

/*
 * One lease round: announce ourselves, renew what we hold, give back what
 * exceeds our share (only partitions with nothing unacknowledged, so a
 * message in the caller's hands is never handed to another consumer), and
 * take free partitions up to our share. The share is ceil(P / members), so
 * the shares cover every partition; a partition given back is taken by a
 * consumer below its share on its next round.
 */
static void leases_tick(struct bus_consumer *c)
{
    const struct bus_ops *ops = c->bus->ops;
    uint32_t members = 1;
    int err = ops->member_beat(c, &members);
    if (err) {
        bus__error(c->bus, "lease", err);
        members = 1;
    }
    if (members < 1)
        members = 1;
    uint32_t share = (c->nparts + members - 1) / members;

    for (uint32_t p = 0; p < c->nparts; p++) {
        if (!c->held[p])
            continue;
        bool ok = false;
        err = ops->lease_renew(c, p, &ok);
        if (err || !ok) {
            if (err)
                bus__error(c->bus, "lease", err);
            core_log_warn(SUB,
                          "msg=\"lease lost\" stream=%s group=%s consumer=%s "
                          "partition=%u",
                          c->stream, c->group, c->name, p);
            partition_drop(c, p);
        }
    }
    for (uint32_t i = c->nparts; i-- > 0 && c->nheld > share;) {
        uint32_t p = (c->start + i) % c->nparts;
        if (c->held[p] && c->outstanding[p] == 0) {
            partition_drop(c, p);
            ops->lease_release(c, p);
        }
    }
    for (uint32_t i = 0; i < c->nparts && c->nheld < share; i++) {
        uint32_t p = (c->start + i) % c->nparts;
        if (c->held[p])
            continue;
        bool ok = false;
        err = ops->lease_acquire(c, p, &ok);
        if (err) {
            bus__error(c->bus, "lease", err);
            break;
        }
        if (ok) {
            c->held[p] = true;
            c->nheld++;
            ops->partition_gained(c, p);
        }
    }
}

int bus_consumer_consume(struct bus_consumer *c, struct bus_msg *out,
                         size_t max, int timeout_ms, size_t *n)
{
    *n = 0;
    if (!c || !out || max == 0 || timeout_ms < 0)
        return CORE_EINVAL;
    uint64_t tick_ns = (uint64_t)c->bus->cfg.lease_ms * 1000000 / 3;
    uint64_t deadline = core_time_mono_ns() + (uint64_t)timeout_ms * 1000000;
    for (;;) {
        uint64_t now = core_time_mono_ns();
        if (now >= c->next_tick_ns) {
            leases_tick(c);
            now = core_time_mono_ns();
            c->next_tick_ns = now + tick_ns;
        }
        uint64_t until = deadline < c->next_tick_ns ? deadline
                                                     : c->next_tick_ns;
        int wait_ms = until > now ? (int)((until - now + 999999) / 1000000)
                                  : 0;
        int err = c->bus->ops->fetch(c, out, max, wait_ms, n);
        if (err) {
            bus__error(c->bus, "consume", err);
            return err;
        }
        if (*n) {
            size_t again = 0;
            for (size_t i = 0; i < *n; i++) {
                c->outstanding[out[i].partition]++;
                if (out[i].deliveries > 1)
                    again++;
            }
            core_metric_add(c->m_consumed, (double)*n);
            if (again)
                core_metric_add(c->m_redelivered, (double)again);
            return CORE_OK;
        }
        if (core_time_mono_ns() >= deadline)
            return CORE_OK;
    }
}

int bus_consumer_ack(struct bus_consumer *c, const struct bus_msg *msgs,
                     size_t n)
{
    if (!c || (n && !msgs))
        return CORE_EINVAL;
    if (n == 0)
        return CORE_OK;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].partition >= c->nparts)
            return CORE_EINVAL;
    int err = c->bus->ops->ack(c, msgs, n);
    if (err) {
        bus__error(c->bus, "ack", err);
        return err;
    }
    for (size_t i = 0; i < n; i++)
        if (c->outstanding[msgs[i].partition])
            c->outstanding[msgs[i].partition]--;
    core_metric_add(c->m_acked, (double)n);
    return CORE_OK;
}

/* ---------------------------------------------------------------- pub/sub */

int bus_subscribe(struct bus *bus, const char *channel, bus_message_cb cb,
                  void *arg, struct bus_sub **out)
{
    *out = NULL;
    if (!bus || !name_valid(channel) || !cb)
        return CORE_EINVAL;
    int err = bus->ops->subscribe(bus, channel, cb, arg, out);
    if (err)
        bus__error(bus, "subscribe", err);
    return err;
}

void bus_unsubscribe(struct bus_sub *sub)
{
    if (!sub)
        return;
    /* Every backend's subscription starts with its bus pointer. */
    struct bus *bus = *(struct bus **)sub;
    bus->ops->unsubscribe(sub);
}

int bus_broadcast(struct bus *bus, const char *channel, const void *payload,
                  size_t len)
{
    if (!bus || !name_valid(channel) || (len && !payload))
        return CORE_EINVAL;
    int err = bus->ops->broadcast(bus, channel, payload, len);
    if (err)
        bus__error(bus, "broadcast", err);
    return err;
}
