/* Private to src/api. */
#ifndef ARGUS_API_INTERNAL_H
#define ARGUS_API_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "api.h"
#include "core.h"
#include "db.h"
#include "http.h"

/* ----------------------------------------------------------------- access
 * Roles are ordered: each may do what the ones below it may. */
enum api_role {
    API_ROLE_VIEWER = 0,
    API_ROLE_TECHNICIAN = 1,
    API_ROLE_OPERATOR = 2,
    API_ROLE_ADMIN = 3,
};
extern const char *const api_role_names[]; /* NULL-terminated */
int api__role_parse(const char *s);        /* -1 when unknown */

/* Who may call a route (struct http_route.access). */
enum api_access {
    API_ACCESS_PUBLIC = -2, /* no credential */
    API_ACCESS_DEVICE = -1, /* a device API key */
    /* >= 0: a user with at least this role (enum api_role) */
};

enum api_principal_kind { API_PRINCIPAL_USER, API_PRINCIPAL_DEVICE };

struct api_principal {
    enum api_principal_kind kind;
    char org_id[CORE_UUID_STR_LEN];
    char user_id[CORE_UUID_STR_LEN];   /* users */
    char device_id[CORE_UUID_STR_LEN]; /* devices */
    char key_id[CORE_UUID_STR_LEN];    /* devices */
    enum api_role role;
};

struct api {
    struct api_config cfg;
    struct db *db;
    struct tsdb *tsdb;
    struct pipeline *pipeline;
    struct pipeline_limits limits;
    unsigned char jwt_key[32];
    char jwt_key_hex[65];
    volatile bool ready;
    struct http_router *router; /* for the OpenAPI document */
#define API_MAX_ALLOCS 32
    void *allocs[API_MAX_ALLOCS]; /* route data, freed with the api */
    int nallocs;
};

static inline struct api_principal *api__principal(const struct http_req *r)
{
    return r->auth;
}

/* ------------------------------------------------------------- operations
 * Every route carries a struct api_op as its data: what the OpenAPI
 * document says about it, and for generic resource routes the resource. */
enum api_op_kind {
    API_OP_CUSTOM,
    API_OP_LIST,
    API_OP_GET,
    API_OP_CREATE,
    API_OP_UPDATE,
    API_OP_DELETE,
};

struct api_resource;

struct api_op {
    enum api_op_kind kind;
    const struct api_resource *resource; /* generic operations */
    const char *request_schema;  /* OpenAPI component name or NULL */
    const char *response_schema; /* component name, "List:<name>", or NULL */
    int status;                  /* success status */
    const char *const *query;    /* documented query parameters */
};

/* Telemetry ingest, the one route where a device key verified by this
 * process within the last API_KEY_CACHE_MS is taken without asking the
 * store again (that query was most of a small request's cost). Revoking or
 * rotating a key here forgets it at once; a change made elsewhere (a
 * device deleted, a key revoked by another process) applies to ingest
 * within API_KEY_CACHE_MS, and to every other route at once. */
extern const struct api_op api__op_ingest;

/* ---------------------------------------------------------------- fields */
enum api_ftype {
    API_FT_STRING,   /* one line, max length in max */
    API_FT_TEXT,     /* free text up to max */
    API_FT_ENUM,     /* one of values */
    API_FT_REF,      /* id of a row of ref_table in the same organisation */
    API_FT_NUMBER,   /* double in [min, max] */
    API_FT_INT,      /* integer in [min, max] */
    API_FT_BOOL,
    API_FT_OBJECT,   /* any JSON object */
    API_FT_LOCATION, /* {lat, lng, alt?} */
    API_FT_TIME,     /* RFC 3339 date-time */
    API_FT_EMAIL,
    API_FT_PASSWORD, /* write-only; stored as an argon2id hash */
};

enum {
    API_FF_REQUIRED = 1 << 0,  /* must be given on create */
    API_FF_READONLY = 1 << 1,  /* set by the server only */
    API_FF_FILTER = 1 << 2,    /* ?name=value filters lists */
    API_FF_SORT = 1 << 3,      /* ?sort=name / -name */
    API_FF_SEARCH = 1 << 4,    /* matched by ?search= */
    API_FF_NULLABLE = 1 << 5,  /* may be null */
    API_FF_WRITEONLY = 1 << 6, /* never returned */
};

struct api_field {
    const char *name;   /* JSON name (camelCase) */
    const char *column; /* SQL column */
    enum api_ftype type;
    unsigned flags;
    const char *const *values; /* enum values, NULL-terminated */
    const char *ref_table;
    double min, max;
    const char *help;
};

/* A row elsewhere that keeps this one from being deleted. */
struct api_dependent {
    const char *table;
    const char *column;
    const char *what; /* "devices" */
};

struct api_write; /* the write in progress, for resource hooks */

