/* command.c: the signed command envelope of fleet deployments (docs/deployments.md): build and sign, parse and verify. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pipit/plugin.h>
#include "command.h"
#include "selector.h"

#define SIG_LEN     64                  /* Ed25519 */
#define SIG_B64_LEN 88                  /* base64 of 64 bytes, with "==" */
#define TIME_MAX    INT64_C(253402300799) /* 9999-12-31T23:59:59Z: no overflow past it */

static const char *const reason_names[] = {
#define COMMAND__NAME(name, str, msg) str,
    COMMAND_REASON_MAP(COMMAND__NAME)
#undef COMMAND__NAME
};

const char *command_reason_name(enum command_reason r)
{
    if ((unsigned)r >= COMMAND_REASON_MAX)
        return "unknown";
    return reason_names[r];
}

static enum command_reason refuse(enum command_reason r, char *err, size_t errlen,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum command_reason refuse(enum command_reason r, char *err, size_t errlen,
                                  const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

static int einval(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int einval(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return PIPIT_EINVAL;
}

int command_new_nonce(char nonce[NONCE_HEX_LEN + 1])
{
    unsigned char r[NONCE_HEX_LEN / 2];

    if (RAND_bytes(r, sizeof r) != 1) {
        ERR_clear_error();
        return PIPIT_EIO;
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(nonce + 2 * i, 3, "%02x", r[i]);
    return PIPIT_OK;
}

static bool is_nonce(const char *s)
{
    if (strlen(s) != NONCE_HEX_LEN)
        return false;
    for (int i = 0; i < NONCE_HEX_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool is_key_id(const char *s)
{
    if (strlen(s) != COMMAND_KEY_ID_LEN)
        return false;
    for (int i = 0; i < COMMAND_KEY_ID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* A deployment id goes into logs and events: 1..COMMAND_ID_MAX printable ASCII. */
static bool is_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > COMMAND_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/*
 * The checks both ends make on the fields alone: what command_sign refuses
 * to sign and command_verify refuses to accept. Returns COMMAND_OK,
 * COMMAND_MALFORMED or COMMAND_VALIDITY_TOO_LONG with a sentence in err.
 */
static enum command_reason check_fields(const struct command *c, char *err, size_t errlen)
{
    char why[256];
    struct selector sel;

    if (!c->id || !is_id(c->id))
        return refuse(COMMAND_MALFORMED, err, errlen, "id must be 1 to %d printable "
                      "characters without blanks", COMMAND_ID_MAX);
    if (!c->plan || !*c->plan)
        return refuse(COMMAND_MALFORMED, err, errlen, "command %s: plan is empty", c->id);
    if (!c->target)
        return refuse(COMMAND_MALFORMED, err, errlen, "command %s: no target", c->id);
    if (!is_nonce(c->nonce))
        return refuse(COMMAND_MALFORMED, err, errlen, "command %s: nonce is not %d "
                      "lowercase hex digits", c->id, NONCE_HEX_LEN);
    if (c->vars.count > COMMAND_MAX_VARS)
        return refuse(COMMAND_MALFORMED, err, errlen, "command %s: more than %d variables",
                      c->id, COMMAND_MAX_VARS);
    for (size_t i = 0; i < c->vars.count; i++)
        if (!c->vars.keys[i] || !*c->vars.keys[i] || !c->vars.values[i])
            return refuse(COMMAND_MALFORMED, err, errlen, "command %s: variable %zu has no "
                          "name or no value", c->id, i + 1);
    if (c->issued_at < 0 || c->issued_at > TIME_MAX || c->expires_at < 0 ||
        c->expires_at > TIME_MAX)
        return refuse(COMMAND_MALFORMED, err, errlen, "command %s: issued_at and expires_at "
                      "must be Unix seconds from 0 to %" PRId64, c->id, TIME_MAX);
    if (c->expires_at <= c->issued_at)
        return refuse(COMMAND_MALFORMED, err, errlen, "command %s: expires_at %" PRId64
                      " is not after issued_at %" PRId64, c->id, c->expires_at, c->issued_at);
    if (c->expires_at - c->issued_at > COMMAND_MAX_VALIDITY)
        return refuse(COMMAND_VALIDITY_TOO_LONG, err, errlen, "command %s: valid for %" PRId64
                      " s, over the limit of %d s (7 days)", c->id,
                      c->expires_at - c->issued_at, COMMAND_MAX_VALIDITY);
    if (selector_parse(c->target, &sel, why, sizeof why) != PIPIT_OK)
        return refuse(COMMAND_MALFORMED, err, errlen, "command %s: target %s", c->id, why);
    selector_free(&sel);
    return COMMAND_OK;
}

/* The envelope JSON of c, compact with sorted keys; free() it. NULL if not UTF-8 or no memory. */
static char *envelope_json(const struct command *c)
{
    json_t *env = json_object(), *vars = json_object();
    char *text = NULL;

    if (!env || !vars)
        goto out;
    for (size_t i = 0; i < c->vars.count; i++)
        if (json_object_set_new(vars, c->vars.keys[i], json_string(c->vars.values[i])) != 0)
            goto out;
    if (json_object_set_new(env, "id", json_string(c->id)) != 0 ||
        json_object_set_new(env, "plan", json_string(c->plan)) != 0 ||
        json_object_set(env, "variables", vars) != 0 ||
        json_object_set_new(env, "target", json_string(c->target)) != 0 ||
        json_object_set_new(env, "issued_at", json_integer(c->issued_at)) != 0 ||
        json_object_set_new(env, "expires_at", json_integer(c->expires_at)) != 0 ||
        json_object_set_new(env, "nonce", json_string(c->nonce)) != 0)
        goto out;
    text = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
out:
    json_decref(vars);
    json_decref(env);
    return text;
}

int command_sign(const struct command *cmd, EVP_PKEY *key, struct buf *out, char *err,
                 size_t errlen)
{
    char key_id[COMMAND_KEY_ID_LEN + 1], b64[SIG_B64_LEN + 1];
    unsigned char sig[SIG_LEN];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *md = NULL;
    json_t *msg = NULL;
    char *env = NULL, *text = NULL;
    int r = PIPIT_ENOMEM;

    if (!cmd || !key || !out)
        return einval(err, errlen, "no command, key or output");
    if (check_fields(cmd, err, errlen) != COMMAND_OK)
        return PIPIT_EINVAL;
    if (command_key_id(key, key_id) != PIPIT_OK)
        return einval(err, errlen, "the signing key is not an Ed25519 key");
    if (!(env = envelope_json(cmd))) {
        r = einval(err, errlen, "command %s: a field or variable is not UTF-8 text (or out "
                   "of memory)", cmd->id);
        goto out;
    }
    if (strlen(env) + SIG_B64_LEN + 64 > COMMAND_MAX_BYTES) {
        r = einval(err, errlen, "command %s: the message would be over %u bytes", cmd->id,
                   COMMAND_MAX_BYTES);
        goto out;
    }
    if (!(md = EVP_MD_CTX_new()))
        goto out;
    if (EVP_DigestSignInit(md, NULL, NULL, NULL, key) != 1 ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)env, strlen(env)) != 1 ||
        siglen != SIG_LEN) {
        ERR_clear_error();
        r = einval(err, errlen, "cannot sign with this key (is it a private key?)");
        goto out;
    }
    EVP_EncodeBlock((unsigned char *)b64, sig, SIG_LEN);
    msg = json_pack("{s:i, s:s, s:s, s:s}", "v", COMMAND_VERSION, "key_id", key_id,
                    "envelope", env, "signature", b64);
    if (!msg || !(text = json_dumps(msg, JSON_COMPACT | JSON_SORT_KEYS)))
        goto out;
    if (buf_append(out, text, strlen(text)) != PIPIT_OK)
        goto out;
    r = PIPIT_OK;
out:
    free(text);
    free(env);
    json_decref(msg);
    EVP_MD_CTX_free(md);
    return r;
}

/* Decode the canonical base64 of a 64-byte signature. */
static bool decode_sig(const char *b64, size_t len, unsigned char sig[SIG_LEN])
{
    unsigned char tmp[SIG_B64_LEN / 4 * 3];
    char again[SIG_B64_LEN + 1];

    if (len != SIG_B64_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = b64[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || (c == '=' && i >= len - 2)))
            return false;
    }
    if (EVP_DecodeBlock(tmp, (const unsigned char *)b64, (int)len) != (int)sizeof tmp)
        return false;
    memcpy(sig, tmp, SIG_LEN);
    /* only the one encoding of these bytes: no stray bits in the padding */
    EVP_EncodeBlock((unsigned char *)again, sig, SIG_LEN);
    return memcmp(again, b64, SIG_B64_LEN) == 0;
}

/* Copy the string member name of obj into *dst. Returns false when absent or not a string. */
static bool take_string(json_t *obj, const char *name, char **dst)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v))
        return false;
    *dst = strdup(json_string_value(v));
    return *dst != NULL;
}

static bool take_time(json_t *obj, const char *name, int64_t *dst)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_integer(v))
        return false;
    json_int_t t = json_integer_value(v);
    if (t < 0 || t > TIME_MAX)
        return false;
    *dst = (int64_t)t;
    return true;
}

