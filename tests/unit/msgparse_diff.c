#include "msgparse_diff.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normalize_ref.h"

#define NOW 1795435200000LL
#define MAX_MSGS 1000

struct got {
    size_t index;
    struct pipeline_msg m; /* accepted when m.block */
    char reason[256];
};

struct got_list {
    struct got *v;
    size_t n, cap;
};

static int got_cb(size_t index, struct pipeline_msg *m, const char *reason,
                  void *ctx)
{
    struct got_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct got *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            abort();
        l->v = v;
        l->cap = cap;
    }
    struct got *g = &l->v[l->n++];
    memset(g, 0, sizeof *g);
    g->index = index;
    if (m)
        g->m = *m;
    else
        snprintf(g->reason, sizeof g->reason, "%s", reason);
    return 0;
}

static void got_free(struct got_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        pipeline_msg_fini(&l->v[i].m);
    free(l->v);
}

#define DIFF(...)                                                           \
    do {                                                                    \
        snprintf(why, why_len, __VA_ARGS__);                                \
        return 1;                                                           \
    } while (0)

/* Does text read as the same JSON as want? */
static bool same_json(const char *text, size_t len, const json_t *want)
{
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    bool same = v && json_equal(v, want);
    json_decref(v);
    return same;
}

static int compare_one(json_t *elem, const struct got *g, bool whole,
                       const char *text, size_t len,
                       const struct pipeline_limits *lim, char *why,
                       size_t why_len)
{
    struct ref_msg r;
    char reason[256];
    int rc = ref_normalize(elem, NOW, lim, &r, reason, sizeof reason);
    if (rc != CORE_OK && rc != CORE_EINVAL)
        DIFF("reference failed: %d", rc);
    if (rc == CORE_EINVAL) {
        if (g->m.block)
            DIFF("message %zu: reference refuses (%s), new accepts", g->index,
                 reason);
        if (strcmp(reason, g->reason) != 0)
            DIFF("message %zu: reasons differ: '%s' vs '%s'", g->index, reason,
                 g->reason);
        return 0;
    }
    int out = 1;
    const struct pipeline_msg *m = &g->m;
    if (!m->block) {
        snprintf(why, why_len, "message %zu: reference accepts, new refuses (%s)",
                 g->index, g->reason);
        goto done;
    }
    if (strcmp(r.device_id, m->device_id) || r.ts_ms != m->ts_ms ||
        m->received_ms != NOW || r.nmetrics != m->nmetrics) {
        snprintf(why, why_len, "message %zu: device, time or count differ",
                 g->index);
        goto done;
    }
    for (size_t i = 0; i < r.nmetrics; i++) {
        const struct pipeline_metric *a = &r.metrics[i], *b = &m->metrics[i];
        if (strcmp(a->key, b->key) || a->type != b->type ||
            memcmp(&a->num, &b->num, sizeof a->num) ||
            (a->type == TSDB_STRING && strcmp(a->str, b->str))) {
            snprintf(why, why_len,
                     "message %zu metric %zu ('%s'): %d %.17g vs '%s' %d %.17g",
                     g->index, i, a->key, a->type, a->num, b->key, b->type,
                     b->num);
            goto done;
        }
    }
    if (whole ? (m->payload_len != len || memcmp(m->payload, text, len))
              : !same_json(m->payload, m->payload_len, elem)) {
        snprintf(why, why_len, "message %zu: payload differs", g->index);
        goto done;
    }
    if (m->metrics_text < m->payload ||
        m->metrics_text + m->metrics_text_len > m->payload + m->payload_len ||
        !same_json(m->metrics_text, m->metrics_text_len, r.metrics_json)) {
        snprintf(why, why_len, "message %zu: metrics text differs", g->index);
        goto done;
    }
    out = 0;
done:
    ref_msg_fini(&r);
    return out;
}

static int diff_mode(const char *text, size_t len, bool batch,
                     const struct pipeline_limits *lim, char *why,
                     size_t why_len)
{
    static struct pipeline_parser *p;
    if (!p && pipeline_parser_create(&p))
        abort();
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    struct got_list l = {NULL, 0, 0};
    struct pipeline_parse_args a = {text, len, batch, MAX_MSGS, NOW, lim,
                                    got_cb, &l};
    size_t n;
    bool array;
    char err[160];
    int rc = pipeline_parse(p, &a, &n, &array, err, sizeof err);
    int out = 1;
    if (rc != CORE_OK && rc != CORE_EPARSE) {
        snprintf(why, why_len, "parse returned %d", rc);
        goto done;
    }
    /* The one intended difference: jansson skips a raw NUL byte right after
     * a number or true/false/null (its stream takes NUL for "nothing
     * buffered" after an unget); we refuse every NUL byte, as RFC 8259
     * does. */
    if (doc && rc == CORE_EPARSE && memchr(text, '\0', len)) {
        out = 0;
        goto done;
    }
    if (!doc != (rc == CORE_EPARSE)) {
        snprintf(why, why_len, "JSON or not: jansson %s, new %s",
                 doc ? "accepts" : jerr.text, rc ? err : "accepts");
        goto done;
    }
    if (!doc) {
        out = err[0] ? 0 : 1;
        if (out)
            snprintf(why, why_len, "a parse error without a text");
        goto done;
    }
    bool is_array = json_is_array(doc);
    size_t want = batch && is_array ? json_array_size(doc) : 1;
    if (array != is_array || n != want) {
        snprintf(why, why_len, "shape: array %d/%d, n %zu/%zu", is_array, array,
                 want, n);
        goto done;
    }
    size_t judged = want < MAX_MSGS ? want : MAX_MSGS;
    if (l.n != judged) {
        snprintf(why, why_len, "%zu messages handed over, %zu expected", l.n,
                 judged);
        goto done;
    }
    for (size_t i = 0; i < judged; i++) {
        if (l.v[i].index != i) {
            snprintf(why, why_len, "message %zu handed over as %zu", i,
                     l.v[i].index);
            goto done;
        }
        json_t *elem = batch && is_array ? json_array_get(doc, i) : doc;
        if (compare_one(elem, &l.v[i], !(batch && is_array), text, len, lim,
                        why, why_len))
            goto done;
    }
    out = 0;
done:
    got_free(&l);
    json_decref(doc);
    return out;
}

int msgparse_diff(const char *text, size_t len, char *why, size_t why_len)
{
    struct pipeline_limits def = {0};
    pipeline_limits_default(&def);
    struct pipeline_limits small = {.max_metrics = 3,
                                    .max_key_len = 4,
                                    .max_string_len = 5,
                                    .max_metadata = 24,
                                    .max_future_ms = 1000};
    pipeline_limits_default(&small);
    const struct pipeline_limits *lims[] = {&def, &small};
    for (int i = 0; i < 2; i++)
        for (int batch = 0; batch < 2; batch++)
            if (diff_mode(text, len, batch, lims[i], why, why_len)) {
                size_t at = strlen(why);
                snprintf(why + at, why_len - at, " (%s limits, %s)",
                         i ? "small" : "default", batch ? "batch" : "single");
                return 1;
            }
    return 0;
}
