/*
 * The OpenAPI 3.1 document, generated from the router's routes and the
 * resource field tables, so it cannot drift from what the server does.
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *field_schema(const struct api_field *f)
{
    json_t *s = json_object();
    const char *type = "string";
    switch (f->type) {
    case API_FT_STRING:
    case API_FT_TEXT:
        if (f->max > 0)
            json_object_set_new(s, "maxLength", json_integer((json_int_t)f->max));
        break;
    case API_FT_EMAIL:
        json_object_set_new(s, "format", json_string("email"));
        break;
    case API_FT_PASSWORD:
        json_object_set_new(s, "format", json_string("password"));
        json_object_set_new(s, "minLength", json_integer(8));
        json_object_set_new(s, "writeOnly", json_true());
        break;
    case API_FT_ENUM: {
        json_t *e = json_array();
        for (int i = 0; f->values[i]; i++)
            json_array_append_new(e, json_string(f->values[i]));
        json_object_set_new(s, "enum", e);
        break;
    }
    case API_FT_REF:
        json_object_set_new(s, "format", json_string("uuid"));
        break;
    case API_FT_TIME:
        json_object_set_new(s, "format", json_string("date-time"));
        break;
    case API_FT_NUMBER:
    case API_FT_INT:
        type = f->type == API_FT_INT ? "integer" : "number";
        if (f->min != 0 || f->max != 0) {
            json_object_set_new(s, "minimum", json_real(f->min));
            json_object_set_new(s, "maximum", json_real(f->max));
        }
        break;
    case API_FT_BOOL:
        type = "boolean";
        break;
    case API_FT_OBJECT:
        type = "object";
        break;
    case API_FT_LOCATION:
        type = "object";
        json_object_set_new(
            s, "properties",
            json_pack("{s:{s:s, s:i, s:i}, s:{s:s, s:i, s:i}, s:{s:s}}", "lat",
                      "type", "number", "minimum", -90, "maximum", 90, "lng",
                      "type", "number", "minimum", -180, "maximum", 180, "alt",
                      "type", "number"));
        json_object_set_new(s, "required", json_pack("[s, s]", "lat", "lng"));
        json_object_set_new(s, "additionalProperties", json_false());
        break;
    }
    if (f->flags & API_FF_NULLABLE)
        json_object_set_new(s, "type", json_pack("[s, s]", type, "null"));
    else
        json_object_set_new(s, "type", json_string(type));
    if (f->flags & API_FF_READONLY)
        json_object_set_new(s, "readOnly", json_true());
    if (f->help)
        json_object_set_new(s, "description", json_string(f->help));
    return s;
}

/* The resource as returned, as created and as patched. */
static void resource_schemas(json_t *schemas, const struct api_resource *rs)
{
    json_t *full = json_object(), *create = json_object(), *update = json_object();
    json_t *req = json_array(), *all = json_array();
    json_object_set_new(full, "id", json_pack("{s:s, s:s, s:b}", "type", "string",
                                              "format", "uuid", "readOnly", 1));
    json_object_set_new(full, "organizationId",
                        json_pack("{s:s, s:s, s:b}", "type", "string", "format",
                                  "uuid", "readOnly", 1));
    json_array_append_new(all, json_string("id"));
    json_array_append_new(all, json_string("organizationId"));
    for (const struct api_field *f = rs->fields; f->name; f++) {
        if (!(f->flags & API_FF_WRITEONLY)) {
            json_object_set_new(full, f->name, field_schema(f));
            json_array_append_new(all, json_string(f->name));
        }
        if (f->flags & API_FF_READONLY)
            continue;
        json_object_set_new(create, f->name, field_schema(f));
        json_object_set_new(update, f->name, field_schema(f));
        if (f->flags & API_FF_REQUIRED)
            json_array_append_new(req, json_string(f->name));
    }
    json_object_set_new(full, "createdAt",
                        json_pack("{s:s, s:s, s:b}", "type", "string", "format",
                                  "date-time", "readOnly", 1));
    json_object_set_new(full, "updatedAt",
                        json_pack("{s:s, s:s, s:b}", "type", "string", "format",
                                  "date-time", "readOnly", 1));
    json_array_append_new(all, json_string("createdAt"));
    json_array_append_new(all, json_string("updatedAt"));
    char name[96];
    json_object_set_new(schemas, rs->schema,
                        json_pack("{s:s, s:o, s:o}", "type", "object",
                                  "properties", full, "required", all));
    snprintf(name, sizeof name, "%sCreate", rs->schema);
    json_object_set_new(schemas, name,
                        json_pack("{s:s, s:o, s:o, s:b}", "type", "object",
                                  "properties", create, "required", req,
                                  "additionalProperties", 0));
    snprintf(name, sizeof name, "%sUpdate", rs->schema);
    json_object_set_new(schemas, name,
                        json_pack("{s:s, s:o, s:b, s:i}", "type", "object",
                                  "properties", update, "additionalProperties",
                                  0, "minProperties", 1));
}

