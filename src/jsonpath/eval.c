/*
 * The evaluator. Segments are applied depth first: each node a segment
 * selects is carried through the remaining segments before the next one
 * is looked at, which yields exactly the nodelist order of RFC 9535 §2.1.2
 * without building intermediate nodelists. Selected nodes go to a sink;
 * the sink of the top-level query appends to the caller's result, sinks of
 * queries inside filters only test, count or take the first node.
 *
 * Nothing here writes to the compiled query, so evaluations may run
 * concurrently; per-evaluation state lives on the stack and in the
 * caller's result (its scratch: the path stack and PCRE2 match data).
 */
#include <stdlib.h>
#include <string.h>

#include "jsonpath_internal.h"

struct jp_scratch {
    struct jsonpath_step *stack;
    size_t cap;
    pcre2_match_data *md;
};

struct jp_ctx {
    const json_t *root;
    struct jsonpath_result *res; /* NULL unless collecting nodes */
    bool paths;                  /* recording the path stack */
    size_t depth;                /* entries used in scratch->stack */
    struct jp_scratch *scratch;
    int rc;
};

/* Return true to go on, false to stop the traversal. */
typedef bool (*jp_sink_fn)(struct jp_ctx *c, const json_t *node, void *arg);

/* A value of RFC 9535 §2.4.1's ValueType: Nothing, a JSON value of the
 * document or query, or an integer computed by a function. */
enum jp_vkind {
    JP_V_NOTHING,
    JP_V_JSON,
    JP_V_INT,
};

struct jp_val {
    enum jp_vkind kind;
    const json_t *j;
    json_int_t i;
};

static bool eval_segments(struct jp_ctx *c, const struct jp_query *q, size_t i,
                          const json_t *node, jp_sink_fn sink, void *arg);
static bool eval_logical(struct jp_ctx *c, const struct jp_expr *e,
                         const json_t *cur);

/* ----------------------------------------------------------- path stack */

static bool path_push(struct jp_ctx *c, const char *name, size_t name_len,
                      size_t index)
{
    struct jp_scratch *s = c->scratch;

    if (c->depth == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        struct jsonpath_step *n = realloc(s->stack, ncap * sizeof *n);
        if (!n) {
            c->rc = CORE_ENOMEM;
            return false;
        }
        s->stack = n;
        s->cap = ncap;
    }
    s->stack[c->depth++] = (struct jsonpath_step){name, name_len, index};
    return true;
}

/* Carries child through segments i+1.. with its path step pushed. */
static bool visit(struct jp_ctx *c, const struct jp_query *q, size_t i,
                  const json_t *child, const char *name, size_t name_len,
                  size_t index, jp_sink_fn sink, void *arg)
{
    bool go;

    if (!c->paths)
        return eval_segments(c, q, i + 1, child, sink, arg);
    if (!path_push(c, name, name_len, index))
        return false;
    go = eval_segments(c, q, i + 1, child, sink, arg);
    c->depth--;
    return go;
}

/* ---------------------------------------------------------- selectors */

static bool select_slice(struct jp_ctx *c, const struct jp_query *q, size_t i,
                         const struct jp_selector *sel, const json_t *arr,
                         jp_sink_fn sink, void *arg)
{
    int64_t len = (int64_t)json_array_size(arr);
    int64_t step = sel->u.slice.step, start, end, lo, hi;

    if (step == 0)
        return true;
    if (step > 0) {
        start = sel->u.slice.has_start ? sel->u.slice.start : 0;
        end = sel->u.slice.has_end ? sel->u.slice.end : len;
    } else {
        start = sel->u.slice.has_start ? sel->u.slice.start : len - 1;
        end = sel->u.slice.has_end ? sel->u.slice.end : -len - 1;
    }
    if (start < 0)
        start += len;
    if (end < 0)
        end += len;
    if (step > 0) {
        lo = start < 0 ? 0 : start > len ? len : start;
        hi = end < 0 ? 0 : end > len ? len : end;
        for (int64_t k = lo; k < hi; k += step)
            if (!visit(c, q, i, json_array_get(arr, (size_t)k), NULL, 0,
                       (size_t)k, sink, arg))
                return false;
    } else {
        hi = start < -1 ? -1 : start > len - 1 ? len - 1 : start;
        lo = end < -1 ? -1 : end > len - 1 ? len - 1 : end;
        for (int64_t k = hi; k > lo; k += step)
            if (!visit(c, q, i, json_array_get(arr, (size_t)k), NULL, 0,
                       (size_t)k, sink, arg))
                return false;
    }
    return true;
}

