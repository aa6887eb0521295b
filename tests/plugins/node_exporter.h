/* node_exporter.h: find and start Debian's prometheus-node-exporter on loopback, for the tests that read its real output. */
#ifndef PIPIT_TESTS_NODE_EXPORTER_H
#define PIPIT_TESTS_NODE_EXPORTER_H

#include <fcntl.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

/* The installed node_exporter, or NULL (the tests using it then skip). */
static inline const char *node_exporter_path(void)
{
    static const char *const bin[] = {
        "/usr/bin/prometheus-node-exporter", "/usr/bin/node_exporter"
    };

    for (size_t i = 0; i < sizeof bin / sizeof *bin; i++)
        if (access(bin[i], X_OK) == 0)
            return bin[i];
    return NULL;
}

/* Start exe listening on 127.0.0.1:port, its output thrown away. Returns
 * its pid (stop it with SIGTERM and waitpid), or -1. */
static inline pid_t node_exporter_start(const char *exe, unsigned port)
{
    char addr[64];
    pid_t pid;

    snprintf(addr, sizeof addr, "--web.listen-address=127.0.0.1:%u", port);
    pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl(exe, exe, addr, (char *)NULL);
        _exit(127);
    }
    return pid;
}

#endif
