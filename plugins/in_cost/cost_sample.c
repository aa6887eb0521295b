/* cost_sample.c: the host measurements the cost input prices, read from procfs and statvfs. */
#define _GNU_SOURCE
#include "cost_sample.h"
#include "decimal.h"
#include "procfile.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#define COST_FILE_MAX (64u << 20)       /* refuse a file larger than this */
#define COST_ITEMS_MAX 4096             /* interfaces or filesystems per reading */

/* A file read whole into the sample's buffer and walked line by line;
 * errors name its path and the line. */
struct cost_file {
    const struct pipit_api *api;
    pipit_instance *ins;
    const char *path;
    char *buf;
    size_t pos;
    unsigned lineno;                    /* of the last line returned */
};

static int cost_file_open(struct cost_file *f, const struct pipit_api *api,
                          pipit_instance *ins, const char *path, struct cost_sample *s)
{
    int rc = procfile_read(api, ins, path, COST_FILE_MAX, 8192, &s->buf, &s->bufcap, NULL);

    *f = (struct cost_file){ .api = api, .ins = ins, .path = path, .buf = s->buf };
    return rc;
}

/* The next line, NUL-terminated in place, or NULL at the end. */
static char *cost_file_line(struct cost_file *f)
{
    char *line = f->buf + f->pos, *nl;

    if (!*line)
        return NULL;
    f->lineno++;
    nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        f->pos = (size_t)(nl + 1 - f->buf);
    } else {
        f->pos += strlen(line);
    }
    return line;
}

/* Log "<path>:<line>: what"; returns PIPIT_EPARSE. */
static int cost_file_error(const struct cost_file *f, const char *what)
{
    f->api->log(f->ins, PIPIT_LOG_ERROR, "%s:%u: %s", f->path, f->lineno, what);
    return PIPIT_EPARSE;
}

/* An item for name (or NULL when COST_ITEMS_MAX are taken). */
static struct cost_item *cost_item_add(struct cost_item **v, size_t *n, size_t *alloc,
                                       const char *name, size_t len)
{
    if (*n == COST_ITEMS_MAX || len >= COST_NAME_MAX)
        return NULL;
    if (*n == *alloc) {
        size_t na = *alloc ? *alloc * 2 : 16;
        struct cost_item *nv = realloc(*v, na * sizeof *nv);

        if (!nv)
            return NULL;
        *v = nv;
        *alloc = na;
    }
    struct cost_item *it = &(*v)[(*n)++];
    memcpy(it->name, name, len);
    it->name[len] = '\0';
    it->a = it->b = 0;
    return it;
}

/* /proc/uptime: "350735.47 234388.90", seconds since boot first. */
static int cost_read_uptime(struct cost_file *f, const struct cost_source *src,
                            struct cost_sample *s)
{
    char *line = cost_file_line(f);
    int64_t cs;

    (void)src;
    if (!line || decimal_parse(line, strcspn(line, " "), 2, DECIMAL_ROUND, &cs) != DECIMAL_OK ||
        cs < 0)
        return cost_file_error(f, "no uptime in seconds");
    s->uptime_cs = (uint64_t)cs;
    return PIPIT_OK;
}

/* /proc/stat, line "cpu  user nice system idle iowait irq softirq steal ...":
 * busy is all but idle and iowait (guest time is inside user already). */
static int cost_read_cpu(struct cost_file *f, const struct cost_source *src,
                         struct cost_sample *s)
{
    char *line;

    (void)src;
    while ((line = cost_file_line(f)) != NULL) {
        uint64_t v[8] = { 0 }, busy = 0;
        const char *p = line + 4;
        int n = 0, r;

        if (strncmp(line, "cpu ", 4) != 0)
            continue;
        while (n < 8 && (r = procfile_u64(&p, &v[n])) == 1)
            n++;
        if (n < 4 || (n < 8 && r < 0))
            return cost_file_error(f, "malformed cpu line");
        for (int i = 0; i < 8; i++)
            if (i != 3 && i != 4 && __builtin_add_overflow(busy, v[i], &busy))
                return cost_file_error(f, "cpu time overflows");
        s->cpu_busy_ticks = busy;
        return PIPIT_OK;
    }
    return cost_file_error(f, "no \"cpu\" line");
}

/* /proc/meminfo: used = MemTotal - MemAvailable (kernels before 3.14, which
 * lack MemAvailable: MemFree + Buffers + Cached), in bytes. */