/* Applies one selector to node, carrying each selected child onwards.
 * A filter of NULL selects every child (the wildcard). */
static bool select_children(struct jp_ctx *c, const struct jp_query *q,
                            size_t i, const struct jp_expr *filter,
                            const json_t *node, jp_sink_fn sink, void *arg)
{
    if (json_is_array(node)) {
        size_t n = json_array_size(node);
        for (size_t k = 0; k < n; k++) {
            const json_t *child = json_array_get(node, k);
            if (filter) {
                bool keep = eval_logical(c, filter, child);
                if (c->rc)
                    return false;
                if (!keep)
                    continue;
            }
            if (!visit(c, q, i, child, NULL, 0, k, sink, arg))
                return false;
        }
    } else if (json_is_object(node)) {
        void *it = json_object_iter((json_t *)node);
        for (; it; it = json_object_iter_next((json_t *)node, it)) {
            const json_t *child = json_object_iter_value(it);
            if (filter) {
                bool keep = eval_logical(c, filter, child);
                if (c->rc)
                    return false;
                if (!keep)
                    continue;
            }
            if (!visit(c, q, i, child, json_object_iter_key(it),
                       json_object_iter_key_len(it), 0, sink, arg))
                return false;
        }
    }
    return true;
}

static bool apply_selectors(struct jp_ctx *c, const struct jp_query *q,
                            size_t i, const json_t *node, jp_sink_fn sink,
                            void *arg)
{
    const struct jp_segment *seg = &q->seg[i];

    for (size_t k = 0; k < seg->nsel; k++) {
        const struct jp_selector *sel = &seg->sel[k];
        bool go = true;

        switch (sel->kind) {
        case JP_SEL_NAME:
            if (json_is_object(node)) {
                const json_t *child = json_object_getn(
                    node, sel->u.name.s, sel->u.name.len);
                if (child)
                    go = visit(c, q, i, child, sel->u.name.s, sel->u.name.len,
                               0, sink, arg);
            }
            break;
        case JP_SEL_INDEX:
            if (json_is_array(node)) {
                int64_t len = (int64_t)json_array_size(node);
                int64_t idx = sel->u.index < 0 ? sel->u.index + len
                                               : sel->u.index;
                if (idx >= 0 && idx < len)
                    go = visit(c, q, i, json_array_get(node, (size_t)idx),
                               NULL, 0, (size_t)idx, sink, arg);
            }
            break;
        case JP_SEL_SLICE:
            if (json_is_array(node))
                go = select_slice(c, q, i, sel, node, sink, arg);
            break;
        case JP_SEL_WILDCARD:
            go = select_children(c, q, i, NULL, node, sink, arg);
            break;
        case JP_SEL_FILTER:
            go = select_children(c, q, i, sel->u.filter, node, sink, arg);
            break;
        }
        if (!go)
            return false;
    }
    return true;
}

/* The descendant segment: node itself, then its descendants in document
 * order, each receiving the segment's selectors. */
static bool descend(struct jp_ctx *c, const struct jp_query *q, size_t i,
                    const json_t *node, jp_sink_fn sink, void *arg)
{
    if (!apply_selectors(c, q, i, node, sink, arg))
        return false;
    if (json_is_array(node)) {
        size_t n = json_array_size(node);
        for (size_t k = 0; k < n; k++) {
            const json_t *child = json_array_get(node, k);
            if (!json_is_array(child) && !json_is_object(child))
                continue; /* a scalar has no children to select */
            if (c->paths && !path_push(c, NULL, 0, k))
                return false;
            bool go = descend(c, q, i, child, sink, arg);
            if (c->paths)
                c->depth--;
            if (!go)
                return false;
        }
    } else if (json_is_object(node)) {
        void *it = json_object_iter((json_t *)node);
        for (; it; it = json_object_iter_next((json_t *)node, it)) {
            const json_t *child = json_object_iter_value(it);
            if (!json_is_array(child) && !json_is_object(child))
                continue;
            if (c->paths && !path_push(c, json_object_iter_key(it),
                                       json_object_iter_key_len(it), 0))
                return false;
            bool go = descend(c, q, i, child, sink, arg);
            if (c->paths)
                c->depth--;
            if (!go)
                return false;
        }
    }
    return true;
}

static bool eval_segments(struct jp_ctx *c, const struct jp_query *q, size_t i,
                          const json_t *node, jp_sink_fn sink, void *arg)
{
    if (i == q->nseg)
        return sink(c, node, arg);
    if (q->seg[i].descendant)
        return descend(c, q, i, node, sink, arg);
    return apply_selectors(c, q, i, node, sink, arg);
}

/* ------------------------------------------------------ filter queries */

