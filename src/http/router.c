#include "http.h"

#include <stdlib.h>
#include <string.h>

/* Routes are few (tens) and matched segment by segment; a linear scan over
 * pre-split patterns costs well under a microsecond, so no trie. */
struct route_entry {
    struct http_route route;
    char pattern[256]; /* the pattern with NULs between segments */
    size_t segoff[16]; /* offsets, not pointers: entries move on realloc */
    size_t seglen[16];
    int nsegs;
};

struct http_router {
    struct route_entry *routes;
    size_t n, cap;
};

int http_router_create(struct http_router **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? CORE_OK : CORE_ENOMEM;
}

void http_router_destroy(struct http_router *r)
{
    if (!r)
        return;
    free(r->routes);
    free(r);
}

static int split(const char *path, const char **segs, size_t *lens, int max)
{
    int n = 0;
    const char *p = path;
    while (*p == '/')
        p++;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n == max)
            return -1;
        segs[n] = p;
        lens[n] = len;
        n++;
        p += len;
        while (*p == '/')
            p++;
    }
    return n;
}

int http_router_add(struct http_router *r, const struct http_route *route)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct route_entry *p = realloc(r->routes, cap * sizeof *p);
        if (!p)
            return CORE_ENOMEM;
        r->routes = p;
        r->cap = cap;
    }
    struct route_entry *e = &r->routes[r->n];
    memset(e, 0, sizeof *e);
    e->route = *route;
    if (strlen(route->pattern) >= sizeof e->pattern)
        return CORE_EINVAL;
    strcpy(e->pattern, route->pattern);
    const char *segs[16];
    e->nsegs = split(e->pattern, segs, e->seglen, 16);
    if (e->nsegs < 0)
        return CORE_EINVAL;
    for (int i = 0; i < e->nsegs; i++) {
        e->segoff[i] = (size_t)(segs[i] - e->pattern);
        e->pattern[e->segoff[i] + e->seglen[i]] = '\0';
    }
    r->n++;
    return CORE_OK;
}

int http_router_add_all(struct http_router *r, const struct http_route *routes,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = http_router_add(r, &routes[i]);
        if (rc)
            return rc;
    }
    return CORE_OK;
}

size_t http_router_count(const struct http_router *r)
{
    return r->n;
}

const struct http_route *http_router_at(const struct http_router *r, size_t i)
{
    return i < r->n ? &r->routes[i].route : NULL;
}

/* Path parameters point into the caller's scratch copy of the path, whose
 * separator after each parameter becomes a NUL once the route matched. */
static bool match_entry(const struct route_entry *e, char **segs,
                        const size_t *lens, int nsegs, struct http_req *req)
{
    if (e->nsegs != nsegs)
        return false;
    int np = 0;
    for (int i = 0; i < nsegs; i++) {
        const char *seg = e->pattern + e->segoff[i];
        if (seg[0] == ':') {
            if (lens[i] == 0 || np == HTTP_MAX_PARAMS)
                return false;
            np++;
            continue;
        }
        if (e->seglen[i] != lens[i] || memcmp(seg, segs[i], lens[i]))
            return false;
    }
    if (!req)
        return true;
    req->nparams = 0;
    for (int i = 0; i < nsegs; i++) {
        const char *seg = e->pattern + e->segoff[i];
        if (seg[0] != ':')
            continue;
        struct http_kv *kv = &req->params[req->nparams++];
        kv->key = seg + 1;
        kv->value = segs[i];
        segs[i][lens[i]] = '\0';
    }
    return true;
}

const struct http_route *http_router_match(const struct http_router *r,
                                           enum http_method method,
                                           char *path,
                                           struct http_req *req,
                                           unsigned *allowed)
{
    char *segs[16];
    size_t lens[16];
    *allowed = 0;
    int n = split(path, (const char **)segs, lens, 16);
    if (n < 0)
        return NULL;
    enum http_method m = method == HTTP_HEAD ? HTTP_GET : method;
    for (size_t i = 0; i < r->n; i++) {
        const struct route_entry *e = &r->routes[i];
        if (!match_entry(e, segs, lens, n, NULL))
            continue;
        if (e->route.method != m) {
            *allowed |= e->route.method;
            continue;
        }
        match_entry(e, segs, lens, n, req);
        return &e->route;
    }
    return NULL;
}
