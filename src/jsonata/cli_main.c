/* A standalone `jsonata` binary for development; argus wires
 * jsonata_cli_main into its own subcommands. */
#include "jsonata.h"

int main(int argc, char **argv)
{
    return jsonata_cli_main(argc, argv);
}
