/*
 * The dead-letter queue over HTTP (list, inspect, replay, delete) and the
 * replay of raw telemetry through the current rules.
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static json_t *entry_json(struct db_stmt *s, bool with_payload)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:I, s:s, s:s, s:s}", "id", db_col_text(s, 0),
        "stage", db_col_text(s, 1), "reason", db_col_text(s, 2), "rawId",
        db_col_is_null(s, 3) ? json_null() : json_string(db_col_text(s, 3)),
        "deviceId",
        db_col_is_null(s, 4) ? json_null() : json_string(db_col_text(s, 4)),
        "attempts", (json_int_t)db_col_int64(s, 5), "receivedAt",
        db_col_text(s, 6), "createdAt", db_col_text(s, 7), "updatedAt",
        db_col_text(s, 8));
    if (o && with_payload) {
        const char *text = db_col_text(s, 9);
        json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
        json_object_set_new(o, "payload", v ? v : json_string(text));
    }
    return o;
}

#define ENTRY_COLS                                                          \
    "id, stage, reason, raw_id, device_id, attempts, received_at, "        \
    "created_at, updated_at, payload"

static void list_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    const struct api_op *op = req->route->data;
    int64_t limit, offset, from = 0, to = 0;
    if (!api__query_known(req, op->query, res) ||
        !api__paging(req, &limit, &offset, res) ||
        !api__query_time(req, "startTime", 0, &from, res) ||
        !api__query_time(req, "endTime", 0, &to, res))
        return;
    const char *stage = http_req_query(req, "stage");
    const char *dev = http_req_query(req, "deviceId");
    const char *reason = http_req_query(req, "reason");
    if (dev && !core_uuid_valid(dev)) {
        http_res_problem(res, HTTP_PROBLEM_VALIDATION, "deviceId must be a UUID");
        return;
    }
    if ((stage && strlen(stage) > 64) || (reason && strlen(reason) > 200)) {
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "stage is at most 64 and reason at most 200 bytes");
        return;
    }
    char where[300] = " WHERE organization_id = ?";
    const char *binds[6];
    int nb = 0;
    binds[nb++] = api__principal(req)->org_id;
    char fiso[CORE_TIME_ISO_LEN], tiso[CORE_TIME_ISO_LEN], like[210];
    if (stage) {
        strcat(where, " AND stage = ?");
        binds[nb++] = stage;
    }
    if (dev) {
        strcat(where, " AND device_id = ?");
        binds[nb++] = dev;
    }
    if (reason) {
        strcat(where, " AND reason LIKE ?");
        snprintf(like, sizeof like, "%%%s%%", reason);
        binds[nb++] = like;
    }
    if (http_req_query(req, "startTime")) {
        core_time_format_iso(from, fiso);
        strcat(where, " AND created_at >= ?");
        binds[nb++] = fiso;
    }
    if (http_req_query(req, "endTime")) {
        core_time_format_iso(to, tiso);
        strcat(where, " AND created_at < ?");
        binds[nb++] = tiso;
    }
    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        return;
    char sql[700];
    snprintf(sql, sizeof sql,
             "SELECT " ENTRY_COLS " FROM dlq%s ORDER BY created_at DESC, id DESC "
             "LIMIT ? OFFSET ?",
             where);
    json_t *items = json_array();
    int64_t total = 0;
    struct db_stmt *s;
    bool row;
    int rc = db_prepare(c, sql, &s);
    if (rc == CORE_OK) {
        for (int i = 0; i < nb; i++)
            db_bind_text(s, i + 1, binds[i]);
        db_bind_int64(s, nb + 1, limit);
        db_bind_int64(s, nb + 2, offset);
        while ((rc = db_step(s, &row)) == CORE_OK && row)
            json_array_append_new(items, entry_json(s, false));
        db_finalize(s);
    }
    snprintf(sql, sizeof sql, "SELECT count(*) FROM dlq%s", where);
    if (rc == CORE_OK && (rc = db_prepare(c, sql, &s)) == CORE_OK) {
        for (int i = 0; i < nb; i++)
            db_bind_text(s, i + 1, binds[i]);
        if ((rc = db_step(s, &row)) == CORE_OK && row)
            total = db_col_int64(s, 0);
        db_finalize(s);
    }
    db_conn_release(c);
    if (rc) {
        json_decref(items);
        http_res_error(res, rc);
        return;
    }
    http_res_json(res, 200, api__page(items, limit, offset, total));
}

/* One entry of the caller's organisation: as JSON in *out (NULL when there
 * is none) and, when text is not NULL, its payload as stored in *text
 * (caller frees). */
