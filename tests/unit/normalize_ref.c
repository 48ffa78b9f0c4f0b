/*
 * The jansson-based normalize that msgparse.c replaced, kept verbatim (but
 * for its output struct) as the reference the unit tests and the
 * differential fuzzer (fuzz_msgparse) compare the new parser with. Not
 * linked into argus.
 */
#include "normalize_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ref_msg_fini(struct ref_msg *m)
{
    free(m->metrics);
    memset(m, 0, sizeof *m);
}

#define FAIL(...)                                                           \
    do {                                                                    \
        snprintf(reason, reason_len, __VA_ARGS__);                          \
        return CORE_EINVAL;                                                 \
    } while (0)

/* Epoch numbers: seconds up to 1e11 (year 5138), then milliseconds up to
 * 1e14, then microseconds up to 1e17. */
static int epoch_ms(double v, int64_t *out)
{
    if (!isfinite(v) || v < 0)
        return CORE_ERANGE;
    if (v < 1e11)
        *out = (int64_t)llround(v * 1000.0);
    else if (v < 1e14)
        *out = (int64_t)llround(v);
    else if (v < 1e17)
        *out = (int64_t)llround(v / 1000.0);
    else
        return CORE_ERANGE;
    return CORE_OK;
}

static bool plain_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20)
            return false;
    return true;
}

int ref_normalize(json_t *msg, int64_t received_ms,
                       const struct pipeline_limits *lim,
                       struct ref_msg *out, char *reason,
                       size_t reason_len)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(msg))
        FAIL("a message must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(msg, key, v) {
        if (strcmp(key, "deviceId") && strcmp(key, "metrics") &&
            strcmp(key, "timestamp") && strcmp(key, "metadata"))
            FAIL("unknown field '%.64s' (a message has deviceId, metrics, "
                 "timestamp and metadata)",
                 key);
    }
    json_t *dev = json_object_get(msg, "deviceId");
    if (!json_is_string(dev) || !core_uuid_valid(json_string_value(dev)))
        FAIL("deviceId must be the device's id (a UUID)");
    json_t *metrics = json_object_get(msg, "metrics");
    if (!json_is_object(metrics))
        FAIL("metrics must be an object of name: value");
    size_t n = json_object_size(metrics);
    if (n == 0)
        FAIL("metrics is empty");
    if (n > lim->max_metrics)
        FAIL("%zu metrics in one message; at most %zu", n, lim->max_metrics);

    int64_t ts = received_ms;
    json_t *jt = json_object_get(msg, "timestamp");
    if (jt && !json_is_null(jt)) {
        if (json_is_string(jt)) {
            int rc = core_time_parse_iso(json_string_value(jt), &ts);
            if (rc)
                FAIL("timestamp '%.40s' is not an RFC 3339 date-time such as "
                     "2026-01-31T12:00:00Z",
                     json_string_value(jt));
        } else if (json_is_number(jt)) {
            if (epoch_ms(json_number_value(jt), &ts))
                FAIL("timestamp %.17g is not epoch seconds, milliseconds or "
                     "microseconds",
                     json_number_value(jt));
        } else {
            FAIL("timestamp must be an RFC 3339 string or an epoch number");
        }
        if (ts > received_ms + lim->max_future_ms)
            FAIL("timestamp is %lld s in the future (clock skew allowed: "
                 "%lld s)",
                 (long long)((ts - received_ms) / 1000),
                 (long long)(lim->max_future_ms / 1000));
        if (ts < lim->min_time_ms)
            FAIL("timestamp is before 2000-01-01; is the device clock set?");
    }
    json_t *meta = json_object_get(msg, "metadata");
    if (meta && !json_is_null(meta)) {
        if (!json_is_object(meta))
            FAIL("metadata must be an object");
        /* Measured, not serialised: json_dumpb with no buffer only counts. */
        size_t len = json_dumpb(meta, NULL, 0, JSON_COMPACT);
        if (len > lim->max_metadata)
            FAIL("metadata is %zu bytes; at most %zu", len, lim->max_metadata);
    }

    out->metrics = calloc(n, sizeof *out->metrics);
    out->metrics_json = metrics;
    if (!out->metrics)
        return CORE_ENOMEM;
    size_t i = 0;
    json_object_foreach(metrics, key, v) {
        struct pipeline_metric *m = &out->metrics[i];
        size_t klen = strlen(key);
        if (klen == 0 || klen > lim->max_key_len || !plain_text(key, klen)) {
            free(out->metrics);
            out->metrics = NULL;
            FAIL("metric name '%.40s' must be 1 to %zu printable bytes", key,
                 lim->max_key_len);
        }
        m->key = key;
        if (json_is_number(v)) {
            m->type = TSDB_NUMBER;
            m->num = json_number_value(v);
        } else if (json_is_boolean(v)) {
            m->type = TSDB_BOOL;
            m->num = json_is_true(v);
        } else if (json_is_string(v) &&
                   json_string_length(v) <= lim->max_string_len &&
                   strlen(json_string_value(v)) == json_string_length(v)) {
            m->type = TSDB_STRING;
            m->str = json_string_value(v);
        } else {
            free(out->metrics);
            out->metrics = NULL;
            if (json_is_string(v))
                FAIL("metric '%.40s': strings are at most %zu bytes, without "
                     "NUL",
                     key, lim->max_string_len);
            FAIL("metric '%.40s' must be a number, boolean or string (got %s)",
                 key,
                 json_is_null(v)     ? "null"
                 : json_is_array(v) ? "an array"
                                     : "an object");
        }
        i++;
    }
    out->nmetrics = n;
    snprintf(out->device_id, sizeof out->device_id, "%s", json_string_value(dev));
    core_uuid_normalize(out->device_id);
    out->received_ms = received_ms;
    out->ts_ms = ts;
    return CORE_OK;
}
