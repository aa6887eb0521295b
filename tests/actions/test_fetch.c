/* test_fetch.c: the fetch action through the harness: verified downloads over HTTP and file://, a wrong digest, the cache, max_size, the deadline, allowed_dirs, odd values. */
#include "acttest.h"
#include "../http/httpd.h"

/* SHA-256 of "" (that of www/v1.tar comes from sha256sum). */
#define SUM_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const char *tmp;                 /* scratch directory of the test */
static char out[4200];                  /* where artifacts go */
static char sum_v1[65];                 /* the real digest of www/v1.tar */
static struct httpd srv;

/* "key=value" into one of eight static buffers. */
static const char *kv(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *kv(const char *key, const char *fmt, ...)
{
    static char bufs[8][4600];
    static int n;
    char *b = bufs[n++ % 8];
    int k = snprintf(b, sizeof bufs[0], "%s=", key);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(b + k, sizeof bufs[0] - (size_t)k, fmt, ap);
    va_end(ap);
    return b;
}

/* The digest of a file, from the sha256sum command. */
static void sha256_of(const char *path, char *hex)
{
    char cmd[4600];
    FILE *p;

    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    hex[0] = '\0';
    if ((p = popen(cmd, "r"))) {
        if (fscanf(p, "%64s", hex) != 1)
            hex[0] = '\0';
        pclose(p);
    }
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_mode & 07777 : 0;
}

static void test_http_download(void)
{
    char dest[4400];
    struct tp t;
    int rc;

    snprintf(dest, sizeof dest, "%s/app-1.tar", out);
    at_log_clear();
    rc = at_step(&t, "fetch", (const char *[]){
                     kv("url", "http://127.0.0.1:%u/v1.tar", srv.port),
                     kv("sha256", "%s", sum_v1), kv("dest", "%s", dest), "mode=0750", NULL },
                 10000);
    is_int(rc, PIPIT_OK, "a download with the right digest succeeds");
    is_str(tp_slurp(dest), "artifact v1\n", "the artifact is at dest");
    is_int(mode_of(dest), 0750, "with the mode asked for");
    is_str(at_res(&t, "path"), dest, "path result");
    is_str(at_res(&t, "sha256"), sum_v1, "sha256 result");
    is_str(at_res(&t, "bytes"), "12", "bytes result");
    is_str(at_res(&t, "cached"), "false", "cached false");
    is_int(at_entries(out), 1, "no temporary file is left beside it");
    tp_close(&t);

    int before = httpd_requests(&srv);
    rc = at_step(&t, "fetch", (const char *[]){
                     kv("url", "http://127.0.0.1:%u/v1.tar", srv.port),
                     kv("sha256", "%s", sum_v1), kv("dest", "%s", dest), NULL }, 10000);
    is_int(rc, PIPIT_OK, "the same fetch again succeeds");
    is_str(at_res(&t, "cached"), "true", "cached true");
    is_int(httpd_requests(&srv), before, "without a request");
    is_int(mode_of(dest), 0644, "and the mode is made what is asked (0644 by default)");
    tp_close(&t);

    /* An upper-case digest is the same digest. */
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] = (char)(sum_v1[i] >= 'a' && sum_v1[i] <= 'f' ? sum_v1[i] - 32 : sum_v1[i]);
    rc = at_step(&t, "fetch", (const char *[]){
                     kv("url", "http://127.0.0.1:%u/v1.tar", srv.port),
                     kv("sha256", "%s", upper), kv("dest", "%s", dest), NULL }, 10000);
    is_str(at_res(&t, "cached"), "true", "an upper-case sha256 matches too");
    tp_close(&t);
}

static void test_bad_digest(void)
{
    char dest[4400], keep[4400];
    struct tp t;
    int rc;

    /* dest absent: it stays absent. */
    snprintf(dest, sizeof dest, "%s/bad.tar", out);
    at_log_clear();
    rc = at_step(&t, "fetch", (const char *[]){
                     kv("url", "http://127.0.0.1:%u/v1.tar", srv.port),
                     kv("sha256", "%s", SUM_EMPTY), kv("dest", "%s", dest), NULL }, 10000);
    is_int(rc, PIPIT_EIO, "a wrong digest fails");
    ok(!at_exists(dest), "dest is not made");
    is_int(at_entries(out), 1, "the temporary file is removed");
    char want[300];
    snprintf(want, sizeof want, "expected %s, got %s", SUM_EMPTY, sum_v1);
    ok(at_logged(want), "the log names the digests expected and got");
    ok(at_result(&t, "path") == NULL, "no results for a failed fetch");
    tp_close(&t);

    /* dest present with other content: it is left as it was. */
    snprintf(keep, sizeof keep, "%s/app-1.tar", out);
    rc = at_step(&t, "fetch", (const char *[]){
                     kv("url", "http://127.0.0.1:%u/v2.tar", srv.port),
                     kv("sha256", "%s", SUM_EMPTY), kv("dest", "%s", keep), NULL }, 10000);
    is_int(rc, PIPIT_EIO, "a new artifact with the wrong digest fails");
    is_str(tp_slurp(keep), "artifact v1\n", "and the old dest is untouched");
    is_int(at_entries(out), 1, "no temporary file left");
    tp_close(&t);

    rc = at_step(&t, "fetch", (const char *[]){
                     kv("url", "http://127.0.0.1:%u/missing.tar", srv.port),
                     kv("sha256", "%s", sum_v1), kv("dest", "%s", dest), NULL }, 10000);
    is_int(rc, PIPIT_EIO, "a 404 fails");
    ok(at_logged("HTTP status 404"), "naming the status");
    ok(!at_exists(dest) && at_entries(out) == 1, "leaving nothing behind");
    tp_close(&t);
}

