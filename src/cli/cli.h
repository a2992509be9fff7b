/* Subcommands of the sluice binary. Each returns the process exit status. */
#ifndef SLUICE_CLI_CLI_H
#define SLUICE_CLI_CLI_H

int sl_cmd_run(int argc, char **argv);   /* src/cli/run.c */
int sl_cmd_check(int argc, char **argv); /* src/cli/check.c */
int sl_cmd_scan(int argc, char **argv);  /* src/cli/scan.c */
int sl_cmd_ca(int argc, char **argv);    /* src/cli/ca.c */

#endif
