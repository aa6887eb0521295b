/* diag.h: a list of user-facing errors, each naming file, line and key. */
#ifndef PIPIT_DIAG_H
#define PIPIT_DIAG_H

#include <stddef.h>
#include <stdio.h>

struct diag_item {
    char *file;                         /* config file, or NULL */
    int line;                           /* 1-based, 0 when unknown */
    char *key;                          /* dotted key path, or NULL */
    char *msg;                          /* what is wrong, never a secret */
};

struct diag {
    struct diag_item *items;
    size_t count, cap;
    size_t max;                         /* stop recording after this many */
    size_t dropped;                     /* errors past max, only counted */
};

void diag_init(struct diag *d);
/* Record one error. file and key may be NULL. Copies everything. */
void diag_add(struct diag *d, const char *file, int line, const char *key,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Print "file:line: key: msg" lines, one per error, to f. */
void diag_print(const struct diag *d, FILE *f);
/* Send every error to the log at error level. */
void diag_log(const struct diag *d, const char *module);
void diag_free(struct diag *d);

#endif
