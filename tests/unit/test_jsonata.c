/*
 * Unit tests for the JSONata engine: the public API's contracts (errors,
 * undefined, bindings, limits, thread safety, the CLI) and the pieces that
 * bite a C implementation (number formatting, code points, tail calls).
 * Language coverage lives in the conformance runner.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jn_internal.h"
#include "jsonata.h"

/* Evaluates expr against the JSON text input (NULL = undefined) and
 * returns the result as JSON text ("undefined" when undefined), or
 * "ERR <code>" on failure. The caller frees the string. */
static char *eval_text(const char *expr, const char *input)
{
    struct jsonata_expr *x = NULL;
    struct jsonata_error err;
    struct core_buf b;
    core_buf_init(&b);
    if (jsonata_compile(expr, &x, &err) != 0) {
        core_buf_printf(&b, "ERR %s", err.code);
        return core_buf_steal(&b);
    }
    json_t *in = input ? json_loads(input, JSON_DECODE_ANY, NULL) : NULL;
    json_t *r = NULL;
    if (jsonata_evaluate(x, in, NULL, NULL, &r, &err) != 0)
        core_buf_printf(&b, "ERR %s", err.code);
    else if (!r)
        core_buf_puts(&b, "undefined");
    else
        jsonata_json_dump(&b, r, 0);
    json_decref(r);
    json_decref(in);
    jsonata_destroy(x);
    return core_buf_steal(&b);
}

#define assert_eval(expr, input, want)                                      \
    do {                                                                    \
        char *got_ = eval_text((expr), (input));                            \
        assert_string_equal(got_, (want));                                  \
        free(got_);                                                         \
    } while (0)

static void test_paths_and_operators(void **state)
{
    (void)state;
    const char *doc = "{\"metrics\":{\"temp\":82.5,\"vibration\":0.62},"
                      "\"a\":[{\"b\":1},{\"b\":[2,3]},{\"c\":4}]}";
    assert_eval("metrics.temp * 1.8 + 32", doc, "180.5");
    assert_eval("metrics.temp > 80 and metrics.vibration > 0.5", doc, "true");
    assert_eval("a.b", doc, "[1,2,3]");
    assert_eval("a[0].b", doc, "1");
    assert_eval("a.b[1]", doc, "3");
    assert_eval("a[c > 1].c", doc, "4");
    assert_eval("a[b > 1].b", doc, "ERR T2010");
    assert_eval("nothing", doc, "undefined");
    assert_eval("metrics.temp", NULL, "undefined");
    assert_eval("\"a\" & 1 & true", NULL, "\"a1true\"");
    assert_eval("[1..3, 5]", NULL, "[1,2,3,5]");
    assert_eval("{\"k\": [1]}.k[]", NULL, "[1]");
    assert_eval("(\n $x := 2; /* comment */ $x * $x )", NULL, "4");
    /* A constructed first step that a filter reduces to one value is a
     * sequence of one for the next step (fuzzer find: it crashed). */
    assert_eval("[$][$[]].metrics.temp", doc, "82.5");
    assert_eval("--[$][$[]].ro", doc, "undefined");
    /* The same in a path with a positional (tuple) step; jsonata-js 2.2
     * fails here with a TypeError (input.map is not a function). */
    assert_eval("[$][0].metrics.temp#$i.[$, $i]", doc, "[82.5,0]");
    assert_eval("Ac-[$][-1[]].rcouon1# $-[][$[]].er", doc, "undefined");
}

static void test_compile_errors(void **state)
{
    (void)state;
    struct jsonata_expr *x = NULL;
    struct jsonata_error err;
    assert_int_equal(jsonata_compile("Account.Order;", &x, &err), CORE_EPARSE);
    assert_null(x);
    assert_string_equal(err.code, "S0201");
    assert_string_equal(err.token, ";");
    assert_true(err.position > 0);
    assert_int_equal(jsonata_compile("\"open", &x, &err), CORE_EPARSE);
    assert_string_equal(err.code, "S0101");
    assert_int_equal(jsonata_compile("1 +", &x, &err), CORE_EPARSE);
    assert_string_equal(err.code, "S0207");
    assert_int_equal(jsonata_compile("x := 1", &x, &err), CORE_EPARSE);
    assert_string_equal(err.code, "S0212");
    assert_int_equal(jsonata_compile("/* open", &x, &err), CORE_EPARSE);
    assert_string_equal(err.code, "S0106");
    assert_int_equal(jsonata_compile(NULL, &x, &err), CORE_EINVAL);
}

