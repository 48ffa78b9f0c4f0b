/*
 * $formatNumber: XPath F&O 3.1 format-number pictures (§4.7), with the
 * reference's choices where the spec leaves room. The picture is worked
 * on as code points so that any zero-digit family, per-mille sign or
 * separator works.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions.h"

double jn_round_half_even(double v, int precision);

#define MAXP 256

struct cps {
    uint32_t c[MAXP];
    int n;
};

struct fmt_props {
    uint32_t dec, grp, exp, minus, pct, pml, zero, digit, pat;
};

static void cps_of(const char *s, size_t n, struct cps *out)
{
    size_t i = 0;
    out->n = 0;
    while (i < n && out->n < MAXP)
        out->c[out->n++] = (uint32_t)jn_utf8_decode(s, n, &i);
}

static int cps_index(const uint32_t *c, int n, uint32_t ch, int from)
{
    for (int i = from < 0 ? 0 : from; i < n; i++)
        if (c[i] == ch)
            return i;
    return -1;
}

static int cps_last(const uint32_t *c, int n, uint32_t ch)
{
    for (int i = n - 1; i >= 0; i--)
        if (c[i] == ch)
            return i;
    return -1;
}

struct sub_picture {
    const uint32_t *c; /* the sub-picture */
    int n;
    int prefix, suffix_start;    /* prefix = c[0..prefix), suffix = c[suffix_start..n) */
    int act_start, act_len;      /* active part */
    int man_len;                 /* mantissa: active part [0..man_len) */
    bool has_exp;
    int exp_start, exp_len;      /* exponent part, relative to c */
    const uint32_t *ip; int ipn; /* integer part */
    const uint32_t *fp; int fpn; /* fractional part */
    /* analysis */
    int grouping[64];
    int ngrouping;
    int regular;
    int fgrouping[64];
    int nfgrouping;
    int min_int, scaling, min_frac, max_frac, min_exp;
};

static bool in_family(const struct fmt_props *p, uint32_t ch)
{
    return ch >= p->zero && ch <= p->zero + 9;
}

static bool is_active(const struct fmt_props *p, uint32_t ch)
{
    return in_family(p, ch) || ch == p->dec || ch == p->exp || ch == p->grp ||
           ch == p->digit || ch == p->pat;
}

static void split_parts(const struct fmt_props *p, struct sub_picture *s)
{
    s->prefix = 0;
    for (s->prefix = 0; s->prefix < s->n; s->prefix++)
        if (is_active(p, s->c[s->prefix]) && s->c[s->prefix] != p->exp)
            break;
    if (s->prefix == s->n)
        s->prefix = 0;
    s->suffix_start = s->n;
    for (int i = s->n - 1; i >= 0; i--) {
        if (is_active(p, s->c[i]) && s->c[i] != p->exp) {
            s->suffix_start = i + 1;
            break;
        }
    }
    s->act_start = s->prefix;
    s->act_len = s->suffix_start - s->prefix;
    if (s->act_len < 0)
        s->act_len = 0;
    int ep = cps_index(s->c, s->n, p->exp, s->prefix);
    const uint32_t *act = s->c + s->act_start;
    if (ep == -1 || ep > s->suffix_start) {
        s->man_len = s->act_len;
        s->has_exp = false;
    } else {
        /* the reference slices the active part at the sub-picture index */
        s->man_len = ep < s->act_len ? ep : s->act_len;
        s->has_exp = true;
        s->exp_start = s->act_start + ep + 1;
        s->exp_len = s->act_len - ep - 1;
        if (s->exp_len < 0)
            s->exp_len = 0;
    }
    int dp = cps_index(act, s->man_len, p->dec, 0);
    if (dp == -1) {
        s->ip = act;
        s->ipn = s->man_len;
        s->fp = s->c + s->suffix_start;
        s->fpn = s->n - s->suffix_start;
    } else {
        s->ip = act;
        s->ipn = dp;
        s->fp = act + dp + 1;
        s->fpn = s->man_len - dp - 1;
    }
}

