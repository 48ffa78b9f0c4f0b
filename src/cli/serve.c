/* argus serve / api / migrate / org / routes. */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "bus.h"
#include "cli.h"
#include "core.h"
#include "db.h"
#include "http.h"
#include "pipeline.h"
#include "tsdb.h"

struct serve_opts {
    const char *store;
    const char *bus;
    int64_t bus_partitions;
    int64_t bus_capacity;
    int64_t bus_lease;
    int64_t bus_ack_wait;
    const char *stages;
    int64_t metrics_port;
    const char *host;
    int64_t port;
    const char *web_dir;
    int64_t threads;
    int64_t db_pool;
    bool relaxed_sync;
    int64_t max_body;
    int64_t connection_limit;
    int64_t connection_memory;
    const char *jwt_secret;
    int64_t token_ttl;
    const char *log_level;
    bool log_requests;
    int64_t ingest_queue;
    int64_t batch_max;
    int64_t offline_after;
    int64_t max_clock_skew;
    bool demo;
    bool help;
};

#define OPT(name, type, field, def, min, max, help)                         \
    {name, type, offsetof(struct serve_opts, field), def, min, max, help}

static const struct core_option serve_options[] = {
    OPT("store", CORE_OPT_STRING, store, "sqlite:./var/argus.db", 0, 0,
        "store URL: sqlite:PATH or postgres://user@host:port/db"),
    OPT("bus", CORE_OPT_STRING, bus, "mem", 0, 0,
        "message bus: mem (in-process), redis://host:port or nats://host:port"),
    OPT("bus-partitions", CORE_OPT_INT, bus_partitions, "16", 1, 1024,
        "partitions per stream (the same in every process of a deployment)"),
    OPT("bus-capacity", CORE_OPT_INT, bus_capacity, "100000", 100, 100000000,
        "unprocessed messages per partition; beyond it ingest answers 503"),
    OPT("bus-lease", CORE_OPT_INT, bus_lease, "10000", 300, 600000,
        "milliseconds after which a crashed worker's partitions move"),
    OPT("bus-ack-wait", CORE_OPT_INT, bus_ack_wait, "30000", 100, 3600000,
        "NATS: milliseconds before a crashed worker's messages are redelivered"),
    OPT("stages", CORE_OPT_STRING, stages, "all", 0, 0,
        "worker: stages to run (archive, normalize, device-writer, or all)"),
    OPT("metrics-port", CORE_OPT_INT, metrics_port, "0", 0, 65535,
        "worker: serve /healthz, /readyz and /metrics on this port (0 = none)"),
    OPT("host", CORE_OPT_STRING, host, "127.0.0.1", 0, 0,
        "address to listen on (0.0.0.0 for every interface)"),
    OPT("port", CORE_OPT_INT, port, "8080", 0, 65535, "TCP port (0 picks a free one)"),
    OPT("web-dir", CORE_OPT_STRING, web_dir, "web/dist", 0, 0,
        "folder of the web UI's files"),
    OPT("threads", CORE_OPT_INT, threads, "0", 0, 256,
        "HTTP worker threads (0 = one per core; at least 2)"),
    OPT("db-pool", CORE_OPT_INT, db_pool, "0", 0, 256,
        "store connections (0 = threads + 3)"),
    OPT("sqlite-relaxed-sync", CORE_OPT_BOOL, relaxed_sync, "false", 0, 0,
        "SQLite: do not fsync each commit (survives a process crash, may lose "
        "the last commits on power loss)"),
    OPT("max-body", CORE_OPT_INT, max_body, "1048576", 1024, 1073741824,
        "largest request body in bytes"),
    OPT("connection-limit", CORE_OPT_INT, connection_limit, "10000", 16, 1000000,
        "most open HTTP connections"),
    OPT("connection-memory", CORE_OPT_INT, connection_memory, "16384", 4096,
        1048576, "bytes per connection for headers and buffers"),
    OPT("jwt-secret", CORE_OPT_STRING, jwt_secret, NULL, 0, 0,
        "secret for signing user tokens (default: generated once, kept in the store)"),
    OPT("token-ttl", CORE_OPT_INT, token_ttl, "43200", 60, 31536000,
        "lifetime of user tokens in seconds"),
    OPT("log-level", CORE_OPT_STRING, log_level, "info", 0, 0,
        "error, warn, info or debug"),
    OPT("log-requests", CORE_OPT_BOOL, log_requests, "true", 0, 0,
        "log one line per HTTP request"),
    OPT("ingest-queue", CORE_OPT_INT, ingest_queue, "100000", 100, 100000000,
        "messages accepted but not yet stored; beyond it ingest answers 429"),
    OPT("batch-max", CORE_OPT_INT, batch_max, "1000", 1, 100000,
        "messages per storage transaction (group commit)"),
    OPT("offline-after", CORE_OPT_INT, offline_after, "300", 5, 31536000,
        "seconds of silence after which an online device is offline"),
    OPT("max-clock-skew", CORE_OPT_INT, max_clock_skew, "300", 0, 86400,
        "seconds a message's timestamp may be ahead of ours"),
    OPT("demo", CORE_OPT_BOOL, demo, "false", 0, 0,
        "seed a demo organisation, devices and assets"),
    OPT("help", CORE_OPT_BOOL, help, "false", 0, 0, "show this help"),
    {0},
};

