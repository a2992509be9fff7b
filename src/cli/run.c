#include <stdio.h>
#include "cli/cli.h"

int sl_cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("sluice run: not built yet\n", stderr);
    return 2;
}
