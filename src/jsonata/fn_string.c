/*
 * String functions: $string, $length, $substring..., $pad, $trim, case,
 * $contains/$split/$match/$replace (string or regex), base64, URL
 * encoding, and $eval. Lengths and offsets are in code points.
 */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wctype.h>

#include "functions.h"

/* JSON has no infinities: the reference raises D1001 for them. */
static void check_finite(struct jn_ctx *c, jv *v, int depth)
{
    if (!v)
        return;
    if (depth > JN_MAX_NESTING)
        jn_too_deep(c);
    if (v->kind == JN_NUMBER && !isfinite(v->u.num))
        jn_throw(c, "D1001", -1, v);
    if (v->kind == JN_ARRAY) {
        jn_arr_load(c, v);
        for (uint32_t i = 0; i < v->u.arr.len; i++)
            check_finite(c, v->u.arr.items[i], depth + 1);
    } else if (v->kind == JN_OBJECT && !v->u.obj->json) {
        for (uint32_t i = 0; i < v->u.obj->len; i++)
            check_finite(c, v->u.obj->pairs[i].val, depth + 1);
    }
}

jv *jn_fn_string_of(struct jn_ctx *c, jv *v, bool pretty)
{
    if (!v)
        return NULL;
    if (v->kind == JN_STRING)
        return v;
    if (v->kind == JN_FUNCTION)
        return jn_str_ref(c, "", 0);
    if (v->kind == JN_NUMBER && !isfinite(v->u.num))
        jn_throw(c, "D3001", -1, v);
    check_finite(c, v, 0);
    struct core_buf *b = jn_buf_new(c);
    jn_stringify(c, b, v, pretty ? 2 : 0, 0);
    return jn_buf_to_str(c, b);
}

JN_FN(jn_fn_string)
{
    jv *p = ARG(1), *v = ARG(0);
    if (jn_is_array(v) && (v->flags & JN_OUTER))
        v = jn_arr_load(c, v)->u.arr.items[0];
    return jn_fn_string_of(c, v, p && p->kind == JN_BOOL && p->u.b);
}

JN_FN(jn_fn_length)
{
    jv *s = ARG(0);
    if (!s)
        return NULL;
    return jn_num(c, (double)jn_utf8_len(s->u.str.ptr, s->u.str.len));
}

/* JS-style truncation of a position argument. */
static double to_int(double d)
{
    if (isnan(d))
        return 0;
    return trunc(d);
}

JN_FN(jn_fn_substring)
{
    jv *s = ARG(0), *st = ARG(1), *ln = ARG(2);
    if (!s || !st)
        return s;
    double len = (double)jn_utf8_len(s->u.str.ptr, s->u.str.len);
    double start = to_int(st->u.num);
    if (len + start < 0)
        start = 0;
    double end = len;
    if (ln) {
        double l = ln->u.num;
        if (l <= 0)
            return jn_str_ref(c, "", 0);
        end = start >= 0 ? start + l : len + start + l;
        end = to_int(end);
    }
    /* Array.prototype.slice semantics */
    if (start < 0)
        start = len + start < 0 ? 0 : len + start;
    if (start > len)
        start = len;
    if (end < 0)
        end = len + end < 0 ? 0 : len + end;
    if (end > len)
        end = len;
    if (end <= start)
        return jn_str_ref(c, "", 0);
    size_t b0 = jn_utf8_offset(s->u.str.ptr, s->u.str.len, (size_t)start);
    size_t b1 = jn_utf8_offset(s->u.str.ptr, s->u.str.len, (size_t)end);
    return jn_str(c, s->u.str.ptr + b0, b1 - b0);
}

static const char *find_str(const jv *hay, const jv *needle, size_t from)
{
    if (needle->u.str.len == 0)
        return hay->u.str.ptr + from;
    return memmem(hay->u.str.ptr + from, hay->u.str.len - from,
                  needle->u.str.ptr, needle->u.str.len);
}

