/* privileges.h: run as agent.user once the privileged resources are open. */
#ifndef PIPIT_PRIVILEGES_H
#define PIPIT_PRIVILEGES_H

#include <stddef.h>
#include <sys/types.h>

/* The uid and primary gid of user. PIPIT_OK, or PIPIT_ENOENT with why. */
int privileges_lookup(const char *user, uid_t *uid, gid_t *gid, char *why, size_t n);

/*
 * Become user for good: the directories in dirs (the state and spool
 * directories, made as root) are handed to user first, then the groups,
 * gid and uid are set, and getting root back is checked to fail. When the
 * process is not root, it must already be user. PIPIT_OK, or an error that
 * was logged.
 */
int privileges_drop(const char *user, const char *const *dirs, size_t ndirs);

#endif
