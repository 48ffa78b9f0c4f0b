/*
 * The generic resource engine: list, get, create, update (PATCH) and soft
 * delete for every table-described resource (struct api_resource). Field
 * tables give validation, SQL, JSON conversion, filters and the OpenAPI
 * schemas, so a resource is added by writing its table.
 */
#include "api_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FIELDS 32

static bool is_returned(const struct api_field *f)
{
    return !(f->flags & API_FF_WRITEONLY);
}

/* "id, organization_id, name, ..., created_at, updated_at" */
static void select_list(struct core_buf *b, const struct api_resource *res)
{
    core_buf_puts(b, "SELECT id, organization_id");
    for (const struct api_field *f = res->fields; f->name; f++)
        if (is_returned(f))
            core_buf_printf(b, ", %s", f->column);
    core_buf_printf(b, ", created_at, updated_at FROM %s", res->table);
}

static json_t *col_json(struct db_stmt *s, int i, const struct api_field *f)
{
    if (db_col_is_null(s, i))
        return json_null();
    switch (f->type) {
    case API_FT_NUMBER:
        return json_real(db_col_double(s, i));
    case API_FT_INT:
        return json_integer(db_col_int64(s, i));
    case API_FT_BOOL:
        return json_boolean(db_col_bool(s, i));
    case API_FT_OBJECT:
    case API_FT_LOCATION: {
        json_t *v = json_loads(db_col_text(s, i), JSON_DECODE_ANY, NULL);
        return v ? v : json_null();
    }
    default:
        return json_string(db_col_text(s, i));
    }
}

static json_t *row_json(struct db_stmt *s, const struct api_resource *res)
{
    json_t *o = json_object();
    int i = 0;
    json_object_set_new(o, "id", json_string(db_col_text(s, i++)));
    json_object_set_new(o, "organizationId", json_string(db_col_text(s, i++)));
    for (const struct api_field *f = res->fields; f->name; f++)
        if (is_returned(f))
            json_object_set_new(o, f->name, col_json(s, i++, f));
    json_object_set_new(o, "createdAt", json_string(db_col_text(s, i++)));
    json_object_set_new(o, "updatedAt", json_string(db_col_text(s, i++)));
    return o;
}

int api__resource_fetch(struct db_conn *c, const struct api_resource *res,
                        const char *org_id, const char *id, json_t **out)
{
    struct core_buf b;
    core_buf_init(&b);
    select_list(&b, res);
    core_buf_puts(&b, " WHERE id = ? AND organization_id = ? AND deleted_at IS NULL");
    *out = NULL;
    struct db_stmt *s;
    int rc = b.oom ? CORE_ENOMEM : db_prepare(c, b.data, &s);
    core_buf_fini(&b);
    if (rc)
        return rc;
    db_bind_text(s, 1, id);
    db_bind_text(s, 2, org_id);
    bool row;
    rc = db_step(s, &row);
    if (rc == CORE_OK && row)
        *out = row_json(s, res);
    db_finalize(s);
    return rc;
}

