/* test_cpu.c: the cpu collector on fixture /proc/stat files and on the real /proc. */
#include "plugtest.h"

static double tck;                      /* sysconf(_SC_CLK_TCK) */
static const char *const states[10] = {
    "user", "nice", "system", "idle", "iowait",
    "irq", "softirq", "steal", "guest", "guest_nice"
};

static double util(struct tp *t, const char *cpu, const char *state)
{
    return tp_val(tp_find(t, "cpu.utilization", "cpu", cpu, "state", state, NULL));
}

static double secs(struct tp *t, const char *cpu, const char *state)
{
    return tp_val(tp_find(t, "cpu.time_seconds", "cpu", cpu, "state", state, NULL));
}

/* A full run through successive fixture samples in one instance. */
static void test_fixture_sequence(void)
{
    const char *dir = tp_tmpdir();
    char opt[4200];
    const char *kv[] = { opt, NULL };
    struct tp t;

    snprintf(opt, sizeof opt, "proc_path=%s", dir);
    tp_stage(dir, "stat", "cpu-t0/stat");
    is_int(tp_open(&t, "cpu", kv), PIPIT_OK, "init on a fixture tree");

    /* first sample: counters, no utilization yet */
    is_int(tp_run(&t), PIPIT_OK, "collect t0");
    is_int(t.bad, 0, "t0: every record well-formed");
    is_num(tp_val(tp_find(&t, "cpu.count", NULL)), 2, 0, "cpu.count is 2");
    is_str(tp_type(tp_find(&t, "cpu.count", NULL)), "gauge", "cpu.count is a gauge");
    is_int(tp_count(&t, "cpu.time_seconds", NULL), 30, "10 states x (total, cpu0, cpu1)");
    for (int k = 0; k < 10; k++)
        ok(tp_find(&t, "cpu.time_seconds", "cpu", "total", "state", states[k], NULL),
           "total has state %s", states[k]);
    is_num(secs(&t, "total", "user"), 10000 / tck, 1e-9, "total user seconds");
    is_num(secs(&t, "total", "idle"), 80000 / tck, 1e-9, "total idle seconds");
    is_num(secs(&t, "total", "guest"), 400 / tck, 1e-9, "total guest seconds");
    is_num(secs(&t, "cpu1", "system"), 1500 / tck, 1e-9, "cpu1 system seconds");
    is_num(secs(&t, "cpu0", "steal"), 25 / tck, 1e-9, "cpu0 steal seconds");
    is_str(tp_type(tp_find(&t, "cpu.time_seconds", NULL)), "counter",
           "cpu.time_seconds is a counter");
    is_int(tp_count(&t, "cpu.utilization", NULL), 0, "no utilization on the first sample");
    is_num(tp_val(tp_find(&t, "cpu.context_switches", NULL)), 987654, 0, "context switches");
    is_str(tp_type(tp_find(&t, "cpu.context_switches", NULL)), "counter",
           "context switches is a counter");
    is_num(tp_val(tp_find(&t, "cpu.interrupts", NULL)), 123456, 0, "interrupts (first intr number)");
    is_num(tp_val(tp_find(&t, "cpu.softirqs", NULL)), 55555, 0, "softirqs");
    is_num(tp_val(tp_find(&t, "system.forks", NULL)), 4321, 0, "forks");
    is_num(tp_val(tp_find(&t, "system.procs_running", NULL)), 3, 0, "procs_running");
    is_num(tp_val(tp_find(&t, "system.procs_blocked", NULL)), 1, 0, "procs_blocked");
    is_str(tp_type(tp_find(&t, "system.procs_running", NULL)), "gauge", "procs_running is a gauge");

    /* second sample: utilization from the deltas (total delta 2000) */
    tp_stage(dir, "stat", "cpu-t1/stat");
    is_int(tp_run(&t), PIPIT_OK, "collect t1");
    is_int(tp_count(&t, "cpu.utilization", NULL), 30, "utilization for every cpu and state");
    is_str(tp_type(tp_find(&t, "cpu.utilization", NULL)), "gauge", "utilization is a gauge");
    is_num(util(&t, "total", "user"), 0.3, 1e-12, "total user 600/2000");
    is_num(util(&t, "total", "nice"), 0, 1e-12, "total nice 0");
    is_num(util(&t, "total", "system"), 0.1, 1e-12, "total system 200/2000");
    is_num(util(&t, "total", "idle"), 0.5, 1e-12, "total idle 1000/2000");
    is_num(util(&t, "total", "iowait"), 0.05, 1e-12, "total iowait 100/2000");
    is_num(util(&t, "total", "softirq"), 0.025, 1e-12, "total softirq 50/2000");
    is_num(util(&t, "total", "steal"), 0.025, 1e-12, "total steal 50/2000");
    is_num(util(&t, "total", "guest"), 0.05, 1e-12, "guest is a share of the same total");
    is_num(util(&t, "cpu0", "user"), 0.3, 1e-12, "cpu0 user 300/1000");
    is_num(util(&t, "cpu1", "idle"), 0.5, 1e-12, "cpu1 idle 500/1000");
    {
        double sum = 0;
        for (int k = 0; k < 8; k++)
            sum += util(&t, "total", states[k]);
        is_num(sum, 1, 1e-12, "states but guest add up to 1");
    }
    is_num(tp_val(tp_find(&t, "cpu.context_switches", NULL)), 990000, 0, "context switches grow");

    /* cpu1 goes offline */
    tp_stage(dir, "stat", "cpu-hotplug/stat");
    is_int(tp_run(&t), PIPIT_OK, "collect with cpu1 offline");
    is_num(tp_val(tp_find(&t, "cpu.count", NULL)), 1, 0, "cpu.count follows hotplug");
    is_int(tp_count(&t, "cpu.time_seconds", "cpu", "cpu1", NULL), 0, "offline cpu1 not reported");
    is_num(util(&t, "cpu0", "user"), 400.0 / 1800, 1e-12, "cpu0 keeps its rates");

    /* cpu1 comes back: counters at once, rates only from the next sample */
    tp_stage(dir, "stat", "cpu-t3/stat");
    is_int(tp_run(&t), PIPIT_OK, "collect with cpu1 back");
    is_num(tp_val(tp_find(&t, "cpu.count", NULL)), 2, 0, "cpu.count back to 2");
    is_num(secs(&t, "cpu1", "user"), 5400 / tck, 1e-9, "cpu1 counters again");
    is_int(tp_count(&t, "cpu.utilization", "cpu", "cpu1", NULL), 0,
           "no utilization for a cpu that just came back");
    is_num(util(&t, "cpu0", "user"), 0.3, 1e-12, "cpu0 rates across the hotplug");

    /* counters go backwards: reset, no rates */
    tp_stage(dir, "stat", "cpu-backwards/stat");
    is_int(tp_run(&t), PIPIT_OK, "collect after a counter reset");
    is_int(tp_count(&t, "cpu.utilization", NULL), 0, "no utilization across a reset");
    is_num(secs(&t, "total", "user"), 100 / tck, 1e-9, "new counter values reported");
    is_int(tp_count(&t, "cpu.interrupts", NULL), 0, "missing intr line: no interrupts record");

    /* malformed file: an error, nothing emitted, rates start over */
    tp_stage(dir, "stat", "cpu-garbage/stat");
    is_int(tp_run(&t), PIPIT_EPARSE, "garbage in a cpu line: EPARSE");
    is_int(json_array_size(t.recs), 0, "nothing emitted from a malformed file");
    tp_stage(dir, "stat", "cpu-truncated/stat");
    is_int(tp_run(&t), PIPIT_EPARSE, "truncated file: EPARSE");
    is_int(json_array_size(t.recs), 0, "nothing emitted from a truncated file");
    tp_stage(dir, "stat", "cpu-t1/stat");
    is_int(tp_run(&t), PIPIT_OK, "collect again after errors");
    is_int(tp_count(&t, "cpu.utilization", NULL), 0, "rates restart after an error");
    tp_stage(dir, "stat", "cpu-t3/stat");
    is_int(tp_run(&t), PIPIT_OK, "and the next sample");
    ok(tp_count(&t, "cpu.utilization", NULL) > 0, "rates again");

    tp_close(&t);
    tp_rmtree(dir);
}

