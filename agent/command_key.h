/* command_key.h: Ed25519 keys that sign fleet commands: generate, load, key ids, the trusted set. */
#ifndef PIPIT_COMMAND_KEY_H
#define PIPIT_COMMAND_KEY_H

#include <stddef.h>
#include <openssl/evp.h>

#define COMMAND_KEY_ID_LEN   16         /* hex digits: SHA-256 of the raw public key, cut */
#define COMMAND_KEY_FILE_MAX (64u << 10)

/*
 * Make a new Ed25519 key pair and write PREFIX.key (PKCS#8 PEM, created
 * mode 0600) and PREFIX.pub (SubjectPublicKeyInfo PEM, 0644 less the umask),
 * each fsync'd. Neither file may exist: nothing is overwritten, and nothing
 * is left behind on failure. key_id gets the new key's id. Returns
 * PIPIT_OK, PIPIT_EINVAL (a file exists) or PIPIT_EIO, with a sentence
 * naming the file in err.
 */
int command_keygen(const char *prefix, char key_id[COMMAND_KEY_ID_LEN + 1], char *err,
                   size_t errlen);

/* The id of key (public or private): the first 16 hex digits of the SHA-256
 * of its raw 32-byte public key. Returns PIPIT_OK or PIPIT_EINVAL (not Ed25519). */
int command_key_id(EVP_PKEY *key, char id[COMMAND_KEY_ID_LEN + 1]);

/*
 * Load the private key in the PEM file at path. The file must be a regular
 * file that neither group nor others may access (as ssh insists). Returns
 * PIPIT_OK with *key set (free with EVP_PKEY_free), PIPIT_EPERM (mode),
 * PIPIT_EPARSE (not an Ed25519 private key) or PIPIT_EIO, with a sentence
 * naming the file in err.
 */
int command_key_load_private(const char *path, EVP_PKEY **key, char *err, size_t errlen);

/* Load the public key in the PEM file at path, as above (any mode). */
int command_key_load_public(const char *path, EVP_PKEY **key, char *err, size_t errlen);

/* Read a public key from PEM text (a key written in the config itself). */
int command_key_parse_public(const char *pem, size_t len, const char *name, EVP_PKEY **key,
                             char *err, size_t errlen);

struct command_trusted_key {
    EVP_PKEY *key;                      /* owned */
    char id[COMMAND_KEY_ID_LEN + 1];
    char *source;                       /* file name, for logs */
};

/* The public keys whose commands an agent accepts. */
struct command_keyring {
    struct command_trusted_key *keys;
    size_t count;
};

#define COMMAND_KEYRING_INIT { NULL, 0 }

/* Add the public key of the PEM file at path. A key already in the ring
 * (same id) is an error, since two files would then be one key. Returns
 * as command_key_load_public, or PIPIT_EINVAL for a duplicate. */
int command_keyring_add_file(struct command_keyring *ring, const char *path, char *err,
                             size_t errlen);
/* Add key (the ring takes it over, also on failure); source names it in logs. */
int command_keyring_add(struct command_keyring *ring, EVP_PKEY *key, const char *source,
                        char *err, size_t errlen);
/* The key with this id, or NULL. */
const struct command_trusted_key *command_keyring_find(const struct command_keyring *ring,
                                                       const char *id);
void command_keyring_free(struct command_keyring *ring);

#endif
