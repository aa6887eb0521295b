/* test_loader.c: the plugin loader's path checks, ABI refusals and good loads, on fixture copies. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "instance.h"
#include "loader.h"
#include "../tap.h"


static const struct pipit_api *test_api; /* the daemon's own table */

static const char *fixtures;            /* $PIPIT_TEST_LIB */
static char tmp[4096];                  /* private temporary directory */
static char err[1024];

/* tmp + "/" + rel into a static buffer (one of four, reused in turn). */
static const char *at(const char *rel)
{
    static char bufs[4][4096];
    static int n;
    char *b = bufs[n++ % 4];

    if (snprintf(b, sizeof bufs[0], "%s/%s", tmp, rel) >= (int)sizeof bufs[0])
        abort();                        /* tmp is short; rel is a literal */
    return b;
}

/* Copy the fixture abi_<name>.so to dst with mode; returns 0 or -1. */
static int copy_fixture(const char *name, const char *dst, mode_t mode)
{
    char src[4096], buf[65536];
    int in = -1, out = -1, rc = -1;
    ssize_t n;

    snprintf(src, sizeof src, "%s/abi_%s.so", fixtures, name);
    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        diag("cannot open %s: %s", src, strerror(errno));
        goto fail;
    }
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        diag("cannot create %s: %s", dst, strerror(errno));
        goto fail;
    }
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n)
            goto fail;
    if (n < 0 || fchmod(out, mode) < 0)
        goto fail;
    rc = 0;
fail:
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) < 0)
        rc = -1;
    return rc;
}

/* A directory under tmp with an exact mode (umask aside). */
static void make_dir(const char *rel, mode_t mode)
{
    if (mkdir(at(rel), 0700) < 0 || chmod(at(rel), mode) < 0)
        diag("cannot make %s: %s", at(rel), strerror(errno));
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * One assertion: loading path is refused with status want, and err starts
 * with the path and contains reason.
 */
static void refused(const char *path, int want, const char *reason,
                    const char *what)
{
    const struct loader_plugin *p = NULL;
    int rc;

    err[0] = '\0';
    rc = loader_load(path, test_api, &p, err, sizeof err);
    if (!ok(rc == want && p == NULL && starts_with(err, path) &&
            strstr(err, reason) != NULL, "%s: refused", what)) {
        diag("  status %s (want %s), record %p", pipit_errname(rc),
             pipit_errname(want), (const void *)p);
        diag("  err: %s", err);
        diag("  want: %s: ...%s...", path, reason);
    } else {
        diag("  %s", err);
    }
}

/* The same for loader_check_path, which does not load. */
static void check_refused(const char *path, int want, const char *reason,
                          const char *what)
{
    int rc;

    err[0] = '\0';
    rc = loader_check_path(path, err, sizeof err);
    if (!ok(rc == want && starts_with(err, path) && strstr(err, reason) != NULL,
            "%s: refused by loader_check_path", what)) {
        diag("  status %s (want %s)", pipit_errname(rc), pipit_errname(want));
        diag("  err: %s", err);
        diag("  want: %s: ...%s...", path, reason);
    }
}

/* Load path and expect success; returns the record or NULL. */
static const struct loader_plugin *loads(const char *path, const char *what)
{
    const struct loader_plugin *p = NULL;
    int rc;

    err[0] = '\0';
    rc = loader_load(path, test_api, &p, err, sizeof err);
    if (!ok(rc == PIPIT_OK && p != NULL, "%s: loads", what))
        diag("  status %s, err: %s", pipit_errname(rc), err);
    return rc == PIPIT_OK ? p : NULL;
}

static void test_resolve(void)
{
    char *s;

    s = loader_resolve("/d", PIPIT_COLLECTOR, "cpu");
    is_str(s, "/d/in_cpu.so", "resolve: collector -> in_<name>.so");
    free(s);
    s = loader_resolve("/d/", PIPIT_OUTPUT, "kafka");
    is_str(s, "/d/out_kafka.so", "resolve: output -> out_<name>.so, trailing slash");
    free(s);
    s = loader_resolve("/d", PIPIT_ACTION, "exec_2");
    is_str(s, "/d/act_exec_2.so", "resolve: action -> act_<name>.so");
    free(s);
    s = loader_resolve("/d", PIPIT_COLLECTOR, "./My-Plugin.so");
    is_str(s, "./My-Plugin.so", "resolve: a name with '/' is a path as it is");
    free(s);

    static const char *const bad[] = { "Cpu", "a-b", "a.b", "", "a b", "ü" };
    bool all = true;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        s = loader_resolve("/d", PIPIT_COLLECTOR, bad[i]);
        if (s != NULL || errno != EINVAL) {
            diag("  name \"%s\" gave %s", bad[i], s ? s : "NULL without EINVAL");
            all = false;
        }
        free(s);
    }
    ok(all, "resolve: names outside [a-z0-9_] are rejected with EINVAL");

    s = loader_resolve("/d", 0, "cpu");
    char *s2 = loader_resolve("/d", PIPIT_COLLECTOR | PIPIT_OUTPUT, "cpu");
    ok(s == NULL && s2 == NULL, "resolve: kind must be exactly one known kind");
    free(s);
    free(s2);
}

