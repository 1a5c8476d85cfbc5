/* parse.c - pure parsers for outside input (see parse.h). */
#define _GNU_SOURCE
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int parse_int_range(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    long long v;
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int parse_double(const char *s, double *out)
{
    char *end = NULL;
    double v;
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* ---- routing ------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes seg[0..len) into out; -1 on bad escapes, '/' or NUL. */
static int seg_decode(const char *seg, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = seg[i];
        if (c == '%') {
            int a, b;
            if (i + 2 >= len)
                return -1;
            a = hexval(seg[i + 1]);
            b = hexval(seg[i + 2]);
            if (a < 0 || b < 0)
                return -1;
            c = (char)(a * 16 + b);
            i += 2;
        }
        if (c == '\0' || c == '/')
            return -1;
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

int route_match_pattern(const char *pattern, const char *path,
                        char params[ROUTE_MAX_PARAMS][ROUTE_PARAM_MAX])
{
    int np = 0;
    const char *p = pattern, *s = path;
    if (pattern == NULL || path == NULL)
        return -1;
    while (*p != '\0') {
        if (p[0] == '{' && p[1] == '}') {
            const char *e = s;
            while (*e != '\0' && *e != '/')
                e++;
            if (e == s || np >= ROUTE_MAX_PARAMS)
                return -1;
            if (seg_decode(s, (size_t)(e - s), params[np], ROUTE_PARAM_MAX) != 0)
                return -1;
            np++;
            s = e;
            p += 2;
            continue;
        }
        if (*p != *s)
            return -1;
        p++;
        s++;
    }
    /* one trailing slash is tolerated */
    if (s[0] == '/' && s[1] == '\0' && s != path + 1)
        s++;
    return *s == '\0' ? np : -1;
}

/* ---- multipart ----------------------------------------------------------- */

int mp_boundary(const char *ct, char *out, size_t cap)
{
    const char *p;
    size_t n = 0;
    if (ct == NULL || cap < 72)
        return -1;
    p = strcasestr(ct, "boundary=");
    if (p == NULL)
        return -1;
    p += 9;
    if (*p == '"') {
        p++;
        while (p[n] != '\0' && p[n] != '"')
            n++;
        if (p[n] != '"')
            return -1;
    } else {
        while (p[n] != '\0' && p[n] != ';' && p[n] != ' ' && p[n] != '\t')
            n++;
    }
    if (n == 0 || n > 70)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* Copies the value of parameter key (e.g. name) from a header value. */
static void header_param(const char *v, size_t vlen, const char *key,
                         char *out, size_t cap)
{
    size_t klen = strlen(key);
    size_t i = 0;
    out[0] = '\0';
    while (i < vlen) {
        /* parameters start after ';' */
        while (i < vlen && v[i] != ';')
            i++;
        if (i >= vlen)
            return;
        i++;
        while (i < vlen && (v[i] == ' ' || v[i] == '\t'))
            i++;
        if (i + klen + 1 <= vlen && strncasecmp(v + i, key, klen) == 0 &&
            v[i + klen] == '=') {
            size_t j = i + klen + 1, o = 0;
            if (j < vlen && v[j] == '"') {
                j++;
                while (j < vlen && v[j] != '"') {
                    if (v[j] == '\\' && j + 1 < vlen)
                        j++;
                    if (o + 1 < cap)
                        out[o++] = v[j];
                    j++;
                }
            } else {
                while (j < vlen && v[j] != ';' && v[j] != ' ' && v[j] != '\t') {
                    if (o + 1 < cap)
                        out[o++] = v[j];
                    j++;
                }
            }
            out[o] = '\0';
            return;
        }
    }
}

static void parse_part_headers(const char *h, size_t len, mp_part *part)
{
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && h[e] != '\n')
            e++;
        size_t le = e;
        if (le > i && h[le - 1] == '\r')
            le--;
        const char *line = h + i;
        size_t ll = le - i;
        const char *colon = memchr(line, ':', ll);
        if (colon != NULL) {
            size_t nl = (size_t)(colon - line);
            const char *val = colon + 1;
            size_t vl = ll - nl - 1;
            while (vl > 0 && (*val == ' ' || *val == '\t')) {
                val++;
                vl--;
            }
            if (nl == 19 && strncasecmp(line, "Content-Disposition", 19) == 0) {
                header_param(val, vl, "name", part->name, sizeof part->name);
                header_param(val, vl, "filename", part->filename,
                             sizeof part->filename);
            } else if (nl == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
                size_t o = 0;
                for (size_t k = 0; k < vl && val[k] != ';' && val[k] != ' ' &&
                                   o + 1 < sizeof part->content_type; k++)
                    part->content_type[o++] = (char)tolower((unsigned char)val[k]);
                part->content_type[o] = '\0';
            }
        }
        i = e + 1;
    }
}

/* 1 if p (just after "--boundary") ends a delimiter line: "--" (close), or
 * optional whitespace and a line break. Anything else is part data. */
static int delim_line(const uint8_t *p, const uint8_t *end)
{
    if (end - p >= 2 && p[0] == '-' && p[1] == '-')
        return 1;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p < end && (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n'));
}

mp_status mp_parse(const uint8_t *body, size_t len, const char *boundary,
                   mp_part *parts, int max_parts, int *n_parts)
{
    char delim[80];
    size_t dlen;
    const uint8_t *p, *end;
    int n = 0;
    *n_parts = 0;
    if (boundary == NULL || strlen(boundary) == 0 || strlen(boundary) > 70)
        return MP_ERR_SYNTAX;
    dlen = (size_t)snprintf(delim, sizeof delim, "--%s", boundary);
    if (body == NULL) /* an empty body: NULL + 0 is undefined behaviour */
        return MP_ERR_SYNTAX;
    end = body + len;
    /* first delimiter: at the start or after a preamble line break */
    p = memmem(body, len, delim, dlen);
    if (p == NULL || (p != body && (p < body + 2 || p[-1] != '\n')))
        return MP_ERR_SYNTAX;
    for (;;) {
        p += dlen;
        if ((size_t)(end - p) >= 2 && p[0] == '-' && p[1] == '-')
            break; /* close delimiter; the epilogue is ignored */
        /* transport padding, then a line break */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p < end && *p == '\r')
            p++;
        if (p >= end || *p != '\n')
            return MP_ERR_SYNTAX;
        p++;
        /* headers end at an empty line */
        const uint8_t *hend;
        size_t hskip;
        if ((size_t)(end - p) >= 2 && p[0] == '\r' && p[1] == '\n') {
            hend = p;
            hskip = 2;
        } else if (p < end && p[0] == '\n') {
            hend = p;
            hskip = 1;
        } else {
            const uint8_t *a = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
            const uint8_t *b = memmem(p, (size_t)(end - p), "\n\n", 2);
            if (a != NULL && (b == NULL || a < b)) {
                hend = a + 2;
                hskip = 2;
            } else if (b != NULL) {
                hend = b + 1;
                hskip = 1;
            } else {
                return MP_ERR_SYNTAX;
            }
        }
        mp_part part;
        memset(&part, 0, sizeof part);
        parse_part_headers((const char *)p, (size_t)(hend - p), &part);
        const uint8_t *data = hend + hskip;
        if (data > end)
            return MP_ERR_SYNTAX;
        /* data ends at CRLF (or LF) + delimiter */
        const uint8_t *q = data;
        const uint8_t *next = NULL;
        while (q < end) {
            const uint8_t *f = memmem(q, (size_t)(end - q), delim, dlen);
            if (f == NULL)
                break;
            if (f > body && f[-1] == '\n' && delim_line(f + dlen, end)) {
                next = f;
                break;
            }
            q = f + 1;
        }
        if (next == NULL)
            return MP_ERR_SYNTAX;
        const uint8_t *dend = next;
        if (dend > data && dend[-1] == '\n')
            dend--;
        if (dend > data && dend[-1] == '\r')
            dend--;
        if (n >= max_parts)
            return MP_ERR_TOO_MANY;
        part.data = data;
        part.len = (size_t)(dend - data);
        parts[n++] = part;
        p = next;
    }
    *n_parts = n;
    return MP_OK;
}

/* ---- the console's files -------------------------------------------------- */

static const struct {
    const char *ext, *ctype;
} web_types[] = {
    {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
    {".png", "image/png"},                 {".ico", "image/x-icon"},
    {".json", "application/json; charset=utf-8"},
};

const char *web_file_type(const char *name)
{
    const char *dot = strchr(name, '.');
    if (dot == NULL || strchr(dot + 1, '.') != NULL)
        return NULL;
    for (size_t i = 0; i < sizeof web_types / sizeof web_types[0]; i++)
        if (strcmp(dot, web_types[i].ext) == 0)
            return web_types[i].ctype;
    return NULL;
}

const char *web_file_name(const char *path, char *name, size_t cap)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    if (path[0] != '/' || path[1] == '.')
        return NULL;
    const char *s = path + 1;
    size_t n = strlen(s);
    if (n == 0 || n >= cap)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c == '.' || c == '-' || c == '_' || (c >= '0' && c <= '9') ||
              (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return NULL;
    }
    memcpy(name, s, n + 1);
    return web_file_type(name);
}
