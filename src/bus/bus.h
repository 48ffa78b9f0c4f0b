/*
 * bus: partitioned, durable message streams with consumer groups, and a
 * non-durable broadcast channel, over three interchangeable backends:
 *
 *   "mem"                in-process (the embedded default)
 *   "redis://host:port"  Redis Streams (consumer groups, XACK, XAUTOCLAIM)
 *   "nats://host:port"   NATS JetStream (durable pull consumers, ack)
 *
 * The model (docs/decisions/0002-bus.md has the reasons):
 *
 * - A stream ("telemetry.raw.v1") has P partitions; a message goes to
 *   partition bus_partition_for(key, P), so one key's messages keep their
 *   order.
 * - A consumer group is a pipeline stage. Its consumers share the
 *   partitions through time-limited leases: at any moment a partition is
 *   consumed by at most one consumer of a group, and the partitions are
 *   balanced to about P / consumers each.
 * - Delivery is at least once. A message is delivered again when its
 *   consumer goes away without acknowledging it (destroyed, or crashed
 *   and its leases expired); deliveries counts the attempts.
 * - Publish returns only when the message is durable as far as the backend
 *   can tell (Redis: the server's AOF policy; JetStream: the publish ack).
 * - Every partition is bounded: publish answers CORE_EOVERLOAD when a
 *   partition holds `capacity` messages that some declared group has not
 *   acknowledged, instead of growing or dropping data. A message counts
 *   as its weight (the pipeline's bundles: the messages inside). Redis
 *   counts weights exactly; NATS bounds entries per partition and, for
 *   the weight, the stream's bytes at capacity x partitions x 1 KiB; mem
 *   counts entries.
 * - A group sees the messages published after it was declared (by
 *   bus_group_declare or the first bus_consumer_create), and on the mem and
 *   Redis backends also those still retained from before. Declare the
 *   groups before publishing (the pipeline runner does so at start).
 *
 * Threading: a struct bus may be shared by threads for publish, broadcast,
 * subscribe and lag. A consumer belongs to one thread at a time.
 *
 * Errors are core's: CORE_EINVAL for bad arguments or URLs, CORE_EIO when
 * the server cannot be reached or answers an error, CORE_EOVERLOAD when a
 * partition is full, CORE_ETOOBIG when a message exceeds the backend's
 * limit, CORE_ENOMEM.
 */
#ifndef ARGUS_BUS_H
#define ARGUS_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct bus_consumer;
struct bus_sub;

/* --------------------------------------------------------------- opening */

struct bus_config {
    const char *url;         /* "mem", "redis://h:p", "nats://h:p" */
    uint32_t partitions;     /* per stream; default 16, 1..1024 */
    uint64_t capacity;       /* unacknowledged messages per partition;
                                default 100000 */
    uint32_t lease_ms;       /* partition lease time; default 10000, at
                                least 300. A crashed consumer's partitions
                                move after at most this long. */
    uint32_t ack_wait_ms;    /* NATS: redelivery of a crashed consumer's
                                unacknowledged messages; default 30000, at
                                least 100 */
};

/* Fills cfg with the defaults above and url = "mem". */
void bus_config_init(struct bus_config *cfg);

/* Opens a bus. Every process of a deployment must use the same partitions
 * for a given stream. Returns CORE_EINVAL for an unknown URL scheme or bad
 * numbers, CORE_EIO when the server is unreachable. On success the caller
 * closes *out with bus_close. */
int bus_open(const struct bus_config *cfg, struct bus **out);
/* Closes the bus. Every consumer and subscription made from it must have
 * been destroyed first. NULL is a no-op. */
void bus_close(struct bus *bus);
/* "mem", "redis" or "nats". */
const char *bus_backend_name(const struct bus *bus);
uint32_t bus_partitions(const struct bus *bus);
/* How many publishes the backend runs at the same time (from different
 * threads; more wait their turn): 1 for mem and Redis (one connection),
 * several for NATS (one JetStream context each, waiting for acks side by
 * side). A caller with a queue to publish runs as many threads. */
unsigned bus_publishers(const struct bus *bus);

/* The stable partition of a key: FNV-1a 64 of the key bytes modulo
 * partitions, identical in every process and on every backend. */
uint32_t bus_partition_for(const void *key, size_t key_len,
                           uint32_t partitions);

/* ------------------------------------------------------------- publishing */

struct bus_pub {
    const void *key; /* partition key (device id, asset id); may be empty */
    size_t key_len;
    const void *payload; /* opaque bytes; may be empty */
    size_t len;
    uint32_t weight; /* messages it stands for, for the capacity; 0 = 1 */
};

