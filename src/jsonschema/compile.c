/* Compilation: a schema document becomes a graph of nodes, each a flat
 * array of checks with their values precomputed. References are resolved
 * here, once; cycles are closed through a table of nodes by JSON value. */
#include "js_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JS_COMPILE_MAX_DEPTH 400

enum {
    VOC_CORE = 1 << 0,
    VOC_APPLICATOR = 1 << 1,
    VOC_UNEVALUATED = 1 << 2,
    VOC_VALIDATION = 1 << 3,
    VOC_META = 1 << 4,
    VOC_FORMAT_ANNOTATION = 1 << 5,
    VOC_FORMAT_ASSERTION = 1 << 6,
    VOC_CONTENT = 1 << 7,
    VOC_DEFAULT = VOC_CORE | VOC_APPLICATOR | VOC_UNEVALUATED |
                  VOC_VALIDATION | VOC_META | VOC_FORMAT_ANNOTATION |
                  VOC_CONTENT,
};

/* Which draft's keyword set a resource is read with. */
enum dialect { DIALECT_2020, DIALECT_2019, DIALECT_7 };

static const struct {
    const char *uri;
    unsigned bit;
} vocabularies[] = {
    {"https://json-schema.org/draft/2020-12/vocab/core", VOC_CORE},
    {"https://json-schema.org/draft/2020-12/vocab/applicator", VOC_APPLICATOR},
    {"https://json-schema.org/draft/2020-12/vocab/unevaluated",
     VOC_UNEVALUATED},
    {"https://json-schema.org/draft/2020-12/vocab/validation", VOC_VALIDATION},
    {"https://json-schema.org/draft/2020-12/vocab/meta-data", VOC_META},
    {"https://json-schema.org/draft/2020-12/vocab/format-annotation",
     VOC_FORMAT_ANNOTATION},
    {"https://json-schema.org/draft/2020-12/vocab/format-assertion",
     VOC_FORMAT_ASSERTION},
    {"https://json-schema.org/draft/2020-12/vocab/content", VOC_CONTENT},
};

/* A resource as the compiler sees it. */
struct cres {
    struct js__res *rt; /* the run-time part, in the arena */
    const struct js__resource *src;
    unsigned vocab;
    enum dialect dialect;
    struct cres *next;
};

struct cc {
    struct jsonschema *out;
    const struct js__index *ix[3]; /* local, registry, built-in */
    struct js__map nodes;          /* json_t* -> node */
    struct js__map cres_by_src;    /* js__resource* -> cres */
    struct cres *cres_head, **cres_tail;
    struct jsonschema_compile_error *err;
    int rc;
    int depth;
    size_t capdocs, capregex;
};

/* The keyword being compiled. */
struct kctx {
    json_t *obj;       /* the schema object */
    json_t *v;         /* the keyword's value */
    const char *kw;
    struct cres *res;
    const char *ptr;   /* of the schema object inside its resource */
    struct js__node *node;
    struct js__check *checks;
    size_t n, cap;
};

static int fail(struct cc *cc, const struct kctx *k, int rc, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

static int fail(struct cc *cc, const struct kctx *k, int rc, const char *fmt,
                ...)
{
    if (cc->rc)
        return cc->rc;
    cc->rc = rc;
    if (cc->err && rc != CORE_ENOMEM) {
        struct core_buf b;
        core_buf_init(&b);
        core_buf_printf(&b, "%s#%s", k->res->rt->uri, k->ptr);
        if (k->kw)
            js__pointer_append(&b, k->kw, strlen(k->kw));
        snprintf(cc->err->location, sizeof cc->err->location, "%s",
                 b.data ? b.data : "");
        core_buf_fini(&b);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cc->err->message, sizeof cc->err->message, fmt, ap);
        va_end(ap);
    } else if (cc->err) {
        cc->err->location[0] = '\0';
        snprintf(cc->err->message, sizeof cc->err->message, "out of memory");
    }
    return rc;
}

static int oom(struct cc *cc)
{
    if (!cc->rc)
        cc->rc = CORE_ENOMEM;
    if (cc->err) {
        cc->err->location[0] = '\0';
        snprintf(cc->err->message, sizeof cc->err->message, "out of memory");
    }
    return CORE_ENOMEM;
}

/* --------------------------------------------------------------- resources */
static const struct js__resource *find_resource(struct cc *cc, const char *uri,
                                                const struct js__index **from)
{
    for (int i = 0; i < 3; i++) {
        if (!cc->ix[i])
            continue;
        const struct js__resource *r = js__map_get_str(&cc->ix[i]->by_uri, uri);
        if (r) {
            /* A document's root known under its retrieval URI and its own
             * "$id": the latter holds the anchors. */
            const struct js__resource *c =
                js__map_get_ptr(&cc->ix[i]->by_root, r->root);
            if (from)
                *from = cc->ix[i];
            return c ? c : r;
        }
    }
    return NULL;
}

static const struct js__resource *resource_rooted_at(struct cc *cc,
                                                     const json_t *s)
{
    for (int i = 0; i < 3; i++) {
        if (!cc->ix[i])
            continue;
        const struct js__resource *r = js__map_get_ptr(&cc->ix[i]->by_root, s);
        if (r)
            return r;
    }
    return NULL;
}

static int keep_doc(struct cc *cc, json_t *doc)
{
    struct jsonschema *s = cc->out;
    if (s->ndocs == cc->capdocs) {
        size_t cap = cc->capdocs ? cc->capdocs * 2 : 8;
        json_t **d = realloc(s->docs, cap * sizeof *d);
        if (!d)
            return oom(cc);
        s->docs = d;
        cc->capdocs = cap;
    }
    s->docs[s->ndocs++] = json_incref(doc);
    return 0;
}

static bool metaschema_is(const char *m, const char *what)
{
    size_t n = strlen(what);
    return strncmp(m, what, n) == 0 && (m[n] == '\0' || strcmp(m + n, "#") == 0);
}

