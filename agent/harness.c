/* harness.c: run one plugin alone (pipit plugin-test and the plugin tests), capturing its records. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "errors.h"
#include "harness.h"
#include "log.h"
#include "record.h"
#include "wire.h"

static int harness_deliver(struct instance_host *host, struct pipit_instance *ins,
                           int kind, const char *lines, size_t len, uint32_t count)
{
    struct harness *h = host->opaque;
    if (buf_append(&h->out, lines, len) != PIPIT_OK)
        return PIPIT_EFULL;
    h->records += count;
    return PIPIT_OK;
}

static int harness_set_result(struct instance_host *host, struct pipit_instance *ins,
                              const char *key, const char *value)
{
    struct harness *h = host->opaque;
    size_t n = strnlen(value, PIPIT_RESULT_MAX);
    json_t *v = json_stringn_nocheck(value, n);
    if (!v || json_object_set_new(h->results, key, v) != 0)
        return PIPIT_ENOMEM;
    return PIPIT_OK;
}

static int64_t harness_time_left_ms(struct instance_host *host, struct pipit_instance *ins)
{
    struct harness *h = host->opaque;
    if (!h->deadline_ms)
        return -1;
    int64_t left = h->deadline_ms - (int64_t)(uv_hrtime() / 1000000);
    return left > 0 ? left : 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    return remove(path);
}

static unsigned plugin_role(unsigned kinds)
{
    if (kinds & PIPIT_COLLECTOR)
        return PIPIT_COLLECTOR;
    if (kinds & PIPIT_OUTPUT)
        return PIPIT_OUTPUT;
    return PIPIT_ACTION;
}

/*
 * Load path, build a map of options from "key=value" strings and make the
 * instance. The loop and a private state directory under $TMPDIR are set up
 * so that plugins using loop services and state files behave as in pipitd.
 */
int harness_open(struct harness *h, const char *path, char **kv, int nkv, FILE *err)
{
    char why[1024];
    struct diag d;
    struct cfg_node *map = NULL;
    const struct loader_plugin *lp;
    const char *tmp = getenv("TMPDIR");

    memset(h, 0, sizeof *h);
    diag_init(&d);
    if (uv_loop_init(&h->loop) != 0) {
        fprintf(err, "cannot initialise the event loop\n");
        return PIPIT_EIO;
    }
    h->loop_open = true;
    snprintf(h->state_dir, sizeof h->state_dir, "%s/pipit-harness.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(h->state_dir)) {
        fprintf(err, "cannot create a state directory under %s\n",
                tmp && *tmp ? tmp : "/tmp");
        h->state_dir[0] = '\0';
        goto fail;
    }
    if (gethostname(h->host_name, sizeof h->host_name - 1) != 0)
        snprintf(h->host_name, sizeof h->host_name, "localhost");
    h->host.loop = &h->loop;
    h->host.host_name = h->host_name;
    h->host.agent_id = "00000000-0000-4000-8000-000000000000";
    h->host.state_dir = h->state_dir;
    h->host.max_collect_bytes = 64u << 20;
    h->host.deliver = harness_deliver;
    h->host.set_result = harness_set_result;
    h->host.time_left_ms = harness_time_left_ms;
    if (!(h->results = json_object()))
        goto fail;
    h->host.opaque = h;
    if (instance_host_open(&h->host) != PIPIT_OK) {
        fprintf(err, "cannot set up the host\n");
        goto fail;
    }
    h->host_open = true;

    lp = loader_open(path, instance_api(), why, sizeof why);
    if (!lp) {
        fprintf(err, "%s\n", why);
        goto fail;
    }
    map = cfg_new_map();
    if (!map)
        goto fail;
    for (int i = 0; i < nkv; i++) {
        char *eq = strchr(kv[i], '=');
        if (!eq || eq == kv[i]) {
            fprintf(err, "option \"%s\": expected key=value\n", kv[i]);
            goto fail;
        }
        *eq = '\0';
        struct cfg_node *n = cfg_map_set_text(map, kv[i], eq + 1, &d);
        *eq = '=';
        if (!n) {
            diag_print(&d, err);
            goto fail;
        }
    }
    h->ins = instance_create(&h->host, lp, plugin_role(lp->desc.kinds),
                             lp->desc.name, map, NULL, "command line", NULL, &d);
    if (!h->ins) {
        diag_print(&d, err);
        goto fail;
    }
    cfg_node_free(map);
    diag_free(&d);
    return PIPIT_OK;
fail:
    cfg_node_free(map);
    diag_free(&d);
    harness_close(h);
    return PIPIT_EINVAL;
}

int harness_init(struct harness *h)
{
    return instance_init(h->ins);
}

int harness_run(struct harness *h)
{
    int r = instance_run(h->ins);
    instance_handoff(h->ins);
    uv_run(&h->loop, UV_RUN_NOWAIT);
    return r;
}

/*
 * Hand lines (count records of one kind) to the output's flush() as one
 * batch, also encoded as a wire message (zlib, unsigned) as the daemon's
 * pipeline does, so that outputs sending wire messages can be tried alone.
 */
int harness_flush(struct harness *h, int kind, const char *lines, size_t len,
                  uint32_t count)
{
    const struct wire_encode_opts wopts = { .codec = WIRE_CODEC_ZLIB };
    struct buf wire = BUF_INIT;
    int64_t now = record_now_ns();
    struct pipit_batch b = {
        .struct_size = sizeof b, .kind = kind, .seq = 1, .count = count,
        .payload = lines, .payload_len = len, .agent_id = h->host.agent_id,
        .created_ns = now,
    };
    if (h->ins->state != INS_RUNNING || !h->ins->plugin->desc.flush)
        return PIPIT_ESTATE;
    int r = wire_encode(&wire, &wopts, kind, h->host.agent_id, b.seq, count, now,
                        lines, len);
    if (r != PIPIT_OK)
        return r;
    b.wire = wire.data;
    b.wire_len = wire.len;
    r = h->ins->plugin->desc.flush(h->ins, h->ins->ctx, &b);
    buf_free(&wire);
    return r;
}

void harness_close(struct harness *h)
{
    if (h->ins) {
        instance_fini(h->ins);
        instance_free(h->ins);
        h->ins = NULL;
    }
    if (h->host_open) {
        instance_host_close(&h->host);
        h->host_open = false;
    }
    if (h->loop_open) {
        uv_run(&h->loop, UV_RUN_DEFAULT);   /* finish the closes */
        if (uv_loop_close(&h->loop) != 0)
            log_error("harness", "a loop handle was left open");
        h->loop_open = false;
    }
    if (h->state_dir[0]) {
        nftw(h->state_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        h->state_dir[0] = '\0';
    }
    buf_free(&h->out);
    json_decref(h->results);
    h->results = NULL;
}
