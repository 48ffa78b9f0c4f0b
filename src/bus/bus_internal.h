/*
 * Private to src/bus: the backend table and the state shared by every
 * backend (configuration, metrics, partition leases).
 */
#ifndef ARGUS_BUS_INTERNAL_H
#define ARGUS_BUS_INTERNAL_H

#include "bus.h"
#include "core.h"

#define BUS_NAME_MAX 200 /* stream, group, consumer and channel names */

/*
 * A backend. The common layer (bus.c) validates arguments, computes
 * partitions, keeps metrics and runs the lease balancing; a backend stores
 * messages, leases and memberships. Every function returns 0 or a negative
 * core error.
 */
struct bus_ops {
    const char *name;
    const char *scheme; /* URL prefix that selects it */
    unsigned publishers; /* publishes it runs at once (bus_publishers) */
    int (*open)(struct bus *bus);
    void (*close)(struct bus *bus);

    /* parts[i] is the partition of msgs[i]. */
    int (*publish)(struct bus *bus, const char *stream,
                   const struct bus_pub *msgs, const uint32_t *parts,
                   size_t n);
    int (*group_declare)(struct bus *bus, const char *stream,
                         const char *group);
    int (*group_lag)(struct bus *bus, const char *stream, const char *group,
                     uint64_t *lag);

    /* Allocates the backend's consumer (which starts with a struct
     * bus_consumer) and zeroes the base; bus.c fills the base. */
    int (*consumer_alloc)(struct bus *bus, struct bus_consumer **out);
    /* Called once the base is filled. */
    int (*consumer_init)(struct bus_consumer *c);
    /* Frees what consumer_alloc/init made (init may have failed halfway),
     * after the leases were released. */
    void (*consumer_free)(struct bus_consumer *c);

    /* Heartbeat: records c as a live member of its group and counts the
     * live members (at least 1). */
    int (*member_beat)(struct bus_consumer *c, uint32_t *members);
    void (*member_leave)(struct bus_consumer *c);
    /* Leases: *ok tells whether c holds partition p afterwards. */
    int (*lease_acquire)(struct bus_consumer *c, uint32_t p, bool *ok);
    int (*lease_renew)(struct bus_consumer *c, uint32_t p, bool *ok);
    void (*lease_release)(struct bus_consumer *c, uint32_t p);
    /* c gained or lost partition p (after the lease changed). */
    void (*partition_gained)(struct bus_consumer *c, uint32_t p);
    void (*partition_lost)(struct bus_consumer *c, uint32_t p);

    /* Waits up to timeout_ms for messages of the held partitions. Messages
     * point into the backend consumer's memory, valid until the next
     * fetch. */
    int (*fetch)(struct bus_consumer *c, struct bus_msg *out, size_t max,
                 int timeout_ms, size_t *n);
    int (*ack)(struct bus_consumer *c, const struct bus_msg *msgs, size_t n);

    int (*subscribe)(struct bus *bus, const char *channel, bus_message_cb cb,
                     void *arg, struct bus_sub **out);
    void (*unsubscribe)(struct bus_sub *sub);
    int (*broadcast)(struct bus *bus, const char *channel,
                     const void *payload, size_t len);
};

extern const struct bus_ops bus_mem_ops;
extern const struct bus_ops bus_redis_ops;
extern const struct bus_ops bus_nats_ops;

struct bus {
    const struct bus_ops *ops;
    struct bus_config cfg;
    char *url;   /* owned copy of cfg.url */
    char *host;  /* parsed from redis:// and nats:// URLs */
    int port;
    void *impl;  /* the backend's state */
};

struct bus_consumer {
    struct bus *bus;
    char *stream;
    char *group;
    char *name;
    char token[48]; /* name + random suffix: this incarnation, for leases */
    uint32_t nparts;
    bool *held;           /* [nparts] lease held */
    uint32_t *outstanding; /* [nparts] delivered, not yet acknowledged */
    uint32_t nheld;
    uint32_t start;       /* where this consumer starts looking for free
                             partitions, to spread the first grabs */
    uint64_t next_tick_ns; /* monotonic time of the next lease round */
    struct core_metric_series *m_consumed, *m_acked, *m_redelivered;
};

/* Records an error of op on the bus's backend in the errors metric. */
void bus__error(struct bus *bus, const char *op, int err);

/* Writes s into out (size cap, truncating) with every character outside
 * [A-Za-z0-9_-] replaced by '_', for backend names that forbid dots. */
void bus__sanitize(const char *s, char *out, size_t cap);

#endif
