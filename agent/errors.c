/* errors.c: messages and names of the PIPIT_E* codes, from the SDK's X-macro. */
#include <pipit/plugin.h>
#include "errors.h"

const char *pipit_strerror(int err)
{
    switch (err) {
    case PIPIT_OK:    return "success";
    case PIPIT_RETRY: return "try again later";
    case PIPIT_PENDING: return "in progress";
#define XX(name, val, msg) case PIPIT_##name: return msg;
    PIPIT_ERRNO_MAP(XX)
#undef XX
    }
    return "unknown error";
}

const char *pipit_errname(int err)
{
    switch (err) {
    case PIPIT_OK:    return "PIPIT_OK";
    case PIPIT_RETRY: return "PIPIT_RETRY";
    case PIPIT_PENDING: return "PIPIT_PENDING";
#define XX(name, val, msg) case PIPIT_##name: return "PIPIT_" #name;
    PIPIT_ERRNO_MAP(XX)
#undef XX
    }
    return "PIPIT_E?";
}
