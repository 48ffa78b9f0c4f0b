/*
 * JSONata evaluations per second: each expression of jsonata_exprs.txt is
 * compiled once and evaluated repeatedly against jsonata_input.json (parsed
 * once), as a pipeline stage would. Prints one line per expression:
 * "evals_per_second<TAB>expression", the median of RUNS runs.
 *
 * usage: jsonata_bench EXPRS_FILE INPUT_FILE [SECONDS_PER_RUN] [RUNS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonata.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double run_once(const struct jsonata_expr *x, const json_t *input,
                       double seconds)
{
    uint64_t start = core_time_mono_ns();
    uint64_t limit = start + (uint64_t)(seconds * 1e9);
    long n = 0;
    uint64_t now;
    do {
        for (int i = 0; i < 256; i++) {
            json_t *r = NULL;
            if (jsonata_evaluate(x, input, NULL, NULL, &r, NULL) != 0) {
                fprintf(stderr, "evaluation failed\n");
                exit(1);
            }
            json_decref(r);
        }
        n += 256;
        now = core_time_mono_ns();
    } while (now < limit);
    return (double)n / ((double)(now - start) / 1e9);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s EXPRS_FILE INPUT_FILE [SECONDS] [RUNS]\n", argv[0]);
        return 2;
    }
    double seconds = argc > 3 ? atof(argv[3]) : 0.5;
    int runs = argc > 4 ? atoi(argv[4]) : 5;
    if (runs < 1 || runs > 99)
        runs = 5;
    json_error_t jerr;
    json_t *input = json_load_file(argv[2], 0, &jerr);
    FILE *f = fopen(argv[1], "r");
    if (!input || !f) {
        fprintf(stderr, "cannot read inputs\n");
        return 1;
    }
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        struct jsonata_expr *x;
        struct jsonata_error err;
        if (jsonata_compile(line, &x, &err) != 0) {
            fprintf(stderr, "%s: %s %s\n", line, err.code, err.message);
            return 1;
        }
        double rates[99];
        for (int r = 0; r < runs; r++)
            rates[r] = run_once(x, input, seconds);
        qsort(rates, (size_t)runs, sizeof(double), cmp_double);
        printf("%.0f\t%s\n", rates[runs / 2], line);
        fflush(stdout);
        jsonata_destroy(x);
    }
    fclose(f);
    json_decref(input);
    return 0;
}
