/* jsonitems.h: the line items of a JSON billing export and the text of their fields. */
#ifndef PIPIT_BILLING_JSONITEMS_H
#define PIPIT_BILLING_JSONITEMS_H

#include <stddef.h>
#include <jansson.h>

/* Compiled into the plugin, its tests and its fuzz target; never exported. */
#define JITEMS_HIDDEN __attribute__((visibility("hidden")))

/* Room for any number jsonitems_text() writes. */
#define JITEMS_NUM_MAX 64

/*
 * The array of line items in doc: the value at path, a dotted key path
 * ("data.line_items"; "" is doc itself). At each step a key with the dots
 * in it is tried before the shorter keys split at them, so "a.b" finds
 * {"a.b": ...} and {"a": {"b": ...}}. Returns the array, borrowed from
 * doc, or NULL with why ("json_path \"x\": ...").
 */
JITEMS_HIDDEN json_t *jsonitems_select(json_t *doc, const char *path, char *why,
                                       size_t size);

/* The value at the dotted path in obj as jsonitems_select() finds keys;
 * NULL when absent. Borrowed from obj. */
JITEMS_HIDDEN json_t *jsonitems_get(json_t *obj, const char *path);

/*
 * The text of the field at path in item, in *out: a string as it is, an
 * integer in decimal, true/false as words, a real in the shortest form that
 * reads back to the same double (0.1 is "0.1"), written to buf of
 * JITEMS_NUM_MAX bytes. NULL when the field is absent or null. Returns 0,
 * or -1 when the value is an object or an array (not a field).
 */
JITEMS_HIDDEN int jsonitems_text(json_t *item, const char *path, char *buf,
                                 const char **out);

#endif
