/*
 * Tokenizer. Follows the reference's lexical rules: names run until
 * whitespace or an operator character, numbers are JSON numbers without a
 * sign, strings take JSON escapes, and '/' starts a regular expression
 * only where an operand is expected.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lexer.h"

static const char *const two_char_ops[] = {"..", ":=", "!=", ">=", "<=",
                                           "**", "~>", "?:", "??"};
static const char single_ops[] = ".[]{}(),@#;:?+-*/%|=<>^&!~";

void jn_syntax_error(struct jsonata_expr *x, struct jsonata_error *err,
                     const char *code, int position, const char *token,
                     size_t tlen, const char *message)
{
    if (err) {
        snprintf(err->code, sizeof(err->code), "%s", code);
        err->position = position;
        if (tlen >= sizeof(err->token))
            tlen = sizeof(err->token) - 1;
        if (token)
            memcpy(err->token, token, tlen);
        err->token[token ? tlen : 0] = 0;
        snprintf(err->message, sizeof(err->message), "%s", message);
    }
    longjmp(x->jmp, 1);
}

static bool is_op_char(char ch)
{
    return ch && strchr(single_ops, ch) != NULL;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v';
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static void lex_string(struct jn_lexer *l, struct jn_token *t)
{
    char quote = l->src[l->pos++];
    struct core_buf b;
    core_buf_init(&b);
    uint32_t pending_high = 0;
    while (l->pos < l->len) {
        char ch = l->src[l->pos];
        if (ch == '\\') {
            l->pos++;
            char e = l->pos < l->len ? l->src[l->pos] : 0;
            uint32_t cp = 0;
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u': {
                int v = 0;
                for (int i = 1; i <= 4; i++) {
                    int h = l->pos + i < l->len ? hexval(l->src[l->pos + i]) : -1;
                    if (h < 0) {
                        core_buf_fini(&b);
                        jn_syntax_error(l->x, l->err, "S0104", (int)l->pos,
                                        NULL, 0,
                                        "The escape sequence \\u must be "
                                        "followed by 4 hex digits");
                    }
                    v = v * 16 + h;
                }
                l->pos += 4;
                cp = (uint32_t)v;
                break;
            }
            default:
                core_buf_fini(&b);
                jn_syntax_error(l->x, l->err, "S0103", (int)l->pos, &e, 1,
                                "Unsupported escape sequence");
            }
            l->pos++;
            /* Join UTF-16 surrogate pairs; keep lone ones as WTF-8. */
            if (pending_high) {
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    cp = 0x10000 + ((pending_high - 0xD800) << 10) +
                         (cp - 0xDC00);
                    pending_high = 0;
                    jn_utf8_put(&b, cp);
                    continue;
                }
                jn_utf8_put(&b, pending_high);
                pending_high = 0;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                pending_high = cp;
                continue;
            }
            jn_utf8_put(&b, cp);
            continue;
        }
        if (pending_high) {
            jn_utf8_put(&b, pending_high);
            pending_high = 0;
        }
        if (ch == quote) {
            l->pos++;
            if (b.oom) {
                core_buf_fini(&b);
                longjmp(l->x->jmp, 2);
            }
            t->type = TK_STR;
            t->len = b.len;
            t->s = jn_arena_strndup(&l->x->arena, b.data ? b.data : "", b.len);
            core_buf_fini(&b);
            return;
        }
        core_buf_putc(&b, ch);
        l->pos++;
    }
    core_buf_fini(&b);
    jn_syntax_error(l->x, l->err, "S0101", (int)l->pos, NULL, 0,
                    "String literal must be terminated by a matching quote");
}

static void lex_regex(struct jn_lexer *l, struct jn_token *t)
{
    size_t start = ++l->pos;
    int depth = 0;
    while (l->pos < l->len) {
        char ch = l->src[l->pos];
        if (ch == '/' && depth == 0) {
            size_t bs = 0;
            while (l->pos - bs > start && l->src[l->pos - bs - 1] == '\\')
                bs++;
            if (bs % 2 == 0) {
                if (l->pos == start)
                    jn_syntax_error(l->x, l->err, "S0301", (int)l->pos, NULL,
                                    0, "Empty regular expressions are not "
                                       "allowed");
                t->s = jn_arena_strndup(&l->x->arena, l->src + start,
                                        l->pos - start);
                t->len = l->pos - start;
                size_t fstart = ++l->pos;
                while (l->pos < l->len &&
                       (l->src[l->pos] == 'i' || l->src[l->pos] == 'm'))
                    l->pos++;
                t->flags = jn_arena_strndup(&l->x->arena, l->src + fstart,
                                            l->pos - fstart);
                t->type = TK_REGEX;
                return;
            }
        }
        bool escaped = l->pos > start && l->src[l->pos - 1] == '\\';
        if ((ch == '(' || ch == '[' || ch == '{') && !escaped)
            depth++;
        if ((ch == ')' || ch == ']' || ch == '}') && !escaped)
            depth--;
        l->pos++;
    }
    jn_syntax_error(l->x, l->err, "S0302", (int)l->pos, NULL, 0,
                    "No terminating / in regular expression");
}

