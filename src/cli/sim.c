/*
 * argus sim: a device simulator and load generator. It signs in as an
 * operator, makes N simulated devices with API keys (and reuses its device
 * type), then
 * sends the plan's telemetry messages over HTTP keep-alive connections,
 * single or batched, at a set rate or flat out, for a bounded time, and
 * prints what was accepted and how long answers took. With --record it
 * writes what the server acknowledged, so a test can check that every
 * acknowledged message is stored exactly once.
 *
 * Latency is measured from when a request was due to be sent (open-loop),
 * so a slow server cannot hide its queueing delay.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core.h"

struct sim_opts {
    const char *url;
    const char *email;
    const char *password;
    int64_t devices;
    int64_t connections;
    int64_t threads;
    int64_t batch;
    int64_t metrics;
    int64_t rate;
    int64_t duration;
    const char *record;
    const char *prefix;
    bool help;
};

#define OPT(name, type, field, def, min, max, help)                         \
    {name, type, offsetof(struct sim_opts, field), def, min, max, help}

static const struct core_option sim_options[] = {
    OPT("url", CORE_OPT_STRING, url, "http://127.0.0.1:8080", 0, 0, "Argus base URL"),
    OPT("email", CORE_OPT_STRING, email, "admin@demo.argus.local", 0, 0,
        "operator or admin to set devices up with"),
    OPT("password", CORE_OPT_STRING, password, "argus-demo", 0, 0, "their password"),
    OPT("devices", CORE_OPT_INT, devices, "100", 1, 100000, "simulated devices"),
    OPT("connections", CORE_OPT_INT, connections, "8", 1, 1024,
        "keep-alive connections, one request in flight on each"),
    OPT("threads", CORE_OPT_INT, threads, "2", 1, 64,
        "threads sending (each an event loop over its share of the connections)"),
    OPT("batch", CORE_OPT_INT, batch, "1", 1, 1000, "messages per request"),
    OPT("metrics", CORE_OPT_INT, metrics, "5", 1, 1000, "metrics per message"),
    OPT("rate", CORE_OPT_INT, rate, "0", 0, 100000000,
        "messages per second in all (0 = as fast as answers come)"),
    OPT("duration", CORE_OPT_INT, duration, "10", 1, 86400, "seconds to send for"),
    OPT("record", CORE_OPT_STRING, record, NULL, 0, 0,
        "file to write every acknowledged request to (device first_ts count)"),
    OPT("prefix", CORE_OPT_STRING, prefix, "sim", 0, 0,
        "name prefix of the simulated devices"),
    OPT("help", CORE_OPT_BOOL, help, "false", 0, 0, "show this help"),
    {0},
};

/* ------------------------------------------------------------ HTTP client */

struct conn {
    int fd;
    struct sockaddr_in addr;
    char *rbuf;
    size_t rcap;
};

static int conn_open(struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&c->addr, sizeof c->addr) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Whether buf (have bytes, NUL-terminated) holds a whole answer: its
 * status, with *body set to its body, or 0 while more is to come. */
static int answer_status(char *buf, size_t have, const char **body)
{
    char *hdr_end = strstr(buf, "\r\n\r\n");
    if (!hdr_end)
        return 0;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t len = cl && cl < hdr_end ? strtoul(cl + 17, NULL, 10) : 0;
    size_t need = (size_t)(hdr_end + 4 - buf) + len;
    if (have < need)
        return 0;
    buf[need] = '\0';
    *body = hdr_end + 4;
    int status = have > 12 ? atoi(buf + 9) : 0;
    return status > 0 ? status : -1;
}

/* Room for 4 KiB more after have bytes in c's read buffer (and a NUL);
 * -1 when out of memory (the buffer is kept). */
