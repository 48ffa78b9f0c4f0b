/*
 * The domain resources as tables: each field's JSON name, column, type and
 * rules. The generic engine (resource.c) serves them; the hooks here add
 * what a table cannot say (hierarchies without cycles, depth limits).
 */
#include "api_internal.h"

#include <stdio.h>
#include <string.h>

static const char *const device_status[] = {"online", "offline", "inactive",
                                            "maintenance", "error", NULL};
static const char *const device_roles[] = {"endpoint", "gateway",
                                           "gateway_chunked", "rtu_multiport",
                                           NULL};
static const char *const processing_modes[] = {"endpoint", "gateway",
                                               "gateway_chunked",
                                               "rtu_multiport", NULL};
static const char *const protocols[] = {"http", "mqtt", "coap", "other", NULL};
static const char *const asset_status[] = {"active", "inactive", "maintenance",
                                           "decommissioned", NULL};
/* The four activity categories: who starts the work and who does it. */
static const char *const activity_categories[] = {
    "person_to_person", "person_to_system", "system_to_person",
    "system_to_system", NULL};
static const char *const activity_status[] = {
    "open", "in_progress", "on_hold", "completed", "cancelled", NULL};
static const char *const priorities[] = {"low", "medium", "high", "critical",
                                         NULL};
static const char *const activity_sources[] = {"manual", "event", "schedule",
                                               "api", NULL};
static const char *const user_status[] = {"active", "disabled", NULL};

#define NAME_FIELD                                                          \
    {"name", "name", API_FT_STRING,                                         \
     API_FF_REQUIRED | API_FF_SORT | API_FF_SEARCH, NULL, NULL, 0, 200,     \
     "Display name"}
#define DESCRIPTION_FIELD                                                   \
    {"description", "description", API_FT_TEXT, API_FF_NULLABLE, NULL,      \
     NULL, 0, 4000, "Free text"}
#define ATTRIBUTES_FIELD                                                    \
    {"attributes", "attributes", API_FT_OBJECT, 0, NULL, NULL, 0, 0,        \
     "Custom attributes (a JSON object, replaced as a whole)"}
#define LOCATION_FIELD                                                      \
    {"location", "location", API_FT_LOCATION, API_FF_NULLABLE, NULL, NULL,  \
     0, 0, "Geolocation {lat, lng, alt?}"}

/* ------------------------------------------------------------ hierarchies */

/* Walks up from start through parent_col; fails when the walk reaches id
 * (a cycle) and reports the depth of start (1 for a root). */
static int ancestry(struct db_conn *c, const char *table, const char *parent_col,
                    const char *org_id, const char *start, const char *id,
                    bool *cycle, int *depth)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM %s WHERE id = ? AND organization_id = ?",
             parent_col, table);
    char cur[CORE_UUID_STR_LEN];
    snprintf(cur, sizeof cur, "%s", start);
    *cycle = false;
    *depth = 0;
    for (int guard = 0; guard < 1000; guard++) {
        if (id && strcmp(cur, id) == 0) {
            *cycle = true;
            return CORE_OK;
        }
        (*depth)++;
        struct db_stmt *s;
        int rc = db_prepare(c, sql, &s);
        if (rc)
            return rc;
        db_bind_text(s, 1, cur);
        db_bind_text(s, 2, org_id);
        bool row;
        rc = db_step(s, &row);
        bool more = rc == CORE_OK && row && !db_col_is_null(s, 0);
        if (more)
            snprintf(cur, sizeof cur, "%s", db_col_text(s, 0));
        db_finalize(s);
        if (rc || !more)
            return rc;
    }
    *cycle = true; /* deeper than any sane tree: treat as broken */
    return CORE_OK;
}

/* Height of the subtree under id (1 for a leaf). */
static int subtree_height(struct db_conn *c, const char *table,
                          const char *parent_col, const char *id, int limit,
                          int *height)
{
    *height = 1;
    if (limit <= 0)
        return CORE_OK;
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT id FROM %s WHERE %s = ? AND deleted_at IS NULL", table,
             parent_col);
    struct db_stmt *s;
    int rc = db_prepare(c, sql, &s);
    if (rc)
        return rc;
    db_bind_text(s, 1, id);
    bool row;
    char children[64][CORE_UUID_STR_LEN];
    int n = 0;
    while ((rc = db_step(s, &row)) == CORE_OK && row && n < 64)
        snprintf(children[n++], CORE_UUID_STR_LEN, "%s", db_col_text(s, 0));
    db_finalize(s);
    for (int i = 0; rc == CORE_OK && i < n; i++) {
        int h;
        rc = subtree_height(c, table, parent_col, children[i], limit - 1, &h);
        if (rc == CORE_OK && h + 1 > *height)
            *height = h + 1;
    }
    return rc;
}