static bool lex_number(struct jn_lexer *l, struct jn_token *t)
{
    const char *s = l->src;
    size_t i = l->pos;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return false;
    }
    if (s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9') {
        i++;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1;
        if (s[j] == '+' || s[j] == '-')
            j++;
        if (s[j] >= '0' && s[j] <= '9') {
            while (s[j] >= '0' && s[j] <= '9')
                j++;
            i = j;
        }
    }
    char buf[64];
    size_t n = i - l->pos;
    if (n >= sizeof(buf)) {
        char *tmp = jn_arena_strndup(&l->x->arena, s + l->pos, n);
        t->num = strtod(tmp, NULL);
    } else {
        memcpy(buf, s + l->pos, n);
        buf[n] = 0;
        t->num = strtod(buf, NULL);
    }
    if (!isfinite(t->num))
        jn_syntax_error(l->x, l->err, "S0102", (int)i, s + l->pos, n,
                        "Number out of range");
    t->s = jn_arena_strndup(&l->x->arena, s + l->pos, n);
    t->len = n;
    l->pos = i;
    t->type = TK_NUM;
    return true;
}

void jn_lex_next(struct jn_lexer *l, bool prefix, struct jn_token *t)
{
    const char *s = l->src;
    memset(t, 0, sizeof(*t));
    for (;;) {
        while (l->pos < l->len && is_space(s[l->pos]))
            l->pos++;
        if (l->pos + 1 < l->len && s[l->pos] == '/' && s[l->pos + 1] == '*') {
            const char *end = strstr(s + l->pos + 2, "*/");
            if (!end)
                jn_syntax_error(l->x, l->err, "S0106", (int)l->pos, NULL, 0,
                                "Comment has no closing tag");
            l->pos = (size_t)(end - s) + 2;
            continue;
        }
        break;
    }
    t->start = (int)l->pos;
    if (l->pos >= l->len) {
        t->type = TK_END;
        t->position = (int)l->len;
        return;
    }
    char ch = s[l->pos];
    if (prefix && ch == '/') {
        lex_regex(l, t);
        goto done;
    }
    for (size_t i = 0; i < sizeof(two_char_ops) / sizeof(*two_char_ops); i++) {
        if (ch == two_char_ops[i][0] && s[l->pos + 1] == two_char_ops[i][1]) {
            t->type = TK_OP;
            t->s = two_char_ops[i];
            t->len = 2;
            l->pos += 2;
            goto done;
        }
    }
    if (is_op_char(ch)) {
        t->type = TK_OP;
        t->s = strchr(single_ops, ch);
        t->len = 1;
        /* operators are compared by their first len characters */
        l->pos++;
        goto done;
    }
    if (ch == '"' || ch == '\'') {
        lex_string(l, t);
        goto done;
    }
    if (lex_number(l, t))
        goto done;
    if (ch == '`') {
        const char *end = memchr(s + l->pos + 1, '`', l->len - l->pos - 1);
        if (!end)
            jn_syntax_error(l->x, l->err, "S0105", (int)l->len, NULL, 0,
                            "Quoted property name must be terminated with a "
                            "backquote (`)");
        t->type = TK_NAME;
        t->len = (size_t)(end - s) - l->pos - 1;
        t->s = jn_arena_strndup(&l->x->arena, s + l->pos + 1, t->len);
        l->pos = (size_t)(end - s) + 1;
        goto done;
    }
    size_t i = l->pos;
    while (i < l->len && !is_space(s[i]) && !is_op_char(s[i]))
        i++;
    if (ch == '$') {
        t->type = TK_VAR;
        t->len = i - l->pos - 1;
        t->s = jn_arena_strndup(&l->x->arena, s + l->pos + 1, t->len);
    } else {
        t->len = i - l->pos;
        t->s = jn_arena_strndup(&l->x->arena, s + l->pos, t->len);
        if (t->len == 3 && !memcmp(t->s, "and", 3))
            t->type = TK_OP;
        else if (t->len == 2 && (!memcmp(t->s, "or", 2) || !memcmp(t->s, "in", 2)))
            t->type = TK_OP;
        else if (t->len == 4 && !memcmp(t->s, "true", 4))
            t->type = TK_VALUE, t->value = &jn_true;
        else if (t->len == 5 && !memcmp(t->s, "false", 5))
            t->type = TK_VALUE, t->value = &jn_false;
        else if (t->len == 4 && !memcmp(t->s, "null", 4))
            t->type = TK_VALUE, t->value = &jn_null;
        else
            t->type = TK_NAME;
    }
    l->pos = i;
done:
    t->position = (int)l->pos;
}
