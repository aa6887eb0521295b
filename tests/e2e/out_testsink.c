/* out_testsink: an output for the daemon's tests: delivers to a file, or refuses on demand. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <pipit/plugin.h>

static const struct pipit_api *api;

struct testsink_ctx {
    const char *path;                   /* records are appended here */
    const char *refuse_while;           /* PIPIT_RETRY while this file exists */
    int fd;
};

static const struct pipit_option testsink_options[] = {
    PIPIT_OPT_STRING_REQ("path", struct testsink_ctx, path, "File the records go to"),
    PIPIT_OPT_STRING("refuse_while", NULL, struct testsink_ctx, refuse_while,
                     "Answer PIPIT_RETRY to every batch while this file exists"),
    PIPIT_OPT_END
};

static int testsink_load(const struct pipit_api *host) { api = host; return PIPIT_OK; }

static int testsink_init(pipit_instance *ins, void *data)
{
    struct testsink_ctx *ctx = data;
    ctx->fd = open(ctx->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (ctx->fd < 0) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot open %s: %s", ctx->path, strerror(errno));
        return PIPIT_EIO;
    }
    return PIPIT_OK;
}

static int testsink_flush(pipit_instance *ins, void *data, const struct pipit_batch *b)
{
    struct testsink_ctx *ctx = data;
    char head[128];

    if (ctx->refuse_while && access(ctx->refuse_while, F_OK) == 0)
        return PIPIT_RETRY;
    /* One line per batch first, so tests can check sequence numbers. */
    int n = snprintf(head, sizeof head, "#batch seq=%llu count=%u\n",
                     (unsigned long long)b->seq, b->count);
    if (write(ctx->fd, head, (size_t)n) != n ||
        write(ctx->fd, b->payload, b->payload_len) != (ssize_t)b->payload_len)
        return PIPIT_RETRY;
    return PIPIT_OK;
}

static void testsink_fini(pipit_instance *ins, void *data)
{
    struct testsink_ctx *ctx = data;
    if (ctx->fd >= 0)
        close(ctx->fd);
}

PIPIT_PLUGIN_DEFINE(
    .name = "testsink", .version = "1.0.0", .kinds = PIPIT_OUTPUT,
    .description = "Test output", .ctx_size = sizeof(struct testsink_ctx),
    .options = testsink_options, .load = testsink_load, .init = testsink_init,
    .flush = testsink_flush, .fini = testsink_fini);
