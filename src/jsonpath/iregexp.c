/*
 * I-Regexp (RFC 9485) to PCRE2.
 *
 * The pattern is parsed against the I-Regexp grammar, so that anything
 * outside it (back-references, anchors, lazy quantifiers, \d, ...) is
 * rejected rather than given PCRE2's meaning, and re-emitted as an
 * equivalent PCRE2 pattern made of ASCII only: every literal character
 * other than a letter or digit is written as \x{...}, which means the same
 * thing inside and outside a character class. '.' becomes [^\n\r], as
 * RFC 9485 §5.3 asks, and a full match is anchored with \A(?:...)\z.
 *
 * An unescaped '^' or '$' outside a class is NormalChar in the RFC 9485
 * grammar, but the mapping of RFC 9485 §5.3/§5.4 (which the RFC gives as
 * the way to run I-Regexp on PCRE and ECMAScript engines) copies it
 * unchanged, so it acts as a start / end-of-string assertion; the JSONPath
 * Compliance Test Suite expects that behaviour ("explicit caret",
 * "explicit dollar"), and so do we. '$' is compiled with
 * PCRE2_DOLLAR_ENDONLY so that it never matches before a final newline.
 */
#include <pthread.h>
#include <string.h>

#include "jsonpath_internal.h"

/* Deepest group nesting accepted; PCRE2 itself stops at 250. */
#define RX_MAX_NESTING 64
/* Largest repetition count PCRE2 can compile. */
#define RX_MAX_REPEAT 65535
/* Backtracking budget per match, so that a hostile pattern or document
 * costs bounded time; exceeding it counts as no match. */
#define RX_MATCH_LIMIT 1000000

struct rx {
    const unsigned char *s;
    size_t len;
    size_t pos;
    int depth;
    struct core_buf *out;
};

/* Decodes the UTF-8 character at the cursor without consuming it. Returns
 * its length, or 0 at the end or on invalid UTF-8. */
