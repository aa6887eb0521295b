/* subproc.h: run a command with a deadline and bounded output (the exec input and the exec and wait_healthy actions). */
#ifndef PIPIT_SUBPROC_H
#define PIPIT_SUBPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What to run. argv and envp are NULL-terminated; argv[0] is searched in
 * PATH when it has no '/'. */
struct subproc_cmd {
    char *const *argv;
    char *const *envp;                  /* NULL: the agent's environment */
    const char *cwd;                    /* NULL: the agent's */
    bool as_user;                       /* switch to uid/gid/groups below */
    uid_t uid;
    gid_t gid;
    const gid_t *groups;                /* supplementary groups */
    size_t ngroups;
    size_t max_out, max_err;            /* bytes of stdout/stderr kept */
    int64_t timeout_ms;                 /* <= 0: no deadline */
    /* Polled every 50 ms while the command runs; true ends it as on timeout. */
    bool (*cancelled)(void *arg);
    void *arg;
};

/* What one run produced. out and err are NUL-terminated, malloc'd. */
struct subproc_result {
    char *out, *err;
    size_t outlen, errlen;
    bool out_cut, err_cut;              /* more was printed than kept */
    bool timed_out, cancelled;
    int status;                         /* waitpid status */
    int64_t duration_ms;
    char why[256];                      /* why it could not start */
};

/*
 * Run the command in a process group of its own, stdin from /dev/null,
 * stdout and stderr on pipes read (bounded) until they close, then reap
 * it. Past the timeout, or once cancelled, the group gets SIGTERM, then
 * SIGKILL after a second; what is left in the group is killed at the end.
 * Returns 0 with r filled (free with subproc_result_free), or -1 when it
 * could not start, with the reason in r->why.
 */
int subproc_run(const struct subproc_cmd *c, struct subproc_result *r);
void subproc_result_free(struct subproc_result *r);

/* One line describing how the command ended ("exited with status 3",
 * "killed after the timeout", "ended by signal 9") into buf. */
const char *subproc_describe(const struct subproc_result *r, char *buf, size_t len);

/* The agent's environment with every key of keys/values (n pairs) added or
 * replaced; NULL-terminated, free with subproc_free_vec. NULL: no memory. */
char **subproc_build_env(const char *const *keys, const char *const *values, size_t n);
void subproc_free_vec(char **v);

/* Look a user up by name or number: uid, primary gid and the groups it is
 * in. Returns 0, or -1 with a reason in why. *groups is malloc'd. */
int subproc_lookup_user(const char *user, uid_t *uid, gid_t *gid, gid_t **groups,
                      size_t *ngroups, char *why, size_t whylen);

#endif
