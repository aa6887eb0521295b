/* cmd_plugin_test.c: pipit plugin-test: run one plugin alone and print what it emits. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "commands.h"
#include "errors.h"
#include "harness.h"
#include "log.h"
#include "options.h"
#include "plugin_sig.h"
#include "record.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: pipit plugin-test PLUGIN.so [key=value...] [-n|--runs RUNS]\n"
        "                         [-i|--interval INTERVAL] [-t|--timeout TIMEOUT]\n"
        "                         [-l|--log-level LEVEL]\n"
        "                         [--require-signature --trusted-key PUB...]\n"
        "\n"
        "Load PLUGIN.so with the loader's checks, apply the options, run init(),\n"
        "then:\n"
        "  collector: collect() RUNS times (default 1), INTERVAL apart (default 1s),\n"
        "             printing every record as one JSON line on stdout;\n"
        "  output:    read JSON records from stdin and flush() them, one batch per kind;\n"
        "  action:    act() once, within TIMEOUT (default none), then print its\n"
        "             results as one JSON object on stdout.\n"
        "With --require-signature the plugin loads only with a good PLUGIN.so.sig\n"
        "(pipit sign-plugin) by a key given with --trusted-key FILE (repeatable),\n"
        "as with plugins.require_signature in the agent.\n"
        "Logs go to stderr. Exit 0 when every call succeeded, 1 otherwise.\n");
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Output plugins: batch stdin's records by kind and flush each batch. */
static int feed_output(struct harness *h)
{
    struct buf per_kind[PIPIT_RECORD_KIND_MAX + 1] = { BUF_INIT };
    uint32_t count[PIPIT_RECORD_KIND_MAX + 1] = { 0 };
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int status = 0;

    while ((n = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        json_error_t jerr;
        json_t *j = json_loadb(line, (size_t)n, 0, &jerr);
        const char *kind = j ? json_string_value(json_object_get(j, "kind")) : NULL;
        int k = kind ? record_kind_parse(kind) : 0;
        json_decref(j);
        if (!k) {
            fprintf(stderr, "stdin:%zu: not a pipit record (needs a \"kind\")\n", lineno);
            status = 1;
            continue;
        }
        buf_append(&per_kind[k], line, (size_t)n);
        if (line[n - 1] != '\n')
            buf_putc(&per_kind[k], '\n');
        count[k]++;
    }
    free(line);
    for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++) {
        if (!count[k])
            continue;
        int r = harness_flush(h, k, per_kind[k].data, per_kind[k].len, count[k]);
        fprintf(stderr, "flush of %u %s records: %s\n", count[k], record_kind_name(k),
                pipit_strerror(r));
        if (r != PIPIT_OK)
            status = 1;
        buf_free(&per_kind[k]);
    }
    return status;
}

int cmd_plugin_test(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "runs", required_argument, NULL, 'n' },
        { "interval", required_argument, NULL, 'i' },
        { "timeout", required_argument, NULL, 't' },
        { "log-level", required_argument, NULL, 'l' },
        { "require-signature", no_argument, NULL, 'S' },
        { "trusted-key", required_argument, NULL, 'K' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *keys[16];               /* --trusted-key files */
    size_t nkeys = 0;
    bool require_sig = false;
    char why[1024];
    long runs = 1;
    int64_t interval_ms = 1000, timeout_ms = 0;
    int level = PIPIT_LOG_INFO, c, status = 0;
    char *end;

    optind = 1;
    while ((c = getopt_long(argc, argv, "n:i:t:l:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'S': require_sig = true; break;
        case 'K':
            if (nkeys == sizeof keys / sizeof keys[0]) {
                fprintf(stderr, "plugin-test: at most %zu --trusted-key files\n", sizeof keys /
                        sizeof keys[0]);
                return 2;
            }
            keys[nkeys++] = optarg;
            break;
        case 'n':
            runs = strtol(optarg, &end, 10);
            if (*end || runs < 1 || runs > 1000000) {
                fprintf(stderr, "plugin-test: -n wants a count from 1 to 1000000\n");
                return 2;
            }
            break;
        case 'i':
            if (opt_parse_duration(optarg, &interval_ms) != PIPIT_OK) {
                fprintf(stderr, "plugin-test: -i wants a duration such as 500ms or 2s\n");
                return 2;
            }
            break;
        case 't':
            if (opt_parse_duration(optarg, &timeout_ms) != PIPIT_OK || timeout_ms <= 0) {
                fprintf(stderr, "plugin-test: -t wants a duration such as 500ms or 2s\n");
                return 2;
            }
            break;
        case 'l':
            if ((level = log_level_parse(optarg)) < 0) {
                fprintf(stderr, "plugin-test: unknown log level \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    /* getopt moved the options before the operands: PLUGIN.so then key=value. */
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (require_sig != (nkeys > 0)) {
        fprintf(stderr, "plugin-test: --require-signature and --trusted-key go together\n");
        return 2;
    }
    if (require_sig && plugin_sig_require_files(keys, nkeys, why, sizeof why) != PIPIT_OK) {
        fprintf(stderr, "plugin-test: %s\n", why);
        return 1;
    }

    const char *path = argv[optind++];
    char **kv = argv + optind;
    int nkv = argc - optind;
    log_setup(stderr, LOG_FMT_LOGFMT, level);

    struct harness h;
    if (harness_open(&h, path, kv, nkv, stderr) != PIPIT_OK)
        return 1;
    const struct pipit_plugin *d = &h.ins->plugin->desc;
    int r = harness_init(&h);
    if (r != PIPIT_OK) {
        fprintf(stderr, "%s: init failed: %s\n", path, pipit_strerror(r));
        harness_close(&h);
        return 1;
    }
    if (h.ins->role == PIPIT_OUTPUT) {
        status = feed_output(&h);
    } else if (h.ins->role == PIPIT_ACTION) {
        if (timeout_ms)
            h.deadline_ms = (int64_t)(uv_hrtime() / 1000000) + timeout_ms;
        r = harness_run(&h);
        if (h.out.len)
            fwrite(h.out.data, 1, h.out.len, stdout);
        json_dumpf(h.results, stdout, JSON_COMPACT | JSON_SORT_KEYS);
        fputc('\n', stdout);
        status = r != PIPIT_OK;
        fprintf(stderr, "%s: act: %s\n", d->name, pipit_strerror(r));
    } else {
        uint32_t errors = 0;
        for (long i = 0; i < runs; i++) {
            if (i)
                sleep_ms(interval_ms);
            size_t before = h.out.len;
            r = d->collect ? harness_run(&h) : PIPIT_OK;
            if (!d->collect)
                uv_run(&h.loop, UV_RUN_NOWAIT);
            if (r != PIPIT_OK) {
                errors++;
                fprintf(stderr, "%s: collect %ld: %s\n", d->name, i + 1, pipit_strerror(r));
            }
            if (h.out.len > before)
                fwrite(h.out.data + before, 1, h.out.len - before, stdout);
            fflush(stdout);
        }
        fprintf(stderr, "%s %s: %ld runs, %u records, %u errors\n", d->name,
                d->version, runs, h.records, errors);
        status = errors > 0;
    }
    harness_close(&h);
    return status;
}
