/* test_plugin_sig.c: signed plugins: the loader refuses unsigned, untrusted, modified and badly signed files before dlopen. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "command_key.h"
#include "errors.h"
#include "instance.h"
#include "loader.h"
#include "plugin_sig.h"
#include "../tap.h"

static const struct pipit_api *test_api;
static const char *fixtures;            /* $PIPIT_TEST_LIB */
static char tmp[4096];                  /* private temporary directory */
static char sentinel[4096];             /* the file abi_sentinel's constructor makes */
static char err[1024];
static EVP_PKEY *trusted_key, *other_key; /* private keys */
static struct command_keyring ring = COMMAND_KEYRING_INIT; /* trusted_key's public half */

/* tmp + "/" + rel into a static buffer (one of four, reused in turn). */
static const char *at(const char *rel)
{
    static char bufs[4][4096];
    static int n;
    char *b = bufs[n++ % 4];

    if (snprintf(b, sizeof bufs[0], "%s/%s", tmp, rel) >= (int)sizeof bufs[0])
        abort();
    return b;
}

/* Copy the sentinel fixture to tmp/rel, mode 0755; returns 0 or -1. */
static int copy_sentinel(const char *rel)
{
    char src[4096], buf[65536];
    int in, out, rc = -1;
    ssize_t n;

    snprintf(src, sizeof src, "%s/abi_sentinel.so", fixtures);
    in = open(src, O_RDONLY | O_CLOEXEC);
    out = open(at(rel), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    if (in < 0 || out < 0) {
        diag("cannot copy %s to %s: %s", src, at(rel), strerror(errno));
        goto done;
    }
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n)
            goto done;
    rc = n < 0 ? -1 : 0;
done:
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) < 0)
        rc = -1;
    return rc;
}

