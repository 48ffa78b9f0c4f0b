/* Hierarchy views: an asset's children and ancestors, a device's children
 * (a gateway's logical devices), an asset type's subtree. */
#include "api_internal.h"

#include <string.h>

/* Answers with the direct children of the path's row. */
static void children(struct http_req *req, struct http_res *res, void *ctx,
                     const struct api_resource *rs, const char *cond)
{
    struct api *api = ctx;
    const struct api_principal *p = api__principal(req);
    char id[CORE_UUID_STR_LEN];
    if (!api__query_known(req, NULL, res) || !api__path_id(req, "id", id, res))
        return;
    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        return;
    bool exists;
    json_t *items = json_array();
    int rc = api__row_exists(c, rs->table, p->org_id, id, &exists);
    const char *binds[] = {id};
    if (rc == CORE_OK && exists)
        rc = api__resource_select(c, rs, p->org_id, cond, binds, 1, items);
    db_conn_release(c);
    if (rc || !exists) {
        json_decref(items);
        if (rc)
            http_res_error(res, rc);
        else
            http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no %s with id %s",
                             rs->entity, id);
        return;
    }
    http_res_json(res, 200, json_pack("{s:o}", "data", items));
}

static void asset_children(struct http_req *req, struct http_res *res, void *ctx)
{
    children(req, res, ctx, &api_res_assets, "parent_id = ?");
}

static void device_children(struct http_req *req, struct http_res *res,
                            void *ctx)
{
    children(req, res, ctx, &api_res_devices, "parent_device_id = ?");
}

static void asset_type_children(struct http_req *req, struct http_res *res,
                                void *ctx)
{
    children(req, res, ctx, &api_res_asset_types, "parent_id = ?");
}

/* Root first, the asset's parent last. */
static void asset_ancestors(struct http_req *req, struct http_res *res,
                            void *ctx)
{
    struct api *api = ctx;
    const struct api_principal *p = api__principal(req);
    char id[CORE_UUID_STR_LEN];
    if (!api__query_known(req, NULL, res) || !api__path_id(req, "id", id, res))
        return;
    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        return;
    json_t *cur = NULL, *items = json_array();
    int rc = api__resource_fetch(c, &api_res_assets, p->org_id, id, &cur);
    bool found = cur != NULL;
    for (int guard = 0; rc == CORE_OK && cur && guard < 1000; guard++) {
        const char *parent = json_string_value(json_object_get(cur, "parentId"));
        json_t *next = NULL;
        if (parent)
            rc = api__resource_fetch(c, &api_res_assets, p->org_id, parent, &next);
        if (guard > 0)
            json_array_insert(items, 0, cur);
        json_decref(cur);
        cur = next;
    }
    json_decref(cur);
    db_conn_release(c);
    if (rc || !found) {
        json_decref(items);
        if (rc)
            http_res_error(res, rc);
        else
            http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no asset with id %s", id);
        return;
    }
    http_res_json(res, 200, json_pack("{s:o}", "data", items));
}

static const struct api_op op_assets = {API_OP_CUSTOM, NULL, NULL,
                                        "Items:Asset", 200, NULL};
static const struct api_op op_devices = {API_OP_CUSTOM, NULL, NULL,
                                         "Items:Device", 200, NULL};
static const struct api_op op_types = {API_OP_CUSTOM, NULL, NULL,
                                       "Items:AssetType", 200, NULL};

int api__asset_routes(struct http_router *r)
{
    const struct http_route routes[] = {
        {HTTP_GET, "/api/v1/assets/:id/children", asset_children,
         API_ROLE_VIEWER, &op_assets, "Direct children of an asset", "assets"},
        {HTTP_GET, "/api/v1/assets/:id/ancestors", asset_ancestors,
         API_ROLE_VIEWER, &op_assets,
         "Ancestors of an asset, root first, parent last", "assets"},
        {HTTP_GET, "/api/v1/devices/:id/children", device_children,
         API_ROLE_VIEWER, &op_devices,
         "Devices behind a gateway (its logical devices)", "devices"},
        {HTTP_GET, "/api/v1/asset-types/:id/children", asset_type_children,
         API_ROLE_VIEWER, &op_types, "Direct children of an asset type",
         "asset_types"},
    };
    return http_router_add_all(r, routes, sizeof routes / sizeof routes[0]);
}
