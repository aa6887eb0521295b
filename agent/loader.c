/* loader.c: find, check and dlopen plugin files, refusing unsafe files and incompatible ABIs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE                      /* O_PATH, asprintf */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command_key.h"
#include "errors.h"
#include "loader.h"
#include "plugin_sig.h"

/*
 * The smallest descriptor ABI 1.0 defines: every field up to and including
 * fini. Descriptors of later minors only grow past it.
 */
#define LOADER_MIN_STRUCT_SIZE \
    (offsetof(struct pipit_plugin, fini) + sizeof(void (*)(void)))

#define LOADER_KNOWN_KINDS (PIPIT_COLLECTOR | PIPIT_OUTPUT | PIPIT_ACTION)
#define LOADER_KNOWN_OPT_FLAGS (PIPIT_OPT_REQUIRED | PIPIT_OPT_SECRET)
#define LOADER_MAX_OPTIONS 1024         /* a table without END is a bug */
#define LOADER_MAX_NAME 64              /* plugin and option names */

/* One loaded file. pub comes first: callers get &entry->pub. */
struct loader_entry {
    struct loader_plugin pub;
    dev_t dev;                          /* identity of the checked file */
    ino_t ino;
    int fd;                             /* kept open while dl is loaded */
    struct loader_entry *next;
};

static struct loader_entry *loader_list;

/* The keys a plugin must be signed by; NULL: no signature required. */
static struct command_keyring *loader_trusted;

/* Write a formatted message to err (if any room), like snprintf. */
static void loader_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void loader_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* True when s is a non-empty lower_snake word: [a-z0-9_]+, at most max bytes. */
static bool loader_valid_word(const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL || *s == '\0')
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= max)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/*
 * Path of plugin `name` of one kind in dir. A name with a '/' is a path and
 * returned as it is. Returns a string to free(), or NULL with errno EINVAL
 * (name outside [a-z0-9_], or kind not exactly one known kind) or ENOMEM.
 */
char *loader_resolve(const char *dir, unsigned kind, const char *name)
{
    const char *prefix;
    char *path;

    if (name != NULL && strchr(name, '/') != NULL) {
        path = strdup(name);
        if (path == NULL)
            errno = ENOMEM;
        return path;
    }
    switch (kind) {
    case PIPIT_COLLECTOR: prefix = "in";  break;
    case PIPIT_OUTPUT:    prefix = "out"; break;
    case PIPIT_ACTION:    prefix = "act"; break;
    default:
        errno = EINVAL;
        return NULL;
    }
    if (dir == NULL || !loader_valid_word(name, LOADER_MAX_NAME)) {
        errno = EINVAL;
        return NULL;
    }
    if (asprintf(&path, "%s%s%s_%s.so", dir,
                 (*dir != '\0' && dir[strlen(dir) - 1] != '/') ? "/" : "",
                 prefix, name) < 0) {
        errno = ENOMEM;
        return NULL;
    }
    return path;
}

/* What a file of mode m is, for messages. */
static const char *loader_file_type(mode_t m)
{
    if (S_ISDIR(m))  return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISCHR(m))  return "a character device";
    if (S_ISBLK(m))  return "a block device";
    if (S_ISLNK(m))  return "a symbolic link";
    return "not a regular file";
}

/* "group", "others" or "group and others" for the write bits of m, or NULL. */
static const char *loader_writers(mode_t m)
{
    if ((m & S_IWGRP) && (m & S_IWOTH))
        return "group and others";
    if (m & S_IWGRP)
        return "group";
    if (m & S_IWOTH)
        return "others";
    return NULL;
}

/* The path a directory descriptor refers to, into buf; "?" if unknown. */
static const char *loader_fd_path(int fd, char *buf, size_t len)
{
    char proc[64];
    ssize_t n;

    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    n = readlink(proc, buf, len - 1);
    if (n < 0)
        snprintf(buf, len, "?");
    else
        buf[n] = '\0';
    return buf;
}

/*
 * Check one directory of the chain above a plugin file: owned by root or by
 * euid, and not writable by group or others unless root-owned and sticky.
 * dfd is an O_PATH descriptor of it, st its fstat. Returns PIPIT_OK or
 * PIPIT_EPERM with the reason in err.
 */
