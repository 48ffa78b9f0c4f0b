/*
 * The RFC 9535 parser: query text to the tree of jsonpath_internal.h, with
 * the well-typedness rules of §2.4.3 checked as the tree is built, so that
 * a query that compiles can always be evaluated.
 *
 * The parser is recursive descent over bytes. The whole query is checked
 * to be valid UTF-8 first, so that later code may copy multi-byte
 * characters without decoding them.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonpath_internal.h"

const struct jp_fn_def jsonpath__functions[] = {
    {"length", JP_FN_LENGTH, 1, {JP_T_VALUE}, JP_T_VALUE},
    {"count", JP_FN_COUNT, 1, {JP_T_NODES}, JP_T_VALUE},
    {"match", JP_FN_MATCH, 2, {JP_T_VALUE, JP_T_VALUE}, JP_T_LOGICAL},
    {"search", JP_FN_SEARCH, 2, {JP_T_VALUE, JP_T_VALUE}, JP_T_LOGICAL},
    {"value", JP_FN_VALUE, 1, {JP_T_NODES}, JP_T_VALUE},
};
const size_t jsonpath__nfunctions = sizeof jsonpath__functions / sizeof jsonpath__functions[0];

struct parser {
    const char *s;
    size_t len;
    size_t pos;
    int depth;
    int rc; /* first failure; 0 while parsing goes well */
    struct jsonpath_error *err;
};

static void expr_free(struct jp_expr *e);

/* ------------------------------------------------------------- helpers */

__attribute__((format(printf, 3, 4))) static void
fail(struct parser *p, size_t pos, const char *fmt, ...)
{
    if (p->rc != 0)
        return;
    p->rc = CORE_EPARSE;
    if (p->err) {
        va_list ap;
        p->err->pos = pos;
        va_start(ap, fmt);
        vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
        va_end(ap);
    }
}

static void fail_nomem(struct parser *p)
{
    if (p->rc != 0)
        return;
    p->rc = CORE_ENOMEM;
    if (p->err) {
        p->err->pos = p->pos;
        snprintf(p->err->msg, sizeof p->err->msg, "out of memory");
    }
}

static int peek_at(const struct parser *p, size_t off)
{
    return p->pos + off < p->len ? (unsigned char)p->s[p->pos + off] : -1;
}

static int peek(const struct parser *p) { return peek_at(p, 0); }

static bool is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_blank(struct parser *p)
{
    while (is_blank(peek(p)))
        p->pos++;
}

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* name-first of §2.5.1.1; any byte >= 0x80 starts a non-ASCII character,
 * which is always allowed (the text is valid UTF-8, so no surrogates). */
static bool is_name_first(int c) { return is_alpha(c) || c == '_' || c >= 0x80; }

static bool is_name_char(int c) { return is_name_first(c) || is_digit(c); }

/* Length of the valid UTF-8 sequence at s (at most len bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t len)
{
    uint32_t cp;
    size_t n;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
        cp = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        cp = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static void utf8_put(struct core_buf *b, uint32_t cp)
{
    char out[4];
    size_t n;

    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    core_buf_append(b, out, n);
}

/* Grows a vector of elem-sized items so that one more fits. */
static bool grow(struct parser *p, void **v, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 2;
    void *nv = realloc(*v, ncap * elem);
    if (!nv) {
        fail_nomem(p);
        return false;
    }
    *v = nv;
    *cap = ncap;
    return true;
}

/* ------------------------------------------------------------- freeing */

static void selector_fini(struct jp_selector *s)
{
    if (s->kind == JP_SEL_NAME)
        free(s->u.name.s);
    else if (s->kind == JP_SEL_FILTER)
        expr_free(s->u.filter);
}

void jsonpath__query_free(struct jp_query *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->nseg; i++) {
        for (size_t j = 0; j < q->seg[i].nsel; j++)
            selector_fini(&q->seg[i].sel[j]);
        free(q->seg[i].sel);
    }
    free(q->seg);
    free(q);
}

