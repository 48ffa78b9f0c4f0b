/*
 * Device API keys. A key reads "ak_<prefix>_<secret>": the 12-hex-digit
 * prefix finds the row, the 64-hex-digit secret is checked against its
 * BLAKE2b hash. Secrets are 256 random bits, so a fast hash is as strong as
 * a slow one here and keeps ingest cheap. The secret is shown once, when
 * the key is made.
 */
#include "api_internal.h"

#include <pthread.h>
#include <stddef.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX_HEX 12
#define SECRET_HEX 64

static void secret_hash(const char *secret, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)secret,
                       strlen(secret), NULL, 0);
    core_hex_encode(h, sizeof h, out);
}

/* --------------------------------------------------------- key cache
 * Recent successful verifications, found by the key's public prefix; the
 * secret presented must equal the one verified (compared in constant
 * time). A fixed table, shared by the process: an entry belongs to one
 * struct api, and when the table is full the oldest entry of a probe
 * window makes room. Entries last API_KEY_CACHE_MS. */
#define KEY_CACHE_SLOTS 2048 /* power of two */
#define KEY_CACHE_PROBE 8

struct key_cached {
    const struct api *api; /* NULL: empty */
    int64_t verified_ms;
    char prefix[PREFIX_HEX];
    char secret[SECRET_HEX];
    char key_id[CORE_UUID_STR_LEN];
    char org_id[CORE_UUID_STR_LEN];
    char device_id[CORE_UUID_STR_LEN];
};

static struct key_cached key_cache[KEY_CACHE_SLOTS];
static pthread_mutex_t key_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t key_cache_slot(const char *prefix)
{
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < PREFIX_HEX; i++)
        h = (h ^ (unsigned char)prefix[i]) * 1099511628211ull;
    return (size_t)h & (KEY_CACHE_SLOTS - 1);
}

static bool key_cache_get(const struct api *api, const char *prefix,
                          const char *secret, int64_t now,
                          struct api_principal *p)
{
    bool found = false;
    size_t at = key_cache_slot(prefix);
    pthread_mutex_lock(&key_cache_mu);
    for (int i = 0; i < KEY_CACHE_PROBE && !found; i++) {
        struct key_cached *e = &key_cache[(at + (size_t)i) & (KEY_CACHE_SLOTS - 1)];
        if (e->api != api || memcmp(e->prefix, prefix, PREFIX_HEX) != 0 ||
            now - e->verified_ms >= API_KEY_CACHE_MS ||
            now < e->verified_ms ||
            sodium_memcmp(e->secret, secret, SECRET_HEX) != 0)
            continue;
        p->kind = API_PRINCIPAL_DEVICE;
        memcpy(p->key_id, e->key_id, sizeof p->key_id);
        memcpy(p->org_id, e->org_id, sizeof p->org_id);
        memcpy(p->device_id, e->device_id, sizeof p->device_id);
        found = true;
    }
    pthread_mutex_unlock(&key_cache_mu);
    return found;
}

static void key_cache_put(const struct api *api, const char *prefix,
                          const char *secret, int64_t verified_ms,
                          const struct api_principal *p)
{
    size_t at = key_cache_slot(prefix);
    pthread_mutex_lock(&key_cache_mu);
    struct key_cached *victim = NULL;
    for (int i = 0; i < KEY_CACHE_PROBE; i++) {
        struct key_cached *e = &key_cache[(at + (size_t)i) & (KEY_CACHE_SLOTS - 1)];
        if (!e->api || (e->api == api &&
                        memcmp(e->prefix, prefix, PREFIX_HEX) == 0)) {
            victim = e;
            break;
        }
        if (!victim || e->verified_ms < victim->verified_ms)
            victim = e;
    }
    victim->api = api;
    victim->verified_ms = verified_ms;
    memcpy(victim->prefix, prefix, PREFIX_HEX);
    memcpy(victim->secret, secret, SECRET_HEX);
    memcpy(victim->key_id, p->key_id, sizeof victim->key_id);
    memcpy(victim->org_id, p->org_id, sizeof victim->org_id);
    memcpy(victim->device_id, p->device_id, sizeof victim->device_id);
    pthread_mutex_unlock(&key_cache_mu);
}

/* Forgets the entries whose id field at offset equals value. */
static void key_cache_forget_by(size_t offset, const char *value)
{
    pthread_mutex_lock(&key_cache_mu);
    for (size_t i = 0; i < KEY_CACHE_SLOTS; i++) {
        if (key_cache[i].api &&
            strcmp((const char *)&key_cache[i] + offset, value) == 0)
            memset(&key_cache[i], 0, sizeof key_cache[i]);
    }
    pthread_mutex_unlock(&key_cache_mu);
}

void api__key_cache_forget(const char *key_id)
{
    key_cache_forget_by(offsetof(struct key_cached, key_id), key_id);
}

