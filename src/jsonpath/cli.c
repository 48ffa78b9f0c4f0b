/*
 * `argus jsonpath [--paths] QUERY [FILE]`: runs one query over one JSON
 * document and prints the nodelist as a JSON array.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonpath.h"

enum {
    CLI_OK = 0,
    CLI_IO = 1,
    CLI_USAGE = 2,
};

static void usage(FILE *to)
{
    fputs("usage: argus jsonpath [--paths] QUERY [FILE]\n"
          "Evaluates an RFC 9535 JSONPath query over the JSON document in FILE\n"
          "(standard input if absent or \"-\") and prints the selected values\n"
          "as a JSON array, or with --paths their normalized paths.\n",
          to);
}

/* Reads all of f; the caller frees *out. */
static int read_all(FILE *f, struct core_buf *b)
{
    char chunk[65536];
    size_t n;

    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        core_buf_append(b, chunk, n);
    if (ferror(f))
        return CORE_EIO;
    return b->oom ? CORE_ENOMEM : 0;
}

/* Prints the query with a caret under the failing byte. */
static void show_query_error(const char *query, const struct jsonpath_error *e)
{
    fprintf(stderr, "argus jsonpath: invalid query at position %zu: %s\n",
            e->pos, e->msg);
    fprintf(stderr, "  %s\n  %*s^\n", query, (int)e->pos, "");
}

int jsonpath_cli_main(int argc, char **argv)
{
    const char *query = NULL, *file = NULL;
    bool paths = false;
    struct jsonpath *q = NULL;
    struct jsonpath_error qerr;
    struct jsonpath_result res;
    struct core_buf in, out;
    json_t *doc = NULL;
    json_error_t jerr;
    FILE *f = stdin;
    int status = CLI_USAGE;

    jsonpath_result_init(&res);
    core_buf_init(&in);
    core_buf_init(&out);

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--paths") == 0) {
            paths = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            status = CLI_OK;
            goto done;
        } else if (!query) {
            query = argv[i];
        } else if (!file) {
            file = argv[i];
        } else {
            usage(stderr);
            goto done;
        }
    }
    if (!query) {
        usage(stderr);
        goto done;
    }
    if (jsonpath_compile(query, &q, &qerr) != 0) {
        show_query_error(query, &qerr);
        goto done;
    }

    if (file && strcmp(file, "-") != 0) {
        f = fopen(file, "rb");
        if (!f) {
            fprintf(stderr, "argus jsonpath: cannot open %s: %s\n", file,
                    strerror(errno));
            status = CLI_IO;
            goto done;
        }
    }
    int rc = read_all(f, &in);
    if (f != stdin)
        fclose(f);
    if (rc != 0) {
        fprintf(stderr, "argus jsonpath: cannot read %s: %s\n",
                file ? file : "standard input", core_strerror(rc));
        status = CLI_IO;
        goto done;
    }
    doc = json_loadb(in.data ? in.data : "", in.len,
                     JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!doc) {
        fprintf(stderr,
                "argus jsonpath: invalid JSON at line %d, column %d "
                "(byte %d): %s\n",
                jerr.line, jerr.column, jerr.position, jerr.text);
        goto done;
    }

    rc = jsonpath_eval(q, doc, paths ? JSONPATH_EVAL_PATHS : 0, &res);
    if (rc != 0) {
        fprintf(stderr, "argus jsonpath: %s\n", core_strerror(rc));
        status = CLI_IO;
        goto done;
    }

    /* Values are printed one per line inside the array, so that large
     * nodelists stay readable and diffable. */
    core_buf_putc(&out, '[');
    for (size_t i = 0; i < res.len; i++) {
        core_buf_puts(&out, i ? ",\n  " : "\n  ");
        if (paths) {
            struct core_buf p;
            core_buf_init(&p);
            jsonpath_node_path(&res, i, &p);
            if (p.data) {
                /* JSON-escape the path (it may hold control characters). */
                json_t *s = json_stringn(p.data, p.len);
                char *txt = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
                if (txt)
                    core_buf_puts(&out, txt);
                else
                    out.oom = true;
                free(txt);
                json_decref(s);
            } else {
                out.oom = true;
            }
            core_buf_fini(&p);
        } else {
            char *txt = json_dumps(res.nodes[i].value,
                                   JSON_ENCODE_ANY | JSON_COMPACT);
            if (txt)
                core_buf_puts(&out, txt);
            else
                out.oom = true;
            free(txt);
        }
    }
    core_buf_puts(&out, res.len ? "\n]\n" : "]\n");
    if (out.oom) {
        fprintf(stderr, "argus jsonpath: %s\n", core_strerror(CORE_ENOMEM));
        status = CLI_IO;
        goto done;
    }
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout)) {
        status = CLI_IO;
        goto done;
    }
    status = CLI_OK;
done:
    json_decref(doc);
    jsonpath_result_fini(&res);
    jsonpath_destroy(q);
    core_buf_fini(&out);
    core_buf_fini(&in);
    return status;
}
