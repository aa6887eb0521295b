/* cmd_keygen.c: pipit keygen: make the Ed25519 key pair that signs fleet commands. */
#include <getopt.h>
#include <stdio.h>
#include <pipit/plugin.h>
#include "command_key.h"
#include "commands.h"

#define DEFAULT_PREFIX "pipit-deploy"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: pipit keygen [-o|--out PREFIX]\n"
        "\n"
        "Make an Ed25519 key pair for signing deployment commands\n"
        "(docs/deployments.md) and write PREFIX.key, the private key (PKCS#8\n"
        "PEM, mode 0600), and PREFIX.pub, the public key (PEM) that agents list\n"
        "in commands.trusted_keys. PREFIX defaults to " DEFAULT_PREFIX ". An existing\n"
        "file is never overwritten. Prints the key id (16 hex digits) on stdout.\n"
        "\n"
        "  -o, --out PREFIX   where to write the two files\n"
        "  -h, --help         show this help\n"
        "\n"
        "Exit 0 when both files were written, 1 when they could not be (nothing\n"
        "is left behind), 2 on usage errors.\n");
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "out", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *prefix = DEFAULT_PREFIX;
    char id[COMMAND_KEY_ID_LEN + 1], err[512];
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': prefix = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pipit keygen: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!*prefix) {
        fprintf(stderr, "pipit keygen: --out wants a file name prefix\n");
        return 2;
    }
    if (command_keygen(prefix, id, err, sizeof err) != PIPIT_OK) {
        fprintf(stderr, "pipit keygen: %s\n", err);
        return 1;
    }
    fprintf(stderr, "pipit keygen: wrote %s.key (private: keep it secret) and %s.pub "
            "(public: give it to the agents)\n", prefix, prefix);
    printf("%s\n", id);
    if (fflush(stdout) != 0)
        return 1;
    return 0;
}
