/*
 * Parser: a Pratt parser producing the reference's raw syntax tree, then a
 * resolution pass that builds path steps, attaches predicates, group-by
 * and sort clauses, marks tail calls and reports the S02xx errors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lexer.h"

enum { R_BIN = 100, R_UNARY };

#define PARSE_MAX_DEPTH 400

struct parser {
    struct jn_lexer lex;
    struct jn_token tok;
    struct jn_token prev;
    struct jsonata_expr *x;
    struct jsonata_error *err;
    int depth;
    int rdepth; /* of resolve(), see there */
    int ancestor_label;
    struct jn_node **ancestry; /* parent nodes by slot index */
    int nancestry, capancestry;
};

static bool tok_is(const struct jn_token *t, const char *op)
{
    return t->type == TK_OP && t->len == strlen(op) && !memcmp(t->s, op, t->len);
}

static int lbp(const struct jn_token *t)
{
    static const struct {
        const char *op;
        int bp;
    } table[] = {
        {".", 75}, {"[", 80}, {"{", 70}, {"(", 80}, {"@", 80}, {"#", 80},
        {"?", 20}, {"+", 50}, {"-", 50}, {"*", 60}, {"/", 60}, {"%", 60},
        {"=", 40}, {"<", 40}, {">", 40}, {"^", 40}, {":=", 10}, {"!=", 40},
        {"<=", 40}, {">=", 40}, {"~>", 40}, {"?:", 40}, {"??", 40},
        {"and", 30}, {"or", 25}, {"in", 40}, {"&", 50},
    };
    if (t->type != TK_OP)
        return 0;
    for (size_t i = 0; i < sizeof(table) / sizeof(*table); i++)
        if (tok_is(t, table[i].op))
            return table[i].bp;
    return 0;
}

static const char *tok_text(const struct jn_token *t, size_t *len)
{
    switch (t->type) {
    case TK_END:
        *len = 5;
        return "(end)";
    case TK_VALUE:
        *len = strlen(t->s);
        return t->s;
    case TK_NUM:
    case TK_REGEX:
        *len = t->len;
        return t->s ? t->s : "";
    default:
        *len = t->len;
        return t->s;
    }
}

static _Noreturn void perr(struct parser *p, const char *code,
                           const struct jn_token *t, const char *msg)
{
    size_t len = 0;
    const char *text = t ? tok_text(t, &len) : NULL;
    jn_syntax_error(p->x, p->err, code, t ? t->position : -1, text, len, msg);
}

static struct jn_node *node_new(struct parser *p, int type, int position)
{
    struct jn_node *n = jn_arena_alloc(&p->x->arena, sizeof(*n));
    memset(n, 0, sizeof(*n));
    n->type = (uint8_t)type;
    n->position = position;
    n->builtin = -1;
    return n;
}

/* The text the reference reports as the token of a node. */
static const char *node_text(struct parser *p, const struct jn_node *n,
                             size_t *len)
{
    char num[40];
    if (n->type == N_LITERAL) {
        switch (n->lit->kind) {
        case JN_NUMBER:
            jn_fmt_number(n->lit->u.num, num);
            *len = strlen(num);
            return jn_arena_strndup(&p->x->arena, num, *len);
        case JN_STRING:
            *len = n->lit->u.str.len;
            return n->lit->u.str.ptr;
        case JN_BOOL:
            *len = n->lit->u.b ? 4 : 5;
            return n->lit->u.b ? "true" : "false";
        default:
            *len = 4;
            return "null";
        }
    }
    *len = n->str ? n->len : 0;
    return n->str ? n->str : "";
}

/* The reference's name for a node's type, the token of S0217. */
static const char *node_type_name(const struct jn_node *n)
{
    switch (n->type) {
    case N_PATH: return "path";
    case N_BINARY: case N_AND: case N_OR: return "binary";
    case N_NEG: case N_ARRAY: case N_OBJECT: return "unary";
    case N_NAME: return "name";
    case N_LITERAL:
        return n->lit->kind == JN_STRING ? "string" :
               n->lit->kind == JN_NUMBER ? "number" : "value";
    case N_WILDCARD: return "wildcard";
    case N_DESCENDANT: return "descendant";
    case N_PARENT: return "parent";
    case N_CONDITION: case N_ELVIS: case N_COALESCE: return "condition";
    case N_BLOCK: return "block";
    case N_BIND: return "bind";
    case N_REGEX: return "regex";
    case N_CALL: return "function";
    case N_PARTIAL: return "partial";
    case N_VARIABLE: return "variable";
    case N_LAMBDA: return "lambda";
    case N_APPLY: return "apply";
    case N_TRANSFORM: return "transform";
    case N_SORT: return "sort";
    default: return "";
    }
}