/* Runs a query inside a filter, where paths are never needed. */
static void run_query(struct jp_ctx *c, const struct jp_query *q,
                      const json_t *cur, jp_sink_fn sink, void *arg)
{
    bool saved = c->paths;
    c->paths = false;
    eval_segments(c, q, 0, q->absolute ? c->root : cur, sink, arg);
    c->paths = saved;
}

static bool sink_exists(struct jp_ctx *c, const json_t *node, void *arg)
{
    *(bool *)arg = true;
    return false;
}

struct jp_first {
    const json_t *node;
    size_t count;
    size_t limit; /* stop after this many; 0 for no limit */
};

static bool sink_first(struct jp_ctx *c, const json_t *node, void *arg)
{
    struct jp_first *f = arg;
    if (f->count++ == 0)
        f->node = node;
    return f->limit == 0 || f->count < f->limit;
}

/* A singular query walks straight down, without a sink. */
static const json_t *singular_walk(const struct jp_query *q, const json_t *node)
{
    for (size_t i = 0; i < q->nseg && node; i++) {
        const struct jp_selector *sel = &q->seg[i].sel[0];
        if (sel->kind == JP_SEL_NAME) {
            node = json_is_object(node)
                       ? json_object_getn(node, sel->u.name.s, sel->u.name.len)
                       : NULL;
        } else if (json_is_array(node)) {
            int64_t len = (int64_t)json_array_size(node);
            int64_t idx = sel->u.index < 0 ? sel->u.index + len : sel->u.index;
            node = idx >= 0 && idx < len ? json_array_get(node, (size_t)idx)
                                         : NULL;
        } else {
            node = NULL;
        }
    }
    return node;
}

/* ----------------------------------------------------------- functions */

static size_t utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static struct jp_val eval_value(struct jp_ctx *c, const struct jp_expr *e,
                                const json_t *cur);

/* match() and search(): false unless both arguments are strings and the
 * pattern is a valid I-Regexp that matches. */
static bool fn_regex(struct jp_ctx *c, const struct jp_expr *e,
                     const json_t *cur)
{
    struct jp_val s = eval_value(c, e->u.fn.args[0], cur);
    struct jp_val pat = eval_value(c, e->u.fn.args[1], cur);
    pcre2_code *code;
    int rc;

    if (s.kind != JP_V_JSON || !json_is_string(s.j) || pat.kind != JP_V_JSON ||
        !json_is_string(pat.j))
        return false;
    if (e->u.fn.args[1]->kind == JP_EX_LITERAL) {
        if (!e->u.fn.re.valid)
            return false;
        code = e->u.fn.re.code;
    } else {
        rc = jsonpath__iregexp_compile(json_string_value(pat.j),
                                 json_string_length(pat.j),
                                 e->u.fn.def->fn == JP_FN_MATCH, &code);
        if (rc == CORE_ENOMEM)
            c->rc = rc;
        if (rc)
            return false;
    }
    if (!c->scratch->md) {
        c->scratch->md = pcre2_match_data_create(1, NULL);
        if (!c->scratch->md) {
            c->rc = CORE_ENOMEM;
            rc = -1;
            goto done;
        }
    }
    rc = pcre2_match(code, (PCRE2_SPTR)json_string_value(s.j),
                     json_string_length(s.j), 0, 0, c->scratch->md,
                     jsonpath__match_context());
done:
    if (code != e->u.fn.re.code)
        pcre2_code_free(code);
    return rc >= 0;
}

static struct jp_val fn_value(struct jp_ctx *c, const struct jp_expr *e,
                              const json_t *cur)
{
    const struct jp_expr *arg = e->u.fn.args[0];
    struct jp_val v = {.kind = JP_V_NOTHING};

    switch (e->u.fn.def->fn) {
    case JP_FN_LENGTH: {
        struct jp_val a = eval_value(c, arg, cur);
        if (a.kind != JP_V_JSON)
            break;
        if (json_is_string(a.j)) {
            v.i = (json_int_t)utf8_count(json_string_value(a.j),
                                         json_string_length(a.j));
        } else if (json_is_array(a.j)) {
            v.i = (json_int_t)json_array_size(a.j);
        } else if (json_is_object(a.j)) {
            v.i = (json_int_t)json_object_size(a.j);
        } else {
            break;
        }
        v.kind = JP_V_INT;
        break;
    }
    case JP_FN_COUNT: {
        struct jp_first f = {0};
        run_query(c, arg->u.query, cur, sink_first, &f);
        v.kind = JP_V_INT;
        v.i = (json_int_t)f.count;
        break;
    }
    case JP_FN_VALUE: {
        struct jp_first f = {.limit = 2};
        run_query(c, arg->u.query, cur, sink_first, &f);
        if (f.count == 1) {
            v.kind = JP_V_JSON;
            v.j = f.node;
        }
        break;
    }
    case JP_FN_MATCH:
    case JP_FN_SEARCH:
        break; /* logical; rejected as values by the parser */
    }
    return v;
}

