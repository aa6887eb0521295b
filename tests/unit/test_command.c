/* test_command.c: command keys (pipit keygen's files) and the signed envelope: round trip and every refusal. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "command.h"
#include "log.h"
#include "../tap.h"

#define NOW 1700000000
#define SKEW 60

static char dir[4096];
static EVP_PKEY *key_a, *key_b;         /* a is trusted, b is not */
static struct command_keyring ring = COMMAND_KEYRING_INIT;
static nonce_journal *journal;
static char journal_path[4200];

static const char *at(const char *rel)
{
    static char bufs[4][4200];
    static int n;
    char *b = bufs[n++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, rel);
    return b;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode & 07777 : 0;
}

static const char *const label_keys[] = { "role", "env" };
static const char *const label_values[] = { "web", "prod" };
static const struct pipit_strmap labels = { label_keys, label_values, 2 };

static struct command_verify_opts opts(void)
{
    return (struct command_verify_opts){ .trusted = &ring, .now = NOW, .skew = SKEW,
                                         .host = "web-01", .labels = &labels,
                                         .journal = journal };
}

/* A command valid at NOW for target, with a fresh nonce. */
static struct command sample(const char *target)
{
    static const char *const vk[] = { "version", "artifact" };
    static const char *const vv[] = { "1.4.2", "https://example.com/app-1.4.2.tar.gz" };
    struct command c = { .id = (char *)"deploy-42", .plan = (char *)"steps:\n  - action: exec\n",
                         .vars = { vk, vv, 2 }, .target = (char *)target,
                         .issued_at = NOW - 10, .expires_at = NOW + 3600 };
    command_new_nonce(c.nonce);
    return c;
}

/* The signed message of c, as a NUL-terminated string (free it). */
static char *signed_msg(const struct command *c, EVP_PKEY *key)
{
    struct buf b = BUF_INIT;
    char err[256];
    if (command_sign(c, key, &b, err, sizeof err) != PIPIT_OK) {
        diag("command_sign: %s", err);
        buf_free(&b);
        return strdup("");
    }
    return buf_steal(&b);
}

/* Sign envelope text as it is (no checks) and wrap it; key_id given or key's own. */
static char *wrap(const char *envelope, EVP_PKEY *key, const char *key_id)
{
    unsigned char sig[64];
    char b64[89], id[17];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    EVP_DigestSignInit(md, NULL, NULL, NULL, key);
    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)envelope, strlen(envelope));
    EVP_MD_CTX_free(md);
    EVP_EncodeBlock((unsigned char *)b64, sig, 64);
    command_key_id(key, id);
    json_t *m = json_pack("{s:i,s:s,s:s,s:s}", "v", 1, "key_id", key_id ? key_id : id,
                          "envelope", envelope, "signature", b64);
    char *text = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return text;
}

/* Member name of the message's JSON replaced by value (NULL: removed). */
static char *with_member(const char *msg, const char *name, json_t *value)
{
    json_t *m = json_loads(msg, 0, NULL);
    if (value)
        json_object_set_new(m, name, value);
    else
        json_object_del(m, name);
    char *text = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return text;
}

/* The envelope text of a message (free it). */
static char *envelope_of(const char *msg)
{
    json_t *m = json_loads(msg, 0, NULL);
    char *e = strdup(json_string_value(json_object_get(m, "envelope")));
    json_decref(m);
    return e;
}

/* The envelope of msg with one field replaced (NULL: removed), signed by key a. */
static char *resigned(const char *msg, const char *name, json_t *value)
{
    char *env = envelope_of(msg);
    char *env2 = with_member(env, name, value);
    char *out = wrap(env2, key_a, NULL);
    free(env);
    free(env2);
    return out;
}

static enum command_reason verify_with(const char *msg, struct command_verify_opts o,
                                       char *err, size_t errlen)
{
    struct command c;
    enum command_reason r = command_verify(msg, strlen(msg), &o, &c, err, errlen);
    command_free(&c);
    return r;
}

static enum command_reason verify(const char *msg, char *err, size_t errlen)
{
    return verify_with(msg, opts(), err, errlen);
}

