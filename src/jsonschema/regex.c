/* ECMA-262 regular expressions on PCRE2. JSON Schema patterns follow
 * ECMA-262 with the "u" flag: \d and \w are ASCII, \s is Unicode white
 * space and line terminators, "." excludes line terminators, "$" matches
 * only at the very end, and unknown escapes are errors. The translator
 * rewrites the differences into PCRE2 syntax, which is then compiled in
 * UTF mode (without UCP, so that \w and \b stay ASCII) with the JIT. */
#include "js_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WS_CHARS                                                             \
    "\\t\\n\\x{0b}\\f\\r \\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}"        \
    "\\x{2029}\\x{202f}\\x{205f}\\x{3000}\\x{feff}"

/* ECMA-262 General_Category long names and aliases PCRE2 spells short. */
static const struct {
    const char *ecma;
    const char *pcre;
} gc_names[] = {
    {"Letter", "L"},           {"Cased_Letter", "LC"},
    {"Uppercase_Letter", "Lu"}, {"Lowercase_Letter", "Ll"},
    {"Titlecase_Letter", "Lt"}, {"Modifier_Letter", "Lm"},
    {"Other_Letter", "Lo"},     {"Mark", "M"},
    {"Combining_Mark", "M"},    {"Nonspacing_Mark", "Mn"},
    {"Spacing_Mark", "Mc"},     {"Enclosing_Mark", "Me"},
    {"Number", "N"},            {"Decimal_Number", "Nd"},
    {"digit", "Nd"},            {"Letter_Number", "Nl"},
    {"Other_Number", "No"},     {"Punctuation", "P"},
    {"punct", "P"},             {"Connector_Punctuation", "Pc"},
    {"Dash_Punctuation", "Pd"}, {"Open_Punctuation", "Ps"},
    {"Close_Punctuation", "Pe"}, {"Initial_Punctuation", "Pi"},
    {"Final_Punctuation", "Pf"}, {"Other_Punctuation", "Po"},
    {"Symbol", "S"},            {"Math_Symbol", "Sm"},
    {"Currency_Symbol", "Sc"},  {"Modifier_Symbol", "Sk"},
    {"Other_Symbol", "So"},     {"Separator", "Z"},
    {"Space_Separator", "Zs"},  {"Line_Separator", "Zl"},
    {"Paragraph_Separator", "Zp"}, {"Other", "C"},
    {"Control", "Cc"},          {"cntrl", "Cc"},
    {"Format", "Cf"},           {"Surrogate", "Cs"},
    {"Private_Use", "Co"},      {"Unassigned", "Cn"},
};

