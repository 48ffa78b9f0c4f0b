/*
 * Unit tests of the JSONPath engine: parse errors and their positions, each
 * selector, normalized paths, filters, functions, the I-Regexp translation,
 * and one compiled query shared by several threads.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "jsonpath.h"
#include "jsonpath_internal.h"

/* Runs query over doc (JSON text) and gives the nodelist as compact JSON:
 * the values, or with paths the normalized paths. The caller frees. */
static char *run(const char *query, const char *doc_text, bool paths)
{
    struct jsonpath *q = NULL;
    struct jsonpath_error err;
    struct jsonpath_result res;
    json_error_t jerr;
    json_t *doc = json_loads(doc_text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    json_t *out = json_array();
    char *txt;

    if (!doc)
        fail_msg("document %s: %s", doc_text, jerr.text);
    if (jsonpath_compile(query, &q, &err) != 0)
        fail_msg("query %s failed at %zu: %s", query, err.pos, err.msg);
    jsonpath_result_init(&res);
    assert_int_equal(jsonpath_eval(q, doc, paths ? JSONPATH_EVAL_PATHS : 0,
                                   &res),
                     0);
    for (size_t i = 0; i < res.len; i++) {
        if (paths) {
            struct core_buf b;
            core_buf_init(&b);
            assert_int_equal(jsonpath_node_path(&res, i, &b), 0);
            json_array_append_new(out, json_stringn(b.data, b.len));
            core_buf_fini(&b);
        } else {
            json_array_append(out, (json_t *)res.nodes[i].value);
        }
    }
    txt = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY |
                              JSON_REAL_PRECISION(12));
    jsonpath_result_fini(&res);
    jsonpath_destroy(q);
    json_decref(out);
    json_decref(doc);
    return txt;
}

#define assert_query(query, doc, want)                                      \
    do {                                                                    \
        char *got_ = run((query), (doc), false);                            \
        assert_string_equal(got_, (want));                                  \
        free(got_);                                                         \
    } while (0)

#define assert_paths(query, doc, want)                                      \
    do {                                                                    \
        char *got_ = run((query), (doc), true);                             \
        assert_string_equal(got_, (want));                                  \
        free(got_);                                                         \
    } while (0)

/* Asserts that query is rejected with an error at byte pos. */
static void assert_invalid_at(const char *query, size_t pos)
{
    struct jsonpath *q = (struct jsonpath *)1;
    struct jsonpath_error err;
    int rc = jsonpath_compile(query, &q, &err);
    if (rc != CORE_EPARSE)
        fail_msg("query %s: expected CORE_EPARSE, got %d", query, rc);
    assert_null(q);
    if (err.pos != pos)
        fail_msg("query %s: error at %zu (%s), expected %zu", query, err.pos,
                 err.msg, pos);
    assert_true(err.msg[0] != '\0');
}

static const char *store =
    "{\"store\":{\"book\":["
    "{\"category\":\"reference\",\"author\":\"Nigel Rees\",\"price\":8.95},"
    "{\"category\":\"fiction\",\"author\":\"Evelyn Waugh\",\"price\":12.99},"
    "{\"category\":\"fiction\",\"author\":\"Herman Melville\",\"isbn\":\"0-553\","
    "\"price\":8.99}],"
    "\"bicycle\":{\"color\":\"red\",\"price\":399}}}";

/* ------------------------------------------------------------- parsing */

