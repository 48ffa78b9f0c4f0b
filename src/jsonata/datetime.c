/*
 * Date and time: $now, $millis, $fromMillis, $toMillis, and the XPath
 * F&O 3.1 pictures they share with $formatInteger/$parseInteger
 * (§4.6.1 format-integer, §9.8 format-dateTime): decimal digit patterns
 * with grouping separators, letters, roman numerals, English words,
 * ordinals, names of months and days, widths, and time zones. Parsing
 * builds a PCRE2 pattern from the picture, as the reference does with
 * JavaScript regexes. All arithmetic is in UTC on the proleptic Gregorian
 * calendar.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "functions.h"

/* --------------------------------------------------------------- calendar */
#define MS_PER_DAY 86400000.0

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Date.UTC: months may overflow; years 0..99 mean 1900..1999. */
static double utc_ms(double y, double mon0, double d, double h, double mi,
                     double s, double ms)
{
    /* outside JavaScript's date range (about 275,000 years) */
    if (!isfinite(y) || !isfinite(mon0) || fabs(y) > 400000 || fabs(mon0) > 1e7 ||
        !isfinite(d) || fabs(d) > 1e9)
        return NAN;
    if (y >= 0 && y <= 99)
        y += 1900;
    double ym = y + floor(mon0 / 12);
    double mn = fmod(mon0, 12);
    if (mn < 0)
        mn += 12;
    double days = (double)days_from_civil((int64_t)ym, (int64_t)mn + 1, 1) + d - 1;
    return days * MS_PER_DAY + h * 3600000.0 + mi * 60000.0 + s * 1000.0 + ms;
}

struct civil {
    int64_t year;
    int month; /* 0..11 */
    int day;
    int hour, minute, second, millis;
    int wday; /* 0 = Sunday */
};

static void civil_of(double t, struct civil *cv)
{
    double days = floor(t / MS_PER_DAY);
    double rem = t - days * MS_PER_DAY;
    int m, d;
    civil_from_days((int64_t)days, &cv->year, &m, &d);
    cv->month = m - 1;
    cv->day = d;
    int64_t r = (int64_t)rem;
    cv->hour = (int)(r / 3600000);
    cv->minute = (int)(r / 60000 % 60);
    cv->second = (int)(r / 1000 % 60);
    cv->millis = (int)(r % 1000);
    int64_t wd = ((int64_t)days + 4) % 7;
    cv->wday = (int)(wd < 0 ? wd + 7 : wd);
}

/* ISO 8601: week 1 of a year (or, in XPath, of a month) contains its
 * first Thursday; weeks start on Monday. */
static double start_of_first_week(int64_t year, int month0)
{
    double first = utc_ms((double)year, month0, 1, 0, 0, 0, 0);
    struct civil cv;
    civil_of(first, &cv);
    int dow = cv.wday == 0 ? 7 : cv.wday;
    return dow > 4 ? first + (8 - dow) * MS_PER_DAY : first - (dow - 1) * MS_PER_DAY;
}

static double delta_weeks(double start, double end)
{
    return (end - start) / (MS_PER_DAY * 7) + 1;
}

static void next_month(int64_t *y, int *m)
{
    if (++*m == 12) {
        *m = 0;
        ++*y;
    }
}

static void prev_month(int64_t *y, int *m)
{
    if (--*m < 0) {
        *m = 11;
        --*y;
    }
}

/* The integer value of a date/time component ('P', 'C', 'E' excluded). */
static double component_value(double t, char comp)
{
    struct civil cv;
    civil_of(t, &cv);
    double today = utc_ms((double)cv.year, cv.month, cv.day, 0, 0, 0, 0);
    switch (comp) {
    case 'Y': return (double)cv.year;
    case 'M': return cv.month + 1;
    case 'D': return cv.day;
    case 'd': return (today - utc_ms((double)cv.year, 0, 1, 0, 0, 0, 0)) / MS_PER_DAY + 1;
    case 'F': return cv.wday == 0 ? 7 : cv.wday;
    case 'W': {
        double w = delta_weeks(start_of_first_week(cv.year, 0), today);
        if (w > 52) {
            if (today >= start_of_first_week(cv.year + 1, 0))
                w = 1;
        } else if (w < 1) {
            w = delta_weeks(start_of_first_week(cv.year - 1, 0), today);
        }
        return floor(w);
    }
    case 'w': {
        double w = delta_weeks(start_of_first_week(cv.year, cv.month), today);
        if (w > 4) {
            int64_t y = cv.year;
            int m = cv.month;
            next_month(&y, &m);
            if (today >= start_of_first_week(y, m))
                w = 1;
        } else if (w < 1) {
            int64_t y = cv.year;
            int m = cv.month;
            prev_month(&y, &m);
            w = delta_weeks(start_of_first_week(y, m), today);
        }
        return floor(w);
    }
    case 'X': {
        if (t < start_of_first_week(cv.year, 0))
            return (double)(cv.year - 1);
        if (t >= start_of_first_week(cv.year + 1, 0))
            return (double)(cv.year + 1);
        return (double)cv.year;
    }
    case 'x': {
        int64_t ny = cv.year, py = cv.year;
        int nm = cv.month, pm = cv.month;
        next_month(&ny, &nm);
        prev_month(&py, &pm);
        if (t < start_of_first_week(cv.year, cv.month))
            return pm + 1;
        if (t >= start_of_first_week(ny, nm))
            return nm + 1;
        return cv.month + 1;
    }
    case 'H': return cv.hour;
    case 'h': return cv.hour % 12 == 0 ? 12 : cv.hour % 12;
    case 'P': return cv.hour >= 12;
    case 'm': return cv.minute;
    case 's': return cv.second;
    case 'f': return cv.millis;
    default: return 0;
    }
}

