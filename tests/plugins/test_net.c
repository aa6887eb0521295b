/* test_net.c: the net collector on fixture /proc/net/dev files and on the real /proc. */
#include "plugtest.h"

static double get(struct tp *t, const char *name, const char *ifname, const char *dir)
{
    return tp_val(tp_find(t, name, "interface", ifname, "direction", dir, NULL));
}

static int open_case(struct tp *t, const char *dir, const char *extra)
{
    char p[4200];
    const char *kv[] = { p, extra, NULL };

    snprintf(p, sizeof p, "proc_path=%s", dir);
    return tp_open(t, "net", kv);
}

static void test_basic(void)
{
    static const struct { const char *name, *dir; double want; } eth0[] = {
        { "net.io_bytes", "rx", 9876543210.0 },   { "net.packets", "rx", 12345678 },
        { "net.errors", "rx", 1 },                { "net.drops", "rx", 2 },
        { "net.fifo_errors", "rx", 3 },           { "net.frame_errors", "rx", 4 },
        { "net.compressed_packets", "rx", 5 },    { "net.multicast_packets", "rx", 6 },
        { "net.io_bytes", "tx", 1234567890.0 },   { "net.packets", "tx", 7654321 },
        { "net.errors", "tx", 7 },                { "net.drops", "tx", 8 },
        { "net.fifo_errors", "tx", 9 },           { "net.collisions", "tx", 10 },
        { "net.carrier_errors", "tx", 11 },       { "net.compressed_packets", "tx", 12 },
    };
    struct tp t;
    size_t i;
    json_t *r;
    bool counters = true;

    is_int(open_case(&t, tp_fixture("net-basic"), NULL), PIPIT_OK, "init");
    is_int(tp_run(&t), PIPIT_OK, "collect");
    is_int(t.bad, 0, "every record well-formed");
    is_int(json_array_size(t.recs), 5 * 16, "16 counters for each of 5 interfaces");
    json_array_foreach(t.recs, i, r)
        counters &= strcmp(tp_type(r), "counter") == 0;
    ok(counters, "every record is a counter");
    for (i = 0; i < sizeof eth0 / sizeof eth0[0]; i++)
        is_num(get(&t, eth0[i].name, "eth0", eth0[i].dir), eth0[i].want, 0,
               "eth0 %s %s", eth0[i].name, eth0[i].dir);
    is_int(tp_count(&t, "net.frame_errors", "direction", "tx", NULL), 0,
           "frame errors only for rx");
    is_int(tp_count(&t, "net.collisions", "direction", "rx", NULL), 0,
           "collisions only for tx");
    is_num(get(&t, "net.io_bytes", "lo", "rx"), 123456, 0, "lo is included by default");
    is_num(get(&t, "net.io_bytes", "veth1a2b3c", "tx"), 200, 0, "veth tx bytes");
    is_num(get(&t, "net.io_bytes", "eth1", "rx"), 18446744073709551615.0, 0,
           "name glued to a 64-bit counter (old kernels)");
    is_num(get(&t, "net.io_bytes", "eth1", "tx"), 5, 0, "eth1 tx bytes");
    tp_close(&t);
}

static void test_filters(void)
{
    struct tp t;

    is_int(open_case(&t, tp_fixture("net-basic"), "include_interfaces=eth*"), PIPIT_OK,
           "init include_interfaces=eth*");
    tp_run(&t);
    is_int(json_array_size(t.recs), 2 * 16, "eth0 and eth1 only");
    is_int(tp_count(&t, "net.io_bytes", "interface", "lo", NULL), 0, "no lo");
    tp_close(&t);

    is_int(open_case(&t, tp_fixture("net-basic"), "exclude_interfaces=veth*"), PIPIT_OK,
           "init exclude_interfaces=veth*");
    tp_run(&t);
    is_int(json_array_size(t.recs), 4 * 16, "all but the veth");
    is_int(tp_count(&t, "net.io_bytes", "interface", "veth1a2b3c", NULL), 0, "no veth");
    tp_close(&t);

    is_int(open_case(&t, tp_fixture("net-basic"), "max_interfaces=2"), PIPIT_OK,
           "init max_interfaces=2");
    is_int(tp_run(&t), PIPIT_OK, "over the cap is not an error");
    is_int(json_array_size(t.recs), 2 * 16, "two interfaces");
    ok(tp_find(&t, "net.io_bytes", "interface", "lo", NULL) &&
       tp_find(&t, "net.io_bytes", "interface", "eth0", NULL), "the first two, in file order");
    tp_close(&t);
}

