/* in_memory: memory and swap usage from /proc/meminfo. */
#define _GNU_SOURCE
#include <pipit/plugin.h>
#include "procfile.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEMORY_FILE_CAP 16384           /* /proc/meminfo is about 1.5 KiB */
#define MEMORY_FILE_INIT 4096           /* first buffer size */

static const struct pipit_api *api;     /* borrowed from the host */

/* One line of /proc/meminfo that is reported. */
struct memory_field {
    const char *key;                    /* name in /proc/meminfo */
    const char *metric;                 /* metric name */
    const char *state;                  /* value of label "state", or NULL */
    double scale;                       /* kB lines: 1024; counts: 1 */
};

/* Indexes of the fields the derived values are computed from; the table
 * names them with designated initializers, so a misplaced row does not
 * compile quietly (-Woverride-init). */
enum { MEMORY_TOTAL = 0, MEMORY_FREE = 1, MEMORY_AVAILABLE = 2,
       MEMORY_BUFFERS = 3, MEMORY_CACHED = 4, MEMORY_SWAPTOTAL = 14,
       MEMORY_SWAPFREE = 15 };

static const struct memory_field memory_fields[] = {
    [MEMORY_TOTAL] =
        { "MemTotal",        "memory.total_bytes",               NULL,       1024 },
    [MEMORY_FREE] =
        { "MemFree",         "memory.free_bytes",                NULL,       1024 },
    [MEMORY_AVAILABLE] =
        { "MemAvailable",    "memory.available_bytes",           NULL,       1024 },
    [MEMORY_BUFFERS] =
        { "Buffers",         "memory.buffers_bytes",             NULL,       1024 },
    [MEMORY_CACHED] =
        { "Cached",          "memory.cached_bytes",              NULL,       1024 },
    { "SwapCached",      "memory.swap_cached_bytes",         NULL,       1024 },
    { "Active",          "memory.active_bytes",              NULL,       1024 },
    { "Inactive",        "memory.inactive_bytes",            NULL,       1024 },
    { "Active(anon)",    "memory.active_anon_bytes",         NULL,       1024 },
    { "Inactive(anon)",  "memory.inactive_anon_bytes",       NULL,       1024 },
    { "Active(file)",    "memory.active_file_bytes",         NULL,       1024 },
    { "Inactive(file)",  "memory.inactive_file_bytes",       NULL,       1024 },
    { "Unevictable",     "memory.unevictable_bytes",         NULL,       1024 },
    { "Mlocked",         "memory.mlocked_bytes",             NULL,       1024 },
    [MEMORY_SWAPTOTAL] =
        { "SwapTotal",       "memory.swap_total_bytes",          NULL,       1024 },
    [MEMORY_SWAPFREE] =
        { "SwapFree",        "memory.swap_free_bytes",           NULL,       1024 },
    { "Dirty",           "memory.dirty_bytes",               NULL,       1024 },
    { "Writeback",       "memory.writeback_bytes",           NULL,       1024 },
    { "AnonPages",       "memory.anon_bytes",                NULL,       1024 },
    { "Mapped",          "memory.mapped_bytes",              NULL,       1024 },
    { "Shmem",           "memory.shmem_bytes",               NULL,       1024 },
    { "KReclaimable",    "memory.kernel_reclaimable_bytes",  NULL,       1024 },
    { "Slab",            "memory.slab_bytes",                NULL,       1024 },
    { "SReclaimable",    "memory.slab_reclaimable_bytes",    NULL,       1024 },
    { "SUnreclaim",      "memory.slab_unreclaimable_bytes",  NULL,       1024 },
    { "KernelStack",     "memory.kernel_stack_bytes",        NULL,       1024 },
    { "PageTables",      "memory.page_tables_bytes",         NULL,       1024 },
    { "CommitLimit",     "memory.commit_limit_bytes",        NULL,       1024 },
    { "Committed_AS",    "memory.committed_bytes",           NULL,       1024 },
    { "VmallocUsed",     "memory.vmalloc_used_bytes",        NULL,       1024 },
    { "AnonHugePages",   "memory.anon_huge_pages_bytes",     NULL,       1024 },
    { "HugePages_Total", "memory.huge_pages",                "total",       1 },
    { "HugePages_Free",  "memory.huge_pages",                "free",        1 },
    { "HugePages_Rsvd",  "memory.huge_pages",                "reserved",    1 },
    { "HugePages_Surp",  "memory.huge_pages",                "surplus",     1 },
    { "Hugepagesize",    "memory.huge_page_size_bytes",      NULL,       1024 },
    { "Hugetlb",         "memory.hugetlb_bytes",             NULL,       1024 },
};
#define MEMORY_NFIELDS (sizeof memory_fields / sizeof memory_fields[0])

