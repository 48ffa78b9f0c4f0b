/*
 * `argus jsonata EXPR [FILE]`: evaluates an expression against a JSON
 * document from FILE or stdin and prints the result as one line of JSON.
 * An undefined result prints nothing and exits 0 (as jsonata-js's CLI).
 */
#include <stdio.h>
#include <string.h>

#include "jsonata.h"

static void usage(FILE *out)
{
    fputs("usage: argus jsonata EXPR [FILE]\n"
          "Evaluates the JSONata expression EXPR against the JSON in FILE\n"
          "(or stdin) and prints the result as JSON; prints nothing when\n"
          "the result is undefined. Exit status: 0 ok, 1 usage or input\n"
          "error, 2 JSONata error.\n",
          out);
}

int jsonata_cli_main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "--help")) {
        usage(argc < 2 || argc > 3 ? stderr : stdout);
        return argc < 2 || argc > 3 ? 1 : 0;
    }
    struct jsonata_error err;
    struct jsonata_expr *expr = NULL;
    int rc = jsonata_compile(argv[1], &expr, &err);
    if (rc == CORE_EPARSE) {
        fprintf(stderr, "%s at position %d: %s\n", err.code, err.position,
                err.message);
        return 2;
    }
    if (rc != 0) {
        fprintf(stderr, "jsonata: %s\n", core_strerror(rc));
        return 1;
    }
    json_error_t jerr;
    json_t *input;
    if (argc == 3)
        input = json_load_file(argv[2], JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    else
        input = json_loadf(stdin, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!input) {
        fprintf(stderr, "jsonata: invalid JSON input at line %d: %s\n",
                jerr.line, jerr.text);
        jsonata_destroy(expr);
        return 1;
    }
    json_t *result = NULL;
    int status = 0;
    rc = jsonata_evaluate(expr, input, NULL, NULL, &result, &err);
    if (rc == CORE_ENOMEM) {
        fprintf(stderr, "jsonata: out of memory\n");
        status = 1;
    } else if (rc != 0) {
        fprintf(stderr, "%s at position %d: %s\n", err.code, err.position,
                err.message);
        status = 2;
    } else if (result) {
        struct core_buf b;
        core_buf_init(&b);
        jsonata_json_dump(&b, result, 0);
        core_buf_putc(&b, '\n');
        if (b.oom) {
            fprintf(stderr, "jsonata: out of memory\n");
            status = 1;
        } else {
            fwrite(b.data, 1, b.len, stdout);
        }
        core_buf_fini(&b);
    }
    json_decref(result);
    json_decref(input);
    jsonata_destroy(expr);
    return status;
}