void api__key_cache_forget_device(const char *device_id)
{
    key_cache_forget_by(offsetof(struct key_cached, device_id), device_id);
}

int api__key_verify(struct api *api, const char *key, bool cached,
                    struct api_principal *p, bool *ok)
{
    *ok = false;
    if (strlen(key) != 3 + PREFIX_HEX + 1 + SECRET_HEX ||
        strncmp(key, "ak_", 3) != 0 || key[3 + PREFIX_HEX] != '_')
        return CORE_OK;
    const char *secret = key + 4 + PREFIX_HEX;
    /* The time before the store is asked: an entry never outlives the
     * state it was checked against by more than API_KEY_CACHE_MS. */
    int64_t now = core_time_now_ms();
    if (cached && key_cache_get(api, key + 3, secret, now, p)) {
        *ok = true;
        return CORE_OK;
    }
    char prefix[PREFIX_HEX + 1];
    memcpy(prefix, key + 3, PREFIX_HEX);
    prefix[PREFIX_HEX] = '\0';
    char want[65];
    secret_hash(key + 4 + PREFIX_HEX, want);

    struct db_conn *c;
    int rc = db_conn_acquire(api->db, false, &c);
    if (rc)
        return rc;
    struct db_stmt *s;
    rc = db_prepare(c,
                    "SELECT k.id, k.organization_id, k.device_id, k.secret_hash "
                    "FROM api_keys k JOIN devices d ON d.id = k.device_id "
                    "WHERE k.prefix = ? AND k.revoked_at IS NULL AND "
                    "d.deleted_at IS NULL",
                    &s);
    if (rc == CORE_OK) {
        db_bind_text(s, 1, prefix);
        bool row;
        rc = db_step(s, &row);
        if (rc == CORE_OK && row &&
            sodium_memcmp(db_col_text(s, 3), want, 64) == 0) {
            p->kind = API_PRINCIPAL_DEVICE;
            snprintf(p->key_id, sizeof p->key_id, "%s", db_col_text(s, 0));
            snprintf(p->org_id, sizeof p->org_id, "%s", db_col_text(s, 1));
            snprintf(p->device_id, sizeof p->device_id, "%s", db_col_text(s, 2));
            *ok = true;
        }
        db_finalize(s);
    }
    db_conn_release(c);
    if (*ok)
        key_cache_put(api, prefix, secret, now, p);
    return rc;
}

static json_t *key_row_json(struct db_stmt *s)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "id", db_col_text(s, 0),
                     "name", db_col_text(s, 1), "prefix", db_col_text(s, 2),
                     "createdAt", db_col_text(s, 3), "lastUsedAt",
                     db_col_is_null(s, 4) ? json_null()
                                          : json_string(db_col_text(s, 4)),
                     "revokedAt",
                     db_col_is_null(s, 5) ? json_null()
                                          : json_string(db_col_text(s, 5)));
}

/* Inserts a new key for device and returns its JSON with the secret. */
static int key_create(struct db_conn *c, const struct api_principal *p,
                      const char *device_id, const char *name, json_t **out)
{
    unsigned char raw[6 + 32];
    core_random_bytes(raw, sizeof raw);
    char prefix[PREFIX_HEX + 1], secret[SECRET_HEX + 1], hash[65];
    core_hex_encode(raw, 6, prefix);
    core_hex_encode(raw + 6, 32, secret);
    secret_hash(secret, hash);
    char id[CORE_UUID_STR_LEN], now[CORE_TIME_ISO_LEN];
    core_uuid7(id);
    api__now(now);
    struct db_stmt *s;
    int rc = db_prepare(c,
                        "INSERT INTO api_keys (id, organization_id, device_id, "
                        "name, prefix, secret_hash, created_by, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        &s);
    if (rc)
        return rc;
    bool row;
    db_bind_text(s, 1, id);
    db_bind_text(s, 2, p->org_id);
    db_bind_text(s, 3, device_id);
    db_bind_text(s, 4, name);
    db_bind_text(s, 5, prefix);
    db_bind_text(s, 6, hash);
    db_bind_text(s, 7, p->user_id);
    db_bind_text(s, 8, now);
    rc = db_step(s, &row);
    db_finalize(s);
    if (rc)
        return rc;
    char key[3 + PREFIX_HEX + 1 + SECRET_HEX + 1];
    snprintf(key, sizeof key, "ak_%s_%s", prefix, secret);
    *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:n}", "id", id, "name",
                     name, "prefix", prefix, "key", key, "createdAt", now,
                     "lastUsedAt", "revokedAt");
    json_t *audit = json_pack("{s:s, s:s, s:s}", "deviceId", device_id, "name",
                              name, "prefix", prefix);
    rc = *out ? api__audit(c, p, "create", "api key", id, audit) : CORE_ENOMEM;
    return rc;
}

