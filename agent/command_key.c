/* command_key.c: Ed25519 keys that sign fleet commands: generate, load, key ids, the trusted set. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pipit/plugin.h>
#include "command_key.h"
#include "fsutil.h"

static int kfail(int r, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int kfail(int r, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

/* The reason of OpenSSL's last error, and the queue cleared. */
static const char *ossl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (!e)
        snprintf(buf, len, "no PEM data");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

int command_key_id(EVP_PKEY *key, char id[COMMAND_KEY_ID_LEN + 1])
{
    unsigned char raw[32], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t len = sizeof raw;

    if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519 ||
        EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof raw ||
        EVP_Digest(raw, len, md, &mdlen, EVP_sha256(), NULL) != 1) {
        ERR_clear_error();
        return PIPIT_EINVAL;
    }
    for (int i = 0; i < COMMAND_KEY_ID_LEN / 2; i++)
        snprintf(id + 2 * i, 3, "%02x", md[i]);
    return PIPIT_OK;
}

/* Write all of data to a new file (O_EXCL) at path with mode, fsync'd. */
static int write_new(const char *path, mode_t mode, const char *data, size_t len, char *err,
                     size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return kfail(errno == EEXIST ? PIPIT_EINVAL : PIPIT_EIO, err, errlen, "%s: %s",
                     path, errno == EEXIST ? "already exists; refusing to overwrite a key"
                                           : strerror(errno));
    /* the umask can only take bits away, but make sure of 0600 for the secret */
    if ((mode & 077) == 0 && fchmod(fd, mode) != 0)
        goto fail;
    if (fs_write_all(fd, data, len) != 0 || fsync(fd) != 0)
        goto fail;
    close(fd);
    return PIPIT_OK;
fail:
    {
        int e = errno ? errno : EIO;
        close(fd);
        unlink(path);
        return kfail(PIPIT_EIO, err, errlen, "%s: cannot write: %s", path, strerror(e));
    }
}

int command_keygen(const char *prefix, char key_id[COMMAND_KEY_ID_LEN + 1], char *err,
                   size_t errlen)
{
    char key_path[4096], pub_path[4096], why[256];
    EVP_PKEY *key = NULL;
    BIO *priv = NULL, *pub = NULL;
    char *p;
    long n;
    int r = PIPIT_EIO;

    if (!prefix || !*prefix ||
        snprintf(key_path, sizeof key_path, "%s.key", prefix) >= (int)sizeof key_path ||
        snprintf(pub_path, sizeof pub_path, "%s.pub", prefix) >= (int)sizeof pub_path)
        return kfail(PIPIT_EINVAL, err, errlen, "key file prefix empty or too long");
    /* check both before writing either, so that a refusal leaves nothing */
    for (int i = 0; i < 2; i++) {
        const char *path = i ? pub_path : key_path;
        struct stat st;
        if (lstat(path, &st) == 0)
            return kfail(PIPIT_EINVAL, err, errlen, "%s: already exists; refusing to "
                         "overwrite a key", path);
    }
    key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    priv = BIO_new(BIO_s_mem());
    pub = BIO_new(BIO_s_mem());
    if (!key || !priv || !pub ||
        PEM_write_bio_PKCS8PrivateKey(priv, key, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_PUBKEY(pub, key) != 1 || command_key_id(key, key_id) != PIPIT_OK) {
        r = kfail(PIPIT_EIO, err, errlen, "cannot make an Ed25519 key: %s",
                  ossl_reason(why, sizeof why));
        goto out;
    }
    n = BIO_get_mem_data(priv, &p);
    if ((r = write_new(key_path, 0600, p, (size_t)n, err, errlen)) != PIPIT_OK)
        goto out;
    n = BIO_get_mem_data(pub, &p);
    if ((r = write_new(pub_path, 0644, p, (size_t)n, err, errlen)) != PIPIT_OK) {
        unlink(key_path);
        goto out;
    }
    fs_sync_dir(key_path);
out:
    BIO_free(priv);                     /* a mem BIO clears its buffer when freed */
    BIO_free(pub);
    EVP_PKEY_free(key);
    return r;
}

/*
 * Read a key file of at most COMMAND_KEY_FILE_MAX bytes into a memory BIO.
 * private: refuse a file that group or others may access.
 */
static int read_key_file(const char *path, bool private, BIO **out, char *err, size_t errlen)
{
    char tmp[4096];
    struct stat st;
    size_t total = 0;
    BIO *b = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *out = NULL;
    if (fd < 0)
        return kfail(PIPIT_EIO, err, errlen, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return kfail(PIPIT_EIO, err, errlen, "%s: not a regular file", path);
    }
    if (private && (st.st_mode & 077)) {
        close(fd);
        return kfail(PIPIT_EPERM, err, errlen, "%s: mode %04o lets group or others read "
                     "the private key; chmod 600 it (and make a new key if others may "
                     "have read it)", path, (unsigned)(st.st_mode & 07777));
    }
    b = BIO_new(BIO_s_mem());
    if (!b) {
        close(fd);
        return kfail(PIPIT_ENOMEM, err, errlen, "%s: out of memory", path);
    }
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            BIO_free(b);
            return kfail(PIPIT_EIO, err, errlen, "%s: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        total += (size_t)n;
        if (total > COMMAND_KEY_FILE_MAX || BIO_write(b, tmp, (int)n) != (int)n) {
            close(fd);
            BIO_free(b);
            explicit_bzero(tmp, sizeof tmp);
            return kfail(PIPIT_EPARSE, err, errlen, "%s: larger than %u bytes; not a key",
                         path, COMMAND_KEY_FILE_MAX);
        }
    }
    explicit_bzero(tmp, sizeof tmp);
    close(fd);
    *out = b;
    return PIPIT_OK;
}

int command_key_load_private(const char *path, EVP_PKEY **key, char *err, size_t errlen)
{
    char why[256];
    BIO *b;
    int r = read_key_file(path, true, &b, err, errlen);

    *key = NULL;
    if (r != PIPIT_OK)
        return r;
    ERR_clear_error();
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!k)
        return kfail(PIPIT_EPARSE, err, errlen, "%s: not a PEM private key (%s)", path,
                     ossl_reason(why, sizeof why));
    if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        return kfail(PIPIT_EPARSE, err, errlen, "%s: not an Ed25519 key (make one with "
                     "pipit keygen)", path);
    }
    *key = k;
    return PIPIT_OK;
}

