/* act_switch: the switch action: repoint a symlink atomically (blue-green releases), reporting what it pointed to before. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <pipit/plugin.h>
#include "pathbound.h"
#include "syncdir.h"

static const struct pipit_api *api;     /* borrowed from the host */

struct switch_ctx {
    const char *link;                   /* option: the symlink */
    const char *target;                 /* option: "" removes the link */
    bool allow_missing;                 /* option: target need not exist */
    struct pipit_strlist allowed_dirs;  /* option: where link and target may lead */
    struct pathbound_parts at;          /* link, resolved by act when allowed_dirs is set */
};

static const struct pipit_option switch_options[] = {
    PIPIT_OPT_STRING_REQ("link", struct switch_ctx, link,
                         "Path of the symlink to point at target"),
    PIPIT_OPT_STRING_REQ("target", struct switch_ctx, target,
                         "What link should point to (relative to link's directory "
                         "when relative); \"\" removes link"),
    PIPIT_OPT_BOOL("allow_missing", "false", struct switch_ctx, allow_missing,
                   "Point link at a target that does not exist (yet)"),
    PIPIT_OPT_LIST("allowed_dirs", struct switch_ctx, allowed_dirs,
                   "Absolute directories link and target must lead into once .. and "
                   "symlinks are resolved (unset: anywhere the daemon may write)"),
    PIPIT_OPT_END
};

static int switch_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

static int switch_init(pipit_instance *ins, void *data)
{
    struct switch_ctx *ctx = data;
    char why[256];

    if (strlen(ctx->link) >= sizeof ctx->at.path) {
        api->log(ins, PIPIT_LOG_ERROR, "link: %zu bytes, longer than a path may be (%zu)",
                 strlen(ctx->link), sizeof ctx->at.path - 1);
        return PIPIT_ECONFIG;
    }
    if (pathbound_split(ctx->link, &ctx->at) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "link \"%s\": expected the path of a symlink",
                 ctx->link);
        return PIPIT_ECONFIG;
    }
    if (strlen(ctx->target) >= PATH_MAX) {
        api->log(ins, PIPIT_LOG_ERROR, "target: %zu bytes, longer than a path may be (%d)",
                 strlen(ctx->target), PATH_MAX - 1);
        return PIPIT_ECONFIG;
    }
    if (pathbound_check_dirs(&ctx->allowed_dirs, why, sizeof why)) {
        api->log(ins, PIPIT_LOG_ERROR, "%s", why);
        return PIPIT_ECONFIG;
    }
    return PIPIT_OK;
}

/*
 * With allowed_dirs set: link must lead into one of them (its directory's
 * symlinks and .. resolved, the link itself not followed) and so must a
 * target (resolved from the link's real directory, following what exists).
 * From then on the resolved link is what is touched. Returns PIPIT_OK or
 * the refusal (logged).
 */
static int switch_bound(pipit_instance *ins, struct switch_ctx *ctx)
{
    char real[PATH_MAX], why[3 * PATH_MAX];
    int rc;

    if (!ctx->allowed_dirs.count)
        return PIPIT_OK;
    rc = pathbound_check(&ctx->allowed_dirs, "link", ctx->link, NULL, false, real,
                         sizeof real, why, sizeof why);
    if (rc == PIPIT_OK && pathbound_split(real, &ctx->at) != 0) {
        snprintf(why, sizeof why, "link \"%s\" leads to %s: too long", ctx->link, real);
        rc = PIPIT_EINVAL;
    }
    if (rc == PIPIT_OK && *ctx->target)
        rc = pathbound_check(&ctx->allowed_dirs, "target", ctx->target, ctx->at.dir, true,
                             real, sizeof real, why, sizeof why);
    if (rc != PIPIT_OK)
        api->log(ins, PIPIT_LOG_ERROR, "%s", why);
    return rc;
}

/* fsync the directory so that the rename or unlink in it is durable. */
static int switch_sync_dir(pipit_instance *ins, const char *dir)
{
    if (syncdir(dir) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot fsync the directory %s: %s", dir,
                 strerror(errno));
        return PIPIT_EIO;
    }
    return PIPIT_OK;
}

/*
 * Make a new symlink to target under a temporary name next to link and
 * rename(2) it over link, so that link always points at the old target or
 * the new one, never at nothing. Returns PIPIT_OK or an error (logged).
 */
