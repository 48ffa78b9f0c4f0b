/*
 * The ingest parser: JSON text to struct pipeline_msg in one pass, with no
 * document tree. The rules it enforces, and why they are jansson's, are in
 * pipeline.h above pipeline_parse.
 *
 * While an element is parsed, what normalize needs is recorded (the first
 * unknown key, deviceId, timestamp, the metadata's compact size, each
 * metric); its checks then run in the order the jansson-based normalize ran
 * them, and an accepted message is copied into one block. Decoded strings
 * live in the parser's scratch buffer, which is reserved at the size of the
 * text before parsing (a decoded string with its NUL is never longer than
 * its quoted source) so that pointers into it stay valid.
 */
#include "pipeline.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jansson's JSON_PARSER_MAX_DEPTH: values nest at most this deep. */
#define MAX_DEPTH 2048
/* Objects with more keys than this find duplicates by hash. */
#define HASH_AT 16
/* Scratch beyond this is released after a parse. */
#define KEEP_BYTES (1u << 20)

struct keyref {
    const char *k;
    uint32_t len;
    uint32_t hash;
};

struct slot {
    uint32_t obj; /* 0: empty */
    uint32_t hash;
    uint32_t key; /* index into keys */
};

enum mkind { MK_NUM, MK_BOOL, MK_STR, MK_NULL, MK_ARRAY, MK_OBJECT };

struct pmetric {
    const char *key;
    size_t klen;
    enum mkind kind;
    double num;
    const char *str;
    size_t slen;
};

struct pipeline_parser {
    char *str; /* decoded strings */
    size_t str_cap;
    struct keyref *keys; /* keys of the open objects, innermost last */
    size_t nkeys, keys_cap;
    struct slot *table; /* open addressing, for objects past HASH_AT */
    size_t table_cap, table_used;
    struct pmetric *mets; /* the current message's metrics */
    size_t nmets, mets_cap;
};

/* What one message said, recorded while parsing it. */
enum vkind { V_ABSENT, V_NULL, V_STR, V_NUM, V_BOOL, V_ARRAY, V_OBJECT };

struct msgstate {
    bool object;
    const char *unknown; /* the first unknown key */
    enum vkind dev_kind;
    const char *dev;
    size_t dev_len;
    enum vkind metrics_kind;
    const char *metrics_from, *metrics_to;
    enum vkind ts_kind;
    const char *ts;
    double ts_num;
    enum vkind meta_kind;
    size_t meta_len;
};

struct ps {
    struct pipeline_parser *p;
    const char *text, *at, *end;
    char *sp;             /* next free byte of p->str */
    uint32_t objs;        /* object ids given out */
    const char *err_at;   /* where the first error was found */
    char err[96];
    int rc;               /* CORE_OK, CORE_EPARSE or CORE_ENOMEM */
};

struct objframe {
    size_t first;
    uint32_t id;
    bool hashed;
};

/* ------------------------------------------------------------- utilities */

static bool fail(struct ps *s, const char *at, const char *fmt, ...)
{
    if (s->rc == CORE_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->err, sizeof s->err, fmt, ap);
        va_end(ap);
        s->err_at = at;
        s->rc = CORE_EPARSE;
    }
    return false;
}

static bool oom(struct ps *s)
{
    if (s->rc == CORE_OK)
        s->rc = CORE_ENOMEM;
    return false;
}

static bool grow(void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *n = realloc(*v, c * size);
    if (!n)
        return false;
    *v = n;
    *cap = c;
    return true;
}