static int conn_reserve(struct conn *c, size_t have)
{
    if (have + 4096 <= c->rcap)
        return 0;
    size_t cap = c->rcap ? c->rcap * 2 : 16384;
    while (have + 4096 > cap)
        cap *= 2;
    char *nb = realloc(c->rbuf, cap + 1);
    if (!nb)
        return -1;
    c->rbuf = nb;
    c->rcap = cap;
    return 0;
}

/* One request/response on a kept-alive connection (reconnecting once if
 * the server closed it). Returns the status, or -1; *body gets the
 * response body (valid until the next call). */
static int http_call(struct conn *c, const char *method, const char *path,
                     const char *host, const char *headers, const char *body,
                     size_t body_len, const char **resp_body)
{
    char head[1024];
    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->fd < 0 && conn_open(c) != 0)
            return -1;
        int hn = snprintf(head, sizeof head,
                          "%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: "
                          "application/json\r\nContent-Length: %zu\r\n\r\n",
                          method, path, host, headers ? headers : "", body_len);
        if (write_all(c->fd, head, (size_t)hn) != 0 ||
            (body_len && write_all(c->fd, body, body_len) != 0)) {
            close(c->fd);
            c->fd = -1;
            continue;
        }
        size_t have = 0;
        for (;;) {
            if (conn_reserve(c, have) != 0)
                return -1;
            ssize_t r = read(c->fd, c->rbuf + have, c->rcap - have);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            have += (size_t)r;
            c->rbuf[have] = '\0';
            int status = answer_status(c->rbuf, have, resp_body);
            if (status)
                return status;
        }
        close(c->fd);
        c->fd = -1;
        if (have) /* a partial answer: the request may have been taken */
            return -1;
    }
    return -1;
}

/* ---------------------------------------------------------------- set-up */

struct sim_device {
    char id[CORE_UUID_STR_LEN];
    char key[96];
    int64_t next_ts; /* synthetic, one millisecond per message */
};

struct sim {
    struct sim_opts o;
    char host[256];
    struct sockaddr_in addr;
    struct sim_device *devs;
    int64_t start_ms;
    uint64_t t0_ns;
    FILE *record;
    pthread_mutex_t record_lock;
    _Atomic uint64_t sent_msgs, ok_msgs, s202, s4xx, s429, s5xx, errors;
    uint64_t *lat_us; /* all threads' samples, one slot per request */
    _Atomic size_t nlat;
    size_t lat_cap;
};

static int api_json(struct sim *s, struct conn *c, const char *method,
                    const char *path, const char *token, json_t *req,
                    json_t **out)
{
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    char auth[2048 + 32] = ""; /* a token of up to 2048 bytes, and the name */
    if (token)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    const char *resp;
    int st = http_call(c, method, path, s->host, auth, body ? body : "",
                       body ? strlen(body) : 0, &resp);
    free(body);
    if (out)
        *out = st > 0 ? json_loads(resp, 0, NULL) : NULL;
    return st;
}

