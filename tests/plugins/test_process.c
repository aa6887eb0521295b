/* test_process.c: the process collector on a fixture /proc tree and on the real /proc. */
#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "plugtest.h"

static double tck, page;

static int open_case(struct tp *t, const char *dir, const char *a, const char *b)
{
    char p[4200];
    const char *kv[] = { p, a, b, NULL };

    snprintf(p, sizeof p, "proc_path=%s", dir);
    return tp_open(t, "process", kv);
}

static double count(struct tp *t, const char *state)
{
    return tp_val(tp_find(t, "process.count", "state", state, NULL));
}

static double sum_counts(struct tp *t)
{
    size_t i;
    json_t *r;
    double n = 0;

    json_array_foreach(t->recs, i, r)
        if (strcmp(json_string_value(json_object_get(r, "name")), "process.count") == 0)
            n += tp_val(r);
    return n;
}

static void test_counts(void)
{
    struct tp t;

    is_int(open_case(&t, tp_fixture("process-basic"), NULL, NULL), PIPIT_OK, "init");
    is_int(tp_run(&t), PIPIT_OK, "collect (a pid without stat is skipped quietly)");
    is_int(t.bad, 0, "every record well-formed");
    is_num(count(&t, "running"), 1, 0, "R: the process named \"my (weird) proc\"");
    is_num(count(&t, "sleeping"), 2, 0, "S");
    is_num(count(&t, "disk_sleep"), 1, 0, "D");
    is_num(count(&t, "stopped"), 0, 0, "T reported even when zero");
    is_num(count(&t, "tracing_stop"), 1, 0, "t");
    is_num(count(&t, "zombie"), 1, 0, "Z");
    is_num(count(&t, "dead"), 0, 0, "X reported even when zero");
    is_num(count(&t, "idle"), 1, 0, "I");
    is_num(count(&t, "parked"), 1, 0, "P, reported because not zero");
    is_num(count(&t, "unknown"), 1, 0, "an unknown letter");
    is_int(tp_count(&t, "process.count", "state", "waking", NULL), 0,
           "rare states absent when zero");
    is_num(sum_counts(&t), 9, 0, "nine processes; 0042 and stat are not pids");
    is_str(tp_type(tp_find(&t, "process.count", NULL)), "gauge", "counts are gauges");
    is_num(tp_val(tp_find(&t, "process.threads", NULL)), 16, 0, "threads summed");
    is_int(tp_count(&t, "process.cpu_seconds", NULL), 0, "no match: no per-process records");
    is_int(tp_count(&t, "process.untracked", NULL), 0, "no match: no untracked count");
    tp_close(&t);
}

static void test_match(void)
{
    struct tp t;
    json_t *r;

    is_int(open_case(&t, tp_fixture("process-basic"), "match=my (weird) proc", NULL),
           PIPIT_OK, "init match on a name with blanks and parentheses");
    is_int(tp_run(&t), PIPIT_OK, "collect");
    is_int(tp_count(&t, "process.cpu_seconds", NULL), 2, "two processes of that name");
    r = tp_find(&t, "process.cpu_seconds", "process", "my (weird) proc", "pid", "42", NULL);
    is_num(tp_val(r), (250 + 250) / tck, 1e-12, "pid 42: utime + stime in seconds");
    is_str(tp_type(r), "counter", "cpu_seconds is a counter");
    r = tp_find(&t, "process.rss_bytes", "process", "my (weird) proc", "pid", "42", NULL);
    is_num(tp_val(r), 1000 * page, 0, "pid 42: rss pages x page size");
    is_str(tp_type(r), "gauge", "rss_bytes is a gauge");
    is_num(tp_val(tp_find(&t, "process.cpu_seconds", "pid", "100", NULL)), 50 / tck, 1e-12,
           "pid 100 (negative priority and nice parsed)");
    is_num(tp_val(tp_find(&t, "process.untracked", NULL)), 0, 0, "none untracked");
    tp_close(&t);

    is_int(open_case(&t, tp_fixture("process-basic"), "match=my*", "max_processes=1"),
           PIPIT_OK, "init max_processes=1");
    is_int(tp_run(&t), PIPIT_OK, "over the cap is not an error");
    is_int(tp_count(&t, "process.cpu_seconds", NULL), 1, "one process tracked");
    is_num(tp_val(tp_find(&t, "process.untracked", NULL)), 1, 0, "one counted as untracked");
    is_num(sum_counts(&t), 9, 0, "the cap does not change the counts");
    tp_close(&t);

    open_case(&t, tp_fixture("process-basic"), "match=nothing-like-this", NULL);
    tp_run(&t);
    is_int(tp_count(&t, "process.cpu_seconds", NULL), 0, "a glob matching nothing");
    is_num(tp_val(tp_find(&t, "process.untracked", NULL)), 0, 0, "untracked 0");
    tp_close(&t);
}

