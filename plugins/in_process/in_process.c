/* in_process: processes by state and threads from /proc/[pid]/stat, with CPU and RSS of chosen processes. */
#define _GNU_SOURCE
#include <pipit/plugin.h>
#include "procfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

#define PROCESS_STAT_MAX 4096           /* a stat line is a few hundred bytes */
#define PROCESS_FIELDS   24             /* fields used, counted as in proc(5) */

static const struct pipit_api *api;     /* borrowed from the host */

/* Process states of proc(5); `always` ones are reported even when zero. */
struct process_state {
    char letter;
    const char *name;
    bool always;
};

static const struct process_state process_states[] = {
    { 'R', "running",      true  },
    { 'S', "sleeping",     true  },
    { 'D', "disk_sleep",   true  },
    { 'T', "stopped",      true  },
    { 't', "tracing_stop", true  },
    { 'Z', "zombie",       true  },
    { 'X', "dead",         true  },
    { 'I', "idle",         true  },
    { 'P', "parked",       false },
    { 'K', "wakekill",     false },
    { 'W', "waking",       false },
    { '?', "unknown",      false },     /* anything else */
};
#define PROCESS_NSTATES (sizeof process_states / sizeof process_states[0])
#define PROCESS_UNKNOWN (PROCESS_NSTATES - 1)

struct process_ctx {
    /* options */
    const char *proc_path;              /* root of procfs */
    struct pipit_strlist match;         /* comm globs for per-process metrics */
    int64_t max_processes;              /* cap on per-process series */
    int64_t keep_open;                  /* cap on stat files kept open */

    /* state */
    long clk_tck;                       /* jiffies per second */
    long page_size;                     /* bytes per RSS page */
    bool cap_logged;                    /* max_processes warning given */
    size_t keep_max;                    /* keep_open within RLIMIT_NOFILE; 0 off */
    struct process_open *open;          /* kept stat files, sorted by pid */
    size_t nopen;
    struct process_open *next;          /* those of the scan running, same size */
    size_t nnext;
};

/* A /proc/<pid>/stat kept open between scans, read again with pread(). */
struct process_open {
    int pid;
    int fd;                             /* -1 once taken over by the scan */
};

/* What one /proc/[pid]/stat says. */
struct process_stat {
    const char *comm;                   /* points into the read buffer */
    char state;
    uint64_t utime, stime;              /* clock ticks */
    int64_t threads;
    int64_t rss;                        /* pages */
};

static const struct pipit_option process_options[] = {
    PIPIT_OPT_STRING("proc_path", "/proc", struct process_ctx, proc_path,
                     "Directory where procfs is mounted (scan <proc_path>/[pid]/stat)"),
    PIPIT_OPT_LIST("match", struct process_ctx, match,
                   "Report CPU time and RSS of each process whose name (comm) "
                   "matches one of these globs; empty reports none"),
    PIPIT_OPT_INT("max_processes", "100", 1, 100000, struct process_ctx,
                  max_processes,
                  "Report at most this many matching processes; more are "
                  "counted in process.untracked and logged"),
    PIPIT_OPT_INT("keep_open", "1024", 0, 1000000, struct process_ctx, keep_open,
                  "Keep up to this many /proc/<pid>/stat files open between "
                  "collections (at most a quarter of RLIMIT_NOFILE); 0 opens "
                  "each file at every collection"),
    PIPIT_OPT_END
};

static int process_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

static size_t process_state_index(char c)
{
    if (c == 'x')
        c = 'X';                        /* "dead" as Linux 3.9-3.13 wrote it */
    for (size_t i = 0; i < PROCESS_UNKNOWN; i++)
        if (process_states[i].letter == c)
            return i;
    return PROCESS_UNKNOWN;
}