static const char *validate(const struct fmt_props *p, const struct sub_picture *s)
{
    const char *error = NULL;
    const uint32_t *c = s->c;
    int n = s->n;
    int dp = cps_index(c, n, p->dec, 0);
    if (dp != cps_last(c, n, p->dec))
        error = "D3081";
    if (cps_index(c, n, p->pct, 0) != cps_last(c, n, p->pct))
        error = "D3082";
    if (cps_index(c, n, p->pml, 0) != cps_last(c, n, p->pml))
        error = "D3083";
    if (cps_index(c, n, p->pct, 0) != -1 && cps_index(c, n, p->pml, 0) != -1)
        error = "D3084";
    bool valid = false;
    const uint32_t *man = c + s->act_start;
    for (int i = 0; i < s->man_len; i++)
        if (in_family(p, man[i]) || man[i] == p->digit)
            valid = true;
    if (!valid)
        error = "D3085";
    for (int i = 0; i < s->act_len; i++)
        if (!is_active(p, c[s->act_start + i]))
            error = "D3086";
    if (dp != -1) {
        if ((dp > 0 && c[dp - 1] == p->grp) || (dp + 1 < n && c[dp + 1] == p->grp))
            error = "D3087";
    } else if (s->ipn > 0 && s->ip[s->ipn - 1] == p->grp) {
        error = "D3088";
    }
    for (int i = 0; i + 1 < n; i++)
        if (c[i] == p->grp && c[i + 1] == p->grp)
            error = "D3089";
    int od = cps_index(s->ip, s->ipn, p->digit, 0);
    if (od != -1)
        for (int i = 0; i < od; i++)
            if (in_family(p, s->ip[i]))
                error = "D3090";
    od = cps_last(s->fp, s->fpn, p->digit);
    if (od != -1)
        for (int i = od; i < s->fpn; i++)
            if (in_family(p, s->fp[i]))
                error = "D3091";
    if (s->has_exp && s->exp_len > 0 &&
        (cps_index(c, n, p->pct, 0) != -1 || cps_index(c, n, p->pml, 0) != -1))
        error = "D3092";
    if (s->has_exp) {
        bool bad = s->exp_len == 0;
        for (int i = 0; i < s->exp_len; i++)
            if (!in_family(p, c[s->exp_start + i]))
                bad = true;
        if (bad)
            error = "D3093";
    }
    return error;
}

static int count_digits(const struct fmt_props *p, const uint32_t *c, int n,
                        bool optional_too)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (in_family(p, c[i]) || (optional_too && c[i] == p->digit))
            k++;
    return k;
}

static void analyse(const struct fmt_props *p, struct sub_picture *s)
{
    /* grouping separators of the integer part, counted from the right */
    s->ngrouping = 0;
    int g = cps_index(s->ip, s->ipn, p->grp, 0);
    while (g != -1 && s->ngrouping < 64) {
        s->grouping[s->ngrouping++] = count_digits(p, s->ip + g, s->ipn - g, true);
        g = cps_index(s->ip, s->ipn, p->grp, g + 1);
    }
    s->regular = 0;
    if (s->ngrouping > 0) {
        int factor = s->grouping[0];
        for (int i = 1; i < s->ngrouping; i++) {
            int a = factor, b = s->grouping[i];
            while (b) {
                int t = a % b;
                a = b;
                b = t;
            }
            factor = a;
        }
        bool regular = factor > 0;
        for (int idx = 1; idx <= s->ngrouping && regular; idx++) {
            bool found = false;
            for (int i = 0; i < s->ngrouping; i++)
                found = found || s->grouping[i] == idx * factor;
            regular = found;
        }
        s->regular = regular ? factor : 0;
    }
    /* fractional grouping: the reference searches the integer part for the
     * next separator, so only the first one counts in practice */
    s->nfgrouping = 0;
    g = cps_index(s->fp, s->fpn, p->grp, 0);
    while (g != -1 && s->nfgrouping < 64) {
        s->fgrouping[s->nfgrouping++] = count_digits(p, s->fp, g, true);
        g = cps_index(s->ip, s->ipn, p->grp, g + 1);
    }
    s->min_int = count_digits(p, s->ip, s->ipn, false);
    s->scaling = s->min_int;
    s->min_frac = count_digits(p, s->fp, s->fpn, false);
    s->max_frac = count_digits(p, s->fp, s->fpn, true);
    if (s->min_int == 0 && s->max_frac == 0) {
        if (s->has_exp) {
            s->min_frac = 1;
            s->max_frac = 1;
        } else {
            s->min_int = 1;
        }
    }
    if (s->has_exp && s->min_int == 0 && cps_index(s->ip, s->ipn, p->digit, 0) != -1)
        s->min_int = 1;
    if (s->min_int == 0 && s->min_frac == 0)
        s->min_frac = 1;
    s->min_exp = s->has_exp ? count_digits(p, s->c + s->exp_start, s->exp_len, false) : 0;
}