static bool check_tree(struct db_conn *c, const struct api_principal *p,
                       const char *id, json_t *merged, struct http_res *res,
                       const char *table, const char *parent_col,
                       const char *parent_field, const char *what,
                       int max_depth)
{
    const char *parent = json_string_value(json_object_get(merged, parent_field));
    if (!parent)
        return true;
    bool cycle;
    int depth, rc;
    rc = ancestry(c, table, parent_col, p->org_id, parent, id, &cycle, &depth);
    if (rc) {
        http_res_error(res, rc);
        return false;
    }
    if (cycle) {
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "%s: a %s cannot be its own ancestor", parent_field,
                         what);
        return false;
    }
    if (max_depth > 0) {
        int height = 1;
        if (id && (rc = subtree_height(c, table, parent_col, id, max_depth,
                                       &height))) {
            http_res_error(res, rc);
            return false;
        }
        if (depth + height > max_depth) {
            http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                             "%s: %s trees are at most %d levels deep",
                             parent_field, what, max_depth);
            return false;
        }
    }
    return true;
}

static bool check_asset_type(struct db_conn *c, const struct api_principal *p,
                             const char *id, json_t *merged,
                             struct http_res *res)
{
    return check_tree(c, p, id, merged, res, "asset_types", "parent_id",
                      "parentId", "asset type", 3);
}

static bool check_asset(struct db_conn *c, const struct api_principal *p,
                        const char *id, json_t *merged, struct http_res *res)
{
    return check_tree(c, p, id, merged, res, "assets", "parent_id", "parentId",
                      "asset", 0);
}

static bool check_space(struct db_conn *c, const struct api_principal *p,
                        const char *id, json_t *merged, struct http_res *res)
{
    return check_tree(c, p, id, merged, res, "spaces", "parent_id", "parentId",
                      "space", 0);
}

static bool check_device(struct db_conn *c, const struct api_principal *p,
                         const char *id, json_t *merged, struct http_res *res)
{
    if (json_is_string(json_object_get(merged, "logicalIdentifier")) &&
        !json_is_string(json_object_get(merged, "parentDeviceId"))) {
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "logicalIdentifier: only a device with a "
                         "parentDeviceId (a gateway's child) has one");
        return false;
    }
    return check_tree(c, p, id, merged, res, "devices", "parent_device_id",
                      "parentDeviceId", "device", 0);
}

/* --------------------------------------------------------------- resources */

static const struct api_field device_type_fields[] = {
    NAME_FIELD,
    DESCRIPTION_FIELD,
    {"icon", "icon", API_FT_STRING, API_FF_NULLABLE, NULL, NULL, 0, 100, "Icon name"},
    {"manufacturer", "manufacturer", API_FT_STRING, API_FF_NULLABLE | API_FF_SEARCH,
     NULL, NULL, 0, 200, "Manufacturer"},
    {"model", "model", API_FT_STRING, API_FF_NULLABLE | API_FF_SEARCH, NULL, NULL,
     0, 200, "Model"},
    {"protocol", "protocol", API_FT_ENUM, API_FF_FILTER | API_FF_SORT, protocols,
     NULL, 0, 0, "Transport the devices use"},
    {"processingMode", "processing_mode", API_FT_ENUM, API_FF_FILTER | API_FF_SORT,
     processing_modes, NULL, 0, 0, "How the pipeline demultiplexes messages"},
    ATTRIBUTES_FIELD,
    {0},
};

static const struct api_dependent device_type_dependents[] = {
    {"devices", "device_type_id", "devices"},
    {0},
};

const struct api_resource api_res_device_types = {
    "/api/v1/device-types", "device_types", "device type", "DeviceType",
    device_type_fields, API_ROLE_VIEWER, API_ROLE_OPERATOR,
    device_type_dependents, NULL,
};

