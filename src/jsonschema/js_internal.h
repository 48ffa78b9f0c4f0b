/*
 * Private declarations of the JSON Schema validator: the document index
 * (resources, anchors), the compiled form (nodes holding flat arrays of
 * checks) and the helpers shared by the files of this folder.
 */
#ifndef ARGUS_JSONSCHEMA_INTERNAL_H
#define ARGUS_JSONSCHEMA_INTERNAL_H

#include "jsonschema.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ------------------------------------------------------------------ arena
 * Everything a compiled schema holds lives in one arena, freed at once. */
struct js__arena_block;
struct js__arena {
    struct js__arena_block *head;
};

void *js__arena_alloc(struct js__arena *a, size_t n); /* zeroed */
char *js__arena_strndup(struct js__arena *a, const char *s, size_t n);
char *js__arena_strdup(struct js__arena *a, const char *s);
void js__arena_fini(struct js__arena *a);

/* -------------------------------------------------------------------- maps
 * Open-addressing hash maps, keyed either by NUL-terminated string (the key
 * is borrowed and must outlive the map) or by pointer identity. One map is
 * used in one mode only. Put replaces an existing value. */
struct js__map_slot {
    const void *key;
    uint64_t hash;
    void *val;
};
struct js__map {
    struct js__map_slot *slots;
    size_t cap;
    size_t len;
};

/* Makes room for n more keys, so that the next n puts cannot fail. */
int js__map_reserve(struct js__map *m, size_t n);
int js__map_put_str(struct js__map *m, const char *key, void *val);
void *js__map_get_str(const struct js__map *m, const char *key);
int js__map_put_ptr(struct js__map *m, const void *key, void *val);
void *js__map_get_ptr(const struct js__map *m, const void *key);
void js__map_fini(struct js__map *m);

/* -------------------------------------------------------------------- uris */

/* Resolves the URI reference ref against the absolute URI base (RFC 3986
 * section 5.2). Returns a malloc'd string, or NULL when out of memory. */
char *js__uri_resolve(const char *base, const char *ref);
/* A malloc'd copy of uri without its fragment; *frag (if not NULL) gets a
 * pointer into uri just after '#', or NULL when there is none. */
char *js__uri_strip_fragment(const char *uri, const char **frag);
/* Decodes %XX escapes in place; returns false on a malformed escape. */
bool js__percent_decode(char *s);

/* Appends one reference token to a JSON Pointer, escaping '~' and '/'. */
void js__pointer_append(struct core_buf *b, const char *tok, size_t len);
/* Follows a JSON Pointer (already percent-decoded) from root. NULL when a
 * token does not resolve. */
json_t *js__pointer_get(json_t *root, const char *ptr);

/* ------------------------------------------------------------ the index
 * An index of schema resources by absolute URI, built by walking documents
 * through the keywords whose values are subschemas (so an "$id" inside an
 * "enum" value is not an identifier). */
struct js__resource {
    char *uri;            /* absolute, without fragment */
    json_t *root;         /* borrowed from the document */
    const char *metaschema; /* "$schema" in effect, borrowed; may be NULL */
    struct js__map anchors;     /* name -> json_t* ($anchor, $dynamicAnchor) */
    struct js__map dyn_anchors; /* name -> json_t* ($dynamicAnchor only) */
    struct js__resource *next;
};

struct js__index {
    struct js__map by_uri;  /* uri -> resource */
    struct js__map by_root; /* json_t* -> resource */
    struct js__resource *resources;
    json_t **docs; /* references held */
    size_t ndocs, capdocs;
};

void js__index_init(struct js__index *ix);
void js__index_fini(struct js__index *ix);
/* Indexes doc under uri (absolute; NULL gives the default base). Takes a
 * new reference to doc. Returns CORE_ECONFLICT when a URI is already
 * known, CORE_EINVAL with err filled for a malformed identifier. */
int js__index_add(struct js__index *ix, const char *uri, json_t *doc,
                  struct jsonschema_compile_error *err);

