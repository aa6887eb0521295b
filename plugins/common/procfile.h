/* procfile.h: whole-file reads of /proc and /sys files for the built-in collectors. */
#ifndef PIPIT_PLUGINS_PROCFILE_H
#define PIPIT_PLUGINS_PROCFILE_H

#include <pipit/plugin.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Compiled into each plugin that uses it; never exported from the .so. */
#define PROCFILE_HIDDEN __attribute__((visibility("hidden")))

PROCFILE_HIDDEN int procfile_errno(int e);
PROCFILE_HIDDEN int procfile_read(const struct pipit_api *api, pipit_instance *ins,
                                  const char *path, size_t max, size_t initial,
                                  char **buf, size_t *cap, size_t *len);
PROCFILE_HIDDEN ssize_t procfile_read_at(int dirfd, const char *path, char *buf,
                                         size_t size);
/* Fields of /proc lines, parsed in place and independently of the locale. */
PROCFILE_HIDDEN int procfile_u64(const char **p, uint64_t *out);
PROCFILE_HIDDEN bool procfile_decimal(const char **p, double *out);

#endif
