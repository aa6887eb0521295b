/* in_net: per-interface traffic, packet, error and drop counters from /proc/net/dev. */
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

#define NET_NCOLS    16                 /* 8 receive + 8 transmit columns */
#define NET_NAME_MAX 64                 /* kernel names are at most 15 bytes */
#define NET_FILE_MAX (64u << 20)        /* refuse a /proc/net/dev larger than this */

static const struct pipit_api *api;     /* borrowed from the host */

/* One metric: the column of /proc/net/dev for each direction, -1 if none. */
struct net_metric {
    const char *name;
    int rx, tx;
};

static const struct net_metric net_metrics[] = {
    { "net.io_bytes",             0,  8 },
    { "net.packets",              1,  9 },
    { "net.errors",               2, 10 },
    { "net.drops",                3, 11 },
    { "net.fifo_errors",          4, 12 },
    { "net.frame_errors",         5, -1 },
    { "net.compressed_packets",   6, 15 },
    { "net.multicast_packets",    7, -1 },
    { "net.collisions",          -1, 13 },
    { "net.carrier_errors",      -1, 14 },
};

struct net_iface {
    char name[NET_NAME_MAX];
    uint64_t v[NET_NCOLS];
};

struct net_ctx {
    /* options */
    const char *proc_path;              /* root of procfs */
    struct pipit_strlist include;       /* interface globs; empty: all */
    struct pipit_strlist exclude;       /* interface globs */
    int64_t max_interfaces;             /* cap on interfaces reported */

    /* state */
    char path[4096];                    /* <proc_path>/net/dev */
    char *buf;                          /* file contents, reused */
    size_t bufcap;
    struct net_iface *ifs;              /* this sample, reused */
    size_t nifs, ifs_alloc;
    size_t over_cap;                    /* matching interfaces beyond the cap */
    bool cap_logged;                    /* max_interfaces warning given */
};

static const struct pipit_option net_options[] = {
    PIPIT_OPT_STRING("proc_path", "/proc", struct net_ctx, proc_path,
                     "Directory where procfs is mounted (read <proc_path>/net/dev)"),
    PIPIT_OPT_LIST("include_interfaces", struct net_ctx, include,
                   "Report only interfaces whose name matches one of these "
                   "globs; empty reports all"),
    PIPIT_OPT_LIST("exclude_interfaces", struct net_ctx, exclude,
                   "Never report interfaces whose name matches one of these globs"),
    PIPIT_OPT_INT("max_interfaces", "1024", 1, 1000000, struct net_ctx,
                  max_interfaces,
                  "Report at most this many interfaces; more are counted and logged"),
    PIPIT_OPT_END
};

static int net_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

static bool net_match_any(const struct pipit_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->count; i++)
        if (fnmatch(l->items[i], s, 0) == 0)
            return true;
    return false;
}

/* True when the interface passes include_interfaces and exclude_interfaces. */
static bool net_wanted(const struct net_ctx *ctx, const char *name)
{
    if (ctx->include.count && !net_match_any(&ctx->include, name))
        return false;
    return !net_match_any(&ctx->exclude, name);
}

/* Parse an unsigned decimal after blanks at *p; advance. */
static bool net_u64(char **p, uint64_t *out)
{
    char *s = *p;
    uint64_t v = 0;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\0')
        return false;
    *out = v;
    *p = s;
    return true;
}

/*
 * Parse ctx->buf into ctx->ifs: two header lines, then "name: 16 numbers"
 * per interface. Interfaces failing the filters are skipped; beyond
 * max_interfaces they are counted in ctx->over_cap. The whole file is
 * checked before anything is emitted. Returns PIPIT_OK, PIPIT_EPARSE
 * (logged with the line number) or PIPIT_ENOMEM.
 */