/* Refusals for the descriptor and ABI, one fixture each. */
static void test_abi_refusals(void)
{
#define ABI_MINOR_TEXT(n) #n
#define ABI_MINOR_OF(n) ABI_MINOR_TEXT(n)
#define ABI_MINOR ABI_MINOR_OF(PIPIT_ABI_MINOR)
    static const struct {
        const char *name;
        int rc;
        const char *reason;
    } cases[] = {
        { "nosym",     PIPIT_EABI,    "no symbol pipit_plugin_entry" },
        { "undef",     PIPIT_EABI,    "dlopen failed: " },
        { "null",      PIPIT_EABI,    "pipit_plugin_entry() returned NULL" },
        { "magic",     PIPIT_EABI,    "bad magic 0x12345678" },
        { "major2",    PIPIT_EABI,    "built for ABI 2.x, this pipit implements 1." ABI_MINOR "; "
                                      "rebuild the plugin against pipit-sdk 1.x" },
        { "minor99",   PIPIT_EABI,    "built for ABI 1.99, newer than this pipit (1." ABI_MINOR ")" },
        { "big",       PIPIT_EABI,    "is larger than this pipit's" },
        { "small",     PIPIT_EABI,    "is smaller than the" },
        { "noname",    PIPIT_EINVAL,  "descriptor has no name" },
        { "badname",   PIPIT_EINVAL,  "plugin name \"Bad-Name\" is not lower_snake" },
        { "noversion", PIPIT_EINVAL,  "plugin \"abi_noversion\" has no version" },
        { "noflush",   PIPIT_EINVAL,  "output \"abi_noflush\" has no flush()" },
        { "nocollect", PIPIT_EINVAL,  "has neither collect() nor init()" },
        { "noact",     PIPIT_EINVAL,  "action \"abi_noact\" has no act()" },
        { "kinds",     PIPIT_EINVAL,  "unknown kind bits 0x80" },
        { "loadfail",  PIPIT_ENOTSUP, "load() failed: operation not supported" },
        { "opttype",   PIPIT_EINVAL,  "option \"weird\": unknown type 42" },
        { "optoffset", PIPIT_EINVAL,  "option \"far\": field at offset 64" },
    };
    char rel[128];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(rel, sizeof rel, "lib/abi_%s.so", cases[i].name);
        refused(at(rel), cases[i].rc, cases[i].reason, rel);
    }

    /* dlerror() text names the file, not the /proc/self/fd it went through. */
    refused(at("lib/abi_undef.so"), PIPIT_EABI, "abi_undef_missing_function",
            "undef: dlerror text names the missing symbol");
    ok(strstr(err, "/proc/self/fd") == NULL, "undef: message has no /proc/self/fd name");

    /* A file that is no shared object at all. */
    FILE *f = fopen(at("lib/text.so"), "w");
    if (f != NULL) {
        fputs("not an ELF file\n", f);
        fclose(f);
    }
    chmod(at("lib/text.so"), 0644);
    refused(at("lib/text.so"), PIPIT_EABI, "dlopen failed", "a text file");

    const struct loader_plugin *p = NULL;
    err[0] = '\0';
    p = loader_open(at("lib/abi_major2.so"), test_api, err, sizeof err);
    ok(p == NULL && starts_with(err, at("lib/abi_major2.so")),
       "loader_open: NULL with the reason in err");
}