static int switch_flip(pipit_instance *ins, struct switch_ctx *ctx)
{
    char tmp[PATH_MAX + NAME_MAX + 64];
    struct timespec ts;
    int i;

    clock_gettime(CLOCK_REALTIME, &ts);
    for (i = 0; i < 100; i++) {
        if (snprintf(tmp, sizeof tmp, "%s/.%s.switch-%ld-%ld-%d", ctx->at.dir, ctx->at.base,
                     (long)getpid(), (long)ts.tv_nsec, i) >= (int)sizeof tmp)
            return PIPIT_EINVAL;
        if (symlink(ctx->target, tmp) == 0)
            break;
        if (errno != EEXIST) {
            api->log(ins, PIPIT_LOG_ERROR, "cannot create a symlink in %s: %s", ctx->at.dir,
                     strerror(errno));
            return PIPIT_EIO;
        }
    }
    if (i == 100) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot find a free temporary name in %s", ctx->at.dir);
        return PIPIT_EIO;
    }
    if (rename(tmp, ctx->at.path) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot rename %s over %s: %s", tmp, ctx->at.path,
                 strerror(errno));
        unlink(tmp);
        return PIPIT_EIO;
    }
    return switch_sync_dir(ins, ctx->at.dir);
}

/*
 * Point link at target (or remove it for an empty target). The result
 * previous is what link pointed to before ("" when there was no link), so a
 * rollback step switches back to {{steps.NAME.previous}}; changed says
 * whether anything was done.
 */
static int switch_act(pipit_instance *ins, void *data)
{
    struct switch_ctx *ctx = data;
    char previous[PATH_MAX] = "";
    struct stat st;
    int rc;

    if (api->cancelled(ins))
        return PIPIT_ECANCELED;
    if (api->time_left_ms(ins) == 0) {
        api->log(ins, PIPIT_LOG_ERROR, "the step's deadline passed before the switch");
        return PIPIT_ETIMEDOUT;
    }
    if ((rc = switch_bound(ins, ctx)) != PIPIT_OK)
        return rc;
    if (lstat(ctx->at.path, &st) == 0) {
        if (!S_ISLNK(st.st_mode)) {
            api->log(ins, PIPIT_LOG_ERROR, "%s exists and is not a symlink: refusing to "
                     "replace it", ctx->at.path);
            return PIPIT_EINVAL;
        }
        ssize_t n = readlink(ctx->at.path, previous, sizeof previous - 1);
        if (n < 0) {
            api->log(ins, PIPIT_LOG_ERROR, "cannot read the symlink %s: %s", ctx->at.path,
                     strerror(errno));
            return PIPIT_EIO;
        }
        previous[n] = '\0';
    } else if (errno != ENOENT) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot stat %s: %s", ctx->at.path, strerror(errno));
        return PIPIT_EIO;
    }
    api->set_result(ins, "previous", previous);

    if (!*ctx->target) {
        if (!*previous) {
            api->log(ins, PIPIT_LOG_INFO, "%s: no link to remove", ctx->at.path);
            api->set_result(ins, "changed", "false");
            return PIPIT_OK;
        }
        if (unlink(ctx->at.path) != 0) {
            api->log(ins, PIPIT_LOG_ERROR, "cannot remove %s: %s", ctx->at.path,
                     strerror(errno));
            return PIPIT_EIO;
        }
        rc = switch_sync_dir(ins, ctx->at.dir);
        if (rc == PIPIT_OK) {
            api->log(ins, PIPIT_LOG_INFO, "%s removed (it pointed to %s)", ctx->at.path,
                     previous);
            api->set_result(ins, "changed", "true");
        }
        return rc;
    }

    if (!ctx->allow_missing) {
        char resolved[2 * PATH_MAX + 2];

        if (ctx->target[0] == '/')
            snprintf(resolved, sizeof resolved, "%s", ctx->target);
        else
            snprintf(resolved, sizeof resolved, "%s/%s", ctx->at.dir, ctx->target);
        if (stat(resolved, &st) != 0) {
            api->log(ins, PIPIT_LOG_ERROR, "target %s (%s) does not exist: %s (set "
                     "allow_missing: true to point at it anyway)", ctx->target, resolved,
                     strerror(errno));
            return PIPIT_ENOENT;
        }
    }
    if (strcmp(previous, ctx->target) == 0) {
        api->log(ins, PIPIT_LOG_INFO, "%s already points to %s", ctx->link, ctx->target);
        api->set_result(ins, "changed", "false");
        return PIPIT_OK;
    }
    rc = switch_flip(ins, ctx);
    if (rc == PIPIT_OK) {
        api->log(ins, PIPIT_LOG_INFO, "%s -> %s (was %s)", ctx->link, ctx->target,
                 *previous ? previous : "no link");
        api->set_result(ins, "changed", "true");
    }
    return rc;
}

PIPIT_PLUGIN_DEFINE(
    .name = "switch", .version = "1.0.0", .kinds = PIPIT_ACTION,
    .description = "Repoint a symlink atomically (blue-green releases)",
    .ctx_size = sizeof(struct switch_ctx), .options = switch_options,
    .load = switch_load, .init = switch_init, .act = switch_act);
