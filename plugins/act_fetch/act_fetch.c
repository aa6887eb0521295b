/* act_fetch: the fetch action: download an artifact, verify its SHA-256 while it streams, and move it into place atomically. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <pipit/plugin.h>
#include "actcurl.h"
#include "httploop.h"
#include "pathbound.h"
#include "syncdir.h"

#define FETCH_MAX_URL 65536             /* bytes of url */

static const struct pipit_api *api;     /* borrowed from the host */

struct fetch_ctx {
    const char *url;                    /* option: http(s):// or file:// */
    const char *sha256;                 /* option: 64 hex digits */
    const char *dest;                   /* option: where the file goes */
    const char *mode;                   /* option: octal text */
    int64_t timeout_ms;                 /* option: 0 none */
    int64_t max_size;                   /* option: bytes */
    const char *tls_ca_file;            /* options: TLS */
    const char *tls_cert_file;
    const char *tls_key_file;
    bool tls_insecure;
    struct pipit_strlist allowed_dirs;  /* option: where dest may lead, empty: anywhere */
    mode_t perm;                        /* mode parsed */
    char want[65];                      /* sha256 in lower case */
    struct pathbound_parts at;          /* dest, resolved by act when allowed_dirs is set */
};

/* One download in progress: the sink of the transfer. */
struct fetch_xfer {
    int fd;                             /* the temporary file */
    EVP_MD_CTX *md;
    uint64_t bytes;
    uint64_t max;
    char why[256];
};

static const struct pipit_option fetch_options[] = {
    PIPIT_OPT_STRING_REQ("url", struct fetch_ctx, url,
                         "Where the artifact is: an http://, https:// or file:// URL"),
    PIPIT_OPT_STRING_REQ("sha256", struct fetch_ctx, sha256,
                         "The SHA-256 digest the artifact must have (64 hex digits)"),
    PIPIT_OPT_STRING_REQ("dest", struct fetch_ctx, dest,
                         "Path the verified artifact is renamed to"),
    PIPIT_OPT_STRING("mode", "0644", struct fetch_ctx, mode,
                     "Permissions of dest, in octal"),
    PIPIT_OPT_DURATION("timeout", "10m", 0, 86400000, struct fetch_ctx, timeout_ms,
                       "Longest the download may take (0: only the step's timeout)"),
    PIPIT_OPT_SIZE("max_size", "1GiB", 1, 1099511627776.0, struct fetch_ctx, max_size,
                   "A larger artifact fails the step and is not kept"),
    PIPIT_OPT_STRING("tls_ca_file", NULL, struct fetch_ctx, tls_ca_file,
                     "PEM file of the CA certificates that verify the server "
                     "(default: the system's)"),
    PIPIT_OPT_STRING("tls_cert_file", NULL, struct fetch_ctx, tls_cert_file,
                     "PEM client certificate (with tls_key_file)"),
    PIPIT_OPT_STRING("tls_key_file", NULL, struct fetch_ctx, tls_key_file,
                     "PEM private key of tls_cert_file"),
    PIPIT_OPT_BOOL("tls_insecure_skip_verify", "false", struct fetch_ctx, tls_insecure,
                   "Accept any certificate and host name (the digest is still checked)"),
    PIPIT_OPT_LIST("allowed_dirs", struct fetch_ctx, allowed_dirs,
                   "Absolute directories dest must lead into once .. and the symlinks of "
                   "its directory are resolved (unset: anywhere the daemon may write)"),
    PIPIT_OPT_END
};

static int fetch_load(const struct pipit_api *host)
{
    api = host;
    return actcurl_global_init();
}

static int fetch_init(pipit_instance *ins, void *data)
{
    struct fetch_ctx *ctx = data;
    const char *err;
    char why[4400];
    char *end;
    long m;

    if (strlen(ctx->url) > FETCH_MAX_URL) {
        api->log(ins, PIPIT_LOG_ERROR, "url: %zu bytes, longer than %d", strlen(ctx->url),
                 FETCH_MAX_URL);
        return PIPIT_ECONFIG;
    }
    if (strncmp(ctx->url, "http://", 7) != 0 && strncmp(ctx->url, "https://", 8) != 0 &&
        strncmp(ctx->url, "file://", 7) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "url \"%s\": expected an http://, https:// or "
                 "file:// URL", ctx->url);
        return PIPIT_ECONFIG;
    }
    if (strlen(ctx->sha256) != 64 || strspn(ctx->sha256, "0123456789abcdefABCDEF") != 64) {
        api->log(ins, PIPIT_LOG_ERROR, "sha256 \"%.80s\": expected 64 hex digits",
                 ctx->sha256);
        return PIPIT_ECONFIG;
    }
    for (int i = 0; i < 64; i++)
        ctx->want[i] = (char)(ctx->sha256[i] >= 'A' && ctx->sha256[i] <= 'F'
                              ? ctx->sha256[i] - 'A' + 'a' : ctx->sha256[i]);
    errno = 0;
    m = strtol(ctx->mode, &end, 8);
    if (!*ctx->mode || *end || errno || m < 0 || m > 07777) {
        api->log(ins, PIPIT_LOG_ERROR, "mode \"%.32s\": expected octal permissions such "
                 "as 0644", ctx->mode);
        return PIPIT_ECONFIG;
    }
    ctx->perm = (mode_t)m;
    if (strlen(ctx->dest) >= sizeof ctx->at.path) {
        api->log(ins, PIPIT_LOG_ERROR, "dest: %zu bytes, longer than a path may be (%zu)",
                 strlen(ctx->dest), sizeof ctx->at.path - 1);
        return PIPIT_ECONFIG;
    }
    if (pathbound_split(ctx->dest, &ctx->at) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "dest \"%s\": expected the path of a file",
                 ctx->dest);
        return PIPIT_ECONFIG;
    }
    if (pathbound_check_dirs(&ctx->allowed_dirs, why, sizeof why)) {
        api->log(ins, PIPIT_LOG_ERROR, "%s", why);
        return PIPIT_ECONFIG;
    }
    if ((err = httploop_check_tls_files(ctx->tls_ca_file, ctx->tls_cert_file,
                                        ctx->tls_key_file, why, sizeof why))) {
        api->log(ins, PIPIT_LOG_ERROR, "%s", err);
        return PIPIT_ECONFIG;
    }
    return PIPIT_OK;
}

