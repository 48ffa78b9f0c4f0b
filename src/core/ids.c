#include "core.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

int core_init(void)
{
    return sodium_init() < 0 ? CORE_EINTERNAL : CORE_OK;
}

void core_random_bytes(void *buf, size_t len)
{
    randombytes_buf(buf, len);
}

void core_hex_encode(const void *buf, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * len] = '\0';
}

/* Monotonicity within the process: when the clock has not advanced since
 * the last id, the 12-bit rand_a field acts as a counter (RFC 9562 §6.2,
 * method 1), and when it overflows the timestamp is nudged forward. */
static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t uuid_last_ms;
static unsigned uuid_seq;

/* Random bytes for ids come from a per-thread pool refilled from libsodium
 * (the kernel's CSPRNG) 640 bytes at a time: one getrandom() per 64 ids
 * instead of one per id, which was a tenth of ingest's CPU with batches.
 * A forked child starts with an empty pool (the generation moves), so it
 * never repeats its parent's bytes. */
#define ID_POOL 640
static unsigned id_generation;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;
static void id_forked(void)
{
    id_generation++;
}
static void id_atfork(void)
{
    pthread_atfork(NULL, NULL, id_forked);
}

static void id_random(unsigned char *out, size_t len)
{
    static _Thread_local unsigned char pool[ID_POOL];
    static _Thread_local size_t left;
    static _Thread_local unsigned gen;
    pthread_once(&id_once, id_atfork);
    if (gen != id_generation) {
        gen = id_generation;
        left = 0;
    }
    if (left < len) {
        randombytes_buf(pool, sizeof pool);
        left = sizeof pool;
    }
    left -= len;
    memcpy(out, pool + left, len);
    sodium_memzero(pool + left, len);
}

void core_uuid7(char out[CORE_UUID_STR_LEN])
{
    unsigned char b[16];
    id_random(b + 6, 10); /* the first 6 bytes are the time */
    int64_t ms = core_time_now_ms();
    pthread_mutex_lock(&uuid_lock);
    if (ms <= uuid_last_ms) {
        ms = uuid_last_ms;
        if (++uuid_seq > 0xfff) {
            ms++;
            uuid_seq = b[6] & 0x7f;
        }
    } else {
        uuid_seq = ((unsigned)(b[6] & 0x07) << 8) | b[7];
    }
    uuid_last_ms = ms;
    unsigned seq = uuid_seq;
    pthread_mutex_unlock(&uuid_lock);

    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | ((seq >> 8) & 0x0f));
    b[7] = (unsigned char)(seq & 0xff);
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));

    char hex[33];
    core_hex_encode(b, 16, hex);
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';
}

/* Hex digits by byte; 2 for upper-case letters (lowered by normalize).
 * A table, not isxdigit/tolower: ids are checked several times per message
 * on the hot path, and the ctype calls showed in profiles. */
static const unsigned char hex_class[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
    ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1,
    ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['A'] = 2, ['B'] = 2,
    ['C'] = 2, ['D'] = 2, ['E'] = 2, ['F'] = 2};

bool core_uuid_valid(const char *s)
{
    if (!s)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!hex_class[(unsigned char)s[i]]) {
            return false;
        }
    }
    return s[36] == '\0';
}

void core_uuid_normalize(char *s)
{
    for (; *s; s++)
        if (hex_class[(unsigned char)*s] == 2)
            *s = (char)(*s + ('a' - 'A'));
}
