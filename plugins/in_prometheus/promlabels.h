/* promlabels.h: the labels of a scrape target, and how a scraped sample's labels merge with them. */
#ifndef PIPIT_PROMLABELS_H
#define PIPIT_PROMLABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <pipit/plugin.h>

#define PROMLABELS_MAX        64        /* labels of one record (the host's limit) */
#define PROMLABELS_MAX_EXTRA  32        /* configured labels of a target */

/*
 * The labels every record of a target gets: job, instance and the
 * configured ones. Borrows its strings (the options and the target's
 * instance text), which must outlive it; it holds no memory of its own.
 */
struct promlabels_set {
    struct pipit_label labels[PROMLABELS_MAX_EXTRA + 2];
    size_t n;
};

/* A merged label set; free with promlabels_out_free(). */
struct promlabels_out {
    struct pipit_label labels[PROMLABELS_MAX];
    size_t n;
    char *renamed[PROMLABELS_MAX];      /* exported_* keys made for it */
    size_t nrenamed;
};

/*
 * Fill s with job, instance and the labels of extra. An extra key must be
 * a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__") other than
 * "job"; "instance" replaces the one derived from the URL. Returns
 * PIPIT_OK, or PIPIT_ECONFIG with the reason in why.
 */
int promlabels_set_init(struct promlabels_set *s, const char *job, const char *instance,
                        const struct pipit_strmap *extra, char *why, size_t size);

/*
 * Merge the n labels of a scraped sample with the target's s into out.
 * A key in both: with honor, the scraped label is kept and the target's
 * left out; without, the scraped one is renamed "exported_<key>" (the
 * prefix repeated until the name is free), as Prometheus does. Returns
 * PIPIT_OK, PIPIT_ERANGE when the result would have more than
 * PROMLABELS_MAX labels, or PIPIT_ENOMEM; out needs promlabels_out_free()
 * in every case.
 */
int promlabels_merge(const struct promlabels_set *s, const struct pipit_label *in,
                     size_t n, bool honor, struct promlabels_out *out);

void promlabels_out_free(struct promlabels_out *out);

#endif