/* -------------------------------------------------------- integer pictures */
enum { IF_DECIMAL, IF_LETTERS, IF_ROMAN, IF_WORDS, IF_SEQUENCE };
enum { TC_LOWER, TC_UPPER, TC_TITLE };

struct int_sep {
    int position;
    uint32_t ch;
};

struct int_format {
    int primary;
    int tcase;
    bool ordinal;
    uint32_t zero;
    int mandatory, optional;
    bool regular;
    struct int_sep seps[32];
    int nseps;
    int parse_width;
};

static const uint32_t decimal_groups[] = {
    0x30, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66,
    0x0BE6, 0x0C66, 0x0CE6, 0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040,
    0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0,
    0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10};

static int gcd(int a, int b)
{
    return b == 0 ? a : gcd(b, a % b);
}

static void analyse_int_picture(struct jn_ctx *c, const char *pic, size_t len,
                                struct int_format *f)
{
    memset(f, 0, sizeof(*f));
    f->primary = IF_DECIMAL;
    f->zero = 0x30;
    size_t plen = len;
    for (size_t i = len; i > 0; i--) {
        if (pic[i - 1] == ';') {
            plen = i - 1;
            if (i < len && pic[i] == 'o')
                f->ordinal = true;
            break;
        }
    }
    if (plen == 1 && (pic[0] == 'A' || pic[0] == 'a')) {
        f->primary = IF_LETTERS;
        f->tcase = pic[0] == 'A' ? TC_UPPER : TC_LOWER;
        return;
    }
    if (plen == 1 && (pic[0] == 'I' || pic[0] == 'i')) {
        f->primary = IF_ROMAN;
        f->tcase = pic[0] == 'I' ? TC_UPPER : TC_LOWER;
        return;
    }
    if ((plen == 1 && (pic[0] == 'W' || pic[0] == 'w')) ||
        (plen == 2 && pic[0] == 'W' && pic[1] == 'w')) {
        f->primary = IF_WORDS;
        f->tcase = plen == 2 ? TC_TITLE : pic[0] == 'W' ? TC_UPPER : TC_LOWER;
        return;
    }
    /* decimal digit pattern, read from the right */
    uint32_t cps[128];
    int n = 0;
    size_t i = 0;
    while (i < plen && n < 128)
        cps[n++] = (uint32_t)jn_utf8_decode(pic, plen, &i);
    bool have_zero = false;
    int pos = 0;
    for (int k = n - 1; k >= 0; k--) {
        uint32_t cp = cps[k];
        bool digit = false;
        for (size_t g = 0; g < sizeof(decimal_groups) / sizeof(*decimal_groups); g++) {
            if (cp >= decimal_groups[g] && cp <= decimal_groups[g] + 9) {
                digit = true;
                f->mandatory++;
                pos++;
                if (!have_zero) {
                    f->zero = decimal_groups[g];
                    have_zero = true;
                } else if (f->zero != decimal_groups[g]) {
                    jn_throw(c, "D3131", -1, NULL);
                }
                break;
            }
        }
        if (digit)
            continue;
        if (cp == '#') {
            pos++;
            f->optional++;
        } else if (f->nseps < 32) {
            f->seps[f->nseps].position = pos;
            f->seps[f->nseps].ch = cp;
            f->nseps++;
        }
    }
    if (f->mandatory == 0) {
        f->primary = IF_SEQUENCE;
        return;
    }
    if (f->nseps > 0) {
        bool same = true;
        for (int k = 1; k < f->nseps; k++)
            same = same && f->seps[k].ch == f->seps[0].ch;
        if (same) {
            int factor = f->seps[0].position;
            for (int k = 1; k < f->nseps; k++)
                factor = gcd(factor, f->seps[k].position);
            bool regular = factor > 0;
            for (int idx = 1; idx <= f->nseps && regular; idx++) {
                bool found = false;
                for (int k = 0; k < f->nseps; k++)
                    found = found || f->seps[k].position == idx * factor;
                regular = found;
            }
            if (regular) {
                f->regular = true;
                f->seps[0].position = factor;
                f->nseps = 1;
            }
        }
    }
}

static const char *const few[] = {
    "Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight",
    "Nine", "Ten", "Eleven", "Twelve", "Thirteen", "Fourteen", "Fifteen",
    "Sixteen", "Seventeen", "Eighteen", "Nineteen"};
static const char *const ordinal_words[] = {
    "Zeroth", "First", "Second", "Third", "Fourth", "Fifth", "Sixth",
    "Seventh", "Eighth", "Ninth", "Tenth", "Eleventh", "Twelfth",
    "Thirteenth", "Fourteenth", "Fifteenth", "Sixteenth", "Seventeenth",
    "Eighteenth", "Nineteenth"};
static const char *const decades[] = {"Twenty", "Thirty", "Forty", "Fifty",
                                      "Sixty", "Seventy", "Eighty", "Ninety"};
static const char *const magnitudes[] = {"Thousand", "Million", "Billion",
                                         "Trillion"};

