#include "pg_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int test_pg_script(const char *verb, const char *dir, char *line, size_t n)
{
    const char *src = getenv("ARGUS_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "ARGUS_SOURCE_DIR is not set (run under ctest) and "
                        "ARGUS_TEST_PG_URL is not set\n");
        return -1;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/scripts/pg-test.sh' %s '%s'", src, verb,
             dir);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    if (line && n > 0) {
        line[0] = '\0';
        if (fgets(line, (int)n, p))
            line[strcspn(line, "\r\n")] = '\0';
    }
    int st = pclose(p);
    if (st != 0) {
        fprintf(stderr, "scripts/pg-test.sh %s failed (status %d); PostgreSQL "
                        "server binaries are needed for this test, or set "
                        "ARGUS_TEST_PG_URL\n",
                verb, st);
        return -1;
    }
    return 0;
}
