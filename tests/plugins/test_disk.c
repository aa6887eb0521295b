/* test_disk.c: the disk collector on a fixture mount table and diskstats, and on the real system. */
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include "plugtest.h"

static const char *root;                /* private tree the fixture mounts point into */

/* Open with proc_path=<dir>, root_path=root and up to three more options. */
static int open_case(struct tp *t, const char *dir, const char *a, const char *b,
                     const char *c)
{
    char p[4200], r[4200];
    const char *kv[] = { p, r, a, b, c, NULL };

    snprintf(p, sizeof p, "proc_path=%s", dir);
    snprintf(r, sizeof r, "root_path=%s", root);
    return tp_open(t, "disk", kv);
}

static double fs(struct tp *t, const char *name, const char *mountpoint)
{
    return tp_val(tp_find(t, name, "mountpoint", mountpoint, NULL));
}

static double io(struct tp *t, const char *name, const char *dev, const char *dir)
{
    if (dir)
        return tp_val(tp_find(t, name, "device", dev, "direction", dir, NULL));
    return tp_val(tp_find(t, name, "device", dev, NULL));
}

static void make_root(void)
{
    static const char *const dirs[] = {
        "data", "mnt/with space", "proc", "sys/fs/cgroup", "dev/shm", "run",
        "var/lib/docker/overlay2/abc/merged",
    };

    root = strdup(tp_tmpdir());
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        tp_mkdirs(root, dirs[i]);
}

static void test_filesystems(void)
{
    struct statvfs sv;
    struct tp t;
    double total, inodes;

    if (statvfs(root, &sv) != 0) {
        diag("statvfs %s: %s", root, strerror(errno));
        exit(1);
    }
    total = (double)sv.f_blocks * (double)(sv.f_frsize ? sv.f_frsize : sv.f_bsize);
    inodes = (double)sv.f_files;

    is_int(open_case(&t, tp_fixture("disk-basic"), "io=false", NULL, NULL), PIPIT_OK,
           "init, filesystems only");
    is_int(tp_run(&t), PIPIT_OK, "collect");
    is_int(t.bad, 0, "every record well-formed");
    is_int(tp_count(&t, "disk.total_bytes", NULL), 4,
           "four filesystems pass the default filters");
    ok(tp_find(&t, "disk.total_bytes", "mountpoint", "/", "device", "/dev/sda1",
               "fstype", "ext4", NULL), "/ with device and fstype labels");
    ok(tp_find(&t, "disk.total_bytes", "mountpoint", "/mnt/with space", NULL),
           "octal escapes in mountpoints decoded");
    ok(tp_find(&t, "disk.total_bytes", "mountpoint", "/run", "fstype", "tmpfs", NULL),
           "tmpfs is reported by default");
    ok(tp_find(&t, "disk.total_bytes", "mountpoint", "/data", "device", "/dev/sda3",
               "fstype", "ext4", NULL), "a mountpoint mounted over reports the top mount");
    is_int(tp_count(&t, "disk.total_bytes", "mountpoint", "/data", NULL), 1,
           "and only once");
    is_int(tp_count(&t, "disk.total_bytes", "fstype", "proc", NULL) +
           tp_count(&t, "disk.total_bytes", "fstype", "sysfs", NULL) +
           tp_count(&t, "disk.total_bytes", "fstype", "overlay", NULL) +
           tp_count(&t, "disk.total_bytes", "fstype", "cgroup2", NULL) +
           tp_count(&t, "disk.total_bytes", "mountpoint", "/dev/shm", NULL), 0,
           "pseudo filesystems and /dev excluded by default");
    is_int(tp_count(&t, "disk.total_bytes", "mountpoint", "/gone", NULL), 0,
           "a mountpoint that cannot be examined is skipped");

    is_num(fs(&t, "disk.total_bytes", "/"), total, 0, "total_bytes as statvfs says");
    is_num(fs(&t, "disk.used_bytes", "/") + fs(&t, "disk.free_bytes", "/"),
           fs(&t, "disk.total_bytes", "/"), 0, "used + free = total");
    ok(fs(&t, "disk.avail_bytes", "/") <= fs(&t, "disk.free_bytes", "/"), "avail <= free");
    {
        double u = fs(&t, "disk.utilization", "/");
        double used = fs(&t, "disk.used_bytes", "/"), avail = fs(&t, "disk.avail_bytes", "/");
        is_num(u, used / (used + avail), 1e-12, "utilization = used / (used + avail)");
    }
    if (inodes > 0) {
        is_num(fs(&t, "disk.inodes_total", "/"), inodes, 0, "inodes_total as statvfs says");
        is_num(fs(&t, "disk.inodes_used", "/") + fs(&t, "disk.inodes_free", "/"),
               inodes, 0, "inodes used + free = total");
    } else {
        skip(2, "no inode counts on this filesystem");
    }
    is_num(fs(&t, "disk.readonly", "/"), (sv.f_flag & ST_RDONLY) ? 1 : 0, 0, "readonly flag");
    is_str(tp_type(tp_find(&t, "disk.total_bytes", NULL)), "gauge", "usage is a gauge");
    is_int(tp_count(&t, "disk.operations", NULL), 0, "io=false: no device counters");
    tp_close(&t);

    is_int(open_case(&t, tp_fixture("disk-basic"), "io=false", "max_mounts=1", NULL),
           PIPIT_OK, "init max_mounts=1");
    is_int(tp_run(&t), PIPIT_OK, "over the cap is not an error");
    is_int(tp_count(&t, "disk.total_bytes", NULL), 1, "one filesystem");
    ok(tp_find(&t, "disk.total_bytes", "mountpoint", "/", NULL), "the first in table order");
    tp_close(&t);

    open_case(&t, tp_fixture("disk-basic"), "io=false", "include_fstypes=tmpfs", NULL);
    tp_run(&t);
    is_int(tp_count(&t, "disk.total_bytes", NULL), 1, "include_fstypes=tmpfs: one");
    ok(tp_find(&t, "disk.total_bytes", "mountpoint", "/run", NULL), "and it is /run");
    tp_close(&t);

    open_case(&t, tp_fixture("disk-basic"), "io=false", "include_mounts=/mnt/*", NULL);
    tp_run(&t);
    is_int(tp_count(&t, "disk.total_bytes", NULL), 1, "include_mounts=/mnt/*: one");
    tp_close(&t);

    open_case(&t, tp_fixture("disk-basic"), "io=false", "exclude_mounts=/run", NULL);
    tp_run(&t);
    ok(tp_find(&t, "disk.total_bytes", "mountpoint", "/dev/shm", NULL) &&
       !tp_find(&t, "disk.total_bytes", "mountpoint", "/run", NULL),
       "exclude_mounts replaces the default list");
    tp_close(&t);

    open_case(&t, tp_fixture("disk-basic"), "io=false", "exclude_fstypes=ext4", NULL);
    tp_run(&t);
    is_int(tp_count(&t, "disk.total_bytes", NULL), 1,
           "exclude_fstypes=ext4: only /run (the hidden xfs /data stays hidden)");
    tp_close(&t);
}

