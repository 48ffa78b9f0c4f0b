#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonschema.h"

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
    if (!v)
        fail_msg("bad test JSON: %s: %s", err.text, text);
    return v;
}

static struct jsonschema *compile_ok(const struct jsonschema_registry *reg,
                                     const char *text)
{
    json_t *doc = parse(text);
    struct jsonschema *s = NULL;
    struct jsonschema_compile_error err;
    int rc = jsonschema_compile(reg, doc, NULL, &s, &err);
    if (rc)
        fail_msg("compile failed: %s: %s", err.location, err.message);
    json_decref(doc);
    return s;
}

static bool valid(const struct jsonschema *s, const char *instance, bool fmt)
{
    json_t *v = parse(instance);
    struct jsonschema_options o = {.format_assert = fmt};
    bool ok = jsonschema_is_valid(s, v, &o);
    /* The detailed path must agree, and explain itself when invalid. */
    struct jsonschema_result r;
    o.detailed = true;
    assert_int_equal(jsonschema_validate(s, v, &o, &r), 0);
    assert_int_equal(r.valid, ok);
    if (!ok)
        assert_true(r.nerrors > 0);
    jsonschema_result_fini(&r);
    json_decref(v);
    return ok;
}

/* ------------------------------------------------------------ compile */
static void expect_compile_error(const char *schema, const char *loc_suffix,
                                 const char *msg_part)
{
    json_t *doc = parse(schema);
    struct jsonschema *s = NULL;
    struct jsonschema_compile_error err;
    int rc = jsonschema_compile(NULL, doc, NULL, &s, &err);
    json_decref(doc);
    if (rc == 0)
        fail_msg("compiled, expected an error: %s", schema);
    assert_null(s);
    size_t ll = strlen(err.location), sl = strlen(loc_suffix);
    if (ll < sl || strcmp(err.location + ll - sl, loc_suffix) != 0)
        fail_msg("location %s does not end with %s", err.location, loc_suffix);
    if (!strstr(err.message, msg_part))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, msg_part);
}

static void test_compile_errors(void **state)
{
    (void)state;
    expect_compile_error("{\"type\":\"strin\"}", "#/type", "strin");
    expect_compile_error("{\"properties\":{\"a\":{\"minLength\":-1}}}",
                         "#/properties/a/minLength", "non-negative");
    expect_compile_error("{\"pattern\":\"([a-z\"}", "#/pattern",
                         "invalid regular expression");
    expect_compile_error("{\"pattern\":\"\\\\a\"}", "#/pattern", "\\a");
    expect_compile_error("{\"$ref\":\"#/$defs/missing\"}", "#/$ref",
                         "cannot resolve");
    expect_compile_error("{\"$ref\":\"https://example.com/other.json\"}",
                         "#/$ref", "no schema is registered");
    expect_compile_error("{\"properties\":{\"a\":5}}", "#/properties",
                         "must be a schema");
    expect_compile_error("{\"allOf\":[]}", "#/allOf", "non-empty array");
    expect_compile_error("{\"multipleOf\":0}", "#/multipleOf", "greater than 0");
    expect_compile_error("{\"$schema\":\"https://example.com/unknown\"}", "#",
                         "unknown meta-schema");
    expect_compile_error("[1]", "#", "object or a boolean");

    /* A valid schema compiles, and so do the boolean ones. */
    struct jsonschema *s = compile_ok(NULL, "true");
    assert_true(valid(s, "{\"any\":1}", false));
    jsonschema_destroy(s);
    s = compile_ok(NULL, "false");
    assert_false(valid(s, "null", false));
    jsonschema_destroy(s);
}

/* ------------------------------------------------------------ output */
static const char *device_schema =
    "{\"$id\":\"https://argus.example/types/env\","
    " \"type\":\"object\","
    " \"required\":[\"deviceId\",\"metrics\"],"
    " \"additionalProperties\":false,"
    " \"properties\":{"
    "  \"deviceId\":{\"type\":\"string\",\"pattern\":\"^[a-z0-9-]+$\"},"
    "  \"metrics\":{\"$ref\":\"#/$defs/metrics\"}},"
    " \"$defs\":{\"metrics\":{\"type\":\"object\",\"properties\":{"
    "  \"temp\":{\"type\":\"number\",\"maximum\":125},"
    "  \"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}}}";

