/*
 * One suite for the bus, run against every backend: mem, Redis Streams and
 * NATS JetStream. The binary starts private redis-server and nats-server
 * processes on free loopback ports with their data in a temporary folder,
 * and stops them at the end. Missing server binaries fail the run.
 *
 * Usage: test_bus [mem|redis|nats]...   (default: all three)
 *        BUS_TEST_FILTER=pattern test_bus ...   (a cmocka name filter)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus.h"
#include "core.h"

/* ------------------------------------------------------------ the servers */

static char tmpdir[256];
static pid_t redis_pid, nats_pid;
static char redis_url[64], nats_url[64];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static bool on_path(const char *bin)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", bin);
    return system(cmd) == 0;
}

static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        /* The server goes when the test does, even if it is killed. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        FILE *f = freopen(log, "w", stdout);
        (void)f;
        dup2(STDOUT_FILENO, STDERR_FILENO);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Waits until the server accepts connections; false after 10 s or when it
 * exited. */
static bool wait_ready(pid_t pid, int port)
{
    uint64_t deadline = core_time_mono_ns() + 10ULL * 1000000000;
    while (core_time_mono_ns() < deadline) {
        if (port_open(port))
            return true;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return false;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL); /* polling a port, not synchronising a test */
    }
    return false;
}

static int start_redis(void)
{
    if (!on_path("redis-server")) {
        fprintf(stderr, "FAIL: redis-server is not installed (Debian "
                        "package redis-server); the bus suite needs it\n");
        return -1;
    }
    int port = free_port();
    char dir[300], ports[16], log[320];
    snprintf(dir, sizeof dir, "%s/redis", tmpdir);
    mkdir(dir, 0700);
    snprintf(ports, sizeof ports, "%d", port);
    snprintf(log, sizeof log, "%s/redis.log", tmpdir);
    char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1",
                    "--dir", dir, "--appendonly", "yes", "--appendfsync",
                    "everysec", "--save", "", "--daemonize", "no",
                    "--protected-mode", "yes", NULL};
    redis_pid = spawn(argv, log);
    if (redis_pid < 0 || !wait_ready(redis_pid, port)) {
        fprintf(stderr, "FAIL: redis-server did not start (see %s)\n", log);
        return -1;
    }
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d", port);
    return 0;
}

static int start_nats(void)
{
    if (!on_path("nats-server")) {
        fprintf(stderr, "FAIL: nats-server is not installed (Debian "
                        "package nats-server); the bus suite needs it\n");
        return -1;
    }
    int port = free_port();
    char dir[300], conf[320], log[320], ports[16];
    snprintf(dir, sizeof dir, "%s/nats", tmpdir);
    mkdir(dir, 0700);
    snprintf(conf, sizeof conf, "%s/nats.conf", tmpdir);
    snprintf(log, sizeof log, "%s/nats.log", tmpdir);
    snprintf(ports, sizeof ports, "%d", port);
    /* The 1 MiB test payload plus its key frame exceeds the default
     * max_payload of 1 MiB. */
    FILE *f = fopen(conf, "w");
    if (!f)
        return -1;
    fprintf(f, "max_payload: 8MB\n");
    fclose(f);
    char *argv[] = {"nats-server", "-js", "-a", "127.0.0.1", "-p", ports,
                    "-sd", dir, "-c", conf, NULL};
    nats_pid = spawn(argv, log);
    if (nats_pid < 0 || !wait_ready(nats_pid, port)) {
        fprintf(stderr, "FAIL: nats-server did not start (see %s)\n", log);
        return -1;
    }
    snprintf(nats_url, sizeof nats_url, "nats://127.0.0.1:%d", port);
    return 0;
}

static void stop(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    return remove(path);
}

/* --------------------------------------------------------------- helpers */

static const char *url; /* the backend under test */

static struct bus *open_bus(uint64_t capacity)
{
    struct bus_config cfg;
    bus_config_init(&cfg);
    cfg.url = url;
    cfg.partitions = 8;
    cfg.lease_ms = 900;
    cfg.ack_wait_ms = 1500;
    if (capacity)
        cfg.capacity = capacity;
    struct bus *b = NULL;
    int err = bus_open(&cfg, &b);
    if (err)
        fprintf(stderr, "bus_open(%s): %s\n", url, core_strerror(err));
    assert_int_equal(err, CORE_OK);
    return b;
}

/* A stream name no other test (or earlier run) uses. */
static void unique(char *out, size_t cap, const char *what)
{
    static int n;
    unsigned char r[3];
    char hex[7];
    core_random_bytes(r, sizeof r);
    core_hex_encode(r, sizeof r, hex);
    snprintf(out, cap, "t.%s.%d.%s", what, ++n, hex);
}

static uint64_t deadline_in(int ms)
{
    return core_time_mono_ns() + (uint64_t)ms * 1000000;
}

static bool before(uint64_t deadline)
{
    return core_time_mono_ns() < deadline;
}

