/* The index of schema resources: documents walked through their subschema
 * keywords, every "$id" a resource, every "$anchor" and "$dynamicAnchor" a
 * name inside one. Also the public registry and the built-in meta-schemas. */
#include "js_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JS_INDEX_MAX_DEPTH 512

void js__index_init(struct js__index *ix)
{
    memset(ix, 0, sizeof *ix);
}

void js__index_fini(struct js__index *ix)
{
    struct js__resource *r = ix->resources;
    while (r) {
        struct js__resource *next = r->next;
        js__map_fini(&r->anchors);
        js__map_fini(&r->dyn_anchors);
        free(r->uri);
        free(r);
        r = next;
    }
    js__map_fini(&ix->by_uri);
    js__map_fini(&ix->by_root);
    for (size_t i = 0; i < ix->ndocs; i++)
        json_decref(ix->docs[i]);
    free(ix->docs);
    memset(ix, 0, sizeof *ix);
}

/* Copies src into a fixed buffer, truncating. */
static void copy_trunc(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void set_err(struct jsonschema_compile_error *err, const char *uri,
                    const char *msg)
{
    if (!err)
        return;
    copy_trunc(err->location, sizeof err->location, uri ? uri : "");
    copy_trunc(err->message, sizeof err->message, msg);
}

/* A resource known under uri (taken over) rooted at root. */
static struct js__resource *resource_new(struct js__index *ix, char *uri,
                                         json_t *root, const char *metaschema,
                                         int *rc,
                                         struct jsonschema_compile_error *err)
{
    struct js__resource *have = js__map_get_str(&ix->by_uri, uri);
    if (have) {
        set_err(err, uri, "the identifier is used twice");
        free(uri);
        *rc = CORE_ECONFLICT;
        return NULL;
    }
    struct js__resource *r = calloc(1, sizeof *r);
    if (!r) {
        free(uri);
        *rc = CORE_ENOMEM;
        return NULL;
    }
    r->uri = uri;
    r->root = root;
    r->metaschema = metaschema;
    r->next = ix->resources;
    ix->resources = r;
    if (js__map_put_str(&ix->by_uri, r->uri, r) ||
        js__map_put_ptr(&ix->by_root, root, r)) {
        *rc = CORE_ENOMEM;
        return NULL;
    }
    return r;
}

static int walk(struct js__index *ix, json_t *s, struct js__resource *res,
                int depth, struct jsonschema_compile_error *err);
static int index_add(struct js__index *ix, const char *uri, json_t *doc,
                     struct jsonschema_compile_error *err);

static int walk_each(struct js__index *ix, json_t *v, struct js__resource *res,
                     int depth, struct jsonschema_compile_error *err,
                     bool object_values, bool array_items)
{
    int rc = 0;
    if (object_values && json_is_object(v)) {
        const char *k;
        size_t kl;
        json_t *sub;
        JS_OBJECT_FOREACH(v, it, k, kl, sub) {
            if ((rc = walk(ix, sub, res, depth + 1, err)))
                return rc;
        }
    } else if (array_items && json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if ((rc = walk(ix, json_array_get(v, i), res, depth + 1, err)))
                return rc;
    }
    return rc;
}

static const char *const single_kw[] = {
    "additionalProperties", "unevaluatedProperties", "items",
    "additionalItems", "contains", "propertyNames", "unevaluatedItems", "not",
    "if", "then", "else", "contentSchema",
};
static const char *const map_kw[] = {
    "$defs", "definitions", "properties", "patternProperties",
    "dependentSchemas", "dependencies",
};
static const char *const array_kw[] = {"allOf", "anyOf", "oneOf",
                                       "prefixItems", "items"};

static int walk(struct js__index *ix, json_t *s, struct js__resource *res,
                int depth, struct jsonschema_compile_error *err)
{
    if (!json_is_object(s))
        return 0;
    if (depth > JS_INDEX_MAX_DEPTH) {
        set_err(err, res->uri, "schema is nested too deeply");
        return CORE_EINVAL;
    }
    int rc = 0;
    json_t *id = json_object_get(s, "$id");
    if (json_is_string(id) && json_string_value(id)[0] != '#') {
        char *abs = js__uri_resolve(res->uri, json_string_value(id));
        char *uri = abs ? js__uri_strip_fragment(abs, NULL) : NULL;
        free(abs);
        if (!uri)
            return CORE_ENOMEM;
        json_t *ms = json_object_get(s, "$schema");
        const char *meta = json_is_string(ms) ? json_string_value(ms)
                                              : res->metaschema;
        if (res->root == s) {
            /* The document's root names itself: known under both. */
            if (strcmp(uri, res->uri) == 0) {
                free(uri);
            } else {
                struct js__resource *alias =
                    resource_new(ix, uri, s, meta, &rc, err);
                if (!alias)
                    return rc;
                /* The alias shares anchors: walk under it instead. */
                res = alias;
            }
        } else {
            res = resource_new(ix, uri, s, meta, &rc, err);
            if (!res)
                return rc;
        }
    } else if (json_is_string(id)) {
        /* Drafts before 2019-09 spelled anchors as "$id": "#name". */
        if (js__map_put_str(&res->anchors, json_string_value(id) + 1, s))
            return CORE_ENOMEM;
    }
    json_t *a = json_object_get(s, "$anchor");
    if (json_is_string(a) &&
        js__map_put_str(&res->anchors, json_string_value(a), s))
        return CORE_ENOMEM;
    a = json_object_get(s, "$dynamicAnchor");
    if (json_is_string(a) &&
        (js__map_put_str(&res->anchors, json_string_value(a), s) ||
         js__map_put_str(&res->dyn_anchors, json_string_value(a), s)))
        return CORE_ENOMEM;

    for (size_t i = 0; i < sizeof single_kw / sizeof *single_kw; i++)
        if ((rc = walk(ix, json_object_get(s, single_kw[i]), res, depth + 1,
                       err)))
            return rc;
    for (size_t i = 0; i < sizeof map_kw / sizeof *map_kw; i++)
        if ((rc = walk_each(ix, json_object_get(s, map_kw[i]), res, depth, err,
                            true, false)))
            return rc;
    for (size_t i = 0; i < sizeof array_kw / sizeof *array_kw; i++)
        if ((rc = walk_each(ix, json_object_get(s, array_kw[i]), res, depth,
                            err, false, true)))
            return rc;
    return 0;
}

/* Moves every resource and document of src into dst, unless one of its
 * URIs is already known to dst (then nothing moves). src is left empty. */
static int index_merge(struct js__index *dst, struct js__index *src,
                       struct jsonschema_compile_error *err)
{
    for (struct js__resource *r = src->resources; r; r = r->next) {
        if (js__map_get_str(&dst->by_uri, r->uri)) {
            set_err(err, r->uri, "the identifier is already registered");
            return CORE_ECONFLICT;
        }
    }
    if (dst->ndocs + src->ndocs > dst->capdocs) {
        size_t cap = (dst->ndocs + src->ndocs) * 2;
        json_t **d = realloc(dst->docs, cap * sizeof *d);
        if (!d)
            return CORE_ENOMEM;
        dst->docs = d;
        dst->capdocs = cap;
    }
    /* Reserve the map space first so that nothing fails half-way. */
    size_t n = 0;
    struct js__resource *r, *last = NULL;
    for (r = src->resources; r; r = r->next)
        n++;
    if (js__map_reserve(&dst->by_uri, n) || js__map_reserve(&dst->by_root, n))
        return CORE_ENOMEM;
    for (r = src->resources; r; last = r, r = r->next) {
        js__map_put_str(&dst->by_uri, r->uri, r);
        /* by_root of the source decides who owns an aliased root. */
        js__map_put_ptr(&dst->by_root, r->root,
                        js__map_get_ptr(&src->by_root, r->root));
    }
    if (last) {
        last->next = dst->resources;
        dst->resources = src->resources;
        src->resources = NULL;
    }
    memcpy(dst->docs + dst->ndocs, src->docs, src->ndocs * sizeof *src->docs);
    dst->ndocs += src->ndocs;
    src->ndocs = 0;
    return 0;
}

int js__index_add(struct js__index *ix, const char *uri, json_t *doc,
                  struct jsonschema_compile_error *err)
{
    /* Index into a scratch index first so that a failure leaves ix as it
     * was. */
    struct js__index tmp;
    js__index_init(&tmp);
    int rc = index_add(&tmp, uri, doc, err);
    if (!rc)
        rc = index_merge(ix, &tmp, err);
    js__index_fini(&tmp);
    return rc;
}

static int index_add(struct js__index *ix, const char *uri, json_t *doc,
                     struct jsonschema_compile_error *err)
{
    if (!doc)
        return CORE_EINVAL;
    if (ix->ndocs == ix->capdocs) {
        size_t cap = ix->capdocs ? ix->capdocs * 2 : 8;
        json_t **d = realloc(ix->docs, cap * sizeof *d);
        if (!d)
            return CORE_ENOMEM;
        ix->docs = d;
        ix->capdocs = cap;
    }
    ix->docs[ix->ndocs++] = json_incref(doc);
    char *u = js__uri_strip_fragment(uri ? uri : JS_DEFAULT_BASE, NULL);
    if (!u)
        return CORE_ENOMEM;
    json_t *ms = json_is_object(doc) ? json_object_get(doc, "$schema") : NULL;
    int rc = 0;
    struct js__resource *root = resource_new(
        ix, u, doc, json_is_string(ms) ? json_string_value(ms) : NULL, &rc, err);
    if (!root)
        return rc;
    return walk(ix, doc, root, 0, err);
}

/* --------------------------------------------------------------- built-in */
static struct js__index builtin;
static bool builtin_ok;
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

static void builtin_init(void)
{
    js__index_init(&builtin);
    for (size_t i = 0; i < js__embedded_metaschemas_count; i++) {
        json_error_t jerr;
        json_t *doc = json_loads(js__embedded_metaschemas[i].text, 0, &jerr);
        if (!doc)
            return;
        int rc = js__index_add(&builtin, js__embedded_metaschemas[i].uri, doc,
                               NULL);
        json_decref(doc);
        if (rc)
            return;
    }
    builtin_ok = true;
}

const struct js__index *js__builtin_index(void)
{
    pthread_once(&builtin_once, builtin_init);
    return builtin_ok ? &builtin : NULL;
}

/* --------------------------------------------------------------- registry */
int jsonschema_registry_create(struct jsonschema_registry **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return CORE_ENOMEM;
    js__index_init(&(*out)->ix);
    return 0;
}

void jsonschema_registry_destroy(struct jsonschema_registry *reg)
{
    if (!reg)
        return;
    js__index_fini(&reg->ix);
    free(reg);
}

int jsonschema_registry_add(struct jsonschema_registry *reg, const char *uri,
                            json_t *doc, struct jsonschema_compile_error *err)
{
    if (!reg || !uri || !doc)
        return CORE_EINVAL;
    return js__index_add(&reg->ix, uri, doc, err);
}
