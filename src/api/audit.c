/* The audit log: who changed what and when, newest first. */
#include "api_internal.h"

#include <stdio.h>
#include <string.h>

static void list_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    const struct api_op *op = req->route->data;
    int64_t limit, offset;
    if (!api__query_known(req, op->query, res) ||
        !api__paging(req, &limit, &offset, res))
        return;
    const char *type = http_req_query(req, "entityType");
    const char *eid = http_req_query(req, "entityId");
    if ((type && strlen(type) > 100) || (eid && strlen(eid) > 100)) {
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "entityType and entityId are at most 100 characters");
        return;
    }
    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        return;
    char where[200] = " WHERE organization_id = ?";
    if (type)
        strcat(where, " AND entity_type = ?");
    if (eid)
        strcat(where, " AND entity_id = ?");
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT id, actor_type, actor_id, action, entity_type, entity_id, "
             "changes, created_at FROM audit_log%s ORDER BY created_at DESC, id "
             "DESC LIMIT ? OFFSET ?",
             where);
    json_t *items = json_array();
    struct db_stmt *s;
    bool row;
    int64_t total = 0;
    int rc = db_prepare(c, sql, &s);
    if (rc == CORE_OK) {
        int i = 1;
        db_bind_text(s, i++, api__principal(req)->org_id);
        if (type)
            db_bind_text(s, i++, type);
        if (eid)
            db_bind_text(s, i++, eid);
        db_bind_int64(s, i++, limit);
        db_bind_int64(s, i, offset);
        while ((rc = db_step(s, &row)) == CORE_OK && row) {
            json_t *changes = json_loads(db_col_text(s, 6), 0, NULL);
            json_array_append_new(
                items,
                json_pack("{s:s, s:{s:s, s:o}, s:s, s:s, s:s, s:o, s:s}", "id",
                          db_col_text(s, 0), "actor", "type", db_col_text(s, 1),
                          "id",
                          db_col_is_null(s, 2) ? json_null()
                                               : json_string(db_col_text(s, 2)),
                          "action", db_col_text(s, 3), "entityType",
                          db_col_text(s, 4), "entityId", db_col_text(s, 5),
                          "changes", changes ? changes : json_object(), "at",
                          db_col_text(s, 7)));
        }
        db_finalize(s);
    }
    snprintf(sql, sizeof sql, "SELECT count(*) FROM audit_log%s", where);
    if (rc == CORE_OK && (rc = db_prepare(c, sql, &s)) == CORE_OK) {
        int i = 1;
        db_bind_text(s, i++, api__principal(req)->org_id);
        if (type)
            db_bind_text(s, i++, type);
        if (eid)
            db_bind_text(s, i, eid);
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

static const char *const audit_query[] = {"entityType", "entityId", "limit",
                                          "offset", NULL};
static const struct api_op op_list = {API_OP_CUSTOM, NULL, NULL,
                                      "List:AuditEntry", 200, audit_query};

int api__audit_routes(struct http_router *r)
{
    const struct http_route route = {
        HTTP_GET, "/api/v1/audit", list_handler, API_ROLE_OPERATOR, &op_list,
        "Who changed what and when, newest first", "audit"};
    return http_router_add(r, &route);
}
