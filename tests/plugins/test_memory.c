/* test_memory.c: the memory collector on fixture meminfo files and on the real /proc. */
#include "plugtest.h"

static double val(struct tp *t, const char *name)
{
    return tp_val(tp_find(t, name, NULL));
}

static int open_case(struct tp *t, const char *dir, const char *extra)
{
    char opt[4200];
    const char *kv[] = { opt, extra, NULL };

    snprintf(opt, sizeof opt, "proc_path=%s", dir);
    return tp_open(t, "memory", kv);
}

static void test_basic(void)
{
    struct tp t;
    size_t i;
    json_t *r;
    bool gauges = true;

    is_int(open_case(&t, tp_fixture("memory-basic"), NULL), PIPIT_OK, "init");
    is_int(tp_run(&t), PIPIT_OK, "collect");
    is_int(t.bad, 0, "every record well-formed");
    is_int(json_array_size(t.recs), 41, "37 fields and 4 derived values");
    json_array_foreach(t.recs, i, r)
        gauges &= strcmp(tp_type(r), "gauge") == 0;
    ok(gauges, "every record is a gauge");
    is_num(val(&t, "memory.total_bytes"), 16318148.0 * 1024, 0, "MemTotal in bytes");
    is_num(val(&t, "memory.free_bytes"), 1234567.0 * 1024, 0, "MemFree");
    is_num(val(&t, "memory.available_bytes"), 8000000.0 * 1024, 0, "MemAvailable");
    is_num(val(&t, "memory.buffers_bytes"), 456789.0 * 1024, 0, "Buffers");
    is_num(val(&t, "memory.cached_bytes"), 5678901.0 * 1024, 0, "Cached");
    is_num(val(&t, "memory.shmem_bytes"), 250000.0 * 1024, 0, "Shmem");
    is_num(val(&t, "memory.slab_bytes"), 600000.0 * 1024, 0, "Slab");
    is_num(val(&t, "memory.slab_reclaimable_bytes"), 400000.0 * 1024, 0, "SReclaimable");
    is_num(val(&t, "memory.dirty_bytes"), 4321.0 * 1024, 0, "Dirty");
    is_num(val(&t, "memory.swap_total_bytes"), 2097148.0 * 1024, 0, "SwapTotal");
    is_num(val(&t, "memory.swap_free_bytes"), 1048574.0 * 1024, 0, "SwapFree");
    is_num(val(&t, "memory.active_anon_bytes"), 3000000.0 * 1024, 0, "Active(anon)");
    is_num(val(&t, "memory.committed_bytes"), 12345678.0 * 1024, 0, "Committed_AS");
    is_num(tp_val(tp_find(&t, "memory.huge_pages", "state", "total", NULL)), 16, 0,
           "HugePages_Total is a count, not kB");
    is_num(tp_val(tp_find(&t, "memory.huge_pages", "state", "surplus", NULL)), 1, 0,
           "HugePages_Surp");
    is_num(val(&t, "memory.huge_page_size_bytes"), 2048.0 * 1024, 0, "Hugepagesize");
    is_num(val(&t, "memory.used_bytes"), (16318148.0 - 8000000) * 1024, 0,
           "used = MemTotal - MemAvailable");
    is_num(val(&t, "memory.utilization"), (16318148.0 - 8000000) / 16318148.0, 1e-12,
           "utilization = used / total");
    is_num(val(&t, "memory.swap_used_bytes"), (2097148.0 - 1048574) * 1024, 0, "swap used");
    is_num(val(&t, "memory.swap_utilization"), (2097148.0 - 1048574) / 2097148.0, 1e-12,
           "swap utilization");
    is_int(tp_count(&t, "memory.zswap_bytes", NULL), 0, "lines not in the table are skipped");
    tp_close(&t);
}

static void test_old_kernel(void)
{
    struct tp t;

    is_int(open_case(&t, tp_fixture("memory-old-kernel"), NULL), PIPIT_OK,
           "init without MemAvailable");
    is_int(tp_run(&t), PIPIT_OK, "collect without MemAvailable");
    is_int(tp_count(&t, "memory.available_bytes", NULL), 0, "no available_bytes");
    is_num(val(&t, "memory.used_bytes"), (2000000.0 - 500000 - 100000 - 400000) * 1024, 0,
           "used = total - free - buffers - cached");
    is_num(val(&t, "memory.utilization"), 0.5, 1e-12, "utilization 0.5");
    is_num(val(&t, "memory.swap_used_bytes"), 0, 0, "no swap: 0 used");
    is_int(tp_count(&t, "memory.swap_utilization", NULL), 0, "no swap: no swap ratio");
    tp_close(&t);
}

