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
};

/* Runs on the pipeline's writer thread, which is the ingest bottleneck:
 * the answer was serialised beforehand. */
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
    } else if (rc == CORE_EIO) {
        /* Also what the embedded syncer answers when the fsync after a
         * commit fails: the rows may be in the store, but not surely on
         * disk, so "nothing was kept" would not be true. */
        http_res_header(&res, "Retry-After", "1");
        http_res_problem(&res, HTTP_PROBLEM_UNAVAILABLE,
                         "the store could not confirm the messages are on "
                         "disk (input/output error); send them again (a "
                         "resent message may then be in the raw store twice; "
                         "its points are not duplicated)");
    } else {
        http_res_header(&res, "Retry-After", "1");
        http_res_problem(&res, HTTP_PROBLEM_UNAVAILABLE,
                         "the messages could not be stored (%s); nothing was "
                         "kept, send them again",
                         core_strerror(rc));
    }
    free(w->answer);
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

/* The messages of one request as the parser hands them over: the accepted
 * ones kept (until one is refused: then none will be stored), the first 20
 * refusals listed and all counted. */
struct ingest_collect {
    struct pipeline_msg *msgs;
    size_t n, cap;
    json_t *errors;
    size_t nerr;
};

static int collect_cb(size_t index, struct pipeline_msg *m, const char *reason,
                      void *ctx)
{
    struct ingest_collect *c = ctx;
    if (!m) {
        if (c->nerr++ < 20 &&
            json_array_append_new(c->errors,
                                  json_pack("{s:I, s:s}", "index",
                                            (json_int_t)index, "message",
                                            reason)))
            return CORE_ENOMEM;
        return CORE_OK;
    }
    if (c->nerr) {
        pipeline_msg_fini(m);
        return CORE_OK;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct pipeline_msg *v = realloc(c->msgs, cap * sizeof *v);
        if (!v) {
            pipeline_msg_fini(m);
            return CORE_ENOMEM;
        }
        c->msgs = v;
        c->cap = cap;
    }
    c->msgs[c->n++] = *m;
    return CORE_OK;
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
    if (!req->body) {
        http_res_problem(res, HTTP_PROBLEM_MALFORMED_JSON,
                         "the body is empty; send a message or an array "
                         "of messages");
        return;
    }
    struct ingest_collect col = {NULL, 0, 0, json_array(), 0};
    struct ingest_wait *w = NULL;
    struct db_conn *c = NULL;
    int status = 0, rc = CORE_OK;
    struct pipeline_parser *parser = pipeline_parser_local();
    if (!col.errors || !parser) {
        rc = CORE_ENOMEM;
        goto fail;
    }
    struct pipeline_parse_args pa = {req->body, req->body_len, true, MAX_BATCH,
                                     core_time_now_ms(), &api->limits,
                                     collect_cb, &col};
    size_t n;
    bool array;
    char perr[160];
    rc = pipeline_parse(parser, &pa, &n, &array, perr, sizeof perr);
    if (rc == CORE_EPARSE) {
        http_res_problem(res, HTTP_PROBLEM_MALFORMED_JSON, "%s", perr);
        goto out;
    }
    if (rc)
        goto fail;
    bool single = !array;
    if (!single && (n == 0 || n > MAX_BATCH)) {
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "send one message object or an array of 1 to %d "
                         "messages",
                         MAX_BATCH);
        goto out;
    }
    if (col.nerr) {
        json_t *first = json_array_get(col.errors, 0);
        http_res_problem_ext(
            res, HTTP_PROBLEM_VALIDATION,
            json_pack("{s:O}", "errors", col.errors),
            "%s (%zu of %zu messages invalid; none was stored)",
            json_string_value(json_object_get(first, "message")), col.nerr, n);
        goto out;
    }
    struct pipeline_msg *msgs = col.msgs;
    size_t ok = col.n;
    for (size_t i = 0; i < ok; i++) {
        core_uuid7(msgs[i].raw_id);
        memcpy(msgs[i].org_id, p->org_id, sizeof msgs[i].org_id);
        msgs[i].transport = "http";
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

    w = calloc(1, sizeof *w);
    if (w)
        w->answer = answer_text(msgs, ok, single, &w->answer_len);
    if (!w || !w->answer) {
        rc = CORE_ENOMEM;
        goto fail;
    }
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
    col.n = 0; /* the pipeline owns the messages */
    w = NULL;
    goto out;
fail:
    http_res_error(res, rc);
out:
    if (c)
        db_conn_release(c);
    for (size_t i = 0; i < col.n; i++)
        pipeline_msg_fini(&col.msgs[i]);
    free(col.msgs);
    if (w)
        free(w->answer);
    free(w);
    json_decref(col.errors);
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
