/*
 * Telemetry over HTTP: devices ingest with their API key; users query
 * device time series. An ingest request is answered 202 only once its
 * messages are durable: the handler defers its answer, the pipeline's
 * writer finishes it after the commit, and no HTTP thread waits meanwhile.
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 1000

struct ingest_wait {
    struct http_deferred *deferred;
    char *answer; /* 202 body, sent on success */
    size_t answer_len;
    json_t *body; /* the parsed request, released on an HTTP thread */
};

static void body_release(void *arg)
{
    json_decref(arg);
}

/* Runs on the pipeline's writer thread, which is the ingest bottleneck:
 * the answer was serialised beforehand, and the request's JSON is freed by
 * the HTTP thread that sends the answer (the messages' own references were
 * dropped by the writer already; jansson counts references atomically). */
static void ingest_done(int rc, void *ctx)
{
    struct ingest_wait *w = ctx;
    struct http_res res = {0};
    if (rc == CORE_OK) {
        http_res_body(&res, 202, w->answer, w->answer_len, "application/json");
        w->answer = NULL;
    } else if (rc == CORE_ETOOBIG) {
        http_res_problem(&res, HTTP_PROBLEM_TOO_LARGE,
                         "a message is larger than the message bus takes; "
                         "nothing was kept");
    } else if (rc == CORE_EOVERLOAD) {
        http_res_header(&res, "Retry-After", "1");
        http_res_problem(&res, HTTP_PROBLEM_UNAVAILABLE,
                         "the pipeline is behind (the bus is full); nothing "
                         "was kept, send the messages again");
    } else {
        http_res_header(&res, "Retry-After", "1");
        http_res_problem(&res, HTTP_PROBLEM_UNAVAILABLE,
                         "the messages could not be stored (%s); nothing was "
                         "kept, send them again",
                         core_strerror(rc));
    }
    free(w->answer);
    res.release = body_release;
    res.release_arg = w->body;
    http_deferred_finish(w->deferred, &res);
    free(w);
}

/* The 202 body, {"id": …, "accepted": 1} for one message object and
 * {"ids": […], "accepted": n} for an array, byte for byte what
 * http_res_json wrote before. Caller frees. */
static char *answer_text(const struct pipeline_msg *msgs, size_t n,
                         bool single, size_t *len)
{
    size_t cap = 64 + n * (CORE_UUID_STR_LEN + 3);
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t at;
    if (single) {
        at = (size_t)snprintf(out, cap, "{\"id\":\"%s\",\"accepted\":1}",
                              msgs[0].raw_id);
    } else {
        memcpy(out, "{\"ids\":[", 8);
        at = 8;
        for (size_t i = 0; i < n; i++) {
            if (i)
                out[at++] = ',';
            out[at++] = '"';
            memcpy(out + at, msgs[i].raw_id, CORE_UUID_STR_LEN - 1);
            at += CORE_UUID_STR_LEN - 1;
            out[at++] = '"';
        }
        at += (size_t)snprintf(out + at, cap - at, "],\"accepted\":%zu}", n);
    }
    *len = at;
    return out;
}

static bool json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Splits the text of a top-level JSON array of n values, which jansson has
 * accepted, into the byte range [from[i], to[i]) of each value, so that each
 * message is stored as it was sent instead of being serialised again.
 * Returns false when the text does not split into n values (the caller
 * then serialises). */
static bool array_slices(const char *text, size_t len, size_t n, size_t *from,
                         size_t *to)
{
    size_t i = 0;
    while (i < len && json_space(text[i]))
        i++;
    if (i == len || text[i++] != '[')
        return false;
    for (size_t k = 0; k < n; k++) {
        while (i < len && json_space(text[i]))
            i++;
        from[k] = i;
        int depth = 0;
        for (; i < len; i++) {
            char c = text[i];
            if (c == '"') {
                for (i++; i < len && text[i] != '"'; i++)
                    if (text[i] == '\\')
                        i++;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (depth == 0)
                    break;
                depth--;
            } else if (c == ',' && depth == 0) {
                break;
            }
        }
        if (i >= len || text[i] != (k + 1 < n ? ',' : ']'))
            return false;
        size_t end = i++;
        while (end > from[k] && json_space(text[end - 1]))
            end--;
        if (end == from[k])
            return false;
        to[k] = end;
    }
    return true;
}

