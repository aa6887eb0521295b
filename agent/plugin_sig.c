/* plugin_sig.c: detached Ed25519 signatures of plugin files (PLUGIN.so.sig): make, read, verify. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pipit/plugin.h>
#include "loader.h"
#include "plugin_sig.h"

#define SIG_RAW_LEN 64                  /* an Ed25519 signature */
#define SIG_B64_LEN 88                  /* base64 of 64 bytes, "==" padded */

static int sfail(int r, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int sfail(int r, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

int plugin_sig_digest(int fd, const char *path, unsigned char md[32], char *err,
                      size_t errlen)
{
    unsigned char buf[65536];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int mdlen = 0;
    off_t off = 0;
    int r = PIPIT_EIO;

    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        r = sfail(PIPIT_EIO, err, errlen, "%s: cannot hash: no SHA-256", path);
        goto out;
    }
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = sfail(PIPIT_EIO, err, errlen, "%s: cannot read to check its signature: %s",
                      path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
            goto fail_hash;
        off += n;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
        goto fail_hash;
    r = PIPIT_OK;
    goto out;
fail_hash:
    r = sfail(PIPIT_EIO, err, errlen, "%s: cannot hash", path);
out:
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    return r;
}

/* The message a plugin signature covers: the domain, its NUL, the digest. */
static size_t sig_message(const unsigned char md[32], unsigned char *msg)
{
    size_t n = sizeof PLUGIN_SIG_DOMAIN;    /* with the NUL */

    memcpy(msg, PLUGIN_SIG_DOMAIN, n);
    memcpy(msg + n, md, 32);
    return n + 32;
}

int plugin_sig_make(EVP_PKEY *key, int fd, const char *path, char *line, size_t linelen,
                    char *err, size_t errlen)
{
    unsigned char md[32], msg[sizeof PLUGIN_SIG_DOMAIN + 32], sig[SIG_RAW_LEN];
    unsigned char b64[SIG_B64_LEN + 1];
    char id[COMMAND_KEY_ID_LEN + 1];
    size_t siglen = sizeof sig, msglen;
    EVP_MD_CTX *ctx;
    int r;

    if (command_key_id(key, id) != PIPIT_OK)
        return sfail(PIPIT_EINVAL, err, errlen, "not an Ed25519 key");
    if ((r = plugin_sig_digest(fd, path, md, err, errlen)) != PIPIT_OK)
        return r;
    msglen = sig_message(md, msg);
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, msg, msglen) != 1 || siglen != SIG_RAW_LEN) {
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        return sfail(PIPIT_EIO, err, errlen, "%s: cannot sign", path);
    }
    EVP_MD_CTX_free(ctx);
    if (EVP_EncodeBlock(b64, sig, (int)siglen) != SIG_B64_LEN)
        return sfail(PIPIT_EIO, err, errlen, "%s: cannot encode the signature", path);
    if ((size_t)snprintf(line, linelen, "%s %s %s %s\n", PLUGIN_SIG_MAGIC,
                         PLUGIN_SIG_VERSION, id, (const char *)b64) >= linelen)
        return sfail(PIPIT_EINVAL, err, errlen, "%s: signature line too long", path);
    return PIPIT_OK;
}

/* Take the next space-free word of *p (up to a space, newline or the end). */
static size_t next_word(const char **p, const char *end, const char **word)
{
    const char *s = *p;

    *word = s;
    while (s < end && *s != ' ' && *s != '\n')
        s++;
    *p = s;
    return (size_t)(s - *word);
}

static bool is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/*
 * Parse a signature line: the magic, the version, a 16-hex-digit key id
 * and 88 base64 characters ending "==", one space apart, then at most one
 * newline. Returns PIPIT_OK with id and sig filled, or PIPIT_EPARSE.
 */