static void test_keys(void)
{
    char id[COMMAND_KEY_ID_LEN + 1], id2[COMMAND_KEY_ID_LEN + 1], err[512];
    EVP_PKEY *priv = NULL, *pub = NULL;

    umask(022);
    is_int(command_keygen(at("deploy"), id, err, sizeof err), PIPIT_OK, "keygen writes a pair");
    is_int(mode_of(at("deploy.key")), 0600, "the private key is mode 0600");
    is_int(mode_of(at("deploy.pub")), 0644, "the public key is mode 0644");
    is_int(strlen(id), 16, "the key id is 16 hex digits (%s)", id);
    is_int(command_key_load_private(at("deploy.key"), &priv, err, sizeof err), PIPIT_OK,
           "the private key loads");
    is_int(command_key_load_public(at("deploy.pub"), &pub, err, sizeof err), PIPIT_OK,
           "the public key loads");
    ok(pub && priv && EVP_PKEY_eq(priv, pub) == 1, "they are one pair");
    command_key_id(pub, id2);
    is_str(id2, id, "the id of the loaded public key is the printed id");
    unsigned char raw[32], md[32];
    size_t len = sizeof raw;
    EVP_PKEY_get_raw_public_key(pub, raw, &len);
    SHA256(raw, len, md);
    char want[17];
    for (int i = 0; i < 8; i++)
        snprintf(want + 2 * i, 3, "%02x", md[i]);
    is_str(id, want, "the id is the SHA-256 of the raw public key, first 16 hex digits");
    FILE *f = fopen(at("deploy.key"), "r");
    char line[64] = "";
    if (f) {
        fgets(line, sizeof line, f);
        fclose(f);
    }
    is_str(line, "-----BEGIN PRIVATE KEY-----\n", "the private key is PKCS#8 PEM");
    f = fopen(at("deploy.pub"), "r");
    line[0] = '\0';
    if (f) {
        fgets(line, sizeof line, f);
        fclose(f);
    }
    is_str(line, "-----BEGIN PUBLIC KEY-----\n", "the public key is SubjectPublicKeyInfo PEM");

    is_int(command_keygen(at("deploy"), id2, err, sizeof err), PIPIT_EINVAL,
           "keygen refuses to overwrite");
    ok(strstr(err, "deploy.key: already exists; refusing to overwrite a key") != NULL,
       "naming the file: %s", err);
    EVP_PKEY *again = NULL;
    command_key_load_public(at("deploy.pub"), &again, err, sizeof err);
    ok(again && EVP_PKEY_eq(again, pub) == 1, "the old key is untouched");
    EVP_PKEY_free(again);
    rename(at("deploy.key"), at("other.key"));
    is_int(command_keygen(at("deploy"), id2, err, sizeof err), PIPIT_EINVAL,
           "keygen refuses when only the .pub exists");
    ok(access(at("deploy.key"), F_OK) != 0, "and writes no .key then");

    umask(0);
    is_int(command_keygen(at("wide"), id2, err, sizeof err), PIPIT_OK, "keygen under umask 0");
    is_int(mode_of(at("wide.key")), 0600, "the private key is still 0600");
    umask(022);

    chmod(at("other.key"), 0640);
    EVP_PKEY *k = NULL;
    is_int(command_key_load_private(at("other.key"), &k, err, sizeof err), PIPIT_EPERM,
           "a private key readable by the group is refused");
    ok(strstr(err, "other.key: mode 0640 lets group or others read") != NULL, "saying so: %s",
       err);
    chmod(at("other.key"), 0604);
    is_int(command_key_load_private(at("other.key"), &k, err, sizeof err), PIPIT_EPERM,
           "readable by others is refused");
    chmod(at("other.key"), 0400);
    is_int(command_key_load_private(at("other.key"), &k, err, sizeof err), PIPIT_OK,
           "0400 is fine");
    EVP_PKEY_free(k);
    is_int(command_key_load_private(at("nothing.key"), &k, err, sizeof err), PIPIT_EIO,
           "a missing file");
    ok(strstr(err, "nothing.key: No such file") != NULL, "names the file: %s", err);
    chmod(at("deploy.pub"), 0600);
    is_int(command_key_load_private(at("deploy.pub"), &k, err, sizeof err), PIPIT_EPARSE,
           "a public key is not a private key");
    ok(strstr(err, "deploy.pub: not a PEM private key") != NULL, "saying so: %s", err);
    is_int(command_key_load_public(at("other.key"), &k, err, sizeof err), PIPIT_EPARSE,
           "a private key file is not a public key");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    FILE *rf = fopen(at("rsa.pub"), "w");
    PEM_write_PUBKEY(rf, rsa);
    fclose(rf);
    EVP_PKEY_free(rsa);
    is_int(command_key_load_public(at("rsa.pub"), &k, err, sizeof err), PIPIT_EPARSE,
           "an RSA key is refused");
    ok(strstr(err, "not an Ed25519 key") != NULL, "saying so: %s", err);

    struct command_keyring r2 = COMMAND_KEYRING_INIT;
    is_int(command_keyring_add_file(&r2, at("deploy.pub"), err, sizeof err), PIPIT_OK,
           "a key joins a ring");
    is_int(command_keyring_add_file(&r2, at("deploy.pub"), err, sizeof err), PIPIT_EINVAL,
           "the same key twice is refused");
    ok(command_keyring_find(&r2, id) != NULL && command_keyring_find(&r2, "0000000000000000") == NULL,
       "find by id");
    command_keyring_free(&r2);
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);
}