static void expr_free(struct jp_expr *e)
{
    if (!e)
        return;
    switch (e->kind) {
    case JP_EX_OR:
    case JP_EX_AND:
        expr_free(e->u.bin.l);
        expr_free(e->u.bin.r);
        break;
    case JP_EX_NOT:
        expr_free(e->u.operand);
        break;
    case JP_EX_CMP:
        expr_free(e->u.cmp.l);
        expr_free(e->u.cmp.r);
        break;
    case JP_EX_QUERY:
        jsonpath__query_free(e->u.query);
        break;
    case JP_EX_LITERAL:
        json_decref(e->u.literal);
        break;
    case JP_EX_FUNC:
        for (size_t i = 0; i < e->u.fn.def->nparams; i++)
            expr_free(e->u.fn.args[i]);
        if (e->u.fn.re.code)
            pcre2_code_free(e->u.fn.re.code);
        break;
    }
    free(e);
}

static struct jp_expr *expr_new(struct parser *p, enum jp_expr_kind kind)
{
    struct jp_expr *e = calloc(1, sizeof *e);
    if (!e)
        fail_nomem(p);
    else
        e->kind = kind;
    return e;
}

/* ------------------------------------------------------ lexical pieces */

/* int of §2.3.3.1: "0" / ["-"] DIGIT1 *DIGIT, within ±(2^53-1). */
static bool parse_int(struct parser *p, int64_t *out)
{
    size_t start = p->pos;
    bool neg = false;
    int64_t v = 0;
    bool overflow = false;

    if (peek(p) == '-') {
        neg = true;
        p->pos++;
    }
    if (!is_digit(peek(p))) {
        fail(p, p->pos, "expected an integer");
        return false;
    }
    if (peek(p) == '0') {
        p->pos++;
        if (neg) {
            fail(p, start, "-0 is not a valid integer here");
            return false;
        }
        if (is_digit(peek(p))) {
            fail(p, start, "integers must not have leading zeros");
            return false;
        }
        *out = 0;
        return true;
    }
    while (is_digit(peek(p))) {
        if (!overflow) {
            v = v * 10 + (peek(p) - '0');
            if (v > JP_INT_MAX)
                overflow = true;
        }
        p->pos++;
    }
    if (overflow) {
        fail(p, start, "integer outside the range -(2^53-1)..2^53-1");
        return false;
    }
    *out = neg ? -v : v;
    return true;
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits after "\u" (already consumed). */
static bool parse_hex4(struct parser *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(peek(p));
        if (h < 0) {
            fail(p, p->pos, "\\u must be followed by four hexadecimal digits");
            return false;
        }
        v = (v << 4) | (uint32_t)h;
        p->pos++;
    }
    *out = v;
    return true;
}