static const struct api_field *field_by_name(const struct api_resource *res,
                                             const char *name)
{
    for (const struct api_field *f = res->fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* --------------------------------------------------------------------- list */

static void list_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    const struct api_op *op = req->route->data;
    const struct api_resource *rs = op->resource;
    const struct api_principal *p = api__principal(req);
    int64_t limit, offset;
    if (!api__query_known(req, op->query, res) ||
        !api__paging(req, &limit, &offset, res))
        return;

    /* WHERE clause and its bindings, shared by the page and the count. */
    struct core_buf where;
    core_buf_init(&where);
    core_buf_puts(&where, " WHERE organization_id = ? AND deleted_at IS NULL");
    const char *binds[MAX_FIELDS + 2];
    int nb = 0;
    binds[nb++] = p->org_id;
    for (const struct api_field *f = rs->fields; f->name; f++) {
        if (!(f->flags & API_FF_FILTER))
            continue;
        const char *v = http_req_query(req, f->name);
        if (!v)
            continue;
        if (strcmp(v, "null") == 0 && (f->flags & API_FF_NULLABLE)) {
            core_buf_printf(&where, " AND %s IS NULL", f->column);
            continue;
        }
        if (f->type == API_FT_ENUM) {
            bool ok = false;
            for (int i = 0; f->values[i] && !ok; i++)
                ok = strcmp(f->values[i], v) == 0;
            if (!ok) {
                http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                                 "%s must be one of the allowed values", f->name);
                goto out;
            }
        } else if (f->type == API_FT_REF && !core_uuid_valid(v)) {
            http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                             "%s must be a UUID%s", f->name,
                             f->flags & API_FF_NULLABLE ? " or null" : "");
            goto out;
        }
        core_buf_printf(&where, " AND %s = ?", f->column);
        binds[nb++] = v;
    }
    char pattern[260];
    const char *search = http_req_query(req, "search");
    if (search) {
        if (strlen(search) > 200) {
            http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                             "search is longer than 200 characters");
            goto out;
        }
        /* LIKE wildcards typed by the user are matched literally. */
        size_t j = 0;
        pattern[j++] = '%';
        for (const char *c = search; *c; c++) {
            if (*c == '%' || *c == '_' || *c == '\\')
                pattern[j++] = '\\';
            pattern[j++] = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        }
        pattern[j++] = '%';
        pattern[j] = '\0';
        core_buf_puts(&where, " AND (");
        bool first = true;
        for (const struct api_field *f = rs->fields; f->name; f++) {
            if (!(f->flags & API_FF_SEARCH))
                continue;
            core_buf_printf(&where, "%slower(%s) LIKE ? ESCAPE '\\'",
                            first ? "" : " OR ", f->column);
            binds[nb++] = pattern;
            first = false;
        }
        core_buf_puts(&where, ")");
    }

    /* ORDER BY a sortable field, then id so that pages are stable. */
    const char *sort = http_req_query(req, "sort");
    const char *order_col = "created_at";
    bool desc = false;
    if (sort) {
        desc = sort[0] == '-';
        const char *name = desc ? sort + 1 : sort;
        const struct api_field *f = field_by_name(rs, name);
        if (f && (f->flags & API_FF_SORT)) {
            order_col = f->column;
        } else if (strcmp(name, "createdAt") == 0) {
            order_col = "created_at";
        } else if (strcmp(name, "updatedAt") == 0) {
            order_col = "updated_at";
        } else {
            http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                             "cannot sort by '%s'", name);
            goto out;
        }
    }

    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        goto out;
    struct core_buf sql;
    core_buf_init(&sql);
    select_list(&sql, rs);
    core_buf_append(&sql, where.data, where.len);
    core_buf_printf(&sql, " ORDER BY %s %s, id %s LIMIT ? OFFSET ?", order_col,
                    desc ? "DESC" : "ASC", desc ? "DESC" : "ASC");
    json_t *items = json_array();
    struct db_stmt *s = NULL;
    int64_t total = 0;
    bool row;
    int rc = sql.oom || where.oom ? CORE_ENOMEM : db_prepare(c, sql.data, &s);
    if (rc == CORE_OK) {
        for (int i = 0; i < nb; i++)
            db_bind_text(s, i + 1, binds[i]);
        db_bind_int64(s, nb + 1, limit);
        db_bind_int64(s, nb + 2, offset);
        while ((rc = db_step(s, &row)) == CORE_OK && row)
            json_array_append_new(items, row_json(s, rs));
        db_finalize(s);
    }
    if (rc == CORE_OK) {
        core_buf_reset(&sql);
        core_buf_printf(&sql, "SELECT count(*) FROM %s", rs->table);
        core_buf_append(&sql, where.data, where.len);
        rc = db_prepare(c, sql.data, &s);
        if (rc == CORE_OK) {
            for (int i = 0; i < nb; i++)
                db_bind_text(s, i + 1, binds[i]);
            rc = db_step(s, &row);
            if (rc == CORE_OK && row)
                total = db_col_int64(s, 0);
            db_finalize(s);
        }
    }
    db_conn_release(c);
    core_buf_fini(&sql);
    if (rc) {
        json_decref(items);
        http_res_error(res, rc);
    } else {
        http_res_json(res, 200, api__page(items, limit, offset, total));
    }
