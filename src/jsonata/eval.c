/*
 * The evaluator: walks the immutable syntax tree with a per-evaluation
 * context (arena, limits, error slot). Errors unwind with longjmp to
 * jsonata_evaluate; nothing allocated in the arena needs freeing on the
 * way. Tail calls in lambdas come back as thunks and are run in a loop in
 * jn_apply, so deep tail recursion uses constant C stack.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions.h"

/* ------------------------------------------------------------------ errors */
void jn_throw(struct jn_ctx *c, const char *code, int position, jv *value)
{
    snprintf(c->err.code, sizeof(c->err.code), "%s", code);
    if (c->err.position < 0)
        c->err.position = position >= 0 ? position : c->call_position;
    c->err.value = value;
    c->status = CORE_EINVAL;
    longjmp(c->jmp, 1);
}

void jn_throw_msg(struct jn_ctx *c, const char *code, const char *message)
{
    c->err.message = message;
    jn_throw(c, code, -1, NULL);
}

void jn_too_deep(struct jn_ctx *c)
{
    c->err.message = "Value nested too deeply";
    jn_throw(c, "U1001", -1, NULL);
}

void jn_oom(struct jn_ctx *c)
{
    c->status = CORE_ENOMEM;
    longjmp(c->jmp, 2);
}

static _Noreturn void throw_tok(struct jn_ctx *c, const char *code,
                                const struct jn_node *n, const char *token,
                                jv *value)
{
    if (!c->err.token)
        c->err.token = token;
    jn_throw(c, code, n ? n->position : -1, value);
}

/* ------------------------------------------------------------ environment */
struct jn_env *jn_env_new(struct jn_ctx *c, struct jn_env *parent)
{
    struct jn_env *e = jn_alloc(c, sizeof(*e));
    e->parent = parent;
    e->b = NULL;
    e->n = e->cap = 0;
    return e;
}

void jn_env_bind(struct jn_ctx *c, struct jn_env *e, const char *name,
                 size_t len, jv *v)
{
    for (int i = 0; i < e->n; i++) {
        if (e->b[i].len == len && !memcmp(e->b[i].name, name, len)) {
            e->b[i].val = v;
            return;
        }
    }
    if (e->n == e->cap) {
        int cap = e->cap ? e->cap * 2 : 4;
        struct jn_binding *b = jn_alloc(c, (size_t)cap * sizeof(*b));
        if (e->n)
            memcpy(b, e->b, (size_t)e->n * sizeof(*b));
        e->b = b;
        e->cap = cap;
    }
    e->b[e->n].name = name;
    e->b[e->n].len = len;
    e->b[e->n].val = v;
    e->n++;
}

static bool env_lookup(struct jn_env *e, const char *name, size_t len, jv **out)
{
    for (; e; e = e->parent) {
        for (int i = e->n - 1; i >= 0; i--) {
            if (e->b[i].len == len && !memcmp(e->b[i].name, name, len)) {
                *out = e->b[i].val;
                return true;
            }
        }
    }
    return false;
}

/* --------------------------------------------------------------- helpers */
void jn_timeout(struct jn_ctx *c, int position)
{
    c->err.message = "Expression evaluation timeout: Check for infinite loop";
    jn_throw(c, "U1001", position, NULL);
}

static inline void tick(struct jn_ctx *c, const struct jn_node *n)
{
    jn_charge(c, 1, n->position);
}

/* $append semantics: concatenation, scalars treated as singletons. */
jv *jn_append(struct jn_ctx *c, jv *a, jv *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    uint32_t na = 1, nb = 1;
    if (jn_is_array(a))
        na = jn_arr_load(c, a)->u.arr.len;
    if (jn_is_array(b))
        nb = jn_arr_load(c, b)->u.arr.len;
    jv *r = jn_arr_new(c, na + nb);
    if (jn_is_array(a))
        jn_copy(r->u.arr.items, a->u.arr.items, na * sizeof(jv *));
    else
        r->u.arr.items[0] = a;
    if (jn_is_array(b))
        jn_copy(r->u.arr.items + na, b->u.arr.items, nb * sizeof(jv *));
    else
        r->u.arr.items[na] = b;
    r->u.arr.len = na + nb;
    return r;
}

static bool is_numeric(struct jn_ctx *c, jv *v, const struct jn_node *n)
{
    if (!v || v->kind != JN_NUMBER)
        return false;
    if (isnan(v->u.num))
        return false;
    if (!isfinite(v->u.num))
        jn_throw(c, "D1001", n ? n->position : -1, v);
    return true;
}

static void flatten_rec(struct jn_ctx *c, jv *out, jv *v, int depth)
{
    if (depth > JN_MAX_NESTING)
        jn_too_deep(c);
    if (jn_is_array(v)) {
        jn_arr_load(c, v);
        for (uint32_t i = 0; i < v->u.arr.len; i++)
            flatten_rec(c, out, v->u.arr.items[i], depth + 1);
    } else if (v) {
        jn_arr_push(c, out, v);
    }
}

static void flatten_into(struct jn_ctx *c, jv *out, jv *v)
{
    flatten_rec(c, out, v, 0);
}

static jv *eval_wildcard(struct jn_ctx *c, jv *input)
{
    jv *r = jn_seq_new(c);
    if (jn_is_array(input) && (input->flags & JN_OUTER) &&
        jn_arr_load(c, input)->u.arr.len > 0)
        input = input->u.arr.items[0];
    if (jn_is_obj(input)) {
        struct jn_object *o = jn_obj_load(c, input);
        for (uint32_t i = 0; i < o->len; i++) {
            jv *v = o->pairs[i].val;
            if (jn_is_array(v)) {
                flatten_into(c, r, v);
                r->flags &= (uint8_t)~JN_SEQ; /* $append drops the flag */
            } else if (v) {
                jn_arr_push(c, r, v);
            }
        }
    } else if (jn_is_array(input)) {
        jn_arr_load(c, input);
        for (uint32_t i = 0; i < input->u.arr.len; i++) {
            jv *v = input->u.arr.items[i];
            if (jn_is_array(v)) {
                flatten_into(c, r, v);
                r->flags &= (uint8_t)~JN_SEQ;
            } else if (v) {
                jn_arr_push(c, r, v);
            }
        }
    }
    return r;
}

