/* syncdir.h: fsync a directory so that a create, rename or unlink in it survives a crash, for the plugins that replace files. */
#ifndef PIPIT_PLUGINS_SYNCDIR_H
#define PIPIT_PLUGINS_SYNCDIR_H

/* Compiled into each plugin that uses it; never exported from the .so. */
#define SYNCDIR_HIDDEN __attribute__((visibility("hidden")))

/* fsync the directory dir. Returns 0, or -1 with errno set. */
SYNCDIR_HIDDEN int syncdir(const char *dir);

/* fsync the directory that holds path ("." for a bare name). Returns 0,
 * or -1 with errno set. */
SYNCDIR_HIDDEN int syncdir_of(const char *path);

#endif