/* A string literal in single or double quotes (§2.3.1.1), decoded into b. */
static bool parse_string(struct parser *p, struct core_buf *b)
{
    int quote = peek(p);
    size_t start = p->pos;

    p->pos++;
    for (;;) {
        int c = peek(p);
        if (c < 0) {
            fail(p, start, "unterminated string literal");
            return false;
        }
        if (c == quote) {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            fail(p, p->pos, "control characters must be escaped in strings");
            return false;
        }
        if (c != '\\') {
            core_buf_putc(b, (char)c);
            p->pos++;
            continue;
        }
        size_t esc = p->pos;
        p->pos++;
        c = peek(p);
        switch (c) {
        case 'b': core_buf_putc(b, '\b'); break;
        case 'f': core_buf_putc(b, '\f'); break;
        case 'n': core_buf_putc(b, '\n'); break;
        case 'r': core_buf_putc(b, '\r'); break;
        case 't': core_buf_putc(b, '\t'); break;
        case '/': core_buf_putc(b, '/'); break;
        case '\\': core_buf_putc(b, '\\'); break;
        case '\'':
        case '"':
            if (c != quote) {
                fail(p, esc, "invalid escape sequence");
                return false;
            }
            core_buf_putc(b, (char)c);
            break;
        case 'u': {
            uint32_t cp, lo;
            p->pos++;
            if (!parse_hex4(p, &cp))
                return false;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fail(p, esc, "lone low surrogate in \\u escape");
                return false;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (peek(p) != '\\' || peek_at(p, 1) != 'u') {
                    fail(p, esc, "high surrogate not followed by a low surrogate");
                    return false;
                }
                p->pos += 2;
                if (!parse_hex4(p, &lo))
                    return false;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    fail(p, esc, "high surrogate not followed by a low surrogate");
                    return false;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            utf8_put(b, cp);
            continue; /* pos already past the escape */
        }
        default:
            fail(p, esc, "invalid escape sequence");
            return false;
        }
        p->pos++;
    }
    if (b->oom) {
        fail_nomem(p);
        return false;
    }
    return true;
}

/* number of §2.3.5.1: (int / "-0") [ frac ] [ exp ]. */
static json_t *parse_number(struct parser *p)
{
    size_t start = p->pos;
    bool is_int = true;
    char text[64];
    json_t *j;

    if (peek(p) == '-')
        p->pos++;
    if (!is_digit(peek(p))) {
        fail(p, start, "invalid number");
        return NULL;
    }
    if (peek(p) == '0') {
        p->pos++;
        if (is_digit(peek(p))) {
            fail(p, start, "numbers must not have leading zeros");
            return NULL;
        }
    } else {
        while (is_digit(peek(p)))
            p->pos++;
    }
    if (peek(p) == '.') {
        p->pos++;
        if (!is_digit(peek(p))) {
            fail(p, p->pos, "expected a digit after the decimal point");
            return NULL;
        }
        while (is_digit(peek(p)))
            p->pos++;
        is_int = false;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-')
            p->pos++;
        if (!is_digit(peek(p))) {
            fail(p, p->pos, "expected a digit in the exponent");
            return NULL;
        }
        while (is_digit(peek(p)))
            p->pos++;
        is_int = false;
    }
    size_t n = p->pos - start;
    if (n >= sizeof text) {
        /* Long numbers are rare; convert from a heap copy. */
        char *big = strndup(p->s + start, n);
        if (!big) {
            fail_nomem(p);
            return NULL;
        }
        double d = strtod(big, NULL);
        free(big);
        j = isfinite(d) ? json_real(d) : NULL;
    } else {
        memcpy(text, p->s + start, n);
        text[n] = '\0';
        if (is_int) {
            errno = 0;
            long long v = strtoll(text, NULL, 10);
            j = errno == ERANGE ? json_real(strtod(text, NULL))
                                : json_integer((json_int_t)v);
        } else {
            double d = strtod(text, NULL);
            j = isfinite(d) ? json_real(d) : NULL;
        }
    }
    if (!j)
        fail(p, start, "number out of range");
    return j;
}

/* ------------------------------------------------------------- queries */

static struct jp_expr *parse_or(struct parser *p);

static bool parse_name_shorthand(struct parser *p, struct jp_selector *sel)
{
    size_t start = p->pos;
    while (is_name_char(peek(p)))
        p->pos++;
    sel->kind = JP_SEL_NAME;
    sel->u.name.len = p->pos - start;
    sel->u.name.s = strndup(p->s + start, sel->u.name.len);
    if (!sel->u.name.s) {
        fail_nomem(p);
        return false;
    }
    return true;
}

