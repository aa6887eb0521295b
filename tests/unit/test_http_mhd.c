/* test_http_mhd.c: without libmicrohttpd, http_server_start fails with a message naming the library, and the outcome is kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pipit/plugin.h>
#include "http_mhd.h"
#include "http_server.h"
#include "../tap.h"

int main(void)
{
    struct http_server_config c = {
        .listen = "127.0.0.1:0", .max_connections = 4, .timeout_s = 5,
        .max_request_bytes = 8192, .stall_timeout_ns = 2000000000,
    };
    char err[512] = "";

    plan(6);
    /* the test hook of http_mhd.h: a library no host has */
    setenv("PIPIT_TEST_MHD_SONAME", "libpipit-test-absent-microhttpd.so.0", 1);
    is_str(http_mhd_soname(), "libpipit-test-absent-microhttpd.so.0",
           "the test hook names the library to open");
    ok(http_server_start(&c, err, sizeof err) == NULL, "http_server_start fails");
    ok(strstr(err, "cannot load libmicrohttpd (libpipit-test-absent-microhttpd.so.0; "
                   "install the Debian package " PIPIT_MHD_PACKAGE "): ") != NULL,
       "naming the library and the package: %s", err);
    ok(http_mhd.start_daemon == NULL, "the table stays empty");
    /* the first outcome is kept: the library is not looked for again */
    unsetenv("PIPIT_TEST_MHD_SONAME");
    err[0] = '\0';
    is_int(http_mhd_load(err, sizeof err), PIPIT_ENOENT, "a later load gives the same outcome");
    ok(strstr(err, "libpipit-test-absent-microhttpd.so.0") != NULL, "with the same message");
    return done_testing();
}