int cli_init(void)
{
    if (core_init() != CORE_OK) {
        fprintf(stderr, "argus: no secure random source\n");
        return -1;
    }
    return 0;
}

/* Parses the options of a command; prints help or the error. Returns 0 to
 * go on, or the exit code. */
static int parse(const char *cmd, int argc, char **argv, struct serve_opts *o,
                 int *next)
{
    char err[256];
    memset(o, 0, sizeof *o);
    if (core_options_parse(serve_options, o, argc - 1, argv + 1, next, err,
                           sizeof err) != CORE_OK) {
        fprintf(stderr, "argus %s: %s\n", cmd, err);
        return 2;
    }
    if (o->help) {
        printf("usage: argus %s [OPTIONS]\n\noptions (also from ARGUS_<NAME> "
               "environment variables):\n",
               cmd);
        core_options_help(serve_options, stdout);
        return -1;
    }
    enum core_log_level lvl;
    if (core_log_level_parse(o->log_level, &lvl) != CORE_OK) {
        fprintf(stderr, "argus %s: --log-level must be error, warn, info or debug\n",
                cmd);
        return 2;
    }
    core_log_set_level(lvl);
    *next += 1;
    return 0;
}

/* The store's scheme only: URLs may carry passwords, logs must not. */
static const char *store_kind(const char *url)
{
    return strncmp(url, "sqlite:", 7) == 0 ? "sqlite" : "postgres";
}

static const char *bus_scheme(const char *url)
{
    return strncmp(url, "redis:", 6) == 0  ? "redis"
           : strncmp(url, "nats:", 5) == 0 ? "nats"
           : strcmp(url, "mem") == 0       ? "mem"
                                           : "unknown";
}

static int open_store(const struct serve_opts *o, struct db **db)
{
    struct db_options dbo = {
        .pool_size = (int)(o->db_pool ? o->db_pool
                                      : (o->threads ? o->threads : 2) + 3),
        .busy_timeout_ms = 5000,
        .sqlite_relaxed_sync = o->relaxed_sync,
    };
    int rc = db_open(o->store, &dbo, db);
    if (rc) {
        fprintf(stderr, "argus: cannot open the store: %s\n",
                core_strerror(rc));
        return rc;
    }
    int applied = 0;
    rc = db_migrate(*db, &applied);
    if (rc) {
        fprintf(stderr, "argus: migrations failed: %s\n", core_strerror(rc));
        db_close(*db);
        *db = NULL;
        return rc;
    }
    if (applied)
        core_log_info("db", "msg=\"migrations applied\" count=%d", applied);
    return CORE_OK;
}

static bool bus_external(const struct serve_opts *o)
{
    return strcmp(o->bus, "mem") != 0;
}

