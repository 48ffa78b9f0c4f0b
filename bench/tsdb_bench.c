/*
 * tsdb write-path benchmark: points/s and raw messages/s persisted.
 *
 *   tsdb_bench URL [--runs N] [--batches N] [--devices N] [--spread N]
 *                  [--group N] [--only points|raw] [--db-commit 1]
 *
 * A batch is 100 messages × 5 metrics = 500 points written with
 * tsdb_points_write and committed in one transaction. --spread says how
 * many distinct devices a batch's 100 messages come from (100: each
 * message another device, the usual case of a large fleet; 1: one
 * device's backlog), out of --devices in the fleet. --group N commits
 * every N batches instead (group commit, as a writer that commits by time
 * would), to show what the per-transaction cost is. Series are created in
 * a warm-up that is not timed. Each run writes --batches batches of new
 * times; the median of --runs is printed. Raw append: batches of 100
 * messages of about 200 bytes, one transaction each.
 */
#include "core.h"
#include "db.h"
#include "tsdb.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSGS 100

/* --db-commit 1: end transactions with db_commit instead of tsdb_commit,
 * to measure what the series cache loses then. */
static bool use_db_commit;
#define METRICS 5

static const char *const metric_names[METRICS] = {"temperature", "humidity",
                                                  "pressure", "battery",
                                                  "rssi"};