static void publish_range(struct bus *b, const char *stream, int nkeys,
                          int from, int to)
{
    /* Keys interleaved, batches of 100, payload "key:seq". */
    struct bus_pub batch[100];
    char keys[100][16], pay[100][32];
    int k = 0;
    for (int s = from; s < to; s++) {
        for (int key = 0; key < nkeys; key++) {
            snprintf(keys[k], sizeof keys[k], "dev-%d", key);
            snprintf(pay[k], sizeof pay[k], "%d:%d", key, s);
            batch[k] = (struct bus_pub){keys[k], strlen(keys[k]), pay[k],
                                        strlen(pay[k]), 1};
            if (++k == 100) {
                assert_int_equal(
                    bus_stream_publish_batch(b, stream, batch, (size_t)k), 0);
                k = 0;
            }
        }
    }
    if (k)
        assert_int_equal(bus_stream_publish_batch(b, stream, batch, (size_t)k),
                         0);
}

static void publish_n(struct bus *b, const char *stream, int nkeys,
                      int per_key)
{
    publish_range(b, stream, nkeys, 0, per_key);
}

/* ----------------------------------------------------------------- tests */

static void test_roundtrip_exact_bytes(void **state)
{
    char stream[64];
    unique(stream, sizeof stream, "rt");
    struct bus *b = open_bus(0);
    struct bus_consumer *c;
    assert_int_equal(bus_consumer_create(b, stream, "g", "c1", &c), 0);

    size_t big_len = 1024 * 1024;
    unsigned char *big = malloc(big_len);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (unsigned char)(i * 131 + 7);
    const unsigned char binary[] = {0, 1, 2, 0xff, 0, '\n', '\r', 0x80, 0};
    struct bus_pub msgs[3] = {
        {"k", 1, binary, sizeof binary, 1},
        {"k", 1, "", 0, 1},
        {"k", 1, big, big_len, 1},
    };
    assert_int_equal(bus_stream_publish(b, stream, msgs[0].key, 1,
                                        msgs[0].payload, msgs[0].len),
                     0);
    assert_int_equal(bus_stream_publish_batch(b, stream, &msgs[1], 2), 0);

    int got = 0;
    uint64_t dl = deadline_in(10000);
    while (got < 3 && before(dl)) {
        struct bus_msg m[4];
        size_t n;
        assert_int_equal(bus_consumer_consume(c, m, 4, 200, &n), 0);
        for (size_t i = 0; i < n; i++, got++) {
            assert_true(got < 3);
            assert_string_equal(m[i].stream, stream);
            assert_int_equal(m[i].partition,
                             bus_partition_for("k", 1, bus_partitions(b)));
            assert_int_equal(m[i].key_len, 1);
            assert_memory_equal(m[i].key, "k", 2);
            assert_int_equal(m[i].len, msgs[got].len);
            if (m[i].len)
                assert_memory_equal(m[i].payload, msgs[got].payload,
                                    m[i].len);
            assert_int_equal(((const char *)m[i].payload)[m[i].len], '\0');
            assert_int_equal(m[i].deliveries, 1);
            assert_non_null(m[i].id);
        }
        assert_int_equal(bus_consumer_ack(c, m, n), 0);
    }
    assert_int_equal(got, 3);

    /* The traffic shows in the metrics registry. */
    struct core_buf mb;
    core_buf_init(&mb);
    core_metrics_render(&mb);
    char line[160];
    snprintf(line, sizeof line, "argus_bus_published_total{stream=\"%s\"} 3",
             stream);
    assert_non_null(strstr(mb.data, line));
    snprintf(line, sizeof line,
             "argus_bus_acked_total{stream=\"%s\",group=\"g\"} 3", stream);
    assert_non_null(strstr(mb.data, line));
    core_buf_fini(&mb);

    free(big);
    bus_consumer_destroy(c);
    bus_close(b);
}

static void test_batches_all_delivered_once(void **state)
{
    char stream[64];
    unique(stream, sizeof stream, "batch");
    struct bus *b = open_bus(0);
    struct bus_consumer *c;
    assert_int_equal(bus_consumer_create(b, stream, "g", "c1", &c), 0);
    publish_n(b, stream, 50, 20); /* 1000 messages in batches of 100 */

    static bool seen[50][20];
    memset(seen, 0, sizeof seen);
    int got = 0;
    uint64_t dl = deadline_in(15000);
    while (got < 1000 && before(dl)) {
        struct bus_msg m[64];
        size_t n;
        assert_int_equal(bus_consumer_consume(c, m, 64, 200, &n), 0);
        for (size_t i = 0; i < n; i++) {
            int key, seq;
            assert_int_equal(sscanf(m[i].payload, "%d:%d", &key, &seq), 2);
            assert_false(seen[key][seq]);
            seen[key][seq] = true;
            got++;
        }
        assert_int_equal(bus_consumer_ack(c, m, n), 0);
    }
    assert_int_equal(got, 1000);
    bus_consumer_destroy(c);
    bus_close(b);
}

/* Per-key order with several consumers of one group on their own threads,
 * checked against a model: each key's sequence arrives complete and in
 * order, and no partition is ever consumed by two consumers at once. */