/* Reads the vocabularies a resource's meta-schema declares. */
static int resource_vocab(struct cc *cc, struct cres *cr, const struct kctx *k)
{
    const char *m = cr->src->metaschema;
    cr->vocab = VOC_DEFAULT;
    cr->dialect = DIALECT_2020;
    if (!m || metaschema_is(m, "https://json-schema.org/draft/2020-12/schema"))
        return 0;
    if (metaschema_is(m, "https://json-schema.org/draft/2019-09/schema")) {
        cr->dialect = DIALECT_2019;
        return 0;
    }
    if (metaschema_is(m, "http://json-schema.org/draft-07/schema") ||
        metaschema_is(m, "http://json-schema.org/draft-06/schema") ||
        metaschema_is(m, "http://json-schema.org/draft-04/schema")) {
        cr->dialect = DIALECT_7;
        return 0;
    }
    char *u = js__uri_strip_fragment(m, NULL);
    if (!u)
        return oom(cc);
    const struct js__resource *meta = find_resource(cc, u, NULL);
    free(u);
    if (!meta)
        return fail(cc, k, CORE_EINVAL,
                    "unknown meta-schema \"%s\" in $schema (register it first)",
                    m);
    json_t *voc = json_is_object(meta->root)
                      ? json_object_get(meta->root, "$vocabulary")
                      : NULL;
    if (!json_is_object(voc))
        return 0;
    cr->vocab = 0;
    const char *key;
    size_t klen;
    json_t *req;
    JS_OBJECT_FOREACH(voc, it, key, klen, req) {
        size_t i;
        for (i = 0; i < sizeof vocabularies / sizeof *vocabularies; i++)
            if (strcmp(key, vocabularies[i].uri) == 0)
                break;
        if (i < sizeof vocabularies / sizeof *vocabularies)
            cr->vocab |= vocabularies[i].bit;
        else if (json_is_true(req))
            return fail(cc, k, CORE_EUNSUPPORTED,
                        "meta-schema \"%s\" requires vocabulary \"%s\", which "
                        "this validator does not support",
                        m, key);
    }
    /* The 2020-12 format vocabularies are either-or; assertion wins. */
    if (cr->vocab & VOC_FORMAT_ASSERTION)
        cr->vocab |= VOC_FORMAT_ANNOTATION;
    return 0;
}

static struct cres *cres_for(struct cc *cc, const struct js__resource *src,
                             const struct kctx *k)
{
    struct cres *cr = js__map_get_ptr(&cc->cres_by_src, src);
    if (cr)
        return cr;
    cr = calloc(1, sizeof *cr);
    if (!cr) {
        oom(cc);
        return NULL;
    }
    *cc->cres_tail = cr;
    cc->cres_tail = &cr->next;
    cr->src = src;
    cr->rt = js__arena_alloc(&cc->out->arena, sizeof *cr->rt);
    if (!cr->rt || !(cr->rt->uri = js__arena_strdup(&cc->out->arena, src->uri)) ||
        js__map_put_ptr(&cc->cres_by_src, src, cr) || keep_doc(cc, src->root)) {
        oom(cc);
        return NULL;
    }
    struct kctx here = {.res = cr, .ptr = ""};
    if (resource_vocab(cc, cr, k ? k : &here))
        return NULL;
    return cr;
}

/* -------------------------------------------------------------- nodes */
static struct js__node *compile_node(struct cc *cc, json_t *s, struct cres *res,
                                     const char *ptr);

static struct js__check *add_check(struct cc *cc, struct kctx *k,
                                   enum js__kind kind)
{
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 8;
        struct js__check *c = realloc(k->checks, cap * sizeof *c);
        if (!c) {
            oom(cc);
            return NULL;
        }
        k->checks = c;
        k->cap = cap;
    }
    struct js__check *c = &k->checks[k->n++];
    memset(c, 0, sizeof *c);
    c->kind = (uint8_t)kind;
    c->kw = k->kw;
    return c;
}

/* Compiles the subschema at keyword kw (and optional token) of k's object. */
static struct js__node *sub(struct cc *cc, struct kctx *k, json_t *v,
                            const char *kw, const char *tok, size_t toklen)
{
    struct core_buf b;
    core_buf_init(&b);
    core_buf_puts(&b, k->ptr);
    js__pointer_append(&b, kw, strlen(kw));
    if (tok)
        js__pointer_append(&b, tok, toklen);
    if (b.oom) {
        core_buf_fini(&b);
        oom(cc);
        return NULL;
    }
    char *p = js__arena_strndup(&cc->out->arena, b.data, b.len);
    core_buf_fini(&b);
    if (!p) {
        oom(cc);
        return NULL;
    }
    return compile_node(cc, v, k->res, p);
}

static struct js__node *sub_index(struct cc *cc, struct kctx *k, json_t *v,
                                  const char *kw, size_t i)
{
    char tok[32];
    int n = snprintf(tok, sizeof tok, "%zu", i);
    return sub(cc, k, v, kw, tok, (size_t)n);
}

static bool is_schema(const json_t *v)
{
    return json_is_object(v) || json_is_boolean(v);
}