static uint32_t prop_char(struct jn_ctx *c, jv *opts, const char *key,
                          uint32_t def)
{
    if (!opts)
        return def;
    jv *v = jn_obj_get(c, opts, key, strlen(key));
    if (!jn_is_str(v) || v->u.str.len == 0)
        return def;
    size_t i = 0;
    return (uint32_t)jn_utf8_decode(v->u.str.ptr, v->u.str.len, &i);
}

/* Appends the digits of |v| with dp decimals, in the zero-digit family. */
static void fixed_digits(struct cps *out, double v, int dp, uint32_t zero)
{
    char buf[400];
    snprintf(buf, sizeof(buf), "%.*f", dp, fabs(v));
    out->n = 0;
    for (char *q = buf; *q && out->n < MAXP; q++)
        out->c[out->n++] = *q >= '0' && *q <= '9' ? zero + (uint32_t)(*q - '0') : (uint32_t)*q;
}

/* Inserts ch before index pos with JavaScript's slice() rules, which the
 * reference relies on: a negative index counts from the end, a large
 * one means the end. */
static void insert_at(struct cps *s, int pos, uint32_t ch)
{
    if (pos < 0)
        pos = s->n + pos < 0 ? 0 : s->n + pos;
    if (pos > s->n)
        pos = s->n;
    if (s->n >= MAXP)
        return;
    memmove(s->c + pos + 1, s->c + pos, (size_t)(s->n - pos) * sizeof(uint32_t));
    s->c[pos] = ch;
    s->n++;
}