/* A signed decimal after one or more blanks at *p; advance. */
static bool process_i64(char **p, int64_t *out)
{
    char *s = *p;
    bool neg = false;
    uint64_t v = 0;

    if (*s != ' ')
        return false;
    while (*s == ' ')
        s++;
    if (*s == '-') {
        neg = true;
        s++;
    }
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > ((uint64_t)INT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    *p = s;
    return true;
}

/*
 * Parse one stat line (NUL-terminated in buf, modified). The name may hold
 * blanks and parentheses, so it runs from the first '(' to the LAST ')'.
 * Fields follow as in proc(5): 3 state, 14 utime, 15 stime, 20 num_threads,
 * 24 rss. Returns true when all of them are there.
 */
static bool process_parse(char *buf, struct process_stat *st)
{
    char *lp = strchr(buf, '('), *rp = strrchr(buf, ')'), *p;
    int64_t f[PROCESS_FIELDS + 1];

    if (!lp || !rp || rp < lp)
        return false;
    *rp = '\0';
    st->comm = lp + 1;
    p = rp + 1;
    if (p[0] != ' ' || p[1] == '\0' || p[1] == ' ')
        return false;
    st->state = p[1];
    p += 2;
    for (int i = 4; i <= PROCESS_FIELDS; i++)
        if (!process_i64(&p, &f[i]))
            return false;
    if (f[14] < 0 || f[15] < 0)
        return false;
    st->utime = (uint64_t)f[14];
    st->stime = (uint64_t)f[15];
    st->threads = f[20];
    st->rss = f[24];
    return true;
}

/*
 * How many stat files init lets a scan keep open: keep_open, but at most a
 * quarter of the soft RLIMIT_NOFILE, so that the rest of the daemon keeps
 * its descriptors; and none unless dfd (proc_path) is procfs, where a file
 * kept open is formatted afresh at each pread() from offset 0 and fails
 * with ESRCH once its process has gone. A plain directory (a copy of /proc)
 * would go on returning the old contents.
 */
static size_t process_keep_max(const struct process_ctx *ctx, int dfd)
{
    struct statfs fs;
    struct rlimit rl;
    uint64_t n = (uint64_t)ctx->keep_open;

    if (n == 0 || fstatfs(dfd, &fs) != 0 || fs.f_type != PROC_SUPER_MAGIC)
        return 0;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
        && n > rl.rlim_cur / 4)
        n = rl.rlim_cur / 4;
    return (size_t)n;
}

