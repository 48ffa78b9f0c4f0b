/* The dead-letter queue and the replay of raw telemetry. */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pipeline_dlq_put(struct db_conn *c, const struct pipeline_dead *d)
{
    char id[CORE_UUID_STR_LEN], now[CORE_TIME_ISO_LEN], recv[CORE_TIME_ISO_LEN];
    core_uuid7(id);
    core_time_format_iso(core_time_now_ms(), now);
    core_time_format_iso(d->received_ms, recv);
    struct db_stmt *s;
    int rc = db_prepare(
        c,
        "INSERT INTO dlq (id, organization_id, stage, reason, raw_id, "
        "device_id, payload, received_at, attempts, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?) "
        "ON CONFLICT (raw_id, stage) WHERE raw_id IS NOT NULL DO UPDATE SET "
        "reason = excluded.reason, attempts = dlq.attempts + 1, "
        "updated_at = excluded.updated_at",
        &s);
    if (rc)
        return rc;
    bool row;
    db_bind_text(s, 1, id);
    db_bind_text(s, 2, d->org_id);
    db_bind_text(s, 3, d->stage);
    db_bind_text(s, 4, d->reason);
    if (d->raw_id)
        db_bind_text(s, 5, d->raw_id);
    else
        db_bind_null(s, 5);
    if (d->device_id)
        db_bind_text(s, 6, d->device_id);
    else
        db_bind_null(s, 6);
    db_bind_text(s, 7, d->payload);
    db_bind_text(s, 8, recv);
    db_bind_text(s, 9, now);
    db_bind_text(s, 10, now);
    rc = db_step(s, &row);
    db_finalize(s);
    return rc;
}

/* A raw row read for a replay, and what became of it. */
struct replay_item {
    char raw_id[CORE_UUID_STR_LEN];
    char device_id[CORE_UUID_STR_LEN];
    int64_t received_ms;
    char *transport;
    char *payload;
    char reason[256]; /* empty when it normalised */
};

struct dead_list {
    struct replay_item *items;
    size_t n;
    const char *org_id;
};

static int put_dead(struct db_conn *c, void *ctx)
{
    struct dead_list *dl = ctx;
    int rc = CORE_OK;
    for (size_t i = 0; i < dl->n && rc == CORE_OK; i++) {
        struct replay_item *it = &dl->items[i];
        if (!it->reason[0])
            continue;
        struct pipeline_dead d = {"normalize", it->reason, it->raw_id,
                                  dl->org_id, it->device_id, it->payload,
                                  it->received_ms};
        rc = pipeline_dlq_put(c, &d);
    }
    return rc;
}

/* Whether the device still exists in the organisation. */
static int device_alive(struct db_conn *c, const char *org, const char *dev,
                        bool *alive)
{
    struct db_stmt *s;
    int rc = db_prepare(c,
                        "SELECT 1 FROM devices WHERE id = ? AND organization_id "
                        "= ? AND deleted_at IS NULL",
                        &s);
    if (rc)
        return rc;
    db_bind_text(s, 1, dev);
    db_bind_text(s, 2, org);
    rc = db_step(s, alive);
    db_finalize(s);
    return rc;
}

static int read_raw(struct db *db, const char *org, const char *device,
                    int64_t from_ms, int64_t to_ms, size_t limit,
                    struct replay_item *items, size_t *n)
{
    char from[CORE_TIME_ISO_LEN], to[CORE_TIME_ISO_LEN];
    core_time_format_iso(from_ms, from);
    core_time_format_iso(to_ms, to);
    struct db_conn *c;
    int rc = db_conn_acquire(db, false, &c);
    if (rc)
        return rc;
    struct db_stmt *s;
    rc = db_prepare(c,
                    device ? "SELECT id, device_id, received_at, transport, payload "
                             "FROM telemetry_raw WHERE organization_id = ? AND "
                             "received_at >= ? AND received_at < ? AND "
                             "device_id = ? ORDER BY received_at, id LIMIT ?"
                           : "SELECT id, device_id, received_at, transport, payload "
                             "FROM telemetry_raw WHERE organization_id = ? AND "
                             "received_at >= ? AND received_at < ? "
                             "ORDER BY received_at, id LIMIT ?",
                    &s);
    *n = 0;
    if (rc == CORE_OK) {
        int i = 1;
        db_bind_text(s, i++, org);
        db_bind_text(s, i++, from);
        db_bind_text(s, i++, to);
        if (device)
            db_bind_text(s, i++, device);
        db_bind_int64(s, i, (int64_t)limit);
        bool row;
        while ((rc = db_step(s, &row)) == CORE_OK && row) {
            struct replay_item *it = &items[*n];
            memset(it, 0, sizeof *it);
            snprintf(it->raw_id, sizeof it->raw_id, "%s", db_col_text(s, 0));
            snprintf(it->device_id, sizeof it->device_id, "%s", db_col_text(s, 1));
            if (core_time_parse_iso(db_col_text(s, 2), &it->received_ms))
                it->received_ms = 0;
            it->transport = strdup(db_col_text(s, 3));
            it->payload = strdup(db_col_text(s, 4));
            (*n)++;
            if (!it->transport || !it->payload) {
                rc = CORE_ENOMEM;
                break;
            }
        }
        db_finalize(s);
    }
    db_conn_release(c);
    return rc;
}