/* Whether obj has only members named in names (NULL-terminated); *extra gets another. */
static bool only_members(json_t *obj, const char *const *names, const char **extra)
{
    const char *k;
    json_t *v;

    json_object_foreach(obj, k, v) {
        bool known = false;
        for (const char *const *n = names; *n; n++)
            known |= !strcmp(k, *n);
        if (!known) {
            *extra = k;
            return false;
        }
    }
    return true;
}

/* Fill c from the signed envelope env. Returns COMMAND_OK or COMMAND_MALFORMED. */
static enum command_reason read_envelope(json_t *env, struct command *c, char *err,
                                         size_t errlen)
{
    static const char *const fields[] = { "id", "plan", "variables", "target", "issued_at",
                                          "expires_at", "nonce", NULL };
    const char *extra, *k;
    json_t *v, *vars;
    char *nonce = NULL;

    if (!json_is_object(env))
        return refuse(COMMAND_MALFORMED, err, errlen, "the signed envelope is not a JSON "
                      "object");
    if (!only_members(env, fields, &extra))
        return refuse(COMMAND_MALFORMED, err, errlen, "the envelope has an unknown field "
                      "(%zu bytes long)", strlen(extra));
    if (!take_string(env, "id", &c->id))
        return refuse(COMMAND_MALFORMED, err, errlen, "envelope: id missing or not a string");
    if (!is_id(c->id)) {
        free(c->id);                    /* not fit for a log line */
        c->id = NULL;
        return refuse(COMMAND_MALFORMED, err, errlen, "envelope: id must be 1 to %d "
                      "printable characters without blanks", COMMAND_ID_MAX);
    }
    if (!take_string(env, "plan", &c->plan))
        return refuse(COMMAND_MALFORMED, err, errlen, "command %s: plan missing or not a "
                      "string", c->id);
    if (!take_string(env, "target", &c->target))
        return refuse(COMMAND_MALFORMED, err, errlen, "command %s: target missing or not a "
                      "string", c->id);
    if (!take_time(env, "issued_at", &c->issued_at) ||
        !take_time(env, "expires_at", &c->expires_at))
        return refuse(COMMAND_MALFORMED, err, errlen, "command %s: issued_at and expires_at "
                      "must be integers, Unix seconds from 0 to %" PRId64, c->id, TIME_MAX);
    if (!take_string(env, "nonce", &nonce) || !is_nonce(nonce)) {
        free(nonce);
        return refuse(COMMAND_MALFORMED, err, errlen, "command %s: nonce must be %d "
                      "lowercase hex digits", c->id, NONCE_HEX_LEN);
    }
    memcpy(c->nonce, nonce, NONCE_HEX_LEN + 1);
    free(nonce);
    vars = json_object_get(env, "variables");
    if (!json_is_object(vars))
        return refuse(COMMAND_MALFORMED, err, errlen, "command %s: variables missing or not "
                      "an object", c->id);
    size_t n = json_object_size(vars);
    if (n > COMMAND_MAX_VARS)
        return refuse(COMMAND_MALFORMED, err, errlen, "command %s: more than %d variables",
                      c->id, COMMAND_MAX_VARS);
    char **keys = calloc(n + 1, sizeof *keys), **values = calloc(n + 1, sizeof *values);
    if (!keys || !values) {
        free(keys);
        free(values);
        return refuse(COMMAND_MALFORMED, err, errlen, "out of memory");
    }
    c->vars.keys = (const char *const *)keys;
    c->vars.values = (const char *const *)values;
    json_object_foreach(vars, k, v) {
        if (!*k || !json_is_string(v))
            return refuse(COMMAND_MALFORMED, err, errlen, "command %s: variable %zu: a "
                          "variable needs a name and a string value", c->id,
                          c->vars.count + 1);
        keys[c->vars.count] = strdup(k);
        values[c->vars.count] = strdup(json_string_value(v));
        c->vars.count++;                /* counted now, so that command_free frees both */
        if (!keys[c->vars.count - 1] || !values[c->vars.count - 1])
            return refuse(COMMAND_MALFORMED, err, errlen, "out of memory");
    }
    return COMMAND_OK;
}