static void test_round_trip(void)
{
    struct command c = sample("role=web"), got;
    struct command_verify_opts o = opts();
    char err[512], id[17];
    char *msg = signed_msg(&c, key_a);

    command_key_id(key_a, id);
    json_t *m = json_loads(msg, 0, NULL);
    ok(m && json_object_size(m) == 4 && json_integer_value(json_object_get(m, "v")) == 1 &&
       !strcmp(json_string_value(json_object_get(m, "key_id")), id) &&
       json_is_string(json_object_get(m, "envelope")) &&
       strlen(json_string_value(json_object_get(m, "signature"))) == 88,
       "the message is {v, key_id, envelope (a string), signature (base64)}");
    json_decref(m);
    is_int(command_verify(msg, strlen(msg), &o, &got, err, sizeof err), COMMAND_OK,
           "sign then verify");
    if (err[0])
        diag("%s", err);
    ok(!strcmp(got.id, "deploy-42") && !strcmp(got.plan, c.plan) && !strcmp(got.target, "role=web") &&
       got.issued_at == c.issued_at && got.expires_at == c.expires_at &&
       !strcmp(got.nonce, c.nonce) && !strcmp(got.key_id, id), "every field comes back");
    ok(got.vars.count == 2 && !strcmp(got.vars.keys[0], "artifact") &&
       !strcmp(got.vars.values[0], "https://example.com/app-1.4.2.tar.gz") &&
       !strcmp(got.vars.keys[1], "version") && !strcmp(got.vars.values[1], "1.4.2"),
       "with the variables");
    ok(nonce_journal_seen(journal, c.nonce), "the nonce is in the journal once accepted");
    command_free(&got);
    command_free(&got);                 /* twice is harmless */
    free(msg);

    struct command u = sample("*");
    u.plan = (char *)"name: \"quoted\" \\ back\n\ttab \xc3\xa9t\xc3\xa9\n";
    u.vars.count = 0;
    msg = signed_msg(&u, key_a);
    struct command g2;
    is_int(command_verify(msg, strlen(msg), &o, &g2, err, sizeof err), COMMAND_OK,
           "a plan with quotes, backslashes, tabs and UTF-8, no variables");
    ok(g2.plan && !strcmp(g2.plan, u.plan) && g2.vars.count == 0, "comes back byte for byte");
    command_free(&g2);
    free(msg);

    struct buf b = BUF_INIT;
    struct command bad = sample("role=");
    is_int(command_sign(&bad, key_a, &b, err, sizeof err), PIPIT_EINVAL,
           "command_sign refuses a target that does not parse");
    bad = sample("*");
    bad.expires_at = bad.issued_at + COMMAND_MAX_VALIDITY + 1;
    is_int(command_sign(&bad, key_a, &b, err, sizeof err), PIPIT_EINVAL,
           "and a validity over 7 days");
    bad = sample("*");
    bad.nonce[0] = '\0';
    is_int(command_sign(&bad, key_a, &b, err, sizeof err), PIPIT_EINVAL, "and no nonce");
    bad = sample("*");
    EVP_PKEY *pub = NULL;
    command_key_load_public(at("deploy.pub"), &pub, err, sizeof err);
    is_int(command_sign(&bad, pub, &b, err, sizeof err), PIPIT_EINVAL,
           "a public key cannot sign");
    EVP_PKEY_free(pub);
    is_int(b.len, 0, "nothing written by the refusals");
    buf_free(&b);
}

