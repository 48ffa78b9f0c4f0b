/* The "format" checks: RFC 3339 dates and times (and its ISO 8601
 * duration appendix), RFC 5321 e-mail addresses, RFC 1123 host names with
 * IDNA A-labels, IP addresses, RFC 3986 URIs, RFC 3987 IRIs, RFC 6570
 * templates, UUIDs, JSON Pointers and ECMA-262 regexes. All take the
 * string with its length (it may hold NUL) and accept ASCII digits only
 * where a grammar says DIGIT. */
#include "js_internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* n ASCII digits at s as a number, or -1. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* ------------------------------------------------------------ date, time */
static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool full_date(const char *s, size_t len)
{
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return false;
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 0 || m < 1 || m > 12 || d < 1)
        return false;
    int max = mdays[m - 1] + (m == 2 && leap_year(y));
    return d <= max;
}

static bool full_time(const char *s, size_t len)
{
    if (len < 9 || s[2] != ':' || s[5] != ':')
        return false;
    int h = digits(s, 2), m = digits(s + 3, 2), sec = digits(s + 6, 2);
    if (h < 0 || m < 0 || sec < 0 || h > 23 || m > 59 || sec > 60)
        return false;
    size_t i = 8;
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        while (i < len && is_digit(s[i]))
            i++;
        if (i == start)
            return false;
    }
    if (i >= len)
        return false;
    int off = 0; /* minutes east of UTC */
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        if (len - i != 6 || s[i + 3] != ':')
            return false;
        int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || om < 0 || oh > 23 || om > 59)
            return false;
        off = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return false;
    }
    if (i != len)
        return false;
    if (sec == 60) {
        /* A leap second happens at 23:59:60 UTC only. */
        int utc = ((h * 60 + m - off) % 1440 + 1440) % 1440;
        if (utc != 23 * 60 + 59)
            return false;
    }
    return true;
}

static bool date_time(const char *s, size_t len)
{
    return len > 11 && (s[10] == 'T' || s[10] == 't') && full_date(s, 10) &&
           full_time(s + 11, len - 11);
}

/* ISO 8601 durations as RFC 3339 appendix A has them: units in order,
 * each present unit followed only by the next smaller one, weeks alone. */
static bool duration(const char *s, size_t len)
{
    if (len < 2 || s[0] != 'P')
        return false;
    size_t i = 1;
    const char *date_units = "YMD", *time_units = "HMS";
    int last = -1; /* index of the last unit in the current part */
    bool in_time = false, any = false, any_time = false, week = false;
    while (i < len) {
        if (s[i] == 'T') {
            if (in_time)
                return false;
            in_time = true;
            last = -1;
            i++;
            if (i == len)
                return false;
            continue;
        }
        size_t start = i;
        while (i < len && is_digit(s[i]))
            i++;
        if (i == start || i == len)
            return false;
        char u = s[i++];
        if (u == 'W') {
            if (in_time || any)
                return false;
            week = true;
            any = true;
            continue;
        }
        if (week)
            return false;
        const char *units = in_time ? time_units : date_units;
        const char *p = strchr(units, u);
        if (!p || !u)
            return false;
        int idx = (int)(p - units);
        if (last >= 0 && idx != last + 1)
            return false;
        last = idx;
        any = true;
        if (in_time)
            any_time = true;
    }
    return any && (!in_time || any_time);
}

/* ------------------------------------------------------------ addresses */
static bool ipv4(const char *s, size_t len)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        while (i < len && is_digit(s[i]) && i - start < 4)
            i++;
        size_t n = i - start;
        if (n == 0 || n > 3 || (n > 1 && s[start] == '0'))
            return false;
        if (digits(s + start, n) > 255)
            return false;
        if (part < 3) {
            if (i >= len || s[i] != '.')
                return false;
            i++;
        }
    }
    return i == len;
}

