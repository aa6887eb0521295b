/* test_pipeline.c: records into batches and batches to fake outputs on a real libuv loop: limits, order, kinds, retry, errors, bounds, drain. */
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <pipit/plugin.h>
#include "health.h"
#include "identity.h"
#include "instance.h"
#include "log.h"
#include "pipeline.h"
#include "spool.h"
#include "wire.h"
#include "../tap.h"

#define KM(k) (1u << (k))
#define ALL_KINDS (KM(PIPIT_METRIC) | KM(PIPIT_LOG) | KM(PIPIT_COST) | KM(PIPIT_EVENT))
#define MS 1000000LL

/* ---- a fake output: records every flush() and returns scripted statuses -- */

#define MAX_CALLS 64

struct call {
    uint64_t seq;
    uint64_t id;                        /* handle for flush_done */
    int kind;
    uint32_t count;
    size_t len;
    char payload[256];                  /* first bytes of the payload */
    bool has_payload;                   /* payload was not NULL */
    char wire_lines[256];               /* first bytes the wire message decodes to */
    const char *agent_id;
    int ret;                            /* what flush() returned */
};

struct fake_out {
    const int *script;                  /* statuses of the first calls */
    size_t nscript;
    size_t ncalls;
    struct call calls[MAX_CALLS];
};

static int fake_flush(pipit_instance *ins, void *data, const struct pipit_batch *b)
{
    struct fake_out *f = data;
    int r = f->ncalls < f->nscript ? f->script[f->ncalls] : PIPIT_OK;

    if (f->ncalls < MAX_CALLS) {
        struct call *c = &f->calls[f->ncalls];
        c->seq = b->seq;
        c->id = b->id;
        c->kind = b->kind;
        c->count = b->count;
        c->len = b->payload_len;
        c->agent_id = b->agent_id;
        c->ret = r;
        snprintf(c->payload, sizeof c->payload, "%.*s", (int)b->payload_len,
                 b->payload ? b->payload : "");
        c->has_payload = b->payload != NULL;
        c->wire_lines[0] = '\0';
        if (b->wire) {
            struct buf out = BUF_INIT;
            char err[256];
            if (wire_decode(b->wire, b->wire_len, NULL, 0, false, 1 << 20, NULL, &out, err,
                            sizeof err) == WIRE_OK)
                snprintf(c->wire_lines, sizeof c->wire_lines, "%.*s", (int)out.len, out.data);
            buf_free(&out);
        }
    }
    f->ncalls++;
    return r;
}

static char fake_path[] = "fake.so";
static const struct loader_plugin fake_plugin = {
    .path = fake_path,
    .desc = { .magic = PIPIT_ABI_MAGIC, .abi_major = PIPIT_ABI_MAJOR,
              .struct_size = sizeof(struct pipit_plugin), .name = "out_fake",
              .version = "1", .kinds = PIPIT_OUTPUT, .flush = fake_flush },
};

/* The same output, declaring that it sends only the wire message. */
static char fake_wire_path[] = "fake_wire.so";
static const struct loader_plugin fake_wire_plugin = {
    .path = fake_wire_path,
    .desc = { .magic = PIPIT_ABI_MAGIC, .abi_major = PIPIT_ABI_MAJOR,
              .struct_size = sizeof(struct pipit_plugin), .name = "out_fake_wire",
              .version = "1", .kinds = PIPIT_OUTPUT, .flush = fake_flush,
              .flags = PIPIT_FLUSH_WIRE_ONLY },
};

/* A fake input: records the tokens its ack() is given. */
struct fake_in {
    uint64_t acks[16];
    size_t nacks;
};

static void fake_ack(pipit_instance *ins, void *data, uint64_t token)
{
    struct fake_in *f = data;
    if (f->nacks < 16)
        f->acks[f->nacks] = token;
    f->nacks++;
}

static char fake_in_path[] = "in_fake.so";
static const struct loader_plugin fake_in_plugin = {
    .path = fake_in_path,
    .desc = { .magic = PIPIT_ABI_MAGIC, .abi_major = PIPIT_ABI_MAJOR,
              .struct_size = sizeof(struct pipit_plugin), .name = "in_fake",
              .version = "1", .kinds = PIPIT_COLLECTOR, .ack = fake_ack },
};

/* An output instance as the runtime makes it, built by hand around f. */
static void make_out(struct pipit_instance *ins, struct fake_out *f, char *name,
                     unsigned kind_mask)
{
    memset(ins, 0, sizeof *ins);
    memset(f, 0, sizeof *f);
    ins->name = name;
    ins->role = PIPIT_OUTPUT;
    ins->plugin = &fake_plugin;
    ins->ctx = f;
    ins->state = INS_RUNNING;
    ins->kind_mask = kind_mask;
}

/* ---- the loop, the identity and the pipeline of one test --------------- */

static char tmp[4096];
static FILE *log_file;
static int progress;

static void on_progress(void *arg)
{
    (*(int *)arg)++;
}

struct env {
    uv_loop_t loop;
    struct identity id;
    struct pipeline *pl;
    const char *what;
};

static void env_open(struct env *e, const char *what, uint32_t max_records,
                     size_t max_bytes, int64_t linger_ns, size_t max_pending,
                     struct pipit_instance **outs, size_t nouts)
{
    static int n;
    char dir[4200];
    struct batch_limits lim = { max_records, max_bytes, linger_ns };

    e->what = what;
    snprintf(dir, sizeof dir, "%s/state%d", tmp, n++);
    if (uv_loop_init(&e->loop) != 0 || identity_open(&e->id, dir, "h") != PIPIT_OK ||
        !(e->pl = pipeline_new(&e->loop, &e->id, &lim, max_pending, outs, nouts))) {
        printf("Bail out! cannot set up %s\n", what);
        exit(1);
    }
    e->pl->on_progress = on_progress;
    e->pl->progress_arg = &progress;
}

/* Let closing handles finish; never blocks, so a handle left active makes
 * uv_loop_close() fail instead of hanging the test. */
static void settle(uv_loop_t *loop)
{
    for (int i = 0; i < 10; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

/* Close the pipeline, run the loop until its handles are closed, and check
 * that nothing was left open on the loop. */
static void env_close(struct env *e)
{
    pipeline_close(e->pl);
    settle(&e->loop);
    is_int(uv_loop_close(&e->loop), 0, "%s: the loop closes, no handle left", e->what);
    identity_close(&e->id);
}

/* n lines "<c><seq from first, width w-2>\n" of w bytes each into out. */
static size_t lines(char *out, char c, int first, int n, int w)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)sprintf(out + len, "%c%0*d\n", c, w - 2, first + i);
    return len;
}