static void test_parse_errors_report_position(void **state)
{
    assert_invalid_at("", 0);
    assert_invalid_at(" $", 0);
    assert_invalid_at("a", 0);
    assert_invalid_at("$ ", 1);         /* trailing whitespace */
    assert_invalid_at("$.a[", 4);       /* selector missing */
    assert_invalid_at("$['a'", 5);      /* ',' or ']' missing */
    assert_invalid_at("$['a]", 2);      /* unterminated string */
    assert_invalid_at("$[01]", 2);      /* leading zero */
    assert_invalid_at("$[-0]", 2);
    assert_invalid_at("$[9007199254740992]", 2);
    assert_invalid_at("$.1", 2);
    assert_invalid_at("$. a", 2);
    assert_invalid_at("$..", 3);
    assert_invalid_at("$[\"\\uD800\"]", 3); /* lone surrogate escape */
    assert_invalid_at("$[\"\\x\"]", 3);
    assert_invalid_at("$['\\\"']", 3);     /* \" only in double quotes */
    assert_invalid_at("$[?@.a==01]", 8);
    assert_invalid_at("$[?@.a==1.]", 10);
    assert_invalid_at("$[?foo(@)]", 3);   /* unknown function */
    assert_invalid_at("$[?count (@)==1]", 3); /* no blank before '(' */
    assert_invalid_at("$[?@.*==1]", 3);   /* non-singular comparison */
    assert_invalid_at("$[?1==@.*]", 6);
    assert_invalid_at("$[?true]", 3);     /* literal must be compared */
    assert_invalid_at("$[?length(@)]", 3); /* ValueType is not a test */
    assert_invalid_at("$[?match(@,'a')==true]", 3);
    assert_invalid_at("$[?length(@.*)==1]", 10);
    assert_invalid_at("$[?count(1)==1]", 9);
    assert_invalid_at("$[?value(@.a,@.b)==1]", 13);
    assert_invalid_at("$[?length()==1]", 10);
    assert_invalid_at("$[?(@.a]", 7);
    assert_invalid_at("$[?!@.a==1]", 7);  /* '!' binds to the test only */
    assert_invalid_at("$[?@.a==Null]", 8);

    /* A NUL inside the query is an error, not an end of string. */
    struct jsonpath *q;
    struct jsonpath_error err;
    assert_int_equal(jsonpath_compilen("$.a\0b", 5, &q, &err), CORE_EPARSE);
    assert_int_equal(err.pos, 3);
    /* Invalid UTF-8 is reported where it starts. */
    assert_int_equal(jsonpath_compile("$['\xc3\x28']", &q, &err), CORE_EPARSE);
    assert_int_equal(err.pos, 3);
    assert_int_equal(jsonpath_compile(NULL, &q, &err), CORE_EINVAL);
}

static void test_parse_accepts_rfc_whitespace(void **state)
{
    const char *ok[] = {
        "$ .a", "$\n['a']", "$[ 'a' , 'b' ]", "$[1 : 5 : 2]", "$[? @.a]",
        "$[?(@.a) ]", "$[?@.a\t&&\r@.b]", "$[?count( @.* )==1]",
        "$[?length(@ .a .b)==1]", "$[?! (@.a)]", "$..[?@ == 1]",
        "$[?@.a==-0]", "$[?@.a==1E+2]", "$[?@.a==-1.5e-3]",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct jsonpath *q = NULL;
        struct jsonpath_error err;
        if (jsonpath_compile(ok[i], &q, &err) != 0)
            fail_msg("%s rejected at %zu: %s", ok[i], err.pos, err.msg);
        jsonpath_destroy(q);
    }
}

static void test_singular(void **state)
{
    struct jsonpath *q;
    assert_int_equal(jsonpath_compile("$.a[0]['b']", &q, NULL), 0);
    assert_true(jsonpath_is_singular(q));
    jsonpath_destroy(q);
    assert_int_equal(jsonpath_compile("$.a[*]", &q, NULL), 0);
    assert_false(jsonpath_is_singular(q));
    jsonpath_destroy(q);
    assert_int_equal(jsonpath_compile("$..a", &q, NULL), 0);
    assert_false(jsonpath_is_singular(q));
    jsonpath_destroy(q);
}

/* ----------------------------------------------------------- selectors */

static void test_name_selector(void **state)
{
    assert_query("$.store.bicycle.color", store, "[\"red\"]");
    assert_query("$['store']['bicycle'][\"price\"]", store, "[399]");
    assert_query("$.nope", store, "[]");
    assert_query("$.a", "[1]", "[]");                /* not an object */
    assert_query("$['\\u263a']", "{\"\\u263a\":1}", "[1]");
    assert_query("$.☺", "{\"☺\":4}", "[4]");
    assert_query("$['\\uD834\\uDD1E']", "{\"\\uD834\\uDD1E\":5}", "[5]");
}

