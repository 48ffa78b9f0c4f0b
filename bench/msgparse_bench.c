/* The ingest parser alone: ns per message for a batch of 100 messages of 5
 * metrics (the body `argus sim --batch 100 --metrics 5` sends), parsed the
 * old way (json_loadb with JSON_REJECT_DUPLICATES, the jansson normalize,
 * a payload copy per message, json_decref) and the new (pipeline_parse, one
 * block per message). Usage: msgparse_bench [SECONDS_PER_RUN] [RUNS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "normalize_ref.h"
#include "pipeline.h"

#define NOW 1795435200000LL
#define BATCH 100

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static struct pipeline_limits lim;

static void old_way(const char *text, size_t len)
{
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    if (!doc)
        abort();
    for (size_t i = 0; i < json_array_size(doc); i++) {
        struct ref_msg m;
        char reason[256];
        json_t *e = json_array_get(doc, i);
        if (ref_normalize(e, NOW, &lim, &m, reason, sizeof reason))
            abort();
        /* ingest kept each message's text slice as its payload */
        char *payload = strndup(text, 180);
        free(payload);
        ref_msg_fini(&m);
    }
    json_decref(doc);
}

static int fini_cb(size_t index, struct pipeline_msg *m, const char *reason,
                   void *ctx)
{
    if (!m)
        abort();
    pipeline_msg_fini(m);
    return 0;
}

static void new_way(struct pipeline_parser *p, const char *text, size_t len)
{
    struct pipeline_parse_args a = {text, len, true, 1000, NOW, &lim, fini_cb,
                                    NULL};
    size_t n;
    bool array;
    if (pipeline_parse(p, &a, &n, &array, NULL, 0) || n != BATCH)
        abort();
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    int runs = argc > 2 ? atoi(argv[2]) : 3;
    pipeline_limits_default(&lim);
    struct core_buf body;
    core_buf_init(&body);
    core_buf_puts(&body, "[");
    for (int i = 0; i < BATCH; i++) {
        core_buf_printf(&body,
                        "%s{\"deviceId\":\"0190a4c2-9f1e-7abc-8def-%012d\","
                        "\"timestamp\":%lld,\"metrics\":{",
                        i ? "," : "", i, (long long)(NOW - 1000 * i));
        for (int x = 0; x < 5; x++)
            core_buf_printf(&body, "%s\"m%d\":%.3f", x ? "," : "", x,
                            (i * 5 + x) * 1.125 - 40);
        core_buf_puts(&body, "}}");
    }
    core_buf_puts(&body, "]");
    struct pipeline_parser *p;
    if (pipeline_parser_create(&p))
        return 1;
    printf("msgparse: a batch of %d messages x 5 metrics (%zu bytes)\n", BATCH,
           body.len);
    for (int r = 0; r < runs; r++) {
        double t0 = now_s(), t;
        long n = 0;
        do {
            for (int k = 0; k < 100; k++)
                old_way(body.data, body.len);
            n += 100;
        } while ((t = now_s()) - t0 < secs);
        double old_ns = (t - t0) / (double)(n * BATCH) * 1e9;
        t0 = now_s();
        n = 0;
        do {
            for (int k = 0; k < 100; k++)
                new_way(p, body.data, body.len);
            n += 100;
        } while ((t = now_s()) - t0 < secs);
        double new_ns = (t - t0) / (double)(n * BATCH) * 1e9;
        printf("  run %d: jansson+normalize %6.0f ns/message   msgparse %6.0f "
               "ns/message   (%.1fx)\n",
               r + 1, old_ns, new_ns, old_ns / new_ns);
    }
    pipeline_parser_destroy(p);
    core_buf_fini(&body);
    return 0;
}
