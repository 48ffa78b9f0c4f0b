/*
 * Numeric and aggregation functions, $formatBase and $formatNumber (XPath
 * format-number pictures).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions.h"

JN_FN(jn_fn_number)
{
    jv *v = ARG(0);
    if (!v)
        return NULL;
    if (v->kind == JN_NUMBER)
        return v;
    if (v->kind == JN_BOOL)
        return jn_num(c, v->u.b ? 1 : 0);
    if (v->kind == JN_STRING) {
        const char *s = v->u.str.ptr;
        size_t len = v->u.str.len, i = 0;
        if (len > 2 && s[0] == '0' && strchr("xXoObB", s[1])) {
            int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : 2;
            double r = 0;
            for (i = 2; i < len; i++) {
                int d = s[i] >= '0' && s[i] <= '9' ? s[i] - '0'
                        : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
                        : s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10 : 99;
                if (d >= base)
                    break;
                r = r * base + d;
            }
            if (i == len)
                return jn_num(c, r);
        }
        i = 0;
        if (i < len && s[i] == '-')
            i++;
        size_t ds = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        bool ok = i > ds;
        if (ok && i < len && s[i] == '.') {
            size_t f = ++i;
            while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
            ok = i > f;
        }
        if (ok && i < len && (s[i] == 'e' || s[i] == 'E')) {
            i++;
            if (i < len && (s[i] == '+' || s[i] == '-'))
                i++;
            size_t e = i;
            while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
            ok = i > e;
        }
        if (ok && i == len) {
            double d = strtod(s, NULL);
            if (isfinite(d))
                return jn_num(c, d);
        }
    }
    c->err.index = 1;
    jn_throw(c, "D3030", -1, v);
}

JN_FN(jn_fn_abs)
{
    jv *v = ARG(0);
    return v ? jn_num(c, fabs(v->u.num)) : NULL;
}

JN_FN(jn_fn_floor)
{
    jv *v = ARG(0);
    return v ? jn_num(c, floor(v->u.num) + 0.0) : NULL;
}

JN_FN(jn_fn_ceil)
{
    jv *v = ARG(0);
    if (!v)
        return NULL;
    double r = ceil(v->u.num);
    return jn_num(c, r == 0 ? 0 : r);
}

/* Round half to even at a decimal precision, shifting the decimal point
 * textually (as the reference does) to avoid binary scaling error. */
static double shift_decimal(double v, int by)
{
    char num[48], buf[64];
    jn_fmt_number(v, num);
    char *e = strchr(num, 'e');
    int exp = 0;
    if (e) {
        exp = atoi(e + 1);
        *e = 0;
    }
    snprintf(buf, sizeof(buf), "%se%d", num, exp + by);
    return strtod(buf, NULL);
}

static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
                              1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                              1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* v scaled by 10^by as if its shortest decimal form had its exponent
 * moved (what the reference does with strings). The fast path finds that
 * decimal form D*10^-f directly: the first f for which the nearest
 * integer to v*10^f reads back as v. Scaling an exact integer by an exact
 * power of ten is correctly rounded, so the result equals the string
 * route's. */
static double shift_decimal_fast(double v, int by)
{
    for (int f = 0; f <= 15; f++) {
        double t = v * p10[f];
        if (fabs(t) >= 9007199254740992.0)
            break;
        double d = nearbyint(t);
        if (d / p10[f] != v)
            continue;
        int e = by - f;
        if (e >= 0 && e <= 22)
            return d * p10[e];
        if (e < 0 && e >= -22)
            return d / p10[-e];
        break;
    }
    return shift_decimal(v, by);
}

double jn_round_half_even(double v, int precision);
double jn_round_half_even(double v, int precision)
{
    if (!isfinite(v))
        return v;
    double x = precision ? shift_decimal_fast(v, precision) : v;
    double r = floor(x + 0.5);
    double diff = r - x;
    if (fabs(diff) == 0.5 && fabs(fmod(r, 2)) == 1)
        r -= 1;
    if (precision) {
        if (precision > 0 && precision <= 22 && fabs(r) < 9007199254740992.0)
            r = r / p10[precision];
        else if (precision < 0 && precision >= -22 && fabs(r) < 9007199254740992.0)
            r = r * p10[-precision];
        else
            r = shift_decimal(r, -precision);
    }
    if (r == 0)
        r = 0;
    return r;
}

