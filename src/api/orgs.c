/* Organisations: the caller's own (read, rename), and creation for the CLI
 * and the demo seeder. */
#include "api_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int org_json(struct db_conn *c, const char *org_id, json_t **out)
{
    struct db_stmt *s;
    *out = NULL;
    int rc = db_prepare(c,
                        "SELECT id, name, slug, settings, created_at, updated_at "
                        "FROM organizations WHERE id = ? AND deleted_at IS NULL",
                        &s);
    if (rc)
        return rc;
    db_bind_text(s, 1, org_id);
    bool row;
    rc = db_step(s, &row);
    if (rc == CORE_OK && row) {
        json_t *settings = json_loads(db_col_text(s, 3), 0, NULL);
        *out = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "id",
                         db_col_text(s, 0), "name", db_col_text(s, 1), "slug",
                         db_col_text(s, 2), "settings",
                         settings ? settings : json_object(), "createdAt",
                         db_col_text(s, 4), "updatedAt", db_col_text(s, 5));
    }
    db_finalize(s);
    return rc == CORE_OK && !*out ? CORE_ENOTFOUND : rc;
}

static void get_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    if (!api__query_known(req, NULL, res))
        return;
    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        return;
    json_t *o;
    int rc = org_json(c, api__principal(req)->org_id, &o);
    db_conn_release(c);
    if (rc)
        http_res_error(res, rc);
    else
        http_res_json(res, 200, o);
}

static void patch_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    const struct api_principal *p = api__principal(req);
    if (!api__query_known(req, NULL, res))
        return;
    json_t *body = http_req_json_object(req, res);
    if (!body)
        return;
    struct api_errors errs = {0};
    const char *k;
    json_t *v;
    if (json_object_size(body) == 0)
        api__error_add(&errs, "body", "names no field to change");
    json_object_foreach(body, k, v) {
        if (strcmp(k, "name") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0 ||
                json_string_length(v) > 200)
                api__error_add(&errs, k, "must be a string of 1 to 200 bytes");
        } else if (strcmp(k, "settings") == 0) {
            if (!json_is_object(v))
                api__error_add(&errs, k, "must be a JSON object");
        } else {
            api__error_add(&errs, k, "is not a field of an organization that can be changed");
        }
    }
    if (api__errors_answer(&errs, res)) {
        json_decref(body);
        return;
    }
    struct db_conn *c = api__conn(api, true, res);
    if (!c) {
        json_decref(body);
        return;
    }
    json_t *before = NULL, *after = NULL;
    char now[CORE_TIME_ISO_LEN];
    api__now(now);
    int rc = db_begin(c);
    if (rc == CORE_OK)
        rc = org_json(c, p->org_id, &before);
    struct db_stmt *s;
    bool row;
    json_t *name = json_object_get(body, "name");
    json_t *settings = json_object_get(body, "settings");
    if (rc == CORE_OK &&
        (rc = db_prepare(c,
                         "UPDATE organizations SET name = COALESCE(?, name), "
                         "settings = COALESCE(?, settings), updated_at = ? "
                         "WHERE id = ?",
                         &s)) == CORE_OK) {
        char *js = settings ? json_dumps(settings, JSON_COMPACT) : NULL;
        if (name)
            db_bind_text(s, 1, json_string_value(name));
        else
            db_bind_null(s, 1);
        if (js)
            db_bind_text(s, 2, js);
        else
            db_bind_null(s, 2);
        db_bind_text(s, 3, now);
        db_bind_text(s, 4, p->org_id);
        rc = db_step(s, &row);
        db_finalize(s);
        free(js);
    }
    if (rc == CORE_OK)
        rc = org_json(c, p->org_id, &after);
    if (rc == CORE_OK)
        rc = api__audit(c, p, "update", "organization", p->org_id,
                        json_pack("{s:O, s:O}", "from", before, "to", body));
    if (rc == CORE_OK)
        rc = db_commit(c);
    db_conn_release(c);
    if (rc) {
        json_decref(after);
        http_res_error(res, rc);
    } else {
        http_res_json(res, 200, after);
    }
    json_decref(before);
    json_decref(body);
}