static void fetch_hex(const unsigned char *d, unsigned n, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static void fetch_result_num(pipit_instance *ins, const char *key, unsigned long long v)
{
    char buf[32];

    snprintf(buf, sizeof buf, "%llu", v);
    api->set_result(ins, key, buf);
}

/*
 * The digest of the regular file at path into hex (65 bytes) and its size
 * into *bytes. Returns 1 when it was read, 0 when there is no such file,
 * or an error (logged; PIPIT_ECANCELED when the run was stopped).
 */
static int fetch_digest_file(pipit_instance *ins, const char *path, char *hex,
                             uint64_t *bytes)
{
    unsigned char d[EVP_MAX_MD_SIZE], buf[65536];
    unsigned dl = 0;
    struct stat st;
    EVP_MD_CTX *md;
    ssize_t n;
    int fd, rc = 1;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        api->log(ins, PIPIT_LOG_ERROR, "cannot stat %s: %s", path, strerror(errno));
        return PIPIT_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        api->log(ins, PIPIT_LOG_ERROR, "dest %s exists and is not a regular file", path);
        return PIPIT_EINVAL;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
        return PIPIT_EIO;
    }
    if (!(md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(md);
        close(fd);
        return PIPIT_ENOMEM;
    }
    *bytes = 0;
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            api->log(ins, PIPIT_LOG_ERROR, "cannot read %s: %s", path, strerror(errno));
            rc = PIPIT_EIO;
            break;
        }
        if (api->cancelled(ins)) {
            rc = PIPIT_ECANCELED;
            break;
        }
        EVP_DigestUpdate(md, buf, (size_t)n);
        *bytes += (uint64_t)n;
    }
    if (rc == 1) {
        EVP_DigestFinal_ex(md, d, &dl);
        fetch_hex(d, dl, hex);
    }
    EVP_MD_CTX_free(md);
    close(fd);
    return rc;
}

/* The transfer's sink: write, hash and count each piece. */
static const char *fetch_sink(void *arg, const char *p, size_t n)
{
    struct fetch_xfer *x = arg;

    if (x->bytes + n > x->max) {
        snprintf(x->why, sizeof x->why, "the artifact is larger than max_size (%llu bytes)",
                 (unsigned long long)x->max);
        return x->why;
    }
    x->bytes += n;
    EVP_DigestUpdate(x->md, p, n);
    while (n) {
        ssize_t w = write(x->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            snprintf(x->why, sizeof x->why, "cannot write the temporary file: %s",
                     strerror(errno));
            return x->why;
        }
        p += w;
        n -= (size_t)w;
    }
    return NULL;
}

static void fetch_results(pipit_instance *ins, const struct fetch_ctx *ctx,
                          const char *digest, uint64_t bytes, bool cached)
{
    api->set_result(ins, "path", ctx->dest);
    api->set_result(ins, "sha256", digest);
    fetch_result_num(ins, "bytes", bytes);
    api->set_result(ins, "cached", cached ? "true" : "false");
}

/*
 * Leave dest holding the artifact with the wanted digest. When it already
 * does, nothing is downloaded (cached=true). Otherwise the artifact streams
 * into a new temporary file next to dest (created with O_EXCL), hashed as
 * it comes; a wrong digest or any failure removes that file and leaves dest
 * as it was; the right one is fsync'd, renamed over dest and the directory
 * fsync'd.
 */
