/* Validation: walks the compiled nodes over an instance. The fast path
 * (no error collection) stops at the first failure and allocates nothing
 * but for propertyNames and unevaluated* on instances of more than 256
 * members. Annotations (which members were evaluated) are tracked only
 * below a node that has unevaluatedProperties/Items. The detailed path
 * records errors in the "basic" output format. */
#include "js_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JS_MAX_DEPTH 512

/* Which members (by iteration order) or items of one instance have been
 * evaluated: the annotations unevaluatedProperties/Items read. */
struct ann {
    uint64_t *w;
    size_t nw;
    uint64_t inl[4];
};

/* The dynamic scope: the resources entered, innermost first. */
struct scope {
    const struct js__res *res;
    const struct scope *up;
};

struct vc {
    bool detailed;
    bool fmt_assert;
    int depth;
    int rc;
    size_t max_errors;
    const struct scope *scope;
    struct core_buf kpath; /* keyword location (detailed only) */
    struct core_buf ipath; /* instance location (detailed only) */
    struct jsonschema_result *out;
};

/* ------------------------------------------------------------ annotations */
static bool ann_init(struct vc *c, struct ann *a, size_t n)
{
    a->nw = (n + 63) / 64;
    if (a->nw <= sizeof a->inl / sizeof *a->inl) {
        a->w = a->inl;
        memset(a->inl, 0, sizeof a->inl);
        return true;
    }
    a->w = calloc(a->nw, sizeof *a->w);
    if (!a->w) {
        a->nw = 0;
        c->rc = CORE_ENOMEM;
        return false;
    }
    return true;
}

static void ann_fini(struct ann *a)
{
    if (a->w && a->w != a->inl)
        free(a->w);
    a->w = NULL;
}

static inline void ann_set(struct ann *a, size_t i)
{
    if (a)
        a->w[i >> 6] |= 1ull << (i & 63);
}

static inline bool ann_get(const struct ann *a, size_t i)
{
    return a && (a->w[i >> 6] >> (i & 63)) & 1;
}

static void ann_or(struct ann *dst, const struct ann *src)
{
    if (!dst || !src)
        return;
    for (size_t i = 0; i < dst->nw && i < src->nw; i++)
        dst->w[i] |= src->w[i];
}

static size_t inst_size(const json_t *v)
{
    return json_is_object(v) ? json_object_size(v)
           : json_is_array(v) ? json_array_size(v)
                              : 0;
}

/* ----------------------------------------------------------------- errors */
static size_t kpush(struct vc *c, const char *kw, const char *tok,
                    size_t toklen)
{
    size_t l = c->kpath.len;
    core_buf_putc(&c->kpath, '/');
    core_buf_puts(&c->kpath, kw);
    if (tok)
        js__pointer_append(&c->kpath, tok, toklen);
    return l;
}

static size_t kpush_index(struct vc *c, const char *kw, size_t i)
{
    size_t l = c->kpath.len;
    core_buf_printf(&c->kpath, "/%s/%zu", kw, i);
    return l;
}

static void pop(struct core_buf *b, size_t l)
{
    b->len = l;
    if (b->data)
        b->data[l] = '\0';
}

static size_t ipush(struct vc *c, const char *key, size_t len)
{
    size_t l = c->ipath.len;
    js__pointer_append(&c->ipath, key, len);
    return l;
}

static size_t ipush_index(struct vc *c, size_t i)
{
    size_t l = c->ipath.len;
    core_buf_printf(&c->ipath, "/%zu", i);
    return l;
}

static void errors_truncate(struct vc *c, size_t mark)
{
    struct jsonschema_result *r = c->out;
    while (r->nerrors > mark) {
        struct jsonschema_error *e = &r->errors[--r->nerrors];
        free(e->instance_location);
        free(e->keyword_location);
        free(e->absolute_keyword_location);
        free(e->message);
    }
}

static char *bufdup(const struct core_buf *b)
{
    return strdup(b->data ? b->data : "");
}

/* Records an error at keyword kw (NULL: the node itself) of node n, with
 * tok (already a JSON Pointer suffix such as "/3", may be NULL). */
