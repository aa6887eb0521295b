/* httpd.h: start and stop tests/http/httpd_fixture from C tests. */
#ifndef PIPIT_TESTS_HTTPD_H
#define PIPIT_TESTS_HTTPD_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct httpd {
    pid_t pid;
    unsigned port;
    char port_file[4096];
    char log[4096];                     /* one line per request */
};

/*
 * Serve root on 127.0.0.1 with the extra arguments in args (NULL-ended, may
 * be NULL; e.g. "--token", "s3cret"). Files go in dir (a temporary
 * directory of the test). Returns 0 once the server listens, -1 otherwise.
 */
static inline int httpd_start(struct httpd *h, const char *root, const char *dir,
                              const char *const *args)
{
    const char *top = getenv("top_builddir");
    char bin[4096];
    const char *argv[32];
    int n = 0;

    memset(h, 0, sizeof *h);
    snprintf(bin, sizeof bin, "%s/tests/http/httpd_fixture", top ? top : ".");
    if (snprintf(h->port_file, sizeof h->port_file, "%s/httpd.port", dir) >=
            (int)sizeof h->port_file ||
        snprintf(h->log, sizeof h->log, "%s/httpd.log", dir) >= (int)sizeof h->log)
        return -1;
    unlink(h->port_file);
    argv[n++] = bin;
    argv[n++] = "--root";
    argv[n++] = root;
    argv[n++] = "--port-file";
    argv[n++] = h->port_file;
    argv[n++] = "--log";
    argv[n++] = h->log;
    for (; args && *args && n < 30; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    h->pid = fork();
    if (h->pid < 0)
        return -1;
    if (h->pid == 0) {
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {     /* 10 s */
        FILE *f = fopen(h->port_file, "r");
        if (f) {
            int ok = fscanf(f, "%u", &h->port) == 1;
            fclose(f);
            if (ok)
                return 0;
        }
        if (waitpid(h->pid, NULL, WNOHANG) == h->pid) {
            h->pid = 0;
            return -1;
        }
        struct timespec ts = { 0, 50000000L };
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Lines in the request log. */
static inline int httpd_requests(const struct httpd *h)
{
    FILE *f = fopen(h->log, "r");
    int n = 0, c;

    if (!f)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static inline void httpd_stop(struct httpd *h)
{
    if (h->pid > 0) {
        kill(h->pid, SIGTERM);
        waitpid(h->pid, NULL, 0);
    }
    h->pid = 0;
}

#endif
