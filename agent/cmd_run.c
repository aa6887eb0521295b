/* cmd_run.c: pipit run: run a deployment plan on this host, with live progress, no Kafka needed. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "commands.h"
#include "errors.h"
#include "instance.h"
#include "loader.h"
#include "log.h"
#include "options.h"
#include "plan.h"
#include "plan_run.h"
#include "plugin_sig.h"

#ifndef PIPIT_PLUGIN_DIR
#define PIPIT_PLUGIN_DIR "/usr/local/lib/pipit/plugins"
#endif
#ifndef PIPIT_STATE_DIR
#define PIPIT_STATE_DIR "/var/lib/pipit"
#endif

/* Exit statuses, as documented in --help and docs/deployments.md. */
enum { RUN_EXIT_OK = 0, RUN_EXIT_FAILED = 1, RUN_EXIT_USAGE = 2, RUN_EXIT_INTERRUPTED = 3,
       RUN_EXIT_ERROR = 4 };

static atomic_bool run_cancel;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&run_cancel, true);
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: pipit run PLAN.yaml [--var NAME=VALUE]... [--dry-run] [--resume]\n"
        "                 [--state-dir DIR] [--plugin-dir DIR] [--events FILE]\n"
        "                 [-q|--quiet] [-l|--log-level LEVEL]\n"
        "                 [--require-signature --trusted-key PUB...]\n"
        "\n"
        "Run the steps of PLAN.yaml on this host through the action plugins, each\n"
        "state change journaled under DIR/runs/ first. A failed step rolls back the\n"
        "steps done before it, newest first. A run cut short (crash, SIGKILL, or\n"
        "SIGINT/SIGTERM here) is resumed by running the same plan again.\n"
        "\n"
        "  --var NAME=VALUE  set a variable the plan declares (repeatable)\n"
        "  --dry-run         check the plan and every step's options, print the steps\n"
        "  --resume          finish an unfinished run of another version of the plan\n"
        "  --state-dir DIR   journals live here (default " PIPIT_STATE_DIR ")\n"
        "  --plugin-dir DIR  action plugins act_NAME.so (default " PIPIT_PLUGIN_DIR ")\n"
        "  --events FILE     append every event record as a JSON line (- for stdout)\n"
        "  -q, --quiet       print only the outcome\n"
        "  --require-signature\n"
        "                    load only action plugins with a good PLUGIN.so.sig\n"
        "                    (pipit sign-plugin) by a key of --trusted-key\n"
        "  --trusted-key PUB a public key file plugins may be signed by (repeatable)\n"
        "\n"
        "Exit status: 0 ok, 1 the plan failed (rolled back or not), 2 usage or an\n"
        "invalid plan, 3 interrupted (run again to resume), 4 could not run.\n");
}

struct run_out {
    FILE *events;                       /* or NULL */
    const char *host;
    bool quiet;
};

static void print_event(void *arg, const struct plan_event *ev)
{
    struct run_out *o = arg;

    if (o->events) {
        struct buf b = BUF_INIT;
        if (plan_event_encode(&b, ev, o->host) == PIPIT_OK)
            fwrite(b.data, 1, b.len, o->events);
        fflush(o->events);
        buf_free(&b);
    }
    if (o->quiet)
        return;
    const char *msg = ev->message ? ev->message : "";
    int ml = (int)strcspn(msg, "\n");
    if (!ev->step) {
        if (!strcmp(ev->name, "plan.started") || !strcmp(ev->name, "plan.resumed"))
            printf("plan %s: %s run %s, %u step%s\n", ev->plan,
                   ev->name[5] == 's' ? "started" : "resumed", ev->run, ev->total,
                   ev->total == 1 ? "" : "s");
        fflush(stdout);
        return;
    }
    bool rb = !strncmp(ev->name, "rollback.", 9);
    char pos[32];
    snprintf(pos, sizeof pos, rb ? "[rollback %u/%u]" : "[%u/%u]", ev->index, ev->total);
    if (!strcmp(ev->status, "started"))
        printf("%s %s (%s)%s%.0u ...\n", pos, ev->step, ev->action,
               ev->attempt > 1 ? " attempt " : "", ev->attempt > 1 ? ev->attempt : 0);
    else if (!strcmp(ev->status, "ok"))
        printf("%s %s: ok in %.2f s\n", pos, ev->step, (double)ev->duration_ms / 1000.0);
    else if (!strcmp(ev->status, "skipped"))
        printf("%s %s: skipped (%.*s)\n", pos, ev->step, ml, msg);
    else if (!strcmp(ev->status, "retrying"))
        printf("%s %s: attempt %u failed, retrying: %.*s\n", pos, ev->step, ev->attempt, ml,
               msg);
    else
        printf("%s %s: %s: %.*s\n", pos, ev->step, ev->status, ml, msg);
    fflush(stdout);
}

