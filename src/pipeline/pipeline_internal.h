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
/* The transport name as a static string, or NULL when unknown. */
const char *pipeline__transport(const char *name, size_t len);

/* The most ids one "IN (...)" statement takes, and the statement text:
 * head followed by "(?, ?, ...)" with n placeholders, in sql. Returns
 * CORE_ENOMEM when the buffer could not grow. */
#define PIPELINE_IN_MAX 100
int pipeline__sql_in(struct core_buf *sql, const char *head, size_t n);

#endif
