/* test_cost.c: the cost input through the harness: its catalogue, exact money, a day of simulated usage against a bill computed by hand, and counter resets. */
#include "plugtest.h"
#include "log.h"

static char dir[4096];                  /* the simulated /proc of the host */
static FILE *log_file;                      /* what the plugin logged */
static long hz;                         /* USER_HZ, as the plugin reads it */

/* Everything logged since the last call (then forgotten), with logfmt's
 * \" quoting undone so that messages can be matched as written. */
static const char *logged(void)
{
    static char text[1 << 16];
    ssize_t n;
    char *w = text;

    fflush(log_file);
    n = pread(fileno(log_file), text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    for (const char *r = text; *r; r++)
        if (!(r[0] == '\\' && r[1] == '"'))
            *w++ = *r;
    *w = '\0';
    if (ftruncate(fileno(log_file), 0) != 0 || lseek(fileno(log_file), 0, SEEK_SET) != 0)
        diag("cannot empty the log");
    return text;
}

/*
 * Open the cost plugin on the simulated host with options given as YAML
 * (maps need it), proc_path and the filesystem usage file added. Returns
 * init's status, or PIPIT_EINVAL.
 */
static int cost_open(struct tp *t, const char *options)
{
    char yaml[16384];

    snprintf(yaml, sizeof yaml, "proc_path: %s\nfilesystem_usage_file: %s/fs\n%s",
             dir, dir, options);
    return tp_open_yaml(t, "cost", NULL, yaml);
}

/* One reading of the simulated host. */
struct host {
    const char *uptime;                 /* seconds since boot, as /proc/uptime */
    uint64_t busy_s;                    /* CPU seconds not idle since boot */
    uint64_t used_kb;                   /* MemTotal - MemAvailable */
    uint64_t eth0_tx, eth1_tx, eth2_tx; /* bytes; 0: no such interface */
    uint64_t lo_tx;
    uint64_t fs_used;                   /* bytes used on / */
    uint64_t sda_read, sda_written;     /* 512-byte sectors */
};

static void net_line(char *buf, size_t size, const char *name, uint64_t rx, uint64_t tx)
{
    size_t len = strlen(buf);

    snprintf(buf + len, size - len, "%6s: %llu 1 0 0 0 0 0 0 %llu 1 0 0 0 0 0 0\n", name,
             (unsigned long long)rx, (unsigned long long)tx);
}

/* Write the files of h into the simulated /proc. */
static void host_write(const struct host *h)
{
    char text[4096];

    snprintf(text, sizeof text, "%s 0.00\n", h->uptime);
    tp_write(dir, "uptime", text);
    snprintf(text, sizeof text, "cpu  %llu 0 0 777 5 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\n",
             (unsigned long long)(h->busy_s * (uint64_t)hz));
    tp_write(dir, "stat", text);
    snprintf(text, sizeof text, "MemTotal: %llu kB\nMemFree: 1 kB\nMemAvailable: %llu kB\n",
             4000000ull, (unsigned long long)(4000000 - h->used_kb));
    tp_write(dir, "meminfo", text);
    snprintf(text, sizeof text, "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n");
    net_line(text, sizeof text, "lo", h->lo_tx, h->lo_tx);
    if (h->eth0_tx)
        net_line(text, sizeof text, "eth0", 7, h->eth0_tx);
    if (h->eth1_tx)
        net_line(text, sizeof text, "eth1", 7, h->eth1_tx);
    if (h->eth2_tx)
        net_line(text, sizeof text, "eth2", 7, h->eth2_tx);
    tp_write(dir, "net/dev", text);
    snprintf(text, sizeof text, "/ %llu\n/data 1\n", (unsigned long long)h->fs_used);
    tp_write(dir, "fs", text);
    /* the partition and the loop device count the same I/O again */
    snprintf(text, sizeof text,
             "   8       0 sda 10 0 %llu 40 5 0 %llu 80 0 90 120 0 0 0 0 0 0\n"
             "   8       1 sda1 9 0 %llu 35 4 0 %llu 75 0 80 110 0 0 0 0\n"
             "   7       0 loop0 10 0 %llu 1 0 0 %llu 0 0 1 1 0 0 0 0 0 0\n",
             (unsigned long long)h->sda_read, (unsigned long long)h->sda_written,
             (unsigned long long)h->sda_read, (unsigned long long)h->sda_written,
             (unsigned long long)h->sda_read, (unsigned long long)h->sda_written);
    tp_write(dir, "diskstats", text);
}

/* The cost records of the last run. */
static int costs(struct tp *t)
{
    size_t i;
    json_t *r;
    int n = 0;

    json_array_foreach(t->recs, i, r)
        n += strcmp(json_string_value(json_object_get(r, "kind")), "cost") == 0;
    return n;
}

/* The record of the last run for resource, or NULL. */
static json_t *cost_of(struct tp *t, const char *resource)
{
    size_t i;
    json_t *r;

    json_array_foreach(t->recs, i, r) {
        const char *res = json_string_value(json_object_get(r, "resource"));
        if (res && strcmp(res, resource) == 0)
            return r;
    }
    return NULL;
}

/* amount_micros of the last run's record for resource; -1 when none. */
static int64_t micros(struct tp *t, const char *resource)
{
    json_t *r = cost_of(t, resource);

    return r ? (int64_t)json_integer_value(json_object_get(r, "amount_micros")) : -1;
}

static const struct host quiet = {
    .uptime = "1000.00", .busy_s = 10, .used_kb = 1000, .eth0_tx = 1000, .lo_tx = 1,
    .fs_used = 1000,
};

/* Each bad catalogue is refused at init, with an error naming the key. */
static void test_catalogue(void)
{
    static const struct {
        const char *yaml, *error, *what;
    } bad[] = {
        { "prices: {instance_hour: \"0.04x\"}\n",
          "prices.instance_hour: price \"0.04x\" is not a decimal number", "a price with a letter" },
        { "prices: {egress_gb: \"0.0000000001\"}\n",
          "prices.egress_gb: price \"0.0000000001\" has more than 9 decimal places",
          "a price finer than a nano" },
        { "prices: {egress_gb: \"-0.09\"}\n",
          "prices.egress_gb: price \"-0.09\" is negative", "a negative price" },
        { "prices: {egress_gb: \"99999999999\"}\n",
          "prices.egress_gb: price \"99999999999\" is out of range", "a price too large" },
        { "prices: {egress_gb: \"1,5\"}\n",
          "is not a decimal number", "a decimal comma" },
        { "prices: {gpu_hour: \"2.5\"}\n",
          "prices.gpu_hour: unknown price; known: instance_hour, filesystem_gb_month, egress_gb",
          "an unknown price" },
        { "metric_prices: {requests: \"0.0000125\"}\n",
          "metric_prices.requests: unknown meter; known: instance_hours, cpu_core_seconds",
          "an unknown meter" },
        { "metric_prices: {instance_hour: \"1\"}\n",
          "metric_prices.instance_hour: unknown meter", "a catalogue key among the meters" },
        { "currency: usd\nprices: {egress_gb: \"0.09\"}\n",
          "currency: \"usd\" is not an ISO 4217 code", "a lower-case currency" },
        { "labels: {meter: x}\nprices: {egress_gb: \"0.09\"}\n",
          "labels.meter: the plugin sets this label", "the label the plugin sets" },
        { "labels: {team: web}\n", "nothing to charge", "no price at all" },
    };
    struct tp t;

    host_write(&quiet);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = cost_open(&t, bad[i].yaml);
        const char *log = logged();

        ok(rc == PIPIT_ECONFIG && strstr(log, bad[i].error) != NULL,
           "refused with a clear error: %s", bad[i].what);
        if (rc != PIPIT_ECONFIG || !strstr(log, bad[i].error))
            diag("  status %d, log: %s", rc, log);
        tp_close(&t);
    }

    char many[4096] = "prices: {egress_gb: \"0.09\"}\nlabels: {";
    for (int i = 0; i < 64; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sl%d: v", i ? ", " : "", i);
    strcat(many, "}\n");
    ok(cost_open(&t, many) == PIPIT_ECONFIG &&
       strstr(logged(), "labels: 64 labels, more than the 63 a record holds") != NULL,
       "refused with a clear error: more labels than a record holds");
    tp_close(&t);

    is_int(cost_open(&t, "prices: {instance_hour: \"0.0416\", filesystem_gb_month: \"0.10\", "
                         "egress_gb: \"0.09\"}\n"
                         "metric_prices: {cpu_core_seconds: \"0.0000125\", net_rx_gb: \"1e-2\", "
                         "memory_gb_hours: \"0.005\", instance_hours: \"0\"}\n"
                         "currency: EUR\nlabels: {provider: aws, region: eu-west-1}\n"),
           PIPIT_OK, "a whole catalogue is taken (exponents too)");
    is_int(tp_run(&t), PIPIT_OK, "and it collects");
    tp_close(&t);

    struct host gone = quiet;
    gone.uptime = "garbage";
    host_write(&gone);
    is_int(cost_open(&t, "prices: {instance_hour: \"1\"}\n"), PIPIT_EPARSE,
           "an unreadable /proc/uptime fails init");
    ok(strstr(logged(), "/uptime:1: no uptime in seconds") != NULL, "naming the file and line");
    tp_close(&t);
}

/*
 * One hour at 0.0416 an instance-hour is 41600 micros exactly, written as
 * 0.0416 (not 0.041600000000000005), with the configured labels, the
 * currency and the period between the two readings.
 */
static void test_exact(void)
{
    struct host h = quiet;
    struct tp t;
    json_t *r;

    host_write(&h);
    is_int(cost_open(&t, "prices: {instance_hour: \"0.0416\"}\ncurrency: EUR\n"
                         "labels: {provider: aws, region: eu-west-1, team: web, "
                         "environment: prod}\n"), PIPIT_OK, "init");
    is_int(costs(&t), 0, "init charges nothing (it is the baseline)");
    h.uptime = "4600.00";
    host_write(&h);
    is_int(tp_run(&t), PIPIT_OK, "collect an hour later");
    r = cost_of(&t, "instance");
    is_int(costs(&t), 1, "one cost record");
    is_int(micros(&t, "instance"), 41600, "one instance-hour is 41600 micros");
    ok(r && strstr(t.h.out.data ? t.h.out.data : "", "\"amount\":0.0416,\"amount_micros\":41600,")
              != NULL, "the JSON amount is exactly 0.0416");
    json_t *l = json_object_get(r, "labels");
    ok(r && !strcmp(json_string_value(json_object_get(r, "currency")), "EUR") &&
       !strcmp(json_string_value(json_object_get(l, "provider")), "aws") &&
       !strcmp(json_string_value(json_object_get(l, "region")), "eu-west-1") &&
       !strcmp(json_string_value(json_object_get(l, "team")), "web") &&
       !strcmp(json_string_value(json_object_get(l, "environment")), "prod") &&
       !strcmp(json_string_value(json_object_get(l, "meter")), "instance_hour"),
       "currency and labels from the config, and the meter");
    int64_t start = json_integer_value(json_object_get(r, "period_start"));
    int64_t end = json_integer_value(json_object_get(r, "period_end"));
    ok(start > 0 && end >= start && json_integer_value(json_object_get(r, "time")) == end,
       "the period runs from the last reading to this one");

    /* a second of 0.0416/h is 11.5555... micros: whole micros out, the rest carried */
    int64_t sum = 0;
    char up[32];
    for (int s = 1; s <= 9; s++) {
        snprintf(up, sizeof up, "%d.00", 4600 + s);
        h.uptime = up;
        host_write(&h);
        tp_run(&t);
        sum += micros(&t, "instance");
        if (s == 1)
            is_int(micros(&t, "instance"), 11, "one second: 11 micros, 0.5555... carried");
    }
    is_int(sum, 104, "nine seconds: 104 micros (floor of 9 x 11.5555...), not 9 x 11");
    tp_close(&t);
}

/*
 * A day of simulated usage against the bill computed by hand. Hourly
 * readings, 24 intervals; the host reboots between readings 12 and 13 and
 * is back 30 minutes before reading 13.
 *
 * Usage (uptime 1000 s at reading 0, then +3600 s an hour; after the
 * reboot: 1800 s, then +3600 s an hour):
 *   instance:  12 h + 0.5 h + 11 h                 = 23.5 h
 *   egress:    eth0 sends 1.5 GB an hour (0.75 GB in the half hour after
 *              the reboot): 12 x 1.5 + 0.75 + 11 x 1.5 = 35.25 GB
 *              (lo sends 100 GB an hour: loopback is not egress)
 *   /:         20 GB used up to reading 12, 25 GB after:
 *              12 x 20 + 0.5 x 25 + 11 x 25        = 527.5 GB-hours
 *   cpu:       half a core busy: 12 x 1800 + 900 + 11 x 1800 = 42300 core-s
 *   memory:    2 GB used all day: 2 x 23.5         = 47 GB-hours
 *
 * Bill:
 *   instance   23.5 x 0.0416                       = 0.9776     977600 micros
 *   egress     35.25 x 0.09                        = 3.1725    3172500
 *   /          527.5 / 730 GB-months x 0.10        = 0.0722602739... 72260
 *              (a month is 730 hours; floor to the micro)
 *   cpu        42300 x 0.0000125                   = 0.52875    528750
 *   memory     47 x 0.005                          = 0.235      235000
 *   total                                          = 4.986110  4986110 micros
 *
 * Rounding each hour on its own would give 72244 micros for / (12 x 2739 +
 * 1712 + 11 x 3424): the records must carry what is below a micro.
 */
static void test_day(void)
{
    struct host h = {
        .uptime = "1000.00", .busy_s = 500, .used_kb = 1953125,  /* x 1024 = 2 GB */
        .eth0_tx = 5000000000ull, .lo_tx = 1, .fs_used = 20000000000ull,
    };
    int64_t by[5] = { 0 }, total = 0, last_end = 0;
    static const char *const res[5] = { "instance", "egress:eth0", "filesystem:/",
                                        "cpu_core_seconds", "memory_gb_hours" };
    bool contiguous = true, positive = true;
    int bad = 0;
    char up[32];
    struct tp t;

    host_write(&h);
    is_int(cost_open(&t, "prices: {instance_hour: \"0.0416\", filesystem_gb_month: \"0.10\", "
                         "egress_gb: \"0.09\"}\n"
                         "metric_prices: {cpu_core_seconds: \"0.0000125\", "
                         "memory_gb_hours: \"0.005\"}\n"
                         "labels: {team: web}\n"), PIPIT_OK, "day: init");
    for (int k = 1; k <= 24; k++) {
        if (k <= 12) {
            snprintf(up, sizeof up, "%d.00", 1000 + 3600 * k);
            h.busy_s = 500 + 1800 * (uint64_t)k;
            h.eth0_tx = 5000000000ull + 1500000000ull * (uint64_t)k;
        } else {                        /* rebooted 30 minutes before reading 13 */
            snprintf(up, sizeof up, "%d.00", 1800 + 3600 * (k - 13));
            h.busy_s = 900 + 1800 * (uint64_t)(k - 13);
            h.eth0_tx = 750000000ull + 1500000000ull * (uint64_t)(k - 13);
            h.fs_used = 25000000000ull;
        }
        h.uptime = up;
        h.lo_tx += 100000000000ull;
        host_write(&h);
        if (tp_run(&t) != PIPIT_OK || costs(&t) != 5) {
            ok(0, "day: reading %d charges five resources (%d)", k, costs(&t));
            break;
        }
        bad += t.bad;
        for (int i = 0; i < 5; i++) {
            json_t *r = cost_of(&t, res[i]);
            int64_t m = micros(&t, res[i]);
            positive &= m >= 0;
            by[i] += m;
            total += m;
            if (i == 0) {
                contiguous &= last_end == 0 ||
                              json_integer_value(json_object_get(r, "period_start")) == last_end;
                last_end = json_integer_value(json_object_get(r, "period_end"));
            }
        }
    }
    is_int(bad, 0, "day: every record is a well-formed cost");
    is_int(by[0], 977600, "day: instance, 23.5 h x 0.0416");
    is_int(by[1], 3172500, "day: egress, 35.25 GB x 0.09 (loopback not charged)");
    is_int(by[2], 72260, "day: /, 527.5 GB-hours at 0.10 a GB-month, to the micro");
    is_int(by[3], 528750, "day: cpu, 42300 core-seconds x 0.0000125");
    is_int(by[4], 235000, "day: memory, 47 GB-hours x 0.005");
    is_int(total, 4986110, "day: the records sum to the bill computed by hand, 4.986110");
    ok(positive, "day: no record is negative, across the reboot");
    ok(contiguous, "day: each period starts where the last one ended");
    ok(cost_of(&t, "egress:lo") == NULL, "day: no egress record for loopback");
    tp_close(&t);
}

/*
 * Counters that restart (an interface made again, a reboot) or vanish for
 * a while: never negative, never more than the counter holds since it
 * restarted, never the same bytes twice.
 */
static void test_resets(void)
{
    struct host h = quiet;
    struct tp t;

    h.eth0_tx = 1000000000;             /* 1 GB */
    h.eth1_tx = 500000000;
    h.uptime = "100.00";
    host_write(&h);
    is_int(cost_open(&t, "prices: {egress_gb: \"0.09\", instance_hour: \"0.0416\"}\n"),
           PIPIT_OK, "resets: init");

    h.eth0_tx = 400000000;              /* below the last reading: restarted */
    h.eth1_tx = 0;                      /* gone */
    h.uptime = "3700.00";
    host_write(&h);
    tp_run(&t);
    is_int(micros(&t, "egress:eth0"), 36000,
           "a counter that went down is charged from zero: 0.4 GB, not -0.6 GB or 2^64");
    ok(cost_of(&t, "egress:eth1") == NULL, "a vanished interface is not charged");

    h.eth0_tx = 500000000;
    h.eth1_tx = 600000000;              /* back, counting on from 0.5 GB */
    h.eth2_tx = 2000000000;             /* new since the last reading */
    h.uptime = "50.00";                 /* rebooted 50 s ago */
    host_write(&h);
    tp_run(&t);
    is_int(micros(&t, "egress:eth0"), 9000, "then on from the new reading: 0.1 GB");
    is_int(micros(&t, "egress:eth1"), 9000,
           "an interface that comes back is charged from its last reading: 0.1 GB");
    is_int(micros(&t, "egress:eth2"), 180000, "a new interface is charged from zero: 2 GB");
    is_int(micros(&t, "instance"), 577,
           "uptime that went back charges the time since boot: 50 s, not -1 h");

    h.uptime = "3660.00";
    host_write(&h);
    tp_run(&t);
    is_int(micros(&t, "instance"), 41716,
           "the next 3610 s (41715.555... micros) with the 0.777... carried since the reboot");
    is_int(micros(&t, "egress:eth2"), 0, "an idle interface costs 0");
    tp_close(&t);
}

/*
 * Disk I/O is charged per whole disk (the default disk_devices), not again
 * for its partitions or loop devices; and only the files a priced meter
 * needs are read.
 */
static void test_disks(void)
{
    struct host h = quiet;
    char path[4200];
    struct tp t;

    h.sda_read = 1000;
    h.sda_written = 2000;
    host_write(&h);
    is_int(cost_open(&t, "metric_prices: {disk_read_gb: \"0.01\", disk_write_gb: \"0.02\"}\n"),
           PIPIT_OK, "disks: init");
    h.sda_read += 1953125;              /* x 512 = 1 GB */
    h.sda_written += 3906250;           /* 2 GB */
    h.uptime = "1060.00";
    host_write(&h);
    is_int(tp_run(&t), PIPIT_OK, "disks: collect");
    is_int(micros(&t, "disk_read_gb:sda"), 10000, "disks: 1 GB read from sda x 0.01");
    is_int(micros(&t, "disk_write_gb:sda"), 40000, "disks: 2 GB written to sda x 0.02");
    ok(costs(&t) == 2 && t.bad == 0, "disks: nothing for sda1 or loop0");
    tp_close(&t);

    snprintf(path, sizeof path, "%s/meminfo", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/diskstats", dir);
    unlink(path);
    is_int(cost_open(&t, "prices: {egress_gb: \"0.09\"}\n"), PIPIT_OK,
           "files no priced meter needs may be missing");
    tp_close(&t);
    logged();
    is_int(cost_open(&t, "metric_prices: {memory_gb_hours: \"0.005\"}\n"), PIPIT_ENOENT,
           "the file a priced meter needs may not");
    ok(strstr(logged(), "/meminfo") != NULL, "and it is named in the log");
    tp_close(&t);
    host_write(&quiet);
}

/* Resources beyond max_resources are not charged, and that is logged. */
static void test_cap(void)
{
    struct host h = quiet;
    struct tp t;

    h.eth1_tx = h.eth2_tx = 5;
    host_write(&h);
    logged();
    is_int(cost_open(&t, "prices: {egress_gb: \"0.09\"}\nmax_resources: 2\n"), PIPIT_OK,
           "cap: init with three interfaces and room for two");
    tp_run(&t);
    ok(costs(&t) == 2 && cost_of(&t, "egress:eth2") == NULL, "cap: two interfaces charged");
    ok(strstr(logged(), "1 resources beyond max_resources=2 are not charged") != NULL,
       "cap: the third is logged");
    tp_close(&t);
    host_write(&quiet);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");

    hz = sysconf(_SC_CLK_TCK);
    snprintf(dir, sizeof dir, "%s/pipit-cost.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir) || !(log_file = tmpfile())) {
        printf("Bail out! cannot make a scratch directory: %s\n", strerror(errno));
        return 1;
    }
    log_setup(log_file, LOG_FMT_LOGFMT, PIPIT_LOG_DEBUG);
    test_catalogue();
    test_exact();
    test_day();
    test_resets();
    test_disks();
    test_cap();
    tp_rmtree(dir);
    fclose(log_file);
    return done_testing();
}
