/*
 * Private declarations shared by the files of the JSONata engine: arenas,
 * the value model, the syntax tree and the evaluation context.
 */
#ifndef ARGUS_JSONATA_INTERNAL_H
#define ARGUS_JSONATA_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "jsonata.h"

/* ------------------------------------------------------------------ arena
 * Bump allocation in chunks; everything is released at once. Allocation
 * failure longjmps to the owner's recovery point (oom_jmp), so callers
 * never check for NULL.
 */
struct jn_chunk;
struct jn_arena {
    struct jn_chunk *head;
    char *cur, *end;
    jmp_buf *oom_jmp;
};

/* memcpy that accepts a null source when there is nothing to copy. */
static inline void jn_copy(void *dst, const void *src, size_t n)
{
    if (n)
        memcpy(dst, src, n);
}

void jn_arena_init(struct jn_arena *a, jmp_buf *oom_jmp);
void jn_arena_fini(struct jn_arena *a);
void *jn__arena_alloc_slow(struct jn_arena *a, size_t n);
static inline void *jn_arena_alloc(struct jn_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if ((size_t)(a->end - a->cur) >= n) {
        void *p = a->cur;
        a->cur += n;
        return p;
    }
    return jn__arena_alloc_slow(a, n);
}
char *jn_arena_strndup(struct jn_arena *a, const char *s, size_t n);

/* ------------------------------------------------------------------ values
 * A value is a pointer to struct jn_value; NULL is JSONata's undefined.
 * Scalars and strings are immutable once built, so literals in the syntax
 * tree are shared by every evaluation. Arrays and objects may be backed by
 * a jansson value from the input, converted lazily on first access.
 */
enum jn_kind {
    JN_NULL = 1,
    JN_BOOL,
    JN_NUMBER,
    JN_STRING,
    JN_ARRAY,
    JN_OBJECT,
    JN_FUNCTION,
};

enum jn_aflag {
    JN_SEQ = 1,          /* a sequence, not a JSON array */
    JN_KEEP = 2,         /* keep a singleton sequence as an array */
    JN_CONS = 4,         /* built by an array constructor */
    JN_OUTER = 8,        /* the wrapper around an array input */
    JN_TUPLES = 16,      /* a stream of binding tuples */
};

struct jn_value;
typedef struct jn_value jv;

struct jn_pair {
    const char *key;
    size_t klen;
    jv *val;
};

struct jn_object {
    const json_t *json;   /* backing input object, or NULL once native */
    const json_t *origin; /* the input object it came from, if any */
    struct jn_pair *pairs;
    uint32_t len, cap;
    uint32_t *index;      /* open-addressing hash of pair indexes + 1 */
    uint32_t index_cap;
};

struct jn_function;

struct jn_value {
    uint8_t kind;
    uint8_t flags;        /* enum jn_aflag, arrays only */
    union {
        bool b;
        double num;
        struct {
            const char *ptr; /* NUL-terminated */
            size_t len;      /* bytes */
        } str;
        struct {
            jv **items;
            uint32_t len, cap;
            const json_t *json; /* not yet converted input array */
            const json_t *origin; /* the input array it came from */
        } arr;
        struct jn_object *obj;
        struct jn_function *fn;
    } u;
};

extern jv jn_true, jn_false, jn_null;

struct jn_ctx;

jv *jn_num(struct jn_ctx *c, double d);
jv *jn_str(struct jn_ctx *c, const char *s, size_t len);   /* copies */
jv *jn_str_ref(struct jn_ctx *c, const char *s, size_t len); /* borrows */
jv *jn_strz(struct jn_ctx *c, const char *s);
static inline jv *jn_bool(bool b) { return b ? &jn_true : &jn_false; }
jv *jn_arr_new(struct jn_ctx *c, uint32_t cap);
jv *jn_seq_new(struct jn_ctx *c);
jv *jn_seq_of(struct jn_ctx *c, jv *item); /* empty when item undefined */
void jn_arr_push(struct jn_ctx *c, jv *a, jv *item);
/* Converts a lazily backed array; call before reading u.arr.items. */
void jn__arr_load(struct jn_ctx *c, jv *a);
static inline jv *jn_arr_load(struct jn_ctx *c, jv *a)
{
    if (a->u.arr.json)
        jn__arr_load(c, a);
    return a;
}
jv *jn_obj_new(struct jn_ctx *c);
jv *jn_obj_get(struct jn_ctx *c, const jv *o, const char *key, size_t klen);
void jn_obj_set(struct jn_ctx *c, jv *o, const char *key, size_t klen, jv *v);
void jn_obj_del(struct jn_ctx *c, jv *o, const char *key, size_t klen);
/* Makes an input-backed object native (owned pairs); needed before
 * iterating pairs or mutating. */