static void test_file_and_limits(void)
{
    char dest[4400], src[4400];
    struct tp t;
    int rc;

    snprintf(src, sizeof src, "%s/www/v1.tar", tmp);
    snprintf(dest, sizeof dest, "%s/from-file.tar", out);
    rc = at_step(&t, "fetch", (const char *[]){
                     kv("url", "file://%s", src), kv("sha256", "%s", sum_v1),
                     kv("dest", "%s", dest), NULL }, 10000);
    is_int(rc, PIPIT_OK, "a file:// source");
    is_str(tp_slurp(dest), "artifact v1\n", "is copied to dest");
    is_str(at_res(&t, "cached"), "false", "not from the cache");
    tp_close(&t);
    unlink(dest);

    rc = at_step(&t, "fetch", (const char *[]){
                     kv("url", "file://%s/www/nothing", tmp), kv("sha256", "%s", sum_v1),
                     kv("dest", "%s", dest), NULL }, 10000);
    is_int(rc, PIPIT_EIO, "a missing file:// source fails");
    tp_close(&t);

    at_log_clear();
    rc = at_step(&t, "fetch", (const char *[]){
                     kv("url", "http://127.0.0.1:%u/v1.tar", srv.port),
                     kv("sha256", "%s", sum_v1), kv("dest", "%s", dest), "max_size=5", NULL },
                 10000);
    is_int(rc, PIPIT_EIO, "an artifact larger than max_size fails");
    ok(at_logged("larger than max_size (5 bytes)"), "saying so");
    ok(!at_exists(dest) && at_entries(out) == 1, "leaving nothing behind");
    tp_close(&t);

    int64_t t0 = tp__ms();
    rc = at_step(&t, "fetch", (const char *[]){
                     kv("url", "http://127.0.0.1:%u/v1.tar?delay_ms=4000", srv.port),
                     kv("sha256", "%s", sum_v1), kv("dest", "%s", dest), NULL }, 500);
    is_int(rc, PIPIT_ETIMEDOUT, "a download past the step's deadline times out");
    ok(tp__ms() - t0 < 2500, "at the deadline");
    ok(!at_exists(dest) && at_entries(out) == 1, "leaving nothing behind");
    tp_close(&t);

    /* dest is a directory: refused, not replaced. */
    char sub[4400];
    snprintf(sub, sizeof sub, "%s/adir", out);
    mkdir(sub, 0755);
    rc = at_step(&t, "fetch", (const char *[]){
                     kv("url", "file://%s", src), kv("sha256", "%s", sum_v1),
                     kv("dest", "%s", sub), NULL }, 10000);
    ok(rc != PIPIT_OK, "a directory at dest is refused");
    tp_close(&t);
    rmdir(sub);
}

static void test_config(void)
{
    struct tp t;

    is_int(at_step(&t, "fetch", (const char *[]){ "url=file:///x", "sha256=abc", "dest=/tmp/x",
                                                  NULL }, 0),
           PIPIT_ECONFIG, "a short sha256 is refused");
    tp_close(&t);
    is_int(at_step(&t, "fetch", (const char *[]){ "url=file:///x", kv("sha256", SUM_EMPTY),
                                                  "dest=/tmp/x", "mode=0999", NULL }, 0),
           PIPIT_ECONFIG, "a mode that is not octal is refused");
    tp_close(&t);
    is_int(at_step(&t, "fetch", (const char *[]){ "url=ftp://h/x", kv("sha256", SUM_EMPTY),
                                                  "dest=/tmp/x", NULL }, 0),
           PIPIT_ECONFIG, "an ftp:// url is refused");
    tp_close(&t);
    is_int(at_step(&t, "fetch", (const char *[]){ "url=file:///x", kv("sha256", SUM_EMPTY),
                                                  "dest=/tmp/", NULL }, 0),
           PIPIT_ECONFIG, "a dest that names a directory is refused");
    tp_close(&t);
}

/* One fetch of www/v1.tar from file:// to dest bounded by allowed_dirs=[tmp/apps];
 * returns its status, the log kept. */
static int bounded_fetch(const char *dest)
{
    struct tp t;
    int rc;

    at_log_clear();
    rc = at_step(&t, "fetch", (const char *[]){
                     kv("url", "file://%s/www/v1.tar", tmp), kv("sha256", "%s", sum_v1),
                     kv("dest", "%s", dest), kv("allowed_dirs", "[\"%s/apps\"]", tmp),
                     NULL }, 10000);
    tp_close(&t);
    return rc;
}