static bool parse_index_or_slice(struct parser *p, struct jp_selector *sel)
{
    int64_t v;

    sel->u.slice.has_start = false;
    sel->u.slice.has_end = false;
    sel->u.slice.step = 1;
    if (peek(p) != ':') {
        if (!parse_int(p, &v))
            return false;
        size_t save = p->pos;
        skip_blank(p);
        if (peek(p) != ':') {
            p->pos = save;
            sel->kind = JP_SEL_INDEX;
            sel->u.index = v;
            return true;
        }
        sel->u.slice.has_start = true;
        sel->u.slice.start = v;
    }
    sel->kind = JP_SEL_SLICE;
    p->pos++; /* the first ':' */
    skip_blank(p);
    if (peek(p) == '-' || is_digit(peek(p))) {
        if (!parse_int(p, &sel->u.slice.end))
            return false;
        sel->u.slice.has_end = true;
        skip_blank(p);
    }
    if (peek(p) == ':') {
        p->pos++;
        skip_blank(p);
        if (peek(p) == '-' || is_digit(peek(p))) {
            if (!parse_int(p, &sel->u.slice.step))
                return false;
        }
    }
    return true;
}

static bool parse_selector(struct parser *p, struct jp_selector *sel)
{
    int c = peek(p);

    if (c == '\'' || c == '"') {
        struct core_buf b;
        core_buf_init(&b);
        if (!parse_string(p, &b)) {
            core_buf_fini(&b);
            return false;
        }
        sel->kind = JP_SEL_NAME;
        sel->u.name.len = b.len;
        sel->u.name.s = b.len ? core_buf_steal(&b) : strdup("");
        core_buf_fini(&b);
        if (!sel->u.name.s) {
            fail_nomem(p);
            return false;
        }
        return true;
    }
    if (c == '*') {
        p->pos++;
        sel->kind = JP_SEL_WILDCARD;
        return true;
    }
    if (c == '?') {
        p->pos++;
        skip_blank(p);
        if (++p->depth > JP_MAX_NESTING) {
            fail(p, p->pos, "filters nested too deeply");
            return false;
        }
        sel->kind = JP_SEL_FILTER;
        sel->u.filter = parse_or(p);
        p->depth--;
        return sel->u.filter != NULL;
    }
    if (c == '-' || c == ':' || is_digit(c))
        return parse_index_or_slice(p, sel);
    fail(p, p->pos, "expected a selector (name, '*', index, slice or filter)");
    return false;
}

/* "[" S selector *(S "," S selector) S "]", the '[' not yet consumed. */
static bool parse_bracketed(struct parser *p, struct jp_segment *seg)
{
    size_t cap = 0;

    p->pos++;
    skip_blank(p);
    for (;;) {
        if (!grow(p, (void **)&seg->sel, seg->nsel, &cap, sizeof *seg->sel))
            return false;
        struct jp_selector *sel = &seg->sel[seg->nsel];
        memset(sel, 0, sizeof *sel);
        sel->kind = JP_SEL_WILDCARD; /* nothing to free if parsing fails */
        bool ok = parse_selector(p, sel);
        seg->nsel++;
        if (!ok)
            return false;
        skip_blank(p);
        if (peek(p) == ',') {
            p->pos++;
            skip_blank(p);
            continue;
        }
        if (peek(p) == ']') {
            p->pos++;
            return true;
        }
        fail(p, p->pos, "expected ',' or ']'");
        return false;
    }
}

/* A single selector after '.' or '..': '*' or a member name. */
static bool parse_dot_selector(struct parser *p, struct jp_segment *seg)
{
    seg->sel = calloc(1, sizeof *seg->sel);
    if (!seg->sel) {
        fail_nomem(p);
        return false;
    }
    seg->nsel = 1;
    seg->sel[0].kind = JP_SEL_WILDCARD;
    if (peek(p) == '*') {
        p->pos++;
        return true;
    }
    if (is_name_first(peek(p)))
        return parse_name_shorthand(p, &seg->sel[0]);
    fail(p, p->pos, "expected a member name or '*'");
    return false;
}

