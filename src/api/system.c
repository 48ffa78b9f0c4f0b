/* Liveness, readiness and Prometheus metrics. */
#include "api_internal.h"

#include <stdlib.h>
#include <string.h>

static void healthz(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    http_res_json(res, 200,
                  json_pack("{s:s, s:s}", "status", "ok", "version",
                            api->cfg.version ? api->cfg.version : "dev"));
}

/* Ready when the API has not been told otherwise and the store answers. */
static void readyz(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    int rc = CORE_OK;
    if (api->ready) {
        struct db_conn *c;
        rc = db_conn_acquire(api->db, false, &c);
        if (rc == CORE_OK) {
            struct db_stmt *s;
            rc = db_prepare(c, "SELECT 1", &s);
            if (rc == CORE_OK) {
                bool row;
                rc = db_step(s, &row);
                db_finalize(s);
            }
            db_conn_release(c);
        }
    }
    if (!api->ready || rc) {
        http_res_header(res, "Retry-After", "1");
        http_res_problem(res, HTTP_PROBLEM_UNAVAILABLE, "%s",
                         !api->ready ? "not ready (starting or stopping)"
                                     : "the store does not answer");
        return;
    }
    http_res_json(res, 200, json_pack("{s:s}", "status", "ready"));
}

static void metrics(struct http_req *req, struct http_res *res, void *ctx)
{
    struct core_buf b;
    core_buf_init(&b);
    core_metrics_render(&b);
    char *s = core_buf_steal(&b);
    if (!s) {
        http_res_error(res, CORE_ENOMEM);
        return;
    }
    free(res->body);
    res->status = 200;
    res->body = s;
    res->body_len = strlen(s);
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static const struct api_op op_health = {API_OP_CUSTOM, NULL, NULL, "Health",
                                        200, NULL};
static const struct api_op op_metrics = {API_OP_CUSTOM, NULL, NULL, "Metrics",
                                         200, NULL};

int api__system_routes(struct http_router *r)
{
    const struct http_route routes[] = {
        {HTTP_GET, "/healthz", healthz, API_ACCESS_PUBLIC, &op_health,
         "Liveness: the process answers", "system"},
        {HTTP_GET, "/readyz", readyz, API_ACCESS_PUBLIC, &op_health,
         "Readiness: the store answers and the server is not stopping",
         "system"},
        {HTTP_GET, "/metrics", metrics, API_ACCESS_PUBLIC, &op_metrics,
         "Prometheus metrics", "system"},
    };
    return http_router_add_all(r, routes, sizeof routes / sizeof routes[0]);
}
