/* http_mhd.c: open libmicrohttpd at run time and fill the table of the functions the HTTP endpoints call. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <pipit/plugin.h>
#include "http_mhd.h"

struct http_mhd http_mhd;

static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;
static int load_rc = 1;                 /* 1: not tried yet; else the outcome (under load_mu) */
static char load_err[512];              /* why the first try failed (under load_mu) */

const char *http_mhd_soname(void)
{
    const char *v = secure_getenv("PIPIT_TEST_MHD_SONAME");
    return v && *v ? v : PIPIT_MHD_SONAME;
}

/*
 * dlopen the library and look up every function of HTTP_MHD_FUNCTIONS
 * into a local table, copied to http_mhd only when all are there. The
 * handle is kept for the life of the process on success (threads of the
 * library may run until exit) and closed on failure.
 */
static int load_once(char *err, size_t errlen)
{
    const char *name = http_mhd_soname();
    struct http_mhd t;
    void *dl;

    dlerror();
    dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *why = dlerror();
        snprintf(err, errlen, "cannot load libmicrohttpd (%s; install the Debian "
                 "package %s): %s", name, PIPIT_MHD_PACKAGE, why ? why : "unknown reason");
        return PIPIT_ENOENT;
    }
#define HTTP_MHD_LOOKUP(field, symbol)                                          \
    *(void **)&t.field = dlsym(dl, #symbol);                                    \
    if (!t.field) {                                                             \
        snprintf(err, errlen, "%s (libmicrohttpd) has no function %s: it is "   \
                 "not the libmicrohttpd pipit was built for", name, #symbol);   \
        dlclose(dl);                                                            \
        return PIPIT_ENOENT;                                                    \
    }
    HTTP_MHD_FUNCTIONS(HTTP_MHD_LOOKUP)
#undef HTTP_MHD_LOOKUP
    http_mhd = t;
    return PIPIT_OK;
}

int http_mhd_load(char *err, size_t errlen)
{
    pthread_mutex_lock(&load_mu);
    if (load_rc == 1)
        load_rc = load_once(load_err, sizeof load_err);
    int rc = load_rc;
    if (rc != PIPIT_OK)
        snprintf(err, errlen, "%s", load_err);
    pthread_mutex_unlock(&load_mu);
    return rc;
}
