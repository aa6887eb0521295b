/* test_uptime.c: the uptime collector on fixture files and on the real /proc. */
#include "plugtest.h"

static double val(struct tp *t, const char *name)
{
    return tp_val(tp_find(t, name, NULL));
}

static int open_case(struct tp *t, const char *dir, const char *extra)
{
    char p[4200];
    const char *kv[] = { p, extra, NULL };

    snprintf(p, sizeof p, "proc_path=%s", dir);
    return tp_open(t, "uptime", kv);
}

static void test_fixtures(void)
{
    struct tp t;

    is_int(open_case(&t, tp_fixture("uptime-basic"), NULL), PIPIT_OK, "init");
    is_int(tp_run(&t), PIPIT_OK, "collect");
    is_int(t.bad, 0, "every record well-formed");
    is_int(json_array_size(t.recs), 3, "three records");
    is_num(val(&t, "system.uptime_seconds"), 12345.67, 0, "uptime, exactly as strtod reads it");
    is_str(tp_type(tp_find(&t, "system.uptime_seconds", NULL)), "gauge", "uptime is a gauge");
    is_num(val(&t, "system.idle_seconds"), 23456.78, 0, "idle");
    is_str(tp_type(tp_find(&t, "system.idle_seconds", NULL)), "counter", "idle is a counter");
    is_num(val(&t, "system.boot_time_seconds"), 1700000000, 0, "btime from stat");
    is_str(tp_type(tp_find(&t, "system.boot_time_seconds", NULL)), "gauge",
           "boot time is a gauge");
    tp_close(&t);

    is_int(open_case(&t, tp_fixture("uptime-no-btime"), "boot_time=false"), PIPIT_OK,
           "boot_time=false does not need btime");
    tp_run(&t);
    is_int(json_array_size(t.recs), 2, "uptime and idle only");
    tp_close(&t);
}

static void test_errors(void)
{
    const char *dir = tp_tmpdir();
    struct tp t;

    is_int(open_case(&t, tp_fixture("uptime-truncated"), "boot_time=false"), PIPIT_EPARSE,
           "init on a truncated uptime: EPARSE");
    tp_close(&t);
    is_int(open_case(&t, tp_fixture("uptime-no-btime"), NULL), PIPIT_EPARSE,
           "init with a stat without btime: EPARSE");
    tp_close(&t);
    is_int(open_case(&t, tp_fixture("no-such-case"), NULL), PIPIT_ENOENT,
           "init without uptime: ENOENT");
    tp_close(&t);

    tp_stage(dir, "uptime", "uptime-basic/uptime");
    tp_stage(dir, "stat", "uptime-basic/stat");
    is_int(open_case(&t, dir, NULL), PIPIT_OK, "init on a staged tree");
    tp_stage(dir, "uptime", "uptime-truncated/uptime");
    is_int(tp_run(&t), PIPIT_EPARSE, "one number cut short: EPARSE");
    is_int(json_array_size(t.recs), 0, "nothing emitted");
    tp_write(dir, "uptime", "12345.67 x\n");
    is_int(tp_run(&t), PIPIT_EPARSE, "a word for idle: EPARSE");
    tp_write(dir, "uptime", "12345. 1.0\n");
    is_int(tp_run(&t), PIPIT_EPARSE, "a point without digits: EPARSE");
    tp_stage(dir, "uptime", "uptime-basic/uptime");
    tp_write(dir, "stat", "cpu  1 2 3 4\nbtime nope\n");
    is_int(tp_run(&t), PIPIT_EPARSE, "a bad btime: EPARSE");
    is_int(json_array_size(t.recs), 0, "nothing emitted");
    tp_stage(dir, "stat", "uptime-basic/stat");
    is_int(tp_run(&t), PIPIT_OK, "recovers");
    tp_close(&t);
    tp_rmtree(dir);
}

static void test_real_proc(void)
{
    double a = 0, b = 0, idle;
    long long btime = 0;
    const char *s, *p;
    struct tp t;

    s = tp_slurp("/proc/uptime");
    if (!s || sscanf(s, "%lf %lf", &a, &idle) != 2) {
        skip(5, "no /proc/uptime");
        return;
    }
    is_int(tp_open(&t, "uptime", NULL), PIPIT_OK, "init on /proc");
    is_int(tp_run(&t), PIPIT_OK, "collect on /proc");
    s = tp_slurp("/proc/uptime");
    sscanf(s, "%lf", &b);
    is_int(t.bad, 0, "every record well-formed");
    {
        double v = val(&t, "system.uptime_seconds");
        ok(v >= a - 1e-9 && v <= b + 1e-9 && b - a < 1,
           "uptime %.2f within [%.2f, %.2f]", v, a, b);
    }
    s = tp_slurp("/proc/stat");
    p = s ? strstr(s, "\nbtime ") : NULL;
    if (p)
        sscanf(p, "\nbtime %lld", &btime);
    is_num(val(&t, "system.boot_time_seconds"), (double)btime, 0, "btime as read directly");
    tp_close(&t);
}

int main(void)
{
    test_fixtures();
    test_errors();
    test_real_proc();
    return done_testing();
}
