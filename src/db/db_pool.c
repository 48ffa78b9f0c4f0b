#include "db_internal.h"

#include "core.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

int db__pool_init(struct db__pool *p, const char *name, int cap)
{
    static const char *const labels[] = {"pool", NULL};
    p->m_in_use = core_metric_series(
        core_metric_register("argus_db_pool_in_use",
                             "Store connections checked out of the pool.",
                             CORE_METRIC_GAUGE, labels, NULL, 0),
        name);
    p->m_waits = core_metric_series(
        core_metric_register("argus_db_pool_waits_total",
                             "Checkouts that had to wait for a connection.",
                             CORE_METRIC_COUNTER, labels, NULL, 0),
        name);
    p->m_exhausted = core_metric_series(
        core_metric_register("argus_db_pool_exhausted_total",
                             "Checkouts that gave up: no connection came free "
                             "within the busy timeout.",
                             CORE_METRIC_COUNTER, labels, NULL, 0),
        name);
    core_metric_set(core_metric_series(
                        core_metric_register("argus_db_pool_size",
                                             "Store connections in the pool.",
                                             CORE_METRIC_GAUGE, labels, NULL, 0),
                        name),
                    cap);
    pthread_condattr_t attr;
    p->idle = calloc((size_t)cap, sizeof *p->idle);
    if (!p->idle)
        return CORE_ENOMEM;
    p->cap = cap;
    p->nidle = 0;
    /* The wait deadline uses the monotonic clock so that a wall-clock
     * step cannot stretch or cut it short. */
    if (pthread_condattr_init(&attr) != 0)
        goto fail;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_cond_init(&p->cv, &attr) != 0) {
        pthread_condattr_destroy(&attr);
        goto fail;
    }
    pthread_condattr_destroy(&attr);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        pthread_cond_destroy(&p->cv);
        goto fail;
    }
    p->inited = true;
    return CORE_OK;
fail:
    free(p->idle);
    p->idle = NULL;
    return CORE_EINTERNAL;
}

void db__pool_fini(struct db__pool *p)
{
    if (!p->inited)
        return;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->idle);
    p->idle = NULL;
    p->inited = false;
}

void db__pool_add(struct db__pool *p, struct db_conn *c)
{
    p->idle[p->nidle++] = c;
}

int db__pool_take(struct db__pool *p, int timeout_ms, struct db_conn **out)
{
    struct timespec deadline;
    int rc = CORE_OK;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    if (p->nidle == 0)
        core_metric_add(p->m_waits, 1);
    while (p->nidle == 0) {
        int e = pthread_cond_timedwait(&p->cv, &p->mu, &deadline);
        if (e == ETIMEDOUT && p->nidle == 0) {
            rc = CORE_EBUSY;
            core_metric_add(p->m_exhausted, 1);
            break;
        }
    }
    if (rc == CORE_OK) {
        *out = p->idle[--p->nidle];
        core_metric_set(p->m_in_use, p->cap - p->nidle);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void db__pool_put(struct db__pool *p, struct db_conn *c)
{
    pthread_mutex_lock(&p->mu);
    p->idle[p->nidle++] = c;
    core_metric_set(p->m_in_use, p->cap - p->nidle);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}