static void print_records(void *arg, int kind, const char *lines, size_t len, uint32_t count)
{
    struct run_out *o = arg;
    if (o->events) {
        fwrite(lines, 1, len, o->events);
        fflush(o->events);
    }
}

static const char *result_none(void *arg, const char *step, const char *key)
{
    return NULL;
}

/* Print one step and check its options against its plugin (unless they use
 * results of earlier steps, which only exist at run time). */
static int dry_step(const struct plan *p, const struct plan_step *s, const char *pos,
                    const char *plugin_dir, struct instance_host *h)
{
    struct plan_ctx ctx = { p, "dry-run", h->host_name, { result_none, NULL } };
    char why[1024];
    int bad = 0;

    printf("%s %s (%s)", pos, s->name, s->action);
    if (s->timeout_ms)
        printf(", timeout %lld s", (long long)(s->timeout_ms / 1000));
    if (s->retries)
        printf(", %u retr%s with backoff from %lld ms", s->retries,
               s->retries == 1 ? "y" : "ies", (long long)s->backoff_ms);
    if (s->when)
        printf(", when %s", s->when);
    if (s->ignore_failure)
        printf(", failure ignored");
    if (s->on_interrupt == PLAN_ROLLBACK)
        printf(", rolled back if interrupted");
    printf("\n");
    struct cfg_node *opts = plan_step_options(&ctx, s, why, sizeof why);
    for (size_t i = 0; opts && i < opts->nchild; i++) {
        const struct cfg_node *n = opts->child[i];
        bool host_key = false;
        for (const char *const *k = plan_step_keys; *k && !host_key; k++)
            host_key = !strcmp(*k, n->key);
        if (!host_key)
            printf("      %s: %s\n", n->key,
                   n->type == CFG_SCALAR ? cfg_show(n) : n->type == CFG_SEQ ? "[...]" : "{...}");
    }
    char *path = loader_resolve(plugin_dir, PIPIT_ACTION, s->action);
    const struct loader_plugin *lp = NULL;
    char err[1024];
    if (!path || loader_load(path, instance_api(), &lp, err, sizeof err) != PIPIT_OK) {
        fprintf(stderr, "%s:%d: steps.%s.action: %s\n", p->file, s->line, s->name,
                path ? err : "not a plugin name");
        bad = 1;
    } else if (!(lp->desc.kinds & PIPIT_ACTION)) {
        fprintf(stderr, "%s:%d: steps.%s.action: %s is not an action plugin\n", p->file,
                s->line, s->name, path);
        bad = 1;
    } else if (!opts) {
        printf("      (options use results of earlier steps: checked when it runs)\n");
    } else {
        struct diag d;
        char where[128];
        diag_init(&d);
        snprintf(where, sizeof where, "steps.%s", s->name);
        struct pipit_instance *ins = instance_create(h, lp, PIPIT_ACTION, s->name, opts,
                                                     plan_step_keys, p->file, where, &d);
        if (!ins) {
            diag_print(&d, stderr);
            bad = 1;
        }
        instance_free(ins);
        diag_free(&d);
    }
    free(path);
    cfg_node_free(opts);
    return bad;
}

static int dry_run(const struct plan *p, const char *plugin_dir, const char *host)
{
    struct instance_host h = { .host_name = host };
    int bad = 0;
    char pos[64];

    printf("plan %s: %zu step%s, digest %.16s\n", p->name, p->nsteps,
           p->nsteps == 1 ? "" : "s", p->digest);
    for (size_t i = 0; i < p->nvars; i++)
        printf("  variable %s = %s\n", p->var_keys[i], p->var_values[i]);
    for (size_t i = 0; i < p->nsteps; i++) {
        snprintf(pos, sizeof pos, "  %zu.", i + 1);
        bad |= dry_step(p, &p->steps[i], pos, plugin_dir, &h);
        for (size_t k = 0; k < p->steps[i].nrollback; k++) {
            snprintf(pos, sizeof pos, "     rollback %zu.", k + 1);
            bad |= dry_step(p, &p->steps[i].rollback[k], pos, plugin_dir, &h);
        }
    }
    printf("%s: %s\n", p->file, bad ? "invalid" : "valid");
    return bad ? RUN_EXIT_USAGE : RUN_EXIT_OK;
}

