/* libFuzzer: an ingest body (one message or an array) through parsing and
 * normalisation. Whatever the input, normalize either accepts with sane
 * fields or refuses with a reason; it never crashes or leaks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pipeline_limits lim;
    pipeline_limits_default(&lim);
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
                             NULL);
    if (!doc)
        return 0;
    size_t n = json_is_array(doc) ? json_array_size(doc) : 1;
    for (size_t i = 0; i < n && i < 1000; i++) {
        json_t *m = json_is_array(doc) ? json_array_get(doc, i) : doc;
        struct pipeline_msg out;
        char reason[256];
        int rc = pipeline_normalize(m, 1795435200000LL, &lim, &out, reason,
                                    sizeof reason);
        if (rc == CORE_OK) {
            if (out.nmetrics == 0 || out.nmetrics > lim.max_metrics ||
                out.ts_ms > 1795435200000LL + lim.max_future_ms ||
                !core_uuid_valid(out.device_id))
                abort();
            pipeline_msg_fini(&out);
        } else if (rc == CORE_EINVAL && reason[0] == '\0') {
            abort(); /* a refusal always says why */
        }
    }
    json_decref(doc);
    return 0;
}
