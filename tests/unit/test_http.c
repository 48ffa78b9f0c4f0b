#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "http.h"

static void noop(struct http_req *req, struct http_res *res, void *ctx)
{
    (void)req, (void)res, (void)ctx;
}

static struct http_router *make_router(void)
{
    static const struct http_route routes[] = {
        {HTTP_GET, "/api/v1/devices", noop, 0, NULL, "list", "devices"},
        {HTTP_POST, "/api/v1/devices", noop, 0, NULL, "create", "devices"},
        {HTTP_GET, "/api/v1/devices/:id", noop, 0, NULL, "get", "devices"},
        {HTTP_DELETE, "/api/v1/devices/:id", noop, 0, NULL, "del", "devices"},
        {HTTP_POST, "/api/v1/devices/:id/api-keys/:keyId/rotate", noop, 0,
         NULL, "rotate", "devices"},
    };
    struct http_router *r;
    assert_int_equal(http_router_create(&r), 0);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        assert_int_equal(http_router_add(r, &routes[i]), 0);
    return r;
}

static void test_router_matches_params(void **state)
{
    (void)state;
    struct http_router *r = make_router();
    struct http_req req = {0};
    unsigned allowed;
    char p1[] = "/api/v1/devices/abc/api-keys/k1/rotate";
    const struct http_route *rt =
        http_router_match(r, HTTP_POST, p1, &req, &allowed);
    assert_non_null(rt);
    assert_string_equal(rt->summary, "rotate");
    assert_string_equal(http_req_param(&req, "id"), "abc");
    assert_string_equal(http_req_param(&req, "keyId"), "k1");
    assert_null(http_req_param(&req, "nope"));

    char p2[] = "/api/v1/devices/";
    rt = http_router_match(r, HTTP_GET, p2, &req, &allowed);
    assert_non_null(rt); /* a trailing slash names the same resource */
    assert_string_equal(rt->summary, "list");

    char p3[] = "/api/v1/devices/x";
    rt = http_router_match(r, HTTP_HEAD, p3, &req, &allowed);
    assert_non_null(rt); /* HEAD is served by GET */
    assert_string_equal(rt->summary, "get");
    http_router_destroy(r);
}

static void test_router_reports_allowed_methods(void **state)
{
    (void)state;
    struct http_router *r = make_router();
    struct http_req req = {0};
    unsigned allowed;
    char p1[] = "/api/v1/devices/x";
    assert_null(http_router_match(r, HTTP_PUT, p1, &req, &allowed));
    assert_int_equal(allowed, HTTP_GET | HTTP_DELETE);
    char p2[] = "/api/v1/nothing";
    assert_null(http_router_match(r, HTTP_GET, p2, &req, &allowed));
    assert_int_equal(allowed, 0);
    char p3[] = "/api/v1/devices/x/y";
    assert_null(http_router_match(r, HTTP_GET, p3, &req, &allowed));
    assert_int_equal(allowed, 0);
    http_router_destroy(r);
}

/* Many routes: the table grows past its first allocation and every route
 * still matches with its parameters. */
static void test_router_grows(void **state)
{
    (void)state;
    struct http_router *r;
    assert_int_equal(http_router_create(&r), 0);
    static char patterns[300][64];
    for (int i = 0; i < 300; i++) {
        snprintf(patterns[i], sizeof patterns[i], "/r%d/:id/x%d", i, i);
        struct http_route rt = {HTTP_GET, patterns[i], noop, i, NULL, NULL, NULL};
        assert_int_equal(http_router_add(r, &rt), 0);
    }
    assert_int_equal(http_router_count(r), 300);
    for (int i = 0; i < 300; i += 37) {
        char path[64];
        snprintf(path, sizeof path, "/r%d/abc%d/x%d", i, i, i);
        struct http_req req = {0};
        unsigned allowed;
        const struct http_route *rt =
            http_router_match(r, HTTP_GET, path, &req, &allowed);
        assert_non_null(rt);
        assert_int_equal(rt->access, i);
        char want[16];
        snprintf(want, sizeof want, "abc%d", i);
        assert_string_equal(http_req_param(&req, "id"), want);
    }
    http_router_destroy(r);
}

static void test_problem_body(void **state)
{
    (void)state;
    struct http_res res = {0};
    http_res_problem_ext(&res, HTTP_PROBLEM_VALIDATION,
                         json_pack("{s:[s]}", "errors", "name: required"),
                         "%d problems", 1);
    assert_int_equal(res.status, 400);
    assert_string_equal(res.content_type, "application/problem+json");
    json_t *o = json_loads(res.body, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "type")),
                        "urn:argus:problem:validation");
    assert_string_equal(json_string_value(json_object_get(o, "detail")),
                        "1 problems");
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 400);
    assert_true(json_is_array(json_object_get(o, "errors")));
    json_decref(o);
    free(res.body);

    res = (struct http_res){0};
    http_res_error(&res, CORE_EBUSY);
    assert_int_equal(res.status, 503);
    assert_string_equal(res.headers[0].key, "Retry-After");
    free(res.body);
    free((char *)res.headers[0].value);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_matches_params),
        cmocka_unit_test(test_router_reports_allowed_methods),
        cmocka_unit_test(test_router_grows),
        cmocka_unit_test(test_problem_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