static inline void skip_ws(struct ps *s)
{
    while (s->at < s->end && (*s->at == ' ' || *s->at == '\n' ||
                              *s->at == '\r' || *s->at == '\t'))
        s->at++;
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static uint32_t key_hash(const char *k, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h ? h : 1;
}

/* ---------------------------------------------------------------- objects */

static void obj_begin(struct ps *s, struct objframe *f)
{
    f->first = s->p->nkeys;
    f->id = ++s->objs;
    f->hashed = false;
}

static void obj_end(struct ps *s, const struct objframe *f)
{
    s->p->nkeys = f->first;
}

static bool table_put(struct pipeline_parser *p, uint32_t obj, uint32_t hash,
                      uint32_t key)
{
    if ((p->table_used + 1) * 2 > p->table_cap) {
        size_t cap = p->table_cap ? p->table_cap * 2 : 256;
        struct slot *t = calloc(cap, sizeof *t);
        if (!t)
            return false;
        for (size_t i = 0; i < p->table_cap; i++) {
            struct slot *o = &p->table[i];
            if (!o->obj)
                continue;
            size_t j = o->hash & (cap - 1);
            while (t[j].obj)
                j = (j + 1) & (cap - 1);
            t[j] = *o;
        }
        free(p->table);
        p->table = t;
        p->table_cap = cap;
    }
    size_t j = hash & (p->table_cap - 1);
    while (p->table[j].obj)
        j = (j + 1) & (p->table_cap - 1);
    p->table[j] = (struct slot){obj, hash, key};
    p->table_used++;
    return true;
}

/* Adds a key to the open object f; false (an error set) for a duplicate. */
static bool key_add(struct ps *s, struct objframe *f, const char *k,
                    size_t len, const char *at)
{
    struct pipeline_parser *p = s->p;
    if (len > UINT32_MAX)
        return fail(s, at, "object key too long");
    if (!grow((void **)&p->keys, &p->keys_cap, p->nkeys + 1, sizeof *p->keys))
        return oom(s);
    if (!f->hashed) {
        for (size_t i = f->first; i < p->nkeys; i++)
            if (p->keys[i].len == len && memcmp(p->keys[i].k, k, len) == 0)
                return fail(s, at, "duplicate object key");
        p->keys[p->nkeys++] = (struct keyref){k, (uint32_t)len, 0};
        if (p->nkeys - f->first >= HASH_AT) {
            for (size_t i = f->first; i < p->nkeys; i++) {
                p->keys[i].hash = key_hash(p->keys[i].k, p->keys[i].len);
                if (!table_put(p, f->id, p->keys[i].hash, (uint32_t)i))
                    return oom(s);
            }
            f->hashed = true;
        }
        return true;
    }
    uint32_t h = key_hash(k, len);
    for (size_t j = h & (p->table_cap - 1); p->table[j].obj;
         j = (j + 1) & (p->table_cap - 1)) {
        const struct slot *t = &p->table[j];
        if (t->obj == f->id && t->hash == h) {
            const struct keyref *o = &p->keys[t->key];
            if (o->len == len && memcmp(o->k, k, len) == 0)
                return fail(s, at, "duplicate object key");
        }
    }
    p->keys[p->nkeys] = (struct keyref){k, (uint32_t)len, h};
    if (!table_put(p, f->id, h, (uint32_t)p->nkeys))
        return oom(s);
    p->nkeys++;
    return true;
}

/* ---------------------------------------------------------------- strings */

static int hex4(const char *q, const char *end, uint32_t *out)
{
    if (end - q < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = q[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* The length of a valid UTF-8 sequence of 2 to 4 bytes at q, or 0: no
 * overlong forms, no surrogates, nothing past U+10FFFF (RFC 3629, and what
 * jansson's stream decoder takes). */
static size_t utf8_seq(const unsigned char *q, const unsigned char *end)
{
    unsigned c = q[0];
    size_t n;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - q) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (q[i] < 0x80 || q[i] > 0xBF)
            return 0;
        v = (v << 6) | (q[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) ||
        (n == 3 && v < 0x800) || (n == 4 && v < 0x10000))
        return 0;
    return n;
}

static size_t utf8_put(char *d, uint32_t cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* At an opening quote: decodes the string into the scratch buffer with a
 * NUL after it. */
static bool str_parse(struct ps *s, const char **out, size_t *len)
{
    const char *q = s->at + 1, *end = s->end;
    char *d = s->sp, *d0 = d;
    for (;;) {
        /* The common case: a run of plain ASCII. */
        while (q < end && (unsigned char)*q >= 0x20 && *q != '"' &&
               *q != '\\' && (unsigned char)*q < 0x80)
            *d++ = *q++;
        if (q >= end)
            return fail(s, q, "unterminated string");
        unsigned char c = (unsigned char)*q;
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(s, q, c == '\n' ? "newline in a string"
                                        : "control character 0x%x in a string",
                        c);
        if (c >= 0x80) {
            size_t n = utf8_seq((const unsigned char *)q,
                                (const unsigned char *)end);
            if (!n)
                return fail(s, q, "invalid UTF-8 byte 0x%x", c);
            memcpy(d, q, n);
            d += n;
            q += n;
            continue;
        }
        /* An escape. */
        if (end - q < 2)
            return fail(s, q, "unterminated string");
        char e = q[1];
        q += 2;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            *d++ = e;
            break;
        case 'b':
            *d++ = '\b';
            break;
        case 'f':
            *d++ = '\f';
            break;
        case 'n':
            *d++ = '\n';
            break;
        case 'r':
            *d++ = '\r';
            break;
        case 't':
            *d++ = '\t';
            break;
        case 'u': {
            uint32_t cp, lo;
            if (hex4(q, end, &cp))
                return fail(s, q - 2, "invalid \\u escape");
            q += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - q < 2 || q[0] != '\\' || q[1] != 'u')
                    return fail(s, q - 6, "lone surrogate \\u%04X", cp);
                if (hex4(q + 2, end, &lo))
                    return fail(s, q, "invalid \\u escape");
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail(s, q - 6, "invalid surrogate pair \\u%04X\\u%04X",
                                cp, lo);
                cp = ((cp - 0xD800) << 10) + (lo - 0xDC00) + 0x10000;
                q += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return fail(s, q - 6, "lone surrogate \\u%04X", cp);
            } else if (cp == 0) {
                return fail(s, q - 6, "\\u0000 is not allowed");
            }
            d += utf8_put(d, cp);
            break;
        }
        default:
            return fail(s, q - 2, "invalid escape");
        }
    }
    *d = '\0';
    *out = d0;
    *len = (size_t)(d - d0);
    s->sp = d + 1;
    s->at = q + 1;
    return true;
}

/* The length of a decoded string as jansson's compact dump writes it. */
static size_t str_dump_len(const char *k, size_t len)
{
    size_t n = 2 + len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' ||
            c == '\r' || c == '\t')
            n += 1;
        else if (c < 0x20)
            n += 5;
    }
    return n;
}