static int loader_check_dir(const char *path, int dfd, const struct stat *st,
                            char *err, size_t errlen)
{
    char dir[4096];
    const char *who = loader_writers(st->st_mode);
    uid_t euid = geteuid();

    if (st->st_uid != 0 && st->st_uid != euid) {
        loader_err(err, errlen, "%s: directory %s is owned by uid %lu, not root "
                   "or the daemon's user (uid %lu); refusing to load", path,
                   loader_fd_path(dfd, dir, sizeof dir),
                   (unsigned long)st->st_uid, (unsigned long)euid);
        return PIPIT_EPERM;
    }
    if (who != NULL && !(st->st_uid == 0 && (st->st_mode & S_ISVTX))) {
        loader_err(err, errlen, "%s: directory %s is writable by %s (mode %04o)"
                   "%s; refusing to load", path,
                   loader_fd_path(dfd, dir, sizeof dir), who,
                   (unsigned)(st->st_mode & 07777),
                   (st->st_mode & S_ISVTX) ? " and sticky but not owned by root" : "");
        return PIPIT_EPERM;
    }
    return PIPIT_OK;
}

/*
 * Walk from the directory dfd (the one the file was opened in) up to the
 * root through "..", checking each directory. Walking by descriptor checks
 * the directories the file really is in, whatever symbolic links the path
 * went through. Takes ownership of dfd. Returns PIPIT_OK or an error.
 */
static int loader_check_dirs(const char *path, int dfd, char *err, size_t errlen)
{
    struct stat st, up;
    int rc = PIPIT_OK;

    if (fstat(dfd, &st) < 0)
        goto fail_errno;
    for (;;) {
        int pfd;

        rc = loader_check_dir(path, dfd, &st, err, errlen);
        if (rc != PIPIT_OK)
            goto done;
        pfd = openat(dfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
            goto fail_errno;
        if (fstat(pfd, &up) < 0) {
            close(pfd);
            goto fail_errno;
        }
        if (up.st_dev == st.st_dev && up.st_ino == st.st_ino) {
            close(pfd);                 /* ".." of the root is the root */
            goto done;
        }
        close(dfd);
        dfd = pfd;
        st = up;
    }

fail_errno:
    loader_err(err, errlen, "%s: cannot check the directories above it: %s",
               path, strerror(errno));
    rc = PIPIT_EIO;
done:
    close(dfd);
    return rc;
}

/*
 * Open path for loading and check it: the last component is not followed if
 * it is a symbolic link, a FIFO does not block, and the open descriptor must
 * be a regular file owned by root or euid, not writable by group or others,
 * in a chain of safe directories. On success returns PIPIT_OK with the
 * descriptor in *fdp (the caller closes it) and its fstat in *st.
 */
static int loader_open_checked(const char *path, int *fdp, struct stat *st,
                               char *err, size_t errlen)
{
    char *copy = NULL, *slash;
    const char *dir, *base;
    int dfd = -1, fd = -1, rc;
    uid_t euid = geteuid();
    const char *who;

    *fdp = -1;
    if (path == NULL || *path == '\0') {
        loader_err(err, errlen, "(empty path): no plugin file given");
        return PIPIT_ENOENT;
    }
    copy = strdup(path);
    if (copy == NULL) {
        loader_err(err, errlen, "%s: out of memory", path);
        return PIPIT_ENOMEM;
    }
    /* Split into directory and last component; "a/b/" names "a/b". */
    for (size_t n = strlen(copy); n > 1 && copy[n - 1] == '/'; n--)
        copy[n - 1] = '\0';
    slash = strrchr(copy, '/');
    if (slash == NULL) {
        dir = ".";
        base = copy;
    } else if (slash == copy) {
        dir = "/";
        base = slash[1] != '\0' ? slash + 1 : ".";
    } else {
        *slash = '\0';
        dir = copy;
        base = slash + 1;
    }

    dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) {
            loader_err(err, errlen, "%s: no such file (directory %s: %s)",
                       path, dir, strerror(e));
            rc = PIPIT_ENOENT;
        } else {
            loader_err(err, errlen, "%s: cannot open directory %s: %s",
                       path, dir, strerror(e));
            rc = e == EACCES || e == EPERM ? PIPIT_EPERM : PIPIT_EIO;
        }
        goto fail;
    }
    fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            loader_err(err, errlen, "%s: no such file", path);
            rc = PIPIT_ENOENT;
        } else if (e == ELOOP) {
            loader_err(err, errlen, "%s: is a symbolic link; refusing to load "
                       "(give the path of the file itself)", path);
            rc = PIPIT_EPERM;
        } else if (e == ENXIO) {
            loader_err(err, errlen, "%s: not a regular file (a socket or "
                       "device); refusing to load", path);
            rc = PIPIT_EPERM;
        } else {
            loader_err(err, errlen, "%s: cannot open: %s", path, strerror(e));
            rc = e == EACCES || e == EPERM ? PIPIT_EPERM : PIPIT_EIO;
        }
        goto fail;
    }
    if (fstat(fd, st) < 0) {
        loader_err(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        rc = PIPIT_EIO;
        goto fail;
    }
    if (!S_ISREG(st->st_mode)) {
        loader_err(err, errlen, "%s: %s, not a regular file; refusing to load",
                   path, loader_file_type(st->st_mode));
        rc = PIPIT_EPERM;
        goto fail;
    }
    if (st->st_uid != 0 && st->st_uid != euid) {
        loader_err(err, errlen, "%s: owned by uid %lu, not root or the daemon's "
                   "user (uid %lu); refusing to load", path,
                   (unsigned long)st->st_uid, (unsigned long)euid);
        rc = PIPIT_EPERM;
        goto fail;
    }
    who = loader_writers(st->st_mode);
    if (who != NULL) {
        loader_err(err, errlen, "%s: writable by %s (mode %04o); refusing to load",
                   path, who, (unsigned)(st->st_mode & 07777));
        rc = PIPIT_EPERM;
        goto fail;
    }
    rc = loader_check_dirs(path, dfd, err, errlen);
    dfd = -1;                           /* closed by loader_check_dirs */
    if (rc != PIPIT_OK)
        goto fail;

    free(copy);
    *fdp = fd;
    return PIPIT_OK;

fail:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    free(copy);
    return rc;
}

