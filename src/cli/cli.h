/* The argus command-line front end. */
#ifndef ARGUS_CLI_H
#define ARGUS_CLI_H

struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command's name */
    const char *help;
};

/* Process-wide initialisation (random source, logging level). */
int cli_init(void);

int cli_serve_main(int argc, char **argv);
int cli_api_main(int argc, char **argv);
int cli_worker_main(int argc, char **argv);
int cli_migrate_main(int argc, char **argv);
int cli_org_main(int argc, char **argv);
int cli_routes_main(int argc, char **argv);
int cli_sim_main(int argc, char **argv);
int cli_retention_main(int argc, char **argv);

struct db;
/* Opens and migrates the store at url; prints why not and returns non-zero
 * on failure. */
int cli_open_store(const char *url, struct db **db);

#endif
