/*
 * The PostgreSQL driver's text work, kept apart from libpq so that it can
 * be tested alone: placeholder rewriting and timestamp conversion.
 */
#include "db_internal.h"

#include "core.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$' ||
           (unsigned char)c >= 0x80;
}

/* End of the quoted run opening at p with quote q. A doubled quote
 * continues it; with backslashes (E'...'), a backslash escapes the
 * next character. An unterminated run ends at the NUL: the server will
 * report it. */
static const char *skip_quoted(const char *p, char q, bool backslashes)
{
    for (p++; *p; p++) {
        if (backslashes && *p == '\\' && p[1]) {
            p++;
        } else if (*p == q) {
            if (p[1] != q)
                return p + 1;
            p++;
        }
    }
    return p;
}

/* Block comments nest in PostgreSQL. */
static const char *skip_block_comment(const char *p)
{
    int depth = 0;
    while (*p) {
        if (p[0] == '/' && p[1] == '*') {
            depth++;
            p += 2;
        } else if (p[0] == '*' && p[1] == '/') {
            p += 2;
            if (--depth == 0)
                return p;
        } else {
            p++;
        }
    }
    return p;
}

/* $tag$ ... $tag$ at p, or NULL when p does not open one. */
static const char *skip_dollar_quoted(const char *p)
{
    const char *t = p + 1;
    if (isdigit((unsigned char)*t)) /* $1 is a positional parameter */
        return NULL;
    while (*t && *t != '$' && (isalnum((unsigned char)*t) || *t == '_' ||
                               (unsigned char)*t >= 0x80))
        t++;
    if (*t != '$')
        return NULL;
    size_t taglen = (size_t)(t - p) + 1;
    for (const char *q = t + 1; *q; q++) {
        if (*q == '$' && strncmp(q, p, taglen) == 0)
            return q + taglen;
    }
    return p + strlen(p);
}

char *db__pg_rewrite(const char *sql, int *nparams)
{
    struct core_buf b;
    int n = 0;
    core_buf_init(&b);
    const char *p = sql;
    while (*p) {
        const char *end = NULL;
        bool after_ident = p > sql && ident_char(p[-1]);
        if (*p == '\'') {
            /* E'...' allows backslash escapes; 'E' must start a token. */
            bool e = p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
                     (p - 1 == sql || !ident_char(p[-2]));
            end = skip_quoted(p, '\'', e);
        } else if (*p == '"') {
            end = skip_quoted(p, '"', false);
        } else if (p[0] == '-' && p[1] == '-') {
            end = p + strcspn(p, "\n");
        } else if (p[0] == '/' && p[1] == '*') {
            end = skip_block_comment(p);
        } else if (*p == '$' && !after_ident) {
            end = skip_dollar_quoted(p);
        } else if (*p == '?') {
            core_buf_printf(&b, "$%d", ++n);
            p++;
            continue;
        }
        if (!end)
            end = p + 1;
        core_buf_append(&b, p, (size_t)(end - p));
        p = end;
    }
    *nparams = n;
    return core_buf_steal(&b);
}

static bool two_digits(const char *p)
{
    return isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]);
}

int db__pg_time_to_iso(const char *pg, char out[CORE_TIME_ISO_LEN])
{
    char buf[48];
    size_t n = strlen(pg);
    /* "YYYY-MM-DD HH:MM:SS" at least; anything longer than microseconds
     * and an "+HH:MM:SS" offset is not a timestamp we can represent. */
    if (n < 19 || n > 38)
        return CORE_EPARSE;
    /* The offset starts at the first sign after the date. */
    size_t base = 10 + strcspn(pg + 10, "+-");
    memcpy(buf, pg, base);
    const char *off = pg + base;
    if (*off == '\0') { /* timestamp without time zone: read as UTC */
        memcpy(buf + base, "Z", 2);
    } else {
        /* PostgreSQL writes +HH, +HH:MM or +HH:MM:SS; core wants +HH:MM. */
        const char *mm = "00";
        if (!two_digits(off + 1))
            return CORE_EPARSE;
        if (off[3] == ':') {
            if (!two_digits(off + 4))
                return CORE_EPARSE;
            mm = off + 4;
            if (off[6] == ':' && !(off[7] == '0' && off[8] == '0' && !off[9]))
                return CORE_EPARSE;
            if (off[6] != '\0' && off[6] != ':')
                return CORE_EPARSE;
        } else if (off[3] != '\0') {
            return CORE_EPARSE;
        }
        snprintf(buf + base, sizeof buf - base, "%c%c%c:%c%c", off[0],
                 off[1], off[2], mm[0], mm[1]);
    }
    int64_t ms;
    if (core_time_parse_iso(buf, &ms) != CORE_OK)
        return CORE_EPARSE;
    core_time_format_iso(ms, out);
    return CORE_OK;
}
