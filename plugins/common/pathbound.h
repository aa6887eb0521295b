/* pathbound.h: keep the paths an action writes inside the directories of its allowed_dirs option. */
#ifndef PIPIT_PLUGINS_PATHBOUND_H
#define PIPIT_PLUGINS_PATHBOUND_H

#include <pipit/plugin.h>
#include <stdbool.h>
#include <limits.h>
#include <stddef.h>

/* Compiled into each plugin that uses it; never exported from the .so. */
#define PATHBOUND_HIDDEN __attribute__((visibility("hidden")))

/* A path and its two parts. */
struct pathbound_parts {
    char path[PATH_MAX];
    char dir[PATH_MAX];                 /* "." for a bare name, "/" at the root */
    char base[NAME_MAX + 1];            /* the last part */
};

/*
 * Split p (not out->path) into out. Returns 0, or -1 when p does not end
 * in a name (empty, ".", "..", a trailing "/"), is PATH_MAX bytes or more,
 * or its last part leaves no room for a temporary name next to it
 * (longer than NAME_MAX - 16).
 */
PATHBOUND_HIDDEN int pathbound_split(const char *p, struct pathbound_parts *out);

/*
 * The check init() makes on the option itself: every item is an absolute
 * path shorter than PATH_MAX. Returns NULL, or the first problem as
 * "allowed_dirs: ..." in why.
 */
PATHBOUND_HIDDEN const char *pathbound_check_dirs(const struct pipit_strlist *dirs,
                                                  char *why, size_t whylen);

/*
 * Where path leads, as a path without symlinks, "." or "..", into out
 * (outlen at least PATH_MAX). A relative path starts at base (NULL: the
 * working directory). With follow false the last part is kept as it is
 * (it is the entry the action replaces, so a symlink there is not
 * followed) and the directory before it must exist; with follow true the
 * part that exists is resolved with realpath and the rest, which may not
 * hold "..", is appended. Returns 0, or -1 with the reason in why.
 */
PATHBOUND_HIDDEN int pathbound_resolve(const char *path, const char *base, bool follow,
                                       char *out, size_t outlen, char *why, size_t whylen);

/*
 * True when dirs is empty, or when resolved (from pathbound_resolve) is
 * one of dirs or below one of them, each dir taken by its real path (a
 * dir that does not exist holds nothing).
 */
PATHBOUND_HIDDEN bool pathbound_inside(const struct pipit_strlist *dirs, const char *resolved);

/*
 * The whole check of the parameter key: path resolves (see
 * pathbound_resolve) to inside one of dirs. Returns PIPIT_OK with the
 * resolved path in out, PIPIT_EPERM when it leads outside, PIPIT_EINVAL
 * when it cannot be resolved; the reason, naming key, path and where it
 * leads, is in why. With dirs empty nothing is checked and out is path.
 */
PATHBOUND_HIDDEN int pathbound_check(const struct pipit_strlist *dirs, const char *key,
                                     const char *path, const char *base, bool follow,
                                     char *out, size_t outlen, char *why, size_t whylen);

#endif