static int entry_get(struct db_conn *c, const char *org, const char *id,
                     json_t **out, char **text)
{
    struct db_stmt *s;
    *out = NULL;
    if (text)
        *text = NULL;
    int rc = db_prepare(c,
                        "SELECT " ENTRY_COLS " FROM dlq WHERE id = ? AND "
                        "organization_id = ?",
                        &s);
    if (rc)
        return rc;
    db_bind_text(s, 1, id);
    db_bind_text(s, 2, org);
    bool row;
    rc = db_step(s, &row);
    if (rc == CORE_OK && row) {
        *out = entry_json(s, true);
        const char *t = db_col_text(s, 9);
        if (text && !(*text = strdup(t ? t : "")))
            rc = CORE_ENOMEM;
    }
    db_finalize(s);
    return rc;
}

static void get_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    char id[CORE_UUID_STR_LEN];
    if (!api__query_known(req, NULL, res) || !api__path_id(req, "id", id, res))
        return;
    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        return;
    json_t *o;
    int rc = entry_get(c, api__principal(req)->org_id, id, &o, NULL);
    db_conn_release(c);
    if (rc)
        http_res_error(res, rc);
    else if (!o)
        http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no DLQ entry with id %s", id);
    else
        http_res_json(res, 200, o);
}

static int run_delete(struct db_conn *c, const char *org, const char *id,
                      bool *found)
{
    struct db_stmt *s;
    int rc = db_prepare(c, "DELETE FROM dlq WHERE id = ? AND organization_id = ?",
                        &s);
    if (rc)
        return rc;
    bool row;
    db_bind_text(s, 1, id);
    db_bind_text(s, 2, org);
    rc = db_step(s, &row);
    *found = db_changes(s) > 0;
    db_finalize(s);
    return rc;
}

static void delete_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    const struct api_principal *p = api__principal(req);
    char id[CORE_UUID_STR_LEN];
    if (!api__query_known(req, NULL, res) || !api__path_id(req, "id", id, res))
        return;
    struct db_conn *c = api__conn(api, true, res);
    if (!c)
        return;
    bool found = false;
    int rc = db_begin(c);
    if (rc == CORE_OK)
        rc = run_delete(c, p->org_id, id, &found);
    if (rc == CORE_OK && found)
        rc = api__audit(c, p, "delete", "dlq entry", id, NULL);
    if (rc == CORE_OK)
        rc = db_commit(c);
    else
        db_rollback(c);
    db_conn_release(c);
    if (rc)
        http_res_error(res, rc);
    else if (!found)
        http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no DLQ entry with id %s", id);
    else
        res->status = 204;
}

struct entry_delete {
    const char *org, *id;
};

static int delete_also(struct db_conn *c, void *ctx)
{
    struct entry_delete *d = ctx;
    bool found;
    return run_delete(c, d->org, d->id, &found);
}

/* Replays one entry: stored and removed in one transaction when it now
 * passes; otherwise the entry records the attempt and the new reason.
 * *ok tells which; reason (when not ok) says why. */