static const struct jsonschema_error *find_error(const struct jsonschema_result *r,
                                                 const char *kwloc)
{
    for (size_t i = 0; i < r->nerrors; i++)
        if (strcmp(r->errors[i].keyword_location, kwloc) == 0)
            return &r->errors[i];
    for (size_t i = 0; i < r->nerrors; i++)
        fprintf(stderr, "  have %s | %s | %s\n", r->errors[i].keyword_location,
                r->errors[i].instance_location, r->errors[i].message);
    fail_msg("no error at %s", kwloc);
    return NULL;
}

static void test_output_locations_and_messages(void **state)
{
    (void)state;
    struct jsonschema *s = compile_ok(NULL, device_schema);
    json_t *inst = parse("{\"deviceId\":\"Bad_Id\",\"extra\":1,"
                         "\"metrics\":{\"temp\":150,\"tags\":[\"a\",7]}}");
    struct jsonschema_result r;
    struct jsonschema_options o = {.detailed = true};
    assert_int_equal(jsonschema_validate(s, inst, &o, &r), 0);
    assert_false(r.valid);
    assert_int_equal(r.nerrors, 4);

    const struct jsonschema_error *e =
        find_error(&r, "/properties/metrics/$ref/properties/temp/maximum");
    assert_string_equal(e->instance_location, "/metrics/temp");
    assert_string_equal(e->absolute_keyword_location,
                        "https://argus.example/types/env#/$defs/metrics/"
                        "properties/temp/maximum");
    assert_string_equal(e->message, "150 is greater than the maximum 125");

    e = find_error(&r, "/properties/metrics/$ref/properties/tags/items/type");
    assert_string_equal(e->instance_location, "/metrics/tags/1");
    assert_string_equal(e->message, "expected string, got integer");

    e = find_error(&r, "/additionalProperties");
    assert_string_equal(e->instance_location, "/extra");
    assert_string_equal(e->message, "property \"extra\" is not allowed");

    e = find_error(&r, "/properties/deviceId/pattern");
    assert_string_equal(e->instance_location, "/deviceId");
    assert_non_null(strstr(e->message, "does not match the pattern"));

    /* The basic output format, as JSON. */
    struct core_buf b;
    core_buf_init(&b);
    jsonschema_result_render(&r, &b);
    json_t *out = parse(b.data);
    assert_true(json_is_false(json_object_get(out, "valid")));
    json_t *errs = json_object_get(out, "errors");
    assert_int_equal(json_array_size(errs), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *x = json_array_get(errs, i);
        assert_true(json_is_string(json_object_get(x, "keywordLocation")));
        assert_true(json_is_string(json_object_get(x, "absoluteKeywordLocation")));
        assert_true(json_is_string(json_object_get(x, "instanceLocation")));
        assert_true(json_is_string(json_object_get(x, "error")));
    }
    json_decref(out);
    core_buf_fini(&b);
    jsonschema_result_fini(&r);
    json_decref(inst);

    /* Missing properties are reported on the object, one error each. */
    inst = parse("{}");
    assert_int_equal(jsonschema_validate(s, inst, &o, &r), 0);
    assert_int_equal(r.nerrors, 2);
    assert_string_equal(r.errors[0].instance_location, "");
    assert_string_equal(r.errors[0].keyword_location, "/required");
    assert_string_equal(r.errors[0].message,
                        "required property \"deviceId\" is missing");
    jsonschema_result_fini(&r);
    json_decref(inst);

    /* A valid instance renders as {"valid":true}. */
    inst = parse("{\"deviceId\":\"ok-1\",\"metrics\":{}}");
    assert_int_equal(jsonschema_validate(s, inst, &o, &r), 0);
    assert_true(r.valid);
    core_buf_init(&b);
    jsonschema_result_render(&r, &b);
    assert_string_equal(b.data, "{\"valid\":true}");
    core_buf_fini(&b);
    jsonschema_result_fini(&r);
    json_decref(inst);

    /* max_errors caps the list. */
    inst = parse("[1,2,3,4,5]");
    struct jsonschema *t = compile_ok(NULL, "{\"items\":{\"type\":\"string\"}}");
    o.max_errors = 2;
    assert_int_equal(jsonschema_validate(t, inst, &o, &r), 0);
    assert_int_equal(r.nerrors, 2);
    jsonschema_result_fini(&r);
    jsonschema_destroy(t);
    json_decref(inst);
    jsonschema_destroy(s);
}

