/*
 * Conformance runner for the JSON Schema Test Suite (draft 2020-12).
 *
 *   jsonschema_conformance [DIR]     (default ../shared/conformance/jsonschema)
 *
 * DIR holds tests/draft2020-12/ (required cases at the top, optional/ and
 * optional/format/ below) and remotes/, loaded into a registry as
 * http://localhost:1234/<path>. The 2020-12 meta-schemas are built into the
 * library. Every case runs twice, on the fast path and the detailed path,
 * and both must agree with the expected outcome. Failing cases are printed;
 * the last line is "N passed, M failed". The exit status is 1 when a case
 * fails that the known-gaps list below does not name.
 */
#include "jsonschema.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Cases this validator is known to fail, each with its reason. A NULL
 * group or test matches every group or test of the file. Keep it short:
 * every entry is a promise to come back.
 *
 * Empty at present: every case of the suite passes (required, optional
 * and optional/format). Known limitations that no case exercises yet:
 *  - "pattern" with a variable-length lookbehind, valid ECMA-262 but not
 *    supported by PCRE2 10.42, is refused at compile time (the "regex"
 *    format still accepts it as valid);
 *  - idn-hostname approximates the ZWNJ joining-type rule of RFC 5892 by
 *    "Arabic letters on both sides". */
static const struct gap {
    const char *file;  /* path under tests/draft2020-12 */
    const char *group; /* group description */
    const char *test;  /* test description */
    const char *reason;
} known_gaps[] = {
    /* {"optional/format/x.json", "group", "test", "why"}, */
    {NULL, NULL, NULL, NULL},
};

enum category { REQUIRED, OPTIONAL, FORMAT, NCATEGORIES };
static const char *const category_names[] = {"required", "optional",
                                             "optional/format"};

struct stats {
    int passed[NCATEGORIES];
    int failed[NCATEGORIES];
    int known[NCATEGORIES];
    int unexpected;
};

static const struct gap *known_gap(const char *file, const char *group,
                                   const char *test)
{
    for (size_t i = 0; known_gaps[i].file; i++) {
        const struct gap *g = &known_gaps[i];
        if (strcmp(g->file, file) == 0 &&
            (!g->group || strcmp(g->group, group) == 0) &&
            (!g->test || strcmp(g->test, test) == 0))
            return g;
    }
    return NULL;
}

static json_t *load_json(const char *path)
{
    json_error_t err;
    json_t *v = json_load_file(path, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!v) /* integers beyond 64 bits (optional/bignum.json) */
        v = json_load_file(path, JSON_DECODE_ANY | JSON_ALLOW_NUL |
                                                JSON_DECODE_INT_AS_REAL,
                           &err);
    if (!v)
        fprintf(stderr, "%s: line %d: %s\n", path, err.line, err.text);
    return v;
}

typedef void (*file_cb)(const char *path, const char *rel, void *arg);

/* Calls cb for every *.json under dir, in sorted order. */
static void walk(const char *dir, const char *rel, file_cb cb, void *arg)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        return;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (name[0] == '.') {
            free(names[i]);
            continue;
        }
        char path[4096], sub[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            walk(path, sub, cb, arg);
        } else {
            size_t l = strlen(name);
            if (l > 5 && strcmp(name + l - 5, ".json") == 0)
                cb(path, sub, arg);
        }
        free(names[i]);
    }
    free(names);
}

static void add_remote(const char *path, const char *rel, void *arg)
{
    struct jsonschema_registry *reg = arg;
    json_t *doc = load_json(path);
    if (!doc)
        return;
    char uri[4200];
    snprintf(uri, sizeof uri, "http://localhost:1234/%s", rel);
    struct jsonschema_compile_error err;
    int rc = jsonschema_registry_add(reg, uri, doc, &err);
    if (rc)
        fprintf(stderr, "remote %s not registered: %s %s\n", uri,
                core_strerror(rc), err.message);
    json_decref(doc);
}

struct run {
    struct jsonschema_registry *reg;
    struct stats st;
};