static bool nonneg_int(const json_t *v, size_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (size_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 0 && d == floor(d)) {
            *out = d > (double)SIZE_MAX / 2 ? SIZE_MAX : (size_t)d;
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------- keywords */
typedef int (*kw_fn)(struct cc *cc, struct kctx *k);

static int kw_type(struct cc *cc, struct kctx *k)
{
    static const char *const names[] = {"null",   "boolean", "object",
                                        "array",  "number",  "string",
                                        "integer"};
    unsigned mask = 0;
    size_t n = json_is_array(k->v) ? json_array_size(k->v) : 1;
    if (!json_is_array(k->v) && !json_is_string(k->v))
        return fail(cc, k, CORE_EINVAL,
                    "\"type\" must be a type name or an array of them");
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_is_array(k->v) ? json_array_get(k->v, i) : k->v;
        size_t j;
        for (j = 0; j < 7; j++)
            if (json_is_string(t) && strcmp(json_string_value(t), names[j]) == 0)
                break;
        if (j == 7)
            return fail(cc, k, CORE_EINVAL,
                        "unknown type %s%s%s (expected null, boolean, object, "
                        "array, number, string or integer)",
                        json_is_string(t) ? "\"" : "",
                        json_is_string(t) ? json_string_value(t) : "value",
                        json_is_string(t) ? "\"" : "");
        mask |= 1u << j;
    }
    struct js__check *c = add_check(cc, k, JS_K_TYPE);
    if (!c)
        return cc->rc;
    c->u.type_mask = mask;
    return 0;
}

static int kw_enum(struct cc *cc, struct kctx *k)
{
    if (!json_is_array(k->v))
        return fail(cc, k, CORE_EINVAL, "\"enum\" must be an array");
    struct js__check *c = add_check(cc, k, JS_K_ENUM);
    if (!c)
        return cc->rc;
    c->u.cnst.value = k->v;
    return 0;
}

static int kw_const(struct cc *cc, struct kctx *k)
{
    struct js__check *c = add_check(cc, k, JS_K_CONST);
    if (!c)
        return cc->rc;
    c->u.cnst.value = k->v;
    return 0;
}

static int kw_number(struct cc *cc, struct kctx *k)
{
    if (!json_is_number(k->v))
        return fail(cc, k, CORE_EINVAL, "\"%s\" must be a number", k->kw);
    enum js__kind kind;
    if (strcmp(k->kw, "multipleOf") == 0) {
        if (json_number_value(k->v) <= 0)
            return fail(cc, k, CORE_EINVAL,
                        "\"multipleOf\" must be greater than 0");
        kind = JS_K_MULTIPLE_OF;
    } else if (strcmp(k->kw, "maximum") == 0) {
        kind = JS_K_MAXIMUM;
    } else if (strcmp(k->kw, "exclusiveMaximum") == 0) {
        kind = JS_K_EXCLUSIVE_MAXIMUM;
    } else if (strcmp(k->kw, "minimum") == 0) {
        kind = JS_K_MINIMUM;
    } else {
        kind = JS_K_EXCLUSIVE_MINIMUM;
    }
    struct js__check *c = add_check(cc, k, kind);
    if (!c)
        return cc->rc;
    c->u.num.json = k->v;
    c->u.num.is_int = json_is_integer(k->v);
    c->u.num.i = c->u.num.is_int ? json_integer_value(k->v) : 0;
    c->u.num.d = json_number_value(k->v);
    return 0;
}

static int kw_count(struct cc *cc, struct kctx *k)
{
    static const struct {
        const char *kw;
        enum js__kind kind;
    } map[] = {
        {"maxLength", JS_K_MAX_LENGTH},     {"minLength", JS_K_MIN_LENGTH},
        {"maxItems", JS_K_MAX_ITEMS},       {"minItems", JS_K_MIN_ITEMS},
        {"maxProperties", JS_K_MAX_PROPERTIES},
        {"minProperties", JS_K_MIN_PROPERTIES},
    };
    size_t n;
    if (!nonneg_int(k->v, &n))
        return fail(cc, k, CORE_EINVAL,
                    "\"%s\" must be a non-negative integer", k->kw);
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        if (strcmp(map[i].kw, k->kw) == 0) {
            struct js__check *c = add_check(cc, k, map[i].kind);
            if (!c)
                return cc->rc;
            c->u.count = n;
            return 0;
        }
    }
    return 0;
}

static int add_regex(struct cc *cc, pcre2_code *re)
{
    struct jsonschema *s = cc->out;
    if (s->nregexes == cc->capregex) {
        size_t cap = cc->capregex ? cc->capregex * 2 : 8;
        pcre2_code **r = realloc(s->regexes, cap * sizeof *r);
        if (!r) {
            pcre2_code_free(re);
            return oom(cc);
        }
        s->regexes = r;
        cc->capregex = cap;
    }
    s->regexes[s->nregexes++] = re;
    return 0;
}

static int compile_pattern(struct cc *cc, struct kctx *k, const char *src,
                           size_t len, struct js__pattern *out)
{
    char err[256];
    pcre2_code *re = js__regex_compile(src, len, err, sizeof err);
    if (!re)
        return fail(cc, k, CORE_EINVAL, "invalid regular expression \"%s\": %s",
                    src, err);
    if (add_regex(cc, re))
        return cc->rc;
    out->re = re;
    out->src = js__arena_strndup(&cc->out->arena, src, len);
    return out->src ? 0 : oom(cc);
}

static int kw_pattern(struct cc *cc, struct kctx *k)
{
    if (!json_is_string(k->v))
        return fail(cc, k, CORE_EINVAL, "\"pattern\" must be a string");
    struct js__pattern p = {0};
    if (compile_pattern(cc, k, json_string_value(k->v),
                        json_string_length(k->v), &p))
        return cc->rc;
    struct js__check *c = add_check(cc, k, JS_K_PATTERN);
    if (!c)
        return cc->rc;
    c->u.pattern.pat = p;
    return 0;
}

static int kw_format(struct cc *cc, struct kctx *k)
{
    if (!json_is_string(k->v))
        return fail(cc, k, CORE_EINVAL, "\"format\" must be a string");
    enum js__format f = js__format_lookup(json_string_value(k->v));
    if (f == JS_FMT_UNKNOWN)
        return 0; /* unknown formats are annotations only */
    struct js__check *c = add_check(cc, k, JS_K_FORMAT);
    if (!c)
        return cc->rc;
    c->u.format.fmt = f;
    c->u.format.assert = (k->res->vocab & VOC_FORMAT_ASSERTION) != 0;
    c->u.format.name = json_string_value(k->v);
    return 0;
}

static int kw_unique(struct cc *cc, struct kctx *k)
{
    if (!json_is_boolean(k->v))
        return fail(cc, k, CORE_EINVAL, "\"uniqueItems\" must be a boolean");
    if (json_is_true(k->v) && !add_check(cc, k, JS_K_UNIQUE_ITEMS))
        return cc->rc;
    return 0;
}

