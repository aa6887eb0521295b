/* test_out_kafka.c: the kafka output driven through the plugin harness against an in-process mock cluster. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include "harness.h"
#include "../tap.h"

#define LINES "{\"kind\":\"metric\",\"name\":\"t.x\",\"type\":\"gauge\",\"value\":1}\n"

/* flush_done() calls of the instance under test. */
static int done_calls, done_ok, done_retry, done_err;

static void record_done(struct instance_host *host, struct pipit_instance *ins,
                        uint64_t id, int status)
{
    done_calls++;
    if (status == PIPIT_OK)
        done_ok++;
    else if (status == PIPIT_RETRY)
        done_retry++;
    else
        done_err++;
}

static void reset_done(void) { done_calls = done_ok = done_retry = done_err = 0; }

static void tick(uv_timer_t *t) { (void)t; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run the harness loop until *counter reaches want or secs pass; a 20 ms
 * timer keeps UV_RUN_ONCE from blocking for good. Returns true when reached. */
static bool run_until(struct harness *h, const int *counter, int want, double secs)
{
    uv_timer_t t;
    double end = now_s() + secs;
    bool reached;

    uv_timer_init(&h->loop, &t);
    uv_timer_start(&t, tick, 20, 20);
    while (*counter < want && now_s() < end)
        uv_run(&h->loop, UV_RUN_ONCE);
    reached = *counter >= want;
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&h->loop, UV_RUN_NOWAIT);
    return reached;
}

/* Open the plugin with options (NULL-terminated "key=value" list), with
 * flush_done recorded. Returns true when init succeeded. */
static bool open_kafka(struct harness *h, const char *const *opts)
{
    static char path[4096];
    const char *dir = getenv("PIPIT_PLUGIN_DIR");
    char *kv[16];
    int n = 0;

    snprintf(path, sizeof path, "%s/out_kafka.so", dir);
    for (; opts[n] && n < 16; n++)
        kv[n] = strdup(opts[n]);
    int r = harness_open(h, path, kv, n, stderr);
    for (int i = 0; i < n; i++)
        free(kv[i]);
    if (r != PIPIT_OK)
        return false;
    h->host.flush_done = record_done;
    reset_done();
    return harness_init(h) == PIPIT_OK;
}

static int flush_lines(struct harness *h)
{
    return harness_flush(h, PIPIT_METRIC, LINES, strlen(LINES), 1);
}

/* Flush one batch at a time until one is reported delivered (a batch may
 * time out while the client reconnects). Returns true on a delivery. */