static void test_errors(void)
{
    const char *dir = tp_tmpdir();
    struct tp t;

    is_int(open_case(&t, tp_fixture("net-truncated"), NULL), PIPIT_EPARSE,
           "init on a truncated file: EPARSE");
    tp_close(&t);
    is_int(open_case(&t, tp_fixture("net-noheader"), NULL), PIPIT_EPARSE,
           "init without the header lines: EPARSE");
    tp_close(&t);
    is_int(open_case(&t, tp_fixture("no-such-case"), NULL), PIPIT_ENOENT,
           "init without net/dev: ENOENT");
    tp_close(&t);

    tp_stage(dir, "net/dev", "net-basic/net/dev");
    is_int(open_case(&t, dir, "include_interfaces=lo"), PIPIT_OK, "init on a staged tree");
    tp_stage(dir, "net/dev", "net-truncated/net/dev");
    is_int(tp_run(&t), PIPIT_EPARSE, "truncated line of an unselected interface: EPARSE");
    is_int(json_array_size(t.recs), 0, "nothing emitted");
    tp_write(dir, "net/dev", "Inter-|\n face |\n  eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
    is_int(tp_run(&t), PIPIT_EPARSE, "no colon after the name: EPARSE");
    tp_write(dir, "net/dev", "Inter-|\n face |\n  lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 -16\n");
    is_int(tp_run(&t), PIPIT_EPARSE, "a negative counter: EPARSE");
    tp_write(dir, "net/dev", "Inter-|\n face |\n");
    is_int(tp_run(&t), PIPIT_OK, "no interfaces at all is fine");
    is_int(json_array_size(t.recs), 0, "and emits nothing");
    tp_stage(dir, "net/dev", "net-basic/net/dev");
    is_int(tp_run(&t), PIPIT_OK, "recovers");
    is_int(json_array_size(t.recs), 16, "lo again");
    tp_close(&t);
    tp_rmtree(dir);
}

/* Receive bytes and packets of lo from /proc/net/dev; -1 when absent. */
static int lo_counters(double *bytes, double *packets)
{
    const char *s = tp_slurp("/proc/net/dev"), *p;
    unsigned long long b, n;

    if (!s || !(p = strstr(s, " lo:")) || sscanf(p, " lo: %llu %llu", &b, &n) != 2)
        return -1;
    *bytes = (double)b;
    *packets = (double)n;
    return 0;
}

static void test_real_proc(void)
{
    double ba, pa, bb, pb;
    struct tp t;

    if (lo_counters(&ba, &pa) != 0) {
        skip(5, "no lo in /proc/net/dev");
        return;
    }
    is_int(tp_open(&t, "net", NULL), PIPIT_OK, "init on /proc");
    is_int(tp_run(&t), PIPIT_OK, "collect on /proc");
    lo_counters(&bb, &pb);
    is_int(t.bad, 0, "every record well-formed");
    {
        double v = get(&t, "net.io_bytes", "lo", "rx");
        ok(v >= ba && v <= bb, "lo rx bytes %.0f within [%.0f, %.0f]", v, ba, bb);
        v = get(&t, "net.packets", "lo", "rx");
        ok(v >= pa && v <= pb, "lo rx packets %.0f within [%.0f, %.0f]", v, pa, pb);
    }
    tp_close(&t);
}

int main(void)
{
    test_basic();
    test_filters();
    test_errors();
    test_real_proc();
    return done_testing();
}