/*
 * allowed_dirs: dest must lead into tmp/apps once .. and the symlinks of
 * its directory are resolved. Passes when a dest inside is written and
 * every escape (.., a symlinked directory, an absolute path) is refused
 * with PIPIT_EPERM, the log naming the key and the path, nothing written
 * outside (no temporary file either).
 */
static void test_allowed_dirs(void)
{
    struct at_tree d;
    char p[4400];

    at_tree_make(tmp, "releases", &d);
    const char *apps = d.apps, *outside = d.outside, *esc = d.escape;

    snprintf(p, sizeof p, "%s/releases/../app.tar", apps);
    is_int(bounded_fetch(p), PIPIT_OK, "a dest inside (.. that stays inside) is written");
    snprintf(p, sizeof p, "%s/app.tar", apps);
    is_str(tp_slurp(p), "artifact v1\n", "where it leads");

    snprintf(p, sizeof p, "%s/releases/../../outside/app.tar", apps);
    is_int(bounded_fetch(p), PIPIT_EPERM, "a dest with ../ out is refused");
    ok(at_logged("msg=\"dest \\\"") &&
       at_logged("outside/app.tar, which is outside allowed_dirs"),
       "naming the key and where it leads");
    is_int(at_entries(outside), 0, "nothing is written outside");

    snprintf(p, sizeof p, "%s/app.tar", esc);
    is_int(bounded_fetch(p), PIPIT_EPERM, "a dest under a symlinked directory that leads "
           "out is refused");
    is_int(at_entries(outside), 0, "nothing is written outside");

    snprintf(p, sizeof p, "%s/app.tar", outside);
    is_int(bounded_fetch(p), PIPIT_EPERM, "an absolute dest outside is refused");
    is_int(at_entries(outside), 0, "nothing is written outside");

    snprintf(p, sizeof p, "%s/nothing/app.tar", apps);
    is_int(bounded_fetch(p), PIPIT_EINVAL, "a dest in a directory that does not exist is "
           "refused");
    ok(at_logged("its directory"), "saying which");
}

/*
 * Shell metacharacters in dest are bytes of the name, never run; a
 * megabyte-long dest or url is refused with its length, not echoed.
 * Passes when the file with the odd name holds the artifact, no file the
 * metacharacters would make exists, and both 1 MiB values give
 * PIPIT_ECONFIG with a short log line.
 */
static void test_odd_values(void)
{
    static const char odd[] = "x $(touch pwned1); `touch pwned2` | &;<>*?'\" ~ {a,b}";
    char p[4400];
    struct tp t;

    snprintf(p, sizeof p, "%s/apps/%s", tmp, odd);
    is_int(bounded_fetch(p), PIPIT_OK, "metacharacters in dest");
    is_str(tp_slurp(p), "artifact v1\n", "are the file's name");
    ok(!at_exists("pwned1") && !at_exists("pwned2"), "and never run");

    char *huge = at_huge("dest", 1u << 20);
    at_log_clear();
    is_int(at_step(&t, "fetch", (const char *[]){ "url=file:///x", kv("sha256", SUM_EMPTY),
                                                  huge, NULL }, 0),
           PIPIT_ECONFIG, "a 1 MiB dest is refused");
    ok(at_logged("dest: 1048576 bytes, longer than a path may be"), "with its length");
    ok(strlen(at_log()) < 4096, "in a short log line");
    tp_close(&t);
    free(huge);
    huge = at_huge("url", 1u << 20);
    at_log_clear();
    is_int(at_step(&t, "fetch", (const char *[]){ huge, kv("sha256", SUM_EMPTY),
                                                  "dest=/tmp/x", NULL }, 0),
           PIPIT_ECONFIG, "a 1 MiB url is refused");
    ok(at_logged("url: 1048576 bytes, longer than 65536"), "with its length");
    ok(strlen(at_log()) < 4096, "in a short log line");
    tp_close(&t);
    free(huge);
}

int main(void)
{
    char www[4200], v1[4400];

    tmp = tp_tmpdir();
    snprintf(www, sizeof www, "%s/www", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    tp_mkdirs(tmp, "out");
    at_log_setup(tmp);
    tp_write(tmp, "www/v1.tar", "artifact v1\n");
    tp_write(tmp, "www/v2.tar", "artifact v2\n");
    snprintf(v1, sizeof v1, "%s/v1.tar", www);
    sha256_of(v1, sum_v1);
    if (strlen(sum_v1) != 64) {
        printf("Bail out! sha256sum did not run\n");
        return 1;
    }
    if (httpd_start(&srv, www, tmp, NULL) != 0) {
        printf("Bail out! httpd_fixture did not start\n");
        return 1;
    }
    test_http_download();
    test_bad_digest();
    test_file_and_limits();
    test_config();
    test_allowed_dirs();
    test_odd_values();
    httpd_stop(&srv);
    at_log_end();
    tp_rmtree(tmp);
    return done_testing();
}
