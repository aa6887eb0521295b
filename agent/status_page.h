/* status_page.h: the status page served at /, built into the binary from agent/status_page.html. */
#ifndef PIPIT_STATUS_PAGE_H
#define PIPIT_STATUS_PAGE_H

#include <stddef.h>

extern const char status_page_html[];   /* NUL-terminated */
extern const size_t status_page_html_len;

#endif
