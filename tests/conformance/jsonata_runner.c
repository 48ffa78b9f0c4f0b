/*
 * JSONata conformance runner: runs every case of a suite folder in the
 * official layout (groups/<group>/<case>.json, datasets/<name>.json), prints a
 * line per failing case and a last line "N passed, M failed".
 *
 * usage: jsonata_conformance [-v] [-g GROUP] SUITE_DIR [KNOWN_GAPS_FILE]
 *
 * Exits 1 if a case fails that is not listed in KNOWN_GAPS_FILE (one case
 * id per line, "group/file[#index]", '#' comments after it).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonata.h"

struct runner {
    const char *dir;
    json_t *datasets; /* name -> json (cache) */
    char **gaps;
    size_t ngaps;
    int passed, failed, failed_unlisted;
    bool verbose;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **list_dir(const char *path, size_t *n)
{
    DIR *d = opendir(path);
    *n = 0;
    if (!d)
        return NULL;
    char **names = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof(*names));
        }
        names[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, *n, sizeof(*names), cmp_str);
    return names;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* jansson rejects lone surrogate escapes; a few cases carry them inside
 * expression strings. Re-escape those backslashes so the JSONata lexer
 * sees the escape itself. */
static json_t *load_json_text(char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (j)
        return j;
    size_t n = strlen(text);
    char *fixed = malloc(n * 2 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\\' && text[i + 1] == '\\') {
            fixed[k++] = text[i++];
            fixed[k++] = text[i];
            continue;
        }
        if (text[i] == '\\' && text[i + 1] == 'u' && (text[i + 2] == 'D' || text[i + 2] == 'd') &&
            strchr("89abcdefABCDEF", text[i + 3])) {
            bool high = strchr("89abAB", text[i + 3]) != NULL;
            bool paired = high && text[i + 6] == '\\' && text[i + 7] == 'u' &&
                          (text[i + 8] == 'D' || text[i + 8] == 'd') &&
                          strchr("cdefCDEF", text[i + 9]);
            if (!paired && !(!high && i >= 6 && text[i - 6] == '\\')) {
                fixed[k++] = '\\';
                fixed[k++] = '\\';
                continue;
            }
            if (paired) {
                memcpy(fixed + k, text + i, 12);
                k += 12;
                i += 11;
                continue;
            }
        }
        fixed[k++] = text[i];
    }
    fixed[k] = 0;
    j = json_loads(fixed, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    free(fixed);
    return j;
}

static json_t *load_json(const char *path)
{
    char *text = read_file(path);
    if (!text)
        return NULL;
    json_t *j = load_json_text(text);
    free(text);
    return j;
}

static bool num_equal(double a, double b)
{
    if (a == b)
        return true;
    double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= scale * 1e-15;
}

static bool deep_equal(const json_t *a, const json_t *b, bool unordered);

static bool arrays_unordered_equal(const json_t *a, const json_t *b)
{
    size_t n = json_array_size(a);
    if (n != json_array_size(b))
        return false;
    bool *used = calloc(n + 1, 1);
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < n && !found; k++) {
            if (!used[k] && deep_equal(json_array_get(a, i), json_array_get(b, k), false)) {
                used[k] = true;
                found = true;
            }
        }
        if (!found) {
            free(used);
            return false;
        }
    }
    free(used);
    return true;
}

static bool deep_equal(const json_t *a, const json_t *b, bool unordered)
{
    if (json_is_number(a) && json_is_number(b))
        return num_equal(json_number_value(a), json_number_value(b));
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_ARRAY:
        if (unordered)
            return arrays_unordered_equal(a, b);
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!deep_equal(json_array_get(a, i), json_array_get(b, i), false))
                return false;
        return true;
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v) {
            json_t *o = json_object_get(b, k);
            if (!o || !deep_equal(v, o, false))
                return false;
        }
        return true;
    }
    default:
        return json_equal((json_t *)a, (json_t *)b);
    }
}

static const json_t *dataset(struct runner *r, const char *name)
{
    json_t *d = json_object_get(r->datasets, name);
    if (d)
        return d;
    char path[4096];
    snprintf(path, sizeof(path), "%s/datasets/%s.json", r->dir, name);
    d = load_json(path);
    if (!d)
        return NULL;
    json_object_set_new(r->datasets, name, d);
    return d;
}

