/* Built-in function implementations, grouped by family (private). */
#ifndef ARGUS_JSONATA_FUNCTIONS_H
#define ARGUS_JSONATA_FUNCTIONS_H

#include "jn_internal.h"

#define JN_FN(name) jv *name(struct jn_ctx *c, jv **a, int n, jv *in)
#define ARG(i) ((i) < n ? a[(i)] : NULL)

/* Helpers shared by the families. */
jv *jn_append(struct jn_ctx *c, jv *a, jv *b);
typedef int (*jn_cmp_fn)(void *state, jv *a, jv *b);
void jn_merge_sort(struct jn_ctx *c, jv **items, uint32_t n, jn_cmp_fn cmp,
                   void *state);

/* Calls f with (value, index, array) trimmed to f's arity. */
jv *jn_hof_call(struct jn_ctx *c, jv *f, jv *v, jv *second, jv *third);
/* Field lookup with the path step's flattening of arrays. */
jv *jn_lookup(struct jn_ctx *c, jv *input, const char *key, size_t len);

/* string family */
JN_FN(jn_fn_string);
JN_FN(jn_fn_length);
JN_FN(jn_fn_substring);
JN_FN(jn_fn_substring_before);
JN_FN(jn_fn_substring_after);
JN_FN(jn_fn_uppercase);
JN_FN(jn_fn_lowercase);
JN_FN(jn_fn_trim);
JN_FN(jn_fn_pad);
JN_FN(jn_fn_contains);
JN_FN(jn_fn_split);
JN_FN(jn_fn_join);
JN_FN(jn_fn_match);
JN_FN(jn_fn_replace);
JN_FN(jn_fn_base64encode);
JN_FN(jn_fn_base64decode);
JN_FN(jn_fn_encode_url_component);
JN_FN(jn_fn_encode_url);
JN_FN(jn_fn_decode_url_component);
JN_FN(jn_fn_decode_url);
JN_FN(jn_fn_eval);

/* numeric family */
JN_FN(jn_fn_number);
JN_FN(jn_fn_abs);
JN_FN(jn_fn_floor);
JN_FN(jn_fn_ceil);
JN_FN(jn_fn_round);
JN_FN(jn_fn_power);
JN_FN(jn_fn_sqrt);
JN_FN(jn_fn_random);
JN_FN(jn_fn_sum);
JN_FN(jn_fn_max);
JN_FN(jn_fn_min);
JN_FN(jn_fn_average);
JN_FN(jn_fn_count);
JN_FN(jn_fn_format_number);
JN_FN(jn_fn_format_base);

/* date/time family (datetime.c) */
JN_FN(jn_fn_now);
JN_FN(jn_fn_millis);
JN_FN(jn_fn_from_millis);
JN_FN(jn_fn_to_millis);
JN_FN(jn_fn_format_integer);
JN_FN(jn_fn_parse_integer);

#endif