static json_t *ref(const char *name)
{
    char buf[128];
    snprintf(buf, sizeof buf, "#/components/schemas/%s", name);
    return json_pack("{s:s}", "$ref", buf);
}

/* "List:Device" → a page of Device, "Items:Device" → {data: [Device]}. */
static json_t *schema_for(const char *name)
{
    if (strncmp(name, "List:", 5) == 0)
        return json_pack("{s:s, s:{s:{s:s, s:o}, s:o}, s:[s, s]}", "type",
                         "object", "properties", "data", "type", "array", "items",
                         ref(name + 5), "pagination", ref("Pagination"),
                         "required", "data", "pagination");
    if (strncmp(name, "Items:", 6) == 0)
        return json_pack("{s:s, s:{s:{s:s, s:o}}, s:[s]}", "type", "object",
                         "properties", "data", "type", "array", "items",
                         ref(name + 6), "required", "data");
    return ref(name);
}

static void static_schemas(json_t *s)
{
    json_object_set_new(
        s, "Problem",
        json_pack("{s:s, s:s, s:{s:{s:s, s:s}, s:{s:s}, s:{s:s}, s:{s:s}, "
                  "s:{s:s, s:{s:s}}}, s:[s, s, s]}",
                  "type", "object", "description",
                  "RFC 9457 problem details; type is urn:argus:problem:<slug>",
                  "properties", "type", "type", "string", "format", "uri",
                  "title", "type", "string", "status", "type", "integer",
                  "detail", "type", "string", "errors", "type", "array",
                  "items", "type", "object", "required", "type", "title",
                  "status"));
    json_object_set_new(
        s, "Pagination",
        json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}}}", "type", "object",
                  "properties", "limit", "type", "integer", "offset", "type",
                  "integer", "total", "type", "integer"));
    json_object_set_new(
        s, "LoginRequest",
        json_pack("{s:s, s:{s:{s:s, s:s}, s:{s:s}}, s:[s, s], s:b}", "type",
                  "object", "properties", "email", "type", "string", "format",
                  "email", "password", "type", "string", "required", "email",
                  "password", "additionalProperties", 0));
    json_object_set_new(
        s, "LoginResponse",
        json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s, s:s}, s:o}}", "type",
                  "object", "properties", "token", "type", "string", "tokenType",
                  "type", "string", "expiresAt", "type", "string", "format",
                  "date-time", "user", ref("Me")));
    json_object_set_new(
        s, "Me",
        json_pack("{s:[o, {s:s, s:{s:{s:s}}}]}", "allOf", ref("User"), "type",
                  "object", "properties", "organization", "type", "object"));
    json_object_set_new(
        s, "ApiKey",
        json_pack("{s:s, s:{s:{s:s, s:s}, s:{s:s}, s:{s:s}, s:{s:s, s:s}, "
                  "s:{s:[s, s]}, s:{s:[s, s]}}}",
                  "type", "object", "properties", "id", "type", "string",
                  "format", "uuid", "name", "type", "string", "prefix", "type",
                  "string", "createdAt", "type", "string", "format", "date-time",
                  "lastUsedAt", "type", "string", "null", "revokedAt", "type",
                  "string", "null"));
    json_object_set_new(
        s, "ApiKeySecret",
        json_pack("{s:[o, {s:s, s:{s:{s:s, s:s}}}]}", "allOf", ref("ApiKey"),
                  "type", "object", "properties", "key", "type", "string",
                  "description", "The whole key; shown only in this answer"));
    json_object_set_new(
        s, "ApiKeyCreate",
        json_pack("{s:s, s:{s:{s:s, s:i, s:i}}, s:b}", "type", "object",
                  "properties", "name", "type", "string", "minLength", 1,
                  "maxLength", 100, "additionalProperties", 0));
    json_object_set_new(
        s, "Organization",
        json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}}",
                  "type", "object", "properties", "id", "type", "string", "name",
                  "type", "string", "slug", "type", "string", "settings", "type",
                  "object", "createdAt", "type", "string", "updatedAt", "type",
                  "string"));
    json_object_set_new(
        s, "OrganizationUpdate",
        json_pack("{s:s, s:{s:{s:s, s:i}, s:{s:s}}, s:b}", "type", "object",
                  "properties", "name", "type", "string", "maxLength", 200,
                  "settings", "type", "object", "additionalProperties", 0));
    json_object_set_new(
        s, "AuditEntry",
        json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, "
                  "s:{s:s}, s:{s:s, s:s}}}",
                  "type", "object", "properties", "id", "type", "string",
                  "actor", "type", "object", "action", "type", "string",
                  "entityType", "type", "string", "entityId", "type", "string",
                  "changes", "type", "object", "at", "type", "string", "format",
                  "date-time"));
    json_object_set_new(
        s, "TelemetryMessage",
        json_pack("{s:[{s:s, s:s}, {s:s, s:o, s:i, s:i}], s:s}", "oneOf",
                  "$ref", "#/components/schemas/TelemetryOne", "type", "object",
                  "type", "array", "items", ref("TelemetryOne"), "minItems", 1,
                  "maxItems", 1000, "description",
                  "One message or an array of messages"));
    json_object_set_new(
        s, "TelemetryOne",
        json_pack("{s:s, s:{s:{s:s, s:s}, s:{s:s, s:{s:[s, s, s]}}, "
                  "s:{s:[s, s], s:s}, s:{s:s}}, s:[s, s], s:b}",
                  "type", "object", "properties", "deviceId", "type", "string",
                  "format", "uuid", "metrics", "type", "object",
                  "additionalProperties", "type", "number", "boolean", "string",
                  "timestamp", "type", "string", "number", "description",
                  "RFC 3339, or epoch seconds/milliseconds/microseconds; "
                  "default: the time received",
                  "metadata", "type", "object", "required", "deviceId",
                  "metrics", "additionalProperties", 0));
    json_object_set_new(
        s, "IngestAccepted",
        json_pack("{s:s, s:{s:{s:s}, s:{s:s, s:{s:s}}, s:{s:s}}}", "type",
                  "object", "properties", "id", "type", "string", "ids", "type",
                  "array", "items", "type", "string", "accepted", "type",
                  "integer"));
    json_object_set_new(
        s, "TelemetrySeries",
        json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s, s:{s:s}}}}",
                  "type", "object", "properties", "deviceId", "type", "string",
                  "aggregation", "type", "string", "metricKey", "type",
                  "string", "data", "type", "array", "items", "type",
                  "object"));
    json_object_set_new(
        s, "TelemetryLatest",
        json_pack("{s:s, s:{s:{s:s}, s:{s:s}}}", "type", "object",
                  "properties", "deviceId", "type", "string", "metrics", "type",
                  "object"));
    json_object_set_new(
        s, "DlqEntry",
        json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:[s, s]}, "
                  "s:{s:[s, s]}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{}}}",
                  "type", "object", "properties", "id", "type", "string",
                  "stage", "type", "string", "reason", "type", "string",
                  "rawId", "type", "string", "null", "deviceId", "type",
                  "string", "null", "attempts", "type", "integer",
                  "receivedAt", "type", "string", "createdAt", "type",
                  "string", "updatedAt", "type", "string", "payload"));
    json_object_set_new(
        s, "DlqReplayed",
        json_pack("{s:s, s:{s:{s:s}, s:{s:s}}}", "type", "object",
                  "properties", "id", "type", "string", "replayed", "type",
                  "boolean"));
    json_object_set_new(
        s, "DlqReplayIds",
        json_pack("{s:s, s:{s:{s:s, s:{s:s, s:s}, s:i, s:i}}, s:[s], s:b}",
                  "type", "object", "properties", "ids", "type", "array",
                  "items", "type", "string", "format", "uuid", "minItems", 1,
                  "maxItems", 1000, "required", "ids",
                  "additionalProperties", 0));
    json_object_set_new(
        s, "DlqReplayResult",
        json_pack("{s:s, s:{s:{s:s}, s:{s:s}}}", "type", "object",
                  "properties", "replayed", "type", "integer", "failed",
                  "type", "array"));
    json_object_set_new(
        s, "TelemetryReplay",
        json_pack("{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}, "
                  "s:{s:s, s:i, s:i}}, s:[s, s], s:b}",
                  "type", "object", "properties", "startTime", "type", "string",
                  "format", "date-time", "endTime", "type", "string", "format",
                  "date-time", "deviceId", "type", "string", "format", "uuid",
                  "limit", "type", "integer", "minimum", 1, "maximum", 10000,
                  "required", "startTime", "endTime", "additionalProperties",
                  0));
    json_object_set_new(
        s, "TelemetryReplayResult",
        json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}}}", "type", "object",
                  "properties", "replayed", "type", "integer", "deadLettered",
                  "type", "integer", "more", "type", "boolean"));
    json_object_set_new(s, "Health",
                        json_pack("{s:s, s:{s:{s:s}}}", "type", "object",
                                  "properties", "status", "type", "string"));
    json_object_set_new(s, "Metrics",
                        json_pack("{s:s, s:s}", "type", "string", "description",
                                  "Prometheus text exposition format"));
}

