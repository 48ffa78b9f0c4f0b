/* `argus jsonschema [--format-assert] [--json] SCHEMA [FILE]`: validates
 * the JSON in FILE (or standard input) against the schema in SCHEMA. */
#include "jsonschema.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: argus jsonschema [--format-assert] [--json] SCHEMA [FILE]\n"
          "Validates the JSON document in FILE (default: standard input)\n"
          "against the JSON Schema (draft 2020-12) in the file SCHEMA.\n"
          "  --format-assert  treat \"format\" as an assertion\n"
          "  --json           print the result in the \"basic\" output format\n"
          "Exit status: 0 valid, 1 invalid, 2 bad usage, schema or input.\n",
          f);
}

/* Parses a whole file (or stdin for NULL). Integers too large for 64 bits
 * are read as doubles rather than rejected. */
static json_t *load(const char *path, json_error_t *err)
{
    size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
    FILE *f = path ? fopen(path, "rb") : stdin;
    if (!f) {
        snprintf(err->text, sizeof err->text, "cannot open: %s",
                 strerror(errno));
        err->line = 0;
        return NULL;
    }
    /* Read it whole so that it can be parsed a second time. */
    struct core_buf b;
    core_buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        core_buf_append(&b, chunk, n);
    if (path)
        fclose(f);
    if (b.oom) {
        core_buf_fini(&b);
        snprintf(err->text, sizeof err->text, "out of memory");
        err->line = 0;
        return NULL;
    }
    const char *text = b.data ? b.data : "";
    json_t *v = json_loadb(text, b.len, flags, err);
    if (!v) {
        json_error_t err2;
        v = json_loadb(text, b.len, flags | JSON_DECODE_INT_AS_REAL, &err2);
    }
    core_buf_fini(&b);
    return v;
}

int jsonschema_cli_main(int argc, char **argv)
{
    bool format_assert = false, as_json = false;
    const char *paths[2] = {NULL, NULL};
    int npaths = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--format-assert") == 0) {
            format_assert = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            as_json = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "jsonschema: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (npaths < 2) {
            paths[npaths++] = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (npaths < 1) {
        usage(stderr);
        return 2;
    }
    int status = 2;
    struct jsonschema *s = NULL;
    json_t *instance = NULL;
    json_error_t jerr;
    json_t *schema = load(paths[0], &jerr);
    if (!schema) {
        fprintf(stderr, "jsonschema: %s: line %d: %s\n", paths[0], jerr.line,
                jerr.text);
        goto done;
    }
    char real[PATH_MAX], base[PATH_MAX + 16];
    if (realpath(paths[0], real))
        snprintf(base, sizeof base, "file://%s", real);
    else
        snprintf(base, sizeof base, "file:///schema.json");
    struct jsonschema_compile_error cerr;
    int rc = jsonschema_compile(NULL, schema, base, &s, &cerr);
    if (rc) {
        fprintf(stderr, "jsonschema: invalid schema %s: %s: %s\n", paths[0],
                cerr.location[0] ? cerr.location : "(root)",
                cerr.message[0] ? cerr.message : core_strerror(rc));
        goto done;
    }
    const char *ipath = npaths > 1 ? paths[1] : NULL;
    instance = load(ipath, &jerr);
    if (!instance) {
        fprintf(stderr, "jsonschema: %s: line %d: %s\n",
                ipath ? ipath : "<stdin>", jerr.line, jerr.text);
        goto done;
    }
    struct jsonschema_result r;
    struct jsonschema_options opts = {.format_assert = format_assert,
                                      .detailed = true};
    rc = jsonschema_validate(s, instance, &opts, &r);
    if (rc) {
        fprintf(stderr, "jsonschema: %s\n", core_strerror(rc));
        goto done;
    }
    if (as_json) {
        struct core_buf b;
        core_buf_init(&b);
        jsonschema_result_render(&r, &b);
        printf("%s\n", b.data ? b.data : "");
        core_buf_fini(&b);
    } else if (r.valid) {
        puts("valid");
    } else {
        for (size_t i = 0; i < r.nerrors; i++) {
            const struct jsonschema_error *e = &r.errors[i];
            printf("%s: %s (at %s)\n",
                   e->instance_location[0] ? e->instance_location : "(root)",
                   e->message, e->keyword_location[0] ? e->keyword_location : "#");
        }
    }
    status = r.valid ? 0 : 1;
    jsonschema_result_fini(&r);
done:
    json_decref(instance);
    json_decref(schema);
    jsonschema_destroy(s);
    return status;
}