static bool query_is_singular(const struct jp_query *q)
{
    for (size_t i = 0; i < q->nseg; i++) {
        const struct jp_segment *s = &q->seg[i];
        if (s->descendant || s->nsel != 1 ||
            (s->sel[0].kind != JP_SEL_NAME && s->sel[0].kind != JP_SEL_INDEX))
            return false;
    }
    return true;
}

/* The segments after '$' or '@' (already consumed). Whitespace before a
 * segment belongs to it only if a segment follows; otherwise it is left
 * for the caller. */
static struct jp_query *parse_query(struct parser *p, bool absolute)
{
    struct jp_query *q = calloc(1, sizeof *q);
    size_t cap = 0;

    if (!q) {
        fail_nomem(p);
        return NULL;
    }
    q->absolute = absolute;
    for (;;) {
        size_t save = p->pos;
        skip_blank(p);
        int c = peek(p);
        if (c != '.' && c != '[') {
            p->pos = save;
            break;
        }
        if (!grow(p, (void **)&q->seg, q->nseg, &cap, sizeof *q->seg))
            goto fail;
        struct jp_segment *seg = &q->seg[q->nseg++];
        memset(seg, 0, sizeof *seg);
        bool ok;
        if (c == '[') {
            ok = parse_bracketed(p, seg);
        } else if (peek_at(p, 1) == '.') {
            seg->descendant = true;
            p->pos += 2;
            ok = peek(p) == '[' ? parse_bracketed(p, seg)
                                : parse_dot_selector(p, seg);
        } else {
            p->pos++;
            ok = parse_dot_selector(p, seg);
        }
        if (!ok)
            goto fail;
    }
    q->singular = query_is_singular(q);
    return q;
fail:
    jsonpath__query_free(q);
    return NULL;
}

/* ---------------------------------------------------------- expressions */

static const struct jp_fn_def *fn_lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < jsonpath__nfunctions; i++)
        if (strlen(jsonpath__functions[i].name) == len &&
            memcmp(jsonpath__functions[i].name, name, len) == 0)
            return &jsonpath__functions[i];
    return NULL;
}

static struct jp_expr *parse_operand(struct parser *p);

/* Checks an argument against its declared parameter type (§2.4.3). */
static bool check_arg(struct parser *p, const struct jp_fn_def *def, size_t i,
                      const struct jp_expr *arg, size_t pos)
{
    switch (def->params[i]) {
    case JP_T_VALUE:
        if (arg->kind == JP_EX_LITERAL ||
            (arg->kind == JP_EX_QUERY && arg->u.query->singular) ||
            (arg->kind == JP_EX_FUNC && arg->u.fn.def->result == JP_T_VALUE))
            return true;
        fail(p, pos, "argument %zu of %s() must be a value: a literal, a "
             "singular query or a function returning a value", i + 1, def->name);
        return false;
    case JP_T_NODES:
        if (arg->kind == JP_EX_QUERY ||
            (arg->kind == JP_EX_FUNC && arg->u.fn.def->result == JP_T_NODES))
            return true;
        fail(p, pos, "argument %zu of %s() must be a query", i + 1, def->name);
        return false;
    case JP_T_LOGICAL:
        if (arg->kind == JP_EX_QUERY ||
            (arg->kind == JP_EX_FUNC && arg->u.fn.def->result != JP_T_VALUE))
            return true;
        fail(p, pos, "argument %zu of %s() must be a logical expression",
             i + 1, def->name);
        return false;
    }
    return false;
}

/* name "(" S [arg *(S "," S arg)] S ")", the name already read. */
static struct jp_expr *parse_function(struct parser *p, size_t name_pos)
{
    const struct jp_fn_def *def =
        fn_lookup(p->s + name_pos, p->pos - name_pos);
    struct jp_expr *e;
    size_t nargs = 0;

