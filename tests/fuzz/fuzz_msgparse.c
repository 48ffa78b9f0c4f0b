/* libFuzzer, differential: the ingest parser (msgparse.c) against jansson's
 * json_loadb with JSON_REJECT_DUPLICATES and the normalize it replaced. For
 * any input they must agree on JSON or not, on accept or refuse and the
 * reason per message, and on every field of an accepted one, doubles bit
 * for bit (tests/unit/msgparse_diff.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "msgparse_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[512];
    if (msgparse_diff((const char *)data, size, why, sizeof why)) {
        fprintf(stderr, "msgparse disagrees with jansson: %s\n", why);
        abort();
    }
    return 0;
}
