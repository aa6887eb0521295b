/* promlabels.c: target labels of the prometheus input and their merge with scraped labels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "promlabels.h"

static bool promlabels_name(const char *k)
{
    if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_'))
        return false;
    if (k[0] == '_' && k[1] == '_')
        return false;                   /* reserved by Prometheus */
    for (k++; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_' ||
              (*k >= '0' && *k <= '9')))
            return false;
    return true;
}

/* Index of key in the n labels of l, or -1. */
static long promlabels_find(const struct pipit_label *l, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].key, key) == 0)
            return (long)i;
    return -1;
}

int promlabels_set_init(struct promlabels_set *s, const char *job, const char *instance,
                        const struct pipit_strmap *extra, char *why, size_t size)
{
    s->n = 0;
    s->labels[s->n++] = (struct pipit_label){ "job", job };
    s->labels[s->n++] = (struct pipit_label){ "instance", instance };
    if (extra->count > PROMLABELS_MAX_EXTRA) {
        snprintf(why, size, "%zu labels, at most %d", extra->count, PROMLABELS_MAX_EXTRA);
        return PIPIT_ECONFIG;
    }
    for (size_t i = 0; i < extra->count; i++) {
        const char *k = extra->keys[i];
        long at = promlabels_find(s->labels, s->n, k);

        if (!promlabels_name(k)) {
            snprintf(why, size, "\"%.64s\" is not a label name", k);
            return PIPIT_ECONFIG;
        }
        if (strcmp(k, "job") == 0) {
            snprintf(why, size, "set the job label with the job option");
            return PIPIT_ECONFIG;
        }
        if (at == 1)
            s->labels[1].value = extra->values[i];
        else if (at >= 0) {
            snprintf(why, size, "\"%.64s\" is given twice", k);
            return PIPIT_ECONFIG;
        } else
            s->labels[s->n++] = (struct pipit_label){ k, extra->values[i] };
    }
    return PIPIT_OK;
}

static int promlabels_add(struct promlabels_out *out, const char *key, const char *value)
{
    if (out->n == PROMLABELS_MAX)
        return PIPIT_ERANGE;
    out->labels[out->n++] = (struct pipit_label){ key, value };
    return PIPIT_OK;
}

/*
 * The key a scraped label gets when it clashes with a target label:
 * "exported_" in front until no label merged so far (the target's among
 * them) nor any scraped label has it. Returns it (kept in out->renamed) or
 * NULL when out of memory.
 */
static const char *promlabels_rename(const struct pipit_label *in, size_t n,
                                     const char *key, struct promlabels_out *out)
{
    char *name = strdup(key);

    while (name && (promlabels_find(out->labels, out->n, name) >= 0 ||
                    promlabels_find(in, n, name) >= 0)) {
        char *longer = malloc(strlen(name) + sizeof "exported_");
        if (longer)
            sprintf(longer, "exported_%s", name);
        free(name);
        name = longer;
    }
    if (name)
        out->renamed[out->nrenamed++] = name;
    return name;
}

int promlabels_merge(const struct promlabels_set *s, const struct pipit_label *in,
                     size_t n, bool honor, struct promlabels_out *out)
{
    int rc = PIPIT_OK;

    out->n = 0;
    out->nrenamed = 0;
    for (size_t i = 0; i < s->n && rc == PIPIT_OK; i++)
        if (!honor || promlabels_find(in, n, s->labels[i].key) < 0)
            rc = promlabels_add(out, s->labels[i].key, s->labels[i].value);
    for (size_t i = 0; i < n && rc == PIPIT_OK; i++) {
        const char *key = in[i].key;

        if (!honor && promlabels_find(s->labels, s->n, key) >= 0) {
            if (out->n == PROMLABELS_MAX)
                return PIPIT_ERANGE;
            if (!(key = promlabels_rename(in, n, key, out)))
                return PIPIT_ENOMEM;
        }
        rc = promlabels_add(out, key, in[i].value);
    }
    return rc;
}

void promlabels_out_free(struct promlabels_out *out)
{
    for (size_t i = 0; i < out->nrenamed; i++)
        free(out->renamed[i]);
    out->nrenamed = 0;
    out->n = 0;
}
