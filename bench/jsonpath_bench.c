/*
 * JSONPath extraction throughput on a typical device payload.
 *
 *   jsonpath_bench [SECONDS_PER_RUN] [RUNS]
 *
 * For each query: compile once, then evaluate repeatedly into one reused
 * result vector for SECONDS_PER_RUN (default 0.2 s), RUNS times (default
 * 7), and print the median number of evaluations ("extractions") per
 * second, with the number of nodes each extraction yields.
 */
#include <stdio.h>
#include <stdlib.h>

#include "jsonpath.h"

static const char payload[] =
    "{\"deviceId\":\"0193a5c2-7e41-7d3a-9f10-2b6c4e8a1d77\","
    "\"ts\":\"2026-11-23T12:00:00.123Z\",\"fw\":\"2.4.1\",\"seq\":48213,"
    "\"metrics\":{\"temperature\":21.7,\"humidity\":48.2,\"pressure\":1013.2,"
    "\"battery\":{\"voltage\":3.71,\"percent\":82,\"charging\":false}},"
    "\"readings\":["
    "{\"id\":\"t1\",\"value\":19.5,\"unit\":\"C\",\"quality\":\"good\"},"
    "{\"id\":\"t2\",\"value\":22.1,\"unit\":\"C\",\"quality\":\"good\"},"
    "{\"id\":\"t3\",\"value\":24.8,\"unit\":\"C\",\"quality\":\"suspect\"},"
    "{\"id\":\"h1\",\"value\":47.9,\"unit\":\"%\",\"quality\":\"good\"},"
    "{\"id\":\"p1\",\"value\":1013.1,\"unit\":\"hPa\",\"quality\":\"good\"},"
    "{\"id\":\"t4\",\"value\":18.2,\"unit\":\"C\",\"quality\":\"good\"},"
    "{\"id\":\"v1\",\"value\":0.02,\"unit\":\"g\",\"quality\":\"good\"},"
    "{\"id\":\"t5\",\"value\":20.4,\"unit\":\"C\",\"quality\":\"good\"}],"
    "\"sensors\":{\"inlet\":{\"temp\":17.9,\"flow\":3.2},"
    "\"outlet\":{\"temp\":24.3,\"flow\":3.1},"
    "\"board\":{\"temp\":41.0,\"fan\":{\"rpm\":1800,\"temp\":39.5}}},"
    "\"location\":{\"lat\":52.52,\"lon\":13.405,\"alt\":34,\"fix\":\"3d\"},"
    "\"tags\":[\"plant-a\",\"line-3\",\"hvac\"],"
    "\"status\":{\"code\":0,\"message\":\"ok\",\"uptime\":86400}}";

static const char *const queries[] = {
    "$.metrics.temperature",
    "$.readings[*].value",
    "$..temp",
    "$.readings[?@.value > 20].id",
    "$.readings[?match(@.id, 't[0-9]+') && @.quality == 'good'].value",
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.2;
    int runs = argc > 2 ? atoi(argv[2]) : 7;
    json_t *doc = json_loads(payload, 0, NULL);
    struct jsonpath_result res;

    if (!doc || seconds <= 0 || runs < 1 || runs > 101) {
        fprintf(stderr, "usage: jsonpath_bench [SECONDS_PER_RUN] [RUNS<=101]\n");
        return 2;
    }
    jsonpath_result_init(&res);
    printf("payload %zu bytes, median of %d runs of %.2f s\n",
           sizeof payload - 1, runs, seconds);
    printf("%-68s %6s %14s\n", "query", "nodes", "extractions/s");
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        struct jsonpath *q;
        struct jsonpath_error err;
        double rate[101];

        if (jsonpath_compile(queries[i], &q, &err) != 0) {
            fprintf(stderr, "%s: %s at %zu\n", queries[i], err.msg, err.pos);
            return 1;
        }
        for (int r = 0; r < runs; r++) {
            uint64_t start = core_time_mono_ns(), now;
            uint64_t budget = (uint64_t)(seconds * 1e9);
            long n = 0;
            do {
                for (int k = 0; k < 256; k++)
                    if (jsonpath_eval(q, doc, 0, &res) != 0)
                        return 1;
                n += 256;
                now = core_time_mono_ns();
            } while (now - start < budget);
            rate[r] = (double)n / ((double)(now - start) / 1e9);
        }
        qsort(rate, (size_t)runs, sizeof rate[0], cmp_double);
        printf("%-68s %6zu %14.0f\n", queries[i], res.len, rate[runs / 2]);
        jsonpath_destroy(q);
    }
    jsonpath_result_fini(&res);
    json_decref(doc);
    return 0;
}
