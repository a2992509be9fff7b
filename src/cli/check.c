/* Placeholder until the check command lands; owned by its module's author. */
#include <stdio.h>
#include "cli/cli.h"

int sl_cmd_check(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("sluice check: not built yet\n", stderr);
    return 2;
}