out:
    core_buf_fini(&where);
}

/* ---------------------------------------------------------------------- get */

static void get_handler(struct http_req *req, struct http_res *res, void *ctx)
{
    struct api *api = ctx;
    const struct api_op *op = req->route->data;
    char id[CORE_UUID_STR_LEN];
    if (!api__query_known(req, NULL, res) || !api__path_id(req, "id", id, res))
        return;
    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        return;
    json_t *o;
    int rc = api__resource_fetch(c, op->resource, api__principal(req)->org_id,
                                 id, &o);
    db_conn_release(c);
    if (rc)
        http_res_error(res, rc);
    else if (!o)
        http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no %s with id %s",
                         op->resource->entity, id);
    else
        http_res_json(res, 200, o);
}

/* ------------------------------------------------------------------- writes */

/* A value ready to bind. */
struct bound {
    const struct api_field *f;
    enum { B_NULL, B_TEXT, B_INT, B_REAL, B_BOOL } kind;
    char *text; /* owned */
    int64_t i;
    double d;
};

static bool valid_email(const char *s)
{
    const char *at = strchr(s, '@');
    return at && at != s && strchr(at + 1, '.') && !strchr(at + 1, '@') &&
           !strpbrk(s, " \t\r\n") && at[1] != '.' && s[strlen(s) - 1] != '.';
}

static bool valid_utf8_line(const char *s, bool multiline)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 && !(multiline && (*s == '\n' || *s == '\t' || *s == '\r')))
            return false;
    return true;
}

