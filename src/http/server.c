#include "http.h"
#include "http_internal.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

struct http_server {
    struct http_server_config cfg;
    struct MHD_Daemon *daemon;
    uint16_t port;
    bool quiesced;
    struct core_metric *m_requests;
    struct core_metric *m_duration;
};

/* Per-request state kept by libmicrohttpd between the calls of one
 * request: the body accumulates here. */
struct conn_req {
    struct core_buf body;
    bool too_large;
    uint64_t start_ns;
    /* Deferred answers: set by http_res_defer, filled by
     * http_deferred_finish from another thread, sent when libmicrohttpd
     * calls us again after the resume. */
    bool deferred;
    _Atomic bool finished;
    struct http_res pending;
    const char *route_label;
    struct MHD_Connection *conn;
};

struct http_deferred {
    struct conn_req cr; /* never used directly: a conn_req is the handle */
};

struct http_deferred *http_res_defer(struct http_req *req,
                                     struct http_res *res)
{
    struct conn_req *cr = req->conn_state;
    cr->deferred = true;
    res->status = 0;
    MHD_suspend_connection(cr->conn);
    return (struct http_deferred *)cr;
}

void http_deferred_finish(struct http_deferred *d, struct http_res *res)
{
    struct conn_req *cr = (struct conn_req *)d;
    cr->pending = *res;
    memset(res, 0, sizeof *res);
    atomic_store(&cr->finished, true);
    MHD_resume_connection(cr->conn);
}

const char *http_req_header(const struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static enum http_method parse_method(const char *m)
{
    static const struct {
        const char *name;
        enum http_method m;
    } methods[] = {{"GET", HTTP_GET},         {"POST", HTTP_POST},
                   {"PUT", HTTP_PUT},         {"PATCH", HTTP_PATCH},
                   {"DELETE", HTTP_DELETE},   {"HEAD", HTTP_HEAD},
                   {"OPTIONS", HTTP_OPTIONS}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(m, methods[i].name) == 0)
            return methods[i].m;
    return 0;
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind,
                                     const char *key, const char *value)
{
    struct http_req *r = cls;
    if (r->nquery == HTTP_MAX_QUERY) {
        r->query_overflow = true;
        return MHD_NO;
    }
    r->query[r->nquery].key = key;
    r->query[r->nquery].value = value ? value : "";
    r->nquery++;
    return MHD_YES;
}

static void allow_header(struct http_res *res, unsigned allowed)
{
    char buf[64] = "";
    for (unsigned m = 1; m <= HTTP_OPTIONS; m <<= 1) {
        if (!(allowed & m))
            continue;
        if (buf[0])
            strcat(buf, ", ");
        strcat(buf, http_method_name((enum http_method)m));
    }
    http_res_header(res, "Allow", buf);
}

static void dispatch(struct http_server *s, struct MHD_Connection *conn,
                     const char *url, const char *method,
                     struct conn_req *cr, struct http_res *res,
                     const char **route_label)
{
    struct http_req req = {0};
    req.method = parse_method(method);
    req.path = url;
    req.conn = conn;
    req.conn_state = cr;
    req.body = cr->body.len ? cr->body.data : NULL;
    req.body_len = cr->body.len;
    *route_label = "unmatched";

    if (cr->too_large) {
        http_res_problem(res, HTTP_PROBLEM_TOO_LARGE,
                         "the request body exceeds %zu bytes",
                         s->cfg.max_body);
        return;
    }
    if (!req.method) {
        http_res_problem(res, HTTP_PROBLEM_METHOD_NOT_ALLOWED,
                         "method %s is not supported", method);
        return;
    }
    size_t plen = strlen(url);
    char scratch[2048];
    if (plen >= sizeof scratch) {
        http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "path too long");
        return;
    }
    memcpy(scratch, url, plen + 1);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, &req);

    unsigned allowed = 0;
    const struct http_route *route = http_router_match(
        s->cfg.router, req.method, scratch, &req, &allowed);
    if (!route) {
        if (allowed) {
            allow_header(res, allowed);
            http_res_problem(res, HTTP_PROBLEM_METHOD_NOT_ALLOWED,
                             "%s is not allowed on %s", method, url);
        } else if (strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0 ||
                   !s->cfg.web_dir ||
                   (req.method != HTTP_GET && req.method != HTTP_HEAD)) {
            http_res_problem(res, HTTP_PROBLEM_NOT_FOUND,
                             "no resource at %s", url);
        } else {
            *route_label = "static";
            http__static_serve(s->cfg.web_dir, url, res);
        }
        return;
    }
    *route_label = route->pattern;
    req.route = route;
    if (req.query_overflow) {
        http_res_problem(res, HTTP_PROBLEM_BAD_REQUEST,
                         "too many query parameters (at most %d)",
                         HTTP_MAX_QUERY);
        return;
    }
    if (s->cfg.auth && !s->cfg.auth(&req, res, s->cfg.ctx))
        goto out;
    route->handler(&req, res, s->cfg.ctx);
