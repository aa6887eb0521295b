/* fuzz_promscrape.c: libFuzzer target for the prometheus input's path from a body to records: promtext_samples, promtext_parse, and promlabels_merge both ways with target labels that clash. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "promlabels.h"
#include "promtext.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The target of every input: job, instance and two configured labels, one
 * of which is itself an exported_ name, so renames must go around it. */
static const char *const extra_keys[] = { "env", "exported_job" };
static const char *const extra_values[] = { "prod", "configured" };
static const struct pipit_strmap extra = { extra_keys, extra_values, 2 };

struct fuzz_scrape {
    struct promlabels_set set;
    unsigned long records;
};

/* The value of key among the n labels of l, or NULL. */
static const char *fuzz_value(const struct pipit_label *l, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].key, key) == 0)
            return l[i].value;
    return NULL;
}

/*
 * Merge rec's labels with the target's and check the result: a record the
 * host accepts (no key twice, at most 64 labels) that encodes as JSON; the
 * winning side's labels all there with their values; nothing lost but the
 * losing side's clashing labels with honor.
 */
static void fuzz_merge(struct fuzz_scrape *f, const struct pipit_record *rec, bool honor)
{
    struct promlabels_out out;
    struct pipit_record r = *rec;
    struct buf b = BUF_INIT;
    char err[256];
    size_t clashes = 0;

    for (size_t i = 0; i < f->set.n; i++)
        clashes += fuzz_value(rec->labels, rec->nlabels, f->set.labels[i].key) != NULL;
    int rc = promlabels_merge(&f->set, rec->labels, rec->nlabels, honor, &out);
    size_t want = f->set.n + rec->nlabels - (honor ? clashes : 0);
    if (rc == PIPIT_ERANGE) {
        if (want <= PROMLABELS_MAX)
            abort();
        promlabels_out_free(&out);
        return;
    }
    if (rc != PIPIT_OK || out.n != want)
        abort();
    const struct pipit_label *win = honor ? rec->labels : f->set.labels;
    size_t nwin = honor ? rec->nlabels : f->set.n;
    for (size_t i = 0; i < nwin; i++) {
        const char *v = fuzz_value(out.labels, out.n, win[i].key);
        if (!v || strcmp(v, win[i].value) != 0)
            abort();
    }
    r.labels = out.labels;
    r.nlabels = out.n;
    if (record_check(&r, err, sizeof err) != PIPIT_OK)
        abort();
    if (record_encode_json(&b, &r, "host", "prometheus", 1) != PIPIT_OK)
        abort();
    buf_free(&b);
    promlabels_out_free(&out);
}

static void fuzz_emit(void *arg, const struct pipit_record *rec)
{
    struct fuzz_scrape *f = arg;

    f->records++;
    fuzz_merge(f, rec, false);
    fuzz_merge(f, rec, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_scrape f = { .records = 0 };
    struct promtext_stats st;
    char why[160];

    if (promlabels_set_init(&f.set, "node", "127.0.0.1:9100", &extra, why, sizeof why) !=
        PIPIT_OK)
        abort();
    size_t samples = promtext_samples((const char *)data, size);
    if (promtext_parse((const char *)data, size, fuzz_emit, NULL, &f, &st) != PIPIT_OK)
        return 0;
    /* every record comes from at least one sample line */
    if (st.records != f.records || st.records > samples || samples > st.lines)
        abort();
    return 0;
}
