/* loader.h: find, check and dlopen plugin files; one record per loaded file. */
#ifndef PIPIT_LOADER_H
#define PIPIT_LOADER_H

#include <stdbool.h>
#include <sys/types.h>
#include <pipit/plugin.h>

/* One plugin file, loaded once per process and never unloaded. */
struct loader_plugin {
    char *path;                         /* path as resolved */
    void *dl;                           /* dlopen handle */
    struct pipit_plugin desc;           /* zeroed copy of the descriptor */
};

/*
 * Path of the plugin `name` of the given kind in dir: "<dir>/<prefix>_<name>.so"
 * with prefix "in", "out" or "act" (kind is PIPIT_COLLECTOR, PIPIT_OUTPUT or
 * PIPIT_ACTION). A name containing '/' is taken as a path as it is.
 * Returns a string to free(), or NULL with errno EINVAL (a name outside
 * [a-z0-9_] or over 64 characters, or not exactly one known kind) or ENOMEM.
 */
char *loader_resolve(const char *dir, unsigned kind, const char *name);

/*
 * Check that path and every directory above it are safe to load code from:
 * owned by root or by the daemon's user, not writable by group or others
 * (a root-owned sticky directory such as /tmp is allowed), a regular file.
 * On refusal returns PIPIT_EPERM (or PIPIT_ENOENT) with a reason in err.
 */
int loader_check_path(const char *path, char *err, size_t errlen);

/*
 * Load the plugin at path: permission check, the signature when one is
 * required (loader_set_signature_policy), dlopen(RTLD_NOW|RTLD_LOCAL) of
 * the file descriptor that was checked, the entry symbol, magic, ABI major
 * equal and minor not newer than the host, struct_size not larger than the
 * host's, required fields for the declared kinds, then load(api). The same
 * file is loaded only once: later calls return the same record.
 *
 * Returns the record (owned by the loader, valid for the process's life) or
 * NULL with a reason naming the file in err.
 */
const struct loader_plugin *loader_open(const char *path,
                                        const struct pipit_api *api,
                                        char *err, size_t errlen);

/* loader_open() returning the status: PIPIT_OK and the record in *out, or
 * PIPIT_EPERM, PIPIT_ENOENT, PIPIT_EABI, PIPIT_EINVAL, the error load()
 * returned, PIPIT_EIO or PIPIT_ENOMEM with a reason naming the file in err. */
int loader_load(const char *path, const struct pipit_api *api,
                const struct loader_plugin **out, char *err, size_t errlen);

struct command_keyring;

/*
 * Require every plugin loaded from now on to carry a signature by a key of
 * ring (plugins.require_signature), or stop requiring one when ring is NULL.
 * The loader keeps its own reference to each key: the caller still frees
 * ring. With a policy set, loader_load() reads the descriptor it is about
 * to dlopen, hashes it and checks "<path>.sig" (opened and checked like the
 * plugin itself) before dlopen, so a refused file's code never runs.
 * Returns PIPIT_OK or PIPIT_ENOMEM (the policy is then left as it was).
 */
int loader_set_signature_policy(const struct command_keyring *ring);

/* Forget every loaded file (for tests; handles are dlclose'd). */
void loader_reset(void);

#endif
