/* statuslist.h: an expected-status list ("200-299,301,4xx"), parsed and matched (http_check and the HTTP actions). */
#ifndef PIPIT_PLUGINS_STATUSLIST_H
#define PIPIT_PLUGINS_STATUSLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATUSLIST_MIN 100              /* lowest HTTP status accepted */
#define STATUSLIST_MAX 599              /* highest */

/* A set of HTTP statuses, one bit per code from 0 to 639. */
struct statuslist {
    uint64_t bits[10];
};

/*
 * Parse text into *set: items separated by commas (blanks around them are
 * allowed), each a status ("204"), an inclusive range ("200-299") or a
 * class ("2xx"), every code within 100..599. Returns 0, or -1 with the
 * reason in why (NUL-terminated, naming the item) and *set left empty.
 * The text is outside input (configuration); it is never trusted.
 */
__attribute__((visibility("hidden")))
int statuslist_parse(const char *text, struct statuslist *set, char *why, size_t size);

/* True when status is in set. */
__attribute__((visibility("hidden")))
bool statuslist_has(const struct statuslist *set, long status);

/*
 * The same for a configured list: the union of count items, each parsed as
 * above, and the items joined by ", " into text (cut to tsize) for
 * messages. Returns 0, or -1 with the reason in why (an empty list is
 * refused) and *set left empty.
 */
__attribute__((visibility("hidden")))
int statuslist_parse_items(const char *const *items, size_t count, struct statuslist *set,
                           char *text, size_t tsize, char *why, size_t size);

#endif