static int net_parse(pipit_instance *ins, struct net_ctx *ctx)
{
    char *line = ctx->buf;
    unsigned lineno = 0;

    ctx->nifs = 0;
    ctx->over_cap = 0;
    while (*line) {
        char *nl = strchr(line, '\n');
        char *p = line, *colon;
        struct net_iface *f;
        size_t len;

        lineno++;
        if (nl)
            *nl = '\0';
        if (lineno <= 2) {              /* "Inter-|   Receive ..." headers */
            if (!strchr(line, '|'))
                goto bad;
            goto next;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        colon = strchr(p, ':');
        if (!colon || colon == p || (len = (size_t)(colon - p)) >= NET_NAME_MAX)
            goto bad;
        *colon = '\0';
        if (!net_wanted(ctx, p)) {
            /* still check the numbers, so that truncation is noticed */
            uint64_t v;
            char *q = colon + 1;

            for (int k = 0; k < NET_NCOLS; k++)
                if (!net_u64(&q, &v))
                    goto bad;
            goto next;
        }
        if (ctx->nifs >= (size_t)ctx->max_interfaces) {
            ctx->over_cap++;
            goto next;
        }
        if (ctx->nifs == ctx->ifs_alloc) {
            size_t n = ctx->ifs_alloc ? ctx->ifs_alloc * 2 : 16;
            struct net_iface *nf = realloc(ctx->ifs, n * sizeof *nf);

            if (!nf)
                return PIPIT_ENOMEM;
            ctx->ifs = nf;
            ctx->ifs_alloc = n;
        }
        f = &ctx->ifs[ctx->nifs];
        memcpy(f->name, p, len + 1);
        p = colon + 1;
        for (int k = 0; k < NET_NCOLS; k++)
            if (!net_u64(&p, &f->v[k]))
                goto bad;
        ctx->nifs++;
next:
        if (!nl)
            break;
        line = nl + 1;
    }
    if (lineno < 2)
        goto bad;
    return PIPIT_OK;
bad:
    api->log(ins, PIPIT_LOG_ERROR, "%s:%u: malformed line", ctx->path,
             lineno);
    return PIPIT_EPARSE;
}

static void net_emit(pipit_instance *ins, int64_t t, const char *name,
                     double value, const struct pipit_label *labels)
{
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = PIPIT_METRIC, .time_ns = t,
        .labels = labels, .nlabels = 2, .name = name,
        .metric_type = PIPIT_COUNTER, .value = value,
    };

    (void)api->emit(ins, &rec);
}

static void net_free(struct net_ctx *ctx)
{
    free(ctx->buf);
    free(ctx->ifs);
    ctx->buf = NULL;
    ctx->ifs = NULL;
}

static int net_init(pipit_instance *ins, void *data)
{
    struct net_ctx *ctx = data;
    int rc;

    if ((size_t)snprintf(ctx->path, sizeof ctx->path, "%s/net/dev",
                         ctx->proc_path) >= sizeof ctx->path) {
        api->log(ins, PIPIT_LOG_ERROR, "proc_path is too long");
        return PIPIT_ECONFIG;
    }
    rc = procfile_read(api, ins, ctx->path, NET_FILE_MAX, 8192, &ctx->buf,
                       &ctx->bufcap, NULL);
    if (rc == PIPIT_OK)
        rc = net_parse(ins, ctx);
    if (rc != PIPIT_OK)
        net_free(ctx);
    return rc;
}

static int net_collect(pipit_instance *ins, void *data)
{
    struct net_ctx *ctx = data;
    int64_t t = api->now_ns();
    int rc;

    rc = procfile_read(api, ins, ctx->path, NET_FILE_MAX, 8192, &ctx->buf,
                       &ctx->bufcap, NULL);
    if (rc == PIPIT_OK)
        rc = net_parse(ins, ctx);
    if (rc != PIPIT_OK)
        return rc;

    for (size_t i = 0; i < ctx->nifs; i++) {
        const struct net_iface *f = &ctx->ifs[i];
        struct pipit_label labels[2] = {
            { "interface", f->name }, { "direction", NULL }
        };

        for (size_t m = 0; m < sizeof net_metrics / sizeof net_metrics[0]; m++) {
            if (net_metrics[m].rx >= 0) {
                labels[1].value = "rx";
                net_emit(ins, t, net_metrics[m].name,
                         (double)f->v[net_metrics[m].rx], labels);
            }
            if (net_metrics[m].tx >= 0) {
                labels[1].value = "tx";
                net_emit(ins, t, net_metrics[m].name,
                         (double)f->v[net_metrics[m].tx], labels);
            }
        }
    }
    if (ctx->over_cap && !ctx->cap_logged) {
        api->log(ins, PIPIT_LOG_WARN,
                 "%zu interfaces beyond max_interfaces=%lld are not reported",
                 ctx->over_cap, (long long)ctx->max_interfaces);
        ctx->cap_logged = true;
    }
    return PIPIT_OK;
}

static void net_fini(pipit_instance *ins, void *data)
{
    net_free(data);
}

PIPIT_PLUGIN_DEFINE(
    .name = "net", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "Network interface counters from /proc/net/dev",
    .ctx_size = sizeof(struct net_ctx), .options = net_options,
    .load = net_load, .init = net_init, .collect = net_collect,
    .fini = net_fini);