static int open_bus(const struct serve_opts *o, struct bus **bus)
{
    struct bus_config bc;
    bus_config_init(&bc);
    bc.url = o->bus;
    bc.partitions = (uint32_t)o->bus_partitions;
    bc.capacity = (uint64_t)o->bus_capacity;
    bc.lease_ms = (uint32_t)o->bus_lease;
    bc.ack_wait_ms = (uint32_t)o->bus_ack_wait;
    int rc = bus_open(&bc, bus);
    if (rc)
        fprintf(stderr, "argus: cannot open the bus %s: %s\n",
                rc == CORE_EINVAL ? o->bus : bus_scheme(o->bus),
                core_strerror(rc));
    return rc;
}

/* The stages this process runs with an external bus: --stages for serve
 * and worker, none for api. */
static int stages_of(const char *cmd, const struct serve_opts *o,
                     unsigned *mask)
{
    char err[160];
    if (strcmp(cmd, "api") == 0) {
        *mask = 0;
        return 0;
    }
    if (pipeline_stages_parse(o->stages, mask, err, sizeof err) != CORE_OK) {
        fprintf(stderr, "argus %s: --stages: %s\n", cmd, err);
        return 2;
    }
    if (!bus_external(o) && *mask != PIPELINE_STAGE_ALL) {
        fprintf(stderr, "argus %s: --stages needs an external --bus (redis:// "
                        "or nats://); with the in-process bus every stage "
                        "runs here\n",
                cmd);
        return 2;
    }
    return 0;
}

static int start_workers(const struct serve_opts *o, unsigned mask,
                         struct bus *bus, struct db *db, struct tsdb *tsdb,
                         struct pipeline_workers **out)
{
    struct pipeline_workers_config wc = {
        .bus = bus,
        .db = db,
        .tsdb = tsdb,
        .stages = mask,
        .batch_max = (size_t)o->batch_max,
        .offline_after_ms = o->offline_after * 1000,
        .limits = {.max_future_ms = o->max_clock_skew * 1000 + 1},
    };
    int rc = pipeline_workers_start(&wc, out);
    if (rc)
        fprintf(stderr, "argus: cannot start the stages: %s\n",
                core_strerror(rc));
    return rc;
}

int cli_open_store(const char *url, struct db **db)
{
    struct serve_opts o = {.store = url};
    return open_store(&o, db);
}

/* What serve, api and worker do first: options (no positional argument),
 * the stages to run, and SIGINT/SIGTERM blocked for sigwait, so that every
 * thread started afterwards inherits the mask. Returns -1 to go on, or the
 * exit code. */