static void words_of(struct core_buf *b, double num, bool prev, bool ord)
{
    if (num <= 19) {
        if (prev)
            core_buf_puts(b, " and ");
        core_buf_puts(b, ord ? ordinal_words[(int)num] : few[(int)num]);
    } else if (num < 100) {
        int tens = (int)(num / 10), rem = (int)fmod(num, 10);
        if (prev)
            core_buf_puts(b, " and ");
        const char *d = decades[tens - 2];
        if (rem > 0) {
            core_buf_puts(b, d);
            core_buf_putc(b, '-');
            words_of(b, rem, false, ord);
        } else if (ord) {
            core_buf_append(b, d, strlen(d) - 1);
            core_buf_puts(b, "ieth");
        } else {
            core_buf_puts(b, d);
        }
    } else if (num < 1000) {
        int hundreds = (int)(num / 100);
        double rem = fmod(num, 100);
        if (prev)
            core_buf_puts(b, ", ");
        core_buf_puts(b, few[hundreds]);
        core_buf_puts(b, " Hundred");
        if (rem > 0)
            words_of(b, rem, true, ord);
        else if (ord)
            core_buf_puts(b, "th");
    } else {
        int mag = (int)floor(log10(num) / 3);
        if (mag > 4)
            mag = 4;
        double factor = pow(10, mag * 3);
        double mant = floor(num / factor);
        double rem = num - mant * factor;
        if (prev)
            core_buf_puts(b, ", ");
        words_of(b, mant, false, false);
        core_buf_putc(b, ' ');
        core_buf_puts(b, magnitudes[mag - 1]);
        if (rem > 0)
            words_of(b, rem, true, ord);
        else if (ord)
            core_buf_puts(b, "th");
    }
}

static void roman_of(struct core_buf *b, double v, bool upper)
{
    static const struct {
        int v;
        const char *s;
    } nums[] = {{1000, "m"}, {900, "cm"}, {500, "d"}, {400, "cd"}, {100, "c"},
                {90, "xc"}, {50, "l"}, {40, "xl"}, {10, "x"}, {9, "ix"},
                {5, "v"}, {4, "iv"}, {1, "i"}};
    for (size_t i = 0; i < sizeof(nums) / sizeof(*nums); i++) {
        while (v >= nums[i].v) {
            for (const char *p = nums[i].s; *p; p++)
                core_buf_putc(b, upper ? (char)(*p - 32) : *p);
            v -= nums[i].v;
        }
    }
}

static void recase(struct core_buf *b, size_t from, int tcase)
{
    for (size_t i = from; i < b->len; i++) {
        char ch = b->data[i];
        if (tcase == TC_UPPER && ch >= 'a' && ch <= 'z')
            b->data[i] = (char)(ch - 32);
        else if (tcase == TC_LOWER && ch >= 'A' && ch <= 'Z')
            b->data[i] = (char)(ch + 32);
    }
}

static void format_int(struct jn_ctx *c, struct core_buf *b, double value,
                       const struct int_format *f)
{
    /* Words, letters and numerals of astronomic numbers are not useful;
     * the reference runs out of stack on them. */
    if (!isfinite(value) || (f->primary == IF_ROMAN && fabs(value) > 1e7))
        jn_throw(c, "D1001", -1, jn_num(c, value));
    bool neg = value < 0;
    value = fabs(value);
    if (neg)
        core_buf_putc(b, '-');
    size_t start = b->len;
    switch (f->primary) {
    case IF_LETTERS: {
        char tmp[64];
        int k = 0;
        while (value > 0 && k < 63) {
            tmp[k++] = (char)(fmod(value - 1, 26) + (f->tcase == TC_UPPER ? 'A' : 'a'));
            value = floor((value - 1) / 26);
        }
        while (k > 0)
            core_buf_putc(b, tmp[--k]);
        break;
    }
    case IF_ROMAN:
        roman_of(b, value, f->tcase == TC_UPPER);
        break;
    case IF_WORDS:
        words_of(b, value, false, f->ordinal);
        if (f->tcase != TC_TITLE)
            recase(b, start, f->tcase);
        break;
    case IF_DECIMAL: {
        char digits[400];
        int nd = snprintf(digits, sizeof(digits), "%.0f", value);
        if (nd >= (int)sizeof(digits))
            nd = (int)sizeof(digits) - 1;
        /* code points of the padded digit string, then separators */
        uint32_t cps[512];
        int n = 0;
        for (int k = nd; k < f->mandatory && n < 256; k++)
            cps[n++] = f->zero;
        for (int k = 0; k < nd && n < 256; k++)
            cps[n++] = f->zero + (uint32_t)(digits[k] - '0');
        uint32_t out[512];
        int no = 0;
        if (f->regular) {
            int every = f->seps[0].position;
            for (int k = 0; k < n; k++) {
                int from_right = n - k;
                if (k > 0 && every > 0 && from_right % every == 0)
                    out[no++] = f->seps[0].ch;
                out[no++] = cps[k];
            }
        } else {
            for (int k = 0; k < n; k++) {
                int from_right = n - k;
                for (int s = f->nseps - 1; s >= 0; s--)
                    if (f->seps[s].position == from_right && k > 0)
                        out[no++] = f->seps[s].ch;
                out[no++] = cps[k];
                if (no > 500)
                    break;
            }
        }
        for (int k = 0; k < no; k++)
            jn_utf8_put(b, out[k]);
        if (f->ordinal) {
            char last = digits[nd - 1];
            char before = nd > 1 ? digits[nd - 2] : 0;
            const char *suffix = "th";
            if (before != '1') {
                if (last == '1')
                    suffix = "st";
                else if (last == '2')
                    suffix = "nd";
                else if (last == '3')
                    suffix = "rd";
            }
            core_buf_puts(b, suffix);
        }
        break;
    }
    case IF_SEQUENCE:
        jn_throw(c, "D3130", -1, NULL);
    }
}

JN_FN(jn_fn_format_integer)
{
    jv *v = ARG(0), *pic = ARG(1);
    if (!v || !pic)
        return NULL;
    struct int_format f;
    analyse_int_picture(c, pic->u.str.ptr, pic->u.str.len, &f);
    struct core_buf *b = jn_buf_new(c);
    format_int(c, b, floor(v->u.num), &f);
    return jn_buf_to_str(c, b);
}