static bool ipv6(const char *s, size_t len)
{
    size_t i = 0;
    int groups = 0;
    bool dbl = false;
    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        dbl = true;
        i = 2;
        if (i == len)
            return true;
    } else if (len == 0 || s[0] == ':') {
        return false;
    }
    for (;;) {
        size_t j = i;
        bool dot = false;
        while (j < len && s[j] != ':') {
            if (s[j] == '.')
                dot = true;
            j++;
        }
        if (dot) {
            if (j != len || !ipv4(s + i, j - i))
                return false;
            groups += 2;
            break;
        }
        if (j == i || j - i > 4)
            return false;
        for (size_t k = i; k < j; k++)
            if (!is_hex(s[k]))
                return false;
        groups++;
        if (j == len)
            break;
        if (j + 1 < len && s[j + 1] == ':') {
            if (dbl)
                return false;
            dbl = true;
            i = j + 2;
            if (i == len)
                break;
        } else {
            i = j + 1;
            if (i == len)
                return false;
        }
    }
    return dbl ? groups <= 7 : groups == 8;
}

/* ------------------------------------------------------------- hostnames */

/* RFC 3492 Punycode decoding of an A-label's tail into code points.
 * Returns the number of code points, or -1. */
static int punycode_decode(const char *s, size_t len, uint32_t *out, int max)
{
    const uint32_t base = 36, tmin = 1, tmax = 26, skew = 38, damp = 700;
    uint32_t n = 128, bias = 72, i = 0;
    int count = 0;
    size_t b = 0;
    for (size_t k = 0; k < len; k++)
        if (s[k] == '-')
            b = k;
    if (b > 0 || (len && s[0] == '-')) {
        for (size_t k = 0; k < b; k++) {
            if ((unsigned char)s[k] >= 0x80 || count >= max)
                return -1;
            out[count++] = (unsigned char)s[k];
        }
        b++;
    }
    for (size_t in = b; in < len;) {
        uint32_t oldi = i, w = 1;
        for (uint32_t k = base;; k += base) {
            if (in >= len)
                return -1;
            char c = s[in++];
            uint32_t digit = c >= '0' && c <= '9'   ? (uint32_t)(c - '0' + 26)
                             : c >= 'a' && c <= 'z' ? (uint32_t)(c - 'a')
                             : c >= 'A' && c <= 'Z' ? (uint32_t)(c - 'A')
                                                    : base;
            if (digit >= base || digit > (0xFFFFFFFFu - i) / w)
                return -1;
            i += digit * w;
            uint32_t t = k <= bias ? tmin : k >= bias + tmax ? tmax : k - bias;
            if (digit < t)
                break;
            if (w > 0xFFFFFFFFu / (base - t))
                return -1;
            w *= base - t;
        }
        uint32_t delta = i - oldi, numpoints = (uint32_t)count + 1;
        delta = oldi == 0 ? delta / damp : delta / 2;
        delta += delta / numpoints;
        uint32_t kk = 0;
        while (delta > ((base - tmin) * tmax) / 2) {
            delta /= base - tmin;
            kk += base;
        }
        bias = kk + (base - tmin + 1) * delta / (delta + skew);
        if (i / numpoints > 0x10FFFF - n)
            return -1;
        n += i / numpoints;
        i %= numpoints;
        if (count >= max || n > 0x10FFFF || (n >= 0xD800 && n <= 0xDFFF))
            return -1;
        memmove(out + i + 1, out + i, (size_t)(count - (int)i) * sizeof *out);
        out[i++] = n;
        count++;
    }
    return count;
}

/* Unicode properties the IDNA rules need, asked of PCRE2 (compiled once). */
enum prop {
    P_MARK, P_UPPER, P_SEPARATOR, P_CONTROL, P_UNASSIGNED, P_GREEK, P_HEBREW,
    P_HIRAGANA, P_KATAKANA, P_HAN, P_ARABIC,
    P_BC_L, P_BC_R, P_BC_AL, P_BC_AN, P_BC_EN, P_BC_ES, P_BC_CS, P_BC_ET,
    P_BC_ON, P_BC_BN, P_BC_NSM,
    NPROPS
};

static const char *const prop_patterns[NPROPS] = {
    "^\\p{M}$", "^\\p{Lu}$", "^\\p{Z}$", "^\\p{Cc}$", "^\\p{Cn}$",
    "^\\p{Greek}$", "^\\p{Hebrew}$", "^\\p{Hiragana}$", "^\\p{Katakana}$",
    "^\\p{Han}$", "^\\p{Arabic}$",
    "^\\p{bc=L}$", "^\\p{bc=R}$", "^\\p{bc=AL}$", "^\\p{bc=AN}$",
    "^\\p{bc=EN}$", "^\\p{bc=ES}$", "^\\p{bc=CS}$", "^\\p{bc=ET}$",
    "^\\p{bc=ON}$", "^\\p{bc=BN}$", "^\\p{bc=NSM}$",
};