/* May this key's device write as dev? Its own id, or a device behind it
 * (a gateway's children). Another organisation's device is "unknown". */
static int may_write(struct db_conn *c, const struct api_principal *p,
                     const char *dev, int *verdict)
{
    if (strcmp(dev, p->device_id) == 0) {
        *verdict = 0;
        return CORE_OK;
    }
    struct db_stmt *s;
    int rc = db_prepare(c,
                        "SELECT parent_device_id FROM devices WHERE id = ? AND "
                        "organization_id = ? AND deleted_at IS NULL",
                        &s);
    if (rc)
        return rc;
    db_bind_text(s, 1, dev);
    db_bind_text(s, 2, p->org_id);
    bool row;
    rc = db_step(s, &row);
    if (rc == CORE_OK)
        *verdict = !row ? 404
                   : (!db_col_is_null(s, 0) &&
                      strcmp(db_col_text(s, 0), p->device_id) == 0)
                       ? 0
                       : 403;
    db_finalize(s);
    return rc;
}

static void ingest_handler(struct http_req *req, struct http_res *res,
                           void *ctx)
{
    struct api *api = ctx;
    const struct api_principal *p = api__principal(req);
    if (!api__query_known(req, NULL, res))
        return;
    if (!api->pipeline) {
        http_res_problem(res, HTTP_PROBLEM_UNAVAILABLE,
                         "this process does not ingest telemetry");
        return;
    }
    const char *ct = http_req_header(req, "Content-Type");
    if (ct && strncmp(ct, "application/json", 16) != 0) {
        http_res_problem(res, HTTP_PROBLEM_UNSUPPORTED_MEDIA,
                         "expected Content-Type application/json");
        return;
    }
    json_error_t jerr;
    json_t *body = req->body ? json_loadb(req->body, req->body_len,
                                          JSON_REJECT_DUPLICATES, &jerr)
                             : NULL;
    if (!body) {
        if (req->body)
            http_res_problem(res, HTTP_PROBLEM_MALFORMED_JSON,
                             "line %d, column %d: %s", jerr.line, jerr.column,
                             jerr.text);
        else
            http_res_problem(res, HTTP_PROBLEM_MALFORMED_JSON,
                             "the body is empty; send a message or an array "
                             "of messages");
        return;
    }
    bool single = json_is_object(body);
    size_t n = single ? 1 : json_array_size(body);
    if (!single && (!json_is_array(body) || n == 0 || n > MAX_BATCH)) {
        json_decref(body);
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "send one message object or an array of 1 to %d "
                         "messages",
                         MAX_BATCH);
        return;
    }

    struct pipeline_msg *msgs = calloc(n, sizeof *msgs);
    struct ingest_wait *w = calloc(1, sizeof *w);
    size_t *cuts = single ? NULL : malloc(2 * n * sizeof *cuts);
    json_t *errors = json_array();
    struct db_conn *c = NULL;
    size_t ok = 0, nerr = 0;
    int status = 0, rc = CORE_OK;
    if (!msgs || !w || (!single && !cuts) || !errors) {
        rc = CORE_ENOMEM;
        goto fail;
    }
    bool sliced = !single && array_slices(req->body, req->body_len, n, cuts,
                                          cuts + n);
    int64_t now = core_time_now_ms();
    for (size_t i = 0; i < n; i++) {
        json_t *m = single ? body : json_array_get(body, i);
        char reason[256];
        rc = pipeline_normalize(m, now, &api->limits, &msgs[ok], reason,
                                sizeof reason);
        if (rc == CORE_EINVAL) {
            /* The first 20 reasons are listed; all are counted. */
            if (nerr++ < 20)
                json_array_append_new(errors,
                                      json_pack("{s:I, s:s}", "index",
                                                (json_int_t)i, "message",
                                                reason));
            rc = CORE_OK;
            continue;
        }
        if (rc)
            goto fail;
        struct pipeline_msg *pm = &msgs[ok++];
        core_uuid7(pm->raw_id);
        memcpy(pm->org_id, p->org_id, sizeof pm->org_id);
        pm->transport = "http";
        if (single) {
            pm->payload = strndup(req->body, req->body_len);
            pm->payload_len = req->body_len;
        } else if (sliced && !memchr(req->body + cuts[i], '\0',
                                     cuts[n + i] - cuts[i])) {
            pm->payload_len = cuts[n + i] - cuts[i];
            pm->payload = strndup(req->body + cuts[i], pm->payload_len);
        } else {
            pm->payload = json_dumps(m, JSON_COMPACT | JSON_REAL_PRECISION(17));
            pm->payload_len = pm->payload ? strlen(pm->payload) : 0;
        }
        if (!pm->payload) {
            rc = CORE_ENOMEM;
            goto fail;
        }
    }
    if (nerr) {
        json_t *first = json_array_get(errors, 0);
        http_res_problem_ext(
            res, HTTP_PROBLEM_VALIDATION, json_pack("{s:O}", "errors", errors),
            "%s (%zu of %zu messages invalid; none was stored)",
            json_string_value(json_object_get(first, "message")), nerr, n);
        goto out;
    }

    /* Authorisation: each device is the key's or behind it (a connection
     * only when some message names another device). */
    for (size_t i = 0; i < ok && !status; i++) {
        if (strcmp(msgs[i].device_id, p->device_id) == 0 ||
            (i > 0 && strcmp(msgs[i].device_id, msgs[i - 1].device_id) == 0))
            continue;
        if (!c && !(c = api__conn(api, false, res)))
            goto out;
        int verdict;
        rc = may_write(c, p, msgs[i].device_id, &verdict);
        if (rc)
            goto fail;
        if (verdict == 404) {
            http_res_problem(res, HTTP_PROBLEM_NOT_FOUND,
                             "no device with id %s", msgs[i].device_id);
            status = 404;
        } else if (verdict == 403) {
            http_res_problem(res, HTTP_PROBLEM_FORBIDDEN,
                             "this API key may write only its own device and "
                             "the devices behind it, not %s",
                             msgs[i].device_id);
            status = 403;
        }
    }
    if (c)
        db_conn_release(c);
    c = NULL;
    if (status)
        goto out;

    w->answer = answer_text(msgs, ok, single, &w->answer_len);
    if (!w->answer) {
        rc = CORE_ENOMEM;
        goto fail;
    }
    w->body = body;
    w->deferred = http_res_defer(req, res);
    rc = pipeline_submit(api->pipeline, msgs, ok, ingest_done, w);
    if (rc) {
        /* Not taken: answer now through the deferral. */
        struct http_res now_res = {0};
        free(w->answer);
        http_res_header(&now_res, "Retry-After", "1");
        if (rc == CORE_EOVERLOAD)
            http_res_problem(&now_res, HTTP_PROBLEM_TOO_MANY,
                             "ingest is at capacity; retry shortly");
        else
            http_res_problem(&now_res, HTTP_PROBLEM_UNAVAILABLE,
                             "ingest is stopping; retry shortly");
        http_deferred_finish(w->deferred, &now_res);
        free(w);
        w = NULL; /* freed once, here (out: frees w too) */
        goto out; /* the messages are still ours to free */
    }
    ok = 0; /* the pipeline owns the messages */
    w = NULL;
    body = NULL; /* released once the answer is sent (ingest_done) */
    goto out;