/* Looks up the device of the path in the caller's organisation; answers
 * 404 (or 400 for a malformed id) when it is not there. */
static bool device_of_path(struct db_conn *c, const struct http_req *req,
                           char id[CORE_UUID_STR_LEN], struct http_res *res)
{
    if (!api__path_id(req, "id", id, res))
        return false;
    bool exists;
    int rc = api__row_exists(c, "devices", api__principal(req)->org_id, id,
                             &exists);
    if (rc) {
        http_res_error(res, rc);
        return false;
    }
    if (!exists) {
        http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no device with id %s", id);
        return false;
    }
    return true;
}

static void create_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    if (!api__query_known(req, NULL, res))
        return;
    json_t *body = NULL;
    const char *name = "default";
    if (req->body_len) {
        body = http_req_json_object(req, res);
        if (!body)
            return;
        struct api_errors errs = {0};
        const char *k;
        json_t *v;
        json_object_foreach(body, k, v) {
            if (strcmp(k, "name") != 0)
                api__error_add(&errs, k, "is not a field of an API key");
            else if (!json_is_string(v) || json_string_length(v) == 0 ||
                     json_string_length(v) > 100)
                api__error_add(&errs, k, "must be a string of 1 to 100 bytes");
        }
        if (api__errors_answer(&errs, res)) {
            json_decref(body);
            return;
        }
        if (json_object_get(body, "name"))
            name = json_string_value(json_object_get(body, "name"));
    }
    struct db_conn *c = api__conn(api, true, res);
    if (!c) {
        json_decref(body);
        return;
    }
    char dev[CORE_UUID_STR_LEN];
    json_t *out = NULL;
    int rc = db_begin(c);
    if (rc == CORE_OK && !device_of_path(c, req, dev, res)) {
        db_rollback(c);
        goto release;
    }
    if (rc == CORE_OK)
        rc = key_create(c, api__principal(req), dev, name, &out);
    if (rc == CORE_OK)
        rc = db_commit(c);
    if (rc) {
        db_rollback(c);
        json_decref(out);
        http_res_error(res, rc);
    } else {
        http_res_json(res, 201, out);
    }
release:
    db_conn_release(c);
    json_decref(body);
}

static void list_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    static const char *const q[] = {"limit", "offset", NULL};
    int64_t limit, offset;
    if (!api__query_known(req, q, res) || !api__paging(req, &limit, &offset, res))
        return;
    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        return;
    char dev[CORE_UUID_STR_LEN];
    if (!device_of_path(c, req, dev, res)) {
        db_conn_release(c);
        return;
    }
    json_t *items = json_array();
    struct db_stmt *s;
    int64_t total = 0;
    int rc = db_prepare(c,
                        "SELECT id, name, prefix, created_at, last_used_at, "
                        "revoked_at FROM api_keys WHERE device_id = ? AND "
                        "organization_id = ? ORDER BY created_at, id LIMIT ? "
                        "OFFSET ?",
                        &s);
    bool row;
    if (rc == CORE_OK) {
        db_bind_text(s, 1, dev);
        db_bind_text(s, 2, api__principal(req)->org_id);
        db_bind_int64(s, 3, limit);
        db_bind_int64(s, 4, offset);
        while ((rc = db_step(s, &row)) == CORE_OK && row)
            json_array_append_new(items, key_row_json(s));
        db_finalize(s);
    }
    if (rc == CORE_OK &&
        (rc = db_prepare(c, "SELECT count(*) FROM api_keys WHERE device_id = ?",
                         &s)) == CORE_OK) {
        db_bind_text(s, 1, dev);
        if ((rc = db_step(s, &row)) == CORE_OK && row)
            total = db_col_int64(s, 0);
        db_finalize(s);
    }
    db_conn_release(c);
    if (rc) {
        json_decref(items);
        http_res_error(res, rc);
        return;
    }
    http_res_json(res, 200, api__page(items, limit, offset, total));
}

/* Revokes the path's key; *name receives its name (for a rotation).
 * Answers 404 when the key is not the device's or already revoked. */
