#include "core.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int core_log_level_g = CORE_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void core_log_set_level(enum core_log_level level)
{
    core_log_level_g = (int)level;
}

int core_log_level_parse(const char *s, enum core_log_level *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum core_log_level)i;
            return CORE_OK;
        }
    }
    return CORE_EINVAL;
}

/* Writes the whole line with one fwrite so that lines of concurrent threads
 * never interleave. */
void core__log_write(enum core_log_level level, const char *sub,
                     const char *fmt, ...)
{
    char line[2048];
    char ts[CORE_TIME_ISO_LEN];
    core_time_format_iso(core_time_now_ms(), ts);
    int n = snprintf(line, sizeof line, "%s level=%s sub=%s ", ts,
                     level_names[level], sub);
    if (n < 0)
        return;
    size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + used, sizeof line - used, fmt, ap);
    va_end(ap);
    if (m > 0)
        used += (size_t)m < sizeof line - used ? (size_t)m
                                                : sizeof line - used - 1;
    if (used >= sizeof line - 1)
        used = sizeof line - 2;
    line[used++] = '\n';
    fwrite(line, 1, used, stderr);
}
