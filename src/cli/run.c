/* `sluice run`: start the gateway. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "proxy/proxy.h"

static const char run_usage[] =
    "Usage: sluice run [-c FILE]\n"
    "\n"
    "Start the gateway. Agents use it as their HTTP(S) proxy:\n"
    "  export HTTP_PROXY=http://127.0.0.1:8888 HTTPS_PROXY=http://127.0.0.1:8888\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   YAML config (see docs/configuration.md). Without it sluice\n"
    "                      runs the built-in default policy on 127.0.0.1:8888:\n"
    "                      every public host allowed, private and special addresses\n"
    "                      refused, audit events on stdout.\n"
    "      --print-default print the built-in default config and exit\n"
    "  -h, --help          this text\n"
    "\n"
    "Signals: SIGHUP reloads the config (a bad file is rejected and the running one\n"
    "kept; file changes also reload when `watch: true`); SIGTERM or SIGINT drain\n"
    "in-flight requests (up to timeouts.drain) and exit 0.\n";

int sl_cmd_run(int argc, char **argv)
{
    const char *path = NULL;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"print-default", no_argument, NULL, 'P'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'P':
            fputs(sl_config_default_yaml, stdout);
            return 0;
        case 'h':
            fputs(run_usage, stdout);
            return 0;
        default:
            fputs(run_usage, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sluice run: unexpected argument '%s'\n\n%s", argv[optind], run_usage);
        return 2;
    }
    sl_config_t *cfg;
    if (path) {
        sl_buf_t err = {0};
        cfg = sl_config_load_file(path, &err);
        if (cfg == NULL) {
            fprintf(stderr, "sluice: invalid config, not starting:\n%s", sl_buf_cstr(&err));
            sl_buf_free(&err);
            return 1;
        }
    } else {
        cfg = sl_config_default();
    }
    return sl_proxy_run(path, cfg);
}