fail:
    http_res_error(res, rc);
out:
    if (c)
        db_conn_release(c);
    for (size_t i = 0; msgs && i < ok; i++)
        pipeline_msg_fini(&msgs[i]);
    free(msgs);
    free(w);
    free(cuts);
    json_decref(errors);
    json_decref(body);
}

/* ----------------------------------------------------------------- queries */


struct rows_ctx {
    json_t *data;
    bool agg;
};

static json_t *value_json(const struct tsdb_row *r, double v)
{
    if (r->type == TSDB_STRING)
        return json_string(r->str ? r->str : "");
    if (r->type == TSDB_BOOL)
        return json_boolean(v != 0);
    return json_real(v);
}

static int row_cb(const struct tsdb_row *r, void *ctx)
{
    struct rows_ctx *rc = ctx;
    char iso[CORE_TIME_ISO_LEN];
    core_time_format_iso(r->ts_ms, iso);
    json_t *o;
    if (rc->agg)
        o = json_pack("{s:s, s:s, s:f, s:f, s:f, s:f, s:I, s:o}", "metric",
                      r->metric, "timestamp", iso, "min", r->min, "max", r->max,
                      "avg", r->avg, "sum", r->sum, "count",
                      (json_int_t)r->count, "last", value_json(r, r->last));
    else
        o = json_pack("{s:s, s:s, s:o}", "metric", r->metric, "timestamp", iso,
                      "value", value_json(r, r->last));
    return o && json_array_append_new(rc->data, o) == 0 ? 0 : CORE_ENOMEM;
}