static bool deliver_eventually(struct harness *h, double secs)
{
    double end = now_s() + secs;

    while (now_s() < end) {
        int before = done_calls;
        if (flush_lines(h) != PIPIT_PENDING) {
            int dummy = 0;
            run_until(h, &dummy, 1, 0.2);
            continue;
        }
        run_until(h, &done_calls, before + 1, end - now_s());
        if (done_ok)
            return true;
    }
    return false;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(void)
{
    char errstr[512], brokers[600], opt_brokers[640];
    rd_kafka_conf_t *conf;
    rd_kafka_t *mrk;
    rd_kafka_mock_cluster_t *mc;
    struct harness h;
    double t0, c0;

    if (!getenv("PIPIT_PLUGIN_DIR"))
        plan_skip_all("PIPIT_PLUGIN_DIR is not set (run through make check)");
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
    mrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!mrk || !(mc = rd_kafka_mock_cluster_new(mrk, 1)))
        plan_skip_all("cannot start a librdkafka mock cluster");
    rd_kafka_mock_topic_create(mc, "pipit.metrics", 2, 1);
    snprintf(brokers, sizeof brokers, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    snprintf(opt_brokers, sizeof opt_brokers, "brokers=%s", brokers);
    plan(23);

    /* Delivery: PENDING, then exactly one flush_done(OK). */
    {
        const char *opts[] = { opt_brokers, NULL };
        ok(open_kafka(&h, opts), "init against the mock cluster");
        is_int(flush_lines(&h), PIPIT_PENDING, "flush hands the batch over: PIPIT_PENDING");
        ok(run_until(&h, &done_ok, 1, 10), "the delivery report arrives on the loop: OK");
        run_until(&h, &done_calls, 2, 0.3);
        is_int(done_calls, 1, "exactly one flush_done for the batch");

        /* Idle: the loop sleeps in epoll, nothing spins. */
        t0 = now_s();
        c0 = cpu_seconds();
        run_until(&h, &done_calls, 99, 2);
        double used = cpu_seconds() - c0, wall = now_s() - t0;
        diag("idle for %.2f s used %.3f s of CPU", wall, used);
        ok(used < 0.2 * wall, "no busy polling while idle (%.1f%% CPU)", 100 * used / wall);

        /* Refusals that never reach librdkafka. */
        struct pipit_batch b = { .struct_size = sizeof b, .kind = PIPIT_METRIC, .seq = 7,
                                 .count = 1, .payload = LINES, .payload_len = strlen(LINES),
                                 .agent_id = h.host.agent_id };
        is_int(h.ins->plugin->desc.flush(h.ins, h.ins->ctx, &b), PIPIT_EINVAL,
               "a batch without a wire message is refused: PIPIT_EINVAL");
        static const char fake_wire[] = "PPB1 header of a message";
        b.wire = fake_wire;
        b.wire_len = sizeof fake_wire;
        b.kind = 9;
        is_int(h.ins->plugin->desc.flush(h.ins, h.ins->ctx, &b), PIPIT_EINVAL,
               "a batch of an unknown kind is refused");

        /* A message larger than message.max.bytes can never be sent. */
        size_t big = 1600000;
        char *noise = malloc(big);
        srand(7);
        for (size_t i = 0; i < big; i++)
            noise[i] = (char)('!' + rand() % 90);   /* one line that deflate cannot shrink much */
        noise[big - 1] = '\n';
        is_int(harness_flush(&h, PIPIT_METRIC, noise, big, 1), PIPIT_ERANGE,
               "a batch over message.max.bytes is an error (PIPIT_ERANGE), not a retry");
        free(noise);
        is_int(done_calls, 1, "and no flush_done for refused batches");
        harness_close(&h);
    }

    /* Back-pressure and timeouts with every broker down. */
    {
        const char *opts[] = { opt_brokers, "queue_max_messages=2", "message_timeout=1s",
                               NULL };
        ok(open_kafka(&h, opts), "init with queue_max_messages=2, message_timeout=1s");
        rd_kafka_mock_broker_set_down(mc, 1);
        int r1 = flush_lines(&h), r2 = flush_lines(&h), r3 = flush_lines(&h);
        ok(r1 == PIPIT_PENDING && r2 == PIPIT_PENDING,
           "two batches taken while the broker is down");
        is_int(r3, PIPIT_RETRY, "the third: local queue full, PIPIT_RETRY (back-pressure)");
        ok(run_until(&h, &done_retry, 2, 6), "after message_timeout both come back: RETRY");
        run_until(&h, &done_calls, 3, 0.3);
        ok(done_calls == 2 && done_ok == 0, "once each, none reported delivered");
        is_int(flush_lines(&h), PIPIT_PENDING, "the queue has room again");
        rd_kafka_mock_broker_set_up(mc, 1);
        reset_done();
        ok(deliver_eventually(&h, 15), "delivered after the broker is back");
        harness_close(&h);
    }

    /* fini() with batches librdkafka cannot deliver: bounded, no report. */
    {
        const char *opts[] = { opt_brokers, NULL };
        ok(open_kafka(&h, opts), "init (message_timeout 2m)");
        rd_kafka_mock_broker_set_down(mc, 1);
        flush_lines(&h);
        flush_lines(&h);
        t0 = now_s();
        harness_close(&h);
        double took = now_s() - t0;
        diag("fini took %.2f s", took);
        ok(took < 6, "fini waits a bounded time for undeliverable batches (%.1f s)", took);
        is_int(done_calls, 0, "and reports nothing to a host that is stopping");
        rd_kafka_mock_broker_set_up(mc, 1);
    }

    /* A fatal error: batches in flight are handed back; a new producer
     * delivers. */
    {
        const char *opts[] = { opt_brokers, NULL };
        ok(open_kafka(&h, opts), "init for the fatal error");
        flush_lines(&h);
        run_until(&h, &done_ok, 1, 10);
        reset_done();
        rd_kafka_mock_push_request_errors(mc, 0 /* Produce */, 1,
                                          RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
        flush_lines(&h);
        ok(run_until(&h, &done_retry, 1, 10) && done_ok == 0,
           "the batch failing with a fatal error is handed back: RETRY");
        /* The producer is re-created after 1 s; until then flush says retry. */
        is_int(flush_lines(&h), PIPIT_RETRY, "flush says retry until the producer is back");
        ok(deliver_eventually(&h, 15), "a re-created producer delivers again");
        harness_close(&h);
    }

    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mrk);
    return done_testing();
}
