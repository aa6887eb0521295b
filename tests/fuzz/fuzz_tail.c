/* fuzz_tail.c: libFuzzer target for in_tail's parsing path (line splitting, multiline, JSON, regex, UTF-8 cleaning). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tail_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every record must be valid, NUL-free text of the stated length, at an
 * offset inside what was fed. */
static int fuzz_check(void *arg, const struct tail_rec *r)
{
    size_t fed = *(size_t *)arg;

    if (strlen(r->message) != r->len || r->offset > fed || r->end > fed || r->end < r->offset)
        abort();
    for (size_t i = 0; i < r->nlabels; i++)
        if (!r->labels[i].key || !r->labels[i].value)
            abort();
    return 0;
}

/*
 * The first byte picks the setup (format, multiline or not, small limits),
 * the rest is fed in chunks whose sizes come from the second byte, then
 * flushed as if the file was gone.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const starts[] = { NULL, "^\\S", "^\\d{4}-" };
    struct tail_parse_conf conf = { 0 };
    struct tail_counts counts = { 0 };
    struct tail_parser p;
    char err[256];
    size_t fed, at = 2, chunk;

    if (size < 2)
        return 0;
    conf.format = data[0] % 3;
    conf.max_line = 64 + (data[0] >> 4) * 16;
    conf.max_record = 64 + (data[1] % 8) * 64;
    chunk = 1 + data[1] / 8;
    if (tail_conf_init(&conf, starts[(data[0] >> 2) % 3],
                       conf.format == TAIL_FMT_REGEX ?
                           "^(?<ts>\\S+) (?<level>\\w+) (?<message>.*)$" : NULL,
                       err, sizeof err) != PIPIT_OK)
        abort();
    if (tail_parser_init(&p, &conf, &counts, 0) != PIPIT_OK)
        abort();
    fed = 0;
    while (at < size) {
        size_t n = size - at < chunk ? size - at : chunk;

        fed += n;
        tail_parser_feed(&p, (const char *)data + at, n, fuzz_check, &fed);
        if (tail_parser_safe(&p) > fed)
            abort();
        at += n;
    }
    tail_parser_flush(&p, true, fuzz_check, &fed);
    tail_parser_free(&p);
    tail_conf_free(&conf);
    return 0;
}
