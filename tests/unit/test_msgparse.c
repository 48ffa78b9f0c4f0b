/* The ingest parser (src/pipeline/msgparse.c): every rule, checked both
 * against what we expect and against jansson + the normalize it replaced
 * (msgparse_diff), and the fuzzer's seeds and finds replayed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgparse_diff.h"
#include "pipeline.h"

#define DEV "0190a4c2-9f1e-7abc-8def-0123456789ab"
#define NOW 1795435200000LL
#define MSG(metrics) "{\"deviceId\":\"" DEV "\",\"metrics\":" metrics "}"

static struct pipeline_limits lim;

static void agree(const char *text, size_t len)
{
    char why[512];
    if (msgparse_diff(text, len, why, sizeof why))
        fail_msg("%.200s: %s", text, why);
}

/* One message: the outcome, the reason, and agreement with jansson. */
static int one(const char *text, struct pipeline_msg *m, char *reason)
{
    agree(text, strlen(text));
    return pipeline_parse_one(text, strlen(text), NOW, &lim, m, reason, 256);
}

static void refused(const char *text, int rc, const char *why)
{
    struct pipeline_msg m;
    char reason[256];
    int got = one(text, &m, reason);
    if (got == CORE_OK)
        pipeline_msg_fini(&m);
    if (got != rc)
        fail_msg("%s: rc %d, want %d (%s)", text, got, rc, reason);
    if (why && !strstr(reason, why))
        fail_msg("%s: reason '%s' lacks '%s'", text, reason, why);
}

static double num_of(const char *metric_value)
{
    char text[512];
    snprintf(text, sizeof text, MSG("{\"x\":%s}"), metric_value);
    struct pipeline_msg m;
    char reason[256];
    if (one(text, &m, reason) != CORE_OK)
        fail_msg("%s refused: %s", text, reason);
    double v = m.metrics[0].num;
    pipeline_msg_fini(&m);
    return v;
}

static void test_json_strictness(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "   ", "1", "\"x\"", "null", "{", "[", "{}x", "[]]", "{} {}",
        MSG("{\"x\":NaN}"), MSG("{\"x\":Infinity}"), MSG("{\"x\":-Infinity}"),
        MSG("{\"x\":01}"), MSG("{\"x\":-01}"), MSG("{\"x\":1.}"),
        MSG("{\"x\":.5}"), MSG("{\"x\":1e}"), MSG("{\"x\":1e+}"),
        MSG("{\"x\":+1}"), MSG("{\"x\":-}"), MSG("{\"x\":0x10}"),
        MSG("{\"x\":1,}"), "[" MSG("{\"x\":1}") ",]", MSG("{\"x\":[1,]}"),
        MSG("{\"x\":tru}"), MSG("{\"x\":truex}"), MSG("{\"x\":nul}"),
        MSG("{\"x\":'a'}"), MSG("{\"x\":\"a\tb\"}"), MSG("{\"x\":\"a\nb\"}"),
        MSG("{\"x\":\"\\x\"}"), MSG("{\"x\":\"\\u12\"}"),
        MSG("{\"x\":\"\\u12G4\"}"), MSG("{\"x\":\"\\u0000\"}"),
        MSG("{\"x\\u0000\":1}"), MSG("{\"x\":\"\\uD800\"}"),
        MSG("{\"x\":\"\\uDC00\"}"), MSG("{\"x\":\"\\uD800\\u0041\"}"),
        MSG("{\"x\":\"\\uD800\\n\"}"), MSG("{\"x\":\"\xC0\xAF\"}"),
        MSG("{\"x\":\"\xE0\x80\xAF\"}"), MSG("{\"x\":\"\xED\xA0\x80\"}"),
        MSG("{\"x\":\"\xF4\x90\x80\x80\"}"), MSG("{\"x\":\"\xF5\x80\x80\x80\"}"),
        MSG("{\"x\":\"\x80\"}"), MSG("{\"x\":\"\xC3\"}"), "\xEF\xBB\xBF{}",
        MSG("{\"x\":1e309}"), MSG("{\"x\":-1e309}"),
        MSG("{\"x\":9223372036854775808}"),
        MSG("{\"x\":-9223372036854775809}"),
        MSG("{\"x\":123456789012345678901234567890}"),
        "{\"deviceId\":1,\"deviceId\":2}", MSG("{\"x\":1,\"x\":2}"),
        MSG("{\"x\":1,\"\\u0078\":2}"),
        "{\"metadata\":{\"a\":{\"b\":1,\"b\":2}},\"metrics\":{}}",
        MSG("{\"x\":{\"a\":[{\"k\":1,\"k\":1}]}}"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        agree(bad[i], strlen(bad[i]));
        refused(bad[i], CORE_EPARSE, NULL);
    }
    /* A raw NUL byte is never JSON, not even where jansson skips it
     * (after a number or a literal). */
    const char *nuls[] = {"[1\0]", "[true\0,1]", "{\"a\":1.5\0}", "[\0]", "{}\0"};
    const size_t nul_lens[] = {5, 10, 10, 3, 3};
    for (size_t i = 0; i < sizeof nuls / sizeof *nuls; i++) {
        struct pipeline_msg m;
        char reason[256];
        agree(nuls[i], nul_lens[i]);
        assert_int_equal(pipeline_parse_one(nuls[i], nul_lens[i], NOW, &lim, &m,
                                            reason, sizeof reason),
                         CORE_EPARSE);
    }
    const char nul[] = MSG("{\"x\":\"a\0b\"}");
    agree(nul, sizeof nul - 1);
    struct pipeline_msg m;
    char reason[256];
    assert_int_equal(pipeline_parse_one(nul, sizeof nul - 1, NOW, &lim, &m,
                                        reason, sizeof reason),
                     CORE_EPARSE);
    /* Where: line and column. */
    const char *text = "{\n  \"deviceId\": x}";
    assert_int_equal(pipeline_parse_one(text, strlen(text), NOW, &lim, &m,
                                        reason, sizeof reason),
                     CORE_EPARSE);
    assert_non_null(strstr(reason, "line 2, column 15"));
}

