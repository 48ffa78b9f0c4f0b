/*
 * RFC 9535 JSONPath Compliance Test Suite runner.
 *
 *   jsonpath_conformance [-v] [DIR]
 *
 * Runs every suite file in DIR (default ../shared/conformance/jsonpath):
 * each *.json file whose top level is an object with a "tests" array, in
 * the layout of the suite's cts.json. Prints each failing case and, last,
 * "N passed, M failed". Exits 0 when every failure is in the known-gaps
 * list below, 1 otherwise, 2 when the suite cannot be read.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonpath.h"

/* Cases known to fail, by exact test name, each with the reason. A case
 * listed here still counts as failed, but does not fail the run. Keep this
 * list short: every entry is a bug or a deliberate deviation to explain. */
static const struct known_gap {
    const char *name;
    const char *reason;
} known_gaps[] = {
    {NULL, NULL}, /* none at present */
};

static bool verbose;

static const char *known_gap_reason(const char *name)
{
    for (size_t i = 0; known_gaps[i].name; i++)
        if (strcmp(known_gaps[i].name, name) == 0)
            return known_gaps[i].reason;
    return NULL;
}

/* True when the nodelist equals want (values in order) and, if want_paths
 * is given, the paths are equal too. */
static bool nodelist_matches(const struct jsonpath_result *res,
                             const json_t *want, const json_t *want_paths)
{
    if (!json_is_array(want) || json_array_size(want) != res->len)
        return false;
    for (size_t i = 0; i < res->len; i++)
        if (!json_equal((json_t *)res->nodes[i].value, json_array_get(want, i)))
            return false;
    if (!want_paths)
        return true;
    if (!json_is_array(want_paths) || json_array_size(want_paths) != res->len)
        return false;
    for (size_t i = 0; i < res->len; i++) {
        struct core_buf b;
        const json_t *p = json_array_get(want_paths, i);
        bool same;

        core_buf_init(&b);
        jsonpath_node_path(res, i, &b);
        same = json_is_string(p) && !b.oom &&
               json_string_length(p) == b.len &&
               memcmp(json_string_value(p), b.data, b.len) == 0;
        core_buf_fini(&b);
        if (!same)
            return false;
    }
    return true;
}

/* Describes the nodelist obtained, into out. */
static void describe_got(const struct jsonpath_result *res, struct core_buf *out)
{
    json_t *vals = json_array(), *paths = json_array();
    for (size_t i = 0; i < res->len; i++) {
        struct core_buf b;
        core_buf_init(&b);
        jsonpath_node_path(res, i, &b);
        json_array_append_new(paths, json_stringn(b.data ? b.data : "", b.len));
        json_array_append(vals, (json_t *)res->nodes[i].value);
        core_buf_fini(&b);
    }
    char *v = json_dumps(vals, JSON_COMPACT), *p = json_dumps(paths, JSON_COMPACT);
    core_buf_printf(out, "    got values %s\n    got paths  %s\n", v ? v : "?",
                    p ? p : "?");
    free(v);
    free(p);
    json_decref(vals);
    json_decref(paths);
}