static void test_runtime_errors(void **state)
{
    (void)state;
    assert_eval("\"a\" + 1", NULL, "ERR T2001");
    assert_eval("1 + \"a\"", NULL, "ERR T2002");
    assert_eval("$string(1/0)", NULL, "ERR D3001");
    assert_eval("$sum(\"x\")", NULL, "ERR T0412");
    assert_eval("$foo()", NULL, "ERR T1006");

    struct jsonata_expr *x = NULL;
    struct jsonata_error err;
    json_t *r = NULL;
    assert_int_equal(jsonata_compile("$error(\"boom\")", &x, &err), 0);
    assert_int_equal(jsonata_evaluate(x, NULL, NULL, NULL, &r, &err), CORE_EINVAL);
    assert_null(r);
    assert_string_equal(err.code, "D3137");
    assert_string_equal(err.message, "boom");
    jsonata_destroy(x);
}

static void test_numbers_print_as_javascript(void **state)
{
    (void)state;
    assert_eval("0.1 + 0.2", NULL, "0.30000000000000004");
    assert_eval("1e21", NULL, "1e+21");
    assert_eval("1e-7", NULL, "1e-7");
    assert_eval("123456789012345680000", NULL, "123456789012345680000");
    assert_eval("$string(1/3)", NULL, "\"0.333333333333333\"");
    assert_eval("$string(5890840712243076)", NULL, "\"5890840712243076\"");
    assert_eval("$round(2.675, 2)", NULL, "2.68");
    assert_eval("$round(2.5)", NULL, "2");
    assert_eval("$round(3.5)", NULL, "4");
    char out[40];
    jn_fmt_number(-0.000001, out);
    assert_string_equal(out, "-0.000001");
    jn_fmt_number(100, out);
    assert_string_equal(out, "100");
}

static void test_strings_count_code_points(void **state)
{
    (void)state;
    assert_eval("$length(\"caf\\u00e9\")", NULL, "4");
    assert_eval("$length(\"\\uD834\\uDD1E\")", NULL, "1");
    assert_eval("$substring(\"h\\u00e9llo\", 1, 3)", NULL, "\"\xc3\xa9ll\"");
    assert_eval("$uppercase(\"abc\")", NULL, "\"ABC\"");
    assert_eval("$pad(\"x\", -3, \"#\")", NULL, "\"##x\"");
}

static void test_object_keys_keep_insertion_order(void **state)
{
    (void)state;
    assert_eval("{\"z\": 1, \"a\": 2, \"m\": 3}", NULL, "{\"z\":1,\"a\":2,\"m\":3}");
    assert_eval("$keys({\"z\": 1, \"a\": 2})", NULL, "[\"z\",\"a\"]");
    assert_eval("$", "{\"b\":1,\"a\":2}", "{\"b\":1,\"a\":2}");
    /* as in JavaScript, array-index keys come first, ascending */
    assert_eval("$string({\"z\": 1, \"10\": 2, \"9\": 3})", NULL,
                "\"{\\\"9\\\":3,\\\"10\\\":2,\\\"z\\\":1}\"");
}

static void test_regexes_follow_javascript(void **state)
{
    (void)state;
    assert_eval("$match(\"a\", /(x)?a/).groups", NULL, "[null]");
    assert_eval("$replace(\"a\", /(x)?a/, \"[$1]\")", NULL, "\"[]\"");
    assert_eval("$split(\"a\\u00a0b\", /\\s/)", NULL, "[\"a\",\"b\"]");
    assert_eval("$contains(\"a\\rb\", /a.b/)", NULL, "false");
    assert_eval("$contains(\"p{L}\", /\\p{L}/)", NULL, "true");
    assert_eval("$replace(\"abc\", /x*/, \"-\")", NULL, "ERR D1004");
    assert_eval("$uppercase(\"stra\\u00dfe \\u00e9\")", NULL, "\"STRASSE \xc3\x89\"");
}

static void test_tail_calls_run_in_constant_stack(void **state)
{
    (void)state;
    assert_eval("($loop := function($n, $acc){ $n = 0 ? $acc : $loop($n - 1, $acc + 1) };"
                " $loop(100000, 0))",
                NULL, "100000");
}

