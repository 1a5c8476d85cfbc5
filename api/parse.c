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
    const uint8_t *p, *end = body + len;
    int n = 0;
    *n_parts = 0;
    if (boundary == NULL || strlen(boundary) == 0 || strlen(boundary) > 70)
        return MP_ERR_SYNTAX;
    dlen = (size_t)snprintf(delim, sizeof delim, "--%s", boundary);
    if (body == NULL)
        return MP_ERR_SYNTAX;
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

/* ---- JSON bodies --------------------------------------------------------- */

static int get_int(const json_t *obj, const char *key, long long min,
                   long long max, int *has, long long *v, char *err,
                   size_t errlen)
{
    json_t *x = json_object_get(obj, key);
    if (x == NULL || json_is_null(x))
        return 0;
    if (!json_is_integer(x) || json_integer_value(x) < min ||
        json_integer_value(x) > max) {
        snprintf(err, errlen, "\"%s\" must be an integer in [%lld, %lld]", key,
                 min, max);
        return -1;
    }
    *has = 1;
    *v = json_integer_value(x);
    return 0;
}

static int get_num(const json_t *obj, const char *key, double min, double max,
                   int *has, double *v, char *err, size_t errlen)
{
    json_t *x = json_object_get(obj, key);
    if (x == NULL || json_is_null(x))
        return 0;
    if (!json_is_number(x) || !isfinite(json_number_value(x)) ||
        json_number_value(x) < min || json_number_value(x) > max) {
        snprintf(err, errlen, "\"%s\" must be a number in [%g, %g]", key, min,
                 max);
        return -1;
    }
    *has = 1;
    *v = json_number_value(x);
    return 0;
}

#define GET_INT(key, field, min, max)                                          \
    do {                                                                       \
        long long v_ = 0;                                                      \
        if (get_int(obj, key, min, max, &o.has_##field, &v_, err, errlen))     \
            return -1;                                                         \
        if (o.has_##field)                                                     \
            o.field = (int)v_;                                                 \
    } while (0)

int parse_train_overrides(const json_t *obj, train_overrides *out, char *err,
                          size_t errlen)
{
    train_overrides o;
    memset(&o, 0, sizeof o);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (obj != NULL && !json_is_null(obj)) {
        if (!json_is_object(obj)) {
            snprintf(err, errlen, "settings must be a JSON object");
            return -1;
        }
        GET_INT("epochs", epochs, 0, 1000);
        GET_INT("gamma_c", gamma_c, 1, 64);
        GET_INT("gamma_d", gamma_d, 1, 64);
        GET_INT("resize_h", resize_h, 16, 2048);
        GET_INT("resize_w", resize_w, 16, 2048);
        GET_INT("crop_h", crop_h, 0, 2048);
        GET_INT("crop_w", crop_w, 0, 2048);
        GET_INT("batch_size", batch_size, 1, 256);
        {
            long long v = 0;
            if (get_int(obj, "seed", 0, INT64_MAX, &o.has_seed, &v, err, errlen))
                return -1;
            o.seed = (uint64_t)v;
        }
        json_t *b = json_object_get(obj, "bank");
        if (b != NULL && !json_is_null(b)) {
            const char *s = json_string_value(b);
            if (s != NULL && strcmp(s, "mean") == 0)
                o.bank = 0;
            else if (s != NULL && strcmp(s, "ema") == 0)
                o.bank = 1;
            else {
                snprintf(err, errlen, "\"bank\" must be \"mean\" or \"ema\"");
                return -1;
            }
            o.has_bank = 1;
        }
        if (get_num(obj, "lr", 1e-8, 10.0, &o.has_lr, &o.lr, err, errlen) ||
            get_num(obj, "blur_sigma", 0.0, 64.0, &o.has_blur_sigma,
                    &o.blur_sigma, err, errlen) ||
            get_num(obj, "holdout", 0.0, 0.5, &o.has_holdout, &o.holdout, err,
                    errlen) ||
            get_num(obj, "target_far", 0.0, 0.5, &o.has_target_far,
                    &o.target_far, err, errlen) ||
            get_num(obj, "margin", 0.1, 10.0, &o.has_margin, &o.margin, err,
                    errlen))
            return -1;
        json_t *a = json_object_get(obj, "activate");
        if (a != NULL && !json_is_null(a)) {
            if (!json_is_boolean(a)) {
                snprintf(err, errlen, "\"activate\" must be a boolean");
                return -1;
            }
            o.has_activate = 1;
            o.activate = json_is_true(a);
        }
        json_t *en = json_object_get(obj, "ensemble");
        if (en != NULL && !json_is_null(en)) {
            if (!json_is_boolean(en)) {
                snprintf(err, errlen, "\"ensemble\" must be a boolean");
                return -1;
            }
            o.has_ensemble = 1;
            o.ensemble = json_is_true(en);
        }
        if ((o.has_crop_h && o.has_resize_h && o.crop_h > o.resize_h) ||
            (o.has_crop_w && o.has_resize_w && o.crop_w > o.resize_w)) {
            snprintf(err, errlen, "crop must not exceed resize");
            return -1;
        }
    }
    *out = o;
    return 0;
}

void train_overrides_to_json(const train_overrides *o, json_t *obj)
{
#define PUT_INT(f)                                                             \
    if (o->has_##f)                                                            \
        json_object_set_new(obj, #f, json_integer(o->f));
#define PUT_NUM(f)                                                             \
    if (o->has_##f)                                                            \
        json_object_set_new(obj, #f, json_real(o->f));
    PUT_INT(epochs) PUT_INT(gamma_c) PUT_INT(gamma_d) PUT_INT(resize_h)
    PUT_INT(resize_w) PUT_INT(crop_h) PUT_INT(crop_w) PUT_INT(batch_size)
    if (o->has_seed)
        json_object_set_new(obj, "seed", json_integer((json_int_t)o->seed));
    if (o->has_bank)
        json_object_set_new(obj, "bank", json_string(o->bank ? "ema" : "mean"));
    PUT_NUM(lr) PUT_NUM(blur_sigma) PUT_NUM(holdout) PUT_NUM(target_far)
    PUT_NUM(margin)
    if (o->has_activate)
        json_object_set_new(obj, "activate", json_boolean(o->activate));
    if (o->has_ensemble)
        json_object_set_new(obj, "ensemble", json_boolean(o->ensemble));
#undef PUT_INT
#undef PUT_NUM
}

void train_overrides_merge(const train_overrides *base,
                           const train_overrides *top, train_overrides *out)
{
    train_overrides r = *base;
#define M(f)                                                                   \
    if (top->has_##f) {                                                        \
        r.has_##f = 1;                                                         \
        r.f = top->f;                                                          \
    }
    M(epochs) M(gamma_c) M(gamma_d) M(seed) M(resize_h) M(resize_w) M(crop_h)
    M(crop_w) M(bank) M(batch_size) M(lr) M(blur_sigma) M(holdout)
    M(target_far) M(margin) M(activate) M(ensemble)
#undef M
    *out = r;
}
