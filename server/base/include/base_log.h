/*
 * base_log.h - the process log: one line per message on stderr,
 *
 *     2025-01-31T08:15:02.417Z warn  store: dropping inspection 1a2b...: disk full
 *
 * an RFC 3339 UTC timestamp with milliseconds, the level, the module tag
 * ("main", "api", "store", "jobs", "core" for the engine, ...), the message.
 *
 *     log_set_level(cfg.log_level);           once, from --log-level
 *     cfa_log_set(log_engine_sink, NULL);     engine messages go through it too
 *     log_warn("store", "dropping inspection %s: %s", id, why);
 *
 * One level governs every message of the process. The macros test it before
 * their arguments are evaluated and log_write before it formats, so a
 * disabled debug line costs one atomic load. A message never spans lines:
 * CR and LF inside it become spaces (a collector or a grep sees whole
 * entries, and a client-supplied string cannot forge one); longer than
 * LOG_LINE_MAX it is cut and ends in "...".
 *
 * With --log-format json (log_set_json(1)) every line is one JSON object
 * instead: {"time", "level", "module", "request_id" (when the thread serves
 * a request), "msg", and the caller's fields (log_fields)}; the access log
 * (api/http.c) is one such line per request.
 *
 * Thread-safety: every function may be called from any thread. Lines are
 * handed to the sink one at a time, under a mutex: the stderr sink makes one
 * write(2) per line, so lines of different threads never interleave.
 */
#ifndef CFA_BASE_LOG_H
#define CFA_BASE_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* The numbers are the engine's (cfa.h) and --log-level's. */
enum { LL_DEBUG = 0, LL_INFO = 1, LL_WARN = 2, LL_ERROR = 3 };

#define LOG_LINE_MAX 4096 /* bytes, newline included */

#define LOG_AT(level, module, ...)                                                           \
    do {                                                                                     \
        if (log_enabled(level))                                                              \
            log_write((level), (module), __VA_ARGS__);                                       \
    } while (0)
#define log_debug(module, ...) LOG_AT(LL_DEBUG, module, __VA_ARGS__)
#define log_info(module, ...) LOG_AT(LL_INFO, module, __VA_ARGS__)
#define log_warn(module, ...) LOG_AT(LL_WARN, module, __VA_ARGS__)
#define log_error(module, ...) LOG_AT(LL_ERROR, module, __VA_ARGS__)

/* Messages below level are dropped (default LL_INFO; clamped to the range). */
void log_set_level(int level);
int log_get_level(void);
/* 1 when a message at level would be written. */
int log_enabled(int level);

/* "debug", "info", "warn" or "error" (out-of-range levels are clamped). */
const char *log_level_name(int level);
/* A level from its name ("warning" too) or its number "0".."3"; -1 if neither. */
int log_level_parse(const char *s);

/* Writes one line if level is enabled. module NULL reads "-". */
void log_write(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_writev(int level, const char *module, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* 0 for "text", 1 for "json", -1 for anything else (--log-format). */
int log_format_parse(const char *s);
/* Lines as JSON objects (1) or text (0, the default). */
void log_set_json(int on);
int log_get_json(void);

/* The id of the request the calling thread serves from now on ("" or NULL:
 * none); every line the thread writes carries it (text: " [id]" at the end,
 * JSON: "request_id"). At most LOG_REQUEST_ID_MAX bytes are kept. */
#define LOG_REQUEST_ID_MAX 64
void log_set_request_id(const char *id);

/* log_write with structured fields: fields is the inside of a JSON object
 * ("\"status\":200,\"ms\":4.1", valid JSON, NULL for none) added to the line
 * in the JSON format; the text format shows only the message. */
void log_fields(int level, const char *module, const char *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void log_fieldsv(int level, const char *module, const char *fields, const char *fmt,
                 va_list ap) __attribute__((format(printf, 4, 0)));

/* A cfa_log_fn (cfa.h): the engine's messages, tagged "core". */
void log_engine_sink(int level, const char *msg, void *user);

/* Where lines go: fn(line, len, user) with line NUL-terminated and ending in
 * '\n', len counting the newline. Calls are serialized; fn must not log.
 * NULL restores stderr. For tests (capture) and for hosts that ship logs. */
typedef void (*log_sink_fn)(const char *line, size_t len, void *user);
void log_set_sink(log_sink_fn fn, void *user);

#endif