/* ---------------------------------------------------------------- numbers */

static const double pow10_exact[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* The length of a real as jansson dumps it (%.17g, ".0" added when it
 * would read as an integer, exponent without '+' and leading zeros). */
static size_t real_dump_len(double v)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof buf)
        return 0;
    size_t len = (size_t)n;
    char *e = strchr(buf, 'e');
    if (!strchr(buf, '.') && !e)
        return len + 2;
    if (e) {
        char *d = e + 1;
        if (*d == '+')
            len--, d++;
        else if (*d == '-')
            d++;
        while (*d == '0' && d[1])
            len--, d++;
    }
    return len;
}

/* At '-' or a digit: the number's value as jansson gives it (an integer
 * token, without fraction or exponent, through int64) and, when dump_len is
 * not NULL, the length of its compact dump. */
static bool num_parse(struct ps *s, double *out, size_t *dump_len)
{
    const char *p = s->at, *start = p, *end = s->end;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (p >= end || !is_digit(*p))
        return fail(s, start, "invalid number");
    uint64_t m = 0;
    int sig = 0;      /* significant digits in m */
    bool lost = false; /* digits past 19 significant */
    int exp10 = 0;
    const char *int_from = p;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return fail(s, start, "leading zero in a number");
    } else {
        for (; p < end && is_digit(*p); p++) {
            if (sig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                sig++;
            } else {
                lost = true;
                exp10++;
            }
        }
    }
    size_t int_digits = (size_t)(p - int_from);
    bool real = false;
    if (p < end && *p == '.') {
        real = true;
        p++;
        if (p >= end || !is_digit(*p))
            return fail(s, start, "digit expected after '.'");
        for (; p < end && is_digit(*p); p++) {
            if (m == 0 && *p == '0') {
                exp10--;
            } else if (sig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                sig++;
                exp10--;
            } else {
                lost = true;
            }
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        bool eneg = false;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || !is_digit(*p))
            return fail(s, start, "digit expected in the exponent");
        int e = 0;
        for (; p < end && is_digit(*p); p++)
            if (e < 100000)
                e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    s->at = p;
    if (!real) {
        /* jansson reads it with strtoll: past int64 is an error. */
        if (int_digits > 19 || lost ||
            m > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
            return fail(s, start, "integer out of range");
        int64_t iv = neg ? (int64_t)(0 - m) : (int64_t)m;
        *out = (double)iv;
        if (dump_len)
            *dump_len = (size_t)(p - start) - (neg && m == 0);
        return true;
    }
    double v;
    if (m == 0) {
        v = 0.0;
    } else if (!lost && m <= (1ull << 53) && exp10 >= -22 && exp10 <= 22) {
        /* Both operands are exact doubles: one correctly rounded
         * operation gives the correctly rounded result (Clinger). */
        v = (double)m;
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
    } else {
        size_t len = (size_t)(p - start);
        char stackbuf[128];
        char *buf = len < sizeof stackbuf ? stackbuf : malloc(len + 1);
        if (!buf)
            return oom(s);
        memcpy(buf, start, len);
        buf[len] = '\0';
        errno = 0;
        v = strtod(buf, NULL);
        bool over = errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL);
        if (buf != stackbuf)
            free(buf);
        if (over)
            return fail(s, start, "number out of range");
        *out = v;
        if (dump_len)
            *dump_len = real_dump_len(v);
        return true;
    }
    *out = neg ? -v : v;
    if (dump_len)
        *dump_len = real_dump_len(*out);
    return true;
}

/* ---------------------------------------------------------------- values */

