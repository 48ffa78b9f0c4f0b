/* The envelope of messages on the pipeline's streams (pipeline_internal.h). */
#include "pipeline_internal.h"

#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {"raw", "norm"};

const char *pipeline__transport(const char *name, size_t len)
{
    static const char *const known[] = {"http", "mqtt", "replay"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i]) == len && memcmp(known[i], name, len) == 0)
            return known[i];
    return NULL;
}

void pipeline__env_encode(struct core_buf *b, enum pipeline_env_kind kind,
                          const struct pipeline_msg *m, const char *body,
                          size_t len)
{
    core_buf_printf(b, "argus1 %s %s %s %s %lld %s\n", kind_names[kind],
                    m->raw_id, m->org_id, m->device_id,
                    (long long)m->received_ms, m->transport);
    core_buf_append(b, body, len);
}

/* The next space- or newline-terminated field of [*p, end). */
static bool field(const char **p, const char *end, char stop, const char **f,
                  size_t *flen)
{
    const char *s = *p, *e = memchr(s, stop, (size_t)(end - s));
    if (!e || e == s)
        return false;
    *f = s;
    *flen = (size_t)(e - s);
    *p = e + 1;
    return true;
}

static bool uuid_field(const char *f, size_t len, char out[CORE_UUID_STR_LEN])
{
    if (len != CORE_UUID_STR_LEN - 1)
        return false;
    memcpy(out, f, len);
    out[len] = '\0';
    if (!core_uuid_valid(out))
        return false;
    core_uuid_normalize(out);
    return true;
}

int pipeline__env_decode(const void *bytes, size_t len,
                         struct pipeline_env *out, char *reason,
                         size_t reason_len)
{
    const char *p = bytes, *end = p + len, *f;
    size_t flen;
    memset(out, 0, sizeof *out);
    const char *nl = memchr(p, '\n', len);
    if (!nl || len < 7 || memcmp(p, "argus1 ", 7) != 0) {
        snprintf(reason, reason_len, "not an argus1 envelope");
        return CORE_EINVAL;
    }
    p += 7;
    if (!field(&p, nl, ' ', &f, &flen)) {
        snprintf(reason, reason_len, "envelope without a kind");
        return CORE_EINVAL;
    }
    if (flen == 3 && memcmp(f, "raw", 3) == 0)
        out->kind = PIPELINE_ENV_RAW;
    else if (flen == 4 && memcmp(f, "norm", 4) == 0)
        out->kind = PIPELINE_ENV_NORM;
    else {
        snprintf(reason, reason_len, "unknown envelope kind '%.*s'",
                 (int)(flen < 16 ? flen : 16), f);
        return CORE_EINVAL;
    }
    const char *ids_end = nl;
    if (!field(&p, ids_end, ' ', &f, &flen) ||
        !uuid_field(f, flen, out->raw_id) ||
        !field(&p, ids_end, ' ', &f, &flen) ||
        !uuid_field(f, flen, out->org_id) ||
        !field(&p, ids_end, ' ', &f, &flen) ||
        !uuid_field(f, flen, out->device_id)) {
        snprintf(reason, reason_len, "envelope ids are not UUIDs");
        return CORE_EINVAL;
    }
    if (!field(&p, ids_end, ' ', &f, &flen) || flen > 18) {
        snprintf(reason, reason_len, "envelope without a receive time");
        return CORE_EINVAL;
    }
    int64_t ms = 0;
    for (size_t i = 0; i < flen; i++) {
        if (f[i] < '0' || f[i] > '9') {
            snprintf(reason, reason_len, "envelope receive time is not a number");
            return CORE_EINVAL;
        }
        ms = ms * 10 + (f[i] - '0');
    }
    out->received_ms = ms;
    /* The transport runs to the newline. */
    if (p >= nl || !(out->transport = pipeline__transport(p, (size_t)(nl - p)))) {
        snprintf(reason, reason_len, "envelope with an unknown transport");
        return CORE_EINVAL;
    }
    out->body = nl + 1;
    out->body_len = (size_t)(end - out->body);
    return CORE_OK;
}
