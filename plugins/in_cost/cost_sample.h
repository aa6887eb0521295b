/* cost_sample.h: the host measurements the cost input prices, read from procfs and statvfs. */
#ifndef PIPIT_COST_SAMPLE_H
#define PIPIT_COST_SAMPLE_H

#include <pipit/plugin.h>
#include <stdbool.h>
#include <stdint.h>

#define COST_HIDDEN __attribute__((visibility("hidden")))

#define COST_NAME_MAX 256               /* interface name or mountpoint */

/* One interface (rx, tx bytes), block device (read, written bytes) or
 * filesystem (used bytes in a). */
struct cost_item {
    char name[COST_NAME_MAX];
    uint64_t a, b;
};

/* The measurements a reading takes; uptime is always read. */
#define COST_NEED_CPU    0x1u           /* <proc_path>/stat */
#define COST_NEED_MEMORY 0x2u           /* <proc_path>/meminfo */
#define COST_NEED_NET    0x4u           /* <proc_path>/net/dev */
#define COST_NEED_DISK   0x8u           /* <proc_path>/diskstats */
#define COST_NEED_FS     0x10u          /* statvfs() or the test hook file */

/* What to read and where; options of the plugin, borrowed. */
struct cost_source {
    unsigned need;                      /* COST_NEED_* */
    const char *proc_path;              /* root of procfs */
    const struct pipit_strlist *include;    /* interface globs; empty: all */
    const struct pipit_strlist *exclude;    /* interface globs */
    const struct pipit_strlist *disks;  /* block device globs */
    const struct pipit_strlist *filesystems; /* mountpoints */
    const char *fs_usage_file;          /* test hook: "mountpoint bytes" lines, or NULL */
};

/* One reading of every measurement. Arrays are reused between readings and
 * released by cost_sample_free(). */
struct cost_sample {
    uint64_t uptime_cs;                 /* time since boot, centiseconds */
    uint64_t cpu_busy_ticks;            /* CPU time not idle, USER_HZ ticks */
    uint64_t mem_used_bytes;            /* MemTotal - MemAvailable */
    struct cost_item *ifs;              /* interfaces: a rx bytes, b tx bytes */
    size_t nifs, ifs_alloc;
    struct cost_item *disks;            /* devices: a bytes read, b bytes written */
    size_t ndisks, disks_alloc;
    struct cost_item *fs;               /* filesystems: a used bytes */
    size_t nfs, fs_alloc;
    char *buf;                          /* file contents, reused */
    size_t bufcap;
};

/*
 * Read every measurement of src into s. Malformed files are logged through
 * api with their path and line. Returns PIPIT_OK or a PIPIT_E* code; on
 * error s holds no complete reading and must not be charged.
 */
COST_HIDDEN int cost_sample_read(const struct pipit_api *api, pipit_instance *ins,
                                 const struct cost_source *src, struct cost_sample *s);
COST_HIDDEN void cost_sample_free(struct cost_sample *s);

#endif
