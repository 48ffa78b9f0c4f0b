/*
 * The built-in function table and the boolean, array, object and
 * higher-order families.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "functions.h"

/* Buffers used during an evaluation live in the arena and are listed in
 * the context, so that an error unwinding past them frees their heap
 * storage (jsonata_evaluate calls jn_bufs_release). */
struct jn_bufnode {
    struct core_buf b;
    struct jn_bufnode *prev, *next;
};

struct core_buf *jn_buf_new(struct jn_ctx *c)
{
    struct jn_bufnode *n = jn_alloc(c, sizeof(*n));
    core_buf_init(&n->b);
    n->prev = NULL;
    n->next = c->bufs;
    if (c->bufs)
        c->bufs->prev = n;
    c->bufs = n;
    return &n->b;
}

void jn_buf_free(struct jn_ctx *c, struct core_buf *b)
{
    struct jn_bufnode *n = (struct jn_bufnode *)b;
    if (n->prev)
        n->prev->next = n->next;
    else
        c->bufs = n->next;
    if (n->next)
        n->next->prev = n->prev;
    core_buf_fini(b);
}

void jn_bufs_release(struct jn_ctx *c)
{
    for (struct jn_bufnode *n = c->bufs; n; n = n->next)
        core_buf_fini(&n->b);
    c->bufs = NULL;
}

jv *jn_buf_to_str(struct jn_ctx *c, struct core_buf *b)
{
    if (b->oom) {
        jn_buf_free(c, b);
        jn_oom(c);
    }
    jv *s = jn_str(c, b->data ? b->data : "", b->len);
    jn_buf_free(c, b);
    return s;
}

jv *jn_hof_call(struct jn_ctx *c, jv *f, jv *v, jv *second, jv *third)
{
    jv *args[3] = {v, second, third};
    int arity = jn_fn_arity(f);
    int n = arity < 1 ? 1 : arity > 3 ? 3 : arity;
    return jn_apply(c, f, args, n, NULL, NULL, -1);
}

static jv *seq_result(struct jn_ctx *c)
{
    return jn_seq_new(c);
}

/* ---------------------------------------------------------------- boolean */
static JN_FN(fn_boolean)
{
    jv *v = ARG(0);
    if (!v)
        return NULL;
    return jn_bool(jn_truthy(c, v));
}

static JN_FN(fn_not)
{
    jv *v = ARG(0);
    if (!v)
        return NULL;
    return jn_bool(!jn_truthy(c, v));
}

static JN_FN(fn_exists)
{
    return jn_bool(ARG(0) != NULL);
}

static JN_FN(fn_type)
{
    const char *t = jn_type_name(ARG(0));
    return t ? jn_str_ref(c, t, strlen(t)) : NULL;
}

/* ------------------------------------------------------------------ array */
static JN_FN(fn_append)
{
    return jn_append(c, ARG(0), ARG(1));
}

static JN_FN(fn_reverse)
{
    jv *arr = ARG(0);
    if (!arr)
        return NULL;
    jn_arr_load(c, arr);
    if (arr->u.arr.len <= 1)
        return arr;
    jv *r = jn_arr_new(c, arr->u.arr.len);
    for (uint32_t i = 0; i < arr->u.arr.len; i++)
        r->u.arr.items[i] = arr->u.arr.items[arr->u.arr.len - 1 - i];
    r->u.arr.len = arr->u.arr.len;
    return r;
}

static JN_FN(fn_shuffle)
{
    jv *arr = ARG(0);
    if (!arr)
        return NULL;
    jn_arr_load(c, arr);
    if (arr->u.arr.len <= 1)
        return arr;
    jv *r = jn_arr_new(c, arr->u.arr.len);
    memcpy(r->u.arr.items, arr->u.arr.items, arr->u.arr.len * sizeof(jv *));
    r->u.arr.len = arr->u.arr.len;
    for (uint32_t i = r->u.arr.len - 1; i > 0; i--) {
        uint32_t j;
        core_random_bytes(&j, sizeof(j));
        j %= i + 1;
        jv *t = r->u.arr.items[i];
        r->u.arr.items[i] = r->u.arr.items[j];
        r->u.arr.items[j] = t;
    }
    return r;
}