static int deliver(struct env *e, int kind, char c, int first, int n, int w)
{
    char buf[8192];
    size_t len = lines(buf, c, first, n, w);
    return pipeline_deliver(e->pl, kind, buf, len, (uint32_t)n);
}

struct until {
    struct env *e;
    struct fake_out *f;
    size_t calls;                       /* f has had at least this many calls */
    struct fake_in *in;                 /* or in has had this many acks */
};

static bool has_calls(const struct until *u)
{
    return u->f->ncalls >= u->calls;
}

static bool is_idle(const struct until *u)
{
    return pipeline_idle(u->e->pl);
}

/* Run the loop until cond holds; a bounded number of iterations, no clock. */
static bool run_until(struct env *e, bool (*cond)(const struct until *),
                      const struct until *u, uv_run_mode mode)
{
    for (int i = 0; i < 100000 && !cond(u); i++)
        uv_run(&e->loop, mode);
    return cond(u);
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static const char *log_taken(void)
{
    static char text[1 << 16];
    int fd = fileno(log_file);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);

    text[n > 0 ? n : 0] = '\0';
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        diag("cannot empty the log");
    return text;
}

/* ---- tests -------------------------------------------------------------- */

/*
 * An output that declares PIPIT_FLUSH_WIRE_ONLY gets the wire message and
 * no payload; the pipeline keeps only the wire bytes of its batches, and
 * reads batches evicted to the spool back without decompressing them. An
 * output that reads records still gets them, from memory or the spool.
 */
static void test_wire_only(void)
{
    struct env e;
    struct fake_out fw, fr;
    struct pipit_instance w, r;
    struct pipit_instance *outs[] = { &w, &r };
    char nw[] = "w", nr[] = "r", dir[4200], err[256];
    struct wire_encode_opts wo = { .codec = WIRE_CODEC_ZLIB, .level = 1 };
    static int scripts[MAX_CALLS];

    make_out(&w, &fw, nw, KM(PIPIT_METRIC) | KM(PIPIT_LOG));
    w.plugin = &fake_wire_plugin;
    make_out(&r, &fr, nr, KM(PIPIT_LOG));
    /* the wire-only output asks for a retry first, so that batches wait */
    for (size_t i = 0; i < MAX_CALLS; i++)
        scripts[i] = i == 0 ? PIPIT_RETRY : PIPIT_OK;
    fw.script = scripts;
    fw.nscript = MAX_CALLS;
    env_open(&e, "wire only", 10, 1 << 20, 0, 1200, outs, 2);
    snprintf(dir, sizeof dir, "%s/wire-only-spool", tmp);
    struct spool_config sc = { .dir = dir, .max_bytes = 1 << 24, .policy = SPOOL_BLOCK };
    struct spool *sp = spool_open(&sc, err, sizeof err);
    if (!sp || pipeline_set_store(e.pl, &wo, sp) != PIPIT_OK) {
        printf("Bail out! cannot open the spool: %s\n", err);
        exit(1);
    }

    /* metrics: only the wire-only output takes them */
    deliver(&e, PIPIT_METRIC, 'm', 1, 10, 40);
    is_int(e.pl->pending_bytes, e.pl->stats.batch_wire_bytes,
           "wire only: a metric batch holds only its wire bytes (%zu, not +400 of payload)",
           e.pl->pending_bytes);
    /* nine more: over half of max_pending, so the newer ones are evicted */
    for (int i = 0; i < 9; i++)
        deliver(&e, PIPIT_METRIC, 'm', 11 + 10 * i, 10, 40);
    /* logs: both outputs take them, so the payload stays */
    deliver(&e, PIPIT_LOG, 'l', 1, 10, 40);
    struct until u = { .e = &e, .calls = 0 };
    run_until(&e, is_idle, &u, UV_RUN_ONCE);

    size_t bad = 0, metric_calls = 0;
    for (size_t i = 0; i < fw.ncalls && i < MAX_CALLS; i++) {
        struct call *c = &fw.calls[i];
        char want[512];
        if (c->kind != PIPIT_METRIC)
            continue;
        metric_calls++;
        size_t first = 1 + 10 * (size_t)(c->seq - 1);
        lines(want, 'm', (int)first, 10, 40);
        if (c->has_payload || c->len != 0 || strncmp(c->wire_lines, want, 255) != 0)
            bad++;
    }
    ok(metric_calls >= 10 && bad == 0,
       "wire only: every metric flush (%zu, the retried one and those read back from the "
       "spool among them) had no payload and a wire message of its records (%zu wrong)",
       metric_calls, bad);
    ok(e.pl->stats.spool_errors == 0 && e.pl->stats.records_lost == 0 &&
       e.pl->stats.records_full == 0, "wire only: nothing refused, lost or unreadable");
    struct call *lw = NULL;
    for (size_t i = 0; i < fw.ncalls && i < MAX_CALLS; i++)
        if (fw.calls[i].kind == PIPIT_LOG)
            lw = &fw.calls[i];
    char want[512];
    lines(want, 'l', 1, 10, 40);
    ok(fr.ncalls == 1 && fr.calls[0].has_payload && fr.calls[0].len == 400 &&
       !strncmp(fr.calls[0].payload, want, 255),
       "wire only: the records output got the log batch's payload");
    ok(lw && lw->has_payload && !strncmp(lw->wire_lines, want, 255),
       "wire only: a batch a records output also owes keeps its payload for both");
    env_close(&e);
    spool_close(sp);
}

/* max_records closes batches; both outputs get all of them, in order, with
 * sequence numbers taken from the identity. */
