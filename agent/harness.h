/* harness.h: run one plugin alone, outside the daemon, and capture what it emits. */
#ifndef PIPIT_HARNESS_H
#define PIPIT_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "buf.h"
#include "instance.h"

struct harness {
    struct instance_host host;
    uv_loop_t loop;
    struct pipit_instance *ins;
    struct buf out;                     /* every JSON line emitted, in order */
    uint32_t records;
    json_t *results;                    /* actions: api->set_result(), an object */
    int64_t deadline_ms;                /* actions: monotonic ms, 0: no timeout */
    bool loop_open, host_open;
    char host_name[256];
    char state_dir[4096];               /* private temporary directory */
};

/*
 * Load the plugin file at path (with every loader check) and make one
 * instance named after the plugin with the options "key=value" in kv (nkv
 * entries). Errors are printed to err (file, key, reason). Returns PIPIT_OK.
 */
int harness_open(struct harness *h, const char *path, char **kv, int nkv,
                 FILE *err);
/* Run init(). */
int harness_init(struct harness *h);
/* One collect() (collectors) or act() (actions); records appended to h->out,
 * then the loop runs once so loop-driven plugins make progress. */
int harness_run(struct harness *h);
/* Give one batch of h->out to an output plugin's flush(). */
int harness_flush(struct harness *h, int kind, const char *lines, size_t len,
                  uint32_t count);
/* fini(), close the loop, remove the state directory. */
void harness_close(struct harness *h);

#endif
