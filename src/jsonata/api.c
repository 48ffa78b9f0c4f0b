/*
 * The public entry points: evaluation with its context and limits, error
 * reporting with the reference's messages, host bindings, and the pieces
 * of evaluation that need them (host calls, transforms, $eval's kept
 * programs).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions.h"

/* -------------------------------------------------------------- bindings */
struct jn_host_fn {
    char *name;
    const struct jn_sig *sig;
    jsonata_host_fn_cb fn;
    void *user;
};

struct jn_host_var {
    char *name;
    size_t len;
    json_t *value;
    struct jn_host_fn *fn; /* or a function */
};

struct jsonata_bindings {
    struct jn_host_var *vars;
    size_t n, cap;
    struct jn_arena arena; /* signatures */
};

struct jsonata_bindings *jsonata_bindings_create(void)
{
    struct jsonata_bindings *b = calloc(1, sizeof(*b));
    if (b)
        jn_arena_init(&b->arena, NULL);
    return b;
}

void jsonata_bindings_destroy(struct jsonata_bindings *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->vars[i].name);
        json_decref(b->vars[i].value);
        if (b->vars[i].fn)
            free(b->vars[i].fn->name);
        free(b->vars[i].fn);
    }
    free(b->vars);
    jn_arena_fini(&b->arena);
    free(b);
}

static struct jn_host_var *binding_slot(struct jsonata_bindings *b,
                                        const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < b->n; i++) {
        if (b->vars[i].len == len && !memcmp(b->vars[i].name, name, len)) {
            json_decref(b->vars[i].value);
            b->vars[i].value = NULL;
            if (b->vars[i].fn)
                free(b->vars[i].fn->name);
            free(b->vars[i].fn);
            b->vars[i].fn = NULL;
            return &b->vars[i];
        }
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        struct jn_host_var *v = realloc(b->vars, cap * sizeof(*v));
        if (!v)
            return NULL;
        b->vars = v;
        b->cap = cap;
    }
    struct jn_host_var *v = &b->vars[b->n];
    memset(v, 0, sizeof(*v));
    v->name = strdup(name);
    if (!v->name)
        return NULL;
    v->len = len;
    b->n++;
    return v;
}

int jsonata_bindings_set(struct jsonata_bindings *b, const char *name,
                         const json_t *value)
{
    if (!b || !name || !*name || !value)
        return CORE_EINVAL;
    json_t *copy = json_deep_copy(value);
    if (!copy)
        return CORE_ENOMEM;
    struct jn_host_var *v = binding_slot(b, name);
    if (!v) {
        json_decref(copy);
        return CORE_ENOMEM;
    }
    v->value = copy;
    return 0;
}

int jsonata_bindings_set_function(struct jsonata_bindings *b,
                                  const char *name, const char *signature,
                                  jsonata_host_fn_cb fn, void *user)
{
    if (!b || !name || !*name || !fn)
        return CORE_EINVAL;
    const struct jn_sig *sig = NULL;
    if (signature) {
        jmp_buf jb;
        b->arena.oom_jmp = &jb;
        if (setjmp(jb)) {
            b->arena.oom_jmp = NULL;
            return CORE_ENOMEM;
        }
        char *text = jn_arena_strndup(&b->arena, signature, strlen(signature));
        sig = jn_sig_parse(&b->arena, text);
        b->arena.oom_jmp = NULL;
        if (!sig)
            return CORE_EINVAL;
    }
    struct jn_host_fn *h = calloc(1, sizeof(*h));
    if (!h)
        return CORE_ENOMEM;
    h->name = strdup(name);
    h->sig = sig;
    h->fn = fn;
    h->user = user;
    struct jn_host_var *v = h->name ? binding_slot(b, name) : NULL;
    if (!v) {
        free(h->name);
        free(h);
        return CORE_ENOMEM;
    }
    v->fn = h;
    return 0;
}

/* Looks a name up in the host bindings; used after the lexical frames. */
bool jn__binding_lookup(struct jn_ctx *c, const char *name, size_t len,
                        jv **out);
bool jn__binding_lookup(struct jn_ctx *c, const char *name, size_t len,
                        jv **out)
{
    const struct jsonata_bindings *b = c->bindings;
    if (!b)
        return false;
    for (size_t i = 0; i < b->n; i++) {
        const struct jn_host_var *v = &b->vars[i];
        if (v->len != len || memcmp(v->name, name, len))
            continue;
        if (v->fn) {
            jv *f = jn_alloc(c, sizeof(*f));
            struct jn_function *fn = jn_alloc(c, sizeof(*fn));
            memset(fn, 0, sizeof(*fn));
            fn->kind = FN_HOST;
            fn->host = v->fn;
            fn->sig = v->fn->sig;
            f->kind = JN_FUNCTION;
            f->flags = 0;
            f->u.fn = fn;
            *out = f;
        } else {
            *out = jn_from_json(c, v->value);
        }
        return true;
    }
    return false;
}

