/* test_httploop.c: plugins/common/httploop driven by the loop of the plugin harness, against tests/http/httpd_fixture. */
#include "../plugins/plugtest.h"
#include "httpd.h"

static struct httpd srv;
static char root[4200], url[4][256];

/* Open the in_httpget fixture with options kv; returns init's status. */
static int open_get(struct tp *t, const char *const *kv)
{
    const char *lib = getenv("PIPIT_TEST_LIB");
    char path[4096];

    if (!lib)
        plan_skip_all("PIPIT_TEST_LIB is not set (run through make check)");
    snprintf(path, sizeof path, "%s/in_httpget.so", lib);
    return tp_open_path(t, path, kv);
}

static int want_records = 1;

static bool have_enough(struct tp *t)
{
    return (int)json_array_size(t->recs) >= want_records;
}

/* Fetch the URLs of kv once; wait for n records (at most ms). */
static int64_t fetch(struct tp *t, const char *const *kv, int n, int64_t ms)
{
    want_records = n;
    if (open_get(t, kv) != PIPIT_OK)
        return -1;
    return tp_pump(t, ms, have_enough);
}

static const char *label(json_t *r, const char *key)
{
    const char *v = json_string_value(json_object_get(json_object_get(r, "labels"), key));
    return v ? v : "";
}

static json_t *first(struct tp *t)
{
    return json_array_get(t->recs, 0);
}

static void test_statuses(void)
{
    struct tp t;
    char opt[512];

    snprintf(opt, sizeof opt, "urls=[http://127.0.0.1:%u/ok.txt]", srv.port);
    fetch(&t, (const char *[]){ opt, "interval=1h", NULL }, 1, 10000);
    is_int((int)tp_val(first(&t)), 200, "a file: 200");
    is_str(label(first(&t), "bytes"), "6", "its body, 6 bytes");
    is_str(label(first(&t), "error"), "", "no error");
    tp_close(&t);

    snprintf(opt, sizeof opt, "urls=[http://127.0.0.1:%u/missing.txt]", srv.port);
    fetch(&t, (const char *[]){ opt, "interval=1h", NULL }, 1, 10000);
    is_int((int)tp_val(first(&t)), 404, "a missing file: 404");
    tp_close(&t);

    snprintf(opt, sizeof opt, "urls=[\"http://127.0.0.1:%u/ok.txt?status=500\"]", srv.port);
    fetch(&t, (const char *[]){ opt, "interval=1h", NULL }, 1, 10000);
    is_int((int)tp_val(first(&t)), 500, "status=500: 500");
    tp_close(&t);
}

static void test_failures(void)
{
    struct tp t;
    char opt[512];

    snprintf(opt, sizeof opt, "urls=[\"http://127.0.0.1:%u/ok.txt?delay_ms=3000\"]", srv.port);
    fetch(&t, (const char *[]){ opt, "interval=1h", "timeout=300ms", NULL }, 1, 10000);
    is_int((int)tp_val(first(&t)), 0, "past its timeout: no status");
    ok(strstr(label(first(&t), "error"), "imed out") != NULL, "the error says it timed out (%s)",
       label(first(&t), "error"));
    ok(atof(label(first(&t), "seconds")) < 2.5, "it ended at its timeout (%s s)",
       label(first(&t), "seconds"));
    tp_close(&t);

    snprintf(opt, sizeof opt, "urls=[http://127.0.0.1:%u/big.txt]", srv.port);
    fetch(&t, (const char *[]){ opt, "interval=1h", "max_body=64", NULL }, 1, 10000);
    is_str(label(first(&t), "too_large"), "true", "a body past max_body is flagged");
    ok(strstr(label(first(&t), "error"), "size limit") != NULL, "with an error saying so");
    ok(atoi(label(first(&t), "bytes")) <= 64, "and no more than the cap kept");
    tp_close(&t);

    fetch(&t, (const char *[]){ "urls=[http://127.0.0.1:1/]", "interval=1h", NULL }, 1, 10000);
    is_int((int)tp_val(first(&t)), 0, "a refused connection: no status");
    ok(label(first(&t), "error")[0] != '\0', "and an error (%s)", label(first(&t), "error"));
    tp_close(&t);
}

static void test_concurrent(void)
{
    struct tp t;
    char opt[1024];

    snprintf(opt, sizeof opt, "urls=[\"%s\", \"%s\", \"%s\"]", url[0], url[1], url[2]);
    int64_t ms = fetch(&t, (const char *[]){ opt, "interval=1h", NULL }, 3, 20000);
    is_int((int)json_array_size(t.recs), 3, "three slow URLs fetched");
    ok(ms < 2500, "concurrently: %lld ms for three answers of 1 s each", (long long)ms);
    tp_close(&t);
}

static void test_ticks(void)
{
    struct tp t;
    char opt[512];

    snprintf(opt, sizeof opt, "urls=[http://127.0.0.1:%u/ok.txt]", srv.port);
    fetch(&t, (const char *[]){ opt, "interval=100ms", NULL }, 4, 20000);
    ok(json_array_size(t.recs) >= 4, "a tick every 100 ms: %zu fetches",
       json_array_size(t.recs));
    tp_close(&t);
}

int main(void)
{
    const char *tmp = tp_tmpdir();

    plan(16);
    snprintf(root, sizeof root, "%s/www", tmp);
    tp_write(tmp, "www/ok.txt", "hello\n");
    char big[1024];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tp_write(tmp, "www/big.txt", big);
    if (httpd_start(&srv, root, tmp, NULL) != 0) {
        printf("Bail out! httpd_fixture did not start\n");
        return 1;
    }
    for (int i = 0; i < 3; i++)
        snprintf(url[i], sizeof url[i], "http://127.0.0.1:%u/ok.txt?delay_ms=1000&n=%d",
                 srv.port, i);
    test_statuses();
    test_failures();
    test_concurrent();
    test_ticks();
    httpd_stop(&srv);
    tp_rmtree(tmp);
    return done_testing();
}
