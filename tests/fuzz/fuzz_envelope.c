/* libFuzzer: bytes from the bus through the stages' envelope parser.
 * Whatever the input, it is refused with a reason or parsed into fields that
 * encode back to an envelope parsing to the same fields. As a bus message
 * (an envelope or a bundle), it is refused whole with a reason, or gives
 * envelopes whose bodies lie inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_internal.h"

static void bus_message(const uint8_t *data, size_t size)
{
    struct pipeline_env *envs = NULL;
    size_t n = 0, cap = 0;
    char reason[128] = "";
    int rc = pipeline__env_decode_msg(data, size, &envs, &n, &cap, reason,
                                      sizeof reason);
    if (rc == CORE_EINVAL && (!reason[0] || n != 0))
        abort();
    if (rc == CORE_OK && n == 0)
        abort();
    for (size_t i = 0; rc == CORE_OK && i < n; i++)
        if (envs[i].body < (const char *)data ||
            envs[i].body + envs[i].body_len > (const char *)data + size)
            abort();
    free(envs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bus_message(data, size);
    struct pipeline_env e;
    char reason[128] = "";
    if (pipeline__env_decode(data, size, &e, reason, sizeof reason) != CORE_OK) {
        if (!reason[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    if (e.body < (const char *)data || e.body + e.body_len != (const char *)data + size)
        abort();
    struct pipeline_msg m = {.received_ms = e.received_ms, .transport = e.transport};
    memcpy(m.raw_id, e.raw_id, sizeof m.raw_id);
    memcpy(m.org_id, e.org_id, sizeof m.org_id);
    memcpy(m.device_id, e.device_id, sizeof m.device_id);
    struct core_buf b;
    core_buf_init(&b);
    pipeline__env_encode(&b, e.kind, &m, e.body, e.body_len);
    struct pipeline_env again;
    if (b.oom ||
        pipeline__env_decode(b.data, b.len, &again, reason, sizeof reason) != CORE_OK ||
        again.kind != e.kind || strcmp(again.raw_id, e.raw_id) ||
        strcmp(again.org_id, e.org_id) || strcmp(again.device_id, e.device_id) ||
        again.received_ms != e.received_ms || again.transport != e.transport ||
        again.body_len != e.body_len || memcmp(again.body, e.body, e.body_len))
        abort();
    core_buf_fini(&b);
    return 0;
}