static void test_anyof_and_oneof_messages(void **state)
{
    (void)state;
    struct jsonschema *s = compile_ok(
        NULL, "{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}");
    json_t *inst = parse("3");
    struct jsonschema_result r;
    struct jsonschema_options o = {.detailed = true};
    assert_int_equal(jsonschema_validate(s, inst, &o, &r), 0);
    assert_false(r.valid);
    assert_int_equal(r.nerrors, 1);
    assert_string_equal(r.errors[0].keyword_location, "/oneOf");
    assert_non_null(strstr(r.errors[0].message, "alternatives 0 and 1"));
    jsonschema_result_fini(&r);
    json_decref(inst);
    /* When an alternative matches, the others' errors are dropped. */
    inst = parse("5.5");
    assert_int_equal(jsonschema_validate(s, inst, &o, &r), 0);
    assert_true(r.valid);
    assert_int_equal(r.nerrors, 0);
    jsonschema_result_fini(&r);
    json_decref(inst);
    jsonschema_destroy(s);
}

/* ------------------------------------------------------------ formats */
static void test_format_annotation_and_assertion(void **state)
{
    (void)state;
    static const struct {
        const char *format, *good, *bad;
    } cases[] = {
        {"date-time", "\"2026-11-23T12:00:00.5+01:00\"", "\"2026-02-30T12:00:00Z\""},
        {"date", "\"2024-02-29\"", "\"2023-02-29\""},
        {"time", "\"23:59:60Z\"", "\"12:00:00\""},
        {"duration", "\"P1DT2H\"", "\"P1H\""},
        {"email", "\"ops@argus.example\"", "\"ops@@argus\""},
        {"hostname", "\"gw-1.argus.example\"", "\"-gw.example\""},
        {"ipv4", "\"192.168.0.1\"", "\"192.168.0.01\""},
        {"ipv6", "\"fe80::1:2\"", "\"fe80:::1\""},
        {"uri", "\"mqtts://broker:8883/x?y#z\"", "\"/relative\""},
        {"uri-reference", "\"../a/b?c\"", "\"a b\""},
        {"uuid", "\"0190a4c2-9f1e-7abc-8def-0123456789ab\"", "\"0190a4c2\""},
        {"json-pointer", "\"/a~1b/0\"", "\"a/b\""},
        {"regex", "\"^[a-z]+\\\\d$\"", "\"(unclosed\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char schema[128];
        snprintf(schema, sizeof schema, "{\"format\":\"%s\"}", cases[i].format);
        struct jsonschema *s = compile_ok(NULL, schema);
        if (!valid(s, cases[i].good, true))
            fail_msg("%s: %s should be valid", cases[i].format, cases[i].good);
        if (valid(s, cases[i].bad, true))
            fail_msg("%s: %s should be invalid", cases[i].format, cases[i].bad);
        /* Annotation only by default. */
        assert_true(valid(s, cases[i].bad, false));
        /* Other types pass. */
        assert_true(valid(s, "42", true));
        jsonschema_destroy(s);
    }
    /* Unknown formats are never asserted. */
    struct jsonschema *s = compile_ok(NULL, "{\"format\":\"made-up\"}");
    assert_true(valid(s, "\"anything\"", true));
    jsonschema_destroy(s);
}

/* --------------------------------------------------------- references */
static void test_refs_across_registry_documents(void **state)
{
    (void)state;
    struct jsonschema_registry *reg;
    assert_int_equal(jsonschema_registry_create(&reg), 0);
    json_t *units = parse(
        "{\"$id\":\"https://argus.example/common/units\","
        " \"$defs\":{\"celsius\":{\"$anchor\":\"celsius\",\"type\":\"number\","
        "  \"minimum\":-273.15}}}");
    assert_int_equal(
        jsonschema_registry_add(reg, "https://argus.example/common/units", units,
                                NULL),
        0);
    /* Registering the same identifier twice is refused. */
    assert_int_equal(
        jsonschema_registry_add(reg, "https://argus.example/common/units", units,
                                NULL),
        CORE_ECONFLICT);
    json_decref(units);

    struct jsonschema *s = compile_ok(
        reg, "{\"$id\":\"https://argus.example/types/probe\","
             " \"properties\":{"
             "  \"a\":{\"$ref\":\"../common/units#celsius\"},"
             "  \"b\":{\"$ref\":\"/common/units#/$defs/celsius\"}}}");
    /* The compiled schema outlives its registry. */
    jsonschema_registry_destroy(reg);
    assert_true(valid(s, "{\"a\":20,\"b\":-10}", false));
    assert_false(valid(s, "{\"a\":-300}", false));
    assert_false(valid(s, "{\"b\":\"warm\"}", false));
    jsonschema_destroy(s);

    /* The built-in meta-schema is a document like any other. */
    s = compile_ok(NULL,
                   "{\"$ref\":\"https://json-schema.org/draft/2020-12/schema\"}");
    assert_true(valid(s, "{\"type\":\"object\",\"minProperties\":1}", false));
    assert_false(valid(s, "{\"type\":\"objekt\"}", false));
    assert_false(valid(s, "{\"minLength\":-1}", false));
    jsonschema_destroy(s);
}

static void test_dynamic_ref_extends_a_recursive_schema(void **state)
{
    (void)state;
    struct jsonschema_registry *reg;
    assert_int_equal(jsonschema_registry_create(&reg), 0);
    /* A generic tree whose nodes can be specialised by the caller. */
    json_t *tree = parse(
        "{\"$id\":\"https://argus.example/tree\",\"$dynamicAnchor\":\"node\","
        " \"type\":\"object\","
        " \"properties\":{\"children\":{\"type\":\"array\","
        "  \"items\":{\"$dynamicRef\":\"#node\"}}}}");
    assert_int_equal(jsonschema_registry_add(reg, "https://argus.example/tree",
                                             tree, NULL),
                     0);
    json_decref(tree);
    struct jsonschema *strict = compile_ok(
        reg, "{\"$id\":\"https://argus.example/strict-tree\","
             " \"$dynamicAnchor\":\"node\","
             " \"$ref\":\"tree\","
             " \"unevaluatedProperties\":false}");
    struct jsonschema *loose = compile_ok(
        reg, "{\"$ref\":\"https://argus.example/tree\"}");
    const char *doc = "{\"children\":[{\"children\":[],\"extra\":1}]}";
    /* The nested node is checked by the strict schema, through the
     * dynamic anchor, not by the generic tree. */
    assert_false(valid(strict, doc, false));
    assert_true(valid(strict, "{\"children\":[{\"children\":[]}]}", false));
    assert_true(valid(loose, doc, false));
    jsonschema_destroy(strict);
    jsonschema_destroy(loose);
    jsonschema_registry_destroy(reg);
}

static void test_ref_loops_are_bounded(void **state)
{
    (void)state;
    struct jsonschema *s = compile_ok(NULL, "{\"$ref\":\"#\"}");
    json_t *v = parse("1");
    struct jsonschema_result r;
    struct jsonschema_options o = {.detailed = true};
    assert_int_equal(jsonschema_validate(s, v, &o, &r), 0);
    assert_false(r.valid);
    assert_true(r.nerrors >= 1);
    assert_non_null(strstr(r.errors[0].message, "deeper"));
    jsonschema_result_fini(&r);
    json_decref(v);
    jsonschema_destroy(s);
}

static void test_unevaluated_properties(void **state)
{
    (void)state;
    struct jsonschema *s = compile_ok(
        NULL, "{\"allOf\":[{\"properties\":{\"a\":true}}],"
              " \"if\":{\"required\":[\"kind\"]},"
              " \"then\":{\"properties\":{\"kind\":true,\"b\":true}},"
              " \"unevaluatedProperties\":false}");
    assert_true(valid(s, "{\"a\":1}", false));
    assert_true(valid(s, "{\"a\":1,\"kind\":1,\"b\":2}", false));
    assert_false(valid(s, "{\"a\":1,\"b\":2}", false));
    jsonschema_destroy(s);
}

static void test_many_properties_use_the_sorted_table(void **state)
{
    (void)state;
    /* More than a handful of names: looked up by binary search. */
    struct core_buf b;
    core_buf_init(&b);
    core_buf_puts(&b, "{\"additionalProperties\":false,\"properties\":{");
    for (int i = 0; i < 40; i++)
        core_buf_printf(&b, "%s\"%.*sp%d\":{\"type\":\"integer\"}", i ? "," : "",
                        i % 5, "xxxxx", i);
    core_buf_puts(&b, "}}");
    struct jsonschema *s = compile_ok(NULL, b.data);
    core_buf_fini(&b);
    assert_true(valid(s, "{\"p0\":1,\"xxxxp39\":2,\"xxp17\":3}", false));
    assert_false(valid(s, "{\"p0\":1,\"xxxxp38\":2}", false)); /* not a name */
    assert_false(valid(s, "{\"xxxxp39\":\"a\"}", false));
    jsonschema_destroy(s);
}

static void test_numbers(void **state)
{
    (void)state;
    struct jsonschema *s = compile_ok(NULL, "{\"multipleOf\":0.01,\"maximum\":1e3}");
    assert_true(valid(s, "19.99", false));
    assert_false(valid(s, "19.991", false));
    assert_false(valid(s, "1000.01", false));
    jsonschema_destroy(s);
    s = compile_ok(NULL, "{\"type\":\"integer\",\"const\":1}");
    assert_true(valid(s, "1.0", false));
    assert_false(valid(s, "1.5", false));
    jsonschema_destroy(s);
    s = compile_ok(NULL, "{\"maxLength\":2}");
    assert_true(valid(s, "\"\\u00e9\\u00e9\"", false)); /* code points */
    assert_false(valid(s, "\"abc\"", false));
    jsonschema_destroy(s);
}

static void test_patterns_follow_ecma262(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *instance;
        bool match;
    } cases[] = {
        {"^abc$", "\"abc\\n\"", false},        /* $ is the very end */
        {"^\\d$", "\"\\u0660\"", false},     /* \d is ASCII */
        {"^\\w+$", "\"caf\\u00e9\"", false}, /* \w is ASCII */
        {"^\\s$", "\"\\u00a0\"", true},      /* \s is Unicode */
        {"^\\s$", "\"\\ufeff\"", true},
        {"^.$", "\"\\u2028\"", false},         /* . skips line ends */
        {"^.$", "\"\\ud83d\\udc32\"", true}, /* one code point */
        {"^\\p{Letter}+$", "\"\\u00e9t\\u00e9\"", true},
        {"^\\u00e9$", "\"\\u00e9\"", true},
        {"^\\cJ$", "\"\\n\"", true},
        {"^[^]$", "\"\\n\"", true},
        {"^(?<y>\\d{4})-\\k<y>$", "\"2026-2026\"", true},
        {"^[a-z]+\\-\\d+$", "\"ab-12\"", true}, /* identity escape */
        {"sensor", "\"my-sensor-1\"", true},        /* not anchored */
        {"^[\\S]$", "\"\\u00a0\"", false},       /* \S in a class */
        {"^[a\\S]$", "\"\\u2003\"", false},
        {"^[a\\S]+$", "\"xa\"", true},
        {"^[^a\\S]$", "\"\\u2003\"", true},
        {"^[^a\\S]$", "\"x\"", false},
        {"^(?:(a)|b)\\1$", "\"b\"", true},        /* unset group: empty */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *schema = json_object();
        json_object_set_new(schema, "pattern", json_string(cases[i].pattern));
        struct jsonschema *s;
        assert_int_equal(jsonschema_compile(NULL, schema, NULL, &s, NULL), 0);
        if (valid(s, cases[i].instance, false) != cases[i].match)
            fail_msg("pattern %s on %s", cases[i].pattern, cases[i].instance);
        jsonschema_destroy(s);
        json_decref(schema);
    }
    /* Not ECMA-262: refused when compiling. */
    expect_compile_error("{\"pattern\":\"(?i)abc\"}", "#/pattern", "group");
    expect_compile_error("{\"pattern\":\"\\\\Z\"}", "#/pattern", "\\Z");
}

