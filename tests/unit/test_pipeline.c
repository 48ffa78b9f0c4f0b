#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pipeline.h"

#define DEV "0190a4c2-9f1e-7abc-8def-0123456789ab"
#define NOW 1795435200000LL /* 2026-11-23T12:00:00Z */

static struct pipeline_limits lim;

static int norm(const char *text, struct pipeline_msg *m, char *reason)
{
    json_error_t e;
    json_t *doc = json_loads(text, 0, &e);
    assert_non_null(doc);
    int rc = pipeline_normalize(doc, NOW, &lim, m, reason, 256);
    json_decref(doc);
    return rc;
}

static void test_accepts_the_plan_format(void **state)
{
    (void)state;
    struct pipeline_msg m;
    char reason[256];
    assert_int_equal(norm("{\"deviceId\":\"" DEV "\",\"metrics\":{\"temp\":21.5,"
                          "\"door\":true,\"mode\":\"eco\"},\"timestamp\":"
                          "\"2026-11-23T11:59:00Z\",\"metadata\":{\"fw\":\"1\"}}",
                          &m, reason),
                     0);
    assert_string_equal(m.device_id, DEV);
    assert_int_equal(m.ts_ms, NOW - 60000);
    assert_int_equal(m.nmetrics, 3);
    assert_string_equal(m.metrics[0].key, "temp");
    assert_int_equal(m.metrics[0].type, TSDB_NUMBER);
    assert_true(m.metrics[0].num == 21.5);
    assert_int_equal(m.metrics[1].type, TSDB_BOOL);
    assert_true(m.metrics[1].num == 1);
    assert_int_equal(m.metrics[2].type, TSDB_STRING);
    assert_string_equal(m.metrics[2].str, "eco");
    pipeline_msg_fini(&m);
}

static void test_epoch_units_and_default_time(void **state)
{
    (void)state;
    struct pipeline_msg m;
    char reason[256];
    const char *fmt = "{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"timestamp\":%s}";
    const struct {
        const char *ts;
        int64_t want;
    } cases[] = {
        {"1795435140", NOW - 60000},        /* seconds */
        {"1795435140.5", NOW - 59500},      /* fractional seconds */
        {"1795435140000", NOW - 60000},     /* milliseconds */
        {"1795435140000000", NOW - 60000},  /* microseconds */
        {"null", NOW},                      /* receive time */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, fmt, cases[i].ts);
        assert_int_equal(norm(text, &m, reason), 0);
        assert_int_equal(m.ts_ms, cases[i].want);
        pipeline_msg_fini(&m);
    }
    assert_int_equal(norm("{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1}}", &m,
                          reason),
                     0);
    assert_int_equal(m.ts_ms, NOW);
    pipeline_msg_fini(&m);
}

static void test_rejects_with_reasons(void **state)
{
    (void)state;
    struct pipeline_msg m;
    char reason[256];
    const struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"[1]", "must be a JSON object"},
        {"{\"metrics\":{\"x\":1}}", "deviceId"},
        {"{\"deviceId\":\"nope\",\"metrics\":{\"x\":1}}", "deviceId"},
        {"{\"deviceId\":\"" DEV "\"}", "metrics must be an object"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{}}", "metrics is empty"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":[1]}", "metrics must be an object"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":null}}", "got null"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":[1]}}", "got an array"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":{\"y\":1}}}", "got an object"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"\":1}}", "metric name"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"extra\":1}", "unknown field 'extra'"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"timestamp\":\"yesterday\"}", "RFC 3339"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"timestamp\":\"2027-01-01T00:00:00Z\"}", "in the future"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"timestamp\":\"1970-01-02T00:00:00Z\"}", "before 2000"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"timestamp\":-5}", "epoch"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"timestamp\":1e30}", "epoch"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"timestamp\":true}", "RFC 3339 string or an epoch"},
        {"{\"deviceId\":\"" DEV "\",\"metrics\":{\"x\":1},\"metadata\":[]}", "metadata must be an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reason[0] = '\0';
        assert_int_equal(norm(cases[i].text, &m, reason), CORE_EINVAL);
        if (!strstr(reason, cases[i].why))
            fail_msg("case %zu: reason '%s' lacks '%s'", i, reason, cases[i].why);
    }
}

static void test_limits(void **state)
{
    (void)state;
    struct pipeline_limits small = {.max_metrics = 3, .max_string_len = 4};
    pipeline_limits_default(&small);
    struct pipeline_msg m;
    char reason[256];
    json_t *doc = json_loads("{\"deviceId\":\"" DEV "\",\"metrics\":{\"a\":1,"
                             "\"b\":2,\"c\":3,\"d\":4}}",
                             0, NULL);
    assert_int_equal(pipeline_normalize(doc, NOW, &small, &m, reason, sizeof reason),
                     CORE_EINVAL);
    assert_non_null(strstr(reason, "at most 3"));
    json_decref(doc);
    doc = json_loads("{\"deviceId\":\"" DEV "\",\"metrics\":{\"s\":\"12345\"}}", 0,
                     NULL);
    assert_int_equal(pipeline_normalize(doc, NOW, &small, &m, reason, sizeof reason),
                     CORE_EINVAL);
    json_decref(doc);
}

int main(void)
{
    pipeline_limits_default(&lim);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_the_plan_format),
        cmocka_unit_test(test_epoch_units_and_default_time),
        cmocka_unit_test(test_rejects_with_reasons),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