static void test_fields(void)
{
    struct tp t;

    is_int(open_case(&t, tp_fixture("memory-basic"), "fields=memory.used_bytes"),
           PIPIT_OK, "init fields=memory.used_bytes");
    tp_run(&t);
    is_int(json_array_size(t.recs), 1, "one metric");
    is_num(val(&t, "memory.used_bytes"), (16318148.0 - 8000000) * 1024, 0,
           "derived value still computed from unselected fields");
    tp_close(&t);

    is_int(open_case(&t, tp_fixture("memory-basic"), "fields=Swap*"), PIPIT_OK,
           "init fields=Swap* (meminfo keys)");
    tp_run(&t);
    is_int(json_array_size(t.recs), 3, "SwapCached, SwapTotal, SwapFree");
    ok(tp_find(&t, "memory.swap_cached_bytes", NULL), "swap_cached_bytes");
    tp_close(&t);

    is_int(open_case(&t, tp_fixture("memory-basic"), "fields=memory.huge_pages"), PIPIT_OK,
           "init fields=memory.huge_pages");
    tp_run(&t);
    is_int(json_array_size(t.recs), 4, "four states of huge pages");
    tp_close(&t);

    is_int(open_case(&t, tp_fixture("memory-basic"), "fields=memory.nonsense"),
           PIPIT_ECONFIG, "a field matching nothing is refused");
    tp_close(&t);
}

static void test_errors(void)
{
    const char *dir = tp_tmpdir();
    struct tp t;

    is_int(open_case(&t, tp_fixture("memory-truncated"), NULL), PIPIT_EPARSE,
           "init on a truncated meminfo: EPARSE");
    tp_close(&t);
    is_int(open_case(&t, tp_fixture("no-such-case"), NULL), PIPIT_ENOENT,
           "init without meminfo: ENOENT");
    tp_close(&t);

    tp_stage(dir, "meminfo", "memory-basic/meminfo");
    is_int(open_case(&t, dir, NULL), PIPIT_OK, "init on a staged tree");
    tp_stage(dir, "meminfo", "memory-truncated/meminfo");
    is_int(tp_run(&t), PIPIT_EPARSE, "cut in the middle of a key: EPARSE");
    is_int(json_array_size(t.recs), 0, "nothing emitted");
    tp_stage(dir, "meminfo", "memory-garbage/meminfo");
    is_int(tp_run(&t), PIPIT_EPARSE, "a word for a number: EPARSE");
    is_int(json_array_size(t.recs), 0, "nothing emitted");
    tp_write(dir, "meminfo", "MemTotal:       16318148 kB\n");
    is_int(tp_run(&t), PIPIT_EPARSE, "cut after MemTotal: EPARSE");
    tp_write(dir, "meminfo", "");
    is_int(tp_run(&t), PIPIT_EPARSE, "empty file: EPARSE");
    tp_write(dir, "meminfo", "MemTotal:       16318148 MB\nMemFree: 1 kB\n");
    is_int(tp_run(&t), PIPIT_EPARSE, "unknown unit: EPARSE");
    tp_stage(dir, "meminfo", "memory-basic/meminfo");
    is_int(tp_run(&t), PIPIT_OK, "recovers on a good file");
    is_int(json_array_size(t.recs), 41, "all records again");
    tp_close(&t);
    tp_rmtree(dir);
}

/* A "Key:" line of /proc/meminfo in kB, or -1. */
static long long meminfo_kb(const char *text, const char *key)
{
    char pat[64];
    const char *p;
    long long v;

    snprintf(pat, sizeof pat, "\n%s:", key);
    if (strncmp(text, pat + 1, strlen(pat + 1)) == 0)
        p = text + strlen(pat + 1);
    else if ((p = strstr(text, pat)) != NULL)
        p += strlen(pat);
    else
        return -1;
    return sscanf(p, "%lld", &v) == 1 ? v : -1;
}

static void test_real_proc(void)
{
    const char *text = tp_slurp("/proc/meminfo");
    struct tp t;
    double total, used;

    if (!text) {
        skip(6, "no /proc/meminfo");
        return;
    }
    is_int(tp_open(&t, "memory", NULL), PIPIT_OK, "init on /proc");
    is_int(tp_run(&t), PIPIT_OK, "collect on /proc");
    is_int(t.bad, 0, "every record well-formed");
    total = val(&t, "memory.total_bytes");
    used = val(&t, "memory.used_bytes");
    is_num(total, meminfo_kb(text, "MemTotal") * 1024.0, 0, "MemTotal as read directly");
    is_num(val(&t, "memory.swap_total_bytes"), meminfo_kb(text, "SwapTotal") * 1024.0, 0,
           "SwapTotal as read directly");
    ok(used >= 0 && used <= total && val(&t, "memory.utilization") >= 0 &&
       val(&t, "memory.utilization") <= 1, "used within [0, total], ratio within [0, 1]");
    tp_close(&t);
}

int main(void)
{
    test_basic();
    test_old_kernel();
    test_fields();
    test_errors();
    test_real_proc();
    return done_testing();
}
