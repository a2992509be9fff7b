/* `sluice check -c FILE`: validate a config file without starting anything. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "policy/policy.h"

static const char check_usage[] =
    "Usage: sluice check -c FILE\n"
    "\n"
    "Validate a sluice config file and exit, without starting the gateway.\n"
    "Every problem is printed on stderr as FILE:LINE:COL: what is wrong; what to do.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   the config to check (\"-\" reads stdin)\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 valid, 1 invalid, 2 usage error.\n"
    "The keys and their defaults are in docs/configuration.md.\n";

int sl_cmd_check(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(check_usage, stdout);
            return 0;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sluice check: %s needs a file name\n\n%s", a, check_usage);
                return 2;
            }
            if (path != NULL) {
                fputs("sluice check: give -c only once\n", stderr);
                return 2;
            }
            path = argv[++i];
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0 && path == NULL) {
            path = a + 9;
            continue;
        }
        fprintf(stderr, "sluice check: unexpected argument '%s'\n\n%s", a, check_usage);
        return 2;
    }
    if (path == NULL || *path == '\0') {
        fprintf(stderr, "sluice check: which file? use -c FILE\n\n%s", check_usage);
        return 2;
    }
    sl_buf_t err = {0};
    sl_config_t *cfg = sl_config_load_file(path, &err);
    if (cfg == NULL) {
        fputs(sl_buf_cstr(&err), stderr);
        sl_buf_free(&err);
        return 1;
    }
    /* The CA files too, with the checks `sluice run` applies (key mode). */
    if (sl_policy_check_cas(cfg, &err) != 0) {
        fputs(sl_buf_cstr(&err), stderr);
        sl_buf_free(&err);
        sl_config_free(cfg);
        return 1;
    }
    sl_buf_t summary = {0};
    sl_config_summary(cfg, &summary);
    printf("%s: ok\n%s\n", strcmp(path, "-") == 0 ? "<stdin>" : path, sl_buf_cstr(&summary));
    sl_buf_free(&summary);
    sl_buf_free(&err);
    sl_config_free(cfg);
    return 0;
}
