/* test_identity.c: the agent id file, host name, and sequence numbers that never repeat across restarts and crashes. */
#define _XOPEN_SOURCE 700
#include <ctype.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pipit/plugin.h>
#include "identity.h"
#include "log.h"
#include "../tap.h"

static char tmp[4096];                  /* private temporary directory */
static FILE *log_file;                      /* the log, for checking what was said */

static const char *at(const char *rel)
{
    static char bufs[4][4200];
    static int n;
    char *b = bufs[n++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", tmp, rel);
    return b;
}

/* Whole content of a small file, or "" when missing. */
static const char *slurp(const char *path)
{
    static char text[256];
    FILE *f = fopen(path, "r");
    size_t n = 0;

    if (f) {
        n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
    }
    text[n] = '\0';
    return text;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        diag("cannot write %s", path);
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

static bool uuid_v4(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode : 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    return remove(path);
}

static void test_new_and_reopen(void)
{
    struct identity id, id2;
    char first_id[37];

    /* Three levels that do not exist yet: all made, each 0700 */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", at("new/state/pipit"));
    is_int(identity_open(&id, dir, "web-01"), PIPIT_OK, "open on a new directory");
    ok(S_ISDIR(mode_of(at("new"))) && (mode_of(at("new")) & 07777) == 0700,
       "a missing parent is made 0700");
    is_int(mode_of(dir) & 07777, 0700, "the state directory is made 0700");
    ok(uuid_v4(id.agent_id), "agent id is a UUID v4 (%s)", id.agent_id);
    char want[64];
    snprintf(want, sizeof want, "%s\n", id.agent_id);
    is_str(slurp(at("new/state/pipit/agent_id")), want, "agent_id file holds the id and a newline");
    is_int(mode_of(at("new/state/pipit/agent_id")) & 07777, 0600, "agent_id file is 0600");
    is_str(id.host, "web-01", "host name as given");
    is_str(slurp(at("new/state/pipit/sequence")), "1025\n",
           "sequence file holds the reservation: 1024 numbers after 1");
    ok(access(at("new/state/pipit/sequence.tmp"), F_OK) != 0, "no temporary file left");
    ok(strstr(log_taken(), "new agent id") != NULL, "a new id is logged");

    uint64_t a = identity_next_seq(&id), b = identity_next_seq(&id),
             c = identity_next_seq(&id);
    ok(a == 1 && b == 2 && c == 3, "sequence numbers 1, 2, 3 on a new directory");
    memcpy(first_id, id.agent_id, sizeof first_id);
    identity_close(&id);
    identity_close(&id);                /* twice is harmless */

    if (!ok(identity_open(&id2, dir, NULL) == PIPIT_OK, "reopen"))
        diag("  log: %s", log_taken());
    is_str(id2.agent_id, first_id, "reopen keeps the agent id");
    ok(strstr(log_taken(), "new agent id") == NULL, "reopen makes no new id");
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    is_str(id2.host, host, "host NULL: the system's host name");
    uint64_t d = identity_next_seq(&id2);
    is_int(d, 1025, "after a restart numbers start at the last reservation");
    is_str(slurp(at("new/state/pipit/sequence")), "2049\n", "and reserve the next block");

    /* Across reservation blocks: consecutive, each block persisted before use */
    bool consecutive = true, persisted = true;
    uint64_t prev = d;
    for (int i = 0; i < 3000; i++) {
        uint64_t s = identity_next_seq(&id2);
        if (s != prev + 1)
            consecutive = false;
        unsigned long long reserved = strtoull(slurp(at("new/state/pipit/sequence")), NULL, 10);
        if (reserved <= s)
            persisted = false;
        prev = s;
    }
    ok(consecutive, "3000 numbers across three blocks are consecutive");
    ok(persisted, "the reservation on disk is always above every number handed out");
    is_int(prev, 4025, "last of them");
    identity_close(&id2);

    struct identity id3;
    is_int(identity_open(&id3, dir, ""), PIPIT_OK, "reopen once more (host \"\")");
    is_str(id3.host, host, "host \"\": the system's host name");
    ok(identity_next_seq(&id3) > prev, "numbers continue above the last session's");
    identity_close(&id3);
}

/*
 * A crash: a process takes numbers and dies without closing. A second open
 * of the same directory must hand out only numbers above every one the first
 * gave, whatever point of its block the first had reached.
 */
static void test_crash(void)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", at("crash"));
    struct identity a, b, c;
    uint64_t max_a = 0, max_b = 0;

    is_int(identity_open(&a, dir, "h"), PIPIT_OK, "crash: first open");
    for (int i = 0; i < 5; i++)
        max_a = identity_next_seq(&a);
    is_int(max_a, 5, "crash: first process took 1..5");

    /* no identity_close(&a): the process died */
    is_int(identity_open(&b, dir, "h"), PIPIT_OK, "crash: open after the crash");
    uint64_t first_b = identity_next_seq(&b);
    ok(first_b > max_a, "crash: first number after the crash (%" PRIu64 ") is above %" PRIu64,
       first_b, max_a);
    max_b = first_b;
    for (int i = 0; i < 1500; i++)      /* into the next block, then crash again */
        max_b = identity_next_seq(&b);

    is_int(identity_open(&c, dir, "h"), PIPIT_OK, "crash: open after a second crash");
    uint64_t first_c = identity_next_seq(&c);
    ok(first_c > max_b, "crash: after a crash mid-block, numbers (%" PRIu64 ") are above "
       "every one handed out (%" PRIu64 ")", first_c, max_b);
    identity_close(&a);
    identity_close(&b);
    identity_close(&c);
}

/* A sequence file that does not hold a plain number is refused, untouched. */
static void damaged_sequence(const char *content, const char *what)
{
    struct identity id;
    char dir[64];
    static int n;

    snprintf(dir, sizeof dir, "damaged%d", n++);
    mkdir(at(dir), 0700);
    char path[4200];
    snprintf(path, sizeof path, "%s/sequence", at(dir));
    spit(path, content);
    log_taken();
    int r = identity_open(&id, at(dir), "h");
    ok(r != PIPIT_OK, "sequence file %s: open refused", what);
    if (r == PIPIT_OK) {
        diag("  next number would be %" PRIu64, identity_next_seq(&id));
        identity_close(&id);
    }
    is_str(slurp(path), content, "sequence file %s: left as it was", what);
    ok(strstr(log_taken(), "is damaged") != NULL, "sequence file %s: logged as damaged", what);
}

static void test_damaged(void)
{
    damaged_sequence("garbage\n", "with text");
    damaged_sequence("", "empty");
    damaged_sequence("12abc\n", "with a number then text");
    damaged_sequence("0\n", "holding 0");
    damaged_sequence("-5\n", "holding a negative number");
    damaged_sequence("99999999999999999999999\n", "holding a number too large for 64 bits");
    damaged_sequence("18446744073709551615\n", "holding the largest 64-bit number");

    /* A damaged agent_id is replaced by a new UUID */
    struct identity id;
    mkdir(at("badid"), 0700);
    spit(at("badid/agent_id"), "not-a-uuid\n");
    log_taken();
    is_int(identity_open(&id, at("badid"), "h"), PIPIT_OK, "agent_id damaged: open succeeds");
    ok(uuid_v4(id.agent_id), "agent_id damaged: a new UUID v4 is made");
    char want[64];
    snprintf(want, sizeof want, "%s\n", id.agent_id);
    is_str(slurp(at("badid/agent_id")), want, "agent_id damaged: the file now holds it");
    ok(strstr(log_taken(), "does not hold a UUID") != NULL, "agent_id damaged: warned");
    identity_close(&id);

    spit(at("badid/agent_id"), "");
    is_int(identity_open(&id, at("badid"), "h"), PIPIT_OK, "agent_id empty: open succeeds");
    ok(uuid_v4(id.agent_id), "agent_id empty: a new UUID v4 is made");
    identity_close(&id);

    /* An agent_id file without a newline is read as it is */
    spit(at("badid/agent_id"), "0f0e0d0c-0b0a-4908-8706-050403020100");
    is_int(identity_open(&id, at("badid"), "h"), PIPIT_OK, "agent_id without newline: open");
    is_str(id.agent_id, "0f0e0d0c-0b0a-4908-8706-050403020100",
           "agent_id without newline: kept");
    identity_close(&id);

    /* A state "directory" that is a file */
    spit(at("afile"), "x");
    ok(identity_open(&id, at("afile"), "h") != PIPIT_OK, "a state directory that is a file is refused");
    log_taken();
}

int main(void)
{
    const char *t = getenv("TMPDIR");

    umask(022);
    snprintf(tmp, sizeof tmp, "%s/pipit-test-identity.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmp))
        plan_skip_all("cannot make a temporary directory");
    log_file = tmpfile();
    if (!log_file)
        plan_skip_all("cannot make a temporary file");
    log_setup(log_file, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);

    test_new_and_reopen();
    test_crash();
    test_damaged();

    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    fclose(log_file);
    return done_testing();
}
