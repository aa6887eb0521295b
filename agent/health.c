/* health.c: /readyz's verdict on the outputs and the spool, as a JSON document. */
#include <string.h>
#include "health.h"

static const char *state_name(enum instance_state s)
{
    switch (s) {
    case INS_CONFIGURED: return "configured";
    case INS_RUNNING:    return "running";
    case INS_DISABLED:   return "disabled";
    case INS_STOPPED:    return "stopped";
    case INS_STALLED:    return "stalled";
    case INS_STARTING:   return "starting";
    }
    return "unknown";
}

/* Batches in the queue that output o has not delivered yet. */
static uint64_t owed_batches(const struct pipeline *pl, const struct pipeline_output *o)
{
    uint64_t n = 0;
    for (const struct batch *b = pl->head; b; b = b->next)
        n += (b->pending >> o->bit) & 1u;
    return n;
}

static void judge_output(const struct daemon_view *v, const struct pipit_instance *ins,
                         struct output_health *h)
{
    const struct pipeline_output *o = ins->out;

    memset(h, 0, sizeof *h);
    if (ins->state != INS_RUNNING || !o || !v->pl) {
        h->reason = ins->state == INS_RUNNING ? "not attached" : "not running";
        return;
    }
    h->owed = owed_batches(v->pl, o);
    if (o->failing_since_ns)
        h->failing_s = (double)(v->now_ns - o->failing_since_ns) / 1e9;
    if (!o->failing_since_ns) {
        h->reason = "delivering";
        h->ready = true;
    } else if (h->owed == 0) {
        h->reason = "failed, nothing to deliver now";
        h->ready = true;
    } else if (v->now_ns - o->failing_since_ns <= v->ready_grace_ns) {
        h->reason = "retrying, within ready_grace";
        h->ready = true;
    } else {
        h->reason = "failing for longer than ready_grace";
    }
}

static bool buffer_below_high_water(const struct daemon_view *v)
{
    if (v->spool) {
        const struct spool_stats *st = spool_stats(v->spool);
        return st->bytes < v->spool_max_bytes / 100 * HEALTH_HIGH_WATER_PERCENT;
    }
    return !v->pl || !pipeline_high_water(v->pl);
}

static void render_output(struct buf *out, const struct daemon_view *v,
                          const struct pipit_instance *ins, const struct output_health *h)
{
    const struct pipeline_output *o = ins->out;

    buf_puts(out, "{\"name\":");
    buf_json_str(out, ins->name, strlen(ins->name));
    buf_puts(out, ",\"plugin\":");
    buf_json_str(out, ins->plugin->desc.name, strlen(ins->plugin->desc.name));
    buf_printf(out, ",\"state\":\"%s\",\"ready\":%s,\"reason\":\"%s\","
               "\"pending_batches\":%llu,\"failing_seconds\":%.3f",
               state_name(ins->state), h->ready ? "true" : "false", h->reason,
               (unsigned long long)h->owed, h->failing_s);
    if (o && v->pl)
        buf_printf(out, ",\"delivered_batches\":%llu,\"retries\":%llu,"
                   "\"failed_batches\":%llu", (unsigned long long)o->batches,
                   (unsigned long long)o->retries, (unsigned long long)o->failed_batches);
    buf_putc(out, '}');
}

static void render_buffer(struct buf *out, const struct daemon_view *v, bool ok)
{
    if (v->spool) {
        const struct spool_stats *st = spool_stats(v->spool);
        buf_printf(out, "\"spool\":{\"ready\":%s,\"bytes\":%llu,\"entries\":%llu,"
                   "\"max_bytes\":%llu,\"high_water_bytes\":%llu}", ok ? "true" : "false",
                   (unsigned long long)st->bytes, (unsigned long long)st->entries,
                   (unsigned long long)v->spool_max_bytes,
                   (unsigned long long)(v->spool_max_bytes / 100 * HEALTH_HIGH_WATER_PERCENT));
    } else {
        buf_printf(out, "\"spool\":null,\"pipeline\":{\"ready\":%s,\"pending_bytes\":%zu,"
                   "\"max_pending_bytes\":%zu}", ok ? "true" : "false",
                   v->pl ? v->pl->pending_bytes : 0, v->pl ? v->pl->max_pending : 0);
    }
}

void health_judge(struct daemon_view *v)
{
    v->buffer_ok = buffer_below_high_water(v);
    v->ready = v->pl && v->noutputs > 0 && v->buffer_ok;
    for (size_t i = 0; i < v->noutputs; i++) {
        judge_output(v, v->outputs[i], &v->health[i]);
        v->ready = v->ready && v->health[i].ready;
    }
}

void health_render_ready(struct buf *out, const struct daemon_view *v)
{
    const char *why = v->ready ? "every output delivering, buffer below high water"
                    : !v->pl ? "reloading"
                    : v->noutputs == 0 ? "no output configured"
                    : !v->buffer_ok ? "buffer past its high-water mark"
                    : "an output is not delivering";

    buf_printf(out, "{\"status\":\"%s\",\"reason\":\"%s\",\"outputs\":[",
               v->ready ? "ready" : "not ready", why);
    for (size_t i = 0; i < v->noutputs; i++) {
        if (i)
            buf_putc(out, ',');
        render_output(out, v, v->outputs[i], &v->health[i]);
    }
    /* inputs do not decide readiness (one broken input leaves the rest
     * running) but their states are shown */
    buf_puts(out, "],\"inputs\":[");
    for (size_t i = 0; i < v->ninputs; i++) {
        const struct pipit_instance *ins = v->inputs[i];
        buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        buf_json_str(out, ins->name, strlen(ins->name));
        buf_puts(out, ",\"plugin\":");
        buf_json_str(out, ins->plugin->desc.name, strlen(ins->plugin->desc.name));
        buf_printf(out, ",\"state\":\"%s\",\"stalls\":%llu}", state_name(ins->state),
                   (unsigned long long)ins->stats.stalls);
    }
    buf_puts(out, "],");
    render_buffer(out, v, v->buffer_ok);
    buf_puts(out, "}\n");
}