static int start_command(const char *cmd, int argc, char **argv,
                         struct serve_opts *o, unsigned *stages,
                         sigset_t *sigs)
{
    int next, rc = parse(cmd, argc, argv, o, &next);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (next < argc) {
        fprintf(stderr, "argus %s: unexpected argument '%s'\n", cmd, argv[next]);
        return 2;
    }
    if (strcmp(cmd, "worker") == 0 && !bus_external(o)) {
        fprintf(stderr, "argus worker: needs --bus redis://host:port or "
                        "nats://host:port (with the in-process bus, argus "
                        "serve runs every stage)\n");
        return 2;
    }
    if ((rc = stages_of(cmd, o, stages)))
        return rc;
    sigemptyset(sigs);
    sigaddset(sigs, SIGINT);
    sigaddset(sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    return -1;
}

static int serve(const char *cmd, int argc, char **argv)
{
    struct serve_opts o;
    unsigned stages;
    sigset_t sigs;
    int rc = start_command(cmd, argc, argv, &o, &stages, &sigs);
    if (rc >= 0)
        return rc;

    struct db *db = NULL;
    struct tsdb *tsdb = NULL;
    struct pipeline *pipeline = NULL;
    struct bus *bus = NULL;
    struct pipeline_workers *workers = NULL;
    struct api *api = NULL;
    struct http_router *router = NULL;
    struct http_server *srv = NULL;
    int exit_code = 1;
    if (open_store(&o, &db))
        goto out;
    if (o.demo && (rc = api_demo_seed(db))) {
        fprintf(stderr, "argus: seeding the demo failed: %s\n", core_strerror(rc));
        goto out;
    }
    if (bus_external(&o) && open_bus(&o, &bus))
        goto out;
    struct pipeline_config pcfg = {
        .queue_capacity = (size_t)o.ingest_queue,
        .batch_max = (size_t)o.batch_max,
        .offline_after_ms = o.offline_after * 1000,
        .bus = bus,
        .limits = {.max_future_ms = o.max_clock_skew * 1000 + 1},
    };
    if ((rc = tsdb_create(db, &tsdb)) ||
        (rc = pipeline_create(db, tsdb, &pcfg, &pipeline))) {
        fprintf(stderr, "argus: cannot start the pipeline: %s\n",
                core_strerror(rc));
        goto out;
    }
    if (bus && stages && start_workers(&o, stages, bus, db, tsdb, &workers))
        goto out;
    struct api_config acfg = {.jwt_secret = o.jwt_secret,
                              .token_ttl_s = o.token_ttl,
                              .version = ARGUS_VERSION,
                              .tsdb = tsdb,
                              .pipeline = pipeline,
                              /* +1 ms: 0 here means "no skew", not the default */
                              .limits = {.max_future_ms =
                                             o.max_clock_skew * 1000 + 1}};
    if (api_create(&acfg, db, &api) || http_router_create(&router) ||
        api_routes_register(api, router)) {
        fprintf(stderr, "argus: cannot set up the API\n");
        goto out;
    }
    struct http_server_config hcfg = {
        .listen_addr = o.host,
        .port = (uint16_t)o.port,
        .threads = (int)o.threads,
        .connection_limit = (unsigned)o.connection_limit,
        .connection_memory = (size_t)o.connection_memory,
        .max_body = (size_t)o.max_body,
        .web_dir = o.web_dir,
        .log_requests = o.log_requests,
        .router = router,
        .auth = api_authenticate,
        .auth_release = api_auth_release,
        .ctx = api,
    };
    if (http_server_start(&hcfg, &srv)) {
        fprintf(stderr, "argus: cannot listen on %s:%lld\n", o.host,
                (long long)o.port);
        goto out;
    }
    api_set_ready(api, true);
    core_log_info("argus", "msg=\"listening\" url=http://%s:%u store=%s bus=%s",
                  o.host, http_server_port(srv), store_kind(o.store),
                  bus_scheme(o.bus));

    int sig;
    sigwait(&sigs, &sig);
    core_log_info("argus", "msg=\"stopping\" signal=%d", sig);
    api_set_ready(api, false);
    exit_code = 0;
out:
    /* New connections stop, the pipeline stores and answers everything it
     * accepted, then the server finishes what is in flight. */
    http_server_quiesce(srv);
    pipeline_stop(pipeline);
    http_server_stop(srv);
    pipeline_workers_stop(workers);
    pipeline_destroy(pipeline);
    bus_close(bus);
    tsdb_destroy(tsdb);
    api_destroy(api);
    http_router_destroy(router);
    db_close(db);
    core_metrics_reset();
    if (exit_code == 0)
        core_log_info("argus", "msg=\"stopped\"");
    return exit_code;
}

int cli_serve_main(int argc, char **argv)
{
    return serve("serve", argc, argv);
}

int cli_api_main(int argc, char **argv)
{
    return serve("api", argc, argv);
}

/* argus worker: the named stages, consuming from an external bus. */
int cli_worker_main(int argc, char **argv)
{
    struct serve_opts o;
    unsigned stages;
    sigset_t sigs;
    int rc = start_command("worker", argc, argv, &o, &stages, &sigs);
    if (rc >= 0)
        return rc;

    struct db *db = NULL;
    struct tsdb *tsdb = NULL;
    struct bus *bus = NULL;
    struct pipeline_workers *workers = NULL;
    struct api *api = NULL;
    struct http_router *router = NULL;
    struct http_server *srv = NULL;
    int exit_code = 1;
    if (open_store(&o, &db) || open_bus(&o, &bus))
        goto out;
    if ((rc = tsdb_create(db, &tsdb))) {
        fprintf(stderr, "argus: %s\n", core_strerror(rc));
        goto out;
    }
    if (start_workers(&o, stages, bus, db, tsdb, &workers))
        goto out;
    if (o.metrics_port) {
        struct api_config acfg = {.jwt_secret = o.jwt_secret,
                                  .version = ARGUS_VERSION};
        struct http_server_config hcfg = {
            .listen_addr = o.host,
            .port = (uint16_t)o.metrics_port,
            .threads = 1,
            .connection_limit = 64,
            .connection_memory = (size_t)o.connection_memory,
            .max_body = 1024,
            .log_requests = false,
            .auth = api_authenticate,
            .auth_release = api_auth_release,
        };
        if (api_create(&acfg, db, &api) || http_router_create(&router) ||
            api_system_routes_register(api, router) ||
            (hcfg.router = router, hcfg.ctx = api,
             http_server_start(&hcfg, &srv))) {
            fprintf(stderr, "argus: cannot serve metrics on %s:%lld\n", o.host,
                    (long long)o.metrics_port);
            goto out;
        }
        api_set_ready(api, true);
    }
    core_log_info("argus", "msg=\"working\" stages=%s store=%s bus=%s metrics_port=%lld",
                  o.stages, store_kind(o.store), bus_scheme(o.bus),
                  (long long)o.metrics_port);
    int sig;
    sigwait(&sigs, &sig);
    core_log_info("argus", "msg=\"stopping\" signal=%d", sig);
    api_set_ready(api, false);
    exit_code = 0;
out:
    http_server_stop(srv);
    pipeline_workers_stop(workers);
    api_destroy(api);
    http_router_destroy(router);
    bus_close(bus);
    tsdb_destroy(tsdb);
    db_close(db);
    core_metrics_reset();
    if (exit_code == 0)
        core_log_info("argus", "msg=\"stopped\"");
    return exit_code;
}

int cli_migrate_main(int argc, char **argv)
{
    struct serve_opts o;
    int next, rc = parse("migrate", argc, argv, &o, &next);
    if (rc)
        return rc < 0 ? 0 : rc;
    struct db *db;
    if (open_store(&o, &db))
        return 1;
    db_close(db);
    printf("migrations are current\n");
    return 0;
}

/* argus org create NAME --admin-email E --admin-password P [--store URL] */
int cli_org_main(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "create") != 0) {
        fprintf(stderr, "usage: argus org create NAME --admin-email EMAIL "
                        "--admin-password PASSWORD [--store URL]\n");
        return 2;
    }
    const char *name = argv[2], *email = NULL, *password = NULL;
    char *rest[64];
    int nrest = 0;
    rest[nrest++] = argv[0];
    for (int i = 3; i < argc && nrest < 63; i++) {
        if (!strcmp(argv[i], "--admin-email") && i + 1 < argc)
            email = argv[++i];
        else if (!strcmp(argv[i], "--admin-password") && i + 1 < argc)
            password = argv[++i];
        else
            rest[nrest++] = argv[i];
    }
    struct serve_opts o;
    int next, rc = parse("org create", nrest, rest, &o, &next);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!email || !password) {
        fprintf(stderr, "argus org create: --admin-email and --admin-password "
                        "are required\n");
        return 2;
    }
    struct db *db;
    if (open_store(&o, &db))
        return 1;
    char org_id[CORE_UUID_STR_LEN];
    rc = api_org_create(db, name, email, password, org_id);
    db_close(db);
    if (rc == CORE_EINVAL) {
        fprintf(stderr, "argus org create: need a name of 1..200 bytes, an "
                        "email address and a password of at least 8 "
                        "characters\n");
        return 2;
    }
    if (rc == CORE_ECONFLICT) {
        fprintf(stderr, "argus org create: an organisation with this name or a "
                        "user with this email exists already\n");
        return 1;
    }
    if (rc) {
        fprintf(stderr, "argus org create: %s\n", core_strerror(rc));
        return 1;
    }
    printf("%s\n", org_id);
    return 0;
}

/* Lists the routes the server registers, built by the same code as serve,
 * without opening a store. */
int cli_routes_main(int argc, char **argv)
{
    return api_routes_print(stdout) == CORE_OK ? 0 : 1;
}
