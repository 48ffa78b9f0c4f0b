/*
 * libFuzzer target for the JSONPath engine. The input is a query, a NUL
 * byte or newline, then a JSON document; without a separator (or when the
 * document is not JSON) the query runs over a fixed document that gives
 * every selector something to select. Each compiled query is evaluated with
 * paths, its paths formatted, and evaluated again through
 * jsonpath_eval_first, so parser, evaluator, I-Regexp translation and path
 * formatting are all exercised.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonpath.h"

static const char fixed_doc[] =
    "{\"a\":[1,2.5,\"x\",true,null,{\"b\":\"caf\\u00e9\",\"c\":[[]]}],"
    "\"k\\u0000'\\n\":{\"d\":-3,\"e\":\"a.b\\r\"},\"re\":\"[a-z]+\","
    "\"n\":{\"n\":{\"n\":{\"v\":\"\\u2028\"}}}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *fallback;
    const char *text = (const char *)data;
    size_t qlen = 0;
    json_t *doc = NULL;
    struct jsonpath *q = NULL;
    struct jsonpath_error err;
    struct jsonpath_result res;

    if (size > 4096)
        return 0; /* longer inputs add nothing but time */
    if (!fallback)
        fallback = json_loads(fixed_doc, JSON_ALLOW_NUL, NULL);
    while (qlen < size && text[qlen] != '\n' && text[qlen] != '\0')
        qlen++;
    if (qlen < size)
        doc = json_loadb(text + qlen + 1, size - qlen - 1,
                         JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

    if (jsonpath_compilen(text, qlen, &q, &err) == 0) {
        const json_t *first;
        const json_t *target = doc ? doc : fallback;

        jsonpath_result_init(&res);
        if (jsonpath_eval(q, target, JSONPATH_EVAL_PATHS, &res) == 0) {
            struct core_buf b;
            core_buf_init(&b);
            for (size_t i = 0; i < res.len; i++)
                jsonpath_node_path(&res, i, &b);
            core_buf_fini(&b);
        }
        /* A second run into the same result exercises reuse. */
        jsonpath_eval(q, target, 0, &res);
        jsonpath_result_fini(&res);
        jsonpath_eval_first(q, target, &first);
        jsonpath_destroy(q);
    } else if (err.pos > qlen) {
        abort(); /* an error position must lie within the query */
    }
    json_decref(doc);
    return 0;
}
