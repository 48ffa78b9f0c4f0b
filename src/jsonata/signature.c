/*
 * Function signatures ("<s-nn?:s>"): parsing and argument validation with
 * the reference's rules — optional and one-or-more modifiers, the context
 * value standing in for a missing first argument ('-'), arrays accepting
 * single values, and typed arrays (a<n>).
 */
#include <string.h>

#include "jn_internal.h"

static const char *class_for(char t)
{
    switch (t) {
    case 's': return "sm";
    case 'n': return "nm";
    case 'b': return "bm";
    case 'l': return "lm";
    case 'o': return "om";
    case 'a': return "asnblfom";
    case 'f': return "f";
    case 'j': return "asnblom";
    case 'x': return "asnblfom";
    case 'u': return "snblm";
    default: return NULL;
    }
}

struct jn_sig *jn_sig_parse(struct jn_arena *a, const char *text)
{
    struct jn_sig *s = jn_arena_alloc(a, sizeof(*s));
    memset(s, 0, sizeof(*s));
    s->text = text;
    const char *p = text;
    if (*p != '<')
        return NULL;
    p++;
    struct jn_sig_param *prev = NULL;
    while (*p && *p != '>' && *p != ':') {
        char ch = *p;
        if (ch == '?' || ch == '+') {
            if (!prev)
                return NULL;
            prev->mod = ch;
            p++;
            continue;
        }
        if (ch == '-') {
            if (!prev)
                return NULL;
            prev->context = true;
            p++;
            continue;
        }
        if (ch == '<') {
            if (!prev || (prev->type != 'a' && prev->type != 'f'))
                return NULL; /* S0401 */
            int depth = 1;
            const char *q = p + 1;
            if (prev->type == 'a' && *q && *q != '>')
                prev->sub = *q;
            while (*q && depth) {
                if (*q == '<')
                    depth++;
                else if (*q == '>')
                    depth--;
                q++;
            }
            if (depth)
                return NULL;
            p = q;
            continue;
        }
        if (s->nparams >= (int)(sizeof(s->params) / sizeof(*s->params)))
            return NULL;
        struct jn_sig_param *par = &s->params[s->nparams];
        memset(par, 0, sizeof(*par));
        if (ch == '(') {
            const char *q = p + 1;
            int k = 0;
            while (*q && *q != ')') {
                if (*q == '<')
                    return NULL; /* S0402 */
                const char *cl = class_for(*q);
                if (!cl)
                    return NULL;
                if (k < 10 && !strchr(par->cls, *q))
                    par->cls[k++] = *q;
                q++;
            }
            if (!*q)
                return NULL;
            par->cls[k++] = 'm';
            par->cls[k] = 0;
            par->type = '(';
            p = q + 1;
        } else {
            const char *cl = class_for(ch);
            if (!cl)
                return NULL;
            strcpy(par->cls, cl);
            par->type = ch;
            p++;
        }
        s->nparams++;
        prev = par;
    }
    if (*p != '>' && *p != ':')
        return NULL;
    return s;
}

static char symbol_of(const jv *v)
{
    if (!v)
        return 'm';
    switch (v->kind) {
    case JN_NULL: return 'l';
    case JN_BOOL: return 'b';
    case JN_NUMBER: return 'n';
    case JN_STRING: return 's';
    case JN_ARRAY: return 'a';
    case JN_OBJECT: return 'o';
    default: return 'f';
    }
}

/* Matches params[pi..npar) against sym[si..nsym). With anchored, the whole
 * string must be consumed; otherwise the match length goes to *end. */
static bool match_from(const struct jn_sig *s, int pi, int npar,
                       const char *sym, int si, int nsym, int *counts,
                       bool anchored, int *end)
{
    if (pi == npar) {
        if (anchored && si != nsym)
            return false;
        *end = si;
        return true;
    }
    const struct jn_sig_param *p = &s->params[pi];
    int min = 1, max = 1;
    if (p->mod == '+')
        max = nsym - si;
    else if (p->mod == '?' || p->context)
        min = 0;
    int avail = 0;
    while (si + avail < nsym && avail < max && strchr(p->cls, sym[si + avail]))
        avail++;
    for (int k = avail; k >= min; k--) {
        counts[pi] = k;
        if (match_from(s, pi + 1, npar, sym, si + k, nsym, counts, anchored, end))
            return true;
    }
    return false;
}

void jn_validate_args(struct jn_ctx *c, const struct jn_sig *s, jv **args,
                     int nargs, jv *input, jv ***out_args, int *out_n,
                     int position)
{
    char sym[64];
    int counts[16];
    int end;
    if (nargs > 60)
        jn_throw(c, "T0410", position, NULL);
    for (int i = 0; i < nargs; i++)
        sym[i] = symbol_of(args[i]);
    sym[nargs] = 0;
    if (!match_from(s, 0, s->nparams, sym, 0, nargs, counts, true, &end)) {
        int good = 0;
        for (int k = 1; k <= s->nparams; k++) {
            int cnt[16];
            if (!match_from(s, 0, k, sym, 0, nargs, cnt, false, &end))
                break;
            good = end;
        }
        c->err.index = good + 1;
        jn_throw(c, "T0410", position, good < nargs ? args[good] : NULL);
    }
    jv **out = jn_alloc(c, (size_t)(s->nparams * 2 + nargs + 1) * sizeof(jv *));
    int n = 0, ai = 0;
    for (int pi = 0; pi < s->nparams; pi++) {
        const struct jn_sig_param *p = &s->params[pi];
        if (counts[pi] == 0) {
            if (p->context) {
                char cs = symbol_of(input);
                if (!strchr(p->cls, cs)) {
                    c->err.index = ai + 1;
                    jn_throw(c, "T0411", position, input);
                }
                out[n++] = input;
            } else {
                out[n++] = ai < nargs ? args[ai] : NULL;
                ai++;
            }
            continue;
        }
        for (int k = 0; k < counts[pi]; k++, ai++) {
            jv *arg = args[ai];
            if (p->type == 'a' && arg) {
                if (p->sub) {
                    bool ok = true;
                    if (arg->kind != JN_ARRAY) {
                        ok = symbol_of(arg) == p->sub;
                    } else {
                        jn_arr_load(c, arg);
                        for (uint32_t i = 0; i < arg->u.arr.len && ok; i++)
                            ok = symbol_of(arg->u.arr.items[i]) == p->sub;
                    }
                    if (!ok) {
                        c->err.index = ai + 1;
                        c->err.type = p->sub;
                        jn_throw(c, "T0412", position, arg);
                    }
                }
                if (arg->kind != JN_ARRAY) {
                    jv *w = jn_arr_new(c, 1);
                    w->u.arr.items[0] = arg;
                    w->u.arr.len = 1;
                    arg = w;
                }
            }
            out[n++] = arg;
        }
    }
    while (ai < nargs)
        out[n++] = args[ai++];
    *out_args = out;
    *out_n = n;
}
