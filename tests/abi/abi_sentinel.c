/* abi_sentinel: a valid plugin whose constructor creates the file named by $PIPIT_TEST_SENTINEL. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <pipit/plugin.h>

/* Runs at dlopen, before any check the host makes on the descriptor. */
__attribute__((constructor)) static void sentinel_ctor(void)
{
    const char *path = getenv("PIPIT_TEST_SENTINEL");
    int fd;

    if (path == NULL || *path == '\0')
        return;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}

static int sentinel_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_PLUGIN_DEFINE(
    .name = "abi_sentinel", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .collect = sentinel_collect);