/* Converts one JSON value to a bindable value, or records why not. */
static bool convert(const struct api_field *f, json_t *v, struct bound *out,
                    struct api_errors *errs)
{
    out->f = f;
    out->kind = B_NULL;
    out->text = NULL;
    if (json_is_null(v)) {
        if (!(f->flags & API_FF_NULLABLE) || (f->flags & API_FF_REQUIRED)) {
            api__error_add(errs, f->name, "must not be null");
            return false;
        }
        return true;
    }
    switch (f->type) {
    case API_FT_STRING:
    case API_FT_TEXT:
    case API_FT_EMAIL:
    case API_FT_PASSWORD:
    case API_FT_ENUM:
    case API_FT_REF:
    case API_FT_TIME: {
        if (!json_is_string(v)) {
            api__error_add(errs, f->name, "must be a string");
            return false;
        }
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (strlen(s) != len) {
            api__error_add(errs, f->name, "must not contain NUL characters");
            return false;
        }
        if (f->type == API_FT_ENUM) {
            bool ok = false;
            for (int i = 0; f->values[i] && !ok; i++)
                ok = strcmp(f->values[i], s) == 0;
            if (!ok) {
                struct core_buf b;
                core_buf_init(&b);
                for (int i = 0; f->values[i]; i++)
                    core_buf_printf(&b, "%s%s", i ? ", " : "", f->values[i]);
                api__error_add(errs, f->name, "must be one of: %s",
                               b.data ? b.data : "");
                core_buf_fini(&b);
                return false;
            }
        } else if (f->type == API_FT_REF) {
            if (!core_uuid_valid(s)) {
                api__error_add(errs, f->name, "must be a UUID");
                return false;
            }
        } else if (f->type == API_FT_TIME) {
            int64_t ms;
            if (core_time_parse_iso(s, &ms) != CORE_OK) {
                api__error_add(errs, f->name,
                               "must be an RFC 3339 date-time such as "
                               "2026-01-31T12:00:00Z");
                return false;
            }
            char iso[CORE_TIME_ISO_LEN];
            core_time_format_iso(ms, iso);
            out->kind = B_TEXT;
            out->text = strdup(iso);
            return out->text != NULL;
        } else {
            bool multiline = f->type == API_FT_TEXT;
            if (f->type == API_FT_STRING && len == 0 &&
                (f->flags & API_FF_REQUIRED)) {
                api__error_add(errs, f->name, "must not be empty");
                return false;
            }
            if (f->max > 0 && len > (size_t)f->max) {
                api__error_add(errs, f->name, "must be at most %.0f bytes long",
                               f->max);
                return false;
            }
            if (f->type != API_FT_PASSWORD && !valid_utf8_line(s, multiline)) {
                api__error_add(errs, f->name, "must not contain control characters");
                return false;
            }
            if (f->type == API_FT_EMAIL && !valid_email(s)) {
                api__error_add(errs, f->name, "must be an email address");
                return false;
            }
            if (f->type == API_FT_PASSWORD) {
                if (len < 8) {
                    api__error_add(errs, f->name,
                                   "must be at least 8 characters long");
                    return false;
                }
                out->kind = B_TEXT;
                return api__password_hash(s, &out->text) == CORE_OK;
            }
        }
        out->kind = B_TEXT;
        out->text = strdup(s);
        if (out->text && (f->type == API_FT_REF || f->type == API_FT_EMAIL))
            for (char *c = out->text; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c + 32);
        return out->text != NULL;
    }
    case API_FT_NUMBER:
    case API_FT_INT: {
        if (!json_is_number(v) ||
            (f->type == API_FT_INT && !json_is_integer(v))) {
            api__error_add(errs, f->name, "must be %s",
                           f->type == API_FT_INT ? "an integer" : "a number");
            return false;
        }
        double d = json_number_value(v);
        if (!isfinite(d) || ((f->min != 0 || f->max != 0) &&
                             (d < f->min || d > f->max))) {
            api__error_add(errs, f->name, "must be between %g and %g", f->min,
                           f->max);
            return false;
        }
        if (f->type == API_FT_INT) {
            out->kind = B_INT;
            out->i = json_integer_value(v);
        } else {
            out->kind = B_REAL;
            out->d = d;
        }
        return true;
    }
    case API_FT_BOOL:
        if (!json_is_boolean(v)) {
            api__error_add(errs, f->name, "must be true or false");
            return false;
        }
        out->kind = B_BOOL;
        out->i = json_is_true(v);
        return true;
    case API_FT_LOCATION: {
        json_t *lat = json_object_get(v, "lat"), *lng = json_object_get(v, "lng");
        json_t *alt = json_object_get(v, "alt");
        if (!json_is_object(v) || !json_is_number(lat) || !json_is_number(lng) ||
            json_number_value(lat) < -90 || json_number_value(lat) > 90 ||
            json_number_value(lng) < -180 || json_number_value(lng) > 180 ||
            (alt && !json_is_number(alt)) ||
            json_object_size(v) != 2u + (alt != NULL)) {
            api__error_add(errs, f->name,
                           "must be {\"lat\": -90..90, \"lng\": -180..180} "
                           "with an optional numeric \"alt\"");
            return false;
        }
        goto as_json;
    }
    case API_FT_OBJECT:
        if (!json_is_object(v)) {
            api__error_add(errs, f->name, "must be a JSON object");
            return false;
        }
    as_json:
        out->kind = B_TEXT;
        out->text = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(17));
        if (out->text && strlen(out->text) > 65536) {
            free(out->text);
            out->text = NULL;
            api__error_add(errs, f->name, "must be at most 64 KiB of JSON");
            return false;
        }
        return out->text != NULL;
    }
    return false;
}

static void bind_value(struct db_stmt *s, int idx, const struct bound *b)
{
    switch (b->kind) {
    case B_NULL: db_bind_null(s, idx); break;
    case B_TEXT: db_bind_text(s, idx, b->text); break;
    case B_INT: db_bind_int64(s, idx, b->i); break;
    case B_REAL: db_bind_double(s, idx, b->d); break;
    case B_BOOL: db_bind_bool(s, idx, b->i != 0); break;
    }
}

/* Validates the body against the field table. On success vals holds the
 * given fields. create=true also demands required fields. */
