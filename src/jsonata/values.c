/*
 * The value model: arenas, constructors, arrays and objects (native or
 * lazily backed by jansson input), conversion to and from jansson,
 * equality, truthiness and JavaScript-compatible number printing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jn_internal.h"

/* ------------------------------------------------------------------ arena */
struct jn_chunk {
    struct jn_chunk *next;
    size_t size;
    max_align_t data[];
};

#define JN_CHUNK_MIN 8192

void jn_arena_init(struct jn_arena *a, jmp_buf *oom_jmp)
{
    a->head = NULL;
    a->cur = a->end = NULL;
    a->oom_jmp = oom_jmp;
}

void jn_arena_fini(struct jn_arena *a)
{
    struct jn_chunk *ch = a->head;
    while (ch) {
        struct jn_chunk *next = ch->next;
        free(ch);
        ch = next;
    }
    a->head = NULL;
    a->cur = a->end = NULL;
}

void *jn__arena_alloc_slow(struct jn_arena *a, size_t n)
{
    size_t size = JN_CHUNK_MIN;
    if (a->head && a->head->size < 1024 * 1024)
        size = a->head->size * 2;
    if (size < n)
        size = n;
    struct jn_chunk *ch = malloc(sizeof(*ch) + size);
    if (!ch) {
        if (a->oom_jmp)
            longjmp(*a->oom_jmp, 2);
        abort();
    }
    ch->size = size;
    ch->next = a->head;
    a->head = ch;
    a->cur = (char *)ch->data + n;
    a->end = (char *)ch->data + size;
    return ch->data;
}

char *jn_arena_strndup(struct jn_arena *a, const char *s, size_t n)
{
    char *p = jn_arena_alloc(a, n + 1);
    jn_copy(p, s, n);
    p[n] = 0;
    return p;
}

/* ----------------------------------------------------------- constructors */
jv jn_true = {.kind = JN_BOOL, .u.b = true};
jv jn_false = {.kind = JN_BOOL, .u.b = false};
jv jn_null = {.kind = JN_NULL};

jv *jn_num(struct jn_ctx *c, double d)
{
    jv *v = jn_alloc(c, sizeof(*v));
    v->kind = JN_NUMBER;
    v->flags = 0;
    v->u.num = d;
    return v;
}

jv *jn_str_ref(struct jn_ctx *c, const char *s, size_t len)
{
    jn_charge(c, len / 256, c->call_position);
    jv *v = jn_alloc(c, sizeof(*v));
    v->kind = JN_STRING;
    v->flags = 0;
    v->u.str.ptr = s;
    v->u.str.len = len;
    return v;
}

jv *jn_str(struct jn_ctx *c, const char *s, size_t len)
{
    return jn_str_ref(c, jn_arena_strndup(&c->arena, s, len), len);
}

jv *jn_strz(struct jn_ctx *c, const char *s)
{
    return jn_str(c, s, strlen(s));
}

jv *jn_arr_new(struct jn_ctx *c, uint32_t cap)
{
    jv *v = jn_alloc(c, sizeof(*v));
    v->kind = JN_ARRAY;
    v->flags = 0;
    v->u.arr.len = 0;
    v->u.arr.cap = cap;
    v->u.arr.items = cap ? jn_alloc(c, cap * sizeof(jv *)) : NULL;
    v->u.arr.json = NULL;
    v->u.arr.origin = NULL;
    return v;
}

jv *jn_seq_new(struct jn_ctx *c)
{
    jv *v = jn_arr_new(c, 0);
    v->flags = JN_SEQ;
    return v;
}

jv *jn_seq_of(struct jn_ctx *c, jv *item)
{
    jv *v = jn_arr_new(c, 1);
    v->flags = JN_SEQ;
    if (item)
        v->u.arr.items[v->u.arr.len++] = item;
    return v;
}

void jn_arr_push(struct jn_ctx *c, jv *a, jv *item)
{
    jn_arr_load(c, a);
    if (a->u.arr.len == a->u.arr.cap) {
        uint32_t cap = a->u.arr.cap ? a->u.arr.cap * 2 : 4;
        jv **items = jn_alloc(c, cap * sizeof(jv *));
        if (a->u.arr.len)
            memcpy(items, a->u.arr.items, a->u.arr.len * sizeof(jv *));
        a->u.arr.items = items;
        a->u.arr.cap = cap;
    }
    a->u.arr.items[a->u.arr.len++] = item;
}

