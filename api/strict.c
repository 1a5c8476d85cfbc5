/* strict.c - what the transport refuses before routing (docs/RELIABILITY.md,
 * "Strict HTTP"): a path or query that is not UTF-8 or holds a NUL once
 * decoded, a path encoded twice, a header name that is not a token (a space
 * before the colon, a folded line), a header value that is not UTF-8 text,
 * and a body whose
 * length two parsers could read differently (two Content-Length headers,
 * Content-Length with Transfer-Encoding, a coding other than chunked) -
 * the shapes of request smuggling behind a proxy. libmicrohttpd 0.9.75 lets
 * all of these through. */
#define _GNU_SOURCE
#include "api_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "utf8.h"

size_t strict_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    size_t n = MHD_http_unescape(s);
    /* a decoded NUL would end the C string MHD hands over ("nulltest%00.evil"
     * reads as "nulltest"); 0xFF is never part of UTF-8, so the one UTF-8
     * check of the path and the query refuses it */
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0')
            s[i] = (char)0xff;
    return n;
}

static void refuse(strict_verdict *v, int framing, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void refuse(strict_verdict *v, int framing, const char *code, const char *fmt, ...)
{
    va_list ap;
    if (v->status != 0)
        return; /* the first problem found is the one reported */
    v->status = 400;
    v->framing = framing;
    snprintf(v->code, sizeof v->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(v->msg, sizeof v->msg, fmt, ap);
    va_end(ap);
}

static int is_text(const char *s, size_t n)
{
    return s == NULL || utf8_valid_prefix(s, n) == n;
}

/* RFC 9110 token: what a header name is made of */
static int is_token(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (c == '\0' || strchr("!#$%&'*+-.^_`|~", c) == NULL))
            return 0;
    }
    return 1;
}

/* UTF-8 with no control character but HTAB (a CR or NUL inside a value is
 * a framing trick, not text) */
static int is_header_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return 0;
    return is_text(s, n);
}

typedef struct scan {
    strict_verdict *v;
    int n_length, n_coding, n_host;
    int chunked;
} scan;

static enum MHD_Result scan_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    scan *sc = cls;
    (void)kind;
    if (!is_text(key, key_size) || !is_text(value, value_size))
        refuse(sc->v, 0, "invalid_query",
               "query parameter %.64s is not UTF-8 text or holds a NUL (%%00)", key);
    return MHD_YES;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    scan *sc = cls;
    (void)kind;
    if (!is_token(key, key_size))
        refuse(sc->v, 1, "invalid_header",
               "header name %.64s is not a token (a space before the colon, a folded line?)",
               key);
    else if (!is_header_text(value, value_size))
        refuse(sc->v, 1, "invalid_header",
               "header %.64s is not UTF-8 text or holds a control character", key);
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        sc->n_length++;
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
        sc->n_host++;
    if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        sc->n_coding++;
        sc->chunked = value != NULL && strcasecmp(value, "chunked") == 0;
    }
    return MHD_YES;
}

void strict_check(struct MHD_Connection *con, const char *url, strict_verdict *v)
{
    scan sc = {.v = v};
    memset(v, 0, sizeof *v);
    if (!is_text(url, strlen(url)))
        refuse(v, 0, "invalid_path", "the path is not UTF-8 text or holds a NUL (%%00)");
    /* the router decodes segments again (api/parse.c): "%2574ile" would name
     * "tile"; no id holds a '%', so a '%' left after decoding is refused */
    else if (strchr(url, '%') != NULL)
        refuse(v, 0, "invalid_path", "the path holds a '%%' after decoding (encoded twice)");
    MHD_get_connection_values_n(con, MHD_GET_ARGUMENT_KIND, scan_query, &sc);
    MHD_get_connection_values_n(con, MHD_HEADER_KIND, scan_header, &sc);
    if (sc.n_length > 1)
        refuse(v, 1, "ambiguous_length", "more than one Content-Length header");
    else if (sc.n_coding > 0 && sc.n_length > 0)
        refuse(v, 1, "ambiguous_length", "both Content-Length and Transfer-Encoding");
    else if (sc.n_coding > 1 || (sc.n_coding == 1 && !sc.chunked))
        refuse(v, 1, "ambiguous_length", "the only Transfer-Encoding accepted is one chunked");
    else if (sc.n_host > 1)
        refuse(v, 1, "invalid_header", "more than one Host header");
}