/* ----------------------------------------------------- integer parsing */
static bool word_lookup(const char *w, size_t n, double *out)
{
    char low[32];
    if (n == 0 || n >= sizeof(low))
        return false;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)(w[i] >= 'A' && w[i] <= 'Z' ? w[i] + 32 : w[i]);
    low[n] = 0;
    char cand[32];
    for (int i = 0; i < 20; i++) {
        snprintf(cand, sizeof(cand), "%s", few[i]);
        cand[0] = (char)(cand[0] + 32);
        if (!strcmp(cand, low)) {
            *out = i;
            return true;
        }
        snprintf(cand, sizeof(cand), "%s", ordinal_words[i]);
        cand[0] = (char)(cand[0] + 32);
        if (!strcmp(cand, low)) {
            *out = i;
            return true;
        }
    }
    for (int i = 0; i < 8; i++) {
        snprintf(cand, sizeof(cand), "%s", decades[i]);
        cand[0] = (char)(cand[0] + 32);
        if (!strcmp(cand, low)) {
            *out = (i + 2) * 10;
            return true;
        }
        size_t cl = strlen(cand);
        snprintf(cand + cl - 1, sizeof(cand) - cl + 1, "ieth");
        if (!strcmp(cand, low)) {
            *out = (i + 2) * 10;
            return true;
        }
    }
    if (!strcmp(low, "hundred") || !strcmp(low, "hundredth")) {
        *out = 100;
        return true;
    }
    for (int i = 0; i < 4; i++) {
        snprintf(cand, sizeof(cand), "%s", magnitudes[i]);
        cand[0] = (char)(cand[0] + 32);
        size_t cl = strlen(cand);
        if (!strcmp(cand, low) ||
            (!strncmp(cand, low, cl) && !strcmp(low + cl, "th"))) {
            *out = pow(10, (i + 1) * 3);
            return true;
        }
    }
    return false;
}

static double words_to_number(const char *s, size_t n)
{
    double segs[64];
    int ns = 1;
    segs[0] = 0;
    size_t i = 0;
    while (i < n) {
        /* separators: ", ", " and ", space, '-' */
        while (i < n && (s[i] == ' ' || s[i] == '-' || s[i] == ','))
            i++;
        size_t st = i;
        while (i < n && s[i] != ' ' && s[i] != '-' && s[i] != ',')
            i++;
        if (i == st)
            break;
        if (i - st == 3 && !strncasecmp(s + st, "and", 3))
            continue;
        double v;
        if (!word_lookup(s + st, i - st, &v))
            return NAN;
        if (v < 100) {
            double top = segs[--ns];
            if (top >= 1000) {
                segs[ns++] = top;
                top = 0;
            }
            if (ns < 63)
                segs[ns++] = top + v;
        } else {
            segs[ns - 1] *= v;
        }
    }
    double r = 0;
    for (int k = 0; k < ns; k++)
        r += segs[k];
    return r;
}

static double roman_to_number(const char *s, size_t n)
{
    double r = 0, max = 1;
    for (size_t i = n; i > 0; i--) {
        char ch = s[i - 1];
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 32);
        double v = ch == 'M' ? 1000 : ch == 'D' ? 500 : ch == 'C' ? 100 :
                   ch == 'L' ? 50 : ch == 'X' ? 10 : ch == 'V' ? 5 : ch == 'I' ? 1 : NAN;
        if (v < max) {
            r -= v;
        } else {
            max = v;
            r += v;
        }
    }
    return r;
}

static double parse_int_value(const char *s, size_t n, const struct int_format *f)
{
    switch (f->primary) {
    case IF_LETTERS: {
        double r = 0;
        char a = f->tcase == TC_UPPER ? 'A' : 'a';
        for (size_t i = 0; i < n; i++)
            r += (s[n - 1 - i] - a + 1) * pow(26, (double)i);
        return r;
    }
    case IF_ROMAN:
        return roman_to_number(s, n);
    case IF_WORDS:
        return words_to_number(s, n);
    default: {
        if (f->ordinal && n >= 2)
            n -= 2;
        char digits[400];
        size_t k = 0;
        size_t i = 0;
        while (i < n && k < sizeof(digits) - 1) {
            uint32_t cp = (uint32_t)jn_utf8_decode(s, n, &i);
            if (cp >= f->zero && cp <= f->zero + 9)
                digits[k++] = (char)('0' + (cp - f->zero));
            else if (k == 0 && cp == '-')
                digits[k++] = '-';
            else {
                bool sep = f->regular ? cp == ',' || cp == f->seps[0].ch : false;
                for (int q = 0; !f->regular && q < f->nseps; q++)
                    sep = sep || cp == f->seps[q].ch;
                if (!sep)
                    break;
            }
        }
        digits[k] = 0;
        if (k == 0 || (k == 1 && digits[0] == '-'))
            return NAN;
        return strtod(digits, NULL);
    }
    }
}

JN_FN(jn_fn_parse_integer)
{
    jv *s = ARG(0), *pic = ARG(1);
    if (!s || !pic)
        return NULL;
    struct int_format f;
    analyse_int_picture(c, pic->u.str.ptr, pic->u.str.len, &f);
    if (f.primary == IF_SEQUENCE)
        jn_throw(c, "D3130", -1, pic);
    return jn_num(c, parse_int_value(s->u.str.ptr, s->u.str.len, &f));
}

/* ------------------------------------------------------ date/time pictures */
struct dt_part {
    bool literal;
    char *text; /* literal text */
    size_t len;
    char component;
    char pres1[32];
    char pres2;
    int names; /* 0, or TC_* + 1 */
    int wmin, wmax; /* -1 when absent */
    bool has_int;
    struct int_format ifmt;
    int n; /* year digits, -1 = all */
};