static _Noreturn void err_parent(struct parser *p, const struct jn_node *n)
{
    const char *tn = node_type_name(n);
    jn_syntax_error(p->x, p->err, "S0217", n->position, tn, strlen(tn),
                    "The object representing the 'parent' cannot be derived "
                    "from this expression");
}

static jv *lit_value(struct parser *p, int kind)
{
    jv *v = jn_arena_alloc(&p->x->arena, sizeof(*v));
    memset(v, 0, sizeof(*v));
    v->kind = (uint8_t)kind;
    return v;
}

static bool known_op(const struct jn_token *t)
{
    static const char *const ops[] = {
        ".", "[", "]", "{", "}", "(", ")", ",", "@", "#", ";", ":", "?",
        "+", "-", "*", "/", "%", "|", "=", "<", ">", "^", "**", "..", ":=",
        "!=", "<=", ">=", "~>", "?:", "??", "and", "or", "in", "&"};
    for (size_t i = 0; i < sizeof(ops) / sizeof(*ops); i++)
        if (tok_is(t, ops[i]))
            return true;
    return false;
}

static bool prev_ends_operand(const struct jn_token *t)
{
    switch (t->type) {
    case TK_NAME:
    case TK_VAR:
    case TK_STR:
    case TK_NUM:
    case TK_VALUE:
    case TK_REGEX:
        return true;
    case TK_OP:
        return tok_is(t, ")") || tok_is(t, "]") || tok_is(t, "}");
    default:
        return false;
    }
}

/* Moves to the next token, first checking that the current one is id. */
static void advance(struct parser *p, const char *id)
{
    if (id && !tok_is(&p->tok, id)) {
        char msg[96];
        snprintf(msg, sizeof(msg), "Expected \"%s\"", id);
        perr(p, p->tok.type == TK_END ? "S0203" : "S0202", &p->tok, msg);
    }
    p->prev = p->tok;
    jn_lex_next(&p->lex, !prev_ends_operand(&p->prev), &p->tok);
    if (p->tok.type == TK_OP && !known_op(&p->tok))
        perr(p, "S0204", &p->tok, "Unknown operator");
}

static struct jn_node *expression(struct parser *p, int rbp);

static void push_item(struct parser *p, struct jn_node ***items, int *n,
                      int *cap, struct jn_node *item)
{
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 4;
        struct jn_node **ni = jn_arena_alloc(&p->x->arena, (size_t)nc * sizeof(*ni));
        if (*n)
            memcpy(ni, *items, (size_t)*n * sizeof(*ni));
        *items = ni;
        *cap = nc;
    }
    (*items)[(*n)++] = item;
}

/* Parses "{ k: v, ... }" after the brace into n->pairs. */
static void object_pairs(struct parser *p, struct jn_node *n)
{
    int cap = 0;
    if (!tok_is(&p->tok, "}")) {
        for (;;) {
            struct jn_node *k = expression(p, 0);
            advance(p, ":");
            struct jn_node *v = expression(p, 0);
            push_item(p, &n->pairs, &n->npairs, &cap, k);
            push_item(p, &n->pairs, &n->npairs, &cap, v);
            if (!tok_is(&p->tok, ","))
                break;
            advance(p, ",");
        }
    }
    advance(p, "}");
    n->npairs /= 2;
}

