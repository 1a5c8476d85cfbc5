/*
 * store.c - SQLite state and content-addressed files of the daemon.
 *
 * Concurrency design: one read-write connection, used only while holding
 * st->wmu, so in-process writers are serialised and never see SQLITE_BUSY from
 * each other; write transactions start with BEGIN IMMEDIATE (the write lock is
 * taken up front, so no deadlocking read->write upgrade) and are retried on
 * SQLITE_BUSY for other processes (the CLI). Reads go through a small pool of
 * read-only connections, which WAL lets run next to the writer. Every
 * connection caches its prepared statements (keyed by the SQL string's
 * address) and statements are reset right after use so no reader keeps a
 * snapshot open and blocks checkpoints.
 */
#define _GNU_SOURCE
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sha256.h"

/* Generated from migrations/NNN_name.sql at build time (server/store.cmake). */
struct store_migration {
    int version;
    const char *name;
    const char *sql;
};
extern const struct store_migration store_migrations[];
extern const int store_migrations_count;

#define STMT_CACHE 64
#define BLOB_LOCKS 16
#define QUEUE_MAX 10000
#define QUEUE_BATCH 256
#define BUSY_RETRIES 50

typedef struct {
    sqlite3 *db;
    const char *keys[STMT_CACHE];
    sqlite3_stmt *stmts[STMT_CACHE];
    int n;
    int in_use;
} conn_t;

struct store {
    char *dir;
    int busy_ms;

    conn_t w;
    pthread_mutex_t wmu;

    conn_t *r;
    int nr;
    pthread_mutex_t rmu;
    pthread_cond_t rcv;

    pthread_mutex_t blob_mu[BLOB_LOCKS];

    /* Asynchronous inspection inserts. */
    int async;
    int flush_ms;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    store_inspection_t *q;
    size_t qn, qcap;
    int qstop;
    pthread_mutex_t flush_mu; /* one flush (take + insert) at a time */
    pthread_t flusher;
    int flusher_started;
};

/* ------------------------------------------------------------ utilities */

static _Thread_local char last_err[256];

static void set_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_err, sizeof last_err, fmt, ap);
    va_end(ap);
}

const char *store_last_error(void) { return last_err; }

static const char *const status_msgs[] = {
#define STORE_X_MSG(name, msg) msg,
    STORE_STATUS_TABLE(STORE_X_MSG)
#undef STORE_X_MSG
};

static const char *const status_codes[] = {
    "ok",        "not_found", "exists", "conflict",    "invalid",
    "io_error",  "db_error",  "full",   "out_of_memory", "busy",
    "schema_too_new", "canceled"};

_Static_assert(sizeof status_codes / sizeof status_codes[0] == STORE_STATUS_COUNT,
               "status_codes must match STORE_STATUS_TABLE");

const char *store_strerror(store_status s)
{
    if ((int)s < 0 || s >= STORE_STATUS_COUNT)
        return "unknown status";
    return status_msgs[s];
}

const char *store_status_code(store_status s)
{
    if ((int)s < 0 || s >= STORE_STATUS_COUNT)
        return "unknown";
    return status_codes[s];
}

static void oom(void)
{
    fprintf(stderr, "store: out of memory\n");
    abort();
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p)
        oom();
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *store_time_format(int64_t ms, char out[STORE_TIME_LEN])
{
    out[0] = '\0';
    if (ms == 0)
        return out;
    time_t sec = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        sec -= 1;
    }
    struct tm tm;
    if (!gmtime_r(&sec, &tm))
        return out;
    char base[24];
    if (strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return out;
    snprintf(out, STORE_TIME_LEN, "%s.%03dZ", base, frac);
    return out;
}

static int parse_digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

int store_time_parse(const char *s, int64_t *ms)
{
    if (!s || !ms)
        return -1;
    int Y, M, D, h, m, sec;
    const char *p = s;
    if (parse_digits(&p, 4, &Y) || *p++ != '-' || parse_digits(&p, 2, &M) || *p++ != '-' ||
        parse_digits(&p, 2, &D))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &m) || *p++ != ':' ||
        parse_digits(&p, 2, &sec))
        return -1;
    int frac_ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return -1;
        for (int i = digits; i < 3; i++)
            frac_ms *= 10;
    }
    int off_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh, om;
        p++;
        if (parse_digits(&p, 2, &oh) || *p++ != ':' || parse_digits(&p, 2, &om))
            return -1;
        off_min = sign * (oh * 60 + om);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    struct tm tm = {0};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - (int64_t)off_min * 60) * 1000 + frac_ms;
    return 0;
}

