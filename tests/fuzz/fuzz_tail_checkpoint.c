/* fuzz_tail_checkpoint.c: libFuzzer target for the tail input's checkpoint file reader (plugins/in_tail/tail_checkpoint.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE                     /* getline, asprintf, fmemopen */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tail_checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct table {
    struct tail_ckpt_entry *e;
    size_t n;
};

/* Keep a copy of every entry read; the path must be a NUL-free line. */
static bool fuzz_add(void *arg, const struct tail_ckpt_entry *e)
{
    struct table *t = arg;
    struct tail_ckpt_entry *a = realloc(t->e, (t->n + 1) * sizeof *a);

    if (!a)
        abort();
    t->e = a;
    if (e->fp_len > TAIL_FP_MAX || strchr(e->path, '\n'))
        abort();
    a[t->n] = *e;
    a[t->n].path = strdup(e->path);
    if (!a[t->n].path)
        abort();
    t->n++;
    return true;
}

static void fuzz_free(struct table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free((char *)t->e[i].path);
    free(t->e);
}

/* Give every line that looks like "C <16 hex> body" the hash of its body,
 * so that the fields behind the hash are reached. */
static void fuzz_fix_hashes(char *p, size_t size)
{
    for (size_t at = 0; at < size;) {
        char *nl = memchr(p + at, '\n', size - at);
        size_t len = (nl ? (size_t)(nl - (p + at)) : size - at);
        char *line = p + at;

        if (len >= 19 && line[0] == 'C' && line[1] == ' ' && line[18] == ' ') {
            char hex[17];

            snprintf(hex, sizeof hex, "%016llx",
                     (unsigned long long)tail_fnv((unsigned char *)line + 19, len - 19));
            memcpy(line + 2, hex, 16);
        }
        at += len + 1;
    }
}

/*
 * The input is a checkpoint file. What it yields is bounded by its lines;
 * written back the way in_tail writes it and read again, it must give the
 * same entries with nothing lost and no bad line.
 */
static void fuzz_one(const uint8_t *data, size_t size);

/* The input as it is, then with the hashes of its lines made right. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *fixed = malloc(size + 1);

    if (!fixed)
        return 0;
    fuzz_one(data, size);
    memcpy(fixed, data, size);
    fuzz_fix_hashes(fixed, size);
    fuzz_one((const uint8_t *)fixed, size);
    free(fixed);
    return 0;
}

static void fuzz_one(const uint8_t *data, size_t size)
{
    struct table t = { 0 }, again = { 0 };
    struct tail_ckpt_damage d;
    size_t lines = 1;
    char *out = NULL;
    size_t outlen = 0;
    FILE *f;

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    f = fmemopen((void *)data, size ? size : 1, "r");
    if (!f)
        return;
    if (size == 0)
        fgetc(f);                       /* an empty file: at EOF already */
    tail_ckpt_read(f, fuzz_add, &t, &d);
    fclose(f);
    if (t.n + d.bad_lines > lines || strlen(d.bad) >= sizeof d.bad)
        abort();
    if (d.bad_lines && !d.bad[0])
        abort();

    f = open_memstream(&out, &outlen);
    if (!f)
        abort();
    if (t.n == 0 && tail_ckpt_print(f, 0, 0, NULL) != 0)
        abort();
    for (size_t i = 0; i < t.n; i++)
        if (tail_ckpt_print(f, i + 1, t.n, &t.e[i]) != 0)
            abort();
    fclose(f);
    f = fmemopen(out, outlen, "r");
    if (!f)
        abort();
    tail_ckpt_read(f, fuzz_add, &again, &d);
    fclose(f);
    if (d.lost || d.bad_lines || again.n != t.n)
        abort();
    for (size_t i = 0; i < t.n; i++) {
        const struct tail_ckpt_entry *a = &t.e[i], *b = &again.e[i];

        if (a->dev != b->dev || a->ino != b->ino || a->off != b->off || a->fp != b->fp ||
            a->fp_len != b->fp_len || strcmp(a->path, b->path) != 0)
            abort();
    }
    free(out);
    fuzz_free(&t);
    fuzz_free(&again);
}
