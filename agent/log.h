/* log.h: the daemon's structured log (logfmt or JSON lines) with levels. */
#ifndef PIPIT_LOG_H
#define PIPIT_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <pipit/plugin.h>

enum log_format { LOG_FMT_LOGFMT = 0, LOG_FMT_JSON = 1 };

/* Set where and how lines are written (default: stderr, logfmt, info). */
void log_setup(FILE *out, enum log_format fmt, int level);
void log_set_level(int level);
/* Hand every message enabled by the level to sink instead of writing a line
 * (a plugin host process forwards them to pipitd); NULL: write lines. Set it
 * before any other thread logs. */
typedef void (*log_sink_cb)(int level, const char *msg, size_t len);
void log_set_sink(log_sink_cb sink);
bool log_enabled(int level);
/* Parse "error", "warn", "info", "debug", "trace"; -1 if unknown. */
int log_level_parse(const char *s);
const char *log_level_name(int level);
/* Parse "logfmt" or "json"; -1 if unknown. */
int log_format_parse(const char *s);

/*
 * Write one line: ts, level, instance, plugin (omitted when NULL), module
 * (omitted when NULL) and msg. Core code passes instance "pipitd" and its
 * module name; plugin lines pass the instance and plugin names. Thread-safe;
 * each line is written with a single write().
 */
void log_line(int level, const char *instance, const char *plugin,
              const char *module, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void log_vline(int level, const char *instance, const char *plugin,
               const char *module, const char *fmt, va_list ap);

/* Core shorthands: log_error("loader", "…"). */
#define log_error(mod, ...) log_line(PIPIT_LOG_ERROR, "pipitd", NULL, mod, __VA_ARGS__)
#define log_warn(mod, ...)  log_line(PIPIT_LOG_WARN,  "pipitd", NULL, mod, __VA_ARGS__)
#define log_info(mod, ...)  log_line(PIPIT_LOG_INFO,  "pipitd", NULL, mod, __VA_ARGS__)
#define log_debug(mod, ...) log_line(PIPIT_LOG_DEBUG, "pipitd", NULL, mod, __VA_ARGS__)

#endif