static bool body_values(const struct api_resource *rs, json_t *body,
                        bool create, struct bound *vals, int *nvals,
                        struct http_res *res)
{
    struct api_errors errs = {0};
    *nvals = 0;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        const struct api_field *f = field_by_name(rs, key);
        if (!f) {
            if (strcmp(key, "id") && strcmp(key, "organizationId") &&
                strcmp(key, "createdAt") && strcmp(key, "updatedAt"))
                api__error_add(&errs, key, "is not a field of %s", rs->entity);
            else
                api__error_add(&errs, key, "is set by the server");
            continue;
        }
        if (f->flags & API_FF_READONLY) {
            api__error_add(&errs, key, "is set by the server");
            continue;
        }
        if (*nvals == MAX_FIELDS)
            break;
        if (convert(f, v, &vals[*nvals], &errs))
            (*nvals)++;
    }
    if (create) {
        for (const struct api_field *f = rs->fields; f->name; f++)
            if ((f->flags & API_FF_REQUIRED) && !json_object_get(body, f->name))
                api__error_add(&errs, f->name, "is required");
    }
    if (api__errors_answer(&errs, res)) {
        for (int i = 0; i < *nvals; i++)
            free(vals[i].text);
        *nvals = 0;
        return false;
    }
    return true;
}

static void free_values(struct bound *vals, int n)
{
    for (int i = 0; i < n; i++)
        free(vals[i].text);
}

/* References must name live rows of the same organisation; a row of
 * another organisation is reported exactly like a missing one. */
static bool check_refs(struct db_conn *c, const char *org_id,
                       const struct bound *vals, int n, struct http_res *res,
                       int *rc)
{
    struct api_errors errs = {0};
    for (int i = 0; i < n; i++) {
        if (vals[i].f->type != API_FT_REF || vals[i].kind != B_TEXT)
            continue;
        bool exists = false;
        *rc = api__row_exists(c, vals[i].f->ref_table, org_id, vals[i].text,
                              &exists);
        if (*rc)
            return false;
        if (!exists)
            api__error_add(&errs, vals[i].f->name, "no such %s",
                           vals[i].f->help ? vals[i].f->help : "resource");
    }
    return !api__errors_answer(&errs, res);
}

static void write_failed(struct http_res *res, const struct api_resource *rs,
                         int rc)
{
    if (rc == CORE_ECONFLICT)
        http_res_problem(res, HTTP_PROBLEM_CONFLICT,
                         "a %s with the same unique value (such as its name) "
                         "already exists",
                         rs->entity);
    else
        http_res_error(res, rc);
}

static void create_handler(struct http_req *req, struct http_res *res,
                           void *ctx)
{
    struct api *api = ctx;
    const struct api_op *op = req->route->data;
    const struct api_resource *rs = op->resource;
    const struct api_principal *p = api__principal(req);
    if (!api__query_known(req, NULL, res))
        return;
    json_t *body = http_req_json_object(req, res);
    if (!body)
        return;
    struct bound vals[MAX_FIELDS];
    int n;
    if (!body_values(rs, body, true, vals, &n, res)) {
        json_decref(body);
        return;
    }
    struct db_conn *c = api__conn(api, true, res);
    if (!c)
        goto out;
    char id[CORE_UUID_STR_LEN], now[CORE_TIME_ISO_LEN];
    core_uuid7(id);
    api__now(now);
    int rc = db_begin(c);
    if (rc)
        goto fail;
    if (!check_refs(c, p->org_id, vals, n, res, &rc)) {
        db_rollback(c);
        if (rc)
            goto fail;
        goto release;
    }
    if (rs->check && !rs->check(c, p, NULL, body, res)) {
        db_rollback(c);
        goto release;
    }
    struct core_buf sql;
    core_buf_init(&sql);
    core_buf_printf(&sql, "INSERT INTO %s (id, organization_id, created_at, "
                          "updated_at",
                    rs->table);
    for (int i = 0; i < n; i++)
        core_buf_printf(&sql, ", %s", vals[i].f->column);
    core_buf_puts(&sql, ") VALUES (?, ?, ?, ?");
    for (int i = 0; i < n; i++)
        core_buf_puts(&sql, ", ?");
    core_buf_puts(&sql, ")");
    struct db_stmt *s;
    rc = sql.oom ? CORE_ENOMEM : db_prepare(c, sql.data, &s);
    core_buf_fini(&sql);
    if (rc == CORE_OK) {
        bool row;
        db_bind_text(s, 1, id);
        db_bind_text(s, 2, p->org_id);
        db_bind_text(s, 3, now);
        db_bind_text(s, 4, now);
        for (int i = 0; i < n; i++)
            bind_value(s, i + 5, &vals[i]);
        rc = db_step(s, &row);
        db_finalize(s);
    }
    json_t *obj = NULL;
    if (rc == CORE_OK)
        rc = api__resource_fetch(c, rs, p->org_id, id, &obj);
    if (rc == CORE_OK)
        rc = api__audit(c, p, "create", rs->entity, id, json_incref(obj));
    if (rc == CORE_OK)
        rc = db_commit(c);
    if (rc) {
        json_decref(obj);
        db_rollback(c);
        goto fail;
    }
    char loc[256];
    snprintf(loc, sizeof loc, "%s/%s", rs->path, id);
    http_res_header(res, "Location", loc);
    http_res_json(res, 201, obj);
    goto release;
fail:
    write_failed(res, rs, rc);
release:
    db_conn_release(c);
out:
    free_values(vals, n);
    json_decref(body);
}

