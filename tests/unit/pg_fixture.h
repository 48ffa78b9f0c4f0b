/* A private PostgreSQL for unit tests, through scripts/pg-test.sh. */
#ifndef ARGUS_TEST_PG_FIXTURE_H
#define ARGUS_TEST_PG_FIXTURE_H

#include <stddef.h>

/* Runs `scripts/pg-test.sh VERB DIR` (start, stop, restart); the first line
 * it prints (start: the server's URL) goes to line when given. The script
 * is found through $ARGUS_SOURCE_DIR, which ctest sets. Returns 0, or -1
 * after explaining on stderr what is missing. */
int test_pg_script(const char *verb, const char *dir, char *line, size_t n);

#endif
