/* libFuzzer: an ingest body (one message or an array) through the ingest
 * parser. Whatever the input, each message is either accepted with sane
 * fields or refused with a reason; nothing crashes or leaks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

#define NOW 1795435200000LL

static int check_cb(size_t index, struct pipeline_msg *m, const char *reason,
                    void *ctx)
{
    const struct pipeline_limits *lim = ctx;
    if (!m) {
        if (!reason || !reason[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    if (m->nmetrics == 0 || m->nmetrics > lim->max_metrics ||
        m->ts_ms > NOW + lim->max_future_ms || !core_uuid_valid(m->device_id) ||
        strlen(m->payload) != m->payload_len)
        abort();
    pipeline_msg_fini(m);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pipeline_limits lim;
    pipeline_limits_default(&lim);
    struct pipeline_parser *p = pipeline_parser_local();
    if (!p)
        return 0;
    struct pipeline_parse_args a = {(const char *)data, size, true, 1000, NOW,
                                    &lim, check_cb, &lim};
    size_t n;
    bool array;
    char err[160];
    int rc = pipeline_parse(p, &a, &n, &array, err, sizeof err);
    if (rc == CORE_EPARSE && !err[0])
        abort();
    return 0;
}