static void test_good(void)
{
    const struct loader_plugin *p, *q;

    p = loads(at("lib/abi_good.so"), "abi_good");
    ok(p != NULL && strcmp(p->path, at("lib/abi_good.so")) == 0 &&
       strcmp(p->desc.name, "abi_good") == 0 &&
       strcmp(p->desc.version, "1.2.3") == 0 &&
       p->desc.kinds == PIPIT_COLLECTOR && p->desc.collect != NULL &&
       p->desc.options != NULL && p->desc.struct_size == sizeof(struct pipit_plugin),
       "abi_good: record holds the path and a copy of the descriptor");

    /* abi_good's load() fails on a second call: a second open must not call it. */
    q = loads(at("lib/abi_good.so"), "abi_good again");
    ok(p != NULL && q == p, "same file loaded twice: same record, load() ran once");

    if (link(at("lib/abi_good.so"), at("good_link.so")) == 0) {
        q = loads(at("good_link.so"), "a hard link to abi_good");
        ok(p != NULL && q == p, "another path to the same file: same record");
    } else {
        skip(2, "cannot make a hard link");
    }

    /* A symbolic link in the directory part is fine: the real parent is checked. */
    if (symlink("lib", at("libdir_link")) == 0) {
        q = loads(at("libdir_link/abi_good.so"), "through a symlinked directory");
        ok(p != NULL && q == p, "through a symlinked directory: same record");
    } else {
        skip(2, "cannot make a symbolic link");
    }

    /* Refusals close their handle and fd; the next load must get its own file. */
    refused(at("lib/abi_nosym.so"), PIPIT_EABI, "no symbol", "nosym before evented");
    p = loads(at("lib/abi_evented.so"), "abi_evented (init, no collect)");
    ok(p != NULL && strcmp(p->desc.name, "abi_evented") == 0 &&
       p->desc.collect == NULL && p->desc.init != NULL,
       "abi_evented: its own descriptor after a refusal");

    /* An object that stays mapped after dlclose keeps its /proc/self/fd
     * name in glibc's list: the next file must not be given that name. */
    refused(at("lib/abi_nodelete.so"), PIPIT_EINVAL, "has no version",
            "nodelete (stays mapped after dlclose)");
    p = loads(at("lib/abi_oldminor.so"), "abi_oldminor");
    bool zero = p != NULL;
    for (size_t i = p ? p->desc.struct_size : 0; p && i < sizeof p->desc; i++)
        zero = zero && ((const unsigned char *)&p->desc)[i] == 0;
    ok(p != NULL && p->desc.abi_minor == 0 &&
       p->desc.struct_size == offsetof(struct pipit_plugin, fini) + sizeof(void (*)(void)) &&
       strcmp(p->desc.name, "abi_oldminor") == 0 && zero,
       "abi_oldminor: ABI 1.0-sized descriptor, fields past it read as zero");

    err[0] = '\0';
    q = NULL;
    int rc = loader_load(at("lib/abi_loadfail.so"), NULL, &q, err, sizeof err);
    ok(rc == PIPIT_EINVAL && q == NULL && strstr(err, "no host api") != NULL,
       "a file not loaded yet needs a host api (%s)", err);
}