static void test_max_records(void)
{
    struct env e;
    struct fake_out fa, fb;
    struct pipit_instance a, b;
    struct pipit_instance *outs[] = { &a, &b };
    char na[] = "a", nb[] = "b";

    make_out(&a, &fa, na, ALL_KINDS);
    make_out(&b, &fb, nb, KM(PIPIT_METRIC) | KM(PIPIT_LOG));
    env_open(&e, "max_records", 3, 1 << 20, 0, 1 << 20, outs, 2);
    ok(a.out == &e.pl->outs[0] && b.out == &e.pl->outs[1], "each output knows its state");
    for (int i = 0; i < 5; i++)
        identity_next_seq(&e.id);       /* 1..5 used elsewhere */

    is_int(deliver(&e, PIPIT_METRIC, 'm', 1, 7, 6), PIPIT_OK, "max_records: deliver 7 records");
    is_int(e.pl->stats.records_in, 7, "max_records: 7 records in");
    is_int(e.pl->stats.batches_closed, 3, "max_records: 3 batches closed (3, 3, 1)");
    is_int(e.pl->queued, 3, "max_records: 3 queued");
    is_int(e.pl->pending_bytes, 42, "max_records: 42 bytes pending");
    is_int(fa.ncalls, 0, "max_records: nothing is flushed before the loop runs");

    progress = 0;
    struct until u = { .e = &e, .calls = 0 };
    ok(run_until(&e, is_idle, &u, UV_RUN_ONCE), "max_records: the loop delivers everything");
    ok(progress > 0, "max_records: on_progress called");
    static const char *const want[] = {
        "m0001\nm0002\nm0003\n", "m0004\nm0005\nm0006\n", "m0007\n",
    };
    static const uint32_t counts[] = { 3, 3, 1 };
    for (int o = 0; o < 2; o++) {
        struct fake_out *f = o ? &fb : &fa;
        bool same = f->ncalls == 3;
        for (size_t i = 0; same && i < 3; i++)
            same = f->calls[i].seq == 6 + i && f->calls[i].kind == PIPIT_METRIC &&
                   f->calls[i].count == counts[i] && strcmp(f->calls[i].payload, want[i]) == 0 &&
                   f->calls[i].len == strlen(want[i]) && f->calls[i].agent_id == e.id.agent_id;
        ok(same, "max_records: output %s got seq 6, 7, 8 with 3, 3, 1 records in order", o ? "b" : "a");
        is_int(e.pl->outs[o].batches, 3, "max_records: output %d counts 3 batches", o);
        is_int(e.pl->outs[o].records, 7, "max_records: output %d counts 7 records", o);
    }
    is_int(identity_next_seq(&e.id), 9, "max_records: the identity hands out 9 next");
    ok(e.pl->pending_bytes == 0 && e.pl->queued == 0 && e.pl->head == NULL,
       "max_records: nothing pending after delivery");
    env_close(&e);
    ok(a.out == NULL && b.out == NULL, "max_records: closing clears the outputs' state");
}

static void test_max_bytes(void)
{
    struct env e;
    struct fake_out fa;
    struct pipit_instance a;
    struct pipit_instance *outs[] = { &a };
    char na[] = "a";

    make_out(&a, &fa, na, ALL_KINDS);
    env_open(&e, "max_bytes", 1000, 20, 0, 1 << 20, outs, 1);
    deliver(&e, PIPIT_LOG, 'l', 1, 10, 6);
    struct until u = { .e = &e, .calls = 0 };
    run_until(&e, is_idle, &u, UV_RUN_ONCE);
    ok(fa.ncalls == 3 && fa.calls[0].count == 4 && fa.calls[0].len == 24 &&
       fa.calls[1].count == 4 && fa.calls[1].len == 24 && fa.calls[2].count == 2 &&
       fa.calls[2].len == 12, "max_bytes 20, 6-byte lines: batches of 4, 4 and 2");
    ok(fa.calls[0].seq == 1 && fa.calls[1].seq == 2 && fa.calls[2].seq == 3,
       "max_bytes: sequence 1, 2, 3 on a new state directory");
    is_str(fa.calls[2].payload, "l0009\nl0010\n", "max_bytes: the last batch holds the last lines");
    env_close(&e);
}

/* Batches that reach no limit close after linger, on the loop's timer. */
static void test_linger(void)
{
    struct env e;
    struct fake_out fa;
    struct pipit_instance a;
    struct pipit_instance *outs[] = { &a };
    char na[] = "a";

    make_out(&a, &fa, na, ALL_KINDS);
    env_open(&e, "linger", 1000, 1 << 20, 20 * MS, 1 << 20, outs, 1);
    deliver(&e, PIPIT_METRIC, 'm', 1, 1, 6);
    deliver(&e, PIPIT_METRIC, 'm', 2, 1, 6);
    deliver(&e, PIPIT_LOG, 'l', 1, 1, 6);
    ok(e.pl->stats.batches_closed == 0 && e.pl->queued == 0,
       "linger: below the limits nothing closes at once");
    ok(uv_is_active((uv_handle_t *)&e.pl->linger), "linger: the linger timer runs");

    struct until u = { .e = &e, .f = &fa, .calls = 2 };
    ok(run_until(&e, has_calls, &u, UV_RUN_ONCE), "linger: both batches delivered by the timer");
    ok(fa.ncalls == 2 && fa.calls[0].kind == PIPIT_METRIC && fa.calls[0].count == 2 &&
       strcmp(fa.calls[0].payload, "m0001\nm0002\n") == 0,
       "linger: one metric batch with both records");
    ok(fa.calls[1].kind == PIPIT_LOG && fa.calls[1].count == 1 &&
       fa.calls[1].seq > fa.calls[0].seq, "linger: then the log batch, with a later seq");
    ok(!uv_is_active((uv_handle_t *)&e.pl->linger) && !uv_is_active((uv_handle_t *)&e.pl->kick),
       "linger: no timer left running once everything closed");

    /* Again after the timer stopped: the next first record restarts it */
    deliver(&e, PIPIT_EVENT, 'e', 1, 1, 6);
    ok(uv_is_active((uv_handle_t *)&e.pl->linger), "linger: a new record restarts the timer");
    u.calls = 3;
    ok(run_until(&e, has_calls, &u, UV_RUN_ONCE) && fa.calls[2].kind == PIPIT_EVENT &&
       fa.calls[2].count == 1, "linger: and its batch is delivered");
    env_close(&e);

    /* A batch closed by max_records while the timer runs; the next one still
     * closes at its own linger */
    make_out(&a, &fa, na, ALL_KINDS);
    env_open(&e, "linger and max_records", 2, 1 << 20, 20 * MS, 1 << 20, outs, 1);
    deliver(&e, PIPIT_METRIC, 'm', 1, 2, 6);
    is_int(e.pl->stats.batches_closed, 1, "linger and max_records: 2 records close a batch at once");
    deliver(&e, PIPIT_METRIC, 'm', 3, 1, 6);
    u = (struct until){ .e = &e, .f = &fa, .calls = 2 };
    ok(run_until(&e, has_calls, &u, UV_RUN_ONCE) && fa.calls[0].count == 2 &&
       fa.calls[1].count == 1 && strcmp(fa.calls[1].payload, "m0003\n") == 0,
       "linger and max_records: the third record closes at linger");
    env_close(&e);
}

