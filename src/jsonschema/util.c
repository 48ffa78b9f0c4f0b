/* Small helpers of the validator: arena, hash maps, URI resolution, JSON
 * Pointers, JSON equality. */
#include "js_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ arena */
struct js__arena_block {
    struct js__arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

#define JS_ARENA_BLOCK 8192

void *js__arena_alloc(struct js__arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    struct js__arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > JS_ARENA_BLOCK ? n : JS_ARENA_BLOCK;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        /* A large one-off allocation goes behind the current block so the
         * current block's free space is not wasted. */
        if (a->head && n > JS_ARENA_BLOCK) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *js__arena_strndup(struct js__arena *a, const char *s, size_t n)
{
    char *p = js__arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *js__arena_strdup(struct js__arena *a, const char *s)
{
    return js__arena_strndup(a, s, strlen(s));
}

void js__arena_fini(struct js__arena *a)
{
    struct js__arena_block *b = a->head;
    while (b) {
        struct js__arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* -------------------------------------------------------------------- maps */
static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_ptr(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static int map_grow(struct js__map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    struct js__map_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return CORE_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

static int map_put(struct js__map *m, const void *key, uint64_t h, bool str,
                   void *val)
{
    if ((m->len + 1) * 4 > m->cap * 3) {
        int rc = map_grow(m);
        if (rc)
            return rc;
    }
    size_t j = h & (m->cap - 1);
    while (m->slots[j].key) {
        if (m->slots[j].hash == h &&
            (str ? strcmp(m->slots[j].key, key) == 0 : m->slots[j].key == key)) {
            m->slots[j].val = val;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j].key = key;
    m->slots[j].hash = h;
    m->slots[j].val = val;
    m->len++;
    return 0;
}

static void *map_get(const struct js__map *m, const void *key, uint64_t h,
                     bool str)
{
    if (!m->cap)
        return NULL;
    size_t j = h & (m->cap - 1);
    while (m->slots[j].key) {
        if (m->slots[j].hash == h &&
            (str ? strcmp(m->slots[j].key, key) == 0 : m->slots[j].key == key))
            return m->slots[j].val;
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

int js__map_reserve(struct js__map *m, size_t n)
{
    while ((m->len + n) * 4 > m->cap * 3) {
        int rc = map_grow(m);
        if (rc)
            return rc;
    }
    return 0;
}

int js__map_put_str(struct js__map *m, const char *key, void *val)
{
    return map_put(m, key, hash_str(key), true, val);
}

void *js__map_get_str(const struct js__map *m, const char *key)
{
    return map_get(m, key, hash_str(key), true);
}

int js__map_put_ptr(struct js__map *m, const void *key, void *val)
{
    return map_put(m, key, hash_ptr(key), false, val);
}

void *js__map_get_ptr(const struct js__map *m, const void *key)
{
    return map_get(m, key, hash_ptr(key), false);
}

void js__map_fini(struct js__map *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* -------------------------------------------------------------------- uris */
struct uri_parts {
    const char *scheme;
    size_t scheme_len;
    const char *auth; /* NULL when absent */
    size_t auth_len;
    const char *path;
    size_t path_len;
    const char *query; /* NULL when absent; without '?' */
    size_t query_len;
    const char *frag; /* NULL when absent; without '#' */
    size_t frag_len;
};

static void uri_split(const char *s, struct uri_parts *p)
{
    memset(p, 0, sizeof *p);
    const char *c = s;
    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
    if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')) {
        const char *e = c + 1;
        while ((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') ||
               (*e >= '0' && *e <= '9') || *e == '+' || *e == '-' || *e == '.')
            e++;
        if (*e == ':') {
            p->scheme = c;
            p->scheme_len = (size_t)(e - c);
            c = e + 1;
        }
    }
    if (c[0] == '/' && c[1] == '/') {
        c += 2;
        p->auth = c;
        while (*c && *c != '/' && *c != '?' && *c != '#')
            c++;
        p->auth_len = (size_t)(c - p->auth);
    }
    p->path = c;
    while (*c && *c != '?' && *c != '#')
        c++;
    p->path_len = (size_t)(c - p->path);
    if (*c == '?') {
        p->query = ++c;
        while (*c && *c != '#')
            c++;
        p->query_len = (size_t)(c - p->query);
    }
    if (*c == '#') {
        p->frag = c + 1;
        p->frag_len = strlen(c + 1);
    }
}

/* RFC 3986 5.2.4: remove_dot_segments, appending the result to out. */
static void remove_dots(struct core_buf *out, const char *in, size_t n)
{
    size_t start = out->len;
    size_t i = 0;
    while (i < n) {
        const char *s = in + i;
        size_t rest = n - i;
        if (rest >= 3 && memcmp(s, "../", 3) == 0) {
            i += 3;
        } else if (rest >= 2 && memcmp(s, "./", 2) == 0) {
            i += 2;
        } else if (rest >= 3 && memcmp(s, "/./", 3) == 0) {
            i += 2;
        } else if (rest == 2 && memcmp(s, "/.", 2) == 0) {
            core_buf_putc(out, '/');
            i += 2;
        } else if ((rest >= 4 && memcmp(s, "/../", 4) == 0) ||
                   (rest == 3 && memcmp(s, "/..", 3) == 0)) {
            /* drop the last segment of the output */
            size_t l = out->len;
            while (l > start && out->data[l - 1] != '/')
                l--;
            if (l > start)
                l--;
            out->len = l;
            if (out->data)
                out->data[l] = '\0';
            if (rest == 3) {
                core_buf_putc(out, '/');
                i += 3;
            } else {
                i += 3;
            }
        } else if ((rest == 1 && s[0] == '.') ||
                   (rest == 2 && memcmp(s, "..", 2) == 0)) {
            i = n;
        } else {
            size_t j = 1;
            while (j < rest && s[j] != '/')
                j++;
            if (s[0] != '/') {
                j = 0;
                while (j < rest && s[j] != '/')
                    j++;
            }
            core_buf_append(out, s, j);
            i += j;
        }
    }
}

char *js__uri_resolve(const char *base, const char *ref)
{
    struct uri_parts b, r;
    uri_split(base, &b);
    uri_split(ref, &r);
    struct core_buf out;
    core_buf_init(&out);
    const struct uri_parts *auth_from, *query_from;
    const char *scheme = r.scheme ? r.scheme : b.scheme;
    size_t scheme_len = r.scheme ? r.scheme_len : b.scheme_len;
    struct core_buf path;
    core_buf_init(&path);
    if (r.scheme) {
        auth_from = &r;
        query_from = &r;
        remove_dots(&path, r.path, r.path_len);
    } else if (r.auth) {
        auth_from = &r;
        query_from = &r;
        remove_dots(&path, r.path, r.path_len);
    } else {
        auth_from = &b;
        if (r.path_len == 0) {
            core_buf_append(&path, b.path, b.path_len);
            query_from = r.query ? &r : &b;
        } else {
            query_from = &r;
            if (r.path[0] == '/') {
                remove_dots(&path, r.path, r.path_len);
            } else {
                struct core_buf merged;
                core_buf_init(&merged);
                if (b.auth && b.path_len == 0) {
                    core_buf_putc(&merged, '/');
                } else {
                    size_t k = b.path_len;
                    while (k > 0 && b.path[k - 1] != '/')
                        k--;
                    core_buf_append(&merged, b.path, k);
                }
                core_buf_append(&merged, r.path, r.path_len);
                if (merged.oom)
                    path.oom = true;
                else
                    remove_dots(&path, merged.data, merged.len);
                core_buf_fini(&merged);
            }
        }
    }
    if (scheme) {
        core_buf_append(&out, scheme, scheme_len);
        core_buf_putc(&out, ':');
    }
    if (auth_from->auth) {
        core_buf_puts(&out, "//");
        core_buf_append(&out, auth_from->auth, auth_from->auth_len);
    }
    if (path.oom)
        out.oom = true;
    else if (path.len)
        core_buf_append(&out, path.data, path.len);
    core_buf_fini(&path);
    if (query_from->query) {
        core_buf_putc(&out, '?');
        core_buf_append(&out, query_from->query, query_from->query_len);
    }
    if (r.frag) {
        core_buf_putc(&out, '#');
        core_buf_append(&out, r.frag, r.frag_len);
    }
    if (!out.oom && !out.data)
        core_buf_puts(&out, "");
    return core_buf_steal(&out);
}

char *js__uri_strip_fragment(const char *uri, const char **frag)
{
    const char *h = strchr(uri, '#');
    size_t n = h ? (size_t)(h - uri) : strlen(uri);
    if (frag)
        *frag = h ? h + 1 : NULL;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, uri, n);
        s[n] = '\0';
    }
    return s;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool js__percent_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '%') {
            int hi = hexval((unsigned char)r[1]);
            int lo = hi < 0 ? -1 : hexval((unsigned char)r[2]);
            if (lo < 0)
                return false;
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return true;
}

void js__pointer_append(struct core_buf *b, const char *tok, size_t len)
{
    core_buf_putc(b, '/');
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] == '~' || tok[i] == '/') {
            core_buf_append(b, tok + start, i - start);
            core_buf_puts(b, tok[i] == '~' ? "~0" : "~1");
            start = i + 1;
        }
    }
    core_buf_append(b, tok + start, len - start);
}

json_t *js__pointer_get(json_t *root, const char *ptr)
{
    json_t *cur = root;
    if (*ptr == '\0')
        return cur;
    if (*ptr != '/')
        return NULL;
    struct core_buf tok;
    core_buf_init(&tok);
    const char *p = ptr + 1;
    for (;;) {
        core_buf_reset(&tok);
        while (*p && *p != '/') {
            if (*p == '~' && p[1] == '0') {
                core_buf_putc(&tok, '~');
                p += 2;
            } else if (*p == '~' && p[1] == '1') {
                core_buf_putc(&tok, '/');
                p += 2;
            } else if (*p == '~') {
                cur = NULL;
                goto done;
            } else {
                core_buf_putc(&tok, *p++);
            }
        }
        const char *t = tok.data ? tok.data : "";
        if (tok.oom) {
            cur = NULL;
            goto done;
        }
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, t, tok.len);
        } else if (json_is_array(cur)) {
            char *end;
            if (tok.len == 0 || (tok.len > 1 && t[0] == '0') || t[0] < '0' ||
                t[0] > '9') {
                cur = NULL;
                goto done;
            }
            unsigned long long idx = strtoull(t, &end, 10);
            cur = *end ? NULL : json_array_get(cur, (size_t)idx);
        } else {
            cur = NULL;
        }
        if (!cur || *p == '\0')
            break;
        p++;
    }
done:
    core_buf_fini(&tok);
    return cur;
}

/* ---------------------------------------------------------------- values */
static bool number_equal(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b))
        return json_integer_value(a) == json_integer_value(b);
    long double x = json_is_integer(a) ? (long double)json_integer_value(a)
                                       : (long double)json_real_value(a);
    long double y = json_is_integer(b) ? (long double)json_integer_value(b)
                                       : (long double)json_real_value(b);
    return x == y;
}

bool js__json_equal(const json_t *a, const json_t *b)
{
    if (a == b)
        return true;
    if (json_is_number(a) && json_is_number(b))
        return number_equal(a, b);
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b),
                      json_string_length(a)) == 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!js__json_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        size_t klen;
        json_t *v;
        JS_OBJECT_FOREACH(a, it, k, klen, v) {
            const json_t *w = json_object_getn(b, k, klen);
            if (!w || !js__json_equal(v, w))
                return false;
        }
        return true;
    }
    default:
        return true; /* true, false, null: same type is same value */
    }
}

size_t js__utf8_length(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}