static int process_open_cmp(const void *a, const void *b)
{
    const struct process_open *x = a, *y = b;

    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* The stat file of pid kept from the last scan, now owned by the caller; or -1. */
static int process_take(struct process_ctx *ctx, int pid)
{
    struct process_open key = { .pid = pid }, *o;
    int fd;

    o = bsearch(&key, ctx->open, ctx->nopen, sizeof *o, process_open_cmp);
    if (!o || o->fd < 0)
        return -1;
    fd = o->fd;
    o->fd = -1;
    return fd;
}

/* Keep fd (the stat file of pid) for the next scan, or close it when full. */
static void process_keep(struct process_ctx *ctx, int pid, int fd)
{
    if (pid <= 0 || ctx->nnext >= ctx->keep_max) {
        close(fd);
        return;
    }
    ctx->next[ctx->nnext].pid = pid;
    ctx->next[ctx->nnext].fd = fd;
    ctx->nnext++;
}

/*
 * End of a scan: close the files of processes not seen again, and make
 * the files kept by this scan the ones the next scan looks up (sorted:
 * /proc lists pids in increasing order, so the sort rarely moves anything).
 */
static void process_scan_end(struct process_ctx *ctx)
{
    struct process_open *t = ctx->open;

    for (size_t i = 0; i < ctx->nopen; i++)
        if (ctx->open[i].fd >= 0)
            close(ctx->open[i].fd);
    if (ctx->nnext > 1)                 /* qsort's base may not be NULL, even for 0 */
        qsort(ctx->next, ctx->nnext, sizeof *ctx->next, process_open_cmp);
    ctx->open = ctx->next;
    ctx->nopen = ctx->nnext;
    ctx->next = t;
    ctx->nnext = 0;
}

/* One read() or pread() at offset 0 into buf, NUL-terminated; -errno on failure. */
static ssize_t process_read_fd(int fd, bool again, char *buf, size_t size)
{
    ssize_t n;

    do
        n = again ? pread(fd, buf, size - 1, 0) : read(fd, buf, size - 1);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return n;
}

/*
 * Read <dir>/<pid>/stat into buf with one read: the kernel formats the
 * whole file at once, so a short read is the whole file, and one that
 * fills the buffer is too long for it. The file kept open from the last
 * scan is read again with pread() when there is one; the new file when
 * that process has gone (the pid may be someone else's by now). Returns
 * the length, 0 when the process has gone (ENOENT, ESRCH: normal while
 * scanning), or -errno. The file is kept for the next scan when there is
 * room (see process_keep_max), closed otherwise.
 */
static ssize_t process_read_stat(struct process_ctx *ctx, int dfd,
                                 const char *pid, char *buf, size_t size)
{
    char rel[64];
    long long id = ctx->keep_max && strlen(pid) < 10 ? atoll(pid) : 0;
    int fd = id > 0 ? process_take(ctx, (int)id) : -1;
    ssize_t n;

    if (fd >= 0) {
        n = process_read_fd(fd, true, buf, size);
        if (n > 0) {
            process_keep(ctx, (int)id, fd);
            return n;
        }
        close(fd);                      /* gone: ESRCH, or empty */
    }
    snprintf(rel, sizeof rel, "%s/stat", pid);
    fd = openat(dfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? 0 : -errno;
    n = process_read_fd(fd, false, buf, size);
    if (n > 0 && id > 0)
        process_keep(ctx, (int)id, fd);
    else
        close(fd);
    return n == -ENOENT || n == -ESRCH ? 0 : n;
}

static bool process_matches(const struct process_ctx *ctx, const char *comm)
{
    for (size_t i = 0; i < ctx->match.count; i++)
        if (fnmatch(ctx->match.items[i], comm, 0) == 0)
            return true;
    return false;
}

static void process_emit(pipit_instance *ins, int64_t t, int type,
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

static int process_init(pipit_instance *ins, void *data)
{
    struct process_ctx *ctx = data;
    DIR *d;

    ctx->clk_tck = sysconf(_SC_CLK_TCK);
    ctx->page_size = sysconf(_SC_PAGESIZE);
    if (ctx->clk_tck <= 0 || ctx->page_size <= 0) {
        api->log(ins, PIPIT_LOG_ERROR, "sysconf() gave no clock tick or page size");
        return PIPIT_ENOTSUP;
    }
    d = opendir(ctx->proc_path);
    if (!d) {
        char ebuf[128];
        int e = errno;

        api->log(ins, PIPIT_LOG_ERROR, "cannot open %s: %s", ctx->proc_path,
                 strerror_r(e, ebuf, sizeof ebuf));
        return procfile_errno(e);
    }
    ctx->keep_max = process_keep_max(ctx, dirfd(d));
    closedir(d);
    if (ctx->keep_max) {
        ctx->open = calloc(ctx->keep_max, sizeof *ctx->open);
        ctx->next = calloc(ctx->keep_max, sizeof *ctx->next);
        if (!ctx->open || !ctx->next) {
            free(ctx->open);
            free(ctx->next);
            return PIPIT_ENOMEM;
        }
    }
    return PIPIT_OK;
}

/*
 * One scan of <proc_path>. Processes that exit meanwhile are skipped
 * quietly. A stat file that cannot be parsed is skipped and counted; the
 * rest is still reported and the collection returns PIPIT_EPARSE.
 */
static int process_collect(pipit_instance *ins, void *data)
{
    struct process_ctx *ctx = data;
    int64_t t = api->now_ns();
    uint64_t count[PROCESS_NSTATES] = { 0 };
    uint64_t threads = 0, tracked = 0, untracked = 0, bad = 0, failed = 0;
    char buf[PROCESS_STAT_MAX], badpid[32] = "", ebuf[128];
    struct dirent *de;
    DIR *d;

    d = opendir(ctx->proc_path);
    if (!d) {
        int e = errno;

        api->log(ins, PIPIT_LOG_ERROR, "cannot open %s: %s", ctx->proc_path,
                 strerror_r(e, ebuf, sizeof ebuf));
        return procfile_errno(e);
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        const char *pid = de->d_name;
        struct process_stat st;
        ssize_t n;

        if (pid[0] < '1' || pid[0] > '9' || strspn(pid, "0123456789") != strlen(pid)
            || strlen(pid) > 20)
            continue;
        n = process_read_stat(ctx, dirfd(d), pid, buf, sizeof buf);
        if (n == 0)
            continue;                   /* exited while we looked */
        if (n < 0) {
            failed++;                   /* e.g. EACCES under hidepid */
            continue;
        }
        if ((size_t)n >= sizeof buf - 1 || !process_parse(buf, &st)) {
            if (!bad++)
                snprintf(badpid, sizeof badpid, "%s", pid);
            continue;
        }
        count[process_state_index(st.state)]++;
        if (st.threads > 0)
            threads += (uint64_t)st.threads;

        if (ctx->match.count && process_matches(ctx, st.comm)) {
            if (tracked >= (uint64_t)ctx->max_processes) {
                untracked++;
                continue;
            }
            tracked++;
            struct pipit_label labels[2] = {
                { "process", st.comm }, { "pid", pid }
            };
            process_emit(ins, t, PIPIT_COUNTER, "process.cpu_seconds",
                         (double)(st.utime + st.stime) / (double)ctx->clk_tck,
                         labels, 2);
            process_emit(ins, t, PIPIT_GAUGE, "process.rss_bytes",
                         st.rss > 0 ? (double)st.rss * (double)ctx->page_size : 0,
                         labels, 2);
        }
    }
    if (errno) {
        int e = errno;

        process_scan_end(ctx);
        closedir(d);
        api->log(ins, PIPIT_LOG_ERROR, "cannot list %s: %s", ctx->proc_path,
                 strerror_r(e, ebuf, sizeof ebuf));
        return PIPIT_EIO;
    }
    process_scan_end(ctx);
    closedir(d);

    for (size_t i = 0; i < PROCESS_NSTATES; i++) {
        struct pipit_label label = { "state", process_states[i].name };

        if (process_states[i].always || count[i])
            process_emit(ins, t, PIPIT_GAUGE, "process.count", (double)count[i],
                         &label, 1);
    }
    process_emit(ins, t, PIPIT_GAUGE, "process.threads", (double)threads, NULL, 0);
    if (ctx->match.count)
        process_emit(ins, t, PIPIT_GAUGE, "process.untracked", (double)untracked,
                     NULL, 0);
    if (untracked && !ctx->cap_logged) {
        api->log(ins, PIPIT_LOG_WARN,
                 "%llu matching processes beyond max_processes=%lld are not "
                 "reported", (unsigned long long)untracked,
                 (long long)ctx->max_processes);
        ctx->cap_logged = true;
    }
    if (failed)
        api->log(ins, PIPIT_LOG_DEBUG, "%llu processes could not be read",
                 (unsigned long long)failed);
    if (bad) {
        api->log(ins, PIPIT_LOG_ERROR, "%llu malformed stat files (first: %s/%s/stat)",
                 (unsigned long long)bad, ctx->proc_path, badpid);
        return PIPIT_EPARSE;
    }
    return PIPIT_OK;
}

/* Close the stat files kept open. */
static void process_fini(pipit_instance *ins, void *data)
{
    struct process_ctx *ctx = data;

    (void)ins;
    for (size_t i = 0; i < ctx->nopen; i++)
        if (ctx->open[i].fd >= 0)
            close(ctx->open[i].fd);
    free(ctx->open);
    free(ctx->next);
}

PIPIT_PLUGIN_DEFINE(
    .name = "process", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "Processes by state, threads, and CPU and RSS of chosen processes",
    .ctx_size = sizeof(struct process_ctx), .options = process_options,
    .load = process_load, .init = process_init, .collect = process_collect,
    .fini = process_fini);