/* "/api/v1/devices/:id" → "/api/v1/devices/{id}", collecting the names. */
static void template_path(const char *pattern, char *out, size_t len,
                          json_t *params)
{
    size_t j = 0;
    for (const char *p = pattern; *p && j + 2 < len;) {
        if (*p == ':') {
            const char *e = p + 1;
            while (*e && *e != '/')
                e++;
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(e - p - 1), p + 1);
            j += (size_t)snprintf(out + j, len - j, "{%s}", name);
            json_array_append_new(
                params,
                json_pack("{s:s, s:s, s:b, s:{s:s, s:s}}", "name", name, "in",
                          "path", "required", 1, "schema", "type", "string",
                          "format", "uuid"));
            p = e;
        } else {
            out[j++] = *p++;
        }
    }
    out[j < len ? j : len - 1] = '\0';
}

static json_t *problem_response(const char *why)
{
    return json_pack("{s:s, s:{s:{s:o}}}", "description", why, "content",
                     "application/problem+json", "schema", ref("Problem"));
}

static json_t *operation(const struct http_route *rt, const char *path)
{
    const struct api_op *op = rt->data;
    json_t *params = json_array();
    char tpl[256];
    template_path(rt->pattern, tpl, sizeof tpl, params);
    (void)path;
    const char *req_schema = op->request_schema;
    const char *res_schema = op->response_schema;
    char buf1[96], buf2[96];
    if (op->resource) {
        const char *sn = op->resource->schema;
        switch (op->kind) {
        case API_OP_LIST:
            snprintf(buf2, sizeof buf2, "List:%s", sn);
            res_schema = buf2;
            break;
        case API_OP_CREATE:
            snprintf(buf1, sizeof buf1, "%sCreate", sn);
            req_schema = buf1;
            res_schema = sn;
            break;
        case API_OP_UPDATE:
            snprintf(buf1, sizeof buf1, "%sUpdate", sn);
            req_schema = buf1;
            res_schema = sn;
            break;
        case API_OP_GET:
            res_schema = sn;
            break;
        default:
            break;
        }
    }
    for (int i = 0; op->query && op->query[i]; i++) {
        const char *q = op->query[i];
        json_t *schema;
        if (!strcmp(q, "limit"))
            schema = json_pack("{s:s, s:i, s:i, s:i}", "type", "integer",
                               "minimum", 1, "maximum", 500, "default", 50);
        else if (!strcmp(q, "offset"))
            schema = json_pack("{s:s, s:i, s:i}", "type", "integer", "minimum",
                               0, "default", 0);
        else
            schema = json_pack("{s:s}", "type", "string");
        json_array_append_new(params, json_pack("{s:s, s:s, s:o}", "name", q,
                                                "in", "query", "schema", schema));
    }
    char status[8];
    snprintf(status, sizeof status, "%d", op->status);
    json_t *ok = json_pack("{s:s}", "description", "Success");
    if (res_schema) {
        const char *ct = strcmp(res_schema, "Metrics") == 0
                             ? "text/plain"
                             : "application/json";
        json_object_set_new(ok, "content",
                            json_pack("{s:{s:o}}", ct, "schema",
                                      schema_for(res_schema)));
    }
    json_t *responses = json_pack("{s:o}", status, ok);
    json_object_set_new(responses, "400", problem_response("Invalid request"));
    if (rt->access != API_ACCESS_PUBLIC) {
        json_object_set_new(responses, "401", problem_response("No valid credential"));
        json_object_set_new(responses, "403", problem_response("The role may not do this"));
    }
    if (strchr(rt->pattern, ':'))
        json_object_set_new(responses, "404",
                            problem_response("No such resource in your organisation"));
    json_object_set_new(responses, "503", problem_response("Store busy or not ready"));

    char opid[300];
    snprintf(opid, sizeof opid, "%s %s", http_method_name(rt->method), tpl);
    json_t *o = json_pack("{s:s, s:s, s:[s], s:o, s:o}", "operationId", opid,
                          "summary", rt->summary ? rt->summary : "", "tags",
                          rt->tag ? rt->tag : "misc", "parameters", params,
                          "responses", responses);
    if (op->resource && rt->summary && op->kind != API_OP_CUSTOM) {
        char sum[160];
        snprintf(sum, sizeof sum, "%s %s", rt->summary, op->resource->entity);
        json_object_set_new(o, "summary", json_string(sum));
    }
    if (req_schema)
        json_object_set_new(o, "requestBody",
                            json_pack("{s:b, s:{s:{s:o}}}", "required", 1,
                                      "content", "application/json", "schema",
                                      ref(req_schema)));
    if (rt->access == API_ACCESS_PUBLIC)
        json_object_set_new(o, "security", json_array());
    else if (rt->access == API_ACCESS_DEVICE)
        json_object_set_new(o, "security", json_pack("[{s:[]}]", "apiKey"));
    else {
        json_object_set_new(o, "security", json_pack("[{s:[]}]", "bearer"));
        json_object_set_new(o, "x-argus-min-role",
                            json_string(api_role_names[rt->access]));
    }
    return o;
}

