/*
 * Regular expressions: JavaScript regex literals compiled with PCRE2,
 * whose syntax is close to JavaScript's with these options: \u escapes
 * (ALT_BSUX), '$' only at the very end unless /m (DOLLAR_ENDONLY), unset
 * back-references matching empty, and tolerance of the lone surrogates a
 * string may hold (MATCH_INVALID_UTF).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "jn_internal.h"

pcre2_code *jn_regex_compile(const char *pat, size_t len, const char *flags,
                             const char **errcode)
{
    uint32_t opts = PCRE2_UTF | PCRE2_ALT_BSUX | PCRE2_DOLLAR_ENDONLY |
                    PCRE2_MATCH_UNSET_BACKREF | PCRE2_ALLOW_EMPTY_CLASS |
                    PCRE2_MATCH_INVALID_UTF;
    for (const char *f = flags; f && *f; f++) {
        if (*f == 'i')
            opts |= PCRE2_CASELESS;
        else if (*f == 'm')
            opts |= PCRE2_MULTILINE;
    }
    /* Places where JavaScript's syntax means something else in PCRE:
     * without the u flag (JSONata has none) \p and \P are just the
     * letters, and \s also matches Unicode spaces, which PCRE's \s does
     * not outside UCP mode (UCP would also widen \d and \w, which
     * JavaScript keeps ASCII). */
    static const char js_space[] =
        "\\s\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f"
        "\\u3000\\ufeff";
    char *src = malloc(len * (sizeof(js_space) + 4) + 1);
    if (!src) {
        *errcode = "S0303";
        return NULL;
    }
    size_t n = 0;
    bool in_class = false;
    for (size_t i = 0; i < len; i++) {
        char ch = pat[i];
        if (ch == '\\' && i + 1 < len) {
            char e = pat[++i];
            if (e == 'p' || e == 'P') {
                src[n++] = e;
            } else if (e == 's' && in_class) {
                memcpy(src + n, js_space, sizeof(js_space) - 1);
                n += sizeof(js_space) - 1;
            } else if ((e == 's' || e == 'S') && !in_class) {
                src[n++] = '[';
                if (e == 'S')
                    src[n++] = '^';
                memcpy(src + n, js_space, sizeof(js_space) - 1);
                n += sizeof(js_space) - 1;
                src[n++] = ']';
            } else {
                src[n++] = ch;
                src[n++] = e;
            }
            continue;
        }
        if (!in_class && ch == '[') {
            in_class = true;
            src[n++] = ch;
            /* a ']' right after '[' or '[^' is a literal in JavaScript
             * only as "[]" (empty class); keep the text as it is */
            if (i + 1 < len && pat[i + 1] == '^')
                src[n++] = pat[++i];
            continue;
        }
        if (in_class && ch == ']')
            in_class = false;
        if (!in_class && ch == '.') {
            /* '.' stops at every JavaScript line terminator */
            static const char js_dot[] = "[^\\n\\r\\u2028\\u2029]";
            memcpy(src + n, js_dot, sizeof(js_dot) - 1);
            n += sizeof(js_dot) - 1;
            continue;
        }
        src[n++] = ch;
    }
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, n, opts, &ec, &eo, NULL);
    free(src);
    if (!re) {
        *errcode = "S0303";
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

jv *jn_regex_exec(struct jn_ctx *c, jv *rev, jv *str, size_t start,
                  size_t *mstart, size_t *mend)
{
    if (!jn_is_fn(rev) || rev->u.fn->kind != FN_REGEX)
        jn_throw(c, "T1010", -1, NULL);
    const pcre2_code *re = rev->u.fn->node->re;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md)
        jn_oom(c);
    int rc = pcre2_match(re, (PCRE2_SPTR)str->u.str.ptr, str->u.str.len, start,
                         0, md, NULL);
    if (rc <= 0) {
        pcre2_match_data_free(md);
        return NULL;
    }
    uint32_t ng = pcre2_get_ovector_count(md);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    /* copy out before anything can unwind */
    size_t *offs = jn_alloc(c, 2 * ng * sizeof(size_t));
    for (uint32_t i = 0; i < 2 * ng; i++)
        offs[i] = ov[i];
    uint32_t capture_count = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &capture_count);
    pcre2_match_data_free(md);
    *mstart = offs[0];
    *mend = offs[1];
    const char *s = str->u.str.ptr;
    jv *m = jn_obj_new(c);
    jn_obj_set(c, m, "match", 5, jn_str(c, s + offs[0], offs[1] - offs[0]));
    jn_obj_set(c, m, "start", 5,
               jn_num(c, (double)jn_utf8_len(s, offs[0])));
    jn_obj_set(c, m, "end", 3, jn_num(c, (double)jn_utf8_len(s, offs[1])));
    jv *groups = jn_arr_new(c, capture_count);
    for (uint32_t i = 1; i <= capture_count; i++) {
        /* a group that took no part in the match is undefined */
        if (i < ng && offs[2 * i] != PCRE2_UNSET)
            jn_arr_push(c, groups, jn_str(c, s + offs[2 * i],
                                          offs[2 * i + 1] - offs[2 * i]));
        else
            jn_arr_push(c, groups, NULL);
    }
    jn_obj_set(c, m, "groups", 6, groups);
    return m;
}

