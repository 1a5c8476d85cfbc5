/* log.c - the process log (base_log.h). */
#include "base_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base_clock.h"

static const char *const LEVEL_NAMES[] = {"debug", "info", "warn", "error"};

/* Read on every log call from every thread, written once at start-up (and by
 * tests): an atomic instead of the mutex keeps disabled lines cheap. */
static atomic_int g_level = LL_INFO;

/* Guards the sink and serializes the lines handed to it. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static log_sink_fn g_sink; /* NULL: stderr */
static void *g_sink_user;

/* Written once at start-up (--log-format), read by every line. */
static atomic_int g_json;
/* The request the calling thread serves (log_set_request_id): a connection
 * thread serves one request at a time, so its lines carry that request's id
 * without every call site passing it. */
static __thread char tl_request_id[LOG_REQUEST_ID_MAX + 1];

static int clamp_level(int level)
{
    return level < LL_DEBUG ? LL_DEBUG : level > LL_ERROR ? LL_ERROR : level;
}

void log_set_level(int level)
{
    atomic_store_explicit(&g_level, clamp_level(level), memory_order_relaxed);
}

int log_get_level(void) { return atomic_load_explicit(&g_level, memory_order_relaxed); }

int log_enabled(int level) { return level >= log_get_level(); }

const char *log_level_name(int level) { return LEVEL_NAMES[clamp_level(level)]; }

int log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = LL_DEBUG; i <= LL_ERROR; i++)
        if (strcasecmp(s, LEVEL_NAMES[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return LL_WARN;
    if (s[0] >= '0' && s[0] <= '3' && s[1] == '\0')
        return s[0] - '0';
    return -1;
}

int log_format_parse(const char *s)
{
    if (s != NULL && strcasecmp(s, "text") == 0)
        return 0;
    if (s != NULL && strcasecmp(s, "json") == 0)
        return 1;
    return -1;
}

void log_set_json(int on) { atomic_store_explicit(&g_json, on != 0, memory_order_relaxed); }

int log_get_json(void) { return atomic_load_explicit(&g_json, memory_order_relaxed); }

void log_set_request_id(const char *id)
{
    snprintf(tl_request_id, sizeof tl_request_id, "%s", id != NULL ? id : "");
}

void log_set_sink(log_sink_fn fn, void *user)
{
    pthread_mutex_lock(&g_mu);
    g_sink = fn;
    g_sink_user = user;
    pthread_mutex_unlock(&g_mu);
}

/* One write(2) in practice; the loop only finishes a write that a signal or
 * a full pipe cut short. Errors are dropped: there is nowhere to report them. */
static void write_stderr(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(STDERR_FILENO, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

/* "2025-01-31T08:15:02.417Z" into buf (cap >= 25); returns its length. */
static size_t format_time(char *buf, size_t cap)
{
    int64_t ms = wall_ms();
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(ms % 1000));
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* "2025-01-31T08:15:02.417Z warn  store: " into buf; returns its length. */
static size_t format_head(char *buf, size_t cap, int level, const char *module)
{
    char t[64];
    format_time(t, sizeof t);
    int n = snprintf(buf, cap, "%s %-5s %s: ", t, log_level_name(level),
                     module != NULL ? module : "-");
    /* a module tag is a short word; a runaway one still leaves room */
    return n < 0 ? 0 : (size_t)n < cap / 2 ? (size_t)n : cap / 2;
}

/* s[0..n) as the inside of a JSON string into out (cap > 6); returns the
 * bytes written. Stops before a character that would not fit. Bytes >= 0x80
 * pass as they are: the messages are UTF-8 (the API cleans what it quotes). */
static size_t json_escape(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

/* Appends s (a C string) to line at *o, JSON-escaped, without its quotes. */
static void append_escaped(char *line, size_t cap, size_t *o, const char *s)
{
    *o += json_escape(line + *o, cap - *o, s, strlen(s));
}

/* The line as one JSON object: time, level, module, request_id (when the
 * thread serves a request), msg, then the caller's fields ("k":v,...). */
static size_t format_json(char *line, size_t cap, int level, const char *module,
                          const char *msg, const char *fields)
{
    size_t o = 0;
    char t[64];
    format_time(t, sizeof t);
    o += (size_t)snprintf(line, cap, "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"", t,
                          log_level_name(level));
    append_escaped(line, cap - 4, &o, module != NULL ? module : "-");
    if (tl_request_id[0] != '\0' && o + 40 < cap) {
        o += (size_t)snprintf(line + o, cap - o, "\",\"request_id\":\"");
        append_escaped(line, cap - 4, &o, tl_request_id);
    }
    o += (size_t)snprintf(line + o, cap - o, "\",\"msg\":\"");
    /* the fields are kept whole: room for them comes off the message */
    size_t flen = fields != NULL ? strlen(fields) : 0;
    if (flen + o + 8 >= cap)
        flen = 0;
    append_escaped(line, cap - flen - 8, &o, msg);
    line[o++] = '"';
    if (flen > 0) {
        line[o++] = ',';
        memcpy(line + o, fields, flen);
        o += flen;
    }
    line[o++] = '}';
    return o;
}

/* The message formatted, one line: CR and LF become spaces, a message too
 * long for buf is cut and ends in "...". Returns its length. */
static size_t format_msg(char *buf, size_t cap, const char *fmt, va_list ap)
{
    int k = vsnprintf(buf, cap, fmt, ap);
    size_t n = k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap - 1;
    if (k > 0 && (size_t)k >= cap && n >= 3)
        memcpy(buf + n - 3, "...", 3);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--; /* callers (MHD) end their messages in a newline */
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = ' ';
    buf[n] = '\0';
    return n;
}

static void emit(const char *line, size_t n)
{
    pthread_mutex_lock(&g_mu);
    if (g_sink != NULL)
        g_sink(line, n, g_sink_user);
    else
        write_stderr(line, n);
    pthread_mutex_unlock(&g_mu);
}

void log_fieldsv(int level, const char *module, const char *fields, const char *fmt, va_list ap)
{
    if (!log_enabled(level))
        return;
    char line[LOG_LINE_MAX], msg[LOG_LINE_MAX];
    size_t n;
    if (log_get_json()) {
        format_msg(msg, sizeof msg / 2, fmt, ap);
        n = format_json(line, sizeof line - 1, level, module, msg, fields);
    } else {
        n = format_head(line, sizeof line, level, module);
        /* the message and its NUL; room kept for the request id and '\n' */
        size_t rid = tl_request_id[0] != '\0' ? strlen(tl_request_id) + 3 : 0;
        size_t room = sizeof line - n - rid - 1;
        n += format_msg(line + n, room, fmt, ap);
        if (tl_request_id[0] != '\0')
            n += (size_t)snprintf(line + n, sizeof line - n, " [%s]", tl_request_id);
    }
    line[n++] = '\n';
    line[n] = '\0';
    emit(line, n);
}

void log_writev(int level, const char *module, const char *fmt, va_list ap)
{
    log_fieldsv(level, module, NULL, fmt, ap);
}

void log_fields(int level, const char *module, const char *fields, const char *fmt, ...)
{
    va_list ap;
    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    log_fieldsv(level, module, fields, fmt, ap);
    va_end(ap);
}

void log_write(int level, const char *module, const char *fmt, ...)
{
    va_list ap;
    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    log_writev(level, module, fmt, ap);
    va_end(ap);
}

void log_engine_sink(int level, const char *msg, void *user)
{
    (void)user;
    log_write(level, "core", "%s", msg);
}