/* Options and kernels with fewer columns. */
static void test_options_and_old_kernel(void)
{
    char opt[4200];
    const char *kv[4] = { opt, NULL, NULL, NULL };
    struct tp t;

    snprintf(opt, sizeof opt, "proc_path=%s", tp_fixture("cpu-t0"));
    kv[1] = "per_cpu=false";
    is_int(tp_open(&t, "cpu", kv), PIPIT_OK, "init per_cpu=false");
    is_int(tp_run(&t), PIPIT_OK, "collect per_cpu=false");
    is_int(tp_count(&t, "cpu.time_seconds", NULL), 10, "only the total");
    is_int(tp_count(&t, "cpu.time_seconds", "cpu", "cpu0", NULL), 0, "no cpu0");
    is_num(tp_val(tp_find(&t, "cpu.count", NULL)), 2, 0, "cpu.count still counts cores");
    tp_close(&t);

    kv[1] = "max_cpus=1";
    is_int(tp_open(&t, "cpu", kv), PIPIT_OK, "init max_cpus=1");
    is_int(tp_run(&t), PIPIT_OK, "collect max_cpus=1");
    is_int(tp_count(&t, "cpu.time_seconds", "cpu", "cpu0", NULL), 10, "cpu0 reported");
    is_int(tp_count(&t, "cpu.time_seconds", "cpu", "cpu1", NULL), 0, "cpu1 over the cap");
    is_num(tp_val(tp_find(&t, "cpu.count", NULL)), 2, 0, "cpu.count counts capped cores");
    tp_close(&t);

    kv[1] = "utilization=false";
    is_int(tp_open(&t, "cpu", kv), PIPIT_OK, "init utilization=false");
    tp_run(&t);
    tp_run(&t);
    is_int(tp_count(&t, "cpu.utilization", NULL), 0, "no utilization when disabled");
    tp_close(&t);

    snprintf(opt, sizeof opt, "proc_path=%s", tp_fixture("cpu-old-kernel"));
    kv[1] = NULL;
    is_int(tp_open(&t, "cpu", kv), PIPIT_OK, "init on an 8-column kernel");
    is_int(tp_run(&t), PIPIT_OK, "collect on an 8-column kernel");
    is_int(tp_count(&t, "cpu.time_seconds", NULL), 16, "8 states x (total, cpu0)");
    is_int(tp_count(&t, "cpu.time_seconds", "state", "guest", NULL), 0, "no guest column");
    is_num(secs(&t, "total", "steal"), 30 / tck, 1e-9, "steal is the 8th column");
    is_int(tp_count(&t, "cpu.softirqs", NULL), 0, "no softirq line, no record");
    is_num(tp_val(tp_find(&t, "cpu.context_switches", NULL)), 7000, 0, "ctxt");
    tp_close(&t);
}