static void test_strings_decoded(void **state)
{
    (void)state;
    struct pipeline_msg m;
    char reason[256];
    assert_int_equal(one(MSG("{\"a\\u00e9\\/\":\"\\\"\\\\\\b\\f\\n\\r\\t\","
                             "\"\\uD83D\\uDE00\":\"\xF0\x9F\x98\x80\\u20AC\","
                             "\"\xE2\x82\xAC\":\"\x7F\"}"),
                         &m, reason),
                     CORE_OK);
    assert_int_equal(m.nmetrics, 3);
    assert_string_equal(m.metrics[0].key, "a\xC3\xA9/");
    assert_string_equal(m.metrics[0].str, "\"\\\b\f\n\r\t");
    assert_string_equal(m.metrics[1].key, "\xF0\x9F\x98\x80");
    assert_string_equal(m.metrics[1].str, "\xF0\x9F\x98\x80\xE2\x82\xAC");
    assert_string_equal(m.metrics[2].key, "\xE2\x82\xAC");
    pipeline_msg_fini(&m);
    /* A control character decoded from an escape is no printable name. */
    refused(MSG("{\"a\\nb\":1}"), CORE_EINVAL, "printable");
}

static void test_numbers_exact(void **state)
{
    (void)state;
    double v = num_of("-0");
    assert_false(signbit(v)); /* an integer: jansson's (double)0 */
    v = num_of("-0.0");
    assert_true(signbit(v) && v == 0);
    v = num_of("-0e5");
    assert_true(signbit(v));
    assert_true(num_of("0.1") == 0.1);
    assert_true(num_of("1e-400") == 0);
    assert_true(num_of("4.9406564584124654e-324") == 4.9406564584124654e-324);
    assert_true(num_of("1.7976931348623157e308") == 1.7976931348623157e308);
    assert_true(num_of("9223372036854775807") == 9223372036854775807.0);
    assert_true(num_of("-9223372036854775808") == -9223372036854775808.0);
    assert_true(num_of("9007199254740993") == 9007199254740992.0);
    assert_true(num_of("9007199254740993.0") == 9007199254740992.0);
    assert_true(num_of("123456789012345678901234567890.0") == 1.2345678901234568e29);
    assert_true(num_of("0.000000000000000000000000000001") == 1e-30);
    assert_true(num_of("2.2250738585072011e-308") == 2.2250738585072011e-308);
    assert_true(num_of("1E+2") == 100);
    /* Halfway cases strtod rounds to even. */
    assert_true(num_of("9007199254740993e0") == 9007199254740992.0);
    assert_true(num_of("1.00000000000000011102230246251565404236316680908203125") ==
                1.0);
}

static void test_depth(void **state)
{
    (void)state;
    /* jansson: at most 2048 nested values, the top one included. */
    size_t cap = 8192;
    char *text = malloc(cap);
    for (int depth = 2045; depth <= 2049; depth++) {
        int at = snprintf(text, cap, "{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},"
                                     "\"metadata\":");
        int arrays = depth - 2; /* top object 1, metadata 2 */
        for (int i = 0; i < arrays; i++)
            text[at++] = '[';
        for (int i = 0; i < arrays; i++)
            text[at++] = ']';
        snprintf(text + at, cap - at, "}");
        agree(text, strlen(text));
    }
    free(text);
}