static JN_FN(fn_distinct)
{
    jv *arr = ARG(0);
    if (!jn_is_array(arr))
        return arr;
    jn_arr_load(c, arr);
    if (arr->u.arr.len <= 1)
        return arr;
    jv *r = jn_arr_new(c, arr->u.arr.len);
    r->flags = arr->flags & JN_SEQ;
    for (uint32_t i = 0; i < arr->u.arr.len; i++) {
        bool dup = false;
        for (uint32_t k = 0; k < r->u.arr.len && !dup; k++)
            dup = jn_deep_equal(c, arr->u.arr.items[i], r->u.arr.items[k]);
        if (!dup)
            r->u.arr.items[r->u.arr.len++] = arr->u.arr.items[i];
    }
    return r;
}

struct fn_sort_state {
    struct jn_ctx *c;
    jv *fn;
};

static int sort_default_cmp(void *s, jv *a, jv *b)
{
    (void)s;
    if (a->kind == JN_NUMBER)
        return a->u.num > b->u.num;
    size_t m = a->u.str.len < b->u.str.len ? a->u.str.len : b->u.str.len;
    int r = memcmp(a->u.str.ptr, b->u.str.ptr, m);
    return r > 0 || (r == 0 && a->u.str.len > b->u.str.len);
}

static int sort_fn_cmp(void *sv, jv *a, jv *b)
{
    struct fn_sort_state *s = sv;
    jv *args[2] = {a, b};
    jv *r = jn_apply(s->c, s->fn, args, 2, NULL, NULL, -1);
    return r && r->kind == JN_BOOL ? r->u.b : jn_truthy(s->c, r);
}

static JN_FN(fn_sort)
{
    jv *arr = ARG(0);
    jv *fn = ARG(1);
    if (!arr)
        return NULL;
    jn_arr_load(c, arr);
    if (arr->u.arr.len <= 1)
        return arr;
    jv *r = jn_arr_new(c, arr->u.arr.len);
    memcpy(r->u.arr.items, arr->u.arr.items, arr->u.arr.len * sizeof(jv *));
    r->u.arr.len = arr->u.arr.len;
    if (fn) {
        struct fn_sort_state s = {c, fn};
        jn_merge_sort(c, r->u.arr.items, r->u.arr.len, sort_fn_cmp, &s);
    } else {
        int kind = arr->u.arr.items[0] ? arr->u.arr.items[0]->kind : 0;
        for (uint32_t i = 0; i < arr->u.arr.len; i++) {
            jv *v = arr->u.arr.items[i];
            if (!v || (v->kind != JN_NUMBER && v->kind != JN_STRING) ||
                v->kind != kind)
                jn_throw(c, "D3070", -1, NULL);
        }
        jn_merge_sort(c, r->u.arr.items, r->u.arr.len, sort_default_cmp, NULL);
    }
    return r;
}

static JN_FN(fn_zip)
{
    uint32_t len = UINT32_MAX;
    for (int i = 0; i < n; i++) {
        if (!jn_is_array(a[i])) {
            len = 0;
            break;
        }
        uint32_t l = jn_arr_load(c, a[i])->u.arr.len;
        if (l < len)
            len = l;
    }
    if (n == 0)
        len = 0;
    jv *r = jn_arr_new(c, len);
    for (uint32_t k = 0; k < len; k++) {
        jv *t = jn_arr_new(c, (uint32_t)n);
        for (int i = 0; i < n; i++)
            t->u.arr.items[i] = a[i]->u.arr.items[k];
        t->u.arr.len = (uint32_t)n;
        r->u.arr.items[k] = t;
    }
    r->u.arr.len = len;
    return r;
}

/* ----------------------------------------------------------------- object */
static void collect_keys(struct jn_ctx *c, jv *v, jv *seen)
{
    struct jn_object *o = jn_obj_load(c, v);
    for (uint32_t i = 0; i < o->len; i++)
        jn_obj_set(c, seen, o->pairs[i].key, o->pairs[i].klen, &jn_true);
}

static JN_FN(fn_keys)
{
    jv *r = seq_result(c);
    jv *arg = ARG(0);
    /* the union of keys, in the order an object holding them all has */
    jv *seen = jn_obj_new(c);
    if (jn_is_array(arg)) {
        jn_arr_load(c, arg);
        for (uint32_t i = 0; i < arg->u.arr.len; i++)
            if (jn_is_obj(arg->u.arr.items[i]))
                collect_keys(c, arg->u.arr.items[i], seen);
    } else if (jn_is_obj(arg)) {
        collect_keys(c, arg, seen);
    }
    struct jn_object *so = seen->u.obj;
    for (uint32_t i = 0; i < so->len; i++)
        jn_arr_push(c, r, jn_str_ref(c, so->pairs[i].key, so->pairs[i].klen));
    return r;
}

