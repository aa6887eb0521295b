/* plugin_host.c: pipitd --plugin-host: one isolated input in its own process, driven by frames on a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <jansson.h>
#include "command_key.h"
#include "errors.h"
#include "instance.h"
#include "loader.h"
#include "log.h"
#include "plugin_host.h"
#include "plugin_proto.h"
#include "settings.h"

#define INIT_MAX (1u << 20)             /* bound on the INIT frame */

static int frames_out = -1;             /* the pipe to pipitd */
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return PIPIT_EIO;
        c += w;
        n -= (size_t)w;
    }
    return PIPIT_OK;
}

/* Send one frame: head (hlen bytes) and body make the payload. A broken
 * pipe means pipitd is gone: exit. */
static void send2(int type, const void *head, size_t hlen, const void *body, size_t blen)
{
    unsigned char h[PROTO_HEADER];
    proto_put_u32(h, (uint32_t)(hlen + blen));
    h[4] = (unsigned char)type;
    pthread_mutex_lock(&out_mu);
    if (write_all(frames_out, h, sizeof h) != PIPIT_OK ||
        (hlen && write_all(frames_out, head, hlen) != PIPIT_OK) ||
        (blen && write_all(frames_out, body, blen) != PIPIT_OK))
        _exit(3);
    pthread_mutex_unlock(&out_mu);
}

static void send_status(int type, int32_t status, uint32_t extra, const char *msg)
{
    unsigned char p[8];
    proto_put_u32(p, (uint32_t)status);
    proto_put_u32(p + 4, extra);
    if (type == PROTO_ERROR)
        send2(type, p, 4, msg, strlen(msg));
    else
        send2(type, p, 8, NULL, 0);
}

static void log_to_pipe(int level, const char *msg, size_t len)
{
    unsigned char l = (unsigned char)level;
    send2(PROTO_LOG, &l, 1, msg, len > PROTO_MAX_LOG ? PROTO_MAX_LOG : len);
}

static int host_deliver(struct instance_host *h, struct pipit_instance *ins, int kind,
                        const char *lines, size_t len, uint32_t count)
{
    unsigned char k = (unsigned char)kind;
    send2(PROTO_RECORDS, &k, 1, lines, len);
    return PIPIT_OK;
}

static int read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 && c == p ? PIPIT_ENOENT : PIPIT_EIO;
        c += r;
        n -= (size_t)r;
    }
    return PIPIT_OK;
}

/* Read one frame from pipitd into *payload (free it). Returns its type, 0
 * at the end of input, or a negative error. */
static int read_frame(int fd, char **payload, size_t *len)
{
    unsigned char h[PROTO_HEADER];
    int r = read_all(fd, h, sizeof h);
    if (r != PIPIT_OK)
        return r == PIPIT_ENOENT ? 0 : r;
    *len = proto_get_u32(h);
    if (*len > INIT_MAX)
        return PIPIT_EPARSE;
    *payload = malloc(*len + 1);
    if (!*payload)
        return PIPIT_ENOMEM;
    if (read_all(fd, *payload, *len) != PIPIT_OK) {
        free(*payload);
        return PIPIT_EIO;
    }
    (*payload)[*len] = '\0';
    return h[4];
}

/* Frames get fds of their own; 0 and 1 become /dev/null and stderr, so
 * that a plugin's printf cannot corrupt them. Any other descriptor that
 * came through exec is closed: the plugin gets none of pipitd's. */
static int take_fds(int *in)
{
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    *in = fcntl(0, F_DUPFD_CLOEXEC, 3);
    frames_out = fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (devnull < 0 || *in < 0 || frames_out < 0 || dup2(devnull, 0) < 0 || dup2(2, 1) < 0)
        return PIPIT_EIO;
    close(devnull);
    int lo = *in < frames_out ? *in : frames_out, hi = *in ^ frames_out ^ lo;
    if (lo > 3)
        close_range(3, (unsigned)lo - 1, 0);
    if (hi > lo + 1)
        close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
    close_range((unsigned)hi + 1, ~0u, 0);
    return PIPIT_OK;
}

