/* cmd_check.c: pipit check: validate a configuration and list every error. */
#include <getopt.h>
#include <stdio.h>
#include "commands.h"
#include "diag.h"
#include "log.h"
#include "settings.h"

#ifndef PIPIT_SYSCONF_DIR
#define PIPIT_SYSCONF_DIR "/etc/pipit"
#endif

/*
 * Load the file exactly as pipitd would (plugins included) and print
 * "file:line: key: message" for every problem. Exit 0 when valid, 1 when
 * not, 2 on a usage error. Values from ${...} are never printed.
 */
int cmd_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "plugin-dir", required_argument, NULL, 'P' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = PIPIT_SYSCONF_DIR "/pipit.yaml", *plugin_dir = NULL;
    bool quiet = false;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'P': plugin_dir = optarg; break;
        case 'q': quiet = true; break;
        case 'h':
            printf("usage: pipit check [-c|--config FILE] [--plugin-dir DIR] [-q|--quiet]\n"
                   "Validate FILE as pipitd would; exit 0 if valid, 1 if not.\n");
            return 0;
        default:
            return 2;
        }
    }
    if (optind < argc)
        path = argv[optind];
    log_setup(stderr, LOG_FMT_LOGFMT, PIPIT_LOG_WARN);

    struct diag d;
    diag_init(&d);
    struct agent_conf *conf = settings_load(path, plugin_dir, &d);
    if (!conf) {
        diag_print(&d, stdout);
        printf("%s: invalid, %zu error%s\n", path, d.count + d.dropped,
               d.count + d.dropped == 1 ? "" : "s");
        diag_free(&d);
        return 1;
    }
    if (!quiet)
        printf("%s: valid (%zu input%s, %zu output%s)\n", path, conf->ninputs,
               conf->ninputs == 1 ? "" : "s", conf->noutputs,
               conf->noutputs == 1 ? "" : "s");
    settings_free(conf);
    diag_free(&d);
    return 0;
}