static struct jn_node *nud(struct parser *p, const struct jn_token *t)
{
    struct jn_node *n;
    int cap = 0;
    switch (t->type) {
    case TK_END:
        /* The reference parses on and reports the first error in order:
         * a missing closing token (S0203) or this operand (S0207). */
        return node_new(p, N_END, t->position);
    case TK_NUM:
        n = node_new(p, N_LITERAL, t->position);
        n->lit = lit_value(p, JN_NUMBER);
        n->lit->u.num = t->num;
        return n;
    case TK_STR:
        n = node_new(p, N_LITERAL, t->position);
        n->lit = lit_value(p, JN_STRING);
        n->lit->u.str.ptr = t->s;
        n->lit->u.str.len = t->len;
        n->str = t->s;
        n->len = t->len;
        return n;
    case TK_VALUE:
        n = node_new(p, N_LITERAL, t->position);
        n->lit = t->value;
        return n;
    case TK_REGEX: {
        n = node_new(p, N_REGEX, t->position);
        const char *ecode = NULL;
        n->re = jn_regex_compile(t->s, t->len, t->flags, &ecode);
        if (!n->re)
            perr(p, ecode ? ecode : "S0303", t, "Invalid regular expression");
        if (p->x->nregex == p->x->capregex) {
            int nc = p->x->capregex ? p->x->capregex * 2 : 4;
            pcre2_code **r = realloc(p->x->regexes, (size_t)nc * sizeof(*r));
            if (!r) {
                pcre2_code_free(n->re);
                longjmp(p->x->jmp, 2);
            }
            p->x->regexes = r;
            p->x->capregex = nc;
        }
        p->x->regexes[p->x->nregex++] = n->re;
        n->str = t->s;
        n->len = t->len;
        return n;
    }
    case TK_NAME:
        n = node_new(p, N_NAME, t->position);
        n->str = t->s;
        n->len = t->len;
        return n;
    case TK_VAR:
        n = node_new(p, N_VARIABLE, t->position);
        n->str = t->s;
        n->len = t->len;
        n->builtin = jn_builtin_find(t->s, t->len);
        return n;
    }
    /* operators in prefix position */
    if (tok_is(t, "and") || tok_is(t, "or") || tok_is(t, "in")) {
        n = node_new(p, N_NAME, t->position);
        n->str = jn_arena_strndup(&p->x->arena, t->s, t->len);
        n->len = t->len;
        return n;
    }
    if (tok_is(t, "-")) {
        n = node_new(p, R_UNARY, t->position);
        n->str = "-";
        n->lhs = expression(p, 70);
        return n;
    }
    if (tok_is(t, "*"))
        return node_new(p, N_WILDCARD, t->position);
    if (tok_is(t, "**"))
        return node_new(p, N_DESCENDANT, t->position);
    if (tok_is(t, "%"))
        return node_new(p, N_PARENT, t->position);
    if (tok_is(t, "(")) {
        n = node_new(p, N_BLOCK, t->position);
        while (!tok_is(&p->tok, ")")) {
            push_item(p, &n->items, &n->nitems, &cap, expression(p, 0));
            if (!tok_is(&p->tok, ";"))
                break;
            advance(p, ";");
        }
        advance(p, ")");
        return n;
    }
    if (tok_is(t, "[")) {
        n = node_new(p, R_UNARY, t->position);
        n->str = "[";
        if (!tok_is(&p->tok, "]")) {
            for (;;) {
                struct jn_node *item = expression(p, 0);
                if (tok_is(&p->tok, "..")) {
                    struct jn_node *r = node_new(p, R_BIN, p->tok.position);
                    r->str = "..";
                    r->lhs = item;
                    advance(p, "..");
                    r->rhs = expression(p, 0);
                    item = r;
                }
                push_item(p, &n->items, &n->nitems, &cap, item);
                if (!tok_is(&p->tok, ","))
                    break;
                advance(p, ",");
            }
        }
        advance(p, "]");
        return n;
    }
    if (tok_is(t, "{")) {
        n = node_new(p, R_UNARY, t->position);
        n->str = "{";
        object_pairs(p, n);
        return n;
    }
    if (tok_is(t, "|")) {
        n = node_new(p, N_TRANSFORM, t->position);
        n->lhs = expression(p, 0);
        advance(p, "|");
        n->rhs = expression(p, 0);
        if (tok_is(&p->tok, ",")) {
            advance(p, ",");
            n->els = expression(p, 0);
        }
        advance(p, "|");
        return n;
    }
    perr(p, "S0211", t, "The symbol cannot be used as a unary operator");
}

static void parse_signature(struct parser *p, struct jn_node *n)
{
    /* The signature runs from '<' to its matching '>' in the source. */
    size_t start = (size_t)p->tok.start;
    size_t i = start;
    int depth = 0;
    const char *s = p->lex.src;
    for (; i < p->lex.len; i++) {
        if (s[i] == '<')
            depth++;
        else if (s[i] == '>' && --depth == 0)
            break;
        else if (s[i] == '{')
            break;
    }
    if (i >= p->lex.len) {
        struct jn_token end = {.type = TK_END, .position = (int)p->lex.len};
        perr(p, "S0203", &end, "Expected \">\" before end of expression");
    }
    if (s[i] != '>') {
        struct jn_token brace = {.type = TK_OP, .s = "{", .len = 1, .position = (int)i};
        perr(p, "S0202", &brace, "Expected \">\"");
    }
    char *text = jn_arena_strndup(&p->x->arena, s + start, i + 1 - start);
    struct jn_sig *sig = jn_sig_parse(&p->x->arena, text);
    if (!sig) {
        /* distinguish the two reference errors */
        const char *code = strstr(text, "(") && strchr(strstr(text, "("), '<')
                               ? "S0402" : "S0401";
        jn_syntax_error(p->x, p->err, code, (int)start, NULL, 0,
                        "Invalid function signature");
    }
    n->sig = sig;
    p->lex.pos = i + 1;
    p->prev = p->tok;
    p->prev.type = TK_OP;
    p->prev.s = ">";
    p->prev.len = 1;
    jn_lex_next(&p->lex, true, &p->tok);
}

