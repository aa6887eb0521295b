/* in_cost: the host's own usage priced from a catalogue in config, emitted as exact cost records. */
#define _GNU_SOURCE
#include <pipit/plugin.h>
#include "cost_sample.h"
#include "decimal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COST_CS_PER_HOUR 360000ull      /* centiseconds, the unit of uptime */
#define COST_HOURS_PER_MONTH 730ull     /* 8760 / 12, as cloud providers bill */
#define COST_GB 1000000000ull           /* bytes; GB is decimal, as on price lists */
#define COST_NANOS_PER_MICRO 1000u      /* prices are nanos, amounts micros */
#define COST_LABELS_MAX 64              /* labels a record may carry (docs/records.md) */

static const struct pipit_api *api;     /* borrowed from the host */

/* What a meter measures, and how it becomes a quantity over an interval. */
enum cost_measure {
    COST_UPTIME,                        /* time: centiseconds of uptime */
    COST_CPU,                           /* counter: busy USER_HZ ticks */
    COST_MEMORY,                        /* level x time: used bytes x centiseconds */
    COST_NET_RX,                        /* counter per interface: bytes received */
    COST_NET_TX,                        /* counter per interface: bytes sent */
    COST_DISK_READ,                     /* counter per device: bytes read */
    COST_DISK_WRITE,                    /* counter per device: bytes written */
    COST_FS                             /* level x time per mountpoint */
};

/* The file each measure reads (uptime is always read). */
static const unsigned cost_measure_need[] = {
    [COST_UPTIME] = 0, [COST_CPU] = COST_NEED_CPU, [COST_MEMORY] = COST_NEED_MEMORY,
    [COST_NET_RX] = COST_NEED_NET, [COST_NET_TX] = COST_NEED_NET,
    [COST_DISK_READ] = COST_NEED_DISK, [COST_DISK_WRITE] = COST_NEED_DISK,
    [COST_FS] = COST_NEED_FS,
};

/*
 * A priced unit: the measure, how many of its base units make one priced
 * unit (ticks: times USER_HZ), and the resource its records name.
 */
struct cost_meter {
    const char *name;                   /* key in prices or metric_prices */
    enum cost_measure measure;
    unsigned long long per_unit;        /* base units per priced unit */
    bool ticks;                         /* per_unit counts seconds of CPU ticks */
    const char *resource;               /* resource, or its prefix before ":item" */
};

/* The keys of `prices`: the catalogue of a cloud bill. */
static const struct cost_meter cost_catalogue[] = {
    { "instance_hour", COST_UPTIME, COST_CS_PER_HOUR, false, "instance" },
    { "filesystem_gb_month", COST_FS, COST_GB * COST_HOURS_PER_MONTH * COST_CS_PER_HOUR,
      false, "filesystem" },
    { "egress_gb", COST_NET_TX, COST_GB, false, "egress" },
};

/* The keys of `metric_prices`: every meter the plugin measures itself. */
static const struct cost_meter cost_meters[] = {
    { "instance_hours", COST_UPTIME, COST_CS_PER_HOUR, false, "instance_hours" },
    { "cpu_core_seconds", COST_CPU, 1, true, "cpu_core_seconds" },
    { "cpu_core_hours", COST_CPU, 3600, true, "cpu_core_hours" },
    { "memory_gb_hours", COST_MEMORY, COST_GB * COST_CS_PER_HOUR, false, "memory_gb_hours" },
    { "net_rx_gb", COST_NET_RX, COST_GB, false, "net_rx_gb" },
    { "net_tx_gb", COST_NET_TX, COST_GB, false, "net_tx_gb" },
    { "disk_read_gb", COST_DISK_READ, COST_GB, false, "disk_read_gb" },
    { "disk_write_gb", COST_DISK_WRITE, COST_GB, false, "disk_write_gb" },
    { "filesystem_gb_hours", COST_FS, COST_GB * COST_CS_PER_HOUR, false,
      "filesystem_gb_hours" },
};