static void descend(struct jn_ctx *c, jv *input, jv *out, int depth)
{
    if (depth > JN_MAX_NESTING)
        jn_too_deep(c);
    if (!jn_is_array(input))
        jn_arr_push(c, out, input);
    if (jn_is_array(input)) {
        jn_arr_load(c, input);
        for (uint32_t i = 0; i < input->u.arr.len; i++)
            descend(c, input->u.arr.items[i], out, depth + 1);
    } else if (jn_is_obj(input)) {
        struct jn_object *o = jn_obj_load(c, input);
        for (uint32_t i = 0; i < o->len; i++)
            descend(c, o->pairs[i].val, out, depth + 1);
    }
}

static jv *eval_descendants(struct jn_ctx *c, jv *input)
{
    if (!input)
        return NULL;
    jv *r = jn_seq_new(c);
    descend(c, input, r, 0);
    if (r->u.arr.len == 1)
        return r->u.arr.items[0];
    return r;
}

/* ----------------------------------------------------------------- filters */
static struct jn_env *frame_from_tuple(struct jn_ctx *c, struct jn_env *env,
                                      jv *tuple)
{
    struct jn_env *e = jn_env_new(c, env);
    struct jn_object *o = jn_obj_load(c, tuple);
    for (uint32_t i = 0; i < o->len; i++)
        jn_env_bind(c, e, o->pairs[i].key, o->pairs[i].klen, o->pairs[i].val);
    return e;
}

static jv *tuple_focus(struct jn_ctx *c, jv *tuple)
{
    return jn_obj_get(c, tuple, "@", 1);
}

static jv *eval_filter(struct jn_ctx *c, const struct jn_node *pred, jv *input,
                       struct jn_env *env)
{
    jv *results = jn_seq_new(c);
    if (!input)
        return results;
    bool tuples = input->kind == JN_ARRAY && (input->flags & JN_TUPLES);
    if (tuples)
        results->flags |= JN_TUPLES;
    if (!jn_is_array(input))
        input = jn_seq_of(c, input);
    jn_arr_load(c, input);
    uint32_t len = input->u.arr.len;
    if (pred->type == N_LITERAL && pred->lit->kind == JN_NUMBER) {
        double idx = floor(pred->lit->u.num);
        if (idx < 0)
            idx += len;
        if (idx >= 0 && idx < len) {
            jv *item = input->u.arr.items[(uint32_t)idx];
            if (jn_is_array(item))
                return item;
            jn_arr_push(c, results, item);
        }
        return results;
    }
    for (uint32_t i = 0; i < len; i++) {
        jv *item = input->u.arr.items[i];
        jv *res = tuples ? jn_eval(c, pred, tuple_focus(c, item),
                                   frame_from_tuple(c, env, item))
                         : jn_eval(c, pred, item, env);
        if (res && res->kind == JN_NUMBER) {
            double ii = floor(res->u.num);
            if (ii < 0)
                ii += len;
            if (ii == i)
                jn_arr_push(c, results, item);
            continue;
        }
        if (jn_is_array(res)) {
            jn_arr_load(c, res);
            bool all_num = res->u.arr.len > 0;
            for (uint32_t k = 0; k < res->u.arr.len && all_num; k++)
                all_num = res->u.arr.items[k] && res->u.arr.items[k]->kind == JN_NUMBER;
            if (all_num) {
                /* each matching index selects the item (again) */
                for (uint32_t k = 0; k < res->u.arr.len; k++) {
                    double ii = floor(res->u.arr.items[k]->u.num);
                    if (ii < 0)
                        ii += len;
                    if (ii == i)
                        jn_arr_push(c, results, item);
                }
                continue;
            }
        }
        if (jn_truthy(c, res))
            jn_arr_push(c, results, item);
    }
    return results;
}

static jv *apply_stages(struct jn_ctx *c, const struct jn_node *n, jv *r,
                        struct jn_env *env)
{
    for (int i = 0; i < n->nstages; i++) {
        if (n->stages[i].is_index) {
            if (!jn_is_array(r))
                continue;
            jn_arr_load(c, r);
            for (uint32_t k = 0; k < r->u.arr.len; k++)
                jn_obj_set(c, r->u.arr.items[k], n->stages[i].var,
                           strlen(n->stages[i].var), jn_num(c, k));
            continue;
        }
        r = eval_filter(c, n->stages[i].expr, r, env);
    }
    return r;
}

/* ------------------------------------------------------------------ group */
/* Merges a group of binding tuples into one, each name bound to the
 * sequence of its values. */
static jv *reduce_tuples(struct jn_ctx *c, jv *stream)
{
    jv *r = jn_obj_new(c);
    if (!jn_is_array(stream)) {
        struct jn_object *o = jn_obj_load(c, stream);
        for (uint32_t i = 0; i < o->len; i++)
            jn_obj_set(c, r, o->pairs[i].key, o->pairs[i].klen, o->pairs[i].val);
        return r;
    }
    jn_arr_load(c, stream);
    for (uint32_t k = 0; k < stream->u.arr.len; k++) {
        struct jn_object *o = jn_obj_load(c, stream->u.arr.items[k]);
        for (uint32_t i = 0; i < o->len; i++) {
            jv *prev = k ? jn_obj_get(c, r, o->pairs[i].key, o->pairs[i].klen) : NULL;
            jn_obj_set(c, r, o->pairs[i].key, o->pairs[i].klen,
                       k ? jn_append(c, prev, o->pairs[i].val) : o->pairs[i].val);
        }
    }
    return r;
}

