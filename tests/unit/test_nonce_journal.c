/* test_nonce_journal.c: the nonce journal: records survive a reopen, a torn last line is cut off, damage is refused, stale entries are pruned. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pipit/plugin.h>
#include "log.h"
#include "nonce_journal.h"
#include "../tap.h"

#define N1 "00112233445566778899aabbccddeeff"
#define N2 "ffeeddccbbaa99887766554433221100"
#define N3 "0123456789abcdef0123456789abcdef"
#define N4 "fedcba9876543210fedcba9876543210"
#define T0 1700000000
#define SKEW 60

static char dir[4096], path[4200];
static FILE *log_file;

static const char *slurp(const char *p)
{
    static char text[8192];
    FILE *f = fopen(p, "r");
    size_t n = 0;

    if (f) {
        n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
    }
    text[n] = '\0';
    return text;
}

static void spit(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        diag("cannot write %s", p);
}

/* The log written since the last call. */
static const char *log_taken(void)
{
    static char text[8192];
    int fd = fileno(log_file);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);

    text[n > 0 ? n : 0] = '\0';
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        diag("cannot truncate the log");
    return text;
}

static int lines_of(const char *p)
{
    int n = 0;
    for (const char *s = slurp(p); *s; s++)
        n += *s == '\n';
    return n;
}

static void test_record_and_reopen(void)
{
    nonce_journal *j;
    char err[512];
    struct stat st;

    unlink(path);
    is_int(nonce_journal_open(&j, path, SKEW, T0, err, sizeof err), PIPIT_OK,
           "a new journal opens");
    ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600, "the file is made, mode 0600");
    ok(!nonce_journal_seen(j, N1), "a nonce not recorded is not seen");
    is_int(nonce_journal_record(j, N1, T0 + 300, T0, err, sizeof err), PIPIT_OK,
           "record a nonce");
    ok(nonce_journal_seen(j, N1), "then it is seen");
    ok(!nonce_journal_seen(j, N2), "another is not");
    is_str(slurp(path), N1 " 1700000300\n", "the file holds the nonce and its expiry, one line");
    is_int(nonce_journal_record(j, N1, T0 + 300, T0, err, sizeof err), PIPIT_EINVAL,
           "recording the same nonce again fails");
    is_int(nonce_journal_record(j, "00112233", T0 + 300, T0, err, sizeof err), PIPIT_EINVAL,
           "a short nonce is refused");
    is_int(nonce_journal_record(j, "00112233445566778899AABBCCDDEEFF", T0 + 300, T0, err,
                                sizeof err), PIPIT_EINVAL, "upper-case hex is refused");
    is_int(nonce_journal_record(j, N2, T0 + 600, T0, err, sizeof err), PIPIT_OK,
           "record a second");
    nonce_journal_close(j);

    is_int(nonce_journal_open(&j, path, SKEW, T0 + 10, err, sizeof err), PIPIT_OK,
           "reopen (a restart)");
    ok(nonce_journal_seen(j, N1) && nonce_journal_seen(j, N2),
       "both nonces are seen after the restart");
    is_int(nonce_journal_count(j), 2, "two live entries");
    nonce_journal_close(j);
    nonce_journal_close(NULL);
    is_str(log_taken(), "", "nothing logged");
}

static void test_torn_line(void)
{
    nonce_journal *j;
    char err[512];

    spit(path, N1 " 1700000300\n" N2 " 17000");
    is_int(nonce_journal_open(&j, path, SKEW, T0, err, sizeof err), PIPIT_OK,
           "a torn last line does not stop the open");
    ok(strstr(log_taken(), "line 2 is cut short (" "38 bytes, no newline); ignoring it") != NULL,
       "a warning names the line");
    ok(nonce_journal_seen(j, N1), "the complete line is read");
    ok(!nonce_journal_seen(j, N2), "the torn one is not (that command never ran)");
    is_str(slurp(path), N1 " 1700000300\n", "the torn tail is cut off the file");
    is_int(nonce_journal_record(j, N3, T0 + 100, T0, err, sizeof err), PIPIT_OK,
           "a record after it");
    nonce_journal_close(j);
    is_str(slurp(path), N1 " 1700000300\n" N3 " 1700000100\n",
           "appends after the cut, with no torn bytes in between");
    is_int(nonce_journal_open(&j, path, SKEW, T0, err, sizeof err), PIPIT_OK, "reopens cleanly");
    ok(nonce_journal_seen(j, N1) && nonce_journal_seen(j, N3), "with both entries");
    nonce_journal_close(j);
    is_str(log_taken(), "", "and no warning the second time");

    spit(path, N1);                     /* torn before the blank */
    is_int(nonce_journal_open(&j, path, SKEW, T0, err, sizeof err), PIPIT_OK,
           "a file of one torn line opens");
    is_int(nonce_journal_count(j), 0, "empty");
    nonce_journal_close(j);
    log_taken();
}