static void update_handler(struct http_req *req, struct http_res *res,
                           void *ctx)
{
    struct api *api = ctx;
    const struct api_op *op = req->route->data;
    const struct api_resource *rs = op->resource;
    const struct api_principal *p = api__principal(req);
    char id[CORE_UUID_STR_LEN];
    if (!api__query_known(req, NULL, res) || !api__path_id(req, "id", id, res))
        return;
    /* A missing row answers 404 before the body is judged. */
    struct db_conn *c = api__conn(api, false, res);
    if (!c)
        return;
    bool exists = false;
    int rc = api__row_exists(c, rs->table, p->org_id, id, &exists);
    db_conn_release(c);
    if (rc || !exists) {
        if (rc)
            http_res_error(res, rc);
        else
            http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no %s with id %s",
                             rs->entity, id);
        return;
    }
    json_t *body = http_req_json_object(req, res);
    if (!body)
        return;
    struct bound vals[MAX_FIELDS];
    int n = 0;
    json_t *before = NULL, *after = NULL;
    if (json_object_size(body) == 0) {
        http_res_problem(res, HTTP_PROBLEM_VALIDATION,
                         "the body names no field to change");
        goto out;
    }
    if (!body_values(rs, body, false, vals, &n, res))
        goto out;
    c = api__conn(api, true, res);
    if (!c)
        goto out;
    rc = db_begin(c);
    if (rc == CORE_OK)
        rc = api__resource_fetch(c, rs, p->org_id, id, &before);
    if (rc)
        goto fail;
    if (!before) {
        db_rollback(c);
        http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no %s with id %s",
                         rs->entity, id);
        goto release;
    }
    if (!check_refs(c, p->org_id, vals, n, res, &rc)) {
        db_rollback(c);
        if (rc)
            goto fail;
        goto release;
    }
    if (rs->check) {
        json_t *merged = json_deep_copy(before);
        json_object_update(merged, body);
        bool ok = rs->check(c, p, id, merged, res);
        json_decref(merged);
        if (!ok) {
            db_rollback(c);
            goto release;
        }
    }
    char now[CORE_TIME_ISO_LEN];
    api__now(now);
    struct core_buf sql;
    core_buf_init(&sql);
    core_buf_printf(&sql, "UPDATE %s SET updated_at = ?", rs->table);
    for (int i = 0; i < n; i++)
        core_buf_printf(&sql, ", %s = ?", vals[i].f->column);
    core_buf_puts(&sql, " WHERE id = ? AND organization_id = ? AND deleted_at IS NULL");
    struct db_stmt *s;
    rc = sql.oom ? CORE_ENOMEM : db_prepare(c, sql.data, &s);
    core_buf_fini(&sql);
    if (rc == CORE_OK) {
        bool row;
        db_bind_text(s, 1, now);
        for (int i = 0; i < n; i++)
            bind_value(s, i + 2, &vals[i]);
        db_bind_text(s, n + 2, id);
        db_bind_text(s, n + 3, p->org_id);
        rc = db_step(s, &row);
        db_finalize(s);
    }
    if (rc == CORE_OK)
        rc = api__resource_fetch(c, rs, p->org_id, id, &after);
    if (rc == CORE_OK) {
        /* The audit record keeps what changed, from and to. */
        json_t *changes = json_object();
        const char *key;
        json_t *v;
        json_object_foreach(after, key, v) {
            json_t *old = json_object_get(before, key);
            if (strcmp(key, "updatedAt") == 0 || json_equal(old, v))
                continue;
            json_object_set_new(changes, key,
                                json_pack("{s:O, s:O}", "from",
                                          old ? old : json_null(), "to", v));
        }
        for (int i = 0; i < n; i++) /* write-only fields: say they changed */
            if (vals[i].f->flags & API_FF_WRITEONLY)
                json_object_set_new(changes, vals[i].f->name,
                                    json_string("(changed)"));
        rc = api__audit(c, p, "update", rs->entity, id, changes);
    }
    if (rc == CORE_OK)
        rc = db_commit(c);
    if (rc) {
        db_rollback(c);
        goto fail;
    }
    http_res_json(res, 200, after);
    after = NULL;
    goto release;