static bool literal(struct ps *s, const char *word, size_t len)
{
    if ((size_t)(s->end - s->at) < len || memcmp(s->at, word, len) != 0)
        return fail(s, s->at, "invalid literal");
    s->at += len;
    return true;
}

static bool any_value(struct ps *s, int depth, size_t *dump_len);

/* Adds to *dump_len when it is not NULL. */
static inline void add(size_t *dump_len, size_t n)
{
    if (dump_len)
        *dump_len += n;
}

static bool any_object(struct ps *s, int depth, size_t *dump_len)
{
    struct objframe f;
    obj_begin(s, &f);
    s->at++;
    skip_ws(s);
    add(dump_len, 2);
    if (s->at < s->end && *s->at == '}') {
        s->at++;
        obj_end(s, &f);
        return true;
    }
    for (;;) {
        if (s->at >= s->end || *s->at != '"')
            return fail(s, s->at, "a string key or '}' expected");
        const char *at = s->at, *k;
        size_t kl;
        if (!str_parse(s, &k, &kl) || !key_add(s, &f, k, kl, at))
            return false;
        if (dump_len)
            *dump_len += str_dump_len(k, kl) + 1;
        skip_ws(s);
        if (s->at >= s->end || *s->at != ':')
            return fail(s, s->at, "':' expected");
        s->at++;
        skip_ws(s);
        if (!any_value(s, depth + 1, dump_len))
            return false;
        skip_ws(s);
        if (s->at < s->end && *s->at == ',') {
            s->at++;
            skip_ws(s);
            add(dump_len, 1);
            continue;
        }
        if (s->at < s->end && *s->at == '}')
            break;
        return fail(s, s->at, "',' or '}' expected");
    }
    s->at++;
    obj_end(s, &f);
    return true;
}

static bool any_array(struct ps *s, int depth, size_t *dump_len)
{
    s->at++;
    skip_ws(s);
    add(dump_len, 2);
    if (s->at < s->end && *s->at == ']') {
        s->at++;
        return true;
    }
    for (;;) {
        if (!any_value(s, depth + 1, dump_len))
            return false;
        skip_ws(s);
        if (s->at < s->end && *s->at == ',') {
            s->at++;
            skip_ws(s);
            add(dump_len, 1);
            continue;
        }
        if (s->at < s->end && *s->at == ']')
            break;
        return fail(s, s->at, "',' or ']' expected");
    }
    s->at++;
    return true;
}

/* Any JSON value at s->at (whitespace skipped), checked and dropped; its
 * compact dump length added to *dump_len when that is not NULL. */
static bool any_value(struct ps *s, int depth, size_t *dump_len)
{
    if (depth > MAX_DEPTH)
        return fail(s, s->at, "nested more than %d deep", MAX_DEPTH);
    if (s->at >= s->end)
        return fail(s, s->at, "a value expected");
    char *mark = s->sp;
    bool ok;
    switch (*s->at) {
    case '{':
        ok = any_object(s, depth, dump_len);
        break;
    case '[':
        ok = any_array(s, depth, dump_len);
        break;
    case '"': {
        const char *v;
        size_t len;
        ok = str_parse(s, &v, &len);
        if (ok && dump_len)
            *dump_len += str_dump_len(v, len);
        break;
    }
    case 't':
        ok = literal(s, "true", 4);
        add(dump_len, 4);
        break;
    case 'f':
        ok = literal(s, "false", 5);
        add(dump_len, 5);
        break;
    case 'n':
        ok = literal(s, "null", 4);
        add(dump_len, 4);
        break;
    default: {
        if (*s->at != '-' && !is_digit(*s->at))
            return fail(s, s->at, "invalid token");
        double v;
        size_t n = 0;
        ok = num_parse(s, &v, dump_len ? &n : NULL);
        add(dump_len, n);
        break;
    }
    }
    s->sp = mark; /* nothing of it is kept */
    return ok;
}

/* --------------------------------------------------------------- messages */