/* Write text to tmp/rel (replacing it) with mode. */
static void write_file(const char *rel, const char *text, mode_t mode)
{
    int fd;

    unlink(at(rel));
    fd = open(at(rel), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
        fchmod(fd, mode) != 0)
        diag("cannot write %s: %s", at(rel), strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* Sign tmp/rel with key into tmp/rel.sig (mode 0644). */
static void sign(const char *rel, EVP_PKEY *key)
{
    char line[PLUGIN_SIG_MAX], sig[4200];
    int fd = open(at(rel), O_RDONLY | O_CLOEXEC);

    if (fd < 0 || plugin_sig_make(key, fd, at(rel), line, sizeof line, err, sizeof err) !=
                      PIPIT_OK) {
        diag("cannot sign %s: %s", at(rel), fd < 0 ? strerror(errno) : err);
        line[0] = '\0';
    }
    if (fd >= 0)
        close(fd);
    snprintf(sig, sizeof sig, "%s.sig", rel);
    write_file(sig, line, 0644);
}

static bool sentinel_absent(void)
{
    struct stat st;
    return stat(sentinel, &st) < 0 && errno == ENOENT;
}

/* Loading tmp/rel is refused with want and a reason naming it; its code never ran. */
static void refused(const char *rel, int want, const char *reason, const char *what)
{
    const struct loader_plugin *p = NULL;
    const char *path = at(rel);
    int rc;

    err[0] = '\0';
    rc = loader_load(path, test_api, &p, err, sizeof err);
    if (!ok(rc == want && p == NULL && strncmp(err, path, strlen(path)) == 0 &&
            strstr(err, reason) != NULL, "%s: refused", what)) {
        diag("  status %s (want %s)", pipit_errname(rc), pipit_errname(want));
        diag("  err: %s", err);
        diag("  want: %s: ...%s...", path, reason);
    } else {
        diag("  %s", err);
    }
    ok(sentinel_absent(), "%s: its constructor never ran", what);
}

/* Loading tmp/rel succeeds and runs its constructor (the sentinel is then removed). */
static void loads(const char *rel, const char *what)
{
    const struct loader_plugin *p = NULL;
    int rc;

    err[0] = '\0';
    rc = loader_load(at(rel), test_api, &p, err, sizeof err);
    if (!ok(rc == PIPIT_OK && p != NULL, "%s: loads", what))
        diag("  status %s, err: %s", pipit_errname(rc), err);
    ok(!sentinel_absent(), "%s: its constructor ran", what);
    unlink(sentinel);
}

static void test_signatures(void)
{
    char line[PLUGIN_SIG_MAX];

    ok(loader_set_signature_policy(&ring) == PIPIT_OK, "signatures required");

    copy_sentinel("lib/signed.so");
    sign("lib/signed.so", trusted_key);
    loads("lib/signed.so", "signed by a trusted key");

    copy_sentinel("lib/unsigned.so");
    refused("lib/unsigned.so", PIPIT_EPERM, "no signature file", "unsigned");

    copy_sentinel("lib/other.so");
    sign("lib/other.so", other_key);
    refused("lib/other.so", PIPIT_EPERM, "not in plugins.trusted_keys",
            "signed by an untrusted key");

    /* One byte changed after signing: the last, so the ELF still loads. */
    copy_sentinel("lib/changed.so");
    sign("lib/changed.so", trusted_key);
    {
        int fd = open(at("lib/changed.so"), O_RDWR | O_CLOEXEC);
        struct stat st;
        unsigned char b;
        if (fd < 0 || fstat(fd, &st) != 0 || pread(fd, &b, 1, st.st_size - 1) != 1)
            diag("cannot read lib/changed.so");
        b ^= 0x01;
        if (fd < 0 || pwrite(fd, &b, 1, st.st_size - 1) != 1)
            diag("cannot change lib/changed.so");
        if (fd >= 0)
            close(fd);
    }
    refused("lib/changed.so", PIPIT_EPERM, "the file was changed after it was signed",
            "a byte changed after signing");

    /* The signature of another file is a bad signature too. */
    copy_sentinel("lib/moved.so");
    {
        int in = open(at("lib/signed.so.sig"), O_RDONLY | O_CLOEXEC);
        ssize_t n = in >= 0 ? read(in, line, sizeof line - 1) : -1;
        line[n > 0 ? n : 0] = '\0';
        if (in >= 0)
            close(in);
        /* signed.so and moved.so are the same bytes: append one to differ */
        int fd = open(at("lib/moved.so"), O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0 || write(fd, "", 1) != 1)
            diag("cannot append to lib/moved.so");
        if (fd >= 0)
            close(fd);
        write_file("lib/moved.so.sig", line, 0644);
    }
    refused("lib/moved.so", PIPIT_EPERM, "bad signature", "another file's signature");

    copy_sentinel("lib/garbage.so");
    write_file("lib/garbage.so.sig", "this is not a signature\n", 0644);
    refused("lib/garbage.so", PIPIT_EPARSE, "malformed signature file", "a malformed .sig");

    copy_sentinel("lib/twolines.so");
    sign("lib/twolines.so", trusted_key);
    {
        int fd = open(at("lib/twolines.so.sig"), O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0 || write(fd, "more\n", 5) != 5)
            diag("cannot append to lib/twolines.so.sig");
        if (fd >= 0)
            close(fd);
    }
    refused("lib/twolines.so", PIPIT_EPARSE, "text after the signature",
            "a .sig with a second line");

    copy_sentinel("lib/shortsig.so");
    write_file("lib/shortsig.so.sig", "pipit-plugin-signature v1 0123456789abcdef AAAA\n",
               0644);
    refused("lib/shortsig.so", PIPIT_EPARSE, "not 88 base64 characters",
            "a .sig with a short signature");

    copy_sentinel("lib/openw.so");
    sign("lib/openw.so", trusted_key);
    chmod(at("lib/openw.so.sig"), 0646);
    refused("lib/openw.so", PIPIT_EPERM, "writable by others", "a .sig writable by others");

    copy_sentinel("lib/linked.so");
    sign("lib/linked.so", trusted_key);
    rename(at("lib/linked.so.sig"), at("lib/real.sig"));
    if (symlink("real.sig", at("lib/linked.so.sig")) != 0)
        diag("cannot link: %s", strerror(errno));
    refused("lib/linked.so", PIPIT_EPERM, "symbolic link", "a .sig that is a symbolic link");
}

/* A file loaded while no signature was required is still checked later. */
static void test_policy_changes(void)
{
    loader_set_signature_policy(NULL);
    copy_sentinel("lib/early.so");
    loads("lib/early.so", "unsigned, no signature required");
    loader_set_signature_policy(&ring);
    err[0] = '\0';
    const struct loader_plugin *p = NULL;
    ok(loader_load(at("lib/early.so"), test_api, &p, err, sizeof err) == PIPIT_EPERM &&
       p == NULL && strstr(err, "no signature file"), "the same file asked for again once "
       "signatures are required: refused");
    diag("  %s", err);
    loader_set_signature_policy(NULL);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    char id[COMMAND_KEY_ID_LEN + 1];

    test_api = instance_api();
    fixtures = getenv("PIPIT_TEST_LIB");
    if (fixtures == NULL || *fixtures == '\0')
        plan_skip_all("PIPIT_TEST_LIB is not set (run through make check)");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    snprintf(tmp, sizeof tmp, "%s/pipit-plugsig.XXXXXX", base);
    if (mkdtemp(tmp) == NULL) {
        printf("Bail out! mkdtemp %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    umask(022);
    if (mkdir(at("lib"), 0755) != 0)
        diag("mkdir: %s", strerror(errno));
    snprintf(sentinel, sizeof sentinel, "%s", at("sentinel"));
    setenv("PIPIT_TEST_SENTINEL", sentinel, 1);

    if (!ok(command_keygen(at("trusted"), id, err, sizeof err) == PIPIT_OK &&
            command_keygen(at("other"), id, err, sizeof err) == PIPIT_OK &&
            command_key_load_private(at("trusted.key"), &trusted_key, err, sizeof err) ==
                PIPIT_OK &&
            command_key_load_private(at("other.key"), &other_key, err, sizeof err) ==
                PIPIT_OK &&
            command_keyring_add_file(&ring, at("trusted.pub"), err, sizeof err) == PIPIT_OK,
            "two key pairs made, one trusted")) {
        diag("  %s", err);
        goto out;
    }

    test_signatures();
    test_policy_changes();

out:
    loader_set_signature_policy(NULL);
    loader_reset();
    command_keyring_free(&ring);
    EVP_PKEY_free(trusted_key);
    EVP_PKEY_free(other_key);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return done_testing();
}