static int string_list(struct cc *cc, struct kctx *k, json_t *v,
                       const char ***names, size_t **lens, size_t *n)
{
    if (!json_is_array(v))
        return fail(cc, k, CORE_EINVAL, "\"%s\" must be an array of strings",
                    k->kw);
    *n = json_array_size(v);
    *names = js__arena_alloc(&cc->out->arena, (*n + 1) * sizeof **names);
    if (lens)
        *lens = js__arena_alloc(&cc->out->arena, (*n + 1) * sizeof **lens);
    if (!*names || (lens && !*lens))
        return oom(cc);
    for (size_t i = 0; i < *n; i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s))
            return fail(cc, k, CORE_EINVAL,
                        "\"%s\" must be an array of strings", k->kw);
        (*names)[i] = json_string_value(s);
        if (lens)
            (*lens)[i] = json_string_length(s);
    }
    return 0;
}

static int kw_required(struct cc *cc, struct kctx *k)
{
    const char **names;
    size_t *lens, n;
    if (string_list(cc, k, k->v, &names, &lens, &n))
        return cc->rc;
    if (n == 0)
        return 0;
    struct js__check *c = add_check(cc, k, JS_K_REQUIRED);
    if (!c)
        return cc->rc;
    c->u.required.names = names;
    c->u.required.lens = lens;
    c->u.required.n = n;
    return 0;
}

static int named_cmp(const void *a, const void *b)
{
    const struct js__named *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->name, y->name, x->len);
}

/* properties, dependentSchemas, dependentRequired and dependencies: an
 * object whose members become a sorted table. */
static int kw_named(struct cc *cc, struct kctx *k)
{
    if (!json_is_object(k->v))
        return fail(cc, k, CORE_EINVAL, "\"%s\" must be an object", k->kw);
    bool props = strcmp(k->kw, "properties") == 0;
    bool depreq = strcmp(k->kw, "dependentRequired") == 0;
    bool deps = strcmp(k->kw, "dependencies") == 0;
    size_t n = json_object_size(k->v);
    struct js__named *v = js__arena_alloc(&cc->out->arena, (n + 1) * sizeof *v);
    if (!v)
        return oom(cc);
    size_t nschemas = 0, nreq = 0;
    const char *key;
    size_t klen;
    json_t *val;
    JS_OBJECT_FOREACH(k->v, it, key, klen, val) {
        struct js__named *e;
        if (depreq || (deps && json_is_array(val))) {
            e = &v[n - 1 - nreq++]; /* required lists fill from the end */
            if (string_list(cc, k, val, &e->required, NULL, &e->nrequired))
                return cc->rc;
        } else {
            if (!is_schema(val))
                return fail(cc, k, CORE_EINVAL,
                            "member \"%s\" of \"%s\" must be a schema", key,
                            k->kw);
            e = &v[nschemas++];
            if (!(e->node = sub(cc, k, val, k->kw, key, klen)))
                return cc->rc;
        }
        e->name = key;
        e->len = klen;
    }
    if (nschemas) {
        qsort(v, nschemas, sizeof *v, named_cmp);
        enum js__kind kind = props ? JS_K_PROPERTIES : JS_K_DEPENDENT_SCHEMAS;
        struct js__check *c = add_check(cc, k, kind);
        if (!c)
            return cc->rc;
        c->u.named.v = v;
        c->u.named.n = nschemas;
    } else if (props) {
        /* An empty "properties" still matters to additionalProperties. */
        struct js__check *c = add_check(cc, k, JS_K_PROPERTIES);
        if (!c)
            return cc->rc;
        c->u.named.v = v;
        c->u.named.n = 0;
    }
    if (nreq) {
        struct js__check *c = add_check(cc, k, JS_K_DEPENDENT_REQUIRED);
        if (!c)
            return cc->rc;
        c->u.named.v = &v[n - nreq];
        c->u.named.n = nreq;
    }
    return 0;
}

static int kw_pattern_properties(struct cc *cc, struct kctx *k)
{
    if (!json_is_object(k->v))
        return fail(cc, k, CORE_EINVAL, "\"patternProperties\" must be an object");
    size_t n = json_object_size(k->v);
    struct js__pattern *v = js__arena_alloc(&cc->out->arena, (n + 1) * sizeof *v);
    if (!v)
        return oom(cc);
    size_t i = 0;
    const char *key;
    size_t klen;
    json_t *val;
    JS_OBJECT_FOREACH(k->v, it, key, klen, val) {
        if (!is_schema(val))
            return fail(cc, k, CORE_EINVAL,
                        "member \"%s\" of \"patternProperties\" must be a schema",
                        key);
        if (compile_pattern(cc, k, key, klen, &v[i]))
            return cc->rc;
        if (!(v[i].node = sub(cc, k, val, k->kw, key, klen)))
            return cc->rc;
        i++;
    }
    struct js__check *c = add_check(cc, k, JS_K_PATTERN_PROPERTIES);
    if (!c)
        return cc->rc;
    c->u.pats.v = v;
    c->u.pats.n = i;
    return 0;
}

/* A keyword whose value is one subschema. */
static int kw_single(struct cc *cc, struct kctx *k)
{
    static const struct {
        const char *kw;
        enum js__kind kind;
    } map[] = {
        {"additionalProperties", JS_K_ADDITIONAL_PROPERTIES},
        {"propertyNames", JS_K_PROPERTY_NAMES},
        {"not", JS_K_NOT},
        {"unevaluatedProperties", JS_K_UNEVALUATED_PROPERTIES},
        {"unevaluatedItems", JS_K_UNEVALUATED_ITEMS},
    };
    if (!is_schema(k->v))
        return fail(cc, k, CORE_EINVAL, "\"%s\" must be a schema", k->kw);
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        if (strcmp(map[i].kw, k->kw) != 0)
            continue;
        struct js__node *n = sub(cc, k, k->v, k->kw, NULL, 0);
        if (!n)
            return cc->rc;
        struct js__check *c = add_check(cc, k, map[i].kind);
        if (!c)
            return cc->rc;
        if (map[i].kind == JS_K_ADDITIONAL_PROPERTIES) {
            c->u.addl.node = n;
            c->u.addl.props = c->u.addl.patterns = -1;
        } else {
            c->u.node = n;
        }
        if (map[i].kind == JS_K_UNEVALUATED_PROPERTIES)
            k->node->uneval_props = true;
        if (map[i].kind == JS_K_UNEVALUATED_ITEMS)
            k->node->uneval_items = true;
        return 0;
    }
    return 0;
}

