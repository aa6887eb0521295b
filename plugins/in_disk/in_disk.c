/* in_disk: filesystem usage via statvfs() and block device I/O from /proc/diskstats. */
#define _GNU_SOURCE
#include <pipit/plugin.h>
#include "procfile.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

#define DISK_FILE_MAX  (64u << 20)      /* refuse a mount table or diskstats larger */
#define DISK_NAME_MAX  64               /* kernel device names are at most 31 bytes */
#define DISK_NSTATS    17               /* columns after the name (kernel 5.5+) */
#define DISK_MINSTATS  11               /* columns every kernel since 2.6.25 prints */
#define DISK_SECTOR    512.0            /* diskstats counts 512-byte sectors */

static const struct pipit_api *api;     /* borrowed from the host */

/* A list option with a default, written as a YAML flow sequence. */
#define DISK_OPT_LIST_DEF(n, d, f, h) \
    { (n), PIPIT_OPT_T_LIST, (d), offsetof(struct disk_ctx, f), 0, 1, 0, (h) }

#define DISK_DEFAULT_EXCLUDE_FSTYPES                                        \
    "[autofs, binfmt_misc, bpf, cgroup, cgroup2, configfs, debugfs, devpts, " \
    "devtmpfs, efivarfs, fusectl, hugetlbfs, mqueue, nsfs, overlay, proc, "  \
    "pstore, ramfs, rpc_pipefs, securityfs, selinuxfs, squashfs, sysfs, "    \
    "tracefs]"
#define DISK_DEFAULT_EXCLUDE_MOUNTS                                         \
    "[/dev, /dev/*, /proc, /proc/*, /sys, /sys/*, /run/credentials/*, "      \
    "/var/lib/docker/*, /var/lib/containers/storage/*, /var/lib/kubelet/pods/*]"
#define DISK_DEFAULT_EXCLUDE_DEVICES "[loop*, ram*]"

/* One mount table entry; strings point into ctx->mbuf. */
struct disk_mount {
    const char *device, *mountpoint, *fstype;
    size_t line;                        /* position in the table */
    bool shadowed;                      /* a later entry has this mountpoint */
};

/* One line of /proc/diskstats. */
struct disk_dev {
    char name[DISK_NAME_MAX];
    uint64_t v[DISK_NSTATS];
    int ncols;                          /* columns present: 11, 15 or 17 */
};

/* One counter of /proc/diskstats per direction: column or -1, and scale. */
struct disk_io_metric {
    const char *name;
    int col[4];                         /* read, write, discard, flush */
    double mul, div;                    /* value = column * mul / div */
};

static const char *const disk_directions[4] = {
    "read", "write", "discard", "flush"
};

static const struct disk_io_metric disk_io_metrics[] = {
    { "disk.operations",             { 0, 4, 11, 15 }, 1, 1 },
    { "disk.merged_operations",      { 1, 5, 12, -1 }, 1, 1 },
    { "disk.io_bytes",               { 2, 6, 13, -1 }, DISK_SECTOR, 1 },
    { "disk.operation_time_seconds", { 3, 7, 14, 16 }, 1, 1000 },
};

struct disk_ctx {
    /* options */
    const char *proc_path;              /* root of procfs */
    const char *mounts_path;            /* mount table; "" = <proc_path>/self/mounts */
    const char *root_path;              /* prefix for statvfs() paths */
    bool filesystems;                   /* report filesystem usage */
    bool io;                            /* report /proc/diskstats */
    struct pipit_strlist include_mounts, exclude_mounts;
    struct pipit_strlist include_fstypes, exclude_fstypes;
    struct pipit_strlist include_devices, exclude_devices;
    int64_t max_mounts;                 /* cap on filesystems reported */
    int64_t max_devices;                /* cap on block devices reported */