/* Values computed from the fields; matched by `fields` like them. */
static const char *const memory_derived[] = {
    "memory.used_bytes", "memory.utilization",
    "memory.swap_used_bytes", "memory.swap_utilization",
};
enum { MEMORY_D_USED, MEMORY_D_UTIL, MEMORY_D_SWAPUSED, MEMORY_D_SWAPUTIL,
       MEMORY_NDERIVED };

struct memory_ctx {
    /* options */
    const char *proc_path;              /* root of procfs */
    struct pipit_strlist fields;        /* globs; empty: everything */

    /* state */
    char path[4096];                    /* <proc_path>/meminfo */
    char *buf;                          /* file contents, reused */
    size_t bufcap;
    bool want[MEMORY_NFIELDS];          /* selected by `fields` */
    bool want_derived[MEMORY_NDERIVED];
    uint64_t value[MEMORY_NFIELDS];     /* last sample, as printed */
    bool has[MEMORY_NFIELDS];           /* line present in the last sample */
};

static const struct pipit_option memory_options[] = {
    PIPIT_OPT_STRING("proc_path", "/proc", struct memory_ctx, proc_path,
                     "Directory where procfs is mounted (read <proc_path>/meminfo)"),
    PIPIT_OPT_LIST("fields", struct memory_ctx, fields,
                   "Report only these metrics: globs matched against metric "
                   "names (memory.used_bytes) or meminfo keys (MemTotal); "
                   "empty reports all"),
    PIPIT_OPT_END
};

static int memory_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

/* True when name or key matches one of the `fields` globs. */
static bool memory_selected(const struct memory_ctx *ctx, const char *name,
                         const char *key)
{
    if (ctx->fields.count == 0)
        return true;
    for (size_t i = 0; i < ctx->fields.count; i++) {
        const char *g = ctx->fields.items[i];

        if (fnmatch(g, name, 0) == 0 || (key && fnmatch(g, key, 0) == 0))
            return true;
    }
    return false;
}

/*
 * Read <proc_path>/meminfo into ctx->buf (grown up to MEMORY_FILE_CAP and
 * kept), NUL-terminated. Returns PIPIT_OK or a logged error.
 */
static int memory_read(pipit_instance *ins, struct memory_ctx *ctx)
{
    return procfile_read(api, ins, ctx->path, MEMORY_FILE_CAP, MEMORY_FILE_INIT,
                         &ctx->buf, &ctx->bufcap, NULL);
}

/*
 * Parse ctx->buf: every line must read "Key: <number>[ kB]". Known keys are
 * stored in ctx->value. MemTotal and MemFree must be present (a file cut
 * short misses them). Returns PIPIT_OK or PIPIT_EPARSE (logged).
 */
static int memory_parse(pipit_instance *ins, struct memory_ctx *ctx)
{
    char *line = ctx->buf;
    unsigned lineno = 0;

    memset(ctx->has, 0, sizeof ctx->has);
    while (*line) {
        char *nl = strchr(line, '\n');
        char *colon, *p;
        uint64_t v = 0;
        size_t klen;

        lineno++;
        if (nl)
            *nl = '\0';
        colon = strchr(line, ':');
        if (!colon || colon == line)
            goto bad;
        klen = (size_t)(colon - line);
        p = colon + 1;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p < '0' || *p > '9')
            goto bad;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
                goto bad;
            v = v * 10 + (uint64_t)(*p - '0');
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p && strcmp(p, "kB") != 0)
            goto bad;
        for (size_t i = 0; i < MEMORY_NFIELDS; i++) {
            if (strlen(memory_fields[i].key) == klen &&
                memcmp(memory_fields[i].key, line, klen) == 0) {
                ctx->value[i] = v;
                ctx->has[i] = true;
                break;
            }
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    if (!ctx->has[MEMORY_TOTAL] || !ctx->has[MEMORY_FREE]) {
        api->log(ins, PIPIT_LOG_ERROR, "%s: no MemTotal or MemFree (truncated?)",
                 ctx->path);
        return PIPIT_EPARSE;
    }
    return PIPIT_OK;
bad:
    api->log(ins, PIPIT_LOG_ERROR, "%s:%u: malformed line", ctx->path, lineno);
    return PIPIT_EPARSE;
}

static void memory_emit(pipit_instance *ins, int64_t t, const char *name,
                     double value, const struct pipit_label *labels,
                     size_t nlabels)
{
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = PIPIT_METRIC, .time_ns = t,
        .labels = labels, .nlabels = nlabels, .name = name,
        .metric_type = PIPIT_GAUGE, .value = value,
    };

    (void)api->emit(ins, &rec);
}

/*
 * Check the options, work out which metrics `fields` selects (a glob that
 * selects nothing is a configuration error, most likely a typo) and read the
 * file once so that a wrong proc_path fails here.
 */