static void test_message_rules(void **state)
{
    (void)state;
    struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"[1]", "must be a JSON object"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"extra\":1,\"more\":2}",
         "unknown field 'extra'"},
        {"{\"zzz\":{\"a\":1},\"deviceId\":5}", "unknown field 'zzz'"},
        {"{\"metrics\":{\"x\":1}}", "deviceId must be"},
        {"{\"deviceId\":\"" DEV "x\",\"metrics\":{\"x\":1}}", "deviceId must be"},
        {"{\"deviceId\":\"" DEV "\"}", "metrics must be an object"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":[]}", "metrics must be an object"},
        {MSG("{}"), "metrics is empty"},
        {MSG("{\"x\":null}"), "(got null)"},
        {MSG("{\"x\":[1]}"), "(got an array)"},
        {MSG("{\"x\":{}}"), "(got an object)"},
        {MSG("{\"\":1}"), "metric name ''"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"timestamp\":true}",
         "timestamp must be"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"timestamp\":-1}",
         "not epoch"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"timestamp\":1e17}",
         "not epoch"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"timestamp\":\"soon\"}",
         "'soon' is not an RFC 3339"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"timestamp\":"
         "\"2099-01-01T00:00:00Z\"}",
         "in the future"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"timestamp\":5}",
         "before 2000"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"metadata\":[]}",
         "metadata must be an object"},
        /* The order of the checks: metadata before the metrics' own. */
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":null},\"metadata\":1}",
         "metadata must be"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        refused(cases[i].text, CORE_EINVAL, cases[i].why);
    struct pipeline_msg m;
    char reason[256];
    assert_int_equal(one("{\"timestamp\":null,\"metadata\":null,\"metrics\":{\"x\":"
                         "true,\"y\":false},\"deviceId\":\"0190A4C2-9F1E-7ABC-"
                         "8DEF-0123456789AB\"}",
                         &m, reason),
                     CORE_OK);
    assert_string_equal(m.device_id, DEV);
    assert_int_equal(m.ts_ms, NOW);
    assert_true(m.metrics[0].type == TSDB_BOOL && m.metrics[0].num == 1);
    assert_true(m.metrics[1].type == TSDB_BOOL && m.metrics[1].num == 0);
    assert_int_equal(m.metrics_text_len, strlen("{\"x\":true,\"y\":false}"));
    assert_memory_equal(m.metrics_text, "{\"x\":true,\"y\":false}",
                        m.metrics_text_len);
    pipeline_msg_fini(&m);
}

static void test_limits(void **state)
{
    (void)state;
    struct pipeline_limits saved = lim;
    lim = (struct pipeline_limits){.max_metrics = 2, .max_key_len = 3,
                                   .max_string_len = 4, .max_metadata = 20};
    pipeline_limits_default(&lim);
    refused(MSG("{\"a\":1,\"b\":2,\"c\":3}"), CORE_EINVAL, "3 metrics in one");
    refused(MSG("{\"abcd\":1}"), CORE_EINVAL, "1 to 3 printable");
    refused(MSG("{\"a\":\"12345\"}"), CORE_EINVAL, "at most 4 bytes");
    refused(MSG("{\"a\":\"\xE2\x82\xAC\xE2\x82\xAC\"}"), CORE_EINVAL,
            "at most 4 bytes");
    /* Metadata is measured as jansson's compact dump. */
    lim.max_metadata = 1;
    const struct {
        const char *meta;
        size_t size;
    } sizes[] = {
        {"{\"a\":\"bcdefghijklmn\"}", 21},         /* as sent */
        {"{ \"a\" : \"bcdefghijklmn\" }", 21},     /* whitespace does not count */
        {"{\"a\":\"\\u0062cdefghijklmn\"}", 21},   /* escapes as decoded */
        {"{\"a\":\"\\n\\ncdefghijkl\"}", 22},      /* re-escaped */
        {"{\"a\":\"\\u0001\\/\"}", 15},              /* \u0001, / as is */
        {"{\"a\":[1,2,3,4,5,6,78]}", 22},
        {"{\"a\":[-0,-0,-0,-0,1]}", 17},           /* integers as %lld */
        {"{\"a\":[1e2,2e1,1e0]}", 22},             /* reals: 100.0 */
        {"{\"a\":[0.5,1.0E+20]}", 16},             /* 1e20 */
        {"{\"a\":[0.1]}", 27},                     /* 0.10000000000000001 */
        {"{\"\\u00e9\":{},\"b\":[true,false,null]}", 31},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char text[256], want[64];
        snprintf(text, sizeof text,
                 "{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"metadata\":%s}",
                 sizes[i].meta);
        snprintf(want, sizeof want, "metadata is %zu bytes; at most 1",
                 sizes[i].size);
        refused(text, CORE_EINVAL, want);
    }
    lim = saved;
}

