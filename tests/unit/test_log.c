/* test_log.c: the daemon's log lines in logfmt and JSON, levels, quoting, and whole lines from many threads. */
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "log.h"
#include "../tap.h"

static FILE *out;                       /* where the log goes */
static char text[1 << 20];              /* what was written since the last take() */

/* Read everything written since the last call and empty the file. */
static const char *take(void)
{
    int fd = fileno(out);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);

    text[n > 0 ? n : 0] = '\0';
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        diag("cannot empty the log file");
    return text;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* "2026-01-02T03:04:05.678Z": the timestamp format, 24 characters. */
static bool ts_ok(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (int i = 0; i < 24; i++) {
        if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
            return false;
    }
    return strncmp(s, "2020", 4) >= 0;
}

/*
 * The one line written is "ts=<ts> " followed by want (which ends in '\n');
 * the timestamp is checked for its format.
 */
static void logfmt_is(const char *want, const char *what)
{
    const char *got = take();
    bool good = strncmp(got, "ts=", 3) == 0 && strlen(got) > 28 && ts_ok(got + 3) &&
                got[27] == ' ' && strcmp(got + 28, want) == 0;
    ok(good, "logfmt %s", what);
    if (!good)
        diag("  got  %s  want ts=... %s", got, want);
}

static void test_logfmt(void)
{
    log_setup(out, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);

    log_info("loader", "hello world");
    logfmt_is("level=info instance=pipitd module=loader msg=\"hello world\"\n",
              "core line: level, instance pipitd, module, quoted msg");
    log_line(PIPIT_LOG_WARN, "cpu0", "cpu", NULL, "%d of %s", 3, "4");
    logfmt_is("level=warn instance=cpu0 plugin=cpu msg=\"3 of 4\"\n",
              "plugin line: plugin, no module, printf formatting");
    log_line(PIPIT_LOG_ERROR, NULL, NULL, NULL, "x");
    logfmt_is("level=error instance=pipitd msg=\"x\"\n", "instance NULL is pipitd");

    log_line(PIPIT_LOG_INFO, "my ins", "a\"b", "k=v", "m");
    logfmt_is("level=info instance=\"my ins\" plugin=\"a\\\"b\" module=\"k=v\" msg=\"m\"\n",
              "values with a space, a quote or '=' are quoted");
    log_line(PIPIT_LOG_INFO, "a\nb", "t\tab", "back\\slash", "m");
    logfmt_is("level=info instance=\"a\\nb\" plugin=\"t\\tab\" module=\"back\\\\slash\" msg=\"m\"\n",
              "values with a newline, a tab or a backslash are quoted and escaped");
    log_line(PIPIT_LOG_INFO, "", "caf\xc3\xa9", NULL, "m");
    logfmt_is("level=info instance=\"\" plugin=\"caf\xc3\xa9\" msg=\"m\"\n",
              "an empty value and a non-ASCII value are quoted");

    log_info("m", "line one\nline two \"quoted\"\r\n\x01");
    const char *got = take();
    is_int(count_lines(got), 1, "a message with newlines stays one line");
    ok(strstr(got, " msg=\"line one\\nline two \\\"quoted\\\"\\r\\n\\u0001\"\n") != NULL,
       "message escapes: \\n, \\\", \\r, \\u0001");

    log_info("m", "%s", "");
    logfmt_is("level=info instance=pipitd module=m msg=\"\"\n", "an empty message");

    /* A runaway message is cut at 16 KiB */
    static char big[20001];
    memset(big, 'a', sizeof big - 1);
    log_info("m", "%s", big);
    got = take();
    const char *msg = strstr(got, "msg=\"");
    size_t n = 0;
    if (msg)
        for (msg += 5; msg[n] == 'a'; n++)
            ;
    is_int(n, 16384, "a 20000-byte message is cut to 16384 bytes");
    ok(msg && strcmp(msg + n, "\"\n") == 0, "the cut message still ends the line properly");
    for (size_t len = 16384; len <= 16385; len++) {
        big[len] = '\0';
        log_info("m", "%s", big);
        got = take();
        msg = strstr(got, "msg=\"");
        n = 0;
        if (msg)
            for (msg += 5; msg[n] == 'a'; n++)
                ;
        is_int(n, 16384, "a %zu-byte message is written with 16384 bytes", len);
        big[len] = 'a';
    }
}