static struct jn_node *led(struct parser *p, const struct jn_token *t,
                           struct jn_node *left)
{
    struct jn_node *n;
    int cap = 0;
    if (tok_is(t, "(")) {
        n = node_new(p, N_CALL, t->position);
        n->str = "(";
        n->len = 1;
        n->lhs = left;
        if (!tok_is(&p->tok, ")")) {
            for (;;) {
                if (tok_is(&p->tok, "?")) {
                    n->type = N_PARTIAL;
                    push_item(p, &n->items, &n->nitems, &cap,
                              node_new(p, N_PLACEHOLDER, p->tok.position));
                    advance(p, "?");
                } else {
                    push_item(p, &n->items, &n->nitems, &cap, expression(p, 0));
                }
                if (!tok_is(&p->tok, ","))
                    break;
                advance(p, ",");
            }
        }
        advance(p, ")");
        if (left->type == N_NAME &&
            ((left->len == 8 && !memcmp(left->str, "function", 8)) ||
             (left->len == 2 && !memcmp(left->str, "\xce\xbb", 2)))) {
            for (int i = 0; i < n->nitems; i++) {
                if (n->items[i]->type != N_VARIABLE) {
                    struct jn_token bad = {.type = TK_NAME,
                                           .s = n->items[i]->str ? n->items[i]->str : "",
                                           .len = n->items[i]->len,
                                           .position = n->items[i]->position};
                    perr(p, "S0208", &bad, "Parameter must be a variable");
                }
            }
            n->type = N_LAMBDA;
            if (tok_is(&p->tok, "<"))
                parse_signature(p, n);
            advance(p, "{");
            n->rhs = expression(p, 0);
            advance(p, "}");
        }
        return n;
    }
    if (tok_is(t, "[")) {
        if (tok_is(&p->tok, "]")) {
            struct jn_node *step = left;
            while (step && step->type == R_BIN && !strcmp(step->str, "["))
                step = step->lhs;
            step->keep_array = true;
            advance(p, "]");
            return left;
        }
        n = node_new(p, R_BIN, t->position);
        n->str = "[";
        n->lhs = left;
        n->rhs = expression(p, 0);
        advance(p, "]");
        return n;
    }
    if (tok_is(t, "^")) {
        n = node_new(p, R_BIN, t->position);
        n->str = "^";
        n->lhs = left;
        advance(p, "(");
        for (;;) {
            bool desc = false;
            if (tok_is(&p->tok, "<")) {
                advance(p, "<");
            } else if (tok_is(&p->tok, ">")) {
                desc = true;
                advance(p, ">");
            }
            struct jn_node *term = expression(p, 0);
            struct jn_node *wrap = node_new(p, N_SORT, term->position);
            wrap->lhs = term;
            wrap->descending = desc;
            push_item(p, &n->items, &n->nitems, &cap, wrap);
            if (!tok_is(&p->tok, ","))
                break;
            advance(p, ",");
        }
        advance(p, ")");
        return n;
    }
    if (tok_is(t, "{")) {
        n = node_new(p, R_BIN, t->position);
        n->str = "{";
        n->lhs = left;
        object_pairs(p, n);
        return n;
    }
    if (tok_is(t, ":=")) {
        if (left->type != N_VARIABLE) {
            struct jn_token bad = {.type = TK_NAME, .position = left->position};
            bad.s = node_text(p, left, &bad.len);
            perr(p, "S0212", &bad, "The left side of := must be a variable name");
        }
        n = node_new(p, N_BIND, t->position);
        n->lhs = left;
        n->rhs = expression(p, 9);
        return n;
    }
    if (tok_is(t, "@") || tok_is(t, "#")) {
        n = node_new(p, R_BIN, t->position);
        n->str = tok_is(t, "@") ? "@" : "#";
        n->lhs = left;
        n->rhs = expression(p, 80);
        if (n->rhs->type != N_VARIABLE)
            perr(p, "S0214", t, "The right side of @ or # must be a variable name");
        return n;
    }
    if (tok_is(t, "?")) {
        n = node_new(p, N_CONDITION, t->position);
        n->cond = left;
        n->then = expression(p, 0);
        if (tok_is(&p->tok, ":")) {
            advance(p, ":");
            n->els = expression(p, 0);
        }
        return n;
    }
    if (tok_is(t, "?:") || tok_is(t, "??")) {
        n = node_new(p, tok_is(t, "?:") ? N_ELVIS : N_COALESCE, t->position);
        n->lhs = left;
        n->rhs = expression(p, 0);
        return n;
    }
    int bp = lbp(t);
    if (bp == 0)
        perr(p, "S0201", t, "Syntax error");
    n = node_new(p, R_BIN, t->position);
    n->str = jn_arena_strndup(&p->x->arena, t->s, t->len);
    n->lhs = left;
    n->rhs = expression(p, bp);
    return n;
}

