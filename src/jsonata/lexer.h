/* Tokenizer for JSONata expressions (private to the parser). */
#ifndef ARGUS_JSONATA_LEXER_H
#define ARGUS_JSONATA_LEXER_H

#include "jn_internal.h"

enum jn_tok {
    TK_END = 0,
    TK_OP,
    TK_NAME,
    TK_VAR,
    TK_STR,
    TK_NUM,
    TK_VALUE,
    TK_REGEX,
};

struct jn_token {
    int type;
    const char *s;       /* operator text, name, variable, string value */
    size_t len;
    double num;
    jv *value;           /* TK_VALUE: true/false/null; TK_STR: string */
    const char *flags;   /* TK_REGEX */
    int position;        /* offset just after the token, as the reference */
    int start;           /* offset of the first character */
};

struct jn_lexer {
    const char *src;
    size_t len;
    size_t pos;
    struct jsonata_expr *x;
    struct jsonata_error *err;
};

/* Reads the next token. prefix is true where an operand is expected, so
 * that '/' starts a regular expression. Raises S01xx/S03xx errors. */
void jn_lex_next(struct jn_lexer *l, bool prefix, struct jn_token *t);

/* Fills err and unwinds to the compiler's recovery point. */
_Noreturn void jn_syntax_error(struct jsonata_expr *x,
                               struct jsonata_error *err, const char *code,
                               int position, const char *token, size_t tlen,
                               const char *message);

#endif