static void test_limits_end_in_u1001(void **state)
{
    (void)state;
    struct jsonata_expr *x = NULL;
    struct jsonata_error err;
    json_t *r = NULL;
    assert_int_equal(jsonata_compile("($f := function($n){ 1 + $f($n + 1) }; $f(0))",
                                     &x, &err), 0);
    struct jsonata_options opts = {.max_depth = 100};
    assert_int_equal(jsonata_evaluate(x, NULL, NULL, &opts, &r, &err), CORE_ETIMEOUT);
    assert_string_equal(err.code, "U1001");
    jsonata_destroy(x);

    assert_int_equal(jsonata_compile("($f := function(){ $f() }; $f())", &x, &err), 0);
    opts.max_depth = 0;
    opts.time_limit_ms = 50;
    assert_int_equal(jsonata_evaluate(x, NULL, NULL, &opts, &r, &err), CORE_ETIMEOUT);
    assert_string_equal(err.code, "U1001");
    jsonata_destroy(x);

    /* A left-associative chain 2,000 operators long is refused at compile
     * time instead of overflowing the stack while resolving (fuzzer find). */
    {
        char chain[4100];
        size_t k = 0;
        chain[k++] = '1';
        for (int i = 0; i < 2000; i++) {
            chain[k++] = '+';
            chain[k++] = '1';
        }
        chain[k] = '\0';
        assert_int_not_equal(jsonata_compile(chain, &x, &err), 0);
        assert_string_equal(err.code, "U1001");
    }

    /* A value nested 10,000 deep (built by a tail-recursive loop, so no
     * depth limit stops it) must not overflow the C stack when a built-in
     * walks it: found by the fuzzer. */
    assert_int_equal(jsonata_compile("($f := function($n, $a){$n = 0 ? $a : "
                                     "$f($n - 1, {\"a\": $a})}; "
                                     "$string($f(10000, 1)))",
                                     &x, &err), 0);
    assert_int_equal(jsonata_evaluate(x, NULL, NULL, NULL, &r, &err),
                     CORE_ETIMEOUT);
    assert_string_equal(err.code, "U1001");
    jsonata_destroy(x);

    /* Strings that double each round reach gigabytes within a few dozen
     * steps: the bytes made count towards the time limit, so the
     * evaluation ends in U1001 instead of running for minutes or out of
     * memory (fuzzer find: a timeout, escaping growing $string output). */
    static const char *const growing[] = {
        "($f := function($n, $a){$n = 0 ? $a : $f($n - 1, $a & $a)}; "
        "$f(100, \"x\"))",
        "($f := function($n, $a){$n = 0 ? $a : $f($n - 1, $string({\"a\": $a}))}; "
        "$f(10000, \"\\\"\"))",
    };
    for (size_t i = 0; i < sizeof growing / sizeof growing[0]; i++) {
        assert_int_equal(jsonata_compile(growing[i], &x, &err), 0);
        opts.time_limit_ms = 100;
        assert_int_equal(jsonata_evaluate(x, NULL, NULL, &opts, &r, &err),
                         CORE_ETIMEOUT);
        assert_string_equal(err.code, "U1001");
        jsonata_destroy(x);
    }
}

static int host_scale(void *user, json_t *const *args, size_t nargs,
                      json_t **result, struct jsonata_error *err)
{
    double factor = *(double *)user;
    assert_int_equal(nargs, 1);
    if (json_number_value(args[0]) < 0) {
        snprintf(err->code, sizeof(err->code), "D9001");
        snprintf(err->message, sizeof(err->message), "negative");
        return CORE_EINVAL;
    }
    *result = json_real(json_number_value(args[0]) * factor);
    return 0;
}

