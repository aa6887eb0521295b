/* out_file: append each batch's records to a file as JSON lines, following rotation. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pipit/plugin.h>

static const struct pipit_api *api;     /* borrowed from the host */

struct file_ctx {
    const char *path;                   /* option: file to append to */
    bool fsync;                         /* option: fsync after each batch */
    int64_t mode;                       /* option: permissions of a new file */
    int fd;                             /* open file, -1 when closed */
    dev_t dev;                          /* identity of the open file */
    ino_t ino;
};

static const struct pipit_option file_options[] = {
    PIPIT_OPT_STRING_REQ("path", struct file_ctx, path,
                         "File the records are appended to (created if missing)"),
    PIPIT_OPT_BOOL("fsync", "false", struct file_ctx, fsync,
                   "fsync() the file after each batch before reporting it delivered"),
    PIPIT_OPT_INT("mode", "416", 0, 511, struct file_ctx, mode,
                  "Permission bits of a new file, in decimal (416 = 0640)"),
    PIPIT_OPT_END
};

static int file_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

/* Open (or re-open) the path for appending and remember its identity. */
static int file_open(pipit_instance *ins, struct file_ctx *ctx)
{
    struct stat st;
    int fd = open(ctx->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
                  (mode_t)ctx->mode);
    if (fd < 0) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot open %s: %s", ctx->path, strerror(errno));
        return errno == EACCES || errno == EPERM ? PIPIT_EPERM : PIPIT_EIO;
    }
    if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode) ||
                                 S_ISFIFO(st.st_mode))) {
        api->log(ins, PIPIT_LOG_ERROR, "%s is not a file", ctx->path);
        close(fd);
        return PIPIT_EINVAL;
    }
    if (ctx->fd >= 0)
        close(ctx->fd);
    ctx->fd = fd;
    ctx->dev = st.st_dev;
    ctx->ino = st.st_ino;
    return PIPIT_OK;
}

static int file_init(pipit_instance *ins, void *data)
{
    struct file_ctx *ctx = data;
    ctx->fd = -1;
    return file_open(ins, ctx);
}

/* After logrotate moved the file away, the path names another file (or none). */
static bool file_rotated(const struct file_ctx *ctx)
{
    struct stat st;
    if (stat(ctx->path, &st) != 0)
        return true;
    return st.st_dev != ctx->dev || st.st_ino != ctx->ino;
}

/*
 * Append the payload. On a short write the rest is written in the next
 * loop; a failure (disk full, I/O error) asks the host to retry the whole
 * batch later, so records may repeat after an error but are never lost.
 */
static int file_flush(pipit_instance *ins, void *data, const struct pipit_batch *b)
{
    struct file_ctx *ctx = data;
    size_t off = 0;

    if ((ctx->fd < 0 || file_rotated(ctx)) && file_open(ins, ctx) != PIPIT_OK)
        return PIPIT_RETRY;
    while (off < b->payload_len) {
        ssize_t n = write(ctx->fd, b->payload + off, b->payload_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            api->log(ins, PIPIT_LOG_ERROR, "write to %s failed: %s; will retry",
                     ctx->path, n < 0 ? strerror(errno) : "no progress");
            return PIPIT_RETRY;
        }
        off += (size_t)n;
    }
    if (ctx->fsync && fsync(ctx->fd) != 0 && errno != EINVAL) {
        api->log(ins, PIPIT_LOG_ERROR, "fsync of %s failed: %s; will retry",
                 ctx->path, strerror(errno));
        return PIPIT_RETRY;
    }
    return PIPIT_OK;
}

static void file_fini(pipit_instance *ins, void *data)
{
    struct file_ctx *ctx = data;
    if (ctx->fd >= 0)
        close(ctx->fd);
    ctx->fd = -1;
}

PIPIT_PLUGIN_DEFINE(
    .name = "file", .version = "1.0.0", .kinds = PIPIT_OUTPUT,
    .description = "Records as JSON lines appended to a file",
    .ctx_size = sizeof(struct file_ctx), .options = file_options,
    .load = file_load, .init = file_init, .flush = file_flush, .fini = file_fini);
