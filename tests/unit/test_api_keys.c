/*
 * The verified-key cache of device API keys (src/api/keys.c): a cached
 * verification is reused only for the same api, the same secret and within
 * API_KEY_CACHE_MS; revoking through api__key_cache_forget ends it at once;
 * wrong keys are never cached; uncached verification always asks the store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_internal.h"

#define ORG "0195a000-0000-7000-8000-000000000001"
#define TYPE "0195a000-0000-7000-8000-000000000002"
#define DEV "0195a000-0000-7000-8000-000000000003"
#define KEY_ID "0195a000-0000-7000-8000-000000000004"
#define PREFIX "a1b2c3d4e5f6"
#define SECRET "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY "ak_" PREFIX "_" SECRET

struct fixture {
    char dir[64];
    struct db *db;
    struct api a, b; /* two apis on one store: entries are per api */
};

static void exec_ok(struct db *db, const char *sql)
{
    struct db_conn *c;
    assert_int_equal(db_conn_acquire(db, true, &c), CORE_OK);
    int rc = db_exec(c, sql);
    if (rc != CORE_OK)
        fail_msg("%s: %s", sql, db_errmsg(c));
    db_conn_release(c);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(core_init(), CORE_OK);
    snprintf(f->dir, sizeof f->dir, "/tmp/argus-keys-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s/t.db", f->dir);
    struct db_options o = {.pool_size = 2, .busy_timeout_ms = 5000};
    assert_int_equal(db_open(url, &o, &f->db), CORE_OK);
    int applied;
    assert_int_equal(db_migrate(f->db, &applied), CORE_OK);
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)SECRET,
                       strlen(SECRET), NULL, 0);
    char hex[65];
    core_hex_encode(h, sizeof h, hex);
    char sql[1024];
    exec_ok(f->db, "INSERT INTO organizations (id, name, slug, created_at, "
                   "updated_at) VALUES ('" ORG "', 'o', 'o', 'x', 'x')");
    exec_ok(f->db, "INSERT INTO device_types (id, organization_id, name, "
                   "created_at, updated_at) VALUES ('" TYPE "', '" ORG
                   "', 't', 'x', 'x')");
    exec_ok(f->db, "INSERT INTO devices (id, organization_id, device_type_id, "
                   "name, created_at, updated_at) VALUES ('" DEV "', '" ORG
                   "', '" TYPE "', 'd', 'x', 'x')");
    snprintf(sql, sizeof sql,
             "INSERT INTO api_keys (id, organization_id, device_id, name, "
             "prefix, secret_hash, created_at) VALUES ('" KEY_ID "', '" ORG
             "', '" DEV "', 'k', '" PREFIX "', '%s', 'x')",
             hex);
    exec_ok(f->db, sql);
    f->a.db = f->db;
    f->b.db = f->db;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    db_close(f->db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static bool verify(struct api *api, const char *key, bool cached)
{
    struct api_principal p;
    memset(&p, 0, sizeof p);
    bool ok = false;
    assert_int_equal(api__key_verify(api, key, cached, &p, &ok), CORE_OK);
    if (ok) {
        assert_string_equal(p.device_id, DEV);
        assert_string_equal(p.org_id, ORG);
        assert_string_equal(p.key_id, KEY_ID);
        assert_int_equal(p.kind, API_PRINCIPAL_DEVICE);
    }
    return ok;
}

static void test_key_cache(void **state)
{
    struct fixture *f = *state;
    /* Verified once through the store, then cached for api a. */
    assert_true(verify(&f->a, KEY, true));
    /* Another secret with the same prefix is refused, cached or not. */
    char wrong[] = KEY;
    wrong[sizeof wrong - 2] ^= 1;
    assert_false(verify(&f->a, wrong, true));
    assert_false(verify(&f->a, wrong, false));

    /* Revoked in the store behind the cache's back (as another process
     * would): uncached verification sees it at once; the cache for at
     * most API_KEY_CACHE_MS; another api never had the entry. */
    exec_ok(f->db, "UPDATE api_keys SET revoked_at = 'x' WHERE id = '" KEY_ID
                   "'");
    assert_false(verify(&f->a, KEY, false));
    assert_false(verify(&f->b, KEY, true));
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool still = verify(&f->a, KEY, true);
    double waited = 0;
    while (still) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        waited = (double)(t.tv_sec - t0.tv_sec) +
                 (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
        if (waited > API_KEY_CACHE_MS / 1000.0 + 1.0)
            fail_msg("a revoked key was still taken after %.2f s", waited);
        usleep(20000);
        still = verify(&f->a, KEY, true);
    }

    /* Revoked through the API (api__key_cache_forget after the commit):
     * at once. */
    exec_ok(f->db, "UPDATE api_keys SET revoked_at = NULL WHERE id = '" KEY_ID
                   "'");
    assert_true(verify(&f->a, KEY, true));
    exec_ok(f->db, "UPDATE api_keys SET revoked_at = 'x' WHERE id = '" KEY_ID
                   "'");
    api__key_cache_forget(KEY_ID);
    assert_false(verify(&f->a, KEY, true));
    /* Failures are not cached: restored, the key works at once. */
    exec_ok(f->db, "UPDATE api_keys SET revoked_at = NULL WHERE id = '" KEY_ID
                   "'");
    assert_true(verify(&f->a, KEY, true));
    /* A deleted device's key: uncached at once. */
    exec_ok(f->db, "UPDATE devices SET deleted_at = 'x' WHERE id = '" DEV "'");
    assert_false(verify(&f->a, KEY, false));
    exec_ok(f->db, "UPDATE devices SET deleted_at = NULL WHERE id = '" DEV "'");
    /* Malformed keys never reach the cache or the store. */
    assert_false(verify(&f->a, "ak_short", true));
    assert_false(verify(&f->a, "", true));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_cache),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