static int setup(struct sim *s)
{
    struct conn c = {.fd = -1, .addr = s->addr};
    json_t *r = NULL;
    int rc = -1;
    int st = api_json(s, &c, "POST", "/api/v1/auth/login", NULL,
                      json_pack("{s:s, s:s}", "email", s->o.email, "password",
                                s->o.password),
                      &r);
    const char *tok = json_string_value(json_object_get(r, "token"));
    if (st != 200 || !tok) {
        fprintf(stderr, "argus sim: sign-in as %s failed (HTTP %d)\n",
                s->o.email, st);
        goto out;
    }
    char token[2048];
    snprintf(token, sizeof token, "%s", tok);
    json_decref(r);

    /* A device type of the simulator's own, reused on later runs. */
    char path[512], name[256];
    snprintf(name, sizeof name, "%s device", s->o.prefix);
    snprintf(path, sizeof path, "/api/v1/device-types?search=%s&limit=500", s->o.prefix);
    for (char *p = path; *p; p++)
        if (*p == ' ')
            *p = '+';
    st = api_json(s, &c, "GET", path, token, NULL, &r);
    const char *type_id = NULL;
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(r, "data"), i, row)
        if (!strcmp(json_string_value(json_object_get(row, "name")), name))
            type_id = json_string_value(json_object_get(row, "id"));
    char tid[CORE_UUID_STR_LEN];
    if (type_id) {
        snprintf(tid, sizeof tid, "%s", type_id);
    } else {
        json_t *t;
        st = api_json(s, &c, "POST", "/api/v1/device-types", token,
                      json_pack("{s:s, s:s}", "name", name, "description",
                                "Made by argus sim"),
                      &t);
        if (st != 201) {
            fprintf(stderr, "argus sim: cannot create a device type (HTTP %d)\n", st);
            json_decref(t);
            goto out;
        }
        snprintf(tid, sizeof tid, "%s", json_string_value(json_object_get(t, "id")));
        json_decref(t);
    }
    json_decref(r);
    r = NULL;
    for (int64_t d = 0; d < s->o.devices; d++) {
        json_t *dev, *key;
        char dname[256];
        snprintf(dname, sizeof dname, "%s-%05lld", s->o.prefix, (long long)d);
        st = api_json(s, &c, "POST", "/api/v1/devices", token,
                      json_pack("{s:s, s:s}", "name", dname, "deviceTypeId", tid),
                      &dev);
        if (st != 201) {
            fprintf(stderr, "argus sim: cannot create device %s (HTTP %d)\n",
                    dname, st);
            json_decref(dev);
            goto out;
        }
        snprintf(s->devs[d].id, sizeof s->devs[d].id, "%s",
                 json_string_value(json_object_get(dev, "id")));
        json_decref(dev);
        snprintf(path, sizeof path, "/api/v1/devices/%s/api-keys", s->devs[d].id);
        st = api_json(s, &c, "POST", path, token, json_object(), &key);
        if (st != 201) {
            fprintf(stderr, "argus sim: cannot create a key (HTTP %d)\n", st);
            json_decref(key);
            goto out;
        }
        snprintf(s->devs[d].key, sizeof s->devs[d].key, "%s",
                 json_string_value(json_object_get(key, "key")));
        json_decref(key);
        /* Synthetic time starts a day back so that it never runs ahead of
         * the server's clock, one millisecond per message. */
        s->devs[d].next_ts = s->start_ms - 86400000LL;
    }
    rc = 0;
out:
    json_decref(r);
    if (c.fd >= 0)
        close(c.fd);
    free(c.rbuf);
    return rc;
}

/* ------------------------------------------------------------------- load */

/* The load runs on a few threads, each an event loop over its share of
 * the connections, with one request in flight per connection (keep-alive,
 * no pipelining). A blocking thread per connection spends on context
 * switches the CPU that the server under test needs when both share a
 * small machine: on 2 cores, 32 such threads got 19-20 k single-message
 * requests/s through where an event loop gets 30 k. */

enum lc_state { LC_DUE, LC_SEND, LC_RECV, LC_DONE };

struct lconn {
    int64_t index; /* its devices: index, index + connections, ... */
    int64_t mine;  /* how many */
    int64_t k;     /* requests started */
    int fd;
    enum lc_state state;
    uint64_t due;     /* the next request's due time (monotonic ns) */
    uint64_t req_due; /* the one in flight's, for its latency */
    struct sim_device *dev;
    int64_t first; /* first timestamp of the request in flight */
    bool retried;  /* already reconnected once for it */
    bool want_out; /* waiting for room to send */
    struct core_buf req;
    size_t sent;
    struct conn in; /* read buffer (in.fd unused) */
    size_t have;
};

struct worker {
    struct sim *s;
    int index;
    pthread_t thread;
    int ep;
    struct lconn *cs;
    size_t n;
    size_t active, ndue;
    uint64_t end_ns;
    double per_req_ns;
    struct core_buf body;
};

static void lc_start(struct worker *w, struct lconn *c, uint64_t now);