static int cost_read_memory(struct cost_file *f, const struct cost_source *src,
                            struct cost_sample *s)
{
    static const char *const keys[] = { "MemTotal:", "MemAvailable:", "MemFree:",
                                        "Buffers:", "Cached:" };
    uint64_t kb[5] = { 0 };
    bool seen[5] = { false };
    char *line;

    (void)src;
    while ((line = cost_file_line(f)) != NULL) {
        for (int k = 0; k < 5; k++) {
            size_t klen = strlen(keys[k]);
            const char *p = line + klen;
            if (strncmp(line, keys[k], klen) != 0)
                continue;
            if (procfile_u64(&p, &kb[k]) != 1)
                return cost_file_error(f, "malformed value");
            seen[k] = true;
        }
    }
    uint64_t avail = seen[1] ? kb[1] : kb[2] + kb[3] + kb[4];
    if (!seen[0] || (!seen[1] && !seen[2]))
        return cost_file_error(f, "no MemTotal or MemAvailable");
    if (kb[0] > UINT64_MAX / 1024)
        return cost_file_error(f, "MemTotal out of range");
    s->mem_used_bytes = avail < kb[0] ? (kb[0] - avail) * 1024 : 0;
    return PIPIT_OK;
}

static bool cost_match_any(const struct pipit_strlist *l, const char *s)
{
    for (size_t i = 0; l && i < l->count; i++)
        if (fnmatch(l->items[i], s, 0) == 0)
            return true;
    return false;
}

static bool cost_in_list(const struct pipit_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i], s) == 0)
            return true;
    return false;
}

/* /proc/net/dev: two header lines, then "name: 8 receive and 8 transmit
 * columns"; bytes are the first column of each. */
static int cost_read_net(struct cost_file *f, const struct cost_source *src,
                         struct cost_sample *s)
{
    char *line;

    s->nifs = 0;
    while ((line = cost_file_line(f)) != NULL) {
        uint64_t v[16];
        char *name = line, *colon;
        const char *p;

        if (f->lineno <= 2) {
            if (!strchr(line, '|'))
                return cost_file_error(f, "not the header of net/dev");
            continue;
        }
        name += strspn(name, " \t");
        colon = strchr(name, ':');
        if (!colon || colon == name)
            return cost_file_error(f, "no interface name");
        *colon = '\0';
        p = colon + 1;
        for (int k = 0; k < 16; k++)
            if (procfile_u64(&p, &v[k]) != 1)
                return cost_file_error(f, "malformed counters");
        if ((src->include->count && !cost_match_any(src->include, name)) ||
            cost_match_any(src->exclude, name))
            continue;
        struct cost_item *it = cost_item_add(&s->ifs, &s->nifs, &s->ifs_alloc, name,
                                             strlen(name));
        if (!it)
            return cost_file_error(f, "too many interfaces or a name too long");
        it->a = v[0];
        it->b = v[8];
    }
    if (f->lineno < 2)
        return cost_file_error(f, "not the header of net/dev");
    return PIPIT_OK;
}

/* /proc/diskstats: "major minor name", then reads, reads merged, sectors
 * read, ms reading, writes, writes merged, sectors written, ...; a sector
 * here is 512 bytes whatever the device's own. */
static int cost_read_disks(struct cost_file *f, const struct cost_source *src,
                           struct cost_sample *s)
{
    char *line;

    s->ndisks = 0;
    while ((line = cost_file_line(f)) != NULL) {
        const char *p = line;
        uint64_t id, v[7];
        char *name;
        size_t len;

        if (procfile_u64(&p, &id) != 1 || procfile_u64(&p, &id) != 1)
            return cost_file_error(f, "no device numbers");
        name = line + (p - line);
        name += strspn(name, " \t");
        len = strcspn(name, " \t");
        p = name + len;
        for (int k = 0; k < 7; k++)
            if (procfile_u64(&p, &v[k]) != 1)
                return cost_file_error(f, "malformed counters");
        if (len == 0 || v[2] > UINT64_MAX / 512 || v[6] > UINT64_MAX / 512)
            return cost_file_error(f, "malformed counters");
        name[len] = '\0';
        if (!cost_match_any(src->disks, name))
            continue;
        struct cost_item *it = cost_item_add(&s->disks, &s->ndisks, &s->disks_alloc, name,
                                             len);
        if (!it)
            return cost_file_error(f, "too many devices or a name too long");
        it->a = v[2] * 512;
        it->b = v[6] * 512;
    }
    return PIPIT_OK;
}