JN_FN(jn_fn_substring_before)
{
    jv *s = ARG(0), *t = ARG(1);
    if (!s || !t)
        return s;
    const char *p = find_str(s, t, 0);
    if (!p)
        return s;
    return jn_str(c, s->u.str.ptr, (size_t)(p - s->u.str.ptr));
}

JN_FN(jn_fn_substring_after)
{
    jv *s = ARG(0), *t = ARG(1);
    if (!s || !t)
        return s;
    const char *p = find_str(s, t, 0);
    if (!p)
        return s;
    size_t off = (size_t)(p - s->u.str.ptr) + t->u.str.len;
    return jn_str(c, s->u.str.ptr + off, s->u.str.len - off);
}

/* Unicode simple case mappings from the C.UTF-8 locale (loaded once;
 * the *_l functions leave the process locale alone), plus the one full
 * mapping that matters in practice: "ß" upper-cases to "SS". */
static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void utf8_locale_load(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static jv *map_case(struct jn_ctx *c, jv *s, bool upper)
{
    if (!s)
        return NULL;
    pthread_once(&utf8_once, utf8_locale_load);
    struct core_buf *b = jn_buf_new(c);
    size_t i = 0;
    while (i < s->u.str.len) {
        size_t st = i;
        uint32_t cp = (uint32_t)jn_utf8_decode(s->u.str.ptr, s->u.str.len, &i);
        uint32_t m = cp;
        if (cp < 0x80) {
            if (upper && cp >= 'a' && cp <= 'z')
                m = cp - 32;
            else if (!upper && cp >= 'A' && cp <= 'Z')
                m = cp + 32;
        } else if (upper && cp == 0xDF) {
            core_buf_puts(b, "SS");
            continue;
        } else if (utf8_locale && (cp < 0xD800 || cp > 0xDFFF)) {
            m = upper ? (uint32_t)towupper_l((wint_t)cp, utf8_locale)
                      : (uint32_t)towlower_l((wint_t)cp, utf8_locale);
        }
        if (m == cp)
            core_buf_append(b, s->u.str.ptr + st, i - st);
        else
            jn_utf8_put(b, m);
    }
    return jn_buf_to_str(c, b);
}

JN_FN(jn_fn_uppercase)
{
    return map_case(c, ARG(0), true);
}

JN_FN(jn_fn_lowercase)
{
    return map_case(c, ARG(0), false);
}

JN_FN(jn_fn_trim)
{
    jv *s = ARG(0);
    if (!s)
        return NULL;
    struct core_buf *b = jn_buf_new(c);
    bool space = false;
    for (size_t i = 0; i < s->u.str.len; i++) {
        char ch = s->u.str.ptr[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            space = true;
            continue;
        }
        if (space && b->len > 0)
            core_buf_putc(b, ' ');
        space = false;
        core_buf_putc(b, ch);
    }
    return jn_buf_to_str(c, b);
}

JN_FN(jn_fn_pad)
{
    jv *s = ARG(0), *w = ARG(1), *ch = ARG(2);
    if (!s || !w)
        return s;
    const char *pc = " ";
    size_t pcl = 1;
    if (ch && ch->u.str.len) {
        pc = ch->u.str.ptr;
        pcl = ch->u.str.len;
    }
    double width = to_int(w->u.num);
    size_t len = jn_utf8_len(s->u.str.ptr, s->u.str.len);
    double need = fabs(width) - (double)len;
    if (need <= 0)
        return s;
    if (need > 1 << 28)
        jn_throw(c, "D1001", -1, w);
    struct core_buf *pad = jn_buf_new(c);
    size_t pcn = jn_utf8_len(pc, pcl);
    size_t count = 0;
    while (count < (size_t)need) {
        size_t take = (size_t)need - count;
        if (take >= pcn) {
            core_buf_append(pad, pc, pcl);
            count += pcn;
        } else {
            core_buf_append(pad, pc, jn_utf8_offset(pc, pcl, take));
            count += take;
        }
    }
    struct core_buf *b = jn_buf_new(c);
    if (width < 0)
        core_buf_append(b, pad->data, pad->len);
    core_buf_append(b, s->u.str.ptr, s->u.str.len);
    if (width > 0)
        core_buf_append(b, pad->data, pad->len);
    jn_buf_free(c, pad);
    return jn_buf_to_str(c, b);
}

JN_FN(jn_fn_contains)
{
    jv *s = ARG(0), *t = ARG(1);
    if (!s || !t)
        return NULL;
    if (t->kind == JN_STRING)
        return jn_bool(find_str(s, t, 0) != NULL);
    size_t ms, me;
    struct jn_matcher m;
    jn_matcher_init(&m, t, s);
    return jn_bool(jn_matcher_next(c, &m, &ms, &me) != NULL);
}

static void push_piece(struct jn_ctx *c, jv *r, const char *p, size_t n)
{
    jn_arr_push(c, r, jn_str(c, p, n));
}

JN_FN(jn_fn_split)
{
    jv *s = ARG(0), *sep = ARG(1), *lim = ARG(2);
    if (!s || !sep)
        return NULL;
    double limit = -1;
    if (lim) {
        if (lim->u.num < 0)
            jn_throw(c, "D3020", -1, lim);
        limit = floor(lim->u.num);
    }
    jv *r = jn_arr_new(c, 4);
    const char *str = s->u.str.ptr;
    size_t len = s->u.str.len;
    if (sep->kind == JN_STRING) {
        if (sep->u.str.len == 0) {
            size_t i = 0;
            while (i < len) {
                size_t st = i;
                jn_utf8_decode(str, len, &i);
                push_piece(c, r, str + st, i - st);
            }
        } else {
            size_t pos = 0;
            for (;;) {
                const char *p = memmem(str + pos, len - pos, sep->u.str.ptr, sep->u.str.len);
                if (!p) {
                    push_piece(c, r, str + pos, len - pos);
                    break;
                }
                push_piece(c, r, str + pos, (size_t)(p - str) - pos);
                pos = (size_t)(p - str) + sep->u.str.len;
            }
        }
    } else {
        struct jn_matcher m;
        jn_matcher_init(&m, sep, s);
        size_t ms, me, pos = 0;
        double count = 0;
        jv *mt = jn_matcher_next(c, &m, &ms, &me);
        if (!mt) {
            push_piece(c, r, str, len);
        } else {
            while (mt && (limit < 0 || count < limit)) {
                push_piece(c, r, str + pos, ms > pos ? ms - pos : 0);
                pos = me;
                mt = jn_matcher_next(c, &m, &ms, &me);
                count++;
            }
            if (limit < 0 || count < limit)
                push_piece(c, r, str + pos, len - pos);
        }
    }
    if (limit >= 0 && r->u.arr.len > limit)
        r->u.arr.len = (uint32_t)limit;
    return r;
}

JN_FN(jn_fn_join)
{
    jv *arr = ARG(0), *sep = ARG(1);
    if (!arr)
        return NULL;
    jn_arr_load(c, arr);
    struct core_buf *b = jn_buf_new(c);
    for (uint32_t i = 0; i < arr->u.arr.len; i++) {
        if (i && sep)
            core_buf_append(b, sep->u.str.ptr, sep->u.str.len);
        jv *v = arr->u.arr.items[i];
        core_buf_append(b, v->u.str.ptr, v->u.str.len);
    }
    return jn_buf_to_str(c, b);
}

JN_FN(jn_fn_match)
{
    jv *s = ARG(0), *re = ARG(1), *lim = ARG(2);
    if (!s || !re)
        return NULL;
    double limit = INFINITY;
    if (lim) {
        if (lim->u.num < 0)
            jn_throw(c, "D3040", -1, lim);
        limit = lim->u.num;
    }
    jv *r = jn_seq_new(c);
    struct jn_matcher mt;
    jn_matcher_init(&mt, re, s);
    size_t ms, me;
    jv *m = jn_matcher_next(c, &mt, &ms, &me);
    while (m && r->u.arr.len < limit) {
        jv *o = jn_obj_new(c);
        jn_obj_set(c, o, "match", 5, jn_obj_get(c, m, "match", 5));
        jn_obj_set(c, o, "index", 5, jn_obj_get(c, m, "start", 5));
        jn_obj_set(c, o, "groups", 6, jn_obj_get(c, m, "groups", 6));
        jn_arr_push(c, r, o);
        m = jn_matcher_next(c, &mt, &ms, &me);
    }
    return r;
}

/* Expands $0, $1.., $$ in a replacement string for one match. */
static void expand_replacement(struct core_buf *b, const jv *rep, jv *m,
                               struct jn_ctx *c)
{
    jv *match = jn_obj_get(c, m, "match", 5);
    jv *groups = jn_obj_get(c, m, "groups", 6);
    jn_arr_load(c, groups);
    uint32_t ng = groups->u.arr.len;
    const char *r = rep->u.str.ptr;
    size_t n = rep->u.str.len, i = 0;
    while (i < n) {
        if (r[i] != '$' || i + 1 >= n) {
            core_buf_putc(b, r[i++]);
            continue;
        }
        char d = r[i + 1];
        if (d == '$') {
            core_buf_putc(b, '$');
            i += 2;
        } else if (d == '0') {
            core_buf_append(b, match->u.str.ptr, match->u.str.len);
            i += 2;
        } else if (d >= '1' && d <= '9') {
            int maxd = ng == 0 ? 1 : (int)floor(log10((double)ng)) + 1;
            size_t j = i + 1;
            int idx = 0, digits = 0;
            while (j < n && digits < maxd && r[j] >= '0' && r[j] <= '9') {
                idx = idx * 10 + (r[j] - '0');
                j++;
                digits++;
            }
            if (maxd > 1 && (uint32_t)idx > ng && digits > 1) {
                idx /= 10;
                j--;
            }
            if (ng > 0 && idx >= 1 && (uint32_t)idx <= ng) {
                jv *g = groups->u.arr.items[idx - 1];
                if (jn_is_str(g))
                    core_buf_append(b, g->u.str.ptr, g->u.str.len);
            }
            i = j;
        } else {
            core_buf_putc(b, '$');
            i++;
        }
    }
}

JN_FN(jn_fn_replace)
{
    jv *s = ARG(0), *pat = ARG(1), *rep = ARG(2), *lim = ARG(3);
    if (!s || !pat || !rep)
        return s;
    if (pat->kind == JN_STRING && pat->u.str.len == 0)
        jn_throw(c, "D3010", -1, pat);
    double limit = INFINITY;
    if (lim) {
        if (lim->u.num < 0)
            jn_throw(c, "D3011", -1, lim);
        limit = lim->u.num;
    }
    struct core_buf *b = jn_buf_new(c);
    size_t pos = 0;
    double count = 0;
    const char *str = s->u.str.ptr;
    size_t len = s->u.str.len;
    if (pat->kind == JN_STRING) {
        /* a string pattern is replaced literally */
        const char *p;
        while (count < limit &&
               (p = memmem(str + pos, len - pos, pat->u.str.ptr, pat->u.str.len))) {
            size_t ms = (size_t)(p - str);
            core_buf_append(b, str + pos, ms - pos);
            if (rep->kind == JN_STRING) {
                core_buf_append(b, rep->u.str.ptr, rep->u.str.len);
            } else {
                jv *m = jn_obj_new(c);
                jn_obj_set(c, m, "match", 5, pat);
                jn_obj_set(c, m, "index", 5, jn_num(c, (double)jn_utf8_len(str, ms)));
                jn_obj_set(c, m, "groups", 6, jn_arr_new(c, 0));
                jv *out = jn_apply(c, rep, &m, 1, NULL, NULL, -1);
                if (!jn_is_str(out))
                    jn_throw(c, "D3012", -1, out);
                core_buf_append(b, out->u.str.ptr, out->u.str.len);
            }
            pos = ms + pat->u.str.len;
            count++;
        }
    } else {
        struct jn_matcher mt;
        jn_matcher_init(&mt, pat, s);
        size_t ms, me;
        jv *m = jn_matcher_next(c, &mt, &ms, &me);
        while (m && count < limit) {
            if (ms > pos)
                core_buf_append(b, str + pos, ms - pos);
            if (rep->kind == JN_STRING) {
                expand_replacement(b, rep, m, c);
            } else {
                jv *out = jn_apply(c, rep, &m, 1, NULL, NULL, -1);
                if (!jn_is_str(out))
                    jn_throw(c, "D3012", -1, out);
                core_buf_append(b, out->u.str.ptr, out->u.str.len);
            }
            pos = me;
            count++;
            m = jn_matcher_next(c, &mt, &ms, &me);
        }
    }
    if (pos < len)
        core_buf_append(b, str + pos, len - pos);
    return jn_buf_to_str(c, b);
}

/* ----------------------------------------------------------------- base64 */
static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* btoa/atob work on "binary strings": code points up to U+00FF stand for
 * bytes. Wider characters are encoded as their UTF-8 bytes (btoa would
 * refuse them). */
JN_FN(jn_fn_base64encode)
{
    jv *s = ARG(0);
    if (!s)
        return NULL;
    struct core_buf *bytes = jn_buf_new(c);
    size_t i = 0;
    while (i < s->u.str.len) {
        size_t st = i;
        int cp = jn_utf8_decode(s->u.str.ptr, s->u.str.len, &i);
        if (cp <= 0xFF)
            core_buf_putc(bytes, (char)cp);
        else
            core_buf_append(bytes, s->u.str.ptr + st, i - st);
    }
    const unsigned char *p = (const unsigned char *)bytes->data;
    size_t len = bytes->len;
    struct core_buf *b = jn_buf_new(c);
    for (size_t k = 0; k < len; k += 3) {
        uint32_t v = (uint32_t)p[k] << 16;
        if (k + 1 < len)
            v |= (uint32_t)p[k + 1] << 8;
        if (k + 2 < len)
            v |= p[k + 2];
        core_buf_putc(b, b64[(v >> 18) & 63]);
        core_buf_putc(b, b64[(v >> 12) & 63]);
        core_buf_putc(b, k + 1 < len ? b64[(v >> 6) & 63] : '=');
        core_buf_putc(b, k + 2 < len ? b64[v & 63] : '=');
    }
    jn_buf_free(c, bytes);
    return jn_buf_to_str(c, b);
}

JN_FN(jn_fn_base64decode)
{
    jv *s = ARG(0);
    if (!s)
        return NULL;
    struct core_buf *b = jn_buf_new(c);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < s->u.str.len; i++) {
        if (!s->u.str.ptr[i])
            continue;
        const char *q = strchr(b64, s->u.str.ptr[i]);
        if (!q)
            continue;
        acc = (acc << 6) | (uint32_t)(q - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            jn_utf8_put(b, (acc >> bits) & 0xFF);
        }
    }
    return jn_buf_to_str(c, b);
}

