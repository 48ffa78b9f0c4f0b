#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core.h"

static void test_errors_have_names_and_messages(void **state)
{
    (void)state;
    assert_string_equal(core_err_name(CORE_ENOMEM), "CORE_ENOMEM");
    assert_string_equal(core_strerror(CORE_ENOTFOUND), "not found");
    assert_string_equal(core_strerror(CORE_OK), "success");
    assert_string_equal(core_strerror(-9999), "unknown error");
}

static void test_uuid7_format_and_order(void **state)
{
    (void)state;
    char prev[CORE_UUID_STR_LEN] = "";
    for (int i = 0; i < 10000; i++) {
        char id[CORE_UUID_STR_LEN];
        core_uuid7(id);
        assert_true(core_uuid_valid(id));
        assert_int_equal(id[14], '7');                     /* version */
        assert_non_null(strchr("89ab", id[19]));           /* variant */
        if (prev[0])
            assert_true(strcmp(prev, id) < 0); /* strictly increasing */
        memcpy(prev, id, sizeof id);
    }
}

static void test_uuid7_carries_the_time(void **state)
{
    (void)state;
    int64_t before = core_time_now_ms();
    char id[CORE_UUID_STR_LEN];
    core_uuid7(id);
    char hex[13];
    memcpy(hex, id, 8);
    memcpy(hex + 8, id + 9, 4);
    hex[12] = '\0';
    int64_t ms = strtoll(hex, NULL, 16);
    assert_true(ms >= before && ms <= before + 1000);
}

static void test_uuid_validation(void **state)
{
    (void)state;
    assert_true(core_uuid_valid("0190a4c2-9f1e-7abc-8def-0123456789AB"));
    assert_false(core_uuid_valid("0190a4c2-9f1e-7abc-8def-0123456789A"));
    assert_false(core_uuid_valid("0190a4c2-9f1e-7abc-8def-0123456789ABC"));
    assert_false(core_uuid_valid("0190a4c29f1e-7abc-8def-0123456789AB0"));
    assert_false(core_uuid_valid("g190a4c2-9f1e-7abc-8def-0123456789AB"));
    assert_false(core_uuid_valid(""));
    assert_false(core_uuid_valid(NULL));
    char s[] = "0190A4C2-9F1E-7ABC-8DEF-0123456789AB";
    core_uuid_normalize(s);
    assert_string_equal(s, "0190a4c2-9f1e-7abc-8def-0123456789ab");
}