/* Used bytes of each configured filesystem, from statvfs(). */
static int cost_read_statvfs(const struct pipit_api *api, pipit_instance *ins,
                             const struct cost_source *src, struct cost_sample *s)
{
    for (size_t i = 0; i < src->filesystems->count; i++) {
        const char *mp = src->filesystems->items[i];
        struct statvfs st;
        char ebuf[128];

        if (statvfs(mp, &st) != 0) {
            int e = errno;
            api->log(ins, PIPIT_LOG_ERROR, "cannot statvfs %s: %s", mp,
                     strerror_r(e, ebuf, sizeof ebuf));
            return procfile_errno(e);
        }
        struct cost_item *it = cost_item_add(&s->fs, &s->nfs, &s->fs_alloc, mp, strlen(mp));
        if (!it)
            return PIPIT_ENOMEM;
        it->a = (uint64_t)(st.f_blocks - st.f_bfree) * st.f_frsize;
    }
    return PIPIT_OK;
}

/* The test hook: "mountpoint used_bytes" lines stand for statvfs(); every
 * configured filesystem must have its line. */
static int cost_read_fs_file(struct cost_file *f, const struct cost_source *src,
                             struct cost_sample *s)
{
    char *line;

    while ((line = cost_file_line(f)) != NULL) {
        size_t len = strcspn(line, " \t");
        const char *p = line + len;
        uint64_t used;

        if (len == 0 || procfile_u64(&p, &used) != 1)
            return cost_file_error(f, "expected \"mountpoint used_bytes\"");
        line[len] = '\0';
        if (!cost_in_list(src->filesystems, line))
            continue;
        struct cost_item *it = cost_item_add(&s->fs, &s->nfs, &s->fs_alloc, line, len);
        if (!it)
            return PIPIT_ENOMEM;
        it->a = used;
    }
    if (s->nfs != src->filesystems->count)
        return cost_file_error(f, "a configured filesystem has no line");
    return PIPIT_OK;
}

typedef int (*cost_parse_fn)(struct cost_file *f, const struct cost_source *src,
                             struct cost_sample *s);

/* The files under proc_path, in the order they are read, and the
 * measurement that needs each (0: always read). */
static const struct {
    const char *rel;
    cost_parse_fn parse;
    unsigned need;
} cost_proc_files[] = {
    { "uptime", cost_read_uptime, 0 },
    { "stat", cost_read_cpu, COST_NEED_CPU },
    { "meminfo", cost_read_memory, COST_NEED_MEMORY },
    { "net/dev", cost_read_net, COST_NEED_NET },
    { "diskstats", cost_read_disks, COST_NEED_DISK },
};

static int cost_read_file(const struct pipit_api *api, pipit_instance *ins,
                          const char *path, const struct cost_source *src,
                          struct cost_sample *s, cost_parse_fn parse)
{
    struct cost_file f;
    int rc = cost_file_open(&f, api, ins, path, s);

    return rc == PIPIT_OK ? parse(&f, src, s) : rc;
}

int cost_sample_read(const struct pipit_api *api, pipit_instance *ins,
                     const struct cost_source *src, struct cost_sample *s)
{
    char path[4096];
    int rc;

    for (size_t i = 0; i < sizeof cost_proc_files / sizeof cost_proc_files[0]; i++) {
        if (cost_proc_files[i].need && !(src->need & cost_proc_files[i].need))
            continue;
        if (snprintf(path, sizeof path, "%s/%s", src->proc_path, cost_proc_files[i].rel) >=
            (int)sizeof path) {
            api->log(ins, PIPIT_LOG_ERROR, "proc_path is too long");
            return PIPIT_ECONFIG;
        }
        rc = cost_read_file(api, ins, path, src, s, cost_proc_files[i].parse);
        if (rc != PIPIT_OK)
            return rc;
    }
    s->nfs = 0;
    if (!(src->need & COST_NEED_FS))
        return PIPIT_OK;
    if (src->fs_usage_file)
        return cost_read_file(api, ins, src->fs_usage_file, src, s, cost_read_fs_file);
    return cost_read_statvfs(api, ins, src, s);
}

void cost_sample_free(struct cost_sample *s)
{
    free(s->ifs);
    free(s->disks);
    free(s->fs);
    free(s->buf);
    memset(s, 0, sizeof *s);
}