jv *jn_lookup(struct jn_ctx *c, jv *input, const char *key, size_t len)
{
    if (!input)
        return NULL;
    if (input->kind == JN_OBJECT)
        return jn_obj_get(c, input, key, len);
    if (input->kind != JN_ARRAY)
        return NULL;
    jn_arr_load(c, input);
    jv *r = jn_seq_new(c);
    for (uint32_t i = 0; i < input->u.arr.len; i++) {
        jv *v = jn_lookup(c, input->u.arr.items[i], key, len);
        if (!v)
            continue;
        if (jn_is_array(v)) {
            jn_arr_load(c, v);
            for (uint32_t j = 0; j < v->u.arr.len; j++)
                jn_arr_push(c, r, v->u.arr.items[j]);
        } else {
            jn_arr_push(c, r, v);
        }
    }
    return r;
}

static JN_FN(fn_lookup)
{
    jv *k = ARG(1);
    if (!k)
        return NULL;
    return jn_lookup(c, ARG(0), k->u.str.ptr, k->u.str.len);
}

static jv *spread(struct jn_ctx *c, jv *arg, int depth)
{
    if (depth > JN_MAX_NESTING)
        jn_too_deep(c);
    if (jn_is_array(arg)) {
        jv *r = seq_result(c);
        jn_arr_load(c, arg);
        for (uint32_t i = 0; i < arg->u.arr.len; i++)
            r = jn_append(c, r, spread(c, arg->u.arr.items[i], depth + 1));
        return r;
    }
    if (jn_is_obj(arg)) {
        jv *r = seq_result(c);
        struct jn_object *o = jn_obj_load(c, arg);
        for (uint32_t i = 0; i < o->len; i++) {
            jv *one = jn_obj_new(c);
            jn_obj_set(c, one, o->pairs[i].key, o->pairs[i].klen, o->pairs[i].val);
            jn_arr_push(c, r, one);
        }
        return r;
    }
    return arg;
}

static JN_FN(fn_spread)
{
    return spread(c, ARG(0), 0);
}

static JN_FN(fn_merge)
{
    jv *arr = ARG(0);
    if (!arr)
        return NULL;
    jv *r = jn_obj_new(c);
    jn_arr_load(c, arr);
    for (uint32_t i = 0; i < arr->u.arr.len; i++) {
        struct jn_object *o = jn_obj_load(c, arr->u.arr.items[i]);
        for (uint32_t k = 0; k < o->len; k++)
            jn_obj_set(c, r, o->pairs[k].key, o->pairs[k].klen, o->pairs[k].val);
    }
    return r;
}

static JN_FN(fn_each)
{
    jv *obj = ARG(0), *f = ARG(1);
    if (!obj)
        return NULL;
    jv *r = seq_result(c);
    struct jn_object *o = jn_obj_load(c, obj);
    for (uint32_t i = 0; i < o->len; i++) {
        jv *v = jn_hof_call(c, f, o->pairs[i].val,
                            jn_str_ref(c, o->pairs[i].key, o->pairs[i].klen), obj);
        if (v)
            jn_arr_push(c, r, v);
    }
    return r;
}

static JN_FN(fn_sift)
{
    jv *obj = ARG(0), *f = ARG(1);
    if (!obj)
        return NULL;
    jv *r = jn_obj_new(c);
    struct jn_object *o = jn_obj_load(c, obj);
    for (uint32_t i = 0; i < o->len; i++) {
        jv *v = jn_hof_call(c, f, o->pairs[i].val,
                            jn_str_ref(c, o->pairs[i].key, o->pairs[i].klen), obj);
        if (jn_truthy(c, v))
            jn_obj_set(c, r, o->pairs[i].key, o->pairs[i].klen, o->pairs[i].val);
    }
    return r->u.obj->len ? r : NULL;
}

static JN_FN(fn_clone)
{
    return jn_deep_clone(c, ARG(0));
}

static JN_FN(fn_error)
{
    jv *m = ARG(0);
    jn_throw_msg(c, "D3137", m ? m->u.str.ptr : "$error() function evaluated");
}

static JN_FN(fn_assert)
{
    jv *cond = ARG(0), *m = ARG(1);
    if (!cond || cond->kind != JN_BOOL)
        jn_throw(c, "T0410", -1, cond);
    if (!cond->u.b) {
        jn_throw_msg(c, "D3141", m ? m->u.str.ptr : "$assert() statement failed");
    }
    return NULL;
}