static pcre2_code *props[NPROPS];
static pthread_once_t props_once = PTHREAD_ONCE_INIT;

static void props_init(void)
{
    for (int i = 0; i < NPROPS; i++) {
        int ec;
        PCRE2_SIZE off;
        props[i] = pcre2_compile((PCRE2_SPTR)prop_patterns[i],
                                 PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off,
                                 NULL);
    }
}

static size_t utf8_put(char *buf, uint32_t c)
{
    if (c < 0x80) {
        buf[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        buf[0] = (char)(0xC0 | (c >> 6));
        buf[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        buf[0] = (char)(0xE0 | (c >> 12));
        buf[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    buf[0] = (char)(0xF0 | (c >> 18));
    buf[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    buf[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

static bool cp_is(uint32_t c, enum prop p)
{
    pthread_once(&props_once, props_init);
    if (!props[p] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return false;
    char subj[4];
    return js__regex_search(props[p], subj, utf8_put(subj, c));
}

static bool is_virama(uint32_t c)
{
    static const uint32_t v[] = {
        0x094D, 0x09CD, 0x0A4D, 0x0ACD, 0x0B4D, 0x0BCD, 0x0C4D, 0x0CCD,
        0x0D3B, 0x0D3C, 0x0D4D, 0x0DCA, 0x0E3A, 0x0EBA, 0x0F84, 0x1039,
        0x103A, 0x1714, 0x1715, 0x1734, 0x17D2, 0x1A60, 0x1B44, 0x1BAA,
        0x1BAB, 0x1BF2, 0x1BF3, 0x2D7F, 0xA806, 0xA82C, 0xA8C4, 0xA953,
        0xA9C0, 0xAAF6, 0xABED, 0x10A3F, 0x11046, 0x11070, 0x1107F, 0x110B9,
        0x11133, 0x11134, 0x111C0, 0x11235, 0x112EA, 0x1134D, 0x11442,
        0x114C2, 0x115BF, 0x1163F, 0x116B6, 0x1172B, 0x11839, 0x1193D,
        0x1193E, 0x119E0, 0x11A34, 0x11A47, 0x11A99, 0x11C3F, 0x11D44,
        0x11D45, 0x11D97,
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        if (v[i] == c)
            return true;
    return false;
}

/* RFC 5892 section 2.6: exceptions that are DISALLOWED. */
static bool idna_disallowed_exception(uint32_t c)
{
    return c == 0x0640 || c == 0x07FA || c == 0x302E || c == 0x302F ||
           (c >= 0x3031 && c <= 0x3035) || c == 0x303B;
}

/* IDNA 2008 checks on one U-label that matter in practice: no leading
 * combining mark, no "--" in positions 3 and 4, no upper case, spaces or
 * controls, the DISALLOWED exceptions, and the CONTEXTJ/CONTEXTO rules of
 * RFC 5892 appendix A (ZWNJ's joining-type context approximated by Arabic
 * letters on both sides). */
static bool ulabel_ok(const uint32_t *u, int n)
{
    if (n == 0)
        return false;
    if (n >= 4 && u[2] == '-' && u[3] == '-')
        return false;
    if (u[0] == '-' || u[n - 1] == '-' || cp_is(u[0], P_MARK))
        return false;
    bool arabic = false, extended = false, kana_han = false, has_kdot = false;
    for (int i = 0; i < n; i++) {
        uint32_t c = u[i];
        if (c < 0x80 && !(is_digit((char)c) || (c >= 'a' && c <= 'z') || c == '-'))
            return false;
        if (c >= 0x80 &&
            (idna_disallowed_exception(c) || cp_is(c, P_UPPER) ||
             cp_is(c, P_SEPARATOR) || cp_is(c, P_CONTROL) ||
             cp_is(c, P_UNASSIGNED)))
            return false;
        switch (c) {
        case 0x00B7: /* MIDDLE DOT between two 'l' */
            if (i == 0 || i == n - 1 || u[i - 1] != 'l' || u[i + 1] != 'l')
                return false;
            break;
        case 0x0375: /* GREEK LOWER NUMERAL SIGN followed by Greek */
            if (i == n - 1 || !cp_is(u[i + 1], P_GREEK))
                return false;
            break;
        case 0x05F3: /* HEBREW GERESH, GERSHAYIM after Hebrew */
        case 0x05F4:
            if (i == 0 || !cp_is(u[i - 1], P_HEBREW))
                return false;
            break;
        case 0x200D: /* ZERO WIDTH JOINER after a virama */
            if (i == 0 || !is_virama(u[i - 1]))
                return false;
            break;
        case 0x200C: /* ZERO WIDTH NON-JOINER */
            if (i == 0 || (!is_virama(u[i - 1]) &&
                           !(i + 1 < n && cp_is(u[i - 1], P_ARABIC) &&
                             cp_is(u[i + 1], P_ARABIC))))
                return false;
            break;
        case 0x30FB:
            has_kdot = true;
            break;
        default:
            break;
        }
        if (c >= 0x0660 && c <= 0x0669)
            arabic = true;
        if (c >= 0x06F0 && c <= 0x06F9)
            extended = true;
        if (c != 0x30FB && c >= 0x80 &&
            (cp_is(c, P_HIRAGANA) || cp_is(c, P_KATAKANA) || cp_is(c, P_HAN)))
            kana_han = true;
    }
    return !(arabic && extended) && !(has_kdot && !kana_han);
}

static int bidi_class(uint32_t c)
{
    static const enum prop order[] = {P_BC_L,  P_BC_R,  P_BC_AL, P_BC_AN,
                                      P_BC_EN, P_BC_ES, P_BC_CS, P_BC_ET,
                                      P_BC_ON, P_BC_BN, P_BC_NSM};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (cp_is(c, order[i]))
            return order[i];
    return -1;
}

/* RFC 5893 section 2, for one label of a domain that has right-to-left
 * labels. */
static bool bidi_label_ok(const uint32_t *u, int n)
{
    int first = bidi_class(u[0]);
    if (first != P_BC_L && first != P_BC_R && first != P_BC_AL)
        return false;
    bool rtl = first != P_BC_L, en = false, an = false;
    int last = -1;
    for (int i = 0; i < n; i++) {
        int bc = bidi_class(u[i]);
        bool ok = rtl ? (bc == P_BC_R || bc == P_BC_AL || bc == P_BC_AN ||
                         bc == P_BC_EN || bc == P_BC_ES || bc == P_BC_CS ||
                         bc == P_BC_ET || bc == P_BC_ON || bc == P_BC_BN ||
                         bc == P_BC_NSM)
                      : (bc == P_BC_L || bc == P_BC_EN || bc == P_BC_ES ||
                         bc == P_BC_CS || bc == P_BC_ET || bc == P_BC_ON ||
                         bc == P_BC_BN || bc == P_BC_NSM);
        if (!ok)
            return false;
        en = en || bc == P_BC_EN;
        an = an || bc == P_BC_AN;
        if (bc != P_BC_NSM)
            last = bc;
    }
    if (rtl)
        return !(en && an) && (last == P_BC_R || last == P_BC_AL ||
                               last == P_BC_EN || last == P_BC_AN);
    return last == P_BC_L || last == P_BC_EN;
}

/* Length of the Punycode encoding of a U-label (RFC 3492), without the
 * "xn--" prefix; SIZE_MAX on overflow. */
static size_t punycode_length(const uint32_t *u, int n)
{
    const uint32_t base = 36, tmin = 1, tmax = 26, skew = 38, damp = 700;
    uint32_t next = 128, delta = 0, bias = 72;
    size_t out = 0;
    int h = 0;
    for (int i = 0; i < n; i++)
        if (u[i] < 0x80)
            h++;
    int b = h;
    out = (size_t)b + (b > 0);
    while (h < n) {
        uint32_t m = 0xFFFFFFFFu;
        for (int i = 0; i < n; i++)
            if (u[i] >= next && u[i] < m)
                m = u[i];
        if ((uint64_t)(m - next) * (uint64_t)(h + 1) > 0xFFFFFFFFu - delta)
            return SIZE_MAX;
        delta += (m - next) * (uint32_t)(h + 1);
        next = m;
        for (int i = 0; i < n; i++) {
            if (u[i] < next && ++delta == 0)
                return SIZE_MAX;
            if (u[i] != next)
                continue;
            uint32_t q = delta;
            for (uint32_t k = base;; k += base) {
                uint32_t t = k <= bias ? tmin : k >= bias + tmax ? tmax : k - bias;
                if (q < t)
                    break;
                out++;
                q = (q - t) / (base - t);
            }
            out++;
            /* adapt the bias */
            uint32_t d = h == b ? delta / damp : delta / 2;
            d += d / (uint32_t)(h + 1);
            uint32_t kk = 0;
            while (d > ((base - tmin) * tmax) / 2) {
                d /= base - tmin;
                kk += base;
            }
            bias = kk + (base - tmin + 1) * d / (d + skew);
            delta = 0;
            h++;
        }
        delta++;
        next++;
    }
    return out;
}

#define JS_MAX_LABELS 128

/* Checks a domain given as decoded labels: each U-label's IDNA rules, its
 * A-label length, and the Bidi rule across the domain. */
static bool domain_ok(uint32_t labels[][64], const int *lens, const bool *ulabel,
                      int nlabels)
{
    bool bidi = false;
    for (int i = 0; i < nlabels; i++) {
        if (ulabel[i]) {
            if (!ulabel_ok(labels[i], lens[i]) ||
                punycode_length(labels[i], lens[i]) + 4 > 63)
                return false;
        }
        for (int k = 0; k < lens[i] && !bidi; k++) {
            uint32_t c = labels[i][k];
            bidi = c >= 0x80 && (cp_is(c, P_BC_R) || cp_is(c, P_BC_AL) ||
                                 cp_is(c, P_BC_AN));
        }
    }
    if (bidi)
        for (int i = 0; i < nlabels; i++)
            if (!bidi_label_ok(labels[i], lens[i]))
                return false;
    return true;
}

static bool ldh_label(const char *l, size_t n)
{
    if (n == 0 || n > 63 || l[0] == '-' || l[n - 1] == '-')
        return false;
    for (size_t k = 0; k < n; k++)
        if (!is_alpha(l[k]) && !is_digit(l[k]) && l[k] != '-')
            return false;
    return true;
}

/* Host names with A-labels: decoded and checked as IDNA. */
static bool hostname_idna(const char *s, size_t len, uint32_t labels[][64])
{
    int lens[JS_MAX_LABELS];
    bool ulabel[JS_MAX_LABELS];
    int nl = 0;
    bool any_alabel = false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        size_t n = i - start;
        const char *l = s + start;
        if (!ldh_label(l, n) || nl >= JS_MAX_LABELS)
            return false;
        ulabel[nl] = false;
        if (n >= 4 && l[2] == '-' && l[3] == '-') {
            /* Only A-labels may have "--" there, and they must decode. */
            if (!((l[0] == 'x' || l[0] == 'X') && (l[1] == 'n' || l[1] == 'N')))
                return false;
            int m = punycode_decode(l + 4, n - 4, labels[nl], 63);
            if (m <= 0 || !ulabel_ok(labels[nl], m))
                return false;
            lens[nl] = m;
            any_alabel = true;
        } else {
            for (size_t k = 0; k < n; k++)
                labels[nl][k] = (unsigned char)(l[k] >= 'A' && l[k] <= 'Z'
                                                    ? l[k] + 32
                                                    : l[k]);
            lens[nl] = (int)n;
        }
        nl++;
        start = i + 1;
    }
    /* The Bidi rule only concerns domains with right-to-left labels, and
     * those come from A-labels here. */
    return !any_alabel || domain_ok(labels, lens, ulabel, nl);
}

static bool hostname(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    bool alabels = false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        if (!ldh_label(s + start, i - start))
            return false;
        alabels = alabels || (i - start >= 4 && s[start + 2] == '-' &&
                              s[start + 3] == '-');
        start = i + 1;
    }
    if (!alabels)
        return true;
    uint32_t(*labels)[64] = malloc(JS_MAX_LABELS * sizeof *labels);
    if (!labels)
        return false;
    bool ok = hostname_idna(s, len, labels);
    free(labels);
    return ok;
}

/* U-labels given directly: decode UTF-8 and check each label. */
static bool idn_labels(const char *s, size_t len, uint32_t labels[][64])
{
    int lens[JS_MAX_LABELS];
    bool ulabel[JS_MAX_LABELS];
    int nl = 0, n = 0;
    size_t i = 0, total = 0;
    uint32_t *u = labels[0];
    while (i <= len) {
        uint32_t c;
        if (i == len) {
            c = '.';
        } else {
            unsigned char b = (unsigned char)s[i];
            int extra = b < 0x80 ? 0 : b < 0xE0 ? 1 : b < 0xF0 ? 2 : 3;
            if (i + (size_t)extra >= len + (extra ? 0 : 1))
                return false;
            c = extra == 0 ? b : extra == 1 ? (b & 0x1Fu) : extra == 2 ? (b & 0x0Fu) : (b & 0x07u);
            for (int k = 1; k <= extra; k++)
                c = (c << 6) | ((unsigned char)s[i + (size_t)k] & 0x3Fu);
            i += (size_t)extra;
        }
        i++;
        /* Full stops of other scripts separate labels too. */
        if (c == '.' || c == 0x3002 || c == 0xFF0E || c == 0xFF61) {
            if (n == 0 || nl >= JS_MAX_LABELS)
                return false;
            bool ascii = true;
            for (int k = 0; k < n; k++)
                ascii = ascii && u[k] < 0x80;
            if (ascii) {
                char buf[64];
                for (int k = 0; k < n; k++)
                    buf[k] = (char)u[k];
                if (!hostname(buf, (size_t)n))
                    return false;
                if (n >= 4 && buf[2] == '-' && buf[3] == '-') {
                    int m = punycode_decode(buf + 4, (size_t)n - 4, u, 63);
                    if (m <= 0)
                        return false;
                    n = m;
                }
                ulabel[nl] = false;
                total += (size_t)n + 1;
            } else {
                ulabel[nl] = true;
                total += punycode_length(u, n) + 5;
            }
            lens[nl++] = n;
            n = 0;
            if (nl < JS_MAX_LABELS)
                u = labels[nl];
            if (i > len)
                break;
            continue;
        }
        if (n >= 63)
            return false;
        if (c >= 'A' && c <= 'Z')
            c += 32;
        u[n++] = c;
    }
    return total <= 254 && domain_ok(labels, lens, ulabel, nl);
}

static bool idn_hostname(const char *s, size_t len)
{
    if (len == 0)
        return false;
    uint32_t(*labels)[64] = malloc(JS_MAX_LABELS * sizeof *labels);
    if (!labels)
        return false;
    bool ok = idn_labels(s, len, labels);
    free(labels);
    return ok;
}

/* ---------------------------------------------------------------- e-mail */
static bool atext(char c)
{
    return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool email(const char *s, size_t len, bool idn)
{
    size_t at = len;
    /* The domain cannot hold '@'; a quoted local part can. */
    for (size_t i = len; i > 0; i--)
        if (s[i - 1] == '@') {
            at = i - 1;
            break;
        }
    if (at == len || at == 0 || at + 1 == len)
        return false;
    const char *l = s;
    size_t ln = at;
    if (l[0] == '"') {
        if (ln < 2 || l[ln - 1] != '"')
            return false;
        for (size_t i = 1; i < ln - 1; i++) {
            unsigned char c = (unsigned char)l[i];
            if (c == '\\') {
                if (++i >= ln - 1)
                    return false;
            } else if (c == '"' || (c < 0x20 && c != '\t') || c == 0x7F) {
                return false;
            }
        }
    } else {
        if (l[0] == '.' || l[ln - 1] == '.')
            return false;
        for (size_t i = 0; i < ln; i++) {
            if (l[i] == '.') {
                if (l[i + 1] == '.')
                    return false;
            } else if (!atext(l[i]) && !(idn && (unsigned char)l[i] >= 0x80)) {
                return false;
            }
        }
    }
    const char *d = s + at + 1;
    size_t dn = len - at - 1;
    if (d[0] == '[') {
        if (d[dn - 1] != ']')
            return false;
        if (dn > 6 && strncmp(d + 1, "IPv6:", 5) == 0)
            return ipv6(d + 6, dn - 7);
        return ipv4(d + 1, dn - 2);
    }
    return idn ? idn_hostname(d, dn) : hostname(d, dn);
}

/* ------------------------------------------------------------------- URIs */
static bool unreserved(char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

static bool sub_delim(char c)
{
    return c && strchr("!$&'()*+,;=", c);
}

/* Checks chars of s[i..end) against an allowed set: unreserved, %HH,
 * sub-delims, the extra characters, and non-ASCII when iri. */
static bool uri_chars(const char *s, size_t i, size_t end, const char *extra,
                      bool iri)
{
    for (; i < end; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= end || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 2;
        } else if (unreserved(c) || sub_delim(c) || (c && strchr(extra, c)) ||
                   (iri && (unsigned char)c >= 0x80)) {
            continue;
        } else {
            return false;
        }
    }
    return true;
}

static bool authority(const char *s, size_t i, size_t end, bool iri)
{
    size_t at = end;
    for (size_t k = i; k < end; k++) {
        if (s[k] == '@') {
            if (at != end)
                return false;
            at = k;
        }
    }
    if (at != end) {
        if (!uri_chars(s, i, at, ":", iri))
            return false;
        i = at + 1;
    }
    size_t host_end;
    if (i < end && s[i] == '[') {
        size_t close = i;
        while (close < end && s[close] != ']')
            close++;
        if (close == end)
            return false;
        const char *h = s + i + 1;
        size_t hn = close - i - 1;
        if (hn > 0 && (h[0] == 'v' || h[0] == 'V')) {
            size_t k = 1;
            while (k < hn && is_hex(h[k]))
                k++;
            if (k == 1 || k >= hn || h[k] != '.' || k + 1 == hn ||
                !uri_chars(h, k + 1, hn, ":", false))
                return false;
        } else if (!ipv6(h, hn)) {
            return false;
        }
        host_end = close + 1;
    } else {
        host_end = i;
        while (host_end < end && s[host_end] != ':')
            host_end++;
        if (!uri_chars(s, i, host_end, "", iri))
            return false;
    }
    if (host_end < end) {
        if (s[host_end] != ':')
            return false;
        for (size_t k = host_end + 1; k < end; k++)
            if (!is_digit(s[k]))
                return false;
    }
    return true;
}

/* A URI (absolute when need_scheme) or relative reference. */
static bool uri_ref(const char *s, size_t len, bool need_scheme, bool iri)
{
    size_t i = 0;
    bool scheme = false;
    if (len && is_alpha(s[0])) {
        size_t k = 1;
        while (k < len && (is_alpha(s[k]) || is_digit(s[k]) || s[k] == '+' ||
                           s[k] == '-' || s[k] == '.'))
            k++;
        if (k < len && s[k] == ':') {
            scheme = true;
            i = k + 1;
        }
    }
    if (need_scheme && !scheme)
        return false;
    size_t path_end = i;
    while (path_end < len && s[path_end] != '?' && s[path_end] != '#')
        path_end++;
    size_t p = i;
    if (path_end - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t a = i + 2, ae = a;
        while (ae < path_end && s[ae] != '/')
            ae++;
        if (!authority(s, a, ae, iri))
            return false;
        p = ae;
    } else if (!scheme) {
        /* path-noscheme: no ':' in the first segment */
        for (size_t k = i; k < path_end && s[k] != '/'; k++)
            if (s[k] == ':')
                return false;
    }
    if (!uri_chars(s, p, path_end, ":@/", iri))
        return false;
    size_t q = path_end;
    if (q < len && s[q] == '?') {
        size_t qe = q + 1;
        while (qe < len && s[qe] != '#')
            qe++;
        if (!uri_chars(s, q + 1, qe, ":@/?", iri))
            return false;
        q = qe;
    }
    if (q < len && s[q] == '#' && !uri_chars(s, q + 1, len, ":@/?", iri))
        return false;
    return true;
}

static bool uri_template(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '{') {
            size_t e = i + 1;
            while (e < len && s[e] != '}')
                e++;
            if (e == len)
                return false;
            size_t k = i + 1;
            if (k < e && strchr("+#./;?&=,!@|", s[k]))
                k++;
            /* variable-list: varspec *( "," varspec ) */
            for (;;) {
                /* varname = varchar *( ["."] varchar ) */
                size_t v = k;
                while (k < e && (is_alpha(s[k]) || is_digit(s[k]) || s[k] == '_' ||
                                 s[k] == '.' || s[k] == '%')) {
                    if (s[k] == '.' && (k == v || s[k - 1] == '.' ||
                                        k + 1 == e || s[k + 1] == '.'))
                        return false;
                    if (s[k] == '%') {
                        if (k + 2 >= e || !is_hex(s[k + 1]) || !is_hex(s[k + 2]))
                            return false;
                        k += 2;
                    }
                    k++;
                }
                if (k == v || s[k - 1] == '.')
                    return false;
                if (k < e && s[k] == '*') {
                    k++;
                } else if (k < e && s[k] == ':') {
                    size_t d = ++k;
                    while (k < e && is_digit(s[k]))
                        k++;
                    if (k == d || k - d > 4 || s[d] == '0')
                        return false;
                }
                if (k == e)
                    break;
                if (s[k] != ',')
                    return false;
                k++;
            }
            i = e;
        } else if (c == '}' || c <= 0x20 || c == 0x7F || strchr("\"'<>\\^`|", c)) {
            return false;
        } else if (c == '%') {
            if (i + 2 >= len || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 2;
        }
    }
    return true;
}

/* ----------------------------------------------------------- pointers */
static bool json_pointer(const char *s, size_t len)
{
    if (len && s[0] != '/')
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '~' && (i + 1 >= len || (s[i + 1] != '0' && s[i + 1] != '1')))
            return false;
    return true;
}

static bool relative_json_pointer(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && is_digit(s[i]))
        i++;
    if (i == 0 || (i > 1 && s[0] == '0'))
        return false;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        /* index manipulation: a non-zero integer */
        size_t d = ++i;
        while (i < len && is_digit(s[i]))
            i++;
        if (i == d || s[d] == '0')
            return false;
    }
    if (i == len)
        return true;
    if (s[i] == '#')
        return i + 1 == len;
    return json_pointer(s + i, len - i);
}

static bool uuid(const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!is_hex(s[i])) {
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------- table */
static const struct {
    const char *name;
    enum js__format f;
} formats[] = {
    {"date-time", JS_FMT_DATE_TIME},
    {"date", JS_FMT_DATE},
    {"time", JS_FMT_TIME},
    {"duration", JS_FMT_DURATION},
    {"email", JS_FMT_EMAIL},
    {"idn-email", JS_FMT_IDN_EMAIL},
    {"hostname", JS_FMT_HOSTNAME},
    {"idn-hostname", JS_FMT_IDN_HOSTNAME},
    {"ipv4", JS_FMT_IPV4},
    {"ipv6", JS_FMT_IPV6},
    {"uri", JS_FMT_URI},
    {"uri-reference", JS_FMT_URI_REFERENCE},
    {"iri", JS_FMT_IRI},
    {"iri-reference", JS_FMT_IRI_REFERENCE},
    {"uri-template", JS_FMT_URI_TEMPLATE},
    {"uuid", JS_FMT_UUID},
    {"json-pointer", JS_FMT_JSON_POINTER},
    {"relative-json-pointer", JS_FMT_RELATIVE_JSON_POINTER},
    {"regex", JS_FMT_REGEX},
};

enum js__format js__format_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
        if (strcmp(formats[i].name, name) == 0)
            return formats[i].f;
    return JS_FMT_UNKNOWN;
}

bool js__format_check(enum js__format f, const char *s, size_t len)
{
    switch (f) {
    case JS_FMT_DATE_TIME:
        return date_time(s, len);
    case JS_FMT_DATE:
        return full_date(s, len);
    case JS_FMT_TIME:
        return full_time(s, len);
    case JS_FMT_DURATION:
        return duration(s, len);
    case JS_FMT_EMAIL:
        return email(s, len, false);
    case JS_FMT_IDN_EMAIL:
        return email(s, len, true);
    case JS_FMT_HOSTNAME:
        return hostname(s, len);
    case JS_FMT_IDN_HOSTNAME:
        return idn_hostname(s, len);
    case JS_FMT_IPV4:
        return ipv4(s, len);
    case JS_FMT_IPV6:
        return ipv6(s, len);
    case JS_FMT_URI:
        return uri_ref(s, len, true, false);
    case JS_FMT_URI_REFERENCE:
        return uri_ref(s, len, false, false);
    case JS_FMT_IRI:
        return uri_ref(s, len, true, true);
    case JS_FMT_IRI_REFERENCE:
        return uri_ref(s, len, false, true);
    case JS_FMT_URI_TEMPLATE:
        return uri_template(s, len);
    case JS_FMT_UUID:
        return uuid(s, len);
    case JS_FMT_JSON_POINTER:
        return json_pointer(s, len);
    case JS_FMT_RELATIVE_JSON_POINTER:
        return relative_json_pointer(s, len);
    case JS_FMT_REGEX:
        return js__regex_valid(s, len);
    default:
        return true;
    }
}
