/* cmd_sign_plugin.c: pipit sign-plugin: write the detached Ed25519 signature PLUGIN.so.sig of plugin files. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <pipit/plugin.h>
#include "command_key.h"
#include "commands.h"
#include "fsutil.h"
#include "plugin_sig.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: pipit sign-plugin -k|--key PRIVATE.key PLUGIN.so...\n"
        "\n"
        "Sign each plugin file with the Ed25519 private key (made by pipit keygen)\n"
        "and write the signature next to it as PLUGIN.so.sig (mode 0644, replacing\n"
        "an older one). Agents with plugins.require_signature load a plugin only\n"
        "when its signature is good and by a key of plugins.trusted_keys\n"
        "(docs/plugin-guide.md, \"Signed plugins\"). Prints the key id on stdout.\n"
        "\n"
        "  -k, --key FILE   the private key (mode 0600)\n"
        "  -h, --help       show this help\n"
        "\n"
        "Exit 0 when every plugin was signed, 1 when one could not be (the others\n"
        "are still signed), 2 on usage errors.\n");
}

/*
 * Write line to "<path>.sig" through a temporary file renamed over it, so
 * that a reader sees the old signature or the new one, never a part.
 * Reports its own errors. Returns 0 or 1.
 */
static int write_sig(const char *path, const char *line)
{
    char sig[4096];

    if (snprintf(sig, sizeof sig, "%s%s", path, PLUGIN_SIG_SUFFIX) >= (int)sizeof sig) {
        fprintf(stderr, "pipit sign-plugin: %s: path too long\n", path);
        return 1;
    }
    /* 0644 exactly: group and others must not write it (the loader refuses that) */
    if (fs_write_atomic(sig, line, strlen(line), 0644) != 0) {
        fprintf(stderr, "pipit sign-plugin: %s: cannot write: %s\n", sig, strerror(errno));
        return 1;
    }
    return 0;
}

/* Sign one plugin file; reports its own errors. Returns 0 or 1. */
static int sign_one(EVP_PKEY *key, const char *path)
{
    char line[PLUGIN_SIG_MAX], err[1024];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0) {
        fprintf(stderr, "pipit sign-plugin: %s: cannot open: %s\n", path, strerror(errno));
        return 1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "pipit sign-plugin: %s: not a regular file\n", path);
        close(fd);
        return 1;
    }
    if (plugin_sig_make(key, fd, path, line, sizeof line, err, sizeof err) != PIPIT_OK) {
        fprintf(stderr, "pipit sign-plugin: %s\n", err);
        close(fd);
        return 1;
    }
    close(fd);
    if (write_sig(path, line) != 0)
        return 1;
    fprintf(stderr, "pipit sign-plugin: wrote %s%s\n", path, PLUGIN_SIG_SUFFIX);
    return 0;
}

int cmd_sign_plugin(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "key", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *key_path = NULL;
    char id[COMMAND_KEY_ID_LEN + 1], err[1024];
    EVP_PKEY *key;
    int c, status = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "k:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': key_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!key_path || !*key_path) {
        fprintf(stderr, "pipit sign-plugin: --key PRIVATE.key is required (pipit keygen "
                "makes one)\n");
        usage(stderr);
        return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "pipit sign-plugin: no plugin file given\n");
        usage(stderr);
        return 2;
    }
    if (command_key_load_private(key_path, &key, err, sizeof err) != PIPIT_OK) {
        fprintf(stderr, "pipit sign-plugin: %s\n", err);
        return 1;
    }
    command_key_id(key, id);
    for (int i = optind; i < argc; i++)
        status |= sign_one(key, argv[i]);
    EVP_PKEY_free(key);
    printf("%s\n", id);
    if (fflush(stdout) != 0)
        return 1;
    return status;
}
