/* selfmetrics.h: the daemon's own figures in the Prometheus text format (0.0.4). */
#ifndef PIPIT_SELFMETRICS_H
#define PIPIT_SELFMETRICS_H

#include "buf.h"
#include "health.h"

/*
 * Append every metric family of the daemon (docs/operations.md lists
 * them) to out, v judged by health_judge(), each with its HELP and TYPE lines once and its samples
 * together. Loop thread. (Out of memory leaves lines out; the text is a
 * few tens of KiB.)
 */
void selfmetrics_render(struct buf *out, const struct daemon_view *v);

#endif