static void test_registry_add_is_all_or_nothing(void **state)
{
    (void)state;
    struct jsonschema_registry *reg;
    assert_int_equal(jsonschema_registry_create(&reg), 0);
    json_t *a = parse("{\"$id\":\"https://argus.example/a\",\"type\":\"string\"}");
    assert_int_equal(jsonschema_registry_add(reg, "https://argus.example/a", a, NULL), 0);
    /* b embeds a resource whose identifier is taken: nothing of b stays. */
    json_t *b = parse("{\"$defs\":{\"x\":{\"$id\":\"https://argus.example/a\"}},"
                      " \"type\":\"integer\"}");
    struct jsonschema_compile_error err;
    assert_int_equal(jsonschema_registry_add(reg, "https://argus.example/b", b, &err),
                     CORE_ECONFLICT);
    assert_string_equal(err.location, "https://argus.example/a");
    json_t *ref = parse("{\"$ref\":\"https://argus.example/b\"}");
    struct jsonschema *s = NULL;
    assert_int_equal(jsonschema_compile(reg, ref, NULL, &s, &err), CORE_EINVAL);
    assert_non_null(strstr(err.message, "no schema is registered"));
    json_decref(ref);
    ref = parse("{\"$ref\":\"https://argus.example/a\"}");
    assert_int_equal(jsonschema_compile(reg, ref, NULL, &s, NULL), 0);
    assert_true(valid(s, "\"x\"", false));
    jsonschema_destroy(s);
    json_decref(ref);
    json_decref(a);
    json_decref(b);
    jsonschema_registry_destroy(reg);
}