static int schema_list(struct cc *cc, struct kctx *k, json_t *v,
                       const char *kw, struct js__node ***out, size_t *n)
{
    if (!json_is_array(v) || (json_array_size(v) == 0 &&
                              strcmp(kw, "prefixItems") != 0 &&
                              strcmp(kw, "items") != 0))
        return fail(cc, k, CORE_EINVAL,
                    "\"%s\" must be a non-empty array of schemas", kw);
    *n = json_array_size(v);
    *out = js__arena_alloc(&cc->out->arena, (*n + 1) * sizeof **out);
    if (!*out)
        return oom(cc);
    for (size_t i = 0; i < *n; i++) {
        json_t *s = json_array_get(v, i);
        if (!is_schema(s))
            return fail(cc, k, CORE_EINVAL, "\"%s\" must be an array of schemas",
                        kw);
        if (!((*out)[i] = sub_index(cc, k, s, kw, i)))
            return cc->rc;
    }
    return 0;
}

static int kw_list(struct cc *cc, struct kctx *k)
{
    enum js__kind kind = strcmp(k->kw, "allOf") == 0   ? JS_K_ALL_OF
                         : strcmp(k->kw, "anyOf") == 0 ? JS_K_ANY_OF
                         : strcmp(k->kw, "oneOf") == 0 ? JS_K_ONE_OF
                                                       : JS_K_PREFIX_ITEMS;
    if (kind == JS_K_PREFIX_ITEMS && k->res->dialect != DIALECT_2020)
        return 0; /* not a keyword before 2020-12 */
    struct js__node **v;
    size_t n;
    if (schema_list(cc, k, k->v, k->kw, &v, &n))
        return cc->rc;
    struct js__check *c = add_check(cc, k, kind);
    if (!c)
        return cc->rc;
    c->u.list.v = v;
    c->u.list.n = n;
    return 0;
}

static int kw_items(struct cc *cc, struct kctx *k)
{
    bool legacy = k->res->dialect != DIALECT_2020;
    if (json_is_array(k->v)) {
        if (!legacy)
            return fail(cc, k, CORE_EINVAL,
                        "\"items\" must be a schema in draft 2020-12 (use "
                        "\"prefixItems\" for a tuple)");
        struct js__node **v;
        size_t n;
        if (schema_list(cc, k, k->v, k->kw, &v, &n))
            return cc->rc;
        struct js__check *c = add_check(cc, k, JS_K_PREFIX_ITEMS);
        if (!c)
            return cc->rc;
        c->u.list.v = v;
        c->u.list.n = n;
        return 0;
    }
    if (!is_schema(k->v))
        return fail(cc, k, CORE_EINVAL, "\"items\" must be a schema");
    struct js__node *n = sub(cc, k, k->v, k->kw, NULL, 0);
    if (!n)
        return cc->rc;
    struct js__check *c = add_check(cc, k, JS_K_ITEMS);
    if (!c)
        return cc->rc;
    c->u.items.node = n;
    json_t *prefix = json_object_get(k->obj, "prefixItems");
    c->u.items.prefix = !legacy && json_is_array(prefix) ? json_array_size(prefix)
                                                         : 0;
    return 0;
}

static int kw_additional_items(struct cc *cc, struct kctx *k)
{
    json_t *items = json_object_get(k->obj, "items");
    if (k->res->dialect == DIALECT_2020 || !json_is_array(items))
        return 0;
    if (!is_schema(k->v))
        return fail(cc, k, CORE_EINVAL, "\"additionalItems\" must be a schema");
    struct js__node *n = sub(cc, k, k->v, k->kw, NULL, 0);
    if (!n)
        return cc->rc;
    struct js__check *c = add_check(cc, k, JS_K_ITEMS);
    if (!c)
        return cc->rc;
    c->u.items.node = n;
    c->u.items.prefix = json_array_size(items);
    return 0;
}

static int kw_contains(struct cc *cc, struct kctx *k)
{
    if (!is_schema(k->v))
        return fail(cc, k, CORE_EINVAL, "\"contains\" must be a schema");
    size_t min = 1, max = 0;
    bool has_max = false;
    json_t *v = json_object_get(k->obj, "minContains");
    if (v && k->res->dialect != DIALECT_7) {
        if (!nonneg_int(v, &min))
            return fail(cc, k, CORE_EINVAL,
                        "\"minContains\" must be a non-negative integer");
    }
    v = json_object_get(k->obj, "maxContains");
    if (v && k->res->dialect != DIALECT_7) {
        if (!nonneg_int(v, &max))
            return fail(cc, k, CORE_EINVAL,
                        "\"maxContains\" must be a non-negative integer");
        has_max = true;
    }
    struct js__node *n = sub(cc, k, k->v, k->kw, NULL, 0);
    if (!n)
        return cc->rc;
    struct js__check *c = add_check(cc, k, JS_K_CONTAINS);
    if (!c)
        return cc->rc;
    c->u.contains.node = n;
    c->u.contains.min = min;
    c->u.contains.max = max;
    c->u.contains.has_max = has_max;
    return 0;
}