static void test_wildcard_selector(void **state)
{
    assert_query("$.*", "{\"a\":1,\"b\":[2]}", "[1,[2]]");
    assert_query("$[*]", "[1,2]", "[1,2]");
    assert_query("$.*", "3", "[]");
    assert_query("$[*,*]", "[1,2]", "[1,2,1,2]");
}

static void test_index_selector(void **state)
{
    assert_query("$[0]", "[1,2,3]", "[1]");
    assert_query("$[-1]", "[1,2,3]", "[3]");
    assert_query("$[-3]", "[1,2,3]", "[1]");
    assert_query("$[-4]", "[1,2,3]", "[]");
    assert_query("$[3]", "[1,2,3]", "[]");
    assert_query("$[0]", "{\"0\":1}", "[]");
    assert_query("$[9007199254740991]", "[1]", "[]");
    assert_query("$[1,0,1]", "[1,2]", "[2,1,2]");
}

static void test_slice_selector(void **state)
{
    const char *a = "[0,1,2,3,4,5,6,7,8,9]";
    assert_query("$[1:3]", a, "[1,2]");
    assert_query("$[:2]", a, "[0,1]");
    assert_query("$[8:]", a, "[8,9]");
    assert_query("$[::3]", a, "[0,3,6,9]");
    assert_query("$[::-1]", "[0,1,2]", "[2,1,0]");
    assert_query("$[-1:-4:-2]", a, "[9,7]");
    assert_query("$[5:1:-2]", a, "[5,3]");
    assert_query("$[1:2:0]", a, "[]");
    assert_query("$[-100:100:50]", a, "[0]");
    assert_query("$[100:-100:-5]", a, "[9,4]");
    assert_query("$[::9007199254740991]", a, "[0]");
    assert_query("$[:]", "{\"a\":1}", "[]");
}

static void test_descendant_segment(void **state)
{
    assert_query("$..price", store, "[8.95,12.99,8.99,399]");
    assert_query("$..[0]", "[[1,[2]],3]", "[[1,[2]],1,2]");
    assert_query("$..*", "{\"a\":[1]}", "[[1],1]");
    assert_query("$..['a','b']", "{\"a\":1,\"b\":{\"a\":2}}", "[1,{\"a\":2},2]");
    assert_paths("$..a", "{\"a\":{\"a\":1},\"b\":[{\"a\":2}]}",
                 "[\"$['a']\",\"$['a']['a']\",\"$['b'][0]['a']\"]");
}

static void test_filter_selector(void **state)
{
    assert_query("$.store.book[?@.price < 10].author", store,
                 "[\"Nigel Rees\",\"Herman Melville\"]");
    assert_query("$.store.book[?@.isbn].author", store, "[\"Herman Melville\"]");
    assert_query("$.store.book[?!@.isbn].price", store, "[8.95,12.99]");
    assert_query("$..book[?@.category=='fiction' && @.price>10].price", store,
                 "[12.99]");
    assert_query("$[?@ > 1 || @ == 'x']", "[1,2,\"x\",\"y\"]", "[2,\"x\"]");
    assert_query("$[?(@ > 1 || @ < 0) && @ != 5]", "[-1,0,1,2,5]", "[-1,2]");
    assert_query("$[?@.a == $.want]", "{\"want\":1,\"x\":{\"a\":1},\"y\":{\"a\":2}}",
                 "[{\"a\":1}]");
    /* filters apply to object members too */
    assert_query("$[?@ >= 2]", "{\"a\":1,\"b\":2,\"c\":3}", "[2,3]");
    /* nested filters */
    assert_query("$[?@[?@ == 2]]", "[[1,2],[3],{\"k\":2}]", "[[1,2],{\"k\":2}]");
}

/* --------------------------------------------------------- comparisons */