/* Read one public key from b; name is the file, for messages. */
static int parse_public_bio(BIO *b, const char *name, EVP_PKEY **key, char *err,
                            size_t errlen)
{
    char why[256];

    ERR_clear_error();
    EVP_PKEY *k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    if (!k)
        return kfail(PIPIT_EPARSE, err, errlen, "%s: not a PEM public key (%s)", name,
                     ossl_reason(why, sizeof why));
    if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        return kfail(PIPIT_EPARSE, err, errlen, "%s: not an Ed25519 key (make one with "
                     "pipit keygen)", name);
    }
    *key = k;
    return PIPIT_OK;
}

int command_key_load_public(const char *path, EVP_PKEY **key, char *err, size_t errlen)
{
    BIO *b;
    int r = read_key_file(path, false, &b, err, errlen);

    *key = NULL;
    if (r != PIPIT_OK)
        return r;
    r = parse_public_bio(b, path, key, err, errlen);
    BIO_free(b);
    return r;
}

int command_key_parse_public(const char *pem, size_t len, const char *name, EVP_PKEY **key,
                             char *err, size_t errlen)
{
    *key = NULL;
    if (!pem || len > COMMAND_KEY_FILE_MAX)
        return kfail(PIPIT_EPARSE, err, errlen, "%s: not a PEM public key", name);
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return kfail(PIPIT_ENOMEM, err, errlen, "%s: out of memory", name);
    int r = parse_public_bio(b, name, key, err, errlen);
    BIO_free(b);
    return r;
}

int command_keyring_add(struct command_keyring *ring, EVP_PKEY *key, const char *source,
                        char *err, size_t errlen)
{
    char id[COMMAND_KEY_ID_LEN + 1];
    const struct command_trusted_key *old;

    if (command_key_id(key, id) != PIPIT_OK) {
        EVP_PKEY_free(key);
        return kfail(PIPIT_EINVAL, err, errlen, "%s: not an Ed25519 key", source);
    }
    if ((old = command_keyring_find(ring, id)) != NULL) {
        EVP_PKEY_free(key);
        return kfail(PIPIT_EINVAL, err, errlen, "%s: key %s is already trusted (from %s)",
                     source, id, old->source);
    }
    struct command_trusted_key *k = realloc(ring->keys, (ring->count + 1) * sizeof *k);
    char *src = strdup(source);
    if (!k || !src) {
        if (k)
            ring->keys = k;
        free(src);
        EVP_PKEY_free(key);
        return kfail(PIPIT_ENOMEM, err, errlen, "%s: out of memory", source);
    }
    ring->keys = k;
    k[ring->count].key = key;
    memcpy(k[ring->count].id, id, sizeof id);
    k[ring->count].source = src;
    ring->count++;
    return PIPIT_OK;
}

int command_keyring_add_file(struct command_keyring *ring, const char *path, char *err,
                             size_t errlen)
{
    EVP_PKEY *key;
    int r = command_key_load_public(path, &key, err, errlen);
    if (r != PIPIT_OK)
        return r;
    return command_keyring_add(ring, key, path, err, errlen);
}

const struct command_trusted_key *command_keyring_find(const struct command_keyring *ring,
                                                       const char *id)
{
    for (size_t i = 0; ring && i < ring->count; i++)
        if (!strcmp(ring->keys[i].id, id))
            return &ring->keys[i];
    return NULL;
}

void command_keyring_free(struct command_keyring *ring)
{
    for (size_t i = 0; i < ring->count; i++) {
        EVP_PKEY_free(ring->keys[i].key);
        free(ring->keys[i].source);
    }
    free(ring->keys);
    ring->keys = NULL;
    ring->count = 0;
}