/* Each path template → {method → operation}. */
static json_t *paths(const struct http_router *r)
{
    json_t *paths = json_object();
    for (size_t i = 0; i < http_router_count(r); i++) {
        const struct http_route *rt = http_router_at(r, i);
        json_t *dummy = json_array();
        char tpl[256];
        template_path(rt->pattern, tpl, sizeof tpl, dummy);
        json_decref(dummy);
        json_t *item = json_object_get(paths, tpl);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, tpl, item);
        }
        char m[16];
        snprintf(m, sizeof m, "%s", http_method_name(rt->method));
        for (char *c = m; *c; c++)
            *c = (char)(*c + 32);
        json_object_set_new(item, m, operation(rt, tpl));
    }
    return paths;
}

json_t *api__openapi_document(struct api *api)
{
    json_t *schemas = json_object();
    for (int i = 0; api_resources[i]; i++)
        resource_schemas(schemas, api_resources[i]);
    static_schemas(schemas);
    return json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:o, s:{s:o, s:{s:{s:s, s:s, s:s}, "
        "s:{s:s, s:s, s:s}}}}",
        "openapi", "3.1.0", "info", "title", "Argus API", "version",
        api->cfg.version ? api->cfg.version : "dev", "description",
        "IoT telemetry and asset platform. Errors are application/problem+json "
        "(RFC 9457). Every resource belongs to the caller's organisation; "
        "another organisation's resources answer 404.",
        "servers", "url", "/", "paths", paths(api->router), "components",
        "schemas", schemas, "securitySchemes", "bearer", "type", "http",
        "scheme", "bearer", "bearerFormat", "JWT", "apiKey", "type", "apiKey",
        "in", "header", "name", "X-API-Key");
}

static void openapi_handler(struct http_req *req, struct http_res *res,
                            void *ctx)
{
    if (!api__query_known(req, NULL, res))
        return;
    http_res_json(res, 200, api__openapi_document(ctx));
}

static const struct api_op op_doc = {API_OP_CUSTOM, NULL, NULL, NULL, 200, NULL};

int api__openapi_routes(struct http_router *r)
{
    const struct http_route route = {
        HTTP_GET, "/api/v1/openapi.json", openapi_handler, API_ACCESS_PUBLIC,
        &op_doc, "This document", "system"};
    return http_router_add(r, &route);
}

int api_routes_print(void *file)
{
    struct api *api = calloc(1, sizeof *api);
    struct http_router *router = NULL;
    int rc = api ? http_router_create(&router) : CORE_ENOMEM;
    if (rc == CORE_OK)
        rc = api_routes_register(api, router);
    for (size_t i = 0; rc == CORE_OK && i < http_router_count(router); i++) {
        const struct http_route *rt = http_router_at(router, i);
        json_t *params = json_array();
        char tpl[256];
        template_path(rt->pattern, tpl, sizeof tpl, params);
        json_decref(params);
        fprintf(file, "%s %s\n", http_method_name(rt->method), tpl);
    }
    http_router_destroy(router);
    if (api)
        api_destroy(api);
    return rc;
}