void jn__obj_load(struct jn_ctx *c, const jv *o);
static inline struct jn_object *jn_obj_load(struct jn_ctx *c, const jv *o)
{
    if (o->u.obj->json)
        jn__obj_load(c, o);
    return o->u.obj;
}
/* Input conversion (lazy for containers) and output conversion. */
jv *jn_from_json(struct jn_ctx *c, const json_t *j);
json_t *jn_to_json(struct jn_ctx *c, jv *v); /* NULL for undefined */
jv *jn_deep_clone(struct jn_ctx *c, jv *v);

static inline bool jn_is_array(const jv *v) { return v && v->kind == JN_ARRAY; }
static inline bool jn_is_seq(const jv *v)
{
    return v && v->kind == JN_ARRAY && (v->flags & JN_SEQ);
}
static inline bool jn_is_num(const jv *v) { return v && v->kind == JN_NUMBER; }
static inline bool jn_is_str(const jv *v) { return v && v->kind == JN_STRING; }
static inline bool jn_is_fn(const jv *v) { return v && v->kind == JN_FUNCTION; }
static inline bool jn_is_obj(const jv *v) { return v && v->kind == JN_OBJECT; }

bool jn_deep_equal(struct jn_ctx *c, jv *a, jv *b);
/* JavaScript's ===: scalars by value, containers and functions by
 * identity (the same input value counts as the same). */
bool jn_strict_equal(const jv *a, const jv *b);
/* JSONata truthiness ($boolean); undefined is false. */
bool jn_truthy(struct jn_ctx *c, jv *v);
/* The JSONata type name: "number", "string", ... ; NULL for undefined. */
const char *jn_type_name(const jv *v);

/* Numbers as JavaScript prints them (Number.prototype.toString). out needs
 * 32 bytes. Returns the length. */
int jn_fmt_number(double d, char *out);
/* JSON text of v as $string and JSON output print it: numbers rounded to
 * 15 significant digits, functions as "". */
void jn_stringify(struct jn_ctx *c, struct core_buf *b, jv *v, int indent,
                  int level);

/* UTF-8 helpers; strings may hold lone surrogates encoded as 3-byte
 * sequences (WTF-8). */
size_t jn_utf8_len(const char *s, size_t n);          /* code points */
size_t jn_utf8_offset(const char *s, size_t n, size_t cp); /* byte offset */
int jn_utf8_decode(const char *s, size_t n, size_t *i); /* next code point */
void jn_utf8_put(struct core_buf *b, uint32_t cp);

/* ------------------------------------------------------------- syntax tree */
enum jn_ntype {
    N_PATH = 1,
    N_BINARY,
    N_AND,
    N_OR,
    N_NEG,
    N_ARRAY,
    N_OBJECT,
    N_NAME,
    N_LITERAL,
    N_WILDCARD,
    N_DESCENDANT,
    N_PARENT,
    N_CONDITION,
    N_ELVIS,
    N_COALESCE,
    N_BLOCK,
    N_BIND,
    N_REGEX,
    N_CALL,
    N_PARTIAL,
    N_PLACEHOLDER,
    N_VARIABLE,
    N_LAMBDA,
    N_APPLY,
    N_TRANSFORM,
    N_SORT,
    N_END,       /* end of input where an operand was expected */
};

enum jn_binop {
    OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_MOD,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE,
    OP_CONCAT, OP_RANGE, OP_IN,
};

struct jn_node;

/* A filter or index stage attached to a step or expression. */
struct jn_stage {
    bool is_index;           /* '#$var' rather than '[expr]' */
    struct jn_node *expr;    /* filter expression */
    const char *var;         /* index variable */
    int position;
};

struct jn_sig;