/*
 * Check that path is safe to load code from, without loading it. Returns
 * PIPIT_OK, or PIPIT_EPERM, PIPIT_ENOENT (PIPIT_EIO, PIPIT_ENOMEM) with a
 * reason naming the file in err.
 */
int loader_check_path(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd, rc;

    rc = loader_open_checked(path, &fd, &st, err, errlen);
    if (rc == PIPIT_OK)
        close(fd);
    return rc;
}

/* Free a keyring made by loader_set_signature_policy (NULL is fine). */
static void loader_ring_free(struct command_keyring *ring)
{
    if (ring == NULL)
        return;
    command_keyring_free(ring);
    free(ring);
}

/* See loader.h: the loader holds a reference of its own to every key. */
int loader_set_signature_policy(const struct command_keyring *ring)
{
    struct command_keyring *copy = NULL;

    if (ring != NULL) {
        copy = calloc(1, sizeof *copy);
        if (copy == NULL)
            return PIPIT_ENOMEM;
        for (size_t i = 0; i < ring->count; i++) {
            const struct command_trusted_key *k = &ring->keys[i];
            if (EVP_PKEY_up_ref(k->key) != 1 ||
                command_keyring_add(copy, k->key, k->source, NULL, 0) != PIPIT_OK) {
                loader_ring_free(copy);
                return PIPIT_ENOMEM;
            }
        }
    }
    loader_ring_free(loader_trusted);
    loader_trusted = copy;
    return PIPIT_OK;
}

/*
 * With a signature required: read "<path>.sig" (opened without following a
 * link and checked like the plugin: regular, owned by root or euid, not
 * writable by group or others, in safe directories) and check it against
 * the contents of fd, the descriptor that will be dlopen'ed, so that a file
 * swapped in after the check cannot pass. Returns PIPIT_OK, or PIPIT_EPERM
 * (no signature, unsafe signature file, unknown key, bad signature),
 * PIPIT_EPARSE (malformed) or PIPIT_EIO, with a reason naming path in err.
 */
