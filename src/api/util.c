#include "api_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const api_role_names[] = {"viewer", "technician", "operator",
                                      "admin", NULL};

int api__role_parse(const char *s)
{
    for (int i = 0; s && api_role_names[i]; i++)
        if (strcmp(s, api_role_names[i]) == 0)
            return i;
    return -1;
}

void api__now(char out[CORE_TIME_ISO_LEN])
{
    core_time_format_iso(core_time_now_ms(), out);
}

struct db_conn *api__conn(struct api *api, bool write, struct http_res *res)
{
    struct db_conn *c = NULL;
    int rc = db_conn_acquire(api->db, write, &c);
    if (rc != CORE_OK) {
        http_res_error(res, rc == CORE_EBUSY ? CORE_EBUSY : rc);
        return NULL;
    }
    return c;
}

bool api__path_id(const struct http_req *req, const char *name,
                  char out[CORE_UUID_STR_LEN], struct http_res *res)
{
    const char *v = http_req_param(req, name);
    if (!core_uuid_valid(v)) {
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "%s in the path is not a UUID", name);
        return false;
    }
    memcpy(out, v, CORE_UUID_STR_LEN);
    core_uuid_normalize(out);
    return true;
}

static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool api__paging(const struct http_req *req, int64_t *limit, int64_t *offset,
                 struct http_res *res)
{
    const char *l = http_req_query(req, "limit");
    const char *o = http_req_query(req, "offset");
    *limit = 50;
    *offset = 0;
    if (l && !parse_int(l, 1, 500, limit)) {
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "limit must be an integer from 1 to 500");
        return false;
    }
    if (o && !parse_int(o, 0, 1000000000, offset)) {
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "offset must be a non-negative integer");
        return false;
    }
    return true;
}

bool api__query_time(const struct http_req *req, const char *name,
                     int64_t def, int64_t *out, struct http_res *res)
{
    const char *v = http_req_query(req, name);
    *out = def;
    if (!v)
        return true;
    if (core_time_parse_iso(v, out) != CORE_OK) {
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "%s must be an RFC 3339 date-time such as "
                         "2026-01-31T12:00:00Z",
                         name);
        return false;
    }
    return true;
}

bool api__query_known(const struct http_req *req, const char *const *allowed,
                      struct http_res *res)
{
    for (int i = 0; i < req->nquery; i++) {
        const char *k = req->query[i].key;
        bool ok = false;
        for (int j = 0; allowed && allowed[j] && !ok; j++)
            ok = strcmp(k, allowed[j]) == 0;
        if (!ok) {
            http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                             "unknown query parameter '%s'", k);
            return false;
        }
        for (int j = 0; j < i; j++) {
            if (strcmp(req->query[j].key, k) == 0) {
                http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                                 "query parameter '%s' given twice", k);
                return false;
            }
        }
    }
    return true;
}

json_t *api__page(json_t *items, int64_t limit, int64_t offset, int64_t total)
{
    return json_pack("{s:o, s:{s:I, s:I, s:I}}", "data", items, "pagination",
                     "limit", (json_int_t)limit, "offset", (json_int_t)offset,
                     "total", (json_int_t)total);
}

int api__row_exists(struct db_conn *c, const char *table, const char *org_id,
                    const char *id, bool *exists)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT 1 FROM %s WHERE id = ? AND organization_id = ? AND "
             "deleted_at IS NULL",
             table);
    struct db_stmt *s;
    int rc = db_prepare(c, sql, &s);
    if (rc)
        return rc;
    db_bind_text(s, 1, id);
    db_bind_text(s, 2, org_id);
    rc = db_step(s, exists);
    db_finalize(s);
    return rc;
}

int api__audit(struct db_conn *c, const struct api_principal *p,
               const char *action, const char *entity_type,
               const char *entity_id, json_t *changes)
{
    char id[CORE_UUID_STR_LEN], now[CORE_TIME_ISO_LEN];
    core_uuid7(id);
    api__now(now);
    char *js = changes ? json_dumps(changes, JSON_COMPACT) : strdup("{}");
    json_decref(changes);
    if (!js)
        return CORE_ENOMEM;
    struct db_stmt *s;
    int rc = db_prepare(c,
                        "INSERT INTO audit_log (id, organization_id, actor_type, "
                        "actor_id, action, entity_type, entity_id, changes, "
                        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        &s);
    if (rc == CORE_OK) {
        bool row;
        db_bind_text(s, 1, id);
        db_bind_text(s, 2, p->org_id);
        if (p->kind == API_PRINCIPAL_USER) {
            db_bind_text(s, 3, "user");
            db_bind_text(s, 4, p->user_id);
        } else {
            db_bind_text(s, 3, "device");
            db_bind_text(s, 4, p->device_id);
        }
        db_bind_text(s, 5, action);
        db_bind_text(s, 6, entity_type);
        db_bind_text(s, 7, entity_id);
        db_bind_text(s, 8, js);
        db_bind_text(s, 9, now);
        rc = db_step(s, &row);
        db_finalize(s);
    }
    free(js);
    return rc;
}

void api__error_add(struct api_errors *e, const char *field, const char *fmt,
                    ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!e->list)
        e->list = json_array();
    json_array_append_new(e->list,
                          json_pack("{s:s, s:s}", "field", field, "message", msg));
}

bool api__errors_answer(struct api_errors *e, struct http_res *res)
{
    if (!e->list)
        return false;
    size_t n = json_array_size(e->list);
    json_t *first = json_array_get(e->list, 0);
    char detail[300];
    snprintf(detail, sizeof detail, "%s: %s",
             json_string_value(json_object_get(first, "field")),
             json_string_value(json_object_get(first, "message")));
    http_res_problem_ext(res, HTTP_PROBLEM_VALIDATION,
                         json_pack("{s:o}", "errors", e->list),
                         n > 1 ? "%s (and %zu more)" : "%s", detail, n - 1);
    e->list = NULL;
    return true;
}