struct jn_node {
    uint8_t type;            /* enum jn_ntype */
    uint8_t op;              /* enum jn_binop for N_BINARY */
    bool keep_array;         /* expr[] */
    bool cons_array;         /* array constructor as a path step */
    bool keep_singleton;     /* path: some step had [] */
    bool thunk;              /* lambda: tail call wrapper */
    bool tuple;              /* step binds @ or # variables */
    bool descending;         /* sort term */
    int position;
    const char *str;         /* name, variable, string value, operator */
    size_t len;
    jv *lit;                 /* N_LITERAL value */
    struct jn_node *lhs, *rhs, *cond, *then, *els;
    struct jn_node **items;  /* steps, members, args, params, terms */
    int nitems;
    struct jn_node **pairs;  /* object constructor / group: 2*npairs */
    int npairs;
    struct jn_stage *stages; /* predicates (non-step) or stages (steps) */
    int nstages;
    struct jn_node *group;   /* N_OBJECT node used as a group-by */
    const char *focus;       /* @$var */
    const char *index_var;   /* #$var */
    const struct jn_sig *sig;/* lambda signature */
    int builtin;             /* N_VARIABLE: built-in index or -1 */
    pcre2_code *re;          /* N_REGEX */
    /* parent operator: a '%' node reads the binding slot->label, which
     * the step named by ancestor binds in its tuples */
    struct jn_slot *slot;
    struct jn_slot *ancestor;
    struct jn_slot **seeking; /* parse time only */
    int nseeking;
};

struct jn_slot {
    const char *label;
    int level;
    int index;
};

struct jsonata_expr {
    struct jn_arena arena;
    jmp_buf jmp;
    struct jn_node *root;
    pcre2_code **regexes;
    int nregex, capregex;
};

/* ----------------------------------------------------------- functions */
struct jn_sig_param {
    char type;          /* b n s l a o f j x, or '(' for a choice */
    char cls[12];       /* argument symbols accepted ('m' = undefined) */
    char sub;           /* a<n>: element type, or 0 */
    char mod;           /* 0, '?' or '+' */
    bool context;       /* '-': the context stands in when missing */
};
struct jn_sig {
    struct jn_sig_param params[12];
    int nparams;
    const char *text;
};
/* Parses "<n-n:n>"; returns NULL on a malformed signature. Allocates in a. */
struct jn_sig *jn_sig_parse(struct jn_arena *a, const char *text);

typedef jv *(*jn_builtin_fn)(struct jn_ctx *c, jv **args, int nargs,
                             jv *input);
struct jn_builtin {
    const char *name;
    const char *sig_text;
    jn_builtin_fn fn;
    const struct jn_sig *sig;
};
extern struct jn_builtin jn_builtins[];
extern const int jn_nbuiltins;
int jn_builtin_find(const char *name, size_t len);
void jn_builtins_init(void); /* parses signatures once (thread-safe) */

struct jn_env;

enum jn_fkind {
    FN_LAMBDA = 1,
    FN_BUILTIN,
    FN_PARTIAL,
    FN_HOST,
    FN_REGEX,
    FN_TRANSFORM,
    FN_COMPOSE,
    FN_NATIVE,   /* C closure used internally */
};

struct jn_host_fn;
typedef jv *(*jn_native_fn)(struct jn_ctx *c, void *data, jv **args,
                            int nargs);

struct jn_function {
    uint8_t kind;
    bool thunk;
    const struct jn_sig *sig;
    const struct jn_node *node;   /* lambda / transform / regex */
    struct jn_env *env;
    jv *input;
    const struct jn_builtin *bi;
    const struct jn_host_fn *host;
    jv *target;                   /* partial target, compose first */
    jv *second;                   /* compose second */
    jv **args;                    /* partial args (NULL = placeholder) */
    int nargs;
    bool *holes;                  /* partial: which args are placeholders */
    int arity;
    jn_native_fn native;
    void *data;
};

/* --------------------------------------------------------- environments */
struct jn_binding {
    const char *name;
    size_t len;
    jv *val;
};
struct jn_env {
    struct jn_env *parent;
    struct jn_binding *b;
    int n, cap;
};

/* -------------------------------------------------------- evaluation ctx */
struct jn_err {
    char code[8];
    int position;
    const char *token;
    jv *value;
    jv *value2;
    const char *message;  /* custom message ($error, $assert, D3140) */
    int index;
    char type;
};

struct jn_ctx {
    struct jn_arena arena;
    jmp_buf jmp;
    const struct jsonata_bindings *bindings;
    int depth, max_depth;
    uint64_t deadline_ns;
    int work; /* units left before the next look at the clock */
    struct jn_err err;
    int status;          /* core error to return after longjmp */
    jv *root;            /* $$ */
    int64_t now_ms;      /* $now / $millis, fixed per evaluation */
    struct jn_env *global;
    void *kept;          /* programs compiled by $eval, freed at the end */
    const struct jn_node *skip_stages; /* tuple steps filter themselves */
    struct jn_bufnode *bufs; /* open buffers, freed if an error unwinds */
    int call_position;   /* of the innermost function call, for errors */
    struct jn_env *call_env; /* environment of the built-in being called */
};