/* ------------------------------------------------------------ higher order */
static JN_FN(fn_map)
{
    jv *arr = ARG(0), *f = ARG(1);
    if (!arr)
        return NULL;
    jn_arr_load(c, arr);
    jv *r = seq_result(c);
    for (uint32_t i = 0; i < arr->u.arr.len; i++) {
        jv *v = jn_hof_call(c, f, arr->u.arr.items[i], jn_num(c, i), arr);
        if (v)
            jn_arr_push(c, r, v);
    }
    return r;
}

static JN_FN(fn_filter)
{
    jv *arr = ARG(0), *f = ARG(1);
    if (!arr)
        return NULL;
    jn_arr_load(c, arr);
    jv *r = seq_result(c);
    for (uint32_t i = 0; i < arr->u.arr.len; i++) {
        jv *v = jn_hof_call(c, f, arr->u.arr.items[i], jn_num(c, i), arr);
        if (jn_truthy(c, v))
            jn_arr_push(c, r, arr->u.arr.items[i]);
    }
    return r;
}

static JN_FN(fn_single)
{
    jv *arr = ARG(0), *f = ARG(1);
    if (!arr)
        return NULL;
    jn_arr_load(c, arr);
    jv *found = NULL;
    bool have = false;
    for (uint32_t i = 0; i < arr->u.arr.len; i++) {
        bool pos = true;
        if (f)
            pos = jn_truthy(c, jn_hof_call(c, f, arr->u.arr.items[i],
                                           jn_num(c, i), arr));
        if (pos) {
            if (have)
                jn_throw(c, "D3138", -1, NULL);
            found = arr->u.arr.items[i];
            have = true;
        }
    }
    if (!have)
        jn_throw(c, "D3139", -1, NULL);
    return found;
}

static JN_FN(fn_reduce)
{
    jv *arr = ARG(0), *f = ARG(1), *init = ARG(2);
    if (!arr)
        return NULL;
    int arity = jn_fn_arity(f);
    if (arity < 2) {
        c->err.index = 2;
        jn_throw(c, "D3050", -1, NULL);
    }
    jn_arr_load(c, arr);
    uint32_t i = 0;
    jv *acc = init;
    if (!init && arr->u.arr.len > 0)
        acc = arr->u.arr.items[i++];
    for (; i < arr->u.arr.len; i++) {
        jv *args[4] = {acc, arr->u.arr.items[i], jn_num(c, i), arr};
        acc = jn_apply(c, f, args, arity > 4 ? 4 : arity, NULL, NULL, -1);
    }
    return acc;
}