static int sig_parse(const char *path, const char *text, size_t len,
                     char id[COMMAND_KEY_ID_LEN + 1], unsigned char sig[SIG_RAW_LEN],
                     char *err, size_t errlen)
{
    const char *p = text, *end = text + len, *w;
    unsigned char raw[SIG_RAW_LEN + 3];
    size_t n;

    if (len > 0 && text[len - 1] == '\n')
        end--;
    n = next_word(&p, end, &w);
    if (n != strlen(PLUGIN_SIG_MAGIC) || memcmp(w, PLUGIN_SIG_MAGIC, n) != 0)
        return sfail(PIPIT_EPARSE, err, errlen, "%s: malformed signature file %s%s: does not "
                     "begin with \"%s\"", path, path, PLUGIN_SIG_SUFFIX, PLUGIN_SIG_MAGIC);
    if (p < end && *p == ' ')
        p++;
    n = next_word(&p, end, &w);
    if (n != strlen(PLUGIN_SIG_VERSION) || memcmp(w, PLUGIN_SIG_VERSION, n) != 0)
        return sfail(PIPIT_EPARSE, err, errlen, "%s: malformed signature file %s%s: version "
                     "\"%.*s\" is not %s", path, path, PLUGIN_SIG_SUFFIX, (int)(n > 16 ? 16 : n),
                     w, PLUGIN_SIG_VERSION);
    if (p < end && *p == ' ')
        p++;
    n = next_word(&p, end, &w);
    bool hex = n == COMMAND_KEY_ID_LEN;
    for (size_t i = 0; hex && i < n; i++)
        hex = (w[i] >= '0' && w[i] <= '9') || (w[i] >= 'a' && w[i] <= 'f');
    if (!hex)
        return sfail(PIPIT_EPARSE, err, errlen, "%s: malformed signature file %s%s: the key "
                     "id is not %d hex digits", path, path, PLUGIN_SIG_SUFFIX, COMMAND_KEY_ID_LEN);
    memcpy(id, w, n);
    id[n] = '\0';
    if (p < end && *p == ' ')
        p++;
    n = next_word(&p, end, &w);
    bool b64 = n == SIG_B64_LEN && w[n - 1] == '=' && w[n - 2] == '=';
    for (size_t i = 0; b64 && i < n - 2; i++)
        b64 = is_b64(w[i]);
    if (!b64 || p != end)
        return sfail(PIPIT_EPARSE, err, errlen, "%s: malformed signature file %s%s: %s", path,
                     path, PLUGIN_SIG_SUFFIX, !b64 ? "the signature is not 88 base64 characters"
                                             : "text after the signature");
    if (EVP_DecodeBlock(raw, (const unsigned char *)w, (int)n) != SIG_RAW_LEN + 2)
        return sfail(PIPIT_EPARSE, err, errlen, "%s: malformed signature file %s%s: the "
                     "signature is not base64", path, path, PLUGIN_SIG_SUFFIX);
    memcpy(sig, raw, SIG_RAW_LEN);
    return PIPIT_OK;
}

int plugin_sig_verify(const struct command_keyring *ring, int fd, const char *path,
                      const char *text, size_t len, char *err, size_t errlen)
{
    unsigned char md[32], msg[sizeof PLUGIN_SIG_DOMAIN + 32], sig[SIG_RAW_LEN];
    char id[COMMAND_KEY_ID_LEN + 1];
    const struct command_trusted_key *tk;
    EVP_MD_CTX *ctx;
    size_t msglen;
    int r, ok;

    if ((r = sig_parse(path, text, len, id, sig, err, errlen)) != PIPIT_OK)
        return r;
    if (!(tk = command_keyring_find(ring, id)))
        return sfail(PIPIT_EPERM, err, errlen, "%s: signed by key %s, which is not in "
                     "plugins.trusted_keys; refusing to load", path, id);
    if ((r = plugin_sig_digest(fd, path, md, err, errlen)) != PIPIT_OK)
        return r;
    msglen = sig_message(md, msg);
    ctx = EVP_MD_CTX_new();
    ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, tk->key) == 1 &&
         EVP_DigestVerify(ctx, sig, sizeof sig, msg, msglen) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    if (!ok)
        return sfail(PIPIT_EPERM, err, errlen, "%s: bad signature by key %s (%s): the file "
                     "was changed after it was signed; refusing to load", path, id,
                     tk->source);
    return PIPIT_OK;
}

int plugin_sig_require_files(const char *const *files, size_t n, char *err, size_t errlen)
{
    struct command_keyring ring = COMMAND_KEYRING_INIT;
    int r = PIPIT_OK;

    if (!files)
        return loader_set_signature_policy(NULL);
    for (size_t i = 0; i < n && r == PIPIT_OK; i++)
        r = command_keyring_add_file(&ring, files[i], err, errlen);
    if (r == PIPIT_OK && (r = loader_set_signature_policy(&ring)) != PIPIT_OK)
        sfail(r, err, errlen, "out of memory");
    command_keyring_free(&ring);
    return r;
}
