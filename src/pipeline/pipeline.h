/*
 * pipeline: the stages a telemetry message goes through after ingest, and
 * the runner that wires them. In `argus serve` (embedded: SQLite or
 * PostgreSQL, in-process) the stages run fused on one writer thread: a
 * batch of accepted messages is appended to the raw store, normalised into
 * points and written, and the device's last_seen_at updated, in one
 * transaction (group commit); only then are the senders answered.
 */
#ifndef ARGUS_PIPELINE_H
#define ARGUS_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "core.h"
#include "db.h"
#include "tsdb.h"

/* ------------------------------------------------------------- normalize */

struct pipeline_limits {
    size_t max_metrics;       /* per message; default 1000 */
    size_t max_key_len;       /* metric name bytes; default 128 */
    size_t max_string_len;    /* string value bytes; default 1024 */
    size_t max_metadata;      /* serialised metadata bytes; default 16 KiB */
    int64_t max_future_ms;    /* clock skew allowed ahead of us; 5 min */
    int64_t min_time_ms;      /* earliest acceptable time; 2000-01-01 */
};

/* Fills unset (zero) limits with the defaults. */
void pipeline_limits_default(struct pipeline_limits *l);

struct pipeline_metric {
    const char *key; /* in the message's block, NUL-terminated */
    enum tsdb_vtype type;
    double num;
    const char *str; /* in the message's block, NUL-terminated */
};

/* One accepted message on its way through the stages. */
struct pipeline_msg {
    char raw_id[CORE_UUID_STR_LEN];
    char org_id[CORE_UUID_STR_LEN];
    char device_id[CORE_UUID_STR_LEN];
    int64_t received_ms;
    int64_t ts_ms;
    const char *transport;
    /* One allocation (owned) holding the metrics array, their keys and
     * strings and the payload; pipeline_msg_fini frees it. */
    void *block;
    char *payload; /* the message as stored in the raw store (in block) */
    size_t payload_len;
    struct pipeline_metric *metrics; /* in block */
    size_t nmetrics;
    /* The text of the metrics object as sent, inside payload. */
    const char *metrics_text;
    size_t metrics_text_len;
};

void pipeline_msg_fini(struct pipeline_msg *m);

/* --------------------------------------------------------------- parsing
 * The ingest format {deviceId, metrics, timestamp?, metadata?} is parsed
 * straight from its text into struct pipeline_msg, in one pass with no
 * document tree (src/pipeline/msgparse.c). The text must be strict RFC 8259
 * JSON as jansson's json_loadb with JSON_REJECT_DUPLICATES takes it, and a
 * message is accepted or refused, with the same reason, exactly as the
 * jansson-based normalize did:
 *
 *  - JSON: UTF-8 only (no overlong forms, surrogates or code points past
 *    U+10FFFF); no control characters in strings; \u escapes with
 *    surrogates in pairs, and never \u0000; numbers without leading zeros,
 *    NaN or Infinity; integers (no fraction or exponent) within int64, other
 *    numbers finite as doubles (rounded correctly; underflow is fine);
 *    duplicate keys refused in every object; at most 2048 levels of nesting;
 *    nothing but whitespace around the top-level object or array. One
 *    deliberate difference: jansson skips a raw NUL byte that directly
 *    follows a number or true/false/null (an artefact of its unget
 *    buffer); we refuse every raw NUL byte, as RFC 8259 does.
 *  - A message is an object with only deviceId (a UUID), metrics (an object
 *    of 1 to max_metrics name: number | boolean | string), timestamp (RFC
 *    3339 string or epoch seconds, milliseconds or microseconds told apart
 *    by magnitude; missing or null: the receive time) and metadata (an
 *    object or null). Its checks run in this order and the first failure is
 *    the reason: not an object; the first unknown key in document order;
 *    deviceId; metrics' type, emptiness and count; timestamp; metadata; then
 *    each metric in document order (name 1 to max_key_len bytes without
 *    control characters; value type; strings at most max_string_len bytes).
 *  - Metadata size is the length of its compact serialisation by jansson
 *    (json_dumpb with JSON_COMPACT): no whitespace, strings re-escaped (only
 *    '"', '\\' and control characters; \b \f \n \r \t short, others
 *    \u00XX), integers as %lld, other numbers as %.17g with ".0" added when
 *    neither '.' nor 'e' shows and the exponent without '+' or leading
 *    zeros. It is computed while parsing, without serialising.
 *
 * A metric value that is an integer is converted to double as jansson does
 * ((double) of the int64, so "-0" is +0.0); other numbers as strtod. */

/* Scratch space reused between parses, so that a warm parser allocates
 * only each accepted message's block. Not thread-safe: one per thread. */
struct pipeline_parser;