/* init refuses what it cannot use. */
static void test_init_errors(void)
{
    char opt[4200];
    const char *kv[] = { opt, NULL };
    struct tp t;

    snprintf(opt, sizeof opt, "proc_path=%s", tp_fixture("cpu-truncated"));
    is_int(tp_open(&t, "cpu", kv), PIPIT_EPARSE, "init on a truncated stat: EPARSE");
    tp_close(&t);
    snprintf(opt, sizeof opt, "proc_path=%s", tp_fixture("no-such-case"));
    is_int(tp_open(&t, "cpu", kv), PIPIT_ENOENT, "init without a stat file: ENOENT");
    tp_close(&t);
}

/* The "cpu " line of /proc/stat and ctxt, read directly. */
static int read_stat(unsigned long long v[10], unsigned long long *ctxt, int *ncpu)
{
    const char *s = tp_slurp("/proc/stat"), *p;

    if (!s || sscanf(s, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
                     &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
        return -1;
    p = strstr(s, "\nctxt ");
    if (!p || sscanf(p, "\nctxt %llu", ctxt) != 1)
        return -1;
    *ncpu = 0;
    for (p = s; (p = strstr(p, "\ncpu")) != NULL; p++)
        if (p[4] >= '0' && p[4] <= '9')
            (*ncpu)++;
    return 0;
}

/* Against the running kernel: each counter lies between two direct reads. */
static void test_real_proc(void)
{
    unsigned long long a[10], b[10], ca, cb;
    int na, nb;
    struct tp t;

    if (access("/proc/stat", R_OK) != 0) {
        skip(9, "no /proc/stat");
        return;
    }
    is_int(tp_open(&t, "cpu", NULL), PIPIT_OK, "init on /proc");
    read_stat(a, &ca, &na);
    is_int(tp_run(&t), PIPIT_OK, "collect on /proc");
    read_stat(b, &cb, &nb);
    is_int(t.bad, 0, "every record well-formed");
    for (int k = 0; k < 4; k++) {
        double v = secs(&t, "total", states[k]);
        ok(v >= a[k] / tck - 1e-9 && v <= b[k] / tck + 1e-9,
           "total %s %.2f within [%.2f, %.2f]", states[k], v, a[k] / tck, b[k] / tck);
    }
    {
        double v = tp_val(tp_find(&t, "cpu.context_switches", NULL));
        ok(v >= ca && v <= cb, "context switches %.0f within [%llu, %llu]", v, ca, cb);
    }
    ok(tp_val(tp_find(&t, "cpu.count", NULL)) == na && na == nb,
       "cpu.count equals the cpuN lines (%d)", na);

    /* burn some CPU so that time passes on the counters */
    struct timespec t0, t1;
    volatile unsigned long spin = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        for (int i = 0; i < 100000; i++)
            spin++;
        clock_gettime(CLOCK_MONOTONIC, &t1);
    } while ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) < 150000000L);
    tp_run(&t);
    {
        double sum = 0;
        bool inrange = true;
        size_t i;
        json_t *r;

        for (int k = 0; k < 8; k++)
            sum += util(&t, "total", states[k]);
        is_num(sum, 1, 1e-9, "utilization of the total adds up to 1");
        json_array_foreach(t.recs, i, r) {
            const char *n = json_string_value(json_object_get(r, "name"));
            double v = tp_val(r);
            if (strcmp(n, "cpu.utilization") == 0 && (v < 0 || v > 1))
                inrange = false;
        }
        ok(inrange, "every utilization within [0, 1]");
    }
    tp_close(&t);
}

int main(void)
{
    tck = (double)sysconf(_SC_CLK_TCK);
    test_fixture_sequence();
    test_options_and_old_kernel();
    test_init_errors();
    test_real_proc();
    return done_testing();
}
