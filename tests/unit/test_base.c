/* test_base.c - server/base: the log (level filtering, the line format
 * through the capture sink, whole lines from concurrent threads on the real
 * stderr path), the clocks, the durable file write (content, exact mode, no
 * temp file left, failures leave nothing behind) and the x-allocators
 * (basics; out-of-memory aborts). Torch-free: also runs under ASan and TSan. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base_alloc.h"
#include "base_clock.h"
#include "base_file.h"
#include "base_log.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

/* ---- capture sink ---------------------------------------------------------- */

typedef struct capture {
    char buf[64 * 1024];
    size_t len;
    int lines;
} capture;

static void capture_line(const char *line, size_t len, void *user)
{
    capture *c = user;
    assert_true(len > 0 && line[len - 1] == '\n' && line[len] == '\0');
    if (c->len + len < sizeof c->buf) {
        memcpy(c->buf + c->len, line, len + 1);
        c->len += len;
    }
    c->lines++;
}

static capture *capture_start(int level)
{
    capture *c = calloc(1, sizeof *c);
    assert_non_null(c);
    log_set_level(level);
    log_set_sink(capture_line, c);
    return c;
}

static void capture_stop(capture *c)
{
    log_set_sink(NULL, NULL);
    log_set_level(LL_INFO);
    free(c);
}

/* Checks "YYYY-MM-DDTHH:MM:SS.mmmZ LEVEL MODULE: " at the start of line
 * (LEVEL left-aligned in 5 columns), the timestamp within [lo, hi] ms
 * (skipped when hi is 0); returns the message that follows. */
static const char *check_head(const char *line, const char *level, const char *module,
                              int64_t lo, int64_t hi)
{
    struct tm tm;
    int ms = -1, used = 0;
    memset(&tm, 0, sizeof tm);
    int got = sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %n", &tm.tm_year, &tm.tm_mon,
                     &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &used);
    assert_int_equal(got, 7);
    assert_int_equal(used, 25); /* fixed width: 24 for the stamp, one space */
    assert_true(line[19] == '.' && line[23] == 'Z' && ms >= 0 && ms <= 999);
    if (hi != 0) {
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        int64_t t = (int64_t)timegm(&tm) * 1000 + ms;
        assert_true(t >= lo && t <= hi);
    }
    char want[64];
    snprintf(want, sizeof want, "%-5s %s: ", level, module);
    assert_memory_equal(line + 25, want, strlen(want));
    return line + 25 + strlen(want);
}

/* The message of one captured line equals want (which ends in '\n'), the
 * lines after it not compared. */
static void assert_msg(const char *msg, const char *want)
{
    const char *nl = strchr(msg, '\n');
    assert_non_null(nl);
    assert_int_equal((size_t)(nl + 1 - msg), strlen(want));
    assert_memory_equal(msg, want, strlen(want));
}

/* Every test starts and ends with the stderr sink and the default level,
 * even after a failed assertion left its capture installed. */
static int reset_log(void **state)
{
    (void)state;
    log_set_sink(NULL, NULL);
    log_set_level(LL_INFO);
    log_set_json(0);
    log_set_request_id(NULL);
    return 0;
}

/* ---- log ------------------------------------------------------------------- */

static int evaluated;
static int side_effect(void) { return ++evaluated; }

static void test_log_level_filtering(void **state)
{
    (void)state;
    capture *c = capture_start(LL_WARN);
    evaluated = 0;
    log_debug("test", "debug %d", side_effect());
    log_info("test", "info %d", side_effect());
    log_write(LL_INFO, "test", "info through the function");
    assert_int_equal(c->lines, 0);
    assert_int_equal(evaluated, 0); /* disabled: the arguments are not even evaluated */
    log_warn("test", "warn %d", side_effect());
    log_error("test", "error %d", side_effect());
    assert_int_equal(c->lines, 2);
    assert_int_equal(evaluated, 2);
    assert_non_null(strstr(c->buf, "warn  test: warn 1\n"));
    assert_non_null(strstr(c->buf, "error test: error 2\n"));
    log_set_level(LL_DEBUG);
    log_debug("test", "now shown");
    assert_int_equal(c->lines, 3);
    assert_false(log_enabled(-1));
    log_set_level(99); /* clamped: errors always get through */
    assert_int_equal(log_get_level(), LL_ERROR);
    log_warn("test", "hidden");
    log_error("test", "shown");
    assert_int_equal(c->lines, 4);
    capture_stop(c);
}