/* ---------------------------------------------------------------- registry */
struct jn_builtin jn_builtins[] = {
    {"abs", "<n-:n>", jn_fn_abs, NULL},
    {"append", "<xx:a>", fn_append, NULL},
    {"assert", "<bs?:x>", fn_assert, NULL},
    {"average", "<a<n>:n>", jn_fn_average, NULL},
    {"base64decode", "<s-:s>", jn_fn_base64decode, NULL},
    {"base64encode", "<s-:s>", jn_fn_base64encode, NULL},
    {"boolean", "<x-:b>", fn_boolean, NULL},
    {"ceil", "<n-:n>", jn_fn_ceil, NULL},
    {"clone", "<(oa)-:o>", fn_clone, NULL},
    {"contains", "<s-(sf):b>", jn_fn_contains, NULL},
    {"count", "<a:n>", jn_fn_count, NULL},
    {"decodeUrl", "<s-:s>", jn_fn_decode_url, NULL},
    {"decodeUrlComponent", "<s-:s>", jn_fn_decode_url_component, NULL},
    {"distinct", "<x:x>", fn_distinct, NULL},
    {"each", "<o-f:a>", fn_each, NULL},
    {"encodeUrl", "<s-:s>", jn_fn_encode_url, NULL},
    {"encodeUrlComponent", "<s-:s>", jn_fn_encode_url_component, NULL},
    {"error", "<s?:x>", fn_error, NULL},
    {"eval", "<sx?:x>", jn_fn_eval, NULL},
    {"exists", "<x:b>", fn_exists, NULL},
    {"filter", "<af>", fn_filter, NULL},
    {"floor", "<n-:n>", jn_fn_floor, NULL},
    {"formatBase", "<n-n?:s>", jn_fn_format_base, NULL},
    {"formatInteger", "<n-s:s>", jn_fn_format_integer, NULL},
    {"formatNumber", "<n-so?:s>", jn_fn_format_number, NULL},
    {"fromMillis", "<n-s?s?:s>", jn_fn_from_millis, NULL},
    {"join", "<a<s>s?:s>", jn_fn_join, NULL},
    {"keys", "<x-:a<s>>", fn_keys, NULL},
    {"length", "<s-:n>", jn_fn_length, NULL},
    {"lookup", "<x-s:x>", fn_lookup, NULL},
    {"lowercase", "<s-:s>", jn_fn_lowercase, NULL},
    {"map", "<af>", fn_map, NULL},
    {"match", "<s-f<s:o>n?:a<o>>", jn_fn_match, NULL},
    {"max", "<a<n>:n>", jn_fn_max, NULL},
    {"merge", "<a<o>:o>", fn_merge, NULL},
    {"millis", "<:n>", jn_fn_millis, NULL},
    {"min", "<a<n>:n>", jn_fn_min, NULL},
    {"not", "<x-:b>", fn_not, NULL},
    {"now", "<s?s?:s>", jn_fn_now, NULL},
    {"number", "<(nsb)-:n>", jn_fn_number, NULL},
    {"pad", "<s-ns?:s>", jn_fn_pad, NULL},
    {"parseInteger", "<s-s:n>", jn_fn_parse_integer, NULL},
    {"power", "<n-n:n>", jn_fn_power, NULL},
    {"random", "<:n>", jn_fn_random, NULL},
    {"reduce", "<afj?:j>", fn_reduce, NULL},
    {"replace", "<s-(sf)(sf)n?:s>", jn_fn_replace, NULL},
    {"reverse", "<a:a>", fn_reverse, NULL},
    {"round", "<n-n?:n>", jn_fn_round, NULL},
    {"shuffle", "<a:a>", fn_shuffle, NULL},
    {"sift", "<o-f?:o>", fn_sift, NULL},
    {"single", "<af?>", fn_single, NULL},
    {"sort", "<af?:a>", fn_sort, NULL},
    {"split", "<s-(sf)n?:a<s>>", jn_fn_split, NULL},
    {"spread", "<x-:a<o>>", fn_spread, NULL},
    {"sqrt", "<n-:n>", jn_fn_sqrt, NULL},
    {"string", "<x-b?:s>", jn_fn_string, NULL},
    {"substring", "<s-nn?:s>", jn_fn_substring, NULL},
    {"substringAfter", "<s-s:s>", jn_fn_substring_after, NULL},
    {"substringBefore", "<s-s:s>", jn_fn_substring_before, NULL},
    {"sum", "<a<n>:n>", jn_fn_sum, NULL},
    {"toMillis", "<s-s?:n>", jn_fn_to_millis, NULL},
    {"trim", "<s-:s>", jn_fn_trim, NULL},
    {"type", "<x:s>", fn_type, NULL},
    {"uppercase", "<s-:s>", jn_fn_uppercase, NULL},
    {"zip", "<a+>", fn_zip, NULL},
};
const int jn_nbuiltins = sizeof(jn_builtins) / sizeof(*jn_builtins);

static jv builtin_values[sizeof(jn_builtins) / sizeof(*jn_builtins)];
static struct jn_function builtin_fns[sizeof(jn_builtins) / sizeof(*jn_builtins)];
static struct jn_arena builtin_arena;
static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;

static void builtins_setup(void)
{
    jn_arena_init(&builtin_arena, NULL);
    for (int i = 0; i < jn_nbuiltins; i++) {
        jn_builtins[i].sig = jn_sig_parse(&builtin_arena, jn_builtins[i].sig_text);
        builtin_fns[i].kind = FN_BUILTIN;
        builtin_fns[i].bi = &jn_builtins[i];
        builtin_fns[i].sig = jn_builtins[i].sig;
        int arity = 0;
        for (int k = 0; k < jn_builtins[i].sig->nparams; k++)
            if (jn_builtins[i].sig->params[k].mod != '?')
                arity++;
        builtin_fns[i].arity = arity;
        builtin_values[i].kind = JN_FUNCTION;
        builtin_values[i].u.fn = &builtin_fns[i];
    }
}

void jn_builtins_init(void)
{
    pthread_once(&builtins_once, builtins_setup);
}

jv *jn_builtin_value(int index);
jv *jn_builtin_value(int index)
{
    return &builtin_values[index];
}

int jn_builtin_find(const char *name, size_t len)
{
    int lo = 0, hi = jn_nbuiltins - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const char *m = jn_builtins[mid].name;
        size_t ml = strlen(m);
        int r = strncmp(m, name, len < ml ? len : ml);
        if (r == 0)
            r = ml < len ? -1 : ml > len ? 1 : 0;
        if (r == 0)
            return mid;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}