int pipeline_parser_create(struct pipeline_parser **out);
/* Accepts NULL. */
void pipeline_parser_destroy(struct pipeline_parser *p);
/* The calling thread's parser, created on first use and destroyed when the
 * thread exits; NULL when out of memory. */
struct pipeline_parser *pipeline_parser_local(void);

/* Called for each message of a text, in order: with the accepted message
 * (m; the callee takes it over by copying the struct, and frees it with
 * pipeline_msg_fini) and reason NULL, or with m NULL and the reason it was
 * refused (borrowed for the call). A nonzero return stops the parse and is
 * returned by pipeline_parse. */
typedef int (*pipeline_msg_cb)(size_t index, struct pipeline_msg *m,
                               const char *reason, void *ctx);

struct pipeline_parse_args {
    const char *text; /* len bytes, need not be NUL-terminated */
    size_t len;
    /* A top-level array is a batch of messages (ingest); otherwise the
     * text is one message and an array is refused as one. */
    bool batch;
    size_t max_msgs; /* messages past it are checked as JSON only */
    int64_t received_ms;
    const struct pipeline_limits *lim;
    pipeline_msg_cb cb;
    void *ctx;
};

/* Parses a text of one message or (with a->batch) an array of them. The
 * payload of a message is the whole text for a top-level object and the
 * element's bytes (from its first to its last character) for an array
 * element. *n is the number of messages in the text (1 for an object; for
 * an array its length, possibly past max_msgs) and *array tells whether it
 * was an array. Returns CORE_OK; CORE_EPARSE when the text is not JSON as
 * above (err says where and why: "line 1, column 7: ..."); CORE_ENOMEM; or
 * cb's nonzero return. The parse can fail after cb has been given messages:
 * they are the callee's to free all the same. */
int pipeline_parse(struct pipeline_parser *p, const struct pipeline_parse_args *a,
                   size_t *n, bool *array, char *err, size_t err_len);

/* One message: a stored payload, an envelope body. CORE_OK with *m filled
 * (free with pipeline_msg_fini); CORE_EPARSE with where and why the text is
 * not JSON in reason; CORE_EINVAL with why the message is refused in
 * reason; CORE_ENOMEM. Uses the calling thread's parser. */
int pipeline_parse_one(const char *text, size_t len, int64_t received_ms,
                       const struct pipeline_limits *lim,
                       struct pipeline_msg *m, char *reason, size_t reason_len);
/* pipeline_parse_one for a text that was accepted once already (a stored
 * payload, a stage's input), where text that is not JSON is one more
 * reason to refuse the message: CORE_EINVAL with "<what> is not JSON:
 * <where and why>" in reason, as for an invalid message. */
int pipeline_parse_stored(const char *what, const char *text, size_t len,
                          int64_t received_ms,
                          const struct pipeline_limits *lim,
                          struct pipeline_msg *m, char *reason,
                          size_t reason_len);

/* ---------------------------------------------------------------- runner */

struct pipeline_config {
    size_t queue_capacity; /* messages waiting; beyond it submit refuses */
    size_t batch_max;      /* messages per transaction; default 1000 */
    int64_t offline_after_ms; /* online → offline after this silence */
    /* NULL: the fused embedded writer stores submissions itself. Set: the
     * writer publishes them to PIPELINE_STREAM_RAW and "durable" means the
     * bus has them; the stages (pipeline_workers_start) do the rest. */
    struct bus *bus;
    /* Leave the raw store out of pipeline_store_sync (for the
     * device-writer stage, whose messages the archive stage stores). */
    bool no_archive;
    /* normalize's, for replaying what a crash left without points;
     * 0 = defaults */
    struct pipeline_limits limits;
};

struct pipeline;

/* Called once per submission from the writer thread: rc is CORE_OK when
 * every message of the submission is durable, an error otherwise (nothing
 * of it was stored). */
typedef void (*pipeline_done_cb)(int rc, void *ctx);

int pipeline_create(struct db *db, struct tsdb *tsdb,
                    const struct pipeline_config *cfg, struct pipeline **out);
/* Queues n messages (taking them over; the array itself stays the
 * caller's) and calls done when they are durable. Returns CORE_EOVERLOAD
 * (messages not taken) when the queue is full, CORE_ESHUTDOWN when
 * stopping. */
int pipeline_submit(struct pipeline *p, struct pipeline_msg *msgs, size_t n,
                    pipeline_done_cb done, void *ctx);
/* Stores messages now, on the caller's thread, in one transaction that
 * also runs also(conn, ctx) when given (for bookkeeping that must commit
 * with the points, such as removing a DLQ entry). The messages stay the
 * caller's. For replays and other administrative paths, not for ingest. */