int store_valid_product_id(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int is_lower_hex(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

int store_valid_sha256(const char *s) { return is_lower_hex(s, 64); }
int store_valid_id(const char *s) { return is_lower_hex(s, 32); }

static int valid_ext(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n < 1 || n > 7)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

/* Inspection file names: [a-z0-9._-]{1,32}, not starting with '.'. */
static int valid_file_name(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n < 1 || n > 32 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static int random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t k = getrandom(p, n, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        p += k;
        n -= (size_t)k;
    }
    if (n == 0)
        return 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while (n > 0) {
        ssize_t k = read(fd, p, n);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    close(fd);
    return 0;
}

int store_random_id(char out[STORE_ID_LEN])
{
    uint8_t b[16];
    if (random_bytes(b, sizeof b) != 0) {
        out[0] = '\0';
        return -1;
    }
    sha256_hex(b, sizeof b, out);
    return 0;
}

int store_time_id(char out[STORE_ID_LEN])
{
    uint8_t b[10];
    if (random_bytes(b, sizeof b) != 0) {
        out[0] = '\0';
        return -1;
    }
    uint64_t ms = (uint64_t)store_now_ms() & 0xffffffffffffULL;
    snprintf(out, 13, "%012llx", (unsigned long long)ms);
    sha256_hex(b, sizeof b, out + 12);
    return 0;
}

/* Creation time encoded in a store_time_id(), or 0 if it is not one. */
static int64_t time_of_id(const char *id)
{
    if (!store_valid_id(id))
        return 0;
    char head[13];
    memcpy(head, id, 12);
    head[12] = '\0';
    return (int64_t)strtoll(head, NULL, 16);
}

/* ------------------------------------------------------------- files */

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes data to dir/name durably: temp file in the same directory, fsync,
 * rename over the final name, fsync the directory. */
static store_status write_durable(const char *dir, const char *final_path, const void *data,
                                  size_t len)
{
    if (mkdir_p(dir, 0750) != 0) {
        set_err("mkdir %s: %s", dir, strerror(errno));
        return errno == ENOSPC ? STORE_ERR_FULL : STORE_ERR_IO;
    }
    char tmp[4200];
    char rnd[STORE_ID_LEN];
    if (store_random_id(rnd) != 0)
        return STORE_ERR_IO;
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%.16s", final_path, rnd) >= (int)sizeof tmp)
        return STORE_ERR_INVALID;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        set_err("open %s: %s", tmp, strerror(errno));
        return STORE_ERR_IO;
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t k = write(fd, p, left);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            set_err("write %s: %s", tmp, strerror(e));
            close(fd);
            unlink(tmp);
            return e == ENOSPC ? STORE_ERR_FULL : STORE_ERR_IO;
        }
        p += k;
        left -= (size_t)k;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        set_err("fsync %s: %s", tmp, strerror(e));
        close(fd);
        unlink(tmp);
        return e == ENOSPC ? STORE_ERR_FULL : STORE_ERR_IO;
    }
    if (close(fd) != 0) {
        set_err("close %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return STORE_ERR_IO;
    }
    if (rename(tmp, final_path) != 0) {
        set_err("rename %s: %s", final_path, strerror(errno));
        unlink(tmp);
        return STORE_ERR_IO;
    }
    if (fsync_dir(dir) != 0) {
        set_err("fsync dir %s: %s", dir, strerror(errno));
        return STORE_ERR_IO;
    }
    return STORE_OK;
}

static int rm_tree_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_tree_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ----------------------------------------------------------- sqlite glue */

static store_status map_rc(sqlite3 *db, int rc)
{
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
        return STORE_OK;
    set_err("sqlite: %s (%d)", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
            return STORE_ERR_EXISTS;
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return STORE_ERR_NOT_FOUND;
        return STORE_ERR_INVALID;
    case SQLITE_FULL:
        return STORE_ERR_FULL;
    case SQLITE_NOMEM:
        return STORE_ERR_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_ERR_BUSY;
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return STORE_ERR_INVALID;
    default:
        return STORE_ERR_DB;
    }
}

/* A cached prepared statement (reset, bindings cleared). sql must be a string
 * with static storage: its address is the cache key. NULL on error. */
static sqlite3_stmt *prep(conn_t *c, const char *sql)
{
    for (int i = 0; i < c->n; i++)
        if (c->keys[i] == sql)
            return c->stmts[i];
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) {
        map_rc(c->db, rc);
        return NULL;
    }
    if (c->n < STMT_CACHE) {
        c->keys[c->n] = sql;
        c->stmts[c->n] = s;
        c->n++;
    } else {
        /* Cache full: should not happen with a fixed set of queries. */
        fprintf(stderr, "store: statement cache full\n");
        abort();
    }
    return s;
}

/* Resets a statement after use so it holds no snapshot or locks. */
static void done(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

static void conn_close(conn_t *c)
{
    for (int i = 0; i < c->n; i++)
        sqlite3_finalize(c->stmts[i]);
    c->n = 0;
    if (c->db)
        sqlite3_close_v2(c->db);
    c->db = NULL;
}

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

static void bind_real_or_null(sqlite3_stmt *s, int i, double v)
{
    if (isfinite(v))
        sqlite3_bind_double(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

static char *col_dup(sqlite3_stmt *s, int i, const char *dflt)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    if (!t)
        return dflt ? xstrdup(dflt) : NULL;
    return xstrdup((const char *)t);
}

static void col_copy(sqlite3_stmt *s, int i, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    copy_str(dst, cap, (const char *)t);
}

static double col_real_or_nan(sqlite3_stmt *s, int i)
{
    if (sqlite3_column_type(s, i) == SQLITE_NULL)
        return NAN;
    return sqlite3_column_double(s, i);
}

static int exec_simple(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        set_err("sqlite: %s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
    }
    return rc;
}

/* Runs sql (no results) retrying on SQLITE_BUSY beyond the busy timeout. */
static int exec_retry(sqlite3 *db, const char *sql)
{
    int rc;
    for (int i = 0; i < BUSY_RETRIES; i++) {
        rc = exec_simple(db, sql);
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            return rc;
        usleep(10000);
    }
    return rc;
}

/* Write transaction: takes the writer mutex and BEGIN IMMEDIATE. On failure
 * the mutex is released. */
static store_status wbegin(store_t *st)
{
    pthread_mutex_lock(&st->wmu);
    int rc = exec_retry(st->w.db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) {
        store_status s = map_rc(st->w.db, rc);
        pthread_mutex_unlock(&st->wmu);
        return s;
    }
    return STORE_OK;
}

static store_status wcommit(store_t *st)
{
    int rc = exec_retry(st->w.db, "COMMIT");
    store_status s = STORE_OK;
    if (rc != SQLITE_OK) {
        s = map_rc(st->w.db, rc);
        if (!sqlite3_get_autocommit(st->w.db))
            exec_simple(st->w.db, "ROLLBACK");
    }
    pthread_mutex_unlock(&st->wmu);
    return s;
}

static void wrollback(store_t *st)
{
    if (!sqlite3_get_autocommit(st->w.db))
        exec_simple(st->w.db, "ROLLBACK");
    pthread_mutex_unlock(&st->wmu);
}

/* Ends a write transaction: commit if s is OK, else roll back. */
static store_status wend(store_t *st, store_status s)
{
    if (s == STORE_OK)
        return wcommit(st);
    wrollback(st);
    return s;
}

static conn_t *racquire(store_t *st)
{
    pthread_mutex_lock(&st->rmu);
    for (;;) {
        for (int i = 0; i < st->nr; i++) {
            if (!st->r[i].in_use) {
                st->r[i].in_use = 1;
                pthread_mutex_unlock(&st->rmu);
                return &st->r[i];
            }
        }
        pthread_cond_wait(&st->rcv, &st->rmu);
    }
}

static void rrelease(store_t *st, conn_t *c)
{
    pthread_mutex_lock(&st->rmu);
    c->in_use = 0;
    pthread_cond_signal(&st->rcv);
    pthread_mutex_unlock(&st->rmu);
}

/* Steps a statement, retrying SQLITE_BUSY (beyond busy_timeout). */
static int step(sqlite3_stmt *s)
{
    int rc;
    for (int i = 0; i < BUSY_RETRIES; i++) {
        rc = sqlite3_step(s);
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            return rc;
        sqlite3_reset(s);
        usleep(10000);
    }
    return rc;
}

/* Steps a statement that returns no rows; maps the result. */
static store_status run_stmt(conn_t *c, sqlite3_stmt *s)
{
    int rc = step(s);
    store_status r = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? STORE_OK : map_rc(c->db, rc);
    done(s);
    return r;
}

/* ------------------------------------------------------------ open/close */

store_options store_default_options(void)
{
    store_options o;
    memset(&o, 0, sizeof o);
    o.read_connections = 4;
    o.busy_timeout_ms = 5000;
    o.async_inspections = 1;
    o.flush_interval_ms = 50;
    o.sync_full = 1;
    return o;
}

int store_schema_latest(void)
{
    int v = 0;
    for (int i = 0; i < store_migrations_count; i++)
        if (store_migrations[i].version > v)
            v = store_migrations[i].version;
    return v;
}

static int user_version(sqlite3 *db)
{
    sqlite3_stmt *s = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

static store_status migrate(sqlite3 *db)
{
    /* The generated table is sorted by file name; require 1..N without gaps
     * so a misnumbered file fails loudly at start-up instead of being skipped. */
    for (int i = 0; i < store_migrations_count; i++) {
        if (store_migrations[i].version != i + 1) {
            set_err("migration %s: expected number %d", store_migrations[i].name, i + 1);
            return STORE_ERR_VERSION;
        }
    }
    int have = user_version(db);
    if (have < 0)
        return map_rc(db, sqlite3_errcode(db));
    if (have > store_schema_latest()) {
        set_err("database schema version %d is newer than this binary (%d)", have,
                store_schema_latest());
        return STORE_ERR_VERSION;
    }
    for (int i = have; i < store_migrations_count; i++) {
        const struct store_migration *m = &store_migrations[i];
        int rc = exec_retry(db, "BEGIN IMMEDIATE");
        if (rc != SQLITE_OK)
            return map_rc(db, rc);
        /* Re-check under the write lock: another process may have migrated. */
        int cur = user_version(db);
        if (cur >= m->version) {
            exec_simple(db, "COMMIT");
            continue;
        }
        rc = exec_simple(db, m->sql);
        if (rc == SQLITE_OK) {
            /* PRAGMA takes no bound parameters; the value is our own integer. */
            char pragma[64];
            snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", m->version);
            rc = exec_simple(db, pragma);
        }
        if (rc != SQLITE_OK) {
            char detail[256];
            snprintf(detail, sizeof detail, "%s", last_err);
            exec_simple(db, "ROLLBACK");
            set_err("migration %s failed: %s", m->name, detail);
            return STORE_ERR_DB;
        }
        rc = exec_retry(db, "COMMIT");
        if (rc != SQLITE_OK) {
            exec_simple(db, "ROLLBACK");
            return map_rc(db, rc);
        }
    }
    return STORE_OK;
}

static store_status open_conn(store_t *st, const char *path, int readonly, int sync_full,
                              conn_t *c)
{
    int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE |
                (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    memset(c, 0, sizeof *c);
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        store_status s = map_rc(c->db, rc);
        conn_close(c);
        return s == STORE_OK ? STORE_ERR_DB : s;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, st->busy_ms);
    if (exec_simple(c->db, "PRAGMA foreign_keys = ON") != SQLITE_OK)
        goto fail;
    if (!readonly) {
        if (exec_retry(c->db, "PRAGMA journal_mode = WAL") != SQLITE_OK)
            goto fail;
    }
    if (exec_simple(c->db, sync_full ? "PRAGMA synchronous = FULL"
                                     : "PRAGMA synchronous = NORMAL") != SQLITE_OK)
        goto fail;
    return STORE_OK;
fail:;
    store_status s = map_rc(c->db, sqlite3_errcode(c->db));
    conn_close(c);
    return s == STORE_OK ? STORE_ERR_DB : s;
}

static void *flusher_main(void *arg);

/* nftw() has no user pointer; the sweep runs once, single-threaded, at start-up */
static int sweep_count;

static int sweep_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    const char *base = path + ftw->base;
    size_t bl = strlen(base);
    (void)sb;
    if (flag != FTW_F)
        return 0;
    if (strstr(base, ".tmp-") != NULL || (bl > 4 && strcmp(base + bl - 4, ".tmp") == 0)) {
        if (unlink(path) == 0)
            sweep_count++;
    }
    return 0;
}

store_status store_sweep_temp(const char *data_dir, int *removed)
{
    struct stat sb;
    if (removed)
        *removed = 0;
    if (data_dir == NULL)
        return STORE_ERR_INVALID;
    if (stat(data_dir, &sb) != 0)
        return errno == ENOENT ? STORE_OK : STORE_ERR_IO;
    sweep_count = 0;
    if (nftw(data_dir, sweep_cb, 16, FTW_PHYS) != 0)
        return STORE_ERR_IO;
    if (removed)
        *removed = sweep_count;
    return STORE_OK;
}

store_status store_open(const char *data_dir, const store_options *opts, store_t **out)
{
    if (!out)
        return STORE_ERR_INVALID;
    *out = NULL;
    if (!data_dir || !*data_dir || strlen(data_dir) > 3000)
        return STORE_ERR_INVALID;
    store_options o = opts ? *opts : store_default_options();
    if (o.read_connections <= 0)
        o.read_connections = 4;
    if (o.read_connections > 64)
        o.read_connections = 64;
    if (o.busy_timeout_ms <= 0)
        o.busy_timeout_ms = 5000;
    if (o.flush_interval_ms <= 0)
        o.flush_interval_ms = 50;

    char path[4096];
    const char *subs[] = {"", "/images", "/inspections"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        snprintf(path, sizeof path, "%s%s", data_dir, subs[i]);
        if (mkdir_p(path, 0750) != 0) {
            set_err("mkdir %s: %s", path, strerror(errno));
            return STORE_ERR_IO;
        }
    }

    store_t *st = xcalloc(1, sizeof *st);
    st->dir = xstrdup(data_dir);
    size_t dl = strlen(st->dir);
    while (dl > 1 && st->dir[dl - 1] == '/')
        st->dir[--dl] = '\0';
    st->busy_ms = o.busy_timeout_ms;
    st->async = o.async_inspections;
    st->flush_ms = o.flush_interval_ms;
    pthread_mutex_init(&st->wmu, NULL);
    pthread_mutex_init(&st->rmu, NULL);
    pthread_cond_init(&st->rcv, NULL);
    pthread_mutex_init(&st->qmu, NULL);
    pthread_cond_init(&st->qcv, NULL);
    pthread_mutex_init(&st->flush_mu, NULL);
    for (int i = 0; i < BLOB_LOCKS; i++)
        pthread_mutex_init(&st->blob_mu[i], NULL);

    snprintf(path, sizeof path, "%s/cfa.db", st->dir);
    store_status s = open_conn(st, path, 0, o.sync_full, &st->w);
    if (s == STORE_OK)
        s = migrate(st->w.db);
    if (s == STORE_OK) {
        st->r = xcalloc((size_t)o.read_connections, sizeof *st->r);
        for (int i = 0; i < o.read_connections && s == STORE_OK; i++) {
            s = open_conn(st, path, 1, o.sync_full, &st->r[i]);
            if (s == STORE_OK)
                st->nr++;
        }
    }
    if (s == STORE_OK && st->async) {
        if (pthread_create(&st->flusher, NULL, flusher_main, st) == 0)
            st->flusher_started = 1;
        else
            st->async = 0;
    }
    if (s != STORE_OK) {
        store_close(st);
        return s;
    }
    *out = st;
    return STORE_OK;
}

void store_close(store_t *st)
{
    if (!st)
        return;
    if (st->flusher_started) {
        pthread_mutex_lock(&st->qmu);
        st->qstop = 1;
        pthread_cond_signal(&st->qcv);
        pthread_mutex_unlock(&st->qmu);
        pthread_join(st->flusher, NULL);
    }
    if (st->w.db && st->qn > 0)
        store_inspections_flush(st);
    if (st->qn > 0)
        fprintf(stderr, "store: %zu queued inspections could not be written\n", st->qn);
    for (size_t i = 0; i < st->qn; i++)
        store_inspection_clear(&st->q[i]);
    free(st->q);
    for (int i = 0; i < st->nr; i++)
        conn_close(&st->r[i]);
    free(st->r);
    if (st->w.db) {
        /* Leave a compact WAL behind for backups and the next start. */
        sqlite3_wal_checkpoint_v2(st->w.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    }
    conn_close(&st->w);
    pthread_mutex_destroy(&st->wmu);
    pthread_mutex_destroy(&st->rmu);
    pthread_cond_destroy(&st->rcv);
    pthread_mutex_destroy(&st->qmu);
    pthread_cond_destroy(&st->qcv);
    pthread_mutex_destroy(&st->flush_mu);
    for (int i = 0; i < BLOB_LOCKS; i++)
        pthread_mutex_destroy(&st->blob_mu[i]);
    free(st->dir);
    free(st);
}

int store_schema_version(store_t *st)
{
    conn_t *c = racquire(st);
    int v = user_version(c->db);
    rrelease(st, c);
    return v;
}

const char *store_data_dir(store_t *st) { return st->dir; }

store_status store_ping(store_t *st)
{
    static const char SQL[] = "SELECT 1";
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        int rc = step(s);
        r = rc == SQLITE_ROW ? STORE_OK : map_rc(c->db, rc);
        done(s);
    }
    rrelease(st, c);
    return r;
}

static size_t clamp_limit(size_t limit)
{
    if (limit == 0)
        return STORE_LIST_DEFAULT;
    return limit > STORE_LIST_MAX ? STORE_LIST_MAX : limit;
}

/* --------------------------------------------------------------- products */

#define PRODUCT_COLS                                                                   \
    "p.id, p.name, p.settings_json, p.active_version, p.created_at, p.updated_at, "    \
    "(SELECT m.threshold FROM models m WHERE m.product = p.id AND "                    \
    "m.version = p.active_version), "                                                  \
    "(SELECT count(*) FROM images i WHERE i.product = p.id)"

static void product_from_row(sqlite3_stmt *s, store_product_t *p)
{
    memset(p, 0, sizeof *p);
    col_copy(s, 0, p->id, sizeof p->id);
    p->name = col_dup(s, 1, "");
    p->settings_json = col_dup(s, 2, "{}");
    p->active_version = sqlite3_column_int64(s, 3);
    p->created_at = sqlite3_column_int64(s, 4);
    p->updated_at = sqlite3_column_int64(s, 5);
    p->has_threshold = sqlite3_column_type(s, 6) != SQLITE_NULL;
    p->threshold = p->has_threshold ? sqlite3_column_double(s, 6) : NAN;
    p->image_count = sqlite3_column_int64(s, 7);
}

void store_product_clear(store_product_t *p)
{
    if (!p)
        return;
    free(p->name);
    free(p->settings_json);
    memset(p, 0, sizeof *p);
}

void store_products_free(store_product_t *arr, size_t n)
{
    if (!arr)
        return;
    for (size_t i = 0; i < n; i++)
        store_product_clear(&arr[i]);
    free(arr);
}

store_status store_product_get(store_t *st, const char *id, store_product_t *out)
{
    static const char SQL[] = "SELECT " PRODUCT_COLS " FROM products p WHERE p.id = ?1";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!store_valid_product_id(id))
        return STORE_ERR_INVALID;
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
        int rc = step(s);
        if (rc == SQLITE_ROW) {
            product_from_row(s, out);
            r = STORE_OK;
        } else {
            r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : map_rc(c->db, rc);
        }
        done(s);
    }
    rrelease(st, c);
    return r;
}

store_status store_product_create(store_t *st, const char *id, const char *name,
                                  const char *settings_json, store_product_t *out)
{
    static const char SQL[] = "INSERT INTO products(id, name, settings_json, active_version, "
                              "created_at, updated_at) VALUES (?1, ?2, ?3, NULL, ?4, ?4)";
    if (out)
        memset(out, 0, sizeof *out);
    if (!store_valid_product_id(id))
        return STORE_ERR_INVALID;
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = prep(&st->w, SQL);
    if (!s) {
        wrollback(st);
        return STORE_ERR_DB;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, name ? name : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, settings_json ? settings_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, store_now_ms());
    r = run_stmt(&st->w, s);
    r = wend(st, r);
    if (r == STORE_OK && out)
        r = store_product_get(st, id, out);
    return r;
}

store_status store_product_list(store_t *st, size_t limit, const char *after,
                                store_product_t **out, size_t *n,
                                char next[STORE_PRODUCT_ID_MAX])
{
    static const char SQL[] = "SELECT " PRODUCT_COLS " FROM products p WHERE p.id > ?1 "
                              "ORDER BY p.id LIMIT ?2";
    if (!out || !n)
        return STORE_ERR_INVALID;
    *out = NULL;
    *n = 0;
    if (next)
        next[0] = '\0';
    if (after && *after && !store_valid_product_id(after))
        return STORE_ERR_INVALID;
    limit = clamp_limit(limit);
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, after ? after : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)limit + 1);
        store_product_t *arr = xcalloc(limit + 1, sizeof *arr);
        size_t k = 0;
        int rc;
        while ((rc = step(s)) == SQLITE_ROW)
            product_from_row(s, &arr[k++]);
        if (rc != SQLITE_DONE) {
            r = map_rc(c->db, rc);
            store_products_free(arr, k);
        } else {
            if (k > limit) {
                store_product_clear(&arr[limit]);
                k = limit;
                if (next)
                    copy_str(next, STORE_PRODUCT_ID_MAX, arr[k - 1].id);
            }
            *out = arr;
            *n = k;
            r = STORE_OK;
        }
        done(s);
    }
    rrelease(st, c);
    return r;
}