int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "var", required_argument, NULL, 'v' },
        { "dry-run", no_argument, NULL, 'n' },
        { "resume", no_argument, NULL, 'r' },
        { "state-dir", required_argument, NULL, 'S' },
        { "plugin-dir", required_argument, NULL, 'P' },
        { "events", required_argument, NULL, 'e' },
        { "quiet", no_argument, NULL, 'q' },
        { "log-level", required_argument, NULL, 'l' },
        { "require-signature", no_argument, NULL, 's' },
        { "trusted-key", required_argument, NULL, 'K' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *keys[16];               /* --trusted-key files */
    size_t nkeys = 0;
    bool require_sig = false;
    const char *state_dir = PIPIT_STATE_DIR, *plugin_dir = PIPIT_PLUGIN_DIR, *events = NULL;
    char **vars = calloc((size_t)argc + 1, sizeof *vars), host[256];
    size_t nvars = 0;
    bool dry = false, resume = false;
    struct run_out out = { 0 };
    int c, level = PIPIT_LOG_WARN, status = RUN_EXIT_USAGE;

    if (!vars)
        return RUN_EXIT_ERROR;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ql:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'v': vars[nvars++] = optarg; break;
        case 's': require_sig = true; break;
        case 'K':
            if (nkeys == sizeof keys / sizeof keys[0]) {
                fprintf(stderr, "run: at most %zu --trusted-key files\n", sizeof keys /
                        sizeof keys[0]);
                goto done;
            }
            keys[nkeys++] = optarg;
            break;
        case 'n': dry = true; break;
        case 'r': resume = true; break;
        case 'S': state_dir = optarg; break;
        case 'P': plugin_dir = optarg; break;
        case 'e': events = optarg; break;
        case 'q': out.quiet = true; break;
        case 'l':
            if ((level = log_level_parse(optarg)) < 0) {
                fprintf(stderr, "run: unknown log level \"%s\"\n", optarg);
                goto done;
            }
            break;
        case 'h': usage(stdout); status = RUN_EXIT_OK; goto done;
        default: usage(stderr); goto done;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        goto done;
    }
    if (require_sig != (nkeys > 0)) {
        fprintf(stderr, "run: --require-signature and --trusted-key go together\n");
        goto done;
    }
    char kerr[1024];
    if (require_sig && plugin_sig_require_files(keys, nkeys, kerr, sizeof kerr) != PIPIT_OK) {
        fprintf(stderr, "run: %s\n", kerr);
        status = RUN_EXIT_ERROR;
        goto done;
    }
    log_setup(stderr, LOG_FMT_LOGFMT, level);
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';

    struct diag d;
    diag_init(&d);
    struct plan *p = plan_load_file(argv[optind], vars, nvars, &d);
    if (!p) {
        diag_print(&d, stderr);
        fprintf(stderr, "%s: invalid, %zu error%s\n", argv[optind], d.count + d.dropped,
                d.count + d.dropped == 1 ? "" : "s");
        diag_free(&d);
        goto done;
    }
    diag_free(&d);
    if (dry) {
        status = dry_run(p, plugin_dir, host);
        plan_free(p);
        goto done;
    }
    if (events) {
        out.events = strcmp(events, "-") == 0 ? stdout : fopen(events, "ae");
        if (!out.events) {
            perror(events);
            plan_free(p);
            status = RUN_EXIT_ERROR;
            goto done;
        }
        if (out.events == stdout)
            out.quiet = true;
    }
    out.host = host;

    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct plan_runner r = {
        .plugin_dir = plugin_dir, .state_dir = state_dir, .host_name = host,
        .agent_id = "00000000-0000-4000-8000-000000000000",
        .event = print_event, .deliver = print_records, .arg = &out,
        .cancel = &run_cancel, .resume_other = resume,
    };
    char why[1024];
    enum plan_outcome o = plan_run(&r, p, why, sizeof why);
    FILE *f = out.events == stdout ? stderr : stdout;
    fprintf(f, "plan %s: %s%s%s\n", p->name, plan_outcome_name(o), o == PLAN_OK ? "" : ": ",
            o == PLAN_OK ? "" : why);
    status = o == PLAN_OK ? RUN_EXIT_OK : o == PLAN_INTERRUPTED ? RUN_EXIT_INTERRUPTED
           : o == PLAN_ERROR ? RUN_EXIT_ERROR : RUN_EXIT_FAILED;
    if (out.events && out.events != stdout)
        fclose(out.events);
    plan_free(p);
done:
    free(vars);
    return status;
}
