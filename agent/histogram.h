/* histogram.h: fixed-bucket histograms of the daemon's own figures (latencies, sizes). */
#ifndef PIPIT_HISTOGRAM_H
#define PIPIT_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_MAX_BUCKETS 16

/* Bucket bounds shared by every histogram of one family (static storage). */
struct histogram_bounds {
    size_t n;                           /* finite bounds, at most HISTOGRAM_MAX_BUCKETS */
    double le[HISTOGRAM_MAX_BUCKETS];   /* increasing upper bounds */
};

/* Observations of one series; zero-filled is empty. Used from one thread. */
struct histogram {
    uint64_t counts[HISTOGRAM_MAX_BUCKETS + 1];  /* per bucket, not cumulative; last: +Inf */
    uint64_t count;
    double sum;
};

/* Delivery and collection times in seconds: 1 ms to 5 min. */
extern const struct histogram_bounds histogram_seconds;
/* Records per batch: 1 to 100000. */
extern const struct histogram_bounds histogram_records;

void histogram_observe(struct histogram *h, const struct histogram_bounds *b, double v);

#endif