void jn__arr_load(struct jn_ctx *c, jv *a)
{
    const json_t *j = a->u.arr.json;
    size_t n = json_array_size(j);
    a->u.arr.json = NULL;
    a->u.arr.items = n ? jn_alloc(c, n * sizeof(jv *)) : NULL;
    a->u.arr.cap = (uint32_t)n;
    for (size_t i = 0; i < n; i++)
        a->u.arr.items[i] = jn_from_json(c, json_array_get(j, i));
    a->u.arr.len = (uint32_t)n;
}

/* ---------------------------------------------------------------- objects */
static uint32_t jn_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

jv *jn_obj_new(struct jn_ctx *c)
{
    jv *v = jn_alloc(c, sizeof(*v));
    struct jn_object *o = jn_alloc(c, sizeof(*o));
    memset(o, 0, sizeof(*o));
    v->kind = JN_OBJECT;
    v->flags = 0;
    v->u.obj = o;
    return v;
}

static void obj_index_rebuild(struct jn_ctx *c, struct jn_object *o)
{
    uint32_t cap = 16;
    while (cap < o->len * 2)
        cap *= 2;
    o->index = jn_alloc(c, cap * sizeof(uint32_t));
    memset(o->index, 0, cap * sizeof(uint32_t));
    o->index_cap = cap;
    for (uint32_t i = 0; i < o->len; i++) {
        uint32_t h = jn_hash(o->pairs[i].key, o->pairs[i].klen) & (cap - 1);
        while (o->index[h])
            h = (h + 1) & (cap - 1);
        o->index[h] = i + 1;
    }
}

static int obj_find(const struct jn_object *o, const char *key, size_t klen)
{
    if (o->index) {
        uint32_t mask = o->index_cap - 1;
        uint32_t h = jn_hash(key, klen) & mask;
        while (o->index[h]) {
            const struct jn_pair *p = &o->pairs[o->index[h] - 1];
            if (p->klen == klen && memcmp(p->key, key, klen) == 0)
                return (int)o->index[h] - 1;
            h = (h + 1) & mask;
        }
        return -1;
    }
    for (uint32_t i = 0; i < o->len; i++)
        if (o->pairs[i].klen == klen && memcmp(o->pairs[i].key, key, klen) == 0)
            return (int)i;
    return -1;
}

/* JavaScript orders an object's keys that are array indexes ("0",
 * "17", below 2^32 - 1, no leading zeros) first, ascending, then the
 * others in insertion order; $string, $keys and every iteration show it,
 * so objects keep their pairs in that order. */