static struct jn_node *expression(struct parser *p, int rbp)
{
    if (++p->depth > PARSE_MAX_DEPTH)
        jn_syntax_error(p->x, p->err, "U1001", p->tok.position, NULL, 0,
                        "Expression nested too deeply");
    struct jn_token t = p->tok;
    advance(p, NULL);
    struct jn_node *left = nud(p, &t);
    while (rbp < lbp(&p->tok)) {
        t = p->tok;
        advance(p, NULL);
        left = led(p, &t, left);
    }
    p->depth--;
    return left;
}

/* ------------------------------------------------------------- resolution */
static struct jn_node *resolve(struct parser *p, struct jn_node *raw);

static void add_stage(struct parser *p, struct jn_node *n, struct jn_stage st)
{
    struct jn_stage *s = jn_arena_alloc(&p->x->arena,
                                        (size_t)(n->nstages + 1) * sizeof(*s));
    if (n->nstages)
        memcpy(s, n->stages, (size_t)n->nstages * sizeof(*s));
    s[n->nstages++] = st;
    n->stages = s;
}

static struct jn_node *path_of(struct parser *p, struct jn_node *step)
{
    struct jn_node *path = node_new(p, N_PATH, step->position);
    int cap = 0;
    push_item(p, &path->items, &path->nitems, &cap, step);
    return path;
}

static void path_append(struct parser *p, struct jn_node *path,
                        struct jn_node *step)
{
    struct jn_node **items = jn_arena_alloc(&p->x->arena,
                                            (size_t)(path->nitems + 1) * sizeof(*items));
    memcpy(items, path->items, (size_t)path->nitems * sizeof(*items));
    items[path->nitems++] = step;
    path->items = items;
}

static struct jn_node *tail_call_optimize(struct parser *p, struct jn_node *n)
{
    if (n->type == N_CALL && n->nstages == 0 && !n->group) {
        struct jn_node *thunk = node_new(p, N_LAMBDA, n->position);
        thunk->thunk = true;
        thunk->rhs = n;
        return thunk;
    }
    if (n->type == N_CONDITION) {
        n->then = tail_call_optimize(p, n->then);
        if (n->els)
            n->els = tail_call_optimize(p, n->els);
    } else if (n->type == N_BLOCK && n->nitems > 0) {
        n->items[n->nitems - 1] = tail_call_optimize(p, n->items[n->nitems - 1]);
    }
    return n;
}

/* ------------------------------------------------- parent operator (%)
 * Each '%' gets a slot; resolution walks back along the enclosing path's
 * steps to find the step whose context is the parent, and marks that step
 * to bind the slot's label in its tuples. */
static void seeking_add(struct parser *p, struct jn_node *n, struct jn_slot *slot)
{
    struct jn_slot **s = jn_arena_alloc(&p->x->arena,
                                        (size_t)(n->nseeking + 1) * sizeof(*s));
    if (n->nseeking)
        memcpy(s, n->seeking, (size_t)n->nseeking * sizeof(*s));
    s[n->nseeking++] = slot;
    n->seeking = s;
}

static void push_ancestry(struct parser *p, struct jn_node *result,
                          struct jn_node *value)
{
    for (int i = 0; i < value->nseeking; i++)
        seeking_add(p, result, value->seeking[i]);
    if (value->type == N_PARENT)
        seeking_add(p, result, value->slot);
}

static void seek_parent(struct parser *p, struct jn_node *node,
                        struct jn_slot *slot)
{
    switch (node->type) {
    case N_NAME:
    case N_WILDCARD:
        if (--slot->level == 0) {
            if (node->ancestor)
                p->ancestry[slot->index]->slot->label = node->ancestor->label;
            node->ancestor = slot;
            node->tuple = true;
        }
        break;
    case N_PARENT:
        slot->level++;
        break;
    case N_BLOCK:
        if (node->nitems > 0) {
            node->tuple = true;
            seek_parent(p, node->items[node->nitems - 1], slot);
        }
        break;
    case N_PATH: {
        node->tuple = true;
        int index = node->nitems - 1;
        seek_parent(p, node->items[index--], slot);
        while (slot->level > 0 && index >= 0)
            seek_parent(p, node->items[index--], slot);
        break;
    }
    default:
        err_parent(p, node);
    }
}