static void test_io(void)
{
    struct tp t;
    size_t i;
    json_t *r;
    bool types = true;

    is_int(open_case(&t, tp_fixture("disk-basic"), "filesystems=false", NULL, NULL),
           PIPIT_OK, "init, devices only");
    is_int(tp_run(&t), PIPIT_OK, "collect");
    is_int(t.bad, 0, "every record well-formed");
    is_int(json_array_size(t.recs), 17 + 15 + 11 + 17,
           "sda, sda1, dm-0, nvme0n1 by their column counts");
    is_int(tp_count(&t, "disk.operations", "device", "loop0", NULL) +
           tp_count(&t, "disk.operations", "device", "ram0", NULL), 0,
           "loop and ram devices excluded by default");
    json_array_foreach(t.recs, i, r) {
        const char *n = json_string_value(json_object_get(r, "name"));
        types &= strcmp(tp_type(r), strcmp(n, "disk.io_in_progress") ? "counter" : "gauge") == 0;
    }
    ok(types, "counters, and io_in_progress a gauge");
    is_num(io(&t, "disk.operations", "sda", "read"), 1000, 0, "sda reads");
    is_num(io(&t, "disk.merged_operations", "sda", "read"), 200, 0, "sda reads merged");
    is_num(io(&t, "disk.io_bytes", "sda", "read"), 30000.0 * 512, 0, "sda sectors read x 512");
    is_num(io(&t, "disk.operation_time_seconds", "sda", "read"), 4, 0, "sda ms reading / 1000");
    is_num(io(&t, "disk.operations", "sda", "write"), 500, 0, "sda writes");
    is_num(io(&t, "disk.merged_operations", "sda", "write"), 60, 0, "sda writes merged");
    is_num(io(&t, "disk.io_bytes", "sda", "write"), 7000.0 * 512, 0, "sda bytes written");
    is_num(io(&t, "disk.operation_time_seconds", "sda", "write"), 8, 0, "sda time writing");
    is_num(io(&t, "disk.io_in_progress", "sda", NULL), 2, 0, "sda in progress");
    is_num(io(&t, "disk.io_time_seconds", "sda", NULL), 9, 0, "sda busy time");
    is_num(io(&t, "disk.weighted_io_time_seconds", "sda", NULL), 12, 0, "sda weighted time");
    is_num(io(&t, "disk.operations", "sda", "discard"), 10, 0, "sda discards");
    is_num(io(&t, "disk.io_bytes", "sda", "discard"), 80.0 * 512, 0, "sda bytes discarded");
    is_num(io(&t, "disk.operation_time_seconds", "sda", "discard"), 0.09, 1e-15,
           "sda time discarding");
    is_num(io(&t, "disk.operations", "sda", "flush"), 5, 0, "sda flushes");
    is_num(io(&t, "disk.operation_time_seconds", "sda", "flush"), 0.015, 1e-15,
           "sda time flushing");
    is_int(tp_count(&t, "disk.operations", "device", "sda1", "direction", "flush", NULL), 0,
           "15 columns: no flush");
    is_int(tp_count(&t, "disk.operations", "device", "dm-0", "direction", "discard", NULL), 0,
           "11 columns: no discard");
    is_num(io(&t, "disk.io_bytes", "nvme0n1", "write"), 8000000.0 * 512, 0, "nvme bytes written");
    tp_close(&t);

    open_case(&t, tp_fixture("disk-basic"), "filesystems=false", "include_devices=sd*", NULL);
    tp_run(&t);
    is_int(json_array_size(t.recs), 17 + 15, "include_devices=sd*: sda and sda1");
    tp_close(&t);

    open_case(&t, tp_fixture("disk-basic"), "filesystems=false", "exclude_devices=dm-*", NULL);
    tp_run(&t);
    ok(tp_find(&t, "disk.operations", "device", "loop0", NULL) &&
       !tp_find(&t, "disk.operations", "device", "dm-0", NULL),
       "exclude_devices replaces the default list");
    tp_close(&t);

    open_case(&t, tp_fixture("disk-basic"), "filesystems=false", "max_devices=1", NULL);
    is_int(tp_run(&t), PIPIT_OK, "over the device cap is not an error");
    is_int(json_array_size(t.recs), 17, "one device");
    tp_close(&t);
}