static bool device_in_org(struct api *api, struct db_conn *c,
                          const struct api_principal *p, const char *id,
                          struct http_res *res)
{
    bool exists = false;
    int rc = api__row_exists(c, "devices", p->org_id, id, &exists);
    if (rc)
        http_res_error(res, rc);
    else if (!exists)
        http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no device with id %s", id);
    return rc == CORE_OK && exists;
}

static void query_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    const struct api_op *op = req->route->data;
    const struct api_principal *p = api__principal(req);
    char id[CORE_UUID_STR_LEN];
    if (!api__query_known(req, op->query, res) ||
        !api__path_id(req, "deviceId", id, res))
        return;
    int64_t now = core_time_now_ms(), from, to, limit = 1000;
    if (!api__query_time(req, "endTime", now + 86400000LL, &to, res) ||
        !api__query_time(req, "startTime", to - 7 * 86400000LL, &from, res))
        return;
    if (from >= to) {
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "startTime must be before endTime");
        return;
    }
    const char *l = http_req_query(req, "limit");
    if (l) {
        char *end;
        long long v = strtoll(l, &end, 10);
        if (*end || end == l || v < 1 || v > 10000) {
            http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                             "limit must be an integer from 1 to 10000");
            return;
        }
        limit = v;
    }
    static const struct {
        const char *name;
        enum tsdb_agg agg;
    } aggs[] = {{"5min", TSDB_AGG_5MIN}, {"1hour", TSDB_AGG_1HOUR},
                {"1day", TSDB_AGG_1DAY}};
    enum tsdb_agg agg = TSDB_AGG_NONE;
    const char *a = http_req_query(req, "aggregation");
    if (a) {
        size_t i = 0;
        while (i < 3 && strcmp(a, aggs[i].name) != 0)
            i++;
        if (i == 3) {
            http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                             "aggregation must be 5min, 1hour or 1day");
            return;
        }
        agg = aggs[i].agg;
    }
    const char *metric = http_req_query(req, "metricKey");
    if (metric && (strlen(metric) == 0 || strlen(metric) > 128)) {
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "metricKey must be 1 to 128 bytes");
        return;
    }
    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        return;
    if (!device_in_org(api, c, p, id, res)) {
        db_conn_release(c);
        return;
    }
    /* Rollups answer whole buckets: every bucket that overlaps the range,
     * so the first one may start before startTime. */
    static const int64_t widths[] = {0, 300000, 3600000, 86400000};
    if (agg != TSDB_AGG_NONE) {
        int64_t w = widths[agg];
        from = from >= 0 ? from / w * w : -((-from + w - 1) / w) * w;
    }
    struct tsdb_query q = {p->org_id, TSDB_DEVICE, id, metric, from, to, limit, agg};
    struct rows_ctx rc = {json_array(), agg != TSDB_AGG_NONE};
    pipeline_sync(api->pipeline); /* the points of every message answered */
    int err = tsdb_query(api->tsdb, c, &q, row_cb, &rc);
    db_conn_release(c);
    if (err) {
        json_decref(rc.data);
        http_res_error(res, err);
        return;
    }
    char f[CORE_TIME_ISO_LEN], t[CORE_TIME_ISO_LEN];
    core_time_format_iso(from, f);
    core_time_format_iso(to, t);
    http_res_json(res, 200,
                  json_pack("{s:s, s:o, s:s, s:s, s:s, s:o}", "deviceId", id,
                            "metricKey", metric ? json_string(metric) : json_null(),
                            "aggregation", a ? a : "none", "startTime", f,
                            "endTime", t, "data", rc.data));
}

