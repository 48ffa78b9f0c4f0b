/*
 * libFuzzer target for the JSONata engine: the input is an expression,
 * compiled and, when it compiles, evaluated against a fixed document with
 * a small depth and time budget (so runaway recursion and loops end in
 * U1001 rather than time-outs), with a host variable and host function
 * bound. Results are printed to a buffer to exercise output formatting.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonata.h"

static const char fixed_doc[] =
    "{\"Account\":{\"Name\":\"Firefly\",\"Order\":[{\"OrderID\":\"order103\","
    "\"Product\":[{\"Name\":\"Bowler Hat\",\"Price\":34.45,\"Quantity\":2},"
    "{\"Name\":\"Trilby\",\"Price\":21.67,\"Quantity\":1}]},{\"OrderID\":"
    "\"order104\",\"Product\":[{\"Name\":\"Cloak\",\"Price\":107.99,"
    "\"Quantity\":1}]}]},\"metrics\":{\"temp\":82.5,\"rpm\":1480},"
    "\"arr\":[1,[2,[3]],{\"a\":\"caf\\u00e9\"},null,true,\"\\u2028\"],"
    "\"ts\":\"2026-11-23T12:00:00.000Z\"}";

static int host_double(void *user, json_t *const *args, size_t nargs,
                       json_t **result, struct jsonata_error *err)
{
    (void)user;
    (void)err;
    *result = nargs && json_is_number(args[0])
                  ? json_real(json_number_value(args[0]) * 2)
                  : NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *doc;
    static struct jsonata_bindings *bindings;
    if (!doc) {
        doc = json_loads(fixed_doc, 0, NULL);
        bindings = jsonata_bindings_create();
        json_t *v = json_pack("{s:i,s:[i,i]}", "x", 1, "y", 2, 3);
        jsonata_bindings_set(bindings, "v", v);
        json_decref(v);
        jsonata_bindings_set_function(bindings, "double", "<n:n>", host_double,
                                      NULL);
    }
    if (size > 4096)
        return 0;
    char *expr = malloc(size + 1);
    if (!expr)
        return 0;
    memcpy(expr, data, size);
    expr[size] = 0;
    struct jsonata_expr *x = NULL;
    struct jsonata_error err;
    if (jsonata_compile(expr, &x, &err) == 0) {
        struct jsonata_options opts = {.max_depth = 200, .time_limit_ms = 100};
        json_t *r = NULL;
        if (jsonata_evaluate(x, doc, bindings, &opts, &r, &err) == 0 && r) {
            struct core_buf b;
            core_buf_init(&b);
            jsonata_json_dump(&b, r, 2);
            core_buf_fini(&b);
        }
        json_decref(r);
        jsonata_evaluate(x, NULL, NULL, &opts, &r, &err);
        json_decref(r);
    }
    jsonata_destroy(x);
    free(expr);
    return 0;
}