#define COST_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* One configured price. */
struct cost_price {
    const struct cost_meter *meter;
    int64_t nanos;                      /* price per unit, 10^-9 of the currency */
    unsigned __int128 divisor;          /* base units x nanos per micro */
};

/*
 * One resource charged at one price (an instance, an interface's egress, a
 * mountpoint): the last counter reading it was charged up to, and the money
 * below one micro not yet emitted, in 10^-9 currency x base units.
 */
struct cost_line {
    const struct cost_price *price;
    char resource[COST_NAME_MAX + 32];
    uint64_t prev;                      /* counters: the last reading */
    unsigned __int128 carry;            /* < price->divisor */
};

struct cost_ctx {
    /* options */
    const char *currency;               /* ISO 4217 */
    struct pipit_strmap prices;         /* catalogue key -> decimal price */
    struct pipit_strmap metric_prices;  /* meter -> decimal price */
    struct pipit_strmap labels;         /* added to every record */
    const char *proc_path;              /* root of procfs */
    struct pipit_strlist include;       /* interface globs; empty: all */
    struct pipit_strlist exclude;       /* interface globs */
    struct pipit_strlist disks;         /* block device globs */
    struct pipit_strlist filesystems;   /* mountpoints */
    const char *fs_usage_file;          /* test hook, see cost_sample.h */
    int64_t max_resources;              /* cap on lines */

    /* state */
    struct cost_source src;
    struct cost_sample sample;
    struct cost_price *price;           /* configured prices */
    size_t nprices;
    struct cost_line *lines;            /* charged resources, up to max_resources */
    size_t nlines, lines_alloc;
    size_t cursor;                      /* where the next search starts */
    struct pipit_label *rlabels;        /* labels + "meter", for records */
    size_t nrlabels;
    uint64_t uptime_cs;                 /* uptime at the last reading */
    int64_t last_ns;                    /* wall time of the last reading */
    long ticks_per_s;                   /* USER_HZ */
    size_t over_cap;                    /* resources beyond the cap, this reading */
};

static const struct pipit_option cost_options[] = {
    PIPIT_OPT_STRING("currency", "USD", struct cost_ctx, currency,
                     "ISO 4217 code of every price and record"),
    PIPIT_OPT_MAP("prices", struct cost_ctx, prices,
                  "Catalogue: instance_hour, filesystem_gb_month, egress_gb, each a "
                  "decimal price per unit (\"0.0416\")"),
    PIPIT_OPT_MAP("metric_prices", struct cost_ctx, metric_prices,
                  "Price per unit of any meter the plugin measures (see "
                  "docs/plugins/cost.md), e.g. cpu_core_seconds: \"0.0000125\""),
    PIPIT_OPT_MAP("labels", struct cost_ctx, labels,
                  "Labels of every cost record: provider, region, team, environment..."),
    PIPIT_OPT_STRING("proc_path", "/proc", struct cost_ctx, proc_path,
                     "Directory where procfs is mounted"),
    PIPIT_OPT_LIST("include_interfaces", struct cost_ctx, include,
                   "Interfaces whose traffic is charged (globs); empty: all"),
    PIPIT_OPT_LIST_DEF("exclude_interfaces", "[lo]", struct cost_ctx, exclude,
                       "Interfaces never charged (globs); loopback is not egress"),
    PIPIT_OPT_LIST_DEF("disk_devices", "[sd?, vd?, xvd?, hd?, nvme?n?, nvme??n?, mmcblk?]",
                       struct cost_ctx, disks,
                       "Block devices whose I/O is charged (globs); the default takes "
                       "whole disks, not their partitions, so no byte counts twice"),
    PIPIT_OPT_LIST_DEF("filesystems", "[/]", struct cost_ctx, filesystems,
                       "Mountpoints whose used space is charged"),
    PIPIT_OPT_STRING("filesystem_usage_file", NULL, struct cost_ctx, fs_usage_file,
                     "Test hook: read \"mountpoint used_bytes\" lines from this file "
                     "instead of statvfs(); leave unset"),
    PIPIT_OPT_INT("max_resources", "1024", 1, 100000, struct cost_ctx, max_resources,
                  "Charge at most this many resources (price x interface or "
                  "mountpoint); more are counted and logged"),
    PIPIT_OPT_END
};

