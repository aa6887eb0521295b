/* out_stdout: write each batch's records to standard output as JSON lines. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <pipit/plugin.h>

static const struct pipit_api *api;     /* borrowed from the host */

static int stdout_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

/*
 * Write the payload whole. A full pipe is waited out by write() itself
 * (stdout is blocking); a closed or failing stdout cannot take the batch
 * now, so it is retried later rather than reported as delivered.
 */
static int stdout_flush(pipit_instance *ins, void *data, const struct pipit_batch *b)
{
    size_t off = 0;

    while (off < b->payload_len) {
        ssize_t n = write(STDOUT_FILENO, b->payload + off, b->payload_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            api->log(ins, PIPIT_LOG_ERROR, "write to stdout failed: %s",
                     n < 0 ? strerror(errno) : "no progress");
            return PIPIT_RETRY;
        }
        off += (size_t)n;
    }
    return PIPIT_OK;
}

PIPIT_PLUGIN_DEFINE(
    .name = "stdout", .version = "1.0.0", .kinds = PIPIT_OUTPUT,
    .description = "Records as JSON lines on standard output",
    .ctx_size = 0, .options = NULL,
    .load = stdout_load, .flush = stdout_flush);
