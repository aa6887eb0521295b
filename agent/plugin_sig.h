/* plugin_sig.h: detached Ed25519 signatures of plugin files (PLUGIN.so.sig): make, read, verify. */
#ifndef PIPIT_PLUGIN_SIG_H
#define PIPIT_PLUGIN_SIG_H

#include <stddef.h>
#include <openssl/evp.h>
#include "command_key.h"

/*
 * The signature file is one line of text:
 *
 *     pipit-plugin-signature v1 <key id> <signature>\n
 *
 * key id: the 16 hex digits of the signing key (as pipit keygen prints);
 * signature: base64 of the 64-byte Ed25519 signature of the message
 * PLUGIN_SIG_DOMAIN (with its terminating NUL) followed by the 32-byte
 * SHA-256 of the plugin file. The domain prefix keeps a plugin signature
 * from ever being taken for a command signature made with the same key.
 */
#define PLUGIN_SIG_MAGIC   "pipit-plugin-signature"
#define PLUGIN_SIG_VERSION "v1"
#define PLUGIN_SIG_DOMAIN  "pipit-plugin-signature v1"
#define PLUGIN_SIG_SUFFIX  ".sig"
#define PLUGIN_SIG_MAX     512          /* bytes a signature file may have */

/*
 * SHA-256 of everything the open file fd holds, read from offset 0 with
 * pread (the file offset is left alone). Returns PIPIT_OK or PIPIT_EIO with
 * a sentence naming path in err.
 */
int plugin_sig_digest(int fd, const char *path, unsigned char md[32], char *err,
                      size_t errlen);

/*
 * Sign the open file fd with key and write the signature line (NUL
 * terminated) into line. Returns PIPIT_OK, PIPIT_EINVAL (not an Ed25519
 * key, or line too small) or PIPIT_EIO, with a sentence naming path in err.
 */
int plugin_sig_make(EVP_PKEY *key, int fd, const char *path, char *line, size_t linelen,
                    char *err, size_t errlen);

/*
 * Check that text (len bytes: the contents of path's signature file) is a
 * well-formed signature line by a key of ring over the file open as fd.
 * Returns PIPIT_OK, or PIPIT_EPARSE (malformed signature file), PIPIT_EPERM
 * (unknown key id, or a signature that does not match: the file was
 * changed after signing) or PIPIT_EIO, with the reason naming path in err.
 */
int plugin_sig_verify(const struct command_keyring *ring, int fd, const char *path,
                      const char *text, size_t len, char *err, size_t errlen);

/*
 * Make the loader require signatures by the public key files given (n of
 * them), or stop requiring them when files is NULL. Returns PIPIT_OK, or
 * the error of the first key file that cannot be read (the policy is then
 * left as it was), with a sentence in err.
 */
int plugin_sig_require_files(const char *const *files, size_t n, char *err, size_t errlen);

#endif