static void test_log_line_format(void **state)
{
    (void)state;
    capture *c = capture_start(LL_INFO);
    int64_t lo = wall_ms();
    log_info("store", "opened %s with %d table(s)", "/var/db", 7);
    int64_t hi = wall_ms();
    assert_int_equal(c->lines, 1);
    assert_msg(check_head(c->buf, "info", "store", lo, hi), "opened /var/db with 7 table(s)\n");
    c->len = 0;
    log_write(LL_ERROR, NULL, "no module");
    assert_msg(check_head(c->buf, "error", "-", 0, 0), "no module\n");
    capture_stop(c);
}

static void test_log_one_line_per_message(void **state)
{
    (void)state;
    capture *c = capture_start(LL_DEBUG);
    /* MHD ends messages in "\n"; a client string may carry CR/LF */
    log_warn("mhd", "Error processing request\r\n");
    log_info("api", "no such product: evil\r\n2099-01-01T00:00:00.000Z error api: forged");
    assert_int_equal(c->lines, 2);
    char *second = strchr(c->buf, '\n') + 1;
    assert_msg(check_head(c->buf, "warn", "mhd", 0, 0), "Error processing request\n");
    assert_msg(check_head(second, "info", "api", 0, 0),
               "no such product: evil  2099-01-01T00:00:00.000Z error api: forged\n");
    /* a message too long for LOG_LINE_MAX is cut and marked */
    char big[LOG_LINE_MAX * 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    c->len = 0;
    log_info("api", "%s", big);
    assert_true(c->len <= LOG_LINE_MAX && c->len > LOG_LINE_MAX - 64);
    assert_memory_equal(c->buf + c->len - 4, "...\n", 4);
    capture_stop(c);
}

static void test_log_level_names(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("debug"), LL_DEBUG);
    assert_int_equal(log_level_parse("INFO"), LL_INFO);
    assert_int_equal(log_level_parse("warn"), LL_WARN);
    assert_int_equal(log_level_parse("warning"), LL_WARN);
    assert_int_equal(log_level_parse("error"), LL_ERROR);
    assert_int_equal(log_level_parse("0"), LL_DEBUG);
    assert_int_equal(log_level_parse("3"), LL_ERROR);
    const char *bad[] = {"", "4", "-1", "03", "2 ", "verbose", "err"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(log_level_parse(bad[i]), -1);
    assert_int_equal(log_level_parse(NULL), -1);
    assert_string_equal(log_level_name(LL_WARN), "warn");
    assert_string_equal(log_level_name(-3), "debug");
    assert_string_equal(log_level_name(17), "error");
}

static void test_log_engine_sink(void **state)
{
    (void)state;
    capture *c = capture_start(LL_INFO);
    log_engine_sink(LL_DEBUG, "below the level", NULL);
    log_engine_sink(LL_WARN, "backbone on cpu", NULL);
    log_engine_sink(9, "odd level from the engine", NULL);
    assert_int_equal(c->lines, 2);
    assert_msg(check_head(c->buf, "warn", "core", 0, 0), "backbone on cpu\n");
    assert_msg(check_head(strchr(c->buf, '\n') + 1, "error", "core", 0, 0),
               "odd level from the engine\n");
    capture_stop(c);
}

/* Threads log long lines straight to stderr (no sink: the write(2) path),
 * redirected to a file; every line must come out whole. */
#define N_THREADS 8
#define N_LINES 200
#define PAYLOAD 1500

static void *log_lines(void *arg)
{
    int t = (int)(intptr_t)arg;
    char payload[PAYLOAD + 1];
    memset(payload, 'a' + t, PAYLOAD);
    payload[PAYLOAD] = '\0';
    for (int i = 0; i < N_LINES; i++)
        log_error("t", "%d %03d %s", t, i, payload);
    return NULL;
}

static void *flip_level(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++)
        log_set_level(i % 2 ? LL_DEBUG : LL_WARN);
    return NULL;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = xmalloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void check_whole_lines(char *text, size_t len)
{
    int seen[N_THREADS][N_LINES];
    memset(seen, 0, sizeof seen);
    int n = 0;
    for (char *line = text; line < text + len; n++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        const char *msg = check_head(line, "error", "t", 0, 0);
        int t = -1, i = -1, used = 0;
        assert_int_equal(sscanf(msg, "%d %d %n", &t, &i, &used), 2);
        assert_true(t >= 0 && t < N_THREADS && i >= 0 && i < N_LINES);
        assert_int_equal(strlen(msg + used), PAYLOAD);
        for (int k = 0; k < PAYLOAD; k++)
            assert_int_equal(msg[used + k], 'a' + t);
        seen[t][i]++;
        line = nl + 1;
    }
    assert_int_equal(n, N_THREADS * N_LINES);
    for (int t = 0; t < N_THREADS; t++)
        for (int i = 0; i < N_LINES; i++)
            assert_int_equal(seen[t][i], 1);
}

static void test_log_concurrent_whole_lines(void **state)
{
    (void)state;
    char path[] = "/tmp/cfa-base-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0 && dup2(fd, STDERR_FILENO) == STDERR_FILENO);
    pthread_t th[N_THREADS + 1];
    for (int t = 0; t < N_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, log_lines, (void *)(intptr_t)t), 0);
    assert_int_equal(pthread_create(&th[N_THREADS], NULL, flip_level, NULL), 0);
    for (int t = 0; t <= N_THREADS; t++)
        pthread_join(th[t], NULL);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    log_set_level(LL_INFO);
    size_t len = 0;
    char *text = read_all(path, &len);
    unlink(path);
    check_whole_lines(text, len);
    free(text);
}