struct dt_picture {
    struct dt_part *parts;
    int nparts;
};

static const char *default_presentation(char comp)
{
    switch (comp) {
    case 'Y': case 'M': case 'D': case 'd': case 'W': case 'w': case 'X':
    case 'x': case 'H': case 'h': case 'f':
        return "1";
    case 'F': case 'P': case 'C': case 'E':
        return "n";
    case 'm': case 's':
        return "01";
    case 'Z': case 'z':
        return "01:01";
    default:
        return NULL;
    }
}

static void add_literal(struct jn_ctx *c, struct dt_picture *p, int *cap,
                        const char *s, size_t n)
{
    if (n == 0)
        return;
    if (p->nparts == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        struct dt_part *np = jn_alloc(c, (size_t)*cap * sizeof(*np));
        if (p->nparts)
            memcpy(np, p->parts, (size_t)p->nparts * sizeof(*np));
        p->parts = np;
    }
    struct dt_part *part = &p->parts[p->nparts++];
    memset(part, 0, sizeof(*part));
    part->literal = true;
    /* "]]" stands for "]" */
    char *t = jn_alloc(c, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        t[k++] = s[i];
        if (s[i] == ']' && i + 1 < n && s[i + 1] == ']')
            i++;
    }
    t[k] = 0;
    part->text = t;
    part->len = k;
}

static int parse_width(const char *s, size_t n)
{
    if (n == 0 || (n == 1 && s[0] == '*'))
        return -1;
    return atoi(s);
}

static void analyse_dt_picture(struct jn_ctx *c, const char *pic, size_t plen,
                               struct dt_picture *p)
{
    int cap = 0;
    p->parts = NULL;
    p->nparts = 0;
    size_t start = 0, pos = 0;
    while (pos < plen) {
        if (pic[pos] != '[') {
            pos++;
            continue;
        }
        if (pos + 1 < plen && pic[pos + 1] == '[') {
            add_literal(c, p, &cap, pic + start, pos - start);
            add_literal(c, p, &cap, "[", 1);
            pos += 2;
            start = pos;
            continue;
        }
        add_literal(c, p, &cap, pic + start, pos - start);
        const char *close = memchr(pic + pos, ']', plen - pos);
        if (!close)
            jn_throw(c, "D3135", -1, NULL);
        /* the marker without whitespace */
        char marker[64];
        size_t ml = 0;
        for (const char *q = pic + pos + 1; q < close; q++)
            if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r' && ml < sizeof(marker) - 1)
                marker[ml++] = *q;
        marker[ml] = 0;
        add_literal(c, p, &cap, "x", 1); /* reserve a slot */
        struct dt_part *d = &p->parts[p->nparts - 1];
        memset(d, 0, sizeof(*d));
        d->component = marker[0];
        d->wmin = d->wmax = -1;
        d->n = -1;
        char *comma = strrchr(marker, ',');
        size_t pres_end = ml;
        if (comma) {
            const char *w = comma + 1;
            const char *dash = strchr(w, '-');
            if (dash) {
                d->wmin = parse_width(w, (size_t)(dash - w));
                d->wmax = parse_width(dash + 1, strlen(dash + 1));
            } else {
                d->wmin = parse_width(w, strlen(w));
            }
            pres_end = (size_t)(comma - marker);
        }
        size_t presl = pres_end > 0 ? pres_end - 1 : 0;
        const char *pres = marker + 1;
        if (presl >= sizeof(d->pres1))
            presl = sizeof(d->pres1) - 1;
        if (presl == 1) {
            memcpy(d->pres1, pres, 1);
        } else if (presl > 1) {
            char last = pres[presl - 1];
            if (strchr("atco", last)) {
                d->pres2 = last;
                memcpy(d->pres1, pres, presl - 1);
            } else {
                memcpy(d->pres1, pres, presl);
            }
        } else {
            const char *def = default_presentation(d->component);
            if (!def)
                jn_throw(c, "D3132", -1, NULL);
            strcpy(d->pres1, def);
        }
        if (d->pres1[0] == 'n') {
            d->names = TC_LOWER + 1;
        } else if (d->pres1[0] == 'N') {
            d->names = d->pres1[1] == 'n' ? TC_TITLE + 1 : TC_UPPER + 1;
        } else if (d->component && strchr("YMDdFWwXxHhmsf", d->component)) {
            char ip[40];
            snprintf(ip, sizeof(ip), "%s%s%c", d->pres1, d->pres2 ? ";" : "",
                     d->pres2 ? d->pres2 : 0);
            analyse_int_picture(c, ip, strlen(ip), &d->ifmt);
            d->has_int = true;
            if (d->wmin >= 0 && d->ifmt.mandatory < d->wmin)
                d->ifmt.mandatory = d->wmin;
            if (d->component == 'Y') {
                if (d->wmax >= 0) {
                    d->n = d->wmax;
                    d->ifmt.mandatory = d->n;
                } else {
                    int w = d->ifmt.mandatory + d->ifmt.optional;
                    if (w >= 2)
                        d->n = w;
                }
            }
            if (p->nparts >= 2 && p->parts[p->nparts - 2].has_int)
                p->parts[p->nparts - 2].ifmt.parse_width = p->parts[p->nparts - 2].ifmt.mandatory;
        }
        if (d->component == 'Z' || d->component == 'z') {
            analyse_int_picture(c, d->pres1, strlen(d->pres1), &d->ifmt);
            d->has_int = false;
        }
        pos = (size_t)(close - pic) + 1;
        start = pos;
    }
    add_literal(c, p, &cap, pic + start, pos - start);
}