/* The index of the built-in 2020-12 meta-schemas, built once. NULL only
 * when the embedded text cannot be parsed or memory ran out. */
const struct js__index *js__builtin_index(void);

/* Embedded meta-schemas (generated at build time). */
struct js__embedded {
    const char *uri;
    const char *text;
};
extern const struct js__embedded js__embedded_metaschemas[];
extern const size_t js__embedded_metaschemas_count;

struct jsonschema_registry {
    struct js__index ix;
};

#define JS_DEFAULT_BASE "urn:argus:jsonschema:root"

/* ---------------------------------------------------------------- regexes */

/* Translates an ECMA-262 pattern (with the "u" flag semantics JSON Schema
 * asks for) to PCRE2 syntax. Returns 0 and a malloc'd string, CORE_EPARSE
 * with a message in err when the pattern is not valid ECMA-262, or
 * CORE_ENOMEM. */
int js__regex_translate(const char *src, size_t len, char **out, char *err,
                        size_t errlen);
/* Compiles an ECMA-262 pattern with JIT. NULL with a message on error. */
pcre2_code *js__regex_compile(const char *src, size_t len, char *err,
                              size_t errlen);
/* Unanchored search; true on a match. */
bool js__regex_search(const pcre2_code *re, const char *s, size_t len);
/* The "regex" format: true when s is a valid ECMA-262 pattern. */
bool js__regex_valid(const char *s, size_t len);

/* ---------------------------------------------------------------- formats */
enum js__format {
    JS_FMT_UNKNOWN = 0,
    JS_FMT_DATE_TIME,
    JS_FMT_DATE,
    JS_FMT_TIME,
    JS_FMT_DURATION,
    JS_FMT_EMAIL,
    JS_FMT_IDN_EMAIL,
    JS_FMT_HOSTNAME,
    JS_FMT_IDN_HOSTNAME,
    JS_FMT_IPV4,
    JS_FMT_IPV6,
    JS_FMT_URI,
    JS_FMT_URI_REFERENCE,
    JS_FMT_IRI,
    JS_FMT_IRI_REFERENCE,
    JS_FMT_URI_TEMPLATE,
    JS_FMT_UUID,
    JS_FMT_JSON_POINTER,
    JS_FMT_RELATIVE_JSON_POINTER,
    JS_FMT_REGEX,
};

enum js__format js__format_lookup(const char *name);
/* True when s (len bytes of UTF-8) is valid for the format; unknown
 * formats accept everything. */
bool js__format_check(enum js__format f, const char *s, size_t len);

/* ------------------------------------------------------- compiled form */
enum js__kind {
    JS_K_TYPE,
    JS_K_ENUM,
    JS_K_CONST,
    JS_K_MULTIPLE_OF,
    JS_K_MAXIMUM,
    JS_K_EXCLUSIVE_MAXIMUM,
    JS_K_MINIMUM,
    JS_K_EXCLUSIVE_MINIMUM,
    JS_K_MAX_LENGTH,
    JS_K_MIN_LENGTH,
    JS_K_PATTERN,
    JS_K_FORMAT,
    JS_K_MAX_ITEMS,
    JS_K_MIN_ITEMS,
    JS_K_UNIQUE_ITEMS,
    JS_K_MAX_PROPERTIES,
    JS_K_MIN_PROPERTIES,
    JS_K_REQUIRED,
    JS_K_DEPENDENT_REQUIRED,
    JS_K_PROPERTIES,
    JS_K_PATTERN_PROPERTIES,
    JS_K_ADDITIONAL_PROPERTIES,
    JS_K_PROPERTY_NAMES,
    JS_K_DEPENDENT_SCHEMAS,
    JS_K_PREFIX_ITEMS,
    JS_K_ITEMS,
    JS_K_CONTAINS,
    JS_K_ALL_OF,
    JS_K_ANY_OF,
    JS_K_ONE_OF,
    JS_K_NOT,
    JS_K_IF,
    JS_K_REF,
    JS_K_DYNAMIC_REF,
    JS_K_UNEVALUATED_PROPERTIES,
    JS_K_UNEVALUATED_ITEMS,
};