#define ORD_KEYS 40
#define ORD_PER_KEY 50
#define ORD_CONSUMERS 3

struct order_model {
    pthread_mutex_t lock;
    int next[ORD_KEYS];
    int total;
    int errors;
    int owner[64]; /* partition → consumer index delivering it now, or -1 */
    int held[ORD_CONSUMERS]; /* partitions each consumer holds */
    char stream[64];
    struct bus *bus;
    atomic_bool stop;
};

struct order_worker {
    struct order_model *model;
    int index;
    int got;
};

static void *order_worker_run(void *arg)
{
    struct order_worker *w = arg;
    struct order_model *om = w->model;
    char name[16];
    snprintf(name, sizeof name, "w%d", w->index);
    struct bus_consumer *c;
    if (bus_consumer_create(om->bus, om->stream, "ordered", name, &c) != 0) {
        pthread_mutex_lock(&om->lock);
        om->errors++;
        pthread_mutex_unlock(&om->lock);
        return NULL;
    }
    while (!atomic_load(&om->stop)) {
        struct bus_msg m[32];
        size_t n;
        if (bus_consumer_consume(c, m, 32, 100, &n) != 0) {
            pthread_mutex_lock(&om->lock);
            om->errors++;
            pthread_mutex_unlock(&om->lock);
            break;
        }
        pthread_mutex_lock(&om->lock);
        om->held[w->index] = (int)bus_consumer_partitions_held(c);
        for (size_t i = 0; i < n; i++) {
            int key, seq;
            if (sscanf(m[i].payload, "%d:%d", &key, &seq) != 2 ||
                key >= ORD_KEYS || seq != om->next[key]) {
                fprintf(stderr, "order: consumer %d got %s, expected %d\n",
                        w->index, (const char *)m[i].payload,
                        key < ORD_KEYS ? om->next[key] : -1);
                om->errors++;
                continue;
            }
            int *own = &om->owner[m[i].partition];
            if (*own != -1 && *own != w->index) {
                fprintf(stderr, "order: partition %u shared by %d and %d\n",
                        m[i].partition, *own, w->index);
                om->errors++;
            }
            *own = w->index;
            om->next[key]++;
            om->total++;
            w->got++;
        }
        pthread_mutex_unlock(&om->lock);
        /* A consumer hands a partition over only when nothing of it is
         * unacknowledged, so the ownership record ends with the batch. */
        pthread_mutex_lock(&om->lock);
        for (size_t i = 0; i < n; i++)
            om->owner[m[i].partition] = -1;
        if (bus_consumer_ack(c, m, n) != 0)
            om->errors++;
        pthread_mutex_unlock(&om->lock);
    }
    bus_consumer_destroy(c);
    return NULL;
}

static void test_per_key_order_with_many_consumers(void **state)
{
    struct order_model *om = calloc(1, sizeof *om);
    assert_non_null(om);
    pthread_mutex_init(&om->lock, NULL);
    for (int i = 0; i < 64; i++)
        om->owner[i] = -1;
    unique(om->stream, sizeof om->stream, "order");
    om->bus = open_bus(0);
    assert_int_equal(bus_group_declare(om->bus, om->stream, "ordered"), 0);

    pthread_t th[ORD_CONSUMERS];
    struct order_worker w[ORD_CONSUMERS];
    for (int i = 0; i < ORD_CONSUMERS; i++) {
        w[i] = (struct order_worker){om, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, order_worker_run, &w[i]),
                         0);
    }
    /* The first half is published while the consumers join and
     * rebalance; the second once every consumer holds partitions. */
    publish_range(om->bus, om->stream, ORD_KEYS, 0, ORD_PER_KEY / 2);
    uint64_t dl = deadline_in(10000);
    for (;;) {
        int holding = 0;
        pthread_mutex_lock(&om->lock);
        for (int i = 0; i < ORD_CONSUMERS; i++)
            holding += om->held[i] > 0;
        pthread_mutex_unlock(&om->lock);
        if (holding == ORD_CONSUMERS || !before(dl))
            break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL); /* polling the model with a deadline */
    }
    publish_range(om->bus, om->stream, ORD_KEYS, ORD_PER_KEY / 2,
                  ORD_PER_KEY);
    dl = deadline_in(20000);
    for (;;) {
        pthread_mutex_lock(&om->lock);
        bool done = om->total >= ORD_KEYS * ORD_PER_KEY || om->errors;
        pthread_mutex_unlock(&om->lock);
        if (done || !before(dl))
            break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL); /* polling the model with a deadline */
    }
    atomic_store(&om->stop, true);
    for (int i = 0; i < ORD_CONSUMERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(om->errors, 0);
    assert_int_equal(om->total, ORD_KEYS * ORD_PER_KEY);
    for (int k = 0; k < ORD_KEYS; k++)
        assert_int_equal(om->next[k], ORD_PER_KEY);
    int busy = 0;
    for (int i = 0; i < ORD_CONSUMERS; i++)
        busy += w[i].got > 0;
    assert_int_equal(busy, ORD_CONSUMERS); /* the partitions were shared */
    bus_close(om->bus);
    pthread_mutex_destroy(&om->lock);
    free(om);
}