static void test_errors(void)
{
    const char *dir = tp_tmpdir();
    struct tp t;

    is_int(open_case(&t, tp_fixture("process-malformed"), NULL, NULL), PIPIT_OK,
           "init on a tree with malformed stat files");
    is_int(tp_run(&t), PIPIT_EPARSE, "collect: EPARSE");
    is_num(sum_counts(&t), 1, 0, "the good process is still counted");
    is_num(count(&t, "sleeping"), 1, 0, "as sleeping");
    tp_close(&t);

    is_int(open_case(&t, tp_fixture("no-such-case"), NULL, NULL), PIPIT_ENOENT,
           "init without the directory: ENOENT");
    tp_close(&t);

    tp_stage(dir, "1/stat", "process-basic/1/stat");
    is_int(open_case(&t, dir, NULL, NULL), PIPIT_OK, "init on a staged tree");
    tp_write(dir, "2/stat", "2 (no close paren S 1 2 3\n");
    is_int(tp_run(&t), PIPIT_EPARSE, "a name without ')': EPARSE");
    tp_write(dir, "2/stat", "2 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 x\n");
    is_int(tp_run(&t), PIPIT_EPARSE, "a word for rss: EPARSE");
    tp_write(dir, "2/stat", "");
    is_int(tp_run(&t), PIPIT_OK, "an empty stat (exiting process) is skipped");
    is_num(sum_counts(&t), 1, 0, "and not counted");
    tp_close(&t);
    tp_rmtree(dir);
}

/*
 * Entries of the directory at path: with pids, those named like a pid;
 * otherwise all but "." and ".." (and without the descriptor that
 * opendir holds when path is /proc/self/fd).
 */
static int count_entries(const char *path, bool pids)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int n = 0;

    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (pids ? de->d_name[0] >= '1' && de->d_name[0] <= '9' : de->d_name[0] != '.')
            n++;
    closedir(d);
    return pids ? n : n - 1;
}

/* Number of pid directories in /proc. */
static int count_pids(void)
{
    return count_entries("/proc", true);
}

/* Open descriptors of this process. */
static int count_fds(void)
{
    return count_entries("/proc/self/fd", false);
}