/* Apply INIT's policy: memory limit, signatures. Error text in why. */
static int apply_policy(json_t *init, char *why, size_t n)
{
    json_int_t mem = json_integer_value(json_object_get(init, "memory_limit"));
    if (mem > 0) {
        struct rlimit rl = { .rlim_cur = (rlim_t)mem, .rlim_max = (rlim_t)mem };
        if (setrlimit(RLIMIT_AS, &rl) != 0) {
            snprintf(why, n, "cannot set memory_limit: %s", strerror(errno));
            return PIPIT_EIO;
        }
    }
    if (!json_is_true(json_object_get(init, "require_signature")))
        return PIPIT_OK;
    struct command_keyring ring = COMMAND_KEYRING_INIT;
    json_t *keys = json_object_get(init, "trusted_keys");
    size_t i;
    json_t *k;
    int r = PIPIT_OK;
    json_array_foreach(keys, i, k) {
        if (r == PIPIT_OK && command_keyring_add_file(&ring, json_string_value(k)
                                                      ? json_string_value(k) : "",
                                                      why, n) != PIPIT_OK)
            r = PIPIT_EPERM;
    }
    if (r == PIPIT_OK && loader_set_signature_policy(&ring) != PIPIT_OK) {
        snprintf(why, n, "out of memory");
        r = PIPIT_ENOMEM;
    }
    command_keyring_free(&ring);
    return r;
}

static const char *str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

int plugin_host_main(void)
{
    struct instance_host h = { 0 };
    struct pipit_instance *ins = NULL;
    struct cfg_doc *doc = NULL;
    json_t *init = NULL;
    struct diag d;
    char why[1024], *payload = NULL;
    size_t len;
    int in, status = 1, r;

    diag_init(&d);
    prctl(PR_SET_PDEATHSIG, SIGKILL);   /* pipitd gone: so are we */
    signal(SIGPIPE, SIG_IGN);
    if (take_fds(&in) != PIPIT_OK) {
        fprintf(stderr, "pipitd --plugin-host: run by pipitd only, with pipes on fds 0 "
                "and 1\n");
        return 2;
    }
    if (read_frame(in, &payload, &len) != PROTO_INIT ||
        !(init = json_loadb(payload, len, 0, NULL)) || !json_is_object(init)) {
        fprintf(stderr, "pipitd --plugin-host: the first frame is not a valid INIT\n");
        goto out;
    }
    free(payload);
    payload = NULL;
    log_setup(stderr, (enum log_format)log_format_parse(str_of(init, "log_format")),
              log_level_parse(str_of(init, "log_level")));
    log_set_sink(log_to_pipe);

    if (apply_policy(init, why, sizeof why) != PIPIT_OK) {
        send_status(PROTO_ERROR, PIPIT_EPERM, 0, why);
        goto out;
    }
    const struct loader_plugin *lp = loader_open(str_of(init, "plugin"), instance_api(),
                                                 why, sizeof why);
    if (!lp) {
        send_status(PROTO_ERROR, PIPIT_EPERM, 0, why);
        goto out;
    }
    const char *opts = str_of(init, "options");
    doc = cfg_load_string(opts, strlen(opts), "(options from pipitd)", &d);
    h.host_name = str_of(init, "host");
    h.agent_id = str_of(init, "agent_id");
    h.state_dir = json_string_value(json_object_get(init, "state_dir"));
    h.max_collect_bytes = (size_t)json_integer_value(json_object_get(init, "max_emit_bytes"));
    h.deliver = host_deliver;
    if (instance_host_open(&h) != PIPIT_OK || !doc) {
        send_status(PROTO_ERROR, PIPIT_ENOMEM, 0, "cannot read the options");
        goto out;
    }
    ins = instance_create(&h, lp, PIPIT_COLLECTOR, str_of(init, "name"), doc->root,
                          settings_input_keys, "(options from pipitd)", "input", &d);
    if (!ins) {
        send_status(PROTO_ERROR, PIPIT_ECONFIG, 0, d.count ? d.items[0].msg : "options refused");
        goto close;
    }
    if ((r = instance_init(ins)) != PIPIT_OK) {
        send_status(PROTO_ERROR, r, 0, "init() failed");
        goto close;
    }
    send2(PROTO_READY, NULL, 0, NULL, 0);
    for (;;) {
        int type = read_frame(in, &payload, &len);
        if (type == 0)
            break;                      /* pipitd closed our input: stop */
        free(payload);
        payload = NULL;
        if (type != PROTO_COLLECT) {
            fprintf(stderr, "pipitd --plugin-host: unexpected frame %d\n", type);
            goto close;
        }
        r = instance_run(ins);
        uint32_t capped = instance_handoff(ins);
        send_status(PROTO_DONE, r, capped, NULL);
    }
    status = 0;
close:
    if (ins) {
        instance_fini(ins);
        instance_free(ins);
    }
    instance_host_close(&h);
out:
    free(payload);
    cfg_free(doc);
    json_decref(init);
    diag_free(&d);
    return status;
}