/* A consumer that takes messages and goes away without acknowledging them:
 * another consumer of the group (on another connection, as another process
 * would be) receives every message, those again with deliveries > 1. */
static void test_unacked_messages_are_redelivered(void **state)
{
    char stream[64];
    unique(stream, sizeof stream, "redeliver");
    struct bus *b1 = open_bus(0), *b2 = open_bus(0);
    struct bus_consumer *crash, *rescue;
    assert_int_equal(bus_consumer_create(b1, stream, "g", "crash", &crash),
                     0);
    publish_n(b1, stream, 10, 30); /* 300 */

    static bool taken[10][30];
    memset(taken, 0, sizeof taken);
    int ntaken = 0;
    uint64_t dl = deadline_in(5000);
    while (ntaken < 100 && before(dl)) {
        struct bus_msg m[50];
        size_t n;
        assert_int_equal(bus_consumer_consume(crash, m, 50, 200, &n), 0);
        for (size_t i = 0; i < n; i++) {
            int key, seq;
            assert_int_equal(sscanf(m[i].payload, "%d:%d", &key, &seq), 2);
            taken[key][seq] = true;
            ntaken++;
        }
    }
    assert_true(ntaken >= 100);
    bus_consumer_destroy(crash); /* no ack */

    assert_int_equal(bus_consumer_create(b2, stream, "g", "rescue", &rescue),
                     0);
    static int count[10][30];
    memset(count, 0, sizeof count);
    int next[10] = {0};
    int distinct = 0, again = 0;
    dl = deadline_in(15000);
    while (distinct < 300 && before(dl)) {
        struct bus_msg m[64];
        size_t n;
        assert_int_equal(bus_consumer_consume(rescue, m, 64, 200, &n), 0);
        for (size_t i = 0; i < n; i++) {
            int key, seq;
            assert_int_equal(sscanf(m[i].payload, "%d:%d", &key, &seq), 2);
            if (count[key][seq]++ == 0)
                distinct++;
            if (taken[key][seq]) {
                assert_true(m[i].deliveries >= 2);
                again++;
            }
            /* Nothing was acknowledged: each key starts over from its
             * first message and stays in order. */
            assert_int_equal(seq, next[key]);
            next[key]++;
        }
        assert_int_equal(bus_consumer_ack(rescue, m, n), 0);
    }
    assert_int_equal(distinct, 300);
    assert_true(again >= ntaken);
    uint64_t lag = 1;
    dl = deadline_in(5000);
    while (before(dl)) {
        assert_int_equal(bus_group_lag(b2, stream, "g", &lag), 0);
        if (lag == 0)
            break;
    }
    assert_int_equal(lag, 0);
    bus_consumer_destroy(rescue);
    bus_close(b1);
    bus_close(b2);
}

/* The child of test_crashed_consumer_...: consumes at least `want`
 * messages without acknowledging them, prints their payloads, and kills
 * itself — no destroy, no lease release, no clean close. */
static int crash_child(const char *child_url, const char *stream, int want)
{
    url = child_url;
    core_log_set_level(CORE_LOG_WARN);
    struct bus_config cfg;
    bus_config_init(&cfg);
    cfg.url = url;
    cfg.partitions = 8;
    cfg.lease_ms = 900;
    cfg.ack_wait_ms = 1500;
    struct bus *b;
    struct bus_consumer *c;
    if (bus_open(&cfg, &b) != 0 ||
        bus_consumer_create(b, stream, "g", "crash", &c) != 0)
        return 1;
    int taken = 0;
    uint64_t dl = deadline_in(5000);
    while (taken < want && before(dl)) {
        struct bus_msg m[50];
        size_t n;
        if (bus_consumer_consume(c, m, 50, 200, &n) != 0)
            return 1;
        for (size_t i = 0; i < n; i++, taken++)
            printf("%s\n", (const char *)m[i].payload);
    }
    fflush(stdout);
    raise(SIGKILL);
    return 1;
}

/* A consumer process killed (-9) with messages unacknowledged: once its
 * leases expire another consumer takes its partitions and receives every
 * message, the dead one's again, each key in order. Cross-process, so
 * networked backends only: a mem bus dies with its process. */
