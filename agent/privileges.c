/* privileges.c: run as agent.user once the privileged resources are open. */
#include "privileges.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"

int privileges_lookup(const char *user, uid_t *uid, gid_t *gid, char *why, size_t n)
{
    struct passwd pw, *res = NULL;
    char buf[4096];

    int rc = getpwnam_r(user, &pw, buf, sizeof buf, &res);
    if (rc != 0 || !res) {
        snprintf(why, n, "no such user \"%s\"%s%s", user, rc ? ": " : "",
                 rc ? strerror(rc) : "");
        return PIPIT_ENOENT;
    }
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    return PIPIT_OK;
}

static uid_t owner_uid;
static gid_t owner_gid;
static int chown_failed;

static int chown_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    if (lchown(path, owner_uid, owner_gid) != 0) {
        log_error("privileges", "cannot hand %s to the daemon's user: %s", path,
                  strerror(errno));
        chown_failed = 1;
    }
    return 0;
}

int privileges_drop(const char *user, const char *const *dirs, size_t ndirs)
{
    char why[512];
    uid_t uid;
    gid_t gid;

    if (privileges_lookup(user, &uid, &gid, why, sizeof why) != PIPIT_OK) {
        log_error("privileges", "agent.user: %s", why);
        return PIPIT_ENOENT;
    }
    if (geteuid() != 0) {
        if (geteuid() == uid)
            return PIPIT_OK;
        log_error("privileges", "agent.user is %s (uid %u) but pipitd runs as uid %u, "
                  "not root: it cannot switch users", user, (unsigned)uid,
                  (unsigned)geteuid());
        return PIPIT_EPERM;
    }
    owner_uid = uid;
    owner_gid = gid;
    chown_failed = 0;
    for (size_t i = 0; i < ndirs; i++)
        if (dirs[i] && nftw(dirs[i], chown_entry, 16, FTW_PHYS) != 0 && errno != ENOENT) {
            log_error("privileges", "cannot walk %s: %s", dirs[i], strerror(errno));
            chown_failed = 1;
        }
    if (chown_failed)
        return PIPIT_EIO;
    if (initgroups(user, gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        log_error("privileges", "cannot become %s: %s", user, strerror(errno));
        return PIPIT_EPERM;
    }
    if (setuid(0) == 0 || geteuid() == 0) {
        log_error("privileges", "root could be regained after switching to %s", user);
        return PIPIT_EPERM;
    }
    log_info("privileges", "running as %s (uid %u, gid %u); resources opened at start "
             "stay open", user, (unsigned)uid, (unsigned)gid);
    return PIPIT_OK;
}
