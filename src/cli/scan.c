/* Placeholder until the scan command lands; owned by its module's author. */
#include <stdio.h>
#include "cli/cli.h"

int sl_cmd_scan(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("sluice scan: not built yet\n", stderr);
    return 2;
}