static void resolve_ancestry(struct parser *p, struct jn_node *path)
{
    struct jn_node *last = path->items[path->nitems - 1];
    int nslots = last->nseeking + (last->type == N_PARENT ? 1 : 0);
    struct jn_slot **slots = jn_arena_alloc(&p->x->arena,
                                            (size_t)(nslots + 1) * sizeof(*slots));
    for (int i = 0; i < last->nseeking; i++)
        slots[i] = last->seeking[i];
    if (last->type == N_PARENT)
        slots[last->nseeking] = last->slot;
    for (int is = 0; is < nslots; is++) {
        struct jn_slot *slot = slots[is];
        int index = path->nitems - 2;
        while (slot->level > 0) {
            if (index < 0) {
                seeking_add(p, path, slot);
                break;
            }
            struct jn_node *step = path->items[index--];
            while (index >= 0 && step->focus && path->items[index]->focus)
                step = path->items[index--];
            seek_parent(p, step, slot);
        }
    }
}

static const struct {
    const char *op;
    int type;
    int binop;
} binops[] = {
    {"+", N_BINARY, OP_ADD}, {"-", N_BINARY, OP_SUB}, {"*", N_BINARY, OP_MUL},
    {"/", N_BINARY, OP_DIV}, {"%", N_BINARY, OP_MOD}, {"=", N_BINARY, OP_EQ},
    {"!=", N_BINARY, OP_NE}, {"<", N_BINARY, OP_LT}, {"<=", N_BINARY, OP_LE},
    {">", N_BINARY, OP_GT}, {">=", N_BINARY, OP_GE}, {"&", N_BINARY, OP_CONCAT},
    {"..", N_BINARY, OP_RANGE}, {"in", N_BINARY, OP_IN}, {"and", N_AND, 0},
    {"or", N_OR, 0},
};

static struct jn_node *resolve_binary(struct parser *p, struct jn_node *raw)
{
    const char *op = raw->str;
    struct jn_node *r;
    if (!strcmp(op, ".")) {
        struct jn_node *l = resolve(p, raw->lhs);
        struct jn_node *path = l->type == N_PATH ? l : path_of(p, l);
        if (l->type == N_PARENT)
            seeking_add(p, path, l->slot);
        struct jn_node *rest = resolve(p, raw->rhs);
        if (rest->type == N_PATH) {
            for (int i = 0; i < rest->nitems; i++)
                path_append(p, path, rest->items[i]);
        } else {
            path_append(p, path, rest);
        }
        for (int i = 0; i < path->nitems; i++) {
            struct jn_node *s = path->items[i];
            if (s->type == N_LITERAL) {
                if (s->lit->kind != JN_STRING) {
                    struct jn_token bad = {.type = TK_NAME, .s = "", .len = 0,
                                           .position = s->position};
                    char num[40];
                    if (s->lit->kind == JN_NUMBER) {
                        jn_fmt_number(s->lit->u.num, num);
                        bad.s = jn_arena_strndup(&p->x->arena, num, strlen(num));
                        bad.len = strlen(num);
                    }
                    perr(p, "S0213", &bad,
                         "The literal value cannot be used as a step within "
                         "a path expression");
                }
                s->type = N_NAME;
                s->str = s->lit->u.str.ptr;
                s->len = s->lit->u.str.len;
            }
            if (s->keep_array)
                path->keep_singleton = true;
        }
        if (path->items[0]->type == N_ARRAY)
            path->items[0]->cons_array = true;
        if (path->items[path->nitems - 1]->type == N_ARRAY)
            path->items[path->nitems - 1]->cons_array = true;
        resolve_ancestry(p, path);
        return path;
    }
    if (!strcmp(op, "[")) {
        r = resolve(p, raw->lhs);
        struct jn_node *step = r;
        if (r->type == N_PATH)
            step = r->items[r->nitems - 1];
        if (step->group)
            perr(p, "S0209", NULL,
                 "A predicate cannot follow a grouping expression in a step");
        struct jn_stage st = {.expr = resolve(p, raw->rhs),
                              .position = raw->position};
        struct jn_node *pred = st.expr;
        if (pred->nseeking) {
            for (int i = 0; i < pred->nseeking; i++) {
                if (pred->seeking[i]->level == 1)
                    seek_parent(p, step, pred->seeking[i]);
                else
                    pred->seeking[i]->level--;
            }
            push_ancestry(p, step, pred);
        }
        add_stage(p, step, st);
        return r;
    }
    if (!strcmp(op, "{")) {
        r = resolve(p, raw->lhs);
        if (r->group)
            perr(p, "S0210", NULL,
                 "Each step can only have one grouping expression");
        struct jn_node *g = node_new(p, N_OBJECT, raw->position);
        g->npairs = raw->npairs;
        g->pairs = jn_arena_alloc(&p->x->arena,
                                  (size_t)(2 * raw->npairs + 1) * sizeof(*g->pairs));
        for (int i = 0; i < 2 * raw->npairs; i++)
            g->pairs[i] = resolve(p, raw->pairs[i]);
        r->group = g;
        return r;
    }
    if (!strcmp(op, "^")) {
        r = resolve(p, raw->lhs);
        if (r->type != N_PATH)
            r = path_of(p, r);
        struct jn_node *sort = node_new(p, N_SORT, raw->position);
        sort->items = raw->items;
        sort->nitems = raw->nitems;
        for (int i = 0; i < sort->nitems; i++) {
            sort->items[i]->lhs = resolve(p, sort->items[i]->lhs);
            push_ancestry(p, sort, sort->items[i]->lhs);
        }
        path_append(p, r, sort);
        resolve_ancestry(p, r);
        return r;
    }
    if (!strcmp(op, "@") || !strcmp(op, "#")) {
        r = resolve(p, raw->lhs);
        struct jn_node *step = r;
        if (op[0] == '@') {
            if (r->type == N_PATH)
                step = r->items[r->nitems - 1];
            if (step->nstages)
                perr(p, "S0215", NULL,
                     "A context variable binding must precede any predicates "
                     "on a step");
            if (step->type == N_SORT)
                perr(p, "S0216", NULL,
                     "A context variable binding must precede the 'order-by' "
                     "clause on a step");
            if (raw->keep_array)
                step->keep_array = true;
            step->focus = raw->rhs->str;
            step->tuple = true;
        } else {
            if (r->type == N_PATH) {
                step = r->items[r->nitems - 1];
            } else {
                r = path_of(p, r);
            }
            if (raw->keep_array)
                step->keep_array = true;
            if (step->nstages == 0) {
                step->index_var = raw->rhs->str;
            } else {
                struct jn_stage st = {.is_index = true, .var = raw->rhs->str,
                                      .position = raw->position};
                add_stage(p, step, st);
            }
            step->tuple = true;
        }
        return r;
    }
    if (!strcmp(op, "~>")) {
        r = node_new(p, N_APPLY, raw->position);
        r->lhs = resolve(p, raw->lhs);
        r->rhs = resolve(p, raw->rhs);
        r->keep_array = r->lhs->keep_array || r->rhs->keep_array;
        return r;
    }
    for (size_t i = 0; i < sizeof(binops) / sizeof(*binops); i++) {
        if (!strcmp(op, binops[i].op)) {
            r = node_new(p, binops[i].type, raw->position);
            r->op = (uint8_t)binops[i].binop;
            r->str = binops[i].op;
            r->len = strlen(binops[i].op);
            r->lhs = resolve(p, raw->lhs);
            r->rhs = resolve(p, raw->rhs);
            push_ancestry(p, r, r->lhs);
            push_ancestry(p, r, r->rhs);
            return r;
        }
    }
    perr(p, "S0201", NULL, "Syntax error");
}