    if (!def) {
        fail(p, name_pos, "unknown function '%.*s'",
             (int)(p->pos - name_pos), p->s + name_pos);
        return NULL;
    }
    if (++p->depth > JP_MAX_NESTING) {
        fail(p, name_pos, "function calls nested too deeply");
        return NULL;
    }
    e = expr_new(p, JP_EX_FUNC);
    if (!e)
        return NULL;
    e->u.fn.def = def;
    p->pos++; /* '(' */
    skip_blank(p);
    if (peek(p) != ')') {
        for (;;) {
            size_t arg_pos = p->pos;
            if (nargs == def->nparams) {
                fail(p, arg_pos, "too many arguments to %s()", def->name);
                goto fail;
            }
            struct jp_expr *arg = parse_operand(p);
            if (!arg)
                goto fail;
            e->u.fn.args[nargs++] = arg;
            if (!check_arg(p, def, nargs - 1, arg, arg_pos))
                goto fail;
            skip_blank(p);
            if (peek(p) == ',') {
                p->pos++;
                skip_blank(p);
                continue;
            }
            break;
        }
    }
    if (peek(p) != ')') {
        fail(p, p->pos, "expected ',' or ')' in the arguments of %s()",
             def->name);
        goto fail;
    }
    if (nargs < def->nparams) {
        fail(p, p->pos, "too few arguments to %s()", def->name);
        goto fail;
    }
    p->pos++;
    p->depth--;
    /* A literal pattern is compiled once, here. */
    if ((def->fn == JP_FN_MATCH || def->fn == JP_FN_SEARCH) &&
        e->u.fn.args[1]->kind == JP_EX_LITERAL &&
        json_is_string(e->u.fn.args[1]->u.literal)) {
        const json_t *pat = e->u.fn.args[1]->u.literal;
        int rc = jsonpath__iregexp_compile(json_string_value(pat),
                                     json_string_length(pat),
                                     def->fn == JP_FN_MATCH, &e->u.fn.re.code);
        if (rc == CORE_ENOMEM) {
            fail_nomem(p);
            expr_free(e);
            return NULL;
        }
        e->u.fn.re.valid = rc == 0;
    }
    return e;
fail:
    p->depth--;
    expr_free(e);
    return NULL;
}

/* A query, a literal or a function call. */
static struct jp_expr *parse_operand(struct parser *p)
{
    int c = peek(p);
    size_t start = p->pos;
    struct jp_expr *e;

    if (c == '@' || c == '$') {
        p->pos++;
        struct jp_query *q = parse_query(p, c == '$');
        if (!q)
            return NULL;
        e = expr_new(p, JP_EX_QUERY);
        if (!e) {
            jsonpath__query_free(q);
            return NULL;
        }
        e->u.query = q;
        return e;
    }
    if (c == '\'' || c == '"') {
        struct core_buf b;
        core_buf_init(&b);
        if (!parse_string(p, &b)) {
            core_buf_fini(&b);
            return NULL;
        }
        json_t *s = json_stringn(b.data ? b.data : "", b.len);
        core_buf_fini(&b);
        if (!s) {
            fail_nomem(p);
            return NULL;
        }
        e = expr_new(p, JP_EX_LITERAL);
        if (!e) {
            json_decref(s);
            return NULL;
        }
        e->u.literal = s;
        return e;
    }
    if (c == '-' || is_digit(c)) {
        json_t *n = parse_number(p);
        if (!n)
            return NULL;
        e = expr_new(p, JP_EX_LITERAL);
        if (!e) {
            json_decref(n);
            return NULL;
        }
        e->u.literal = n;
        return e;
    }
    if (c >= 'a' && c <= 'z') {
        while ((peek(p) >= 'a' && peek(p) <= 'z') || is_digit(peek(p)) ||
               peek(p) == '_')
            p->pos++;
        if (peek(p) == '(')
            return parse_function(p, start);
        size_t n = p->pos - start;
        json_t *lit = NULL;
        if (n == 4 && memcmp(p->s + start, "true", 4) == 0)
            lit = json_true();
        else if (n == 5 && memcmp(p->s + start, "false", 5) == 0)
            lit = json_false();
        else if (n == 4 && memcmp(p->s + start, "null", 4) == 0)
            lit = json_null();
        if (!lit) {
            fail(p, start, "unknown name '%.*s' (expected true, false, null "
                 "or a function call)", (int)n, p->s + start);
            return NULL;
        }
        e = expr_new(p, JP_EX_LITERAL);
        if (e)
            e->u.literal = lit;
        return e;
    }
    fail(p, start, "expected a query, a literal or a function call");
    return NULL;
}