static int loader_check_signature(const char *path, int fd, char *err, size_t errlen)
{
    char *sigpath = NULL, text[PLUGIN_SIG_MAX + 1], why[1024];
    struct stat st;
    size_t len = 0;
    int sfd = -1, rc;

    if (loader_trusted == NULL)
        return PIPIT_OK;
    if (asprintf(&sigpath, "%s%s", path, PLUGIN_SIG_SUFFIX) < 0) {
        loader_err(err, errlen, "%s: out of memory", path);
        return PIPIT_ENOMEM;
    }
    rc = loader_open_checked(sigpath, &sfd, &st, why, sizeof why);
    if (rc == PIPIT_ENOENT) {
        loader_err(err, errlen, "%s: no signature file %s (plugins.require_signature "
                   "is on; sign the plugin with pipit sign-plugin); refusing to load",
                   path, sigpath);
        rc = PIPIT_EPERM;
        goto done;
    }
    if (rc != PIPIT_OK) {
        loader_err(err, errlen, "%s: unsafe signature file: %s", path, why);
        goto done;
    }
    for (;;) {
        ssize_t n = read(sfd, text + len, sizeof text - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            loader_err(err, errlen, "%s: cannot read %s: %s", path, sigpath,
                       strerror(errno));
            rc = PIPIT_EIO;
            goto done;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > PLUGIN_SIG_MAX) {
            loader_err(err, errlen, "%s: malformed signature file %s: larger than %d "
                       "bytes", path, sigpath, PLUGIN_SIG_MAX);
            rc = PIPIT_EPARSE;
            goto done;
        }
    }
    rc = plugin_sig_verify(loader_trusted, fd, path, text, len, err, errlen);
done:
    if (sfd >= 0)
        close(sfd);
    free(sigpath);
    return rc;
}

/*
 * Copy a dlerror() text into err for path, replacing the /proc/self/fd name
 * the file was opened through by path itself.
 */
static void loader_dl_err(const char *path, const char *procname,
                          const char *what, char *err, size_t errlen)
{
    const char *msg = dlerror();
    const char *at, *rest = "";
    size_t plen = strlen(procname);
    int before = 0;

    if (msg == NULL)
        msg = "unknown error";
    /* dlerror() names the object first: "<procname>: <reason>". */
    at = strstr(msg, procname);
    if (at != NULL) {
        before = (int)(at - msg);
        rest = at + plen;
        if (rest[0] == ':' && rest[1] == ' ' && before == 0) {
            loader_err(err, errlen, "%s: %s: %s", path, what, rest + 2);
            return;
        }
        loader_err(err, errlen, "%s: %s: %.*s%s%s", path, what, before, msg,
                   path, rest);
        return;
    }
    loader_err(err, errlen, "%s: %s: %s", path, what, msg);
}

/* Size of the field an option type is stored in; 0 for an unknown type. */
static size_t loader_opt_size(int type)
{
    switch (type) {
    case PIPIT_OPT_T_BOOL:     return sizeof(bool);
    case PIPIT_OPT_T_INT:      return sizeof(int64_t);
    case PIPIT_OPT_T_DOUBLE:   return sizeof(double);
    case PIPIT_OPT_T_STRING:   return sizeof(const char *);
    case PIPIT_OPT_T_DURATION: return sizeof(int64_t);
    case PIPIT_OPT_T_SIZE:     return sizeof(int64_t);
    case PIPIT_OPT_T_LIST:     return sizeof(struct pipit_strlist);
    case PIPIT_OPT_T_MAP:      return sizeof(struct pipit_strmap);
    default:                   return 0;
    }
}

/*
 * Check the option table of a descriptor: each entry has a known type, a
 * lower_snake name not seen before, known flags and a field that lies
 * within ctx_size; the table ends with PIPIT_OPT_END. Returns PIPIT_OK or
 * PIPIT_EINVAL with the reason in err.
 */
