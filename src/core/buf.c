#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void core_buf_init(struct core_buf *b)
{
    memset(b, 0, sizeof *b);
}

void core_buf_fini(struct core_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void core_buf_reset(struct core_buf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->data)
        b->data[0] = '\0';
}

static bool reserve(struct core_buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void core_buf_append(struct core_buf *b, const void *data, size_t len)
{
    if (!reserve(b, len))
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void core_buf_puts(struct core_buf *b, const char *s)
{
    core_buf_append(b, s, strlen(s));
}

void core_buf_putc(struct core_buf *b, char c)
{
    core_buf_append(b, &c, 1);
}

void core_buf_vprintf(struct core_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    if ((size_t)n < sizeof small) {
        core_buf_append(b, small, (size_t)n);
    } else if (reserve(b, (size_t)n)) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

void core_buf_printf(struct core_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    core_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void core_buf_json_string(struct core_buf *b, const char *s)
{
    core_buf_putc(b, '"');
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        core_buf_append(b, run, (size_t)(s - run));
        switch (c) {
        case '"': core_buf_puts(b, "\\\""); break;
        case '\\': core_buf_puts(b, "\\\\"); break;
        case '\n': core_buf_puts(b, "\\n"); break;
        case '\r': core_buf_puts(b, "\\r"); break;
        case '\t': core_buf_puts(b, "\\t"); break;
        default: core_buf_printf(b, "\\u%04x", c); break;
        }
        run = s + 1;
    }
    core_buf_append(b, run, (size_t)(s - run));
    core_buf_putc(b, '"');
}

char *core_buf_steal(struct core_buf *b)
{
    if (b->oom) {
        core_buf_fini(b);
        return NULL;
    }
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    memset(b, 0, sizeof *b);
    return p;
}