store_status store_product_patch(store_t *st, const char *id, const char *name,
                                 const char *settings_json, store_product_t *out)
{
    static const char SQL[] = "UPDATE products SET name = coalesce(?2, name), "
                              "settings_json = coalesce(?3, settings_json), updated_at = ?4 "
                              "WHERE id = ?1";
    if (out)
        memset(out, 0, sizeof *out);
    if (!store_valid_product_id(id))
        return STORE_ERR_INVALID;
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = prep(&st->w, SQL);
    if (!s) {
        wrollback(st);
        return STORE_ERR_DB;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    bind_text_or_null(s, 2, name);
    bind_text_or_null(s, 3, settings_json);
    sqlite3_bind_int64(s, 4, store_now_ms());
    r = run_stmt(&st->w, s);
    if (r == STORE_OK && sqlite3_changes(st->w.db) == 0)
        r = STORE_ERR_NOT_FOUND;
    r = wend(st, r);
    if (r == STORE_OK && out)
        r = store_product_get(st, id, out);
    return r;
}

/* 1 if a row exists for the single-parameter query on the writer, 0 if not,
 * -1 on error. Call inside a write transaction. */
static int w_exists(store_t *st, const char *sql, const char *arg)
{
    sqlite3_stmt *s = prep(&st->w, sql);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, arg, -1, SQLITE_TRANSIENT);
    int rc = step(s);
    int r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
    if (r < 0)
        map_rc(st->w.db, rc);
    done(s);
    return r;
}

static const char SQL_PRODUCT_EXISTS[] = "SELECT 1 FROM products WHERE id = ?1";
static const char SQL_ACTIVE_JOB[] =
    "SELECT 1 FROM jobs WHERE product = ?1 AND state IN ('queued','running')";

store_status store_product_delete(store_t *st, const char *id)
{
    static const char SQL[] = "DELETE FROM products WHERE id = ?1";
    if (!store_valid_product_id(id))
        return STORE_ERR_INVALID;
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    int e = w_exists(st, SQL_PRODUCT_EXISTS, id);
    if (e <= 0) {
        wrollback(st);
        return e == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    }
    e = w_exists(st, SQL_ACTIVE_JOB, id);
    if (e != 0) {
        wrollback(st);
        return e > 0 ? STORE_ERR_CONFLICT : STORE_ERR_DB;
    }
    sqlite3_stmt *s = prep(&st->w, SQL);
    if (!s) {
        wrollback(st);
        return STORE_ERR_DB;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    r = run_stmt(&st->w, s);
    r = wend(st, r);
    if (r == STORE_OK) {
        /* Rows are gone (cascade); now the files. The id was validated, so
         * the path stays inside <data_dir>/images. */
        char path[4096];
        snprintf(path, sizeof path, "%s/images/%s", st->dir, id);
        rm_tree(path);
    }
    return r;
}

/* ----------------------------------------------------------------- images */

void store_images_free(store_image_t *arr, size_t n)
{
    if (!arr)
        return;
    for (size_t i = 0; i < n; i++)
        free(arr[i].path);
    free(arr);
}

store_status store_image_path(store_t *st, const char *product, const char *sha256,
                              const char *ext, char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return STORE_ERR_INVALID;
    buf[0] = '\0';
    if (!store_valid_product_id(product) || !store_valid_sha256(sha256) || !valid_ext(ext))
        return STORE_ERR_INVALID;
    int n = snprintf(buf, buflen, "%s/images/%s/%.2s/%s.%s", st->dir, product, sha256, sha256,
                     ext);
    if (n < 0 || (size_t)n >= buflen) {
        buf[0] = '\0';
        return STORE_ERR_INVALID;
    }
    return STORE_OK;
}

static void image_from_row(sqlite3_stmt *s, store_image_t *im)
{
    memset(im, 0, sizeof *im);
    col_copy(s, 0, im->sha256, sizeof im->sha256);
    col_copy(s, 1, im->ext, sizeof im->ext);
    im->width = sqlite3_column_int(s, 2);
    im->height = sqlite3_column_int(s, 3);
    im->bytes = sqlite3_column_int64(s, 4);
    im->created_at = sqlite3_column_int64(s, 5);
}

#define IMAGE_COLS "sha256, ext, width, height, bytes, created_at"

store_status store_image_get(store_t *st, const char *product, const char *sha256,
                             store_image_t *out)
{
    static const char SQL[] =
        "SELECT " IMAGE_COLS " FROM images WHERE product = ?1 AND sha256 = ?2";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!store_valid_product_id(product) || !store_valid_sha256(sha256))
        return STORE_ERR_INVALID;
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, sha256, -1, SQLITE_TRANSIENT);
        int rc = step(s);
        if (rc == SQLITE_ROW) {
            image_from_row(s, out);
            r = STORE_OK;
        } else {
            r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : map_rc(c->db, rc);
        }
        done(s);
    }
    rrelease(st, c);
    return r;
}

static int product_exists_r(store_t *st, const char *id)
{
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL_PRODUCT_EXISTS);
    int r = -1;
    if (s) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
        int rc = step(s);
        r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
        if (r < 0)
            map_rc(c->db, rc);
        done(s);
    }
    rrelease(st, c);
    return r;
}

static pthread_mutex_t *blob_lock(store_t *st, const char *sha256)
{
    unsigned h = 0;
    for (int i = 0; i < 4; i++)
        h = h * 16 + (unsigned)(sha256[i] <= '9' ? sha256[i] - '0' : sha256[i] - 'a' + 10);
    return &st->blob_mu[h % BLOB_LOCKS];
}

