/*
 * Bus throughput: publishes N messages (200-byte payloads over 1,000 keys)
 * in batches of 100, then consumes and acknowledges them all with one
 * consumer, in batches of 100; prints messages per second for each half.
 *
 * Usage: bus_bench URL [N]     (bench/bus.sh starts the servers)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "core.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bus_bench URL [N]\n");
        return 2;
    }
    long n = argc > 2 ? atol(argv[2]) : 20000;
    if (core_init() != 0 || n < 100)
        return 1;
    core_log_set_level(CORE_LOG_WARN);
    struct bus_config cfg;
    bus_config_init(&cfg);
    cfg.url = argv[1];
    struct bus *bus;
    int err = bus_open(&cfg, &bus);
    if (err) {
        fprintf(stderr, "bus_open(%s): %s\n", argv[1], core_strerror(err));
        return 1;
    }
    char stream[64], hex[9];
    unsigned char r[4];
    core_random_bytes(r, sizeof r);
    core_hex_encode(r, sizeof r, hex);
    snprintf(stream, sizeof stream, "bench.%s", hex);
    struct bus_consumer *c;
    err = bus_consumer_create(bus, stream, "bench", "c1", &c);
    if (err) {
        fprintf(stderr, "consumer: %s\n", core_strerror(err));
        return 1;
    }

    char payload[200];
    memset(payload, 'x', sizeof payload);
    char keys[100][16];
    struct bus_pub batch[100];
    uint64_t t0 = core_time_mono_ns();
    for (long i = 0; i < n; i += 100) {
        for (int k = 0; k < 100; k++) {
            snprintf(keys[k], sizeof keys[k], "dev-%ld", (i + k) % 1000);
            batch[k] = (struct bus_pub){keys[k], strlen(keys[k]), payload,
                                        sizeof payload, 1};
        }
        err = bus_stream_publish_batch(bus, stream, batch, 100);
        if (err) {
            fprintf(stderr, "publish: %s\n", core_strerror(err));
            return 1;
        }
    }
    uint64_t t1 = core_time_mono_ns();
    long got = 0;
    while (got < n) {
        struct bus_msg m[100];
        size_t k;
        err = bus_consumer_consume(c, m, 100, 1000, &k);
        if (!err)
            err = bus_consumer_ack(c, m, k);
        if (err) {
            fprintf(stderr, "consume: %s\n", core_strerror(err));
            return 1;
        }
        got += (long)k;
    }
    uint64_t t2 = core_time_mono_ns();
    printf("bus %-6s publish %9.0f msg/s   consume+ack %9.0f msg/s   "
           "(%ld messages of 200 B, batches of 100)\n",
           bus_backend_name(bus), n / ((double)(t1 - t0) / 1e9),
           n / ((double)(t2 - t1) / 1e9), n);
    bus_consumer_destroy(c);
    bus_close(bus);
    return 0;
}