static int cost_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

/* ---- the catalogue -------------------------------------------------------- */

static const struct cost_meter *cost_meter_find(const struct cost_meter *v, size_t n,
                                                const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

/* The names of v as "a, b, c" into buf, for error messages. */
static const char *cost_meter_names(const struct cost_meter *v, size_t n, char *buf,
                                    size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "", v[i].name);
    return buf;
}

/*
 * Add the prices of one map option (option: its key) whose keys must be
 * names of v. Each price is an exact decimal, at most nine places, not
 * negative. Errors name option.key and the reason. Returns PIPIT_OK or
 * PIPIT_ECONFIG.
 */
static int cost_add_prices(pipit_instance *ins, struct cost_ctx *ctx, const char *option,
                           const struct pipit_strmap *m, const struct cost_meter *v,
                           size_t n)
{
    char names[512];

    for (size_t i = 0; i < m->count; i++) {
        const struct cost_meter *meter = cost_meter_find(v, n, m->keys[i]);
        struct cost_price *p = &ctx->price[ctx->nprices];
        int rc;

        if (!meter) {
            api->log(ins, PIPIT_LOG_ERROR, "%s.%s: unknown %s; known: %s", option,
                     m->keys[i], v == cost_catalogue ? "price" : "meter",
                     cost_meter_names(v, n, names, sizeof names));
            return PIPIT_ECONFIG;
        }
        rc = decimal_parse_str(m->values[i], DECIMAL_NANO, &p->nanos);
        if (rc == DECIMAL_EPRECISION) {
            api->log(ins, PIPIT_LOG_ERROR, "%s.%s: price \"%s\" has more than %d decimal "
                     "places", option, m->keys[i], m->values[i], DECIMAL_NANO);
            return PIPIT_ECONFIG;
        }
        if (rc != DECIMAL_OK) {
            api->log(ins, PIPIT_LOG_ERROR, "%s.%s: price \"%s\" is %s", option, m->keys[i],
                     m->values[i], decimal_strerror(rc));
            return PIPIT_ECONFIG;
        }
        if (p->nanos < 0) {
            api->log(ins, PIPIT_LOG_ERROR, "%s.%s: price \"%s\" is negative", option,
                     m->keys[i], m->values[i]);
            return PIPIT_ECONFIG;
        }
        p->meter = meter;
        ctx->src.need |= cost_measure_need[meter->measure];
        p->divisor = (unsigned __int128)meter->per_unit *
                     (meter->ticks ? (unsigned long long)ctx->ticks_per_s : 1u) *
                     COST_NANOS_PER_MICRO;
        ctx->nprices++;
    }
    return PIPIT_OK;
}

static bool cost_currency_valid(const char *c)
{
    for (int i = 0; i < 3; i++)
        if (c[i] < 'A' || c[i] > 'Z')
            return false;
    return c[3] == '\0';
}

