/* test_switch.c: the switch action through the harness on real symlinks: a fresh link, repointing with previous, refusals, removal, rollback, allowed_dirs, odd values. */
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

/* allowed_dirs=[tmp/apps] (static buffer). */
static const char *allowed(void)
{
    static char b[4400];

    snprintf(b, sizeof b, "allowed_dirs=[\"%s/apps\"]", tmp);
    return b;
}

/* One switch step bounded by allowed(); returns its status, the log kept. */
static int bounded(const char *link, const char *target, bool allow_missing)
{
    struct tp t;
    int rc;

    at_log_clear();
    rc = at_step(&t, "switch", (const char *[]){ kv("link", link), kv("target", target),
                                                 allowed(), allow_missing ?
                                                 "allow_missing=true" : NULL, NULL }, 5000);
    tp_close(&t);
    return rc;
}

/*
 * allowed_dirs: link and target must lead into tmp/apps once .. and
 * symlinks are resolved. Passes when the paths inside are switched and
 * every escape (.., a symlinked directory, an absolute path, a symlinked
 * target, .. after a part that does not exist) is refused with
 * PIPIT_EPERM or PIPIT_EINVAL, the log naming the key and the path, and
 * nothing made outside.
 */
static void test_allowed_dirs(void)
{
    struct at_tree d;
    char link[4400], p[4400];
    struct tp t;

    at_tree_make(tmp, "releases/v1", &d);
    const char *apps = d.apps, *out = d.outside, *esc = d.escape;
    snprintf(link, sizeof link, "%s/current", apps);

    is_int(bounded(link, "releases/v1", false), PIPIT_OK, "a link and target inside are "
           "switched");
    is_str(points_to(link), "releases/v1", "the link points at the target");

    snprintf(p, sizeof p, "%s/../outside/current", apps);
    is_int(bounded(p, "releases/v1", true), PIPIT_EPERM, "a link with ../ out is refused");
    ok(at_logged("msg=\"link \\\"") &&
       at_logged("outside/current, which is outside allowed_dirs"),
       "naming the key and where it leads");
    is_int(at_entries(out), 0, "nothing is made outside");

    snprintf(p, sizeof p, "%s/current", esc);
    is_int(bounded(p, "releases/v1", true), PIPIT_EPERM, "a link under a symlinked "
           "directory that leads out is refused");
    is_int(at_entries(out), 0, "nothing is made outside");

    snprintf(p, sizeof p, "%s/current", out);
    is_int(bounded(p, apps, false), PIPIT_EPERM, "an absolute link outside is refused");
    is_int(at_entries(out), 0, "nothing is made outside");

    is_int(bounded(link, "../outside", false), PIPIT_EPERM, "a target with ../ out is "
           "refused");
    ok(at_logged("msg=\"target \\\"../outside\\\" leads to"), "naming the key and the target");
    is_int(bounded(link, "escape", false), PIPIT_EPERM, "a target that is a symlink "
           "leading out is refused");
    is_int(bounded(link, "/etc", false), PIPIT_EPERM, "an absolute target outside is "
           "refused");
    is_int(bounded(link, "nothing/../../outside", true), PIPIT_EINVAL, "a .. after a part "
           "that does not exist is refused");
    ok(at_logged("after a part that does not exist"), "saying why");
    is_int(bounded(link, "releases/v2", true), PIPIT_OK, "a missing target inside may be "
           "pointed at (allow_missing)");
    is_str(points_to(link), "releases/v2", "and is");
    is_int(bounded(link, "releases/v1", false), PIPIT_OK, "switching back inside");
    is_str(points_to(link), "releases/v1", "every refusal left the link as it was");

    is_int(at_step(&t, "switch", (const char *[]){ kv("link", link), "target=releases/v1",
                                                   "allowed_dirs=[apps]", NULL }, 5000),
           PIPIT_ECONFIG, "a relative allowed_dirs item is refused");
    ok(at_logged("allowed_dirs: item 1: expected an absolute path"), "naming the key");
    tp_close(&t);
}

/*
 * Shell metacharacters in link and target are bytes of the names, never
 * run; a megabyte-long link or target is refused with its length, not
 * echoed. Passes when the link with the odd name points at the odd target,
 * no file the metacharacters would make exists, and both 1 MiB values give
 * PIPIT_ECONFIG with a short log line.
 */
static void test_odd_values(void)
{
    static const char odd[] = "x $(touch pwned1); `touch pwned2` | &;<>*?'\" ~ {a,b}";
    char link[4400], target[4400];
    struct tp t;

    snprintf(link, sizeof link, "%s/apps/%s", tmp, odd);
    snprintf(target, sizeof target, "releases/%s", odd);
    is_int(bounded(link, target, true), PIPIT_OK, "metacharacters in link and target");
    is_str(points_to(link), target, "are written as they are");
    ok(!at_exists("pwned1") && !at_exists("pwned2"), "and never run");

    char *huge = at_huge("link", 1u << 20);
    at_log_clear();
    is_int(at_step(&t, "switch", (const char *[]){ huge, "target=/tmp", NULL }, 5000),
           PIPIT_ECONFIG, "a 1 MiB link is refused");
    ok(at_logged("link: 1048576 bytes, longer than a path may be"), "with its length");
    ok(strlen(at_log()) < 4096, "in a short log line");
    tp_close(&t);
    free(huge);
    huge = at_huge("target", 1u << 20);
    at_log_clear();
    is_int(at_step(&t, "switch", (const char *[]){ kv("link", link), huge, NULL }, 5000),
           PIPIT_ECONFIG, "a 1 MiB target is refused");
    ok(at_logged("target: 1048576 bytes, longer than a path may be"), "with its length");
    tp_close(&t);
    free(huge);
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
    test_allowed_dirs();
    test_odd_values();
    at_log_end();
    tp_rmtree(tmp);
    return done_testing();
}