/* Outputs get only the kinds they take; kinds nobody takes are counted. */
static void test_kinds(void)
{
    struct env e;
    struct fake_out fa, fm, fd;
    struct pipit_instance a, m, d;
    struct pipit_instance *outs[] = { &a, &m, &d };
    char na[] = "a", nm[] = "m", nd[] = "d";

    make_out(&a, &fa, na, KM(PIPIT_METRIC) | KM(PIPIT_LOG));
    make_out(&m, &fm, nm, KM(PIPIT_METRIC));
    make_out(&d, &fd, nd, ALL_KINDS);
    d.state = INS_DISABLED;             /* init failed: takes nothing */
    env_open(&e, "kinds", 1000, 1 << 20, 0, 1 << 20, outs, 3);

    deliver(&e, PIPIT_LOG, 'l', 1, 2, 6);
    deliver(&e, PIPIT_METRIC, 'm', 1, 1, 6);
    log_taken();
    deliver(&e, PIPIT_COST, 'c', 1, 3, 6);
    is_int(e.pl->stats.records_unrouted, 3, "kinds: 3 cost records nobody takes are unrouted");
    ok(strstr(log_taken(), "3 records dropped: no running output takes this record kind") != NULL,
       "kinds: the unrouted records are logged");
    deliver(&e, PIPIT_EVENT, 'e', 1, 1, 6);
    is_int(e.pl->stats.records_unrouted, 4, "kinds: and 1 event (the disabled output does not count)");
    is_int(e.pl->pending_bytes, 18, "kinds: unrouted records free their bytes at once");
    is_int(e.pl->stats.batches_closed, 4, "kinds: 4 batches closed");
    struct until u = { .e = &e, .calls = 0 };
    run_until(&e, is_idle, &u, UV_RUN_ONCE);
    ok(fa.ncalls == 2 && fa.calls[0].kind == PIPIT_LOG && fa.calls[0].count == 2 &&
       fa.calls[1].kind == PIPIT_METRIC, "kinds: metrics+logs output got the logs, then the metrics");
    ok(fm.ncalls == 1 && fm.calls[0].kind == PIPIT_METRIC && fm.calls[0].seq == fa.calls[1].seq,
       "kinds: metrics-only output got only the metric batch (same seq)");
    is_int(fd.ncalls, 0, "kinds: the disabled output got nothing");

    /* An output disabled while a batch waits for it: dropped for it only */
    deliver(&e, PIPIT_METRIC, 'm', 2, 2, 6);
    a.state = INS_DISABLED;
    run_until(&e, is_idle, &u, UV_RUN_ONCE);
    ok(fa.ncalls == 2 && e.pl->outs[0].failed_batches == 1 && e.pl->outs[0].failed_records == 2,
       "kinds: an output disabled meanwhile counts the batch as failed, no flush");
    ok(fm.ncalls == 2 && fm.calls[1].count == 2, "kinds: the other output still gets it");

    is_int(pipeline_deliver(e.pl, 0, "x\n", 2, 1), PIPIT_ESTATE, "kinds: kind 0 is refused");
    is_int(pipeline_deliver(e.pl, PIPIT_RECORD_KIND_MAX + 1, "x\n", 2, 1), PIPIT_ESTATE,
           "kinds: kind 5 is refused");
    env_close(&e);
}

/* /readyz's judgement of output i of e, ready_grace_ms after now. */
static const struct output_health *judged(struct env *e, struct pipit_instance **outs,
                                          size_t n, size_t i, int64_t grace_ms)
{
    static struct output_health h[4];
    struct daemon_view v = {
        .pl = e->pl, .outputs = outs, .noutputs = n,
        .ready_grace_ns = grace_ms * 1000000, .now_ns = batch_clock_ns(), .health = h,
    };
    health_judge(&v);
    return &h[i];
}

/* PIPIT_RETRY keeps the batch for that output and gives it again later. */
static void test_retry(void)
{
    static const int script[] = { PIPIT_RETRY, PIPIT_RETRY };
    struct env e;
    struct fake_out fr, fa;
    struct pipit_instance r, a;
    struct pipit_instance *outs[] = { &r, &a };
    char nr[] = "r", na[] = "a";

    make_out(&r, &fr, nr, ALL_KINDS);
    make_out(&a, &fa, na, ALL_KINDS);
    fr.script = script;
    fr.nscript = 2;
    env_open(&e, "retry", 1000, 1 << 20, 0, 1 << 20, outs, 2);
    deliver(&e, PIPIT_METRIC, 'm', 1, 1, 6);
    deliver(&e, PIPIT_METRIC, 'm', 2, 2, 6);

    /* NOWAIT runs the due kick and returns; the retry timer, started by
     * that kick, cannot fire in the same call */
    struct until u = { .e = &e, .f = &fa, .calls = 2 };
    ok(run_until(&e, has_calls, &u, UV_RUN_NOWAIT), "retry: the other output gets both batches");
    struct pipeline_output *o = &e.pl->outs[0];
    ok(fr.ncalls == 1 && fr.calls[0].ret == PIPIT_RETRY && o->waiting && o->retries == 1,
       "retry: the retrying output was tried once and waits");
    is_int(o->backoff_ms, 200, "retry: the backoff doubles");
    ok(e.pl->queued == 2 && !pipeline_idle(e.pl), "retry: both batches stay queued for it");
    ok(o->failing_since_ns > 0, "retry: the output counts as failing from its first retry");
    const struct output_health *h = judged(&e, outs, 2, 0, 3600000);
    ok(h->ready && h->owed == 2 && strcmp(h->reason, "retrying, within ready_grace") == 0,
       "retry: ready within ready_grace, 2 batches owed (%s)", h->reason);
    h = judged(&e, outs, 2, 0, -1);
    ok(!h->ready && strcmp(h->reason, "failing for longer than ready_grace") == 0,
       "retry: not ready past ready_grace (%s)", h->reason);
    ok(judged(&e, outs, 2, 1, 0)->ready, "retry: the other output is ready");

    u = (struct until){ .e = &e, .f = &fr, .calls = 4 };
    ok(run_until(&e, has_calls, &u, UV_RUN_ONCE), "retry: the retry timer gives the batches again");
    ok(fr.ncalls == 4 && fr.calls[0].seq == 1 && fr.calls[1].seq == 1 && fr.calls[2].seq == 1 &&
       fr.calls[3].seq == 2, "retry: the same batch (seq 1) three times, then seq 2");
    ok(fr.calls[1].ret == PIPIT_RETRY && fr.calls[2].ret == PIPIT_OK &&
       strcmp(fr.calls[2].payload, "m0001\n") == 0 && fr.calls[3].count == 2,
       "retry: the same payload each time, then the next batch");
    ok(o->retries == 2 && o->batches == 2 && o->records == 3 && o->failed_batches == 0,
       "retry: 2 retries, 2 batches and 3 records counted");
    is_int(o->backoff_ms, 100, "retry: a delivery resets the backoff");
    ok(o->failing_since_ns == 0 && o->latency.count == 2 && e.pl->outs[1].latency.count == 2,
       "retry: a delivery ends the failing streak; one latency observation per delivery");
    ok(e.pl->stats.batch_records.count == 2 && e.pl->stats.batch_records.sum == 3,
       "retry: 2 batches of 1 and 2 records in the batch size histogram");
    h = judged(&e, outs, 2, 0, -1);
    ok(h->ready && strcmp(h->reason, "delivering") == 0, "retry: ready again (%s)", h->reason);
    is_int(fa.ncalls, 2, "retry: the other output was not given anything twice");
    ok(pipeline_idle(e.pl) && e.pl->pending_bytes == 0, "retry: idle once all delivered");
    env_close(&e);
}