static const struct api_field device_fields[] = {
    NAME_FIELD,
    DESCRIPTION_FIELD,
    {"deviceTypeId", "device_type_id", API_FT_REF,
     API_FF_REQUIRED | API_FF_FILTER, NULL, "device_types", 0, 0, "device type"},
    {"status", "status", API_FT_ENUM, API_FF_FILTER | API_FF_SORT, device_status,
     NULL, 0, 0, "Connectivity and lifecycle status"},
    {"serialNumber", "serial_number", API_FT_STRING, API_FF_NULLABLE | API_FF_SEARCH,
     NULL, NULL, 0, 200, "Serial number"},
    {"firmwareVersion", "firmware_version", API_FT_STRING,
     API_FF_NULLABLE | API_FF_FILTER, NULL, NULL, 0, 100, "Firmware version"},
    {"networkInfo", "network_info", API_FT_OBJECT, 0, NULL, NULL, 0, 0,
     "Network details (IP, MAC, ...)"},
    LOCATION_FIELD,
    ATTRIBUTES_FIELD,
    {"deviceRole", "device_role", API_FT_ENUM, API_FF_FILTER, device_roles, NULL,
     0, 0, "Role in demultiplexing"},
    {"parentDeviceId", "parent_device_id", API_FT_REF,
     API_FF_NULLABLE | API_FF_FILTER, NULL, "devices", 0, 0, "parent device"},
    {"logicalIdentifier", "logical_identifier", API_FT_STRING, API_FF_NULLABLE,
     NULL, NULL, 0, 200, "Identifier of a gateway's child within the gateway"},
    {"lastSeenAt", "last_seen_at", API_FT_TIME, API_FF_READONLY | API_FF_SORT,
     NULL, NULL, 0, 0, "Time of the last accepted telemetry"},
    {0},
};

static const struct api_dependent device_dependents[] = {
    {"devices", "parent_device_id", "child devices"},
    {0},
};

const struct api_resource api_res_devices = {
    "/api/v1/devices", "devices", "device", "Device", device_fields,
    API_ROLE_VIEWER, API_ROLE_OPERATOR, device_dependents, check_device,
};

static const struct api_field asset_type_fields[] = {
    NAME_FIELD,
    DESCRIPTION_FIELD,
    {"parentId", "parent_id", API_FT_REF, API_FF_NULLABLE | API_FF_FILTER, NULL,
     "asset_types", 0, 0, "parent asset type"},
    {"icon", "icon", API_FT_STRING, API_FF_NULLABLE, NULL, NULL, 0, 100, "Icon name"},
    {"color", "color", API_FT_STRING, API_FF_NULLABLE, NULL, NULL, 0, 32, "Colour"},
    {"customFields", "custom_fields", API_FT_OBJECT, 0, NULL, NULL, 0, 0,
     "Definitions of custom fields of assets of this type"},
    {0},
};

static const struct api_dependent asset_type_dependents[] = {
    {"asset_types", "parent_id", "child asset types"},
    {"assets", "asset_type_id", "assets"},
    {0},
};

const struct api_resource api_res_asset_types = {
    "/api/v1/asset-types", "asset_types", "asset type", "AssetType",
    asset_type_fields, API_ROLE_VIEWER, API_ROLE_OPERATOR,
    asset_type_dependents, check_asset_type,
};

static const struct api_field asset_fields[] = {
    NAME_FIELD,
    DESCRIPTION_FIELD,
    {"assetTypeId", "asset_type_id", API_FT_REF, API_FF_REQUIRED | API_FF_FILTER,
     NULL, "asset_types", 0, 0, "asset type"},
    {"parentId", "parent_id", API_FT_REF, API_FF_NULLABLE | API_FF_FILTER, NULL,
     "assets", 0, 0, "parent asset"},
    {"spaceId", "space_id", API_FT_REF, API_FF_NULLABLE | API_FF_FILTER, NULL,
     "spaces", 0, 0, "space"},
    {"status", "status", API_FT_ENUM, API_FF_FILTER | API_FF_SORT, asset_status,
     NULL, 0, 0, "Lifecycle status"},
    {"serialNumber", "serial_number", API_FT_STRING, API_FF_NULLABLE | API_FF_SEARCH,
     NULL, NULL, 0, 200, "Serial number"},
    {"healthScore", "health_score", API_FT_NUMBER, API_FF_READONLY | API_FF_SORT,
     NULL, NULL, 0, 100, "Health 0..100, computed from telemetry"},
    {"healthScoreUpdatedAt", "health_score_updated_at", API_FT_TIME,
     API_FF_READONLY, NULL, NULL, 0, 0, "When the health score was computed"},
    LOCATION_FIELD,
    ATTRIBUTES_FIELD,
    {0},
};

