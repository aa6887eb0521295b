/* act_exec: a deployment step that runs one command and keeps what it printed. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <pipit/plugin.h>
#include "subproc.h"

static const struct pipit_api *api;     /* borrowed from the host */

struct act_exec {
    struct pipit_strlist command;       /* option: argv */
    bool shell;                         /* option: command[0] through /bin/sh -c */
    struct pipit_strmap env;            /* option */
    const char *cwd;                    /* option */
    const char *user;                   /* option */
    int64_t max_output;                 /* option: bytes of stdout and of stderr kept */
    struct pipit_strlist ok_exit;       /* option: exit statuses that succeed */
    char **argv, **envp;                /* built by init */
    int ok_codes[32];
    size_t nok;
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    size_t ngroups;
};

static const struct pipit_option act_exec_options[] = {
    { "command", PIPIT_OPT_T_LIST, NULL, offsetof(struct act_exec, command),
      PIPIT_OPT_REQUIRED, 1, 0,
      "Program and arguments, run without a shell (PATH is searched)" },
    PIPIT_OPT_BOOL("shell", "false", struct act_exec, shell,
                   "Run the one item of command with /bin/sh -c"),
    PIPIT_OPT_MAP("env", struct act_exec, env,
                  "Environment variables added to the agent's for the command"),
    PIPIT_OPT_STRING("cwd", NULL, struct act_exec, cwd,
                     "Working directory of the command (default: the agent's)"),
    PIPIT_OPT_STRING("user", NULL, struct act_exec, user,
                     "Run as this user (name or uid) with its groups; needs root"),
    PIPIT_OPT_SIZE("max_output", "64KiB", 1, PIPIT_RESULT_MAX, struct act_exec, max_output,
                   "Bytes of stdout and of stderr kept in the step's results"),
    PIPIT_OPT_LIST_DEF("ok_exit", "[0]", struct act_exec, ok_exit,
                       "Exit statuses that count as success"),
    PIPIT_OPT_END
};

static int act_exec_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

static void act_exec_fini(pipit_instance *ins, void *data)
{
    struct act_exec *x = data;

    subproc_free_vec(x->argv);
    subproc_free_vec(x->envp);
    free(x->groups);
}

static int act_exec_init(pipit_instance *ins, void *data)
{
    struct act_exec *x = data;
    size_t n = x->command.count;
    char why[256];

    if (n == 0 || !*x->command.items[0]) {
        api->log(ins, PIPIT_LOG_ERROR, "command is empty");
        return PIPIT_ECONFIG;
    }
    if (x->shell && n != 1) {
        api->log(ins, PIPIT_LOG_ERROR, "shell: true takes command as one string, "
                 "got %zu items", n);
        return PIPIT_ECONFIG;
    }
    if (x->ok_exit.count == 0 || x->ok_exit.count > 32) {
        api->log(ins, PIPIT_LOG_ERROR, "ok_exit wants 1 to 32 exit statuses");
        return PIPIT_ECONFIG;
    }
    for (size_t i = 0; i < x->ok_exit.count; i++) {
        char *end;
        long v = strtol(x->ok_exit.items[i], &end, 10);
        if (!*x->ok_exit.items[i] || *end || v < 0 || v > 255) {
            api->log(ins, PIPIT_LOG_ERROR, "ok_exit: \"%s\" is not an exit status (0 to 255)",
                     x->ok_exit.items[i]);
            return PIPIT_ECONFIG;
        }
        x->ok_codes[x->nok++] = (int)v;
    }
    for (size_t i = 0; i < x->env.count; i++)
        if (!*x->env.keys[i] || strchr(x->env.keys[i], '=')) {
            api->log(ins, PIPIT_LOG_ERROR, "env key \"%s\" is not a variable name",
                     x->env.keys[i]);
            return PIPIT_ECONFIG;
        }
    if (x->user && *x->user &&
        subproc_lookup_user(x->user, &x->uid, &x->gid, &x->groups, &x->ngroups, why,
                            sizeof why) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "%s", why);
        return PIPIT_ECONFIG;
    }
    x->argv = calloc((x->shell ? 3 : n) + 1, sizeof *x->argv);
    if (!x->argv)
        goto nomem;
    if (x->shell) {
        if (!(x->argv[0] = strdup("/bin/sh")) || !(x->argv[1] = strdup("-c")) ||
            !(x->argv[2] = strdup(x->command.items[0])))
            goto nomem;
    } else {
        for (size_t i = 0; i < n; i++)
            if (!(x->argv[i] = strdup(x->command.items[i])))
                goto nomem;
    }
    if (!(x->envp = subproc_build_env(x->env.keys, x->env.values, x->env.count)))
        goto nomem;
    return PIPIT_OK;
nomem:
    act_exec_fini(ins, x);
    return PIPIT_ENOMEM;
}

static bool act_exec_cancelled(void *arg)
{
    return api->cancelled(arg);
}

static int act_exec_act(pipit_instance *ins, void *data)
{
    struct act_exec *x = data;
    int64_t left = api->time_left_ms(ins);
    struct subproc_cmd cmd = {
        .argv = x->argv, .envp = x->envp, .cwd = x->cwd && *x->cwd ? x->cwd : NULL,
        .as_user = x->user && *x->user, .uid = x->uid, .gid = x->gid,
        .groups = x->groups, .ngroups = x->ngroups,
        .max_out = (size_t)x->max_output, .max_err = (size_t)x->max_output,
        .timeout_ms = left < 0 ? 0 : left > 0 ? left : 1,
        .cancelled = act_exec_cancelled, .arg = ins,
    };
    struct subproc_result r;
    char how[128], num[32];
    int rc = PIPIT_EIO;

    if (subproc_run(&cmd, &r) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "%s", r.why);
        api->set_result(ins, "error", r.why);
        return PIPIT_EIO;
    }
    api->set_result(ins, "stdout", r.out);
    api->set_result(ins, "stderr", r.err);
    snprintf(num, sizeof num, "%lld", (long long)r.duration_ms);
    api->set_result(ins, "duration_ms", num);
    if (r.out_cut || r.err_cut)
        api->log(ins, PIPIT_LOG_WARN, "output longer than max_output (%lld bytes) was cut",
                 (long long)x->max_output);
    if (WIFEXITED(r.status) && !r.timed_out && !r.cancelled) {
        snprintf(num, sizeof num, "%d", WEXITSTATUS(r.status));
        api->set_result(ins, "exit_code", num);
        for (size_t i = 0; i < x->nok; i++)
            if (WEXITSTATUS(r.status) == x->ok_codes[i])
                rc = PIPIT_OK;
    }
    if (rc != PIPIT_OK) {
        subproc_describe(&r, how, sizeof how);
        api->set_result(ins, "error", how);
        api->log(ins, PIPIT_LOG_ERROR, "%s %s%s%.200s", x->argv[x->shell ? 2 : 0], how,
                 r.errlen ? ": " : "", r.err);
        rc = r.timed_out ? PIPIT_ETIMEDOUT : r.cancelled ? PIPIT_ECANCELED : PIPIT_EIO;
    }
    subproc_result_free(&r);
    return rc;
}

PIPIT_PLUGIN_DEFINE(
    .name = "exec", .version = "1.0.0", .kinds = PIPIT_ACTION,
    .description = "Run one command as a step; its exit status decides, its output is kept",
    .ctx_size = sizeof(struct act_exec), .options = act_exec_options,
    .load = act_exec_load, .init = act_exec_init, .act = act_exec_act,
    .fini = act_exec_fini);
