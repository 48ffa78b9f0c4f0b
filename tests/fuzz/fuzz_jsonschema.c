/*
 * libFuzzer target for src/jsonschema. The input is JSON: an array
 * [schema, instance] compiles the schema and validates the instance on both
 * paths (with format assertion on); any other JSON is compiled as a schema
 * and validated against itself. The raw bytes also go through the ECMA-262
 * regex translator and every format checker.
 */
#include "js_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void validate_both(const struct jsonschema *s, const json_t *inst)
{
    struct jsonschema_options o = {.format_assert = true};
    struct jsonschema_result fast, detail;
    int rc1 = jsonschema_validate(s, inst, &o, &fast);
    o.detailed = true;
    int rc2 = jsonschema_validate(s, inst, &o, &detail);
    if (rc1 == 0 && rc2 == 0) {
        /* Both paths must agree, and an invalid result must say why. */
        if (fast.valid != detail.valid || (!detail.valid && !detail.nerrors))
            abort();
        struct core_buf b;
        core_buf_init(&b);
        jsonschema_result_render(&detail, &b);
        core_buf_fini(&b);
    }
    jsonschema_result_fini(&detail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    const char *s = (const char *)data;
    js__regex_valid(s, size);
    for (int f = JS_FMT_DATE_TIME; f <= JS_FMT_REGEX; f++)
        js__format_check((enum js__format)f, s, size);

    json_error_t err;
    json_t *doc = json_loadb(s, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!doc)
        return 0;
    json_t *schema = doc, *inst = doc;
    if (json_is_array(doc) && json_array_size(doc) >= 2) {
        schema = json_array_get(doc, 0);
        inst = json_array_get(doc, 1);
    }
    struct jsonschema *c = NULL;
    struct jsonschema_compile_error cerr;
    if (jsonschema_compile(NULL, schema, NULL, &c, &cerr) == 0) {
        validate_both(c, inst);
        jsonschema_destroy(c);
    }
    json_decref(doc);
    return 0;
}
