/* log.c: the daemon's structured log lines, logfmt or JSON, written atomically. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "buf.h"
#include "log.h"

static FILE *log_out;
static enum log_format log_fmt = LOG_FMT_LOGFMT;
static atomic_int log_level = PIPIT_LOG_INFO;
static log_sink_cb log_sink;

static const char *const level_names[] = {
    [PIPIT_LOG_ERROR] = "error", [PIPIT_LOG_WARN] = "warn",
    [PIPIT_LOG_INFO] = "info",   [PIPIT_LOG_DEBUG] = "debug",
    [PIPIT_LOG_TRACE] = "trace",
};

void log_setup(FILE *out, enum log_format fmt, int level)
{
    log_out = out;
    log_fmt = fmt;
    log_set_level(level);
}

void log_set_sink(log_sink_cb sink)
{
    log_sink = sink;
}

void log_set_level(int level)
{
    if (level >= PIPIT_LOG_ERROR && level <= PIPIT_LOG_TRACE)
        atomic_store(&log_level, level);
}

bool log_enabled(int level)
{
    return level <= atomic_load(&log_level);
}

int log_level_parse(const char *s)
{
    for (int i = PIPIT_LOG_ERROR; i <= PIPIT_LOG_TRACE; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return PIPIT_LOG_WARN;
    return -1;
}

const char *log_level_name(int level)
{
    if (level < PIPIT_LOG_ERROR || level > PIPIT_LOG_TRACE)
        return "info";
    return level_names[level];
}

int log_format_parse(const char *s)
{
    if (strcmp(s, "logfmt") == 0)
        return LOG_FMT_LOGFMT;
    if (strcmp(s, "json") == 0)
        return LOG_FMT_JSON;
    return -1;
}

/* A logfmt value: bare when it has no space, quote, '=' or control bytes. */
static void logfmt_value(struct buf *b, const char *s, size_t n)
{
    bool bare = n > 0;
    for (size_t i = 0; i < n && bare; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
            bare = false;
    }
    if (bare)
        buf_append(b, s, n);
    else
        buf_json_str(b, s, n);          /* JSON escaping is valid logfmt quoting */
}

static void field(struct buf *b, const char *key, const char *val)
{
    if (log_fmt == LOG_FMT_JSON) {
        buf_printf(b, ",\"%s\":", key);
        buf_json_str(b, val, strlen(val));
    } else {
        buf_printf(b, " %s=", key);
        logfmt_value(b, val, strlen(val));
    }
}

/*
 * Format one line into a local buffer and write it with a single write(),
 * so lines from several threads never interleave. A message is cut at
 * 16 KiB to keep one runaway line from flooding the log.
 */
void log_vline(int level, const char *instance, const char *plugin,
               const char *module, const char *fmt, va_list ap)
{
    struct buf msg = BUF_INIT, line = BUF_INIT;
    struct timespec ts;
    struct tm tm;
    char tsbuf[96];

    if (!log_enabled(level))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(tsbuf, sizeof tsbuf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000000) % 1000);
    buf_vprintf(&msg, fmt, ap);
    if (msg.len > 16384)
        msg.len = 16384;
    if (log_sink) {
        log_sink(level, msg.data ? msg.data : "", msg.len);
        buf_free(&msg);
        return;
    }

    if (log_fmt == LOG_FMT_JSON) {
        buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\"", tsbuf,
                   log_level_name(level));
    } else {
        buf_printf(&line, "ts=%s level=%s", tsbuf, log_level_name(level));
    }
    field(&line, "instance", instance ? instance : "pipitd");
    if (plugin)
        field(&line, "plugin", plugin);
    if (module)
        field(&line, "module", module);
    if (log_fmt == LOG_FMT_JSON) {
        buf_puts(&line, ",\"msg\":");
        buf_json_str(&line, msg.data ? msg.data : "", msg.len);
        buf_puts(&line, "}\n");
    } else {
        buf_puts(&line, " msg=");
        buf_json_str(&line, msg.data ? msg.data : "", msg.len);
        buf_putc(&line, '\n');
    }
    if (line.data) {
        int fd = fileno(log_out ? log_out : stderr);
        size_t off = 0;
        while (off < line.len) {
            ssize_t w = write(fd, line.data + off, line.len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    buf_free(&line);
    buf_free(&msg);
}

void log_line(int level, const char *instance, const char *plugin,
              const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vline(level, instance, plugin, module, fmt, ap);
    va_end(ap);
}