static int replay_one(struct api *api, const char *org, const char *id,
                      bool *found, bool *ok, char *reason, size_t reason_len)
{
    struct db_conn *c;
    json_t *e = NULL;
    char *text = NULL;
    *found = *ok = false;
    int rc = db_conn_acquire(api->db, false, &c);
    if (rc)
        return rc;
    rc = entry_get(c, org, id, &e, &text);
    bool alive = false;
    const char *dev = json_string_value(json_object_get(e, "deviceId"));
    if (rc == CORE_OK && e && dev)
        rc = api__row_exists(c, "devices", org, dev, &alive);
    db_conn_release(c);
    if (rc || !e) {
        json_decref(e);
        free(text);
        return rc;
    }
    *found = true;
    int64_t received = core_time_now_ms();
    core_time_parse_iso(json_string_value(json_object_get(e, "receivedAt")),
                        &received);
    struct pipeline_msg m;
    int nrc = pipeline_parse_stored("stored payload", text, strlen(text),
                                    received, &api->limits, &m, reason,
                                    reason_len);
    if (nrc == CORE_OK && !alive) {
        snprintf(reason, reason_len, "device %s no longer exists",
                 m.device_id);
        pipeline_msg_fini(&m);
        nrc = CORE_EINVAL;
    }
    if (nrc == CORE_OK) {
        const char *raw = json_string_value(json_object_get(e, "rawId"));
        if (raw)
            snprintf(m.raw_id, sizeof m.raw_id, "%s", raw);
        else
            core_uuid7(m.raw_id);
        snprintf(m.org_id, sizeof m.org_id, "%s", org);
        m.transport = "replay";
        struct entry_delete d = {org, id};
        rc = pipeline_store_sync(api->pipeline, &m, 1, delete_also, &d);
        *ok = rc == CORE_OK;
        pipeline_msg_fini(&m);
    } else if (nrc == CORE_EINVAL) {
        /* Still failing: record the attempt and the current reason. */
        if ((rc = db_conn_acquire(api->db, true, &c)) == CORE_OK) {
            struct db_stmt *s;
            char now[CORE_TIME_ISO_LEN];
            api__now(now);
            if ((rc = db_prepare(c,
                                 "UPDATE dlq SET attempts = attempts + 1, reason "
                                 "= ?, updated_at = ? WHERE id = ?",
                                 &s)) == CORE_OK) {
                bool row;
                db_bind_text(s, 1, reason);
                db_bind_text(s, 2, now);
                db_bind_text(s, 3, id);
                rc = db_step(s, &row);
                db_finalize(s);
            }
            db_conn_release(c);
        }
    } else {
        rc = nrc;
    }
    json_decref(e);
    free(text);
    return rc;
}

static void replay_entry_handler(struct http_req *req, struct http_res *res,
                                 void *ctx)
{
    struct api *api = ctx;
    char id[CORE_UUID_STR_LEN], reason[256] = "";
    if (!api__query_known(req, NULL, res) || !api__path_id(req, "id", id, res))
        return;
    bool found, ok;
    int rc = replay_one(api, api__principal(req)->org_id, id, &found, &ok,
                        reason, sizeof reason);
    if (rc)
        http_res_error(res, rc);
    else if (!found)
        http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no DLQ entry with id %s", id);
    else if (!ok)
        http_res_problem(res, HTTP_PROBLEM_UNPROCESSABLE,
                         "the message still fails: %s (the entry is kept)",
                         reason);
    else
        http_res_json(res, 200, json_pack("{s:s, s:b}", "id", id, "replayed", 1));
}

static void replay_many_handler(struct http_req *req, struct http_res *res,
                                void *ctx)
{
    struct api *api = ctx;
    if (!api__query_known(req, NULL, res))
        return;
    json_t *body = http_req_json_object(req, res);
    if (!body)
        return;
    json_t *ids = json_object_get(body, "ids");
    size_t i;
    json_t *v;
    bool good = json_is_array(ids) && json_array_size(ids) >= 1 &&
                json_array_size(ids) <= 1000 && json_object_size(body) == 1;
    json_array_foreach(ids, i, v) good = good && core_uuid_valid(json_string_value(v));
    if (!good) {
        json_decref(body);
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "send {\"ids\": [...]} with 1 to 1000 DLQ entry ids");
        return;
    }
    json_t *failed = json_array();
    size_t replayed = 0;
    int rc = CORE_OK;
    json_array_foreach(ids, i, v) {
        char id[CORE_UUID_STR_LEN], reason[256] = "";
        snprintf(id, sizeof id, "%s", json_string_value(v));
        core_uuid_normalize(id);
        bool found, ok;
        rc = replay_one(api, api__principal(req)->org_id, id, &found, &ok,
                        reason, sizeof reason);
        if (rc)
            break;
        if (ok)
            replayed++;
        else
            json_array_append_new(failed,
                                  json_pack("{s:s, s:s}", "id", id, "reason",
                                            found ? reason : "no such entry"));
    }
    json_decref(body);
    if (rc) {
        json_decref(failed);
        http_res_error(res, rc);
        return;
    }
    http_res_json(res, 200,
                  json_pack("{s:I, s:o}", "replayed", (json_int_t)replayed,
                            "failed", failed));
}

