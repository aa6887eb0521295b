/* test_load.c: the load collector on fixture loadavg files and on the real /proc. */
#include "plugtest.h"

static double val(struct tp *t, const char *name)
{
    return tp_val(tp_find(t, name, NULL));
}

/* Open with proc_path=<fixture case> and sys_path=<case>/sys, plus extra. */
static int open_case(struct tp *t, const char *dir, const char *extra)
{
    char p[4200], s[4200];
    const char *kv[] = { p, s, extra, NULL };

    snprintf(p, sizeof p, "proc_path=%s", dir);
    snprintf(s, sizeof s, "sys_path=%s/sys", dir);
    return tp_open(t, "load", kv);
}

static void test_fixtures(void)
{
    struct tp t;

    is_int(open_case(&t, tp_fixture("load-basic"), NULL), PIPIT_OK, "init");
    is_int(tp_run(&t), PIPIT_OK, "collect");
    is_int(t.bad, 0, "every record well-formed");
    is_int(json_array_size(t.recs), 5, "five records");
    is_num(val(&t, "load.1m"), 1.5, 0, "load.1m");
    is_num(val(&t, "load.5m"), 0.75, 0, "load.5m");
    is_num(val(&t, "load.15m"), 0.25, 0, "load.15m");
    is_num(val(&t, "load.runnable_tasks"), 3, 0, "runnable tasks");
    is_num(val(&t, "load.tasks"), 456, 0, "tasks");
    is_str(tp_type(tp_find(&t, "load.1m", NULL)), "gauge", "averages are gauges");
    is_str(tp_type(tp_find(&t, "load.tasks", NULL)), "gauge", "task counts are gauges");
    tp_close(&t);

    is_int(open_case(&t, tp_fixture("load-basic"), "relative=true"), PIPIT_OK,
           "init relative=true");
    tp_run(&t);
    is_num(val(&t, "load.1m"), 1.5 / 4, 0, "1m divided by 4 online CPUs (0-3)");
    is_num(val(&t, "load.15m"), 0.25 / 4, 0, "15m divided too");
    is_num(val(&t, "load.tasks"), 456, 0, "task counts are not divided");
    tp_close(&t);

    is_int(open_case(&t, tp_fixture("load-sparse"), "relative=true"), PIPIT_OK,
           "init on a sparse CPU list");
    tp_run(&t);
    is_num(val(&t, "load.1m"), 1.0, 1e-15, "0-1,4,6-7 is 5 CPUs");
    is_num(val(&t, "load.5m"), 0.5, 1e-15, "5m / 5");
    tp_close(&t);

    {
        char p[4200];
        const char *kv[] = { p, "sys_path=/nonexistent", "relative=true", NULL };
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        snprintf(p, sizeof p, "proc_path=%s", tp_fixture("load-basic"));
        is_int(tp_open(&t, "load", kv), PIPIT_OK, "init without sysfs: falls back");
        tp_run(&t);
        is_num(val(&t, "load.1m"), 1.5 / (double)n, 1e-15, "divided by sysconf's count");
        tp_close(&t);
    }
}

static void test_errors(void)
{
    const char *dir = tp_tmpdir();
    struct tp t;

    is_int(open_case(&t, tp_fixture("load-truncated"), NULL), PIPIT_EPARSE,
           "init on a truncated loadavg: EPARSE");
    tp_close(&t);
    is_int(open_case(&t, tp_fixture("no-such-case"), NULL), PIPIT_ENOENT,
           "init without loadavg: ENOENT");
    tp_close(&t);

    tp_stage(dir, "loadavg", "load-basic/loadavg");
    is_int(open_case(&t, dir, NULL), PIPIT_OK, "init on a staged tree");
    tp_stage(dir, "loadavg", "load-garbage/loadavg");
    is_int(tp_run(&t), PIPIT_EPARSE, "a word for a number: EPARSE");
    is_int(json_array_size(t.recs), 0, "nothing emitted");
    tp_stage(dir, "loadavg", "load-truncated/loadavg");
    is_int(tp_run(&t), PIPIT_EPARSE, "two numbers only: EPARSE");
    tp_write(dir, "loadavg", "1.50 0.75 0.25 3/");
    is_int(tp_run(&t), PIPIT_EPARSE, "cut in the task counts: EPARSE");
    tp_write(dir, "loadavg", "");
    is_int(tp_run(&t), PIPIT_EPARSE, "empty: EPARSE");
    tp_write(dir, "loadavg", "-1.00 0.75 0.25 3/456 7890\n");
    is_int(tp_run(&t), PIPIT_EPARSE, "negative: EPARSE");
    tp_stage(dir, "loadavg", "load-basic/loadavg");
    is_int(tp_run(&t), PIPIT_OK, "recovers");
    tp_close(&t);
    tp_rmtree(dir);
}

static void test_real_proc(void)
{
    double a[3], b[3];
    unsigned ra, ta, rb, tb;
    struct tp t;
    const char *s;

    s = tp_slurp("/proc/loadavg");
    if (!s || sscanf(s, "%lf %lf %lf %u/%u", &a[0], &a[1], &a[2], &ra, &ta) != 5) {
        skip(5, "no /proc/loadavg");
        return;
    }
    is_int(tp_open(&t, "load", NULL), PIPIT_OK, "init on /proc");
    is_int(tp_run(&t), PIPIT_OK, "collect on /proc");
    s = tp_slurp("/proc/loadavg");
    sscanf(s, "%lf %lf %lf %u/%u", &b[0], &b[1], &b[2], &rb, &tb);
    is_int(t.bad, 0, "every record well-formed");
    {
        double v = val(&t, "load.1m");
        ok(fabs(v - a[0]) < 1e-9 || fabs(v - b[0]) < 1e-9,
           "load.1m %.2f equals a direct read (%.2f or %.2f)", v, a[0], b[0]);
    }
    {
        double v = val(&t, "load.tasks");
        double lo = ta < tb ? ta : tb, hi = ta < tb ? tb : ta;
        ok(v >= lo - 20 && v <= hi + 20, "load.tasks %.0f near %u..%u", v, ta, tb);
    }
    tp_close(&t);
}

int main(void)
{
    test_fixtures();
    test_errors();
    test_real_proc();
    return done_testing();
}