store_status store_image_put(store_t *st, const char *product, const void *data, size_t len,
                             int width, int height, const char *ext, store_image_t *out,
                             int *created)
{
    static const char SQL[] = "INSERT OR IGNORE INTO images(product, sha256, ext, width, "
                              "height, bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    if (out)
        memset(out, 0, sizeof *out);
    if (created)
        *created = 0;
    if (!store_valid_product_id(product) || !valid_ext(ext) || (!data && len > 0) ||
        width <= 0 || height <= 0)
        return STORE_ERR_INVALID;
    char sha[SHA256_HEX_LEN];
    sha256_hex_of(data, len, sha);

    pthread_mutex_t *mu = blob_lock(st, sha);
    pthread_mutex_lock(mu);
    store_image_t cur;
    store_status r = store_image_get(st, product, sha, &cur);
    if (r == STORE_OK) {
        pthread_mutex_unlock(mu);
        if (out)
            *out = cur;
        return STORE_OK;
    }
    if (r != STORE_ERR_NOT_FOUND) {
        pthread_mutex_unlock(mu);
        return r;
    }
    int pe = product_exists_r(st, product);
    if (pe <= 0) {
        pthread_mutex_unlock(mu);
        return pe == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    }

    char path[4096], dir[4096];
    r = store_image_path(st, product, sha, ext, path, sizeof path);
    if (r == STORE_OK) {
        snprintf(dir, sizeof dir, "%s/images/%s/%.2s", st->dir, product, sha);
        r = write_durable(dir, path, data, len);
    }
    if (r != STORE_OK) {
        pthread_mutex_unlock(mu);
        return r;
    }

    /* The file is durable; only now does the row point at it. */
    int64_t now = store_now_ms();
    int changed = 0;
    r = wbegin(st);
    if (r == STORE_OK) {
        sqlite3_stmt *s = prep(&st->w, SQL);
        if (!s) {
            r = STORE_ERR_DB;
        } else {
            sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(s, 2, sha, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(s, 3, ext, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(s, 4, width);
            sqlite3_bind_int(s, 5, height);
            sqlite3_bind_int64(s, 6, (sqlite3_int64)len);
            sqlite3_bind_int64(s, 7, now);
            r = run_stmt(&st->w, s);
            changed = sqlite3_changes(st->w.db) > 0;
        }
        r = wend(st, r);
    }
    if (r != STORE_OK) {
        /* The product vanished or the insert failed: do not leave an orphan. */
        unlink(path);
        pthread_mutex_unlock(mu);
        return r;
    }
    pthread_mutex_unlock(mu);
    if (created)
        *created = changed;
    if (out) {
        memset(out, 0, sizeof *out);
        copy_str(out->sha256, sizeof out->sha256, sha);
        copy_str(out->ext, sizeof out->ext, ext);
        out->width = width;
        out->height = height;
        out->bytes = (int64_t)len;
        out->created_at = now;
    }
    return STORE_OK;
}

store_status store_image_list(store_t *st, const char *product, size_t limit,
                              const char *after, store_image_t **out, size_t *n,
                              char next[STORE_SHA256_HEX])
{
    static const char SQL[] = "SELECT " IMAGE_COLS " FROM images WHERE product = ?1 AND "
                              "sha256 > ?2 ORDER BY sha256 LIMIT ?3";
    if (!out || !n)
        return STORE_ERR_INVALID;
    *out = NULL;
    *n = 0;
    if (next)
        next[0] = '\0';
    if (!store_valid_product_id(product) || (after && *after && !store_valid_sha256(after)))
        return STORE_ERR_INVALID;
    int pe = product_exists_r(st, product);
    if (pe <= 0)
        return pe == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    limit = clamp_limit(limit);
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, after ? after : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)limit + 1);
        store_image_t *arr = xcalloc(limit + 1, sizeof *arr);
        size_t k = 0;
        int rc;
        while ((rc = step(s)) == SQLITE_ROW)
            image_from_row(s, &arr[k++]);
        if (rc != SQLITE_DONE) {
            r = map_rc(c->db, rc);
            store_images_free(arr, k);
        } else {
            if (k > limit) {
                k = limit;
                if (next)
                    copy_str(next, STORE_SHA256_HEX, arr[k - 1].sha256);
            }
            *out = arr;
            *n = k;
            r = STORE_OK;
        }
        done(s);
    }
    rrelease(st, c);
    return r;
}

store_status store_image_list_all(store_t *st, const char *product, store_image_t **out,
                                  size_t *n)
{
    static const char SQL[] =
        "SELECT " IMAGE_COLS " FROM images WHERE product = ?1 ORDER BY created_at, sha256";
    if (!out || !n)
        return STORE_ERR_INVALID;
    *out = NULL;
    *n = 0;
    if (!store_valid_product_id(product))
        return STORE_ERR_INVALID;
    int pe = product_exists_r(st, product);
    if (pe <= 0)
        return pe == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
        size_t cap = 64, k = 0;
        store_image_t *arr = xcalloc(cap, sizeof *arr);
        int rc;
        while ((rc = step(s)) == SQLITE_ROW) {
            if (k == cap) {
                cap *= 2;
                arr = xrealloc(arr, cap * sizeof *arr);
            }
            image_from_row(s, &arr[k]);
            char path[4096];
            if (store_image_path(st, product, arr[k].sha256, arr[k].ext, path, sizeof path) ==
                STORE_OK)
                arr[k].path = xstrdup(path);
            k++;
        }
        if (rc != SQLITE_DONE) {
            r = map_rc(c->db, rc);
            store_images_free(arr, k);
        } else {
            *out = arr;
            *n = k;
            r = STORE_OK;
        }
        done(s);
    }
    rrelease(st, c);
    return r;
}

store_status store_image_delete(store_t *st, const char *product, const char *sha256)
{
    static const char SQL_EXT[] = "SELECT ext FROM images WHERE product = ?1 AND sha256 = ?2";
    static const char SQL_DEL[] = "DELETE FROM images WHERE product = ?1 AND sha256 = ?2";
    if (!store_valid_product_id(product) || !store_valid_sha256(sha256))
        return STORE_ERR_INVALID;
    pthread_mutex_t *mu = blob_lock(st, sha256);
    pthread_mutex_lock(mu);
    char ext[STORE_EXT_MAX] = "";
    store_status r = wbegin(st);
    if (r != STORE_OK) {
        pthread_mutex_unlock(mu);
        return r;
    }
    sqlite3_stmt *s = prep(&st->w, SQL_EXT);
    if (!s) {
        r = STORE_ERR_DB;
    } else {
        sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, sha256, -1, SQLITE_TRANSIENT);
        int rc = step(s);
        if (rc == SQLITE_ROW)
            col_copy(s, 0, ext, sizeof ext);
        else
            r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : map_rc(st->w.db, rc);
        done(s);
    }
    if (r == STORE_OK) {
        s = prep(&st->w, SQL_DEL);
        if (!s) {
            r = STORE_ERR_DB;
        } else {
            sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(s, 2, sha256, -1, SQLITE_TRANSIENT);
            r = run_stmt(&st->w, s);
        }
    }
    r = wend(st, r);
    if (r == STORE_OK) {
        char path[4096];
        /* Files are per product, so once the row is gone nothing else refers
         * to this one. */
        if (store_image_path(st, product, sha256, ext, path, sizeof path) == STORE_OK)
            unlink(path);
    }
    pthread_mutex_unlock(mu);
    return r;
}

static store_status count_query(store_t *st, const char *sql, const char *arg, int64_t *n)
{
    if (!n)
        return STORE_ERR_INVALID;
    *n = 0;
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, sql);
    store_status r = STORE_ERR_DB;
    if (s) {
        if (arg)
            sqlite3_bind_text(s, 1, arg, -1, SQLITE_TRANSIENT);
        int rc = step(s);
        if (rc == SQLITE_ROW) {
            *n = sqlite3_column_int64(s, 0);
            r = STORE_OK;
        } else {
            r = map_rc(c->db, rc);
        }
        done(s);
    }
    rrelease(st, c);
    return r;
}

store_status store_image_count(store_t *st, const char *product, int64_t *n)
{
    static const char SQL[] = "SELECT count(*) FROM images WHERE product = ?1";
    if (n)
        *n = 0;
    if (!store_valid_product_id(product))
        return STORE_ERR_INVALID;
    int pe = product_exists_r(st, product);
    if (pe <= 0)
        return pe == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    return count_query(st, SQL, product, n);
}

store_status store_image_count_all(store_t *st, int64_t *n)
{
    static const char SQL[] = "SELECT count(*) FROM images";
    return count_query(st, SQL, NULL, n);
}

/* ------------------------------------------------------------------- jobs */

static const char *const job_state_names[] = {"queued", "running", "succeeded", "failed",
                                              "canceled"};

const char *store_job_state_name(store_job_state s)
{
    if ((int)s < 0 || (int)s > STORE_JOB_CANCELED)
        return NULL;
    return job_state_names[s];
}

int store_job_state_parse(const char *name, store_job_state *s)
{
    if (!name)
        return -1;
    for (int i = 0; i <= STORE_JOB_CANCELED; i++) {
        if (strcmp(name, job_state_names[i]) == 0) {
            if (s)
                *s = (store_job_state)i;
            return 0;
        }
    }
    return -1;
}

#define JOB_COLS                                                                     \
    "id, product, state, params_json, phase, epoch, epochs, loss, fraction, "        \
    "model_version, error, cancel_requested, created_at, started_at, finished_at"

static void job_from_row(sqlite3_stmt *s, store_job_t *j)
{
    memset(j, 0, sizeof *j);
    col_copy(s, 0, j->id, sizeof j->id);
    col_copy(s, 1, j->product, sizeof j->product);
    store_job_state_parse((const char *)sqlite3_column_text(s, 2), &j->state);
    j->params_json = col_dup(s, 3, "{}");
    j->phase = col_dup(s, 4, "");
    j->epoch = sqlite3_column_int(s, 5);
    j->epochs = sqlite3_column_int(s, 6);
    j->loss = col_real_or_nan(s, 7);
    j->fraction = sqlite3_column_double(s, 8);
    j->model_version = sqlite3_column_int64(s, 9);
    j->error = col_dup(s, 10, NULL);
    j->cancel_requested = sqlite3_column_int(s, 11);
    j->created_at = sqlite3_column_int64(s, 12);
    j->started_at = sqlite3_column_int64(s, 13);
    j->finished_at = sqlite3_column_int64(s, 14);
}

void store_job_clear(store_job_t *j)
{
    if (!j)
        return;
    free(j->params_json);
    free(j->phase);
    free(j->error);
    memset(j, 0, sizeof *j);
}

void store_jobs_free(store_job_t *arr, size_t n)
{
    if (!arr)
        return;
    for (size_t i = 0; i < n; i++)
        store_job_clear(&arr[i]);
    free(arr);
}

static const char SQL_JOB_GET[] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1";

/* Reads a job on the given connection (reader or the writer in a txn). */
static store_status job_get_on(conn_t *c, const char *id, store_job_t *out)
{
    sqlite3_stmt *s = prep(c, SQL_JOB_GET);
    if (!s)
        return STORE_ERR_DB;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    int rc = step(s);
    store_status r;
    if (rc == SQLITE_ROW) {
        job_from_row(s, out);
        r = STORE_OK;
    } else {
        r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : map_rc(c->db, rc);
    }
    done(s);
    return r;
}

store_status store_job_get(store_t *st, const char *id, store_job_t *out)
{
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    conn_t *c = racquire(st);
    store_status r = job_get_on(c, id, out);
    rrelease(st, c);
    return r;
}

