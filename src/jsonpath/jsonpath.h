/*
 * jsonpath: an RFC 9535 JSONPath engine.
 *
 * A query is compiled once (jsonpath_compile) into an immutable object that
 * any number of threads may evaluate at the same time (jsonpath_eval).
 * Evaluation appends the selected nodes to a caller-owned result vector
 * that is meant to be reused across evaluations, so that a warm evaluation
 * allocates nothing per node. Values in the result are borrowed from the
 * document; normalized paths (RFC 9535 §2.7) are produced on request.
 *
 * Evaluation recurses once per level of the document's nesting (bounded
 * by jansson's parser depth for parsed documents) and once per level of
 * filter nesting in the query (at most 64).
 *
 * The functions length(), count(), match(), search() and value() are
 * supported; match() and search() use I-Regexp (RFC 9485) patterns, run by
 * PCRE2. Return codes come from core's error enum: 0 success, negative
 * failure.
 *
 * Depends on core, jansson and libpcre2-8 only.
 */
#ifndef ARGUS_JSONPATH_H
#define ARGUS_JSONPATH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core.h"

/* A compiled query. Immutable once compiled. */
struct jsonpath;

/* Where and why a query failed to compile. pos is a byte offset into the
 * query text; msg is a full sentence without a trailing newline. */
struct jsonpath_error {
    size_t pos;
    char msg[160];
};

/* Compiles a NUL-terminated query. On success *out receives the compiled
 * query (free it with jsonpath_destroy) and 0 is returned. Returns
 * CORE_EPARSE for a query that is not valid RFC 9535 JSONPath (syntax
 * errors and queries that are not well-typed alike), with err filled in if
 * err is not NULL; CORE_ENOMEM on allocation failure; CORE_EINVAL for NULL
 * arguments. *out is NULL on failure. */
int jsonpath_compile(const char *query, struct jsonpath **out,
                     struct jsonpath_error *err);

/* As jsonpath_compile, for a query of len bytes that may contain NUL
 * (which makes it invalid, but must not truncate it silently). */
int jsonpath_compilen(const char *query, size_t len, struct jsonpath **out,
                      struct jsonpath_error *err);

/* Frees a compiled query. Accepts NULL. */
void jsonpath_destroy(struct jsonpath *q);

/* True when the query is a singular query: every segment is a child
 * segment with one name or index selector, so it selects at most one node.
 * (Blank space inside the brackets, as in $[ 'a' ], is accepted here too.)
 * jsonpath_eval_first answers such a query without any traversal. */
bool jsonpath_is_singular(const struct jsonpath *q);

/* ------------------------------------------------------------- results */

/* One step of a normalized path: a member name (name != NULL, borrowed
 * from the document or the query) or an array index. */
struct jsonpath_step {
    const char *name;
    size_t name_len;
    size_t index;
};

/* One selected node. value is borrowed from the document and valid as long
 * as the document is neither freed nor modified. The node's path is
 * steps[path_start .. path_start + path_len) of the result, present only
 * when the evaluation asked for JSONPATH_EVAL_PATHS. */
struct jsonpath_node {
    const json_t *value;
    size_t path_start;
    size_t path_len;
};

/* A caller-owned, reusable result vector. Initialise once, evaluate into
 * it as often as needed, finalise once. Not shared between threads while
 * an evaluation writes to it. */
struct jsonpath_result {
    struct jsonpath_node *nodes;
    size_t len;
    size_t cap;
    struct jsonpath_step *steps;
    size_t steps_len;
    size_t steps_cap;
    bool paths;    /* the last evaluation recorded paths */
    void *scratch; /* evaluation state kept between calls; internal */
};

void jsonpath_result_init(struct jsonpath_result *r);
void jsonpath_result_fini(struct jsonpath_result *r);

/* Evaluation flags. */
#define JSONPATH_EVAL_PATHS 0x1u /* record each node's normalized path */

/* Evaluates q against doc (the root node, borrowed) and replaces the
 * contents of out with the selected nodes in RFC 9535 order. Returns 0, or
 * CORE_ENOMEM (out is then empty) or CORE_EINVAL for NULL arguments. */
int jsonpath_eval(const struct jsonpath *q, const json_t *doc, unsigned flags,
                  struct jsonpath_result *out);

/* Evaluates q against doc and gives the first selected node's value in
 * *value (borrowed), or NULL when the query selects nothing. Allocates
 * nothing unless the query calls match() or search(). Returns 0, or
 * CORE_ENOMEM / CORE_EINVAL. */
int jsonpath_eval_first(const struct jsonpath *q, const json_t *doc,
                        const json_t **value);

/* Appends the normalized path of result node i to b, e.g. $['a'][0].
 * Returns CORE_EINVAL if i is out of range or the evaluation did not
 * record paths, CORE_ENOMEM if b ran out of memory. Names in the path are
 * borrowed from the document and the compiled query: both must outlive
 * the call. */
int jsonpath_node_path(const struct jsonpath_result *r, size_t i,
                       struct core_buf *b);

/* Appends the normalized path made of steps[0..n) to b. */
void jsonpath_path_format(const struct jsonpath_step *steps, size_t n,
                          struct core_buf *b);

/* ----------------------------------------------------------------- CLI */

/* `argus jsonpath [--paths] QUERY [FILE]`: argv[0] is "jsonpath". Reads a
 * JSON document from FILE or standard input and prints the selected nodes
 * as a JSON array of values (or, with --paths, of normalized paths).
 * Returns the process exit status: 0 success, 1 I/O error, 2 usage error,
 * bad query or bad JSON (with the error's position on stderr). */
int jsonpath_cli_main(int argc, char **argv);

#endif
