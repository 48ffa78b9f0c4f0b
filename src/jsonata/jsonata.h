/*
 * jsonata: a JSONata (https://jsonata.org) engine.
 *
 * An expression is compiled once into an immutable program and evaluated
 * any number of times, concurrently from any number of threads: every
 * evaluation allocates from its own arena, which is released before
 * jsonata_evaluate returns. Input and output are jansson values.
 *
 * Errors carry the reference implementation's codes ("S0201", "T2001",
 * "D3001", "U1001" ...), the character position in the expression and,
 * where the reference gives one, the offending token.
 *
 * Depends on core, jansson and libpcre2-8 only.
 */
#ifndef ARGUS_JSONATA_H
#define ARGUS_JSONATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core.h"

struct jsonata_expr;     /* a compiled expression; immutable */
struct jsonata_bindings; /* host variables and functions */

/* Details of a compile or evaluation failure. code is the JSONata error
 * code ("S0201"), or "" for failures that are not JSONata errors (out of
 * memory). position is a character offset into the expression, -1 when
 * unknown; token is "" when the error has none. */
struct jsonata_error {
    char code[8];
    int position;
    char token[64];
    char message[256];
};

/* Compiles expr (NUL-terminated UTF-8). On success *out receives the
 * program; the caller frees it with jsonata_destroy. Returns 0, CORE_EPARSE
 * (err filled in), CORE_ENOMEM or CORE_EINVAL. err may be NULL. */
int jsonata_compile(const char *expr, struct jsonata_expr **out,
                    struct jsonata_error *err);

/* Frees a compiled expression; NULL is accepted. The caller must make sure
 * no evaluation of it is running. */
void jsonata_destroy(struct jsonata_expr *expr);

/* Limits on one evaluation. Zero means the default: max_depth
 * JSONATA_DEFAULT_MAX_DEPTH nested evaluations, no time limit. Exceeding
 * either ends the evaluation with error U1001. Each level of nesting takes
 * up to about 1 KB of C stack (more under sanitizers), so a thread running
 * evaluations needs max_depth KB of stack to spare; tail calls do not nest.
 * The time limit is checked every 256 evaluation steps; a single built-in
 * call on a huge input is not interrupted. */
#define JSONATA_DEFAULT_MAX_DEPTH 2000

struct jsonata_options {
    int max_depth;
    int64_t time_limit_ms;
};

/* Evaluates expr against input (borrowed; NULL means undefined, not JSON
 * null). bindings and opts may be NULL. On success *result receives a new
 * reference the caller releases with json_decref, or NULL when the result
 * is undefined. Functions (lambdas) in the result come out as "" as in the
 * reference's JSON output. Returns 0, CORE_EINVAL for a JSONata runtime
 * error (err filled in), CORE_ETIMEOUT for U1001, CORE_ENOMEM.
 * Thread-safe: expr and bindings are only read. */
int jsonata_evaluate(const struct jsonata_expr *expr, const json_t *input,
                     const struct jsonata_bindings *bindings,
                     const struct jsonata_options *opts, json_t **result,
                     struct jsonata_error *err);

/* ---------------------------------------------------------------- bindings
 * Variables and C functions made visible to expressions as $name. A
 * bindings object is built once and then only read, so one object may be
 * shared by concurrent evaluations; it must outlive them.
 */

/* A host function. args are borrowed for the duration of the call (NULL
 * entries are undefined arguments). On success the function stores a new
 * reference in *result (NULL for undefined) and returns 0; on failure it
 * fills err (code such as "D3137" and message) and returns a negative
 * core error. */
typedef int (*jsonata_host_fn_cb)(void *user, json_t *const *args,
                                  size_t nargs, json_t **result,
                                  struct jsonata_error *err);

/* Returns NULL on allocation failure. */
struct jsonata_bindings *jsonata_bindings_create(void);
void jsonata_bindings_destroy(struct jsonata_bindings *b);

/* Binds $name to a copy of value (value is borrowed). Rebinding replaces.
 * Returns 0, CORE_EINVAL or CORE_ENOMEM. */
int jsonata_bindings_set(struct jsonata_bindings *b, const char *name,
                         const json_t *value);

/* Binds $name to a C function. signature is a JSONata signature such as
 * "<n-n:n>" (NULL accepts any arguments); arguments are checked against it
 * before the call, as for built-in functions. user is passed through.
 * Returns 0, CORE_EINVAL (bad name or signature) or CORE_ENOMEM. */
int jsonata_bindings_set_function(struct jsonata_bindings *b,
                                  const char *name, const char *signature,
                                  jsonata_host_fn_cb fn, void *user);

/* -------------------------------------------------------------- utilities */

/* Writes v as JSON with JavaScript's number formatting (JSON.stringify),
 * indented by indent spaces per level (0 for one line). The caller owns
 * out. */
void jsonata_json_dump(struct core_buf *out, const json_t *v, int indent);

/* `argus jsonata EXPR [FILE]`: evaluates EXPR against the JSON in FILE (or
 * stdin) and prints the result as JSON with a newline; an undefined result
 * prints nothing. Errors are printed to stderr as "CODE at position N:
 * message". Exit status 0, 1 for usage or input errors, 2 for JSONata
 * errors. argv[0] is "jsonata". */
int jsonata_cli_main(int argc, char **argv);

#endif
