/* in_cpu: CPU time, utilization and scheduler counters from /proc/stat. */
#define _GNU_SOURCE
#include <pipit/plugin.h>
#include "procfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Columns of a "cpu" line, in kernel order; older kernels print fewer. */
#define CPU_NSTATES   10
#define CPU_MINSTATES 4                 /* user nice system idle (Linux 2.4) */
#define CPU_NBUSY     8                 /* guest, guest_nice are inside user, nice */
#define CPU_MAX_FILE  (64u << 20)       /* refuse a /proc/stat larger than this */

static const char *const cpu_state_names[CPU_NSTATES] = {
    "user", "nice", "system", "idle", "iowait",
    "irq", "softirq", "steal", "guest", "guest_nice"
};

static const struct pipit_api *api;     /* borrowed from the host */

struct cpu_sample {
    uint64_t v[CPU_NSTATES];            /* jiffies per state */
    int ncols;                          /* columns present on the line */
    bool present;                       /* line seen in this sample */
};

struct cpu_ctx {
    /* options */
    const char *proc_path;              /* root of procfs */
    bool per_cpu;                       /* report each core, not only total */
    bool utilization;                   /* report cpu.utilization */
    int64_t max_cpus;                   /* highest core number tracked + 1 */

    /* state */
    char path[4096];                    /* <proc_path>/stat */
    long clk_tck;                       /* jiffies per second */
    char *buf;                          /* file contents, reused */
    size_t bufcap;
    struct cpu_sample total, prev_total;
    struct cpu_sample *cur, *prev;      /* per core, indexed by number */
    size_t ncpu_alloc;                  /* entries in cur and prev */
    bool overflow_logged;               /* max_cpus warning given */

    /* other lines of the last sample; has_* says whether seen */
    uint64_t ctxt, intr, softirq, forks, procs_running, procs_blocked;
    bool has_ctxt, has_intr, has_softirq, has_forks, has_running, has_blocked;
    unsigned ncpu_lines;                /* "cpuN" lines in the last sample */
    unsigned over_cap;                  /* of which beyond max_cpus */
};

static const struct pipit_option cpu_options[] = {
    PIPIT_OPT_STRING("proc_path", "/proc", struct cpu_ctx, proc_path,
                     "Directory where procfs is mounted (read <proc_path>/stat)"),
    PIPIT_OPT_BOOL("per_cpu", "true", struct cpu_ctx, per_cpu,
                   "Report every core as well as the total"),
    PIPIT_OPT_BOOL("utilization", "true", struct cpu_ctx, utilization,
                   "Report cpu.utilization ratios computed between two collections"),
    PIPIT_OPT_INT("max_cpus", "4096", 1, 1048576, struct cpu_ctx, max_cpus,
                  "Cores numbered at or above this are counted but not reported"),
    PIPIT_OPT_END
};

static int cpu_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

/* Parse the columns of a "cpu" line (after its name) into s. */
static int cpu_parse_states(const char *p, struct cpu_sample *s)
{
    uint64_t v;
    int r;

    s->ncols = 0;
    while ((r = procfile_u64(&p, &v)) == 1) {
        if (s->ncols < CPU_NSTATES)     /* newer kernels may add columns */
            s->v[s->ncols++] = v;
    }
    if (r < 0 || s->ncols < CPU_MINSTATES)
        return PIPIT_EPARSE;
    s->present = true;
    return PIPIT_OK;
}