static void test_refusals(void)
{
    char err[512], *msg, *m2;
    struct command c = sample("role=web");

    msg = signed_msg(&c, key_a);
    m2 = with_member(msg, "signature", NULL);
    is_int(verify(m2, err, sizeof err), COMMAND_UNSIGNED, "no signature field: unsigned");
    is_str(command_reason_name(COMMAND_UNSIGNED), "unsigned", "named unsigned");
    free(m2);
    m2 = with_member(msg, "signature", json_string(""));
    is_int(verify(m2, err, sizeof err), COMMAND_UNSIGNED, "an empty signature: unsigned");
    free(m2);
    m2 = with_member(msg, "signature", json_integer(5));
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "a signature that is a number: malformed");
    free(m2);

    /* one byte of the signature changed */
    json_t *j = json_loads(msg, 0, NULL);
    char sig[89];
    snprintf(sig, sizeof sig, "%s", json_string_value(json_object_get(j, "signature")));
    json_decref(j);
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    m2 = with_member(msg, "signature", json_string(sig));
    is_int(verify(m2, err, sizeof err), COMMAND_BAD_SIGNATURE, "a flipped signature byte: bad_signature");
    ok(strstr(err, "does not match") != NULL, "saying so: %s", err);
    free(m2);
    sig[10] = '\0';
    m2 = with_member(msg, "signature", json_string(sig));
    is_int(verify(m2, err, sizeof err), COMMAND_BAD_SIGNATURE, "a cut signature: bad_signature");
    free(m2);

    /* the envelope changed, the signature kept */
    struct command other = sample("*");
    char *msg_other = signed_msg(&other, key_a);
    char *env_other = envelope_of(msg_other);
    m2 = with_member(msg, "envelope", json_string(env_other));
    is_int(verify(m2, err, sizeof err), COMMAND_BAD_SIGNATURE,
           "another envelope under the old signature: bad_signature");
    free(m2);
    char *env = envelope_of(msg);
    char *p = strstr(env, "role=web");
    memcpy(p, "role=we*", 8);
    m2 = with_member(msg, "envelope", json_string(env));
    is_int(verify(m2, err, sizeof err), COMMAND_BAD_SIGNATURE,
           "one byte of the envelope changed: bad_signature");
    free(m2);
    free(env);
    free(env_other);
    free(msg_other);
    ok(!nonce_journal_seen(journal, other.nonce) && !nonce_journal_seen(journal, c.nonce),
       "refused commands leave no nonce in the journal");

    /* an untrusted key */
    char *msg_b = signed_msg(&c, key_b);
    is_int(verify(msg_b, err, sizeof err), COMMAND_UNKNOWN_KEY, "signed by an untrusted key: unknown_key");
    ok(strstr(err, "not among the 1 trusted key") != NULL, "saying so: %s", err);
    char id_a[17];
    command_key_id(key_a, id_a);
    m2 = with_member(msg_b, "key_id", json_string(id_a));
    is_int(verify(m2, err, sizeof err), COMMAND_BAD_SIGNATURE,
           "signed by an untrusted key claiming a trusted key's id: bad_signature");
    free(m2);
    free(msg_b);
    struct command_verify_opts none = opts();
    none.trusted = NULL;
    is_int(verify_with(msg, none, err, sizeof err), COMMAND_UNKNOWN_KEY, "no trusted keys at all");

    /* framing */
    is_int(verify("not json", err, sizeof err), COMMAND_MALFORMED, "not JSON: malformed");
    is_int(verify("[1]", err, sizeof err), COMMAND_MALFORMED, "an array: malformed");
    m2 = with_member(msg, "v", json_integer(2));
    is_int(verify(m2, err, sizeof err), COMMAND_UNSUPPORTED, "v 2: unsupported_version");
    free(m2);
    m2 = with_member(msg, "v", json_string("1"));
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "v as a string: malformed");
    free(m2);
    m2 = with_member(msg, "extra", json_true());
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "an unknown field: malformed");
    free(m2);
    m2 = with_member(msg, "envelope", json_integer(1));
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "an envelope that is not a string");
    free(m2);
    m2 = with_member(msg, "key_id", json_string("ABC"));
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "a key_id that is not one");
    free(m2);
    char dup[4096];
    snprintf(dup, sizeof dup, "{\"v\":1,\"v\":1,%s", msg + 7);
    is_int(verify(dup, err, sizeof err), COMMAND_MALFORMED, "a duplicate member: malformed");
    size_t big = COMMAND_MAX_BYTES + 1;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[big] = '\0';
    struct command_verify_opts o = opts();
    struct command g;
    is_int(command_verify(huge, big, &o, &g, err, sizeof err), COMMAND_TOO_LARGE,
           "over 1 MiB: too_large, before any parsing");
    free(huge);

    /* the signed fields, each with the wrong type */
    static const char *const fields[] = { "id", "plan", "target", "issued_at", "expires_at",
                                          "nonce", "variables" };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        m2 = resigned(msg, fields[i], json_real(1.5));
        is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "%s of the wrong type: malformed",
               fields[i]);
        free(m2);
        m2 = resigned(msg, fields[i], NULL);
        is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "%s missing: malformed", fields[i]);
        free(m2);
    }
    m2 = resigned(msg, "variables", json_pack("{s:i}", "n", 1));
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "a variable that is not a string");
    free(m2);
    m2 = resigned(msg, "nonce", json_string("00112233"));
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "a short nonce");
    free(m2);
    m2 = resigned(msg, "id", json_string("two words"));
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "an id with a blank");
    free(m2);
    m2 = resigned(msg, "target", json_string("role"));
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "a target that does not parse");
    ok(strstr(err, "target at position 5") != NULL, "with the position: %s", err);
    free(m2);
    m2 = resigned(msg, "surprise", json_string("x"));
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "an unknown signed field");
    free(m2);
    m2 = wrap("not json", key_a, NULL);
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "a signed envelope that is not JSON");
    free(m2);
    /* Pass: a \u0000 in a variable is refused as a NUL, not cut at it. */
    m2 = resigned(msg, "variables", json_pack("{s:o}", "dest", json_stringn("/srv/a\0b", 8)));
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "a NUL in a signed variable");
    ok(strstr(err, "NUL character (\\u0000)") != NULL, "is named: %s", err);
    free(m2);

    /* the validity window */
    m2 = resigned(msg, "expires_at", json_integer(c.issued_at + COMMAND_MAX_VALIDITY + 1));
    is_int(verify(m2, err, sizeof err), COMMAND_VALIDITY_TOO_LONG, "valid for over 7 days");
    free(m2);
    m2 = resigned(msg, "expires_at", json_integer(c.issued_at));
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "expiring when issued");
    free(m2);
    m2 = resigned(msg, "issued_at", json_integer(-1));
    is_int(verify(m2, err, sizeof err), COMMAND_MALFORMED, "a negative time");
    free(m2);

    o = opts();
    o.now = c.expires_at + SKEW + 1;
    is_int(verify_with(msg, o, err, sizeof err), COMMAND_EXPIRED, "past expiry + skew: expired");
    ok(strstr(err, "command deploy-42: expired at") != NULL, "saying when: %s", err);
    o.now = c.expires_at + SKEW;
    o.journal = NULL;
    is_int(verify_with(msg, o, err, sizeof err), COMMAND_OK, "within the skew after expiry: accepted");
    o = opts();
    o.now = c.issued_at - SKEW - 1;
    is_int(verify_with(msg, o, err, sizeof err), COMMAND_NOT_YET_VALID,
           "before issued_at - skew: not_yet_valid");
    o.now = c.issued_at - SKEW;
    o.journal = NULL;
    is_int(verify_with(msg, o, err, sizeof err), COMMAND_OK, "within the skew before issue: accepted");

    /* targets */
    static const struct { const char *target; enum command_reason want; const char *what; } t[] = {
        { "host=web-0*", COMMAND_OK, "host glob that matches" },
        { "host=db-*", COMMAND_NOT_FOR_THIS_HOST, "host glob that does not" },
        { "role=db", COMMAND_NOT_FOR_THIS_HOST, "another role" },
        { "role=web,env=staging", COMMAND_NOT_FOR_THIS_HOST, "one of two labels differs" },
        { "role=web,env!=prod", COMMAND_NOT_FOR_THIS_HOST, "!= on this agent's value" },
        { "role=web,env!=dev", COMMAND_OK, "!= on another value" },
        { "team=ops", COMMAND_NOT_FOR_THIS_HOST, "a label this agent lacks" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct command tc = sample(t[i].target);
        char *tm = signed_msg(&tc, key_a);
        o = opts();
        o.journal = NULL;
        is_int(verify_with(tm, o, err, sizeof err), t[i].want, "target %s (%s): %s", t[i].target,
               t[i].what, command_reason_name(t[i].want));
        free(tm);
    }

    /* replay */
    is_int(verify(msg, err, sizeof err), COMMAND_OK, "the command is accepted once");
    is_int(verify(msg, err, sizeof err), COMMAND_REPLAYED, "the same message again: replayed");
    ok(strstr(err, c.nonce) != NULL, "naming the nonce: %s", err);
    struct command c2 = c;
    c2.id = (char *)"deploy-43";
    char *same_nonce = signed_msg(&c2, key_a);
    is_int(verify(same_nonce, err, sizeof err), COMMAND_REPLAYED,
           "another command with the same nonce: replayed");
    free(same_nonce);
    nonce_journal_close(journal);
    is_int(nonce_journal_open(&journal, journal_path, SKEW, NOW, err, sizeof err), PIPIT_OK,
           "the journal reopens (a restart)");
    is_int(verify(msg, err, sizeof err), COMMAND_REPLAYED, "after the restart: still replayed");
    struct nonce_journal *short_j;
    char p2[4300];
    snprintf(p2, sizeof p2, "%s.short", journal_path);
    nonce_journal_open(&short_j, p2, 0, NOW, err, sizeof err);
    struct command c3 = sample("*");
    char *m3 = signed_msg(&c3, key_a);
    o = opts();
    o.journal = short_j;
    is_int(verify_with(m3, o, err, sizeof err), COMMAND_JOURNAL_FAILED,
           "a journal kept for less than the skew is refused");
    nonce_journal_close(short_j);
    unlink(p2);
    free(m3);
    free(msg);

    for (int r = 0; r < COMMAND_REASON_MAX; r++)
        if (!command_reason_name(r)[0] || !strcmp(command_reason_name(r), "unknown"))
            diag("reason %d has no name", r);
    is_str(command_reason_name(COMMAND_REASON_MAX), "unknown", "out of range: unknown");
    is_str(command_reason_name(COMMAND_NOT_FOR_THIS_HOST), "not_for_this_host",
           "names are the documented ones");
}

