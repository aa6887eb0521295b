/* test_tail.c: the tail input on real files in a temporary folder: globs, rotation, multiline, parsing, bad input. */
#include "plugtest.h"

static char dir[4096];

/* Log records of the last pump, in order, as "msg|msg|..." (static). */
static const char *msgs(struct tp *t)
{
    static char out[1 << 16];
    size_t i, n = 0;
    json_t *r;

    out[0] = '\0';
    json_array_foreach(t->recs, i, r) {
        const char *m = json_string_value(json_object_get(r, "message"));
        const char *k = json_string_value(json_object_get(r, "kind"));

        if (!m || !k || strcmp(k, "log"))
            continue;
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", n ? "|" : "", m);
        if (n >= sizeof out)
            break;
    }
    return out;
}

static json_t *log_at(struct tp *t, size_t want)
{
    size_t i, n = 0;
    json_t *r;

    json_array_foreach(t->recs, i, r)
        if (!strcmp(json_string_value(json_object_get(r, "kind")), "log") && n++ == want)
            return r;
    return NULL;
}

static void append(const char *rel, const char *text)
{
    char path[8192];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, rel);
    f = fopen(path, "a");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        exit(1);
}

static int open_tail(struct tp *t, const char *watcher, const char *e1, const char *e2)
{
    char path[4200], w[64];
    const char *kv[] = { path, w, "read_from=beginning", "poll_interval=20ms",
                         "scan_interval=50ms", "rotate_wait=0s", e1, e2, NULL };

    snprintf(path, sizeof path, "path=%s/*.log", dir);
    snprintf(w, sizeof w, "watcher=%s", watcher);
    return tp_open(t, "tail", kv);
}

static void test_glob(const char *watcher)
{
    struct tp t;
    json_t *r;

    tp_write(dir, "a.log", "one\ntwo\r\npart");
    ok(open_tail(&t, watcher, NULL, NULL) == PIPIT_OK, "%s: opens", watcher);
    tp_pump(&t, 200, NULL);
    is_str(msgs(&t), "one|two", "%s: lines of a file found at start; the partial line waits", watcher);
    r = log_at(&t, 1);
    ok(r && json_integer_value(json_object_get(r, "offset")) == 4 &&
       strstr(json_string_value(json_object_get(r, "source")), "/a.log") &&
       !strcmp(json_string_value(json_object_get(r, "level")), "info"),
       "%s: source, offset and level of a record", watcher);
    append("a.log", "ial\n");
    tp_write(dir, "b.log", "new file\n");
    tp_write(dir, "c.txt", "not matched\n");
    tp_pump(&t, 300, NULL);
    ok(strstr(msgs(&t), "partial") && strstr(msgs(&t), "new file") &&
       !strstr(msgs(&t), "not matched"), "%s: appended line and a new file picked up (%s)",
       watcher, msgs(&t));
    is_int(t.bad, 0, "%s: records well-formed", watcher);
    tp_close(&t);
    unlink(strcat(strcpy((char[4200]){0}, dir), "/a.log"));
    unlink(strcat(strcpy((char[4200]){0}, dir), "/b.log"));
}

static void test_rotation(void)
{
    struct tp t;
    char a[4200], b[4200];

    snprintf(a, sizeof a, "%s/r.log", dir);
    snprintf(b, sizeof b, "%s/r.log.1", dir);
    tp_write(dir, "r.log", "r1\nr2\n");
    ok(open_tail(&t, "inotify", NULL, NULL) == PIPIT_OK, "rotation: opens");
    tp_pump(&t, 150, NULL);
    is_str(msgs(&t), "r1|r2", "rotation: first lines");
    append("r.log", "r3\n");
    rename(a, b);
    append("r.log.1", "r4\n");
    tp_write(dir, "r.log", "r5\n");
    tp_pump(&t, 400, NULL);
    is_str(msgs(&t), "r3|r4|r5", "rename and create: nothing lost or repeated");
    /* copytruncate: lines written after the last read are read from the copy */
    tp_pump(&t, 100, NULL);
    append("r.log", "r6\nr7\n");
    {
        const char *txt = tp_slurp(a);
        char copy[64];

        snprintf(copy, sizeof copy, "%s", txt);
        unlink(b);
        tp_write(dir, "r.log.1", copy);
        truncate(a, 0);
    }
    append("r.log", "r8\n");
    tp_pump(&t, 400, NULL);
    is_str(msgs(&t), "r6|r7|r8", "copytruncate: the unread lines come from the copy, once");
    tp_close(&t);
    unlink(a);
    unlink(b);
}

