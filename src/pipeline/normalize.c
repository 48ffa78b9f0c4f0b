/*
 * The normalize stage's limits and the message's lifetime. The built-in
 * format {deviceId, metrics: {...}, timestamp, metadata} is parsed and
 * checked by msgparse.c; device types with their own schema and extraction
 * rules come later.
 */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pipeline_limits_default(struct pipeline_limits *l)
{
    if (!l->max_metrics)
        l->max_metrics = 1000;
    if (!l->max_key_len)
        l->max_key_len = 128;
    if (!l->max_string_len)
        l->max_string_len = 1024;
    if (!l->max_metadata)
        l->max_metadata = 16 * 1024;
    if (!l->max_future_ms)
        l->max_future_ms = 5 * 60 * 1000;
    if (!l->min_time_ms)
        l->min_time_ms = 946684800000LL; /* 2000-01-01T00:00:00Z */
}

void pipeline_msg_fini(struct pipeline_msg *m)
{
    free(m->block);
    memset(m, 0, sizeof *m);
}