static void test_damage(void)
{
    nonce_journal *j = (nonce_journal *)1;
    char err[512];

    spit(path, N1 " 1700000300\nnot a nonce line\n" N2 " 1700000300\n");
    is_int(nonce_journal_open(&j, path, SKEW, T0, err, sizeof err), PIPIT_EPARSE,
           "a damaged complete line is refused");
    ok(j == NULL, "no journal is returned");
    ok(strstr(err, "nonce.journal:2: damaged entry") != NULL, "the error names file and line: %s",
       err);
    spit(path, N1 " -5\n");
    is_int(nonce_journal_open(&j, path, SKEW, T0, err, sizeof err), PIPIT_EPARSE,
           "a negative expiry is damage");
    spit(path, N1 " 99999999999999999999\n");
    is_int(nonce_journal_open(&j, path, SKEW, T0, err, sizeof err), PIPIT_EPARSE,
           "an expiry past int64 is damage");
    spit(path, N1 "  1700000300\n");
    is_int(nonce_journal_open(&j, path, SKEW, T0, err, sizeof err), PIPIT_EPARSE,
           "two blanks are damage");
    is_int(nonce_journal_open(&j, dir, SKEW, T0, err, sizeof err), PIPIT_EIO,
           "a directory is not a journal");
    is_int(nonce_journal_open(&j, "", SKEW, T0, err, sizeof err), PIPIT_EINVAL, "no path");
    log_taken();
}

static void test_prune(void)
{
    nonce_journal *j;
    char err[512];

    unlink(path);
    nonce_journal_open(&j, path, SKEW, T0, err, sizeof err);
    nonce_journal_record(j, N1, T0 + 10, T0, err, sizeof err);
    nonce_journal_record(j, N2, T0 + 20, T0, err, sizeof err);
    nonce_journal_record(j, N3, T0 + 1000, T0, err, sizeof err);
    nonce_journal_close(j);

    /* at T0+75: N1 is past expiry + skew (70), N2 (80) is not */
    is_int(nonce_journal_open(&j, path, SKEW, T0 + 75, err, sizeof err), PIPIT_OK,
           "reopen with one of three entries stale");
    ok(!nonce_journal_seen(j, N1), "the stale entry is forgotten");
    ok(nonce_journal_seen(j, N2) && nonce_journal_seen(j, N3), "the others are kept");
    is_int(nonce_journal_lines(j), 3, "one stale line of three: the file is not rewritten");
    is_int(lines_of(path), 3, "it still has three lines");
    nonce_journal_close(j);

    nonce_journal_open(&j, path, SKEW, T0 + 80, err, sizeof err);
    ok(nonce_journal_seen(j, N2), "an entry exactly at expiry + skew is kept");
    nonce_journal_close(j);

    is_int(nonce_journal_open(&j, path, SKEW, T0 + 81, err, sizeof err), PIPIT_OK,
           "reopen with two of three stale");
    is_int(nonce_journal_count(j), 1, "one live entry");
    is_int(nonce_journal_lines(j), 1, "more than half stale: rewritten");
    is_str(slurp(path), N3 " 1700001000\n", "the file holds only the live entry");
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ok(access(tmp, F_OK) != 0, "no temporary file left");

    /* pruning while running, on record */
    nonce_journal_record(j, N1, T0 + 100, T0 + 81, err, sizeof err);
    nonce_journal_record(j, N2, T0 + 100, T0 + 81, err, sizeof err);
    is_int(nonce_journal_lines(j), 3, "three lines");
    is_int(nonce_journal_record(j, N4, T0 + 2000, T0 + 200, err, sizeof err), PIPIT_OK,
           "a record at a time when two entries are stale");
    ok(!nonce_journal_seen(j, N1) && !nonce_journal_seen(j, N2), "they are forgotten");
    ok(nonce_journal_seen(j, N3) && nonce_journal_seen(j, N4), "the live ones are kept");
    is_str(slurp(path), N3 " 1700001000\n" N4 " 1700002000\n",
           "the file was rewritten, then the new entry appended");
    nonce_journal_close(j);
    nonce_journal_open(&j, path, SKEW, T0 + 200, err, sizeof err);
    is_int(nonce_journal_count(j), 2, "and reads back the same");
    is_int(nonce_journal_prune(j, T0 + 5000, err, sizeof err), PIPIT_OK, "prune everything");
    is_int(nonce_journal_count(j), 0, "nothing left in memory");
    is_str(slurp(path), "", "nor in the file");
    nonce_journal_close(j);
    is_str(log_taken(), "", "nothing logged");
}

/* Many entries: the index grows and still finds every one. */
static void test_many(void)
{
    nonce_journal *j;
    char err[512], n[NONCE_HEX_LEN + 1];
    bool all = true;

    unlink(path);
    nonce_journal_open(&j, path, SKEW, T0, err, sizeof err);
    for (int i = 0; i < 2000; i++) {
        snprintf(n, sizeof n, "%08x%024x", (unsigned)i * 2654435761u, i);
        all &= nonce_journal_record(j, n, T0 + 100, T0, err, sizeof err) == PIPIT_OK;
    }
    ok(all, "2000 records");
    nonce_journal_close(j);
    nonce_journal_open(&j, path, SKEW, T0, err, sizeof err);
    for (int i = 0; i < 2000; i++) {
        snprintf(n, sizeof n, "%08x%024x", (unsigned)i * 2654435761u, i);
        all &= nonce_journal_seen(j, n);
    }
    ok(all && nonce_journal_count(j) == 2000, "all 2000 seen after a reopen");
    ok(!nonce_journal_seen(j, N1), "and an unknown one is not");
    nonce_journal_close(j);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/pipit-test-nonce.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        plan_skip_all("cannot make a temporary directory");
    snprintf(path, sizeof path, "%s/nonce.journal", dir);
    log_file = tmpfile();
    log_setup(log_file, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);

    test_record_and_reopen();
    test_torn_line();
    test_damage();
    test_prune();
    test_many();

    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    unlink(path);
    rmdir(dir);
    return done_testing();
}