static int fetch_act(pipit_instance *ins, void *data)
{
    struct fetch_ctx *ctx = data;
    struct fetch_xfer x = { .fd = -1, .max = (uint64_t)ctx->max_size };
    char have[65], tmp[PATH_MAX + NAME_MAX + 32];
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    uint64_t bytes = 0;
    struct actcurl_result r = { .body = NULL };
    int rc;

    if (ctx->allowed_dirs.count) {
        char real[PATH_MAX], why[3 * PATH_MAX];

        rc = pathbound_check(&ctx->allowed_dirs, "dest", ctx->dest, NULL, false, real,
                             sizeof real, why, sizeof why);
        if (rc != PIPIT_OK) {
            api->log(ins, PIPIT_LOG_ERROR, "%s", why);
            return rc;
        }
        if (pathbound_split(real, &ctx->at) != 0) {
            api->log(ins, PIPIT_LOG_ERROR, "dest \"%s\" leads to %s: too long", ctx->dest,
                     real);
            return PIPIT_EINVAL;
        }
    }
    rc = fetch_digest_file(ins, ctx->at.path, have, &bytes);
    if (rc < 0)
        return rc;
    if (rc == 1 && strcmp(have, ctx->want) == 0) {
        if (chmod(ctx->at.path, ctx->perm) != 0) {
            api->log(ins, PIPIT_LOG_ERROR, "cannot chmod %s: %s", ctx->at.path,
                     strerror(errno));
            return PIPIT_EIO;
        }
        api->log(ins, PIPIT_LOG_INFO, "%s already has sha256 %s: not downloaded",
                 ctx->dest, have);
        fetch_results(ins, ctx, have, bytes, true);
        return PIPIT_OK;
    }

    if (snprintf(tmp, sizeof tmp, "%s/.%s.fetch-XXXXXX", ctx->at.dir, ctx->at.base) >=
        (int)sizeof tmp)
        return PIPIT_EINVAL;            /* init bounded both parts */
    if ((x.fd = mkostemp(tmp, O_CLOEXEC)) < 0) {  /* O_CREAT | O_EXCL */
        api->log(ins, PIPIT_LOG_ERROR, "cannot create a temporary file in %s: %s",
                 ctx->at.dir, strerror(errno));
        return PIPIT_EIO;
    }
    if (!(x.md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(x.md, EVP_sha256(), NULL)) {
        rc = PIPIT_ENOMEM;
        goto fail;
    }
    const struct actcurl_req req = {
        .url = ctx->url, .protocols = "http,https,file", .follow = true,
        .fail_on_error = true, .timeout_ms = ctx->timeout_ms,
        .tls_ca_file = ctx->tls_ca_file, .tls_cert_file = ctx->tls_cert_file,
        .tls_key_file = ctx->tls_key_file, .tls_insecure = ctx->tls_insecure,
        .sink = fetch_sink, .sink_arg = &x,
    };
    rc = actcurl_run(api, ins, &req, &r);
    if (rc != PIPIT_OK) {
        api->log(ins, PIPIT_LOG_ERROR, "download of %s failed: %s", ctx->url, r.error);
        goto fail;
    }
    EVP_DigestFinal_ex(x.md, d, &dl);
    fetch_hex(d, dl, have);
    if (strcmp(have, ctx->want) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "sha256 mismatch for %s: expected %s, got %s "
                 "(%llu bytes); %s left as it was", ctx->url, ctx->want, have,
                 (unsigned long long)x.bytes, ctx->dest);
        rc = PIPIT_EIO;
        goto fail;
    }
    if (fchmod(x.fd, ctx->perm) != 0 || fsync(x.fd) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot chmod or fsync %s: %s", tmp, strerror(errno));
        rc = PIPIT_EIO;
        goto fail;
    }
    close(x.fd);
    x.fd = -1;
    if (rename(tmp, ctx->at.path) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot rename %s to %s: %s", tmp, ctx->at.path,
                 strerror(errno));
        rc = PIPIT_EIO;
        goto fail;
    }
    if (syncdir(ctx->at.dir) != 0) {    /* so that the rename is durable */
        api->log(ins, PIPIT_LOG_ERROR, "cannot fsync the directory %s: %s", ctx->at.dir,
                 strerror(errno));
        rc = PIPIT_EIO;
    } else {
        api->log(ins, PIPIT_LOG_INFO, "%s: %llu bytes, sha256 %s, in place at %s",
                 ctx->url, (unsigned long long)x.bytes, have, ctx->dest);
        fetch_results(ins, ctx, have, x.bytes, false);
    }
    EVP_MD_CTX_free(x.md);
    actcurl_result_free(&r);
    return rc;
fail:
    if (x.fd >= 0)
        close(x.fd);
    unlink(tmp);
    EVP_MD_CTX_free(x.md);
    actcurl_result_free(&r);
    return rc;
}

PIPIT_PLUGIN_DEFINE(
    .name = "fetch", .version = "1.0.0", .kinds = PIPIT_ACTION,
    .description = "Download an artifact, verify its SHA-256 and move it into place atomically",
    .ctx_size = sizeof(struct fetch_ctx), .options = fetch_options,
    .load = fetch_load, .init = fetch_init, .act = fetch_act);
