/* log.h -- one line per event on stderr, level-filtered.
 *
 * Lines look like `2026-11-23T01:02:03.456Z INFO  http: req=ab12 POST /execute 200 12ms`.
 * Callers key lines by request or session id and never log bodies, cookies or tokens.
 *
 * Thread safety: log_init() once at start-up before threads exist; log_msg() from any thread
 * (each line is written with a single write(2), so lines never interleave).
 */
#ifndef SBX_LOG_H
#define SBX_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Set the threshold; lines above it are dropped. */
void log_init(enum log_level level);

/* Parse "error", "warn", "info", "debug"; returns -1 when unknown. */
int log_level_parse(const char *s);

/* 1 when a line at `level` would be written (to skip building expensive messages). */
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *area, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_E(area, ...) log_msg(LOG_ERROR, area, __VA_ARGS__)
#define LOG_W(area, ...) log_msg(LOG_WARN, area, __VA_ARGS__)
#define LOG_I(area, ...) log_msg(LOG_INFO, area, __VA_ARGS__)
#define LOG_D(area, ...) log_msg(LOG_DEBUG, area, __VA_ARGS__)

#endif
