/* promcheck: read Prometheus text on stdin, fail on any malformed line, print each sample found. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "promtext.h"

#define MAX_INPUT (16u << 20)
#define MAX_FAMILIES 4096

/*
 * Beyond what promtext_parse checks line by line: every family has one
 * HELP and one TYPE line, the TYPE before its samples, and its samples
 * together (the format's rules for a whole exposition).
 */
struct families {
    char *name[MAX_FAMILIES];
    size_t n;
    char cur[256];                      /* family of the last TYPE line */
    bool histogram;
    unsigned long errors;
};

static bool seen(const struct families *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->name[i], name) == 0)
            return true;
    return false;
}

static void fail(struct families *f, unsigned long line, const char *what, const char *name)
{
    fprintf(stderr, "line %lu: %s: %s\n", line, what, name);
    f->errors++;
}

/* Does sample name belong to the current family? */
static bool in_family(const struct families *f, const char *name, size_t len)
{
    static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
    size_t cl = strlen(f->cur);

    if (len == cl && memcmp(name, f->cur, cl) == 0)
        return true;
    for (size_t i = 0; f->histogram && i < 3; i++)
        if (len == cl + strlen(suffixes[i]) && memcmp(name, f->cur, cl) == 0 &&
            memcmp(name + cl, suffixes[i], strlen(suffixes[i])) == 0)
            return true;
    return false;
}

static void check_line(struct families *f, unsigned long no, const char *line, size_t len)
{
    char name[256], type[32];

    if (len >= 7 && memcmp(line, "# HELP ", 7) == 0)
        return;                         /* its family is checked at TYPE */
    if (len >= 7 && memcmp(line, "# TYPE ", 7) == 0) {
        if (sscanf(line + 7, "%255s %31s", name, type) != 2)
            return;                     /* promtext reports it */
        if (seen(f, name) || f->n == MAX_FAMILIES) {
            fail(f, no, "family described twice", name);
            return;
        }
        f->name[f->n++] = strdup(name);
        snprintf(f->cur, sizeof f->cur, "%s", name);
        f->histogram = strcmp(type, "histogram") == 0 || strcmp(type, "summary") == 0;
        return;
    }
    if (len == 0 || line[0] == '#')
        return;
    size_t nl = strcspn(line, "{ \t\n");
    if (!in_family(f, line, nl)) {
        snprintf(name, sizeof name, "%.*s", (int)(nl < 200 ? nl : 200), line);
        fail(f, no, "sample outside its family's TYPE block", name);
    }
}

static void labels(const struct pipit_record *r, const char *extra_k, const char *extra_v)
{
    if (!r->nlabels && !extra_k)
        return;
    putchar('{');
    for (size_t i = 0; i < r->nlabels; i++)
        printf("%s%s=\"%s\"", i ? "," : "", r->labels[i].key, r->labels[i].value);
    if (extra_k)
        printf("%s%s=\"%s\"", r->nlabels ? "," : "", extra_k, extra_v);
    putchar('}');
}

static void on_emit(void *arg, const struct pipit_record *r)
{
    char le[40];
    (void)arg;

    if (r->metric_type != PIPIT_HISTOGRAM) {
        printf("%s", r->name);
        labels(r, NULL, NULL);
        printf(" %.17g\n", r->value);
        return;
    }
    for (size_t i = 0; i < r->nbuckets; i++) {
        snprintf(le, sizeof le, "%g", r->bucket_bounds[i]);
        printf("%s_bucket", r->name);
        labels(r, "le", le);
        printf(" %llu\n", (unsigned long long)r->bucket_counts[i]);
    }
    printf("%s_count", r->name);
    labels(r, NULL, NULL);
    printf(" %llu\n%s_sum", (unsigned long long)r->count, r->name);
    labels(r, NULL, NULL);
    printf(" %.17g\n", r->sum);
}

static void on_error(void *arg, unsigned long line, const char *reason)
{
    struct families *f = arg;
    fail(f, line, "malformed", reason);
}

int main(void)
{
    static struct families f;
    struct promtext_stats st;
    char *text = malloc(MAX_INPUT + 1);
    size_t len = 0, r;

    if (!text)
        return 2;
    while ((r = fread(text + len, 1, MAX_INPUT - len, stdin)) > 0)
        len += r;
    text[len] = '\0';                   /* the line checks may run to it */
    unsigned long no = 1;
    for (size_t i = 0; i < len; no++) {
        size_t e = i;
        while (e < len && text[e] != '\n')
            e++;
        check_line(&f, no, text + i, e - i);
        i = e + 1;
    }
    if (promtext_parse(text, len, on_emit, on_error, &f, &st) != 0)
        f.errors++;
    if (st.records == 0)
        fail(&f, 0, "no sample", "empty exposition");
    fprintf(stderr, "promcheck: %lu lines, %lu samples, %zu families, %lu errors\n",
            st.lines, st.records, f.n, f.errors);
    for (size_t i = 0; i < f.n; i++)
        free(f.name[i]);
    free(text);
    return f.errors ? 1 : 0;
}