static struct jp_val eval_value(struct jp_ctx *c, const struct jp_expr *e,
                                const json_t *cur)
{
    struct jp_val v = {.kind = JP_V_NOTHING};

    switch (e->kind) {
    case JP_EX_LITERAL:
        v.kind = JP_V_JSON;
        v.j = e->u.literal;
        break;
    case JP_EX_QUERY:
        v.j = singular_walk(e->u.query,
                            e->u.query->absolute ? c->root : cur);
        if (v.j)
            v.kind = JP_V_JSON;
        break;
    case JP_EX_FUNC:
        return fn_value(c, e, cur);
    default:
        break;
    }
    return v;
}

/* --------------------------------------------------------- comparisons */

static bool val_is_number(const struct jp_val *v)
{
    return v->kind == JP_V_INT || (v->kind == JP_V_JSON && json_is_number(v->j));
}

static bool val_is_int(const struct jp_val *v)
{
    return v->kind == JP_V_INT || (v->kind == JP_V_JSON && json_is_integer(v->j));
}

static json_int_t val_int(const struct jp_val *v)
{
    return v->kind == JP_V_INT ? v->i : json_integer_value(v->j);
}

static double val_double(const struct jp_val *v)
{
    return v->kind == JP_V_INT ? (double)v->i : json_number_value(v->j);
}

/* Numeric comparison: -1, 0 or 1. */
static int num_cmp(const struct jp_val *a, const struct jp_val *b)
{
    if (val_is_int(a) && val_is_int(b)) {
        json_int_t x = val_int(a), y = val_int(b);
        return (x > y) - (x < y);
    }
    double x = val_double(a), y = val_double(b);
    return (x > y) - (x < y);
}

/* Strings compare by code point, which for UTF-8 is byte order. */
static int str_cmp(const json_t *a, const json_t *b)
{
    size_t la = json_string_length(a), lb = json_string_length(b);
    int r = memcmp(json_string_value(a), json_string_value(b),
                   la < lb ? la : lb);
    if (r)
        return r < 0 ? -1 : 1;
    return (la > lb) - (la < lb);
}

static bool json_deep_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        struct jp_val x = {JP_V_JSON, a, 0}, y = {JP_V_JSON, b, 0};
        return num_cmp(&x, &y) == 0;
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return str_cmp(a, b) == 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!json_deep_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        void *it = json_object_iter((json_t *)a);
        for (; it; it = json_object_iter_next((json_t *)a, it)) {
            const json_t *other = json_object_getn(
                b, json_object_iter_key(it), json_object_iter_key_len(it));
            if (!other || !json_deep_equal(json_object_iter_value(it), other))
                return false;
        }
        return true;
    }
    default:
        return true; /* true, false and null equal themselves */
    }
}

static bool val_equal(const struct jp_val *a, const struct jp_val *b)
{
    if (a->kind == JP_V_NOTHING || b->kind == JP_V_NOTHING)
        return a->kind == b->kind;
    if (val_is_number(a) && val_is_number(b))
        return num_cmp(a, b) == 0;
    if (a->kind == JP_V_INT || b->kind == JP_V_INT)
        return false;
    return json_deep_equal(a->j, b->j);
}

static bool val_less(const struct jp_val *a, const struct jp_val *b)
{
    if (a->kind == JP_V_NOTHING || b->kind == JP_V_NOTHING)
        return false;
    if (val_is_number(a) && val_is_number(b))
        return num_cmp(a, b) < 0;
    if (a->kind == JP_V_JSON && b->kind == JP_V_JSON && json_is_string(a->j) &&
        json_is_string(b->j))
        return str_cmp(a->j, b->j) < 0;
    return false;
}

static bool eval_compare(struct jp_ctx *c, const struct jp_expr *e,
                         const json_t *cur)
{
    struct jp_val a = eval_value(c, e->u.cmp.l, cur);
    struct jp_val b = eval_value(c, e->u.cmp.r, cur);

    switch (e->u.cmp.op) {
    case JP_CMP_EQ: return val_equal(&a, &b);
    case JP_CMP_NE: return !val_equal(&a, &b);
    case JP_CMP_LT: return val_less(&a, &b);
    case JP_CMP_LE: return val_less(&a, &b) || val_equal(&a, &b);
    case JP_CMP_GT: return val_less(&b, &a);
    case JP_CMP_GE: return val_less(&b, &a) || val_equal(&a, &b);
    }
    return false;
}

