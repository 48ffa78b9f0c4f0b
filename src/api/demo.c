/*
 * Demo data for `argus serve --demo`: an organisation with an admin, device
 * types for each processing mode, a small site → equipment asset tree,
 * spaces, devices and a first activity, so the API and UI have something to
 * show at once.
 */
#include "api_internal.h"

#include <stdio.h>
#include <string.h>

#define DEMO_EMAIL "admin@demo.argus.local"
#define DEMO_PASSWORD "argus-demo"

/* Named ids of the rows made so far: rows refer to earlier ones by name
 * ("@pump-a"), so the data below stays a plain table. */
struct ids {
    char name[32][24];
    char id[32][CORE_UUID_STR_LEN];
    int n;
};

static const char *id_of(struct ids *ids, const char *name)
{
    for (int i = 0; i < ids->n; i++)
        if (strcmp(ids->name[i], name) == 0)
            return ids->id[i];
    return NULL;
}

struct demo_row {
    const char *table;
    const char *key; /* name for later references */
    const char *cols; /* comma-separated, after id/org/created/updated */
    const char *vals[10]; /* "@key" refers to an earlier row; NULL = null */
};

static const struct demo_row rows[] = {
    {"device_types", "dt-temp", "name, description, protocol, processing_mode",
     {"Temperature Sensor", "Single-point temperature and humidity sensor",
      "http", "endpoint"}},
    {"device_types", "dt-vib", "name, description, protocol, processing_mode",
     {"Vibration Sensor", "Triaxial vibration and temperature sensor", "http",
      "endpoint"}},
    {"device_types", "dt-hub", "name, description, protocol, processing_mode",
     {"Location Hub", "Gateway reporting for up to 50 virtual devices", "http",
      "gateway"}},
    {"device_types", "dt-ble", "name, description, protocol, processing_mode",
     {"BLE Gateway", "Bluetooth gateway sending beacon scans in chunks", "mqtt",
      "gateway_chunked"}},
    {"device_types", "dt-rtu", "name, description, protocol, processing_mode",
     {"RTU", "Remote terminal unit with 4 ports", "mqtt", "rtu_multiport"}},
    {"asset_types", "at-site", "name, description, icon, color, parent_id",
     {"Site", "A plant or facility", "factory", "#3366cc", NULL}},
    {"asset_types", "at-equip", "name, description, icon, color, parent_id",
     {"Equipment", "Rotating and static equipment", "cog", "#cc8833", "@at-site"}},
    {"asset_types", "at-pump", "name, description, icon, color, parent_id",
     {"Pump", "Centrifugal pump", "pump", "#33aa66", "@at-equip"}},
    {"asset_types", "at-motor", "name, description, icon, color, parent_id",
     {"Motor", "Electric motor", "motor", "#aa3366", "@at-equip"}},
    {"spaces", "sp-plant", "name, space_type, parent_id, location",
     {"North Plant", "site", NULL, "{\"lat\":52.3702,\"lng\":4.8952}"}},
    {"spaces", "sp-room", "name, space_type, parent_id, location",
     {"Pump Room 1", "room", "@sp-plant", NULL}},
    {"assets", "as-plant", "name, asset_type_id, parent_id, space_id, status, health_score",
     {"North Plant", "@at-site", NULL, "@sp-plant", "active", "92"}},
    {"assets", "as-station", "name, asset_type_id, parent_id, space_id, status, health_score",
     {"Pump Station A", "@at-equip", "@as-plant", "@sp-room", "active", "88"}},
    {"assets", "as-p101", "name, asset_type_id, parent_id, space_id, status, health_score",
     {"Pump P-101", "@at-pump", "@as-station", "@sp-room", "active", "95"}},
    {"assets", "as-p102", "name, asset_type_id, parent_id, space_id, status, health_score",
     {"Pump P-102", "@at-pump", "@as-station", "@sp-room", "maintenance", "61"}},
    {"assets", "as-m101", "name, asset_type_id, parent_id, space_id, status, health_score",
     {"Motor M-101", "@at-motor", "@as-station", "@sp-room", "active", "83"}},
    {"devices", "dv-t1", "name, device_type_id, status, serial_number, firmware_version, device_role",
     {"TS-0001", "@dt-temp", "offline", "SN-TS-0001", "1.4.2", "endpoint"}},
    {"devices", "dv-v1", "name, device_type_id, status, serial_number, firmware_version, device_role",
     {"VS-0001", "@dt-vib", "offline", "SN-VS-0001", "2.0.1", "endpoint"}},
    {"devices", "dv-hub", "name, device_type_id, status, serial_number, firmware_version, device_role",
     {"HUB-01", "@dt-hub", "offline", "SN-HUB-01", "3.1.0", "gateway"}},
    {"devices", "dv-rtu", "name, device_type_id, status, serial_number, firmware_version, device_role",
     {"RTU-01", "@dt-rtu", "offline", "SN-RTU-01", "5.2.0", "rtu_multiport"}},
    {"devices", "dv-tag1", "name, device_type_id, status, parent_device_id, logical_identifier, device_role",
     {"Tag 1 (via HUB-01)", "@dt-temp", "offline", "@dv-hub", "tag-1", "endpoint"}},
    {"persons", "pe-tech", "name, email, title",
     {"Sam Technician", "sam@demo.argus.local", "Maintenance technician"}},
    {"activity_types", "ay-insp", "name, category, description",
     {"Inspection", "person_to_system", "Scheduled visual inspection"}},
    {"activity_types", "ay-alarm", "name, category, description",
     {"Alarm response", "system_to_person", "Work created from an alarm"}},
    {"activities", "ac-1", "title, category, status, priority, activity_type_id, asset_id, source",
     {"Inspect seal of P-102", "person_to_system", "open", "high", "@ay-insp",
      "@as-p102", "manual"}},
};