/* ----------------------------------------------------------- threads */
struct worker {
    const struct jsonschema *s;
    json_t *good, *bad;
    int mismatches;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 2000; i++) {
        struct jsonschema_options o = {.detailed = i % 3 == 0};
        struct jsonschema_result r;
        json_t *doc = i % 2 ? w->bad : w->good;
        if (jsonschema_validate(w->s, doc, &o, &r) != 0 ||
            r.valid != (doc == w->good) ||
            (o.detailed && !r.valid && r.nerrors != 4))
            w->mismatches++;
        jsonschema_result_fini(&r);
    }
    return NULL;
}

static void test_one_schema_many_threads(void **state)
{
    (void)state;
    struct jsonschema *s = compile_ok(NULL, device_schema);
    json_t *good = parse("{\"deviceId\":\"a-1\",\"metrics\":{\"temp\":20,"
                         "\"tags\":[\"x\"]}}");
    json_t *bad = parse("{\"deviceId\":\"Bad_Id\",\"extra\":1,"
                        "\"metrics\":{\"temp\":150,\"tags\":[\"a\",7]}}");
    enum { N = 6 };
    pthread_t th[N];
    struct worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){.s = s, .good = good, .bad = bad};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].mismatches, 0);
    }
    json_decref(good);
    json_decref(bad);
    jsonschema_destroy(s);
}