static jv *eval_group(struct jn_ctx *c, const struct jn_node *g, jv *input,
                      struct jn_env *env)
{
    jv *result = jn_obj_new(c);
    /* groups: key -> index into data/expr arrays, kept in an object */
    jv *index = jn_obj_new(c);
    jv **data = NULL, **keys = NULL;
    int *exprs = NULL;
    int ngroups = 0, cap = 0;
    bool reduce = input && input->kind == JN_ARRAY && (input->flags & JN_TUPLES);
    if (!jn_is_array(input))
        input = jn_seq_of(c, input);
    jn_arr_load(c, input);
    uint32_t len = input->u.arr.len;
    for (uint32_t i = 0; i < (len || reduce ? len : 1); i++) {
        jv *item = len ? input->u.arr.items[i] : NULL;
        struct jn_env *ienv = reduce ? frame_from_tuple(c, env, item) : env;
        for (int p = 0; p < g->npairs; p++) {
            jv *key = jn_eval(c, g->pairs[2 * p], reduce ? tuple_focus(c, item) : item,
                              ienv);
            if (!key)
                continue;
            if (key->kind != JN_STRING)
                throw_tok(c, "T1003", g, NULL, key);
            jv *slot = jn_obj_get(c, index, key->u.str.ptr, key->u.str.len);
            if (slot) {
                int gi = (int)slot->u.num;
                if (exprs[gi] != p)
                    throw_tok(c, "D1009", g, NULL, key);
                data[gi] = jn_append(c, data[gi], item);
                continue;
            }
            if (ngroups == cap) {
                int nc = cap ? cap * 2 : 8;
                jv **nd = jn_alloc(c, (size_t)nc * sizeof(*nd));
                int *ne = jn_alloc(c, (size_t)nc * sizeof(*ne));
                jv **nk = jn_alloc(c, (size_t)nc * sizeof(*nk));
                if (ngroups) {
                    memcpy(nd, data, (size_t)ngroups * sizeof(*nd));
                    memcpy(ne, exprs, (size_t)ngroups * sizeof(*ne));
                    memcpy(nk, keys, (size_t)ngroups * sizeof(*nk));
                }
                data = nd;
                exprs = ne;
                keys = nk;
                cap = nc;
            }
            data[ngroups] = item;
            exprs[ngroups] = p;
            keys[ngroups] = key;
            jn_obj_set(c, index, key->u.str.ptr, key->u.str.len,
                       jn_num(c, ngroups));
            ngroups++;
        }
    }
    for (int gi = 0; gi < ngroups; gi++) {
        jv *ctxv = data[gi];
        struct jn_env *genv = env;
        if (reduce) {
            jv *t = reduce_tuples(c, data[gi]);
            ctxv = tuple_focus(c, t);
            jn_obj_del(c, t, "@", 1);
            genv = frame_from_tuple(c, env, t);
        }
        jv *v = jn_eval(c, g->pairs[2 * exprs[gi] + 1], ctxv, genv);
        if (v)
            jn_obj_set(c, result, keys[gi]->u.str.ptr, keys[gi]->u.str.len, v);
    }
    return result;
}

/* ------------------------------------------------------------------- sort */
struct sort_state {
    struct jn_ctx *c;
    const struct jn_node *step;
    struct jn_env *env;
    bool tuples;
};

static int sort_cmp(struct sort_state *s, jv *a, jv *b)
{
    struct jn_ctx *c = s->c;
    int comp = 0;
    for (int i = 0; comp == 0 && i < s->step->nitems; i++) {
        const struct jn_node *term = s->step->items[i];
        jv *aa, *bb;
        if (s->tuples) {
            aa = jn_eval(c, term->lhs, tuple_focus(c, a), frame_from_tuple(c, s->env, a));
            bb = jn_eval(c, term->lhs, tuple_focus(c, b), frame_from_tuple(c, s->env, b));
        } else {
            aa = jn_eval(c, term->lhs, a, s->env);
            bb = jn_eval(c, term->lhs, b, s->env);
        }
        if (!aa) {
            comp = bb ? 1 : 0;
            continue;
        }
        if (!bb) {
            comp = -1;
            continue;
        }
        bool aok = aa->kind == JN_NUMBER || aa->kind == JN_STRING;
        bool bok = bb->kind == JN_NUMBER || bb->kind == JN_STRING;
        if (!aok || !bok)
            jn_throw(c, "T2008", s->step->position, !aok ? aa : bb);
        if (aa->kind != bb->kind) {
            c->err.value2 = bb;
            jn_throw(c, "T2007", s->step->position, aa);
        }
        if (aa->kind == JN_NUMBER) {
            if (aa->u.num == bb->u.num)
                continue;
            comp = aa->u.num < bb->u.num ? -1 : 1;
        } else {
            size_t n = aa->u.str.len < bb->u.str.len ? aa->u.str.len : bb->u.str.len;
            int r = memcmp(aa->u.str.ptr, bb->u.str.ptr, n);
            if (r == 0 && aa->u.str.len == bb->u.str.len)
                continue;
            comp = r < 0 || (r == 0 && aa->u.str.len < bb->u.str.len) ? -1 : 1;
        }
        if (term->descending)
            comp = -comp;
    }
    return comp;
}

/* Stable merge sort; cmp(a, b) > 0 means b goes first. */
void jn_merge_sort(struct jn_ctx *c, jv **items, uint32_t n, jn_cmp_fn cmp,
                   void *state)
{
    if (n < 2)
        return;
    jv **tmp = jn_alloc(c, n * sizeof(jv *));
    for (uint32_t width = 1; width < n; width *= 2) {
        for (uint32_t lo = 0; lo < n; lo += 2 * width) {
            uint32_t mid = lo + width < n ? lo + width : n;
            uint32_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            uint32_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                if (cmp(state, items[i], items[j]) > 0)
                    tmp[k++] = items[j++];
                else
                    tmp[k++] = items[i++];
            }
            while (i < mid)
                tmp[k++] = items[i++];
            while (j < hi)
                tmp[k++] = items[j++];
        }
        memcpy(items, tmp, n * sizeof(jv *));
    }
}

static int sort_cmp_cb(void *s, jv *a, jv *b)
{
    return sort_cmp(s, a, b);
}