static bool revoke(struct db_conn *c, struct http_req *req, const char *dev,
                   char *name, size_t name_len,
                   char key_id[CORE_UUID_STR_LEN], struct http_res *res,
                   int *rc)
{
    if (!api__path_id(req, "keyId", key_id, res))
        return false;
    const struct api_principal *p = api__principal(req);
    struct db_stmt *s;
    bool row = false;
    *rc = db_prepare(c,
                     "SELECT name FROM api_keys WHERE id = ? AND device_id = ? "
                     "AND organization_id = ? AND revoked_at IS NULL",
                     &s);
    if (*rc)
        return false;
    db_bind_text(s, 1, key_id);
    db_bind_text(s, 2, dev);
    db_bind_text(s, 3, p->org_id);
    *rc = db_step(s, &row);
    if (*rc == CORE_OK && row)
        snprintf(name, name_len, "%s", db_col_text(s, 0));
    db_finalize(s);
    if (*rc)
        return false;
    if (!row) {
        http_res_problem(res, HTTP_PROBLEM_NOT_FOUND,
                         "no active API key with id %s on this device", key_id);
        return false;
    }
    char now[CORE_TIME_ISO_LEN];
    api__now(now);
    *rc = db_prepare(c, "UPDATE api_keys SET revoked_at = ? WHERE id = ?", &s);
    if (*rc)
        return false;
    db_bind_text(s, 1, now);
    db_bind_text(s, 2, key_id);
    *rc = db_step(s, &row);
    db_finalize(s);
    if (*rc == CORE_OK)
        *rc = api__audit(c, p, "revoke", "api key", key_id, NULL);
    return *rc == CORE_OK;
}

static void key_change(struct http_req *req, struct http_res *res, void *ctx,
                       bool rotate)
{
    struct api *api = ctx;
    if (!api__query_known(req, NULL, res))
        return;
    struct db_conn *c = api__conn(api, true, res);
    if (!c)
        return;
    char dev[CORE_UUID_STR_LEN], name[128], key_id[CORE_UUID_STR_LEN];
    json_t *out = NULL;
    int rc = db_begin(c);
    if (rc == CORE_OK &&
        (!device_of_path(c, req, dev, res) ||
         !revoke(c, req, dev, name, sizeof name, key_id, res, &rc))) {
        db_rollback(c);
        if (rc)
            http_res_error(res, rc);
        goto release;
    }
    if (rc == CORE_OK && rotate)
        rc = key_create(c, api__principal(req), dev, name, &out);
    if (rc == CORE_OK)
        rc = db_commit(c);
    if (rc == CORE_OK)
        api__key_cache_forget(key_id); /* committed: no one re-caches it */
    if (rc) {
        db_rollback(c);
        json_decref(out);
        http_res_error(res, rc);
    } else if (rotate) {
        http_res_json(res, 201, out);
    } else {
        res->status = 204;
    }
release:
    db_conn_release(c);
}

static void rotate_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    key_change(req, res, ctx, true);
}

static void revoke_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    key_change(req, res, ctx, false);
}

/* The device behind the key: lets a device (or its installer) check a key. */
static void whoami_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    const struct api_principal *p = api__principal(req);
    if (!api__query_known(req, NULL, res))
        return;
    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        return;
    json_t *dev = NULL;
    int rc = api__resource_fetch(c, &api_res_devices, p->org_id, p->device_id,
                                 &dev);
    db_conn_release(c);
    if (rc || !dev)
        http_res_error(res, rc ? rc : CORE_ENOTFOUND);
    else
        http_res_json(res, 200, dev);
}

static const struct api_op op_create = {API_OP_CUSTOM, NULL, "ApiKeyCreate",
                                        "ApiKeySecret", 201, NULL};
static const char *const page_query[] = {"limit", "offset", NULL};
static const struct api_op op_list = {API_OP_CUSTOM, NULL, NULL, "List:ApiKey",
                                      200, page_query};
static const struct api_op op_rotate = {API_OP_CUSTOM, NULL, NULL,
                                        "ApiKeySecret", 201, NULL};
static const struct api_op op_revoke = {API_OP_CUSTOM, NULL, NULL, NULL, 204,
                                        NULL};
static const struct api_op op_whoami = {API_OP_CUSTOM, NULL, NULL, "Device",
                                        200, NULL};

int api__keys_routes(struct http_router *r)
{
    const struct http_route routes[] = {
        {HTTP_POST, "/api/v1/devices/:id/api-keys", create_handler,
         API_ROLE_OPERATOR, &op_create,
         "Create an API key for a device (the secret is shown once)", "api_keys"},
        {HTTP_GET, "/api/v1/devices/:id/api-keys", list_handler,
         API_ROLE_OPERATOR, &op_list, "List a device's API keys (prefixes only)",
         "api_keys"},
        {HTTP_POST, "/api/v1/devices/:id/api-keys/:keyId/rotate", rotate_handler,
         API_ROLE_OPERATOR, &op_rotate,
         "Revoke a key and issue its replacement", "api_keys"},
        {HTTP_DELETE, "/api/v1/devices/:id/api-keys/:keyId", revoke_handler,
         API_ROLE_OPERATOR, &op_revoke, "Revoke an API key", "api_keys"},
        {HTTP_GET, "/api/v1/auth/device", whoami_handler, API_ACCESS_DEVICE,
         &op_whoami, "The device an API key belongs to", "auth"},
    };
    return http_router_add_all(r, routes, sizeof routes / sizeof routes[0]);
}
