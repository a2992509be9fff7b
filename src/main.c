/* sluice: the egress gateway for AI agents. CLI dispatch only. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char usage[] =
    "sluice " SLUICE_VERSION ": the egress gateway for AI agents\n"
    "\n"
    "Usage: sluice <command> [options]\n"
    "\n"
    "Commands:\n"
    "  run   [-c FILE]    start the gateway (built-in default policy without -c)\n"
    "  check -c FILE      validate a config file and exit (0 valid, 1 invalid)\n"
    "  scan  [FILE...]    scan text or a JSON envelope for secrets and injection\n"
    "  ca    init|show    create or inspect the TLS interception CA\n"
    "  version            print the version\n"
    "\n"
    "Run `sluice <command> --help` for the options of one command.\n"
    "Docs: README.md, docs/configuration.md, docs/architecture.md\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return sl_cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return sl_cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "scan") == 0)
        return sl_cmd_scan(argc - 1, argv + 1);
    if (strcmp(cmd, "ca") == 0)
        return sl_cmd_ca(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        puts("sluice " SLUICE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "sluice: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
