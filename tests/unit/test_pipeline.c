#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"
#include "pipeline_internal.h"

#define DEV "0190a4c2-9f1e-7abc-8def-0123456789ab"
#define NOW 1795435200000LL /* 2026-11-23T12:00:00Z */

static struct pipeline_limits lim;

static int norm(const char *text, struct pipeline_msg *m, char *reason)
{
    int rc = pipeline_parse_one(text, strlen(text), NOW, &lim, m, reason, 256);
    assert_int_not_equal(rc, CORE_EPARSE);
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
    const char *text = "{\"deviceId\":\"" DEV "\",\"metrics\":{\"a\":1,"
                       "\"b\":2,\"c\":3,\"d\":4}}";
    assert_int_equal(pipeline_parse_one(text, strlen(text), NOW, &small, &m,
                                        reason, sizeof reason),
                     CORE_EINVAL);
    assert_non_null(strstr(reason, "at most 3"));
    text = "{\"deviceId\":\"" DEV "\",\"metrics\":{\"s\":\"12345\"}}";
    assert_int_equal(pipeline_parse_one(text, strlen(text), NOW, &small, &m,
                                        reason, sizeof reason),
                     CORE_EINVAL);
}

/* The envelope carries the message between stages: what goes in comes
 * out, whatever the body holds; anything else is refused with a reason. */
static void test_envelope_round_trip(void **state)
{
    (void)state;
    struct pipeline_msg m = {.raw_id = "0190A4C2-0000-7000-8000-000000000001",
                             .org_id = "0190a4c2-0000-7000-8000-000000000002",
                             .device_id = DEV,
                             .received_ms = NOW,
                             .transport = "http"};
    const char body[] = "{\"a\":\"line\\nbreak\"}\nsecond line argus1 raw";
    struct core_buf b;
    core_buf_init(&b);
    pipeline__env_encode(&b, PIPELINE_ENV_NORM, &m, body, sizeof body - 1);
    struct pipeline_env e;
    char reason[128];
    assert_int_equal(pipeline__env_decode(b.data, b.len, &e, reason, sizeof reason),
                     CORE_OK);
    assert_int_equal(e.kind, PIPELINE_ENV_NORM);
    assert_string_equal(e.raw_id, "0190a4c2-0000-7000-8000-000000000001");
    assert_string_equal(e.org_id, m.org_id);
    assert_string_equal(e.device_id, DEV);
    assert_int_equal(e.received_ms, NOW);
    assert_string_equal(e.transport, "http");
    assert_int_equal(e.body_len, sizeof body - 1);
    assert_memory_equal(e.body, body, sizeof body - 1);
    /* An empty body is still an envelope. */
    core_buf_reset(&b);
    pipeline__env_encode(&b, PIPELINE_ENV_RAW, &m, "", 0);
    assert_int_equal(pipeline__env_decode(b.data, b.len, &e, reason, sizeof reason),
                     CORE_OK);
    assert_int_equal(e.body_len, 0);
    core_buf_fini(&b);
}

static void test_envelope_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "argus1",
        "{\"deviceId\":1}",
        "argus1 raw\n{}",
        "argus2 raw 0190a4c2-0000-7000-8000-000000000001 "
        "0190a4c2-0000-7000-8000-000000000002 " DEV " 1 http\n{}",
        "argus1 blob 0190a4c2-0000-7000-8000-000000000001 "
        "0190a4c2-0000-7000-8000-000000000002 " DEV " 1 http\n{}",
        "argus1 raw not-a-uuid 0190a4c2-0000-7000-8000-000000000002 " DEV
        " 1 http\n{}",
        "argus1 raw 0190a4c2-0000-7000-8000-000000000001 "
        "0190a4c2-0000-7000-8000-000000000002 " DEV " 1x http\n{}",
        "argus1 raw 0190a4c2-0000-7000-8000-000000000001 "
        "0190a4c2-0000-7000-8000-000000000002 " DEV " 1 pigeon\n{}",
        "argus1 raw 0190a4c2-0000-7000-8000-000000000001 "
        "0190a4c2-0000-7000-8000-000000000002 " DEV " 1 http",
        "argus1 raw 0190a4c2-0000-7000-8000-000000000001 "
        "0190a4c2-0000-7000-8000-000000000002 " DEV " 99999999999999999999 http\n{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct pipeline_env e;
        char reason[128] = "";
        assert_int_equal(pipeline__env_decode(bad[i], strlen(bad[i]), &e, reason,
                                              sizeof reason),
                         CORE_EINVAL);
        assert_true(reason[0] != '\0');
    }
}

/* Bundles: pipeline__publish puts the envelopes of one partition into one
 * bus message (in order); decoding gives every envelope back. */