/* Make room for core number id in cur and prev (zeroed). */
static int cpu_grow(struct cpu_ctx *ctx, size_t id)
{
    size_t n = ctx->ncpu_alloc ? ctx->ncpu_alloc : 64;
    struct cpu_sample *c, *p;

    while (n <= id)
        n *= 2;
    if (n > (size_t)ctx->max_cpus)
        n = (size_t)ctx->max_cpus;
    c = realloc(ctx->cur, n * sizeof *c);
    if (!c)
        return PIPIT_ENOMEM;
    ctx->cur = c;
    p = realloc(ctx->prev, n * sizeof *p);
    if (!p)
        return PIPIT_ENOMEM;
    ctx->prev = p;
    memset(c + ctx->ncpu_alloc, 0, (n - ctx->ncpu_alloc) * sizeof *c);
    memset(p + ctx->ncpu_alloc, 0, (n - ctx->ncpu_alloc) * sizeof *p);
    ctx->ncpu_alloc = n;
    return PIPIT_OK;
}

/* A single number after a keyword ("ctxt 123"), or the first of several. */
static int cpu_first(const char *p, uint64_t *v, bool *has)
{
    if (procfile_u64(&p, v) != 1)
        return PIPIT_EPARSE;
    *has = true;
    return PIPIT_OK;
}

/*
 * Parse ctx->buf (len bytes of /proc/stat) into ctx->total, ctx->cur and the
 * scalar fields. Everything is parsed before anything is emitted, so a
 * malformed file emits nothing. Returns PIPIT_OK, PIPIT_EPARSE (logged with
 * the line number) or PIPIT_ENOMEM.
 */
static int cpu_parse(pipit_instance *ins, struct cpu_ctx *ctx, size_t len)
{
    char *line = ctx->buf, *end = ctx->buf + len;
    unsigned lineno = 0;
    int rc;

    memset(&ctx->total, 0, sizeof ctx->total);
    for (size_t i = 0; i < ctx->ncpu_alloc; i++)
        ctx->cur[i].present = false;
    ctx->has_ctxt = ctx->has_intr = ctx->has_softirq = false;
    ctx->has_forks = ctx->has_running = ctx->has_blocked = false;
    ctx->ncpu_lines = ctx->over_cap = 0;

    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *next = nl ? nl + 1 : end;
        const char *p = line;

        lineno++;
        rc = PIPIT_OK;
        if (strncmp(p, "cpu", 3) == 0) {
            p += 3;
            if (*p == ' ' || *p == '\t') {
                rc = cpu_parse_states(p, &ctx->total);
            } else if (*p >= '0' && *p <= '9') {
                char *q;
                unsigned long id;

                errno = 0;
                id = strtoul(p, &q, 10);
                if (errno || (*q != ' ' && *q != '\t')) {
                    rc = PIPIT_EPARSE;
                } else {
                    ctx->ncpu_lines++;
                    if (id >= (unsigned long)ctx->max_cpus) {
                        struct cpu_sample scratch;

                        ctx->over_cap++;
                        rc = cpu_parse_states(q, &scratch);
                    } else {
                        if (id >= ctx->ncpu_alloc &&
                            (rc = cpu_grow(ctx, id)) != PIPIT_OK)
                            return rc;
                        if (ctx->cur[id].present)
                            rc = PIPIT_EPARSE;          /* the same core twice */
                        else
                            rc = cpu_parse_states(q, &ctx->cur[id]);
                    }
                }
            }
            /* other "cpu..." words are not per-core lines: ignore them */
        } else if (strncmp(p, "ctxt ", 5) == 0) {
            rc = cpu_first(p + 5, &ctx->ctxt, &ctx->has_ctxt);
        } else if (strncmp(p, "intr ", 5) == 0) {
            rc = cpu_first(p + 5, &ctx->intr, &ctx->has_intr);
        } else if (strncmp(p, "softirq ", 8) == 0) {
            rc = cpu_first(p + 8, &ctx->softirq, &ctx->has_softirq);
        } else if (strncmp(p, "processes ", 10) == 0) {
            rc = cpu_first(p + 10, &ctx->forks, &ctx->has_forks);
        } else if (strncmp(p, "procs_running ", 14) == 0) {
            rc = cpu_first(p + 14, &ctx->procs_running, &ctx->has_running);
        } else if (strncmp(p, "procs_blocked ", 14) == 0) {
            rc = cpu_first(p + 14, &ctx->procs_blocked, &ctx->has_blocked);
        }
        /* other lines (btime, page, swap...) are not ours */
        if (rc != PIPIT_OK) {
            api->log(ins, PIPIT_LOG_ERROR, "%s:%u: malformed line", ctx->path,
                     lineno);
            return rc;
        }
        line = next;
    }
    if (!ctx->total.present) {
        api->log(ins, PIPIT_LOG_ERROR, "%s: no \"cpu\" line (truncated?)",
                 ctx->path);
        return PIPIT_EPARSE;
    }
    return PIPIT_OK;
}