static void test_split_multiline(void)
{
    struct tp t;
    char line[300];

    memset(line, 'x', 250);
    line[250] = '\n';
    line[251] = '\0';
    tp_write(dir, "m.log", "");
    ok(open_tail(&t, "poll", "max_line_size=100", "multiline_start=^\\S") == PIPIT_OK,
       "multiline: opens");
    append("m.log", "Exception: boom\n\tat a\n\tat b\nnext\n");
    tp_pump(&t, 150, NULL);
    is_str(msgs(&t), "Exception: boom\n\tat a\n\tat b", "a stack trace is one record");
    tp_pump(&t, 1300, NULL);
    is_str(msgs(&t), "next", "the last record is emitted after multiline_flush");
    tp_close(&t);
    unlink(strcat(strcpy((char[4200]){0}, dir), "/m.log"));

    tp_write(dir, "s.log", "");
    ok(open_tail(&t, "poll", "max_line_size=100", NULL) == PIPIT_OK, "split: opens");
    append("s.log", line);
    tp_pump(&t, 200, NULL);
    is_int(json_array_size(t.recs), 3, "a 250-byte line gives 3 pieces of at most 100");
    ok(log_at(&t, 0) && !strcmp(json_string_value(json_object_get(json_object_get(
           log_at(&t, 0), "labels"), "split")), "true"), "pieces are flagged split=true");
    tp_close(&t);
    unlink(strcat(strcpy((char[4200]){0}, dir), "/s.log"));
}

static void test_parse(void)
{
    struct tp t;
    json_t *r, *l;

    tp_write(dir, "j.log", "");
    ok(open_tail(&t, "poll", "format=json", NULL) == PIPIT_OK, "json: opens");
    append("j.log", "{\"msg\":\"hello\",\"level\":\"warn\",\"user\":\"ann\",\"n\":3}\nnot json\n");
    tp_pump(&t, 200, NULL);
    r = log_at(&t, 0);
    l = json_object_get(r, "labels");
    ok(r && !strcmp(json_string_value(json_object_get(r, "message")), "hello") &&
       !strcmp(json_string_value(json_object_get(r, "level")), "warn") &&
       !strcmp(json_string_value(json_object_get(l, "user")), "ann") &&
       !strcmp(json_string_value(json_object_get(l, "n")), "3"),
       "json: message, level and labels");
    is_str(json_string_value(json_object_get(log_at(&t, 1), "message")), "not json",
           "json: a line that is not JSON is kept as it is");
    tp_close(&t);
    unlink(strcat(strcpy((char[4200]){0}, dir), "/j.log"));

    tp_write(dir, "x.log", "");
    ok(open_tail(&t, "poll", "format=regex",
                 "regex=^(?<who>\\w+) (?<level>\\w+) (?<message>.*)$") == PIPIT_OK,
       "regex: opens");
    append("x.log", "db error disk full\n");
    {
        FILE *f = fopen(strcat(strcpy((char[4200]){0}, dir), "/x.log"), "a");

        fwrite("bad\xff\x00line\n", 1, 10, f);
        fclose(f);
    }
    tp_pump(&t, 200, NULL);
    r = log_at(&t, 0);
    ok(r && !strcmp(json_string_value(json_object_get(r, "message")), "disk full") &&
       !strcmp(json_string_value(json_object_get(r, "level")), "error") &&
       !strcmp(json_string_value(json_object_get(json_object_get(r, "labels"), "who")), "db"),
       "regex: named groups as message, level, labels");
    is_str(json_string_value(json_object_get(log_at(&t, 1), "message")),
           "bad\xef\xbf\xbd\xef\xbf\xbdline", "invalid UTF-8 and NUL become U+FFFD");
    tp_close(&t);
    unlink(strcat(strcpy((char[4200]){0}, dir), "/x.log"));
}

