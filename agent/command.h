/* command.h: the signed command envelope of fleet deployments (docs/deployments.md): build and sign, parse and verify. */
#ifndef PIPIT_COMMAND_H
#define PIPIT_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "command_key.h"
#include "nonce_journal.h"

#define COMMAND_VERSION      1
#define COMMAND_MAX_BYTES    (1u << 20)         /* whole message, checked before parsing */
#define COMMAND_MAX_VALIDITY (7 * 24 * 3600)    /* expires_at - issued_at, seconds */
#define COMMAND_DEFAULT_SKEW 60                 /* clock skew allowed, seconds */
#define COMMAND_ID_MAX       128
#define COMMAND_MAX_VARS     1024

/* Why a command was refused: the enum and the short name logs and events carry. */
#define COMMAND_REASON_MAP(XX)                                                         \
    XX(OK,                 "ok",                 "accepted")                            \
    XX(TOO_LARGE,          "too_large",          "message over the size limit")         \
    XX(MALFORMED,          "malformed",          "not a well-formed command message")   \
    XX(UNSUPPORTED,        "unsupported_version", "envelope version this agent cannot read") \
    XX(UNSIGNED,           "unsigned",           "no signature")                        \
    XX(UNKNOWN_KEY,        "unknown_key",        "signed by a key this agent does not trust") \
    XX(BAD_SIGNATURE,      "bad_signature",      "signature does not match the envelope") \
    XX(VALIDITY_TOO_LONG,  "validity_too_long",  "validity window over the limit")      \
    XX(NOT_YET_VALID,      "not_yet_valid",      "issued in the future")                \
    XX(EXPIRED,            "expired",            "past its expiry")                     \
    XX(NOT_FOR_THIS_HOST,  "not_for_this_host",  "target selector does not address this agent") \
    XX(REPLAYED,           "replayed",           "nonce seen before")                   \
    XX(JOURNAL_FAILED,     "journal_failed",     "nonce could not be recorded")         \
    XX(ACTION_NOT_ALLOWED, "action_not_allowed", "plan uses an action local config does not allow")

enum command_reason {
#define COMMAND__ENUM(name, str, msg) COMMAND_##name,
    COMMAND_REASON_MAP(COMMAND__ENUM)
#undef COMMAND__ENUM
    COMMAND_REASON_MAX
};

/* "bad_signature"; "unknown" for a value out of range. */
const char *command_reason_name(enum command_reason r);

/* One command. Strings are owned (command_free frees them). */
struct command {
    char *id;                           /* deployment id, for events */
    char *plan;                         /* the plan YAML text */
    struct pipit_strmap vars;           /* variables: keys and values owned */
    char *target;                       /* selector text (agent/selector.h) */
    int64_t issued_at, expires_at;      /* Unix seconds */
    char nonce[NONCE_HEX_LEN + 1];      /* 128 random bits, lowercase hex */
    char key_id[COMMAND_KEY_ID_LEN + 1]; /* set by command_verify */
};

/* A fresh nonce from RAND_bytes. Returns PIPIT_OK or PIPIT_EIO. */
int command_new_nonce(char nonce[NONCE_HEX_LEN + 1]);

/*
 * Build the message for cmd signed with key (an Ed25519 private key) and
 * append it to out. cmd must be what command_verify would accept on its own
 * terms: an id, a plan, a target that parses, a nonce, and
 * issued_at < expires_at <= issued_at + COMMAND_MAX_VALIDITY. Returns
 * PIPIT_OK, PIPIT_EINVAL (with the reason in err) or PIPIT_ENOMEM; out is
 * unchanged on error.
 */
int command_sign(const struct command *cmd, EVP_PKEY *key, struct buf *out, char *err,
                 size_t errlen);

struct command_verify_opts {
    const struct command_keyring *trusted;  /* keys whose commands are accepted */
    int64_t now;                        /* Unix seconds */
    int64_t skew;                       /* seconds of clock skew allowed both ways */
    const char *host;                   /* this agent's host name */
    const struct pipit_strmap *labels;  /* this agent's labels, or NULL */
    /* The journal the nonce is checked against and recorded in, opened with
     * the same skew. NULL only in tools that check a message without
     * running it: then nothing is checked for replay or recorded. */
    nonce_journal *journal;
};

/*
 * Check msg[0..len) for this agent and fill out with the command. The checks
 * run in the order of docs/deployments.md: size, framing, signature, fields,
 * target, validity window, replay. When every check holds and a journal is
 * given, the nonce is recorded there (fsync'd) before this returns, so the
 * caller may run the command and a copy is never run again. Returns
 * COMMAND_OK, or the reason with a sentence in err (never a secret; at most
 * a short, escaped excerpt of the message); out is zeroed on refusal, but
 * for a command signed by a trusted key and addressed to this agent
 * (not_yet_valid, expired, replayed, journal_failed) out->id is kept.
 * Release out with command_free either way.
 */
enum command_reason command_verify(const void *msg, size_t len,
                                   const struct command_verify_opts *opts,
                                   struct command *out, char *err, size_t errlen);

/*
 * Whether every one of actions[0..n) is in allowed (exact names). When not,
 * *first_refused (if given) gets the first action refused. An empty allowed
 * list allows nothing.
 */
bool command_actions_allowed(const char *const *actions, size_t n,
                             const struct pipit_strlist *allowed, const char **first_refused);

void command_free(struct command *cmd);

#endif