static size_t rx_decode(const struct rx *r, uint32_t *cp)
{
    const unsigned char *s = r->s + r->pos;
    size_t left = r->len - r->pos, n;
    uint32_t v;

    if (left == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
        v = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        v = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        v = s[0] & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

static int rx_peek(const struct rx *r)
{
    return r->pos < r->len ? r->s[r->pos] : -1;
}

static void rx_emit_char(struct rx *r, uint32_t cp)
{
    if ((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
        (cp >= 'A' && cp <= 'Z'))
        core_buf_putc(r->out, (char)cp);
    else
        core_buf_printf(r->out, "\\x{%x}", (unsigned)cp);
}

/* charProp of RFC 9485 §5.3: a major category letter and optionally one
 * of the minor letters allowed with it. */
static bool rx_category_valid(const char *name, size_t n)
{
    static const struct {
        char major;
        const char *minors;
    } cats[] = {
        {'L', "lmotu"}, {'M', "cen"}, {'N', "dlo"}, {'P', "cdefios"},
        {'Z', "lps"},   {'S', "ckmo"}, {'C', "cfno"},
    };
    if (n < 1 || n > 2)
        return false;
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++) {
        if (cats[i].major != name[0])
            continue;
        return n == 1 || strchr(cats[i].minors, name[1]) != NULL;
    }
    return false;
}

/* An escape after '\' (consumed). A single-character escape gives its
 * character in *cp; a category escape (\p{..} or \P{..}) is emitted and
 * *cp set to UINT32_MAX. Returns false if the escape is not I-Regexp. */
static bool rx_escape(struct rx *r, uint32_t *cp)
{
    int c = rx_peek(r);

    if (c == 'p' || c == 'P') {
        size_t start;
        r->pos++;
        if (rx_peek(r) != '{')
            return false;
        start = ++r->pos;
        while (r->pos < r->len && r->s[r->pos] != '}')
            r->pos++;
        if (r->pos >= r->len ||
            !rx_category_valid((const char *)r->s + start, r->pos - start))
            return false;
        core_buf_printf(r->out, "\\%c{%.*s}", c, (int)(r->pos - start),
                        (const char *)r->s + start);
        r->pos++;
        *cp = UINT32_MAX;
        return true;
    }
    if (c < 0)
        return false;
    r->pos++;
    switch (c) {
    case 'n': *cp = '\n'; return true;
    case 'r': *cp = '\r'; return true;
    case 't': *cp = '\t'; return true;
    case '(': case ')': case '*': case '+': case '-': case '.': case '?':
    case '[': case '\\': case ']': case '^': case '{': case '|': case '}':
        *cp = (uint32_t)c;
        return true;
    default:
        return false;
    }
}

/* One CCchar or escape inside a class; category escapes are emitted and
 * reported as UINT32_MAX. */
static bool rx_class_char(struct rx *r, uint32_t *cp)
{
    size_t n;

    if (rx_peek(r) == '\\') {
        r->pos++;
        return rx_escape(r, cp);
    }
    n = rx_decode(r, cp);
    if (n == 0 || *cp == '-' || *cp == '[' || *cp == ']')
        return false;
    r->pos += n;
    return true;
}

/* charClassExpr: "[" ["^"] ("-" / CCE1) *CCE1 ["-"] "]", '[' consumed. */
static bool rx_class(struct rx *r)
{
    bool first = true;

    core_buf_putc(r->out, '[');
    if (rx_peek(r) == '^') {
        r->pos++;
        core_buf_putc(r->out, '^');
    }
    for (;;) {
        int c = rx_peek(r);
        uint32_t lo, hi;

        if (c < 0)
            return false;
        if (c == ']') {
            if (first)
                return false;
            r->pos++;
            break;
        }
        if (c == '-') {
            /* Literal only first or last in the class. */
            if (!first && (r->pos + 1 >= r->len || r->s[r->pos + 1] != ']'))
                return false;
            r->pos++;
            rx_emit_char(r, '-');
            first = false;
            continue;
        }
        if (!rx_class_char(r, &lo))
            return false;
        first = false;
        if (lo == UINT32_MAX)
            continue;
        if (rx_peek(r) == '-' && r->pos + 1 < r->len &&
            r->s[r->pos + 1] != ']') {
            r->pos++;
            if (!rx_class_char(r, &hi) || hi == UINT32_MAX || hi < lo)
                return false;
            rx_emit_char(r, lo);
            core_buf_putc(r->out, '-');
            rx_emit_char(r, hi);
        } else {
            rx_emit_char(r, lo);
        }
    }
    core_buf_putc(r->out, ']');
    return true;
}

static bool rx_alternation(struct rx *r);

static bool rx_atom(struct rx *r)
{
    uint32_t cp;
    size_t n = rx_decode(r, &cp);

    if (n == 0)
        return false;
    switch (cp) {
    case '(':
        if (++r->depth > RX_MAX_NESTING)
            return false;
        r->pos++;
        core_buf_puts(r->out, "(?:");
        if (!rx_alternation(r) || rx_peek(r) != ')')
            return false;
        r->pos++;
        r->depth--;
        core_buf_putc(r->out, ')');
        return true;
    case '.':
        r->pos++;
        core_buf_puts(r->out, "[^\\x{a}\\x{d}]");
        return true;
    case '^':
    case '$':
        r->pos++;
        core_buf_putc(r->out, (char)cp);
        return true;
    case '[':
        r->pos++;
        return rx_class(r);
    case '\\':
        r->pos++;
        if (!rx_escape(r, &cp))
            return false;
        if (cp != UINT32_MAX)
            rx_emit_char(r, cp);
        return true;
    case ')': case '*': case '+': case '?': case ']': case '{': case '|':
    case '}':
        return false;
    default:
        r->pos += n;
        rx_emit_char(r, cp);
        return true;
    }
}

/* QuantExact: 1*DIGIT, bounded by what PCRE2 accepts. */
static bool rx_count(struct rx *r, unsigned long *out)
{
    unsigned long v = 0;
    size_t start = r->pos;

    while (rx_peek(r) >= '0' && rx_peek(r) <= '9') {
        v = v * 10 + (unsigned long)(rx_peek(r) - '0');
        if (v > RX_MAX_REPEAT)
            return false;
        r->pos++;
    }
    *out = v;
    return r->pos > start;
}

static bool rx_piece(struct rx *r)
{
    unsigned long lo, hi;
    int c;

    if (!rx_atom(r))
        return false;
    c = rx_peek(r);
    if (c == '*' || c == '+' || c == '?') {
        r->pos++;
        core_buf_putc(r->out, (char)c);
        return true;
    }
    if (c != '{')
        return true;
    r->pos++;
    if (!rx_count(r, &lo))
        return false;
    if (rx_peek(r) == '}') {
        r->pos++;
        core_buf_printf(r->out, "{%lu}", lo);
        return true;
    }
    if (rx_peek(r) != ',')
        return false;
    r->pos++;
    if (rx_peek(r) == '}') {
        r->pos++;
        core_buf_printf(r->out, "{%lu,}", lo);
        return true;
    }
    if (!rx_count(r, &hi) || hi < lo || rx_peek(r) != '}')
        return false;
    r->pos++;
    core_buf_printf(r->out, "{%lu,%lu}", lo, hi);
    return true;
}

static bool rx_alternation(struct rx *r)
{
    for (;;) {
        while (r->pos < r->len && rx_peek(r) != '|' && rx_peek(r) != ')')
            if (!rx_piece(r))
                return false;
        if (rx_peek(r) != '|')
            return true;
        r->pos++;
        core_buf_putc(r->out, '|');
    }
}

int jsonpath__iregexp_translate(const char *re, size_t len, bool anchored,
                          struct core_buf *out)
{
    struct rx r = {.s = (const unsigned char *)re, .len = len, .out = out};

    core_buf_puts(out, anchored ? "\\A(?:" : "(?:");
    if (!rx_alternation(&r) || r.pos != len)
        return CORE_EPARSE;
    core_buf_puts(out, anchored ? ")\\z" : ")");
    return out->oom ? CORE_ENOMEM : 0;
}

int jsonpath__iregexp_compile(const char *re, size_t len, bool anchored,
                        pcre2_code **out)
{
    struct core_buf b;
    int rc, errcode;
    PCRE2_SIZE erroff;

    *out = NULL;
    core_buf_init(&b);
    rc = jsonpath__iregexp_translate(re, len, anchored, &b);
    if (rc == 0) {
        *out = pcre2_compile((PCRE2_SPTR)b.data, b.len,
                             PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C |
                                 PCRE2_NO_AUTO_CAPTURE | PCRE2_DOLLAR_ENDONLY,
                             &errcode, &erroff, NULL);
        if (!*out)
            rc = errcode == PCRE2_ERROR_HEAPLIMIT ? CORE_ENOMEM : CORE_EPARSE;
    }
    core_buf_fini(&b);
    return rc;
}

static pcre2_match_context *match_ctx;
static pthread_once_t match_ctx_once = PTHREAD_ONCE_INIT;

static void match_ctx_init(void)
{
    match_ctx = pcre2_match_context_create(NULL);
    if (match_ctx)
        pcre2_set_match_limit(match_ctx, RX_MATCH_LIMIT);
}

pcre2_match_context *jsonpath__match_context(void)
{
    pthread_once(&match_ctx_once, match_ctx_init);
    return match_ctx;
}