static bool eval_logical(struct jp_ctx *c, const struct jp_expr *e,
                         const json_t *cur)
{
    switch (e->kind) {
    case JP_EX_OR:
        return eval_logical(c, e->u.bin.l, cur) ||
               eval_logical(c, e->u.bin.r, cur);
    case JP_EX_AND:
        return eval_logical(c, e->u.bin.l, cur) &&
               eval_logical(c, e->u.bin.r, cur);
    case JP_EX_NOT:
        return !eval_logical(c, e->u.operand, cur);
    case JP_EX_CMP:
        return eval_compare(c, e, cur);
    case JP_EX_QUERY: {
        if (e->u.query->singular)
            return singular_walk(e->u.query,
                                 e->u.query->absolute ? c->root : cur) != NULL;
        bool found = false;
        run_query(c, e->u.query, cur, sink_exists, &found);
        return found;
    }
    case JP_EX_FUNC:
        if (e->u.fn.def->fn == JP_FN_MATCH || e->u.fn.def->fn == JP_FN_SEARCH)
            return fn_regex(c, e, cur);
        return false;
    case JP_EX_LITERAL:
        break;
    }
    return false;
}

/* --------------------------------------------------------------- public */

static bool sink_collect(struct jp_ctx *c, const json_t *node, void *arg)
{
    struct jsonpath_result *r = c->res;
    size_t start = r->steps_len;

    if (r->len == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 16;
        struct jsonpath_node *n = realloc(r->nodes, ncap * sizeof *n);
        if (!n)
            goto nomem;
        r->nodes = n;
        r->cap = ncap;
    }
    if (c->paths && c->depth) {
        if (r->steps_len + c->depth > r->steps_cap) {
            size_t ncap = r->steps_cap ? r->steps_cap * 2 : 64;
            while (ncap < r->steps_len + c->depth)
                ncap *= 2;
            struct jsonpath_step *s = realloc(r->steps, ncap * sizeof *s);
            if (!s)
                goto nomem;
            r->steps = s;
            r->steps_cap = ncap;
        }
        memcpy(r->steps + start, c->scratch->stack,
               c->depth * sizeof *r->steps);
        r->steps_len += c->depth;
    }
    r->nodes[r->len++] = (struct jsonpath_node){
        .value = node, .path_start = start, .path_len = c->paths ? c->depth : 0};
    return true;
nomem:
    c->rc = CORE_ENOMEM;
    return false;
}

void jsonpath_result_init(struct jsonpath_result *r)
{
    memset(r, 0, sizeof *r);
}

void jsonpath_result_fini(struct jsonpath_result *r)
{
    struct jp_scratch *s;

    if (!r)
        return;
    s = r->scratch;
    if (s) {
        free(s->stack);
        pcre2_match_data_free(s->md);
        free(s);
    }
    free(r->nodes);
    free(r->steps);
    memset(r, 0, sizeof *r);
}

int jsonpath_eval(const struct jsonpath *q, const json_t *doc, unsigned flags,
                  struct jsonpath_result *out)
{
    struct jp_ctx c = {0};

    if (!q || !doc || !out)
        return CORE_EINVAL;
    out->len = 0;
    out->steps_len = 0;
    if (!out->scratch) {
        out->scratch = calloc(1, sizeof(struct jp_scratch));
        if (!out->scratch)
            return CORE_ENOMEM;
    }
    c.root = doc;
    c.res = out;
    c.paths = (flags & JSONPATH_EVAL_PATHS) != 0;
    out->paths = c.paths;
    c.scratch = out->scratch;
    eval_segments(&c, q->query, 0, doc, sink_collect, NULL);
    if (c.rc) {
        out->len = 0;
        out->steps_len = 0;
    }
    return c.rc;
}

int jsonpath_eval_first(const struct jsonpath *q, const json_t *doc,
                        const json_t **value)
{
    struct jp_scratch s = {0};
    struct jp_ctx c = {0};
    struct jp_first f = {.limit = 1};

    if (value)
        *value = NULL;
    if (!q || !doc || !value)
        return CORE_EINVAL;
    c.root = doc;
    c.scratch = &s;
    if (q->query->singular)
        f.node = singular_walk(q->query, doc);
    else
        eval_segments(&c, q->query, 0, doc, sink_first, &f);
    pcre2_match_data_free(s.md);
    free(s.stack);
    if (c.rc)
        return c.rc;
    *value = f.node;
    return 0;
}
