#include "core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 8

struct core_metric_series {
    struct core_metric_series *next;
    const struct core_metric *family;
    char *values[MAX_LABELS];
    _Atomic uint64_t value; /* a double's bits: counter or gauge value, or
                               histogram sum */
    _Atomic uint64_t count; /* histogram observations */
    _Atomic uint64_t *buckets;
};

struct core_metric {
    struct core_metric *next;
    char *name;
    char *help;
    enum core_metric_kind kind;
    size_t nlabels;
    char *labels[MAX_LABELS];
    double *bounds;
    size_t nbounds;
    pthread_mutex_t lock; /* guards the series list while it grows */
    struct core_metric_series *_Atomic series;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct core_metric *registry;

static const double latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                         0.025,  0.05,  0.1,    0.25,  0.5,
                                         1,      2.5,   5,      10};

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static void family_free(struct core_metric *m)
{
    struct core_metric_series *s = atomic_load(&m->series);
    while (s) {
        struct core_metric_series *n = s->next;
        for (size_t i = 0; i < m->nlabels; i++)
            free(s->values[i]);
        free(s->buckets);
        free(s);
        s = n;
    }
    for (size_t i = 0; i < m->nlabels; i++)
        free(m->labels[i]);
    pthread_mutex_destroy(&m->lock);
    free(m->bounds);
    free(m->name);
    free(m->help);
    free(m);
}

struct core_metric *core_metric_register(const char *name, const char *help,
                                         enum core_metric_kind kind,
                                         const char *const *labels,
                                         const double *buckets,
                                         size_t nbuckets)
{
    pthread_mutex_lock(&registry_lock);
    struct core_metric *m;
    for (m = registry; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            goto out;
    m = calloc(1, sizeof *m);
    if (!m)
        goto out;
    pthread_mutex_init(&m->lock, NULL);
    m->kind = kind;
    m->name = strdup(name);
    m->help = strdup(help);
    if (!m->name || !m->help)
        goto fail;
    for (; labels && labels[m->nlabels] && m->nlabels < MAX_LABELS;
         m->nlabels++) {
        m->labels[m->nlabels] = strdup(labels[m->nlabels]);
        if (!m->labels[m->nlabels])
            goto fail;
    }
    if (kind == CORE_METRIC_HISTOGRAM) {
        if (!buckets) {
            buckets = latency_buckets;
            nbuckets = sizeof latency_buckets / sizeof latency_buckets[0];
        }
        m->bounds = malloc(nbuckets * sizeof *m->bounds);
        if (!m->bounds)
            goto fail;
        memcpy(m->bounds, buckets, nbuckets * sizeof *m->bounds);
        m->nbounds = nbuckets;
    }
    m->next = registry;
    registry = m;
    goto out;
fail:
    family_free(m);
    m = NULL;
out:
    pthread_mutex_unlock(&registry_lock);
    return m;
}

static struct core_metric_series *find(struct core_metric *m,
                                       const char **vals)
{
    for (struct core_metric_series *s = atomic_load(&m->series); s;
         s = s->next) {
        size_t i = 0;
        while (i < m->nlabels && strcmp(s->values[i], vals[i]) == 0)
            i++;
        if (i == m->nlabels)
            return s;
    }
    return NULL;
}

struct core_metric_series *core_metric_series(struct core_metric *m, ...)
{
    if (!m)
        return NULL;
    const char *vals[MAX_LABELS];
    va_list ap;
    va_start(ap, m);
    for (size_t i = 0; i < m->nlabels; i++) {
        vals[i] = va_arg(ap, const char *);
        if (!vals[i])
            vals[i] = "";
    }
    va_end(ap);

    /* Series are only ever prepended, so a reader walking the list without
     * the lock sees a consistent (possibly shorter) list. */
    struct core_metric_series *s = find(m, vals);
    if (s)
        return s;
    pthread_mutex_lock(&m->lock);
    s = find(m, vals);
    if (s)
        goto out;
    s = calloc(1, sizeof *s);
    if (!s)
        goto out;
    s->family = m;
    for (size_t i = 0; i < m->nlabels; i++) {
        s->values[i] = strdup(vals[i]);
        if (!s->values[i])
            goto fail;
    }
    if (m->kind == CORE_METRIC_HISTOGRAM) {
        s->buckets = calloc(m->nbounds, sizeof *s->buckets);
        if (!s->buckets)
            goto fail;
    }
    s->next = atomic_load(&m->series);
    atomic_store(&m->series, s);
    goto out;
fail:
    for (size_t i = 0; i < m->nlabels; i++)
        free(s->values[i]);
    free(s->buckets);
    free(s);
    s = NULL;
out:
    pthread_mutex_unlock(&m->lock);
    return s;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        p, &old, dbits(bitsd(old) + v), memory_order_relaxed,
        memory_order_relaxed))
        ;
}

