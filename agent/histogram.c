/* histogram.c: fixed-bucket histograms of the daemon's own figures. */
#include "histogram.h"

const struct histogram_bounds histogram_seconds = {
    13, { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 300 }
};

const struct histogram_bounds histogram_records = {
    11, { 1, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000 }
};

/* Count v in the first bucket whose bound is >= v (Prometheus' "le"). */
void histogram_observe(struct histogram *h, const struct histogram_bounds *b, double v)
{
    size_t i = 0;
    while (i < b->n && v > b->le[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}
