/* argus retention: the explicit job that ages out raw telemetry and device
 * points (rollups are kept: aggregates live forever). Run it from cron or a
 * systemd timer; it is safe to run while Argus serves. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core.h"
#include "db.h"
#include "tsdb.h"

struct retention_opts {
    const char *store;
    int64_t raw_days;
    int64_t points_days;
    const char *raw_before;
    const char *points_before;
    bool help;
};

#define OPT(name, type, field, def, min, max, help)                         \
    {name, type, offsetof(struct retention_opts, field), def, min, max, help}

static const struct core_option retention_options[] = {
    OPT("store", CORE_OPT_STRING, store, "sqlite:./var/argus.db", 0, 0,
        "store URL: sqlite:PATH or postgres://user@host:port/db"),
    OPT("raw-days", CORE_OPT_INT, raw_days, "90", 0, 36500,
        "delete raw messages received more than this many days ago (0 = keep)"),
    OPT("points-days", CORE_OPT_INT, points_days, "365", 0, 36500,
        "delete points older than this many days (0 = keep); rollups stay"),
    OPT("raw-before", CORE_OPT_STRING, raw_before, NULL, 0, 0,
        "an RFC 3339 time instead of --raw-days: delete raw messages received before it"),
    OPT("points-before", CORE_OPT_STRING, points_before, NULL, 0, 0,
        "an RFC 3339 time instead of --points-days: delete points before it"),
    OPT("help", CORE_OPT_BOOL, help, "false", 0, 0, "show this help"),
    {0},
};

int cli_retention_main(int argc, char **argv)
{
    struct retention_opts o;
    memset(&o, 0, sizeof o);
    char err[256];
    int next;
    if (core_options_parse(retention_options, &o, argc - 1, argv + 1, &next,
                           err, sizeof err) != CORE_OK) {
        fprintf(stderr, "argus retention: %s\n", err);
        return 2;
    }
    if (o.help) {
        printf("usage: argus retention [OPTIONS]\n\noptions (also from "
               "ARGUS_<NAME> environment variables):\n");
        core_options_help(retention_options, stdout);
        return 0;
    }
    if (next + 1 < argc) {
        fprintf(stderr, "argus retention: unexpected argument '%s'\n",
                argv[next + 1]);
        return 2;
    }
    int64_t now = core_time_now_ms();
    int64_t raw_cut = o.raw_days ? now - o.raw_days * 86400000LL : 0;
    int64_t points_cut = o.points_days ? now - o.points_days * 86400000LL : 0;
    if ((o.raw_before && core_time_parse_iso(o.raw_before, &raw_cut)) ||
        (o.points_before && core_time_parse_iso(o.points_before, &points_cut))) {
        fprintf(stderr, "argus retention: --raw-before and --points-before take "
                        "an RFC 3339 time such as 2026-01-31T00:00:00Z\n");
        return 2;
    }
    struct db *db;
    if (cli_open_store(o.store, &db))
        return 1;
    struct tsdb *t = NULL;
    struct db_conn *c = NULL;
    int64_t raw = 0, points = 0;
    int rc = tsdb_create(db, &t);
    if (rc == CORE_OK)
        rc = db_conn_acquire(db, true, &c);
    if (rc == CORE_OK && raw_cut)
        rc = tsdb_raw_retention(t, c, raw_cut, &raw);
    if (rc == CORE_OK && points_cut)
        rc = tsdb_points_retention(t, c, points_cut, &points);
    if (c)
        db_conn_release(c);
    tsdb_destroy(t);
    db_close(db);
    if (rc) {
        fprintf(stderr, "argus retention: %s\n", core_strerror(rc));
        return 1;
    }
    printf("{\"rawDeleted\":%lld,\"pointsDeleted\":%lld}\n", (long long)raw,
           (long long)points);
    return 0;
}