struct api_resource {
    const char *path;   /* "/api/v1/devices" */
    const char *table;  /* "devices" */
    const char *entity; /* singular, for audit and messages: "device" */
    const char *schema; /* OpenAPI component: "Device" */
    const struct api_field *fields; /* terminated by a zero entry */
    enum api_role read_role;
    enum api_role write_role;
    const struct api_dependent *dependents; /* zero-terminated or NULL */
    /* Extra checks before a create (id NULL) or update; returns false
     * after answering the request. conn is the writer inside the
     * transaction; merged holds the row as it will be. */
    bool (*check)(struct db_conn *conn, const struct api_principal *p,
                  const char *id, json_t *merged, struct http_res *res);
};

extern const struct api_resource *const api_resources[]; /* NULL-ended */
extern const struct api_resource api_res_users;

/* Registers list/get/create/update/delete routes of a resource. */
int api__resource_routes(struct api *api, struct http_router *r,
                         const struct api_resource *res);
/* Reads one row as JSON (NULL when absent or deleted). */
int api__resource_fetch(struct db_conn *c, const struct api_resource *res,
                        const char *org_id, const char *id, json_t **out);

/* Rows of a resource in the organisation matching cond (SQL over its
 * columns with '?' for binds), ordered by name, at most 1000, appended to
 * the array out. */
int api__resource_select(struct db_conn *c, const struct api_resource *rs,
                         const char *org_id, const char *cond,
                         const char *const *binds, int nbinds, json_t *out);
extern const struct api_resource api_res_assets, api_res_devices,
    api_res_asset_types;

/* Verifies a device API key; *ok false (and CORE_OK) for a wrong key.
 * With cached, a verification of the same key by this api within the last
 * API_KEY_CACHE_MS is reused (see api__op_ingest); wrong keys are never
 * cached. */
#define API_KEY_CACHE_MS 1000
int api__key_verify(struct api *api, const char *key, bool cached,
                    struct api_principal *p, bool *ok);
/* Forgets the cached verifications of a key (after revoking it). */
void api__key_cache_forget(const char *key_id);
/* Forgets every cached key of a device (it was deleted). */
void api__key_cache_forget_device(const char *device_id);

/* ----------------------------------------------------------------- helpers */

/* Acquires a connection and answers 503 when that fails. */
struct db_conn *api__conn(struct api *api, bool write, struct http_res *res);
/* The :id path parameter when it is a UUID (lowercased into out);
 * otherwise answers 400 and returns false. */
bool api__path_id(const struct http_req *req, const char *name,
                  char out[CORE_UUID_STR_LEN], struct http_res *res);
/* Parses limit/offset (defaults 50/0, limit 1..500). Answers 400 and
 * returns false on a bad value. */
bool api__paging(const struct http_req *req, int64_t *limit, int64_t *offset,
                 struct http_res *res);
/* The query parameter name as epoch ms (def when absent); answers 400 and
 * returns false when it is not an RFC 3339 date-time. */
bool api__query_time(const struct http_req *req, const char *name,
                     int64_t def, int64_t *out, struct http_res *res);
/* Refuses query parameters not in allowed (NULL-terminated). */
bool api__query_known(const struct http_req *req, const char *const *allowed,
                      struct http_res *res);
/* {"data": items, "pagination": {...}} */
json_t *api__page(json_t *items, int64_t limit, int64_t offset, int64_t total);
/* Row lookup: true when table has a live row with this id in the org. */
int api__row_exists(struct db_conn *c, const char *table, const char *org_id,
                    const char *id, bool *exists);
/* Writes one audit record inside the caller's transaction (takes
 * ownership of changes). */
int api__audit(struct db_conn *c, const struct api_principal *p,
               const char *action, const char *entity_type,
               const char *entity_id, json_t *changes);
void api__now(char out[CORE_TIME_ISO_LEN]);

/* Passwords (argon2id) and API key secrets (keyed BLAKE2b). */
int api__password_hash(const char *password, char **out);
bool api__password_verify(const char *hash, const char *password);

/* Route registration of each module. */
int api__auth_routes(struct http_router *r);
int api__keys_routes(struct http_router *r);
int api__org_routes(struct http_router *r);
int api__audit_routes(struct http_router *r);
int api__asset_routes(struct http_router *r);
int api__system_routes(struct http_router *r);
int api__telemetry_routes(struct http_router *r);
int api__dlq_routes(struct http_router *r);
int api__openapi_routes(struct http_router *r);
json_t *api__openapi_document(struct api *api);

/* The JSON of one user / organisation row, for /auth/me and login. */
int api__user_json(struct db_conn *c, const char *org_id, const char *user_id,
                   json_t **out);

/* Validation error accumulator for request bodies. */
struct api_errors {
    json_t *list; /* [{field, message}] */
};
void api__error_add(struct api_errors *e, const char *field, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));
/* Answers 400 with the collected errors if any; returns true if it did. */
bool api__errors_answer(struct api_errors *e, struct http_res *res);

#endif