static void test_comparisons(void **state)
{
    /* numbers compare by value, integers and reals alike */
    assert_query("$[?@ == 1]", "[1,1.0,10e-1,\"1\",true]", "[1,1.0,1.0]");
    assert_query("$[?@ == -0]", "[0,0.0]", "[0,0.0]");
    assert_query("$[?@ < 1.5]", "[1,2,1.25]", "[1,1.25]");
    /* strings compare by code point */
    assert_query("$[?@ < 'b']", "[\"a\",\"b\",\"ab\",\"\\u00e9\",1]",
                 "[\"a\",\"ab\"]");
    assert_query("$[?@ > 'z']", "[\"\\u00e9\",\"\\ud83d\\ude00\",\"a\"]",
                 "[\"é\",\"😀\"]");
    /* only numbers and strings are ordered */
    assert_query("$[?@ <= true]", "[true,false,null]", "[true]");
    assert_query("$[?@ < true]", "[true,false]", "[]");
    assert_query("$[?@ >= null]", "[null,0]", "[null]");
    /* deep equality of arrays and objects */
    assert_query("$[?@.a == @.b]",
                 "[{\"a\":[1,{\"x\":2}],\"b\":[1.0,{\"x\":2}]},"
                 "{\"a\":{\"p\":1,\"q\":2},\"b\":{\"q\":2,\"p\":1}},"
                 "{\"a\":{\"p\":1},\"b\":{\"p\":1,\"q\":2}},"
                 "{\"a\":[1],\"b\":[1,2]}]",
                 "[{\"a\":[1,{\"x\":2}],\"b\":[1.0,{\"x\":2}]},"
                 "{\"a\":{\"p\":1,\"q\":2},\"b\":{\"q\":2,\"p\":1}}]");
    /* Nothing equals only Nothing */
    assert_query("$[?@.a == @.b]", "[{},{\"a\":null}]", "[{}]");
    assert_query("$[?@.a != null]", "[{},{\"a\":null},{\"a\":1}]",
                 "[{},{\"a\":1}]");
    assert_query("$[?@.a < 1 || @.a >= 1]", "[{},{\"a\":0}]", "[{\"a\":0}]");
    /* strings with NUL compare with their full length */
    assert_query("$[?@ == 'a']", "[\"a\\u0000\",\"a\"]", "[\"a\"]");
}

/* ----------------------------------------------------------- functions */

static void test_functions(void **state)
{
    assert_query("$[?length(@) == 2]",
                 "[\"ab\",\"\\u00e9\\ud83d\\ude00\",[1,2],{\"a\":1,\"b\":2},2,\"abc\"]",
                 "[\"ab\",\"é😀\",[1,2],{\"a\":1,\"b\":2}]");
    assert_query("$[?length(@.x) == length(@.y)]", "[{\"x\":1},{\"x\":\"a\",\"y\":[2]}]",
                 "[{\"x\":1},{\"x\":\"a\",\"y\":[2]}]"); /* Nothing == Nothing */
    assert_query("$[?count(@.*) == 2]", "[[1,2],[3],{\"a\":1,\"b\":2},5]",
                 "[[1,2],{\"a\":1,\"b\":2}]");
    assert_query("$[?count(@..*) > 2]", "[[1,[2]],[1,2]]", "[[1,[2]]]");
    assert_query("$[?value(@..x) == 1]", "[{\"x\":1},{\"x\":1,\"y\":{\"x\":1}},{}]",
                 "[{\"x\":1}]");
    assert_query("$[?match(@, 'a.c')]", "[\"abc\",\"xabc\",\"abcx\",\"a\\nc\",1]",
                 "[\"abc\"]");
    assert_query("$[?search(@, 'a.c')]", "[\"abc\",\"xabcx\",\"ac\",1]",
                 "[\"abc\",\"xabcx\"]");
    assert_query("$[?match(@.s, @.re)]",
                 "[{\"s\":\"aaa\",\"re\":\"a+\"},{\"s\":\"ab\",\"re\":\"a+\"},"
                 "{\"s\":\"a\",\"re\":\"(\"},{\"s\":\"a\",\"re\":1}]",
                 "[{\"s\":\"aaa\",\"re\":\"a+\"}]");
    /* an invalid I-Regexp never matches (and is no compile error) */
    assert_query("$[?match(@, 'a**')]", "[\"a\",\"aa\"]", "[]");
    assert_query("$[?!search(@, '\\\\d')]", "[\"1\",\"a\"]", "[\"1\",\"a\"]");
    assert_query("$[?match(@, 'a\\u0000b')]", "[\"a\\u0000b\",\"ab\"]",
                 "[\"a\\u0000b\"]");
    assert_query("$[?search(@, '\\\\p{Lu}\\\\p{Ll}')]",
                 "[\"xAb\",\"ab\",\"\\u0416\\u0436\"]", "[\"xAb\",\"Жж\"]");
    assert_query("$[?match(@, '[^a-c]+')]", "[\"xyz\",\"xaz\",\"\\u00e9\"]",
                 "[\"xyz\",\"é\"]");
    assert_query("$[?match(@, 'a{2,3}')]", "[\"a\",\"aa\",\"aaa\",\"aaaa\"]",
                 "[\"aa\",\"aaa\"]");
}

