/* pathbound.c: keep the paths an action writes inside the directories of its allowed_dirs option (see pathbound.h). */
#define _GNU_SOURCE
#include "pathbound.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pathbound_split(const char *p, struct pathbound_parts *out)
{
    const char *slash = strrchr(p, '/'), *base = slash ? slash + 1 : p;

    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
        strlen(base) > NAME_MAX - 16 || strlen(p) >= sizeof out->path)
        return -1;
    snprintf(out->path, sizeof out->path, "%s", p);
    snprintf(out->base, sizeof out->base, "%s", base);
    if (!slash)
        snprintf(out->dir, sizeof out->dir, ".");
    else if (slash == p)
        snprintf(out->dir, sizeof out->dir, "/");
    else
        snprintf(out->dir, sizeof out->dir, "%.*s", (int)(slash - p), p);
    return 0;
}

const char *pathbound_check_dirs(const struct pipit_strlist *dirs, char *why, size_t whylen)
{
    for (size_t i = 0; dirs && i < dirs->count; i++) {
        const char *d = dirs->items[i];

        if (d[0] != '/' || strlen(d) >= PATH_MAX) {
            snprintf(why, whylen, "allowed_dirs: item %zu: expected an absolute path "
                     "shorter than %d bytes", i + 1, PATH_MAX);
            return why;
        }
    }
    return NULL;
}

/* Append to out (holding len bytes) "/" and the n bytes at p; false when
 * it does not fit in outlen. */
static bool pathbound_join(char *out, size_t *len, size_t outlen, const char *p, size_t n)
{
    if (*len == 1 && out[0] == '/')
        *len = 0;                       /* the root: no second slash */
    if (*len + 1 + n + 1 > outlen)
        return false;
    out[(*len)++] = '/';
    memcpy(out + *len, p, n);
    *len += n;
    out[*len] = '\0';
    return true;
}

/*
 * Put at out the real path of the longest leading part of full that
 * exists, followed by the rest of full without empty and "." parts; a ".."
 * in that rest is refused, since nothing resolves it yet.
 */
static int pathbound_resolve_existing(const char *full, char *out, size_t outlen, char *why,
                                      size_t whylen)
{
    char prefix[PATH_MAX], real[PATH_MAX];
    size_t cut = strlen(full);

    for (;;) {
        while (cut > 0 && full[cut - 1] != '/')
            cut--;
        size_t plen = cut;
        while (plen > 1 && full[plen - 1] == '/')
            plen--;
        if (plen == 0)
            snprintf(prefix, sizeof prefix, ".");
        else
            snprintf(prefix, sizeof prefix, "%.*s", (int)plen, full);
        if (realpath(prefix, real))
            break;
        if (errno != ENOENT || cut == 0) {
            snprintf(why, whylen, "cannot resolve %s: %s", prefix, strerror(errno));
            return -1;
        }
        cut--;
    }
    size_t len = strlen(real);
    if (len >= outlen)
        goto toolong;
    memcpy(out, real, len + 1);
    for (const char *p = full + cut; *p;) {
        size_t n = strcspn(p, "/");

        if (n == 2 && p[0] == '.' && p[1] == '.') {
            snprintf(why, whylen, "\"..\" after a part that does not exist (below %s)",
                     prefix);
            return -1;
        }
        if (n && !(n == 1 && p[0] == '.') && !pathbound_join(out, &len, outlen, p, n))
            goto toolong;
        p += n;
        p += *p == '/';
    }
    return 0;
toolong:
    snprintf(why, whylen, "it resolves to a path longer than %zu bytes", outlen - 1);
    return -1;
}

int pathbound_resolve(const char *path, const char *base, bool follow, char *out,
                      size_t outlen, char *why, size_t whylen)
{
    char full[2 * PATH_MAX + 2], real[PATH_MAX];

    if (strlen(path) >= PATH_MAX || (base && strlen(base) >= PATH_MAX)) {
        snprintf(why, whylen, "longer than %d bytes", PATH_MAX - 1);
        return -1;
    }
    if (path[0] != '/' && base)
        snprintf(full, sizeof full, "%s/%s", base, path);
    else
        snprintf(full, sizeof full, "%s", path);
    if (follow) {
        if (realpath(full, real)) {
            if (strlen(real) >= outlen) {
                snprintf(why, whylen, "it resolves to a path longer than %zu bytes",
                         outlen - 1);
                return -1;
            }
            memcpy(out, real, strlen(real) + 1);
            return 0;
        }
        if (errno != ENOENT) {
            snprintf(why, whylen, "cannot resolve it: %s", strerror(errno));
            return -1;
        }
        return pathbound_resolve_existing(full, out, outlen, why, whylen);
    }

    const char *slash = strrchr(full, '/'), *last = slash ? slash + 1 : full;
    if (!*last || strcmp(last, ".") == 0 || strcmp(last, "..") == 0) {
        snprintf(why, whylen, "it does not end in the name of an entry");
        return -1;
    }
    char dir[PATH_MAX + 1];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == full)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - full), full);
    if (!realpath(dir, real)) {
        snprintf(why, whylen, "its directory %s: %s", dir, strerror(errno));
        return -1;
    }
    size_t len = strlen(real);
    if (len < outlen) {
        memcpy(out, real, len + 1);
        if (pathbound_join(out, &len, outlen, last, strlen(last)))
            return 0;
    }
    snprintf(why, whylen, "it resolves to a path longer than %zu bytes", outlen - 1);
    return -1;
}

bool pathbound_inside(const struct pipit_strlist *dirs, const char *resolved)
{
    char real[PATH_MAX];

    if (!dirs || dirs->count == 0)
        return true;
    for (size_t i = 0; i < dirs->count; i++) {
        if (!realpath(dirs->items[i], real))
            continue;
        size_t n = strlen(real);
        if (strcmp(real, "/") == 0 ||
            (strncmp(resolved, real, n) == 0 && (resolved[n] == '\0' || resolved[n] == '/')))
            return true;
    }
    return false;
}

int pathbound_check(const struct pipit_strlist *dirs, const char *key, const char *path,
                    const char *base, bool follow, char *out, size_t outlen, char *why,
                    size_t whylen)
{
    char r[256];

    if (!dirs || dirs->count == 0) {
        if ((size_t)snprintf(out, outlen, "%s", path) >= outlen) {
            snprintf(why, whylen, "%s: longer than %zu bytes", key, outlen - 1);
            return PIPIT_EINVAL;
        }
        return PIPIT_OK;
    }
    if (pathbound_resolve(path, base, follow, out, outlen, r, sizeof r) != 0) {
        snprintf(why, whylen, "%s \"%s\": %s", key, path, r);
        return PIPIT_EINVAL;
    }
    if (!pathbound_inside(dirs, out)) {
        size_t n = 0;

        n += (size_t)snprintf(why, whylen, "%s \"%s\" leads to %s, which is outside "
                              "allowed_dirs (", key, path, out);
        for (size_t i = 0; i < dirs->count && n < whylen; i++)
            n += (size_t)snprintf(why + n, whylen - n, "%s%s", i ? ", " : "",
                                  dirs->items[i]);
        if (n < whylen)
            snprintf(why + n, whylen - n, "): refused");
        return PIPIT_EPERM;
    }
    return PIPIT_OK;
}