/* Type bits of the "type" keyword. */
enum {
    JS_T_NULL = 1 << 0,
    JS_T_BOOLEAN = 1 << 1,
    JS_T_OBJECT = 1 << 2,
    JS_T_ARRAY = 1 << 3,
    JS_T_NUMBER = 1 << 4,
    JS_T_STRING = 1 << 5,
    JS_T_INTEGER = 1 << 6,
};

struct js__node;

struct js__named {
    const char *name;
    size_t len;
    struct js__node *node;      /* properties, dependentSchemas */
    const char **required;      /* dependentRequired */
    size_t nrequired;
};

struct js__pattern {
    const char *src;
    pcre2_code *re;
    struct js__node *node;
};

struct js__res; /* a resource as seen at run time */

struct js__check {
    uint8_t kind;
    const char *kw; /* keyword, for error locations */
    union {
        unsigned type_mask;
        struct {
            const json_t *value; /* const value, or the enum array */
        } cnst;
        struct {
            double d;
            int64_t i;
            bool is_int;
            const json_t *json;
        } num;
        size_t count;
        struct {
            struct js__pattern pat;
        } pattern;
        struct {
            struct js__named *v; /* sorted by (len, bytes) */
            size_t n;
        } named;
        struct {
            struct js__pattern *v;
            size_t n;
        } pats;
        struct {
            struct js__node *node;
            int props;    /* index of the sibling "properties" check or -1 */
            int patterns; /* index of the sibling "patternProperties" or -1 */
        } addl;
        struct {
            struct js__node **v;
            size_t n;
        } list;
        struct {
            struct js__node *node;
            size_t prefix;
        } items;
        struct {
            struct js__node *node;
            size_t min, max;
            bool has_max;
        } contains;
        struct {
            struct js__node *if_, *then_, *else_;
        } cond;
        struct {
            struct js__node *node;
            const char *anchor; /* $dynamicRef to a dynamic anchor */
            const char *target; /* resolved URI, for messages */
        } ref;
        struct {
            const char **names;
            size_t *lens;
            size_t n;
        } required;
        struct {
            int fmt;
            bool assert;
            const char *name;
        } format;
        struct js__node *node;
    } u;
};

struct js__node {
    bool is_bool;
    bool bool_value;
    bool uneval_props; /* has unevaluatedProperties */
    bool uneval_items; /* has unevaluatedItems */
    const struct js__res *res;
    const char *abs; /* absolute location: uri#pointer */
    struct js__check *checks;
    size_t nchecks;
};

struct js__dyn {
    const char *name;
    struct js__node *node;
};

struct js__res {
    const char *uri;
    struct js__dyn *dyn;
    size_t ndyn;
};

struct jsonschema {
    struct js__arena arena;
    struct js__index local; /* the schema's own resources */
    json_t **docs;          /* references to every document used */
    size_t ndocs;
    pcre2_code **regexes;   /* to free */
    size_t nregexes;
    struct js__node *root;
    bool uses_dynamic;
};

/* Iterates the members of a (const) object in insertion order. */
#define JS_OBJECT_FOREACH(obj, it, key, klen, val)                            \
    for (void *it = json_object_iter((json_t *)(obj)); it &&                   \
         ((key = json_object_iter_key(it)), (klen = json_object_iter_key_len(it)), \
          (val = json_object_iter_value(it)), (void)key, (void)klen, 1);       \
         it = json_object_iter_next((json_t *)(obj), it))

/* Compares two JSON values as JSON Schema does: numbers by value (1 ==
 * 1.0), objects regardless of key order. */
bool js__json_equal(const json_t *a, const json_t *b);
/* Number of Unicode code points in a UTF-8 string. */
size_t js__utf8_length(const char *s, size_t len);

#endif
