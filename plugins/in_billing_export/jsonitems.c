/* jsonitems.c: the line items of a JSON billing export and the text of their fields. */
#include "jsonitems.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JITEMS_DEPTH_MAX 32             /* dots followed in one path */

/* The value at the len bytes of path in v, whole keys before split ones. */
static json_t *jsonitems_find(json_t *v, const char *path, size_t len, int depth)
{
    json_t *hit;

    if (len == 0)
        return v;
    if (!json_is_object(v) || depth > JITEMS_DEPTH_MAX)
        return NULL;
    if ((hit = json_object_getn(v, path, len)) != NULL)
        return hit;
    for (size_t i = 0; i < len; i++) {
        if (path[i] != '.' || i == 0)
            continue;
        json_t *child = json_object_getn(v, path, i);
        if (child && (hit = jsonitems_find(child, path + i + 1, len - i - 1, depth + 1)))
            return hit;
    }
    return NULL;
}

json_t *jsonitems_get(json_t *obj, const char *path)
{
    return jsonitems_find(obj, path, strlen(path), 0);
}

json_t *jsonitems_select(json_t *doc, const char *path, char *why, size_t size)
{
    json_t *v = jsonitems_find(doc, path, strlen(path), 0);

    if (!v) {
        snprintf(why, size, "json_path \"%.64s\": not found in the document", path);
        return NULL;
    }
    if (!json_is_array(v)) {
        static const char *const types[] = {
            "an object", "an array", "a string", "a number", "a number", "true", "false",
            "null",
        };
        int t = json_typeof(v);
        snprintf(why, size, "json_path \"%.64s\": is %s, not an array of line items", path,
                 t >= 0 && t < 8 ? types[t] : "not an array");
        return NULL;
    }
    return v;
}

int jsonitems_text(json_t *item, const char *path, char *buf, const char **out)
{
    json_t *v = jsonitems_get(item, path);

    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    switch (json_typeof(v)) {
    case JSON_STRING:
        *out = json_string_value(v);
        return 0;
    case JSON_INTEGER:
        snprintf(buf, JITEMS_NUM_MAX, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *out = buf;
        return 0;
    case JSON_REAL: {
        double d = json_real_value(v);

        /* the fewest digits that read back as d: what the exporter wrote,
         * for any number of up to 15 significant digits */
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, JITEMS_NUM_MAX, "%.*g", prec, d);
            if (strtod(buf, NULL) == d)
                break;
        }
        *out = buf;
        return 0;
    }
    case JSON_TRUE:
        *out = "true";
        return 0;
    case JSON_FALSE:
        *out = "false";
        return 0;
    default:
        return -1;
    }
}
