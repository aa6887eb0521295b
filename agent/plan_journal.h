/* plan_journal.h: the on-disk journal of one plan run: JSON lines, each fsync'd before the runner goes on. */
#ifndef PIPIT_PLAN_JOURNAL_H
#define PIPIT_PLAN_JOURNAL_H

#include <stddef.h>
#include <jansson.h>

#define JOURNAL_MAX_BYTES (16u << 20)   /* a journal longer than this is refused */

struct plan_journal {
    int fd;
    char *path;
    unsigned writes;                    /* lines appended by this process */
};

/* Path of the journal of plan `name` under state_dir ("<dir>/runs/<name>.journal"),
 * creating <dir> and <dir>/runs (0700). Returns a string to free, or NULL. */
char *journal_path(const char *state_dir, const char *name);

/*
 * Read every complete line of the journal at path into *lines (a JSON
 * array of objects). A last line without its newline (a write cut by a
 * crash) is left out and counted in *torn. Returns 0, 1 when there is no
 * journal, -1 with a reason in why (unreadable, too long, a bad line
 * before the end).
 */
int journal_read(const char *path, json_t **lines, int *torn, char *why, size_t whylen);

/* Open path for appending (created 0600 when missing; a torn last line is
 * cut off first). Returns 0 or -1 with a reason in why. */
int journal_open(struct plan_journal *j, const char *path, char *why, size_t whylen);

/* Append one line and fdatasync it. Returns 0 or -1 with a reason in why. */
int journal_append(struct plan_journal *j, json_t *line, char *why, size_t whylen);

/* Close; with keep_as, rename the journal to that path (the last run). */
void journal_close(struct plan_journal *j, const char *keep_as);

#endif