/* ---- clocks ---------------------------------------------------------------- */

static void test_clocks(void **state)
{
    (void)state;
    double m0 = mono_ms();
    int64_t w = wall_ms();
    int64_t now = (int64_t)time(NULL) * 1000;
    assert_true(w >= now - 1000 && w <= now + 1000);
    struct timespec d = wall_deadline(250);
    int64_t dms = (int64_t)d.tv_sec * 1000 + d.tv_nsec / 1000000;
    assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
    assert_true(dms >= w + 249 && dms <= wall_ms() + 251);
    d = wall_deadline(-5);
    assert_true((int64_t)d.tv_sec * 1000 + d.tv_nsec / 1000000 <= wall_ms());
    /* a timed wait on a default condvar with wall_deadline waits that long */
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&mu);
    d = wall_deadline(60);
    double t0 = mono_ms();
    int rc;
    while ((rc = pthread_cond_timedwait(&cv, &mu, &d)) == 0) {
    }
    double waited = mono_ms() - t0;
    pthread_mutex_unlock(&mu);
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(waited >= 50 && waited < 5000);
    assert_true(mono_ms() >= m0 + 50);
}

/* ---- durable write ---------------------------------------------------------- */

static void make_dir(char *dir) { assert_non_null(mkdtemp(dir)); }

/* Number of entries of dir other than "." and "..", and of temp files among them. */
static int count_entries(const char *dir, int *temps)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    *temps = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        *temps += strstr(e->d_name, ".tmp-") != NULL;
    }
    closedir(d);
    return n;
}

static void test_durable_write(void **state)
{
    (void)state;
    char dir[] = "/tmp/cfa-base-file-XXXXXX", path[256], err[512];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/admin.key", dir);
    mode_t old = umask(022);
    assert_int_equal(file_write_durable(path, "secret\n", 7, 0600, err, sizeof err), 0);
    size_t len = 0;
    char *got = read_all(path, &len);
    assert_int_equal(len, 7);
    assert_memory_equal(got, "secret\n", 7);
    free(got);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* replaces the file; the mode is exactly the one asked for, whatever the umask */
    umask(077);
    assert_int_equal(file_write_durable(path, "", 0, 0640, err, sizeof err), 0);
    umask(old);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 0);
    assert_int_equal(sb.st_mode & 0777, 0640);
    int temps = 0;
    assert_int_equal(count_entries(dir, &temps), 1);
    assert_int_equal(temps, 0);
    unlink(path);
    rmdir(dir);
}

static void test_durable_write_failures(void **state)
{
    (void)state;
    char dir[] = "/tmp/cfa-base-file-XXXXXX", path[256], err[512];
    make_dir(dir);
    /* a missing directory: -1, ENOENT, a message naming the path, nothing created */
    snprintf(path, sizeof path, "%s/missing/admin.key", dir);
    err[0] = '\0';
    errno = 0;
    assert_int_equal(file_write_durable(path, "x", 1, 0600, err, sizeof err), -1);
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(ENOENT)));
    int temps = 0;
    assert_int_equal(count_entries(dir, &temps), 0);
    assert_int_equal(file_write_durable(path, "x", 1, 0600, NULL, 0), -1); /* err optional */
    /* the rename fails (path is a non-empty directory): the temp file is removed */
    char sub[300], inner[320];
    snprintf(sub, sizeof sub, "%s/taken", dir);
    snprintf(inner, sizeof inner, "%s/keep", sub);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(file_write_durable(inner, "k", 1, 0600, err, sizeof err), 0);
    assert_int_equal(file_write_durable(sub, "x", 1, 0600, err, sizeof err), -1);
    assert_true(strncmp(err, "rename ", 7) == 0);
    assert_int_equal(count_entries(dir, &temps), 1); /* "taken" only */
    assert_int_equal(temps, 0);
    unlink(inner);
    rmdir(sub);
    rmdir(dir);
}

/* The atomic write: whole file, exact mode, replaced, no temp left; the sync
 * of its file system succeeds on a directory and fails on a missing one. */