static void test_bindings_variables_and_functions(void **state)
{
    (void)state;
    double factor = 10;
    struct jsonata_bindings *b = jsonata_bindings_create();
    assert_non_null(b);
    json_t *limit = json_integer(80);
    assert_int_equal(jsonata_bindings_set(b, "limit", limit), 0);
    json_decref(limit);
    assert_int_equal(jsonata_bindings_set_function(b, "scale", "<n-:n>", host_scale, &factor), 0);
    assert_int_equal(jsonata_bindings_set_function(b, "bad", "<n", host_scale, &factor),
                     CORE_EINVAL);

    struct jsonata_expr *x = NULL;
    struct jsonata_error err;
    json_t *r = NULL;
    assert_int_equal(jsonata_compile("[$scale(2), temp.$scale(), temp > $limit]", &x, &err), 0);
    json_t *in = json_pack("{s:f}", "temp", 82.5);
    assert_int_equal(jsonata_evaluate(x, in, b, NULL, &r, &err), 0);
    struct core_buf out;
    core_buf_init(&out);
    jsonata_json_dump(&out, r, 0);
    assert_string_equal(out.data, "[20,825,true]");
    core_buf_fini(&out);
    json_decref(r);
    jsonata_destroy(x);

    assert_int_equal(jsonata_compile("$scale(\"x\")", &x, &err), 0);
    assert_int_equal(jsonata_evaluate(x, in, b, NULL, &r, &err), CORE_EINVAL);
    assert_string_equal(err.code, "T0410");
    jsonata_destroy(x);

    assert_int_equal(jsonata_compile("$scale(-1)", &x, &err), 0);
    assert_int_equal(jsonata_evaluate(x, in, b, NULL, &r, &err), CORE_EINVAL);
    assert_string_equal(err.code, "D9001");
    assert_string_equal(err.message, "negative");
    jsonata_destroy(x);
    json_decref(in);
    jsonata_bindings_destroy(b);
}

struct thread_arg {
    const struct jsonata_expr *x;
    int failures;
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 2000; i++) {
        json_t *in = json_pack("{s:i,s:[i,i,i]}", "k", i, "v", i, i + 1, i + 2);
        json_t *r = NULL;
        if (jsonata_evaluate(a->x, in, NULL, NULL, &r, NULL) != 0 ||
            json_integer_value(r) != (json_int_t)(4 * i + 3))
            a->failures++;
        json_decref(r);
        json_decref(in);
    }
    return NULL;
}

static void test_one_expression_many_threads(void **state)
{
    (void)state;
    struct jsonata_expr *x = NULL;
    assert_int_equal(jsonata_compile("k + $sum(v[$ > -1]) ~> $round(0)", &x, NULL), 0);
    pthread_t t[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i].x = x;
        args[i].failures = 0;
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    jsonata_destroy(x);
}

static void test_builtin_table_is_sorted(void **state)
{
    (void)state;
    for (int i = 1; i < jn_nbuiltins; i++)
        assert_true(strcmp(jn_builtins[i - 1].name, jn_builtins[i].name) < 0);
    jn_builtins_init();
    for (int i = 0; i < jn_nbuiltins; i++) {
        assert_non_null(jn_builtins[i].sig);
        assert_int_equal(jn_builtin_find(jn_builtins[i].name,
                                         strlen(jn_builtins[i].name)), i);
    }
}

/* Runs the CLI with stdout redirected to a file; returns its exit code
 * and the output. */
static int run_cli(int argc, char **argv, char *out, size_t outlen)
{
    char path[] = "/tmp/test_jsonata_cli_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    int rc = jsonata_cli_main(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, out, outlen - 1);
    out[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(path);
    return rc;
}

static void test_cli(void **state)
{
    (void)state;
    char in[] = "/tmp/test_jsonata_in_XXXXXX";
    int fd = mkstemp(in);
    assert_true(fd >= 0);
    const char *doc = "{\"metrics\":{\"temp\":20}}";
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    char out[256];
    char *ok[] = {"jsonata", "{\"f\": metrics.temp * 1.8 + 32}", in, NULL};
    assert_int_equal(run_cli(3, ok, out, sizeof out), 0);
    assert_string_equal(out, "{\"f\":68}\n");
    char *undef[] = {"jsonata", "nothing", in, NULL};
    assert_int_equal(run_cli(3, undef, out, sizeof out), 0);
    assert_string_equal(out, "");
    char *bad[] = {"jsonata", "1 +", in, NULL};
    assert_int_equal(run_cli(3, bad, out, sizeof out), 2);
    char *usage[] = {"jsonata", NULL};
    assert_int_equal(run_cli(1, usage, out, sizeof out), 1);
    unlink(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_and_operators),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_runtime_errors),
        cmocka_unit_test(test_numbers_print_as_javascript),
        cmocka_unit_test(test_strings_count_code_points),
        cmocka_unit_test(test_object_keys_keep_insertion_order),
        cmocka_unit_test(test_regexes_follow_javascript),
        cmocka_unit_test(test_tail_calls_run_in_constant_stack),
        cmocka_unit_test(test_limits_end_in_u1001),
        cmocka_unit_test(test_bindings_variables_and_functions),
        cmocka_unit_test(test_one_expression_many_threads),
        cmocka_unit_test(test_builtin_table_is_sorted),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