static bool metrics_object(struct ps *s, int depth)
{
    struct pipeline_parser *p = s->p;
    struct objframe f;
    obj_begin(s, &f);
    s->at++;
    skip_ws(s);
    if (s->at < s->end && *s->at == '}') {
        s->at++;
        obj_end(s, &f);
        return true;
    }
    for (;;) {
        if (s->at >= s->end || *s->at != '"')
            return fail(s, s->at, "a string key or '}' expected");
        const char *at = s->at;
        struct pmetric m = {0};
        if (!str_parse(s, &m.key, &m.klen) ||
            !key_add(s, &f, m.key, m.klen, at))
            return false;
        skip_ws(s);
        if (s->at >= s->end || *s->at != ':')
            return fail(s, s->at, "':' expected");
        s->at++;
        skip_ws(s);
        if (depth + 1 > MAX_DEPTH)
            return fail(s, s->at, "nested more than %d deep", MAX_DEPTH);
        char c = s->at < s->end ? *s->at : '\0';
        bool ok;
        if (c == '"') {
            m.kind = MK_STR;
            ok = str_parse(s, &m.str, &m.slen);
        } else if (c == '-' || is_digit(c)) {
            m.kind = MK_NUM;
            ok = num_parse(s, &m.num, NULL);
        } else if (c == 't') {
            m.kind = MK_BOOL;
            m.num = 1;
            ok = literal(s, "true", 4);
        } else if (c == 'f') {
            m.kind = MK_BOOL;
            ok = literal(s, "false", 5);
        } else {
            m.kind = c == 'n' ? MK_NULL : c == '[' ? MK_ARRAY : MK_OBJECT;
            ok = any_value(s, depth + 1, NULL);
        }
        if (!ok)
            return false;
        if (!grow((void **)&p->mets, &p->mets_cap, p->nmets + 1, sizeof m))
            return oom(s);
        p->mets[p->nmets++] = m;
        skip_ws(s);
        if (s->at < s->end && *s->at == ',') {
            s->at++;
            skip_ws(s);
            continue;
        }
        if (s->at < s->end && *s->at == '}')
            break;
        return fail(s, s->at, "',' or '}' expected");
    }
    s->at++;
    obj_end(s, &f);
    return true;
}

static enum vkind kind_at(char c)
{
    switch (c) {
    case '"':
        return V_STR;
    case 'n':
        return V_NULL;
    case 't':
    case 'f':
        return V_BOOL;
    case '[':
        return V_ARRAY;
    case '{':
        return V_OBJECT;
    default:
        return V_NUM;
    }
}

/* A message object at s->at, its facts recorded in ms. */
static bool message_object(struct ps *s, int depth, struct msgstate *ms)
{
    struct objframe f;
    obj_begin(s, &f);
    ms->object = true;
    s->at++;
    skip_ws(s);
    if (s->at < s->end && *s->at == '}') {
        s->at++;
        obj_end(s, &f);
        return true;
    }
    for (;;) {
        if (s->at >= s->end || *s->at != '"')
            return fail(s, s->at, "a string key or '}' expected");
        const char *at = s->at, *k;
        size_t kl;
        if (!str_parse(s, &k, &kl) || !key_add(s, &f, k, kl, at))
            return false;
        skip_ws(s);
        if (s->at >= s->end || *s->at != ':')
            return fail(s, s->at, "':' expected");
        s->at++;
        skip_ws(s);
        if (depth + 1 > MAX_DEPTH)
            return fail(s, s->at, "nested more than %d deep", MAX_DEPTH);
        if (s->at >= s->end)
            return fail(s, s->at, "a value expected");
        enum vkind kind = kind_at(*s->at);
        bool ok;
        if (kl == 8 && memcmp(k, "deviceId", 8) == 0) {
            ms->dev_kind = kind;
            ok = kind == V_STR ? str_parse(s, &ms->dev, &ms->dev_len)
                               : any_value(s, depth + 1, NULL);
        } else if (kl == 7 && memcmp(k, "metrics", 7) == 0) {
            ms->metrics_kind = kind;
            ms->metrics_from = s->at;
            ok = kind == V_OBJECT ? metrics_object(s, depth + 1)
                                  : any_value(s, depth + 1, NULL);
            ms->metrics_to = s->at;
        } else if (kl == 9 && memcmp(k, "timestamp", 9) == 0) {
            ms->ts_kind = kind;
            size_t len;
            ok = kind == V_STR   ? str_parse(s, &ms->ts, &len)
                 : kind == V_NUM ? num_parse(s, &ms->ts_num, NULL)
                                 : any_value(s, depth + 1, NULL);
        } else if (kl == 8 && memcmp(k, "metadata", 8) == 0) {
            ms->meta_kind = kind;
            ms->meta_len = 0;
            ok = any_value(s, depth + 1, &ms->meta_len);
        } else {
            if (!ms->unknown)
                ms->unknown = k; /* its scratch stays: the key is kept */
            ok = any_value(s, depth + 1, NULL);
        }
        if (!ok)
            return false;
        skip_ws(s);
        if (s->at < s->end && *s->at == ',') {
            s->at++;
            skip_ws(s);
            continue;
        }
        if (s->at < s->end && *s->at == '}')
            break;
        return fail(s, s->at, "',' or '}' expected");
    }
    s->at++;
    obj_end(s, &f);
    return true;
}

/* Epoch numbers: seconds up to 1e11 (year 5138), then milliseconds up to
 * 1e14, then microseconds up to 1e17. */
