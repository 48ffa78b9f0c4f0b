/*
 * jsonschema_bench: validations per second of a typical device message
 * against a typical device-type schema, on the fast (valid/invalid) path
 * and the detailed (errors collected) path. Prints the median of several
 * repeats.
 *
 *   jsonschema_bench [ITERATIONS [REPEATS]]
 */
#include "jsonschema.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const schema_text =
    "{"
    "\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
    "\"$id\":\"https://argus.example/device-types/env-sensor/v3\","
    "\"type\":\"object\","
    "\"required\":[\"deviceId\",\"timestamp\",\"metrics\"],"
    "\"additionalProperties\":false,"
    "\"properties\":{"
    " \"deviceId\":{\"type\":\"string\",\"pattern\":\"^[a-z0-9][a-z0-9-]{2,63}$\"},"
    " \"timestamp\":{\"type\":\"string\",\"format\":\"date-time\"},"
    " \"metrics\":{\"type\":\"object\","
    "  \"required\":[\"temperature\",\"humidity\"],"
    "  \"additionalProperties\":false,"
    "  \"properties\":{"
    "   \"temperature\":{\"type\":\"number\",\"minimum\":-40,\"maximum\":125},"
    "   \"humidity\":{\"type\":\"number\",\"minimum\":0,\"maximum\":100},"
    "   \"pressure\":{\"type\":\"number\",\"minimum\":300,\"maximum\":1100},"
    "   \"battery\":{\"type\":\"number\",\"minimum\":0,\"maximum\":100},"
    "   \"rssi\":{\"type\":\"integer\",\"minimum\":-150,\"maximum\":0}}},"
    " \"metadata\":{\"type\":\"object\","
    "  \"properties\":{"
    "   \"firmware\":{\"type\":\"string\",\"maxLength\":32},"
    "   \"location\":{\"type\":\"string\",\"maxLength\":64}}}"
    "}}";

static const char *const valid_text =
    "{\"deviceId\":\"sensor-0042\",\"timestamp\":\"2026-11-23T12:00:00.250Z\","
    "\"metrics\":{\"temperature\":21.5,\"humidity\":45.2,\"pressure\":1013.25,"
    "\"battery\":87,\"rssi\":-67},"
    "\"metadata\":{\"firmware\":\"1.4.2\",\"location\":\"hall-b\"}}";

/* Out of range, a stray metric and a bad device id. */
static const char *const invalid_text =
    "{\"deviceId\":\"Sensor_42\",\"timestamp\":\"2026-11-23T12:00:00.250Z\","
    "\"metrics\":{\"temperature\":150,\"humidity\":45.2,\"pressure\":1013.25,"
    "\"battery\":87,\"rssi\":-67,\"co2\":400},"
    "\"metadata\":{\"firmware\":\"1.4.2\",\"location\":\"hall-b\"}}";

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median nanoseconds per validation over repeats runs of n validations. */
static double measure(const struct jsonschema *s, const json_t *doc,
                      const struct jsonschema_options *opts, bool expect,
                      long n, int repeats)
{
    double *ns = calloc((size_t)repeats, sizeof *ns);
    for (int r = 0; r < repeats; r++) {
        uint64_t t0 = core_time_mono_ns();
        for (long i = 0; i < n; i++) {
            struct jsonschema_result res;
            if (jsonschema_validate(s, doc, opts, &res) != 0 ||
                res.valid != expect) {
                fprintf(stderr, "unexpected validation outcome\n");
                exit(1);
            }
            jsonschema_result_fini(&res);
        }
        ns[r] = (double)(core_time_mono_ns() - t0) / (double)n;
    }
    qsort(ns, (size_t)repeats, sizeof *ns, cmp_double);
    double m = ns[repeats / 2];
    free(ns);
    return m;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int repeats = argc > 2 ? atoi(argv[2]) : 7;
    if (n <= 0 || repeats <= 0)
        return 2;
    json_error_t err;
    json_t *schema = json_loads(schema_text, 0, &err);
    json_t *ok = json_loads(valid_text, 0, &err);
    json_t *bad = json_loads(invalid_text, 0, &err);
    struct jsonschema *s;
    struct jsonschema_compile_error cerr;
    if (!schema || !ok || !bad ||
        jsonschema_compile(NULL, schema, NULL, &s, &cerr) != 0) {
        fprintf(stderr, "setup failed: %s\n", cerr.message);
        return 1;
    }
    uint64_t t0 = core_time_mono_ns();
    for (int i = 0; i < 1000; i++) {
        struct jsonschema *t;
        jsonschema_compile(NULL, schema, NULL, &t, NULL);
        jsonschema_destroy(t);
    }
    double compile_us = (double)(core_time_mono_ns() - t0) / 1000.0 / 1000.0;

    const struct {
        const char *name;
        const json_t *doc;
        struct jsonschema_options opts;
        bool expect;
    } cases[] = {
        {"valid, fast path", ok, {0}, true},
        {"valid, fast path, format asserted", ok, {.format_assert = true}, true},
        {"invalid, fast path", bad, {0}, false},
        {"valid, detailed path", ok, {.detailed = true}, true},
        {"invalid, detailed path (3 errors)", bad, {.detailed = true}, false},
    };
    printf("jsonschema: device message (%zu bytes) against a device-type "
           "schema; median of %d x %ld\n",
           sizeof(valid_text) ? __builtin_strlen(valid_text) : 0, repeats, n);
    printf("  compile: %.1f us per schema\n", compile_us);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        long iters = cases[i].opts.detailed && !cases[i].expect ? n / 10 : n;
        double ns = measure(s, cases[i].doc, &cases[i].opts, cases[i].expect,
                            iters, repeats);
        printf("  %-36s %8.0f ns/validation %12.0f validations/s\n",
               cases[i].name, ns, 1e9 / ns);
    }
    jsonschema_destroy(s);
    json_decref(schema);
    json_decref(ok);
    json_decref(bad);
    return 0;
}
