/* test_switch.c: the switch action through the harness on real symlinks: a fresh link, repointing with previous, refusals, removal, rollback. */
#include "acttest.h"

static const char *tmp;                 /* scratch directory of the test */
static char link_path[4200];            /* tmp/current */

static const char *kv(const char *key, const char *value)
{
    static char bufs[4][4400];
    static int n;
    char *b = bufs[n++ % 4];

    snprintf(b, sizeof bufs[0], "%s=%s", key, value);
    return b;
}

/* What the link points to, "" when it is not a symlink (static buffer). */
static const char *points_to(const char *path)
{
    static char buf[4200];
    ssize_t n = readlink(path, buf, sizeof buf - 1);

    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void test_switch(void)
{
    char v2[4400];
    struct tp t;
    int rc;

    rc = at_step(&t, "switch", (const char *[]){ kv("link", link_path), "target=releases/v1",
                                                 NULL }, 5000);
    is_int(rc, PIPIT_OK, "a fresh link");
    is_str(points_to(link_path), "releases/v1", "points at the target");
    is_str(at_res(&t, "previous"), "", "previous is empty: there was no link");
    ok(at_result(&t, "previous") != NULL, "but is a result");
    is_str(at_res(&t, "changed"), "true", "changed true");
    tp_close(&t);

    snprintf(v2, sizeof v2, "%s/releases/v2", tmp);
    rc = at_step(&t, "switch", (const char *[]){ kv("link", link_path), kv("target", v2),
                                                 NULL }, 5000);
    is_int(rc, PIPIT_OK, "repointing an existing link");
    is_str(points_to(link_path), v2, "points at the new target (an absolute one)");
    is_str(at_res(&t, "previous"), "releases/v1", "previous names the old target");
    is_int(at_entries(tmp), 3, "no temporary link is left (current, releases, plugin.log)");
    tp_close(&t);

    /* The rollback step: switch back to what previous said. */
    rc = at_step(&t, "switch", (const char *[]){ kv("link", link_path), "target=releases/v1",
                                                 NULL }, 5000);
    is_int(rc, PIPIT_OK, "switching back to previous");
    is_str(points_to(link_path), "releases/v1", "restores the old target");
    is_str(at_res(&t, "previous"), v2, "and reports the one it replaced");
    tp_close(&t);

    rc = at_step(&t, "switch", (const char *[]){ kv("link", link_path), "target=releases/v1",
                                                 NULL }, 5000);
    is_int(rc, PIPIT_OK, "switching to where it already points");
    is_str(at_res(&t, "changed"), "false", "changes nothing");
    tp_close(&t);
}

static void test_refusals(void)
{
    char file[4400];
    struct tp t;
    int rc;

    at_log_clear();
    rc = at_step(&t, "switch", (const char *[]){ kv("link", link_path), "target=releases/v9",
                                                 NULL }, 5000);
    is_int(rc, PIPIT_ENOENT, "a target that does not exist is refused");
    ok(at_logged("target releases/v9"), "naming it");
    is_str(points_to(link_path), "releases/v1", "the link is untouched");
    tp_close(&t);

    rc = at_step(&t, "switch", (const char *[]){ kv("link", link_path), "target=releases/v9",
                                                 "allow_missing=true", NULL }, 5000);
    is_int(rc, PIPIT_OK, "unless allow_missing is true");
    is_str(points_to(link_path), "releases/v9", "then the link dangles");
    tp_close(&t);

    snprintf(file, sizeof file, "%s/releases/v1/config", tmp);
    tp_write(tmp, "releases/v1/config", "real file\n");
    at_log_clear();
    rc = at_step(&t, "switch", (const char *[]){ kv("link", file), "target=../v2", NULL },
                 5000);
    is_int(rc, PIPIT_EINVAL, "a link path that is a regular file is refused");
    ok(at_logged("config exists and is not a symlink"), "naming it");
    is_str(tp_slurp(file), "real file\n", "the file is untouched");
    tp_close(&t);

    rc = at_step(&t, "switch", (const char *[]){ "link=/tmp/", "target=x", NULL }, 0);
    is_int(rc, PIPIT_ECONFIG, "a link path ending in / is refused");
    tp_close(&t);

    at_cancel = true;
    rc = at_step(&t, "switch", (const char *[]){ kv("link", link_path), "target=releases/v1",
                                                 NULL }, 5000);
    at_cancel = false;
    is_int(rc, PIPIT_ECANCELED, "a cancelled run does not switch");
    is_str(points_to(link_path), "releases/v9", "the link is untouched");
    tp_close(&t);
}

static void test_remove(void)
{
    struct tp t;
    int rc;

    rc = at_step(&t, "switch", (const char *[]){ kv("link", link_path), "target=", NULL },
                 5000);
    is_int(rc, PIPIT_OK, "an empty target removes the link");
    ok(!at_exists(link_path), "it is gone");
    is_str(at_res(&t, "previous"), "releases/v9", "previous names what it pointed to");
    tp_close(&t);

    rc = at_step(&t, "switch", (const char *[]){ kv("link", link_path), "target=", NULL },
                 5000);
    is_int(rc, PIPIT_OK, "removing a link that is not there succeeds");
    is_str(at_res(&t, "changed"), "false", "changing nothing");
    tp_close(&t);
}

int main(void)
{
    tmp = tp_tmpdir();
    snprintf(link_path, sizeof link_path, "%s/current", tmp);
    at_log_setup(tmp);
    tp_mkdirs(tmp, "releases/v1");
    tp_mkdirs(tmp, "releases/v2");
    test_switch();
    test_refusals();
    test_remove();
    at_log_end();
    tp_rmtree(tmp);
    return done_testing();
}
