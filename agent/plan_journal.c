/* plan_journal.c: append-only, fsync'd JSON lines that let a plan run resume or roll back after a crash. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "buf.h"
#include "errors.h"
#include "fsutil.h"
#include "plan_journal.h"

char *journal_path(const char *state_dir, const char *name)
{
    char *dir = NULL, *path = NULL;

    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
        return NULL;
    if (asprintf(&dir, "%s/runs", state_dir) < 0)
        return NULL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        free(dir);
        return NULL;
    }
    if (asprintf(&path, "%s/%s.journal", dir, name) < 0)
        path = NULL;
    free(dir);
    return path;
}

int journal_read(const char *path, json_t **lines, int *torn, char *why, size_t whylen)
{
    struct buf b = BUF_INIT;
    char chunk[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n;

    *lines = NULL;
    *torn = 0;
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while ((n = read(fd, chunk, sizeof chunk)) > 0) {
        if (b.len + (size_t)n > JOURNAL_MAX_BYTES) {
            snprintf(why, whylen, "%s: longer than %u bytes", path, JOURNAL_MAX_BYTES);
            goto fail;
        }
        buf_append(&b, chunk, (size_t)n);
    }
    if (n < 0) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    *lines = json_array();
    size_t off = 0, lineno = 0;
    while (off < b.len) {
        char *nl = memchr(b.data + off, '\n', b.len - off);
        if (!nl) {
            *torn = 1;                  /* cut by a crash: never acted upon */
            break;
        }
        lineno++;
        json_error_t jerr;
        json_t *j = json_loadb(b.data + off, (size_t)(nl - (b.data + off)), 0, &jerr);
        if (!json_is_object(j)) {
            json_decref(j);
            snprintf(why, whylen, "%s:%zu: not a journal line (%s)", path, lineno,
                     jerr.text[0] ? jerr.text : "not an object");
            goto fail;
        }
        json_array_append_new(*lines, j);
        off = (size_t)(nl - b.data) + 1;
    }
    buf_free(&b);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    buf_free(&b);
    json_decref(*lines);
    *lines = NULL;
    return -1;
}


int journal_open(struct plan_journal *j, const char *path, char *why, size_t whylen)
{
    struct stat st;

    memset(j, 0, sizeof *j);
    j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (j->fd < 0 || fstat(j->fd, &st) != 0) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        if (j->fd >= 0)
            close(j->fd);
        j->fd = -1;
        return -1;
    }
    /* Cut a torn last line, so that the next line starts on its own. */
    off_t end = st.st_size;
    char c;
    while (end > 0 && pread(j->fd, &c, 1, end - 1) == 1 && c != '\n')
        end--;
    if (end != st.st_size && (ftruncate(j->fd, end) != 0 || fsync(j->fd) != 0)) {
        snprintf(why, whylen, "%s: cannot cut its torn last line: %s", path, strerror(errno));
        close(j->fd);
        j->fd = -1;
        return -1;
    }
    lseek(j->fd, 0, SEEK_END);
    j->path = strdup(path);
    if (st.st_size == 0)
        fs_sync_dir(path);
    return 0;
}

/*
 * Fault injection for the crash tests (tests/e2e/plan_crash.sh): with
 * PIPIT_FAULT_KILL_AFTER_JOURNAL_WRITES=N the process kills itself with
 * SIGKILL right after its N-th journal line is on disk.
 */
static void fault_point(const struct plan_journal *j)
{
    static long kill_after = -1;
    if (kill_after < 0) {
        const char *v = getenv("PIPIT_FAULT_KILL_AFTER_JOURNAL_WRITES");
        kill_after = v && *v ? strtol(v, NULL, 10) : 0;
    }
    if (kill_after > 0 && j->writes == (unsigned long)kill_after)
        raise(SIGKILL);
}

int journal_append(struct plan_journal *j, json_t *line, char *why, size_t whylen)
{
    char *text = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
    size_t len, done = 0;

    if (!text) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    len = strlen(text);
    text[len++] = '\n';                 /* json_dumps left room for the NUL */
    while (done < len) {
        ssize_t w = write(j->fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(why, whylen, "%s: %s", j->path, strerror(errno));
            free(text);
            return -1;
        }
        done += (size_t)w;
    }
    free(text);
    if (fdatasync(j->fd) != 0) {
        snprintf(why, whylen, "%s: fdatasync: %s", j->path, strerror(errno));
        return -1;
    }
    j->writes++;
    fault_point(j);
    return 0;
}

void journal_close(struct plan_journal *j, const char *keep_as)
{
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    if (keep_as && j->path && rename(j->path, keep_as) == 0)
        fs_sync_dir(keep_as);
    free(j->path);
    j->path = NULL;
}
