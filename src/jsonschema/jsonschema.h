/*
 * jsonschema: a JSON Schema draft 2020-12 validator.
 *
 * A schema is compiled once into an immutable form (a flat array of checks
 * per subschema, regexes compiled with PCRE2's JIT, property names sorted
 * for lookup) and then validated against many instances, from any number
 * of threads at once.
 *
 *     struct jsonschema *s;
 *     struct jsonschema_compile_error cerr;
 *     if (jsonschema_compile(NULL, schema_json, NULL, &s, &cerr) != 0)
 *         ... cerr.location, cerr.message ...
 *     bool ok = jsonschema_is_valid(s, instance, NULL);   // fast path
 *     struct jsonschema_result r;
 *     jsonschema_validate(s, instance, &(struct jsonschema_options){
 *         .detailed = true }, &r);                       // with errors
 *     jsonschema_result_fini(&r);
 *     jsonschema_destroy(s);
 *
 * Documents a schema refers to by URI are found in a registry: the 2020-12
 * meta-schemas are built in, others are added with jsonschema_registry_add.
 * Nothing is ever fetched from the network.
 *
 * Every function returns 0 on success or a negative code of core's enum.
 */
#ifndef ARGUS_JSONSCHEMA_H
#define ARGUS_JSONSCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core.h"

/* ------------------------------------------------------------- registry */
struct jsonschema_registry;

/* A readable description of why a schema could not be compiled or a
 * document could not be added: location is the absolute URI and JSON
 * Pointer of the offending keyword ("urn:...#/properties/a/minimum"). */
struct jsonschema_compile_error {
    char location[512];
    char message[512];
};

/* Creates an empty registry (the built-in meta-schemas are always
 * visible). Returns CORE_ENOMEM. Free with jsonschema_registry_destroy. */
int jsonschema_registry_create(struct jsonschema_registry **out);
/* Accepts NULL. Compiled schemas stay valid after their registry is
 * destroyed. */
void jsonschema_registry_destroy(struct jsonschema_registry *reg);
/* Adds a document under an absolute URI (its "$id"s and anchors become
 * resolvable too). Takes a new reference to doc; the caller keeps its own.
 * The document must not be modified afterwards. Returns CORE_ECONFLICT when
 * a URI is already registered, CORE_EINVAL (err filled, may be NULL) for a
 * malformed identifier, CORE_ENOMEM. Not thread-safe against concurrent
 * adds or compiles on the same registry. */
int jsonschema_registry_add(struct jsonschema_registry *reg, const char *uri,
                            json_t *doc, struct jsonschema_compile_error *err);

/* -------------------------------------------------------------- compile */
struct jsonschema;

/* Compiles schema. reg may be NULL (only built-in documents are then
 * resolvable); base_uri is the URI the schema was retrieved from, used to
 * resolve relative identifiers (NULL gives an internal placeholder). Takes
 * new references to the documents it uses; the caller keeps its own and
 * must not modify them afterwards.
 *
 * Returns 0 and *out (free with jsonschema_destroy), CORE_EINVAL with err
 * filled (err may be NULL) for an invalid schema or unresolvable reference,
 * CORE_EUNSUPPORTED for a required vocabulary this library does not know,
 * CORE_ENOMEM. */
int jsonschema_compile(const struct jsonschema_registry *reg, json_t *schema,
                       const char *base_uri, struct jsonschema **out,
                       struct jsonschema_compile_error *err);
/* Accepts NULL. */
void jsonschema_destroy(struct jsonschema *s);

/* ------------------------------------------------------------- validate */
struct jsonschema_options {
    /* Treat "format" as an assertion for the formats this library knows
     * (date-time, date, time, duration, email, hostname, ipv4, ipv6, uri,
     * uri-reference, iri, iri-reference, uri-template, uuid, json-pointer,
     * relative-json-pointer, regex). Off by default: format is then only
     * an annotation, unless the schema's meta-schema asks for the
     * format-assertion vocabulary. */
    bool format_assert;
    /* Collect errors; otherwise only valid/invalid is answered and the
     * validation stops at the first failure. That fast path allocates
     * nothing, except for "propertyNames" (a string per name) and
     * unevaluatedProperties/Items on instances of more than 256 members
     * (a bit set); a thread's first regex match makes its match state. */
    bool detailed;
    /* With detailed, stop collecting after this many errors (0: 100). */
    size_t max_errors;
};

/* One error of the "basic" output format. Strings are owned by the
 * result. */
struct jsonschema_error {
    char *instance_location;          /* JSON Pointer into the instance */
    char *keyword_location;           /* path through the schema, $refs kept */
    char *absolute_keyword_location;  /* URI#pointer of the keyword */
    char *message;
};

struct jsonschema_result {
    bool valid;
    struct jsonschema_error *errors;
    size_t nerrors;
    size_t cap;
};

/* Validates instance. opts may be NULL (fast path, format as annotation).
 * Returns 0 with out->valid set (and out->errors when opts->detailed; the
 * caller frees them with jsonschema_result_fini), or CORE_ENOMEM. A
 * validation that recurses deeper than the library's limit (a schema that
 * loops on the same instance) counts as invalid. Thread-safe: any number
 * of threads may validate with one compiled schema at once. */
int jsonschema_validate(const struct jsonschema *s, const json_t *instance,
                        const struct jsonschema_options *opts,
                        struct jsonschema_result *out);
/* The fast path as a predicate: false also when memory ran out. */
bool jsonschema_is_valid(const struct jsonschema *s, const json_t *instance,
                         const struct jsonschema_options *opts);
/* Frees the errors of a result; accepts a zeroed result. */
void jsonschema_result_fini(struct jsonschema_result *r);
/* Appends the result in the "basic" output format:
 * {"valid":false,"errors":[{"keywordLocation":..,"absoluteKeywordLocation":
 * ..,"instanceLocation":..,"error":..},..]}. The caller owns b. */
void jsonschema_result_render(const struct jsonschema_result *r,
                              struct core_buf *b);

/* ------------------------------------------------------------------ cli */

/* `argus jsonschema [--format-assert] [--json] SCHEMA [FILE]`; argv[0] is
 * "jsonschema". Exit status: 0 valid, 1 invalid, 2 usage, unreadable or
 * invalid schema or instance. */
int jsonschema_cli_main(int argc, char **argv);

#endif
