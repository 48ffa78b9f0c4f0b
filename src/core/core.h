/*
 * core: the pieces every other subsystem of Argus stands on — errors,
 * logging, time, identifiers, growable buffers and the metrics registry.
 *
 * Nothing here knows about HTTP, storage or the domain. All functions are
 * thread-safe unless a comment says otherwise.
 */
#ifndef ARGUS_CORE_H
#define ARGUS_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ errors
 * One error space for the whole program: 0 is success, every failure is
 * negative. Outcomes that are not failures (a row or no row, would block)
 * travel in out-parameters, never here.
 */
#define CORE_ERRNO_MAP(X)                                                   \
    X(NOMEM, -1, "out of memory")                                           \
    X(INVAL, -2, "invalid argument")                                        \
    X(IO, -3, "input/output error")                                         \
    X(NOTFOUND, -4, "not found")                                            \
    X(CONFLICT, -5, "conflicts with existing data")                         \
    X(CONSTRAINT, -6, "violates a constraint")                              \
    X(DB, -7, "database error")                                             \
    X(BUSY, -8, "resource busy")                                            \
    X(TIMEOUT, -9, "timed out")                                             \
    X(AUTH, -10, "authentication failed")                                   \
    X(PERM, -11, "permission denied")                                       \
    X(RANGE, -12, "value out of range")                                     \
    X(PARSE, -13, "parse error")                                            \
    X(UNSUPPORTED, -14, "not supported")                                    \
    X(TOOBIG, -15, "too large")                                             \
    X(OVERLOAD, -16, "overloaded")                                          \
    X(SHUTDOWN, -17, "shutting down")                                       \
    X(INTERNAL, -18, "internal error")

enum core_err {
    CORE_OK = 0,
#define CORE__ERR_ENUM(name, val, msg) CORE_E##name = (val),
    CORE_ERRNO_MAP(CORE__ERR_ENUM)
#undef CORE__ERR_ENUM
};

/* Human-readable message and symbolic name ("CORE_ENOMEM") of an error.
 * Never NULL; unknown codes give "unknown error". */
const char *core_strerror(int err);
const char *core_err_name(int err);

/* ----------------------------------------------------------------- logging
 * One line per event: "2026-11-23T12:00:00.123Z level=info sub=http msg".
 * Callers put structured fields in the message as key=value pairs.
 * The macros evaluate nothing when the level is off.
 */
enum core_log_level {
    CORE_LOG_ERROR = 0,
    CORE_LOG_WARN = 1,
    CORE_LOG_INFO = 2,
    CORE_LOG_DEBUG = 3,
};

extern int core_log_level_g;