static void slugify(const char *name, char *out, size_t len)
{
    size_t j = 0;
    bool dash = false;
    for (const char *c = name; *c && j + 1 < len; c++) {
        if (isalnum((unsigned char)*c)) {
            if (dash && j)
                out[j++] = '-';
            dash = false;
            if (j + 1 < len)
                out[j++] = (char)tolower((unsigned char)*c);
        } else {
            dash = true;
        }
    }
    out[j] = '\0';
    if (j == 0)
        snprintf(out, len, "org");
}

int api_org_create(struct db *db, const char *name, const char *admin_email,
                   const char *admin_password, char org_id[37])
{
    if (!name || !*name || strlen(name) > 200 || !admin_email ||
        !strchr(admin_email, '@') || strlen(admin_email) > 320 ||
        !admin_password || strlen(admin_password) < 8)
        return CORE_EINVAL;
    char slug[64], email[321], user_id[CORE_UUID_STR_LEN], now[CORE_TIME_ISO_LEN];
    slugify(name, slug, sizeof slug);
    snprintf(email, sizeof email, "%s", admin_email);
    for (char *c = email; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    char *hash;
    int rc = api__password_hash(admin_password, &hash);
    if (rc)
        return rc;
    core_uuid7(org_id);
    core_uuid7(user_id);
    api__now(now);
    struct db_conn *c;
    rc = db_conn_acquire(db, true, &c);
    if (rc) {
        free(hash);
        return rc;
    }
    struct db_stmt *s;
    bool row;
    rc = db_begin(c);
    if (rc == CORE_OK &&
        (rc = db_prepare(c,
                         "INSERT INTO organizations (id, name, slug, created_at, "
                         "updated_at) VALUES (?, ?, ?, ?, ?)",
                         &s)) == CORE_OK) {
        db_bind_text(s, 1, org_id);
        db_bind_text(s, 2, name);
        db_bind_text(s, 3, slug);
        db_bind_text(s, 4, now);
        db_bind_text(s, 5, now);
        rc = db_step(s, &row);
        db_finalize(s);
    }
    if (rc == CORE_OK &&
        (rc = db_prepare(c,
                         "INSERT INTO users (id, organization_id, email, name, "
                         "role, password_hash, created_at, updated_at) VALUES "
                         "(?, ?, ?, ?, 'admin', ?, ?, ?)",
                         &s)) == CORE_OK) {
        db_bind_text(s, 1, user_id);
        db_bind_text(s, 2, org_id);
        db_bind_text(s, 3, email);
        db_bind_text(s, 4, "Administrator");
        db_bind_text(s, 5, hash);
        db_bind_text(s, 6, now);
        db_bind_text(s, 7, now);
        rc = db_step(s, &row);
        db_finalize(s);
    }
    if (rc == CORE_OK) {
        struct api_principal p = {.kind = API_PRINCIPAL_USER,
                                  .role = API_ROLE_ADMIN};
        memcpy(p.org_id, org_id, CORE_UUID_STR_LEN);
        memcpy(p.user_id, user_id, CORE_UUID_STR_LEN);
        rc = api__audit(c, &p, "create", "organization", org_id,
                        json_pack("{s:s, s:s, s:s}", "name", name, "slug", slug,
                                  "adminEmail", email));
    }
    if (rc == CORE_OK)
        rc = db_commit(c);
    else
        db_rollback(c);
    db_conn_release(c);
    free(hash);
    return rc;
}

static const struct api_op op_get = {API_OP_CUSTOM, NULL, NULL, "Organization",
                                     200, NULL};
static const struct api_op op_patch = {API_OP_CUSTOM, NULL, "OrganizationUpdate",
                                       "Organization", 200, NULL};

int api__org_routes(struct http_router *r)
{
    const struct http_route routes[] = {
        {HTTP_GET, "/api/v1/organization", get_handler, API_ROLE_VIEWER, &op_get,
         "The caller's organisation", "organization"},
        {HTTP_PATCH, "/api/v1/organization", patch_handler, API_ROLE_ADMIN,
         &op_patch, "Rename the organisation or change its settings",
         "organization"},
    };
    return http_router_add_all(r, routes, sizeof routes / sizeof routes[0]);
}
