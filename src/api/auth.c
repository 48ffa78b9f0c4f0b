/*
 * Authentication: users sign in with email and password (argon2id) for a
 * JWT (HS256); devices present an API key. api_authenticate runs before
 * every routed handler and decides from the route's access value.
 */
#include "api_internal.h"

#include <jwt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int api__password_hash(const char *password, char **out)
{
    *out = malloc(crypto_pwhash_STRBYTES);
    if (!*out)
        return CORE_ENOMEM;
    if (crypto_pwhash_str(*out, password, strlen(password),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        free(*out);
        *out = NULL;
        return CORE_ENOMEM; /* argon2 could not get its memory */
    }
    return CORE_OK;
}

bool api__password_verify(const char *hash, const char *password)
{
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

/* A hash of a password nobody has, verified when the email is unknown so
 * that a failed sign-in takes as long either way. */
static char dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static void make_dummy(void)
{
    char pw[33];
    unsigned char raw[16];
    core_random_bytes(raw, sizeof raw);
    core_hex_encode(raw, sizeof raw, pw);
    if (crypto_pwhash_str(dummy_hash, pw, strlen(pw),
                      crypto_pwhash_OPSLIMIT_INTERACTIVE,
                      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        dummy_hash[0] = '\0'; /* verify then fails, as it should */
}

/* ---------------------------------------------------------------- tokens */

static char *token_issue(struct api *api, const char *user_id,
                         const char *org_id, const char *role,
                         int64_t *expires_at)
{
    jwt_t *jwt = NULL;
    char *tok = NULL;
    int64_t now = core_time_now_ms() / 1000;
    int64_t ttl = api->cfg.token_ttl_s > 0 ? api->cfg.token_ttl_s : 12 * 3600;
    if (jwt_new(&jwt) != 0)
        return NULL;
    if (jwt_add_grant(jwt, "iss", "argus") == 0 &&
        jwt_add_grant(jwt, "sub", user_id) == 0 &&
        jwt_add_grant(jwt, "org", org_id) == 0 &&
        jwt_add_grant(jwt, "role", role) == 0 &&
        jwt_add_grant_int(jwt, "iat", now) == 0 &&
        jwt_add_grant_int(jwt, "exp", now + ttl) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, api->jwt_key, sizeof api->jwt_key) == 0)
        tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    *expires_at = (now + ttl) * 1000;
    return tok;
}

/* Verifies signature, algorithm, issuer and expiry; fills the principal's
 * user and organisation. The role is read again from the store. */
static bool token_verify(struct api *api, const char *tok,
                         struct api_principal *p)
{
    jwt_t *jwt = NULL;
    bool ok = false;
    if (jwt_decode(&jwt, tok, api->jwt_key, sizeof api->jwt_key) != 0)
        return false;
    const char *sub = jwt_get_grant(jwt, "sub");
    const char *org = jwt_get_grant(jwt, "org");
    const char *iss = jwt_get_grant(jwt, "iss");
    long exp = jwt_get_grant_int(jwt, "exp");
    if (jwt_get_alg(jwt) == JWT_ALG_HS256 && iss && strcmp(iss, "argus") == 0 &&
        core_uuid_valid(sub) && core_uuid_valid(org) &&
        exp > core_time_now_ms() / 1000) {
        p->kind = API_PRINCIPAL_USER;
        snprintf(p->user_id, sizeof p->user_id, "%s", sub);
        snprintf(p->org_id, sizeof p->org_id, "%s", org);
        ok = true;
    }
    jwt_free(jwt);
    return ok;
}

/* The user must still exist, be active and belong to the organisation; the
 * current role applies, so a demotion takes effect at once. */
static int user_role(struct api *api, struct api_principal *p, bool *ok)
{
    struct db_conn *c;
    *ok = false;
    int rc = db_conn_acquire(api->db, false, &c);
    if (rc)
        return rc;
    struct db_stmt *s;
    rc = db_prepare(c,
                    "SELECT role FROM users WHERE id = ? AND organization_id = ? "
                    "AND status = 'active' AND deleted_at IS NULL",
                    &s);
    if (rc == CORE_OK) {
        db_bind_text(s, 1, p->user_id);
        db_bind_text(s, 2, p->org_id);
        bool row;
        rc = db_step(s, &row);
        if (rc == CORE_OK && row) {
            int role = api__role_parse(db_col_text(s, 0));
            if (role >= 0) {
                p->role = (enum api_role)role;
                *ok = true;
            }
        }
        db_finalize(s);
    }
    db_conn_release(c);
    return rc;
}

bool api_authenticate(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    int access = req->route->access;
    if (access == API_ACCESS_PUBLIC)
        return true;
    struct api_principal *p = calloc(1, sizeof *p);
    if (!p) {
        http_res_error(res, CORE_ENOMEM);
        return false;
    }
    req->auth = p;
    bool ok = false;
    int rc = CORE_OK;
    if (access == API_ACCESS_DEVICE) {
        const char *key = http_req_header(req, "X-API-Key");
        const char *authz = http_req_header(req, "Authorization");
        if (!key && authz && strncasecmp(authz, "ApiKey ", 7) == 0)
            key = authz + 7;
        if (!key) {
            http_res_header(res, "WWW-Authenticate", "ApiKey");
            http_res_problem(res, HTTP_PROBLEM_UNAUTHORIZED,
                             "a device API key is required (X-API-Key header)");
            return false;
        }
        rc = api__key_verify(api, key, req->route->data == &api__op_ingest, p,
                             &ok);
        if (rc == CORE_OK && !ok) {
            http_res_header(res, "WWW-Authenticate", "ApiKey");
            http_res_problem(res, HTTP_PROBLEM_UNAUTHORIZED,
                             "the API key is invalid or revoked");
            return false;
        }
    } else {
        const char *authz = http_req_header(req, "Authorization");
        if (!authz || strncasecmp(authz, "Bearer ", 7) != 0) {
            http_res_header(res, "WWW-Authenticate", "Bearer");
            http_res_problem(res, HTTP_PROBLEM_UNAUTHORIZED,
                             "sign in first: send Authorization: Bearer <token>");
            return false;
        }
        if (!token_verify(api, authz + 7, p)) {
            http_res_header(res, "WWW-Authenticate",
                            "Bearer error=\"invalid_token\"");
            http_res_problem(res, HTTP_PROBLEM_UNAUTHORIZED,
                             "the token is invalid or expired");
            return false;
        }
        rc = user_role(api, p, &ok);
        if (rc == CORE_OK && !ok) {
            http_res_header(res, "WWW-Authenticate",
                            "Bearer error=\"invalid_token\"");
            http_res_problem(res, HTTP_PROBLEM_UNAUTHORIZED,
                             "the account no longer exists or is disabled");
            return false;
        }
        if (rc == CORE_OK && (int)p->role < access) {
            http_res_problem(res, HTTP_PROBLEM_FORBIDDEN,
                             "the %s role may not do this; it needs %s",
                             api_role_names[p->role], api_role_names[access]);
            return false;
        }
    }
    if (rc) {
        http_res_error(res, rc);
        return false;
    }
    return true;
}

void api_auth_release(struct http_req *req, void *ctx)
{
    free(req->auth);
    req->auth = NULL;
}

/* ---------------------------------------------------------------- routes */

int api__user_json(struct db_conn *c, const char *org_id, const char *user_id,
                   json_t **out)
{
    int rc = api__resource_fetch(c, &api_res_users, org_id, user_id, out);
    if (rc || !*out)
        return rc ? rc : CORE_ENOTFOUND;
    struct db_stmt *s;
    rc = db_prepare(c, "SELECT id, name, slug FROM organizations WHERE id = ?", &s);
    if (rc)
        return rc;
    db_bind_text(s, 1, org_id);
    bool row;
    rc = db_step(s, &row);
    if (rc == CORE_OK && row)
        json_object_set_new(*out, "organization",
                            json_pack("{s:s, s:s, s:s}", "id", db_col_text(s, 0),
                                      "name", db_col_text(s, 1), "slug",
                                      db_col_text(s, 2)));
    db_finalize(s);
    return rc;
}

static void login_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    pthread_once(&dummy_once, make_dummy);
    if (!api__query_known(req, NULL, res))
        return;
    json_t *body = http_req_json_object(req, res);
    if (!body)
        return;
    struct api_errors errs = {0};
    json_t *je = json_object_get(body, "email"), *jp = json_object_get(body, "password");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
        if (strcmp(key, "email") && strcmp(key, "password"))
            api__error_add(&errs, key, "is not a field of a sign-in");
    if (!json_is_string(je))
        api__error_add(&errs, "email", "is required (a string)");
    if (!json_is_string(jp))
        api__error_add(&errs, "password", "is required (a string)");
    if (api__errors_answer(&errs, res)) {
        json_decref(body);
        return;
    }
    char email[321];
    snprintf(email, sizeof email, "%s", json_string_value(je));
    for (char *c = email; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c + 32);
    const char *password = json_string_value(jp);

    struct db_conn *c = api__conn(api, false, res);
    if (!c) {
        json_decref(body);
        return;
    }
    char user_id[CORE_UUID_STR_LEN] = "", org_id[CORE_UUID_STR_LEN] = "";
    char role[16] = "", *hash = NULL;
    struct db_stmt *s;
    int rc = db_prepare(c,
                        "SELECT u.id, u.organization_id, u.role, u.password_hash "
                        "FROM users u JOIN organizations o ON o.id = "
                        "u.organization_id WHERE u.email = ? AND u.status = "
                        "'active' AND u.deleted_at IS NULL AND o.deleted_at IS "
                        "NULL",
                        &s);
    if (rc == CORE_OK) {
        db_bind_text(s, 1, email);
        bool row;
        rc = db_step(s, &row);
        if (rc == CORE_OK && row) {
            snprintf(user_id, sizeof user_id, "%s", db_col_text(s, 0));
            snprintf(org_id, sizeof org_id, "%s", db_col_text(s, 1));
            snprintf(role, sizeof role, "%s", db_col_text(s, 2));
            hash = strdup(db_col_text(s, 3));
        }
        db_finalize(s);
    }
    db_conn_release(c);
    if (rc) {
        http_res_error(res, rc);
        goto out;
    }
    bool ok = api__password_verify(hash ? hash : dummy_hash, password) && hash;
    if (!ok) {
        http_res_problem(res, HTTP_PROBLEM_UNAUTHORIZED,
                         "wrong email or password");
        goto out;
    }
    int64_t expires;
    char *tok = token_issue(api, user_id, org_id, role, &expires);
    if (!tok) {
        http_res_error(res, CORE_ENOMEM);
        goto out;
    }
    json_t *user = NULL;
    c = api__conn(api, true, res);
    if (!c) {
        free(tok);
        goto out;
    }
    char now[CORE_TIME_ISO_LEN];
    api__now(now);
    rc = db_prepare(c, "UPDATE users SET last_login_at = ? WHERE id = ?", &s);
    if (rc == CORE_OK) {
        bool row;
        db_bind_text(s, 1, now);
        db_bind_text(s, 2, user_id);
        rc = db_step(s, &row);
        db_finalize(s);
    }
    if (rc == CORE_OK)
        rc = api__user_json(c, org_id, user_id, &user);
    db_conn_release(c);
    if (rc) {
        free(tok);
        http_res_error(res, rc);
        goto out;
    }
    char exp_iso[CORE_TIME_ISO_LEN];
    core_time_format_iso(expires, exp_iso);
    http_res_json(res, 200,
                  json_pack("{s:s, s:s, s:s, s:o}", "token", tok, "tokenType",
                            "Bearer", "expiresAt", exp_iso, "user", user));
    free(tok);
out:
    free(hash);
    json_decref(body);
}

static void me_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    const struct api_principal *p = api__principal(req);
    if (!api__query_known(req, NULL, res))
        return;
    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        return;
    json_t *user = NULL;
    int rc = api__user_json(c, p->org_id, p->user_id, &user);
    db_conn_release(c);
    if (rc)
        http_res_error(res, rc);
    else
        http_res_json(res, 200, user);
}

static const struct api_op op_login = {API_OP_CUSTOM, NULL, "LoginRequest",
                                       "LoginResponse", 200, NULL};
static const struct api_op op_me = {API_OP_CUSTOM, NULL, NULL, "Me", 200, NULL};

int api__auth_routes(struct http_router *r)
{
    const struct http_route routes[] = {
        {HTTP_POST, "/api/v1/auth/login", login_handler, API_ACCESS_PUBLIC,
         &op_login, "Sign in with email and password for a JWT", "auth"},
        {HTTP_GET, "/api/v1/auth/me", me_handler, API_ROLE_VIEWER, &op_me,
         "The signed-in user and organisation", "auth"},
    };
    return http_router_add_all(r, routes, sizeof routes / sizeof routes[0]);
}