static void test_errors(void)
{
    const char *dir = tp_tmpdir();
    struct tp t;

    is_int(open_case(&t, tp_fixture("disk-badmounts"), "io=false", NULL, NULL), PIPIT_EPARSE,
           "init on a truncated mount table: EPARSE");
    tp_close(&t);
    is_int(open_case(&t, tp_fixture("disk-truncated"), "filesystems=false", NULL, NULL),
           PIPIT_EPARSE, "init on a truncated diskstats: EPARSE");
    tp_close(&t);
    is_int(open_case(&t, tp_fixture("no-such-case"), NULL, NULL, NULL), PIPIT_ENOENT,
           "init without the files: ENOENT");
    tp_close(&t);
    is_int(open_case(&t, tp_fixture("disk-basic"), "io=false", "filesystems=false", NULL),
           PIPIT_ECONFIG, "nothing to report: ECONFIG");
    tp_close(&t);

    tp_stage(dir, "self/mounts", "disk-basic/self/mounts");
    tp_stage(dir, "diskstats", "disk-basic/diskstats");
    is_int(open_case(&t, dir, NULL, NULL, NULL), PIPIT_OK, "init on a staged tree");
    is_int(tp_run(&t), PIPIT_OK, "collect both");
    tp_stage(dir, "diskstats", "disk-truncated/diskstats");
    is_int(tp_run(&t), PIPIT_EPARSE, "truncated diskstats: EPARSE");
    is_int(tp_count(&t, "disk.total_bytes", NULL), 4, "filesystems still reported");
    is_int(tp_count(&t, "disk.operations", NULL), 0, "no device counters");
    tp_write(dir, "diskstats", "   8       0 sda 1000 200 x 4000 500 60 7000 8000 2 9000 12000\n");
    is_int(tp_run(&t), PIPIT_EPARSE, "a word for a number: EPARSE");
    tp_write(dir, "diskstats", "   8       0\n");
    is_int(tp_run(&t), PIPIT_EPARSE, "no device name: EPARSE");
    tp_stage(dir, "diskstats", "disk-basic/diskstats");
    tp_stage(dir, "self/mounts", "disk-badmounts/self/mounts");
    is_int(tp_run(&t), PIPIT_EPARSE, "truncated mount table: EPARSE");
    is_int(tp_count(&t, "disk.total_bytes", NULL), 0, "no filesystems");
    is_int(tp_count(&t, "disk.operations", "device", "sda", NULL), 4, "devices still reported");
    tp_stage(dir, "self/mounts", "disk-basic/self/mounts");
    is_int(tp_run(&t), PIPIT_OK, "recovers");
    tp_close(&t);
    tp_rmtree(dir);
}

