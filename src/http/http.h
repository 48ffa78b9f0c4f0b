/*
 * http: the HTTP server (libmicrohttpd), the router, request and response
 * helpers, application/problem+json errors and static files.
 *
 * Handlers run on the server's worker threads. A handler reads the request
 * (method, path parameters, query, headers, body) and fills the response;
 * the server sends it after the handler returns.
 */
#ifndef ARGUS_HTTP_H
#define ARGUS_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"

enum http_method {
    HTTP_GET = 1 << 0,
    HTTP_POST = 1 << 1,
    HTTP_PUT = 1 << 2,
    HTTP_PATCH = 1 << 3,
    HTTP_DELETE = 1 << 4,
    HTTP_HEAD = 1 << 5,
    HTTP_OPTIONS = 1 << 6,
};

const char *http_method_name(enum http_method m);

#define HTTP_MAX_PARAMS 4
#define HTTP_MAX_QUERY 32

struct http_kv {
    const char *key;
    const char *value;
};

struct http_route;

/* One request. Strings are borrowed from the server until the handler
 * returns. */
struct http_req {
    enum http_method method;
    const char *path;
    const struct http_route *route;
    struct http_kv params[HTTP_MAX_PARAMS]; /* path parameters, by name */
    int nparams;
    struct http_kv query[HTTP_MAX_QUERY];
    int nquery;
    bool query_overflow; /* more query arguments than HTTP_MAX_QUERY */
    const char *body;    /* NUL-terminated; NULL when empty */
    size_t body_len;
    void *conn;          /* the server's connection, for headers */
    void *conn_state;    /* the server's per-request state */
    void *auth;          /* set by the application's authenticator */
};

struct http_res {
    int status;
    char *body; /* owned; freed by the server */
    size_t body_len;
    const char *content_type;
    struct http_kv headers[8]; /* values owned (freed by the server) */
    int nheaders;
    char *file_path; /* when set, the server sends this file instead */
    /* Called once with release_arg on a server thread when the answer has
     * been sent (or the client went away): lets a deferred answer's owner
     * free what the request kept alive there rather than on the thread
     * that finished it. May be NULL. */
    void (*release)(void *arg);
    void *release_arg;
};

/* Returns the path parameter / query argument / request header, or NULL. */
const char *http_req_param(const struct http_req *r, const char *name);
const char *http_req_query(const struct http_req *r, const char *name);
const char *http_req_header(const struct http_req *r, const char *name);

/*
 * Deferred answers. A handler that cannot answer yet (the request's data
 * must first become durable, an event stream waits for events) calls
 * http_res_defer and returns without an answer; the connection is
 * suspended and holds no thread. Later, from any thread, the owner fills a
 * struct http_res and calls http_deferred_finish exactly once; the server
 * then sends it. Every deferred request must be finished, also at shutdown
 * (before http_server_stop).
 */
struct http_deferred;
struct http_deferred *http_res_defer(struct http_req *req,
                                     struct http_res *res);
/* Sends res (its contents are taken over; res is left empty). */
void http_deferred_finish(struct http_deferred *d, struct http_res *res);

/* Sends v as the JSON body (takes ownership of v, which may be NULL on an
 * earlier allocation failure: then 500). */
void http_res_json(struct http_res *res, int status, json_t *v);
/* Sends body (len bytes, malloc'ed; taken over) as it is, with the given
 * Content-Type (a static string). */
void http_res_body(struct http_res *res, int status, char *body, size_t len,
                   const char *type);
/* Sets a response header; the value is copied. */
void http_res_header(struct http_res *res, const char *name,
                     const char *value);

/*
 * Problems (RFC 9457). Each has a stable type URI "urn:argus:problem:<slug>"
 * that clients may switch on; the title is fixed per type, the detail
 * explains this occurrence.
 */
#define HTTP_PROBLEM_MAP(X)                                                 \
    X(BAD_REQUEST, 400, "bad-request", "Bad request")                       \
    X(MALFORMED_JSON, 400, "malformed-json", "Malformed JSON")              \
    X(VALIDATION, 400, "validation", "Validation failed")                   \
    X(UNAUTHORIZED, 401, "unauthorized", "Authentication required")         \
    X(FORBIDDEN, 403, "forbidden", "Not allowed")                           \
    X(NOT_FOUND, 404, "not-found", "Not found")                             \
    X(METHOD_NOT_ALLOWED, 405, "method-not-allowed", "Method not allowed")  \
    X(CONFLICT, 409, "conflict", "Conflict")                                \
    X(TOO_LARGE, 413, "payload-too-large", "Payload too large")             \
    X(UNSUPPORTED_MEDIA, 415, "unsupported-media-type",                     \
      "Unsupported media type")                                             \
    X(UNPROCESSABLE, 422, "unprocessable", "Cannot be processed")           \
    X(TOO_MANY, 429, "too-many-requests", "Too many requests")              \
    X(INTERNAL, 500, "internal", "Internal server error")                   \
    X(UNAVAILABLE, 503, "unavailable", "Service unavailable")