out:
    if (s->cfg.auth_release)
        s->cfg.auth_release(&req, s->cfg.ctx);
}

static void res_free(struct http_res *res)
{
    if (res->release)
        res->release(res->release_arg);
    res->release = NULL;
    free(res->body);
    free(res->file_path);
    for (int i = 0; i < res->nheaders; i++)
        free((char *)res->headers[i].value);
}

static enum MHD_Result send_response(struct MHD_Connection *conn,
                                     struct http_res *res, size_t *sent)
{
    struct MHD_Response *r = NULL;
    if (res->file_path) {
        r = http__static_response(res->file_path, sent);
        if (!r) {
            res->status = 404;
            free(res->file_path);
            res->file_path = NULL;
            http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "file not found");
        }
    }
    if (!r) {
        if (res->status == 0)
            http_res_problem(res, HTTP_PROBLEM_INTERNAL,
                             "the handler gave no answer");
        *sent = res->body_len;
        r = MHD_create_response_from_buffer(res->body_len,
                                            res->body ? res->body : "",
                                            res->body ? MHD_RESPMEM_MUST_FREE
                                                      : MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        res->body = NULL; /* now owned by the response */
        if (res->content_type)
            MHD_add_response_header(r, "Content-Type", res->content_type);
    }
    for (int i = 0; i < res->nheaders; i++)
        MHD_add_response_header(r, res->headers[i].key, res->headers[i].value);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)res->status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result finish_request(struct http_server *s,
                                      struct MHD_Connection *conn,
                                      const char *method, const char *url,
                                      struct conn_req *cr,
                                      struct http_res *resp,
                                      const char *route_label);

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct http_server *s = cls;
    struct conn_req *cr = *con_cls;
    if (!cr) {
        cr = calloc(1, sizeof *cr);
        if (!cr)
            return MHD_NO;
        core_buf_init(&cr->body);
        cr->start_ns = core_time_mono_ns();
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body)
            cr->too_large = true;
        cr->conn = conn;
        *con_cls = cr;
        return MHD_YES;
    }
    if (cr->deferred) {
        /* Called again after http_deferred_finish resumed us. */
        if (!atomic_load(&cr->finished))
            return MHD_YES;
        struct http_res res = cr->pending;
        memset(&cr->pending, 0, sizeof cr->pending);
        cr->deferred = false;
        return finish_request(s, conn, method, url, cr, &res, cr->route_label);
    }
    if (*upload_size) {
        if (!cr->too_large) {
            if (cr->body.len + *upload_size > s->cfg.max_body) {
                cr->too_large = true;
                core_buf_fini(&cr->body);
            } else {
                core_buf_append(&cr->body, upload, *upload_size);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }

    struct http_res res = {0};
    const char *route_label = "unmatched";
    if (cr->body.oom)
        http_res_problem(&res, HTTP_PROBLEM_UNAVAILABLE, "out of memory");
    else
        dispatch(s, conn, url, method, cr, &res, &route_label);
    if (cr->deferred) {
        cr->route_label = route_label; /* a static string of the route */
        return MHD_YES;
    }
    return finish_request(s, conn, method, url, cr, &res, route_label);
}

static enum MHD_Result finish_request(struct http_server *s,
                                      struct MHD_Connection *conn,
                                      const char *method, const char *url,
                                      struct conn_req *cr,
                                      struct http_res *resp,
                                      const char *route_label)
{
    struct http_res res = *resp;
    size_t sent = 0;
    int status = res.status;
    enum MHD_Result ok = send_response(conn, &res, &sent);
    status = res.status ? res.status : status;
    res_free(&res);

    double secs = (double)(core_time_mono_ns() - cr->start_ns) / 1e9;
    char st[8];
    snprintf(st, sizeof st, "%d", status);
    core_metric_add(core_metric_series(s->m_requests, method, route_label, st),
                    1);
    core_metric_observe(core_metric_series(s->m_duration, route_label), secs);
    if (s->cfg.log_requests)
        core_log_info("http", "method=%s path=%s status=%d bytes=%zu ms=%.3f",
                      method, url, status, sent, secs * 1e3);
    return ok;
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct conn_req *cr = *con_cls;
    if (!cr)
        return;
    /* A deferred answer whose client went away before it could be sent. */
    if (cr->deferred && atomic_load(&cr->finished))
        res_free(&cr->pending);
    core_buf_fini(&cr->body);
    free(cr);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    core_log_warn("http", "mhd=\"%s\"", msg);
}

/* Enough descriptors for the connection limit: the soft limit is often
 * 1024 while the hard limit allows far more. */
static void raise_fd_limit(unsigned want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t need = (rlim_t)want + 256;
    if (rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need
                      ? need
                      : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

int http_server_start(const struct http_server_config *cfg,
                      struct http_server **out)
{
    struct http_server *s = calloc(1, sizeof *s);
    if (!s)
        return CORE_ENOMEM;
    s->cfg = *cfg;
    if (s->cfg.threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->cfg.threads = n > 0 ? (int)n : 2;
    }
    /* Always a pool of at least two: with one thread libmicrohttpd 0.9.75
     * runs its single-daemon epoll loop, which left connections resumed
     * after a deferred answer unserved until their timeout (60 s) once
     * about 128 connections were busy (127 fine, 130 stalled; a pool of
     * two served 1,000). On a one-core machine the second thread costs
     * only its stack. system/http_threads.test.mjs. */
    if (s->cfg.threads < 2)
        s->cfg.threads = 2;
    if (!s->cfg.connection_limit)
        s->cfg.connection_limit = 10000;
    if (!s->cfg.connection_memory)
        s->cfg.connection_memory = 16 * 1024;
    if (!s->cfg.connection_timeout_s)
        s->cfg.connection_timeout_s = 60;
    if (!s->cfg.max_body)
        s->cfg.max_body = 1024 * 1024;
    raise_fd_limit(s->cfg.connection_limit);

    static const char *const req_labels[] = {"method", "route", "status", NULL};
    static const char *const dur_labels[] = {"route", NULL};
    s->m_requests = core_metric_register(
        "argus_http_requests_total", "HTTP requests answered.",
        CORE_METRIC_COUNTER, req_labels, NULL, 0);
    s->m_duration = core_metric_register(
        "argus_http_request_duration_seconds",
        "Time from the first byte of a request to its answer being queued.",
        CORE_METRIC_HISTOGRAM, dur_labels, NULL, 0);

    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(cfg->port);
    if (inet_pton(AF_INET, cfg->listen_addr ? cfg->listen_addr : "127.0.0.1",
                  &addr.sin_addr) != 1) {
        core_log_error("http", "msg=\"bad listen address\" addr=%s",
                       cfg->listen_addr);
        free(s);
        return CORE_EINVAL;
    }

    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;
    s->daemon = MHD_start_daemon(
        flags, cfg->port, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->cfg.threads,
        MHD_OPTION_CONNECTION_LIMIT, s->cfg.connection_limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->cfg.connection_memory,
        MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.connection_timeout_s,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_END);
    if (!s->daemon) {
        core_log_error("http", "msg=\"cannot listen\" addr=%s port=%u",
                       cfg->listen_addr ? cfg->listen_addr : "127.0.0.1",
                       cfg->port);
        free(s);
        return CORE_EIO;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    *out = s;
    return CORE_OK;
}

uint16_t http_server_port(const struct http_server *s)
{
    return s->port;
}

void http_server_quiesce(struct http_server *s)
{
    if (s && s->daemon && !s->quiesced) {
        MHD_quiesce_daemon(s->daemon);
        s->quiesced = true;
    }
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    if (s->daemon) {
        /* Stop accepting first so that requests in flight finish while no
         * new ones arrive. */
        http_server_quiesce(s);
        MHD_stop_daemon(s->daemon);
    }
    free(s);
}
