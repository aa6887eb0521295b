/* selfmetrics.c: the daemon's own figures in the Prometheus text format (0.0.4). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "errors.h"
#include "http_server.h"
#include "selfmetrics.h"

/* A counter or gauge read at an offset of a stats struct. */
struct field {
    const char *name;
    const char *type;                   /* "counter" or "gauge" */
    size_t off;                         /* of a uint64_t */
    const char *help;
};

/* The shortest %g form of v that reads back equal ("0.005", not
 * "0.0050000000000000001"); the text format's spelling of NaN and the
 * infinities. */
static void put_double(struct buf *b, double v)
{
    char s[40];

    if (isinf(v) || isnan(v)) {
        buf_puts(b, isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(s, sizeof s, "%.*g", p, v);
        if (strtod(s, NULL) == v)
            break;
    }
    buf_puts(b, s);
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the text format wants: \\, \" and \n. */
static void label_value(struct buf *b, const char *v)
{
    buf_putc(b, '"');
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            buf_putc(b, '\\');
        if (*v == '\n')
            buf_puts(b, "\\n");
        else
            buf_putc(b, *v);
    }
    buf_putc(b, '"');
}

/* name{k="v",...} for the NULL-terminated key, value list kv, then extra
 * (one more label already formatted, or NULL). */
static void series(struct buf *b, const char *name, const char *suffix,
                   const char *const *kv, const char *extra)
{
    buf_puts(b, name);
    buf_puts(b, suffix);
    if (!(kv && kv[0]) && !extra)
        return;
    buf_putc(b, '{');
    for (size_t i = 0; kv && kv[i]; i += 2) {
        buf_printf(b, "%s%s=", i ? "," : "", kv[i]);
        label_value(b, kv[i + 1]);
    }
    if (extra)
        buf_printf(b, "%s%s", kv && kv[0] ? "," : "", extra);
    buf_putc(b, '}');
}

static void sample_u(struct buf *b, const char *name, const char *const *kv, uint64_t v)
{
    series(b, name, "", kv, NULL);
    buf_printf(b, " %llu\n", (unsigned long long)v);
}

static void sample_d(struct buf *b, const char *name, const char *const *kv, double v)
{
    series(b, name, "", kv, NULL);
    buf_putc(b, ' ');
    put_double(b, v);
    buf_putc(b, '\n');
}

/* The _bucket (cumulative, le="+Inf" last), _sum and _count series. */
static void sample_hist(struct buf *b, const char *name, const char *const *kv,
                        const struct histogram *h, const struct histogram_bounds *bounds)
{
    struct buf le = BUF_INIT;
    uint64_t acc = 0;

    for (size_t i = 0; i <= bounds->n; i++) {
        acc += h->counts[i];
        buf_reset(&le);
        buf_puts(&le, "le=\"");
        put_double(&le, i < bounds->n ? bounds->le[i] : INFINITY);
        buf_putc(&le, '"');
        series(b, name, "_bucket", kv, le.data);
        buf_printf(b, " %llu\n", (unsigned long long)acc);
    }
    buf_free(&le);
    series(b, name, "_sum", kv, NULL);
    buf_putc(b, ' ');
    put_double(b, h->sum);
    buf_putc(b, '\n');
    series(b, name, "_count", kv, NULL);
    buf_printf(b, " %llu\n", (unsigned long long)h->count);
}

/* A family of one unlabeled gauge; its sample only when have is true. */
static void gauge1(struct buf *b, const char *name, const char *help, bool have, uint64_t v)
{
    family(b, name, "gauge", help);
    if (have)
        sample_u(b, name, NULL, v);
}

static uint64_t field_at(const void *base, size_t off)
{
    uint64_t v;
    memcpy(&v, (const char *)base + off, sizeof v);
    return v;
}

/* Room for the labels of one instance's series. */
struct ins_labels {
    const char *kv[7];
};

/*
 * The labels of ins: its name (as "output" for outputs, "input" for
 * inputs; never "instance", the label Prometheus gives the scraped target)
 * and plugin, then extra_key=extra_value when extra_key is not
 * NULL. Points into l and ins.
 */
static const char *const *labels_of(struct ins_labels *l, const struct pipit_instance *ins,
                                    const char *extra_key, const char *extra_value)
{
    l->kv[0] = ins->role == PIPIT_OUTPUT ? "output" : "input";
    l->kv[1] = ins->name;
    l->kv[2] = "plugin";
    l->kv[3] = ins->plugin->desc.name;
    l->kv[4] = extra_key;
    l->kv[5] = extra_value;
    l->kv[6] = NULL;
    return l->kv;
}

static const char *const role_names[] = { "input", "output" };

static const char *role_of(const struct pipit_instance *ins)
{
    return role_names[ins->role == PIPIT_OUTPUT];
}

/* --- inputs ------------------------------------------------------------ */

static const struct field input_fields[] = {
    { "pipit_input_records_total", "counter", offsetof(struct instance_stats, records),
      "Records an input emitted that the pipeline accepted" },
    { "pipit_collector_runs_total", "counter", offsetof(struct instance_stats, runs),
      "Collections run" },
    { "pipit_collector_failures_total", "counter", offsetof(struct instance_stats, errors),
      "Collections that returned an error or could not be started" },
    { "pipit_collector_overruns_total", "counter", offsetof(struct instance_stats, overruns),
      "Collection ticks skipped because the previous collection was still running" },
    { "pipit_collector_skipped_total", "counter", offsetof(struct instance_stats, skipped),
      "Collections skipped because the pipeline was near its memory bound" },
    { "pipit_plugin_stalls_total", "counter", offsetof(struct instance_stats, stalls),
      "Collections still running at collect_timeout (in process: the instance is "
      "stalled; isolated: its process is killed)" },
    { "pipit_plugin_restarts_total", "counter", offsetof(struct instance_stats, restarts),
      "Host processes of an isolated input started again after a crash or a kill" },
};

static void render_inputs(struct buf *b, const struct daemon_view *v)
{
    struct ins_labels l;

    for (size_t f = 0; f < sizeof input_fields / sizeof input_fields[0]; f++) {
        family(b, input_fields[f].name, input_fields[f].type, input_fields[f].help);
        for (size_t i = 0; i < v->ninputs; i++)
            sample_u(b, input_fields[f].name, labels_of(&l, v->inputs[i], NULL, NULL),
                     field_at(&v->inputs[i]->stats, input_fields[f].off));
    }
    family(b, "pipit_input_records_dropped_total", "counter",
           "Records an input emitted that were refused, by reason: pipeline_full "
           "(memory bound), invalid (malformed record), max_emit_bytes (past the "
           "bound of one collection) or stalled (emitted by a call that overran "
           "collect_timeout)");
    for (size_t i = 0; i < v->ninputs; i++) {
        struct pipit_instance *ins = v->inputs[i];
        sample_u(b, "pipit_input_records_dropped_total",
                 labels_of(&l, ins, "reason", "pipeline_full"),
                 ins->stats.dropped + atomic_load(&ins->emit_dropped));
        sample_u(b, "pipit_input_records_dropped_total", labels_of(&l, ins, "reason", "invalid"),
                 ins->stats.invalid + atomic_load(&ins->emit_invalid));
        sample_u(b, "pipit_input_records_dropped_total",
                 labels_of(&l, ins, "reason", "max_emit_bytes"), ins->stats.capped);
        sample_u(b, "pipit_input_records_dropped_total", labels_of(&l, ins, "reason", "stalled"),
                 ins->stats.stalled);
    }
    family(b, "pipit_collector_duration_seconds", "histogram",
           "Time from a collection's start to its records reaching the loop");
    for (size_t i = 0; i < v->ninputs; i++)
        sample_hist(b, "pipit_collector_duration_seconds", labels_of(&l, v->inputs[i], NULL, NULL),
                    &v->inputs[i]->stats.duration, &histogram_seconds);
}

/* --- plugin states ----------------------------------------------------- */

static void render_states(struct buf *b, const struct daemon_view *v)
{
    static const char *const states[] = { "configured", "running", "disabled", "stopped",
                                          "stalled", "starting" };

    family(b, "pipit_plugin_state", "gauge",
           "1 for the state each plugin instance is in (configured, running, disabled "
           "after a failed init or by the watchdog, stopped, stalled in a call past "
           "collect_timeout, starting its host process), 0 for the others");
    for (size_t r = 0; r < 2; r++) {
        struct pipit_instance *const *list = r ? v->outputs : v->inputs;
        size_t n = r ? v->noutputs : v->ninputs;
        for (size_t i = 0; i < n; i++)
            for (size_t s = 0; s < sizeof states / sizeof states[0]; s++) {
                const char *kv[] = { "name", list[i]->name, "plugin",
                                     list[i]->plugin->desc.name, "role", role_of(list[i]),
                                     "state", states[s], NULL };
                sample_u(b, "pipit_plugin_state", kv, (size_t)list[i]->state == s);
            }
    }
}

/* --- outputs ----------------------------------------------------------- */

static const struct field output_fields[] = {
    { "pipit_output_batches_total", "counter", offsetof(struct pipeline_output, batches),
      "Batches an output delivered (acknowledged)" },
    { "pipit_output_records_total", "counter", offsetof(struct pipeline_output, records),
      "Records in the batches an output delivered" },
    { "pipit_output_retries_total", "counter", offsetof(struct pipeline_output, retries),
      "Deliveries an output asked to retry later (for Kafka: broker or network errors, "
      "message timeouts, a full client queue)" },
    { "pipit_output_failed_batches_total", "counter",
      offsetof(struct pipeline_output, failed_batches),
      "Batches an output gave up with an error (for Kafka: permanent errors)" },
    { "pipit_output_failed_records_total", "counter",
      offsetof(struct pipeline_output, failed_records),
      "Records in the batches an output gave up" },
    { "pipit_output_inflight_batches", "gauge", offsetof(struct pipeline_output, inflight),
      "Batches an output has taken and not yet acknowledged" },
};

static void render_outputs(struct buf *b, const struct daemon_view *v)
{
    struct ins_labels l;

    for (size_t f = 0; f < sizeof output_fields / sizeof output_fields[0]; f++) {
        family(b, output_fields[f].name, output_fields[f].type, output_fields[f].help);
        for (size_t i = 0; i < v->noutputs; i++)
            if (v->outputs[i]->out)
                sample_u(b, output_fields[f].name, labels_of(&l, v->outputs[i], NULL, NULL),
                         field_at(v->outputs[i]->out, output_fields[f].off));
    }
    family(b, "pipit_output_pending_batches", "gauge",
           "Batches an output still has to deliver");
    for (size_t i = 0; i < v->noutputs; i++)
        sample_u(b, "pipit_output_pending_batches", labels_of(&l, v->outputs[i], NULL, NULL),
                 v->health[i].owed);
    family(b, "pipit_output_ready", "gauge",
           "1 when an output counts as reachable for /readyz, else 0");
    for (size_t i = 0; i < v->noutputs; i++)
        sample_u(b, "pipit_output_ready", labels_of(&l, v->outputs[i], NULL, NULL),
                 v->health[i].ready);
    family(b, "pipit_output_delivery_latency_seconds", "histogram",
           "Time from a batch's close to its delivery by an output");
    for (size_t i = 0; i < v->noutputs; i++) {
        const struct pipeline_output *o = v->outputs[i]->out;
        if (o)
            sample_hist(b, "pipit_output_delivery_latency_seconds",
                        labels_of(&l, v->outputs[i], NULL, NULL), &o->latency,
                        &histogram_seconds);
    }
}

/* --- pipeline and batches ---------------------------------------------- */

static const struct field pipeline_fields[] = {
    { "pipit_pipeline_records_total", "counter", offsetof(struct pipeline_stats, records_in),
      "Records accepted into open batches" },
    { "pipit_pipeline_records_replayed_total", "counter",
      offsetof(struct pipeline_stats, records_replayed),
      "Records found unsent in the spool at start and queued again" },
    { "pipit_batches_total", "counter", offsetof(struct pipeline_stats, batches_closed),
      "Batches closed" },
    { "pipit_batch_bytes_total", "counter", offsetof(struct pipeline_stats, batch_bytes),
      "Bytes of JSON records in the batches encoded" },
    { "pipit_batch_wire_bytes_total", "counter",
      offsetof(struct pipeline_stats, batch_wire_bytes),
      "Bytes of the same batches encoded, compressed and signed" },
    { "pipit_pipeline_encode_errors_total", "counter",
      offsetof(struct pipeline_stats, encode_errors), "Batches that could not be encoded" },
    { "pipit_pipeline_sequence_errors_total", "counter",
      offsetof(struct pipeline_stats, seq_errors),
      "Sequence number reservations that could not be persisted" },
    { "pipit_pipeline_spool_waits_total", "counter",
      offsetof(struct pipeline_stats, spool_waits),
      "Batches that waited for room in a full spool (policy block)" },
    { "pipit_pipeline_spool_errors_total", "counter",
      offsetof(struct pipeline_stats, spool_errors),
      "Spool writes or reads that failed" },
};

/* Pipeline-wide drops: where each reason is counted in pipeline_stats. */
static const struct { const char *reason; size_t off; } drop_reasons[] = {
    { "pipeline_full", offsetof(struct pipeline_stats, records_full) },
    { "unrouted", offsetof(struct pipeline_stats, records_unrouted) },
    { "lost", offsetof(struct pipeline_stats, records_lost) },
    { "spool_drop_oldest", offsetof(struct pipeline_stats, records_spool_dropped) },
};

static void render_pipeline(struct buf *b, const struct daemon_view *v)
{
    const struct pipeline *pl = v->pl;

    for (size_t f = 0; f < sizeof pipeline_fields / sizeof pipeline_fields[0]; f++) {
        family(b, pipeline_fields[f].name, pipeline_fields[f].type, pipeline_fields[f].help);
        if (pl)
            sample_u(b, pipeline_fields[f].name, NULL,
                     field_at(&pl->stats, pipeline_fields[f].off));
    }
    family(b, "pipit_records_dropped_total", "counter",
           "Records dropped by the pipeline, by reason: pipeline_full (memory bound), "
           "unrouted (no output takes the kind), lost (undelivered at a timed-out "
           "drain, unencodable or unreadable), spool_drop_oldest (spool full)");
    for (size_t i = 0; pl && i < sizeof drop_reasons / sizeof drop_reasons[0]; i++) {
        const char *kv[] = { "reason", drop_reasons[i].reason, NULL };
        sample_u(b, "pipit_records_dropped_total", kv, field_at(&pl->stats, drop_reasons[i].off));
    }
    family(b, "pipit_batch_records", "histogram", "Records per closed batch");
    if (pl)
        sample_hist(b, "pipit_batch_records", NULL, &pl->stats.batch_records,
                    &histogram_records);
    family(b, "pipit_batch_compression_ratio", "gauge",
           "Bytes of JSON records per byte on the wire, over all batches encoded "
           "(0 before the first)");
    if (pl)
        sample_d(b, "pipit_batch_compression_ratio", NULL, pl->stats.batch_wire_bytes
                 ? (double)pl->stats.batch_bytes / (double)pl->stats.batch_wire_bytes : 0);
    gauge1(b, "pipit_pipeline_pending_bytes",
           "Bytes of records held in memory, open and undelivered batches",
           pl, pl ? pl->pending_bytes : 0);
    gauge1(b, "pipit_pipeline_max_pending_bytes", "The bound pipeline.max_pending_bytes",
           pl, pl ? pl->max_pending : 0);
    gauge1(b, "pipit_pipeline_queued_batches", "Closed batches not yet released",
           pl, pl ? pl->queued : 0);
}

/* --- spool ------------------------------------------------------------- */

static const struct field spool_fields[] = {
    { "pipit_spool_bytes", "gauge", offsetof(struct spool_stats, bytes),
      "Bytes of the spool's segment files" },
    { "pipit_spool_entries", "gauge", offsetof(struct spool_stats, entries),
      "Batches in the spool not yet released by every output" },
    { "pipit_spool_appended_total", "counter", offsetof(struct spool_stats, appended),
      "Batches written to the spool" },
    { "pipit_spool_released_total", "counter", offsetof(struct spool_stats, released),
      "Batches released from the spool (delivered or given up by every output)" },
    { "pipit_spool_full_total", "counter", offsetof(struct spool_stats, full),
      "Writes refused because the spool was full (policy block)" },
    { "pipit_spool_dropped_batches_total", "counter",
      offsetof(struct spool_stats, dropped_entries),
      "Batches dropped to make room (policy drop_oldest)" },
    { "pipit_spool_corrupt_batches_total", "counter",
      offsetof(struct spool_stats, corrupt_entries),
      "Damaged entries skipped (torn writes, bit flips)" },
    { "pipit_spool_corrupt_bytes_total", "counter", offsetof(struct spool_stats, corrupt_bytes),
      "Bytes skipped with damaged entries" },
    { "pipit_spool_write_errors_total", "counter", offsetof(struct spool_stats, write_errors),
      "Writes to the spool that failed (disk full, I/O error); the batch was not accepted" },
};

static void render_spool(struct buf *b, const struct daemon_view *v)
{
    const struct spool_stats *st = v->spool ? spool_stats(v->spool) : NULL;

    gauge1(b, "pipit_spool_max_bytes", "The bound spool.max_bytes", st, v->spool_max_bytes);
    for (size_t f = 0; f < sizeof spool_fields / sizeof spool_fields[0]; f++) {
        family(b, spool_fields[f].name, spool_fields[f].type, spool_fields[f].help);
        if (st)
            sample_u(b, spool_fields[f].name, NULL, field_at(st, spool_fields[f].off));
    }
}

/* --- the daemon and its endpoints --------------------------------------- */

static void render_daemon(struct buf *b, const struct daemon_view *v)
{
    const char *kv[] = { "version", PACKAGE_VERSION, NULL };
    uint64_t counts[HTTP_ST_MAX];
    char code[8];

    family(b, "pipit_build_info", "gauge", "Always 1; the version of pipitd as a label");
    sample_u(b, "pipit_build_info", kv, 1);
    family(b, "pipit_start_time_seconds", "gauge", "When the process started, in Unix time");
    sample_d(b, "pipit_start_time_seconds", NULL, (double)v->start_time_ns / 1e9);
    gauge1(b, "pipit_ready", "1 when /readyz answers 200, else 0", true, v->ready);
    gauge1(b, "pipit_ready_buffer", "1 while the spool (or, without one, the pipeline) "
           "is below its high-water mark", true, v->buffer_ok);
    if (!v->http)
        return;
    http_server_counts(v->http, counts);
    family(b, "pipit_http_requests_total", "counter",
           "Requests the endpoints answered, by status code");
    for (size_t i = 0; i < HTTP_ST_MAX; i++) {
        snprintf(code, sizeof code, "%u", http_server_status_codes[i]);
        const char *ck[] = { "code", code, NULL };
        sample_u(b, "pipit_http_requests_total", ck, counts[i]);
    }
}

void selfmetrics_render(struct buf *out, const struct daemon_view *v)
{
    render_daemon(out, v);
    render_states(out, v);
    render_inputs(out, v);
    render_pipeline(out, v);
    render_outputs(out, v);
    render_spool(out, v);
}