/* The labels of every record: the configured ones, then "meter". */
static int cost_make_labels(pipit_instance *ins, struct cost_ctx *ctx)
{
    if (ctx->labels.count >= COST_LABELS_MAX) {
        api->log(ins, PIPIT_LOG_ERROR, "labels: %zu labels, more than the %d a record "
                 "holds besides meter", ctx->labels.count, COST_LABELS_MAX - 1);
        return PIPIT_ECONFIG;
    }
    ctx->nrlabels = ctx->labels.count + 1;
    ctx->rlabels = calloc(ctx->nrlabels, sizeof *ctx->rlabels);
    if (!ctx->rlabels)
        return PIPIT_ENOMEM;
    for (size_t i = 0; i < ctx->labels.count; i++) {
        if (strcmp(ctx->labels.keys[i], "meter") == 0) {
            api->log(ins, PIPIT_LOG_ERROR, "labels.meter: the plugin sets this label "
                     "itself (the meter of each record)");
            return PIPIT_ECONFIG;
        }
        ctx->rlabels[i].key = ctx->labels.keys[i];
        ctx->rlabels[i].value = ctx->labels.values[i];
    }
    ctx->rlabels[ctx->labels.count].key = "meter";
    return PIPIT_OK;
}

/* ---- charging --------------------------------------------------------------- */

/*
 * The line charging resource at price p, made when new; NULL beyond the cap
 * (counted in over_cap) or out of memory. *fresh tells a new line. Readings
 * list resources in the same order each time, so the search starts after
 * the line found last and usually ends at once.
 */
static struct cost_line *cost_line_get(struct cost_ctx *ctx, const struct cost_price *p,
                                       const char *resource, bool *fresh)
{
    struct cost_line *l;

    *fresh = false;
    for (size_t n = 0; n < ctx->nlines; n++) {
        size_t i = (ctx->cursor + n) % ctx->nlines;
        if (ctx->lines[i].price == p && strcmp(ctx->lines[i].resource, resource) == 0) {
            ctx->cursor = i + 1;
            return &ctx->lines[i];
        }
    }
    if (ctx->nlines == (size_t)ctx->max_resources) {
        ctx->over_cap++;
        return NULL;
    }
    if (ctx->nlines == ctx->lines_alloc) {
        size_t na = ctx->lines_alloc ? ctx->lines_alloc * 2 : 16;
        struct cost_line *nl = realloc(ctx->lines, na * sizeof *nl);

        if (!nl)
            return NULL;
        ctx->lines = nl;
        ctx->lines_alloc = na;
    }
    l = &ctx->lines[ctx->nlines++];
    memset(l, 0, sizeof *l);
    l->price = p;
    snprintf(l->resource, sizeof l->resource, "%s", resource);
    ctx->cursor = ctx->nlines;
    *fresh = true;
    return l;
}

/*
 * The increase of a counter since the line's last reading. A new line
 * starts from the reading (nothing charged) on the first reading, and from
 * zero after it: a resource that appears later (an interface made since)
 * used all it counts within the interval. A counter below its last reading
 * restarted (a reboot, an interface made again): its whole value is the
 * use since then. Never negative, never more than the counter holds.
 */
static uint64_t cost_counter_delta(struct cost_line *l, bool fresh, bool baseline,
                                   uint64_t cur)
{
    uint64_t d;

    if (fresh)
        d = baseline ? 0 : cur;
    else
        d = cur >= l->prev ? cur - l->prev : cur;
    l->prev = cur;
    return d;
}

/*
 * Charge usage (base units) at the line's price and emit the whole micros
 * of it, carrying what is below one micro to the next interval: the micros
 * of a line's records always sum to floor(price x total usage), the bill of
 * the total. Returns PIPIT_OK, or PIPIT_ERANGE (logged) when the interval's
 * money does not fit, in which case nothing is charged for it.
 */
static int cost_line_charge(pipit_instance *ins, struct cost_ctx *ctx,
                            struct cost_line *l, unsigned __int128 usage, int64_t *micros)
{
    const struct cost_price *p = l->price;
    unsigned __int128 money, total, q;

    if (__builtin_mul_overflow((unsigned __int128)p->nanos, usage, &money) ||
        __builtin_add_overflow(money, l->carry, &total) ||
        (q = total / p->divisor) > (unsigned __int128)INT64_MAX) {
        api->log(ins, PIPIT_LOG_ERROR, "%s: the cost of one interval is out of range; "
                 "not charged", l->resource);
        return PIPIT_ERANGE;
    }
    l->carry = total % p->divisor;
    *micros = (int64_t)q;
    return PIPIT_OK;
}