static int loader_check_options(const char *path, const struct pipit_plugin *d,
                                char *err, size_t errlen)
{
    const struct pipit_option *o = d->options;

    if (o == NULL)
        return PIPIT_OK;
    for (size_t i = 0;; i++) {
        size_t size;

        if (i >= LOADER_MAX_OPTIONS) {
            loader_err(err, errlen, "%s: option table has no PIPIT_OPT_END "
                       "within %d entries", path, LOADER_MAX_OPTIONS);
            return PIPIT_EINVAL;
        }
        if (o[i].name == NULL && o[i].type == PIPIT_OPT_T_END)
            break;
        size = loader_opt_size(o[i].type);
        if (!loader_valid_word(o[i].name, LOADER_MAX_NAME)) {
            loader_err(err, errlen, "%s: option %zu: name %s%s%s is not "
                       "lower_snake ([a-z0-9_], at most %d characters)", path,
                       i, o[i].name ? "\"" : "",
                       o[i].name ? o[i].name : "missing",
                       o[i].name ? "\"" : "", LOADER_MAX_NAME);
            return PIPIT_EINVAL;
        }
        if (size == 0) {
            loader_err(err, errlen, "%s: option \"%s\": unknown type %d",
                       path, o[i].name, o[i].type);
            return PIPIT_EINVAL;
        }
        if (o[i].flags & ~LOADER_KNOWN_OPT_FLAGS) {
            loader_err(err, errlen, "%s: option \"%s\": unknown flags 0x%x",
                       path, o[i].name, o[i].flags & ~LOADER_KNOWN_OPT_FLAGS);
            return PIPIT_EINVAL;
        }
        if (o[i].offset > d->ctx_size || d->ctx_size - o[i].offset < size) {
            loader_err(err, errlen, "%s: option \"%s\": field at offset %zu "
                       "(%zu bytes) lies outside ctx_size %zu", path,
                       o[i].name, o[i].offset, size, d->ctx_size);
            return PIPIT_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(o[j].name, o[i].name) == 0) {
                loader_err(err, errlen, "%s: option \"%s\" is declared twice",
                           path, o[i].name);
                return PIPIT_EINVAL;
            }
        }
    }
    return PIPIT_OK;
}

/*
 * Check what a descriptor must hold: a lower_snake name, a version, known
 * kinds and the callbacks each kind needs, and a valid option table.
 * Returns PIPIT_OK or PIPIT_EINVAL with the reason in err.
 */
static int loader_check_desc(const char *path, const struct pipit_plugin *d,
                             char *err, size_t errlen)
{
    if (d->name == NULL || *d->name == '\0') {
        loader_err(err, errlen, "%s: descriptor has no name", path);
        return PIPIT_EINVAL;
    }
    if (!loader_valid_word(d->name, LOADER_MAX_NAME)) {
        loader_err(err, errlen, "%s: plugin name \"%.*s\" is not lower_snake "
                   "([a-z0-9_], at most %d characters)", path,
                   LOADER_MAX_NAME, d->name, LOADER_MAX_NAME);
        return PIPIT_EINVAL;
    }
    if (d->version == NULL || *d->version == '\0') {
        loader_err(err, errlen, "%s: plugin \"%s\" has no version", path, d->name);
        return PIPIT_EINVAL;
    }
    if (d->kinds == 0) {
        loader_err(err, errlen, "%s: plugin \"%s\" declares no kind (collector, "
                   "output or action)", path, d->name);
        return PIPIT_EINVAL;
    }
    if (d->kinds & ~LOADER_KNOWN_KINDS) {
        loader_err(err, errlen, "%s: plugin \"%s\" declares unknown kind bits "
                   "0x%x", path, d->name, d->kinds & ~LOADER_KNOWN_KINDS);
        return PIPIT_EINVAL;
    }
    if ((d->kinds & PIPIT_COLLECTOR) && d->collect == NULL && d->init == NULL) {
        loader_err(err, errlen, "%s: collector \"%s\" has neither collect() nor "
                   "init() (an event-driven input starts its watches in init)",
                   path, d->name);
        return PIPIT_EINVAL;
    }
    if ((d->kinds & PIPIT_OUTPUT) && d->flush == NULL) {
        loader_err(err, errlen, "%s: output \"%s\" has no flush()", path, d->name);
        return PIPIT_EINVAL;
    }
    if ((d->kinds & PIPIT_ACTION) && d->act == NULL) {
        loader_err(err, errlen, "%s: action \"%s\" has no act()", path, d->name);
        return PIPIT_EINVAL;
    }
    return loader_check_options(path, d, err, errlen);
}