static void test_atomic_write_and_sync(void **state)
{
    (void)state;
    char dir[] = "/tmp/cfa-base-file-XXXXXX", path[256], err[512];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/x.input", dir);
    assert_int_equal(file_write_atomic(path, "first", 5, 0600, err, sizeof err), 0);
    assert_int_equal(file_write_atomic(path, "second!", 7, 0600, err, sizeof err), 0);
    size_t len = 0;
    char *got = read_all(path, &len);
    assert_int_equal(len, 7);
    assert_memory_equal(got, "second!", 7);
    free(got);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    int temps = 0;
    assert_int_equal(count_entries(dir, &temps), 1);
    assert_int_equal(temps, 0);
    assert_int_equal(file_sync_fs(dir, err, sizeof err), 0);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    assert_int_equal(file_write_atomic(missing, "x", 1, 0600, err, sizeof err), 0);
    unlink(missing);
    snprintf(path, sizeof path, "%s/no/such", dir);
    assert_int_equal(file_write_atomic(path, "x", 1, 0600, err, sizeof err), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(file_sync_fs(path, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    snprintf(path, sizeof path, "%s/x.input", dir);
    unlink(path);
    rmdir(dir);
}

/* ---- allocation ------------------------------------------------------------- */

static void test_xalloc(void **state)
{
    (void)state;
    char *p = xmalloc(0);
    assert_non_null(p);
    free(p);
    int *v = xcalloc(100, sizeof *v);
    for (int i = 0; i < 100; i++)
        assert_int_equal(v[i], 0);
    for (int i = 0; i < 100; i++)
        v[i] = i;
    v = xrealloc(v, 100000 * sizeof *v);
    for (int i = 0; i < 100; i++)
        assert_int_equal(v[i], i);
    free(v);
    p = xrealloc(NULL, 16);
    p = xrealloc(p, 0); /* never frees behind the caller's back */
    assert_non_null(p);
    free(p);
    char *s = xstrdup("admin key");
    assert_string_equal(s, "admin key");
    free(s);
    s = xstrdup("");
    assert_string_equal(s, "");
    free(s);
}

/* Out of memory ends the process (in a child) with the log line; a
 * sanitizer catches the impossible size first, so there only the abnormal
 * end is checked. */
static void test_xmalloc_out_of_memory(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        volatile size_t huge = SIZE_MAX - 4096;
        char *p = xmalloc(huge);
        p[0] = 1;
        _exit(0);
    }
    close(fds[1]);
    char out[8192];
    size_t n = 0;
    ssize_t k;
    while (n + 1 < sizeof out && (k = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!UNDER_SANITIZER) {
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
        assert_non_null(strstr(out, " error alloc: xmalloc: out of memory ("));
    }
}

/* --log-format json: one object a line, the message escaped, the request id
 * of the thread and the caller's fields in it; text: the id at the end. */
static void test_log_json_and_request_id(void **state)
{
    (void)state;
    assert_int_equal(log_format_parse("json"), 1);
    assert_int_equal(log_format_parse("TEXT"), 0);
    assert_int_equal(log_format_parse("xml"), -1);
    capture *c = capture_start(LL_INFO);
    log_set_request_id("req-1");
    log_info("api", "said \"hi\"\nand\\left");
    assert_non_null(strstr(c->buf, " [req-1]\n"));
    c->len = 0;
    log_set_json(1);
    log_fields(LL_WARN, "access", "\"status\":200,\"ms\":1.5", "GET %s", "/x");
    assert_true(strncmp(c->buf, "{\"time\":\"", 9) == 0);
    assert_true(c->buf[9 + 19] == '.' && c->buf[9 + 23] == 'Z');
    assert_non_null(strstr(c->buf, "\"level\":\"warn\",\"module\":\"access\",\"request_id\":"
                                   "\"req-1\",\"msg\":\"GET /x\",\"status\":200,\"ms\":1.5}\n"));
    c->len = 0;
    log_set_request_id(NULL);
    log_info("api", "q\"\x01");
    assert_non_null(strstr(c->buf, "\"msg\":\"q\\\"\\u0001\"}\n"));
    assert_null(strstr(c->buf, "request_id"));
    log_set_json(0);
    capture_stop(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_level_filtering, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_log_line_format, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_log_json_and_request_id, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_log_one_line_per_message, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_log_level_names, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_log_engine_sink, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_log_concurrent_whole_lines, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_clocks, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_durable_write, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_durable_write_failures, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_atomic_write_and_sync, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_xalloc, reset_log, reset_log),
        cmocka_unit_test_setup_teardown(test_xmalloc_out_of_memory, reset_log, reset_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