static void cost_emit(pipit_instance *ins, struct cost_ctx *ctx, const struct cost_line *l,
                      int64_t micros, int64_t now)
{
    ctx->rlabels[ctx->nrlabels - 1].value = l->price->meter->name;
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = PIPIT_COST, .time_ns = now,
        .labels = ctx->rlabels, .nlabels = ctx->nrlabels,
        .amount = (double)micros / 1e6, .amount_micros = micros,
        .currency = ctx->currency, .resource = l->resource,
        .period_start_ns = ctx->last_ns, .period_end_ns = now,
    };

    (void)api->emit(ins, &rec);
}

/*
 * Charge one resource of price p: the line's usage over the interval of dt
 * centiseconds, from a counter reading or a level held over dt. Emits the
 * record unless this is the baseline reading.
 */
static void cost_charge(pipit_instance *ins, struct cost_ctx *ctx, const struct cost_price *p,
                        const char *item, uint64_t reading, uint64_t dt, bool baseline,
                        int64_t now)
{
    char resource[COST_NAME_MAX + 32];
    unsigned __int128 usage;
    int64_t micros;
    bool fresh;

    if (item)
        snprintf(resource, sizeof resource, "%s:%s", p->meter->resource, item);
    else
        snprintf(resource, sizeof resource, "%s", p->meter->resource);
    struct cost_line *l = cost_line_get(ctx, p, resource, &fresh);
    if (!l)
        return;
    switch (p->meter->measure) {
    case COST_UPTIME:
        usage = dt;
        break;
    case COST_MEMORY:
    case COST_FS:
        usage = (unsigned __int128)reading * dt;
        break;
    default:
        usage = cost_counter_delta(l, fresh, baseline, reading);
        break;
    }
    if (baseline || cost_line_charge(ins, ctx, l, usage, &micros) != PIPIT_OK)
        return;
    cost_emit(ins, ctx, l, micros, now);
}

/* Charge every price over the interval that ends with ctx->sample. */
static void cost_charge_all(pipit_instance *ins, struct cost_ctx *ctx, bool baseline,
                            int64_t now)
{
    const struct cost_sample *s = &ctx->sample;
    /* uptime below the last reading: the host restarted, and was up for
     * the whole of its uptime within the interval */
    uint64_t dt = s->uptime_cs >= ctx->uptime_cs ? s->uptime_cs - ctx->uptime_cs
                                                  : s->uptime_cs;

    ctx->over_cap = 0;
    for (size_t i = 0; i < ctx->nprices; i++) {
        const struct cost_price *p = &ctx->price[i];

        switch (p->meter->measure) {
        case COST_UPTIME:
            cost_charge(ins, ctx, p, NULL, 0, dt, baseline, now);
            break;
        case COST_CPU:
            cost_charge(ins, ctx, p, NULL, s->cpu_busy_ticks, dt, baseline, now);
            break;
        case COST_MEMORY:
            cost_charge(ins, ctx, p, NULL, s->mem_used_bytes, dt, baseline, now);
            break;
        case COST_NET_RX:
        case COST_NET_TX:
            for (size_t k = 0; k < s->nifs; k++)
                cost_charge(ins, ctx, p, s->ifs[k].name,
                            p->meter->measure == COST_NET_RX ? s->ifs[k].a : s->ifs[k].b,
                            dt, baseline, now);
            break;
        case COST_DISK_READ:
        case COST_DISK_WRITE:
            for (size_t k = 0; k < s->ndisks; k++)
                cost_charge(ins, ctx, p, s->disks[k].name,
                            p->meter->measure == COST_DISK_READ ? s->disks[k].a
                                                                : s->disks[k].b,
                            dt, baseline, now);
            break;
        case COST_FS:
            for (size_t k = 0; k < s->nfs; k++)
                cost_charge(ins, ctx, p, s->fs[k].name, s->fs[k].a, dt, baseline, now);
            break;
        }
    }
    if (ctx->over_cap)
        api->log(ins, PIPIT_LOG_WARN, "%zu resources beyond max_resources=%lld are not "
                 "charged", ctx->over_cap, (long long)ctx->max_resources);
    ctx->uptime_cs = s->uptime_cs;
    ctx->last_ns = now;
}