static const char *const month_names[] = {
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December"};
static const char *const day_names[] = {"", "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday",
                                        "Sunday"};

static void format_dt(struct jn_ctx *c, struct core_buf *b, double millis,
                      const struct dt_picture *p, int off_h, int off_m)
{
    double t = millis + (60.0 * off_h + off_m) * 60000.0;
    for (int i = 0; i < p->nparts; i++) {
        const struct dt_part *d = &p->parts[i];
        if (d->literal) {
            core_buf_append(b, d->text, d->len);
            continue;
        }
        char comp = d->component;
        if (strchr("YMDdFWwXxHhms", comp)) {
            double v = component_value(t, comp);
            if (comp == 'Y' && d->n != -1)
                v = fmod(v, pow(10, d->n));
            if (d->names) {
                const char *name;
                if (comp == 'M' || comp == 'x')
                    name = month_names[(int)v - 1];
                else if (comp == 'F')
                    name = day_names[(int)v];
                else
                    jn_throw(c, "D3133", -1, NULL);
                size_t from = b->len;
                size_t nl = strlen(name);
                if (d->wmax >= 0 && nl > (size_t)d->wmax)
                    nl = (size_t)d->wmax;
                core_buf_append(b, name, nl);
                if (d->names == TC_UPPER + 1)
                    recase(b, from, TC_UPPER);
                else if (d->names == TC_LOWER + 1)
                    recase(b, from, TC_LOWER);
            } else {
                format_int(c, b, v, &d->ifmt);
            }
        } else if (comp == 'f') {
            format_int(c, b, component_value(t, 'f'), &d->ifmt);
        } else if (comp == 'Z' || comp == 'z') {
            int offset = off_h * 100 + off_m;
            struct core_buf *z = jn_buf_new(c);
            if (d->ifmt.regular) {
                format_int(c, z, offset, &d->ifmt);
            } else {
                int nd = d->ifmt.mandatory;
                if (nd == 1 || nd == 2) {
                    format_int(c, z, off_h, &d->ifmt);
                    if (off_m != 0)
                        core_buf_printf(z, ":%02d", abs(off_m));
                } else if (nd == 3 || nd == 4) {
                    format_int(c, z, offset, &d->ifmt);
                } else {
                    jn_buf_free(c, z);
                    jn_throw(c, "D3134", -1, NULL);
                }
            }
            if (offset == 0 && d->pres2 == 't') {
                core_buf_putc(b, 'Z');
            } else {
                if (comp == 'z')
                    core_buf_puts(b, "GMT");
                if (offset >= 0)
                    core_buf_putc(b, '+');
                core_buf_append(b, z->data ? z->data : "", z->len);
            }
            jn_buf_free(c, z);
        } else if (comp == 'P') {
            const char *ap = component_value(t, 'P') ? "pm" : "am";
            core_buf_puts(b, d->names == TC_UPPER + 1 ? (ap[0] == 'p' ? "PM" : "AM") : ap);
        } else if (comp == 'C' || comp == 'E') {
            core_buf_puts(b, "ISO");
        }
    }
}

static int64_t now_ms(struct jn_ctx *c)
{
    if (c->now_ms < 0)
        c->now_ms = core_time_now_ms();
    return c->now_ms;
}

/* JavaScript's Date covers 8.64e15 ms either side of the epoch. */
#define JN_MAX_DATE_MS 8.64e15

static jv *from_millis(struct jn_ctx *c, double ms, jv *pic, jv *tz)
{
    if (!isfinite(ms) || fabs(ms) > JN_MAX_DATE_MS)
        return NULL;
    int off_h = 0, off_m = 0;
    if (tz) {
        long off = strtol(tz->u.str.ptr, NULL, 10);
        if (off > 100000 || off < -100000)
            off = 0;
        off_h = (int)floor(off / 100.0);
        off_m = (int)(off % 100);
    }
    struct dt_picture p;
    static const char iso[] = "[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01].[f001][Z01:01t]";
    if (pic)
        analyse_dt_picture(c, pic->u.str.ptr, pic->u.str.len, &p);
    else
        analyse_dt_picture(c, iso, sizeof(iso) - 1, &p);
    struct core_buf *b = jn_buf_new(c);
    format_dt(c, b, trunc(ms), &p, off_h, off_m);
    return jn_buf_to_str(c, b);
}

JN_FN(jn_fn_from_millis)
{
    jv *ms = ARG(0);
    if (!ms)
        return NULL;
    return from_millis(c, ms->u.num, ARG(1), ARG(2));
}

JN_FN(jn_fn_now)
{
    return from_millis(c, (double)now_ms(c), ARG(0), ARG(1));
}

JN_FN(jn_fn_millis)
{
    return jn_num(c, (double)now_ms(c));
}

/* ----------------------------------------------------------------- parsing */
static bool digits_at(const char *s, size_t n, size_t i, size_t count)
{
    if (i + count > n)
        return false;
    for (size_t k = 0; k < count; k++)
        if (s[i + k] < '0' || s[i + k] > '9')
            return false;
    return true;
}

static int num_at(const char *s, size_t i, size_t count)
{
    int v = 0;
    for (size_t k = 0; k < count; k++)
        v = v * 10 + (s[i + k] - '0');
    return v;
}

/* The ISO 8601 forms the reference accepts without a picture. */
static bool parse_iso(const char *s, size_t n, double *out)
{
    size_t i = 0;
    if (!digits_at(s, n, 0, 4))
        return false;
    int y = num_at(s, 0, 4), mo = 1, d = 1, h = 0, mi = 0, se = 0;
    double ms = 0;
    int off = 0;
    i = 4;
    if (i < n && s[i] == '-') {
        if (!digits_at(s, n, i + 1, 2) || s[i + 1] > '1')
            return false;
        mo = num_at(s, i + 1, 2);
        i += 3;
        if (i < n && s[i] == '-') {
            if (!digits_at(s, n, i + 1, 2) || s[i + 1] > '3')
                return false;
            d = num_at(s, i + 1, 2);
            i += 3;
        }
    }
    if (i < n && s[i] == 'T') {
        if (!digits_at(s, n, i + 1, 2) || s[i + 3] != ':' || !digits_at(s, n, i + 4, 2) ||
            s[i + 6] != ':' || !digits_at(s, n, i + 7, 2))
            return false;
        h = num_at(s, i + 1, 2);
        mi = num_at(s, i + 4, 2);
        se = num_at(s, i + 7, 2);
        if (s[i + 1] > '2' || s[i + 4] > '5' || s[i + 7] > '5')
            return false;
        i += 9;
    }
    if (i < n && s[i] == '.') {
        size_t st = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == st)
            return false;
        double scale = 100;
        for (size_t k = st; k < i && k < st + 3; k++, scale /= 10)
            ms += (s[k] - '0') * scale;
    }
    if (i < n && s[i] == 'Z') {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1;
        if (!digits_at(s, n, i + 1, 2))
            return false;
        int oh = num_at(s, i + 1, 2);
        i += 3;
        if (i < n && s[i] == ':')
            i++;
        if (!digits_at(s, n, i, 2))
            return false;
        int om = num_at(s, i, 2);
        i += 2;
        off = sign * (oh * 60 + om);
    }
    if (i != n)
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 24 || mi > 59 || se > 59) {
        *out = NAN;
        return true;
    }
    *out = utc_ms(y, mo - 1, d, h, mi, se, ms) - off * 60000.0;
    return true;
}