/*
 * Check the ABI header of a descriptor (magic, major, minor, struct_size)
 * and copy it into a zeroed *out. Returns PIPIT_OK or PIPIT_EABI.
 */
static int loader_check_abi(const char *path, const struct pipit_plugin *d,
                            struct pipit_plugin *out, char *err, size_t errlen)
{
    if (d->magic != PIPIT_ABI_MAGIC) {
        loader_err(err, errlen, "%s: bad magic 0x%08x in the descriptor (want "
                   "0x%08x): not a pipit plugin, or a corrupt one", path,
                   (unsigned)d->magic, (unsigned)PIPIT_ABI_MAGIC);
        return PIPIT_EABI;
    }
    if (d->abi_major != PIPIT_ABI_MAJOR) {
        loader_err(err, errlen, "%s: built for ABI %u.x, this pipit implements "
                   "%d.%d; rebuild the plugin against pipit-sdk %d.x", path,
                   (unsigned)d->abi_major, PIPIT_ABI_MAJOR, PIPIT_ABI_MINOR,
                   PIPIT_ABI_MAJOR);
        return PIPIT_EABI;
    }
    if (d->abi_minor > PIPIT_ABI_MINOR) {
        loader_err(err, errlen, "%s: built for ABI %u.%u, newer than this pipit "
                   "(%d.%d); upgrade pipit or rebuild the plugin against "
                   "pipit-sdk %d.%d", path, (unsigned)d->abi_major,
                   (unsigned)d->abi_minor, PIPIT_ABI_MAJOR, PIPIT_ABI_MINOR,
                   PIPIT_ABI_MAJOR, PIPIT_ABI_MINOR);
        return PIPIT_EABI;
    }
    if (d->struct_size < LOADER_MIN_STRUCT_SIZE) {
        loader_err(err, errlen, "%s: descriptor struct_size %zu is smaller than "
                   "the %zu bytes of ABI %d.0; not built with PIPIT_PLUGIN_DEFINE?",
                   path, d->struct_size, (size_t)LOADER_MIN_STRUCT_SIZE,
                   PIPIT_ABI_MAJOR);
        return PIPIT_EABI;
    }
    if (d->struct_size > sizeof(struct pipit_plugin)) {
        loader_err(err, errlen, "%s: descriptor struct_size %zu is larger than "
                   "this pipit's %zu bytes (ABI %d.%d), although it claims ABI "
                   "%u.%u; rebuild the plugin", path, d->struct_size,
                   sizeof(struct pipit_plugin), PIPIT_ABI_MAJOR, PIPIT_ABI_MINOR,
                   (unsigned)d->abi_major, (unsigned)d->abi_minor);
        return PIPIT_EABI;
    }
    memset(out, 0, sizeof *out);
    memcpy(out, d, d->struct_size);
    return PIPIT_OK;
}

/*
 * dlclose a handle opened through /proc/self/fd/<fd>, then close fd. glibc
 * matches later dlopen() calls by name before it opens anything, so while
 * an object stays mapped under the name "/proc/self/fd/<fd>" (a plugin
 * marked NODELETE, or one with unique symbols, survives dlclose) that fd
 * number must never name another file: the fd is then left open for good.
 * That is also why a loaded plugin keeps its fd open.
 */
