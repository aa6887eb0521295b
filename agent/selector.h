/* selector.h: target selectors ("role=web,env=prod", "host=web-0*") that say which agents a command addresses. */
#ifndef PIPIT_SELECTOR_H
#define PIPIT_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <pipit/plugin.h>

#define SELECTOR_MAX_LEN   4096         /* longer selector texts are refused */
#define SELECTOR_MAX_TERMS 64

struct selector_term {
    char *key;                          /* "host", or a label name */
    char *glob;                         /* fnmatch(3) pattern, flags 0 */
    bool negate;                        /* key!=glob */
};

struct selector {
    bool all;                           /* the text was "*" */
    struct selector_term *terms;        /* all must hold (comma = AND) */
    size_t count;
};

/*
 * Parse text: "*" alone (every agent), or terms separated by commas, each
 * "key=glob" or "key!=glob", blanks around terms ignored. A key is letters,
 * digits and "_.-/"; a glob is a non-empty fnmatch(3) pattern without a
 * comma or blank. Returns PIPIT_OK with *sel filled (free it with
 * selector_free), PIPIT_EPARSE with "at position N: …" in err (N counts
 * characters of text from 1), or PIPIT_ENOMEM. *sel is zeroed on error.
 */
int selector_parse(const char *text, struct selector *sel, char *err, size_t errlen);

/*
 * Whether an agent with this host name and these labels is addressed: "host"
 * terms match host, other keys match the label of that name. key=glob needs
 * the label present and matching; key!=glob holds when it is absent or does
 * not match. labels may be NULL (no labels).
 */
bool selector_match(const struct selector *sel, const char *host,
                    const struct pipit_strmap *labels);

void selector_free(struct selector *sel);

#endif