static jv *eval_sort(struct jn_ctx *c, const struct jn_node *step, jv *input,
                     struct jn_env *env)
{
    if (!input)
        return NULL;
    if (!jn_is_array(input))
        input = jn_seq_of(c, input);
    jn_arr_load(c, input);
    jv *r = jn_arr_new(c, input->u.arr.len);
    r->flags = JN_SEQ | (input->flags & JN_TUPLES);
    if (input->u.arr.len)
        jn_copy(r->u.arr.items, input->u.arr.items, input->u.arr.len * sizeof(jv *));
    r->u.arr.len = input->u.arr.len;
    struct sort_state s = {c, step, env, (input->flags & JN_TUPLES) != 0};
    jn_merge_sort(c, r->u.arr.items, r->u.arr.len, sort_cmp_cb, &s);
    return r;
}

/* ------------------------------------------------------------------- path */
static jv *eval_step(struct jn_ctx *c, const struct jn_node *step, jv *input,
                     struct jn_env *env, bool last)
{
    if (step->type == N_SORT)
        return apply_stages(c, step, eval_sort(c, step, input, env), env);
    jn_arr_load(c, input);
    uint32_t n = input->u.arr.len;
    /* The common case, one item in and one value out, without the
     * intermediate sequence. */
    if (n == 1) {
        jv *res = jn_eval(c, step, input->u.arr.items[0], env);
        if (!res)
            return jn_seq_new(c);
        if (jn_is_array(res)) {
            if (last && !(res->flags & JN_SEQ))
                return res;
            if (res->flags & JN_CONS)
                return jn_seq_of(c, res);
            jn_arr_load(c, res);
            jv *out = jn_arr_new(c, res->u.arr.len);
            out->flags = JN_SEQ;
            if (res->u.arr.len)
                jn_copy(out->u.arr.items, res->u.arr.items, res->u.arr.len * sizeof(jv *));
            out->u.arr.len = res->u.arr.len;
            return out;
        }
        return jn_seq_of(c, res);
    }
    jv **results = n ? jn_alloc(c, n * sizeof(jv *)) : NULL;
    uint32_t nres = 0;
    for (uint32_t i = 0; i < n; i++) {
        jv *res = jn_eval(c, step, input->u.arr.items[i], env);
        if (res)
            results[nres++] = res;
    }
    if (last && nres == 1 && jn_is_array(results[0]) &&
        !(results[0]->flags & JN_SEQ))
        return results[0];
    jv *out = jn_seq_new(c);
    for (uint32_t i = 0; i < nres; i++) {
        jv *res = results[i];
        if (!jn_is_array(res) || (res->flags & JN_CONS)) {
            jn_arr_push(c, out, res);
        } else {
            jn_arr_load(c, res);
            for (uint32_t k = 0; k < res->u.arr.len; k++)
                jn_arr_push(c, out, res->u.arr.items[k]);
        }
    }
    return out;
}

static jv *tuple_with(struct jn_ctx *c, jv *base)
{
    jv *t = jn_obj_new(c);
    if (base) {
        struct jn_object *o = jn_obj_load(c, base);
        for (uint32_t i = 0; i < o->len; i++)
            jn_obj_set(c, t, o->pairs[i].key, o->pairs[i].klen, o->pairs[i].val);
    }
    return t;
}

static jv *eval_tuple_step(struct jn_ctx *c, const struct jn_node *step,
                           jv *input, jv *tuples, struct jn_env *env)
{
    jv *r;
    if (step->type == N_SORT) {
        if (tuples) {
            r = eval_sort(c, step, tuples, env);
        } else {
            jv *sorted = eval_sort(c, step, input, env);
            r = jn_seq_new(c);
            r->flags |= JN_TUPLES;
            jn_arr_load(c, sorted);
            for (uint32_t i = 0; sorted && i < sorted->u.arr.len; i++) {
                jv *t = tuple_with(c, NULL);
                jn_obj_set(c, t, "@", 1, sorted->u.arr.items[i]);
                if (step->index_var)
                    jn_obj_set(c, t, step->index_var, strlen(step->index_var),
                               jn_num(c, i));
                jn_arr_push(c, r, t);
            }
        }
        return apply_stages(c, step, r, env);
    }
    if (!tuples) {
        tuples = jn_seq_new(c);
        jn_arr_load(c, input);
        for (uint32_t i = 0; i < input->u.arr.len; i++) {
            jv *t = tuple_with(c, NULL);
            jn_obj_set(c, t, "@", 1, input->u.arr.items[i]);
            jn_arr_push(c, tuples, t);
        }
    }
    r = jn_seq_new(c);
    r->flags |= JN_TUPLES;
    jn_arr_load(c, tuples);
    for (uint32_t e = 0; e < tuples->u.arr.len; e++) {
        jv *tb = tuples->u.arr.items[e];
        struct jn_env *senv = frame_from_tuple(c, env, tb);
        c->skip_stages = step;
        jv *res = jn_eval(c, step, tuple_focus(c, tb), senv);
        if (!res)
            continue;
        if (!jn_is_array(res))
            res = jn_seq_of(c, res);
        jn_arr_load(c, res);
        for (uint32_t b = 0; b < res->u.arr.len; b++) {
            jv *t = tuple_with(c, tb);
            if (res->flags & JN_TUPLES) {
                struct jn_object *o = jn_obj_load(c, res->u.arr.items[b]);
                for (uint32_t i = 0; i < o->len; i++)
                    jn_obj_set(c, t, o->pairs[i].key, o->pairs[i].klen, o->pairs[i].val);
            } else {
                if (step->focus) {
                    jn_obj_set(c, t, step->focus, strlen(step->focus), res->u.arr.items[b]);
                    jn_obj_set(c, t, "@", 1, tuple_focus(c, tb));
                } else {
                    jn_obj_set(c, t, "@", 1, res->u.arr.items[b]);
                }
                if (step->index_var)
                    jn_obj_set(c, t, step->index_var, strlen(step->index_var),
                               jn_num(c, b));
                if (step->ancestor)
                    jn_obj_set(c, t, step->ancestor->label,
                               strlen(step->ancestor->label), tuple_focus(c, tb));
            }
            jn_arr_push(c, r, t);
        }
    }
    return apply_stages(c, step, r, env);
}