JN_FN(jn_fn_round)
{
    jv *v = ARG(0), *p = ARG(1);
    if (!v)
        return NULL;
    int prec = p ? (int)trunc(p->u.num) : 0;
    return jn_num(c, jn_round_half_even(v->u.num, prec));
}

JN_FN(jn_fn_power)
{
    jv *b = ARG(0), *e = ARG(1);
    if (!b || !e)
        return NULL;
    double r = pow(b->u.num, e->u.num);
    if (!isfinite(r))
        jn_throw(c, "D3061", -1, b);
    return jn_num(c, r);
}

JN_FN(jn_fn_sqrt)
{
    jv *v = ARG(0);
    if (!v)
        return NULL;
    if (v->u.num < 0)
        jn_throw(c, "D3060", -1, v);
    return jn_num(c, sqrt(v->u.num));
}

JN_FN(jn_fn_random)
{
    uint64_t r;
    core_random_bytes(&r, sizeof(r));
    return jn_num(c, (double)(r >> 11) / 9007199254740992.0);
}

JN_FN(jn_fn_sum)
{
    jv *arr = ARG(0);
    if (!arr)
        return NULL;
    jn_arr_load(c, arr);
    double s = 0;
    for (uint32_t i = 0; i < arr->u.arr.len; i++)
        s += arr->u.arr.items[i]->u.num;
    return jn_num(c, s);
}

static jv *extreme(struct jn_ctx *c, jv *arr, bool max)
{
    if (!arr)
        return NULL;
    jn_arr_load(c, arr);
    if (arr->u.arr.len == 0)
        return NULL;
    double m = arr->u.arr.items[0]->u.num;
    for (uint32_t i = 1; i < arr->u.arr.len; i++) {
        double v = arr->u.arr.items[i]->u.num;
        if (max ? v > m : v < m)
            m = v;
    }
    return jn_num(c, m);
}

JN_FN(jn_fn_max)
{
    return extreme(c, ARG(0), true);
}

JN_FN(jn_fn_min)
{
    return extreme(c, ARG(0), false);
}

JN_FN(jn_fn_average)
{
    jv *arr = ARG(0);
    if (!arr)
        return NULL;
    jn_arr_load(c, arr);
    if (arr->u.arr.len == 0)
        return NULL;
    double s = 0;
    for (uint32_t i = 0; i < arr->u.arr.len; i++)
        s += arr->u.arr.items[i]->u.num;
    return jn_num(c, s / arr->u.arr.len);
}

JN_FN(jn_fn_count)
{
    jv *arr = ARG(0);
    if (!arr)
        return jn_num(c, 0);
    return jn_num(c, jn_arr_load(c, arr)->u.arr.len);
}

JN_FN(jn_fn_format_base)
{
    jv *v = ARG(0), *r = ARG(1);
    if (!v)
        return NULL;
    double val = jn_round_half_even(v->u.num, 0);
    double radix = r ? jn_round_half_even(r->u.num, 0) : 10;
    if (radix < 2 || radix > 36)
        jn_throw(c, "D3100", -1, r);
    char buf[80];
    int k = 0;
    bool neg = val < 0;
    double mag = fabs(val);
    if (mag == 0)
        buf[k++] = '0';
    while (mag >= 1 && k < 75) {
        int d = (int)fmod(mag, radix);
        buf[k++] = "0123456789abcdefghijklmnopqrstuvwxyz"[d];
        mag = floor(mag / radix);
    }
    if (neg)
        buf[k++] = '-';
    char out[80];
    for (int i = 0; i < k; i++)
        out[i] = buf[k - 1 - i];
    return jn_str(c, out, (size_t)k);
}