static const struct api_dependent asset_dependents[] = {
    {"assets", "parent_id", "child assets"},
    {0},
};

const struct api_resource api_res_assets = {
    "/api/v1/assets", "assets", "asset", "Asset", asset_fields, API_ROLE_VIEWER,
    API_ROLE_OPERATOR, asset_dependents, check_asset,
};

static const struct api_field space_fields[] = {
    NAME_FIELD,
    DESCRIPTION_FIELD,
    {"parentId", "parent_id", API_FT_REF, API_FF_NULLABLE | API_FF_FILTER, NULL,
     "spaces", 0, 0, "parent space"},
    {"spaceType", "space_type", API_FT_STRING, API_FF_NULLABLE | API_FF_FILTER,
     NULL, NULL, 0, 100, "Kind of space (site, building, floor, room, ...)"},
    LOCATION_FIELD,
    ATTRIBUTES_FIELD,
    {0},
};

static const struct api_dependent space_dependents[] = {
    {"spaces", "parent_id", "child spaces"},
    {"assets", "space_id", "assets"},
    {0},
};

const struct api_resource api_res_spaces = {
    "/api/v1/spaces", "spaces", "space", "Space", space_fields, API_ROLE_VIEWER,
    API_ROLE_OPERATOR, space_dependents, check_space,
};

static const struct api_field person_fields[] = {
    NAME_FIELD,
    {"email", "email", API_FT_EMAIL, API_FF_NULLABLE | API_FF_SEARCH, NULL, NULL,
     0, 320, "Email address"},
    {"phone", "phone", API_FT_STRING, API_FF_NULLABLE, NULL, NULL, 0, 50, "Phone"},
    {"title", "title", API_FT_STRING, API_FF_NULLABLE | API_FF_SEARCH, NULL, NULL,
     0, 200, "Job title"},
    {"userId", "user_id", API_FT_REF, API_FF_NULLABLE | API_FF_FILTER, NULL,
     "users", 0, 0, "user"},
    LOCATION_FIELD,
    ATTRIBUTES_FIELD,
    {0},
};

const struct api_resource api_res_persons = {
    "/api/v1/persons", "persons", "person", "Person", person_fields,
    API_ROLE_VIEWER, API_ROLE_OPERATOR, NULL, NULL,
};

static const struct api_field activity_type_fields[] = {
    NAME_FIELD,
    DESCRIPTION_FIELD,
    {"category", "category", API_FT_ENUM,
     API_FF_REQUIRED | API_FF_FILTER | API_FF_SORT, activity_categories, NULL, 0,
     0, "Who starts the work and who does it"},
    ATTRIBUTES_FIELD,
    {0},
};

static const struct api_dependent activity_type_dependents[] = {
    {"activities", "activity_type_id", "activities"},
    {0},
};

const struct api_resource api_res_activity_types = {
    "/api/v1/activity-types", "activity_types", "activity type",
    "ActivityType", activity_type_fields, API_ROLE_VIEWER, API_ROLE_OPERATOR,
    activity_type_dependents, NULL,
};

