/*
 * api: the REST API under /api/v1 — authentication, tenancy, the domain
 * resources, audit, OpenAPI, health and metrics endpoints — and the demo
 * data seeder.
 *
 * The organisation of every query comes from the credential (a user's JWT
 * or a device's API key), never from the request. A resource of another
 * organisation answers 404, exactly like one that does not exist.
 */
#ifndef ARGUS_API_H
#define ARGUS_API_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "http.h"
#include "pipeline.h"
#include "tsdb.h"

struct api;

struct api_config {
    const char *jwt_secret; /* NULL: generated once and kept in the store */
    int64_t token_ttl_s;    /* JWT lifetime; 0 = 12 hours */
    const char *version;    /* reported by /healthz and the OpenAPI doc */
    struct tsdb *tsdb;      /* telemetry queries (borrowed) */
    struct pipeline *pipeline; /* ingest; NULL: this process does not ingest */
    struct pipeline_limits limits; /* what a message may hold; 0 = defaults */
};

/* Creates the API over an open, migrated store (borrowed until
 * api_destroy). Returns CORE_EDB if the JWT secret cannot be read or
 * stored. */
int api_create(const struct api_config *cfg, struct db *db, struct api **out);
void api_destroy(struct api *api);

/* Adds every route to router. */
int api_routes_register(struct api *api, struct http_router *router);
/* Adds only /healthz, /readyz and /metrics (for processes without the
 * API, such as workers). */
int api_system_routes_register(struct api *api, struct http_router *router);
/* The server's authenticator and its release hook: pass them with the api
 * as ctx in struct http_server_config. */
bool api_authenticate(struct http_req *req, struct http_res *res, void *ctx);
void api_auth_release(struct http_req *req, void *ctx);

/* Prints "METHOD /path/{param}" for every route, one per line, in the
 * OpenAPI document's path syntax. */
int api_routes_print(void *file);

/* Marks the API ready (/readyz answers 200) or not (503, e.g. while
 * shutting down). */
void api_set_ready(struct api *api, bool ready);

/* Creates an organisation and its first admin user (for the CLI and the
 * demo). org_id receives the new id. Returns CORE_ECONFLICT when the slug
 * or the email is taken, CORE_EINVAL for an empty name, an invalid email
 * or a password shorter than 8 characters. */
int api_org_create(struct db *db, const char *name, const char *admin_email,
                   const char *admin_password, char org_id[37]);

/* Seeds the demo organisation (idempotent: does nothing when it exists).
 * Prints the admin's credentials through the log. */
int api_demo_seed(struct db *db);

#endif