static void test_levels(void)
{
    log_setup(out, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
    ok(log_enabled(PIPIT_LOG_ERROR) && log_enabled(PIPIT_LOG_WARN) &&
       log_enabled(PIPIT_LOG_INFO) && !log_enabled(PIPIT_LOG_DEBUG) &&
       !log_enabled(PIPIT_LOG_TRACE), "level info: error, warn, info enabled; debug, trace not");
    log_line(PIPIT_LOG_ERROR, "i", NULL, NULL, "e");
    log_line(PIPIT_LOG_WARN, "i", NULL, NULL, "w");
    log_line(PIPIT_LOG_INFO, "i", NULL, NULL, "n");
    log_line(PIPIT_LOG_DEBUG, "i", NULL, NULL, "d");
    log_line(PIPIT_LOG_TRACE, "i", NULL, NULL, "t");
    const char *got = take();
    is_int(count_lines(got), 3, "level info: three of five lines written");
    is_int(count_of(got, " instance=i "), 3, "level info: every line names its instance");
    ok(strstr(got, "level=error") && strstr(got, "level=warn") && strstr(got, "level=info") &&
       !strstr(got, "level=debug") && !strstr(got, "level=trace"),
       "level info: the right three");

    log_set_level(PIPIT_LOG_ERROR);
    log_line(PIPIT_LOG_WARN, "i", NULL, NULL, "w");
    log_line(PIPIT_LOG_ERROR, "i", NULL, NULL, "e");
    got = take();
    ok(count_lines(got) == 1 && strstr(got, "level=error"), "level error: only errors");

    log_set_level(PIPIT_LOG_TRACE);
    log_line(PIPIT_LOG_TRACE, "i", NULL, NULL, "t");
    got = take();
    ok(count_lines(got) == 1 && strstr(got, "level=trace"), "level trace: trace lines written");

    log_set_level(0);
    ok(log_enabled(PIPIT_LOG_TRACE), "log_set_level(0) is ignored");
    log_set_level(6);
    ok(log_enabled(PIPIT_LOG_TRACE), "log_set_level(6) is ignored");
    log_setup(out, LOG_FMT_LOGFMT, -1);
    ok(log_enabled(PIPIT_LOG_TRACE), "log_setup with level -1 keeps the level");

    is_int(log_level_parse("error"), PIPIT_LOG_ERROR, "parse error");
    is_int(log_level_parse("WARN"), PIPIT_LOG_WARN, "parse WARN (any case)");
    is_int(log_level_parse("warning"), PIPIT_LOG_WARN, "parse warning");
    is_int(log_level_parse("Info"), PIPIT_LOG_INFO, "parse Info");
    is_int(log_level_parse("debug"), PIPIT_LOG_DEBUG, "parse debug");
    is_int(log_level_parse("trace"), PIPIT_LOG_TRACE, "parse trace");
    is_int(log_level_parse("fatal"), -1, "parse of an unknown level is -1");
    is_int(log_level_parse(""), -1, "parse of \"\" is -1");
    is_str(log_level_name(PIPIT_LOG_DEBUG), "debug", "name of debug");
    is_str(log_level_name(0), "info", "name of an unknown level is info");
    is_str(log_level_name(9), "info", "name of level 9 is info");
    is_int(log_format_parse("logfmt"), LOG_FMT_LOGFMT, "format logfmt");
    is_int(log_format_parse("json"), LOG_FMT_JSON, "format json");
    is_int(log_format_parse("yaml"), -1, "an unknown format is -1");
}

/* Parse the single JSON line in s; NULL if it is not one object on one line. */
static json_t *one_json(const char *s)
{
    if (count_lines(s) != 1)
        return NULL;
    json_t *j = json_loads(s, 0, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static bool has(json_t *j, const char *key, const char *want)
{
    json_t *v = json_object_get(j, key);
    return v && json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

static void test_json(void)
{
    log_setup(out, LOG_FMT_JSON, PIPIT_LOG_INFO);

    log_info("loader", "hello %s", "world");
    const char *got = take();
    json_t *j = one_json(got);
    ok(j && has(j, "level", "info") && has(j, "instance", "pipitd") &&
       has(j, "module", "loader") && has(j, "msg", "hello world") &&
       !json_object_get(j, "plugin"), "json core line: level, instance, module, msg; no plugin");
    json_t *ts = json_object_get(j, "ts");
    ok(ts && json_is_string(ts) && strlen(json_string_value(ts)) == 24 &&
       ts_ok(json_string_value(ts)), "json line: ts in the timestamp format");
    ok(strncmp(got, "{\"ts\":\"", 7) == 0 && strlen(got) > 32 && got[31] == '"' &&
       strcmp(got + 32, ",\"level\":\"info\",\"instance\":\"pipitd\",\"module\":\"loader\","
              "\"msg\":\"hello world\"}\n") == 0,
       "json core line: exact keys and order");
    json_decref(j);

    log_line(PIPIT_LOG_WARN, "in \"x\"", "cpu", NULL, "two\nlines\t\x02 caf\xc3\xa9 \xff");
    got = take();
    j = one_json(got);
    ok(j && has(j, "level", "warn") && has(j, "instance", "in \"x\"") && has(j, "plugin", "cpu") &&
       !json_object_get(j, "module") &&
       has(j, "msg", "two\nlines\t\x02 caf\xc3\xa9 \xef\xbf\xbd"),
       "json plugin line: escapes, no module, invalid UTF-8 replaced, one line");
    json_decref(j);

    log_line(PIPIT_LOG_DEBUG, "i", NULL, NULL, "d");
    is_str(take(), "", "json: level filtering applies");
    log_setup(out, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
}

#define THREADS 4
#define PER_THREAD 250

static void *writer(void *arg)
{
    int t = (int)(long)arg;
    for (int i = 0; i < PER_THREAD; i++)
        log_line(PIPIT_LOG_INFO, "w", NULL, NULL, "thread %d line %d %s", t, i,
                 "padding padding padding padding padding padding padding padding");
    return NULL;
}

/* Lines from several threads never interleave: every line parses. */
static void test_threads(void)
{
    pthread_t th[THREADS];
    static bool seen[THREADS][PER_THREAD];

    log_setup(out, LOG_FMT_JSON, PIPIT_LOG_INFO);
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, writer, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    const char *got = take();
    is_int(count_lines(got), THREADS * PER_THREAD, "threads: every line written");
    int bad = 0, found = 0;
    for (const char *p = got; *p;) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        json_t *j = json_loadb(p, (size_t)(nl - p), 0, NULL);
        int t, i;
        const char *m = j ? json_string_value(json_object_get(j, "msg")) : NULL;
        if (m && sscanf(m, "thread %d line %d", &t, &i) == 2 && t >= 0 && t < THREADS &&
            i >= 0 && i < PER_THREAD && !seen[t][i]) {
            seen[t][i] = true;
            found++;
        } else {
            bad++;
        }
        json_decref(j);
        p = nl + 1;
    }
    is_int(bad, 0, "threads: no line is mixed with another");
    is_int(found, THREADS * PER_THREAD, "threads: each line once");
    log_setup(out, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
}

int main(void)
{
    out = tmpfile();
    if (!out)
        plan_skip_all("cannot make a temporary file");
    test_logfmt();
    test_levels();
    test_json();
    test_threads();
    log_setup(NULL, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
    fclose(out);
    return done_testing();
}
