/* mhd_partial.c: a library that holds one function of libmicrohttpd's only, so that pipitd's tests see what a wrong libmicrohttpd gets. */
#include <stddef.h>

struct MHD_Daemon;

/* Never called: pipitd gives up at the first function it cannot find. */
__attribute__((visibility("default"))) void MHD_stop_daemon(struct MHD_Daemon *d);
void MHD_stop_daemon(struct MHD_Daemon *d)
{
    (void)d;
}