static jv *eval_tuple_path(struct jn_ctx *c, const struct jn_node *n,
                           jv *input, struct jn_env *env)
{
    jv *seq;
    if (jn_is_array(input) && n->items[0]->type != N_VARIABLE) {
        seq = input;
    } else {
        /* a sequence of one item, even when that item is undefined */
        seq = jn_arr_new(c, 1);
        seq->flags = JN_SEQ;
        seq->u.arr.items[0] = input;
        seq->u.arr.len = 1;
    }
    jv *res = NULL, *tuples = NULL;
    bool tup = false;
    for (int i = 0; i < n->nitems; i++) {
        const struct jn_node *step = n->items[i];
        if (step->tuple)
            tup = true;
        if (i == 0 && step->cons_array) {
            /* As in the reference, a leading array constructor is
             * evaluated whole, so its own stages do not run here. */
            if (step->tuple)
                c->skip_stages = step;
            res = jn_eval(c, step, seq, env);
        }
        else if (tup)
            tuples = eval_tuple_step(c, step, seq, tuples, env);
        else
            res = eval_step(c, step, seq, env, i == n->nitems - 1);
        if (!tup && (!res || (jn_is_array(res) && jn_arr_load(c, res)->u.arr.len == 0)))
            break;
        /* As in eval_path: a single value from a constructed first step
         * is a sequence of one for the next step (fuzzer find). */
        if (!step->focus)
            seq = res && !jn_is_array(res) ? jn_seq_of(c, res) : res;
    }
    if (tup) {
        if (n->tuple)
            return tuples;
        res = jn_seq_new(c);
        for (uint32_t i = 0; tuples && i < tuples->u.arr.len; i++)
            jn_arr_push(c, res, tuple_focus(c, tuples->u.arr.items[i]));
    }
    if (n->keep_singleton && jn_is_array(res)) {
        if ((res->flags & JN_CONS) && !(res->flags & JN_SEQ))
            res = jn_seq_of(c, res);
        res->flags |= JN_KEEP;
    }
    if (n->group)
        res = eval_group(c, n->group, tup ? tuples : res, env);
    return res;
}

static jv *eval_path(struct jn_ctx *c, const struct jn_node *n, jv *input,
                     struct jn_env *env)
{
    for (int i = 0; i < n->nitems; i++)
        if (n->items[i]->tuple)
            return eval_tuple_path(c, n, input, env);
    jv *seq;
    if (jn_is_array(input) && n->items[0]->type != N_VARIABLE) {
        seq = input;
    } else {
        /* a sequence of one item, even when that item is undefined */
        seq = jn_arr_new(c, 1);
        seq->flags = JN_SEQ;
        seq->u.arr.items[0] = input;
        seq->u.arr.len = 1;
    }
    jv *res = NULL;
    for (int i = 0; i < n->nitems; i++) {
        const struct jn_node *step = n->items[i];
        if (i == 0 && step->cons_array)
            res = jn_eval(c, step, seq, env);
        else
            res = eval_step(c, step, seq, env, i == n->nitems - 1);
        if (!res || (jn_is_array(res) && jn_arr_load(c, res)->u.arr.len == 0))
            break;
        /* A constructed first step may yield a single value (a filter on
         * it picked one item): the next step reads it as a sequence of one
         * (fuzzer find). */
        seq = jn_is_array(res) ? res : jn_seq_of(c, res);
    }
    if (n->keep_singleton && jn_is_array(res)) {
        if ((res->flags & JN_CONS) && !(res->flags & JN_SEQ))
            res = jn_seq_of(c, res);
        res->flags |= JN_KEEP;
    }
    if (n->group)
        res = eval_group(c, n->group, res, env);
    return res;
}