void core_log_set_level(enum core_log_level level);
/* Parses "error", "warn", "info", "debug". Returns CORE_EINVAL otherwise. */
int core_log_level_parse(const char *s, enum core_log_level *out);
void core__log_write(enum core_log_level level, const char *sub,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define core_log(level, sub, ...)                                           \
    do {                                                                    \
        if ((int)(level) <= core_log_level_g)                               \
            core__log_write((level), (sub), __VA_ARGS__);                   \
    } while (0)
#define core_log_error(sub, ...) core_log(CORE_LOG_ERROR, sub, __VA_ARGS__)
#define core_log_warn(sub, ...) core_log(CORE_LOG_WARN, sub, __VA_ARGS__)
#define core_log_info(sub, ...) core_log(CORE_LOG_INFO, sub, __VA_ARGS__)
#define core_log_debug(sub, ...) core_log(CORE_LOG_DEBUG, sub, __VA_ARGS__)

/* -------------------------------------------------------------------- time */

/* Wall clock, milliseconds since the Unix epoch. */
int64_t core_time_now_ms(void);
/* Monotonic clock in nanoseconds, for durations. */
uint64_t core_time_mono_ns(void);

/* Formats epoch milliseconds as "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 chars + NUL).
 * out must hold CORE_TIME_ISO_LEN bytes. */
#define CORE_TIME_ISO_LEN 25
void core_time_format_iso(int64_t ms, char out[CORE_TIME_ISO_LEN]);
/* Parses an RFC 3339 date-time ("2026-11-23T12:00:00Z", fractional seconds
 * and numeric offsets allowed; a space instead of T accepted) into epoch
 * milliseconds. Returns CORE_EPARSE on anything else, CORE_ERANGE for
 * years outside 0001..9999. */
int core_time_parse_iso(const char *s, int64_t *out_ms);

/* --------------------------------------------------------------------- ids */

/* Initialises the random source; call once at start before any other core
 * function. Returns CORE_EINTERNAL if no secure random source exists. */
int core_init(void);

#define CORE_UUID_STR_LEN 37 /* 36 characters and the NUL */

/* A new UUIDv7 (RFC 9562): 48-bit millisecond timestamp, then random bits,
 * monotonic within a process even when the clock stands still. */
void core_uuid7(char out[CORE_UUID_STR_LEN]);
/* True when s is a UUID in canonical 8-4-4-4-12 hexadecimal form (either
 * case). */
bool core_uuid_valid(const char *s);
/* Lower-cases a valid UUID in place so that it compares equal in every
 * store. */
void core_uuid_normalize(char *s);

/* Cryptographically random bytes (libsodium). */
void core_random_bytes(void *buf, size_t len);
/* Encodes len bytes as lowercase hex into out (2*len+1 bytes). */
void core_hex_encode(const void *buf, size_t len, char *out);

/* ----------------------------------------------------------------- buffers
 * A growable byte string, always NUL-terminated. On allocation failure the
 * buffer remembers it (oom = true) and ignores further appends, so a
 * sequence of appends needs one check at the end.
 */
struct core_buf {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
};

void core_buf_init(struct core_buf *b);
void core_buf_fini(struct core_buf *b);
void core_buf_reset(struct core_buf *b);
void core_buf_append(struct core_buf *b, const void *data, size_t len);
void core_buf_puts(struct core_buf *b, const char *s);
void core_buf_putc(struct core_buf *b, char c);
void core_buf_printf(struct core_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void core_buf_vprintf(struct core_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included. */
void core_buf_json_string(struct core_buf *b, const char *s);
/* Takes the data out of the buffer: the caller frees it with free(); the
 * buffer is left empty. Returns NULL if an allocation failed earlier. */
char *core_buf_steal(struct core_buf *b);

/* ----------------------------------------------------------------- metrics
 * A process-wide registry of counters, gauges and histograms rendered in
 * the Prometheus text format. A metric family is registered once (at
 * start) with its label names; each distinct label-value tuple is a series
 * created on first use. Updates are lock-free atomics once the series
 * exists.
 */
enum core_metric_kind {
    CORE_METRIC_COUNTER,
    CORE_METRIC_GAUGE,
    CORE_METRIC_HISTOGRAM,
};

struct core_metric;        /* a family */
struct core_metric_series; /* one label-value tuple of a family */

/* Registers a family; labels is a NULL-terminated list of label names (or
 * NULL). buckets (histograms only) is an ascending list of upper bounds of
 * nbuckets entries; NULL selects latency buckets in seconds. Registering
 * the same name twice returns the existing family. Returns NULL on
 * allocation failure. */
struct core_metric *core_metric_register(const char *name, const char *help,
                                         enum core_metric_kind kind,
                                         const char *const *labels,
                                         const double *buckets,
                                         size_t nbuckets);
/* The series for the given label values (as many as the family's labels).
 * Returns NULL on allocation failure; updating NULL is a no-op. */
struct core_metric_series *core_metric_series(struct core_metric *m, ...);
void core_metric_add(struct core_metric_series *s, double v);
void core_metric_set(struct core_metric_series *s, double v);
void core_metric_observe(struct core_metric_series *s, double v);
/* Renders every family; the caller owns b. */
void core_metrics_render(struct core_buf *b);
/* Drops every family (for tests and shutdown). */
void core_metrics_reset(void);

/* ----------------------------------------------------------------- options
 * Command-line and environment options from one table: parsing, range
 * checks, defaults and --help all come from it. "--name=value" and
 * "--name value" are accepted; booleans also as "--name" and "--no-name".
 * Each option may also come from the environment as ARGUS_<NAME> (upper
 * case, '-' → '_'); the command line wins.
 */
enum core_opt_type { CORE_OPT_STRING, CORE_OPT_INT, CORE_OPT_BOOL };

struct core_option {
    const char *name;
    enum core_opt_type type;
    size_t offset;    /* into the caller's struct: const char *, int64_t or bool */
    const char *def;  /* default as text; NULL = none */
    int64_t min, max; /* integers */
    const char *help;
};

/* Fills base from defaults, environment and argv (which must hold only
 * options: positional arguments stop the parse and their index is
 * returned in *next). On a bad option writes a message to err (size
 * errlen) and returns CORE_EINVAL. String values point into argv/environ
 * or the table. */
int core_options_parse(const struct core_option *opts, void *base, int argc,
                       char **argv, int *next, char *err, size_t errlen);
/* Prints the table as help text. */
void core_options_help(const struct core_option *opts, void *file);

#endif