/* -------------------------------------------------------------------- url */
static jv *url_encode(struct jn_ctx *c, jv *s, const char *keep)
{
    if (!s)
        return NULL;
    struct core_buf *b = jn_buf_new(c);
    size_t i = 0;
    while (i < s->u.str.len) {
        size_t st = i;
        int cp = jn_utf8_decode(s->u.str.ptr, s->u.str.len, &i);
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            jn_buf_free(c, b);
            jn_throw(c, "D3140", -1, s);
        }
        unsigned char ch = (unsigned char)s->u.str.ptr[st];
        if (cp < 0x80 && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                          (ch >= '0' && ch <= '9') || (ch && strchr(keep, ch)))) {
            core_buf_putc(b, (char)ch);
            continue;
        }
        for (size_t k = st; k < i; k++)
            core_buf_printf(b, "%%%02X", (unsigned char)s->u.str.ptr[k]);
    }
    return jn_buf_to_str(c, b);
}

JN_FN(jn_fn_encode_url_component)
{
    return url_encode(c, ARG(0), "-_.!~*'()");
}

JN_FN(jn_fn_encode_url)
{
    return url_encode(c, ARG(0), "-_.!~*'();/?:@&=+$,#");
}

static int hexv(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static jv *url_decode(struct jn_ctx *c, jv *s, const char *reserved,
                      const char *fname)
{
    if (!s)
        return NULL;
    struct core_buf *b = jn_buf_new(c);
    const char *p = s->u.str.ptr;
    size_t len = s->u.str.len;
    for (size_t i = 0; i < len;) {
        if (p[i] != '%') {
            core_buf_putc(b, p[i++]);
            continue;
        }
        if (i + 2 >= len)
            goto bad;
        int h = hexv(p[i + 1]), l = hexv(p[i + 2]);
        if (h < 0 || l < 0)
            goto bad;
        unsigned char byte = (unsigned char)(h * 16 + l);
        if (byte < 0x80) {
            if (strchr(reserved, byte) && byte)
                core_buf_append(b, p + i, 3);
            else
                core_buf_putc(b, (char)byte);
            i += 3;
            continue;
        }
        /* a UTF-8 sequence of escaped bytes */
        int extra = byte >= 0xF0 ? 3 : byte >= 0xE0 ? 2 : byte >= 0xC0 ? 1 : -1;
        if (extra < 0)
            goto bad;
        char seq[4];
        seq[0] = (char)byte;
        size_t j = i + 3;
        for (int k = 1; k <= extra; k++) {
            if (j + 2 >= len || p[j] != '%')
                goto bad;
            int hh = hexv(p[j + 1]), ll = hexv(p[j + 2]);
            if (hh < 0 || ll < 0 || ((hh * 16 + ll) & 0xC0) != 0x80)
                goto bad;
            seq[k] = (char)(hh * 16 + ll);
            j += 3;
        }
        core_buf_append(b, seq, (size_t)extra + 1);
        i = j;
    }
    return jn_buf_to_str(c, b);
bad:
    jn_buf_free(c, b);
    {
        struct core_buf *m = jn_buf_new(c);
        core_buf_printf(m, "Malformed URL passed to %s(): ", fname);
        core_buf_json_string(m, s->u.str.ptr);
        jv *msg = jn_buf_to_str(c, m);
        jn_throw_msg(c, "D3140", msg->u.str.ptr);
    }
}

JN_FN(jn_fn_decode_url_component)
{
    return url_decode(c, ARG(0), "", "$decodeUrlComponent");
}

JN_FN(jn_fn_decode_url)
{
    return url_decode(c, ARG(0), ";/?:@&=+$,#", "$decodeUrl");
}

/* ------------------------------------------------------------------- eval */
void jn__ctx_keep_expr(struct jn_ctx *c, struct jsonata_expr *x);

JN_FN(jn_fn_eval)
{
    jv *src = ARG(0), *focus = ARG(1);
    if (!src)
        return NULL;
    struct jsonata_expr *x = NULL;
    struct jsonata_error perr;
    memset(&perr, 0, sizeof(perr));
    if (jn__compile(src->u.str.ptr, &x, &perr) != 0)
        jn_throw_msg(c, "D3120", jn_strz(c, perr.message)->u.str.ptr);
    jn__ctx_keep_expr(c, x);
    jv *input = in;
    if (focus) {
        input = focus;
        if (jn_is_array(input) && !(input->flags & JN_SEQ)) {
            input = jn_seq_of(c, input);
            input->flags |= JN_OUTER;
        }
    }
    jmp_buf saved;
    memcpy(&saved, &c->jmp, sizeof(saved));
    int saved_depth = c->depth;
    if (setjmp(c->jmp)) {
        memcpy(&c->jmp, &saved, sizeof(saved));
        if (c->status == CORE_ENOMEM)
            jn_oom(c);
        c->depth = saved_depth;
        c->skip_stages = NULL;
        /* the inner error's message becomes this one's */
        const char *inner = jn__error_message(c);
        memset(&c->err, 0, sizeof(c->err));
        c->err.position = -1;
        c->err.token = "eval";
        jn_throw_msg(c, "D3121", inner);
    }
    jv *r = jn_eval(c, x->root, input, c->call_env ? c->call_env : c->global);
    memcpy(&c->jmp, &saved, sizeof(saved));
    return r;
}
