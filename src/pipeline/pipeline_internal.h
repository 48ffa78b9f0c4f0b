/* What the pipeline's files share and nobody else sees. */
#ifndef ARGUS_PIPELINE_INTERNAL_H
#define ARGUS_PIPELINE_INTERNAL_H

#include "pipeline.h"

/* The envelope of a message on a pipeline stream: one header line, then
 * the body as it is:
 *
 *   argus1 KIND RAW_ID ORG_ID DEVICE_ID RECEIVED_MS TRANSPORT\n BODY
 *
 * KIND is "raw" (BODY is the message as received) or "norm" (BODY is the
 * normalised message: {"deviceId", "timestamp" in epoch ms, "metrics"}). A
 * text header keeps the body unescaped, so nobody parses it twice. */
enum pipeline_env_kind { PIPELINE_ENV_RAW, PIPELINE_ENV_NORM };

struct pipeline_env {
    enum pipeline_env_kind kind;
    char raw_id[CORE_UUID_STR_LEN];
    char org_id[CORE_UUID_STR_LEN];
    char device_id[CORE_UUID_STR_LEN];
    int64_t received_ms;
    const char *transport; /* a static string: "http", "mqtt", "replay" */
    const char *body;      /* borrowed from the encoded bytes */
    size_t body_len;
};

/* Appends the envelope of m (kind, and body/len as given) to b. */
void pipeline__env_encode(struct core_buf *b, enum pipeline_env_kind kind,
                          const struct pipeline_msg *m, const char *body,
                          size_t len);
/* Parses an envelope; CORE_EINVAL with a reason when it is not one. */
int pipeline__env_decode(const void *bytes, size_t len,
                         struct pipeline_env *out, char *reason,
                         size_t reason_len);
/* Bundles: the envelopes of one partition travel together as one bus
 * message, so that the bus stores, delivers and acknowledges one entry
 * per partition and batch instead of one per message:
 *
 *   argus1 bundle COUNT\n LEN\n ENVELOPE LEN\n ENVELOPE ...
 *
 * (LEN is the envelope's size in bytes, in decimal.) A bundle holds at
 * most PIPELINE_BUNDLE_MSGS envelopes and about PIPELINE_BUNDLE_BYTES;
 * an envelope larger than that travels alone, unbundled. */
#define PIPELINE_BUNDLE_MSGS 200
#define PIPELINE_BUNDLE_BYTES (64 * 1024)

/* Decodes one bus message, an envelope or a bundle of them, appending its
 * envelopes to *envs (n used, cap allocated; grown as needed; they borrow
 * from bytes). CORE_EINVAL with a reason, and nothing appended, when any
 * part is malformed; CORE_ENOMEM. */
int pipeline__env_decode_msg(const void *bytes, size_t len,
                             struct pipeline_env **envs, size_t *n,
                             size_t *cap, char *reason, size_t reason_len);

/* Publishes n envelopes, encoded back to back in buf (the i-th ends at
 * ends[i]; keys[i] is its device id, its partition key), to stream as
 * bundles, in order per partition. One bus_stream_publish_batch: the same
 * outcome for all (CORE_ETOOBIG when one of them is too big for the bus). */
int pipeline__publish(struct bus *bus, const char *stream, const char *buf,
                      const size_t *ends, const char *const *keys, size_t n);

/* The transport name as a static string, or NULL when unknown. */
const char *pipeline__transport(const char *name, size_t len);

/* The most ids one "IN (...)" statement takes, and the statement text:
 * head followed by "(?, ?, ...)" with n placeholders, in sql. Returns
 * CORE_ENOMEM when the buffer could not grow. */
#define PIPELINE_IN_MAX 100

/* Buckets of argus_pipeline_e2e_seconds (runner.c), finer than the
 * default latency buckets between 10 and 100 ms, where its targets are. */
#define PIPELINE_E2E_BUCKETS 19
extern const double pipeline__e2e_buckets[PIPELINE_E2E_BUCKETS];
int pipeline__sql_in(struct core_buf *sql, const char *head, size_t n);

#endif
