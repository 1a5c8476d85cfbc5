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

/* "2025-01-31T08:15:02.417Z warn  store: " into buf; returns its length. */
static size_t format_head(char *buf, size_t cap, int level, const char *module)
{
    int64_t ms = wall_ms();
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(ms % 1000), log_level_name(level),
                     module != NULL ? module : "-");
    /* a module tag is a short word; a runaway one still leaves room */
    return n < 0 ? 0 : (size_t)n < cap / 2 ? (size_t)n : cap / 2;
}

void log_writev(int level, const char *module, const char *fmt, va_list ap)
{
    if (!log_enabled(level))
        return;
    char line[LOG_LINE_MAX];
    size_t head = format_head(line, sizeof line, level, module);
    size_t room = sizeof line - head - 1; /* the message and its NUL; 1 byte kept for '\n' */
    int k = vsnprintf(line + head, room, fmt, ap);
    size_t n = k < 0 ? 0 : (size_t)k < room ? (size_t)k : room - 1;
    if (k > 0 && (size_t)k >= room)
        memcpy(line + head + n - 3, "...", 3);
    while (n > 0 && (line[head + n - 1] == '\n' || line[head + n - 1] == '\r'))
        n--; /* callers (MHD) end their messages in a newline */
    for (size_t i = head; i < head + n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    n += head;
    line[n++] = '\n';
    line[n] = '\0';
    pthread_mutex_lock(&g_mu);
    if (g_sink != NULL)
        g_sink(line, n, g_sink_user);
    else
        write_stderr(line, n);
    pthread_mutex_unlock(&g_mu);
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