int pipeline_store_sync(struct pipeline *p, struct pipeline_msg *msgs,
                        size_t n, int (*also)(struct db_conn *c, void *ctx),
                        void *ctx);

/* ------------------------------------------------------------ DLQ, replay
 * The dead-letter queue keeps what a stage could not process, with the
 * stage and the reason, until it is replayed or deleted; nothing vanishes.
 */
struct pipeline_dead {
    const char *stage;  /* "normalize" */
    const char *reason;
    const char *raw_id; /* may be NULL */
    const char *org_id;
    const char *device_id; /* may be NULL */
    const char *payload;
    int64_t received_ms;
};

/* Adds an entry, or for a raw message already there (same stage) bumps
 * its attempts and updates its reason. Inside the caller's transaction. */
int pipeline_dlq_put(struct db_conn *c, const struct pipeline_dead *d);

/* Re-runs the raw messages of an organisation (one device, or all when
 * device_id is NULL) received in [from_ms, to_ms), at most limit of them
 * in time order, through normalize and the writer with the current rules.
 * Idempotent: points are keyed by series and time. Messages that fail now
 * (invalid, or their device is gone) go to the DLQ with the reason.
 * *replayed and *dead count them; *more is true when the limit cut the
 * range short. */
int pipeline_replay(struct pipeline *p, const struct pipeline_limits *lim,
                    const char *org_id, const char *device_id,
                    int64_t from_ms, int64_t to_ms, size_t limit,
                    size_t *replayed, size_t *dead, bool *more);

/* ------------------------------------------------------ distributed stages
 * With a bus (Redis Streams or NATS JetStream), ingest publishes accepted
 * messages to telemetry.raw.v1 and the stages run as consumer groups, in
 * `argus serve` or in any number of `argus worker` processes:
 *
 *   archive        telemetry.raw.v1        → raw store
 *   normalize      telemetry.raw.v1        → telemetry.normalized.v1 (or DLQ)
 *   device-writer  telemetry.normalized.v1 → points, rollups, last_seen_at
 *
 * Every stream is partitioned by device id. Delivery is at least once and
 * every effect is idempotent (raw by id, points by series and time), so a
 * worker killed at any moment loses and duplicates nothing.
 */
#define PIPELINE_STREAM_RAW "telemetry.raw.v1"
#define PIPELINE_STREAM_NORMALIZED "telemetry.normalized.v1"

enum pipeline_stage {
    PIPELINE_STAGE_ARCHIVE = 1u << 0,
    PIPELINE_STAGE_NORMALIZE = 1u << 1,
    PIPELINE_STAGE_DEVICE_WRITER = 1u << 2,
    PIPELINE_STAGE_ALL = (1u << 3) - 1,
};

/* Parses a comma-separated list of stage names ("archive,normalize") or
 * "all" into a mask. CORE_EINVAL with a message in err otherwise. */
int pipeline_stages_parse(const char *list, unsigned *mask, char *err,
                          size_t err_len);

/* Declares every stage's consumer group on its stream, so that nothing
 * published before a stage's first worker starts is missed. Publishers and
 * workers call it at start (it is idempotent). */
int pipeline_declare_groups(struct bus *bus);

struct pipeline_workers_config {
    struct bus *bus;
    struct db *db;
    struct tsdb *tsdb;
    unsigned stages;         /* mask of enum pipeline_stage */
    size_t batch_max;        /* messages per consume and transaction; 1000 */
    int64_t offline_after_ms;
    struct pipeline_limits limits; /* normalize's; 0 = defaults */
};

struct pipeline_workers;

/* Starts one consumer thread per stage in cfg->stages. */
int pipeline_workers_start(const struct pipeline_workers_config *cfg,
                           struct pipeline_workers **out);
/* Finishes the batch each stage is on, acknowledges it, releases the
 * partitions and frees. Accepts NULL. */
void pipeline_workers_stop(struct pipeline_workers *w);

/* The store the pipeline writes to (for its own modules). */
struct db *pipeline__db(struct pipeline *p);

/* Messages queued and not yet durable. */
size_t pipeline_queued(struct pipeline *p);
/* Returns once every message acknowledged before the call has its points
 * committed (at most 10 s). Embedded SQLite acknowledges on the raw commit
 * and writes points a moment later (runner.c, "Deferred points"); readers
 * of points that must see a device's acknowledged messages call this
 * first. Returns at once in every other mode, and for NULL. */
void pipeline_sync(struct pipeline *p);
/* Refuses new submissions (they get CORE_ESHUTDOWN), writes everything
 * queued and answers it, then stops the writer. Accepts NULL. */
void pipeline_stop(struct pipeline *p);
/* Stops if needed and frees. Accepts NULL. */
void pipeline_destroy(struct pipeline *p);

#endif