/* ---------------------------------------------------------------- binary */
static jv *eval_binary(struct jn_ctx *c, const struct jn_node *n, jv *input,
                       struct jn_env *env)
{
    jv *l = jn_eval(c, n->lhs, input, env);
    jv *r = jn_eval(c, n->rhs, input, env);
    switch (n->op) {
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
    case OP_MOD: {
        if (l && !is_numeric(c, l, n))
            throw_tok(c, "T2001", n, n->str, l);
        if (r && !is_numeric(c, r, n))
            throw_tok(c, "T2002", n, n->str, r);
        if (!l || !r)
            return NULL;
        double a = l->u.num, b = r->u.num, v;
        switch (n->op) {
        case OP_ADD: v = a + b; break;
        case OP_SUB: v = a - b; break;
        case OP_MUL: v = a * b; break;
        case OP_DIV: v = a / b; break;
        default: v = fmod(a, b); break;
        }
        return jn_num(c, v);
    }
    case OP_EQ:
    case OP_NE:
        if (!l || !r)
            return &jn_false;
        return jn_bool(jn_deep_equal(c, l, r) == (n->op == OP_EQ));
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: {
        bool lok = !l || l->kind == JN_STRING || l->kind == JN_NUMBER;
        bool rok = !r || r->kind == JN_STRING || r->kind == JN_NUMBER;
        if (l && l->kind == JN_NUMBER)
            is_numeric(c, l, n);
        if (r && r->kind == JN_NUMBER)
            is_numeric(c, r, n);
        if (!lok || !rok)
            throw_tok(c, "T2010", n, n->str, !lok ? l : r);
        if (!l || !r)
            return NULL;
        if (l->kind != r->kind) {
            c->err.value2 = r;
            throw_tok(c, "T2009", n, n->str, l);
        }
        int cmp;
        if (l->kind == JN_NUMBER) {
            cmp = l->u.num < r->u.num ? -1 : l->u.num > r->u.num ? 1 : 0;
            if (isnan(l->u.num) || isnan(r->u.num))
                return &jn_false;
        } else {
            size_t m = l->u.str.len < r->u.str.len ? l->u.str.len : r->u.str.len;
            cmp = memcmp(l->u.str.ptr, r->u.str.ptr, m);
            if (cmp == 0)
                cmp = l->u.str.len < r->u.str.len ? -1 : l->u.str.len > r->u.str.len;
        }
        switch (n->op) {
        case OP_LT: return jn_bool(cmp < 0);
        case OP_LE: return jn_bool(cmp <= 0);
        case OP_GT: return jn_bool(cmp > 0);
        default: return jn_bool(cmp >= 0);
        }
    }
    case OP_CONCAT: {
        jv *parts[2] = {l, r};
        size_t lens[2] = {0, 0};
        for (int i = 0; i < 2; i++) {
            if (!parts[i])
                continue;
            if (parts[i]->kind == JN_NUMBER && !isfinite(parts[i]->u.num))
                throw_tok(c, "D3001", n, n->str, parts[i]);
            parts[i] = jn_fn_string_of(c, parts[i], false);
            lens[i] = parts[i]->u.str.len;
        }
        char *buf = jn_alloc(c, lens[0] + lens[1] + 1);
        if (lens[0])
            memcpy(buf, parts[0]->u.str.ptr, lens[0]);
        if (lens[1])
            memcpy(buf + lens[0], parts[1]->u.str.ptr, lens[1]);
        buf[lens[0] + lens[1]] = 0;
        return jn_str_ref(c, buf, lens[0] + lens[1]);
    }
    case OP_RANGE: {
        if (l && (l->kind != JN_NUMBER || l->u.num != floor(l->u.num)))
            throw_tok(c, "T2003", n, n->str, l);
        if (r && (r->kind != JN_NUMBER || r->u.num != floor(r->u.num)))
            throw_tok(c, "T2004", n, n->str, r);
        if (!l || !r)
            return NULL;
        double a = l->u.num, b = r->u.num;
        if (a > b)
            return NULL;
        double size = b - a + 1;
        if (size > 1e7)
            throw_tok(c, "D2014", n, n->str, jn_num(c, size));
        jv *out = jn_arr_new(c, (uint32_t)size);
        for (uint32_t i = 0; i < (uint32_t)size; i++)
            out->u.arr.items[i] = jn_num(c, a + i);
        out->u.arr.len = (uint32_t)size;
        return out;
    }
    case OP_IN:
        if (!l || !r)
            return &jn_false;
        if (!jn_is_array(r))
            return jn_bool(jn_strict_equal(l, r));
        jn_arr_load(c, r);
        for (uint32_t i = 0; i < r->u.arr.len; i++)
            if (jn_strict_equal(l, r->u.arr.items[i]))
                return &jn_true;
        return &jn_false;
    }
    return NULL;
}

/* ------------------------------------------------------------- functions */
static jv *make_fn(struct jn_ctx *c, int kind)
{
    jv *v = jn_alloc(c, sizeof(*v));
    struct jn_function *f = jn_alloc(c, sizeof(*f));
    memset(f, 0, sizeof(*f));
    f->kind = (uint8_t)kind;
    v->kind = JN_FUNCTION;
    v->flags = 0;
    v->u.fn = f;
    return v;
}

jv *jn_make_native(struct jn_ctx *c, jn_native_fn fn, void *data, int arity,
                   const char *sig)
{
    jv *v = make_fn(c, FN_NATIVE);
    v->u.fn->native = fn;
    v->u.fn->data = data;
    v->u.fn->arity = arity;
    if (sig)
        v->u.fn->sig = jn_sig_parse(&c->arena, sig);
    return v;
}

int jn_fn_arity(const jv *fn)
{
    const struct jn_function *f = fn->u.fn;
    switch (f->kind) {
    case FN_LAMBDA:
        return f->node->nitems;
    case FN_PARTIAL: {
        int k = 0;
        for (int i = 0; i < f->nargs; i++)
            if (f->holes[i])
                k++;
        return k;
    }
    case FN_BUILTIN:
        return f->arity;
    case FN_HOST:
        return f->sig ? f->sig->nparams : 1;
    case FN_REGEX:
    case FN_TRANSFORM:
        return 1;
    case FN_NATIVE:
        return f->arity;
    default:
        return 1;
    }
}

jv *jn_host_call(struct jn_ctx *c, const struct jn_host_fn *h, jv **args,
                 int nargs);
jv *jn_transform_apply(struct jn_ctx *c, const struct jn_function *f, jv *obj);
jv *jn_builtin_value(int index);

static jv *apply_inner(struct jn_ctx *c, jv *proc, jv **args, int nargs,
                       jv *input, struct jn_env *env, int position,
                       const char *name)
{
    if (!jn_is_fn(proc)) {
        c->err.token = name;
        jn_throw(c, "T1006", position, NULL);
    }
    struct jn_function *f = proc->u.fn;
    if (f->sig) {
        const char *saved = c->err.token;
        if (!saved)
            c->err.token = name;
        jn_validate_args(c, f->sig, args, nargs, input, &args, &nargs, position);
        c->err.token = saved;
    }
    switch (f->kind) {
    case FN_LAMBDA: {
        struct jn_env *frame = jn_env_new(c, f->env);
        const struct jn_node *ln = f->node;
        for (int i = 0; i < ln->nitems; i++)
            jn_env_bind(c, frame, ln->items[i]->str, ln->items[i]->len,
                        i < nargs ? args[i] : NULL);
        return jn_eval(c, ln->rhs, f->input, frame);
    }
    case FN_BUILTIN: {
        const char *saved = c->err.token;
        int saved_pos = c->call_position;
        struct jn_env *saved_env = c->call_env;
        if (!saved)
            c->err.token = name ? name : f->bi->name;
        c->call_position = position;
        c->call_env = env;
        jv *r = f->bi->fn(c, args, nargs, input);
        c->err.token = saved;
        c->call_position = saved_pos;
        c->call_env = saved_env;
        return r;
    }
    case FN_PARTIAL: {
        jv **full = jn_alloc(c, (size_t)(f->nargs + 1) * sizeof(jv *));
        int k = 0;
        for (int i = 0; i < f->nargs; i++)
            full[i] = f->holes[i] ? (k < nargs ? args[k++] : NULL) : f->args[i];
        int n = f->nargs;
        /* The reference wraps a built-in in a lambda with the built-in's
         * parameters, so surplus arguments are dropped. */
        const struct jn_function *t = f->target->u.fn;
        if (t->kind == FN_BUILTIN && n > t->sig->nparams)
            n = t->sig->nparams;
        return jn_apply(c, f->target, full, n, input, NULL, position);
    }
    case FN_HOST:
        return jn_host_call(c, f->host, args, nargs);
    case FN_REGEX: {
        jv *s = nargs > 0 ? args[0] : NULL;
        if (!jn_is_str(s))
            return NULL;
        size_t ms, me;
        return jn_regex_exec(c, proc, s, 0, &ms, &me);
    }
    case FN_TRANSFORM:
        return jn_transform_apply(c, f, nargs > 0 ? args[0] : NULL);
    case FN_COMPOSE: {
        jv *mid = jn_apply(c, f->target, args, nargs, input, NULL, position);
        return jn_apply(c, f->second, &mid, 1, input, NULL, position);
    }
    case FN_NATIVE:
        return f->native(c, f->data, args, nargs);
    }
    return NULL;
}