static bool is_gap(struct runner *r, const char *id)
{
    for (size_t i = 0; i < r->ngaps; i++)
        if (!strcmp(r->gaps[i], id))
            return true;
    return false;
}

static void pass(struct runner *r, const char *id)
{
    r->passed++;
    if (is_gap(r, id))
        printf("FIXED %s: listed as a known gap but passes\n", id);
}

static void report(struct runner *r, const char *id, const char *expr,
                   const char *fmt, const char *detail)
{
    bool gap = is_gap(r, id);
    r->failed++;
    if (!gap)
        r->failed_unlisted++;
    printf("%s %s: ", gap ? "GAP " : "FAIL", id);
    printf(fmt, detail);
    if (r->verbose)
        printf("\n    expr: %s", expr);
    printf("\n");
}

static char *dump(const json_t *v)
{
    if (!v)
        return strdup("undefined");
    struct core_buf b;
    core_buf_init(&b);
    jsonata_json_dump(&b, v, 0);
    if (b.len > 300) {
        b.data[300] = 0;
        b.len = 300;
    }
    return core_buf_steal(&b);
}

static void run_case(struct runner *r, const char *group_dir, const char *id,
                     const json_t *cs)
{
    const char *expr = json_string_value(json_object_get(cs, "expr"));
    char *expr_buf = NULL;
    if (!expr) {
        const char *ef = json_string_value(json_object_get(cs, "expr-file"));
        if (ef) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", group_dir, ef);
            expr = expr_buf = read_file(path);
        }
    }
    if (!expr) {
        report(r, id, "", "%s", "case has no expression");
        return;
    }
    const json_t *input = NULL;
    json_t *data = json_object_get(cs, "data");
    json_t *ds = json_object_get(cs, "dataset");
    if (data)
        input = data;
    else if (json_is_string(ds))
        input = dataset(r, json_string_value(ds));

    struct jsonata_bindings *b = NULL;
    json_t *bind = json_object_get(cs, "bindings");
    if (json_is_object(bind) && json_object_size(bind)) {
        b = jsonata_bindings_create();
        const char *k;
        json_t *v;
        json_object_foreach(bind, k, v)
            jsonata_bindings_set(b, k, v);
    }
    struct jsonata_options opts = {0};
    opts.time_limit_ms = 10000;
    if (json_is_integer(json_object_get(cs, "depth")))
        opts.max_depth = (int)json_integer_value(json_object_get(cs, "depth"));
    if (json_is_integer(json_object_get(cs, "timelimit")))
        opts.time_limit_ms = json_integer_value(json_object_get(cs, "timelimit"));

    const char *want_code = json_string_value(json_object_get(cs, "code"));
    const char *want_token = json_string_value(json_object_get(cs, "token"));
    const char *want_msg = NULL;
    json_t *eobj = json_object_get(cs, "error");
    if (json_is_object(eobj)) {
        want_code = json_string_value(json_object_get(eobj, "code"));
        want_msg = json_string_value(json_object_get(eobj, "message"));
        if (!want_token)
            want_token = json_string_value(json_object_get(eobj, "token"));
    }
    json_t *want = json_object_get(cs, "result");
    bool want_undef = json_is_true(json_object_get(cs, "undefinedResult"));
    bool unordered = json_is_true(json_object_get(cs, "unordered"));

    struct jsonata_error err;
    struct jsonata_expr *x = NULL;
    json_t *got = NULL;
    int rc = jsonata_compile(expr, &x, &err);
    if (rc == 0)
        rc = jsonata_evaluate(x, input, b, &opts, &got, &err);
    char detail[1024];
    if (want_code) {
        if (rc == 0) {
            char *g = dump(got);
            snprintf(detail, sizeof(detail), "expected error %s, got %s", want_code, g);
            free(g);
            report(r, id, expr, "%s", detail);
        } else if (strcmp(err.code, want_code)) {
            snprintf(detail, sizeof(detail), "expected error %s, got %s (%s)",
                     want_code, err.code, err.message);
            report(r, id, expr, "%s", detail);
        } else if (want_token && strcmp(err.token, want_token)) {
            snprintf(detail, sizeof(detail), "error %s: expected token '%s', got '%s'",
                     want_code, want_token, err.token);
            report(r, id, expr, "%s", detail);
        } else if (want_msg && strcmp(err.message, want_msg)) {
            snprintf(detail, sizeof(detail), "error %s: expected message '%s', got '%s'",
                     want_code, want_msg, err.message);
            report(r, id, expr, "%s", detail);
        } else {
            pass(r, id);
        }
    } else if (rc != 0) {
        snprintf(detail, sizeof(detail), "unexpected error %s: %s", err.code, err.message);
        report(r, id, expr, "%s", detail);
    } else if (want_undef || !want) {
        if (got) {
            char *g = dump(got);
            snprintf(detail, sizeof(detail), "expected undefined, got %s", g);
            free(g);
            report(r, id, expr, "%s", detail);
        } else {
            pass(r, id);
        }
    } else if (!got || !deep_equal(want, got, unordered)) {
        char *g = dump(got), *w = dump(want);
        snprintf(detail, sizeof(detail), "expected %s, got %s", w, g);
        free(g);
        free(w);
        report(r, id, expr, "%s", detail);
    } else {
        pass(r, id);
    }
    json_decref(got);
    jsonata_destroy(x);
    jsonata_bindings_destroy(b);
    free(expr_buf);
}