static void test_time_roundtrip(void **state)
{
    (void)state;
    char out[CORE_TIME_ISO_LEN];
    core_time_format_iso(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    core_time_format_iso(1795435200123LL, out);
    assert_string_equal(out, "2026-11-23T12:00:00.123Z");
    core_time_format_iso(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");

    int64_t ms;
    assert_int_equal(core_time_parse_iso("2026-11-23T12:00:00.123Z", &ms), 0);
    assert_int_equal(ms, 1795435200123LL);
    assert_int_equal(core_time_parse_iso("2026-11-23T14:00:00+02:00", &ms), 0);
    assert_int_equal(ms, 1795435200000LL);
    assert_int_equal(core_time_parse_iso("2026-11-23 12:00:00.1234567z", &ms), 0);
    assert_int_equal(ms, 1795435200123LL);
    assert_int_equal(core_time_parse_iso("2024-02-29T00:00:00Z", &ms), 0);

    /* Every day of four years survives a round trip. */
    for (int64_t t = 1704067200000LL; t < 1704067200000LL + 4 * 366 * 86400000LL;
         t += 86400000LL + 1234) {
        core_time_format_iso(t, out);
        assert_int_equal(core_time_parse_iso(out, &ms), 0);
        assert_int_equal(ms, t);
    }
}

static void test_time_rejects_garbage(void **state)
{
    (void)state;
    int64_t ms;
    const char *bad[] = {"",
                         "2026-11-23",
                         "2026-11-23T12:00:00",
                         "2026-13-01T00:00:00Z",
                         "2026-02-30T00:00:00Z",
                         "2023-02-29T00:00:00Z",
                         "2026-11-23T24:00:00Z",
                         "2026-11-23T12:00:00.Z",
                         "2026-11-23T12:00:00Zjunk",
                         "2026-11-23T12:00:00+2:00",
                         "yesterday"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(core_time_parse_iso(bad[i], &ms), CORE_EPARSE);
    assert_int_equal(core_time_parse_iso("0000-01-01T00:00:00Z", &ms),
                     CORE_ERANGE);
}

static void test_buf_builds_and_escapes(void **state)
{
    (void)state;
    struct core_buf b;
    core_buf_init(&b);
    core_buf_puts(&b, "x=");
    core_buf_json_string(&b, "a\"b\\c\n\x01");
    core_buf_printf(&b, " %d", 42);
    assert_string_equal(b.data, "x=\"a\\\"b\\\\c\\n\\u0001\" 42");
    for (int i = 0; i < 1000; i++)
        core_buf_printf(&b, "%0100d", i);
    assert_int_equal(b.len, strlen(b.data));
    char *s = core_buf_steal(&b);
    assert_non_null(s);
    assert_int_equal(b.len, 0);
    free(s);
    core_buf_fini(&b);
}

static void test_metrics_render(void **state)
{
    (void)state;
    core_metrics_reset();
    const char *labels[] = {"route", NULL};
    struct core_metric *c = core_metric_register(
        "t_requests_total", "Requests.", CORE_METRIC_COUNTER, labels, NULL, 0);
    assert_ptr_equal(c, core_metric_register("t_requests_total", "x",
                                             CORE_METRIC_COUNTER, labels,
                                             NULL, 0));
    core_metric_add(core_metric_series(c, "/a"), 2);
    core_metric_add(core_metric_series(c, "/a"), 1);
    core_metric_add(core_metric_series(c, "/\"b"), 1);
    const double bounds[] = {0.1, 1};
    struct core_metric *h = core_metric_register(
        "t_seconds", "Latency.", CORE_METRIC_HISTOGRAM, NULL, bounds, 2);
    struct core_metric_series *hs = core_metric_series(h);
    core_metric_observe(hs, 0.05);
    core_metric_observe(hs, 0.5);
    core_metric_observe(hs, 5);

    struct core_buf b;
    core_buf_init(&b);
    core_metrics_render(&b);
    assert_non_null(strstr(b.data, "# TYPE t_requests_total counter\n"));
    assert_non_null(strstr(b.data, "t_requests_total{route=\"/a\"} 3\n"));
    assert_non_null(strstr(b.data, "t_requests_total{route=\"/\\\"b\"} 1\n"));
    assert_non_null(strstr(b.data, "t_seconds_bucket{le=\"0.1\"} 1\n"));
    assert_non_null(strstr(b.data, "t_seconds_bucket{le=\"1\"} 2\n"));
    assert_non_null(strstr(b.data, "t_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(b.data, "t_seconds_sum 5.5499999999999998\n"));
    assert_non_null(strstr(b.data, "t_seconds_count 3\n"));
    core_buf_fini(&b);
    core_metrics_reset();
}

struct opts {
    const char *store;
    int64_t port;
    bool demo;
    bool verbose;
};

static const struct core_option opt_table[] = {
    {"store", CORE_OPT_STRING, offsetof(struct opts, store), "sqlite:x.db", 0, 0, "store"},
    {"port", CORE_OPT_INT, offsetof(struct opts, port), "8080", 0, 65535, "port"},
    {"demo", CORE_OPT_BOOL, offsetof(struct opts, demo), "false", 0, 0, "demo"},
    {"verbose", CORE_OPT_BOOL, offsetof(struct opts, verbose), "true", 0, 0, "verbose"},
    {0},
};

static void test_options_defaults_env_and_argv(void **state)
{
    (void)state;
    struct opts o;
    char err[128];
    int next;
    char *argv1[] = {"--port=9000", "--demo", "--no-verbose", "rest", "--port=1"};
    setenv("ARGUS_STORE", "postgres://env", 1);
    setenv("ARGUS_PORT", "7000", 1);
    assert_int_equal(core_options_parse(opt_table, &o, 5, argv1, &next, err,
                                        sizeof err), 0);
    assert_string_equal(o.store, "postgres://env"); /* env over default */
    assert_int_equal(o.port, 9000);                  /* argv over env */
    assert_true(o.demo);
    assert_false(o.verbose);
    assert_int_equal(next, 3); /* stops at the first positional argument */

    char *argv2[] = {"--store", "sqlite:y.db", "--demo=false"};
    assert_int_equal(core_options_parse(opt_table, &o, 3, argv2, &next, err,
                                        sizeof err), 0);
    assert_string_equal(o.store, "sqlite:y.db");
    assert_false(o.demo);
    unsetenv("ARGUS_STORE");
    unsetenv("ARGUS_PORT");
}

static void test_options_reject_bad_input(void **state)
{
    (void)state;
    struct opts o;
    char err[128];
    int next;
    char *bad_int[] = {"--port=70000"};
    assert_int_equal(core_options_parse(opt_table, &o, 1, bad_int, &next, err,
                                        sizeof err), CORE_EINVAL);
    assert_non_null(strstr(err, "--port must be an integer from 0 to 65535"));
    char *unknown[] = {"--colour=red"};
    assert_int_equal(core_options_parse(opt_table, &o, 1, unknown, &next, err,
                                        sizeof err), CORE_EINVAL);
    assert_non_null(strstr(err, "unknown option --colour"));
    char *missing[] = {"--store"};
    assert_int_equal(core_options_parse(opt_table, &o, 1, missing, &next, err,
                                        sizeof err), CORE_EINVAL);
    char *bad_bool[] = {"--demo=maybe"};
    assert_int_equal(core_options_parse(opt_table, &o, 1, bad_bool, &next, err,
                                        sizeof err), CORE_EINVAL);
    char *no_int[] = {"--no-port"};
    assert_int_equal(core_options_parse(opt_table, &o, 1, no_int, &next, err,
                                        sizeof err), CORE_EINVAL);
    setenv("ARGUS_PORT", "eighty", 1);
    assert_int_equal(core_options_parse(opt_table, &o, 0, NULL, &next, err,
                                        sizeof err), CORE_EINVAL);
    assert_non_null(strstr(err, "ARGUS_PORT"));
    unsetenv("ARGUS_PORT");
}

int main(void)
{
    assert_int_equal(core_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_have_names_and_messages),
        cmocka_unit_test(test_uuid7_format_and_order),
        cmocka_unit_test(test_uuid7_carries_the_time),
        cmocka_unit_test(test_uuid_validation),
        cmocka_unit_test(test_time_roundtrip),
        cmocka_unit_test(test_time_rejects_garbage),
        cmocka_unit_test(test_buf_builds_and_escapes),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_options_defaults_env_and_argv),
        cmocka_unit_test(test_options_reject_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