    /* state */
    char mounts_file[4096];             /* resolved mount table path */
    char stats_file[4096];              /* <proc_path>/diskstats */
    char *mbuf, *sbuf;                  /* file contents, reused */
    size_t mbufcap, sbufcap;
    struct disk_mount *mounts;          /* every entry of the table, reused */
    size_t nmounts, mounts_alloc;
    struct disk_mount **order;          /* entries sorted by mountpoint */
    size_t order_alloc;
    struct disk_dev *devs;              /* selected devices, reused */
    size_t ndevs, devs_alloc;
    bool mounts_cap_logged, devs_cap_logged;
    int watch_fd;                       /* the mount table open for poll() */
    bool watching;                      /* watch_fd is open (procfs table) */
    bool mounts_current;                /* ctx->mounts parsed since the last change */
};

static const struct pipit_option disk_options[] = {
    PIPIT_OPT_STRING("proc_path", "/proc", struct disk_ctx, proc_path,
                     "Directory where procfs is mounted (read <proc_path>/diskstats)"),
    PIPIT_OPT_STRING("mounts_path", "", struct disk_ctx, mounts_path,
                     "Mount table to read; empty means <proc_path>/self/mounts"),
    PIPIT_OPT_STRING("root_path", "", struct disk_ctx, root_path,
                     "Prefix put before each mountpoint for statvfs(), e.g. /host "
                     "when the host's root is mounted there"),
    PIPIT_OPT_BOOL("filesystems", "true", struct disk_ctx, filesystems,
                   "Report usage of mounted filesystems (disk.*_bytes, inodes)"),
    PIPIT_OPT_BOOL("io", "true", struct disk_ctx, io,
                   "Report block device I/O counters from <proc_path>/diskstats"),
    PIPIT_OPT_LIST("include_mounts", struct disk_ctx, include_mounts,
                   "Report only mountpoints matching one of these globs; empty: all"),
    DISK_OPT_LIST_DEF("exclude_mounts", DISK_DEFAULT_EXCLUDE_MOUNTS, exclude_mounts,
                      "Never report mountpoints matching one of these globs"),
    PIPIT_OPT_LIST("include_fstypes", struct disk_ctx, include_fstypes,
                   "Report only filesystem types matching one of these globs; empty: all"),
    DISK_OPT_LIST_DEF("exclude_fstypes", DISK_DEFAULT_EXCLUDE_FSTYPES, exclude_fstypes,
                      "Never report filesystem types matching one of these globs"),
    PIPIT_OPT_LIST("include_devices", struct disk_ctx, include_devices,
                   "Report I/O only for devices (sda, nvme0n1p1) matching one of "
                   "these globs; empty: all"),
    DISK_OPT_LIST_DEF("exclude_devices", DISK_DEFAULT_EXCLUDE_DEVICES, exclude_devices,
                      "Never report I/O for devices matching one of these globs"),
    PIPIT_OPT_INT("max_mounts", "256", 1, 1000000, struct disk_ctx, max_mounts,
                  "Report at most this many filesystems; more are counted and logged"),
    PIPIT_OPT_INT("max_devices", "256", 1, 1000000, struct disk_ctx, max_devices,
                  "Report at most this many block devices; more are counted and logged"),
    PIPIT_OPT_END
};

static int disk_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

static bool disk_match_any(const struct pipit_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->count; i++)
        if (fnmatch(l->items[i], s, 0) == 0)
            return true;
    return false;
}

/* include (empty: everything) minus exclude. */
static bool disk_wanted(const struct pipit_strlist *inc,
                        const struct pipit_strlist *exc, const char *s)
{
    if (inc->count && !disk_match_any(inc, s))
        return false;
    return !disk_match_any(exc, s);
}

/*
 * Cut the next blank-separated field of a mount table line at *p, decode
 * its octal escapes (\040 for a space, \011, \012, \134) in place and
 * NUL-terminate it. Returns the field, or NULL at the end of the line.
 */
static char *disk_field(char **p)
{
    char *s = *p, *start, *out;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0')
        return NULL;
    start = out = s;
    while (*s && *s != ' ' && *s != '\t') {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
            s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
            s += 4;
        } else {
            *out++ = *s++;
        }
    }
    if (*s)
        s++;
    *out = '\0';
    *p = s;
    return start;
}

