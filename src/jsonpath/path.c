/*
 * Normalized paths (RFC 9535 §2.7): $ followed by ['name'] and [index]
 * steps, names in single quotes with the minimal escaping the RFC fixes,
 * so that equal locations always print the same text.
 */
#include "jsonpath_internal.h"

static void put_name(struct core_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* start of the pending unescaped run */

    core_buf_puts(b, "['");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];

        switch (c) {
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\'': esc = "\\'"; break;
        case '\\': esc = "\\\\"; break;
        default:
            if (c < 0x20) {
                u[0] = '\\';
                u[1] = 'u';
                u[2] = '0';
                u[3] = '0';
                u[4] = hex[c >> 4];
                u[5] = hex[c & 0xF];
                u[6] = '\0';
                esc = u;
            }
            break;
        }
        if (!esc)
            continue;
        core_buf_append(b, s + run, i - run);
        core_buf_puts(b, esc);
        run = i + 1;
    }
    core_buf_append(b, s + run, n - run);
    core_buf_puts(b, "']");
}

void jsonpath_path_format(const struct jsonpath_step *steps, size_t n,
                          struct core_buf *b)
{
    core_buf_putc(b, '$');
    for (size_t i = 0; i < n; i++) {
        if (steps[i].name)
            put_name(b, steps[i].name, steps[i].name_len);
        else
            core_buf_printf(b, "[%zu]", steps[i].index);
    }
}

int jsonpath_node_path(const struct jsonpath_result *r, size_t i,
                       struct core_buf *b)
{
    if (!r || !b || i >= r->len || !r->paths)
        return CORE_EINVAL;
    const struct jsonpath_node *node = &r->nodes[i];
    if (node->path_start + node->path_len > r->steps_len)
        return CORE_EINVAL;
    jsonpath_path_format(r->steps + node->path_start, node->path_len, b);
    return b->oom ? CORE_ENOMEM : 0;
}