static int insert(struct db_conn *c, const char *org_id, struct ids *ids,
                  const struct demo_row *r, const char *now)
{
    char sql[512];
    int n = 1;
    for (const char *p = r->cols; *p; p++)
        n += *p == ',';
    int len = snprintf(sql, sizeof sql,
                       "INSERT INTO %s (id, organization_id, created_at, "
                       "updated_at, %s) VALUES (?, ?, ?, ?",
                       r->table, r->cols);
    for (int i = 0; i < n; i++)
        len += snprintf(sql + len, sizeof sql - (size_t)len, ", ?");
    snprintf(sql + len, sizeof sql - (size_t)len, ")");
    struct db_stmt *s;
    int rc = db_prepare(c, sql, &s);
    if (rc)
        return rc;
    char *id = ids->id[ids->n];
    core_uuid7(id);
    snprintf(ids->name[ids->n], sizeof ids->name[0], "%s", r->key);
    ids->n++;
    db_bind_text(s, 1, id);
    db_bind_text(s, 2, org_id);
    db_bind_text(s, 3, now);
    db_bind_text(s, 4, now);
    for (int i = 0; i < n; i++) {
        const char *v = r->vals[i];
        if (v && v[0] == '@')
            v = id_of(ids, v + 1);
        if (v)
            db_bind_text(s, i + 5, v);
        else
            db_bind_null(s, i + 5);
    }
    bool row;
    rc = db_step(s, &row);
    db_finalize(s);
    return rc;
}

int api_demo_seed(struct db *db)
{
    struct db_conn *c;
    int rc = db_conn_acquire(db, false, &c);
    if (rc)
        return rc;
    struct db_stmt *s;
    bool exists = false;
    rc = db_prepare(c, "SELECT 1 FROM users WHERE email = ?", &s);
    if (rc == CORE_OK) {
        db_bind_text(s, 1, DEMO_EMAIL);
        rc = db_step(s, &exists);
        db_finalize(s);
    }
    db_conn_release(c);
    if (rc)
        return rc;
    if (!exists) {
        char org_id[CORE_UUID_STR_LEN];
        rc = api_org_create(db, "Demo Organisation", DEMO_EMAIL, DEMO_PASSWORD,
                            org_id);
        if (rc)
            return rc;
        struct ids ids = {0};
        char now[CORE_TIME_ISO_LEN];
        api__now(now);
        if ((rc = db_conn_acquire(db, true, &c)))
            return rc;
        rc = db_begin(c);
        for (size_t i = 0; rc == CORE_OK && i < sizeof rows / sizeof rows[0]; i++)
            rc = insert(c, org_id, &ids, &rows[i], now);
        if (rc == CORE_OK)
            rc = db_commit(c);
        else
            db_rollback(c);
        db_conn_release(c);
        if (rc)
            return rc;
        core_log_info("demo", "msg=\"demo organisation created\" org=%s", org_id);
    }
    core_log_info("demo",
                  "msg=\"sign in to the demo\" email=%s password=%s",
                  DEMO_EMAIL, DEMO_PASSWORD);
    return CORE_OK;
}