store_status store_job_create(store_t *st, const char *product, const char *params_json,
                              store_job_t *out)
{
    static const char SQL[] = "INSERT INTO jobs(id, product, state, params_json, created_at) "
                              "VALUES (?1, ?2, 'queued', ?3, ?4)";
    if (out)
        memset(out, 0, sizeof *out);
    if (!store_valid_product_id(product))
        return STORE_ERR_INVALID;
    char id[STORE_ID_LEN];
    if (store_random_id(id) != 0)
        return STORE_ERR_IO;
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    int e = w_exists(st, SQL_PRODUCT_EXISTS, product);
    if (e <= 0) {
        wrollback(st);
        return e == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    }
    e = w_exists(st, SQL_ACTIVE_JOB, product);
    if (e != 0) {
        wrollback(st);
        return e > 0 ? STORE_ERR_CONFLICT : STORE_ERR_DB;
    }
    sqlite3_stmt *s = prep(&st->w, SQL);
    if (!s) {
        wrollback(st);
        return STORE_ERR_DB;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, product, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, params_json ? params_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, store_now_ms());
    r = run_stmt(&st->w, s);
    if (r == STORE_ERR_EXISTS) /* the partial unique index: one active job */
        r = STORE_ERR_CONFLICT;
    if (r == STORE_OK && out)
        r = job_get_on(&st->w, id, out);
    r = wend(st, r);
    if (r != STORE_OK && out)
        store_job_clear(out);
    return r;
}

store_status store_job_list(store_t *st, const char *product, int state_filter, size_t limit,
                            store_job_t **out, size_t *n)
{
    static const char SQL[] = "SELECT " JOB_COLS " FROM jobs WHERE "
                              "(?1 IS NULL OR product = ?1) AND (?2 IS NULL OR state = ?2) "
                              "ORDER BY created_at DESC, rowid DESC LIMIT ?3";
    if (!out || !n)
        return STORE_ERR_INVALID;
    *out = NULL;
    *n = 0;
    if (product && !store_valid_product_id(product))
        return STORE_ERR_INVALID;
    const char *state = NULL;
    if (state_filter >= 0) {
        state = store_job_state_name((store_job_state)state_filter);
        if (!state)
            return STORE_ERR_INVALID;
    }
    limit = clamp_limit(limit);
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        bind_text_or_null(s, 1, product);
        bind_text_or_null(s, 2, state);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)limit);
        store_job_t *arr = xcalloc(limit, sizeof *arr);
        size_t k = 0;
        int rc;
        while ((rc = step(s)) == SQLITE_ROW)
            job_from_row(s, &arr[k++]);
        if (rc != SQLITE_DONE) {
            r = map_rc(c->db, rc);
            store_jobs_free(arr, k);
        } else {
            *out = arr;
            *n = k;
            r = STORE_OK;
        }
        done(s);
    }
    rrelease(st, c);
    return r;
}

store_status store_job_claim(store_t *st, store_job_t *out)
{
    static const char SQL_PICK[] =
        "SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_at, rowid LIMIT 1";
    static const char SQL_RUN[] = "UPDATE jobs SET state = 'running', started_at = ?2, "
                                  "finished_at = NULL WHERE id = ?1 AND state = 'queued'";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    char id[STORE_ID_LEN] = "";
    sqlite3_stmt *s = prep(&st->w, SQL_PICK);
    if (!s) {
        r = STORE_ERR_DB;
    } else {
        int rc = step(s);
        if (rc == SQLITE_ROW)
            col_copy(s, 0, id, sizeof id);
        else
            r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : map_rc(st->w.db, rc);
        done(s);
    }
    if (r == STORE_OK) {
        s = prep(&st->w, SQL_RUN);
        if (!s) {
            r = STORE_ERR_DB;
        } else {
            sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(s, 2, store_now_ms());
            r = run_stmt(&st->w, s);
        }
    }
    if (r == STORE_OK)
        r = job_get_on(&st->w, id, out);
    r = wend(st, r);
    if (r != STORE_OK)
        store_job_clear(out);
    return r;
}

/* STORE_ERR_NOT_FOUND if the job does not exist, else STORE_ERR_CONFLICT:
 * the explanation when a state-guarded UPDATE changed nothing. */
static store_status job_missing_or_conflict(store_t *st, const char *id)
{
    static const char SQL[] = "SELECT 1 FROM jobs WHERE id = ?1";
    int e = w_exists(st, SQL, id);
    return e == 0 ? STORE_ERR_NOT_FOUND : e > 0 ? STORE_ERR_CONFLICT : STORE_ERR_DB;
}

store_status store_job_progress(store_t *st, const char *id, const char *phase, int epoch,
                                int epochs, double loss, double fraction, int *cancel_requested)
{
    static const char SQL[] = "UPDATE jobs SET phase = coalesce(?2, phase), epoch = ?3, "
                              "epochs = ?4, loss = ?5, fraction = ?6 "
                              "WHERE id = ?1 AND state = 'running' RETURNING cancel_requested";
    if (cancel_requested)
        *cancel_requested = 0;
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    if (!isfinite(fraction))
        fraction = 0;
    fraction = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = prep(&st->w, SQL);
    if (!s) {
        wrollback(st);
        return STORE_ERR_DB;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    bind_text_or_null(s, 2, phase);
    sqlite3_bind_int(s, 3, epoch);
    sqlite3_bind_int(s, 4, epochs);
    bind_real_or_null(s, 5, loss);
    sqlite3_bind_double(s, 6, fraction);
    int rc = step(s);
    if (rc == SQLITE_ROW) {
        if (cancel_requested)
            *cancel_requested = sqlite3_column_int(s, 0);
        rc = step(s); /* finish the statement */
        r = rc == SQLITE_DONE ? STORE_OK : map_rc(st->w.db, rc);
        done(s);
    } else {
        r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : map_rc(st->w.db, rc);
        done(s);
        if (r == STORE_ERR_NOT_FOUND)
            r = job_missing_or_conflict(st, id);
    }
    return wend(st, r);
}

static const char SQL_JOB_FINISH[] =
    "UPDATE jobs SET state = ?2, error = ?3, model_version = ?4, finished_at = ?5, "
    "fraction = CASE WHEN ?2 = 'succeeded' THEN 1 ELSE fraction END "
    "WHERE id = ?1 AND state IN ('queued','running')";

static store_status job_finish_w(store_t *st, const char *id, store_job_state state,
                                 const char *error, int64_t model_version)
{
    sqlite3_stmt *s = prep(&st->w, SQL_JOB_FINISH);
    if (!s)
        return STORE_ERR_DB;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, store_job_state_name(state), -1, SQLITE_STATIC);
    bind_text_or_null(s, 3, error);
    if (model_version > 0)
        sqlite3_bind_int64(s, 4, model_version);
    else
        sqlite3_bind_null(s, 4);
    sqlite3_bind_int64(s, 5, store_now_ms());
    store_status r = run_stmt(&st->w, s);
    if (r == STORE_OK && sqlite3_changes(st->w.db) == 0)
        r = job_missing_or_conflict(st, id);
    return r;
}

store_status store_job_finish(store_t *st, const char *id, store_job_state state,
                              const char *error, int64_t model_version)
{
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    if (state != STORE_JOB_SUCCEEDED && state != STORE_JOB_FAILED &&
        state != STORE_JOB_CANCELED)
        return STORE_ERR_INVALID;
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    r = job_finish_w(st, id, state, error, model_version);
    return wend(st, r);
}

store_status store_job_cancel(store_t *st, const char *id, store_job_t *out)
{
    static const char SQL_Q[] = "UPDATE jobs SET state = 'canceled', cancel_requested = 1, "
                                "finished_at = ?2 WHERE id = ?1 AND state = 'queued'";
    static const char SQL_R[] = "UPDATE jobs SET cancel_requested = 1 "
                                "WHERE id = ?1 AND state = 'running'";
    if (out)
        memset(out, 0, sizeof *out);
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = prep(&st->w, SQL_Q);
    if (!s) {
        wrollback(st);
        return STORE_ERR_DB;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, store_now_ms());
    r = run_stmt(&st->w, s);
    if (r == STORE_OK && sqlite3_changes(st->w.db) == 0) {
        s = prep(&st->w, SQL_R);
        if (!s) {
            r = STORE_ERR_DB;
        } else {
            sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
            r = run_stmt(&st->w, s);
            if (r == STORE_OK && sqlite3_changes(st->w.db) == 0)
                r = job_missing_or_conflict(st, id);
        }
    }
    if (r == STORE_OK && out)
        r = job_get_on(&st->w, id, out);
    r = wend(st, r);
    if (r != STORE_OK && out)
        store_job_clear(out);
    return r;
}

store_status store_jobs_recover(store_t *st, int requeue, int *n)
{
    static const char SQL_CANCELED[] =
        "UPDATE jobs SET state = 'canceled', finished_at = ?1 "
        "WHERE state = 'running' AND cancel_requested = 1";
    static const char SQL_REQUEUE[] =
        "UPDATE jobs SET state = 'queued', started_at = NULL, phase = '', epoch = 0, "
        "loss = NULL, fraction = 0 WHERE state = 'running'";
    static const char SQL_FAIL[] =
        "UPDATE jobs SET state = 'failed', error = 'interrupted by restart', "
        "finished_at = ?1 WHERE state = 'running'";
    if (n)
        *n = 0;
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    int total = 0;
    sqlite3_stmt *s = prep(&st->w, SQL_CANCELED);
    if (!s) {
        r = STORE_ERR_DB;
    } else {
        sqlite3_bind_int64(s, 1, store_now_ms());
        r = run_stmt(&st->w, s);
        total += sqlite3_changes(st->w.db);
    }
    if (r == STORE_OK) {
        s = prep(&st->w, requeue ? SQL_REQUEUE : SQL_FAIL);
        if (!s) {
            r = STORE_ERR_DB;
        } else {
            if (!requeue)
                sqlite3_bind_int64(s, 1, store_now_ms());
            r = run_stmt(&st->w, s);
            total += sqlite3_changes(st->w.db);
        }
    }
    r = wend(st, r);
    if (r == STORE_OK && n)
        *n = total;
    return r;
}

store_status store_job_counts(store_t *st, int64_t counts[5])
{
    static const char SQL[] = "SELECT state, count(*) FROM jobs GROUP BY state";
    if (!counts)
        return STORE_ERR_INVALID;
    for (int i = 0; i < 5; i++)
        counts[i] = 0;
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        int rc;
        while ((rc = step(s)) == SQLITE_ROW) {
            store_job_state js;
            if (store_job_state_parse((const char *)sqlite3_column_text(s, 0), &js) == 0)
                counts[js] = sqlite3_column_int64(s, 1);
        }
        r = rc == SQLITE_DONE ? STORE_OK : map_rc(c->db, rc);
        done(s);
    }
    rrelease(st, c);
    return r;
}

/* ----------------------------------------------------------------- models */

void store_model_clear(store_model_t *m)
{
    if (!m)
        return;
    free(m->figures_json);
    free(m->blob);
    memset(m, 0, sizeof *m);
}