JN_FN(jn_fn_format_number)
{
    jv *v = ARG(0), *pic = ARG(1), *opts = ARG(2);
    if (!v || !pic)
        return NULL;
    struct fmt_props p = {
        .dec = prop_char(c, opts, "decimal-separator", '.'),
        .grp = prop_char(c, opts, "grouping-separator", ','),
        .exp = prop_char(c, opts, "exponent-separator", 'e'),
        .minus = prop_char(c, opts, "minus-sign", '-'),
        .pct = prop_char(c, opts, "percent", '%'),
        .pml = prop_char(c, opts, "per-mille", 0x2030),
        .zero = prop_char(c, opts, "zero-digit", '0'),
        .digit = prop_char(c, opts, "digit", '#'),
        .pat = prop_char(c, opts, "pattern-separator", ';'),
    };
    struct cps *whole = jn_alloc(c, sizeof(*whole));
    cps_of(pic->u.str.ptr, pic->u.str.len, whole);
    int sep = cps_index(whole->c, whole->n, p.pat, 0);
    if (sep != -1 && cps_index(whole->c, whole->n, p.pat, sep + 1) != -1)
        jn_throw(c, "D3080", -1, NULL);
    struct sub_picture *subs = jn_alloc(c, 2 * sizeof(*subs));
    memset(subs, 0, 2 * sizeof(*subs));
    int nsubs = sep == -1 ? 1 : 2;
    subs[0].c = whole->c;
    subs[0].n = sep == -1 ? whole->n : sep;
    if (nsubs == 2) {
        subs[1].c = whole->c + sep + 1;
        subs[1].n = whole->n - sep - 1;
    }
    for (int i = 0; i < nsubs; i++) {
        split_parts(&p, &subs[i]);
        const char *err = validate(&p, &subs[i]);
        if (err)
            jn_throw(c, err, -1, NULL);
        analyse(&p, &subs[i]);
    }
    double value = v->u.num;
    const struct sub_picture *pc = value >= 0 || nsubs == 1 ? &subs[0] : &subs[1];
    bool neg_prefix = value < 0 && nsubs == 1;

    double adjusted = value;
    if (cps_index(pc->c, pc->n, p.pct, 0) != -1)
        adjusted = value * 100;
    else if (cps_index(pc->c, pc->n, p.pml, 0) != -1)
        adjusted = value * 1000;
    double mantissa = adjusted;
    int exponent = 0;
    bool has_exponent = pc->min_exp != 0;
    if (has_exponent && mantissa != 0) {
        double maxm = pow(10, pc->scaling), minm = pow(10, pc->scaling - 1);
        while (fabs(mantissa) < minm) {
            mantissa *= 10;
            exponent--;
        }
        while (fabs(mantissa) > maxm) {
            mantissa /= 10;
            exponent++;
        }
    }
    double rounded = jn_round_half_even(mantissa, pc->max_frac);
    struct cps *s = jn_alloc(c, sizeof(*s));
    fixed_digits(s, rounded, pc->max_frac, p.zero);
    int dpos = cps_index(s->c, s->n, '.', 0);
    if (dpos == -1)
        s->c[s->n++] = p.dec;
    else
        s->c[dpos] = p.dec;
    int lead = 0;
    while (lead < s->n && s->c[lead] == p.zero)
        lead++;
    memmove(s->c, s->c + lead, (size_t)(s->n - lead) * sizeof(uint32_t));
    s->n -= lead;
    while (s->n > 0 && s->c[s->n - 1] == p.zero)
        s->n--;
    dpos = cps_index(s->c, s->n, p.dec, 0);
    int pad_left = pc->min_int - dpos;
    int pad_right = pc->min_frac - (s->n - dpos - 1);
    for (int i = 0; i < pad_left; i++)
        insert_at(s, 0, p.zero);
    for (int i = 0; i < pad_right && s->n < MAXP; i++)
        s->c[s->n++] = p.zero;
    dpos = cps_index(s->c, s->n, p.dec, 0);
    if (pc->regular > 0) {
        int groups = (dpos - 1) / pc->regular;
        for (int g = 1; g <= groups; g++)
            insert_at(s, dpos - g * pc->regular, p.grp);
    } else {
        for (int i = 0; i < pc->ngrouping; i++) {
            insert_at(s, dpos - pc->grouping[i], p.grp);
            dpos++;
        }
    }
    dpos = cps_index(s->c, s->n, p.dec, 0);
    for (int i = 0; i < pc->nfgrouping; i++)
        insert_at(s, pc->fgrouping[i] + dpos + 1, p.grp);
    dpos = cps_index(s->c, s->n, p.dec, 0);
    if (cps_index(pc->c, pc->n, p.dec, 0) == -1 || dpos == s->n - 1)
        s->n--;

    struct core_buf *b = jn_buf_new(c);
    if (neg_prefix)
        jn_utf8_put(b, p.minus);
    for (int i = 0; i < pc->prefix; i++)
        jn_utf8_put(b, pc->c[i]);
    for (int i = 0; i < s->n; i++)
        jn_utf8_put(b, s->c[i]);
    if (has_exponent) {
        struct cps *e = jn_alloc(c, sizeof(*e));
        fixed_digits(e, exponent, 0, p.zero);
        jn_utf8_put(b, p.exp);
        if (exponent < 0)
            jn_utf8_put(b, p.minus);
        for (int i = e->n; i < pc->min_exp; i++)
            jn_utf8_put(b, p.zero);
        for (int i = 0; i < e->n; i++)
            jn_utf8_put(b, e->c[i]);
    }
    for (int i = pc->suffix_start; i < pc->n; i++)
        jn_utf8_put(b, pc->c[i]);
    return jn_buf_to_str(c, b);
}