/*
 * The framing and signature: fills key_id and *env_out (the parsed signed
 * envelope, json_decref it) when they hold.
 */
static enum command_reason check_signature(const void *msg, size_t len,
                                           const struct command_verify_opts *o,
                                           struct command *c, json_t **env_out, char *err,
                                           size_t errlen)
{
    static const char *const fields[] = { "v", "key_id", "envelope", "signature", NULL };
    unsigned char sig[SIG_LEN];
    const struct command_trusted_key *tk;
    const char *extra;
    json_error_t jerr;
    EVP_MD_CTX *md = NULL;
    enum command_reason r;
    json_t *root = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &jerr);

    *env_out = NULL;
    if (!json_is_object(root)) {
        r = root ? refuse(COMMAND_MALFORMED, err, errlen, "the message is not a JSON object")
                 : refuse(COMMAND_MALFORMED, err, errlen, "not JSON: %.120s at byte %d",
                          jerr.text, jerr.position);
        goto out;
    }
    json_t *v = json_object_get(root, "v");
    if (!json_is_integer(v)) {
        r = refuse(COMMAND_MALFORMED, err, errlen, "no \"v\" (format version) number");
        goto out;
    }
    if (json_integer_value(v) != COMMAND_VERSION) {
        r = refuse(COMMAND_UNSUPPORTED, err, errlen, "format version %" JSON_INTEGER_FORMAT
                   "; this agent reads version %d", json_integer_value(v), COMMAND_VERSION);
        goto out;
    }
    if (!only_members(root, fields, &extra)) {
        r = refuse(COMMAND_MALFORMED, err, errlen, "the message has an unknown field (%zu "
                   "bytes long)", strlen(extra));
        goto out;
    }
    json_t *env = json_object_get(root, "envelope");
    json_t *sv = json_object_get(root, "signature");
    json_t *kv = json_object_get(root, "key_id");
    if (!json_is_string(env)) {
        r = refuse(COMMAND_MALFORMED, err, errlen, "envelope missing or not a string");
        goto out;
    }
    if (!sv || json_is_null(sv) || (json_is_string(sv) && json_string_length(sv) == 0)) {
        r = refuse(COMMAND_UNSIGNED, err, errlen, "the message carries no signature");
        goto out;
    }
    if (!json_is_string(sv)) {
        r = refuse(COMMAND_MALFORMED, err, errlen, "signature is not a string");
        goto out;
    }
    if (!json_is_string(kv) || !is_key_id(json_string_value(kv))) {
        r = refuse(COMMAND_MALFORMED, err, errlen, "key_id missing or not %d lowercase hex "
                   "digits", COMMAND_KEY_ID_LEN);
        goto out;
    }
    memcpy(c->key_id, json_string_value(kv), COMMAND_KEY_ID_LEN + 1);
    if (!(tk = command_keyring_find(o->trusted, c->key_id))) {
        r = refuse(COMMAND_UNKNOWN_KEY, err, errlen, "signed by key %s, which is not among "
                   "the %zu trusted key%s", c->key_id, o->trusted ? o->trusted->count : 0,
                   o->trusted && o->trusted->count == 1 ? "" : "s");
        goto out;
    }
    if (!decode_sig(json_string_value(sv), json_string_length(sv), sig)) {
        r = refuse(COMMAND_BAD_SIGNATURE, err, errlen, "signature is not the base64 of %d "
                   "bytes", SIG_LEN);
        goto out;
    }
    const char *text = json_string_value(env);
    size_t tlen = json_string_length(env);
    if (!(md = EVP_MD_CTX_new()) || EVP_DigestVerifyInit(md, NULL, NULL, NULL, tk->key) != 1) {
        ERR_clear_error();
        r = refuse(COMMAND_BAD_SIGNATURE, err, errlen, "cannot check with key %s (%s)",
                   tk->id, tk->source);
        goto out;
    }
    if (EVP_DigestVerify(md, sig, SIG_LEN, (const unsigned char *)text, tlen) != 1) {
        ERR_clear_error();
        r = refuse(COMMAND_BAD_SIGNATURE, err, errlen, "Ed25519 signature does not match the "
                   "envelope for key %s: signed with another key, or altered after signing",
                   tk->id);
        goto out;
    }
    /* From here on the bytes are the signer's. */
    *env_out = json_loadb(text, tlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!*env_out && json_error_code(&jerr) == json_error_null_character) {
        /* it would cut a path or an argument short: never taken */
        r = refuse(COMMAND_MALFORMED, err, errlen, "the signed envelope has a NUL character "
                   "(\\u0000) in a string at byte %d: refused", jerr.position);
        goto out;
    }
    if (!*env_out) {
        r = refuse(COMMAND_MALFORMED, err, errlen, "the signed envelope is not JSON: %.120s "
                   "at byte %d", jerr.text, jerr.position);
        goto out;
    }
    r = COMMAND_OK;