static int epoch_ms(double v, int64_t *out)
{
    if (!isfinite(v) || v < 0)
        return CORE_ERANGE;
    if (v < 1e11)
        *out = (int64_t)llround(v * 1000.0);
    else if (v < 1e14)
        *out = (int64_t)llround(v);
    else if (v < 1e17)
        *out = (int64_t)llround(v / 1000.0);
    else
        return CORE_ERANGE;
    return CORE_OK;
}

static bool plain_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20)
            return false;
    return true;
}

#define REFUSE(...)                                                         \
    do {                                                                    \
        snprintf(reason, reason_len, __VA_ARGS__);                          \
        return CORE_EINVAL;                                                 \
    } while (0)

/* The normalize checks, in the order the jansson-based code made them. */
static int judge(struct pipeline_parser *p, const struct msgstate *ms,
                 int64_t received_ms, const struct pipeline_limits *lim,
                 int64_t *ts_out, char *reason, size_t reason_len)
{
    if (!ms->object)
        REFUSE("a message must be a JSON object");
    if (ms->unknown)
        REFUSE("unknown field '%.64s' (a message has deviceId, metrics, "
               "timestamp and metadata)",
               ms->unknown);
    if (ms->dev_kind != V_STR || !core_uuid_valid(ms->dev))
        REFUSE("deviceId must be the device's id (a UUID)");
    if (ms->metrics_kind != V_OBJECT)
        REFUSE("metrics must be an object of name: value");
    size_t n = p->nmets;
    if (n == 0)
        REFUSE("metrics is empty");
    if (n > lim->max_metrics)
        REFUSE("%zu metrics in one message; at most %zu", n, lim->max_metrics);
    int64_t ts = received_ms;
    if (ms->ts_kind != V_ABSENT && ms->ts_kind != V_NULL) {
        if (ms->ts_kind == V_STR) {
            if (core_time_parse_iso(ms->ts, &ts))
                REFUSE("timestamp '%.40s' is not an RFC 3339 date-time such as "
                       "2026-01-31T12:00:00Z",
                       ms->ts);
        } else if (ms->ts_kind == V_NUM) {
            if (epoch_ms(ms->ts_num, &ts))
                REFUSE("timestamp %.17g is not epoch seconds, milliseconds or "
                       "microseconds",
                       ms->ts_num);
        } else {
            REFUSE("timestamp must be an RFC 3339 string or an epoch number");
        }
        if (ts > received_ms + lim->max_future_ms)
            REFUSE("timestamp is %lld s in the future (clock skew allowed: "
                   "%lld s)",
                   (long long)((ts - received_ms) / 1000),
                   (long long)(lim->max_future_ms / 1000));
        if (ts < lim->min_time_ms)
            REFUSE("timestamp is before 2000-01-01; is the device clock set?");
    }
    if (ms->meta_kind != V_ABSENT && ms->meta_kind != V_NULL) {
        if (ms->meta_kind != V_OBJECT)
            REFUSE("metadata must be an object");
        if (ms->meta_len > lim->max_metadata)
            REFUSE("metadata is %zu bytes; at most %zu", ms->meta_len,
                   lim->max_metadata);
    }
    for (size_t i = 0; i < n; i++) {
        const struct pmetric *m = &p->mets[i];
        if (m->klen == 0 || m->klen > lim->max_key_len ||
            !plain_text(m->key, m->klen))
            REFUSE("metric name '%.40s' must be 1 to %zu printable bytes",
                   m->key, lim->max_key_len);
        switch (m->kind) {
        case MK_NUM:
        case MK_BOOL:
            break;
        case MK_STR:
            if (m->slen > lim->max_string_len)
                REFUSE("metric '%.40s': strings are at most %zu bytes, without "
                       "NUL",
                       m->key, lim->max_string_len);
            break;
        default:
            REFUSE("metric '%.40s' must be a number, boolean or string (got %s)",
                   m->key,
                   m->kind == MK_NULL    ? "null"
                   : m->kind == MK_ARRAY ? "an array"
                                         : "an object");
        }
    }
    *ts_out = ts;
    return CORE_OK;
}