fail:
    write_failed(res, rs, rc);
release:
    db_conn_release(c);
out:
    free_values(vals, n);
    json_decref(before);
    json_decref(after);
    json_decref(body);
}

static void delete_handler(struct http_req *req, struct http_res *res,
                           void *ctx)
{
    struct api *api = ctx;
    const struct api_op *op = req->route->data;
    const struct api_resource *rs = op->resource;
    const struct api_principal *p = api__principal(req);
    char id[CORE_UUID_STR_LEN];
    if (!api__query_known(req, NULL, res) || !api__path_id(req, "id", id, res))
        return;
    struct db_conn *c = api__conn(api, true, res);
    if (!c)
        return;
    bool exists = false, row;
    int rc = db_begin(c);
    if (rc == CORE_OK)
        rc = api__row_exists(c, rs->table, p->org_id, id, &exists);
    if (rc)
        goto fail;
    if (!exists) {
        db_rollback(c);
        http_res_problem(res, HTTP_PROBLEM_NOT_FOUND, "no %s with id %s",
                         rs->entity, id);
        goto release;
    }
    /* Live rows that point here keep this row: deleting it would leave
     * them dangling. */
    for (const struct api_dependent *d = rs->dependents; d && d->table; d++) {
        char sql[200];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM %s WHERE %s = ? AND deleted_at IS NULL",
                 d->table, d->column);
        struct db_stmt *s;
        rc = db_prepare(c, sql, &s);
        if (rc)
            goto fail;
        db_bind_text(s, 1, id);
        rc = db_step(s, &row);
        int64_t count = rc == CORE_OK && row ? db_col_int64(s, 0) : 0;
        db_finalize(s);
        if (rc)
            goto fail;
        if (count > 0) {
            db_rollback(c);
            http_res_problem(res, HTTP_PROBLEM_CONFLICT,
                             "this %s is still used by %lld %s; remove or "
                             "move them first",
                             rs->entity, (long long)count, d->what);
            goto release;
        }
    }
    char now[CORE_TIME_ISO_LEN];
    api__now(now);
    char sql[200];
    snprintf(sql, sizeof sql,
             "UPDATE %s SET deleted_at = ?, updated_at = ? WHERE id = ? AND "
             "organization_id = ?",
             rs->table);
    struct db_stmt *s;
    rc = db_prepare(c, sql, &s);
    if (rc == CORE_OK) {
        db_bind_text(s, 1, now);
        db_bind_text(s, 2, now);
        db_bind_text(s, 3, id);
        db_bind_text(s, 4, p->org_id);
        rc = db_step(s, &row);
        db_finalize(s);
    }
    if (rc == CORE_OK)
        rc = api__audit(c, p, "delete", rs->entity, id, NULL);
    if (rc == CORE_OK)
        rc = db_commit(c);
    if (rc) {
        db_rollback(c);
        goto fail;
    }
    /* A deleted device's keys stop working for ingest at once, not when
     * their cache entries expire. */
    if (strcmp(rs->table, "devices") == 0)
        api__key_cache_forget_device(id);
    res->status = 204;
    goto release;