/* File and directory permission checks, on copies in the private dir. */
static void test_permissions(void)
{
    struct stat st;

    copy_fixture("good", at("lib/gw.so"), 0664);
    refused(at("lib/gw.so"), PIPIT_EPERM, "writable by group (mode 0664); refusing to load",
            "file mode 0664");
    copy_fixture("good", at("lib/ow.so"), 0646);
    refused(at("lib/ow.so"), PIPIT_EPERM, "writable by others (mode 0646); refusing to load",
            "file mode 0646");
    check_refused(at("lib/ow.so"), PIPIT_EPERM, "writable by others (mode 0646)",
                  "file mode 0646");
    copy_fixture("good", at("lib/ok.so"), 0644);
    err[0] = '\0';
    is_int(loader_check_path(at("lib/ok.so"), err, sizeof err), PIPIT_OK,
           "loader_check_path: a safe copy passes (%s)", err);

    make_dir("open", 0777);
    copy_fixture("good", at("open/abi_good.so"), 0644);
    char want[4096];
    snprintf(want, sizeof want, "directory %s is writable by group and others "
             "(mode 0777); refusing to load", at("open"));
    refused(at("open/abi_good.so"), PIPIT_EPERM, want, "directory mode 0777");
    make_dir("gdir", 0775);
    copy_fixture("good", at("gdir/abi_good.so"), 0644);
    snprintf(want, sizeof want, "directory %s is writable by group (mode 0775)",
             at("gdir"));
    refused(at("gdir/abi_good.so"), PIPIT_EPERM, want, "directory mode 0775");

    /* The path goes through a symlink; the real directory is named. */
    if (symlink("open", at("via")) == 0) {
        snprintf(want, sizeof want, "directory %s is writable", at("open"));
        refused(at("via/abi_good.so"), PIPIT_EPERM, want,
                "symlinked directory: the real parent is checked");
    } else {
        skip(1, "cannot make a symbolic link");
    }

    /* A root-owned sticky directory, like /tmp, is allowed. */
    if (geteuid() == 0) {
        make_dir("sticky", 01777);
        copy_fixture("oldminor", at("sticky/abi_oldminor.so"), 0644);
        err[0] = '\0';
        is_int(loader_check_path(at("sticky/abi_oldminor.so"), err, sizeof err),
               PIPIT_OK, "root-owned sticky 1777 directory is allowed (%s)", err);
    } else if (stat("/tmp", &st) == 0 && st.st_uid == 0 &&
               (st.st_mode & 07777) == 01777) {
        char path[64];
        int fd;
        snprintf(path, sizeof path, "/tmp/pipit-loader-XXXXXX");
        fd = mkstemp(path);
        if (fd >= 0)
            fchmod(fd, 0644), close(fd);
        err[0] = '\0';
        is_int(loader_check_path(path, err, sizeof err), PIPIT_OK,
               "root-owned sticky /tmp is allowed (%s)", err);
        unlink(path);
    } else {
        skip(1, "not root and /tmp is not a root-owned sticky directory");
    }

    /* A FIFO must be refused, not waited on: a watchdog ends a hang. */
    if (mkfifo(at("lib/fifo.so"), 0644) == 0) {
        alarm(10);
        check_refused(at("lib/fifo.so"), PIPIT_EPERM, "a FIFO, not a regular file",
                      "a FIFO");
        refused(at("lib/fifo.so"), PIPIT_EPERM, "a FIFO, not a regular file",
                "a FIFO, without blocking");
        alarm(0);
    } else {
        skip(2, "cannot make a FIFO");
    }

    if (symlink("abi_good.so", at("lib/link.so")) == 0)
        refused(at("lib/link.so"), PIPIT_EPERM, "is a symbolic link; refusing to load",
                "a symbolic link (O_NOFOLLOW)");
    else
        skip(1, "cannot make a symbolic link");

    make_dir("lib/dir.so", 0755);
    refused(at("lib/dir.so"), PIPIT_EPERM, "a directory, not a regular file",
            "a directory");

    refused(at("lib/missing.so"), PIPIT_ENOENT, "no such file", "a missing file");
    check_refused(at("nodir/in_x.so"), PIPIT_ENOENT, "no such file",
                  "a file in a missing directory");

    /* Ownership: only root can give files away. */
    struct passwd *pw = getpwnam("nobody");
    if (geteuid() == 0 && pw != NULL && pw->pw_uid != 0) {
        copy_fixture("good", at("lib/theirs.so"), 0644);
        if (chown(at("lib/theirs.so"), pw->pw_uid, pw->pw_gid) < 0)
            diag("chown: %s", strerror(errno));
        snprintf(want, sizeof want, "owned by uid %lu, not root or the daemon's "
                 "user (uid 0); refusing to load", (unsigned long)pw->pw_uid);
        refused(at("lib/theirs.so"), PIPIT_EPERM, want, "a file owned by nobody");

        make_dir("theirs", 0755);
        copy_fixture("good", at("theirs/abi_good.so"), 0644);
        if (chown(at("theirs"), pw->pw_uid, pw->pw_gid) < 0)
            diag("chown: %s", strerror(errno));
        snprintf(want, sizeof want, "directory %s is owned by uid %lu, not root "
                 "or the daemon's user", at("theirs"), (unsigned long)pw->pw_uid);
        refused(at("theirs/abi_good.so"), PIPIT_EPERM, want,
                "a directory owned by nobody");
    } else {
        skip(2, "needs root and a user 'nobody' to give files to another owner");
    }
}

