/*
 * The compiled form of a JSONPath query, shared by the parser, the
 * evaluator and the I-Regexp translator. Private to src/jsonpath.
 */
#ifndef ARGUS_JSONPATH_INTERNAL_H
#define ARGUS_JSONPATH_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "jsonpath.h"

/* I-JSON exact integer range (RFC 9535 §2.1). */
#define JP_INT_MAX INT64_C(9007199254740991)
#define JP_INT_MIN (-JP_INT_MAX)

/* Bounds on nesting, so that neither parsing nor evaluation can run out
 * of stack on hostile input. */
#define JP_MAX_NESTING 64

enum jp_sel_kind {
    JP_SEL_NAME,
    JP_SEL_WILDCARD,
    JP_SEL_INDEX,
    JP_SEL_SLICE,
    JP_SEL_FILTER,
};

struct jp_expr;

struct jp_selector {
    enum jp_sel_kind kind;
    union {
        struct {
            char *s;
            size_t len;
        } name;
        int64_t index;
        struct {
            int64_t start, end, step;
            bool has_start, has_end;
        } slice;
        struct jp_expr *filter;
    } u;
};

struct jp_segment {
    bool descendant;
    size_t nsel;
    struct jp_selector *sel;
};

struct jp_query {
    bool absolute; /* starts at $ rather than @ */
    bool singular;
    size_t nseg;
    struct jp_segment *seg;
};

/* Declared types of RFC 9535 §2.4.1. */
enum jp_type {
    JP_T_VALUE,
    JP_T_LOGICAL,
    JP_T_NODES,
};

enum jp_fn {
    JP_FN_LENGTH,
    JP_FN_COUNT,
    JP_FN_MATCH,
    JP_FN_SEARCH,
    JP_FN_VALUE,
};

struct jp_fn_def {
    const char *name;
    enum jp_fn fn;
    size_t nparams;
    enum jp_type params[2];
    enum jp_type result;
};

extern const struct jp_fn_def jsonpath__functions[];
extern const size_t jsonpath__nfunctions;

enum jp_cmp_op {
    JP_CMP_EQ,
    JP_CMP_NE,
    JP_CMP_LT,
    JP_CMP_LE,
    JP_CMP_GT,
    JP_CMP_GE,
};

enum jp_expr_kind {
    JP_EX_OR,
    JP_EX_AND,
    JP_EX_NOT,
    JP_EX_CMP,
    JP_EX_QUERY,   /* a query: existence test, nodes argument or value */
    JP_EX_LITERAL, /* a JSON literal */
    JP_EX_FUNC,
};

/* A regular expression compiled at query compile time because it was a
 * string literal. valid is false for a pattern that is not I-Regexp, which
 * never matches. */
struct jp_regex {
    bool valid;
    pcre2_code *code;
};

struct jp_expr {
    enum jp_expr_kind kind;
    union {
        struct {
            struct jp_expr *l, *r;
        } bin;
        struct jp_expr *operand;
        struct {
            enum jp_cmp_op op;
            struct jp_expr *l, *r;
        } cmp;
        struct jp_query *query;
        json_t *literal;
        struct {
            const struct jp_fn_def *def;
            struct jp_expr *args[2];
            struct jp_regex re; /* match/search with a literal pattern */
        } fn;
    } u;
};

struct jsonpath {
    struct jp_query *query;
};

/* parse.c */
void jsonpath__query_free(struct jp_query *q);

/* iregexp.c: translates an I-Regexp (RFC 9485) of len bytes of UTF-8 into
 * a PCRE2 pattern appended to out; anchored (full match) or not. Returns 0,
 * or CORE_EPARSE if the pattern is not I-Regexp. */
int jsonpath__iregexp_translate(const char *re, size_t len, bool anchored,
                          struct core_buf *out);
/* Translates and compiles; *out is NULL (and CORE_EPARSE returned) for an
 * invalid pattern. */
int jsonpath__iregexp_compile(const char *re, size_t len, bool anchored,
                        pcre2_code **out);
/* The match context (match limits) shared by every evaluation. */
pcre2_match_context *jsonpath__match_context(void);

#endif