struct fleet {
    int devices;
    char (*ids)[CORE_UUID_STR_LEN];
    char org[CORE_UUID_STR_LEN];
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int die(const char *what, int rc, struct db_conn *c)
{
    fprintf(stderr, "tsdb_bench: %s: %s (%s)\n", what, core_err_name(rc),
            c ? db_errmsg(c) : "");
    return 1;
}

/* Fills a batch: message m of batch b comes from device
 * (b * spread + m % spread) mod devices at time t0 + seq * 1 s. */
static void fill(struct tsdb_point *pts, const struct fleet *f, int spread,
                 int64_t batch, int64_t t0)
{
    for (int m = 0; m < MSGS; m++) {
        int dev = (int)((batch * spread + m % spread) % f->devices);
        int64_t ts = t0 + (batch * MSGS + m) * 1000;
        for (int k = 0; k < METRICS; k++) {
            pts[m * METRICS + k] = (struct tsdb_point){
                .org_id = f->org,
                .entity = TSDB_DEVICE,
                .entity_id = f->ids[dev],
                .metric = metric_names[k],
                .ts_ms = ts,
                .type = TSDB_NUMBER,
                .num = (double)((batch + m + k) % 1000) / 10.0,
            };
        }
    }
}

/* Writes a batch on c, opening a transaction when none is open (*open)
 * and committing when commit is set. */
static int write_batch(struct tsdb *t, struct db_conn *c, bool *open,
                       bool commit, const struct tsdb_point *pts, size_t n)
{
    int rc = CORE_OK;
    if (!*open)
        rc = db_begin(c);
    *open = rc == CORE_OK;
    if (rc == CORE_OK)
        rc = tsdb_points_write(t, c, pts, n, NULL);
    if (rc == CORE_OK && commit) {
        *open = false;
        rc = use_db_commit ? db_commit(c) : tsdb_commit(t, c);
    }
    if (rc != CORE_OK) {
        *open = false;
        tsdb_rollback(t, c);
        return die("write", rc, c);
    }
    return 0;
}

static int bench_points(struct db *db, struct tsdb *t, struct fleet *f,
                        int spread, int group, int runs, int batches,
                        int64_t *t0)
{
    struct tsdb_point pts[MSGS * METRICS];
    double rate[64];
    struct db_conn *c = NULL;
    bool open = false;
    int rc = db_conn_acquire(db, true, &c);
    if (rc != CORE_OK)
        return die("acquire", rc, NULL);
    /* Warm-up: every series of the fleet exists and is cached. */
    for (int64_t b = 0; b * spread < f->devices + spread; b++) {
        fill(pts, f, spread, b, *t0);
        if (write_batch(t, c, &open, true, pts, MSGS * METRICS))
            goto fail;
    }
    *t0 += INT64_C(86400000);
    for (int r = 0; r < runs; r++) {
        uint64_t start = core_time_mono_ns();
        for (int64_t b = 0; b < batches; b++) {
            fill(pts, f, spread, b, *t0);
            bool commit = (b + 1) % group == 0 || b + 1 == batches;
            if (write_batch(t, c, &open, commit, pts, MSGS * METRICS))
                goto fail;
        }
        double s = (double)(core_time_mono_ns() - start) / 1e9;
        rate[r] = (double)batches * MSGS * METRICS / s;
        *t0 += (int64_t)batches * MSGS * 1000;
    }
    db_conn_release(c);
    printf("points   spread=%-3d group=%-3d devices=%d  %9.0f points/s  "
           "(%.0f messages/s; median of %d runs of %d batches of %d)\n",
           spread, group, f->devices, median(rate, runs),
           median(rate, runs) / METRICS, runs, batches, MSGS * METRICS);
    return 0;
fail:
    db_conn_release(c);
    return 1;
}

static int bench_raw(struct db *db, struct tsdb *t, struct fleet *f,
                     int runs, int batches)
{
    static char ids[MSGS][CORE_UUID_STR_LEN];
    struct tsdb_raw msgs[MSGS];
    char payload[256];
    double rate[64];
    snprintf(payload, sizeof payload,
             "{\"temperature\":21.5,\"humidity\":48.25,\"pressure\":1013.2,"
             "\"battery\":3.71,\"rssi\":-67,\"ts\":\"2026-11-23T12:00:00."
             "000Z\",\"fw\":\"1.4.2\",\"seq\":123456}");
    int64_t now = core_time_now_ms();
    for (int r = 0; r < runs; r++) {
        uint64_t start = core_time_mono_ns();
        for (int b = 0; b < batches; b++) {
            for (int m = 0; m < MSGS; m++) {
                core_uuid7(ids[m]);
                msgs[m] = (struct tsdb_raw){
                    .id = ids[m],
                    .org_id = f->org,
                    .device_id = f->ids[(b * MSGS + m) % f->devices],
                    .received_ms = now++,
                    .transport = "http",
                    .payload = payload,
                    .payload_len = strlen(payload),
                };
            }
            struct db_conn *c = NULL;
            int rc = db_conn_acquire(db, true, &c);
            if (rc == CORE_OK)
                rc = db_begin(c);
            if (rc == CORE_OK)
                rc = tsdb_raw_append(t, c, msgs, MSGS);
            if (rc == CORE_OK)
                rc = db_commit(c);
            if (rc != CORE_OK) {
                db_rollback(c);
                die("raw append", rc, c);
                db_conn_release(c);
                return 1;
            }
            db_conn_release(c);
        }
        double s = (double)(core_time_mono_ns() - start) / 1e9;
        rate[r] = (double)batches * MSGS / s;
    }
    printf("raw      batch=%d payload=%zuB  %10.0f messages/s  (median of %d "
           "runs of %d batches)\n",
           MSGS, strlen(payload), median(rate, runs), runs, batches);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tsdb_bench URL [--runs N] [--batches N] "
                        "[--devices N] [--spread N]\n");
        return 2;
    }
    int runs = 5, batches = 200, devices = 1000, spread = -1, group = 0;
    const char *only = "";
    for (int i = 2; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--runs") == 0)
            runs = v;
        else if (strcmp(argv[i], "--batches") == 0)
            batches = v;
        else if (strcmp(argv[i], "--devices") == 0)
            devices = v;
        else if (strcmp(argv[i], "--spread") == 0)
            spread = v;
        else if (strcmp(argv[i], "--group") == 0)
            group = v;
        else if (strcmp(argv[i], "--db-commit") == 0)
            use_db_commit = v != 0;
        else if (strcmp(argv[i], "--only") == 0)
            only = argv[i + 1];
    }
    if (runs < 1 || runs > 64 || batches < 1 || devices < 1 ||
        spread > MSGS || group < 0) {
        fprintf(stderr, "tsdb_bench: bad arguments\n");
        return 2;
    }
    core_init();
    core_log_set_level(CORE_LOG_WARN);
    struct db *db = NULL;
    struct tsdb *t = NULL;
    struct db_options o = {.pool_size = 2};
    int rc = db_open(argv[1], &o, &db);
    if (rc == CORE_OK)
        rc = db_migrate(db, NULL);
    if (rc == CORE_OK)
        rc = tsdb_create(db, &t);
    if (rc != CORE_OK) {
        db_close(db);
        return die("open", rc, NULL);
    }
    struct fleet f = {.devices = devices};
    f.ids = calloc((size_t)devices, sizeof *f.ids);
    if (!f.ids)
        return die("calloc", CORE_ENOMEM, NULL);
    core_uuid7(f.org);
    for (int i = 0; i < devices; i++)
        core_uuid7(f.ids[i]);
    int64_t t0 = INT64_C(1795392000000);
    int failed = 0;
    /* One transaction per batch for each spread, then group commits of
     * the worst spread. */
    static const int cases[][2] = {{100, 1}, {10, 1}, {1, 1}, {100, 20}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0] && !failed &&
                       strcmp(only, "raw") != 0;
         i++) {
        int sp = cases[i][0], g = cases[i][1];
        if ((spread > 0 && sp != spread) || (group > 0 && g != 1))
            continue;
        if (group > 0)
            g = group;
        failed = bench_points(db, t, &f, sp, g, runs, batches, &t0);
    }
    if (!failed && strcmp(only, "points") != 0)
        failed = bench_raw(db, t, &f, runs, batches);
    free(f.ids);
    tsdb_destroy(t);
    db_close(db);
    return failed;
}