/* An error gives up the batch for that output only, counted and logged. */
static void test_error(void)
{
    static const int script[] = { PIPIT_EIO };
    struct env e;
    struct fake_out fe, fa;
    struct pipit_instance x, a;
    struct pipit_instance *outs[] = { &x, &a };
    char nx[] = "x", na[] = "a";

    make_out(&x, &fe, nx, ALL_KINDS);
    make_out(&a, &fa, na, ALL_KINDS);
    fe.script = script;
    fe.nscript = 1;
    env_open(&e, "error", 1000, 1 << 20, 0, 1 << 20, outs, 2);
    log_taken();
    deliver(&e, PIPIT_METRIC, 'm', 1, 2, 6);
    deliver(&e, PIPIT_METRIC, 'm', 3, 1, 6);
    struct until u = { .e = &e, .calls = 0 };
    ok(run_until(&e, is_idle, &u, UV_RUN_ONCE), "error: the pipeline drains");
    struct pipeline_output *o = &e.pl->outs[0];
    ok(fe.ncalls == 2 && fe.calls[0].seq == 1 && fe.calls[1].seq == 2,
       "error: the failing output is not given the batch again, and gets the next");
    ok(o->failed_batches == 1 && o->failed_records == 2 && o->batches == 1 && o->records == 1 &&
       o->retries == 0, "error: 1 failed batch of 2 records, 1 delivered");
    const struct output_health *h = judged(&e, outs, 2, 0, -1);
    ok(o->failing_since_ns == 0 && h->ready && strcmp(h->reason, "delivering") == 0,
       "error: the delivery after the error ends the failing streak (%s)", h->reason);
    o->failing_since_ns = 1;            /* as if the error had come last */
    h = judged(&e, outs, 2, 0, -1);
    ok(h->ready && h->owed == 0 && strcmp(h->reason, "failed, nothing to deliver now") == 0,
       "error: failing with nothing to deliver is still ready (%s)", h->reason);
    o->failing_since_ns = 0;
    x.state = INS_DISABLED;
    h = judged(&e, outs, 2, 0, 3600000);
    ok(!h->ready && strcmp(h->reason, "not running") == 0, "error: a disabled output is not ready");
    x.state = INS_RUNNING;
    ok(fa.ncalls == 2 && e.pl->outs[1].batches == 2 && e.pl->outs[1].failed_batches == 0,
       "error: the other output got both");
    const char *l = log_taken();
    ok(strstr(l, "instance=x plugin=out_fake") &&
       strstr(l, "flush of batch 1 (2 metric records) failed: input/output error"),
       "error: logged with the output's name and the batch");
    env_close(&e);
}

/* max_pending_bytes bounds what is open and queued. */
static void test_full(void)
{
    struct env e;
    struct fake_out fa;
    struct pipit_instance a;
    struct pipit_instance *outs[] = { &a };
    char na[] = "a";
    char buf[64];

    make_out(&a, &fa, na, ALL_KINDS);
    env_open(&e, "full", 1000, 1 << 20, 0, 100, outs, 1);
    log_taken();
    is_int(deliver(&e, PIPIT_METRIC, 'm', 1, 8, 10), PIPIT_OK, "full: 80 of 100 bytes taken");
    ok(!pipeline_high_water(e.pl), "full: 80 of 100 is below high water");
    deliver(&e, PIPIT_METRIC, 'm', 9, 1, 10);
    ok(pipeline_high_water(e.pl), "full: 90 of 100 is high water");
    is_int(deliver(&e, PIPIT_METRIC, 'm', 10, 1, 10), PIPIT_OK, "full: exactly 100 bytes taken");
    is_int(deliver(&e, PIPIT_METRIC, 'm', 11, 1, 10), PIPIT_EFULL, "full: one byte more is refused");
    is_int(e.pl->stats.records_full, 1, "full: 1 record counted");
    is_int(deliver(&e, PIPIT_LOG, 'l', 1, 3, 10), PIPIT_EFULL, "full: 3 more refused");
    is_int(e.pl->stats.records_full, 4, "full: 4 records counted in all");
    ok(e.pl->stats.records_in == 10 && e.pl->pending_bytes == 100,
       "full: refused records were not taken");
    ok(strstr(log_taken(), "records dropped: pipeline.max_pending_bytes reached") != NULL,
       "full: the refusal is logged");
    size_t len = lines(buf, 'm', 1, 1, 10);
    is_int(pipeline_deliver(e.pl, PIPIT_METRIC, buf, len, 7), PIPIT_EFULL,
           "full: refused with a count of 7");
    is_int(e.pl->stats.records_full, 11, "full: the count given is what is counted");

    struct until u = { .e = &e, .calls = 0 };
    run_until(&e, is_idle, &u, UV_RUN_ONCE);
    ok(e.pl->pending_bytes == 0 && !pipeline_high_water(e.pl), "full: delivery frees the room");
    is_int(deliver(&e, PIPIT_METRIC, 'm', 20, 1, 10), PIPIT_OK, "full: records are taken again");
    env_close(&e);
}

