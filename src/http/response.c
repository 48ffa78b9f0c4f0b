#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    int status;
    const char *slug;
    const char *title;
} problems[] = {
#define HTTP__PROBLEM_ROW(name, status, slug, title) {status, slug, title},
    HTTP_PROBLEM_MAP(HTTP__PROBLEM_ROW)
#undef HTTP__PROBLEM_ROW
};

int http_problem_status(enum http_problem p)
{
    return problems[p].status;
}

const char *http_problem_slug(enum http_problem p)
{
    return problems[p].slug;
}

const char *http_method_name(enum http_method m)
{
    switch (m) {
    case HTTP_GET: return "GET";
    case HTTP_POST: return "POST";
    case HTTP_PUT: return "PUT";
    case HTTP_PATCH: return "PATCH";
    case HTTP_DELETE: return "DELETE";
    case HTTP_HEAD: return "HEAD";
    case HTTP_OPTIONS: return "OPTIONS";
    }
    return "?";
}

const char *http_req_param(const struct http_req *r, const char *name)
{
    for (int i = 0; i < r->nparams; i++) {
        if (strcmp(r->params[i].key, name) == 0)
            return r->params[i].value;
    }
    return NULL;
}

const char *http_req_query(const struct http_req *r, const char *name)
{
    for (int i = 0; i < r->nquery; i++)
        if (strcmp(r->query[i].key, name) == 0)
            return r->query[i].value;
    return NULL;
}

static void res_body(struct http_res *res, int status, char *body,
                     const char *type)
{
    free(res->body);
    res->status = status;
    res->body = body;
    res->body_len = body ? strlen(body) : 0;
    res->content_type = type;
}

void http_res_body(struct http_res *res, int status, char *body, size_t len,
                   const char *type)
{
    free(res->body);
    res->status = status;
    res->body = body;
    res->body_len = body ? len : 0;
    res->content_type = type;
}

void http_res_header(struct http_res *res, const char *name,
                     const char *value)
{
    for (int i = 0; i < res->nheaders; i++) {
        if (strcasecmp(res->headers[i].key, name) == 0) {
            free((char *)res->headers[i].value);
            res->headers[i].value = strdup(value);
            return;
        }
    }
    if (res->nheaders == (int)(sizeof res->headers / sizeof res->headers[0]))
        return;
    res->headers[res->nheaders].key = name;
    res->headers[res->nheaders].value = strdup(value);
    res->nheaders++;
}

static void problem_v(struct http_res *res, enum http_problem p,
                      json_t *extra, const char *fmt, va_list ap)
{
    char detail[512];
    vsnprintf(detail, sizeof detail, fmt, ap);
    char type[96];
    snprintf(type, sizeof type, "urn:argus:problem:%s", problems[p].slug);
    json_t *o = json_pack("{s:s, s:s, s:i, s:s}", "type", type, "title",
                          problems[p].title, "status", problems[p].status,
                          "detail", detail);
    if (o && extra)
        json_object_update(o, extra);
    json_decref(extra);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) {
        res_body(res, 500, NULL, NULL);
        return;
    }
    res_body(res, problems[p].status, s, "application/problem+json");
}

void http_res_problem(struct http_res *res, enum http_problem p,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_v(res, p, NULL, fmt, ap);
    va_end(ap);
}

void http_res_problem_ext(struct http_res *res, enum http_problem p,
                          json_t *extra, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_v(res, p, extra, fmt, ap);
    va_end(ap);
}

void http_res_error(struct http_res *res, int err)
{
    switch (err) {
    case CORE_ENOTFOUND:
        http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "not found");
        break;
    case CORE_ECONFLICT:
        http_res_problem(res, HTTP_PROBLEM_CONFLICT,
                         "conflicts with an existing resource");
        break;
    case CORE_ECONSTRAINT:
        http_res_problem(res, HTTP_PROBLEM_CONFLICT,
                         "violates a constraint of the data");
        break;
    case CORE_EBUSY:
    case CORE_EOVERLOAD:
    case CORE_ETIMEOUT:
        http_res_header(res, "Retry-After", "1");
        http_res_problem(res, HTTP_PROBLEM_UNAVAILABLE,
                         "the store is busy; retry shortly");
        break;
    default:
        http_res_problem(res, HTTP_PROBLEM_INTERNAL, "%s", core_strerror(err));
        break;
    }
}

void http_res_json(struct http_res *res, int status, json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(v);
    if (!s) {
        http_res_problem(res, HTTP_PROBLEM_INTERNAL, "out of memory");
        return;
    }
    res_body(res, status, s, "application/json");
}

json_t *http_req_json_object(const struct http_req *r, struct http_res *res)
{
    const char *ct = http_req_header(r, "Content-Type");
    if (ct && strncasecmp(ct, "application/json", 16) != 0 &&
        !strcasestr(ct, "+json")) {
        http_res_problem(res, HTTP_PROBLEM_UNSUPPORTED_MEDIA,
                         "expected Content-Type application/json, got %s", ct);
        return NULL;
    }
    if (!r->body || r->body_len == 0) {
        http_res_problem(res, HTTP_PROBLEM_MALFORMED_JSON,
                         "the request body is empty; a JSON object is expected");
        return NULL;
    }
    json_error_t jerr;
    json_t *v = json_loadb(r->body, r->body_len,
                           JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!v) {
        http_res_problem(res, HTTP_PROBLEM_MALFORMED_JSON,
                         "line %d, column %d: %s", jerr.line, jerr.column,
                         jerr.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        http_res_problem(res, HTTP_PROBLEM_MALFORMED_JSON,
                         "the request body must be a JSON object");
        return NULL;
    }
    return v;
}