/*
 * Lines of 1 to 40 bytes with one NUL, invalid byte or UTF-8 sequence at
 * every position, so that it falls in each eight-byte word the cleaner
 * copies at once and in the tail after the last: every message must be the
 * line with exactly that byte replaced by U+FFFD (or kept when valid).
 */
static struct {
    char want[4000][256];
    size_t n;
} clean;

static bool all_clean(struct tp *t)
{
    return json_array_size(t->recs) >= clean.n;
}

static void test_clean_words(void)
{
    static const struct { const char *in; size_t len; const char *out; } specials[] = {
        { "\0", 1, "\xef\xbf\xbd" }, { "\xff", 1, "\xef\xbf\xbd" },
        { "\x80", 1, "\xef\xbf\xbd" }, { "\xc3\xa9", 2, "\xc3\xa9" }, { "\x7f", 1, "\x7f" },
    };
    char path[4200];
    struct tp t;
    FILE *f;

    snprintf(path, sizeof path, "%s/w.log", dir);
    f = fopen(path, "w");
    clean.n = 0;
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
        for (size_t len = 1; len <= 40; len += (len < 20 ? 1 : 3)) {
            for (size_t at = 0; at < len && clean.n < 4000; at++) {
                char *w = clean.want[clean.n++];
                size_t o = 0;

                for (size_t i = 0; i < len; i++) {
                    if (i == at) {
                        fwrite(specials[k].in, 1, specials[k].len, f);
                        o += (size_t)sprintf(w + o, "%s", specials[k].out);
                    } else {
                        fputc('a' + (int)(i % 26), f);
                        w[o++] = (char)('a' + i % 26);
                    }
                }
                w[o] = '\0';
                fputc('\n', f);
            }
        }
    }
    fclose(f);
    ok(open_tail(&t, "poll", NULL, NULL) == PIPIT_OK, "clean: opens");
    tp_pump(&t, 5000, all_clean);
    size_t wrong = 0;
    for (size_t i = 0; i < clean.n; i++) {
        json_t *r = log_at(&t, i);
        const char *m = r ? json_string_value(json_object_get(r, "message")) : NULL;

        if (!m || strcmp(m, clean.want[i])) {
            if (!wrong)
                diag("  line %zu: got %s, want %s", i, m ? m : "(none)", clean.want[i]);
            wrong++;
        }
    }
    ok(wrong == 0, "clean: %zu lines with one special byte at every position come out as "
       "byte-at-a-time cleaning gives (%zu differ)", clean.n, wrong);
    tp_close(&t);
    unlink(path);
}

static void test_options(void)
{
    struct tp t;

    ok(open_tail(&t, "poll", "format=regex", "regex=(") != PIPIT_OK, "a bad regex is refused");
    tp_close(&t);
    ok(open_tail(&t, "sometimes", NULL, NULL) != PIPIT_OK, "an unknown watcher is refused");
    tp_close(&t);
}

int main(void)
{
    plan(30);
    snprintf(dir, sizeof dir, "%s", tp_tmpdir());
    test_glob("poll");
    test_glob("inotify");
    test_rotation();
    test_split_multiline();
    test_parse();
    test_clean_words();
    test_options();
    tp_rmtree(dir);
    return done_testing();
}