static bool is_comparable(const struct jp_expr *e)
{
    return e->kind == JP_EX_LITERAL ||
           (e->kind == JP_EX_QUERY && e->u.query->singular) ||
           (e->kind == JP_EX_FUNC && e->u.fn.def->result == JP_T_VALUE);
}

static bool is_testable(const struct jp_expr *e)
{
    return e->kind == JP_EX_QUERY ||
           (e->kind == JP_EX_FUNC && e->u.fn.def->result != JP_T_VALUE);
}

static bool parse_cmp_op(struct parser *p, enum jp_cmp_op *op)
{
    int c = peek(p), d = peek_at(p, 1);

    if (d == '=' && (c == '=' || c == '!' || c == '<' || c == '>')) {
        *op = c == '=' ? JP_CMP_EQ
              : c == '!' ? JP_CMP_NE
              : c == '<' ? JP_CMP_LE
                         : JP_CMP_GE;
        p->pos += 2;
        return true;
    }
    if (c == '<' || c == '>') {
        *op = c == '<' ? JP_CMP_LT : JP_CMP_GT;
        p->pos++;
        return true;
    }
    return false;
}

static struct jp_expr *parse_paren(struct parser *p)
{
    size_t open = p->pos;
    struct jp_expr *e;

    if (++p->depth > JP_MAX_NESTING) {
        fail(p, open, "parentheses nested too deeply");
        return NULL;
    }
    p->pos++;
    skip_blank(p);
    e = parse_or(p);
    p->depth--;
    if (!e)
        return NULL;
    skip_blank(p);
    if (peek(p) != ')') {
        fail(p, p->pos, "expected ')' to close the '(' at %zu", open);
        expr_free(e);
        return NULL;
    }
    p->pos++;
    return e;
}

/* basic-expr: paren-expr / comparison-expr / test-expr. */
static struct jp_expr *parse_basic(struct parser *p)
{
    size_t start = p->pos;
    struct jp_expr *e, *r = NULL, *cmp;
    enum jp_cmp_op op;

    if (peek(p) == '!') {
        p->pos++;
        skip_blank(p);
        size_t opnd = p->pos;
        if (peek(p) == '(') {
            e = parse_paren(p);
        } else {
            e = parse_operand(p);
            if (e && !is_testable(e)) {
                fail(p, opnd, "'!' applies to a query, a logical function "
                     "or a parenthesised expression");
                expr_free(e);
                e = NULL;
            }
        }
        if (!e)
            return NULL;
        struct jp_expr *n = expr_new(p, JP_EX_NOT);
        if (!n) {
            expr_free(e);
            return NULL;
        }
        n->u.operand = e;
        return n;
    }
    if (peek(p) == '(')
        return parse_paren(p);