static void test_many_keys(void **state)
{
    (void)state;
    /* Past 16 keys duplicates are found by hash: at any position. */
    char text[16384];
    for (int dup = -1; dup < 40; dup += 7) {
        int at = snprintf(text, sizeof text, "{\"deviceId\":\"" DEV "\",\"metrics\":{");
        for (int i = 0; i < 40; i++)
            at += snprintf(text + at, sizeof text - at, "%s\"m%d\":%d", i ? "," : "",
                           i == dup ? 3 : i, i);
        at += snprintf(text + at, sizeof text - at, "},\"metadata\":{");
        for (int i = 0; i < 40; i++)
            at += snprintf(text + at, sizeof text - at, "%s\"k%d\":{\"a\":%d,\"b\":1}",
                           i ? "," : "", i, i);
        snprintf(text + at, sizeof text - at, "}}");
        agree(text, strlen(text));
        struct pipeline_msg m;
        char reason[256];
        int rc = pipeline_parse_one(text, strlen(text), NOW, &lim, &m, reason,
                                    sizeof reason);
        if (rc != (dup < 0 ? CORE_OK : CORE_EPARSE))
            fail_msg("dup %d: rc %d (%s)", dup, rc, reason);
        if (rc == CORE_OK) {
            assert_int_equal(m.nmetrics, 40);
            pipeline_msg_fini(&m);
        }
    }
}

struct batch_seen {
    size_t ok, bad;
    char payload[4][128];
};

static int batch_cb(size_t index, struct pipeline_msg *m, const char *reason,
                    void *ctx)
{
    struct batch_seen *b = ctx;
    if (m) {
        if (index < 4)
            snprintf(b->payload[index], sizeof b->payload[index], "%s", m->payload);
        b->ok++;
        pipeline_msg_fini(m);
    } else {
        b->bad++;
    }
    return 0;
}

static void test_batches(void **state)
{
    (void)state;
    struct pipeline_parser *p;
    assert_int_equal(pipeline_parser_create(&p), CORE_OK);
    const char *text = " [ " MSG("{\"x\":1}") " ,\n" MSG("{\"y\":[ 2 ]}") ",\t"
                       MSG("{ \"z\" : \"a,]\" }") " ] ";
    agree(text, strlen(text));
    struct batch_seen seen = {0};
    struct pipeline_parse_args a = {text, strlen(text), true, 1000, NOW, &lim,
                                    batch_cb, &seen};
    size_t n;
    bool array;
    char err[160];
    assert_int_equal(pipeline_parse(p, &a, &n, &array, err, sizeof err), CORE_OK);
    assert_true(array);
    assert_int_equal(n, 3);
    assert_int_equal(seen.ok, 2);
    assert_int_equal(seen.bad, 1);
    assert_string_equal(seen.payload[0], MSG("{\"x\":1}"));
    assert_string_equal(seen.payload[2], MSG("{ \"z\" : \"a,]\" }"));
    /* Past max_msgs: counted and checked as JSON, not handed over. */
    memset(&seen, 0, sizeof seen);
    a.max_msgs = 1;
    assert_int_equal(pipeline_parse(p, &a, &n, &array, err, sizeof err), CORE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(seen.ok + seen.bad, 1);
    const char *broken = "[" MSG("{\"x\":1}") "," MSG("{\"x\":1,\"x\":2}") "]";
    a = (struct pipeline_parse_args){broken, strlen(broken), true, 1000, NOW, &lim,
                                     batch_cb, &seen};
    assert_int_equal(pipeline_parse(p, &a, &n, &array, err, sizeof err),
                     CORE_EPARSE);
    assert_non_null(strstr(err, "duplicate object key"));
    agree("[]", 2);
    pipeline_parser_destroy(p);
}

/* Every seed and every find of fuzz_msgparse agrees. */
static void test_corpus(void **state)
{
    (void)state;
    const char *src = getenv("ARGUS_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/msgparse", src ? src : ".");
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    size_t files = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static char buf[1 << 20];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        char why[512];
        if (msgparse_diff(buf, len, why, sizeof why))
            fail_msg("%s: %s", e->d_name, why);
        files++;
    }
    closedir(d);
    assert_true(files > 0);
}

int main(void)
{
    pipeline_limits_default(&lim);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_strictness),
        cmocka_unit_test(test_strings_decoded),
        cmocka_unit_test(test_numbers_exact),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_message_rules),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