/* Drain: close the open batches now, see when nothing is left. */
static void test_close_open(void)
{
    struct env e;
    struct fake_out fa;
    struct pipit_instance a;
    struct pipit_instance *outs[] = { &a };
    char na[] = "a";

    make_out(&a, &fa, na, ALL_KINDS);
    env_open(&e, "close_open", 1000, 1 << 20, 60000 * MS, 1 << 20, outs, 1);
    ok(pipeline_idle(e.pl), "close_open: a new pipeline is idle");
    deliver(&e, PIPIT_EVENT, 'e', 1, 1, 6);
    deliver(&e, PIPIT_METRIC, 'm', 1, 2, 6);
    ok(!pipeline_idle(e.pl), "close_open: open batches are not idle");
    for (int i = 0; i < 10; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    ok(fa.ncalls == 0 && e.pl->stats.batches_closed == 0, "close_open: a long linger holds them");
    pipeline_close_open(e.pl);
    ok(e.pl->stats.batches_closed == 2 && e.pl->queued == 2 && !pipeline_idle(e.pl),
       "close_open: both closed and queued, not idle yet");
    struct until u = { .e = &e, .calls = 0 };
    ok(run_until(&e, is_idle, &u, UV_RUN_NOWAIT), "close_open: idle after the loop delivered them");
    ok(fa.ncalls == 2 && fa.calls[0].kind == PIPIT_METRIC && fa.calls[0].count == 2 &&
       fa.calls[1].kind == PIPIT_EVENT && fa.calls[1].count == 1,
       "close_open: delivered, metric batch first");
    pipeline_close_open(e.pl);
    is_int(e.pl->stats.batches_closed, 2, "close_open: nothing to close closes nothing");
    env_close(&e);
}

/* An input caught up: the open batch closes at once when nothing is queued;
 * while a batch is in flight, records gather and close when it is released. */
static void test_caught_up(void)
{
    static const int script[] = { PIPIT_PENDING };
    struct env e;
    struct fake_out fa;
    struct pipit_instance a;
    struct pipit_instance *outs[] = { &a };
    char na[] = "a";

    make_out(&a, &fa, na, ALL_KINDS);
    fa.script = script;
    fa.nscript = 1;
    env_open(&e, "caught_up", 1000, 1 << 20, 60000 * MS, 1 << 20, outs, 1);
    deliver(&e, PIPIT_LOG, 'l', 1, 2, 6);
    pipeline_caught_up(e.pl);
    is_int(e.pl->stats.batches_closed, 1, "caught_up: nothing queued, the open batch closes at once");
    struct until u = { .e = &e, .f = &fa, .calls = 1 };
    ok(run_until(&e, has_calls, &u, UV_RUN_NOWAIT) && e.pl->outs[0].inflight == 1,
       "caught_up: the output has it in flight");
    deliver(&e, PIPIT_LOG, 'l', 3, 3, 6);
    pipeline_caught_up(e.pl);
    deliver(&e, PIPIT_LOG, 'l', 6, 1, 6);
    for (int i = 0; i < 10; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    ok(e.pl->stats.batches_closed == 1 && fa.ncalls == 1,
       "caught_up: while a batch is in flight, the new records stay open");
    pipeline_flush_done(e.pl, &a, fa.calls[0].id, PIPIT_OK);
    u = (struct until){ .e = &e, .f = &fa, .calls = 2 };
    ok(run_until(&e, has_calls, &u, UV_RUN_NOWAIT) && e.pl->stats.batches_closed == 2 &&
       fa.calls[1].count == 4 && strcmp(fa.calls[1].payload, "l0003\nl0004\nl0005\nl0006\n") == 0,
       "caught_up: once it is delivered, the 4 gathered records go as one batch");
    u = (struct until){ .e = &e, .calls = 0 };
    ok(run_until(&e, is_idle, &u, UV_RUN_NOWAIT) && !e.pl->close_when_free,
       "caught_up: idle afterwards, nothing left to close");
    deliver(&e, PIPIT_LOG, 'l', 7, 1, 6);
    for (int i = 0; i < 10; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    is_int(e.pl->stats.batches_closed, 2, "caught_up: a later record waits for the linger again");
    env_close(&e);
}

/* A drain that timed out: everything undelivered is counted as lost. */
static void test_abandon(void)
{
    static const int script[] = { PIPIT_RETRY };
    struct env e;
    struct fake_out fa;
    struct pipit_instance a;
    struct pipit_instance *outs[] = { &a };
    char na[] = "a";

    make_out(&a, &fa, na, ALL_KINDS);
    env_open(&e, "abandon", 1000, 1 << 20, 60000 * MS, 1 << 20, outs, 1);
    log_taken();
    deliver(&e, PIPIT_METRIC, 'm', 1, 3, 6);
    pipeline_close_open(e.pl);          /* queued, never flushed: the loop does not run */
    deliver(&e, PIPIT_LOG, 'l', 1, 2, 6);
    pipeline_abandon(e.pl);
    is_int(e.pl->stats.records_lost, 5, "abandon: 3 queued and 2 open records lost");
    ok(e.pl->pending_bytes == 0 && e.pl->queued == 0 && pipeline_idle(e.pl),
       "abandon: nothing pending, idle");
    const char *l = log_taken();
    ok(strstr(l, "level=error") && strstr(l, "msg=\"5 records ") && strstr(l, "lost"),
       "abandon: the loss of 5 records is logged as an error");
    for (int i = 0; i < 10; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    is_int(fa.ncalls, 0, "abandon: nothing is flushed afterwards");
    pipeline_abandon(e.pl);
    is_int(e.pl->stats.records_lost, 5, "abandon: a second abandon finds nothing");
    is_str(log_taken(), "", "abandon: and logs nothing");

    /* A batch an output keeps retrying is lost at close too */
    fa.script = script;
    fa.nscript = 1;
    deliver(&e, PIPIT_METRIC, 'm', 4, 4, 6);
    pipeline_close_open(e.pl);
    struct until u = { .e = &e, .f = &fa, .calls = 1 };
    run_until(&e, has_calls, &u, UV_RUN_NOWAIT);
    ok(fa.ncalls == 1 && e.pl->outs[0].waiting, "abandon: the output asked to retry");
    deliver(&e, PIPIT_EVENT, 'e', 1, 1, 6);
    pipeline_close(e.pl);               /* counts what is left, closes the handles */
    is_int(e.pl->stats.records_lost, 10, "close: 4 retried and 1 open record lost");
    is_int(deliver(&e, PIPIT_METRIC, 'm', 9, 1, 6), PIPIT_ESTATE, "close: records are refused after");
    pipeline_close(e.pl);               /* twice is harmless */
    settle(&e.loop);
    is_int(fa.ncalls, 1, "close: the retry never fires");
    is_int(uv_loop_close(&e.loop), 0, "close: the loop closes, no handle left");
    identity_close(&e.id);
}

/* PIPIT_PENDING: the batch stays in flight until flush_done() settles it. */
static void test_pending(void)
{
    static const int script[] = { PIPIT_PENDING, PIPIT_PENDING, PIPIT_PENDING, PIPIT_PENDING };
    struct env e;
    struct fake_out fp, fa;
    struct pipit_instance p, a;
    struct pipit_instance *outs[] = { &p, &a };
    char np[] = "p", na[] = "a";

    make_out(&p, &fp, np, ALL_KINDS);
    make_out(&a, &fa, na, ALL_KINDS);
    fp.script = script;
    fp.nscript = 4;
    env_open(&e, "pending", 1000, 1 << 20, 0, 1 << 20, outs, 2);
    deliver(&e, PIPIT_METRIC, 'm', 1, 1, 6);
    deliver(&e, PIPIT_METRIC, 'm', 2, 2, 6);
    deliver(&e, PIPIT_METRIC, 'm', 4, 3, 6);
    struct until u = { .e = &e, .f = &fp, .calls = 3 };
    ok(run_until(&e, has_calls, &u, UV_RUN_NOWAIT) && fp.ncalls == 3,
       "pending: the output is given the next batches while earlier ones are in flight");
    struct pipeline_output *o = &e.pl->outs[0];
    ok(fp.calls[0].id && fp.calls[1].id > fp.calls[0].id && fp.calls[2].id > fp.calls[1].id,
       "pending: each batch has its own id for flush_done");
    ok(o->inflight == 3 && o->batches == 0 && e.pl->queued == 3 && !pipeline_idle(e.pl),
       "pending: 3 in flight, none delivered yet, all kept");
    is_int(fa.ncalls, 3, "pending: the other output is not held up");

    pipeline_flush_done(e.pl, &p, fp.calls[0].id, PIPIT_OK);
    ok(o->inflight == 2 && o->batches == 1 && o->records == 1, "pending: flush_done OK delivers it");
    log_taken();
    pipeline_flush_done(e.pl, &p, fp.calls[0].id, PIPIT_OK);   /* batch still queued */
    ok(o->batches == 1 && o->inflight == 2, "pending: a second flush_done for it changes nothing");
    for (int i = 0; i < 10; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    is_int(e.pl->queued, 2, "pending: and the batch is released");
    pipeline_flush_done(e.pl, &p, fp.calls[0].id, PIPIT_OK);   /* released */
    pipeline_flush_done(e.pl, &p, 999999, PIPIT_OK);
    ok(o->batches == 1 && o->inflight == 2, "pending: nor do released or unknown ids");
    is_int(count_of(log_taken(), "which is not in flight; ignored"), 3, "pending: each is logged");

    pipeline_flush_done(e.pl, &p, fp.calls[2].id, PIPIT_EIO);
    ok(o->failed_batches == 1 && o->failed_records == 3 && o->inflight == 1,
       "pending: flush_done with an error gives the batch up, counted");
    pipeline_flush_done(e.pl, &p, fp.calls[1].id, PIPIT_RETRY);
    ok(o->retries == 1 && o->waiting && o->inflight == 0, "pending: flush_done RETRY backs off");
    u = (struct until){ .e = &e, .f = &fp, .calls = 4 };
    ok(run_until(&e, has_calls, &u, UV_RUN_ONCE) && fp.calls[3].seq == fp.calls[1].seq &&
       fp.calls[3].id == fp.calls[1].id && strcmp(fp.calls[3].payload, "m0002\nm0003\n") == 0,
       "pending: after the backoff the same batch is given again");
    pipeline_flush_done(e.pl, &p, fp.calls[3].id, PIPIT_OK);
    u = (struct until){ .e = &e, .calls = 0 };
    ok(run_until(&e, is_idle, &u, UV_RUN_NOWAIT), "pending: idle once all are settled");
    ok(o->batches == 2 && o->records == 3 && o->inflight == 0 && fp.ncalls == 4,
       "pending: 2 delivered (3 records), 1 given up, nothing given twice more");
    env_close(&e);
}

static bool has_acks(const struct until *u)
{
    return u->in->nacks >= u->calls;
}

/* Marks: ack(token) once every record emitted before the mark is released,
 * in order; forgotten or abandoned marks are never acknowledged. */
static void test_marks(void)
{
    static const int script[] = { PIPIT_RETRY };
    struct env e;
    struct fake_out fo;
    struct fake_in fi = { { 0 }, 0 };
    struct pipit_instance o, in;
    struct pipit_instance *outs[] = { &o };
    char no[] = "o", nin[] = "in";

    make_out(&o, &fo, no, ALL_KINDS);
    fo.script = script;
    fo.nscript = 1;
    memset(&in, 0, sizeof in);
    in.name = nin;
    in.role = PIPIT_COLLECTOR;
    in.plugin = &fake_in_plugin;
    in.ctx = &fi;
    in.state = INS_RUNNING;
    env_open(&e, "marks", 1000, 1 << 20, 60000 * MS, 1 << 20, outs, 1);

    is_int(pipeline_mark(e.pl, &in, 1), PIPIT_OK, "marks: a mark with nothing emitted");
    is_int(fi.nacks, 0, "marks: never acknowledged from inside pipeline_mark");
    struct until u = { .e = &e, .calls = 1, .in = &fi };
    ok(run_until(&e, has_acks, &u, UV_RUN_NOWAIT) && fi.acks[0] == 1,
       "marks: acknowledged from the loop");

    deliver(&e, PIPIT_METRIC, 'm', 1, 2, 6);
    pipeline_mark(e.pl, &in, 2);
    deliver(&e, PIPIT_LOG, 'l', 1, 1, 6);
    pipeline_mark(e.pl, &in, 3);
    for (int i = 0; i < 10; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    is_int(fi.nacks, 1, "marks: not acknowledged while their batches are open");
    pipeline_close_open(e.pl);
    struct until uc = { .e = &e, .f = &fo, .calls = 1 };
    run_until(&e, has_calls, &uc, UV_RUN_NOWAIT);
    ok(fo.ncalls == 1 && e.pl->outs[0].waiting && fi.nacks == 1,
       "marks: not acknowledged while the output retries");
    u.calls = 3;
    ok(run_until(&e, has_acks, &u, UV_RUN_ONCE) && fi.nacks == 3 && fi.acks[1] == 2 &&
       fi.acks[2] == 3, "marks: acknowledged in order once delivered");
    ok(fo.ncalls == 3, "marks: after both batches were delivered");

    deliver(&e, PIPIT_METRIC, 'm', 3, 1, 6);
    pipeline_mark(e.pl, &in, 4);
    pipeline_forget(e.pl, &in);
    pipeline_close_open(e.pl);
    struct until ui = { .e = &e, .calls = 0 };
    run_until(&e, is_idle, &ui, UV_RUN_NOWAIT);
    for (int i = 0; i < 10; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    ok(fo.ncalls == 4 && fi.nacks == 3, "marks: a forgotten mark is never acknowledged");

    deliver(&e, PIPIT_METRIC, 'm', 4, 1, 6);
    pipeline_mark(e.pl, &in, 5);
    pipeline_abandon(e.pl);
    for (int i = 0; i < 10; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    is_int(fi.nacks, 3, "marks: an abandoned mark is never acknowledged");

    in.state = INS_STOPPED;
    pipeline_mark(e.pl, &in, 6);
    for (int i = 0; i < 10; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    is_int(fi.nacks, 3, "marks: an input that stopped is not called");
    env_close(&e);
}

static void test_new(void)
{
    uv_loop_t loop;
    struct identity id;
    struct batch_limits lim = { 10, 1000, 0 };
    struct pipit_instance many[33], *outs[33];
    struct fake_out f;
    char name[] = "o", dir[4200];

    for (int i = 0; i < 33; i++) {
        make_out(&many[i], &f, name, ALL_KINDS);
        outs[i] = &many[i];
    }
    snprintf(dir, sizeof dir, "%s/state-new", tmp);
    uv_loop_init(&loop);
    identity_open(&id, dir, "h");
    ok(pipeline_new(&loop, &id, &lim, 1000, outs, 33) == NULL, "new: 33 outputs are refused");
    struct pipeline *pl = pipeline_new(&loop, &id, &lim, 1000, outs, 32);
    ok(pl != NULL, "new: 32 outputs are fine");
    pipeline_close(pl);
    struct pipeline *none = pipeline_new(&loop, &id, &lim, 1000, NULL, 0);
    ok(none != NULL, "new: no outputs is fine");
    is_int(pipeline_deliver(none, PIPIT_METRIC, "x\n", 2, 1), PIPIT_OK, "new: records are taken");
    is_int(none->stats.records_unrouted, 1, "new: and counted as unrouted");
    pipeline_close(none);
    pipeline_close(NULL);
    settle(&loop);
    is_int(uv_loop_close(&loop), 0, "new: the loop closes, no handle left");
    identity_close(&id);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    return remove(path);
}

/* A sequence reservation that cannot be written (a full disk): no batch
 * goes out without a sequence number of its own; the records wait in the
 * open batch, which closes, whole, once a reservation succeeds. */
static void test_no_sequence(void)
{
    struct env e;
    struct fake_out fa;
    struct pipit_instance a;
    struct pipit_instance *outs[] = { &a };
    char na[] = "a";
    char *good;

    make_out(&a, &fa, na, ALL_KINDS);
    env_open(&e, "no sequence", 1, 1 << 20, 20 * MS, 1 << 20, outs, 1);
    good = e.id.seq_path;
    e.id.seq_path = strdup("/nonexistent/pipit-test/sequence");
    e.id.seq_reserved = e.id.seq_next;  /* the next number needs a reservation */
    log_taken();
    deliver(&e, PIPIT_METRIC, 'm', 1, 3, 6);
    ok(e.pl->stats.batches_closed == 0 && e.pl->open[PIPIT_METRIC].count == 3 &&
       e.pl->stats.seq_errors >= 1 && fa.ncalls == 0,
       "no sequence: nothing closes, the 3 records wait in the open batch");
    is_int(count_of(log_taken(), "cannot persist sequence reservation"), 1,
           "no sequence: logged once");
    ok(uv_is_active((uv_handle_t *)&e.pl->linger), "no sequence: a retry is scheduled");
    free(e.id.seq_path);
    e.id.seq_path = good;               /* the disk has room again */
    struct until u = { .e = &e, .f = &fa, .calls = 1 };
    ok(run_until(&e, has_calls, &u, UV_RUN_ONCE) && fa.ncalls == 1 &&
       fa.calls[0].count == 3 && fa.calls[0].seq > 0,
       "no sequence: once a reservation succeeds one batch of the 3 goes out, numbered");
    ok(strstr(log_taken(), "written to") != NULL, "no sequence: the recovery is logged");
    env_close(&e);
}

int main(void)
{
    const char *t = getenv("TMPDIR");

    snprintf(tmp, sizeof tmp, "%s/pipit-test-pipeline.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmp))
        plan_skip_all("cannot make a temporary directory");
    log_file = tmpfile();
    if (!log_file)
        plan_skip_all("cannot make a temporary file");
    log_setup(log_file, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);

    test_max_records();
    test_max_bytes();
    test_linger();
    test_kinds();
    test_retry();
    test_error();
    test_full();
    test_close_open();
    test_caught_up();
    test_abandon();
    test_pending();
    test_marks();
    test_new();
    test_wire_only();
    test_no_sequence();

    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    fclose(log_file);
    return done_testing();
}