    e = parse_operand(p);
    if (!e)
        return NULL;
    size_t save = p->pos;
    skip_blank(p);
    if (!parse_cmp_op(p, &op)) {
        p->pos = save;
        if (!is_testable(e)) {
            fail(p, start, e->kind == JP_EX_FUNC
                               ? "the result of this function must be compared"
                               : "a literal must be compared with something");
            expr_free(e);
            return NULL;
        }
        return e;
    }
    if (!is_comparable(e)) {
        fail(p, start, e->kind == JP_EX_QUERY
                           ? "only singular queries can be compared"
                           : "the result of this function cannot be compared");
        expr_free(e);
        return NULL;
    }
    skip_blank(p);
    size_t rpos = p->pos;
    r = parse_operand(p);
    if (!r) {
        expr_free(e);
        return NULL;
    }
    if (!is_comparable(r)) {
        fail(p, rpos, r->kind == JP_EX_QUERY
                          ? "only singular queries can be compared"
                          : "the result of this function cannot be compared");
        goto fail;
    }
    cmp = expr_new(p, JP_EX_CMP);
    if (!cmp)
        goto fail;
    cmp->u.cmp.op = op;
    cmp->u.cmp.l = e;
    cmp->u.cmp.r = r;
    return cmp;
fail:
    expr_free(e);
    expr_free(r);
    return NULL;
}

/* Left-associative chain of sub-expressions joined by a two-byte operator. */
static struct jp_expr *parse_chain(struct parser *p, const char *op,
                                   enum jp_expr_kind kind,
                                   struct jp_expr *(*sub)(struct parser *))
{
    struct jp_expr *l = sub(p);

    while (l) {
        size_t save = p->pos;
        skip_blank(p);
        if (peek(p) != op[0] || peek_at(p, 1) != op[1]) {
            p->pos = save;
            break;
        }
        p->pos += 2;
        skip_blank(p);
        struct jp_expr *r = sub(p);
        if (!r) {
            expr_free(l);
            return NULL;
        }
        struct jp_expr *e = expr_new(p, kind);
        if (!e) {
            expr_free(l);
            expr_free(r);
            return NULL;
        }
        e->u.bin.l = l;
        e->u.bin.r = r;
        l = e;
    }
    return l;
}

static struct jp_expr *parse_and(struct parser *p)
{
    return parse_chain(p, "&&", JP_EX_AND, parse_basic);
}

static struct jp_expr *parse_or(struct parser *p)
{
    return parse_chain(p, "||", JP_EX_OR, parse_and);
}

/* --------------------------------------------------------------- public */

int jsonpath_compilen(const char *query, size_t len, struct jsonpath **out,
                      struct jsonpath_error *err)
{
    struct parser p = {.s = query, .len = len, .err = err};
    struct jsonpath *jp = NULL;
    struct jp_query *q = NULL;

    if (out)
        *out = NULL;
    if (err) {
        err->pos = 0;
        err->msg[0] = '\0';
    }
    if (!query || !out)
        return CORE_EINVAL;

    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq_len((const unsigned char *)query + i, len - i);
        if (n == 0) {
            fail(&p, i, "the query is not valid UTF-8");
            return p.rc;
        }
        i += n;
    }
    if (len == 0 || query[0] != '$') {
        fail(&p, 0, "a query must start with '$'");
        return p.rc;
    }
    p.pos = 1;
    q = parse_query(&p, true);
    if (!q)
        return p.rc ? p.rc : CORE_EPARSE;
    if (p.pos != len) {
        fail(&p, p.pos, is_blank(peek(&p))
                            ? "whitespace is not allowed at the end of a query"
                            : "unexpected character");
        jsonpath__query_free(q);
        return p.rc;
    }
    jp = calloc(1, sizeof *jp);
    if (!jp) {
        jsonpath__query_free(q);
        fail_nomem(&p);
        return p.rc;
    }
    jp->query = q;
    *out = jp;
    return 0;
}

int jsonpath_compile(const char *query, struct jsonpath **out,
                     struct jsonpath_error *err)
{
    return jsonpath_compilen(query, query ? strlen(query) : 0, out, err);
}

void jsonpath_destroy(struct jsonpath *q)
{
    if (!q)
        return;
    jsonpath__query_free(q->query);
    free(q);
}

bool jsonpath_is_singular(const struct jsonpath *q)
{
    return q && q->query->singular;
}