static bool key_index(const char *k, size_t n, uint64_t *out)
{
    if (n == 0 || n > 10 || (k[0] == '0' && n > 1))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (k[i] < '0' || k[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(k[i] - '0');
    }
    if (v >= 4294967295u)
        return false;
    *out = v;
    return true;
}

static void obj_order_keys(struct jn_ctx *c, struct jn_object *o)
{
    uint64_t v;
    uint32_t nidx = 0;
    for (uint32_t i = 0; i < o->len; i++)
        if (key_index(o->pairs[i].key, o->pairs[i].klen, &v))
            nidx++;
    if (nidx == 0)
        return;
    struct jn_pair *sorted = jn_alloc(c, o->len * sizeof(*sorted));
    uint64_t *vals = jn_alloc(c, nidx * sizeof(*vals));
    uint32_t ni = 0, no = nidx;
    for (uint32_t i = 0; i < o->len; i++) {
        if (key_index(o->pairs[i].key, o->pairs[i].klen, &v)) {
            /* insertion sort: index keys are few */
            uint32_t k = ni++;
            while (k > 0 && vals[k - 1] > v) {
                vals[k] = vals[k - 1];
                sorted[k] = sorted[k - 1];
                k--;
            }
            vals[k] = v;
            sorted[k] = o->pairs[i];
        } else {
            sorted[no++] = o->pairs[i];
        }
    }
    memcpy(o->pairs, sorted, o->len * sizeof(*sorted));
}

void jn__obj_load(struct jn_ctx *c, const jv *ov)
{
    struct jn_object *o = ov->u.obj;
    const json_t *j = o->json;
    size_t n = json_object_size(j);
    o->json = NULL;
    o->pairs = n ? jn_alloc(c, n * sizeof(struct jn_pair)) : NULL;
    o->cap = (uint32_t)n;
    o->len = 0;
    const char *key;
    json_t *val;
    void *it = json_object_iter((json_t *)j);
    while (it) {
        key = json_object_iter_key(it);
        val = json_object_iter_value(it);
        struct jn_pair *p = &o->pairs[o->len++];
        p->key = key;
        p->klen = json_object_iter_key_len(it);
        p->val = jn_from_json(c, val);
        it = json_object_iter_next((json_t *)j, it);
    }
    obj_order_keys(c, o);
    if (o->len > 8)
        obj_index_rebuild(c, o);
}

jv *jn_obj_get(struct jn_ctx *c, const jv *ov, const char *key, size_t klen)
{
    const struct jn_object *o = ov->u.obj;
    if (o->json) {
        json_t *j = json_object_getn(o->json, key, klen);
        return j ? jn_from_json(c, j) : NULL;
    }
    int i = obj_find(o, key, klen);
    return i < 0 ? NULL : o->pairs[i].val;
}

void jn_obj_set(struct jn_ctx *c, jv *ov, const char *key, size_t klen, jv *v)
{
    struct jn_object *o = jn_obj_load(c, ov);
    int i = obj_find(o, key, klen);
    if (i >= 0) {
        o->pairs[i].val = v;
        return;
    }
    if (o->len == o->cap) {
        uint32_t cap = o->cap ? o->cap * 2 : 4;
        struct jn_pair *pairs = jn_alloc(c, cap * sizeof(*pairs));
        if (o->len)
            memcpy(pairs, o->pairs, o->len * sizeof(*pairs));
        o->pairs = pairs;
        o->cap = cap;
    }
    uint64_t idx, other;
    if (key_index(key, klen, &idx)) {
        /* goes among the leading index keys, in order */
        uint32_t pos = 0;
        while (pos < o->len && key_index(o->pairs[pos].key, o->pairs[pos].klen, &other) &&
               other < idx)
            pos++;
        if (pos < o->len) {
            memmove(&o->pairs[pos + 1], &o->pairs[pos],
                    (o->len - pos) * sizeof(struct jn_pair));
            o->pairs[pos].key = key;
            o->pairs[pos].klen = klen;
            o->pairs[pos].val = v;
            o->len++;
            if (o->index || o->len > 8)
                obj_index_rebuild(c, o);
            return;
        }
    }
    struct jn_pair *p = &o->pairs[o->len++];
    p->key = key;
    p->klen = klen;
    p->val = v;
    if (o->index && o->len * 2 <= o->index_cap) {
        uint32_t mask = o->index_cap - 1;
        uint32_t h = jn_hash(key, klen) & mask;
        while (o->index[h])
            h = (h + 1) & mask;
        o->index[h] = o->len;
    } else if (o->len > 8) {
        obj_index_rebuild(c, o);
    }
}

void jn_obj_del(struct jn_ctx *c, jv *ov, const char *key, size_t klen)
{
    struct jn_object *o = jn_obj_load(c, ov);
    int i = obj_find(o, key, klen);
    if (i < 0)
        return;
    memmove(&o->pairs[i], &o->pairs[i + 1],
            (o->len - (uint32_t)i - 1) * sizeof(struct jn_pair));
    o->len--;
    if (o->index)
        obj_index_rebuild(c, o);
}

/* ------------------------------------------------------------- conversion */
jv *jn_from_json(struct jn_ctx *c, const json_t *j)
{
    jv *v;
    switch (json_typeof(j)) {
    case JSON_NULL:
        return &jn_null;
    case JSON_TRUE:
        return &jn_true;
    case JSON_FALSE:
        return &jn_false;
    case JSON_INTEGER:
        return jn_num(c, (double)json_integer_value(j));
    case JSON_REAL:
        return jn_num(c, json_real_value(j));
    case JSON_STRING:
        return jn_str_ref(c, json_string_value(j), json_string_length(j));
    case JSON_ARRAY:
        v = jn_alloc(c, sizeof(*v));
        v->kind = JN_ARRAY;
        v->flags = 0;
        v->u.arr.items = NULL;
        v->u.arr.len = v->u.arr.cap = 0;
        v->u.arr.json = json_array_size(j) ? j : NULL;
        v->u.arr.origin = j;
        return v;
    case JSON_OBJECT:
        v = jn_obj_new(c);
        v->u.obj->json = j;
        v->u.obj->origin = j;
        return v;
    }
    return NULL;
}

static json_t *num_to_json(double d)
{
    if (!isfinite(d))
        return json_null();
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
        return json_integer((json_int_t)d);
    return json_real(d);
}

/* Builds the jansson value; a value nested too deeply sets *too_deep and
 * gives NULL, so that the partial result can be released before the
 * error unwinds. */
static json_t *to_json_rec(struct jn_ctx *c, jv *v, int depth, bool *too_deep)
{
    if (!v)
        return NULL;
    if (depth > JN_MAX_NESTING) {
        *too_deep = true;
        return NULL;
    }
    json_t *r = NULL;
    switch (v->kind) {
    case JN_NULL:
        return json_null();
    case JN_BOOL:
        return json_boolean(v->u.b);
    case JN_NUMBER:
        r = num_to_json(v->u.num);
        break;
    case JN_STRING:
        r = json_stringn_nocheck(v->u.str.ptr, v->u.str.len);
        break;
    case JN_FUNCTION:
        r = json_string("");
        break;
    case JN_ARRAY:
        if (v->u.arr.json) {
            r = json_deep_copy(v->u.arr.json);
            break;
        }
        r = json_array();
        if (!r)
            break;
        for (uint32_t i = 0; i < v->u.arr.len; i++) {
            /* undefined inside an array prints as null (JSON.stringify) */
            json_t *e = v->u.arr.items[i]
                            ? to_json_rec(c, v->u.arr.items[i], depth + 1, too_deep)
                            : json_null();
            if (*too_deep) {
                json_decref(r);
                return NULL;
            }
            if (!e)
                continue;
            if (json_array_append_new(r, e)) {
                json_decref(r);
                jn_oom(c);
            }
        }
        break;
    case JN_OBJECT:
        if (v->u.obj->json) {
            r = json_deep_copy(v->u.obj->json);
            break;
        }
        r = json_object();
        if (!r)
            break;
        for (uint32_t i = 0; i < v->u.obj->len; i++) {
            struct jn_pair *p = &v->u.obj->pairs[i];
            json_t *e = to_json_rec(c, p->val, depth + 1, too_deep);
            if (*too_deep) {
                json_decref(r);
                return NULL;
            }
            if (!e)
                continue;
            if (json_object_setn_new_nocheck(r, p->key, p->klen, e)) {
                json_decref(r);
                jn_oom(c);
            }
        }
        break;
    }
    if (!r)
        jn_oom(c);
    return r;
}

json_t *jn_to_json(struct jn_ctx *c, jv *v)
{
    bool too_deep = false;
    json_t *r = to_json_rec(c, v, 0, &too_deep);
    if (too_deep)
        jn_too_deep(c);
    return r;
}

static jv *deep_clone_rec(struct jn_ctx *c, jv *v, int depth)
{
    if (!v)
        return NULL;
    if (depth > JN_MAX_NESTING)
        jn_too_deep(c);
    if (v->kind == JN_ARRAY) {
        jn_arr_load(c, v);
        jv *r = jn_arr_new(c, v->u.arr.len);
        r->flags = v->flags;
        for (uint32_t i = 0; i < v->u.arr.len; i++)
            r->u.arr.items[i] = deep_clone_rec(c, v->u.arr.items[i], depth + 1);
        r->u.arr.len = v->u.arr.len;
        return r;
    }
    if (v->kind == JN_OBJECT) {
        struct jn_object *o = jn_obj_load(c, v);
        jv *r = jn_obj_new(c);
        for (uint32_t i = 0; i < o->len; i++)
            jn_obj_set(c, r, o->pairs[i].key, o->pairs[i].klen,
                       deep_clone_rec(c, o->pairs[i].val, depth + 1));
        return r;
    }
    return v;
}

jv *jn_deep_clone(struct jn_ctx *c, jv *v)
{
    return deep_clone_rec(c, v, 0);
}

/* ------------------------------------------------------------- predicates */
static bool deep_equal_rec(struct jn_ctx *c, jv *a, jv *b, int depth)
{
    if (a == b)
        return true;
    if (depth > JN_MAX_NESTING)
        jn_too_deep(c);
    if (!a || !b || a->kind != b->kind)
        return false;
    switch (a->kind) {
    case JN_NULL:
        return true;
    case JN_BOOL:
        return a->u.b == b->u.b;
    case JN_NUMBER:
        return a->u.num == b->u.num;
    case JN_STRING:
        return a->u.str.len == b->u.str.len &&
               memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0;
    case JN_ARRAY:
        jn_arr_load(c, a);
        jn_arr_load(c, b);
        if (a->u.arr.len != b->u.arr.len)
            return false;
        for (uint32_t i = 0; i < a->u.arr.len; i++)
            if (!deep_equal_rec(c, a->u.arr.items[i], b->u.arr.items[i], depth + 1))
                return false;
        return true;
    case JN_OBJECT: {
        struct jn_object *oa = jn_obj_load(c, a);
        struct jn_object *ob = jn_obj_load(c, b);
        if (oa->len != ob->len)
            return false;
        for (uint32_t i = 0; i < oa->len; i++) {
            jv *bv = jn_obj_get(c, b, oa->pairs[i].key, oa->pairs[i].klen);
            if (!bv || !deep_equal_rec(c, oa->pairs[i].val, bv, depth + 1))
                return false;
        }
        return true;
    }
    default:
        return false;
    }
}

bool jn_strict_equal(const jv *a, const jv *b)
{
    if (a == b)
        return true;
    if (!a || !b || a->kind != b->kind)
        return false;
    switch (a->kind) {
    case JN_NULL:
        return true;
    case JN_BOOL:
        return a->u.b == b->u.b;
    case JN_NUMBER:
        return a->u.num == b->u.num;
    case JN_STRING:
        return a->u.str.len == b->u.str.len &&
               memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0;
    case JN_ARRAY:
        return a->u.arr.origin && a->u.arr.origin == b->u.arr.origin;
    case JN_OBJECT:
        return a->u.obj->origin && a->u.obj->origin == b->u.obj->origin;
    default:
        return a->u.fn == b->u.fn;
    }
}

bool jn_deep_equal(struct jn_ctx *c, jv *a, jv *b)
{
    return deep_equal_rec(c, a, b, 0);
}

static bool truthy_rec(struct jn_ctx *c, jv *v, int depth)
{
    if (!v)
        return false;
    switch (v->kind) {
    case JN_NULL:
        return false;
    case JN_BOOL:
        return v->u.b;
    case JN_NUMBER:
        return v->u.num != 0;
    case JN_STRING:
        return v->u.str.len > 0;
    case JN_FUNCTION:
        return false;
    case JN_OBJECT: {
        struct jn_object *o = v->u.obj;
        return o->json ? json_object_size(o->json) > 0 : o->len > 0;
    }
    case JN_ARRAY:
        if (depth > JN_MAX_NESTING)
            jn_too_deep(c);
        jn_arr_load(c, v);
        if (v->u.arr.len == 1)
            return truthy_rec(c, v->u.arr.items[0], depth + 1);
        for (uint32_t i = 0; i < v->u.arr.len; i++)
            if (truthy_rec(c, v->u.arr.items[i], depth + 1))
                return true;
        return false;
    }
    return false;
}

bool jn_truthy(struct jn_ctx *c, jv *v)
{
    return truthy_rec(c, v, 0);
}

const char *jn_type_name(const jv *v)
{
    if (!v)
        return NULL;
    switch (v->kind) {
    case JN_NULL:
        return "null";
    case JN_BOOL:
        return "boolean";
    case JN_NUMBER:
        return "number";
    case JN_STRING:
        return "string";
    case JN_ARRAY:
        return "array";
    case JN_OBJECT:
        return "object";
    default:
        return "function";
    }
}

/* ---------------------------------------------------------------- numbers */
int jn_fmt_number(double d, char *out)
{
    if (isnan(d))
        return sprintf(out, "NaN");
    if (isinf(d))
        return sprintf(out, d < 0 ? "-Infinity" : "Infinity");
    if (d == 0)
        return sprintf(out, "0");
    /* Shortest digits that read back as d. When 15 significant digits
     * round-trip, the shortest form is them without trailing zeros, so
     * most numbers cost one conversion. */
    char buf[40];
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, sizeof(buf), "%.*e", p - 1, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* buf is [-]d[.ddd]e[+-]xx */
    char digits[24];
    int k = 0;
    const char *s = buf;
    bool neg = false;
    if (*s == '-') {
        neg = true;
        s++;
    }
    for (; *s && *s != 'e'; s++)
        if (*s != '.')
            digits[k++] = *s;
    int e = atoi(s + 1);
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = 0;
    int n = e + 1;
    char *o = out;
    if (neg)
        *o++ = '-';
    if (k <= n && n <= 21) {
        memcpy(o, digits, (size_t)k);
        o += k;
        for (int i = 0; i < n - k; i++)
            *o++ = '0';
    } else if (0 < n && n <= 21) {
        memcpy(o, digits, (size_t)n);
        o += n;
        *o++ = '.';
        memcpy(o, digits + n, (size_t)(k - n));
        o += k - n;
    } else if (-6 < n && n <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -n; i++)
            *o++ = '0';
        memcpy(o, digits, (size_t)k);
        o += k;
    } else {
        *o++ = digits[0];
        if (k > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)(k - 1));
            o += k - 1;
        }
        o += sprintf(o, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
    *o = 0;
    return (int)(o - out);
}