static int kw_if(struct cc *cc, struct kctx *k)
{
    if (!is_schema(k->v))
        return fail(cc, k, CORE_EINVAL, "\"if\" must be a schema");
    json_t *then_ = json_object_get(k->obj, "then");
    json_t *else_ = json_object_get(k->obj, "else");
    if ((then_ && !is_schema(then_)) || (else_ && !is_schema(else_)))
        return fail(cc, k, CORE_EINVAL, "\"then\" and \"else\" must be schemas");
    /* "if" alone still matters: its annotations reach unevaluated*. */
    struct js__check *c;
    struct js__node *i = sub(cc, k, k->v, "if", NULL, 0), *t = NULL, *e = NULL;
    if (!i || (then_ && !(t = sub(cc, k, then_, "then", NULL, 0))) ||
        (else_ && !(e = sub(cc, k, else_, "else", NULL, 0))) ||
        !(c = add_check(cc, k, JS_K_IF)))
        return cc->rc;
    c->u.cond.if_ = i;
    c->u.cond.then_ = t;
    c->u.cond.else_ = e;
    return 0;
}

/* Walks a JSON Pointer from a resource's root, switching resource where the
 * pointer enters an embedded one. */
static json_t *follow_pointer(struct cc *cc, struct kctx *k, struct cres **res,
                              const char *frag, struct core_buf *ptr)
{
    json_t *cur = (json_t *)(*res)->src->root;
    const char *p = frag;
    struct core_buf tok;
    core_buf_init(&tok);
    while (*p == '/') {
        p++;
        core_buf_reset(&tok);
        while (*p && *p != '/') {
            if (*p == '~' && (p[1] == '0' || p[1] == '1')) {
                core_buf_putc(&tok, p[1] == '0' ? '~' : '/');
                p += 2;
            } else {
                core_buf_putc(&tok, *p++);
            }
        }
        const char *t = tok.data ? tok.data : "";
        json_t *next = NULL;
        if (json_is_object(cur)) {
            next = json_object_getn(cur, t, tok.len);
        } else if (json_is_array(cur) && tok.len && t[0] >= '0' && t[0] <= '9') {
            char *end;
            unsigned long long i = strtoull(t, &end, 10);
            if (!*end)
                next = json_array_get(cur, (size_t)i);
        }
        cur = next;
        if (!cur)
            break;
        const struct js__resource *r = resource_rooted_at(cc, cur);
        if (r && r != (*res)->src) {
            struct cres *cr = cres_for(cc, r, k);
            if (!cr) {
                cur = NULL;
                break;
            }
            *res = cr;
            core_buf_reset(ptr);
        } else {
            js__pointer_append(ptr, t, tok.len);
        }
    }
    if (*p)
        cur = NULL;
    core_buf_fini(&tok);
    return cur;
}

/* Appends the JSON Pointer from cur to target (found by a depth-first
 * search; only anchors need it, at compile time). */
static bool locate(const json_t *cur, const json_t *target, struct core_buf *b)
{
    if (cur == target)
        return true;
    size_t len = b->len;
    if (json_is_object(cur)) {
        const char *key;
        size_t klen;
        json_t *v;
        JS_OBJECT_FOREACH(cur, it, key, klen, v) {
            js__pointer_append(b, key, klen);
            if (locate(v, target, b))
                return true;
            b->len = len;
        }
    } else if (json_is_array(cur)) {
        for (size_t i = 0; i < json_array_size(cur); i++) {
            core_buf_printf(b, "/%zu", i);
            if (locate(json_array_get(cur, i), target, b))
                return true;
            b->len = len;
        }
    }
    if (b->data)
        b->data[len] = '\0';
    return false;
}

static int kw_ref(struct cc *cc, struct kctx *k)
{
    bool dynamic = strcmp(k->kw, "$dynamicRef") == 0;
    if (dynamic && k->res->dialect != DIALECT_2020)
        return 0;
    if (!json_is_string(k->v))
        return fail(cc, k, CORE_EINVAL, "\"%s\" must be a string", k->kw);
    const char *ref = json_string_value(k->v);
    char *abs = js__uri_resolve(k->res->rt->uri, ref);
    const char *frag = NULL;
    char *uri = abs ? js__uri_strip_fragment(abs, &frag) : NULL;
    char *dfrag = frag ? strdup(frag) : NULL;
    struct core_buf ptr;
    core_buf_init(&ptr);
    int rc = 0;
    if (!abs || !uri || (frag && !dfrag)) {
        rc = oom(cc);
        goto done;
    }
    if (dfrag && !js__percent_decode(dfrag)) {
        rc = fail(cc, k, CORE_EINVAL, "malformed %%-escape in \"%s\"", ref);
        goto done;
    }
    const struct js__resource *r = find_resource(cc, uri, NULL);
    if (!r) {
        rc = fail(cc, k, CORE_EINVAL,
                  "cannot resolve \"%s\": no schema is registered as \"%s\"",
                  ref, uri);
        goto done;
    }
    struct cres *cr = cres_for(cc, r, k);
    if (!cr) {
        rc = cc->rc;
        goto done;
    }
    json_t *target;
    const char *anchor = NULL;
    if (!dfrag || !*dfrag) {
        target = r->root;
    } else if (dfrag[0] == '/') {
        target = follow_pointer(cc, k, &cr, dfrag, &ptr);
        if (cc->rc) {
            rc = cc->rc;
            goto done;
        }
    } else {
        target = js__map_get_str(&r->anchors, dfrag);
        if (dynamic && js__map_get_str(&r->dyn_anchors, dfrag))
            anchor = dfrag;
        if (target) {
            const struct js__resource *own = resource_rooted_at(cc, target);
            if (own && own != cr->src && !(cr = cres_for(cc, own, k))) {
                rc = cc->rc;
                goto done;
            }
            if (!own || own != cr->src)
                locate(cr->src->root, target, &ptr);
        }
    }
    if (!target || !is_schema(target)) {
        rc = fail(cc, k, CORE_EINVAL, "cannot resolve \"%s\": %s", ref,
                  target ? "the target is not a schema"
                         : "no such location in the document");
        goto done;
    }
    if (ptr.oom) {
        rc = oom(cc);
        goto done;
    }
    const char *p = js__arena_strdup(&cc->out->arena, ptr.data ? ptr.data : "");
    struct js__node *n = p ? compile_node(cc, target, cr, p) : NULL;
    struct js__check *c;
    if (!n || !(c = add_check(cc, k, dynamic ? JS_K_DYNAMIC_REF : JS_K_REF))) {
        rc = cc->rc ? cc->rc : oom(cc);
        goto done;
    }
    c->u.ref.node = n;
    c->u.ref.target = js__arena_strdup(&cc->out->arena, abs);
    if (anchor) {
        c->u.ref.anchor = js__arena_strdup(&cc->out->arena, anchor);
        if (!c->u.ref.anchor) {
            rc = oom(cc);
            goto done;
        }
        cc->out->uses_dynamic = true;
    }
done:
    core_buf_fini(&ptr);
    free(dfrag);
    free(uri);
    free(abs);
    return rc;
}

