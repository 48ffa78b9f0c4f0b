/* The jansson-based normalize msgparse.c replaced: the tests' reference. */
#ifndef ARGUS_NORMALIZE_REF_H
#define ARGUS_NORMALIZE_REF_H

#include "pipeline.h"

struct ref_msg {
    char device_id[CORE_UUID_STR_LEN];
    int64_t received_ms;
    int64_t ts_ms;
    struct pipeline_metric *metrics; /* keys and strings borrowed from msg */
    size_t nmetrics;
    json_t *metrics_json; /* borrowed from msg */
};

/* pipeline_normalize as it was: msg borrowed (keep it while out is used). */
int ref_normalize(json_t *msg, int64_t received_ms,
                  const struct pipeline_limits *lim, struct ref_msg *out,
                  char *reason, size_t reason_len);
void ref_msg_fini(struct ref_msg *m);

#endif