fail:
    write_failed(res, rs, rc);
release:
    db_conn_release(c);
}

/* ------------------------------------------------------------------ routes */

struct resource_ops {
    struct api_op list, get, create, update, del;
    const char *list_query[MAX_FIELDS + 5];
    char item_path[128];
};

/* One set of operation descriptions per resource, built once at start and
 * kept for the process's life (routes point at them). */
static struct resource_ops *ops_for(const struct api_resource *rs)
{
    struct resource_ops *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    int nq = 0;
    o->list_query[nq++] = "limit";
    o->list_query[nq++] = "offset";
    o->list_query[nq++] = "sort";
    bool searchable = false;
    for (const struct api_field *f = rs->fields; f->name; f++) {
        if (f->flags & API_FF_FILTER)
            o->list_query[nq++] = f->name;
        searchable |= (f->flags & API_FF_SEARCH) != 0;
    }
    if (searchable)
        o->list_query[nq++] = "search";
    o->list_query[nq] = NULL;
    o->list = (struct api_op){API_OP_LIST, rs, NULL, NULL, 200, o->list_query};
    o->get = (struct api_op){API_OP_GET, rs, NULL, NULL, 200, NULL};
    o->create = (struct api_op){API_OP_CREATE, rs, NULL, NULL, 201, NULL};
    o->update = (struct api_op){API_OP_UPDATE, rs, NULL, NULL, 200, NULL};
    o->del = (struct api_op){API_OP_DELETE, rs, NULL, NULL, 204, NULL};
    snprintf(o->item_path, sizeof o->item_path, "%s/:id", rs->path);
    return o;
}

int api__resource_routes(struct api *api, struct http_router *r,
                         const struct api_resource *rs)
{
    if (api->nallocs == API_MAX_ALLOCS)
        return CORE_ENOMEM;
    struct resource_ops *o = ops_for(rs);
    if (!o)
        return CORE_ENOMEM;
    api->allocs[api->nallocs++] = o;
    const char *tag = rs->table;
    const struct http_route routes[] = {
        {HTTP_GET, rs->path, list_handler, (int)rs->read_role, &o->list,
         "List", tag},
        {HTTP_POST, rs->path, create_handler, (int)rs->write_role, &o->create,
         "Create", tag},
        {HTTP_GET, o->item_path, get_handler, (int)rs->read_role, &o->get,
         "Get", tag},
        {HTTP_PATCH, o->item_path, update_handler, (int)rs->write_role,
         &o->update, "Update", tag},
        {HTTP_DELETE, o->item_path, delete_handler, (int)rs->write_role,
         &o->del, "Delete", tag},
    };
    return http_router_add_all(r, routes, sizeof routes / sizeof routes[0]);
}

int api__resource_select(struct db_conn *c, const struct api_resource *rs,
                         const char *org_id, const char *cond,
                         const char *const *binds, int nbinds, json_t *out)
{
    struct core_buf b;
    core_buf_init(&b);
    select_list(&b, rs);
    core_buf_printf(&b, " WHERE organization_id = ? AND deleted_at IS NULL%s%s "
                        "ORDER BY name, id LIMIT 1000",
                    cond ? " AND " : "", cond ? cond : "");
    struct db_stmt *s;
    int rc = b.oom ? CORE_ENOMEM : db_prepare(c, b.data, &s);
    core_buf_fini(&b);
    if (rc)
        return rc;
    db_bind_text(s, 1, org_id);
    for (int i = 0; i < nbinds; i++)
        db_bind_text(s, i + 2, binds[i]);
    bool row;
    while ((rc = db_step(s, &row)) == CORE_OK && row)
        json_array_append_new(out, row_json(s, rs));
    db_finalize(s);
    return rc;
}
