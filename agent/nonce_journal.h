/* nonce_journal.h: the nonces of accepted commands, kept on disk until they expire, so that none runs twice. */
#ifndef PIPIT_NONCE_JOURNAL_H
#define PIPIT_NONCE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NONCE_HEX_LEN     32            /* 128 bits as lowercase hex */
#define NONCE_JOURNAL_MAX (1u << 20)    /* entries; a record past this fails */

typedef struct nonce_journal nonce_journal;

/*
 * Open (or create, mode 0600) the journal file at path: one line per
 * accepted command, "<nonce> <expires_at>\n". Entries past expires_at + skew
 * (seconds) at now are dropped as they are read. A last line cut short by a
 * crash (no newline) is ignored with a warning and cut off the file; any
 * other damaged line is an error, since a lost nonce could let a command run
 * twice. Returns PIPIT_OK with *out set (close it with nonce_journal_close),
 * PIPIT_EPARSE, PIPIT_EIO or PIPIT_ENOMEM, with a sentence naming the file
 * in err.
 */
int nonce_journal_open(nonce_journal **out, const char *path, int64_t skew, int64_t now,
                       char *err, size_t errlen);

/* Whether nonce (NONCE_HEX_LEN hex digits) has been recorded and not pruned. */
bool nonce_journal_seen(const nonce_journal *j, const char *nonce);

/*
 * Record nonce, valid until expires_at: appended to the file and fsync'd
 * before this returns, so a command recorded is never accepted again even
 * after a crash. Call it before the command runs. Entries past expiry are
 * pruned first; when more than half the file is stale it is rewritten
 * (temp file, fsync, rename). Returns PIPIT_OK, PIPIT_EINVAL (bad nonce, or
 * already recorded), PIPIT_EFULL (NONCE_JOURNAL_MAX live entries) or
 * PIPIT_EIO, with a sentence in err.
 */
int nonce_journal_record(nonce_journal *j, const char *nonce, int64_t expires_at,
                         int64_t now, char *err, size_t errlen);

/*
 * Forget the entries past expires_at + skew at now, and rewrite the file
 * when more than half of its lines are stale. Returns PIPIT_OK or PIPIT_EIO
 * (the entries in memory are pruned all the same).
 */
int nonce_journal_prune(nonce_journal *j, int64_t now, char *err, size_t errlen);

size_t nonce_journal_count(const nonce_journal *j);   /* live entries */
size_t nonce_journal_lines(const nonce_journal *j);   /* lines in the file */
int64_t nonce_journal_skew(const nonce_journal *j);
void nonce_journal_close(nonce_journal *j);

#endif