static void test_crashed_consumer_messages_are_redelivered(void **state)
{
    char stream[64];
    unique(stream, sizeof stream, "crash");
    struct bus *b = open_bus(0);
    assert_int_equal(bus_group_declare(b, stream, "g"), 0);
    publish_n(b, stream, 10, 30); /* 300 */

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        char *argv[] = {"test_bus", "--crash-child", (char *)url, stream,
                        "100", NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    assert_non_null(f);
    static bool taken[10][30];
    memset(taken, 0, sizeof taken);
    int ntaken = 0, key, seq;
    while (fscanf(f, "%d:%d\n", &key, &seq) == 2) {
        assert_true(key < 10 && seq < 30);
        taken[key][seq] = true;
        ntaken++;
    }
    fclose(f);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_true(ntaken >= 100);

    struct bus_consumer *rescue;
    assert_int_equal(bus_consumer_create(b, stream, "g", "rescue", &rescue),
                     0);
    static int count[10][30];
    memset(count, 0, sizeof count);
    int next[10] = {0};
    int distinct = 0, again = 0;
    uint64_t dl = deadline_in(15000);
    while (distinct < 300 && before(dl)) {
        struct bus_msg m[64];
        size_t n;
        assert_int_equal(bus_consumer_consume(rescue, m, 64, 200, &n), 0);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(sscanf(m[i].payload, "%d:%d", &key, &seq), 2);
            if (count[key][seq]++ == 0)
                distinct++;
            if (taken[key][seq] && m[i].deliveries >= 2)
                again++;
            /* Nothing was acknowledged, so each key starts over from its
             * first message and stays in order across the takeover. */
            assert_int_equal(seq, next[key]);
            next[key]++;
        }
        assert_int_equal(bus_consumer_ack(rescue, m, n), 0);
    }
    assert_int_equal(distinct, 300);
    assert_true(again >= ntaken);
    uint64_t lag = 1;
    dl = deadline_in(5000);
    while (lag && before(dl))
        assert_int_equal(bus_group_lag(b, stream, "g", &lag), 0);
    assert_int_equal(lag, 0);
    bus_consumer_destroy(rescue);
    bus_close(b);
}

static int drain_count(struct bus_consumer *c, int want, int timeout_ms)
{
    int got = 0;
    uint64_t dl = deadline_in(timeout_ms);
    while (got < want && before(dl)) {
        struct bus_msg m[64];
        size_t n;
        assert_int_equal(bus_consumer_consume(c, m, 64, 100, &n), 0);
        got += (int)n;
        assert_int_equal(bus_consumer_ack(c, m, n), 0);
    }
    return got;
}

static void test_independent_groups_each_get_everything(void **state)
{
    char stream[64];
    unique(stream, sizeof stream, "groups");
    struct bus *b = open_bus(0);
    struct bus_consumer *a, *z;
    assert_int_equal(bus_consumer_create(b, stream, "archive", "a1", &a), 0);
    assert_int_equal(bus_consumer_create(b, stream, "demux", "d1", &z), 0);
    publish_n(b, stream, 20, 10);
    assert_int_equal(drain_count(a, 200, 10000), 200);
    assert_int_equal(drain_count(z, 200, 10000), 200);
    bus_consumer_destroy(a);
    bus_consumer_destroy(z);
    bus_close(b);
}

struct inbox {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int n;
    char last[64];
    bool in_order;
};

static void inbox_cb(const char *channel, const void *payload, size_t len,
                     void *arg)
{
    struct inbox *in = arg;
    pthread_mutex_lock(&in->lock);
    char expect[32];
    snprintf(expect, sizeof expect, "config-%d", in->n);
    if (len != strlen(expect) || memcmp(payload, expect, len) != 0)
        in->in_order = false;
    in->n++;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
}

static bool inbox_wait(struct inbox *in, int n, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000 + 1;
    pthread_mutex_lock(&in->lock);
    while (in->n < n)
        if (pthread_cond_timedwait(&in->cond, &in->lock, &until) != 0)
            break;
    bool ok = in->n >= n;
    pthread_mutex_unlock(&in->lock);
    return ok;
}