/* qsort over struct disk_mount pointers: by mountpoint, then table order. */
static int disk_cmp_mount(const void *a, const void *b)
{
    const struct disk_mount *x = *(const struct disk_mount *const *)a;
    const struct disk_mount *y = *(const struct disk_mount *const *)b;
    int c = strcmp(x->mountpoint, y->mountpoint);

    if (c)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

/*
 * Parse the mount table in ctx->mbuf into ctx->mounts and mark entries that
 * a later mount on the same mountpoint hides (statvfs() sees only the top
 * one). Every line needs the six fields the kernel prints. Returns PIPIT_OK,
 * PIPIT_EPARSE (logged) or PIPIT_ENOMEM.
 */
static int disk_parse_mounts(pipit_instance *ins, struct disk_ctx *ctx)
{
    char *line = ctx->mbuf;
    size_t lineno = 0;

    ctx->nmounts = 0;
    while (*line) {
        char *nl = strchr(line, '\n');
        char *p = line, *f[6];
        int nf = 0;

        lineno++;
        if (nl)
            *nl = '\0';
        while (nf < 6 && (f[nf] = disk_field(&p)) != NULL)
            nf++;
        if (nf == 0)
            goto next;                  /* blank line */
        if (nf < 6) {
            api->log(ins, PIPIT_LOG_ERROR, "%s:%zu: malformed line",
                     ctx->mounts_file, lineno);
            return PIPIT_EPARSE;
        }
        if (ctx->nmounts == ctx->mounts_alloc) {
            size_t n = ctx->mounts_alloc ? ctx->mounts_alloc * 2 : 64;
            struct disk_mount *nm = realloc(ctx->mounts, n * sizeof *nm);

            if (!nm)
                return PIPIT_ENOMEM;
            ctx->mounts = nm;
            ctx->mounts_alloc = n;
        }
        ctx->mounts[ctx->nmounts] = (struct disk_mount){
            .device = f[0], .mountpoint = f[1], .fstype = f[2],
            .line = ctx->nmounts,
        };
        ctx->nmounts++;
next:
        if (!nl)
            break;
        line = nl + 1;
    }

    if (ctx->nmounts == 0)
        return PIPIT_OK;
    if (ctx->order_alloc < ctx->nmounts) {
        struct disk_mount **no = realloc(ctx->order,
                                         ctx->mounts_alloc * sizeof *no);

        if (!no)
            return PIPIT_ENOMEM;
        ctx->order = no;
        ctx->order_alloc = ctx->mounts_alloc;
    }
    for (size_t i = 0; i < ctx->nmounts; i++)
        ctx->order[i] = &ctx->mounts[i];
    qsort(ctx->order, ctx->nmounts, sizeof *ctx->order, disk_cmp_mount);
    for (size_t i = 0; i + 1 < ctx->nmounts; i++)
        ctx->order[i]->shadowed = strcmp(ctx->order[i]->mountpoint,
                                         ctx->order[i + 1]->mountpoint) == 0;
    return PIPIT_OK;
}

/*
 * Watch the mount table when it is procfs: poll() on an open
 * /proc/<pid>/mounts reports POLLPRI once the mount namespace has changed
 * since the last poll, so a collection rereads and parses the table only
 * then. Any other file (a copy, a test fixture) is read at every
 * collection, as it cannot say that it changed.
 */
static void disk_watch_open(struct disk_ctx *ctx)
{
    struct statfs fs;
    int fd = open(ctx->mounts_file, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return;                         /* the read that follows says why */
    if (fstatfs(fd, &fs) != 0 || fs.f_type != PROC_SUPER_MAGIC) {
        close(fd);
        return;
    }
    ctx->watch_fd = fd;
    ctx->watching = true;
}

/*
 * Whether ctx->mounts still describes the mount table. The poll() also
 * clears the event, before the table is read again.
 */
static bool disk_mounts_unchanged(struct disk_ctx *ctx)
{
    struct pollfd pfd = { .fd = ctx->watch_fd, .events = POLLPRI };
    bool changed;

    if (!ctx->watching)
        return false;
    changed = poll(&pfd, 1, 0) != 0;    /* an event or an error: read again */
    return !changed && ctx->mounts_current;
}

/*
 * Read and parse the mount table unless it has not changed since the
 * last parse. Returns PIPIT_OK or the error of procfile_read or
 * disk_parse_mounts (logged); after an error the next call reads again.
 */
static int disk_read_mounts(pipit_instance *ins, struct disk_ctx *ctx)
{
    int rc;

    if (disk_mounts_unchanged(ctx))
        return PIPIT_OK;
    ctx->mounts_current = false;
    rc = procfile_read(api, ins, ctx->mounts_file, DISK_FILE_MAX, 8192,
                       &ctx->mbuf, &ctx->mbufcap, NULL);
    if (rc == PIPIT_OK)
        rc = disk_parse_mounts(ins, ctx);
    ctx->mounts_current = rc == PIPIT_OK;
    return rc;
}

static void disk_emit(pipit_instance *ins, int64_t t, int type,
                      const char *name, double value,
                      const struct pipit_label *labels, size_t nlabels)
{
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = PIPIT_METRIC, .time_ns = t,
        .labels = labels, .nlabels = nlabels, .name = name,
        .metric_type = type, .value = value,
    };

    (void)api->emit(ins, &rec);
}

/*
 * Report usage of every mounted filesystem that passes the filters, in
 * table order. A mountpoint that cannot be examined (gone, no permission,
 * a stale network mount) is skipped quietly; zero-sized pseudo
 * filesystems are skipped too.
 */
static int disk_collect_filesystems(pipit_instance *ins, struct disk_ctx *ctx,
                                    int64_t t)
{
    size_t reported = 0, over = 0;
    char path[8192];
    int rc;

    if ((rc = disk_read_mounts(ins, ctx)) != PIPIT_OK)
        return rc;

    for (size_t i = 0; i < ctx->nmounts; i++) {
        const struct disk_mount *m = &ctx->mounts[i];
        struct statvfs sv;
        double frsize, total, freeb, avail, used;

        if (m->shadowed ||
            !disk_wanted(&ctx->include_fstypes, &ctx->exclude_fstypes, m->fstype) ||
            !disk_wanted(&ctx->include_mounts, &ctx->exclude_mounts, m->mountpoint))
            continue;
        if (reported >= (size_t)ctx->max_mounts) {
            over++;
            continue;
        }
        if ((size_t)snprintf(path, sizeof path, "%s%s", ctx->root_path,
                             m->mountpoint) >= sizeof path)
            continue;
        if (statvfs(path, &sv) != 0) {
            char ebuf[128];

            api->log(ins, PIPIT_LOG_DEBUG, "statvfs %s: %s", path,
                     strerror_r(errno, ebuf, sizeof ebuf));
            continue;
        }
        if (sv.f_blocks == 0)
            continue;
        reported++;

        struct pipit_label labels[3] = {
            { "device", m->device }, { "mountpoint", m->mountpoint },
            { "fstype", m->fstype },
        };
        frsize = sv.f_frsize ? (double)sv.f_frsize : (double)sv.f_bsize;
        total = (double)sv.f_blocks * frsize;
        freeb = (double)sv.f_bfree * frsize;
        avail = (double)sv.f_bavail * frsize;
        used = total - freeb;
        disk_emit(ins, t, PIPIT_GAUGE, "disk.total_bytes", total, labels, 3);
        disk_emit(ins, t, PIPIT_GAUGE, "disk.free_bytes", freeb, labels, 3);
        disk_emit(ins, t, PIPIT_GAUGE, "disk.avail_bytes", avail, labels, 3);
        disk_emit(ins, t, PIPIT_GAUGE, "disk.used_bytes", used, labels, 3);
        /* As df: the share of what non-root users can have. */
        if (used + avail > 0)
            disk_emit(ins, t, PIPIT_GAUGE, "disk.utilization",
                      used / (used + avail), labels, 3);
        if (sv.f_files > 0) {
            double ifree = (double)sv.f_ffree, itotal = (double)sv.f_files;

            disk_emit(ins, t, PIPIT_GAUGE, "disk.inodes_total", itotal, labels, 3);
            disk_emit(ins, t, PIPIT_GAUGE, "disk.inodes_free", ifree, labels, 3);
            disk_emit(ins, t, PIPIT_GAUGE, "disk.inodes_used", itotal - ifree,
                      labels, 3);
            disk_emit(ins, t, PIPIT_GAUGE, "disk.inodes_utilization",
                      (itotal - ifree) / itotal, labels, 3);
        }
        disk_emit(ins, t, PIPIT_GAUGE, "disk.readonly",
                  (sv.f_flag & ST_RDONLY) ? 1 : 0, labels, 3);
    }
    if (over && !ctx->mounts_cap_logged) {
        api->log(ins, PIPIT_LOG_WARN,
                 "%zu filesystems beyond max_mounts=%lld are not reported",
                 over, (long long)ctx->max_mounts);
        ctx->mounts_cap_logged = true;
    }
    return PIPIT_OK;
}

/*
 * Parse ctx->sbuf (/proc/diskstats: "major minor name" and 11, 15 or 17
 * counters) into ctx->devs, keeping the devices that pass the filters, up
 * to max_devices (the rest are counted in *over). Every line is checked
 * before anything is emitted. Returns PIPIT_OK, PIPIT_EPARSE (logged) or
 * PIPIT_ENOMEM.
 */
static int disk_parse_stats(pipit_instance *ins, struct disk_ctx *ctx,
                            size_t *over)
{
    const char *line = ctx->sbuf;
    size_t lineno = 0;

    ctx->ndevs = 0;
    *over = 0;
    while (*line) {
        const char *nl = strchr(line, '\n'), *p = line, *name;
        struct disk_dev tmp, *d;
        uint64_t major, minor, v;
        size_t len;
        int r;

        lineno++;
        if (procfile_u64(&p, &major) != 1 || procfile_u64(&p, &minor) != 1)
            goto bad;
        while (*p == ' ' || *p == '\t')
            p++;
        name = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        len = (size_t)(p - name);
        if (len == 0 || len >= DISK_NAME_MAX)
            goto bad;
        memcpy(tmp.name, name, len);
        tmp.name[len] = '\0';
        tmp.ncols = 0;
        while ((r = procfile_u64(&p, &v)) == 1)
            if (tmp.ncols < DISK_NSTATS)    /* newer kernels may add columns */
                tmp.v[tmp.ncols++] = v;
        if (r < 0 || tmp.ncols < DISK_MINSTATS)
            goto bad;

        if (disk_wanted(&ctx->include_devices, &ctx->exclude_devices, tmp.name)) {
            if (ctx->ndevs >= (size_t)ctx->max_devices) {
                (*over)++;
            } else {
                if (ctx->ndevs == ctx->devs_alloc) {
                    size_t n = ctx->devs_alloc ? ctx->devs_alloc * 2 : 16;
                    struct disk_dev *nd = realloc(ctx->devs, n * sizeof *nd);

                    if (!nd)
                        return PIPIT_ENOMEM;
                    ctx->devs = nd;
                    ctx->devs_alloc = n;
                }
                d = &ctx->devs[ctx->ndevs++];
                *d = tmp;
            }
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    return PIPIT_OK;
bad:
    api->log(ins, PIPIT_LOG_ERROR, "%s:%zu: malformed line", ctx->stats_file,
             lineno);
    return PIPIT_EPARSE;
}

/* Report the I/O counters of the selected block devices. */
static int disk_collect_io(pipit_instance *ins, struct disk_ctx *ctx, int64_t t)
{
    size_t over;
    int rc;

    rc = procfile_read(api, ins, ctx->stats_file, DISK_FILE_MAX, 8192,
                       &ctx->sbuf, &ctx->sbufcap, NULL);
    if (rc == PIPIT_OK)
        rc = disk_parse_stats(ins, ctx, &over);
    if (rc != PIPIT_OK)
        return rc;

    for (size_t i = 0; i < ctx->ndevs; i++) {
        const struct disk_dev *d = &ctx->devs[i];
        struct pipit_label labels[2] = {
            { "device", d->name }, { "direction", NULL }
        };

        for (size_t m = 0; m < sizeof disk_io_metrics / sizeof disk_io_metrics[0]; m++) {
            const struct disk_io_metric *dm = &disk_io_metrics[m];

            for (int k = 0; k < 4; k++) {
                if (dm->col[k] < 0 || dm->col[k] >= d->ncols)
                    continue;
                labels[1].value = disk_directions[k];
                disk_emit(ins, t, PIPIT_COUNTER, dm->name,
                          (double)d->v[dm->col[k]] * dm->mul / dm->div,
                          labels, 2);
            }
        }
        disk_emit(ins, t, PIPIT_GAUGE, "disk.io_in_progress", (double)d->v[8],
                  labels, 1);
        disk_emit(ins, t, PIPIT_COUNTER, "disk.io_time_seconds",
                  (double)d->v[9] / 1000, labels, 1);
        disk_emit(ins, t, PIPIT_COUNTER, "disk.weighted_io_time_seconds",
                  (double)d->v[10] / 1000, labels, 1);
    }
    if (over && !ctx->devs_cap_logged) {
        api->log(ins, PIPIT_LOG_WARN,
                 "%zu devices beyond max_devices=%lld are not reported",
                 over, (long long)ctx->max_devices);
        ctx->devs_cap_logged = true;
    }
    return PIPIT_OK;
}

static void disk_free(struct disk_ctx *ctx)
{
    free(ctx->mbuf);
    free(ctx->sbuf);
    free(ctx->mounts);
    free(ctx->order);
    free(ctx->devs);
    ctx->mbuf = ctx->sbuf = NULL;
    ctx->mounts = NULL;
    ctx->order = NULL;
    ctx->devs = NULL;
    if (ctx->watching)
        close(ctx->watch_fd);
    ctx->watching = ctx->mounts_current = false;
}

/*
 * Resolve the paths and read each enabled source once, so that a wrong
 * path or an unreadable file fails here rather than at every collection.
 */
static int disk_init(pipit_instance *ins, void *data)
{
    struct disk_ctx *ctx = data;
    size_t over;
    int rc = PIPIT_OK, n;

    if (!ctx->filesystems && !ctx->io) {
        api->log(ins, PIPIT_LOG_ERROR, "filesystems and io are both false: "
                 "nothing to report");
        return PIPIT_ECONFIG;
    }
    if (ctx->mounts_path && *ctx->mounts_path)
        n = snprintf(ctx->mounts_file, sizeof ctx->mounts_file, "%s",
                     ctx->mounts_path);
    else
        n = snprintf(ctx->mounts_file, sizeof ctx->mounts_file,
                     "%s/self/mounts", ctx->proc_path);
    if ((size_t)n >= sizeof ctx->mounts_file ||
        (size_t)snprintf(ctx->stats_file, sizeof ctx->stats_file,
                         "%s/diskstats", ctx->proc_path) >= sizeof ctx->stats_file) {
        api->log(ins, PIPIT_LOG_ERROR, "proc_path or mounts_path is too long");
        return PIPIT_ECONFIG;
    }
    if (!ctx->root_path)
        ctx->root_path = "";
    if (ctx->filesystems) {
        disk_watch_open(ctx);
        rc = disk_read_mounts(ins, ctx);
    }
    if (rc == PIPIT_OK && ctx->io) {
        rc = procfile_read(api, ins, ctx->stats_file, DISK_FILE_MAX, 8192,
                           &ctx->sbuf, &ctx->sbufcap, NULL);
        if (rc == PIPIT_OK)
            rc = disk_parse_stats(ins, ctx, &over);
    }
    if (rc != PIPIT_OK)
        disk_free(ctx);
    return rc;
}

/*
 * One collection: filesystems, then devices. When one source fails the
 * other is still reported, and the first error is returned.
 */
static int disk_collect(pipit_instance *ins, void *data)
{
    struct disk_ctx *ctx = data;
    int64_t t = api->now_ns();
    int rc = PIPIT_OK, r;

    if (ctx->filesystems)
        rc = disk_collect_filesystems(ins, ctx, t);
    if (ctx->io && (r = disk_collect_io(ins, ctx, t)) != PIPIT_OK &&
        rc == PIPIT_OK)
        rc = r;
    return rc;
}

static void disk_fini(pipit_instance *ins, void *data)
{
    disk_free(data);
}

PIPIT_PLUGIN_DEFINE(
    .name = "disk", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "Filesystem usage and block device I/O",
    .ctx_size = sizeof(struct disk_ctx), .options = disk_options,
    .load = disk_load, .init = disk_init, .collect = disk_collect,
    .fini = disk_fini);
