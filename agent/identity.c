/* identity.c: agent id (UUID kept in the state directory), host name, batch sequence numbers. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <pipit/plugin.h>
#include "fsutil.h"
#include "identity.h"
#include "log.h"

#define SEQ_BLOCK 1024                  /* numbers reserved per fsync */

/* mkdir -p with mode 0700 for directories that are made. */
static int make_dirs(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof tmp)
        return PIPIT_EINVAL;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return PIPIT_EIO;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return PIPIT_EIO;
    return PIPIT_OK;
}

/* Write data to path atomically (see fs_write_atomic), private to the agent. */
static int write_atomic(const char *path, const char *data, size_t len)
{
    return fs_write_atomic(path, data, len, 0600) == 0 ? PIPIT_OK : PIPIT_EIO;
}

static int read_small(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? PIPIT_ENOENT : PIPIT_EIO;
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    if (n < 0)
        return PIPIT_EIO;
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    return PIPIT_OK;
}

static bool uuid_valid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!strchr("0123456789abcdef", s[i])) {
            return false;
        }
    }
    return true;
}

static int make_uuid(char out[37])
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return PIPIT_EIO;
    r[6] = (r[6] & 0x0f) | 0x40;        /* version 4 */
    r[8] = (r[8] & 0x3f) | 0x80;        /* RFC 4122 variant */
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
             r[11], r[12], r[13], r[14], r[15]);
    return PIPIT_OK;
}

/* Persist seq_next + SEQ_BLOCK as the new reservation. */
static int reserve(struct identity *id)
{
    char text[32];
    uint64_t upto = id->seq_next + SEQ_BLOCK;
    int n = snprintf(text, sizeof text, "%" PRIu64 "\n", upto);
    if (write_atomic(id->seq_path, text, (size_t)n) != PIPIT_OK) {
        if (!id->failing)
            log_error("identity", "cannot persist sequence reservation in %s: %s; batches "
                      "stay open in memory until it can (tried again every second)",
                      id->seq_path, strerror(errno));
        return PIPIT_EIO;
    }
    id->seq_reserved = upto;
    return PIPIT_OK;
}

/*
 * Open the identity in state_dir: read or create agent_id, and start the
 * sequence after the last reservation so that a crash never reuses a number
 * (it may skip some, which the aggregator sees as a gap, not a duplicate).
 */
int identity_open(struct identity *id, const char *state_dir, const char *host)
{
    char path[4096], text[64];
    int r;

    memset(id, 0, sizeof *id);
    if (make_dirs(state_dir) != PIPIT_OK) {
        log_error("identity", "cannot create state directory %s: %s", state_dir,
                  strerror(errno));
        return PIPIT_EIO;
    }
    if (host && *host) {
        snprintf(id->host, sizeof id->host, "%s", host);
    } else if (gethostname(id->host, sizeof id->host - 1) != 0) {
        snprintf(id->host, sizeof id->host, "localhost");
    }

    snprintf(path, sizeof path, "%s/agent_id", state_dir);
    r = read_small(path, text, sizeof text);
    if (r == PIPIT_OK && uuid_valid(text)) {
        memcpy(id->agent_id, text, 37);
    } else {
        if (r == PIPIT_OK)
            log_warn("identity", "%s does not hold a UUID; making a new agent id", path);
        else if (r != PIPIT_ENOENT) {
            log_error("identity", "cannot read %s: %s", path, strerror(errno));
            return PIPIT_EIO;
        }
        if (make_uuid(id->agent_id) != PIPIT_OK)
            return PIPIT_EIO;
        char line[40];
        snprintf(line, sizeof line, "%s\n", id->agent_id);
        if (write_atomic(path, line, 37) != PIPIT_OK) {
            log_error("identity", "cannot write %s: %s", path, strerror(errno));
            return PIPIT_EIO;
        }
        log_info("identity", "new agent id %s", id->agent_id);
    }

    snprintf(path, sizeof path, "%s/sequence", state_dir);
    id->seq_path = strdup(path);
    if (!id->seq_path)
        return PIPIT_ENOMEM;
    id->seq_next = 1;
    r = read_small(path, text, sizeof text);
    if (r == PIPIT_OK) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        /* strtoull reads "-5" as 2^64-5, and a reservation above a number
         * that large wraps around to small ones already used: only digits,
         * and a value far from the top of the range, are a sequence */
        if (errno || *end || v == 0 || text[0] < '0' || text[0] > '9' ||
            v > UINT64_MAX / 2) {
            log_error("identity", "%s is damaged (\"%.20s\"); refusing to guess a "
                      "sequence number that might repeat", path, text);
            goto fail;
        }
        id->seq_next = v;
    } else if (r != PIPIT_ENOENT) {
        log_error("identity", "cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    if (reserve(id) == PIPIT_OK)
        return PIPIT_OK;
fail:
    identity_close(id);                 /* callers do not close a failed open */
    return PIPIT_EIO;
}

uint64_t identity_next_seq(struct identity *id)
{
    if (id->seq_next >= id->seq_reserved) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        if (id->failing && now < id->retry_ns)
            return 0;                   /* not at every record: once a second */
        if (reserve(id) != PIPIT_OK) {
            id->failing = true;
            id->retry_ns = now + 1000000000;
            return 0;
        }
        if (id->failing)
            log_info("identity", "sequence reservation written to %s again", id->seq_path);
        id->failing = false;
    }
    return id->seq_next++;
}

void identity_close(struct identity *id)
{
    free(id->seq_path);
    id->seq_path = NULL;
}