static jv *apply_named(struct jn_ctx *c, jv *proc, jv **args, int nargs,
                       jv *input, struct jn_env *env, int position,
                       const char *name)
{
    jv *r = apply_inner(c, proc, args, nargs, input, env, position, name);
    while (jn_is_fn(r) && r->u.fn->kind == FN_LAMBDA && r->u.fn->thunk) {
        struct jn_function *t = r->u.fn;
        const struct jn_node *call = t->node->rhs;
        jv *next = jn_eval(c, call->lhs, t->input, t->env);
        jv **nargsv = jn_alloc(c, (size_t)(call->nitems + 1) * sizeof(jv *));
        for (int i = 0; i < call->nitems; i++)
            nargsv[i] = jn_eval(c, call->items[i], t->input, t->env);
        const char *nm = call->lhs->type == N_VARIABLE ? call->lhs->str : NULL;
        /* as the reference does, the callee sees the original caller's
         * context and environment */
        r = apply_inner(c, next, nargsv, call->nitems, input, env,
                        call->position, nm);
    }
    return r;
}

jv *jn_apply(struct jn_ctx *c, jv *fn, jv **args, int nargs, jv *input,
             struct jn_env *env, int position)
{
    return apply_named(c, fn, args, nargs, input, env, position, NULL);
}

static const char *proc_name(const struct jn_node *p)
{
    if (p->type == N_PATH && p->nitems > 0)
        return p->items[0]->str;
    return p->str;
}

static jv *eval_call(struct jn_ctx *c, const struct jn_node *n, jv *input,
                     struct jn_env *env, jv **context)
{
    jv *proc = jn_eval(c, n->lhs, input, env);
    if (!proc && n->lhs->type == N_PATH && n->lhs->items[0]->type == N_NAME) {
        const struct jn_node *nm = n->lhs->items[0];
        jv *dummy;
        if (jn_builtin_find(nm->str, nm->len) >= 0 ||
            env_lookup(env, nm->str, nm->len, &dummy)) {
            c->err.token = nm->str;
            jn_throw(c, "T1005", n->position, NULL);
        }
    }
    int nargs = n->nitems + (context ? 1 : 0);
    jv **args = jn_alloc(c, (size_t)(nargs + 1) * sizeof(jv *));
    int k = 0;
    if (context)
        args[k++] = *context;
    for (int i = 0; i < n->nitems; i++)
        args[k++] = jn_eval(c, n->items[i], input, env);
    return apply_named(c, proc, args, nargs, input, env, n->position,
                       proc_name(n->lhs));
}

static jv *eval_partial(struct jn_ctx *c, const struct jn_node *n, jv *input,
                        struct jn_env *env)
{
    jv *proc = jn_eval(c, n->lhs, input, env);
    if (!jn_is_fn(proc)) {
        c->err.token = proc_name(n->lhs);
        bool named = false;
        if (!proc && n->lhs->type == N_PATH && n->lhs->items[0]->type == N_NAME) {
            const struct jn_node *nm = n->lhs->items[0];
            jv *dummy;
            named = jn_builtin_find(nm->str, nm->len) >= 0 ||
                    env_lookup(env, nm->str, nm->len, &dummy);
        }
        jn_throw(c, named ? "T1007" : "T1008", n->position, NULL);
    }
    jv *pf = make_fn(c, FN_PARTIAL);
    struct jn_function *f = pf->u.fn;
    f->target = proc;
    f->nargs = n->nitems;
    f->args = jn_alloc(c, (size_t)(n->nitems + 1) * sizeof(jv *));
    f->holes = jn_alloc(c, (size_t)(n->nitems + 1) * sizeof(bool));
    for (int i = 0; i < n->nitems; i++) {
        f->holes[i] = n->items[i]->type == N_PLACEHOLDER;
        f->args[i] = f->holes[i] ? NULL : jn_eval(c, n->items[i], input, env);
    }
    return pf;
}

static jv *eval_apply(struct jn_ctx *c, const struct jn_node *n, jv *input,
                      struct jn_env *env)
{
    jv *l = jn_eval(c, n->lhs, input, env);
    if (n->rhs->type == N_CALL)
        return eval_call(c, n->rhs, input, env, &l);
    jv *f = jn_eval(c, n->rhs, input, env);
    if (!jn_is_fn(f))
        jn_throw(c, "T2006", n->position, f);
    if (jn_is_fn(l)) {
        jv *comp = make_fn(c, FN_COMPOSE);
        comp->u.fn->target = l;
        comp->u.fn->second = f;
        return comp;
    }
    return jn_apply(c, f, &l, 1, input, env, n->position);
}