/* ------------------------------------------------------------------- utf8 */
int jn_utf8_decode(const char *str, size_t n, size_t *i)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t k = *i;
    unsigned ch = s[k];
    if (ch < 0x80) {
        *i = k + 1;
        return (int)ch;
    }
    int extra = ch >= 0xF0 ? 3 : ch >= 0xE0 ? 2 : ch >= 0xC0 ? 1 : 0;
    uint32_t cp = ch & (0x3F >> extra);
    size_t j = k + 1;
    for (int e = 0; e < extra && j < n; e++, j++)
        cp = (cp << 6) | (s[j] & 0x3F);
    *i = j;
    return (int)cp;
}

size_t jn_utf8_len(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            count++;
    return count;
}

size_t jn_utf8_offset(const char *s, size_t n, size_t cp)
{
    size_t i = 0;
    while (i < n && cp > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        cp--;
    }
    return i;
}

void jn_utf8_put(struct core_buf *b, uint32_t cp)
{
    char t[4];
    if (cp < 0x80) {
        t[0] = (char)cp;
        core_buf_append(b, t, 1);
    } else if (cp < 0x800) {
        t[0] = (char)(0xC0 | (cp >> 6));
        t[1] = (char)(0x80 | (cp & 0x3F));
        core_buf_append(b, t, 2);
    } else if (cp < 0x10000) {
        t[0] = (char)(0xE0 | (cp >> 12));
        t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[2] = (char)(0x80 | (cp & 0x3F));
        core_buf_append(b, t, 3);
    } else {
        t[0] = (char)(0xF0 | (cp >> 18));
        t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[3] = (char)(0x80 | (cp & 0x3F));
        core_buf_append(b, t, 4);
    }
}