static int latest_cb(const struct tsdb_row *r, void *ctx)
{
    char iso[CORE_TIME_ISO_LEN];
    core_time_format_iso(r->ts_ms, iso);
    return json_object_set_new(ctx, r->metric,
                               json_pack("{s:o, s:s}", "value",
                                         value_json(r, r->last), "timestamp",
                                         iso)) == 0
               ? 0
               : CORE_ENOMEM;
}

static void latest_handler(struct http_req *req, struct http_res *res,
                           void *ctx)
{
    struct api *api = ctx;
    const struct api_principal *p = api__principal(req);
    char id[CORE_UUID_STR_LEN];
    if (!api__query_known(req, NULL, res) ||
        !api__path_id(req, "deviceId", id, res))
        return;
    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        return;
    if (!device_in_org(api, c, p, id, res)) {
        db_conn_release(c);
        return;
    }
    json_t *metrics = json_object();
    pipeline_sync(api->pipeline);
    int err = tsdb_latest(api->tsdb, c, p->org_id, TSDB_DEVICE, id, latest_cb,
                          metrics);
    db_conn_release(c);
    if (err) {
        json_decref(metrics);
        http_res_error(res, err);
        return;
    }
    http_res_json(res, 200,
                  json_pack("{s:s, s:o}", "deviceId", id, "metrics", metrics));
}

const struct api_op api__op_ingest = {API_OP_CUSTOM, NULL, "TelemetryMessage",
                                      "IngestAccepted", 202, NULL};
static const char *const query_params[] = {"metricKey", "startTime", "endTime",
                                           "limit", "aggregation", NULL};
static const struct api_op op_query = {API_OP_CUSTOM, NULL, NULL,
                                       "TelemetrySeries", 200, query_params};
static const struct api_op op_latest = {API_OP_CUSTOM, NULL, NULL,
                                        "TelemetryLatest", 200, NULL};

int api__telemetry_routes(struct http_router *r)
{
    const struct http_route routes[] = {
        {HTTP_POST, "/api/v1/telemetry/ingest", ingest_handler,
         API_ACCESS_DEVICE, &api__op_ingest,
         "Ingest one message or an array of up to 1000; 202 once durable",
         "telemetry"},
        {HTTP_GET, "/api/v1/telemetry/device/:deviceId", query_handler,
         API_ROLE_VIEWER, &op_query,
         "A device's points or rollups, newest first", "telemetry"},
        {HTTP_GET, "/api/v1/telemetry/device/:deviceId/latest", latest_handler,
         API_ROLE_VIEWER, &op_latest, "The latest value of each metric",
         "telemetry"},
    };
    return http_router_add_all(r, routes, sizeof routes / sizeof routes[0]);
}