/* Runs one case; returns true if it passed. */
static bool run_case(const json_t *tc, struct jsonpath_result *res,
                     const char **why, struct core_buf *detail)
{
    const json_t *sel = json_object_get(tc, "selector");
    const json_t *doc = json_object_get(tc, "document");
    bool want_invalid = json_is_true(json_object_get(tc, "invalid_selector"));
    struct jsonpath *q = NULL;
    struct jsonpath_error err;
    bool ok = false;
    int rc;

    if (!json_is_string(sel)) {
        *why = "case has no selector";
        return false;
    }
    rc = jsonpath_compilen(json_string_value(sel), json_string_length(sel), &q,
                           &err);
    if (want_invalid) {
        if (rc == 0)
            *why = "accepted an invalid selector";
        jsonpath_destroy(q);
        return rc != 0;
    }
    if (rc != 0) {
        static char msg[256];
        snprintf(msg, sizeof msg, "rejected a valid selector at %zu: %s",
                 err.pos, err.msg);
        *why = msg;
        return false;
    }
    if (!doc) {
        *why = "case has no document";
        goto done;
    }
    if (jsonpath_eval(q, doc, JSONPATH_EVAL_PATHS, res) != 0) {
        *why = "evaluation failed";
        goto done;
    }
    const json_t *result = json_object_get(tc, "result");
    const json_t *results = json_object_get(tc, "results");
    if (result) {
        ok = nodelist_matches(res, result, json_object_get(tc, "result_paths"));
    } else if (json_is_array(results)) {
        const json_t *paths = json_object_get(tc, "results_paths");
        for (size_t i = 0; i < json_array_size(results) && !ok; i++)
            ok = nodelist_matches(res, json_array_get(results, i),
                                  paths ? json_array_get(paths, i) : NULL);
    } else {
        *why = "case has no expected result";
        goto done;
    }
    if (!ok) {
        *why = "wrong nodelist";
        /* Paths borrow names from the query: print before destroying it. */
        describe_got(res, detail);
    }
done:
    jsonpath_destroy(q);
    return ok;
}

struct tally {
    size_t passed, failed, unexpected;
};

static int run_file(const char *path, struct tally *t)
{
    json_error_t jerr;
    json_t *suite = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    const json_t *tests, *tc;
    struct jsonpath_result res;
    size_t i;

    if (!suite) {
        fprintf(stderr, "%s:%d:%d: %s\n", path, jerr.line, jerr.column,
                jerr.text);
        return -1;
    }
    tests = json_object_get(suite, "tests");
    if (!json_is_array(tests)) {
        json_decref(suite);
        return 0; /* not a suite file (e.g. the suite's JSON schema) */
    }
    jsonpath_result_init(&res);
    json_array_foreach(tests, i, tc) {
        const char *name = json_string_value(json_object_get(tc, "name"));
        const char *why = "";
        struct core_buf detail;
        if (!name)
            name = "(unnamed)";
        core_buf_init(&detail);
        if (run_case(tc, &res, &why, &detail)) {
            core_buf_fini(&detail);
            t->passed++;
            if (verbose)
                printf("pass %s\n", name);
            continue;
        }
        t->failed++;
        const char *gap = known_gap_reason(name);
        if (!gap)
            t->unexpected++;
        const json_t *sel = json_object_get(tc, "selector");
        char *sel_txt = json_dumps(sel, JSON_ENCODE_ANY);
        printf("FAIL %s\n    selector %s\n    %s\n", name,
               sel_txt ? sel_txt : "?", why);
        if (detail.data)
            fputs(detail.data, stdout);
        if (gap)
            printf("    known gap: %s\n", gap);
        free(sel_txt);
        core_buf_fini(&detail);
    }
    jsonpath_result_fini(&res);
    json_decref(suite);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    const char *dir = "../shared/conformance/jsonpath";
    struct tally t = {0};
    char **files = NULL;
    size_t nfiles = 0, cap = 0;
    struct dirent *de;
    DIR *d;
    int status = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = true;
        else
            dir = argv[i];
    }
    d = opendir(dir);
    if (!d) {
        perror(dir);
        return 2;
    }
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        if (nfiles == cap) {
            cap = cap ? cap * 2 : 8;
            char **nf = realloc(files, cap * sizeof *nf);
            if (!nf)
                return 2;
            files = nf;
        }
        size_t len = strlen(dir) + n + 2;
        files[nfiles] = malloc(len);
        if (!files[nfiles])
            return 2;
        snprintf(files[nfiles++], len, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    qsort(files, nfiles, sizeof *files, name_cmp);
    for (size_t i = 0; i < nfiles; i++) {
        if (run_file(files[i], &t) != 0)
            status = 2;
        free(files[i]);
    }
    free(files);
    if (t.passed + t.failed == 0) {
        fprintf(stderr, "%s: no test cases found\n", dir);
        status = 2;
    }
    printf("%zu passed, %zu failed\n", t.passed, t.failed);
    if (status == 0 && t.unexpected)
        status = 1;
    return status;
}
