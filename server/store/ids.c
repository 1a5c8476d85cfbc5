/*
 * ids.c - the store's clock, RFC 3339 times, identifier checks and random
 * ids. The one clock read and the one RFC 3339 parser of the project (the
 * API calls these too).
 */
#define _GNU_SOURCE
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base_clock.h"
#include "sha256.h"

/* ------------------------------------------------------------------ time */

int64_t store_now_ms(void)
{
    return wall_ms();
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

/* Reads exactly n decimal digits at *p and advances past them; 0 or -1. */
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

/* "YYYY-MM-DDThh:mm:ss" (T, t or space) into tm, fields range-checked. */
static int parse_date_time(const char **p, struct tm *tm)
{
    int Y, M, D, h, m, sec;
    if (parse_digits(p, 4, &Y) || *(*p)++ != '-' || parse_digits(p, 2, &M) ||
        *(*p)++ != '-' || parse_digits(p, 2, &D))
        return -1;
    if (**p != 'T' && **p != 't' && **p != ' ')
        return -1;
    (*p)++;
    if (parse_digits(p, 2, &h) || *(*p)++ != ':' || parse_digits(p, 2, &m) ||
        *(*p)++ != ':' || parse_digits(p, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    memset(tm, 0, sizeof *tm);
    tm->tm_year = Y - 1900;
    tm->tm_mon = M - 1;
    tm->tm_mday = D;
    tm->tm_hour = h;
    tm->tm_min = m;
    tm->tm_sec = sec; /* 60 (leap second) normalises to the next minute */
    return 0;
}

/* Optional ".ddd..." into milliseconds (digits past the third ignored). */
static int parse_fraction_ms(const char **p, int *frac_ms)
{
    *frac_ms = 0;
    if (**p != '.')
        return 0;
    (*p)++;
    int digits = 0;
    while (**p >= '0' && **p <= '9') {
        if (digits < 3)
            *frac_ms = *frac_ms * 10 + (**p - '0');
        digits++;
        (*p)++;
    }
    if (digits == 0)
        return -1;
    for (int i = digits; i < 3; i++)
        *frac_ms *= 10;
    return 0;
}

/* "Z", "z" or "+hh:mm" / "-hh:mm" (hh <= 23, mm <= 59) into minutes east
 * of UTC. */
static int parse_offset_min(const char **p, int *off_min)
{
    *off_min = 0;
    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        return 0;
    }
    if (**p != '+' && **p != '-')
        return -1;
    int sign = **p == '-' ? -1 : 1;
    int oh, om;
    (*p)++;
    if (parse_digits(p, 2, &oh) || *(*p)++ != ':' || parse_digits(p, 2, &om) || oh > 23 ||
        om > 59)
        return -1;
    *off_min = sign * (oh * 60 + om);
    return 0;
}

int store_time_parse(const char *s, int64_t *ms)
{
    if (!s || !ms)
        return -1;
    const char *p = s;
    struct tm tm;
    int frac_ms, off_min;
    if (parse_date_time(&p, &tm) != 0 || parse_fraction_ms(&p, &frac_ms) != 0 ||
        parse_offset_min(&p, &off_min) != 0 || *p != '\0')
        return -1;
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - (int64_t)off_min * 60) * 1000 + frac_ms;
    return 0;
}

/* ----------------------------------------------------------- identifiers */

int store_valid_product_id(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    /* they would name the images directory or its parent */
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        /* explicit ranges, not isalnum(): the locale must not widen the set */
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

/* Job and key lists order by (created_at, id): their cursor holds both, so
 * the next page starts after the same row even when that row was deleted. */
void store_cursor_format(int64_t ms, const char *id, char out[STORE_CURSOR_LEN])
{
    snprintf(out, STORE_CURSOR_LEN, "%lld.%s", (long long)ms, id);
}

int store_cursor_parse(const char *s, int64_t *ms, char id[STORE_ID_LEN])
{
    const char *dot = s != NULL ? strchr(s, '.') : NULL;
    size_t nd = dot != NULL ? (size_t)(dot - s) : 0;
    if (nd == 0 || nd > 18 || strspn(s, "0123456789") != nd || !store_valid_id(dot + 1))
        return -1;
    *ms = strtoll(s, NULL, 10);
    copy_str(id, STORE_ID_LEN, dot + 1);
    return 0;
}

int store_valid_time_cursor(const char *s)
{
    int64_t ms;
    char id[STORE_ID_LEN];
    return store_cursor_parse(s, &ms, id) == 0;
}

/* ------------------------------------------------------------ random ids */

/* /dev/urandom, for kernels or sandboxes without getrandom(). */
static int urandom_bytes(uint8_t *p, size_t n)
{
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

int store_random_bytes(void *buf, size_t n)
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
    return n == 0 ? 0 : urandom_bytes(p, n);
}

int store_random_id(char out[STORE_ID_LEN])
{
    uint8_t b[16];
    if (store_random_bytes(b, sizeof b) != 0) {
        out[0] = '\0';
        return -1;
    }
    sha256_hex(b, sizeof b, out);
    return 0;
}

int store_time_id(char out[STORE_ID_LEN])
{
    uint8_t b[10];
    if (store_random_bytes(b, sizeof b) != 0) {
        out[0] = '\0';
        return -1;
    }
    uint64_t ms = (uint64_t)store_now_ms() & 0xffffffffffffULL;
    snprintf(out, 13, "%012llx", (unsigned long long)ms);
    sha256_hex(b, sizeof b, out + 12);
    return 0;
}