/* -------------------------------------------------------------- I-Regexp */

static bool re_matches(const char *re, const char *subject, bool anchored)
{
    pcre2_code *code;
    pcre2_match_data *md;
    int rc;

    if (jsonpath__iregexp_compile(re, strlen(re), anchored, &code) != 0)
        return false;
    md = pcre2_match_data_create(1, NULL);
    rc = pcre2_match(code, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md,
                     NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return rc >= 0;
}

static bool re_valid(const char *re)
{
    struct core_buf b;
    core_buf_init(&b);
    int rc = jsonpath__iregexp_translate(re, strlen(re), true, &b);
    core_buf_fini(&b);
    return rc == 0;
}

static void test_iregexp_translation(void **state)
{
    const char *valid[] = {
        "", "a", "a|b", "(a|b)*", "a{3}", "a{1,}", "a{1,2}", "[a-z]", "[-a]",
        "[a-]", "[-]", "[^-a]", "[\\]]", "[\\p{L}x]", "\\p{Nd}+", "\\P{Lu}",
        "\\.\\\\\\(\\)\\*\\+\\?\\[\\]\\{\\}\\|\\^\\-\\n\\r\\t", "[.]", "()",
        "é+", "^a$", "a,b",
    };
    const char *invalid[] = {
        "a**", "a*?", "a+?", "(a", "a)", "[a", "[]", "[^]", "\\d", "\\w",
        "\\s", "\\b", "\\1", "(?:a)", "a{2,1}", "a{", "a{x}", "{2}", "*",
        "\\p{Xx}", "\\p{Lx}", "\\pL", "[a-\\p{L}]", "[z-a]", "[a--]", "[[]",
        "a{99999}", "\\", "\\u0041", "[\\d]", "[^]a]",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        if (!re_valid(valid[i]))
            fail_msg("I-Regexp %s rejected", valid[i]);
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        if (re_valid(invalid[i]))
            fail_msg("non-I-Regexp %s accepted", invalid[i]);

    /* '.' excludes only \n and \r; it matches one code point */
    assert_true(re_matches(".", "\xe2\x80\xa8", true));  /* U+2028 */
    assert_true(re_matches(".", "\xf0\x9d\x84\x9e", true)); /* U+1D11E */
    assert_false(re_matches(".", "\n", true));
    assert_false(re_matches(".", "\r", true));
    assert_false(re_matches("a.b", "a\nb", false));
    /* full match versus substring search */
    assert_false(re_matches("b", "abc", true));
    assert_true(re_matches("b", "abc", false));
    assert_false(re_matches("a|ab", "abc", true));
    assert_true(re_matches("a|ab", "ab", true));
    /* a dollar never matches before a final newline */
    assert_false(re_matches("a$", "a\n", false));
    /* escaped metacharacters are literal, inside classes too */
    assert_true(re_matches("a\\.c", "a.c", true));
    assert_false(re_matches("a\\.c", "abc", true));
    assert_true(re_matches("[\\^x]", "^", true));
    assert_true(re_matches("[a^]", "^", true));
    assert_true(re_matches("[\\-]", "-", true));
    assert_true(re_matches("\\t\\n", "\t\n", true));
    /* categories */
    assert_true(re_matches("\\p{Lu}", "\xd0\x96", true)); /* Ж */
    assert_false(re_matches("\\p{Lu}", "\xd0\xb6", true)); /* ж */
    assert_true(re_matches("[^\\P{N}]", "7", true));
}

/* ------------------------------------------------------ normalized paths */

static void test_normalized_paths(void **state)
{
    assert_paths("$", "1", "[\"$\"]");
    assert_paths("$.store.book[?@.price>10].author", store,
                 "[\"$['store']['book'][1]['author']\"]");
    assert_paths("$[-1,0]", "[1,2]", "[\"$[1]\",\"$[0]\"]");
    /* Escaping per RFC 9535 §2.7, on keys built directly (jansson's parser
     * refuses NUL in keys). */
    static const struct {
        const char *key;
        size_t len;
        const char *path;
    } cases[] = {
        {"'", 1, "$['\\'']"},
        {"\\", 1, "$['\\\\']"},
        {"\b\f\n\r\t", 5, "$['\\b\\f\\n\\r\\t']"},
        {"\x01\x1f\x0b", 3, "$['\\u0001\\u001f\\u000b']"},
        {"a\0b", 3, "$['a\\u0000b']"},
        {"\x7f\xc3\xa9/\"", 5, "$['\x7f\xc3\xa9/\"']"},
    };
    json_t *doc = json_object();
    struct jsonpath *q;
    struct jsonpath_result res;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        json_object_setn_new(doc, cases[i].key, cases[i].len, json_integer((json_int_t)i));
    assert_int_equal(jsonpath_compile("$.*", &q, NULL), 0);
    jsonpath_result_init(&res);
    assert_int_equal(jsonpath_eval(q, doc, JSONPATH_EVAL_PATHS, &res), 0);
    assert_int_equal(res.len, sizeof cases / sizeof cases[0]);
    for (size_t i = 0; i < res.len; i++) {
        struct core_buf b;
        core_buf_init(&b);
        assert_int_equal(jsonpath_node_path(&res, i, &b), 0);
        assert_string_equal(b.data, cases[json_integer_value(res.nodes[i].value)].path);
        core_buf_fini(&b);
    }
    jsonpath_destroy(q);
    /* A name selector with NUL finds the key with NUL, not its prefix. */
    json_object_set_new(doc, "a", json_integer(100));
    assert_int_equal(jsonpath_compile("$['a\\u0000b']", &q, NULL), 0);
    assert_int_equal(jsonpath_eval(q, doc, JSONPATH_EVAL_PATHS, &res), 0);
    assert_int_equal(res.len, 1);
    assert_int_equal(json_integer_value(res.nodes[0].value), 4);
    jsonpath_destroy(q);
    jsonpath_result_fini(&res);
    json_decref(doc);

    struct jsonpath_step steps[] = {{"a'b", 3, 0}, {NULL, 0, 12}};
    struct core_buf b;
    core_buf_init(&b);
    jsonpath_path_format(steps, 2, &b);
    assert_string_equal(b.data, "$['a\\'b'][12]");
    core_buf_fini(&b);
}

static void test_result_reuse_and_first(void **state)
{
    struct jsonpath *q;
    struct jsonpath_result res;
    const json_t *v;
    json_t *doc = json_loads(store, 0, NULL);
    struct core_buf b;

    jsonpath_result_init(&res);
    assert_int_equal(jsonpath_compile("$..price", &q, NULL), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(jsonpath_eval(q, doc, JSONPATH_EVAL_PATHS, &res), 0);
        assert_int_equal(res.len, 4);
    }
    /* without paths, asking for one is an error */
    assert_int_equal(jsonpath_eval(q, doc, 0, &res), 0);
    core_buf_init(&b);
    assert_int_equal(jsonpath_node_path(&res, 0, &b), CORE_EINVAL);
    assert_int_equal(jsonpath_node_path(&res, 9, &b), CORE_EINVAL);
    core_buf_fini(&b);

    assert_int_equal(jsonpath_eval_first(q, doc, &v), 0);
    assert_true(json_is_real(v) && json_real_value(v) == 8.95);
    jsonpath_destroy(q);

    assert_int_equal(jsonpath_compile("$.store.bicycle.color", &q, NULL), 0);
    assert_int_equal(jsonpath_eval_first(q, doc, &v), 0);
    assert_string_equal(json_string_value(v), "red");
    jsonpath_destroy(q);
    assert_int_equal(jsonpath_compile("$.none", &q, NULL), 0);
    assert_int_equal(jsonpath_eval_first(q, doc, &v), 0);
    assert_null(v);
    assert_int_equal(jsonpath_eval(NULL, doc, 0, &res), CORE_EINVAL);
    jsonpath_destroy(q);

    jsonpath_result_fini(&res);
    jsonpath_destroy(NULL);
    json_decref(doc);
}

/* ---------------------------------------------------------- threading */

struct thread_arg {
    const struct jsonpath *q;
    const json_t *doc;
    int ok;
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    struct jsonpath_result res;

    jsonpath_result_init(&res);
    a->ok = 1;
    for (int i = 0; i < 2000 && a->ok; i++) {
        if (jsonpath_eval(a->q, a->doc, JSONPATH_EVAL_PATHS, &res) != 0 ||
            res.len != 2 ||
            strcmp(json_string_value(res.nodes[0].value), "Evelyn Waugh") != 0 ||
            strcmp(json_string_value(res.nodes[1].value), "Herman Melville") != 0)
            a->ok = 0;
        struct core_buf b;
        core_buf_init(&b);
        jsonpath_node_path(&res, 1, &b);
        if (!b.data || strcmp(b.data, "$['store']['book'][2]['author']") != 0)
            a->ok = 0;
        core_buf_fini(&b);
    }
    jsonpath_result_fini(&res);
    return NULL;
}

static void test_one_query_many_threads(void **state)
{
    enum { N = 4 };
    struct jsonpath *q;
    pthread_t t[N];
    struct thread_arg a[N];
    json_t *doc = json_loads(store, 0, NULL);

    /* A literal regex (compiled once, shared) and a counted sub-query. */
    assert_int_equal(jsonpath_compile("$..book[?match(@.category, 'f.*n') && "
                                      "count(@.*) >= 3].author",
                                      &q, NULL),
                     0);
    for (int i = 0; i < N; i++) {
        a[i] = (struct thread_arg){q, doc, 0};
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, &a[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].ok, 1);
    }
    jsonpath_destroy(q);
    json_decref(doc);
}

/* ----------------------------------------------------------------- CLI */

static void test_cli_exit_codes(void **state)
{
    char path[] = "/tmp/test_jsonpath_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"a\":", 5), 5);
    close(fd);

    char *bad_query[] = {"jsonpath", "$[", path, NULL};
    assert_int_equal(jsonpath_cli_main(3, bad_query), 2);
    char *bad_json[] = {"jsonpath", "$.a", path, NULL};
    assert_int_equal(jsonpath_cli_main(3, bad_json), 2);
    char *usage[] = {"jsonpath", NULL};
    assert_int_equal(jsonpath_cli_main(1, usage), 2);
    unlink(path);
    char *missing[] = {"jsonpath", "$", path, NULL};
    assert_int_equal(jsonpath_cli_main(3, missing), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors_report_position),
        cmocka_unit_test(test_parse_accepts_rfc_whitespace),
        cmocka_unit_test(test_singular),
        cmocka_unit_test(test_name_selector),
        cmocka_unit_test(test_wildcard_selector),
        cmocka_unit_test(test_index_selector),
        cmocka_unit_test(test_slice_selector),
        cmocka_unit_test(test_descendant_segment),
        cmocka_unit_test(test_filter_selector),
        cmocka_unit_test(test_comparisons),
        cmocka_unit_test(test_functions),
        cmocka_unit_test(test_iregexp_translation),
        cmocka_unit_test(test_normalized_paths),
        cmocka_unit_test(test_result_reuse_and_first),
        cmocka_unit_test(test_one_query_many_threads),
        cmocka_unit_test(test_cli_exit_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