void store_models_free(store_model_t *arr, size_t n)
{
    if (!arr)
        return;
    for (size_t i = 0; i < n; i++)
        store_model_clear(&arr[i]);
    free(arr);
}

#define MODEL_COLS                                                                 \
    "m.product, m.version, m.created_at, m.job_id, m.threshold, m.backbone_sha256, " \
    "m.figures_json, coalesce(p.active_version = m.version, 0)"

static void model_from_row(sqlite3_stmt *s, store_model_t *m)
{
    memset(m, 0, sizeof *m);
    col_copy(s, 0, m->product, sizeof m->product);
    m->version = sqlite3_column_int64(s, 1);
    m->created_at = sqlite3_column_int64(s, 2);
    col_copy(s, 3, m->job_id, sizeof m->job_id);
    m->threshold = sqlite3_column_double(s, 4);
    col_copy(s, 5, m->backbone_sha256, sizeof m->backbone_sha256);
    m->figures_json = col_dup(s, 6, "{}");
    m->active = sqlite3_column_int(s, 7) != 0;
}

store_status store_model_insert(store_t *st, const store_model_new *m, int64_t *version)
{
    static const char SQL_JOB[] = "SELECT product, state, cancel_requested FROM jobs WHERE id = ?1";
    static const char SQL_NEXT[] =
        "SELECT coalesce(max(version), 0) + 1 FROM models WHERE product = ?1";
    static const char SQL_INS[] =
        "INSERT INTO models(product, version, created_at, job_id, threshold, backbone_sha256, "
        "blob, figures_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    static const char SQL_ACT[] =
        "UPDATE products SET active_version = ?2, updated_at = ?3 WHERE id = ?1";
    if (version)
        *version = 0;
    if (!m || !store_valid_product_id(m->product) || !m->blob || m->blob_len == 0 ||
        !isfinite(m->threshold) || (m->job_id && !store_valid_id(m->job_id)) ||
        (m->backbone_sha256 && *m->backbone_sha256 && !store_valid_sha256(m->backbone_sha256)) ||
        m->blob_len > (size_t)INT32_MAX)
        return STORE_ERR_INVALID;
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    int e = w_exists(st, SQL_PRODUCT_EXISTS, m->product);
    if (e <= 0) {
        wrollback(st);
        return e == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    }
    sqlite3_stmt *s;
    if (m->job_id) {
        s = prep(&st->w, SQL_JOB);
        if (!s) {
            wrollback(st);
            return STORE_ERR_DB;
        }
        sqlite3_bind_text(s, 1, m->job_id, -1, SQLITE_TRANSIENT);
        int rc = step(s);
        if (rc == SQLITE_ROW) {
            const char *prod = (const char *)sqlite3_column_text(s, 0);
            const char *state = (const char *)sqlite3_column_text(s, 1);
            if (!prod || strcmp(prod, m->product) != 0)
                r = STORE_ERR_INVALID;
            else if (sqlite3_column_int(s, 2))
                r = STORE_ERR_CANCELED;
            else if (!state || strcmp(state, "running") != 0)
                r = STORE_ERR_CONFLICT;
        } else {
            r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : map_rc(st->w.db, rc);
        }
        done(s);
        if (r != STORE_OK) {
            wrollback(st);
            return r;
        }
    }
    int64_t v = 0;
    s = prep(&st->w, SQL_NEXT);
    if (!s) {
        wrollback(st);
        return STORE_ERR_DB;
    }
    sqlite3_bind_text(s, 1, m->product, -1, SQLITE_TRANSIENT);
    int rc = step(s);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    else
        r = map_rc(st->w.db, rc);
    done(s);
    int64_t now = store_now_ms();
    if (r == STORE_OK) {
        s = prep(&st->w, SQL_INS);
        if (!s) {
            r = STORE_ERR_DB;
        } else {
            sqlite3_bind_text(s, 1, m->product, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(s, 2, v);
            sqlite3_bind_int64(s, 3, now);
            bind_text_or_null(s, 4, m->job_id);
            sqlite3_bind_double(s, 5, m->threshold);
            bind_text_or_null(s, 6, (m->backbone_sha256 && *m->backbone_sha256)
                                        ? m->backbone_sha256 : NULL);
            sqlite3_bind_blob64(s, 7, m->blob, (sqlite3_uint64)m->blob_len, SQLITE_STATIC);
            sqlite3_bind_text(s, 8, m->figures_json ? m->figures_json : "{}", -1,
                              SQLITE_TRANSIENT);
            r = run_stmt(&st->w, s);
        }
    }
    if (r == STORE_OK && m->activate) {
        s = prep(&st->w, SQL_ACT);
        if (!s) {
            r = STORE_ERR_DB;
        } else {
            sqlite3_bind_text(s, 1, m->product, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(s, 2, v);
            sqlite3_bind_int64(s, 3, now);
            r = run_stmt(&st->w, s);
        }
    }
    if (r == STORE_OK && m->job_id)
        r = job_finish_w(st, m->job_id, STORE_JOB_SUCCEEDED, NULL, v);
    r = wend(st, r);
    if (r == STORE_OK && version)
        *version = v;
    return r;
}

store_status store_model_get(store_t *st, const char *product, int64_t version,
                             store_model_t *out)
{
    static const char SQL[] =
        "SELECT " MODEL_COLS ", m.blob FROM models m JOIN products p ON p.id = m.product "
        "WHERE m.product = ?1 AND m.version = "
        "CASE WHEN ?2 > 0 THEN ?2 ELSE p.active_version END";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!store_valid_product_id(product) || version < 0)
        return STORE_ERR_INVALID;
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, version);
        int rc = step(s);
        if (rc == SQLITE_ROW) {
            model_from_row(s, out);
            const void *b = sqlite3_column_blob(s, 8);
            int bl = sqlite3_column_bytes(s, 8);
            out->blob = xmalloc((size_t)bl);
            if (bl > 0)
                memcpy(out->blob, b, (size_t)bl);
            out->blob_len = (size_t)bl;
            r = STORE_OK;
        } else {
            r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : map_rc(c->db, rc);
        }
        done(s);
    }
    rrelease(st, c);
    return r;
}

store_status store_model_list(store_t *st, const char *product, store_model_t **out, size_t *n)
{
    static const char SQL[] = "SELECT " MODEL_COLS " FROM models m JOIN products p ON "
                              "p.id = m.product WHERE m.product = ?1 ORDER BY m.version DESC";
    if (!out || !n)
        return STORE_ERR_INVALID;
    *out = NULL;
    *n = 0;
    if (!store_valid_product_id(product))
        return STORE_ERR_INVALID;
    int pe = product_exists_r(st, product);
    if (pe <= 0)
        return pe == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
        size_t cap = 16, k = 0;
        store_model_t *arr = xcalloc(cap, sizeof *arr);
        int rc;
        while ((rc = step(s)) == SQLITE_ROW) {
            if (k == cap) {
                cap *= 2;
                arr = xrealloc(arr, cap * sizeof *arr);
            }
            model_from_row(s, &arr[k++]);
        }
        if (rc != SQLITE_DONE) {
            r = map_rc(c->db, rc);
            store_models_free(arr, k);
        } else {
            *out = arr;
            *n = k;
            r = STORE_OK;
        }
        done(s);
    }
    rrelease(st, c);
    return r;
}

store_status store_model_activate(store_t *st, const char *product, int64_t version)
{
    static const char SQL_HAS[] = "SELECT 1 FROM models WHERE product = ?1 AND version = ?2";
    static const char SQL_ACT[] =
        "UPDATE products SET active_version = ?2, updated_at = ?3 WHERE id = ?1";
    if (!store_valid_product_id(product) || version <= 0)
        return STORE_ERR_INVALID;
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = prep(&st->w, SQL_HAS);
    if (!s) {
        wrollback(st);
        return STORE_ERR_DB;
    }
    sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, version);
    int rc = step(s);
    r = rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND
                                                        : map_rc(st->w.db, rc);
    done(s);
    if (r == STORE_OK) {
        s = prep(&st->w, SQL_ACT);
        if (!s) {
            r = STORE_ERR_DB;
        } else {
            sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(s, 2, version);
            sqlite3_bind_int64(s, 3, store_now_ms());
            r = run_stmt(&st->w, s);
        }
    }
    return wend(st, r);
}

store_status store_model_set_threshold(store_t *st, const char *product, int64_t version,
                                       double threshold)
{
    static const char SQL[] =
        "UPDATE models SET threshold = ?3 WHERE product = ?1 AND version = "
        "CASE WHEN ?2 > 0 THEN ?2 ELSE (SELECT active_version FROM products WHERE id = ?1) END";
    if (!store_valid_product_id(product) || version < 0 || !isfinite(threshold))
        return STORE_ERR_INVALID;
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = prep(&st->w, SQL);
    if (!s) {
        wrollback(st);
        return STORE_ERR_DB;
    }
    sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, version);
    sqlite3_bind_double(s, 3, threshold);
    r = run_stmt(&st->w, s);
    if (r == STORE_OK && sqlite3_changes(st->w.db) == 0)
        r = STORE_ERR_NOT_FOUND;
    return wend(st, r);
}

/* ------------------------------------------------------------ inspections */

void store_inspection_clear(store_inspection_t *r)
{
    if (!r)
        return;
    free(r->regions_json);
    free(r->timings_json);
    memset(r, 0, sizeof *r);
}

void store_inspections_free(store_inspection_t *arr, size_t n)
{
    if (!arr)
        return;
    for (size_t i = 0; i < n; i++)
        store_inspection_clear(&arr[i]);
    free(arr);
}

#define INSPECTION_COLS                                                              \
    "id, product, model_version, score, threshold, decision, map_max, regions_json, " \
    "timings_json, created_at, has_images, key_id"

static void inspection_from_row(sqlite3_stmt *s, store_inspection_t *r)
{
    memset(r, 0, sizeof *r);
    col_copy(s, 0, r->id, sizeof r->id);
    col_copy(s, 1, r->product, sizeof r->product);
    r->model_version = sqlite3_column_int64(s, 2);
    r->score = sqlite3_column_double(s, 3);
    r->threshold = sqlite3_column_double(s, 4);
    col_copy(s, 5, r->decision, sizeof r->decision);
    r->map_max = sqlite3_column_double(s, 6);
    r->regions_json = col_dup(s, 7, "[]");
    r->timings_json = col_dup(s, 8, "{}");
    r->created_at = sqlite3_column_int64(s, 9);
    r->has_images = sqlite3_column_int(s, 10);
    col_copy(s, 11, r->key_id, sizeof r->key_id);
}

static store_status inspection_check(const store_inspection_t *in)
{
    if (!store_valid_id(in->id) || !store_valid_product_id(in->product))
        return STORE_ERR_INVALID;
    if (strcmp(in->decision, "OK") != 0 && strcmp(in->decision, "NG") != 0)
        return STORE_ERR_INVALID;
    if (in->key_id[0] && !store_valid_id(in->key_id))
        return STORE_ERR_INVALID;
    return STORE_OK;
}