/* -------------------------------------------------------------- stringify */
static void put_json_string(struct core_buf *b, const char *s, size_t n)
{
    core_buf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\' && ch < 0x80) {
            size_t j = i;
            while (j < n && (unsigned char)s[j] >= 0x20 && s[j] != '"' &&
                   s[j] != '\\' && (unsigned char)s[j] < 0x80)
                j++;
            core_buf_append(b, s + i, j - i);
            i = j;
            continue;
        }
        if (ch >= 0x80) {
            size_t start = i;
            int cp = jn_utf8_decode(s, n, &i);
            if (cp >= 0xD800 && cp <= 0xDFFF)
                core_buf_printf(b, "\\u%04x", cp);
            else
                core_buf_append(b, s + start, i - start);
            continue;
        }
        i++;
        switch (ch) {
        case '"': core_buf_puts(b, "\\\""); break;
        case '\\': core_buf_puts(b, "\\\\"); break;
        case '\b': core_buf_puts(b, "\\b"); break;
        case '\f': core_buf_puts(b, "\\f"); break;
        case '\n': core_buf_puts(b, "\\n"); break;
        case '\r': core_buf_puts(b, "\\r"); break;
        case '\t': core_buf_puts(b, "\\t"); break;
        default: core_buf_printf(b, "\\u%04x", ch); break;
        }
    }
    core_buf_putc(b, '"');
}