/* Publishes one message to stream and returns once it is durable. The bus
 * copies what it needs; key and payload stay the caller's. Returns
 * CORE_EOVERLOAD when the key's partition is full. */
int bus_stream_publish(struct bus *bus, const char *stream, const void *key,
                       size_t key_len, const void *payload, size_t len);

/* Publishes n messages (pipelined) and returns once all are durable. On
 * failure some of them may have been published: publishing the whole batch
 * again is safe, since delivery is at least once anyway. Messages with the
 * same key keep their order within the batch. */
int bus_stream_publish_batch(struct bus *bus, const char *stream,
                             const struct bus_pub *msgs, size_t n);

/* ---------------------------------------------------------- consumer groups */

/* Declares group on stream so that messages published from now on are kept
 * until the group acknowledges them. Idempotent; bus_consumer_create
 * declares its group itself. */
int bus_group_declare(struct bus *bus, const char *stream, const char *group);

/* Messages of stream not yet acknowledged by group (undelivered plus
 * delivered-but-unacknowledged), summed over the partitions; for the lag
 * metric. Returns CORE_ENOTFOUND if the group was never declared. Redis may
 * over-estimate when the server cannot tell the exact figure. */
int bus_group_lag(struct bus *bus, const char *stream, const char *group,
                  uint64_t *lag);

/* A delivered message. Every pointer in it is owned by the consumer and
 * stays valid until the next bus_consumer_consume on that consumer or its
 * destroy, whichever comes first; copy what must live longer. */
struct bus_msg {
    const char *stream;
    uint32_t partition;
    const char *id;       /* backend message id, unique within a partition */
    const char *key;      /* NUL-terminated for convenience; key_len bytes */
    size_t key_len;
    const void *payload;  /* len bytes, followed by a NUL not counted */
    size_t len;
    uint32_t deliveries;  /* 1 on the first delivery, 2.. on redelivery */
    uint64_t seq;         /* position in the partition (increasing) */
    const void *ref;      /* the backend's handle for the ack; opaque */
};

/* Creates consumer `name` of group on stream (declaring the group). Stream,
 * group, consumer and channel names are letters, digits, '.', '_' and '-'
 * (up to 200 characters; consumer names up to 24), and a consumer name must
 * be unique within its group among live consumers. The consumer takes
 * partitions on its first consume. The caller destroys *out with
 * bus_consumer_destroy. */
int bus_consumer_create(struct bus *bus, const char *stream,
                        const char *group, const char *name,
                        struct bus_consumer **out);

/* Releases the consumer's partitions so that another consumer of the group
 * takes them over at once; messages it received and did not acknowledge are
 * delivered again to that consumer. NULL is a no-op. */
void bus_consumer_destroy(struct bus_consumer *c);

/* Waits up to timeout_ms for messages of the partitions this consumer
 * holds and stores up to max of them in out[]; *n is the count, 0 when the
 * timeout passed. Within a partition messages come in publish order, a
 * taken-over partition's unacknowledged messages first. Also renews and
 * rebalances the leases, so a consumer must call it at least every
 * lease_ms / 3. Invalidates the messages of the previous call. */
int bus_consumer_consume(struct bus_consumer *c, struct bus_msg *out,
                         size_t max, int timeout_ms, size_t *n);

/* Acknowledges n messages delivered to this consumer (from its latest
 * consume); they will not be delivered again to this group. */
int bus_consumer_ack(struct bus_consumer *c, const struct bus_msg *msgs,
                     size_t n);

/* Partitions this consumer holds right now (for tests and metrics). */
uint32_t bus_consumer_partitions_held(const struct bus_consumer *c);

/* ---------------------------------------------------------------- pub/sub
 * Not durable: a broadcast reaches every subscriber of the channel in
 * every process that is subscribed when it is sent, and nobody else. For
 * config invalidation and realtime fan-out.
 */

/* Called with the payload (borrowed for the call) on a bus-owned thread
 * (mem: on the broadcasting thread). It must not call bus_unsubscribe on
 * its own subscription. */
typedef void (*bus_message_cb)(const char *channel, const void *payload,
                               size_t len, void *arg);

/* Subscribes to channel. When it returns, broadcasts sent afterwards are
 * delivered. The caller ends it with bus_unsubscribe. */
int bus_subscribe(struct bus *bus, const char *channel, bus_message_cb cb,
                  void *arg, struct bus_sub **out);
/* Stops the subscription; when it returns the callback is not running and
 * will not run again. NULL is a no-op. */
void bus_unsubscribe(struct bus_sub *sub);
/* Sends payload to every current subscriber of channel. */
int bus_broadcast(struct bus *bus, const char *channel, const void *payload,
                  size_t len);

#endif