static const struct api_field activity_fields[] = {
    {"title", "title", API_FT_STRING,
     API_FF_REQUIRED | API_FF_SORT | API_FF_SEARCH, NULL, NULL, 0, 300, "Title"},
    DESCRIPTION_FIELD,
    {"activityTypeId", "activity_type_id", API_FT_REF,
     API_FF_NULLABLE | API_FF_FILTER, NULL, "activity_types", 0, 0,
     "activity type"},
    {"category", "category", API_FT_ENUM,
     API_FF_REQUIRED | API_FF_FILTER | API_FF_SORT, activity_categories, NULL, 0,
     0, "Who starts the work and who does it"},
    {"status", "status", API_FT_ENUM, API_FF_FILTER | API_FF_SORT,
     activity_status, NULL, 0, 0, "Progress"},
    {"priority", "priority", API_FT_ENUM, API_FF_FILTER | API_FF_SORT, priorities,
     NULL, 0, 0, "Priority"},
    {"assigneeUserId", "assignee_user_id", API_FT_REF,
     API_FF_NULLABLE | API_FF_FILTER, NULL, "users", 0, 0, "user"},
    {"dueAt", "due_at", API_FT_TIME, API_FF_NULLABLE | API_FF_SORT, NULL, NULL, 0,
     0, "Due date"},
    {"completedAt", "completed_at", API_FT_TIME, API_FF_NULLABLE | API_FF_SORT,
     NULL, NULL, 0, 0, "When the work was completed"},
    {"source", "source", API_FT_ENUM, API_FF_FILTER, activity_sources, NULL, 0, 0,
     "What created the activity"},
    {"sourceRef", "source_ref", API_FT_STRING, API_FF_NULLABLE, NULL, NULL, 0, 200,
     "Id of the event, schedule, ... that created it"},
    {"assetId", "asset_id", API_FT_REF, API_FF_NULLABLE | API_FF_FILTER, NULL,
     "assets", 0, 0, "asset"},
    {"deviceId", "device_id", API_FT_REF, API_FF_NULLABLE | API_FF_FILTER, NULL,
     "devices", 0, 0, "device"},
    {"spaceId", "space_id", API_FT_REF, API_FF_NULLABLE | API_FF_FILTER, NULL,
     "spaces", 0, 0, "space"},
    ATTRIBUTES_FIELD,
    {0},
};

const struct api_resource api_res_activities = {
    "/api/v1/activities", "activities", "activity", "Activity", activity_fields,
    API_ROLE_VIEWER, API_ROLE_TECHNICIAN, NULL, NULL,
};

static const struct api_field user_fields[] = {
    {"email", "email", API_FT_EMAIL,
     API_FF_REQUIRED | API_FF_SORT | API_FF_SEARCH, NULL, NULL, 0, 320,
     "Login email, unique"},
    {"name", "name", API_FT_STRING, API_FF_REQUIRED | API_FF_SORT | API_FF_SEARCH,
     NULL, NULL, 0, 200, "Display name"},
    {"role", "role", API_FT_ENUM, API_FF_REQUIRED | API_FF_FILTER | API_FF_SORT,
     api_role_names, NULL, 0, 0, "admin, operator, technician or viewer"},
    {"status", "status", API_FT_ENUM, API_FF_FILTER, user_status, NULL, 0, 0,
     "A disabled user cannot sign in"},
    {"password", "password_hash", API_FT_PASSWORD,
     API_FF_REQUIRED | API_FF_WRITEONLY, NULL, NULL, 0, 1024,
     "At least 8 characters; stored as an argon2id hash, never returned"},
    {"lastLoginAt", "last_login_at", API_FT_TIME, API_FF_READONLY, NULL, NULL, 0,
     0, "Last successful sign-in"},
    {0},
};

/* A user's own account cannot be demoted or disabled by that user: an
 * organisation must not lock itself out by accident. */
static bool check_user(struct db_conn *c, const struct api_principal *p,
                       const char *id, json_t *merged, struct http_res *res)
{
    if (!id || strcmp(id, p->user_id) != 0)
        return true;
    const char *role = json_string_value(json_object_get(merged, "role"));
    const char *status = json_string_value(json_object_get(merged, "status"));
    if ((role && strcmp(role, "admin") != 0) ||
        (status && strcmp(status, "active") != 0)) {
        http_res_problem(res, HTTP_PROBLEM_CONFLICT,
                         "you cannot demote or disable your own account");
        return false;
    }
    return true;
}

const struct api_resource api_res_users = {
    "/api/v1/users", "users", "user", "User", user_fields, API_ROLE_OPERATOR,
    API_ROLE_ADMIN, NULL, check_user,
};

const struct api_resource *const api_resources[] = {
    &api_res_device_types, &api_res_devices,        &api_res_asset_types,
    &api_res_assets,       &api_res_spaces,         &api_res_persons,
    &api_res_activity_types, &api_res_activities,   &api_res_users,
    NULL,
};