/* Our own comm and utime + stime from /proc/self/stat. */
static int self_stat(char *comm, size_t size, double *cpu)
{
    char buf[4096];
    const char *s = tp_slurp("/proc/self/stat");
    char *l, *r;
    unsigned long long ut, st;

    if (!s)
        return -1;
    snprintf(buf, sizeof buf, "%s", s);
    l = strchr(buf, '(');
    r = strrchr(buf, ')');
    if (!l || !r)
        return -1;
    snprintf(comm, size, "%.*s", (int)(r - l - 1), l + 1);
    if (sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    *cpu = (double)(ut + st) / tck;
    return 0;
}

static void test_real_proc(void)
{
    char comm[64], opt[128], pid[32];
    double cpu_a, cpu_b;
    int a, b;
    struct tp t;
    const char *kv[] = { opt, NULL };

    if (count_pids() <= 0 || self_stat(comm, sizeof comm, &cpu_a) != 0) {
        skip(6, "no usable /proc");
        return;
    }
    snprintf(opt, sizeof opt, "match=%s", comm);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    is_int(tp_open(&t, "process", kv), PIPIT_OK, "init on /proc, match=%s", comm);
    a = count_pids();
    self_stat(comm, sizeof comm, &cpu_a);
    is_int(tp_run(&t), PIPIT_OK, "collect on /proc");
    self_stat(comm, sizeof comm, &cpu_b);
    b = count_pids();
    is_int(t.bad, 0, "every record well-formed");
    {
        double n = sum_counts(&t);
        int lo = a < b ? a : b, hi = a < b ? b : a;
        ok(n >= lo - 10 && n <= hi + 10, "process count %.0f near a fresh scan (%d..%d)",
           n, a, b);
    }
    {
        double v = tp_val(tp_find(&t, "process.cpu_seconds", "pid", pid, NULL));
        ok(v >= cpu_a - 1e-9 && v <= cpu_b + 1e-9, "our own CPU time %.2f within [%.2f, %.2f]",
           v, cpu_a, cpu_b);
        ok(tp_val(tp_find(&t, "process.rss_bytes", "pid", pid, NULL)) > 0,
           "our own RSS is above zero");
    }
    tp_close(&t);
}

/*
 * A child named "pk-one" that renames itself to the name written into
 * *cmd, answers on *ack, and waits until killed. Returns its pid.
 */
static pid_t start_renamer(int *cmd, int *ack)
{
    int c[2], a[2];
    pid_t pid;

    if (pipe(c) != 0 || pipe(a) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        char name[16] = "";

        close(c[1]);
        close(a[0]);
        prctl(PR_SET_NAME, "pk-one");
        if (write(a[1], "1", 1) != 1)
            _exit(1);
        if (read(c[0], name, sizeof name - 1) <= 0)
            _exit(0);
        prctl(PR_SET_NAME, name);
        if (write(a[1], "2", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(c[0]);
    close(a[1]);
    *cmd = c[1];
    *ack = a[0];
    return pid;
}

/*
 * On procfs the stat files stay open between scans (bounded by
 * keep_open) and are read afresh each time: a child that renames itself
 * between two scans is seen under its new name, and once it has gone, it
 * is no longer counted. Nothing stays open after fini, and on a tree
 * that is not procfs nothing is kept.
 */
static void test_keep_open(void)
{
    const char *kv[] = { "match=pk-*", NULL, NULL };
    char pid[32], ch;
    int base, cmd, ack, st;
    struct tp t;
    pid_t child;

    base = count_fds();
    if (base < 0 || count_pids() < 8) {
        skip(14, "no usable /proc");
        return;
    }
    child = start_renamer(&cmd, &ack);
    if (child < 0 || read(ack, &ch, 1) != 1) {
        skip(14, "cannot start a child");
        return;
    }
    base = count_fds();
    snprintf(pid, sizeof pid, "%d", (int)child);
    is_int(tp_open(&t, "process", kv), PIPIT_OK, "init on /proc, match=pk-*");
    int opened = count_fds();
    is_int(tp_run(&t), PIPIT_OK, "first scan");
    ok(tp_find(&t, "process.cpu_seconds", "process", "pk-one", "pid", pid, NULL) != NULL,
       "the child under its first name");
    int kept = count_fds() - opened;
    ok(kept >= 8, "stat files kept open after a scan (%d)", kept);
    is_int(tp_run(&t), PIPIT_OK, "second scan");
    ok(abs(count_fds() - opened - kept) <= 4, "no more kept after the second (%d, %d)",
       count_fds() - opened, kept);

    if (write(cmd, "pk-two", 6) != 6 || read(ack, &ch, 1) != 1)
        diag("the child did not rename itself");
    is_int(tp_run(&t), PIPIT_OK, "scan after the rename");
    ok(tp_find(&t, "process.cpu_seconds", "process", "pk-two", "pid", pid, NULL) != NULL,
       "a kept file is read afresh: the new name");
    is_int(tp_count(&t, "process.cpu_seconds", "process", "pk-one", NULL), 0,
           "and not the old one");
    kill(child, SIGKILL);
    waitpid(child, &st, 0);
    close(cmd);
    close(ack);
    is_int(tp_run(&t), PIPIT_OK, "scan after the child has gone");
    is_int(tp_count(&t, "process.cpu_seconds", "pid", pid, NULL), 0,
           "a kept file of a process that has gone counts nothing");
    tp_close(&t);
    is_int(count_fds(), base - 2, "fini closes every kept file");

    kv[0] = "keep_open=3";
    tp_open(&t, "process", kv);
    opened = count_fds();
    tp_run(&t);
    is_int(count_fds() - opened, 3, "keep_open=3 keeps three");
    tp_close(&t);

    open_case(&t, tp_fixture("process-basic"), NULL, NULL);
    opened = count_fds();
    tp_run(&t);
    is_int(count_fds(), opened, "nothing kept on a tree that is not procfs");
    tp_close(&t);
}

int main(void)
{
    tck = (double)sysconf(_SC_CLK_TCK);
    page = (double)sysconf(_SC_PAGESIZE);
    test_counts();
    test_match();
    test_errors();
    test_real_proc();
    test_keep_open();
    return done_testing();
}