/* Reads completed of dev in /proc/diskstats, or -1. */
static double reads_of(const char *dev)
{
    const char *s = tp_slurp("/proc/diskstats");
    char pat[80];
    const char *p;
    unsigned long long v;

    snprintf(pat, sizeof pat, " %s ", dev);
    if (!s || !(p = strstr(s, pat)) || sscanf(p + strlen(pat), "%llu", &v) != 1)
        return -1;
    return (double)v;
}

static void test_real(void)
{
    struct tp t;
    json_t *r;
    double before;
    const char *dev = NULL;
    char devbuf[128] = "";

    is_int(tp_open(&t, "disk", NULL), PIPIT_OK, "init on the real system");
    is_int(tp_run(&t), PIPIT_OK, "collect on the real system");
    is_int(t.bad, 0, "every record well-formed");
    r = tp_find(&t, "disk.total_bytes", NULL);
    if (r) {
        const char *mp = json_string_value(json_object_get(json_object_get(r, "labels"),
                                                           "mountpoint"));
        struct statvfs sv;
        ok(statvfs(mp, &sv) == 0 && tp_val(r) == (double)sv.f_blocks *
           (double)(sv.f_frsize ? sv.f_frsize : sv.f_bsize),
           "total_bytes of %s as statvfs says", mp);
    } else {
        skip(1, "no filesystem passes the default filters here");
    }
    r = tp_find(&t, "disk.operations", "direction", "read", NULL);
    if (r) {
        dev = json_string_value(json_object_get(json_object_get(r, "labels"), "device"));
        snprintf(devbuf, sizeof devbuf, "%s", dev);
        before = reads_of(devbuf);
        tp_run(&t);
        double v = io(&t, "disk.operations", devbuf, "read");
        double after = reads_of(devbuf);
        ok(v >= before && v <= after, "%s reads %.0f within [%.0f, %.0f]", devbuf, v,
           before, after);
    } else {
        skip(1, "no block device here");
    }
    tp_close(&t);
}

/*
 * In a private mount namespace (the child of mount_change), with the
 * plugin watching /proc/self/mounts: a tmpfs mounted on dir after init is
 * reported at the next collection, and no longer once unmounted. Returns
 * a bit per failed step, 0 when all passed, 64 when the namespace cannot
 * be made.
 */
static int mount_change_child(const char *dir)
{
    char inc[4200];
    const char *kv[] = { "io=false", inc, NULL };
    struct tp t;
    int fail = 0;

    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
        return 64;
    snprintf(inc, sizeof inc, "include_mounts=%s", dir);
    if (tp_open(&t, "disk", kv) != PIPIT_OK)
        return 1;
    tp_run(&t);
    tp_run(&t);
    if (tp_count(&t, "disk.total_bytes", "mountpoint", dir, NULL) != 0)
        fail |= 2;
    if (mount("pipit-test", dir, "tmpfs", 0, "size=1m") != 0) {
        tp_close(&t);
        return 64;
    }
    tp_run(&t);
    if (tp_count(&t, "disk.total_bytes", "mountpoint", dir, NULL) != 1)
        fail |= 4;
    tp_run(&t);
    if (tp_count(&t, "disk.total_bytes", "mountpoint", dir, NULL) != 1)
        fail |= 8;
    umount(dir);
    tp_run(&t);
    if (tp_count(&t, "disk.total_bytes", "mountpoint", dir, NULL) != 0)
        fail |= 16;
    tp_close(&t);
    return fail;
}

/*
 * The mount table of procfs is read again only when poll() says it
 * changed: a filesystem mounted or unmounted between two collections is
 * still seen at the next one. Needs a mount namespace (root).
 */
static void test_mount_change(void)
{
    char dir[4096];
    pid_t pid;
    int st = 0;

    snprintf(dir, sizeof dir, "%s", tp_tmpdir());
    pid = fork();
    if (pid == 0)
        _exit(mount_change_child(dir));
    waitpid(pid, &st, 0);
    rmdir(dir);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 64) {
        skip(4, "no private mount namespace here (needs root)");
        return;
    }
    ok(WIFEXITED(st) && (WEXITSTATUS(st) & 3) == 0, "watching: nothing on %s yet", dir);
    ok(WIFEXITED(st) && (WEXITSTATUS(st) & 4) == 0, "a tmpfs mounted after init is seen");
    ok(WIFEXITED(st) && (WEXITSTATUS(st) & 8) == 0, "and still at the next collection");
    ok(WIFEXITED(st) && (WEXITSTATUS(st) & 16) == 0, "and gone once unmounted");
}

int main(void)
{
    make_root();
    test_filesystems();
    test_io();
    test_errors();
    test_real();
    test_mount_change();
    tp_rmtree(root);
    free((char *)root);
    return done_testing();
}