static void cpu_emit(pipit_instance *ins, int64_t t, int type, const char *name,
                     double value, const struct pipit_label *labels,
                     size_t nlabels)
{
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = PIPIT_METRIC, .time_ns = t,
        .labels = labels, .nlabels = nlabels, .name = name,
        .metric_type = type, .value = value,
    };

    (void)api->emit(ins, &rec);
}

/*
 * Emit cpu.time_seconds for sample c and, when p is a valid earlier sample
 * of the same shape with no counter gone backwards and some time elapsed,
 * cpu.utilization per state: the state's share of the elapsed busy+idle
 * time (guest states are already part of user and nice, so they are left
 * out of the denominator and reported as a share of it).
 */
static void cpu_emit_one(pipit_instance *ins, struct cpu_ctx *ctx, int64_t t,
                         const char *cpu, const struct cpu_sample *c,
                         const struct cpu_sample *p)
{
    struct pipit_label labels[2] = { { "cpu", cpu }, { "state", NULL } };
    uint64_t elapsed = 0;
    bool rates = ctx->utilization && p && p->present && p->ncols == c->ncols;

    for (int k = 0; k < c->ncols; k++) {
        labels[1].value = cpu_state_names[k];
        cpu_emit(ins, t, PIPIT_COUNTER, "cpu.time_seconds",
                 (double)c->v[k] / (double)ctx->clk_tck, labels, 2);
    }
    if (!rates)
        return;
    for (int k = 0; k < c->ncols; k++) {
        if (c->v[k] < p->v[k])
            return;                     /* counter reset: start over */
        if (k < CPU_NBUSY)
            elapsed += c->v[k] - p->v[k];
    }
    if (elapsed == 0)
        return;                         /* less than a tick since last time */
    for (int k = 0; k < c->ncols; k++) {
        double u = (double)(c->v[k] - p->v[k]) / (double)elapsed;

        labels[1].value = cpu_state_names[k];
        cpu_emit(ins, t, PIPIT_GAUGE, "cpu.utilization", u > 1.0 ? 1.0 : u,
                 labels, 2);
    }
}

static int cpu_init(pipit_instance *ins, void *data)
{
    struct cpu_ctx *ctx = data;
    size_t len;
    int rc;

    ctx->clk_tck = sysconf(_SC_CLK_TCK);
    if (ctx->clk_tck <= 0) {
        api->log(ins, PIPIT_LOG_ERROR, "sysconf(_SC_CLK_TCK) failed");
        return PIPIT_ENOTSUP;
    }
    if ((size_t)snprintf(ctx->path, sizeof ctx->path, "%s/stat",
                         ctx->proc_path) >= sizeof ctx->path) {
        api->log(ins, PIPIT_LOG_ERROR, "proc_path is too long");
        return PIPIT_ECONFIG;
    }
    /* Read once so that a wrong path or an unreadable file fails here. */
    rc = procfile_read(api, ins, ctx->path, CPU_MAX_FILE, 16384, &ctx->buf,
                       &ctx->bufcap, &len);
    if (rc == PIPIT_OK)
        rc = cpu_parse(ins, ctx, len);
    if (rc != PIPIT_OK)
        goto fail;
    /* That sample is not kept: rates start from the first collection. */
    for (size_t i = 0; i < ctx->ncpu_alloc; i++)
        ctx->cur[i].present = false;
    return PIPIT_OK;
fail:
    free(ctx->buf);
    free(ctx->cur);
    free(ctx->prev);
    ctx->buf = NULL;
    ctx->cur = ctx->prev = NULL;
    return rc;
}