/* A plugin refused for its permissions never runs: its constructor would leave a file. */
static void test_sentinel(void)
{
    char sentinel[4096];
    struct stat st;

    snprintf(sentinel, sizeof sentinel, "%s", at("sentinel"));
    setenv("PIPIT_TEST_SENTINEL", sentinel, 1);
    copy_fixture("sentinel", at("lib/sentinel_gw.so"), 0664);
    refused(at("lib/sentinel_gw.so"), PIPIT_EPERM, "writable by group (mode 0664)",
            "sentinel plugin, group-writable");
    copy_fixture("sentinel", at("open/abi_sentinel.so"), 0644);
    refused(at("open/abi_sentinel.so"), PIPIT_EPERM, "is writable by group and others",
            "sentinel plugin in a 0777 directory");
    ok(stat(sentinel, &st) < 0 && errno == ENOENT,
       "the refused plugins' constructors never ran");

    /* The control: once safe, it loads and its constructor runs. */
    chmod(at("lib/sentinel_gw.so"), 0644);
    loads(at("lib/sentinel_gw.so"), "sentinel plugin, mode 0644");
    ok(stat(sentinel, &st) == 0, "a loaded plugin's constructor ran (control)");
    unsetenv("PIPIT_TEST_SENTINEL");
}

/*
 * A symlink swapped in between the checks and the load: a thread renames,
 * as fast as it can, a link to a plugin outside the plugin directory
 * (abi_sentinel, whose constructor makes a file) and a hard link of a good
 * plugin over lib/race.so while it is loaded again and again. Every load
 * must be the good plugin or a refusal of the symbolic link, and the other
 * plugin's constructor must never run: the loader checks and dlopens the
 * same open file, opened without following links.
 */
static struct {
    char link_tmp[4096], good_tmp[4096], good[4096], target[4096];
    volatile int stop;
    unsigned long swaps;
} race;

static void *race_swapper(void *arg)
{
    (void)arg;
    while (!race.stop) {
        unlink(race.link_tmp);
        if (symlink("../outside/evil.so", race.link_tmp) == 0 &&
            rename(race.link_tmp, race.target) == 0)
            race.swaps++;
        unlink(race.good_tmp);
        if (link(race.good, race.good_tmp) == 0 && rename(race.good_tmp, race.target) == 0)
            race.swaps++;
    }
    return NULL;
}