void core_metric_add(struct core_metric_series *s, double v)
{
    if (s)
        atomic_add_double(&s->value, v);
}

void core_metric_set(struct core_metric_series *s, double v)
{
    if (s)
        atomic_store_explicit(&s->value, dbits(v), memory_order_relaxed);
}

/* Buckets are stored non-cumulative and summed when rendered, so an
 * observation touches one bucket. */
void core_metric_observe(struct core_metric_series *s, double v)
{
    if (!s || !s->buckets)
        return;
    const struct core_metric *m = s->family;
    size_t i = 0;
    while (i < m->nbounds && v > m->bounds[i])
        i++;
    if (i < m->nbounds)
        atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    atomic_add_double(&s->value, v);
}

static void render_labels(struct core_buf *b, const struct core_metric *m,
                          const struct core_metric_series *s,
                          const char *extra_name, const char *extra_val)
{
    if (m->nlabels == 0 && !extra_name)
        return;
    core_buf_putc(b, '{');
    for (size_t i = 0; i < m->nlabels; i++) {
        if (i)
            core_buf_putc(b, ',');
        core_buf_printf(b, "%s=", m->labels[i]);
        core_buf_json_string(b, s->values[i]);
    }
    if (extra_name)
        core_buf_printf(b, "%s%s=\"%s\"", m->nlabels ? "," : "", extra_name,
                        extra_val);
    core_buf_putc(b, '}');
}

void core_metrics_render(struct core_buf *b)
{
    static const char *const kinds[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&registry_lock);
    for (struct core_metric *m = registry; m; m = m->next) {
        core_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help,
                        m->name, kinds[m->kind]);
        for (struct core_metric_series *s = atomic_load(&m->series); s;
             s = s->next) {
            double v = bitsd(atomic_load(&s->value));
            if (m->kind != CORE_METRIC_HISTOGRAM) {
                core_buf_puts(b, m->name);
                render_labels(b, m, s, NULL, NULL);
                core_buf_printf(b, " %.17g\n", v);
                continue;
            }
            uint64_t cum = 0;
            char le[64];
            for (size_t i = 0; i < m->nbounds; i++) {
                cum += atomic_load(&s->buckets[i]);
                snprintf(le, sizeof le, "%g", m->bounds[i]);
                core_buf_printf(b, "%s_bucket", m->name);
                render_labels(b, m, s, "le", le);
                core_buf_printf(b, " %llu\n", (unsigned long long)cum);
            }
            uint64_t count = atomic_load(&s->count);
            core_buf_printf(b, "%s_bucket", m->name);
            render_labels(b, m, s, "le", "+Inf");
            core_buf_printf(b, " %llu\n%s_sum", (unsigned long long)count,
                            m->name);
            render_labels(b, m, s, NULL, NULL);
            core_buf_printf(b, " %.17g\n%s_count", v, m->name);
            render_labels(b, m, s, NULL, NULL);
            core_buf_printf(b, " %llu\n", (unsigned long long)count);
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

void core_metrics_reset(void)
{
    pthread_mutex_lock(&registry_lock);
    while (registry) {
        struct core_metric *n = registry->next;
        family_free(registry);
        registry = n;
    }
    pthread_mutex_unlock(&registry_lock);
}