/*
 * One collection: parse /proc/stat, emit counters and gauges, then keep the
 * sample for the next utilization. On a parse error nothing is emitted and
 * the previous sample is forgotten, so the next rates start afresh.
 */
static int cpu_collect(pipit_instance *ins, void *data)
{
    struct cpu_ctx *ctx = data;
    int64_t t = api->now_ns();
    size_t len;
    int rc;

    rc = procfile_read(api, ins, ctx->path, CPU_MAX_FILE, 16384, &ctx->buf,
                       &ctx->bufcap, &len);
    if (rc == PIPIT_OK)
        rc = cpu_parse(ins, ctx, len);
    if (rc != PIPIT_OK) {
        ctx->prev_total.present = false;
        for (size_t i = 0; i < ctx->ncpu_alloc; i++)
            ctx->prev[i].present = false;
        return rc;
    }

    cpu_emit(ins, t, PIPIT_GAUGE, "cpu.count", ctx->ncpu_lines, NULL, 0);
    cpu_emit_one(ins, ctx, t, "total", &ctx->total, &ctx->prev_total);
    if (ctx->per_cpu) {
        char name[32];

        for (size_t i = 0; i < ctx->ncpu_alloc; i++) {
            if (!ctx->cur[i].present)
                continue;
            snprintf(name, sizeof name, "cpu%zu", i);
            cpu_emit_one(ins, ctx, t, name, &ctx->cur[i], &ctx->prev[i]);
        }
    }
    if (ctx->over_cap && !ctx->overflow_logged) {
        api->log(ins, PIPIT_LOG_WARN,
                 "%u cores numbered %lld or above are not reported (max_cpus)",
                 ctx->over_cap, (long long)ctx->max_cpus);
        ctx->overflow_logged = true;
    }
    if (ctx->has_ctxt)
        cpu_emit(ins, t, PIPIT_COUNTER, "cpu.context_switches",
                 (double)ctx->ctxt, NULL, 0);
    if (ctx->has_intr)
        cpu_emit(ins, t, PIPIT_COUNTER, "cpu.interrupts", (double)ctx->intr,
                 NULL, 0);
    if (ctx->has_softirq)
        cpu_emit(ins, t, PIPIT_COUNTER, "cpu.softirqs", (double)ctx->softirq,
                 NULL, 0);
    if (ctx->has_forks)
        cpu_emit(ins, t, PIPIT_COUNTER, "system.forks", (double)ctx->forks,
                 NULL, 0);
    if (ctx->has_running)
        cpu_emit(ins, t, PIPIT_GAUGE, "system.procs_running",
                 (double)ctx->procs_running, NULL, 0);
    if (ctx->has_blocked)
        cpu_emit(ins, t, PIPIT_GAUGE, "system.procs_blocked",
                 (double)ctx->procs_blocked, NULL, 0);

    /* This sample becomes the previous one; absent cores become invalid. */
    struct cpu_sample *tmp = ctx->prev;
    ctx->prev = ctx->cur;
    ctx->cur = tmp;
    ctx->prev_total = ctx->total;
    return PIPIT_OK;
}

static void cpu_fini(pipit_instance *ins, void *data)
{
    struct cpu_ctx *ctx = data;

    free(ctx->buf);
    free(ctx->cur);
    free(ctx->prev);
}

PIPIT_PLUGIN_DEFINE(
    .name = "cpu", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "CPU time per state, utilization and scheduler counters",
    .ctx_size = sizeof(struct cpu_ctx), .options = cpu_options,
    .load = cpu_load, .init = cpu_init, .collect = cpu_collect,
    .fini = cpu_fini);