/* Inserts one row with the writer (inside a transaction). */
static store_status inspection_insert_w(store_t *st, const store_inspection_t *in)
{
    static const char SQL[] = "INSERT INTO inspections(" INSPECTION_COLS ") VALUES "
                              "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
    sqlite3_stmt *s = prep(&st->w, SQL);
    if (!s)
        return STORE_ERR_DB;
    int64_t created = in->created_at;
    if (created == 0)
        created = time_of_id(in->id);
    if (created == 0)
        created = store_now_ms();
    sqlite3_bind_text(s, 1, in->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, in->product, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, in->model_version);
    sqlite3_bind_double(s, 4, isfinite(in->score) ? in->score : 0.0);
    sqlite3_bind_double(s, 5, isfinite(in->threshold) ? in->threshold : 0.0);
    sqlite3_bind_text(s, 6, in->decision, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(s, 7, isfinite(in->map_max) ? in->map_max : 0.0);
    sqlite3_bind_text(s, 8, in->regions_json ? in->regions_json : "[]", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 9, in->timings_json ? in->timings_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 10, created);
    sqlite3_bind_int(s, 11, in->has_images ? 1 : 0);
    bind_text_or_null(s, 12, in->key_id[0] ? in->key_id : NULL);
    return run_stmt(&st->w, s);
}

store_status store_inspections_insert_many(store_t *st, store_inspection_t *in, size_t n)
{
    if (!in && n > 0)
        return STORE_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        if (in[i].id[0] == '\0' && store_time_id(in[i].id) != 0)
            return STORE_ERR_IO;
        store_status r = inspection_check(&in[i]);
        if (r != STORE_OK)
            return r;
    }
    if (n == 0)
        return STORE_OK;
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    for (size_t i = 0; i < n && r == STORE_OK; i++)
        r = inspection_insert_w(st, &in[i]);
    return wend(st, r);
}

store_status store_inspection_insert(store_t *st, store_inspection_t *in)
{
    if (!in)
        return STORE_ERR_INVALID;
    return store_inspections_insert_many(st, in, 1);
}

static void inspection_copy(store_inspection_t *dst, const store_inspection_t *src)
{
    *dst = *src;
    dst->regions_json = src->regions_json ? xstrdup(src->regions_json) : NULL;
    dst->timings_json = src->timings_json ? xstrdup(src->timings_json) : NULL;
}

store_status store_inspection_enqueue(store_t *st, const store_inspection_t *in)
{
    if (!in)
        return STORE_ERR_INVALID;
    store_status r = inspection_check(in);
    if (r != STORE_OK)
        return r;
    if (!st->async) {
        store_inspection_t tmp;
        inspection_copy(&tmp, in);
        r = store_inspection_insert(st, &tmp);
        store_inspection_clear(&tmp);
        return r;
    }
    pthread_mutex_lock(&st->qmu);
    if (st->qn >= QUEUE_MAX) {
        pthread_mutex_unlock(&st->qmu);
        return STORE_ERR_FULL;
    }
    if (st->qn == st->qcap) {
        st->qcap = st->qcap ? st->qcap * 2 : 64;
        st->q = xrealloc(st->q, st->qcap * sizeof *st->q);
    }
    inspection_copy(&st->q[st->qn++], in);
    if (st->qn >= QUEUE_BATCH)
        pthread_cond_signal(&st->qcv);
    pthread_mutex_unlock(&st->qmu);
    return STORE_OK;
}

store_status store_inspections_flush(store_t *st)
{
    pthread_mutex_lock(&st->flush_mu);
    pthread_mutex_lock(&st->qmu);
    store_inspection_t *batch = st->q;
    size_t n = st->qn;
    st->q = NULL;
    st->qn = st->qcap = 0;
    pthread_mutex_unlock(&st->qmu);
    if (n == 0) {
        pthread_mutex_unlock(&st->flush_mu);
        return STORE_OK;
    }
    store_status r = store_inspections_insert_many(st, batch, n);
    size_t keep = 0;
    if (r != STORE_OK) {
        /* One bad row must not poison the batch: insert row by row, drop rows
         * the database rejects as invalid, keep the rest for a later retry. */
        r = STORE_OK;
        for (size_t i = 0; i < n; i++) {
            store_status ri = store_inspection_insert(st, &batch[i]);
            if (ri == STORE_OK) {
                store_inspection_clear(&batch[i]);
            } else if (ri == STORE_ERR_EXISTS || ri == STORE_ERR_INVALID) {
                fprintf(stderr, "store: dropping inspection %s: %s\n", batch[i].id,
                        store_last_error());
                store_inspection_clear(&batch[i]);
            } else {
                batch[keep++] = batch[i];
                r = ri;
            }
        }
    } else {
        for (size_t i = 0; i < n; i++)
            store_inspection_clear(&batch[i]);
    }
    if (keep > 0) {
        pthread_mutex_lock(&st->qmu);
        size_t total = keep + st->qn;
        store_inspection_t *merged = xmalloc(total * sizeof *merged);
        memcpy(merged, batch, keep * sizeof *merged);
        if (st->qn)
            memcpy(merged + keep, st->q, st->qn * sizeof *merged);
        free(st->q);
        st->q = merged;
        st->qn = st->qcap = total;
        pthread_mutex_unlock(&st->qmu);
    }
    free(batch);
    pthread_mutex_unlock(&st->flush_mu);
    return r;
}

static void *flusher_main(void *arg)
{
    store_t *st = arg;
    pthread_mutex_lock(&st->qmu);
    while (!st->qstop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (int64_t)st->flush_ms * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        if (st->qn < QUEUE_BATCH)
            pthread_cond_timedwait(&st->qcv, &st->qmu, &ts);
        if (st->qn == 0)
            continue;
        pthread_mutex_unlock(&st->qmu);
        store_status r = store_inspections_flush(st);
        if (r != STORE_OK) {
            fprintf(stderr, "store: inspection flush failed: %s (%s)\n", store_strerror(r),
                    store_last_error());
            usleep(100000);
        }
        pthread_mutex_lock(&st->qmu);
    }
    pthread_mutex_unlock(&st->qmu);
    return NULL;
}

store_status store_inspection_get(store_t *st, const char *id, store_inspection_t *out)
{
    static const char SQL[] = "SELECT " INSPECTION_COLS " FROM inspections WHERE id = ?1";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    store_inspections_flush(st);
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
        int rc = step(s);
        if (rc == SQLITE_ROW) {
            inspection_from_row(s, out);
            r = STORE_OK;
        } else {
            r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : map_rc(c->db, rc);
        }
        done(s);
    }
    rrelease(st, c);
    return r;
}

/* One static SQL text per combination of filters, so the planner can use the
 * matching (product/decision, id) index; values are always bound. */
#define INSP_SEL "SELECT " INSPECTION_COLS " FROM inspections WHERE "
#define INSP_TAIL "(?3 IS NULL OR id < ?3) AND (?4 IS NULL OR created_at >= ?4) " \
                  "ORDER BY id DESC LIMIT ?5"
static const char *const INSP_LIST_SQL[4] = {
    INSP_SEL "(?1 IS NULL) AND (?2 IS NULL) AND " INSP_TAIL,
    INSP_SEL "product = ?1 AND (?2 IS NULL) AND " INSP_TAIL,
    INSP_SEL "(?1 IS NULL) AND decision = ?2 AND " INSP_TAIL,
    INSP_SEL "product = ?1 AND decision = ?2 AND " INSP_TAIL,
};

store_status store_inspection_list(store_t *st, const store_inspection_filter *f,
                                   store_inspection_t **out, size_t *n, char next[STORE_ID_LEN])
{
    if (!out || !n)
        return STORE_ERR_INVALID;
    *out = NULL;
    *n = 0;
    if (next)
        next[0] = '\0';
    store_inspection_filter flt;
    memset(&flt, 0, sizeof flt);
    if (f)
        flt = *f;
    if (flt.product && !store_valid_product_id(flt.product))
        return STORE_ERR_INVALID;
    if (flt.decision && strcmp(flt.decision, "OK") != 0 && strcmp(flt.decision, "NG") != 0)
        return STORE_ERR_INVALID;
    if (flt.after && *flt.after && !store_valid_id(flt.after))
        return STORE_ERR_INVALID;
    size_t limit = clamp_limit(flt.limit);
    store_inspections_flush(st);
    int which = (flt.product ? 1 : 0) | (flt.decision ? 2 : 0);
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, INSP_LIST_SQL[which]);
    store_status r = STORE_ERR_DB;
    if (s) {
        bind_text_or_null(s, 1, flt.product);
        bind_text_or_null(s, 2, flt.decision);
        bind_text_or_null(s, 3, (flt.after && *flt.after) ? flt.after : NULL);
        if (flt.since > 0)
            sqlite3_bind_int64(s, 4, flt.since);
        else
            sqlite3_bind_null(s, 4);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)limit + 1);
        store_inspection_t *arr = xcalloc(limit + 1, sizeof *arr);
        size_t k = 0;
        int rc;
        while ((rc = step(s)) == SQLITE_ROW)
            inspection_from_row(s, &arr[k++]);
        if (rc != SQLITE_DONE) {
            r = map_rc(c->db, rc);
            store_inspections_free(arr, k);
        } else {
            if (k > limit) {
                store_inspection_clear(&arr[limit]);
                k = limit;
                if (next)
                    copy_str(next, STORE_ID_LEN, arr[k - 1].id);
            }
            *out = arr;
            *n = k;
            r = STORE_OK;
        }
        done(s);
    }
    rrelease(st, c);
    return r;
}

static store_status inspection_dir(store_t *st, const char *id, char *buf, size_t buflen)
{
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    int k = snprintf(buf, buflen, "%s/inspections/%.7s", st->dir, id);
    return (k < 0 || (size_t)k >= buflen) ? STORE_ERR_INVALID : STORE_OK;
}

store_status store_inspection_file_path(store_t *st, const char *id, const char *name,
                                        char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return STORE_ERR_INVALID;
    buf[0] = '\0';
    if (!store_valid_id(id) || !valid_file_name(name))
        return STORE_ERR_INVALID;
    int k = snprintf(buf, buflen, "%s/inspections/%.7s/%s.%s", st->dir, id, id, name);
    if (k < 0 || (size_t)k >= buflen) {
        buf[0] = '\0';
        return STORE_ERR_INVALID;
    }
    return STORE_OK;
}

store_status store_inspection_file_write(store_t *st, const char *id, const char *name,
                                         const void *data, size_t len)
{
    char path[4096], dir[4096];
    if (!data && len > 0)
        return STORE_ERR_INVALID;
    store_status r = store_inspection_file_path(st, id, name, path, sizeof path);
    if (r == STORE_OK)
        r = inspection_dir(st, id, dir, sizeof dir);
    if (r != STORE_OK)
        return r;
    return write_durable(dir, path, data, len);
}