static int kw_string(struct cc *cc, struct kctx *k)
{
    if (!json_is_string(k->v))
        return fail(cc, k, CORE_EINVAL, "\"%s\" must be a string", k->kw);
    return 0;
}

static int kw_schema_map(struct cc *cc, struct kctx *k)
{
    if (!json_is_object(k->v))
        return fail(cc, k, CORE_EINVAL, "\"%s\" must be an object", k->kw);
    return 0;
}

static const struct kwdef {
    const char *name;
    unsigned vocab;
    kw_fn fn;
} keywords[] = {
    {"$id", VOC_CORE, kw_string},
    {"$schema", VOC_CORE, kw_string},
    {"$anchor", VOC_CORE, kw_string},
    {"$dynamicAnchor", VOC_CORE, kw_string},
    {"$defs", VOC_CORE, kw_schema_map},
    {"$ref", VOC_CORE, kw_ref},
    {"$dynamicRef", VOC_CORE, kw_ref},
    {"$recursiveRef", VOC_CORE, kw_ref},
    {"allOf", VOC_APPLICATOR, kw_list},
    {"anyOf", VOC_APPLICATOR, kw_list},
    {"oneOf", VOC_APPLICATOR, kw_list},
    {"not", VOC_APPLICATOR, kw_single},
    {"if", VOC_APPLICATOR, kw_if},
    {"dependentSchemas", VOC_APPLICATOR, kw_named},
    {"dependencies", VOC_APPLICATOR, kw_named},
    {"prefixItems", VOC_APPLICATOR, kw_list},
    {"items", VOC_APPLICATOR, kw_items},
    {"additionalItems", VOC_APPLICATOR, kw_additional_items},
    {"contains", VOC_APPLICATOR, kw_contains},
    {"properties", VOC_APPLICATOR, kw_named},
    {"patternProperties", VOC_APPLICATOR, kw_pattern_properties},
    {"additionalProperties", VOC_APPLICATOR, kw_single},
    {"propertyNames", VOC_APPLICATOR, kw_single},
    {"unevaluatedProperties", VOC_UNEVALUATED, kw_single},
    {"unevaluatedItems", VOC_UNEVALUATED, kw_single},
    {"type", VOC_VALIDATION, kw_type},
    {"enum", VOC_VALIDATION, kw_enum},
    {"const", VOC_VALIDATION, kw_const},
    {"multipleOf", VOC_VALIDATION, kw_number},
    {"maximum", VOC_VALIDATION, kw_number},
    {"exclusiveMaximum", VOC_VALIDATION, kw_number},
    {"minimum", VOC_VALIDATION, kw_number},
    {"exclusiveMinimum", VOC_VALIDATION, kw_number},
    {"maxLength", VOC_VALIDATION, kw_count},
    {"minLength", VOC_VALIDATION, kw_count},
    {"pattern", VOC_VALIDATION, kw_pattern},
    {"maxItems", VOC_VALIDATION, kw_count},
    {"minItems", VOC_VALIDATION, kw_count},
    {"uniqueItems", VOC_VALIDATION, kw_unique},
    {"maxProperties", VOC_VALIDATION, kw_count},
    {"minProperties", VOC_VALIDATION, kw_count},
    {"required", VOC_VALIDATION, kw_required},
    {"dependentRequired", VOC_VALIDATION, kw_named},
    {"format", VOC_FORMAT_ANNOTATION | VOC_FORMAT_ASSERTION, kw_format},
};

static int check_rank(const struct js__check *c)
{
    return c->kind == JS_K_UNEVALUATED_PROPERTIES ||
           c->kind == JS_K_UNEVALUATED_ITEMS;
}