static void report(struct run *run, enum category cat, const char *file,
                   const char *group, const char *test, const char *what)
{
    const struct gap *g = known_gap(file, group, test);
    run->st.failed[cat]++;
    if (g) {
        run->st.known[cat]++;
        printf("KNOWN %s: %s / %s: %s [%s]\n", file, group, test, what,
               g->reason);
    } else {
        run->st.unexpected++;
        printf("FAIL  %s: %s / %s: %s\n", file, group, test, what);
    }
}

static void run_file(const char *path, const char *rel, void *arg)
{
    struct run *run = arg;
    enum category cat = strncmp(rel, "optional/format/", 16) == 0 ? FORMAT
                        : strncmp(rel, "optional/", 9) == 0     ? OPTIONAL
                                                                : REQUIRED;
    json_t *groups = load_json(path);
    if (!json_is_array(groups)) {
        printf("FAIL  %s: cannot read the file\n", rel);
        run->st.unexpected++;
        json_decref(groups);
        return;
    }
    size_t gi;
    json_t *g;
    json_array_foreach(groups, gi, g) {
        const char *gdesc = json_string_value(json_object_get(g, "description"));
        json_t *tests = json_object_get(g, "tests");
        struct jsonschema *s = NULL;
        struct jsonschema_compile_error cerr;
        int rc = jsonschema_compile(run->reg, json_object_get(g, "schema"), NULL,
                                    &s, &cerr);
        size_t ti;
        json_t *t;
        json_array_foreach(tests, ti, t) {
            const char *tdesc =
                json_string_value(json_object_get(t, "description"));
            bool expect = json_is_true(json_object_get(t, "valid"));
            char what[1200];
            if (rc) {
                snprintf(what, sizeof what, "schema does not compile: %s: %s",
                         cerr.location, cerr.message);
                report(run, cat, rel, gdesc, tdesc, what);
                continue;
            }
            json_t *data = json_object_get(t, "data");
            struct jsonschema_options opts = {.format_assert = cat == FORMAT};
            struct jsonschema_result fast, detail;
            int rc1 = jsonschema_validate(s, data, &opts, &fast);
            opts.detailed = true;
            int rc2 = jsonschema_validate(s, data, &opts, &detail);
            if (rc1 || rc2) {
                snprintf(what, sizeof what, "validation error %s",
                         core_strerror(rc1 ? rc1 : rc2));
                report(run, cat, rel, gdesc, tdesc, what);
            } else if (fast.valid != expect || detail.valid != expect) {
                snprintf(what, sizeof what, "expected %s, fast path says %s, "
                         "detailed path says %s%s%s",
                         expect ? "valid" : "invalid",
                         fast.valid ? "valid" : "invalid",
                         detail.valid ? "valid" : "invalid",
                         detail.nerrors ? ": " : "",
                         detail.nerrors ? detail.errors[0].message : "");
                report(run, cat, rel, gdesc, tdesc, what);
            } else if (!detail.valid && detail.nerrors == 0) {
                report(run, cat, rel, gdesc, tdesc,
                       "invalid without any error reported");
            } else {
                run->st.passed[cat]++;
            }
            jsonschema_result_fini(&detail);
        }
        jsonschema_destroy(s);
    }
    json_decref(groups);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../shared/conformance/jsonschema";
    char path[4096];
    struct run run = {0};
    if (jsonschema_registry_create(&run.reg))
        return 2;
    snprintf(path, sizeof path, "%s/remotes", dir);
    walk(path, "", add_remote, run.reg);
    snprintf(path, sizeof path, "%s/tests/draft2020-12", dir);
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "no test suite at %s\n", path);
        jsonschema_registry_destroy(run.reg);
        return 2;
    }
    walk(path, "", run_file, &run);
    jsonschema_registry_destroy(run.reg);
    int passed = 0, failed = 0;
    for (int c = 0; c < NCATEGORIES; c++) {
        int total = run.st.passed[c] + run.st.failed[c];
        printf("%-16s %4d/%-4d passed (%.1f%%), %d failed (%d known gaps)\n",
               category_names[c], run.st.passed[c], total,
               total ? 100.0 * run.st.passed[c] / total : 100.0,
               run.st.failed[c], run.st.known[c]);
        passed += run.st.passed[c];
        failed += run.st.failed[c];
    }
    printf("%d passed, %d failed\n", passed, failed);
    return run.st.unexpected ? 1 : 0;
}