/* ----------------------------------------------------------------- cli */
static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/test_jsonschema_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_cli_exit_codes(void **state)
{
    (void)state;
    char *schema = write_temp("{\"type\":\"object\",\"required\":[\"id\"]}");
    char *good = write_temp("{\"id\":1}");
    char *bad = write_temp("{}");
    char *broken = write_temp("{\"id\":");
    char *bad_schema = write_temp("{\"type\":3}");
    char *argv1[] = {"jsonschema", schema, good, NULL};
    assert_int_equal(jsonschema_cli_main(3, argv1), 0);
    char *argv2[] = {"jsonschema", "--json", schema, bad, NULL};
    assert_int_equal(jsonschema_cli_main(4, argv2), 1);
    char *argv3[] = {"jsonschema", schema, broken, NULL};
    assert_int_equal(jsonschema_cli_main(3, argv3), 2);
    char *argv4[] = {"jsonschema", bad_schema, good, NULL};
    assert_int_equal(jsonschema_cli_main(3, argv4), 2);
    char *argv5[] = {"jsonschema", NULL};
    assert_int_equal(jsonschema_cli_main(1, argv5), 2);
    char *all[] = {schema, good, bad, broken, bad_schema};
    for (size_t i = 0; i < 5; i++) {
        unlink(all[i]);
        free(all[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_output_locations_and_messages),
        cmocka_unit_test(test_anyof_and_oneof_messages),
        cmocka_unit_test(test_format_annotation_and_assertion),
        cmocka_unit_test(test_refs_across_registry_documents),
        cmocka_unit_test(test_dynamic_ref_extends_a_recursive_schema),
        cmocka_unit_test(test_ref_loops_are_bounded),
        cmocka_unit_test(test_unevaluated_properties),
        cmocka_unit_test(test_many_properties_use_the_sorted_table),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_patterns_follow_ecma262),
        cmocka_unit_test(test_registry_add_is_all_or_nothing),
        cmocka_unit_test(test_one_schema_many_threads),
        cmocka_unit_test(test_cli_exit_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