void jn_matcher_init(struct jn_matcher *m, jv *fn, jv *str)
{
    m->fn = fn;
    m->str = str;
    m->last = NULL;
    m->started = false;
    m->custom = !(jn_is_fn(fn) && fn->u.fn->kind == FN_REGEX);
    m->last_end = 0;
}

/* Regexes iterate as the reference's global JavaScript regexes do: each
 * match after the first starts where the previous one ended, iteration
 * stops at the end of the string, and a later empty match (which would
 * never progress) is error D1004. A matcher written in JSONata returns
 * {match, start, end, groups, next} with code-point offsets, and next()
 * gives the following match. */
jv *jn_matcher_next(struct jn_ctx *c, struct jn_matcher *m, size_t *mstart,
                    size_t *mend)
{
    const char *s = m->str->u.str.ptr;
    size_t n = m->str->u.str.len;
    if (!m->custom) {
        bool first = !m->started;
        m->started = true;
        if (!first && m->last_end >= n)
            return NULL;
        jv *r = jn_regex_exec(c, m->fn, m->str, first ? 0 : m->last_end, mstart, mend);
        if (r && !first && *mstart == *mend)
            jn_throw(c, "D1004", -1, NULL);
        if (r)
            m->last_end = *mend;
        return r;
    }
    jv *r;
    if (!m->started) {
        m->started = true;
        r = jn_apply(c, m->fn, &m->str, 1, NULL, NULL, -1);
    } else {
        jv *next = m->last ? jn_obj_get(c, m->last, "next", 4) : NULL;
        if (!jn_is_fn(next))
            return NULL;
        r = jn_apply(c, next, NULL, 0, NULL, NULL, -1);
    }
    if (!r)
        return NULL;
    jv *st = jn_is_obj(r) ? jn_obj_get(c, r, "start", 5) : NULL;
    jv *en = jn_is_obj(r) ? jn_obj_get(c, r, "end", 3) : NULL;
    jv *groups = jn_is_obj(r) ? jn_obj_get(c, r, "groups", 6) : NULL;
    if (!jn_is_num(st) || !jn_is_num(en) || !jn_is_array(groups))
        jn_throw(c, "T1010", -1, NULL);
    *mstart = jn_utf8_offset(s, n, st->u.num < 0 ? 0 : (size_t)st->u.num);
    *mend = jn_utf8_offset(s, n, en->u.num < 0 ? 0 : (size_t)en->u.num);
    if (*mend < *mstart)
        *mend = *mstart;
    if (!jn_obj_get(c, r, "match", 5))
        jn_obj_set(c, r, "match", 5, jn_str(c, s + *mstart, *mend - *mstart));
    m->last = r;
    return r;
}