static struct jn_node *resolve_node(struct parser *p, struct jn_node *raw);

/* Left-associative chains (a % b % c ...) grow the tree without deepening
 * expression(), so the depth is checked again here: every later walk over
 * the tree (and the evaluator) recurses as deep as the tree is. */
static struct jn_node *resolve(struct parser *p, struct jn_node *raw)
{
    if (++p->rdepth > PARSE_MAX_DEPTH)
        jn_syntax_error(p->x, p->err, "U1001", raw->position, NULL, 0,
                        "Expression nested too deeply");
    struct jn_node *r = resolve_node(p, raw);
    p->rdepth--;
    return r;
}

static struct jn_node *resolve_node(struct parser *p, struct jn_node *raw)
{
    struct jn_node *r = raw;
    switch (raw->type) {
    case R_BIN:
        r = resolve_binary(p, raw);
        break;
    case R_UNARY:
        if (raw->str[0] == '-') {
            struct jn_node *e = resolve(p, raw->lhs);
            if (e->type == N_LITERAL && e->lit->kind == JN_NUMBER) {
                jv *v = lit_value(p, JN_NUMBER);
                v->u.num = -e->lit->u.num;
                e->lit = v;
                r = e;
            } else {
                r = node_new(p, N_NEG, raw->position);
                r->lhs = e;
                push_ancestry(p, r, e);
            }
        } else if (raw->str[0] == '[') {
            r = node_new(p, N_ARRAY, raw->position);
            r->items = raw->items;
            r->nitems = raw->nitems;
            for (int i = 0; i < r->nitems; i++) {
                r->items[i] = resolve(p, r->items[i]);
                push_ancestry(p, r, r->items[i]);
            }
        } else {
            r = node_new(p, N_OBJECT, raw->position);
            r->pairs = raw->pairs;
            r->npairs = raw->npairs;
            for (int i = 0; i < 2 * r->npairs; i++) {
                r->pairs[i] = resolve(p, r->pairs[i]);
                push_ancestry(p, r, r->pairs[i]);
            }
        }
        break;
    case N_NAME:
        r = path_of(p, raw);
        if (raw->keep_array)
            r->keep_singleton = true;
        break;
    case N_CALL:
    case N_PARTIAL:
        raw->lhs = resolve(p, raw->lhs);
        for (int i = 0; i < raw->nitems; i++) {
            raw->items[i] = resolve(p, raw->items[i]);
            push_ancestry(p, raw, raw->items[i]);
        }
        break;
    case N_LAMBDA:
        raw->rhs = tail_call_optimize(p, resolve(p, raw->rhs));
        break;
    case N_CONDITION:
        raw->cond = resolve(p, raw->cond);
        push_ancestry(p, raw, raw->cond);
        raw->then = resolve(p, raw->then);
        push_ancestry(p, raw, raw->then);
        if (raw->els) {
            raw->els = resolve(p, raw->els);
            push_ancestry(p, raw, raw->els);
        }
        break;
    case N_ELVIS:
    case N_COALESCE:
        raw->lhs = resolve(p, raw->lhs);
        raw->rhs = resolve(p, raw->rhs);
        push_ancestry(p, raw, raw->lhs);
        push_ancestry(p, raw, raw->rhs);
        break;
    case N_BIND:
        raw->lhs = resolve(p, raw->lhs);
        raw->rhs = resolve(p, raw->rhs);
        push_ancestry(p, raw, raw->rhs);
        break;
    case N_TRANSFORM:
        raw->lhs = resolve(p, raw->lhs);
        raw->rhs = resolve(p, raw->rhs);
        if (raw->els)
            raw->els = resolve(p, raw->els);
        break;
    case N_BLOCK:
        for (int i = 0; i < raw->nitems; i++) {
            raw->items[i] = resolve(p, raw->items[i]);
            push_ancestry(p, raw, raw->items[i]);
        }
        break;
    case N_END: {
        struct jn_token end = {.type = TK_END, .position = raw->position};
        perr(p, "S0207", &end, "Unexpected end of expression");
    }
    case N_PARENT: {
        struct jn_slot *slot = jn_arena_alloc(&p->x->arena, sizeof(*slot));
        char label[24];
        snprintf(label, sizeof(label), "!%d", p->ancestor_label++);
        slot->label = jn_arena_strndup(&p->x->arena, label, strlen(label));
        slot->level = 1;
        slot->index = p->nancestry;
        raw->slot = slot;
        if (p->nancestry == p->capancestry) {
            int nc = p->capancestry ? p->capancestry * 2 : 8;
            struct jn_node **a = jn_arena_alloc(&p->x->arena, (size_t)nc * sizeof(*a));
            if (p->nancestry)
                memcpy(a, p->ancestry, (size_t)p->nancestry * sizeof(*a));
            p->ancestry = a;
            p->capancestry = nc;
        }
        p->ancestry[p->nancestry++] = raw;
        break;
    }
    default:
        break;
    }
    if (raw->keep_array)
        r->keep_array = true;
    return r;
}