static struct js__node *compile_node(struct cc *cc, json_t *s, struct cres *res,
                                     const char *ptr)
{
    if (cc->rc)
        return NULL;
    struct kctx k = {.obj = s, .res = res, .ptr = ptr};
    if (!is_schema(s)) {
        fail(cc, &k, CORE_EINVAL, "a schema must be an object or a boolean");
        return NULL;
    }
    if (json_is_object(s)) {
        struct js__node *have = js__map_get_ptr(&cc->nodes, s);
        if (have)
            return have;
        const struct js__resource *own = resource_rooted_at(cc, s);
        if (own && own != res->src) {
            if (!(res = cres_for(cc, own, &k)))
                return NULL;
            ptr = "";
            k.res = res;
            k.ptr = ptr;
        }
    }
    struct js__node *node = js__arena_alloc(&cc->out->arena, sizeof *node);
    size_t ulen = strlen(res->rt->uri), plen = strlen(ptr);
    char *abs = js__arena_alloc(&cc->out->arena, ulen + plen + 2);
    if (!node || !abs) {
        oom(cc);
        return NULL;
    }
    memcpy(abs, res->rt->uri, ulen);
    abs[ulen] = '#';
    memcpy(abs + ulen + 1, ptr, plen + 1);
    node->abs = abs;
    node->res = res->rt;
    k.node = node;
    if (json_is_boolean(s)) {
        node->is_bool = true;
        node->bool_value = json_is_true(s);
        return node;
    }
    if (js__map_put_ptr(&cc->nodes, s, node)) {
        oom(cc);
        return NULL;
    }
    if (++cc->depth > JS_COMPILE_MAX_DEPTH) {
        fail(cc, &k, CORE_EINVAL, "schema is nested too deeply");
        cc->depth--;
        return NULL;
    }
    /* Before 2019-09, "$ref" made its siblings ignored. */
    bool ref_only = res->dialect == DIALECT_7 && json_object_get(s, "$ref");
    const char *key;
    size_t klen;
    json_t *val;
    JS_OBJECT_FOREACH(s, it, key, klen, val) {
        if (ref_only && strcmp(key, "$ref") != 0)
            continue;
        for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++) {
            if (strcmp(keywords[i].name, key) != 0)
                continue;
            if (!(keywords[i].vocab & res->vocab))
                break;
            if (strcmp(key, "$recursiveRef") == 0 &&
                res->dialect != DIALECT_2019)
                break;
            k.kw = keywords[i].name;
            k.v = val;
            keywords[i].fn(cc, &k);
            break;
        }
        if (cc->rc)
            break;
    }
    cc->depth--;
    if (cc->rc) {
        free(k.checks);
        return NULL;
    }
    /* unevaluated* run last: they read what the other keywords evaluated. */
    node->checks = js__arena_alloc(&cc->out->arena,
                                   (k.n ? k.n : 1) * sizeof *node->checks);
    if (!node->checks) {
        free(k.checks);
        oom(cc);
        return NULL;
    }
    size_t w = 0;
    for (int rank = 0; rank < 2; rank++)
        for (size_t i = 0; i < k.n; i++)
            if (check_rank(&k.checks[i]) == rank)
                node->checks[w++] = k.checks[i];
    node->nchecks = w;
    free(k.checks);
    for (size_t i = 0; i < w; i++) {
        struct js__check *c = &node->checks[i];
        if (c->kind != JS_K_ADDITIONAL_PROPERTIES)
            continue;
        for (size_t j = 0; j < w; j++) {
            if (node->checks[j].kind == JS_K_PROPERTIES)
                c->u.addl.props = (int)j;
            else if (node->checks[j].kind == JS_K_PATTERN_PROPERTIES)
                c->u.addl.patterns = (int)j;
        }
    }
    return node;
}

/* Every resource that may enter the dynamic scope gets its dynamic anchors
 * compiled, so that $dynamicRef can jump to them at run time. */
static int compile_dynamic_anchors(struct cc *cc)
{
    for (struct cres *cr = cc->cres_head; cr; cr = cr->next) {
        const struct js__map *m = &cr->src->dyn_anchors;
        if (!m->len)
            continue;
        cr->rt->dyn = js__arena_alloc(&cc->out->arena, m->len * sizeof *cr->rt->dyn);
        if (!cr->rt->dyn)
            return oom(cc);
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].key)
                continue;
            json_t *target = m->slots[i].val;
            struct core_buf b;
            core_buf_init(&b);
            core_buf_puts(&b, "");
            locate(cr->src->root, target, &b);
            const char *p = b.oom ? NULL : js__arena_strdup(&cc->out->arena, b.data);
            core_buf_fini(&b);
            struct js__node *n = p ? compile_node(cc, target, cr, p) : NULL;
            if (!n)
                return cc->rc ? cc->rc : oom(cc);
            cr->rt->dyn[cr->rt->ndyn].name = m->slots[i].key;
            cr->rt->dyn[cr->rt->ndyn].node = n;
            cr->rt->ndyn++;
        }
    }
    return 0;
}

void jsonschema_destroy(struct jsonschema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nregexes; i++)
        pcre2_code_free(s->regexes[i]);
    free(s->regexes);
    for (size_t i = 0; i < s->ndocs; i++)
        json_decref(s->docs[i]);
    free(s->docs);
    js__index_fini(&s->local);
    js__arena_fini(&s->arena);
    free(s);
}

int jsonschema_compile(const struct jsonschema_registry *reg, json_t *schema,
                       const char *base_uri, struct jsonschema **out,
                       struct jsonschema_compile_error *err)
{
    *out = NULL;
    if (err)
        err->location[0] = err->message[0] = '\0';
    if (!schema)
        return CORE_EINVAL;
    struct jsonschema *s = calloc(1, sizeof *s);
    if (!s)
        return CORE_ENOMEM;
    js__index_init(&s->local);
    struct cc cc = {.out = s, .err = err};
    cc.cres_tail = &cc.cres_head;
    cc.ix[0] = &s->local;
    cc.ix[1] = reg ? &reg->ix : NULL;
    cc.ix[2] = js__builtin_index();
    int rc;
    if (!cc.ix[2]) {
        rc = CORE_EINTERNAL;
        goto fail;
    }
    if (!is_schema(schema)) {
        if (err) {
            snprintf(err->location, sizeof err->location, "%s#",
                     base_uri ? base_uri : JS_DEFAULT_BASE);
            snprintf(err->message, sizeof err->message,
                     "a schema must be an object or a boolean");
        }
        rc = CORE_EINVAL;
        goto fail;
    }
    if ((rc = js__index_add(&s->local, base_uri, schema, err))) {
        if (rc == CORE_ECONFLICT)
            rc = CORE_EINVAL;
        goto fail;
    }
    const struct js__resource *root = js__map_get_ptr(&s->local.by_root, schema);
    struct cres *cr = root ? cres_for(&cc, root, NULL) : NULL;
    if (cr)
        s->root = compile_node(&cc, schema, cr, "");
    if (!cc.rc && s->uses_dynamic)
        compile_dynamic_anchors(&cc);
    rc = cc.rc;
    if (!rc && !s->root)
        rc = CORE_EINTERNAL;
fail:
    js__map_fini(&cc.nodes);
    js__map_fini(&cc.cres_by_src);
    while (cc.cres_head) {
        struct cres *next = cc.cres_head->next;
        free(cc.cres_head);
        cc.cres_head = next;
    }
    if (rc) {
        jsonschema_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}