store_status store_inspection_file_read(store_t *st, const char *id, const char *name,
                                        void **data, size_t *len)
{
    if (!data || !len)
        return STORE_ERR_INVALID;
    *data = NULL;
    *len = 0;
    char path[4096];
    store_status r = store_inspection_file_path(st, id, name, path, sizeof path);
    if (r != STORE_OK)
        return r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err("open %s: %s", path, strerror(errno));
        return errno == ENOENT ? STORE_ERR_NOT_FOUND : STORE_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < 0) {
        close(fd);
        return STORE_ERR_IO;
    }
    size_t sz = (size_t)sb.st_size;
    uint8_t *buf = xmalloc(sz);
    size_t got = 0;
    while (got < sz) {
        ssize_t k = read(fd, buf + got, sz - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (got != sz) {
        free(buf);
        return STORE_ERR_IO;
    }
    *data = buf;
    *len = sz;
    return STORE_OK;
}

/* Removes every file <id>.* of one inspection. */
static void inspection_files_remove(store_t *st, const char *id)
{
    char dir[4096];
    if (inspection_dir(st, id, dir, sizeof dir) != STORE_OK)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t il = strlen(id);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, id, il) == 0 && e->d_name[il] == '.')
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
    rmdir(dir); /* only succeeds once the bucket is empty */
}

store_status store_inspections_prune(store_t *st, int64_t keep, int64_t *removed)
{
    static const char SQL_OLD[] = "SELECT id FROM inspections WHERE has_images = 1 "
                                  "ORDER BY id DESC LIMIT 500 OFFSET ?1";
    static const char SQL_CLR[] = "UPDATE inspections SET has_images = 0 WHERE id = ?1";
    if (removed)
        *removed = 0;
    if (keep < 0)
        return STORE_ERR_INVALID;
    store_inspections_flush(st);
    int64_t total = 0;
    for (;;) {
        char (*ids)[STORE_ID_LEN] = xcalloc(500, STORE_ID_LEN);
        size_t k = 0;
        conn_t *c = racquire(st);
        sqlite3_stmt *s = prep(c, SQL_OLD);
        store_status r = STORE_ERR_DB;
        if (s) {
            sqlite3_bind_int64(s, 1, keep);
            int rc;
            while ((rc = step(s)) == SQLITE_ROW && k < 500)
                col_copy(s, 0, ids[k++], STORE_ID_LEN);
            r = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? STORE_OK : map_rc(c->db, rc);
            done(s);
        }
        rrelease(st, c);
        if (r != STORE_OK || k == 0) {
            free(ids);
            if (removed)
                *removed = total;
            return r;
        }
        /* Files first: a crash in between leaves a row that claims images the
         * reader then reports as not found, never an orphaned file. */
        for (size_t i = 0; i < k; i++)
            inspection_files_remove(st, ids[i]);
        r = wbegin(st);
        if (r == STORE_OK) {
            for (size_t i = 0; i < k && r == STORE_OK; i++) {
                s = prep(&st->w, SQL_CLR);
                if (!s) {
                    r = STORE_ERR_DB;
                    break;
                }
                sqlite3_bind_text(s, 1, ids[i], -1, SQLITE_TRANSIENT);
                r = run_stmt(&st->w, s);
            }
            r = wend(st, r);
        }
        free(ids);
        if (r != STORE_OK) {
            if (removed)
                *removed = total;
            return r;
        }
        total += (int64_t)k;
    }
}

/* --------------------------------------------------------------- api keys */

static const char *const role_names[] = {NULL, "inspect", "operate", "admin"};

const char *store_role_name(store_role r)
{
    if ((int)r < STORE_ROLE_INSPECT || (int)r > STORE_ROLE_ADMIN)
        return NULL;
    return role_names[r];
}

int store_role_parse(const char *name, store_role *r)
{
    if (!name)
        return -1;
    for (int i = STORE_ROLE_INSPECT; i <= STORE_ROLE_ADMIN; i++) {
        if (strcmp(name, role_names[i]) == 0) {
            if (r)
                *r = (store_role)i;
            return 0;
        }
    }
    return -1;
}

void store_key_clear(store_key_t *k)
{
    if (!k)
        return;
    free(k->name);
    memset(k, 0, sizeof *k);
}

void store_keys_free(store_key_t *arr, size_t n)
{
    if (!arr)
        return;
    for (size_t i = 0; i < n; i++)
        store_key_clear(&arr[i]);
    free(arr);
}

static int valid_key_text(const char *k)
{
    if (!k)
        return 0;
    size_t n = strlen(k);
    if (n < 16 || n > STORE_KEY_MAX - 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] <= 0x20 || k[i] >= 0x7f)
            return 0;
    return 1;
}

/* Short unsalted fingerprint used only to find the candidate row. */
static void key_lookup(const char *key, char out[17])
{
    static const char domain[] = "cfa-key-lookup:";
    sha256_ctx c;
    uint8_t d[SHA256_DIGEST_LEN];
    sha256_init(&c);
    sha256_update(&c, domain, sizeof domain - 1);
    sha256_update(&c, key, strlen(key));
    sha256_final(&c, d);
    sha256_hex(d, 8, out);
}

static void key_hash(const uint8_t *salt, size_t salt_len, const char *key,
                     uint8_t out[SHA256_DIGEST_LEN])
{
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, salt, salt_len);
    sha256_update(&c, key, strlen(key));
    sha256_final(&c, out);
}

static int ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    volatile uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= (uint8_t)(a[i] ^ b[i]);
    return acc == 0;
}

#define KEY_COLS "id, name, role, created_at, revoked_at"

static void key_from_row(sqlite3_stmt *s, store_key_t *k)
{
    memset(k, 0, sizeof *k);
    col_copy(s, 0, k->id, sizeof k->id);
    k->name = col_dup(s, 1, "");
    store_role_parse((const char *)sqlite3_column_text(s, 2), &k->role);
    k->created_at = sqlite3_column_int64(s, 3);
    k->revoked_at = sqlite3_column_int64(s, 4);
}

store_status store_key_create(store_t *st, const char *name, store_role role, const char *key,
                              char key_out[STORE_KEY_MAX], store_key_t *out)
{
    static const char SQL[] = "INSERT INTO api_keys(id, name, role, salt, hash, lookup, "
                              "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    if (out)
        memset(out, 0, sizeof *out);
    if (key_out)
        key_out[0] = '\0';
    if (!store_role_name(role) || (key && !valid_key_text(key)))
        return STORE_ERR_INVALID;
    char secret[STORE_KEY_MAX];
    if (key) {
        copy_str(secret, sizeof secret, key);
    } else {
        uint8_t b[32];
        char hex[65];
        if (random_bytes(b, sizeof b) != 0)
            return STORE_ERR_IO;
        sha256_hex(b, sizeof b, hex);
        snprintf(secret, sizeof secret, "cfa_%s", hex);
    }
    char id[STORE_ID_LEN];
    uint8_t salt[16], hash[SHA256_DIGEST_LEN];
    char lookup[17];
    if (store_random_id(id) != 0 || random_bytes(salt, sizeof salt) != 0)
        return STORE_ERR_IO;
    key_hash(salt, sizeof salt, secret, hash);
    key_lookup(secret, lookup);
    int64_t now = store_now_ms();
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = prep(&st->w, SQL);
    if (!s) {
        wrollback(st);
        return STORE_ERR_DB;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, name ? name : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, store_role_name(role), -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 4, salt, sizeof salt, SQLITE_TRANSIENT);
    sqlite3_bind_blob(s, 5, hash, sizeof hash, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 6, lookup, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 7, now);
    r = run_stmt(&st->w, s);
    r = wend(st, r);
    if (r == STORE_OK) {
        if (key_out)
            copy_str(key_out, STORE_KEY_MAX, secret);
        if (out) {
            copy_str(out->id, sizeof out->id, id);
            out->name = xstrdup(name ? name : "");
            out->role = role;
            out->created_at = now;
        }
    }
    memset(secret, 0, sizeof secret);
    return r;
}

store_status store_key_verify(store_t *st, const char *presented, store_key_t *out)
{
    static const char SQL[] = "SELECT " KEY_COLS ", salt, hash FROM api_keys "
                              "WHERE lookup = ?1 AND revoked_at IS NULL";
    if (out)
        memset(out, 0, sizeof *out);
    if (!valid_key_text(presented))
        return STORE_ERR_NOT_FOUND;
    char lookup[17];
    key_lookup(presented, lookup);
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, lookup, -1, SQLITE_TRANSIENT);
        r = STORE_ERR_NOT_FOUND;
        int rc;
        while ((rc = step(s)) == SQLITE_ROW) {
            const uint8_t *salt = sqlite3_column_blob(s, 5);
            int salt_len = sqlite3_column_bytes(s, 5);
            const uint8_t *hash = sqlite3_column_blob(s, 6);
            int hash_len = sqlite3_column_bytes(s, 6);
            if (!salt || !hash || hash_len != SHA256_DIGEST_LEN)
                continue;
            uint8_t h[SHA256_DIGEST_LEN];
            key_hash(salt, (size_t)salt_len, presented, h);
            if (ct_equal(h, hash, SHA256_DIGEST_LEN)) {
                if (out)
                    key_from_row(s, out);
                r = STORE_OK;
                break;
            }
        }
        if (r != STORE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
            r = map_rc(c->db, rc);
        done(s);
    }
    rrelease(st, c);
    return r;
}

store_status store_key_list(store_t *st, store_key_t **out, size_t *n)
{
    static const char SQL[] = "SELECT " KEY_COLS " FROM api_keys ORDER BY created_at, id";
    if (!out || !n)
        return STORE_ERR_INVALID;
    *out = NULL;
    *n = 0;
    conn_t *c = racquire(st);
    sqlite3_stmt *s = prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        size_t cap = 16, k = 0;
        store_key_t *arr = xcalloc(cap, sizeof *arr);
        int rc;
        while ((rc = step(s)) == SQLITE_ROW) {
            if (k == cap) {
                cap *= 2;
                arr = xrealloc(arr, cap * sizeof *arr);
            }
            key_from_row(s, &arr[k++]);
        }
        if (rc != SQLITE_DONE) {
            r = map_rc(c->db, rc);
            store_keys_free(arr, k);
        } else {
            *out = arr;
            *n = k;
            r = STORE_OK;
        }
        done(s);
    }
    rrelease(st, c);
    return r;
}

store_status store_key_revoke(store_t *st, const char *id)
{
    static const char SQL[] =
        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL";
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    store_status r = wbegin(st);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = prep(&st->w, SQL);
    if (!s) {
        wrollback(st);
        return STORE_ERR_DB;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, store_now_ms());
    r = run_stmt(&st->w, s);
    if (r == STORE_OK && sqlite3_changes(st->w.db) == 0)
        r = STORE_ERR_NOT_FOUND;
    return wend(st, r);
}

store_status store_key_count_active(store_t *st, int64_t *n)
{
    static const char SQL[] = "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL";
    return count_query(st, SQL, NULL, n);
}