static void add_error(struct vc *c, const struct js__node *n, const char *kw,
                      const char *tok, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void add_error(struct vc *c, const struct js__node *n, const char *kw,
                      const char *tok, const char *fmt, ...)
{
    struct jsonschema_result *r = c->out;
    if (!c->detailed || r->nerrors >= c->max_errors)
        return;
    if (r->nerrors == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        struct jsonschema_error *e = realloc(r->errors, cap * sizeof *e);
        if (!e) {
            c->rc = CORE_ENOMEM;
            return;
        }
        r->errors = e;
        r->cap = cap;
    }
    struct core_buf kl, al, msg;
    core_buf_init(&kl);
    core_buf_init(&al);
    core_buf_init(&msg);
    core_buf_puts(&kl, c->kpath.data ? c->kpath.data : "");
    core_buf_puts(&al, n->abs);
    if (kw) {
        core_buf_printf(&kl, "/%s", kw);
        core_buf_printf(&al, "/%s", kw);
    }
    if (tok) {
        core_buf_puts(&kl, tok);
        core_buf_puts(&al, tok);
    }
    va_list ap;
    va_start(ap, fmt);
    core_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    struct jsonschema_error e = {
        .instance_location = bufdup(&c->ipath),
        .keyword_location = core_buf_steal(&kl),
        .absolute_keyword_location = core_buf_steal(&al),
        .message = core_buf_steal(&msg),
    };
    if (c->ipath.oom || c->kpath.oom || !e.instance_location ||
        !e.keyword_location || !e.absolute_keyword_location || !e.message) {
        free(e.instance_location);
        free(e.keyword_location);
        free(e.absolute_keyword_location);
        free(e.message);
        c->rc = CORE_ENOMEM;
        return;
    }
    r->errors[r->nerrors++] = e;
}

/* A short rendering of a value for messages, truncated. */
struct snip {
    char s[96];
};

static struct snip snippet(const json_t *v)
{
    struct snip out;
    char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!d) {
        snprintf(out.s, sizeof out.s, "value");
        return out;
    }
    size_t n = strlen(d);
    if (n < sizeof out.s) {
        memcpy(out.s, d, n + 1);
    } else {
        /* Cut at a UTF-8 boundary and mark the cut. */
        size_t cut = sizeof out.s - 5;
        while (cut > 0 && ((unsigned char)d[cut] & 0xC0) == 0x80)
            cut--;
        memcpy(out.s, d, cut);
        memcpy(out.s + cut, "...", 4);
    }
    free(d);
    return out;
}

static struct snip key_snippet(const char *k, size_t len)
{
    json_t *s = json_stringn_nocheck(k, len);
    struct snip out = snippet(s);
    json_decref(s);
    return out;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL: {
        double d = json_real_value(v);
        return isfinite(d) && d == floor(d) ? "integer" : "number";
    }
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static void type_list(unsigned mask, char *buf, size_t n)
{
    static const char *const names[] = {"null",   "boolean", "object",
                                        "array",  "number",  "string",
                                        "integer"};
    size_t w = 0;
    int count = __builtin_popcount(mask), seen = 0;
    buf[0] = '\0';
    for (int i = 0; i < 7; i++) {
        if (!(mask & (1u << i)))
            continue;
        seen++;
        const char *sep = seen == 1 ? "" : seen == count ? " or " : ", ";
        int k = snprintf(buf + w, n - w, "%s%s", sep, names[i]);
        if (k < 0 || (size_t)k >= n - w)
            return;
        w += (size_t)k;
    }
}

/* ---------------------------------------------------------------- numbers */
static inline unsigned type_bits(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return JS_T_OBJECT;
    case JSON_ARRAY:
        return JS_T_ARRAY;
    case JSON_STRING:
        return JS_T_STRING;
    case JSON_INTEGER:
        return JS_T_NUMBER | JS_T_INTEGER;
    case JSON_REAL: {
        double d = json_real_value(v);
        return JS_T_NUMBER | (isfinite(d) && d == floor(d) ? JS_T_INTEGER : 0);
    }
    case JSON_TRUE:
    case JSON_FALSE:
        return JS_T_BOOLEAN;
    default:
        return JS_T_NULL;
    }
}

/* Compares an instance number with a limit: <0, 0, >0. */
static int num_cmp(const json_t *v, const struct js__check *k)
{
    if (json_is_integer(v) && k->u.num.is_int) {
        int64_t a = json_integer_value(v), b = k->u.num.i;
        return (a > b) - (a < b);
    }
    long double a = json_is_integer(v) ? (long double)json_integer_value(v)
                                       : (long double)json_real_value(v);
    long double b = k->u.num.is_int ? (long double)k->u.num.i
                                    : (long double)k->u.num.d;
    return (a > b) - (a < b);
}

static bool multiple_of(const json_t *v, const struct js__check *k)
{
    if (json_is_integer(v) && k->u.num.is_int)
        return json_integer_value(v) % k->u.num.i == 0;
    double x = json_number_value(v), m = k->u.num.d;
    double q = x / m;
    if (!isfinite(q))
        return fmod(x, m) == 0;
    return fabs(q - nearbyint(q)) < 1e-9;
}