static jv *eval_array(struct jn_ctx *c, const struct jn_node *n, jv *input,
                      struct jn_env *env)
{
    jv *r = jn_arr_new(c, (uint32_t)n->nitems);
    for (int i = 0; i < n->nitems; i++) {
        const struct jn_node *item = n->items[i];
        jv *v = jn_eval(c, item, input, env);
        if (!v)
            continue;
        if (item->type == N_ARRAY || !jn_is_array(v)) {
            jn_arr_push(c, r, v);
        } else {
            jn_arr_load(c, v);
            for (uint32_t k = 0; k < v->u.arr.len; k++)
                jn_arr_push(c, r, v->u.arr.items[k]);
        }
    }
    if (n->cons_array)
        r->flags |= JN_CONS;
    return r;
}

static jv *eval_variable(struct jn_ctx *c, const struct jn_node *n, jv *input,
                         struct jn_env *env)
{
    if (n->len == 0) {
        if (jn_is_array(input) && (input->flags & JN_OUTER))
            return jn_arr_load(c, input)->u.arr.items[0];
        return input;
    }
    jv *v;
    if (env_lookup(env, n->str, n->len, &v))
        return v;
    if (c->bindings && jn__binding_lookup(c, n->str, n->len, &v))
        return v;
    if (n->builtin >= 0)
        return jn_builtin_value(n->builtin);
    return NULL;
}

/* ----------------------------------------------------------------- entry */
jv *jn_eval(struct jn_ctx *c, const struct jn_node *n, jv *input,
            struct jn_env *env)
{
    jv *r = NULL;
    const struct jn_node *skip = c->skip_stages;
    c->skip_stages = NULL;
    if (++c->depth > c->max_depth) {
        c->err.message = "Stack overflow error: Check for non-terminating "
                         "recursive function.  Consider rewriting as "
                         "tail-recursive.";
        jn_throw(c, "U1001", n->position, NULL);
    }
    tick(c, n);
    switch (n->type) {
    case N_PATH:
        r = eval_path(c, n, input, env);
        break;
    case N_BINARY:
        r = eval_binary(c, n, input, env);
        break;
    case N_AND:
        r = jn_bool(jn_truthy(c, jn_eval(c, n->lhs, input, env)) &&
                    jn_truthy(c, jn_eval(c, n->rhs, input, env)));
        break;
    case N_OR:
        r = jn_bool(jn_truthy(c, jn_eval(c, n->lhs, input, env)) ||
                    jn_truthy(c, jn_eval(c, n->rhs, input, env)));
        break;
    case N_NEG:
        r = jn_eval(c, n->lhs, input, env);
        if (r) {
            if (!is_numeric(c, r, n))
                throw_tok(c, "D1002", n, "-", r);
            r = jn_num(c, -r->u.num);
        }
        break;
    case N_ARRAY:
        r = eval_array(c, n, input, env);
        break;
    case N_OBJECT:
        r = eval_group(c, n, input, env);
        break;
    case N_NAME:
        r = jn_lookup(c, input, n->str, n->len);
        break;
    case N_LITERAL:
        r = n->lit;
        break;
    case N_WILDCARD:
        r = eval_wildcard(c, input);
        break;
    case N_DESCENDANT:
        r = eval_descendants(c, input);
        break;
    case N_CONDITION:
        if (jn_truthy(c, jn_eval(c, n->cond, input, env)))
            r = jn_eval(c, n->then, input, env);
        else if (n->els)
            r = jn_eval(c, n->els, input, env);
        break;
    case N_ELVIS:
        r = jn_eval(c, n->lhs, input, env);
        if (!jn_truthy(c, r))
            r = jn_eval(c, n->rhs, input, env);
        break;
    case N_COALESCE:
        r = jn_eval(c, n->lhs, input, env);
        if (!r)
            r = jn_eval(c, n->rhs, input, env);
        break;
    case N_BLOCK: {
        struct jn_env *frame = jn_env_new(c, env);
        for (int i = 0; i < n->nitems; i++)
            r = jn_eval(c, n->items[i], input, frame);
        break;
    }
    case N_BIND:
        r = jn_eval(c, n->rhs, input, env);
        jn_env_bind(c, env, n->lhs->str, n->lhs->len, r);
        break;
    case N_REGEX:
        r = make_fn(c, FN_REGEX);
        r->u.fn->node = n;
        break;
    case N_CALL:
        r = eval_call(c, n, input, env, NULL);
        break;
    case N_PARTIAL:
        r = eval_partial(c, n, input, env);
        break;
    case N_VARIABLE:
        r = eval_variable(c, n, input, env);
        break;
    case N_LAMBDA:
        r = make_fn(c, FN_LAMBDA);
        r->u.fn->node = n;
        r->u.fn->env = env;
        r->u.fn->input = input;
        r->u.fn->thunk = n->thunk;
        r->u.fn->sig = n->sig;
        break;
    case N_APPLY:
        r = eval_apply(c, n, input, env);
        break;
    case N_TRANSFORM:
        r = make_fn(c, FN_TRANSFORM);
        r->u.fn->node = n;
        r->u.fn->env = env;
        break;
    case N_PARENT: {
        jv *v = NULL;
        env_lookup(env, n->slot->label, strlen(n->slot->label), &v);
        r = v;
        break;
    }
    default:
        jn_throw(c, "S0217", n->position, NULL);
    }
    if (n->nstages && n->type != N_PATH && n != skip)
        r = apply_stages(c, n, r, env);
    if (n->group && n->type != N_PATH)
        r = eval_group(c, n->group, r, env);
    if (r && r->kind == JN_ARRAY && (r->flags & JN_SEQ) &&
        !(r->flags & JN_TUPLES)) {
        if (n->keep_array)
            r->flags |= JN_KEEP;
        if (r->u.arr.len == 0)
            r = NULL;
        else if (r->u.arr.len == 1 && !(r->flags & JN_KEEP))
            r = r->u.arr.items[0];
    }
    c->depth--;
    return r;
}