/* POST /api/v1/telemetry/replay {startTime, endTime, deviceId?, limit?} */
static void replay_raw_handler(struct http_req *req, struct http_res *res,
                               void *ctx)
{
    struct api *api = ctx;
    const struct api_principal *p = api__principal(req);
    if (!api__query_known(req, NULL, res))
        return;
    if (!api->pipeline) {
        http_res_problem(res, HTTP_PROBLEM_UNAVAILABLE,
                         "this process does not run the pipeline");
        return;
    }
    json_t *body = http_req_json_object(req, res);
    if (!body)
        return;
    struct api_errors errs = {0};
    int64_t from = 0, to = 0, limit = 10000;
    const char *dev = NULL;
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        if (!strcmp(k, "startTime") || !strcmp(k, "endTime")) {
            int64_t *t = k[0] == 's' ? &from : &to;
            if (!json_is_string(v) || core_time_parse_iso(json_string_value(v), t))
                api__error_add(&errs, k, "must be an RFC 3339 date-time");
        } else if (!strcmp(k, "deviceId")) {
            if (!json_is_string(v) || !core_uuid_valid(json_string_value(v)))
                api__error_add(&errs, k, "must be a device id (UUID)");
            else
                dev = json_string_value(v);
        } else if (!strcmp(k, "limit")) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > 10000)
                api__error_add(&errs, k, "must be an integer from 1 to 10000");
            else
                limit = json_integer_value(v);
        } else {
            api__error_add(&errs, k, "is not a field of a replay");
        }
    }
    if (!json_object_get(body, "startTime"))
        api__error_add(&errs, "startTime", "is required");
    if (!json_object_get(body, "endTime"))
        api__error_add(&errs, "endTime", "is required");
    if (!errs.list && from >= to)
        api__error_add(&errs, "startTime", "must be before endTime");
    if (api__errors_answer(&errs, res)) {
        json_decref(body);
        return;
    }
    char device[CORE_UUID_STR_LEN] = "";
    if (dev) {
        snprintf(device, sizeof device, "%s", dev);
        core_uuid_normalize(device);
    }
    json_decref(body);
    size_t replayed, dead;
    bool more;
    int rc = pipeline_replay(api->pipeline, &api->limits, p->org_id,
                             device[0] ? device : NULL, from, to, (size_t)limit,
                             &replayed, &dead, &more);
    if (rc) {
        http_res_error(res, rc);
        return;
    }
    http_res_json(res, 200,
                  json_pack("{s:I, s:I, s:b}", "replayed", (json_int_t)replayed,
                            "deadLettered", (json_int_t)dead, "more", more));
}

static const char *const dlq_query[] = {"stage", "deviceId", "reason",
                                        "startTime", "endTime", "limit",
                                        "offset", NULL};
static const struct api_op op_list = {API_OP_CUSTOM, NULL, NULL,
                                      "List:DlqEntry", 200, dlq_query};
static const struct api_op op_get = {API_OP_CUSTOM, NULL, NULL, "DlqEntry",
                                     200, NULL};
static const struct api_op op_delete = {API_OP_CUSTOM, NULL, NULL, NULL, 204,
                                        NULL};
static const struct api_op op_replay_one = {API_OP_CUSTOM, NULL, NULL,
                                            "DlqReplayed", 200, NULL};
static const struct api_op op_replay_many = {API_OP_CUSTOM, NULL, "DlqReplayIds",
                                             "DlqReplayResult", 200, NULL};
static const struct api_op op_replay_raw = {API_OP_CUSTOM, NULL,
                                            "TelemetryReplay",
                                            "TelemetryReplayResult", 200, NULL};

int api__dlq_routes(struct http_router *r)
{
    const struct http_route routes[] = {
        {HTTP_GET, "/api/v1/dlq", list_handler, API_ROLE_OPERATOR, &op_list,
         "Dead-letter entries, newest first", "dlq"},
        {HTTP_POST, "/api/v1/dlq/replay", replay_many_handler, API_ROLE_OPERATOR,
         &op_replay_many, "Replay several entries", "dlq"},
        {HTTP_GET, "/api/v1/dlq/:id", get_handler, API_ROLE_OPERATOR, &op_get,
         "One entry with its message", "dlq"},
        {HTTP_DELETE, "/api/v1/dlq/:id", delete_handler, API_ROLE_OPERATOR,
         &op_delete, "Delete an entry", "dlq"},
        {HTTP_POST, "/api/v1/dlq/:id/replay", replay_entry_handler,
         API_ROLE_OPERATOR, &op_replay_one,
         "Replay an entry: stored and removed if it now passes", "dlq"},
        {HTTP_POST, "/api/v1/telemetry/replay", replay_raw_handler,
         API_ROLE_OPERATOR, &op_replay_raw,
         "Re-run raw telemetry of a time range through the current rules",
         "telemetry"},
    };
    return http_router_add_all(r, routes, sizeof routes / sizeof routes[0]);
}
