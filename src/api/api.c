#include "api_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The JWT key: derived from the configured secret, or 32 random bytes made
 * on first start and kept in the store so that every process of a
 * deployment (and every restart) signs and verifies alike. */
static int load_key(struct api *api)
{
    if (api->cfg.jwt_secret && *api->cfg.jwt_secret) {
        crypto_generichash(api->jwt_key, sizeof api->jwt_key,
                           (const unsigned char *)api->cfg.jwt_secret,
                           strlen(api->cfg.jwt_secret), NULL, 0);
        return CORE_OK;
    }
    struct db_conn *c;
    int rc = db_conn_acquire(api->db, true, &c);
    if (rc)
        return rc;
    unsigned char raw[32];
    char hex[65];
    core_random_bytes(raw, sizeof raw);
    core_hex_encode(raw, sizeof raw, hex);
    struct db_stmt *s;
    bool row;
    rc = db_prepare(c,
                    "INSERT INTO settings (key, value) VALUES ('jwt_secret', ?) "
                    "ON CONFLICT (key) DO NOTHING",
                    &s);
    if (rc == CORE_OK) {
        db_bind_text(s, 1, hex);
        rc = db_step(s, &row);
        db_finalize(s);
    }
    if (rc == CORE_OK &&
        (rc = db_prepare(c, "SELECT value FROM settings WHERE key = 'jwt_secret'",
                         &s)) == CORE_OK) {
        rc = db_step(s, &row);
        if (rc == CORE_OK && row) {
            size_t len = 0;
            if (sodium_hex2bin(api->jwt_key, sizeof api->jwt_key,
                               db_col_text(s, 0), 64, NULL, &len, NULL) != 0 ||
                len != sizeof api->jwt_key)
                rc = CORE_EDB;
        } else if (rc == CORE_OK) {
            rc = CORE_EDB;
        }
        db_finalize(s);
    }
    db_conn_release(c);
    return rc;
}

int api_create(const struct api_config *cfg, struct db *db, struct api **out)
{
    struct api *api = calloc(1, sizeof *api);
    if (!api)
        return CORE_ENOMEM;
    api->cfg = *cfg;
    api->db = db;
    api->tsdb = cfg->tsdb;
    api->pipeline = cfg->pipeline;
    api->limits = cfg->limits;
    pipeline_limits_default(&api->limits);
    int rc = load_key(api);
    if (rc) {
        core_log_error("api", "msg=\"cannot load the JWT secret\" err=%s",
                       core_err_name(rc));
        free(api);
        return rc;
    }
    *out = api;
    return CORE_OK;
}

void api_destroy(struct api *api)
{
    if (!api)
        return;
    for (int i = 0; i < api->nallocs; i++)
        free(api->allocs[i]);
    sodium_memzero(api->jwt_key, sizeof api->jwt_key);
    free(api);
}

void api_set_ready(struct api *api, bool ready)
{
    if (api)
        api->ready = ready;
}

int api_system_routes_register(struct api *api, struct http_router *router)
{
    api->router = router;
    return api__system_routes(router);
}

int api_routes_register(struct api *api, struct http_router *router)
{
    int (*const modules[])(struct http_router *) = {
        api__system_routes, api__openapi_routes, api__auth_routes,
        api__org_routes,    api__keys_routes,    api__audit_routes,
        api__asset_routes,  api__telemetry_routes, api__dlq_routes,
    };
    api->router = router;
    for (size_t i = 0; i < sizeof modules / sizeof modules[0]; i++) {
        int rc = modules[i](router);
        if (rc)
            return rc;
    }
    for (int i = 0; api_resources[i]; i++) {
        int rc = api__resource_routes(api, router, api_resources[i]);
        if (rc)
            return rc;
    }
    return CORE_OK;
}