out:
    EVP_MD_CTX_free(md);
    json_decref(root);
    return r;
}

enum command_reason command_verify(const void *msg, size_t len,
                                   const struct command_verify_opts *o,
                                   struct command *out, char *err, size_t errlen)
{
    struct command c;
    struct selector sel;
    json_t *env = NULL;
    char why[256];
    enum command_reason r;

    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    if (!o) {
        r = refuse(COMMAND_MALFORMED, err, errlen, "no verification options");
        goto out;
    }
    if (len > COMMAND_MAX_BYTES) {
        r = refuse(COMMAND_TOO_LARGE, err, errlen, "message is %zu bytes, over the limit of "
                   "%u", len, COMMAND_MAX_BYTES);
        goto out;
    }
    if (!msg || len == 0) {
        r = refuse(COMMAND_MALFORMED, err, errlen, "empty message");
        goto out;
    }
    if ((r = check_signature(msg, len, o, &c, &env, err, errlen)) != COMMAND_OK)
        goto out;
    if ((r = read_envelope(env, &c, err, errlen)) != COMMAND_OK)
        goto out;
    if ((r = check_fields(&c, err, errlen)) != COMMAND_OK)
        goto out;
    if (selector_parse(c.target, &sel, why, sizeof why) != PIPIT_OK) {
        r = refuse(COMMAND_MALFORMED, err, errlen, "command %s: target %s", c.id, why);
        goto out;
    }
    bool mine = selector_match(&sel, o->host ? o->host : "", o->labels);
    selector_free(&sel);
    if (!mine) {
        r = refuse(COMMAND_NOT_FOR_THIS_HOST, err, errlen, "command %s: target does not "
                   "address host %.64s or its labels", c.id, o->host ? o->host : "");
        goto out;
    }
    int64_t skew = o->skew < 0 ? 0 : o->skew;
    if (o->now + skew < c.issued_at) {
        r = refuse(COMMAND_NOT_YET_VALID, err, errlen, "command %s: issued at %" PRId64
                   ", %" PRId64 " s ahead of this agent's clock (allowed skew %" PRId64
                   " s)", c.id, c.issued_at, c.issued_at - o->now, skew);
        goto out;
    }
    if (o->now - skew > c.expires_at) {
        r = refuse(COMMAND_EXPIRED, err, errlen, "command %s: expired at %" PRId64 ", %"
                   PRId64 " s ago (allowed skew %" PRId64 " s)", c.id, c.expires_at,
                   o->now - c.expires_at, skew);
        goto out;
    }
    if (o->journal) {
        if (nonce_journal_skew(o->journal) < skew) {
            r = refuse(COMMAND_JOURNAL_FAILED, err, errlen, "the nonce journal keeps "
                       "entries %" PRId64 " s past expiry, less than the skew of %" PRId64
                       " s", nonce_journal_skew(o->journal), skew);
            goto out;
        }
        if (nonce_journal_seen(o->journal, c.nonce)) {
            r = refuse(COMMAND_REPLAYED, err, errlen, "command %s: nonce %s was seen "
                       "before", c.id, c.nonce);
            goto out;
        }
        if (nonce_journal_record(o->journal, c.nonce, c.expires_at, o->now, why,
                                 sizeof why) != PIPIT_OK) {
            r = refuse(COMMAND_JOURNAL_FAILED, err, errlen, "command %s: %s", c.id, why);
            goto out;
        }
    }
    *out = c;
    json_decref(env);
    return COMMAND_OK;
out:
    /* Past the signature and the target, the id is the signer's and the
     * command is for this agent: keep the id so the refusal can name the
     * deployment. */
    if (r == COMMAND_NOT_YET_VALID || r == COMMAND_EXPIRED || r == COMMAND_REPLAYED ||
        r == COMMAND_JOURNAL_FAILED) {
        out->id = c.id;
        c.id = NULL;
    }
    json_decref(env);
    command_free(&c);
    return r;
}

bool command_actions_allowed(const char *const *actions, size_t n,
                             const struct pipit_strlist *allowed, const char **first_refused)
{
    if (first_refused)
        *first_refused = NULL;
    for (size_t i = 0; i < n; i++) {
        bool ok = false;
        for (size_t j = 0; allowed && j < allowed->count && !ok; j++)
            ok = actions[i] && allowed->items[j] && !strcmp(actions[i], allowed->items[j]);
        if (!ok) {
            if (first_refused)
                *first_refused = actions[i];
            return false;
        }
    }
    return true;
}

void command_free(struct command *cmd)
{
    if (!cmd)
        return;
    free(cmd->id);
    free(cmd->plan);
    free(cmd->target);
    for (size_t i = 0; i < cmd->vars.count; i++) {
        free((char *)cmd->vars.keys[i]);
        free((char *)cmd->vars.values[i]);
    }
    free((void *)cmd->vars.keys);
    free((void *)cmd->vars.values);
    memset(cmd, 0, sizeof *cmd);
}