static void newline(struct core_buf *b, int indent, int level)
{
    if (!indent)
        return;
    core_buf_putc(b, '\n');
    for (int i = 0; i < indent * level; i++)
        core_buf_putc(b, ' ');
}

void jn_stringify(struct jn_ctx *c, struct core_buf *b, jv *v, int indent,
                  int level)
{
    char num[40];
    if (!v) {
        core_buf_puts(b, "null");
        return;
    }
    if (level > JN_MAX_NESTING)
        jn_too_deep(c);
    switch (v->kind) {
    case JN_NULL:
        core_buf_puts(b, "null");
        return;
    case JN_BOOL:
        core_buf_puts(b, v->u.b ? "true" : "false");
        return;
    case JN_NUMBER: {
        if (!isfinite(v->u.num)) {
            core_buf_puts(b, "null");
            return;
        }
        double d = v->u.num;
        if (d != floor(d)) {
            char p15[40];
            snprintf(p15, sizeof(p15), "%.15g", d);
            d = strtod(p15, NULL);
        }
        jn_fmt_number(d, num);
        core_buf_puts(b, num);
        return;
    }
    case JN_STRING:
        put_json_string(b, v->u.str.ptr, v->u.str.len);
        return;
    case JN_FUNCTION:
        core_buf_puts(b, "\"\"");
        return;
    case JN_ARRAY:
        jn_arr_load(c, v);
        if (v->u.arr.len == 0) {
            core_buf_puts(b, "[]");
            return;
        }
        core_buf_putc(b, '[');
        for (uint32_t i = 0; i < v->u.arr.len; i++) {
            if (i)
                core_buf_putc(b, ',');
            newline(b, indent, level + 1);
            jn_stringify(c, b, v->u.arr.items[i], indent, level + 1);
        }
        newline(b, indent, level);
        core_buf_putc(b, ']');
        return;
    case JN_OBJECT: {
        struct jn_object *o = jn_obj_load(c, v);
        bool first = true;
        core_buf_putc(b, '{');
        for (uint32_t i = 0; i < o->len; i++) {
            if (!o->pairs[i].val)
                continue;
            if (!first)
                core_buf_putc(b, ',');
            first = false;
            newline(b, indent, level + 1);
            put_json_string(b, o->pairs[i].key, o->pairs[i].klen);
            core_buf_putc(b, ':');
            if (indent)
                core_buf_putc(b, ' ');
            jn_stringify(c, b, o->pairs[i].val, indent, level + 1);
        }
        if (!first)
            newline(b, indent, level);
        core_buf_putc(b, '}');
        return;
    }
    }
}