/* Copies an accepted message into its one block. */
static int build(struct pipeline_parser *p, const struct msgstate *ms,
                 const char *payload, size_t payload_len, int64_t received_ms,
                 int64_t ts, struct pipeline_msg *out)
{
    size_t n = p->nmets, bytes = n * sizeof *out->metrics + payload_len + 1;
    for (size_t i = 0; i < n; i++)
        bytes += p->mets[i].klen + 1 +
                 (p->mets[i].kind == MK_STR ? p->mets[i].slen + 1 : 0);
    char *block = malloc(bytes);
    if (!block)
        return CORE_ENOMEM;
    memset(out, 0, sizeof *out);
    out->block = block;
    out->metrics = (struct pipeline_metric *)(void *)block;
    char *at = block + n * sizeof *out->metrics;
    for (size_t i = 0; i < n; i++) {
        const struct pmetric *m = &p->mets[i];
        struct pipeline_metric *d = &out->metrics[i];
        memcpy(at, m->key, m->klen + 1);
        d->key = at;
        at += m->klen + 1;
        d->str = NULL;
        d->num = m->num;
        if (m->kind == MK_STR) {
            d->type = TSDB_STRING;
            memcpy(at, m->str, m->slen + 1);
            d->str = at;
            at += m->slen + 1;
        } else {
            d->type = m->kind == MK_BOOL ? TSDB_BOOL : TSDB_NUMBER;
        }
    }
    out->nmetrics = n;
    memcpy(at, payload, payload_len);
    at[payload_len] = '\0';
    out->payload = at;
    out->payload_len = payload_len;
    out->metrics_text = at + (ms->metrics_from - payload);
    out->metrics_text_len = (size_t)(ms->metrics_to - ms->metrics_from);
    memcpy(out->device_id, ms->dev, CORE_UUID_STR_LEN - 1);
    out->device_id[CORE_UUID_STR_LEN - 1] = '\0';
    core_uuid_normalize(out->device_id);
    out->received_ms = received_ms;
    out->ts_ms = ts;
    return CORE_OK;
}

/* Judges a parsed message and hands it, accepted (its payload the bytes
 * [from, to) of the text) or refused, to the callback. */
static bool deliver(struct ps *s, const struct pipeline_parse_args *a,
                    const struct msgstate *ms, size_t index, const char *from,
                    const char *to)
{
    char reason[256];
    struct pipeline_msg m;
    int64_t ts = 0;
    int rc = judge(s->p, ms, a->received_ms, a->lim, &ts, reason, sizeof reason);
    if (rc == CORE_OK) {
        if (build(s->p, ms, from, (size_t)(to - from), a->received_ms, ts, &m))
            return oom(s);
        rc = a->cb(index, &m, NULL, a->ctx);
    } else {
        rc = a->cb(index, NULL, reason, a->ctx);
    }
    if (rc && s->rc == CORE_OK)
        s->rc = rc;
    return rc == CORE_OK;
}

/* Parses one element of a batch (an object, or any value which is then
 * refused) at s->at and delivers it unless collect is false. */
static bool element(struct ps *s, const struct pipeline_parse_args *a,
                    size_t index, bool collect)
{
    struct msgstate ms = {0};
    char *mark = s->sp;
    s->p->nmets = 0;
    const char *from = s->at;
    bool ok = collect && s->at < s->end && *s->at == '{'
                  ? message_object(s, 2, &ms)
                  : any_value(s, 2, NULL);
    if (!ok || (collect && !deliver(s, a, &ms, index, from, s->at)))
        return false;
    s->sp = mark;
    return true;
}

/* --------------------------------------------------------------- the API */

int pipeline_parser_create(struct pipeline_parser **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? CORE_OK : CORE_ENOMEM;
}

void pipeline_parser_destroy(struct pipeline_parser *p)
{
    if (!p)
        return;
    free(p->str);
    free(p->keys);
    free(p->table);
    free(p->mets);
    free(p);
}

static pthread_key_t local_key;
static pthread_once_t local_once = PTHREAD_ONCE_INIT;

static void local_free(void *p)
{
    pipeline_parser_destroy(p);
}

static void local_init(void)
{
    pthread_key_create(&local_key, local_free);
}

struct pipeline_parser *pipeline_parser_local(void)
{
    pthread_once(&local_once, local_init);
    struct pipeline_parser *p = pthread_getspecific(local_key);
    if (!p && pipeline_parser_create(&p) == CORE_OK &&
        pthread_setspecific(local_key, p) != 0) {
        pipeline_parser_destroy(p);
        p = NULL;
    }
    return p;
}

/* "line L, column C: what", C counting characters (UTF-8 lead bytes). */
static void where(const struct ps *s, char *err, size_t err_len)
{
    int line = 1, col = 1;
    for (const char *q = s->text; q < s->err_at && q < s->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)*q & 0xC0) != 0x80) {
            col++;
        }
    }
    if (s->err_at >= s->end)
        snprintf(err, err_len, "line %d, column %d: %s (at the end of the text)",
                 line, col, s->err);
    else
        snprintf(err, err_len, "line %d, column %d: %s", line, col, s->err);
}

