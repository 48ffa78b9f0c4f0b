/* The envelope of messages on the pipeline's streams (pipeline_internal.h). */
#include "pipeline_internal.h"

#include <stdio.h>
#include <stdlib.h>
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

/* A decimal count or length ending at a newline, at most 9 digits. */
static bool bundle_number(const char **p, const char *end, size_t *out)
{
    const char *s = *p;
    size_t v = 0, digits = 0;
    while (s < end && *s >= '0' && *s <= '9' && digits < 10) {
        v = v * 10 + (size_t)(*s++ - '0');
        digits++;
    }
    if (digits == 0 || digits > 9 || s >= end || *s != '\n')
        return false;
    *out = v;
    *p = s + 1;
    return true;
}

static int env_grow(struct pipeline_env **envs, size_t *cap, size_t want)
{
    if (want <= *cap)
        return CORE_OK;
    size_t c = *cap ? *cap : 64;
    while (c < want)
        c *= 2;
    struct pipeline_env *v = realloc(*envs, c * sizeof *v);
    if (!v)
        return CORE_ENOMEM;
    *envs = v;
    *cap = c;
    return CORE_OK;
}

int pipeline__env_decode_msg(const void *bytes, size_t len,
                             struct pipeline_env **envs, size_t *n,
                             size_t *cap, char *reason, size_t reason_len)
{
    static const char head[] = "argus1 bundle ";
    const size_t hl = sizeof head - 1;
    if (len < hl || memcmp(bytes, head, hl) != 0) {
        int rc = env_grow(envs, cap, *n + 1);
        if (rc == CORE_OK)
            rc = pipeline__env_decode(bytes, len, &(*envs)[*n], reason,
                                      reason_len);
        if (rc == CORE_OK)
            (*n)++;
        return rc;
    }
    const char *p = (const char *)bytes + hl, *end = (const char *)bytes + len;
    size_t count;
    if (!bundle_number(&p, end, &count) || count == 0 ||
        count > PIPELINE_BUNDLE_MSGS) {
        snprintf(reason, reason_len, "bundle without a valid count");
        return CORE_EINVAL;
    }
    int rc = env_grow(envs, cap, *n + count);
    if (rc)
        return rc;
    for (size_t i = 0; i < count; i++) {
        size_t elen;
        if (!bundle_number(&p, end, &elen) || elen > (size_t)(end - p)) {
            snprintf(reason, reason_len, "bundle envelope %zu has no valid "
                     "length", i);
            return CORE_EINVAL;
        }
        char why[96];
        if (pipeline__env_decode(p, elen, &(*envs)[*n + i], why, sizeof why)) {
            snprintf(reason, reason_len, "bundle envelope %zu: %s", i, why);
            return CORE_EINVAL;
        }
        p += elen;
    }
    if (p != end) {
        snprintf(reason, reason_len, "bytes after the bundle's last envelope");
        return CORE_EINVAL;
    }
    *n += count;
    return CORE_OK;
}

struct part_ix {
    uint32_t part;
    size_t i;
};

static int part_cmp(const void *a, const void *b)
{
    const struct part_ix *x = a, *y = b;
    if (x->part != y->part)
        return x->part < y->part ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i; /* stable: order within a key */
}

int pipeline__publish(struct bus *bus, const char *stream, const char *buf,
                      const size_t *ends, const char *const *keys, size_t n)
{
    if (!n)
        return CORE_OK;
    uint32_t parts = bus_partitions(bus);
    struct part_ix *ix = malloc(n * sizeof *ix);
    struct bus_pub *pubs = malloc(n * sizeof *pubs);
    size_t *starts = malloc(n * sizeof *starts); /* of each bus message */
    size_t *stops = malloc(n * sizeof *stops);
    uint32_t *counts = malloc(n * sizeof *counts);
    const char **pkeys = malloc(n * sizeof *pkeys);
    struct core_buf out;
    core_buf_init(&out);
    int rc = ix && pubs && starts && stops && counts && pkeys ? CORE_OK
                                                             : CORE_ENOMEM;
    size_t npub = 0;
    for (size_t i = 0; i < n && rc == CORE_OK; i++)
        ix[i] = (struct part_ix){
            bus_partition_for(keys[i], strlen(keys[i]), parts), i};
    if (rc == CORE_OK)
        qsort(ix, n, sizeof *ix, part_cmp);
    for (size_t a = 0; a < n && rc == CORE_OK;) {
        /* A run of one partition, cut at the bundle limits. */
        size_t b = a, bytes = 0;
        while (b < n && ix[b].part == ix[a].part && b - a < PIPELINE_BUNDLE_MSGS) {
            size_t i = ix[b].i, len = ends[i] - (i ? ends[i - 1] : 0);
            if (b > a && bytes + len > PIPELINE_BUNDLE_BYTES)
                break;
            bytes += len;
            b++;
        }
        starts[npub] = out.len;
        pkeys[npub] = keys[ix[a].i];
        if (b - a > 1)
            core_buf_printf(&out, "argus1 bundle %zu\n", b - a);
        for (size_t j = a; j < b; j++) {
            size_t i = ix[j].i, from = i ? ends[i - 1] : 0;
            if (b - a > 1)
                core_buf_printf(&out, "%zu\n", ends[i] - from);
            core_buf_append(&out, buf + from, ends[i] - from);
        }
        counts[npub] = (uint32_t)(b - a);
        stops[npub++] = out.len;
        a = b;
    }
    if (rc == CORE_OK && out.oom)
        rc = CORE_ENOMEM;
    if (rc == CORE_OK) {
        /* Pointers only now: the buffer moved while it grew. */
        for (size_t j = 0; j < npub; j++)
            pubs[j] = (struct bus_pub){pkeys[j], strlen(pkeys[j]),
                                       out.data + starts[j], stops[j] - starts[j],
                                       counts[j]};
        rc = bus_stream_publish_batch(bus, stream, pubs, npub);
    }
    core_buf_fini(&out);
    free(pkeys);
    free(counts);
    free(stops);
    free(starts);
    free(pubs);
    free(ix);
    return rc;
}
