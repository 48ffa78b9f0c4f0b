#include "core.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_value(const struct core_option *o, void *base, const char *v,
                     char *err, size_t errlen, const char *from)
{
    char *field = (char *)base + o->offset;
    switch (o->type) {
    case CORE_OPT_STRING:
        *(const char **)field = v;
        return CORE_OK;
    case CORE_OPT_INT: {
        char *end;
        errno = 0;
        long long n = v ? strtoll(v, &end, 10) : 0;
        if (!v || !*v || errno || *end || n < o->min || n > o->max) {
            snprintf(err, errlen, "%s: --%s must be an integer from %lld to %lld",
                     from, o->name, (long long)o->min, (long long)o->max);
            return CORE_EINVAL;
        }
        *(int64_t *)field = n;
        return CORE_OK;
    }
    case CORE_OPT_BOOL:
        if (!v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) {
            *(bool *)field = true;
        } else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) {
            *(bool *)field = false;
        } else {
            snprintf(err, errlen, "%s: --%s must be true or false", from,
                     o->name);
            return CORE_EINVAL;
        }
        return CORE_OK;
    }
    return CORE_EINVAL;
}

static const struct core_option *find(const struct core_option *opts,
                                      const char *name, size_t len)
{
    for (const struct core_option *o = opts; o->name; o++)
        if (strlen(o->name) == len && memcmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

int core_options_parse(const struct core_option *opts, void *base, int argc,
                       char **argv, int *next, char *err, size_t errlen)
{
    int rc;
    for (const struct core_option *o = opts; o->name; o++) {
        if (o->def && (rc = set_value(o, base, o->def, err, errlen, "default")))
            return rc;
        char env[96] = "ARGUS_";
        size_t j = 6;
        for (const char *c = o->name; *c && j + 1 < sizeof env; c++)
            env[j++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
        env[j] = '\0';
        const char *v = getenv(env);
        if (v && (rc = set_value(o, base, v, err, errlen, env)))
            return rc;
    }
    int i = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
            break;
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct core_option *o = find(opts, name, len);
        bool negated = false;
        if (!o && len > 3 && strncmp(name, "no-", 3) == 0) {
            o = find(opts, name + 3, len - 3);
            negated = o && o->type == CORE_OPT_BOOL && !eq;
            if (!negated)
                o = NULL;
        }
        if (!o) {
            snprintf(err, errlen, "unknown option --%.*s", (int)len, name);
            return CORE_EINVAL;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (negated) {
            v = "false";
        } else if (!v && o->type != CORE_OPT_BOOL) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value", o->name);
                return CORE_EINVAL;
            }
            v = argv[++i];
        }
        if ((rc = set_value(o, base, v, err, errlen, "command line")))
            return rc;
    }
    if (next)
        *next = i;
    return CORE_OK;
}

void core_options_help(const struct core_option *opts, void *file)
{
    FILE *f = file;
    for (const struct core_option *o = opts; o->name; o++) {
        char head[64];
        snprintf(head, sizeof head, "--%s%s", o->name,
                 o->type == CORE_OPT_BOOL  ? ""
                 : o->type == CORE_OPT_INT ? " N"
                                           : " VALUE");
        fprintf(f, "  %-28s %s", head, o->help);
        if (o->def && *o->def)
            fprintf(f, " (default %s)", o->def);
        fputc('\n', f);
    }
}
