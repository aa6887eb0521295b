/* fuzz_command.c: libFuzzer target for the command envelope (command_verify) and target selectors (selector_parse). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "command.h"
#include "log.h"
#include "selector.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seeds are signed with this key (the raw Ed25519 private key: bytes 0..31). */
static const unsigned char seed_key[32] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};
#define NOW 1700000000
#define SKEW 60

static EVP_PKEY *key;
static struct command_keyring ring = COMMAND_KEYRING_INIT;
static char journal_path[256];
static const char *const label_keys[] = { "role", "env" };
static const char *const label_values[] = { "web", "prod" };
static const struct pipit_strmap labels = { label_keys, label_values, 2 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];

    log_setup(fopen("/dev/null", "w"), LOG_FMT_LOGFMT, PIPIT_LOG_ERROR);
    key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed_key, sizeof seed_key);
    EVP_PKEY_up_ref(key);
    if (!key || command_keyring_add(&ring, key, "fuzz key", err, sizeof err) != PIPIT_OK)
        abort();
    snprintf(journal_path, sizeof journal_path, "/tmp/fuzz_command.%ld.journal",
             (long)getpid());
    return 0;
}

/* The input as the envelope, signed with the seed key and wrapped as a message. */
static char *wrap(const uint8_t *data, size_t size)
{
    unsigned char sig[64];
    char b64[89], id[17];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    if (!md || EVP_DigestSignInit(md, NULL, NULL, NULL, key) != 1 ||
        EVP_DigestSign(md, sig, &siglen, data, size) != 1)
        abort();
    EVP_MD_CTX_free(md);
    EVP_EncodeBlock((unsigned char *)b64, sig, 64);
    command_key_id(key, id);
    json_t *env = json_stringn((const char *)data, size);   /* NULL when not UTF-8 */
    if (!env)
        return NULL;
    json_t *m = json_pack("{s:i,s:s,s:o,s:s}", "v", 1, "key_id", id, "envelope", env,
                          "signature", b64);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    return text;
}

/* What an accepted command promises. */
static void check_accepted(const struct command *c)
{
    struct selector sel;
    char err[256];

    if (!c->id || !c->plan || !c->target || strlen(c->nonce) != NONCE_HEX_LEN ||
        c->expires_at <= c->issued_at || c->expires_at - c->issued_at > COMMAND_MAX_VALIDITY ||
        NOW + SKEW < c->issued_at || NOW - SKEW > c->expires_at)
        abort();
    if (selector_parse(c->target, &sel, err, sizeof err) != PIPIT_OK)
        abort();
    if (!selector_match(&sel, "web-01", &labels))
        abort();
    selector_free(&sel);
    /* signed again, it verifies to the same fields */
    struct buf b = BUF_INIT;
    struct command back;
    struct command_verify_opts o = { .trusted = &ring, .now = NOW, .skew = SKEW,
                                     .host = "web-01", .labels = &labels };
    if (command_sign(c, key, &b, err, sizeof err) != PIPIT_OK ||
        command_verify(b.data, b.len, &o, &back, err, sizeof err) != COMMAND_OK ||
        strcmp(back.id, c->id) || strcmp(back.plan, c->plan) || strcmp(back.target, c->target) ||
        strcmp(back.nonce, c->nonce) || back.issued_at != c->issued_at ||
        back.expires_at != c->expires_at || back.vars.count != c->vars.count)
        abort();
    /* the same variables: signing writes them sorted, so compare by name */
    for (size_t i = 0; i < c->vars.count; i++) {
        size_t j = 0;
        while (j < back.vars.count && strcmp(back.vars.keys[j], c->vars.keys[i]) != 0)
            j++;
        if (j == back.vars.count || strcmp(back.vars.values[j], c->vars.values[i]))
            abort();
    }
    command_free(&back);
    buf_free(&b);
}

static enum command_reason verify_checked(const void *msg, size_t len, nonce_journal *j)
{
    struct command c;
    char err[512];
    struct command_verify_opts o = { .trusted = &ring, .now = NOW, .skew = SKEW,
                                     .host = "web-01", .labels = &labels, .journal = j };

    err[0] = '\0';
    enum command_reason r = command_verify(msg, len, &o, &c, err, sizeof err);
    if ((unsigned)r >= COMMAND_REASON_MAX || !command_reason_name(r)[0])
        abort();
    if (r != COMMAND_OK && !err[0])
        abort();                        /* every refusal says why */
    if (r == COMMAND_OK) {
        check_accepted(&c);
        if (j && !nonce_journal_seen(j, c.nonce))
            abort();                    /* accepted means recorded */
    } else if (c.plan || c.target || c.vars.count) {
        abort();                        /* a refusal hands back nothing ... */
    } else if (c.id && r != COMMAND_NOT_YET_VALID && r != COMMAND_EXPIRED &&
               r != COMMAND_REPLAYED && r != COMMAND_JOURNAL_FAILED) {
        abort();                        /* ... but the id of a command for this agent */
    }
    command_free(&c);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    nonce_journal *j;

    unlink(journal_path);
    if (nonce_journal_open(&j, journal_path, SKEW, NOW, err, sizeof err) != PIPIT_OK)
        abort();

    /* the input as a message */
    verify_checked(data, size, j);

    /* the input as an envelope, signed: the fields, window, target and replay */
    char *msg = wrap(data, size);
    if (msg) {
        enum command_reason r = verify_checked(msg, strlen(msg), j);
        if (r == COMMAND_OK && verify_checked(msg, strlen(msg), j) != COMMAND_REPLAYED)
            abort();                    /* the second time is a replay */
        free(msg);
    }
    nonce_journal_close(j);

    /* the input as a selector */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct selector sel;
    int r = selector_parse(text, &sel, err, sizeof err);
    if (r == PIPIT_OK) {
        if (!sel.all && sel.count == 0)
            abort();
        for (size_t i = 0; i < sel.count; i++)
            if (!sel.terms[i].key[0] || !sel.terms[i].glob[0] || strchr(sel.terms[i].glob, ','))
                abort();
        selector_match(&sel, "web-01", &labels);
        selector_match(&sel, "", NULL);
        selector_free(&sel);
    } else if (r != PIPIT_EPARSE || strncmp(err, "at position ", 12) != 0 ||
               sel.terms || sel.count) {
        abort();
    }
    free(text);

    /* the input as a nonce journal file */
    FILE *f = fopen(journal_path, "w");
    if (f) {
        fwrite(data, 1, size, f);
        fclose(f);
        if (nonce_journal_open(&j, journal_path, SKEW, NOW, err, sizeof err) == PIPIT_OK) {
            if (nonce_journal_count(j) > nonce_journal_lines(j))
                abort();
            nonce_journal_close(j);
        } else if (!err[0]) {
            abort();
        }
    }
    unlink(journal_path);
    return 0;
}
