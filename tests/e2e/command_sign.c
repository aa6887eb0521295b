/* command_sign.c: write one signed command message, for commands.sh (the tests' stand-in for pipit deploy). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "buf.h"
#include "command.h"
#include "config.h"
#include "errors.h"

/*
 * command_sign KEY.key PLAN.yaml ID TARGET [ISSUED_OFFSET_S VALIDITY_S [NONCE [k=v...]]]
 * prints the message on stdout. ISSUED_OFFSET_S moves issued_at from now
 * (negative: in the past); NONCE "-" makes a fresh one.
 */
int main(int argc, char **argv)
{
    struct command c = { 0 };
    struct buf plan = BUF_INIT, out = BUF_INIT;
    const char *why = NULL;
    EVP_PKEY *key = NULL;
    char err[512];

    if (argc < 5) {
        fprintf(stderr, "usage: command_sign KEY PLAN ID TARGET [OFFSET VALIDITY [NONCE "
                        "[k=v...]]]\n");
        return 2;
    }
    if (command_key_load_private(argv[1], &key, err, sizeof err) != PIPIT_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (cfg_read_small_file(argv[2], 1 << 20, &plan, &why) != PIPIT_OK) {
        fprintf(stderr, "%s: %s\n", argv[2], why);
        return 1;
    }
    int64_t now = (int64_t)time(NULL);
    c.id = argv[3];
    c.plan = plan.data;
    c.target = argv[4];
    c.issued_at = now + (argc > 5 ? strtoll(argv[5], NULL, 10) : 0);
    c.expires_at = c.issued_at + (argc > 6 ? strtoll(argv[6], NULL, 10) : 3600);
    if (argc > 7 && strcmp(argv[7], "-") != 0)
        snprintf(c.nonce, sizeof c.nonce, "%s", argv[7]);
    else
        command_new_nonce(c.nonce);
    const char *keys[64], *values[64];
    size_t n = 0;
    for (int i = 8; i < argc && n < 64; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            continue;
        *eq = '\0';
        keys[n] = argv[i];
        values[n++] = eq + 1;
    }
    c.vars.keys = keys;
    c.vars.values = values;
    c.vars.count = n;
    if (command_sign(&c, key, &out, err, sizeof err) != PIPIT_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    fwrite(out.data, 1, out.len, stdout);
    EVP_PKEY_free(key);
    buf_free(&plan);
    buf_free(&out);
    return 0;
}
