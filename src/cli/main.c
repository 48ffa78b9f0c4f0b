/*
 * The argus binary: one program, subcommands from a table.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifdef ARGUS_HAVE_JSONPATH
#include "jsonpath.h"
#endif
#ifdef ARGUS_HAVE_JSONSCHEMA
#include "jsonschema.h"
#endif
#ifdef ARGUS_HAVE_JSONATA
#include "jsonata.h"
#endif

static int cmd_version(int argc, char **argv)
{
    printf("argus %s\n", ARGUS_VERSION);
    return 0;
}

static const struct cli_command commands[] = {
    {"serve", cli_serve_main, "API, ingest and every pipeline stage in one process"},
    {"api", cli_api_main, "HTTP API and ingest; with an external --bus, no stages"},
    {"worker", cli_worker_main, "pipeline stages consuming from an external bus: --bus URL --stages LIST"},
    {"migrate", cli_migrate_main, "apply the store's migrations and exit"},
    {"org", cli_org_main, "manage organisations: org create NAME --admin-email E --admin-password P"},
    {"retention", cli_retention_main, "delete raw messages and points past their age: --raw-days N --points-days N"},
    {"routes", cli_routes_main, "print every HTTP route (METHOD PATH)"},
    {"sim", cli_sim_main, "device simulator and load generator over HTTP"},
#ifdef ARGUS_HAVE_JSONPATH
    {"jsonpath", jsonpath_cli_main, "evaluate an RFC 9535 JSONPath query: jsonpath QUERY [FILE]"},
#endif
#ifdef ARGUS_HAVE_JSONSCHEMA
    {"jsonschema", jsonschema_cli_main, "validate JSON against a JSON Schema: jsonschema SCHEMA [FILE]"},
#endif
#ifdef ARGUS_HAVE_JSONATA
    {"jsonata", jsonata_cli_main, "evaluate a JSONata expression: jsonata EXPR [FILE]"},
#endif
    {"version", cmd_version, "print the version"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: argus COMMAND [OPTIONS]\n\ncommands:\n");
    for (const struct cli_command *c = commands; c->name; c++)
        fprintf(f, "  %-12s %s\n", c->name, c->help);
    fprintf(f, "\n'argus COMMAND --help' lists a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version"))
        return cmd_version(0, NULL);
    if (cli_init() != 0)
        return 1;
    for (const struct cli_command *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name))
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "argus: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
