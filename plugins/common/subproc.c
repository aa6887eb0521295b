/* subproc.c: run a command with a deadline and bounded output, optionally as another user. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "subproc.h"

#define SUBPROC_KILL_GRACE_MS 1000        /* between SIGTERM and SIGKILL */
#define SUBPROC_POLL_MS 50                /* how often cancelled() is asked */

extern char **environ;

static int64_t subproc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void subproc_free_vec(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

char **subproc_build_env(const char *const *keys, const char *const *values, size_t n)
{
    size_t have = 0, k = 0;
    char **out;

    while (environ && environ[have])
        have++;
    out = calloc(have + n + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < have; i++) {
        bool over = false;
        for (size_t j = 0; j < n && !over; j++) {
            size_t kl = strlen(keys[j]);
            over = strncmp(environ[i], keys[j], kl) == 0 && environ[i][kl] == '=';
        }
        if (!over && !(out[k++] = strdup(environ[i])))
            goto fail;
    }
    for (size_t j = 0; j < n; j++)
        if (asprintf(&out[k++], "%s=%s", keys[j], values[j]) < 0) {
            out[k - 1] = NULL;
            goto fail;
        }
    return out;
fail:
    subproc_free_vec(out);
    return NULL;
}

int subproc_lookup_user(const char *user, uid_t *uid, gid_t *gid, gid_t **groups,
                      size_t *ngroups, char *why, size_t whylen)
{
    char buf[16384], *end;
    struct passwd pw, *res = NULL;
    int err, n = 32;

    *groups = NULL;
    *ngroups = 0;
    errno = 0;
    unsigned long num = strtoul(user, &end, 10);
    if (*user && !*end)
        err = getpwuid_r((uid_t)num, &pw, buf, sizeof buf, &res);
    else
        err = getpwnam_r(user, &pw, buf, sizeof buf, &res);
    if (!res) {
        snprintf(why, whylen, "user \"%s\": %s", user,
                 err ? strerror(err) : "no such user");
        return -1;
    }
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    for (;;) {
        gid_t *g = malloc((size_t)n * sizeof *g);
        int want = n;
        if (!g) {
            snprintf(why, whylen, "user \"%s\": out of memory", user);
            return -1;
        }
        if (getgrouplist(pw.pw_name, pw.pw_gid, g, &want) >= 0) {
            *groups = g;
            *ngroups = (size_t)want;
            return 0;
        }
        free(g);
        if (want <= n || want > 65536) {
            snprintf(why, whylen, "user \"%s\": cannot list its groups", user);
            return -1;
        }
        n = want;
    }
}

/* argv0 as the path to execute: itself when it has a '/', else the first
 * executable regular file of that name in PATH (of envp, else ours). */
static int subproc_find(const char *argv0, char *const *envp, char *path, size_t len)
{
    const char *p = NULL;

    if (strchr(argv0, '/')) {
        if (snprintf(path, len, "%s", argv0) >= (int)len)
            return ENAMETOOLONG;
        return 0;
    }
    for (char *const *e = envp ? envp : environ; e && *e && !p; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            p = *e + 5;
    if (!p)
        p = "/usr/local/bin:/usr/bin:/bin";
    while (*p) {
        const char *colon = strchr(p, ':');
        size_t dl = colon ? (size_t)(colon - p) : strlen(p);
        struct stat st;
        if (snprintf(path, len, "%.*s/%s", (int)dl, dl ? p : ".", argv0) < (int)len &&
            stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0)
            return 0;
        p += dl + (colon ? 1 : 0);
    }
    return ENOENT;
}

/* Read what is ready on fd into buf (up to cap bytes kept; the rest is read
 * and dropped). Returns false at end of file or on a read error. */
static bool subproc_drain(int fd, char *buf, size_t *len, size_t cap, bool *cut)
{
    char junk[4096];

    for (;;) {
        ssize_t r;
        if (*len < cap)
            r = read(fd, buf + *len, cap - *len);
        else
            r = read(fd, junk, sizeof junk);
        if (r > 0) {
            if (*len < cap)
                *len += (size_t)r;
            else
                *cut = true;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 && errno == EAGAIN;
    }
}

/* Wait for pid until deadline (monotonic ms); true when it was reaped. */
static bool subproc_reap(pid_t pid, int64_t deadline, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return true;
        if (subproc_now_ms() >= deadline)
            return false;
        struct timespec ts = { 0, 5 * 1000000 };
        nanosleep(&ts, NULL);
    }
}

/* The child between fork and exec: only async-signal-safe calls. Reports
 * the errno of what failed on fd errfd (close-on-exec) and exits 127. */
static void subproc_child(const struct subproc_cmd *c, const char *path, int out, int err,
                        int errfd)
{
    struct sigaction dfl;
    sigset_t none;
    int e, step = 0, devnull;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        goto fail;
    step = 1;
    if (c->as_user && (setgroups(c->ngroups, c->groups) != 0 || setgid(c->gid) != 0 ||
                       setuid(c->uid) != 0))
        goto fail;
    step = 2;
    if (c->cwd && chdir(c->cwd) != 0)
        goto fail;
    step = 3;
    execve(path, c->argv, c->envp ? c->envp : environ);
fail:
    e = errno;
    {
        int msg[2] = { step, e };
        ssize_t w = write(errfd, msg, sizeof msg);
        (void)w;
    }
    _exit(127);
}

int subproc_run(const struct subproc_cmd *c, struct subproc_result *r)
{
    static const char *const steps[] = { "cannot set up stdio", "cannot switch user",
                                         "cannot change directory", "cannot execute" };
    int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, pr[2] = { -1, -1 }, rc = -1, msg[2];
    char path[PATH_MAX];
    bool oopen = true, eopen = true;
    int64_t t0 = subproc_now_ms(), deadline = c->timeout_ms > 0 ? t0 + c->timeout_ms : INT64_MAX;
    pid_t pid;

    memset(r, 0, sizeof *r);
    if (!c->argv || !c->argv[0] || !*c->argv[0]) {
        snprintf(r->why, sizeof r->why, "the command is empty");
        return -1;
    }
    if ((errno = subproc_find(c->argv[0], c->envp, path, sizeof path)) != 0) {
        snprintf(r->why, sizeof r->why, "cannot run %s: %s", c->argv[0], strerror(errno));
        return -1;
    }
    if (!(r->out = malloc(c->max_out + 1)) || !(r->err = malloc(c->max_err + 1))) {
        snprintf(r->why, sizeof r->why, "out of memory");
        goto out;
    }
    if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0 || pipe2(pr, O_CLOEXEC) != 0) {
        snprintf(r->why, sizeof r->why, "pipe: %s", strerror(errno));
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(r->why, sizeof r->why, "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        subproc_child(c, path, po[1], pe[1], pr[1]);
    close(po[1]);
    close(pe[1]);
    close(pr[1]);
    po[1] = pe[1] = pr[1] = -1;
    ssize_t n;
    while ((n = read(pr[0], msg, sizeof msg)) < 0 && errno == EINTR)
        ;
    if (n == (ssize_t)sizeof msg) {         /* the child did not reach exec */
        subproc_reap(pid, INT64_MAX, &r->status);
        snprintf(r->why, sizeof r->why, "%s %s: %s", steps[msg[0] & 3],
                 msg[0] == 2 ? c->cwd : c->argv[0], strerror(msg[1]));
        goto out;
    }
    fcntl(po[0], F_SETFL, O_NONBLOCK);
    fcntl(pe[0], F_SETFL, O_NONBLOCK);
    while (oopen || eopen) {
        struct pollfd fds[2] = { { oopen ? po[0] : -1, POLLIN, 0 },
                                 { eopen ? pe[0] : -1, POLLIN, 0 } };
        int64_t left = deadline - subproc_now_ms();
        if (left <= 0) {
            r->timed_out = true;
            break;
        }
        if (c->cancelled && c->cancelled(c->arg)) {
            r->cancelled = true;
            break;
        }
        if (poll(fds, 2, (int)(left < SUBPROC_POLL_MS ? left : SUBPROC_POLL_MS)) < 0 &&
            errno != EINTR)
            break;
        if (oopen && fds[0].revents)
            oopen = subproc_drain(po[0], r->out, &r->outlen, c->max_out, &r->out_cut);
        if (eopen && fds[1].revents)
            eopen = subproc_drain(pe[0], r->err, &r->errlen, c->max_err, &r->err_cut);
    }
    while (!r->timed_out && !r->cancelled && !subproc_reap(pid, subproc_now_ms() + SUBPROC_POLL_MS,
                                                         &r->status)) {
        if (subproc_now_ms() >= deadline)
            r->timed_out = true;
        else if (c->cancelled && c->cancelled(c->arg))
            r->cancelled = true;
    }
    if (r->timed_out || r->cancelled) {
        kill(-pid, SIGTERM);
        if (!subproc_reap(pid, subproc_now_ms() + SUBPROC_KILL_GRACE_MS, &r->status)) {
            kill(-pid, SIGKILL);
            subproc_reap(pid, INT64_MAX, &r->status);
        }
    }
    kill(-pid, SIGKILL);                /* what it left behind in its group */
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
        if (pr[i] >= 0)
            close(pr[i]);
    }
    if (r->out)
        r->out[r->outlen] = '\0';
    if (r->err)
        r->err[r->errlen] = '\0';
    r->duration_ms = subproc_now_ms() - t0;
    if (rc != 0) {
        subproc_result_free(r);
        r->outlen = r->errlen = 0;
    }
    return rc;
}

void subproc_result_free(struct subproc_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

const char *subproc_describe(const struct subproc_result *r, char *buf, size_t len)
{
    if (r->timed_out)
        snprintf(buf, len, "killed after the timeout (%lld ms)", (long long)r->duration_ms);
    else if (r->cancelled)
        snprintf(buf, len, "stopped: the run is being cancelled");
    else if (WIFEXITED(r->status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(r->status));
    else if (WIFSIGNALED(r->status))
        snprintf(buf, len, "ended by signal %d", WTERMSIG(r->status));
    else
        snprintf(buf, len, "ended with wait status %d", r->status);
    return buf;
}