/* -------------------------------------------------------------- the walk */
static bool eval(struct vc *c, const struct js__node *n, const json_t *inst,
                 struct ann *ann);

static const struct js__named *named_find(const struct js__named *v, size_t n,
                                          const char *key, size_t len)
{
    if (n <= 8) {
        for (size_t i = 0; i < n; i++)
            if (v[i].len == len && memcmp(v[i].name, key, len) == 0)
                return &v[i];
        return NULL;
    }
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int d = v[mid].len != len ? (v[mid].len < len ? -1 : 1)
                                  : memcmp(v[mid].name, key, len);
        if (d == 0)
            return &v[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Evaluates child node on a member of an object instance. */
static bool eval_member(struct vc *c, const struct js__node *child,
                        const json_t *v, const char *kw, const char *key,
                        size_t klen, bool key_in_kpath)
{
    if (!c->detailed)
        return eval(c, child, v, NULL);
    size_t kl = kpush(c, kw, key_in_kpath ? key : NULL, klen);
    size_t il = ipush(c, key, klen);
    bool ok = eval(c, child, v, NULL);
    pop(&c->kpath, kl);
    pop(&c->ipath, il);
    return ok;
}

static bool eval_item(struct vc *c, const struct js__node *child,
                      const json_t *v, const char *kw, size_t i, bool index_kw)
{
    if (!c->detailed)
        return eval(c, child, v, NULL);
    size_t kl = index_kw ? kpush_index(c, kw, i) : kpush(c, kw, NULL, 0);
    size_t il = ipush_index(c, i);
    bool ok = eval(c, child, v, NULL);
    pop(&c->kpath, kl);
    pop(&c->ipath, il);
    return ok;
}

/* Evaluates child in place (same instance), under keyword kw[/i]. */
static bool eval_in_place(struct vc *c, const struct js__node *child,
                          const json_t *inst, struct ann *ann, const char *kw,
                          long idx)
{
    if (!c->detailed)
        return eval(c, child, inst, ann);
    size_t kl = idx >= 0 ? kpush_index(c, kw, (size_t)idx) : kpush(c, kw, NULL, 0);
    bool ok = eval(c, child, inst, ann);
    pop(&c->kpath, kl);
    return ok;
}

static bool eval_in_place_named(struct vc *c, const struct js__node *child,
                                const json_t *inst, struct ann *ann,
                                const char *kw, const char *name, size_t len)
{
    if (!c->detailed)
        return eval(c, child, inst, ann);
    size_t kl = kpush(c, kw, name, len);
    bool ok = eval(c, child, inst, ann);
    pop(&c->kpath, kl);
    return ok;
}

static bool pattern_any(const struct js__check *pats, const char *key,
                        size_t klen)
{
    for (size_t j = 0; j < pats->u.pats.n; j++)
        if (js__regex_search(pats->u.pats.v[j].re, key, klen))
            return true;
    return false;
}

static bool check_object(struct vc *c, const struct js__node *n,
                         const struct js__check *k, const json_t *inst,
                         struct ann *ann)
{
    bool valid = true;
    const char *key;
    size_t klen;
    json_t *v;
    size_t i = 0;
    switch (k->kind) {
    case JS_K_PROPERTIES:
        if (k->u.named.n == 0)
            return true;
        JS_OBJECT_FOREACH(inst, it, key, klen, v) {
            const struct js__named *e =
                named_find(k->u.named.v, k->u.named.n, key, klen);
            if (e) {
                if (eval_member(c, e->node, v, k->kw, key, klen, true))
                    ann_set(ann, i);
                else if (valid = false, !c->detailed)
                    return false;
            }
            i++;
        }
        return valid;
    case JS_K_PATTERN_PROPERTIES:
        JS_OBJECT_FOREACH(inst, it, key, klen, v) {
            for (size_t j = 0; j < k->u.pats.n; j++) {
                const struct js__pattern *p = &k->u.pats.v[j];
                if (!js__regex_search(p->re, key, klen))
                    continue;
                bool ok;
                if (c->detailed) {
                    size_t kl = kpush(c, k->kw, p->src, strlen(p->src));
                    size_t il = ipush(c, key, klen);
                    ok = eval(c, p->node, v, NULL);
                    pop(&c->kpath, kl);
                    pop(&c->ipath, il);
                } else {
                    ok = eval(c, p->node, v, NULL);
                }
                if (ok)
                    ann_set(ann, i);
                else if (valid = false, !c->detailed)
                    return false;
            }
            i++;
        }
        return valid;
    case JS_K_ADDITIONAL_PROPERTIES:
    case JS_K_UNEVALUATED_PROPERTIES: {
        bool addl = k->kind == JS_K_ADDITIONAL_PROPERTIES;
        const struct js__node *child = addl ? k->u.addl.node : k->u.node;
        const struct js__check *props =
            addl && k->u.addl.props >= 0 ? &n->checks[k->u.addl.props] : NULL;
        const struct js__check *pats =
            addl && k->u.addl.patterns >= 0 ? &n->checks[k->u.addl.patterns]
                                            : NULL;
        JS_OBJECT_FOREACH(inst, it, key, klen, v) {
            bool covered;
            if (addl)
                covered = (props && named_find(props->u.named.v,
                                               props->u.named.n, key, klen)) ||
                          (pats && pattern_any(pats, key, klen));
            else
                covered = ann_get(ann, i);
            if (!covered) {
                bool ok;
                if (child->is_bool) {
                    ok = child->bool_value;
                    if (!ok && c->detailed) {
                        size_t il = ipush(c, key, klen);
                        add_error(c, n, k->kw, NULL,
                                  "property %s is not allowed%s",
                                  key_snippet(key, klen).s,
                                  addl ? "" : " (it is not evaluated by any "
                                              "other keyword)");
                        pop(&c->ipath, il);
                    }
                } else {
                    ok = eval_member(c, child, v, k->kw, key, klen, false);
                }
                if (ok)
                    ann_set(ann, i);
                else if (valid = false, !c->detailed)
                    return false;
            }
            i++;
        }
        return valid;
    }
    case JS_K_PROPERTY_NAMES:
        JS_OBJECT_FOREACH(inst, it, key, klen, v) {
            json_t *name = json_stringn_nocheck(key, klen);
            if (!name) {
                c->rc = CORE_ENOMEM;
                return false;
            }
            bool ok;
            if (c->detailed) {
                size_t kl = kpush(c, k->kw, NULL, 0), il = ipush(c, key, klen);
                ok = eval(c, k->u.node, name, NULL);
                pop(&c->kpath, kl);
                pop(&c->ipath, il);
            } else {
                ok = eval(c, k->u.node, name, NULL);
            }
            json_decref(name);
            if (!ok && (valid = false, !c->detailed))
                return false;
        }
        return valid;
    case JS_K_DEPENDENT_SCHEMAS:
        for (size_t j = 0; j < k->u.named.n; j++) {
            const struct js__named *e = &k->u.named.v[j];
            if (!json_object_getn(inst, e->name, e->len))
                continue;
            if (!eval_in_place_named(c, e->node, inst, ann, k->kw, e->name,
                                     e->len) &&
                (valid = false, !c->detailed))
                return false;
        }
        return valid;
    case JS_K_REQUIRED:
        for (size_t j = 0; j < k->u.required.n; j++) {
            if (json_object_getn(inst, k->u.required.names[j],
                                 k->u.required.lens[j]))
                continue;
            if (!c->detailed)
                return false;
            valid = false;
            add_error(c, n, k->kw, NULL, "required property %s is missing",
                      key_snippet(k->u.required.names[j], k->u.required.lens[j]).s);
        }
        return valid;
    case JS_K_DEPENDENT_REQUIRED:
        for (size_t j = 0; j < k->u.named.n; j++) {
            const struct js__named *e = &k->u.named.v[j];
            if (!json_object_getn(inst, e->name, e->len))
                continue;
            for (size_t r = 0; r < e->nrequired; r++) {
                if (json_object_get(inst, e->required[r]))
                    continue;
                if (!c->detailed)
                    return false;
                valid = false;
                struct snip a = key_snippet(e->name, e->len);
                add_error(c, n, k->kw, NULL,
                          "property %s is required when %s is present",
                          key_snippet(e->required[r], strlen(e->required[r])).s,
                          a.s);
            }
        }
        return valid;
    case JS_K_MAX_PROPERTIES:
        if (json_object_size(inst) <= k->u.count)
            return true;
        add_error(c, n, k->kw, NULL,
                  "object has %zu properties, at most %zu are allowed",
                  json_object_size(inst), k->u.count);
        return false;
    case JS_K_MIN_PROPERTIES:
        if (json_object_size(inst) >= k->u.count)
            return true;
        add_error(c, n, k->kw, NULL,
                  "object has %zu properties, at least %zu are required",
                  json_object_size(inst), k->u.count);
        return false;
    default:
        return true;
    }
}

static bool check_array(struct vc *c, const struct js__node *n,
                        const struct js__check *k, const json_t *inst,
                        struct ann *ann)
{
    size_t size = json_array_size(inst);
    bool valid = true;
    switch (k->kind) {
    case JS_K_PREFIX_ITEMS:
        for (size_t i = 0; i < size && i < k->u.list.n; i++) {
            if (eval_item(c, k->u.list.v[i], json_array_get(inst, i), k->kw, i,
                          true))
                ann_set(ann, i);
            else if (valid = false, !c->detailed)
                return false;
        }
        return valid;
    case JS_K_ITEMS:
    case JS_K_UNEVALUATED_ITEMS: {
        bool uneval = k->kind == JS_K_UNEVALUATED_ITEMS;
        const struct js__node *child = uneval ? k->u.node : k->u.items.node;
        for (size_t i = uneval ? 0 : k->u.items.prefix; i < size; i++) {
            if (uneval && ann_get(ann, i))
                continue;
            if (child->is_bool && !child->bool_value) {
                if (!c->detailed)
                    return false;
                size_t il = ipush_index(c, i);
                add_error(c, n, k->kw, NULL, "item %zu is not allowed%s", i,
                          uneval ? " (it is not evaluated by any other keyword)"
                                 : "");
                pop(&c->ipath, il);
                valid = false;
                continue;
            }
            if (eval_item(c, child, json_array_get(inst, i), k->kw, i, false))
                ann_set(ann, i);
            else if (valid = false, !c->detailed)
                return false;
        }
        return valid;
    }
    case JS_K_CONTAINS: {
        size_t count = 0;
        size_t mark = c->out ? c->out->nerrors : 0;
        for (size_t i = 0; i < size; i++) {
            if (eval_item(c, k->u.contains.node, json_array_get(inst, i), k->kw,
                          i, false)) {
                count++;
                ann_set(ann, i);
                if (!ann && !c->detailed && !k->u.contains.has_max &&
                    count >= k->u.contains.min)
                    break;
                if (!ann && !c->detailed && k->u.contains.has_max &&
                    count > k->u.contains.max)
                    return false;
            }
        }
        if (c->detailed)
            errors_truncate(c, mark);
        if (count < k->u.contains.min) {
            if (count == 0)
                add_error(c, n, k->kw, NULL,
                          "no item matches the \"contains\" schema");
            else
                add_error(c, n, k->kw, NULL,
                          "%zu item%s match%s the \"contains\" schema, at least "
                          "%zu required",
                          count, count == 1 ? "" : "s", count == 1 ? "es" : "",
                          k->u.contains.min);
            return false;
        }
        if (k->u.contains.has_max && count > k->u.contains.max) {
            add_error(c, n, k->kw, NULL,
                      "%zu items match the \"contains\" schema, at most %zu "
                      "allowed",
                      count, k->u.contains.max);
            return false;
        }
        return true;
    }
    case JS_K_MAX_ITEMS:
        if (size <= k->u.count)
            return true;
        add_error(c, n, k->kw, NULL,
                  "array has %zu items, at most %zu are allowed", size,
                  k->u.count);
        return false;
    case JS_K_MIN_ITEMS:
        if (size >= k->u.count)
            return true;
        add_error(c, n, k->kw, NULL,
                  "array has %zu items, at least %zu are required", size,
                  k->u.count);
        return false;
    case JS_K_UNIQUE_ITEMS:
        for (size_t i = 1; i < size; i++) {
            for (size_t j = 0; j < i; j++) {
                if (js__json_equal(json_array_get(inst, i),
                                   json_array_get(inst, j))) {
                    add_error(c, n, k->kw, NULL,
                              "items %zu and %zu are equal; items must be "
                              "unique",
                              j, i);
                    return false;
                }
            }
        }
        return true;
    default:
        return true;
    }
}

static bool check_string(struct vc *c, const struct js__node *n,
                         const struct js__check *k, const json_t *inst)
{
    const char *s = json_string_value(inst);
    size_t len = json_string_length(inst);
    switch (k->kind) {
    case JS_K_MAX_LENGTH: {
        if (len <= k->u.count)
            return true;
        size_t cp = js__utf8_length(s, len);
        if (cp <= k->u.count)
            return true;
        add_error(c, n, k->kw, NULL,
                  "string is %zu characters long, at most %zu are allowed", cp,
                  k->u.count);
        return false;
    }
    case JS_K_MIN_LENGTH: {
        size_t cp = len < k->u.count ? len : js__utf8_length(s, len);
        if (cp >= k->u.count)
            return true;
        add_error(c, n, k->kw, NULL,
                  "string is %zu characters long, at least %zu are required",
                  cp, k->u.count);
        return false;
    }
    case JS_K_PATTERN:
        if (js__regex_search(k->u.pattern.pat.re, s, len))
            return true;
        add_error(c, n, k->kw, NULL, "%s does not match the pattern %s",
                  snippet(inst).s, key_snippet(k->u.pattern.pat.src,
                                               strlen(k->u.pattern.pat.src)).s);
        return false;
    case JS_K_FORMAT:
        if (!(c->fmt_assert || k->u.format.assert) ||
            js__format_check((enum js__format)k->u.format.fmt, s, len))
            return true;
        add_error(c, n, k->kw, NULL, "%s is not a valid %s", snippet(inst).s,
                  k->u.format.name);
        return false;
    default:
        return true;
    }
}

static bool check_number(struct vc *c, const struct js__node *n,
                         const struct js__check *k, const json_t *inst)
{
    int d;
    const char *what;
    switch (k->kind) {
    case JS_K_MULTIPLE_OF:
        if (multiple_of(inst, k))
            return true;
        add_error(c, n, k->kw, NULL, "%s is not a multiple of %s",
                  snippet(inst).s, snippet(k->u.num.json).s);
        return false;
    case JS_K_MAXIMUM:
        if ((d = num_cmp(inst, k)) <= 0)
            return true;
        what = "greater than the maximum";
        break;
    case JS_K_EXCLUSIVE_MAXIMUM:
        if ((d = num_cmp(inst, k)) < 0)
            return true;
        what = "not less than the exclusive maximum";
        break;
    case JS_K_MINIMUM:
        if ((d = num_cmp(inst, k)) >= 0)
            return true;
        what = "less than the minimum";
        break;
    case JS_K_EXCLUSIVE_MINIMUM:
        if ((d = num_cmp(inst, k)) > 0)
            return true;
        what = "not greater than the exclusive minimum";
        break;
    default:
        return true;
    }
    add_error(c, n, k->kw, NULL, "%s is %s %s", snippet(inst).s, what,
              snippet(k->u.num.json).s);
    return false;
}

static const struct js__node *dynamic_target(const struct vc *c,
                                             const struct js__check *k)
{
    const struct js__node *found = k->u.ref.node;
    for (const struct scope *s = c->scope; s; s = s->up)
        for (size_t i = 0; i < s->res->ndyn; i++)
            if (strcmp(s->res->dyn[i].name, k->u.ref.anchor) == 0)
                found = s->res->dyn[i].node; /* keep the outermost */
    return found;
}

static bool check_applicator(struct vc *c, const struct js__node *n,
                             const struct js__check *k, const json_t *inst,
                             struct ann *ann)
{
    size_t mark = c->detailed ? c->out->nerrors : 0;
    size_t size = ann ? inst_size(inst) : 0;
    bool valid = true;
    switch (k->kind) {
    case JS_K_ALL_OF:
        for (size_t i = 0; i < k->u.list.n; i++)
            if (!eval_in_place(c, k->u.list.v[i], inst, ann, k->kw, (long)i) &&
                (valid = false, !c->detailed))
                return false;
        return valid;
    case JS_K_ANY_OF: {
        bool any = false;
        for (size_t i = 0; i < k->u.list.n; i++) {
            struct ann tmp;
            if (ann && !ann_init(c, &tmp, size))
                return false;
            bool ok = eval_in_place(c, k->u.list.v[i], inst, ann ? &tmp : NULL,
                                    k->kw, (long)i);
            if (ok) {
                any = true;
                ann_or(ann, &tmp);
            }
            if (ann)
                ann_fini(&tmp);
            if (ok && !ann)
                break;
        }
        if (any) {
            if (c->detailed)
                errors_truncate(c, mark);
            return true;
        }
        add_error(c, n, k->kw, NULL,
                  "value does not match any of the %zu alternatives of anyOf",
                  k->u.list.n);
        return false;
    }
    case JS_K_ONE_OF: {
        size_t count = 0, first = 0, second = 0;
        struct ann win;
        if (ann && !ann_init(c, &win, size))
            return false;
        for (size_t i = 0; i < k->u.list.n; i++) {
            struct ann tmp;
            if (ann && !ann_init(c, &tmp, size)) {
                ann_fini(&win);
                return false;
            }
            bool ok = eval_in_place(c, k->u.list.v[i], inst, ann ? &tmp : NULL,
                                    k->kw, (long)i);
            if (ok) {
                if (count++ == 0) {
                    first = i;
                    ann_or(ann ? &win : NULL, &tmp);
                } else if (count == 2) {
                    second = i;
                }
            }
            if (ann)
                ann_fini(&tmp);
            if (count > 1)
                break;
        }
        if (count == 1) {
            ann_or(ann, &win);
            if (ann)
                ann_fini(&win);
            if (c->detailed)
                errors_truncate(c, mark);
            return true;
        }
        if (ann)
            ann_fini(&win);
        if (count == 0) {
            add_error(c, n, k->kw, NULL,
                      "value does not match any of the %zu alternatives of "
                      "oneOf (exactly one must match)",
                      k->u.list.n);
        } else {
            if (c->detailed)
                errors_truncate(c, mark);
            add_error(c, n, k->kw, NULL,
                      "value matches alternatives %zu and %zu of oneOf; "
                      "exactly one must match",
                      first, second);
        }
        return false;
    }
    case JS_K_NOT: {
        bool ok = eval_in_place(c, k->u.node, inst, NULL, k->kw, -1);
        if (c->detailed)
            errors_truncate(c, mark);
        if (!ok)
            return true;
        add_error(c, n, k->kw, NULL,
                  "value must not match the schema in \"not\"");
        return false;
    }
    case JS_K_IF: {
        if (!ann && !k->u.cond.then_ && !k->u.cond.else_)
            return true;
        struct ann tmp;
        if (ann && !ann_init(c, &tmp, size))
            return false;
        bool ok = eval_in_place(c, k->u.cond.if_, inst, ann ? &tmp : NULL,
                                "if", -1);
        if (c->detailed)
            errors_truncate(c, mark);
        if (ok)
            ann_or(ann, &tmp);
        if (ann)
            ann_fini(&tmp);
        if (ok)
            return !k->u.cond.then_ ||
                   eval_in_place(c, k->u.cond.then_, inst, ann, "then", -1);
        return !k->u.cond.else_ ||
               eval_in_place(c, k->u.cond.else_, inst, ann, "else", -1);
    }
    case JS_K_REF:
        return eval_in_place(c, k->u.ref.node, inst, ann, k->kw, -1);
    case JS_K_DYNAMIC_REF: {
        const struct js__node *t =
            k->u.ref.anchor ? dynamic_target(c, k) : k->u.ref.node;
        return eval_in_place(c, t, inst, ann, k->kw, -1);
    }
    default:
        return true;
    }
}

static bool check(struct vc *c, const struct js__node *n,
                  const struct js__check *k, const json_t *inst,
                  struct ann *ann)
{
    switch (k->kind) {
    case JS_K_TYPE:
        if (type_bits(inst) & k->u.type_mask)
            return true;
        if (c->detailed) {
            char want[96];
            type_list(k->u.type_mask, want, sizeof want);
            add_error(c, n, k->kw, NULL, "expected %s, got %s", want,
                      type_name(inst));
        }
        return false;
    case JS_K_CONST:
        if (js__json_equal(inst, k->u.cnst.value))
            return true;
        add_error(c, n, k->kw, NULL, "value must be %s",
                  snippet(k->u.cnst.value).s);
        return false;
    case JS_K_ENUM:
        for (size_t i = 0; i < json_array_size(k->u.cnst.value); i++)
            if (js__json_equal(inst, json_array_get(k->u.cnst.value, i)))
                return true;
        add_error(c, n, k->kw, NULL, "value must be one of %s",
                  snippet(k->u.cnst.value).s);
        return false;
    case JS_K_MULTIPLE_OF:
    case JS_K_MAXIMUM:
    case JS_K_EXCLUSIVE_MAXIMUM:
    case JS_K_MINIMUM:
    case JS_K_EXCLUSIVE_MINIMUM:
        return !json_is_number(inst) || check_number(c, n, k, inst);
    case JS_K_MAX_LENGTH:
    case JS_K_MIN_LENGTH:
    case JS_K_PATTERN:
    case JS_K_FORMAT:
        return !json_is_string(inst) || check_string(c, n, k, inst);
    case JS_K_MAX_ITEMS:
    case JS_K_MIN_ITEMS:
    case JS_K_UNIQUE_ITEMS:
    case JS_K_PREFIX_ITEMS:
    case JS_K_ITEMS:
    case JS_K_CONTAINS:
    case JS_K_UNEVALUATED_ITEMS:
        return !json_is_array(inst) || check_array(c, n, k, inst, ann);
    case JS_K_MAX_PROPERTIES:
    case JS_K_MIN_PROPERTIES:
    case JS_K_REQUIRED:
    case JS_K_DEPENDENT_REQUIRED:
    case JS_K_PROPERTIES:
    case JS_K_PATTERN_PROPERTIES:
    case JS_K_ADDITIONAL_PROPERTIES:
    case JS_K_PROPERTY_NAMES:
    case JS_K_DEPENDENT_SCHEMAS:
    case JS_K_UNEVALUATED_PROPERTIES:
        return !json_is_object(inst) || check_object(c, n, k, inst, ann);
    default:
        return check_applicator(c, n, k, inst, ann);
    }
}

static bool eval(struct vc *c, const struct js__node *n, const json_t *inst,
                 struct ann *ann)
{
    if (n->is_bool) {
        if (!n->bool_value)
            add_error(c, n, NULL, NULL,
                      "no value is allowed here (the schema is false)");
        return n->bool_value;
    }
    if (c->depth >= JS_MAX_DEPTH || c->rc) {
        if (!c->rc)
            add_error(c, n, NULL, NULL,
                      "validation nests deeper than %d levels (a $ref loop?)",
                      JS_MAX_DEPTH);
        return false;
    }
    c->depth++;
    const struct scope *saved = c->scope;
    struct scope frame;
    if (!saved || saved->res != n->res) {
        frame.res = n->res;
        frame.up = saved;
        c->scope = &frame;
    }
    struct ann local, *track = ann;
    bool own = (n->uneval_props && json_is_object(inst)) ||
               (n->uneval_items && json_is_array(inst));
    bool valid = true;
    if (own) {
        if (!ann_init(c, &local, inst_size(inst))) {
            valid = false;
            goto out;
        }
        track = &local;
    }
    for (size_t i = 0; i < n->nchecks; i++) {
        if (!check(c, n, &n->checks[i], inst, track)) {
            valid = false;
            if (!c->detailed || c->rc)
                break;
        }
    }
    if (own) {
        if (valid)
            ann_or(ann, &local);
        ann_fini(&local);
    }
out:
    c->scope = saved;
    c->depth--;
    return valid;
}

/* ---------------------------------------------------------------- public */
int jsonschema_validate(const struct jsonschema *s, const json_t *instance,
                        const struct jsonschema_options *opts,
                        struct jsonschema_result *out)
{
    memset(out, 0, sizeof *out);
    if (!s || !instance)
        return CORE_EINVAL;
    struct vc c = {
        .detailed = opts && opts->detailed,
        .fmt_assert = opts && opts->format_assert,
        .max_errors = opts && opts->max_errors ? opts->max_errors : 100,
        .out = out,
    };
    core_buf_init(&c.kpath);
    core_buf_init(&c.ipath);
    bool ok = eval(&c, s->root, instance, NULL);
    core_buf_fini(&c.kpath);
    core_buf_fini(&c.ipath);
    if (c.rc) {
        jsonschema_result_fini(out);
        return c.rc;
    }
    out->valid = ok;
    return 0;
}

bool jsonschema_is_valid(const struct jsonschema *s, const json_t *instance,
                         const struct jsonschema_options *opts)
{
    struct jsonschema_options o = opts ? *opts : (struct jsonschema_options){0};
    o.detailed = false;
    struct jsonschema_result r;
    return jsonschema_validate(s, instance, &o, &r) == 0 && r.valid;
}

void jsonschema_result_fini(struct jsonschema_result *r)
{
    for (size_t i = 0; i < r->nerrors; i++) {
        free(r->errors[i].instance_location);
        free(r->errors[i].keyword_location);
        free(r->errors[i].absolute_keyword_location);
        free(r->errors[i].message);
    }
    free(r->errors);
    memset(r, 0, sizeof *r);
}

void jsonschema_result_render(const struct jsonschema_result *r,
                              struct core_buf *b)
{
    core_buf_printf(b, "{\"valid\":%s", r->valid ? "true" : "false");
    if (!r->valid) {
        core_buf_puts(b, ",\"errors\":[");
        for (size_t i = 0; i < r->nerrors; i++) {
            const struct jsonschema_error *e = &r->errors[i];
            core_buf_puts(b, i ? ",{\"keywordLocation\":" : "{\"keywordLocation\":");
            core_buf_json_string(b, e->keyword_location);
            core_buf_puts(b, ",\"absoluteKeywordLocation\":");
            core_buf_json_string(b, e->absolute_keyword_location);
            core_buf_puts(b, ",\"instanceLocation\":");
            core_buf_json_string(b, e->instance_location);
            core_buf_puts(b, ",\"error\":");
            core_buf_json_string(b, e->message);
            core_buf_putc(b, '}');
        }
        core_buf_putc(b, ']');
    }
    core_buf_putc(b, '}');
}