static void load_gaps(struct runner *r, const char *path)
{
    char *text = read_file(path);
    if (!text) {
        fprintf(stderr, "cannot read known gaps file %s\n", path);
        exit(2);
    }
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        size_t n = strcspn(line, " \t#");
        r->gaps = realloc(r->gaps, (r->ngaps + 1) * sizeof(char *));
        r->gaps[r->ngaps++] = strndup(line, n);
    }
    free(text);
}

int main(int argc, char **argv)
{
    struct runner r = {0};
    const char *only = NULL;
    int ai = 1;
    for (; ai < argc && argv[ai][0] == '-'; ai++) {
        if (!strcmp(argv[ai], "-v"))
            r.verbose = true;
        else if (!strcmp(argv[ai], "-g") && ai + 1 < argc)
            only = argv[++ai];
    }
    if (ai >= argc) {
        fprintf(stderr, "usage: %s [-v] [-g GROUP] SUITE_DIR [KNOWN_GAPS]\n", argv[0]);
        return 2;
    }
    r.dir = argv[ai];
    if (ai + 1 < argc)
        load_gaps(&r, argv[ai + 1]);
    r.datasets = json_object();
    char groups_path[4096];
    snprintf(groups_path, sizeof(groups_path), "%s/groups", r.dir);
    size_t ng;
    char **groups = list_dir(groups_path, &ng);
    if (!groups) {
        fprintf(stderr, "no groups folder in %s\n", r.dir);
        return 2;
    }
    for (size_t g = 0; g < ng; g++) {
        if (only && strcmp(only, groups[g]))
            continue;
        char gdir[8192];
        snprintf(gdir, sizeof(gdir), "%s/%s", groups_path, groups[g]);
        size_t nf;
        char **files = list_dir(gdir, &nf);
        for (size_t f = 0; f < nf; f++) {
            size_t fl = strlen(files[f]);
            if (fl < 5 || strcmp(files[f] + fl - 5, ".json")) {
                free(files[f]);
                continue;
            }
            char path[8448];
            snprintf(path, sizeof(path), "%s/%s", gdir, files[f]);
            json_t *doc = load_json(path);
            char id[8448];
            snprintf(id, sizeof(id), "%s/%.*s", groups[g], (int)(fl - 5), files[f]);
            if (!doc) {
                report(&r, id, "", "%s", "cannot parse case file");
                free(files[f]);
                continue;
            }
            if (json_is_array(doc)) {
                for (size_t i = 0; i < json_array_size(doc); i++) {
                    char cid[8600];
                    snprintf(cid, sizeof(cid), "%s#%zu", id, i);
                    run_case(&r, gdir, cid, json_array_get(doc, i));
                }
            } else {
                run_case(&r, gdir, id, doc);
            }
            json_decref(doc);
            free(files[f]);
        }
        free(files);
        free(groups[g]);
    }
    free(groups);
    json_decref(r.datasets);
    for (size_t i = 0; i < r.ngaps; i++)
        free(r.gaps[i]);
    free(r.gaps);
    printf("%d passed, %d failed\n", r.passed, r.failed);
    return r.failed_unlisted ? 1 : 0;
}