int pipeline_replay(struct pipeline *p, const struct pipeline_limits *lim,
                    const char *org_id, const char *device_id,
                    int64_t from_ms, int64_t to_ms, size_t limit,
                    size_t *replayed, size_t *dead, bool *more)
{
    *replayed = *dead = 0;
    *more = false;
    struct replay_item *items = calloc(limit + 1, sizeof *items);
    struct pipeline_msg *msgs = calloc(limit + 1, sizeof *msgs);
    size_t n = 0, nmsgs = 0;
    struct db *db = pipeline__db(p);
    int rc = items && msgs ? read_raw(db, org_id, device_id, from_ms, to_ms,
                                      limit + 1, items, &n)
                           : CORE_ENOMEM;
    if (rc)
        goto out;
    if (n > limit) { /* the extra row only told that there is more */
        *more = true;
        free(items[limit].transport);
        free(items[limit].payload);
        n = limit;
    }
    struct db_conn *c = NULL;
    if ((rc = db_conn_acquire(db, false, &c)))
        goto out;
    char last_dev[CORE_UUID_STR_LEN] = "";
    bool last_alive = false;
    for (size_t i = 0; i < n && rc == CORE_OK; i++) {
        struct replay_item *it = &items[i];
        if (strcmp(it->device_id, last_dev) != 0) {
            rc = device_alive(c, org_id, it->device_id, &last_alive);
            snprintf(last_dev, sizeof last_dev, "%s", it->device_id);
        }
        if (rc)
            break;
        if (!last_alive) {
            snprintf(it->reason, sizeof it->reason,
                     "device %s no longer exists", it->device_id);
            continue;
        }
        struct pipeline_msg *m = &msgs[nmsgs];
        int nrc = pipeline_parse_stored("stored payload", it->payload,
                                        strlen(it->payload), it->received_ms,
                                        lim, m, it->reason, sizeof it->reason);
        if (nrc == CORE_EINVAL)
            continue;
        if (nrc) {
            rc = nrc;
            break;
        }
        /* The stored message must still be about the device it was
         * stored for. */
        if (strcmp(m->device_id, it->device_id) != 0) {
            snprintf(it->reason, sizeof it->reason,
                     "stored for device %s but names %s", it->device_id,
                     m->device_id);
            pipeline_msg_fini(m);
            continue;
        }
        it->reason[0] = '\0';
        memcpy(m->raw_id, it->raw_id, sizeof m->raw_id);
        snprintf(m->org_id, sizeof m->org_id, "%s", org_id);
        m->transport = it->transport;
        nmsgs++;
    }
    db_conn_release(c);
    if (rc)
        goto out;
    struct dead_list dl = {items, n, org_id};
    rc = pipeline_store_sync(p, msgs, nmsgs, put_dead, &dl);
    if (rc == CORE_OK) {
        *replayed = nmsgs;
        for (size_t i = 0; i < n; i++)
            *dead += items[i].reason[0] != '\0';
    }
out:
    for (size_t i = 0; msgs && i < nmsgs; i++)
        pipeline_msg_fini(&msgs[i]); /* transport stays the item's */
    for (size_t i = 0; items && i < n; i++) {
        free(items[i].transport);
        free(items[i].payload);
    }
    free(msgs);
    free(items);
    return rc;
}