static void test_bundles(void **state)
{
    (void)state;
    struct bus_config cfg;
    bus_config_init(&cfg);
    cfg.url = "mem";
    cfg.partitions = 4;
    struct bus *bus;
    assert_int_equal(bus_open(&cfg, &bus), CORE_OK);
    assert_int_equal(bus_group_declare(bus, "t.v1", "g"), CORE_OK);
    static const char *const devs[] = {
        "0190a4c2-0000-7000-8000-0000000000a1", "0190a4c2-0000-7000-8000-0000000000a2",
        "0190a4c2-0000-7000-8000-0000000000a3"};
    enum { N = 30 };
    struct core_buf b;
    core_buf_init(&b);
    size_t ends[N];
    const char *keys[N];
    for (int i = 0; i < N; i++) {
        struct pipeline_msg m = {.org_id = "0190a4c2-0000-7000-8000-000000000002",
                                 .received_ms = NOW + i, .transport = "http"};
        snprintf(m.raw_id, sizeof m.raw_id, "0190a4c2-0000-7000-8000-%012d", i);
        snprintf(m.device_id, sizeof m.device_id, "%s", devs[i % 3]);
        char body[32];
        int len = snprintf(body, sizeof body, "{\"n\":%d}", i);
        pipeline__env_encode(&b, PIPELINE_ENV_RAW, &m, body, (size_t)len);
        ends[i] = b.len;
        keys[i] = devs[i % 3];
    }
    assert_int_equal(pipeline__publish(bus, "t.v1", b.data, ends, keys, N), CORE_OK);
    struct bus_consumer *c;
    assert_int_equal(bus_consumer_create(bus, "t.v1", "g", "c1", &c), CORE_OK);
    struct bus_msg msgs[64];
    size_t n = 0;
    assert_int_equal(bus_consumer_consume(c, msgs, 64, 1000, &n), CORE_OK);
    assert_true(n >= 1 && n <= 3); /* one per partition the 3 devices use */
    struct pipeline_env *envs = NULL;
    size_t ne = 0, cap = 0;
    char reason[128];
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pipeline__env_decode_msg(msgs[i].payload, msgs[i].len,
                                                  &envs, &ne, &cap, reason,
                                                  sizeof reason),
                         CORE_OK);
    assert_int_equal(ne, N);
    int last[3] = {-1, -1, -1}, seen = 0;
    for (size_t i = 0; i < ne; i++) {
        int k = atoi(envs[i].raw_id + 24);
        char body[32];
        int len = snprintf(body, sizeof body, "{\"n\":%d}", k);
        assert_int_equal(envs[i].body_len, (size_t)len);
        assert_memory_equal(envs[i].body, body, (size_t)len);
        assert_string_equal(envs[i].device_id, devs[k % 3]);
        assert_true(k > last[k % 3]); /* a device's messages in order */
        last[k % 3] = k;
        seen++;
    }
    assert_int_equal(seen, N);
    bus_consumer_ack(c, msgs, n);
    bus_consumer_destroy(c);

    /* Malformed bundles are refused whole, with a reason. */
    core_buf_reset(&b);
    static const char *const bad[] = {
        "argus1 bundle 0\n",
        "argus1 bundle x\n",
        "argus1 bundle 2\n3\nabc",
        "argus1 bundle 1\n999\nargus1 raw",
        "argus1 bundle 1\n2\n{}",
        "argus1 bundle 99999\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t before = ne;
        reason[0] = '\0';
        assert_int_equal(pipeline__env_decode_msg(bad[i], strlen(bad[i]), &envs,
                                                  &ne, &cap, reason, sizeof reason),
                         CORE_EINVAL);
        assert_int_equal(ne, before);
        assert_true(reason[0] != '\0');
    }
    /* Bytes after the last envelope. */
    struct pipeline_msg m = {.raw_id = "0190a4c2-0000-7000-8000-000000000001",
                             .org_id = "0190a4c2-0000-7000-8000-000000000002",
                             .device_id = DEV, .received_ms = NOW, .transport = "http"};
    struct core_buf one;
    core_buf_init(&one);
    pipeline__env_encode(&one, PIPELINE_ENV_RAW, &m, "{}", 2);
    core_buf_printf(&b, "argus1 bundle 1\n%zu\n", one.len);
    core_buf_append(&b, one.data, one.len);
    assert_int_equal(pipeline__env_decode_msg(b.data, b.len, &envs, &ne, &cap,
                                              reason, sizeof reason),
                     CORE_OK);
    core_buf_putc(&b, 'x');
    assert_int_equal(pipeline__env_decode_msg(b.data, b.len, &envs, &ne, &cap,
                                              reason, sizeof reason),
                     CORE_EINVAL);
    core_buf_fini(&one);
    free(envs);
    core_buf_fini(&b);
    bus_close(bus);
}

static void test_stage_names(void **state)
{
    (void)state;
    unsigned mask;
    char err[160];
    assert_int_equal(pipeline_stages_parse("archive,device-writer", &mask, err,
                                           sizeof err),
                     CORE_OK);
    assert_int_equal(mask, PIPELINE_STAGE_ARCHIVE | PIPELINE_STAGE_DEVICE_WRITER);
    assert_int_equal(pipeline_stages_parse("all", &mask, err, sizeof err), CORE_OK);
    assert_int_equal(mask, PIPELINE_STAGE_ALL);
    assert_int_equal(pipeline_stages_parse("normalize,,archive", &mask, err,
                                           sizeof err),
                     CORE_EINVAL);
    assert_int_equal(pipeline_stages_parse("archiver", &mask, err, sizeof err),
                     CORE_EINVAL);
    assert_non_null(strstr(err, "archiver"));
    assert_int_equal(pipeline_stages_parse("", &mask, err, sizeof err), CORE_EINVAL);
}

int main(void)
{
    pipeline_limits_default(&lim);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_the_plan_format),
        cmocka_unit_test(test_epoch_units_and_default_time),
        cmocka_unit_test(test_rejects_with_reasons),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_envelope_round_trip),
        cmocka_unit_test(test_envelope_refusals),
        cmocka_unit_test(test_bundles),
        cmocka_unit_test(test_stage_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
