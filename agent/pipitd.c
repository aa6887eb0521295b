/* pipitd.c: the pipit daemon: read the configuration, run until stopped. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "diag.h"
#include "log.h"
#include "plugin_host.h"
#include "runtime.h"
#include "settings.h"

#ifndef PIPIT_SYSCONF_DIR
#define PIPIT_SYSCONF_DIR "/etc/pipit"
#endif

static void usage(FILE *f)
{
    fprintf(f,
        "usage: pipitd [-c FILE] [--plugin-dir DIR] [--check] [--version]\n"
        "\n"
        "  -c, --config FILE    configuration (default " PIPIT_SYSCONF_DIR "/pipit.yaml)\n"
        "      --plugin-dir DIR load plugins from DIR instead of agent.plugin_dir\n"
        "  -t, --check          validate the configuration and exit (0 valid, 1 not)\n"
        "  -V, --version        print the version and exit\n"
        "  -h, --help           print this help\n"
        "\n"
        "Signals: SIGTERM/SIGINT stop after flushing what is in flight;\n"
        "SIGHUP reloads the configuration (an invalid one is refused).\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "plugin-dir", required_argument, NULL, 'P' },
        { "check", no_argument, NULL, 't' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct runtime_options opt = { PIPIT_SYSCONF_DIR "/pipit.yaml", NULL };
    bool check_only = false;
    int c;

    if (argc == 2 && strcmp(argv[1], "--plugin-host") == 0)
        return plugin_host_main();      /* an input with isolation: process */
    while ((c = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': opt.config_path = optarg; break;
        case 'P': opt.plugin_dir = optarg; break;
        case 't': check_only = true; break;
        case 'V': printf("pipitd %s\n", PACKAGE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pipitd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    struct diag d;
    diag_init(&d);
    struct agent_conf *conf = settings_load(opt.config_path, opt.plugin_dir, &d);
    if (!conf) {
        diag_print(&d, stderr);
        fprintf(stderr, "pipitd: %s: %zu errors; not starting\n", opt.config_path,
                d.count + d.dropped);
        diag_free(&d);
        return 1;
    }
    diag_free(&d);
    if (check_only) {
        printf("%s: valid\n", opt.config_path);
        settings_free(conf);
        return 0;
    }
    return runtime_run(conf, &opt);
}