jv *jn_host_call(struct jn_ctx *c, const struct jn_host_fn *h, jv **args,
                 int nargs);
jv *jn_host_call(struct jn_ctx *c, const struct jn_host_fn *h, jv **args,
                 int nargs)
{
    json_t **jargs = jn_alloc(c, (size_t)(nargs + 1) * sizeof(json_t *));
    memset(jargs, 0, (size_t)(nargs + 1) * sizeof(json_t *));
    /* Conversion may unwind on allocation failure; the references made so
     * far would then leak, which is acceptable only under OOM. */
    for (int i = 0; i < nargs; i++)
        jargs[i] = jn_to_json(c, args[i]);
    json_t *res = NULL;
    struct jsonata_error herr;
    memset(&herr, 0, sizeof(herr));
    int rc = h->fn(h->user, jargs, (size_t)nargs, &res, &herr);
    for (int i = 0; i < nargs; i++)
        json_decref(jargs[i]);
    if (rc != 0) {
        json_decref(res);
        const char *msg = jn_strz(c, herr.message)->u.str.ptr;
        c->err.token = h->name;
        jn_throw_msg(c, herr.code[0] ? jn_strz(c, herr.code)->u.str.ptr : "D3137",
                     msg);
    }
    if (!res)
        return NULL;
    /* The result's memory must outlive this call: deep-convert it. */
    jv *v = jn_deep_clone(c, jn_from_json(c, res));
    json_decref(res);
    return v;
}

/* ------------------------------------------------------------- transform */
jv *jn_transform_apply(struct jn_ctx *c, const struct jn_function *f, jv *obj);
jv *jn_transform_apply(struct jn_ctx *c, const struct jn_function *f, jv *obj)
{
    if (!obj)
        return NULL;
    const struct jn_node *n = f->node;
    if (obj->kind != JN_OBJECT && obj->kind != JN_ARRAY)
        jn_throw(c, "T0410", n->position, obj);
    jv *result = jn_deep_clone(c, obj);
    jv *matches = jn_eval(c, n->lhs, result, f->env);
    if (!matches)
        return result;
    if (!jn_is_array(matches))
        matches = jn_seq_of(c, matches);
    jn_arr_load(c, matches);
    for (uint32_t i = 0; i < matches->u.arr.len; i++) {
        jv *m = matches->u.arr.items[i];
        jv *upd = jn_eval(c, n->rhs, m, f->env);
        if (upd) {
            if (upd->kind != JN_OBJECT)
                jn_throw(c, "T2011", n->rhs->position, upd);
            if (m && m->kind == JN_OBJECT) {
                struct jn_object *uo = jn_obj_load(c, upd);
                for (uint32_t k = 0; k < uo->len; k++)
                    jn_obj_set(c, m, uo->pairs[k].key, uo->pairs[k].klen,
                               uo->pairs[k].val);
            }
        }
        if (n->els) {
            jv *del = jn_eval(c, n->els, m, f->env);
            if (!del)
                continue;
            jv *val = del;
            if (!jn_is_array(del))
                del = jn_seq_of(c, del);
            jn_arr_load(c, del);
            for (uint32_t k = 0; k < del->u.arr.len; k++)
                if (!jn_is_str(del->u.arr.items[k]))
                    jn_throw(c, "T2012", n->els->position, val);
            if (m && m->kind == JN_OBJECT)
                for (uint32_t k = 0; k < del->u.arr.len; k++)
                    jn_obj_del(c, m, del->u.arr.items[k]->u.str.ptr,
                               del->u.arr.items[k]->u.str.len);
        }
    }
    return result;
}

/* ------------------------------------------------------------------ $eval */
struct kept_expr {
    struct kept_expr *next;
    struct jsonata_expr *x;
};

static struct kept_expr **kept_list(struct jn_ctx *c)
{
    return (struct kept_expr **)&c->kept;
}

void jn__ctx_keep_expr(struct jn_ctx *c, struct jsonata_expr *x);
void jn__ctx_keep_expr(struct jn_ctx *c, struct jsonata_expr *x)
{
    struct kept_expr *k = malloc(sizeof(*k));
    if (!k) {
        jsonata_destroy(x);
        jn_oom(c);
    }
    k->x = x;
    k->next = *kept_list(c);
    *kept_list(c) = k;
}

/* ----------------------------------------------------------------- errors */
static const struct {
    const char *code;
    const char *msg;
} messages[] = {
#include "messages.inc"
};