static void lc_close(struct lconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->want_out = false;
}

static int lc_connect(struct worker *w, struct lconn *c)
{
    struct conn tmp = {.fd = -1, .addr = w->s->addr};
    if (conn_open(&tmp) != 0)
        return -1;
    int fl = fcntl(tmp.fd, F_GETFL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (fl < 0 || fcntl(tmp.fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        epoll_ctl(w->ep, EPOLL_CTL_ADD, tmp.fd, &ev) != 0) {
        close(tmp.fd);
        return -1;
    }
    c->fd = tmp.fd;
    return 0;
}

/* The request in flight is answered (status) or failed (-1). */
static void lc_complete(struct worker *w, struct lconn *c, int st)
{
    struct sim *s = w->s;
    uint64_t done = core_time_mono_ns();
    if (c->sent < c->req.len) /* the rest of the request is not wanted */
        lc_close(c);
    atomic_fetch_add(&s->sent_msgs, (uint64_t)s->o.batch);
    bool backoff = false;
    if (st == 202) {
        atomic_fetch_add(&s->s202, 1);
        atomic_fetch_add(&s->ok_msgs, (uint64_t)s->o.batch);
        if (s->record) {
            pthread_mutex_lock(&s->record_lock);
            fprintf(s->record, "%s %lld %lld\n", c->dev->id, (long long)c->first,
                    (long long)s->o.batch);
            pthread_mutex_unlock(&s->record_lock);
        }
    } else {
        /* Not acknowledged: the same times may be sent again later. */
        c->dev->next_ts = c->first;
        if (st == 429)
            atomic_fetch_add(&s->s429, 1);
        else if (st >= 500)
            atomic_fetch_add(&s->s5xx, 1);
        else if (st >= 400)
            atomic_fetch_add(&s->s4xx, 1);
        else
            atomic_fetch_add(&s->errors, 1);
        /* Back off a little instead of spinning on a server that is down
         * or full. */
        backoff = st < 0 || st == 429 || st >= 500;
    }
    size_t slot = atomic_fetch_add(&s->nlat, 1);
    if (slot < s->lat_cap)
        s->lat_us[slot] = (done - c->req_due) / 1000;
    uint64_t next = w->per_req_ns > 0 ? c->req_due + (uint64_t)w->per_req_ns : done;
    if (backoff && next < done + 20000000ULL)
        next = done + 20000000ULL;
    c->due = next;
    c->state = LC_DUE;
    w->ndue++;
    if (next <= done)
        lc_start(w, c, done);
}

/* The connection broke: the request is sent again on a new one once, if
 * no answer had begun (the server may have closed an idle keep-alive). */
static void lc_failed(struct worker *w, struct lconn *c)
{
    lc_close(c);
    if (!c->retried && !c->have && lc_connect(w, c) == 0) {
        c->retried = true;
        c->sent = 0;
        c->state = LC_SEND;
        return;
    }
    lc_complete(w, c, -1);
}

static void lc_send(struct worker *w, struct lconn *c)
{
    while (c->state == LC_SEND && c->sent < c->req.len) {
        ssize_t n = send(c->fd, c->req.data + c->sent, c->req.len - c->sent,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            if (!c->want_out && epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
                lc_failed(w, c);
                continue;
            }
            c->want_out = true;
            return;
        } else {
            lc_failed(w, c); /* may connect again: the loop sends anew */
        }
    }
    if (c->state != LC_SEND)
        return;
    if (c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = false;
    }
    c->state = LC_RECV;
}

/* Decimal digits of v, without printf: the load generator shares the
 * machine with the server, and printf's formatting of each message's
 * fields was most of its time under batches. */
static void put_i64(struct core_buf *b, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[sizeof tmp - ++n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[sizeof tmp - ++n] = '-';
    core_buf_append(b, tmp + sizeof tmp - n, n);
}

/* x with three decimals (rounded half away from zero): "-12.345". */
static void put_milli(struct core_buf *b, double x)
{
    int64_t m = llround(x * 1000.0);
    if (m < 0) {
        core_buf_putc(b, '-');
        m = -m;
    }
    put_i64(b, m / 1000);
    char frac[4] = {'.', (char)('0' + m / 100 % 10), (char)('0' + m / 10 % 10),
                    (char)('0' + m % 10)};
    core_buf_append(b, frac, sizeof frac);
}

static void lc_start(struct worker *w, struct lconn *c, uint64_t now)
{
    struct sim *s = w->s;
    w->ndue--;
    if (now >= w->end_ns) {
        c->state = LC_DONE;
        w->active--;
        return;
    }
    int64_t nconn = s->o.connections;
    struct sim_device *d = &s->devs[c->index + (c->k++ % c->mine) * nconn];
    struct core_buf *body = &w->body;
    core_buf_reset(body);
    if (s->o.batch > 1)
        core_buf_putc(body, '[');
    c->dev = d;
    c->first = d->next_ts;
    for (int64_t m = 0; m < s->o.batch; m++) {
        core_buf_puts(body, m ? ",{\"deviceId\":\"" : "{\"deviceId\":\"");
        core_buf_puts(body, d->id);
        core_buf_puts(body, "\",\"timestamp\":");
        put_i64(body, d->next_ts);
        core_buf_puts(body, ",\"metrics\":{");
        for (int64_t x = 0; x < s->o.metrics; x++) {
            core_buf_puts(body, x ? ",\"m" : "\"m");
            put_i64(body, x);
            core_buf_puts(body, "\":");
            put_milli(body, sin((double)(d->next_ts + x)) * 100.0);
        }
        core_buf_puts(body, "}}");
        d->next_ts++;
    }
    if (s->o.batch > 1)
        core_buf_putc(body, ']');
    core_buf_reset(&c->req);
    core_buf_puts(&c->req, "POST /api/v1/telemetry/ingest HTTP/1.1\r\nHost: ");
    core_buf_puts(&c->req, s->host);
    core_buf_puts(&c->req, "\r\nX-API-Key: ");
    core_buf_puts(&c->req, d->key);
    core_buf_puts(&c->req, "\r\nContent-Type: application/json\r\n"
                           "Content-Length: ");
    put_i64(&c->req, (int64_t)body->len);
    core_buf_puts(&c->req, "\r\n\r\n");
    core_buf_append(&c->req, body->data, body->len);
    c->req_due = w->per_req_ns > 0 ? c->due : now;
    c->retried = false;
    c->sent = 0;
    c->have = 0;
    if (c->req.oom || (c->fd < 0 && lc_connect(w, c) != 0)) {
        lc_complete(w, c, -1);
        return;
    }
    c->state = LC_SEND;
    lc_send(w, c);
}

static void lc_readable(struct worker *w, struct lconn *c)
{
    if (c->state == LC_DUE || c->state == LC_DONE) {
        /* An idle connection, closed by the server. */
        char tmp[256];
        ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            lc_close(c);
        return;
    }
    for (;;) {
        struct conn *in = &c->in;
        if (conn_reserve(in, c->have) != 0) {
            lc_failed(w, c);
            return;
        }
        ssize_t n = recv(c->fd, in->rbuf + c->have, in->rcap - c->have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            lc_failed(w, c);
            if (c->state == LC_SEND)
                lc_send(w, c);
            return;
        }
        c->have += (size_t)n;
        in->rbuf[c->have] = '\0';
        const char *resp;
        int st = answer_status(in->rbuf, c->have, &resp);
        if (st) {
            lc_complete(w, c, st);
            return;
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[64];
    while (w->active) {
        uint64_t now = core_time_mono_ns();
        int timeout = -1;
        if (w->ndue) {
            uint64_t next = UINT64_MAX;
            for (size_t i = 0; i < w->n; i++) {
                struct lconn *c = &w->cs[i];
                if (c->state != LC_DUE)
                    continue;
                if (c->due <= now || now >= w->end_ns)
                    lc_start(w, c, now);
                if (c->state == LC_DUE && c->due < next)
                    next = c->due;
            }
            if (next != UINT64_MAX) {
                if (next > w->end_ns)
                    next = w->end_ns;
                now = core_time_mono_ns();
                timeout = next > now ? (int)((next - now + 999999) / 1000000) : 0;
            }
        }
        if (!w->active)
            break;
        int n = epoll_wait(w->ep, evs, 64, timeout);
        for (int i = 0; i < n; i++) {
            struct lconn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if ((evs[i].events & EPOLLOUT) && c->state == LC_SEND)
                lc_send(w, c);
            if (!(evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) || c->fd < 0)
                continue;
            if (c->state == LC_SEND && c->want_out) {
                /* Answered before the whole body was taken (a refusal of
                 * its size, say): read the answer, then close. */
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
                c->want_out = false;
                c->state = LC_RECV;
            }
            if (c->state != LC_SEND)
                lc_readable(w, c);
        }
    }
    return NULL;
}

/* Sets up a thread's connections: every threads-th one from its index. */
static int worker_init(struct worker *w, struct sim *s, int index, int threads)
{
    int64_t nconn = s->o.connections, ndev = s->o.devices;
    *w = (struct worker){.s = s, .index = index};
    core_buf_init(&w->body);
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->n = (size_t)((nconn - index + threads - 1) / threads);
    w->cs = calloc(w->n ? w->n : 1, sizeof *w->cs);
    if (w->ep < 0 || !w->cs)
        return -1;
    w->end_ns = s->t0_ns + (uint64_t)s->o.duration * 1000000000ULL;
    w->per_req_ns = s->o.rate > 0 ? 1e9 * (double)s->o.batch * (double)nconn /
                                        (double)s->o.rate
                                  : 0;
    for (size_t i = 0; i < w->n; i++) {
        struct lconn *c = &w->cs[i];
        c->index = index + (int64_t)i * threads;
        c->mine = (ndev - c->index + nconn - 1) / nconn;
        c->fd = -1;
        core_buf_init(&c->req);
        if (c->mine <= 0) {
            c->state = LC_DONE;
            continue;
        }
        c->state = LC_DUE;
        c->due = s->t0_ns + (uint64_t)(w->per_req_ns * (double)c->index / (double)nconn);
        w->active++;
        w->ndue++;
    }
    return 0;
}

static void worker_fini(struct worker *w)
{
    for (size_t i = 0; w->cs && i < w->n; i++) {
        lc_close(&w->cs[i]);
        core_buf_fini(&w->cs[i].req);
        free(w->cs[i].in.rbuf);
    }
    free(w->cs);
    core_buf_fini(&w->body);
    if (w->ep >= 0)
        close(w->ep);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)ceil(p / 100.0 * (double)n);
    return (double)v[i ? i - 1 : 0] / 1000.0;
}

int cli_sim_main(int argc, char **argv)
{
    /* A server that dies mid-request (the crash tests kill it) must cost
     * a failed request, not the simulator: without this a write to the
     * reset connection ends the process by SIGPIPE, with no summary. */
    signal(SIGPIPE, SIG_IGN);
    struct sim s;
    memset(&s, 0, sizeof s);
    char err[256];
    int next;
    if (core_options_parse(sim_options, &s.o, argc - 1, argv + 1, &next, err,
                           sizeof err) != CORE_OK) {
        fprintf(stderr, "argus sim: %s\n", err);
        return 2;
    }
    if (s.o.help) {
        printf("usage: argus sim [OPTIONS]\n\noptions:\n");
        core_options_help(sim_options, stdout);
        return 0;
    }
    if (next + 1 < argc) {
        fprintf(stderr, "argus sim: unexpected argument '%s'\n", argv[next + 1]);
        return 2;
    }
    int port = 80;
    if (sscanf(s.o.url, "http://%255[^:/]:%d", s.host, &port) < 1) {
        fprintf(stderr, "argus sim: --url must be http://HOST[:PORT]\n");
        return 2;
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(s.host, NULL, &hints, &ai) != 0) {
        fprintf(stderr, "argus sim: cannot resolve %s\n", s.host);
        return 2;
    }
    s.addr = *(struct sockaddr_in *)ai->ai_addr;
    s.addr.sin_port = htons((uint16_t)port);
    freeaddrinfo(ai);
    s.devs = calloc((size_t)s.o.devices, sizeof *s.devs);
    s.start_ms = core_time_now_ms();
    if (!s.devs || setup(&s) != 0) {
        free(s.devs);
        return 1;
    }
    if (s.o.record && !(s.record = fopen(s.o.record, "w"))) {
        fprintf(stderr, "argus sim: cannot write %s\n", s.o.record);
        free(s.devs);
        return 1;
    }
    pthread_mutex_init(&s.record_lock, NULL);
    s.lat_cap = 20000000;
    s.lat_us = malloc(s.lat_cap * sizeof *s.lat_us);
    int threads = (int)(s.o.threads < s.o.connections ? s.o.threads : s.o.connections);
    struct worker *ws = calloc((size_t)threads, sizeof *ws);
    if (!s.lat_us || !ws) {
        fprintf(stderr, "argus sim: out of memory\n");
        return 1;
    }
    fprintf(stderr, "argus sim: %lld devices, %lld connections on %d threads, "
                    "batch %lld, %lld metrics, rate %s, %llds\n",
            (long long)s.o.devices, (long long)s.o.connections, threads,
            (long long)s.o.batch, (long long)s.o.metrics,
            s.o.rate ? "set" : "flat out", (long long)s.o.duration);
    s.t0_ns = core_time_mono_ns();
    int started = 0;
    for (; started < threads; started++)
        if (worker_init(&ws[started], &s, started, threads) != 0 ||
            pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]) != 0) {
            worker_fini(&ws[started]);
            fprintf(stderr, "argus sim: cannot start a load thread\n");
            break;
        }
    for (int i = 0; i < started; i++) {
        pthread_join(ws[i].thread, NULL);
        worker_fini(&ws[i]);
    }
    double secs = (double)(core_time_mono_ns() - s.t0_ns) / 1e9;
    size_t n = atomic_load(&s.nlat) < s.lat_cap ? atomic_load(&s.nlat) : s.lat_cap;
    qsort(s.lat_us, n, sizeof *s.lat_us, cmp_u64);
    printf("{\"seconds\":%.3f,\"sentMessages\":%llu,\"acceptedMessages\":%llu,"
           "\"acceptedPerSecond\":%.0f,\"requests\":%zu,\"status\":{\"202\":%llu,"
           "\"4xx\":%llu,\"429\":%llu,\"5xx\":%llu,\"errors\":%llu},"
           "\"latencyMs\":{\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"max\":%.3f}}\n",
           secs, (unsigned long long)s.sent_msgs, (unsigned long long)s.ok_msgs,
           (double)s.ok_msgs / secs, n, (unsigned long long)s.s202,
           (unsigned long long)s.s4xx, (unsigned long long)s.s429,
           (unsigned long long)s.s5xx, (unsigned long long)s.errors,
           pct(s.lat_us, n, 50), pct(s.lat_us, n, 95), pct(s.lat_us, n, 99),
           n ? (double)s.lat_us[n - 1] / 1000.0 : 0);
    fflush(stdout);
    if (s.record)
        fclose(s.record);
    pthread_mutex_destroy(&s.record_lock);
    free(s.lat_us);
    free(ws);
    free(s.devs);
    return s.s4xx || s.errors || started < threads ? 1 : 0;
}