static void test_actions(void)
{
    static const char *const allowed_items[] = { "exec", "fetch", "wait_healthy" };
    static const struct pipit_strlist allowed = { allowed_items, 3 }, empty = { NULL, 0 };
    const char *const ok_plan[] = { "fetch", "exec", "wait_healthy", "exec" };
    const char *const bad_plan[] = { "fetch", "service", "switch" };
    const char *refused = "x";

    ok(command_actions_allowed(ok_plan, 4, &allowed, &refused) && refused == NULL,
       "every action allowed");
    ok(!command_actions_allowed(bad_plan, 3, &allowed, &refused), "a plan with service: refused");
    is_str(refused, "service", "the first action refused is named");
    ok(!command_actions_allowed(ok_plan, 1, &empty, NULL), "an empty allow list allows nothing");
    ok(command_actions_allowed(NULL, 0, &empty, NULL), "a plan without actions passes");
    const char *const upper[] = { "EXEC" };
    ok(!command_actions_allowed(upper, 1, &allowed, NULL), "names are exact");
    is_str(command_reason_name(COMMAND_ACTION_NOT_ALLOWED), "action_not_allowed",
           "the refusal's name");
}

int main(void)
{
    char err[512];

    snprintf(dir, sizeof dir, "%s/pipit-test-command.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        plan_skip_all("cannot make a temporary directory");
    log_setup(stderr, LOG_FMT_LOGFMT, PIPIT_LOG_WARN);
    key_a = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    key_b = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY_up_ref(key_a);
    command_keyring_add(&ring, key_a, "test key a", err, sizeof err);
    snprintf(journal_path, sizeof journal_path, "%s/nonces", dir);
    if (nonce_journal_open(&journal, journal_path, SKEW, NOW, err, sizeof err) != PIPIT_OK)
        plan_skip_all(err);

    test_keys();
    test_round_trip();
    test_refusals();
    test_actions();

    nonce_journal_close(journal);
    command_keyring_free(&ring);
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        diag("cannot remove %s", dir);
    return done_testing();
}