static void regex_quote(struct core_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strchr(".*+?^${}()|[]\\", s[i]))
            core_buf_putc(b, '\\');
        core_buf_putc(b, s[i]);
    }
}

static void int_regex(struct core_buf *b, const struct int_format *f)
{
    switch (f->primary) {
    case IF_LETTERS:
        core_buf_puts(b, f->tcase == TC_UPPER ? "[A-Z]+" : "[a-z]+");
        break;
    case IF_ROMAN:
        core_buf_puts(b, f->tcase == TC_UPPER ? "[MDCLXVI]+" : "[mdclxvi]+");
        break;
    case IF_WORDS:
        /* every number word, in the order the reference lists them */
        core_buf_puts(b, "(?:");
        for (int i = 0; i < 20; i++)
            core_buf_printf(b, "%s|", few[i]);
        for (int i = 0; i < 20; i++)
            core_buf_printf(b, "%s|", ordinal_words[i]);
        for (int i = 0; i < 8; i++)
            core_buf_printf(b, "%s|%.*sieth|", decades[i], (int)strlen(decades[i]) - 1,
                            decades[i]);
        core_buf_puts(b, "hundred|hundredth|");
        for (int i = 0; i < 4; i++)
            core_buf_printf(b, "%s|%sth|", magnitudes[i], magnitudes[i]);
        core_buf_puts(b, "and|[\\-, ])+");
        break;
    default:
        core_buf_puts(b, "[0-9]");
        if (f->parse_width)
            core_buf_printf(b, "{%d}", f->parse_width);
        else
            core_buf_putc(b, '+');
        if (f->ordinal)
            core_buf_puts(b, "(?:th|st|nd|rd)");
        break;
    }
}

static bool name_lookup(const struct dt_part *d, const char *s, size_t n,
                        double *out)
{
    if (d->component == 'M' || d->component == 'x' || d->component == 'F') {
        bool months = d->component != 'F';
        for (int i = months ? 0 : 1; i < (months ? 12 : 8); i++) {
            const char *name = months ? month_names[i] : day_names[i];
            size_t nl = strlen(name);
            if (d->wmax >= 0 && nl > (size_t)d->wmax)
                nl = (size_t)d->wmax;
            if (nl == n && !strncasecmp(name, s, n)) {
                *out = months ? i + 1 : i;
                return true;
            }
        }
        return false;
    }
    if (d->component == 'P') {
        if (n == 2 && !strncasecmp(s, "am", 2)) {
            *out = 0;
            return true;
        }
        if (n == 2 && !strncasecmp(s, "pm", 2)) {
            *out = 1;
            return true;
        }
    }
    return false;
}

