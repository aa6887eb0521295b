/* tail_checkpoint.h: the tail input's checkpoint file, one self-verifying line per followed file (docs/plugins/tail.md). */
#ifndef PIPIT_TAIL_CHECKPOINT_H
#define PIPIT_TAIL_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TAIL_FP_MAX 256                 /* bytes of a file's head fingerprinted */

/* One file's position: device, inode, offset, and the FNV-1a fingerprint of
 * its first fp_len bytes. */
struct tail_ckpt_entry {
    uintmax_t dev, ino, off, fp;
    unsigned fp_len;
    const char *path;                   /* borrowed: valid during the callback */
};

/* Called for each entry read; false (out of memory) counts the line as bad. */
typedef bool (*tail_ckpt_add_fn)(void *arg, const struct tail_ckpt_entry *e);

/* What a read found wrong. */
struct tail_ckpt_damage {
    uint64_t lost;                      /* entries lost: n less the good ones */
    size_t bad_lines;                   /* lines that did not verify */
    char bad[128];                      /* their numbers, "3,7", cut when long */
};

uint64_t tail_fnv(const unsigned char *p, size_t n);

/* Read a checkpoint file; each good entry goes to add. */
void tail_ckpt_read(FILE *f, tail_ckpt_add_fn add, void *arg, struct tail_ckpt_damage *d);

/* Write entry i (1-based) of n; n == 0 writes the line of an empty table and
 * e is not read. Returns 0, or -1 with errno set. */
int tail_ckpt_print(FILE *f, size_t i, size_t n, const struct tail_ckpt_entry *e);

#endif