static void value_text(struct jn_ctx *c, struct core_buf *b, jv *v)
{
    if (!v) {
        core_buf_puts(b, "undefined");
        return;
    }
    if (v->kind == JN_STRING) {
        core_buf_append(b, v->u.str.ptr, v->u.str.len);
        return;
    }
    if (v->kind == JN_NUMBER) {
        char num[40];
        jn_fmt_number(v->u.num, num);
        core_buf_puts(b, num);
        return;
    }
    jn_stringify(c, b, v, 0, 0);
}

static void fill_error(struct jn_ctx *c, struct jsonata_error *err)
{
    if (!err)
        return;
    snprintf(err->code, sizeof(err->code), "%s", c->err.code);
    err->position = c->err.position;
    snprintf(err->token, sizeof(err->token), "%s",
             c->err.token ? c->err.token : "");
    if (c->err.message) {
        snprintf(err->message, sizeof(err->message), "%s", c->err.message);
        return;
    }
    const char *tmpl = NULL;
    for (size_t i = 0; i < sizeof(messages) / sizeof(*messages); i++)
        if (!strcmp(messages[i].code, c->err.code))
            tmpl = messages[i].msg;
    if (!tmpl) {
        snprintf(err->message, sizeof(err->message), "Error %s", c->err.code);
        return;
    }
    struct core_buf b;
    core_buf_init(&b);
    for (const char *p = tmpl; *p;) {
        if (p[0] == '{' && p[1] == '{') {
            bool triple = p[2] == '{';
            const char *start = p + (triple ? 3 : 2);
            const char *end = strstr(start, "}}");
            if (!end)
                break;
            size_t n = (size_t)(end - start);
            if (n == 5 && !memcmp(start, "token", 5))
                core_buf_puts(&b, c->err.token ? c->err.token : "");
            else if (n == 5 && !memcmp(start, "value", 5))
                value_text(c, &b, c->err.value);
            else if (n == 6 && !memcmp(start, "value2", 6))
                value_text(c, &b, c->err.value2);
            else if (n == 5 && !memcmp(start, "index", 5))
                core_buf_printf(&b, "%d", c->err.index);
            p = end + 2 + (triple ? 1 : 0);
            continue;
        }
        core_buf_putc(&b, *p++);
    }
    snprintf(err->message, sizeof(err->message), "%s", b.data ? b.data : "");
    core_buf_fini(&b);
}

const char *jn__error_message(struct jn_ctx *c)
{
    struct jsonata_error e;
    fill_error(c, &e);
    return jn_strz(c, e.message)->u.str.ptr;
}

/* ------------------------------------------------------------- evaluation */
int jsonata_evaluate(const struct jsonata_expr *expr, const json_t *input,
                     const struct jsonata_bindings *bindings,
                     const struct jsonata_options *opts, json_t **result,
                     struct jsonata_error *err)
{
    if (err) {
        memset(err, 0, sizeof(*err));
        err->position = -1;
    }
    if (!expr || !result)
        return CORE_EINVAL;
    *result = NULL;
    struct jn_ctx ctx;
    struct jn_ctx *volatile c = &ctx;
    memset(&ctx, 0, sizeof(ctx));
    jn_arena_init(&ctx.arena, &ctx.jmp);
    ctx.bindings = bindings;
    ctx.max_depth = opts && opts->max_depth > 0 ? opts->max_depth : JSONATA_DEFAULT_MAX_DEPTH;
    if (opts && opts->time_limit_ms > 0)
        ctx.deadline_ns = core_time_mono_ns() +
                          (uint64_t)opts->time_limit_ms * 1000000u;
    ctx.err.position = -1;
    ctx.now_ms = -1;
    ctx.call_position = -1;
    int rc = 0;
    if (setjmp(ctx.jmp)) {
        jn_bufs_release(c);
        rc = c->status ? c->status : CORE_EINVAL;
        /* reporting may itself fail (out of memory): give up quietly */
        if (setjmp(ctx.jmp)) {
            jn_bufs_release(c);
            goto done;
        }
        if (rc == CORE_EINVAL && !strcmp(c->err.code, "U1001"))
            rc = CORE_ETIMEOUT;
        if (rc == CORE_ENOMEM) {
            if (err)
                snprintf(err->message, sizeof(err->message), "out of memory");
        } else {
            fill_error(c, err);
        }
        goto done;
    }
    ctx.global = jn_env_new(c, NULL);
    jv *in = input ? jn_from_json(c, input) : NULL;
    ctx.root = in;
    jn_env_bind(c, ctx.global, "$", 1, in);
    if (jn_is_array(in)) {
        in = jn_seq_of(c, in);
        in->flags |= JN_OUTER;
    }
    jv *r = jn_eval(c, expr->root, in, ctx.global);
    *result = jn_to_json(c, r);
done:
    jn_bufs_release(c);
    for (struct kept_expr *k = *kept_list(c); k;) {
        struct kept_expr *next = k->next;
        jsonata_destroy(k->x);
        free(k);
        k = next;
    }
    jn_arena_fini(&c->arena);
    return rc;
}