static void test_swap_race(void)
{
    char sentinel[4096];
    unsigned good = 0, refusals = 0, other = 0, rounds = 2000;
    pthread_t t;
    struct stat st;

    snprintf(sentinel, sizeof sentinel, "%s", at("race-sentinel"));
    setenv("PIPIT_TEST_SENTINEL", sentinel, 1);
    make_dir("outside", 0755);
    copy_fixture("sentinel", at("outside/evil.so"), 0644);
    snprintf(race.link_tmp, sizeof race.link_tmp, "%s", at("lib/.race-link"));
    snprintf(race.good_tmp, sizeof race.good_tmp, "%s", at("lib/.race-good"));
    snprintf(race.good, sizeof race.good, "%s", at("lib/abi_good.so"));
    snprintf(race.target, sizeof race.target, "%s", at("lib/race.so"));
    if (link(race.good, race.target) < 0 ||
        pthread_create(&t, NULL, race_swapper, NULL) != 0) {
        skip(2, "cannot start the swapping thread");
        unsetenv("PIPIT_TEST_SENTINEL");
        return;
    }
    for (unsigned i = 0; i < rounds; i++) {
        const struct loader_plugin *p = NULL;
        err[0] = '\0';
        int rc = loader_load(race.target, test_api, &p, err, sizeof err);
        if (rc == PIPIT_OK && p && strcmp(p->desc.name, "abi_good") == 0)
            good++;
        else if (rc == PIPIT_EPERM && strstr(err, "is a symbolic link; refusing to load"))
            refusals++;
        else if (other++ == 0)
            diag("  round %u: status %s, %s", i, pipit_errname(rc),
                 p ? p->desc.name : err);
    }
    race.stop = 1;
    pthread_join(t, NULL);
    diag("  %lu swaps; %u loads of the good plugin, %u refusals of the link", race.swaps,
         good, refusals);
    ok(other == 0, "swap race: each of %u loads is the good plugin or a refused symbolic "
       "link (%u otherwise)", rounds, other);
    ok(stat(sentinel, &st) < 0 && errno == ENOENT,
       "swap race: the plugin the link points to never ran its constructor");
    unsetenv("PIPIT_TEST_SENTINEL");
}

/* After loader_reset the same file is loaded afresh and load() runs again. */
static void test_reset(void)
{
    const struct loader_plugin *p;

    loader_reset();
    p = loads(at("lib/abi_good.so"), "abi_good after loader_reset");
    ok(p != NULL && strcmp(p->desc.name, "abi_good") == 0,
       "after loader_reset: loaded again with load()");
    loader_reset();
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int main(void)
{
    static const char *const all[] = {
        "good", "evented", "oldminor", "sentinel", "nosym", "undef", "null",
        "magic", "major2", "minor99", "big", "small", "noname", "badname",
        "noversion", "noflush", "nocollect", "noact", "kinds", "loadfail",
        "opttype", "optoffset", "nodelete",
    };
    const char *base = getenv("TMPDIR");
    char rel[128];
    int copied = 0;

    test_api = instance_api();
    fixtures = getenv("PIPIT_TEST_LIB");
    if (fixtures == NULL || *fixtures == '\0')
        plan_skip_all("PIPIT_TEST_LIB is not set (run through make check)");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    snprintf(tmp, sizeof tmp, "%s/pipit-loader.XXXXXX", base);
    if (mkdtemp(tmp) == NULL) {
        printf("Bail out! mkdtemp %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    umask(022);

    /* Fixtures are loaded from copies in a directory known to be safe: the
     * build tree's own directories may be group-writable (umask 002). */
    make_dir("lib", 0755);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        snprintf(rel, sizeof rel, "lib/abi_%s.so", all[i]);
        copied += copy_fixture(all[i], at(rel), 0755) == 0;
    }
    if (!ok(copied == (int)(sizeof all / sizeof all[0]),
            "copied every fixture from %s", fixtures))
        goto out;
    err[0] = '\0';
    if (!ok(loader_check_path(at("lib/abi_good.so"), err, sizeof err) == PIPIT_OK,
            "the private directory %s is a safe place to load from", tmp)) {
        diag("  %s", err);
        goto out;
    }

    test_resolve();
    test_abi_refusals();
    test_good();
    test_permissions();
    test_sentinel();
    test_swap_race();
    test_reset();

out:
    loader_reset();
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return done_testing();
}