static int hexv(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_alnum_ascii(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_syntax(char c)
{
    return c && strchr("^$\\.*+?()[]{}|/", c) != NULL;
}

struct tr {
    const char *s;
    size_t i, n;
    struct core_buf out;
    char *err;
    size_t errlen;
    int ngroups;
    /* The character class being translated: where its '[' and its body
     * start in out, whether it is negated and whether it holds \S, which
     * PCRE2 (without UCP) would read as ASCII-only. */
    size_t class_open, class_body;
    bool class_neg, class_S;
};

static int tr_fail(struct tr *t, const char *msg)
{
    snprintf(t->err, t->errlen, "%s at offset %zu", msg, t->i);
    return CORE_EPARSE;
}

/* Reads n hex digits at t->i; -1 if they are not there. */
static long read_hex(struct tr *t, size_t n)
{
    if (t->i + n > t->n)
        return -1;
    long v = 0;
    for (size_t k = 0; k < n; k++) {
        int h = hexv((unsigned char)t->s[t->i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    t->i += n;
    return v;
}

/* \u escapes, t->i just after 'u'. */
static int tr_unicode(struct tr *t)
{
    long cp;
    if (t->i < t->n && t->s[t->i] == '{') {
        size_t start = ++t->i;
        cp = 0;
        while (t->i < t->n && hexv((unsigned char)t->s[t->i]) >= 0 &&
               cp <= 0x10FFFF)
            cp = cp * 16 + hexv((unsigned char)t->s[t->i++]);
        if (t->i == start || t->i >= t->n || t->s[t->i] != '}' || cp > 0x10FFFF)
            return tr_fail(t, "invalid \\u{...} escape");
        t->i++;
    } else {
        cp = read_hex(t, 4);
        if (cp < 0)
            return tr_fail(t, "invalid \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF && t->i + 6 <= t->n &&
            t->s[t->i] == '\\' && t->s[t->i + 1] == 'u') {
            size_t save = t->i;
            t->i += 2;
            long lo = read_hex(t, 4);
            if (lo >= 0xDC00 && lo <= 0xDFFF)
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else
                t->i = save;
        }
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
        core_buf_puts(&t->out, "(?!)"); /* a lone surrogate never matches */
    else
        core_buf_printf(&t->out, "\\x{%lx}", cp);
    return 0;
}

/* \p{...} and \P{...}, t->i just after 'p' or 'P'. */
static int tr_property(struct tr *t, char p)
{
    if (t->i >= t->n || t->s[t->i] != '{')
        return tr_fail(t, "\\p must be followed by {name}");
    size_t start = ++t->i;
    while (t->i < t->n && t->s[t->i] != '}')
        t->i++;
    if (t->i >= t->n)
        return tr_fail(t, "unterminated \\p{");
    char name[64];
    size_t len = t->i - start;
    t->i++;
    if (len == 0 || len >= sizeof name)
        return tr_fail(t, "invalid property name");
    memcpy(name, t->s + start, len);
    name[len] = '\0';
    for (size_t k = 0; k < len; k++)
        if (!((name[k] >= 'a' && name[k] <= 'z') ||
              (name[k] >= 'A' && name[k] <= 'Z') ||
              (name[k] >= '0' && name[k] <= '9') || name[k] == '_' ||
              name[k] == '='))
            return tr_fail(t, "invalid property name");
    const char *value = name;
    char *eq = strchr(name, '=');
    if (eq) {
        *eq = '\0';
        value = eq + 1;
        if (strcmp(name, "General_Category") == 0 || strcmp(name, "gc") == 0) {
            /* fall through to the category table */
        } else if (strcmp(name, "Script") == 0 || strcmp(name, "sc") == 0 ||
                   strcmp(name, "Script_Extensions") == 0 ||
                   strcmp(name, "scx") == 0) {
            bool ext = name[0] == 's' ? name[2] == 'x' : name[6] == '_';
            core_buf_printf(&t->out, "\\%c{%s=%s}", p, ext ? "scx" : "sc", value);
            return 0;
        } else {
            return tr_fail(t, "unknown property");
        }
    }
    for (size_t k = 0; k < sizeof gc_names / sizeof *gc_names; k++) {
        if (strcmp(gc_names[k].ecma, value) == 0) {
            value = gc_names[k].pcre;
            break;
        }
    }
    core_buf_printf(&t->out, "\\%c{%s}", p, value);
    return 0;
}

/* An escape, t->i just after the backslash. */
static int tr_escape(struct tr *t, bool in_class)
{
    if (t->i >= t->n)
        return tr_fail(t, "pattern ends with a backslash");
    char e = t->s[t->i++];
    switch (e) {
    case 'd':
        core_buf_puts(&t->out, in_class ? "0-9" : "[0-9]");
        return 0;
    case 'D':
        core_buf_puts(&t->out, in_class ? "\\D" : "[^0-9]");
        return 0;
    case 'w':
        core_buf_puts(&t->out, in_class ? "A-Za-z0-9_" : "[A-Za-z0-9_]");
        return 0;
    case 'W':
        core_buf_puts(&t->out, in_class ? "\\W" : "[^A-Za-z0-9_]");
        return 0;
    case 's':
        core_buf_puts(&t->out, in_class ? WS_CHARS : "[" WS_CHARS "]");
        return 0;
    case 'S':
        if (in_class)
            t->class_S = true; /* added when the class closes */
        else
            core_buf_puts(&t->out, "[^" WS_CHARS "]");
        return 0;
    case 'b':
        core_buf_puts(&t->out, in_class ? "\\x{08}" : "\\b");
        return 0;
    case 'B':
        if (in_class)
            return tr_fail(t, "\\B inside a class");
        core_buf_puts(&t->out, "\\B");
        return 0;
    case 'f':
    case 'n':
    case 'r':
    case 't':
        core_buf_putc(&t->out, '\\');
        core_buf_putc(&t->out, e);
        return 0;
    case 'v':
        core_buf_puts(&t->out, "\\x{0b}");
        return 0;
    case '0':
        if (t->i < t->n && t->s[t->i] >= '0' && t->s[t->i] <= '9')
            return tr_fail(t, "octal escapes are not allowed");
        core_buf_puts(&t->out, "\\x{0}");
        return 0;
    case 'c': {
        char l = t->i < t->n ? t->s[t->i] : '\0';
        if (!((l >= 'a' && l <= 'z') || (l >= 'A' && l <= 'Z')))
            return tr_fail(t, "\\c must be followed by a letter");
        t->i++;
        core_buf_printf(&t->out, "\\x{%02x}", (unsigned)(l % 32));
        return 0;
    }
    case 'x': {
        long v = read_hex(t, 2);
        if (v < 0)
            return tr_fail(t, "invalid \\x escape");
        core_buf_printf(&t->out, "\\x{%lx}", v);
        return 0;
    }
    case 'u':
        return tr_unicode(t);
    case 'p':
    case 'P':
        return tr_property(t, e);
    case 'k': {
        if (in_class || t->i >= t->n || t->s[t->i] != '<')
            return tr_fail(t, "invalid \\k escape");
        size_t start = t->i;
        while (t->i < t->n && t->s[t->i] != '>')
            t->i++;
        if (t->i >= t->n || t->i == start + 1)
            return tr_fail(t, "invalid \\k escape");
        t->i++;
        core_buf_puts(&t->out, "\\k");
        core_buf_append(&t->out, t->s + start, t->i - start);
        return 0;
    }
    default:
        break;
    }
    if (e >= '1' && e <= '9') {
        if (in_class)
            return tr_fail(t, "back-reference inside a class");
        unsigned v = (unsigned)(e - '0');
        while (t->i < t->n && t->s[t->i] >= '0' && t->s[t->i] <= '9' && v < 10000)
            v = v * 10 + (unsigned)(t->s[t->i++] - '0');
        core_buf_printf(&t->out, "\\g{%u}", v);
        return 0;
    }
    /* Syntax characters, and (as ECMA-262 annex B allows, and schemas in
     * the wild rely on) other ASCII punctuation, escape to themselves;
     * unknown letter escapes such as \a or \Z are errors. */
    if (is_syntax(e) || (e > 0x20 && e < 0x7F && !is_alnum_ascii(e))) {
        if (e != '/')
            core_buf_putc(&t->out, '\\');
        core_buf_putc(&t->out, e);
        return 0;
    }
    char msg[48];
    snprintf(msg, sizeof msg, "invalid escape \\%c", e);
    return tr_fail(t, msg);
}

/* True when t->s at i starts a quantifier {n}, {n,} or {n,m}. */
static bool quantifier_at(const struct tr *t, size_t i)
{
    if (i >= t->n || t->s[i] != '{')
        return false;
    i++;
    size_t d = i;
    while (i < t->n && t->s[i] >= '0' && t->s[i] <= '9')
        i++;
    if (i == d)
        return false;
    if (i < t->n && t->s[i] == ',') {
        i++;
        while (i < t->n && t->s[i] >= '0' && t->s[i] <= '9')
            i++;
    }
    return i < t->n && t->s[i] == '}';
}

static int tr_group(struct tr *t)
{
    /* t->i at '(' */
    t->i++;
    if (t->i >= t->n || t->s[t->i] != '?') {
        t->ngroups++;
        core_buf_putc(&t->out, '(');
        return 0;
    }
    const char *r = t->s + t->i;
    size_t rest = t->n - t->i;
    static const char *const ok[] = {"?:", "?=", "?!", "?<=", "?<!"};
    for (size_t k = 0; k < sizeof ok / sizeof *ok; k++) {
        size_t l = strlen(ok[k]);
        if (rest >= l && memcmp(r, ok[k], l) == 0) {
            core_buf_putc(&t->out, '(');
            core_buf_append(&t->out, r, l);
            t->i += l;
            return 0;
        }
    }
    if (rest >= 2 && r[1] == '<') {
        size_t k = 2;
        while (k < rest && r[k] != '>' &&
               ((r[k] >= 'a' && r[k] <= 'z') || (r[k] >= 'A' && r[k] <= 'Z') ||
                (r[k] >= '0' && r[k] <= '9') || r[k] == '_' || r[k] == '$' ||
                (unsigned char)r[k] >= 0x80))
            k++;
        if (k > 2 && k < rest && r[k] == '>') {
            t->ngroups++;
            core_buf_putc(&t->out, '(');
            core_buf_append(&t->out, r, k + 1);
            t->i += k + 1;
            return 0;
        }
    }
    return tr_fail(t, "unsupported group syntax (?");
}

/* Rewrites a class that held \S as the union (or, negated, the
 * difference) of its other members and the non-white-space set. */
static void close_class_with_S(struct tr *t)
{
    size_t n = t->out.len - t->class_body;
    char *rest = malloc(n + 1);
    if (!rest) {
        t->out.oom = true;
        return;
    }
    memcpy(rest, t->out.data + t->class_body, n);
    rest[n] = '\0';
    t->out.len = t->class_open;
    t->out.data[t->out.len] = '\0';
    if (!t->class_neg)
        core_buf_printf(&t->out, n ? "(?:[%s]|[^" WS_CHARS "])" : "[^" WS_CHARS "]",
                        rest);
    else
        core_buf_printf(&t->out, n ? "(?:(?![%s])[" WS_CHARS "])" : "[" WS_CHARS "]",
                        rest);
    free(rest);
}

int js__regex_translate(const char *src, size_t len, char **out, char *err,
                        size_t errlen)
{
    struct tr t = {.s = src, .n = len, .err = err, .errlen = errlen};
    core_buf_init(&t.out);
    int rc = 0;
    bool in_class = false;
    while (t.i < t.n && !rc) {
        char ch = t.s[t.i];
        if (in_class) {
            if (ch == '\\') {
                t.i++;
                rc = tr_escape(&t, true);
            } else if (ch == ']') {
                in_class = false;
                t.i++;
                if (t.class_S)
                    close_class_with_S(&t);
                else
                    core_buf_putc(&t.out, ']');
            } else if (ch == '[') {
                core_buf_puts(&t.out, "\\[");
                t.i++;
            } else if (ch == '\0') {
                core_buf_puts(&t.out, "\\x{0}");
                t.i++;
            } else {
                core_buf_putc(&t.out, ch);
                t.i++;
            }
            continue;
        }
        switch (ch) {
        case '\\':
            t.i++;
            rc = tr_escape(&t, false);
            break;
        case '.':
            core_buf_puts(&t.out, "[^\\n\\r\\x{2028}\\x{2029}]");
            t.i++;
            break;
        case '[':
            t.i++;
            if (t.i + 1 < t.n + 1 && t.i < t.n && t.s[t.i] == ']') {
                core_buf_puts(&t.out, "(?!)");
                t.i++;
            } else if (t.i + 1 < t.n && t.s[t.i] == '^' && t.s[t.i + 1] == ']') {
                core_buf_puts(&t.out, "[\\x{0}-\\x{10ffff}]");
                t.i += 2;
            } else {
                t.class_open = t.out.len;
                core_buf_putc(&t.out, '[');
                t.class_neg = t.i < t.n && t.s[t.i] == '^';
                if (t.class_neg) {
                    core_buf_putc(&t.out, '^');
                    t.i++;
                }
                t.class_body = t.out.len;
                t.class_S = false;
                in_class = true;
            }
            break;
        case '(':
            rc = tr_group(&t);
            break;
        case '{':
            if (!quantifier_at(&t, t.i)) {
                rc = tr_fail(&t, "lone '{'");
                break;
            }
            while (t.s[t.i] != '}')
                core_buf_putc(&t.out, t.s[t.i++]);
            core_buf_putc(&t.out, '}');
            t.i++;
            break;
        case '}':
            rc = tr_fail(&t, "lone '}'");
            break;
        case ']':
            rc = tr_fail(&t, "lone ']'");
            break;
        case '\0':
            core_buf_puts(&t.out, "\\x{0}"); /* keep the pattern a C string */
            t.i++;
            break;
        default:
            core_buf_putc(&t.out, ch);
            t.i++;
            break;
        }
    }
    if (!rc && in_class)
        rc = tr_fail(&t, "unterminated character class");
    if (!rc && t.out.oom)
        rc = CORE_ENOMEM;
    if (rc) {
        core_buf_fini(&t.out);
        return rc;
    }
    if (!t.out.data)
        core_buf_puts(&t.out, "");
    *out = core_buf_steal(&t.out);
    return *out ? 0 : CORE_ENOMEM;
}

static pcre2_code *compile_translated(const char *src, size_t len, int *code,
                                      char *err, size_t errlen)
{
    char *pat = NULL;
    int rc = js__regex_translate(src, len, &pat, err, errlen);
    *code = 0;
    if (rc) {
        if (rc == CORE_ENOMEM)
            snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_DOLLAR_ENDONLY |
                                       PCRE2_MATCH_UNSET_BACKREF,
                                   &ec, &off, NULL);
    free(pat);
    if (!re) {
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)err, errlen);
        *code = ec;
        return NULL;
    }
    return re;
}

pcre2_code *js__regex_compile(const char *src, size_t len, char *err,
                              size_t errlen)
{
    int code;
    pcre2_code *re = compile_translated(src, len, &code, err, errlen);
    if (re)
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back if absent */
    else if (code == PCRE2_ERROR_LOOKBEHIND_NOT_FIXED_LENGTH)
        snprintf(err, errlen,
                 "variable-length lookbehind is valid ECMA-262 but not "
                 "supported by this validator");
    return re;
}

bool js__regex_valid(const char *s, size_t len)
{
    char err[128];
    int code;
    pcre2_code *re = compile_translated(s, len, &code, err, sizeof err);
    if (re) {
        pcre2_code_free(re);
        return true;
    }
    /* Valid ECMA-262 that PCRE2 cannot run is still a valid regex. */
    return code == PCRE2_ERROR_LOOKBEHIND_NOT_FIXED_LENGTH;
}

/* Per-thread matching state, made on first use: match data, and a JIT
 * stack larger than PCRE2's 32 KiB default so that patterns such as
 * "^(a|b)*$" work on long strings. */
struct matcher {
    pcre2_match_data *md;
    pcre2_jit_stack *stack;
    pcre2_match_context *ctx;
};

static pthread_key_t matcher_key;
static pthread_once_t matcher_once = PTHREAD_ONCE_INIT;
static _Thread_local struct matcher *matcher_cache;

static void matcher_free(void *p)
{
    struct matcher *m = p;
    pcre2_match_context_free(m->ctx);
    pcre2_jit_stack_free(m->stack);
    pcre2_match_data_free(m->md);
    free(m);
}

static void matcher_key_init(void)
{
    pthread_key_create(&matcher_key, matcher_free);
}

static struct matcher *matcher(void)
{
    struct matcher *m = matcher_cache;
    if (m)
        return m;
    pthread_once(&matcher_once, matcher_key_init);
    m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->md = pcre2_match_data_create(1, NULL);
    m->ctx = pcre2_match_context_create(NULL);
    m->stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    if (!m->md || !m->ctx) {
        matcher_free(m);
        return NULL;
    }
    if (m->stack)
        pcre2_jit_stack_assign(m->ctx, NULL, m->stack);
    pthread_setspecific(matcher_key, m);
    matcher_cache = m;
    return m;
}

bool js__regex_search(const pcre2_code *re, const char *s, size_t len)
{
    struct matcher *m = matcher();
    if (!m)
        return false;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, m->md, m->ctx);
    if (rc >= 0)
        return true;
    if (rc == PCRE2_ERROR_NOMATCH)
        return false;
    /* The JIT ran out of stack or hit a limit: the interpreter keeps its
     * backtracking state on the heap and gets further. */
    return pcre2_match(re, (PCRE2_SPTR)s, len, 0, PCRE2_NO_JIT, m->md,
                       m->ctx) >= 0;
}