/* Values nested deeper than this (built, say, by a tail-recursive loop)
 * are refused with U1001 by the recursive walks over values, which would
 * otherwise exhaust the C stack. */
#define JN_MAX_NESTING 1000
_Noreturn void jn_too_deep(struct jn_ctx *c);

/* The time limit: evaluation steps (1 unit each) and bytes of strings made
 * (1 unit per 256) count towards the next look at the clock, so that
 * neither many small steps nor a few huge ones (a string doubling each
 * round) run far past the limit. */
_Noreturn void jn_timeout(struct jn_ctx *c, int position);
static inline void jn_charge(struct jn_ctx *c, size_t units, int position)
{
    if (!c->deadline_ns)
        return;
    c->work -= units > 1u << 30 ? 1 << 30 : (int)units;
    if (c->work <= 0) {
        c->work = 256;
        if (core_time_mono_ns() > c->deadline_ns)
            jn_timeout(c, position);
    }
}

/* Raises a JSONata error and unwinds to jsonata_evaluate. */
_Noreturn void jn_throw(struct jn_ctx *c, const char *code, int position,
                        jv *value);
_Noreturn void jn_throw_msg(struct jn_ctx *c, const char *code,
                            const char *message);
_Noreturn void jn_oom(struct jn_ctx *c);

static inline void *jn_alloc(struct jn_ctx *c, size_t n)
{
    return jn_arena_alloc(&c->arena, n);
}

jv *jn_eval(struct jn_ctx *c, const struct jn_node *n, jv *input,
            struct jn_env *env);
jv *jn_apply(struct jn_ctx *c, jv *fn, jv **args, int nargs, jv *input,
             struct jn_env *env, int position);
int jn_fn_arity(const jv *fn);
struct jn_env *jn_env_new(struct jn_ctx *c, struct jn_env *parent);
void jn_env_bind(struct jn_ctx *c, struct jn_env *e, const char *name,
                 size_t len, jv *v);
jv *jn_make_native(struct jn_ctx *c, jn_native_fn fn, void *data, int arity,
                   const char *sig);

/* Regex support: compiles a JS regex literal body with flags. Returns NULL
 * and fills errcode on failure. */
pcre2_code *jn_regex_compile(const char *pat, size_t len, const char *flags,
                             const char **errcode);
/* Runs a regex value (FN_REGEX) on str from byte offset start. Returns the
 * match object {match, start, end, groups} or undefined. */
jv *jn_regex_exec(struct jn_ctx *c, jv *re, jv *str, size_t start,
                  size_t *mstart, size_t *mend);

/* Iteration over the matches of a regex or of a matcher function. */
struct jn_matcher {
    jv *fn;
    jv *str;
    jv *last;
    bool started;
    bool custom;
    size_t last_end;
};
void jn_matcher_init(struct jn_matcher *m, jv *fn, jv *str);
/* The next match (the first on the first call); its byte offsets go to
 * mstart/mend. Returns the match object or undefined. */
jv *jn_matcher_next(struct jn_ctx *c, struct jn_matcher *m, size_t *mstart,
                    size_t *mend);

/* Compiler entry used by $eval. */
int jn__compile(const char *src, struct jsonata_expr **out,
                struct jsonata_error *err);

/* Checks args against sig, substituting the context for a missing first
 * argument where the signature allows it and wrapping single values
 * given for array parameters; out_args and out_n receive the arguments
 * to pass on. Raises T0410, T0411 or T0412. */
void jn_validate_args(struct jn_ctx *c, const struct jn_sig *sig, jv **args,
                     int nargs, jv *input, jv ***out_args, int *out_n,
                     int position);

/* Growable buffers for one evaluation: allocated in the arena and freed
 * even when an error unwinds past their user. */
struct core_buf *jn_buf_new(struct jn_ctx *c);
void jn_buf_free(struct jn_ctx *c, struct core_buf *b);
/* Takes the text out as a string value and frees the buffer. */
jv *jn_buf_to_str(struct jn_ctx *c, struct core_buf *b);
void jn_bufs_release(struct jn_ctx *c);
/* The message of the error being raised, in the arena. */
const char *jn__error_message(struct jn_ctx *c);
jv *jn_fn_string_of(struct jn_ctx *c, jv *v, bool pretty);
bool jn__binding_lookup(struct jn_ctx *c, const char *name, size_t len,
                        jv **out);


#endif