static void loader_release(void *dl, int fd)
{
    char procname[64];
    void *again;

    dlclose(dl);
    snprintf(procname, sizeof procname, "/proc/self/fd/%d", fd);
    again = dlopen(procname, RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
    if (again != NULL) {
        dlclose(again);                 /* still mapped: keep the fd */
        return;
    }
    close(fd);
}

/*
 * Load the plugin at path with every check (see loader.h), calling load(api)
 * once per file. On success returns PIPIT_OK and the record in *out (owned
 * by the loader, valid until loader_reset). On refusal returns PIPIT_EPERM,
 * PIPIT_ENOENT, PIPIT_EPARSE (a malformed signature file), PIPIT_EABI, PIPIT_EINVAL, the error load() returned, or
 * PIPIT_EIO/PIPIT_ENOMEM, with a reason naming the file in err.
 */
int loader_load(const char *path, const struct pipit_api *api,
                const struct loader_plugin **out, char *err, size_t errlen)
{
    struct loader_entry *e = NULL;
    struct stat st;
    char procname[64];
    void *dl = NULL, *sym;
    const struct pipit_plugin *d;
    pipit_plugin_entry_fn entry;
    int fd = -1, rc;

    *out = NULL;
    rc = loader_open_checked(path, &fd, &st, err, errlen);
    if (rc != PIPIT_OK)
        return rc;
    /* Before the already-loaded shortcut too: a policy set later still
     * applies to every file a caller asks for. */
    rc = loader_check_signature(path, fd, err, errlen);
    if (rc != PIPIT_OK) {
        close(fd);
        return rc;
    }
    for (e = loader_list; e != NULL; e = e->next) {
        if (e->dev == st.st_dev && e->ino == st.st_ino) {
            close(fd);
            *out = &e->pub;
            return PIPIT_OK;
        }
    }
    if (api == NULL) {
        loader_err(err, errlen, "%s: no host api to load the plugin with", path);
        rc = PIPIT_EINVAL;
        goto fail;
    }

    /* dlopen the open file that was checked, never the path a second time. */
    snprintf(procname, sizeof procname, "/proc/self/fd/%d", fd);
    dlerror();
    dl = dlopen(procname, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        if (access(procname, F_OK) != 0)
            loader_err(err, errlen, "%s: dlopen failed: %s is not available "
                       "(is /proc mounted?)", path, procname);
        else
            loader_dl_err(path, procname, "dlopen failed", err, errlen);
        rc = PIPIT_EABI;
        goto fail;
    }
    dlerror();
    sym = dlsym(dl, PIPIT_ENTRY_SYMBOL);
    if (sym == NULL) {
        loader_err(err, errlen, "%s: no symbol %s: not a pipit plugin (define "
                   "it with PIPIT_PLUGIN_DEFINE)", path, PIPIT_ENTRY_SYMBOL);
        rc = PIPIT_EABI;
        goto fail;
    }
    /* POSIX: a function pointer round-trips through void *. */
    entry = (pipit_plugin_entry_fn)sym;
    d = entry();
    if (d == NULL) {
        loader_err(err, errlen, "%s: %s() returned NULL", path,
                   PIPIT_ENTRY_SYMBOL);
        rc = PIPIT_EABI;
        goto fail;
    }

    e = calloc(1, sizeof *e);
    if (e == NULL || (e->pub.path = strdup(path)) == NULL) {
        loader_err(err, errlen, "%s: out of memory", path);
        rc = PIPIT_ENOMEM;
        goto fail;
    }
    rc = loader_check_abi(path, d, &e->pub.desc, err, errlen);
    if (rc != PIPIT_OK)
        goto fail;
    rc = loader_check_desc(path, &e->pub.desc, err, errlen);
    if (rc != PIPIT_OK)
        goto fail;
    if (e->pub.desc.load != NULL) {
        int lrc = e->pub.desc.load(api);
        if (lrc != PIPIT_OK) {
            loader_err(err, errlen, "%s: plugin \"%s\": load() failed: %s", path,
                       e->pub.desc.name, pipit_strerror(lrc));
            rc = lrc < 0 ? lrc : PIPIT_EIO;
            goto fail;
        }
    }

    e->pub.dl = dl;
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->fd = fd;
    e->next = loader_list;
    loader_list = e;
    *out = &e->pub;
    return PIPIT_OK;

fail:
    if (e != NULL) {
        free(e->pub.path);
        free(e);
    }
    if (dl != NULL)
        loader_release(dl, fd);
    else
        close(fd);
    return rc;
}

/* See loader.h; the status of a refusal is only in err (see loader_load). */
const struct loader_plugin *loader_open(const char *path,
                                        const struct pipit_api *api,
                                        char *err, size_t errlen)
{
    const struct loader_plugin *p;

    return loader_load(path, api, &p, err, errlen) == PIPIT_OK ? p : NULL;
}

/*
 * Forget every loaded file: dlclose each handle and close its descriptor
 * (kept open instead while the object stays mapped; see loader_release).
 */
void loader_reset(void)
{
    while (loader_list != NULL) {
        struct loader_entry *e = loader_list;

        loader_list = e->next;
        loader_release(e->pub.dl, e->fd);
        free(e->pub.path);
        free(e);
    }
}