/* JSON output of jansson values with JavaScript number formatting. */
static void dump_json(struct core_buf *b, const json_t *v, int indent,
                      int level)
{
    char num[40];
    switch (json_typeof(v)) {
    case JSON_NULL:
        core_buf_puts(b, "null");
        return;
    case JSON_TRUE:
        core_buf_puts(b, "true");
        return;
    case JSON_FALSE:
        core_buf_puts(b, "false");
        return;
    case JSON_INTEGER:
        core_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    case JSON_REAL:
        jn_fmt_number(json_real_value(v), num);
        core_buf_puts(b, num);
        return;
    case JSON_STRING:
        put_json_string(b, json_string_value(v), json_string_length(v));
        return;
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (!n) {
            core_buf_puts(b, "[]");
            return;
        }
        core_buf_putc(b, '[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                core_buf_putc(b, ',');
            newline(b, indent, level + 1);
            dump_json(b, json_array_get(v, i), indent, level + 1);
        }
        newline(b, indent, level);
        core_buf_putc(b, ']');
        return;
    }
    case JSON_OBJECT: {
        if (!json_object_size(v)) {
            core_buf_puts(b, "{}");
            return;
        }
        core_buf_putc(b, '{');
        bool first = true;
        void *it = json_object_iter((json_t *)v);
        while (it) {
            if (!first)
                core_buf_putc(b, ',');
            first = false;
            newline(b, indent, level + 1);
            put_json_string(b, json_object_iter_key(it),
                            json_object_iter_key_len(it));
            core_buf_putc(b, ':');
            if (indent)
                core_buf_putc(b, ' ');
            dump_json(b, json_object_iter_value(it), indent, level + 1);
            it = json_object_iter_next((json_t *)v, it);
        }
        newline(b, indent, level);
        core_buf_putc(b, '}');
        return;
    }
    }
}

void jsonata_json_dump(struct core_buf *out, const json_t *v, int indent)
{
    dump_json(out, v, indent, 0);
}