static void release_big(struct pipeline_parser *p)
{
    if (p->str_cap > KEEP_BYTES) {
        free(p->str);
        p->str = NULL;
        p->str_cap = 0;
    }
    if (p->keys_cap * sizeof *p->keys > KEEP_BYTES) {
        free(p->keys);
        p->keys = NULL;
        p->keys_cap = 0;
    }
    if (p->mets_cap * sizeof *p->mets > KEEP_BYTES) {
        free(p->mets);
        p->mets = NULL;
        p->mets_cap = 0;
    }
    if (p->table_used) {
        if (p->table_cap * sizeof *p->table > KEEP_BYTES) {
            free(p->table);
            p->table = NULL;
            p->table_cap = 0;
        } else {
            memset(p->table, 0, p->table_cap * sizeof *p->table);
        }
        p->table_used = 0;
    }
}

int pipeline_parse(struct pipeline_parser *p, const struct pipeline_parse_args *a,
                   size_t *n, bool *array, char *err, size_t err_len)
{
    *n = 0;
    *array = false;
    if (err_len)
        err[0] = '\0';
    if (!grow((void **)&p->str, &p->str_cap, a->len + 1, 1))
        return CORE_ENOMEM;
    struct ps s = {p, a->text, a->text, a->text + a->len, p->str, 0, NULL, "",
                   CORE_OK};
    p->nkeys = 0;
    skip_ws(&s);
    if (s.at < s.end && *s.at == '[' && a->batch) {
        *array = true;
        s.at++;
        skip_ws(&s);
        if (s.at < s.end && *s.at == ']') {
            s.at++;
        } else {
            for (size_t i = 0;; i++) {
                if (!element(&s, a, i, i < a->max_msgs))
                    goto done;
                (*n)++;
                skip_ws(&s);
                if (s.at < s.end && *s.at == ',') {
                    s.at++;
                    skip_ws(&s);
                    continue;
                }
                if (s.at < s.end && *s.at == ']')
                    break;
                fail(&s, s.at, "',' or ']' expected");
                goto done;
            }
            s.at++;
        }
    } else if (s.at < s.end && (*s.at == '{' || *s.at == '[')) {
        /* One message, judged once the whole text is known to be JSON. */
        *array = *s.at == '[';
        struct msgstate ms = {0};
        p->nmets = 0;
        bool ok = *s.at == '{' ? message_object(&s, 1, &ms)
                               : any_value(&s, 1, NULL);
        if (!ok)
            goto done;
        skip_ws(&s);
        if (s.at < s.end) {
            fail(&s, s.at, "nothing may follow the message");
            goto done;
        }
        *n = 1;
        if (a->max_msgs > 0)
            deliver(&s, a, &ms, 0, a->text, a->text + a->len);
        goto done;
    } else {
        fail(&s, s.at, "'{' or '[' expected");
        goto done;
    }
    skip_ws(&s);
    if (s.at < s.end)
        fail(&s, s.at, "nothing may follow the array");
done:
    if (s.rc == CORE_EPARSE && err_len)
        where(&s, err, err_len);
    release_big(p);
    return s.rc;
}

struct one_ctx {
    struct pipeline_msg *m;
    char *reason;
    size_t reason_len;
    bool got;
};

static int one_cb(size_t index, struct pipeline_msg *m, const char *reason,
                  void *ctx)
{
    struct one_ctx *o = ctx;
    if (m) {
        *o->m = *m;
        o->got = true;
        return CORE_OK;
    }
    snprintf(o->reason, o->reason_len, "%s", reason);
    return CORE_EINVAL;
}

int pipeline_parse_one(const char *text, size_t len, int64_t received_ms,
                       const struct pipeline_limits *lim,
                       struct pipeline_msg *m, char *reason, size_t reason_len)
{
    memset(m, 0, sizeof *m);
    struct pipeline_parser *p = pipeline_parser_local();
    if (!p)
        return CORE_ENOMEM;
    struct one_ctx o = {m, reason, reason_len, false};
    struct pipeline_parse_args a = {text, len, false, 1, received_ms, lim,
                                    one_cb, &o};
    size_t n;
    bool array;
    int rc = pipeline_parse(p, &a, &n, &array, reason, reason_len);
    if (rc && o.got)
        pipeline_msg_fini(m);
    return rc;
}

int pipeline_parse_stored(const char *what, const char *text, size_t len,
                          int64_t received_ms,
                          const struct pipeline_limits *lim,
                          struct pipeline_msg *m, char *reason,
                          size_t reason_len)
{
    char why[200];
    int rc = pipeline_parse_one(text, len, received_ms, lim, m, why, sizeof why);
    if (rc == CORE_EPARSE)
        snprintf(reason, reason_len, "%s is not JSON: %s", what, why);
    else if (rc == CORE_EINVAL)
        snprintf(reason, reason_len, "%s", why);
    return rc == CORE_EPARSE ? CORE_EINVAL : rc;
}