static jv *parse_dt(struct jn_ctx *c, jv *ts, jv *pic)
{
    struct dt_picture p;
    analyse_dt_picture(c, pic->u.str.ptr, pic->u.str.len, &p);
    struct core_buf *re = jn_buf_new(c);
    core_buf_putc(re, '^');
    for (int i = 0; i < p.nparts; i++) {
        const struct dt_part *d = &p.parts[i];
        core_buf_putc(re, '(');
        if (d->literal) {
            regex_quote(re, d->text, d->len);
        } else if (d->component == 'Z' || d->component == 'z') {
            if (d->component == 'z')
                core_buf_puts(re, "GMT");
            core_buf_puts(re, "[-+][0-9]+");
            if (d->ifmt.regular) {
                regex_quote(re, (const char[]){(char)d->ifmt.seps[0].ch, 0}, 1);
                core_buf_puts(re, "[0-9]+");
            }
        } else if (d->component == 'f') {
            core_buf_puts(re, "[0-9]+");
        } else if (d->has_int) {
            int_regex(re, &d->ifmt);
        } else if (d->component == 'M' || d->component == 'x' ||
                   d->component == 'F' || d->component == 'P') {
            core_buf_puts(re, "[a-zA-Z]+");
        } else {
            jn_buf_free(c, re);
            jn_throw(c, "D3133", -1, NULL);
        }
        core_buf_putc(re, ')');
    }
    core_buf_putc(re, '$');
    if (re->oom) {
        jn_buf_free(c, re);
        jn_oom(c);
    }
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re->data, re->len,
                                     PCRE2_CASELESS | PCRE2_UTF, &ec, &eo, NULL);
    jn_buf_free(c, re);
    if (!code)
        return NULL;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int rc = md ? pcre2_match(code, (PCRE2_SPTR)ts->u.str.ptr, ts->u.str.len, 0, 0, md, NULL) : -1;
    size_t *offs = jn_alloc(c, (size_t)(2 * p.nparts + 2) * sizeof(size_t));
    if (rc > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        for (int i = 0; i < 2 * p.nparts + 2; i++)
            offs[i] = ov[i];
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    if (rc <= 0)
        return NULL;

    /* component values by letter; NAN = not given */
    static const char letters[] = "YXMxWwdDFPHhmsfZz";
    double comp[sizeof(letters)];
    for (size_t i = 0; i < sizeof(letters); i++)
        comp[i] = NAN;
#define COMP(ch) comp[strchr(letters, (ch)) - letters]
    bool any = false;
    const char *s = ts->u.str.ptr;
    for (int i = 0; i < p.nparts; i++) {
        const struct dt_part *d = &p.parts[i];
        if (d->literal || !strchr(letters, d->component))
            continue;
        const char *v = s + offs[2 * (i + 1)];
        size_t vl = offs[2 * (i + 1) + 1] - offs[2 * (i + 1)];
        double val;
        if (d->component == 'Z' || d->component == 'z') {
            const char *q = v + (d->component == 'z' ? 3 : 0);
            size_t ql = vl - (d->component == 'z' ? 3 : 0);
            int oh = 0, om = 0;
            char *tmp = jn_arena_strndup(&c->arena, q, ql);
            if (d->ifmt.regular) {
                char *sep = strchr(tmp + 1, (char)d->ifmt.seps[0].ch);
                oh = atoi(tmp);
                om = sep ? atoi(sep + 1) : 0;
            } else if (ql - 1 <= 2) {
                oh = atoi(tmp);
            } else {
                char h3[4] = {tmp[0], tmp[1], tmp[2], 0};
                oh = atoi(h3);
                om = atoi(tmp + 3);
            }
            val = oh * 60 + om;
        } else if (d->component == 'f') {
            double ms = 0, scale = 100;
            for (size_t k = 0; k < vl && k < 3; k++, scale /= 10)
                ms += (v[k] - '0') * scale;
            val = ms;
        } else if (d->has_int) {
            val = parse_int_value(v, vl, &d->ifmt);
        } else if (!name_lookup(d, v, vl, &val)) {
            val = NAN;
            continue;
        }
        COMP(d->component) = val;
        any = true;
    }
    if (!any)
        return NULL;
    /* Which date and time forms were given (the reference's bit masks). */
    int mask = 0;
    for (const char *q = "YXMxWwdD"; *q; q++)
        mask = (mask << 1) | !isnan(COMP(*q));
#define IS_TYPE(t) (!(~(t) & mask) && ((t) & mask))
    bool date_a = IS_TYPE(161), date_b = !date_a && IS_TYPE(130);
    bool date_c = IS_TYPE(84), date_d = !date_c && IS_TYPE(72);
    mask = 0;
    for (const char *q = "PHhmsf"; *q; q++)
        mask = (mask << 1) | !isnan(COMP(*q));
    bool time_a = IS_TYPE(23), time_b = !time_a && IS_TYPE(47);
#undef IS_TYPE
    char comps[16];
    snprintf(comps, sizeof(comps), "%s%s",
             date_b ? "YD" : date_c ? "XxwF" : date_d ? "XWF" : "YMD",
             time_b ? "Phmsf" : "Hmsf");
    double now = (double)now_ms(c);
    bool start_given = false, end_given = false;
    for (const char *q = comps; *q; q++) {
        if (isnan(COMP(*q))) {
            if (start_given) {
                COMP(*q) = strchr("MDd", *q) ? 1 : 0;
                end_given = true;
            } else {
                COMP(*q) = component_value(now, *q);
            }
        } else {
            start_given = true;
            if (end_given)
                jn_throw(c, "D3136", -1, NULL);
        }
    }
    double month0 = COMP('M') > 0 ? COMP('M') - 1 : 0;
    double day = COMP('D');
    if (date_b) {
        double t = utc_ms(COMP('Y'), 0, 1, 0, 0, 0, 0) + (COMP('d') - 1) * MS_PER_DAY;
        struct civil cv;
        civil_of(t, &cv);
        month0 = cv.month;
        day = cv.day;
    }
    if (date_c || date_d)
        jn_throw(c, "D3136", -1, NULL);
    double hour = COMP('H');
    if (time_b) {
        hour = COMP('h') == 12 ? 0 : COMP('h');
        if (COMP('P') == 1)
            hour += 12;
    }
    double ms = utc_ms(COMP('Y'), month0, day, hour, COMP('m'), COMP('s'), COMP('f'));
    double tz = !isnan(COMP('Z')) && COMP('Z') ? COMP('Z') : !isnan(COMP('z')) ? COMP('z') : 0;
    ms -= tz * 60000.0;
    if (!isfinite(ms))
        return NULL;
#undef COMP
    return jn_num(c, ms);
}

JN_FN(jn_fn_to_millis)
{
    jv *s = ARG(0), *pic = ARG(1);
    if (!s)
        return NULL;
    if (pic)
        return parse_dt(c, s, pic);
    double out;
    if (!parse_iso(s->u.str.ptr, s->u.str.len, &out))
        jn_throw(c, "D3110", -1, s);
    return jn_num(c, out);
}