/* ---- the plugin ------------------------------------------------------------- */

static void cost_free(struct cost_ctx *ctx)
{
    cost_sample_free(&ctx->sample);
    free(ctx->price);
    free(ctx->lines);
    free(ctx->rlabels);
    ctx->price = NULL;
    ctx->lines = NULL;
    ctx->rlabels = NULL;
}

/*
 * Check the catalogue, currency and labels, then take the first reading as
 * the baseline: the first collection charges the interval since init.
 */
static int cost_init(pipit_instance *ins, void *data)
{
    struct cost_ctx *ctx = data;
    int rc;

    if (!cost_currency_valid(ctx->currency)) {
        api->log(ins, PIPIT_LOG_ERROR, "currency: \"%s\" is not an ISO 4217 code "
                 "(three letters A-Z)", ctx->currency);
        return PIPIT_ECONFIG;
    }
    if (ctx->prices.count + ctx->metric_prices.count == 0) {
        api->log(ins, PIPIT_LOG_ERROR, "nothing to charge: set prices or metric_prices");
        return PIPIT_ECONFIG;
    }
    ctx->ticks_per_s = sysconf(_SC_CLK_TCK);
    if (ctx->ticks_per_s <= 0)
        ctx->ticks_per_s = 100;         /* USER_HZ on every Linux ABI */
    ctx->price = calloc(ctx->prices.count + ctx->metric_prices.count, sizeof *ctx->price);
    if (!ctx->price)
        return PIPIT_ENOMEM;
    if ((rc = cost_add_prices(ins, ctx, "prices", &ctx->prices, cost_catalogue,
                              COST_NELEM(cost_catalogue))) != PIPIT_OK ||
        (rc = cost_add_prices(ins, ctx, "metric_prices", &ctx->metric_prices, cost_meters,
                              COST_NELEM(cost_meters))) != PIPIT_OK ||
        (rc = cost_make_labels(ins, ctx)) != PIPIT_OK)
        goto fail;
    ctx->src.proc_path = ctx->proc_path;
    ctx->src.include = &ctx->include;
    ctx->src.exclude = &ctx->exclude;
    ctx->src.disks = &ctx->disks;
    ctx->src.filesystems = &ctx->filesystems;
    ctx->src.fs_usage_file = ctx->fs_usage_file;
    if ((rc = cost_sample_read(api, ins, &ctx->src, &ctx->sample)) != PIPIT_OK)
        goto fail;
    cost_charge_all(ins, ctx, true, api->now_ns());
    return PIPIT_OK;
fail:
    cost_free(ctx);
    return rc;
}

/* Read the measurements and charge the interval since the last reading. A
 * reading that fails charges nothing: the next one covers the interval. */
static int cost_collect(pipit_instance *ins, void *data)
{
    struct cost_ctx *ctx = data;
    int rc;

    if ((rc = cost_sample_read(api, ins, &ctx->src, &ctx->sample)) != PIPIT_OK)
        return rc;
    cost_charge_all(ins, ctx, false, api->now_ns());
    return PIPIT_OK;
}

static void cost_fini(pipit_instance *ins, void *data)
{
    (void)ins;
    cost_free(data);
}

PIPIT_PLUGIN_DEFINE(
    .name = "cost", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "The host's usage priced from a catalogue, as exact cost records",
    .ctx_size = sizeof(struct cost_ctx), .options = cost_options,
    .load = cost_load, .init = cost_init, .collect = cost_collect,
    .fini = cost_fini);