int jn__compile(const char *src, struct jsonata_expr **out,
                struct jsonata_error *err)
{
    struct jsonata_expr *x = calloc(1, sizeof(*x));
    if (!x)
        return CORE_ENOMEM;
    jn_builtins_init();
    jn_arena_init(&x->arena, &x->jmp);
    /* syntax errors unwind here with 1, allocation failures with 2 */
    int jr = setjmp(x->jmp);
    if (jr) {
        jsonata_destroy(x);
        return jr == 2 ? CORE_ENOMEM : CORE_EPARSE;
    }
    struct parser *p = jn_arena_alloc(&x->arena, sizeof(*p));
    memset(p, 0, sizeof(*p));
    p->x = x;
    p->err = err;
    p->lex.src = src;
    p->lex.len = strlen(src);
    p->lex.x = x;
    p->lex.err = err;
    jn_lex_next(&p->lex, true, &p->tok);
    if (p->tok.type == TK_OP && !known_op(&p->tok))
        perr(p, "S0204", &p->tok, "Unknown operator");
    struct jn_node *raw = expression(p, 0);
    if (p->tok.type != TK_END)
        perr(p, "S0201", &p->tok, "Syntax error");
    x->root = resolve(p, raw);
    if (x->root->type == N_PARENT || x->root->nseeking)
        err_parent(p, x->root);
    *out = x;
    return 0;
}

int jsonata_compile(const char *expr, struct jsonata_expr **out,
                    struct jsonata_error *err)
{
    if (err) {
        memset(err, 0, sizeof(*err));
        err->position = -1;
    }
    if (!expr || !out)
        return CORE_EINVAL;
    return jn__compile(expr, out, err);
}

void jsonata_destroy(struct jsonata_expr *x)
{
    if (!x)
        return;
    for (int i = 0; i < x->nregex; i++)
        pcre2_code_free(x->regexes[i]);
    free(x->regexes);
    jn_arena_fini(&x->arena);
    free(x);
}