static void test_pubsub_fans_out_to_every_subscriber(void **state)
{
    char channel[64];
    unique(channel, sizeof channel, "cfg");
    struct bus *b1 = open_bus(0), *b2 = open_bus(0);
    struct inbox in[2];
    struct bus_sub *s[2];
    for (int i = 0; i < 2; i++) {
        pthread_mutex_init(&in[i].lock, NULL);
        pthread_cond_init(&in[i].cond, NULL);
        in[i].n = 0;
        in[i].in_order = true;
    }
    assert_int_equal(bus_subscribe(b1, channel, inbox_cb, &in[0], &s[0]), 0);
    assert_int_equal(bus_subscribe(b2, channel, inbox_cb, &in[1], &s[1]), 0);
    for (int i = 0; i < 10; i++) {
        char p[32];
        snprintf(p, sizeof p, "config-%d", i);
        assert_int_equal(bus_broadcast(b1, channel, p, strlen(p)), 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_true(inbox_wait(&in[i], 10, 5000));
        assert_true(in[i].in_order);
    }
    bus_unsubscribe(s[0]);
    bus_unsubscribe(s[1]);
    /* After unsubscribing nothing more arrives. */
    assert_int_equal(bus_broadcast(b2, channel, "x", 1), 0);
    assert_int_equal(in[0].n, 10);
    for (int i = 0; i < 2; i++) {
        pthread_mutex_destroy(&in[i].lock);
        pthread_cond_destroy(&in[i].cond);
    }
    bus_close(b1);
    bus_close(b2);
}

/* A partition holds at most `capacity` unacknowledged messages; publish
 * then answers CORE_EOVERLOAD, and succeeds again once they are acked. */
static void test_full_partition_overloads(void **state)
{
    char stream[64];
    unique(stream, sizeof stream, "full");
    struct bus *b = open_bus(5);
    struct bus_consumer *c;
    assert_int_equal(bus_consumer_create(b, stream, "g", "c1", &c), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(bus_stream_publish(b, stream, "k", 1, "m", 1), 0);
    assert_int_equal(bus_stream_publish(b, stream, "k", 1, "m", 1),
                     CORE_EOVERLOAD);
    /* Another key in another partition still goes through. */
    const char *other = "k";
    char buf[8];
    for (int i = 0; i < 100; i++) {
        snprintf(buf, sizeof buf, "o%d", i);
        if (bus_partition_for(buf, strlen(buf), 8) !=
            bus_partition_for("k", 1, 8)) {
            other = buf;
            break;
        }
    }
    assert_int_equal(bus_stream_publish(b, stream, other, strlen(other), "m",
                                        1),
                     0);
    assert_int_equal(drain_count(c, 6, 10000), 6);
    int err = CORE_EOVERLOAD;
    uint64_t dl = deadline_in(5000);
    while (err == CORE_EOVERLOAD && before(dl))
        err = bus_stream_publish(b, stream, "k", 1, "m", 1);
    assert_int_equal(err, 0);
    bus_consumer_destroy(c);
    bus_close(b);
}

/* Publishers on several threads at once (more than NATS's publish
 * contexts, so some wait their turn): every message arrives once, in
 * order per key; and a full partition's refusal reaches only the publisher
 * that hit it, while the others' publishes to other partitions succeed. */
#define CP_THREADS 6
#define CP_KEYS 4
#define CP_BATCHES 25
#define CP_FULL_TRIES 20

struct cp_arg {
    struct bus *bus;
    const char *stream;
    int index;
    char keys[CP_KEYS][16]; /* for the overload round: one each */
    int nkeys;
    int tries;
    atomic_int *go;
    int ok, overloaded, other;
};

static void *cp_publisher(void *arg)
{
    struct cp_arg *a = arg;
    while (!atomic_load(a->go)) /* all start together */
        sched_yield();
    for (int r = 0; r < a->tries; r++) {
        struct bus_pub msgs[CP_KEYS * 2];
        char payload[CP_KEYS * 2][32];
        size_t n = 0;
        for (int k = 0; k < a->nkeys; k++) {
            for (int j = 0; j < (a->tries > 1 && a->nkeys > 1 ? 2 : 1); j++) {
                int seq = r * 2 + j;
                snprintf(payload[n], sizeof payload[n], "%d:%d:%d", a->index, k,
                         seq);
                msgs[n] = (struct bus_pub){a->keys[k], strlen(a->keys[k]),
                                           payload[n], strlen(payload[n]), 0};
                n++;
            }
        }
        int err = bus_stream_publish_batch(a->bus, a->stream, msgs, n);
        if (err == CORE_OK)
            a->ok++;
        else if (err == CORE_EOVERLOAD)
            a->overloaded++;
        else
            a->other++;
    }
    return NULL;
}

static void test_concurrent_publishers(void **state)
{
    char stream[64];
    unique(stream, sizeof stream, "conc");
    struct bus *b = open_bus(0);
    struct bus_consumer *c;
    assert_int_equal(bus_consumer_create(b, stream, "g", "c1", &c), 0);
    static struct cp_arg args[CP_THREADS];
    pthread_t th[CP_THREADS];
    atomic_int go;
    atomic_init(&go, 0);
    for (int t = 0; t < CP_THREADS; t++) {
        args[t] = (struct cp_arg){.bus = b, .stream = stream, .index = t,
                                  .nkeys = CP_KEYS, .tries = CP_BATCHES,
                                  .go = &go};
        for (int k = 0; k < CP_KEYS; k++)
            snprintf(args[t].keys[k], sizeof args[t].keys[k], "t%d-%d", t, k);
        assert_int_equal(pthread_create(&th[t], NULL, cp_publisher, &args[t]),
                         0);
    }
    atomic_store(&go, 1);
    for (int t = 0; t < CP_THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(args[t].ok, CP_BATCHES);
    }
    /* Each key: 2 messages a batch, sequence 0.. in order, once. */
    enum { PER_KEY = CP_BATCHES * 2, TOTAL = CP_THREADS * CP_KEYS * PER_KEY };
    static int next[CP_THREADS][CP_KEYS];
    memset(next, 0, sizeof next);
    int got = 0;
    uint64_t dl = deadline_in(20000);
    while (got < TOTAL && before(dl)) {
        struct bus_msg m[64];
        size_t n;
        assert_int_equal(bus_consumer_consume(c, m, 64, 200, &n), 0);
        for (size_t i = 0; i < n; i++) {
            int t, k, seq;
            assert_int_equal(sscanf(m[i].payload, "%d:%d:%d", &t, &k, &seq), 3);
            assert_true(t >= 0 && t < CP_THREADS && k >= 0 && k < CP_KEYS);
            assert_int_equal(seq, next[t][k]);
            next[t][k]++;
            got++;
        }
        assert_int_equal(bus_consumer_ack(c, m, n), 0);
    }
    assert_int_equal(got, TOTAL);
    bus_consumer_destroy(c);
    bus_close(b);
}

static void test_overload_reaches_only_its_publisher(void **state)
{
    char stream[64];
    unique(stream, sizeof stream, "attr");
    struct bus *b = open_bus(5);
    struct bus_consumer *c;
    assert_int_equal(bus_consumer_create(b, stream, "g", "c1", &c), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(bus_stream_publish(b, stream, "k", 1, "m", 1), 0);
    /* Thread 0 keeps publishing to the full partition; the others each
     * to a partition of their own (4 messages: within the capacity). */
    uint32_t full = bus_partition_for("k", 1, 8);
    bool used[8] = {false};
    used[full] = true;
    static struct cp_arg args[5];
    pthread_t th[5];
    atomic_int go;
    atomic_init(&go, 0);
    args[0] = (struct cp_arg){.bus = b, .stream = stream, .index = 0,
                              .nkeys = 1, .tries = CP_FULL_TRIES, .go = &go};
    snprintf(args[0].keys[0], sizeof args[0].keys[0], "k");
    for (int t = 1, cand = 0; t < 5; t++) {
        char key[16];
        uint32_t p;
        do {
            snprintf(key, sizeof key, "o%d", cand++);
            p = bus_partition_for(key, strlen(key), 8);
        } while (used[p]);
        used[p] = true;
        args[t] = (struct cp_arg){.bus = b, .stream = stream, .index = t,
                                  .nkeys = 1, .tries = 4, .go = &go};
        snprintf(args[t].keys[0], sizeof args[t].keys[0], "%s", key);
    }
    for (int t = 0; t < 5; t++)
        assert_int_equal(pthread_create(&th[t], NULL, cp_publisher, &args[t]),
                         0);
    atomic_store(&go, 1);
    for (int t = 0; t < 5; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(args[0].overloaded, CP_FULL_TRIES);
    assert_int_equal(args[0].ok + args[0].other, 0);
    for (int t = 1; t < 5; t++) {
        assert_int_equal(args[t].ok, 4);
        assert_int_equal(args[t].overloaded + args[t].other, 0);
    }
    assert_int_equal(drain_count(c, 5 + 4 * 4, 10000), 5 + 4 * 4);
    bus_consumer_destroy(c);
    bus_close(b);
}

/* An entry counts as its weight (a bundle: the messages inside) on Redis;
 * NATS bounds the stream's bytes at capacity x partitions x 1 KiB; mem
 * counts entries. */
static int publish_weighted(struct bus *b, const char *stream,
                            const void *payload, size_t len, uint32_t weight)
{
    struct bus_pub m = {"k", 1, payload, len, weight};
    return bus_stream_publish_batch(b, stream, &m, 1);
}

static void test_weights_bound_the_partition(void **state)
{
    char stream[64];
    unique(stream, sizeof stream, "weights");
    struct bus *b = open_bus(10);
    struct bus_consumer *c;
    assert_int_equal(bus_consumer_create(b, stream, "g", "c1", &c), 0);
    int sent = 0;
    if (strcmp(bus_backend_name(b), "redis") == 0) {
        assert_int_equal(publish_weighted(b, stream, "m", 1, 6), 0);
        assert_int_equal(publish_weighted(b, stream, "m", 1, 6), CORE_EOVERLOAD);
        assert_int_equal(publish_weighted(b, stream, "m", 1, 4), 0);
        assert_int_equal(publish_weighted(b, stream, "m", 1, 1), CORE_EOVERLOAD);
        sent = 2;
    } else if (strcmp(bus_backend_name(b), "nats") == 0) {
        static char big[30 * 1024]; /* 80 KiB for the stream */
        assert_int_equal(publish_weighted(b, stream, big, sizeof big, 1), 0);
        assert_int_equal(publish_weighted(b, stream, big, sizeof big, 1), 0);
        assert_int_equal(publish_weighted(b, stream, big, sizeof big, 1),
                         CORE_EOVERLOAD);
        sent = 2;
    } else {
        for (int i = 0; i < 10; i++)
            assert_int_equal(publish_weighted(b, stream, "m", 1, 100), 0);
        assert_int_equal(publish_weighted(b, stream, "m", 1, 1), CORE_EOVERLOAD);
        sent = 10;
    }
    /* Consumed and acknowledged, the room comes back. */
    assert_int_equal(drain_count(c, sent, 10000), sent);
    int err = CORE_EOVERLOAD;
    uint64_t dl = deadline_in(5000);
    while (err == CORE_EOVERLOAD && before(dl))
        err = publish_weighted(b, stream, "m", 1, 10);
    assert_int_equal(err, 0);
    bus_consumer_destroy(c);
    bus_close(b);
}

static void test_lag_counts_unacknowledged(void **state)
{
    char stream[64];
    unique(stream, sizeof stream, "lag");
    struct bus *b = open_bus(0);
    uint64_t lag = 0;
    assert_int_equal(bus_group_lag(b, stream, "g", &lag), CORE_ENOTFOUND);
    struct bus_consumer *c;
    assert_int_equal(bus_consumer_create(b, stream, "g", "c1", &c), 0);
    assert_int_equal(bus_group_lag(b, stream, "g", &lag), 0);
    assert_int_equal(lag, 0);
    publish_n(b, stream, 5, 2); /* 10 */
    assert_int_equal(bus_group_lag(b, stream, "g", &lag), 0);
    assert_int_equal(lag, 10);

    struct bus_msg m[4];
    size_t n = 0;
    uint64_t dl = deadline_in(5000);
    while (n == 0 && before(dl))
        assert_int_equal(bus_consumer_consume(c, m, 4, 200, &n), 0);
    assert_true(n > 0);
    assert_int_equal(bus_group_lag(b, stream, "g", &lag), 0);
    assert_int_equal(lag, 10); /* delivered is not done */
    assert_int_equal(bus_consumer_ack(c, m, n), 0);
    dl = deadline_in(5000);
    while (before(dl)) {
        assert_int_equal(bus_group_lag(b, stream, "g", &lag), 0);
        if (lag == 10 - n)
            break;
    }
    assert_int_equal(lag, 10 - n);
    bus_consumer_destroy(c);
    bus_close(b);
}

static void test_bad_arguments(void **state)
{
    struct bus_config cfg;
    bus_config_init(&cfg);
    struct bus *b;
    cfg.url = "kafka://x:1";
    assert_int_equal(bus_open(&cfg, &b), CORE_EINVAL);
    cfg.url = url;
    cfg.partitions = 0;
    assert_int_equal(bus_open(&cfg, &b), CORE_EINVAL);
    b = open_bus(0);
    assert_int_equal(bus_stream_publish(b, "bad stream", "k", 1, "x", 1),
                     CORE_EINVAL);
    struct bus_consumer *c;
    assert_int_equal(bus_consumer_create(b, "s", "g", "", &c), CORE_EINVAL);
    bus_close(b);
}

static const struct CMUnitTest tests[] = {
    /* first, so that the mem group can leave it out */
    cmocka_unit_test(test_crashed_consumer_messages_are_redelivered),
    cmocka_unit_test(test_roundtrip_exact_bytes),
    cmocka_unit_test(test_batches_all_delivered_once),
    cmocka_unit_test(test_per_key_order_with_many_consumers),
    cmocka_unit_test(test_unacked_messages_are_redelivered),
    cmocka_unit_test(test_independent_groups_each_get_everything),
    cmocka_unit_test(test_pubsub_fans_out_to_every_subscriber),
    cmocka_unit_test(test_full_partition_overloads),
    cmocka_unit_test(test_weights_bound_the_partition),
    cmocka_unit_test(test_concurrent_publishers),
    cmocka_unit_test(test_overload_reaches_only_its_publisher),
    cmocka_unit_test(test_lag_counts_unacknowledged),
    cmocka_unit_test(test_bad_arguments),
};

static int run_backend(const char *name)
{
    size_t skip = 0;
    if (strcmp(name, "mem") == 0) {
        url = "mem";
        skip = 1; /* no cross-process crash for an in-process bus */
    }
    else if (strcmp(name, "redis") == 0)
        url = redis_url;
    else if (strcmp(name, "nats") == 0)
        url = nats_url;
    else {
        fprintf(stderr, "unknown backend %s\n", name);
        return 1;
    }
    char group[32];
    snprintf(group, sizeof group, "bus_%s", name);
    uint64_t t0 = core_time_mono_ns();
    int failed = _cmocka_run_group_tests(group, tests + skip,
                                         sizeof tests / sizeof tests[0] - skip,
                                         NULL, NULL);
    fprintf(stderr, "backend %s: %.1f s\n", name,
            (double)(core_time_mono_ns() - t0) / 1e9);
    return failed;
}

int main(int argc, char **argv)
{
    if (core_init() != 0)
        return 1;
    /* BUS_TEST_FILTER=test_lag* runs only the matching tests. */
    if (getenv("BUS_TEST_FILTER"))
        cmocka_set_test_filter(getenv("BUS_TEST_FILTER"));
    if (argc == 5 && strcmp(argv[1], "--crash-child") == 0)
        return crash_child(argv[2], argv[3], atoi(argv[4]));
    core_log_set_level(CORE_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    const char *all[] = {"mem", "redis", "nats"};
    const char **names = argc > 1 ? (const char **)argv + 1 : all;
    int count = argc > 1 ? argc - 1 : 3;

    snprintf(tmpdir, sizeof tmpdir, "/tmp/argus-bus-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    int failed = 0;
    for (int i = 0; i < count; i++) {
        if (strcmp(names[i], "redis") == 0 && !redis_pid &&
            start_redis() != 0) {
            failed++;
            continue;
        }
        if (strcmp(names[i], "nats") == 0 && !nats_pid && start_nats() != 0) {
            failed++;
            continue;
        }
        failed += run_backend(names[i]);
    }
    stop(&redis_pid);
    stop(&nats_pid);
    if (failed == 0)
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "server logs kept in %s\n", tmpdir);
    return failed ? 1 : 0;
}