static int memory_init(pipit_instance *ins, void *data)
{
    struct memory_ctx *ctx = data;
    int rc;

    if ((size_t)snprintf(ctx->path, sizeof ctx->path, "%s/meminfo",
                         ctx->proc_path) >= sizeof ctx->path) {
        api->log(ins, PIPIT_LOG_ERROR, "proc_path is too long");
        return PIPIT_ECONFIG;
    }
    for (size_t i = 0; i < ctx->fields.count; i++) {
        const char *g = ctx->fields.items[i];
        bool used = false;

        for (size_t k = 0; k < MEMORY_NFIELDS && !used; k++)
            used = fnmatch(g, memory_fields[k].metric, 0) == 0 ||
                   fnmatch(g, memory_fields[k].key, 0) == 0;
        for (size_t k = 0; k < MEMORY_NDERIVED && !used; k++)
            used = fnmatch(g, memory_derived[k], 0) == 0;
        if (!used) {
            api->log(ins, PIPIT_LOG_ERROR,
                     "fields: \"%s\" matches no metric of this plugin", g);
            return PIPIT_ECONFIG;
        }
    }
    for (size_t k = 0; k < MEMORY_NFIELDS; k++)
        ctx->want[k] = memory_selected(ctx, memory_fields[k].metric,
                                       memory_fields[k].key);
    for (size_t k = 0; k < MEMORY_NDERIVED; k++)
        ctx->want_derived[k] = memory_selected(ctx, memory_derived[k], NULL);

    rc = memory_read(ins, ctx);
    if (rc == PIPIT_OK)
        rc = memory_parse(ins, ctx);
    if (rc != PIPIT_OK) {
        free(ctx->buf);
        ctx->buf = NULL;
        ctx->bufcap = 0;
    }
    return rc;
}

/*
 * One collection. Used memory is MemTotal - MemAvailable; kernels before
 * 3.14 have no MemAvailable, and there it is MemTotal - MemFree - Buffers -
 * Cached. A malformed file emits nothing.
 */
static int memory_collect(pipit_instance *ins, void *data)
{
    struct memory_ctx *ctx = data;
    int64_t t = api->now_ns();
    const uint64_t *v = ctx->value;
    double total, used;
    int rc;

    rc = memory_read(ins, ctx);
    if (rc == PIPIT_OK)
        rc = memory_parse(ins, ctx);
    if (rc != PIPIT_OK)
        return rc;

    for (size_t k = 0; k < MEMORY_NFIELDS; k++) {
        struct pipit_label state = { "state", memory_fields[k].state };

        if (!ctx->has[k] || !ctx->want[k])
            continue;
        memory_emit(ins, t, memory_fields[k].metric,
                 (double)v[k] * memory_fields[k].scale,
                 state.value ? &state : NULL, state.value ? 1 : 0);
    }

    total = (double)v[MEMORY_TOTAL] * 1024;
    if (ctx->has[MEMORY_AVAILABLE])
        used = total - (double)v[MEMORY_AVAILABLE] * 1024;
    else
        used = total - ((double)v[MEMORY_FREE] + (double)v[MEMORY_BUFFERS] +
                        (double)v[MEMORY_CACHED]) * 1024;
    if (used < 0)
        used = 0;
    if (ctx->want_derived[MEMORY_D_USED])
        memory_emit(ins, t, "memory.used_bytes", used, NULL, 0);
    if (ctx->want_derived[MEMORY_D_UTIL] && total > 0)
        memory_emit(ins, t, "memory.utilization", used / total, NULL, 0);

    if (ctx->has[MEMORY_SWAPTOTAL] && ctx->has[MEMORY_SWAPFREE]) {
        double stotal = (double)v[MEMORY_SWAPTOTAL] * 1024;
        double sused = stotal - (double)v[MEMORY_SWAPFREE] * 1024;

        if (sused < 0)
            sused = 0;
        if (ctx->want_derived[MEMORY_D_SWAPUSED])
            memory_emit(ins, t, "memory.swap_used_bytes", sused, NULL, 0);
        if (ctx->want_derived[MEMORY_D_SWAPUTIL] && stotal > 0)
            memory_emit(ins, t, "memory.swap_utilization", sused / stotal, NULL, 0);
    }
    return PIPIT_OK;
}

static void memory_fini(pipit_instance *ins, void *data)
{
    struct memory_ctx *ctx = data;

    free(ctx->buf);
}

PIPIT_PLUGIN_DEFINE(
    .name = "memory", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "Memory and swap usage from /proc/meminfo",
    .ctx_size = sizeof(struct memory_ctx), .options = memory_options,
    .load = memory_load, .init = memory_init, .collect = memory_collect,
    .fini = memory_fini);