enum http_problem {
#define HTTP__PROBLEM_ENUM(name, status, slug, title) HTTP_PROBLEM_##name,
    HTTP_PROBLEM_MAP(HTTP__PROBLEM_ENUM)
#undef HTTP__PROBLEM_ENUM
};

/* Answers with a problem. detail is printf-style. */
void http_res_problem(struct http_res *res, enum http_problem p,
                      const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As above, with extra members merged into the problem object (takes
 * ownership of extra; used for per-field validation errors). */
void http_res_problem_ext(struct http_res *res, enum http_problem p,
                          json_t *extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Problem for a core error code from a lower layer (NOTFOUND → 404,
 * CONFLICT → 409, BUSY/OVERLOAD → 503, NOMEM and others → 500). */
void http_res_error(struct http_res *res, int err);
/* Slugs and statuses, for the OpenAPI document and tests. */
int http_problem_status(enum http_problem p);
const char *http_problem_slug(enum http_problem p);

/* Parses the body as a JSON object. On failure answers 400 (malformed
 * JSON, or not an object) or 415 (content type not JSON) and returns
 * NULL; the caller returns. The caller owns the result. */
json_t *http_req_json_object(const struct http_req *r, struct http_res *res);

/* ------------------------------------------------------------------ router */

typedef void (*http_handler_cb)(struct http_req *req, struct http_res *res,
                                void *ctx);

/* A route. The path pattern has ":name" segments for parameters. Access is
 * the application's business: the router passes the route (with its
 * access value and opaque data) to the authenticator before the handler. */
struct http_route {
    enum http_method method;
    const char *pattern;
    http_handler_cb handler;
    int access;       /* application-defined: who may call */
    const void *data; /* application data (a resource description, ...) */
    const char *summary;
    const char *tag;
};

struct http_router;

int http_router_create(struct http_router **out);
void http_router_destroy(struct http_router *r);
/* Adds a route; the route struct is copied, its strings are borrowed for
 * the router's lifetime. */
int http_router_add(struct http_router *r, const struct http_route *route);
/* Finds the route for method and path, filling req->params. path is a
 * scratch copy that the router modifies: on a match, the separator after
 * each parameter becomes a NUL and req->params point into it. Returns the
 * route; NULL with *allowed set to the methods that would match the path
 * (0 when no route has this path). */
const struct http_route *http_router_match(const struct http_router *r,
                                           enum http_method method,
                                           char *path,
                                           struct http_req *req,
                                           unsigned *allowed);
/* Adds n routes; stops at the first failure and returns it. */
int http_router_add_all(struct http_router *r, const struct http_route *routes,
                        size_t n);
size_t http_router_count(const struct http_router *r);
const struct http_route *http_router_at(const struct http_router *r,
                                        size_t i);

/* ------------------------------------------------------------------ server */

/* Called before every routed handler; returns false after filling res to
 * refuse the request (401/403/...). */
typedef bool (*http_auth_cb)(struct http_req *req, struct http_res *res,
                             void *ctx);
/* Called when the request is done, to release what auth set in req->auth. */
typedef void (*http_auth_release_cb)(struct http_req *req, void *ctx);

struct http_server_config {
    const char *listen_addr; /* "127.0.0.1" */
    uint16_t port;           /* 0 picks a free port (see http_server_port) */
    int threads;             /* worker threads; 0 = number of cores */
    unsigned connection_limit;
    size_t connection_memory; /* bytes per connection for headers/buffers */
    unsigned connection_timeout_s;
    size_t max_body;          /* larger bodies get 413 */
    const char *web_dir;      /* static files; NULL = none */
    bool log_requests;
    struct http_router *router;
    http_auth_cb auth;
    http_auth_release_cb auth_release;
    void *ctx;                /* passed to handlers and auth */
};

struct http_server;

/* Starts serving; cfg is copied (the router and web_dir stay borrowed).
 * Returns CORE_EIO when the address cannot be bound. */
int http_server_start(const struct http_server_config *cfg,
                      struct http_server **out);
uint16_t http_server_port(const struct http_server *s);
/* Stops accepting new connections; requests in flight go on. Call before
 * finishing the deferred requests at shutdown. */
void http_server_quiesce(struct http_server *s);
/* Stops accepting, finishes requests in flight, frees. Accepts NULL. */
void http_server_stop(struct http_server *s);

#endif
