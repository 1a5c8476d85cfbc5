/* http.c - the libmicrohttpd daemon: request state, body limits, key checks,
 * dispatch through the route table, JSON replies and metrics. The first
 * admin key is auth.c's. */
#define _GNU_SOURCE
#include "api_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base_alloc.h"
#include "base_clock.h"
#include "base_log.h"
#include "conn.h"
#include "metrics_prom.h"
#include "pool.h"
#include "utf8.h"

struct api_server {
    struct MHD_Daemon *d;
    conn_table *conns; /* deadlines and the probe slots (conn.h) */
    api_ctx *ctx;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int in_flight;
    char *tls_cert, *tls_key; /* PEM text, kept while MHD runs */
    char web_dir[CFG_PATH_MAX]; /* the console's files (static.c), "" none */
    size_t tls_key_len;
};

/* ---- replies -------------------------------------------------------------- */

static enum MHD_Result queue(hreq *r, int status, struct MHD_Response *resp)
{
    enum MHD_Result ret;
    if (resp == NULL)
        return MHD_NO;
    r->status = status;
    /* every answer, errors included, names the request it answers */
    if (r->request_id[0] != '\0')
        MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    if (line_idem_replayed(r))
        MHD_add_response_header(resp, "Idempotent-Replayed", "true");
    ret = MHD_queue_response(r->con, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result reply_response(hreq *r, int status, struct MHD_Response *resp)
{
    return queue(r, status, resp);
}

enum MHD_Result reply_json_hdr(hreq *r, int status, json_t *body, const char *hname,
                               const char *hval)
{
    char *s = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9) | JSON_ENCODE_ANY);
    json_decref(body);
    if (s == NULL)
        return MHD_NO;
    line_idem_record(r, status, s, hname, hval);
    size_t n = strlen(s);
    /* a trailing newline makes curl output readable */
    char *t = realloc(s, n + 2);
    if (t == NULL) {
        free(s);
        return MHD_NO;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    r->bytes_out = n + 1;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(n + 1, t, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(t);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (hname != NULL && hval != NULL)
        MHD_add_response_header(resp, hname, hval);
    if (status == 503 || status == 429)
        MHD_add_response_header(resp, "Retry-After", "1");
    if (status == 405 && r->allow[0] != '\0')
        MHD_add_response_header(resp, "Allow", r->allow);
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    if (r->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return queue(r, status, resp);
}

enum MHD_Result reply_json(hreq *r, int status, json_t *body)
{
    return reply_json_hdr(r, status, body, NULL, NULL);
}

/* The length of s[0..n) without a last character the cut left incomplete. */
static size_t cut_to_char(const char *s, size_t n)
{
    size_t start = n;
    while (start > 0 && n - start < 4 && ((unsigned char)s[start - 1] & 0xc0) == 0x80)
        start--;
    if (start > 0 && (unsigned char)s[start - 1] >= 0xc0 &&
        utf8_valid_prefix(s + start - 1, n - start + 1) != n - start + 1)
        return start - 1;
    return n;
}

enum MHD_Result reply_error(hreq *r, int status, const char *code, const char *fmt, ...)
{
    char raw[512], msg[3 * sizeof raw];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof raw ? (size_t)n : sizeof raw - 1;
    if ((size_t)n >= sizeof raw) /* cut: drop the character the cut fell in */
        len = cut_to_char(raw, len);
    /* messages quote the client's bytes (a path, a header); jansson refuses
     * text that is not UTF-8, and then no reply would be sent at all */
    utf8_clean(msg, sizeof msg, raw, len);
    json_t *e = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    return reply_json(r, status, e);
}

enum MHD_Result reply_bytes(hreq *r, int status, const char *ctype, void *buf, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    r->bytes_out = len;
    return queue(r, status, resp);
}

enum MHD_Result reply_static(hreq *r, int status, const char *ctype, const void *buf,
                             size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)buf, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", ctype);
    r->bytes_out = len;
    return queue(r, status, resp);
}

enum MHD_Result reply_empty(hreq *r, int status)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    return queue(r, status, resp);
}

/* ---- request helpers ------------------------------------------------------- */

const char *req_header(hreq *r, const char *name)
{
    return MHD_lookup_connection_value(r->con, MHD_HEADER_KIND, name);
}

const char *req_query(hreq *r, const char *name)
{
    return MHD_lookup_connection_value(r->con, MHD_GET_ARGUMENT_KIND, name);
}

void req_content_type(hreq *r, char *buf, size_t cap)
{
    const char *ct = req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t o = 0;
    if (cap == 0)
        return;
    if (ct != NULL) {
        while (*ct == ' ')
            ct++;
        for (; *ct != '\0' && *ct != ';' && *ct != ' ' && o + 1 < cap; ct++)
            buf[o++] = (char)tolower((unsigned char)*ct);
    }
    buf[o] = '\0';
}

json_t *req_json(hreq *r, int *ok)
{
    char ct[128];
    json_error_t jerr;
    *ok = 1;
    if (r->len == 0)
        return NULL;
    req_content_type(r, ct, sizeof ct);
    if (ct[0] != '\0' && strcmp(ct, "application/json") != 0) {
        *ok = 0;
        reply_error(r, 415, "unsupported_media_type",
                    "this endpoint takes application/json, not %s", ct);
        return NULL;
    }
    json_t *j = json_loadb((const char *)r->body, r->len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        *ok = 0;
        reply_error(r, 400, "malformed_json", "malformed JSON body: %s (line %d column %d)",
                    jerr.text, jerr.line, jerr.column);
    }
    return j;
}

char *b64_encode(const void *data, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *p = data;
    size_t olen = 4 * ((len + 2) / 3);
    char *out = malloc(olen + 1);
    size_t o = 0, i = 0;
    if (out == NULL)
        return NULL;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* ---- auth ------------------------------------------------------------------ */

static void deny(hreq *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void deny(hreq *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    r->deny_status = status;
    snprintf(r->deny_code, sizeof r->deny_code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(r->deny_msg, sizeof r->deny_msg, fmt, ap);
    va_end(ap);
}

/* Checks the key against the route's role as soon as the headers are in,
 * so that the body of a refused request is discarded instead of buffered.
 * On refusal records the 401/403 (or 503) for the reply. */
static void auth_check(hreq *r)
{
    store_role need = r->route->role;
    if (need == STORE_ROLE_NONE && !(strcmp(r->route->label, "/metrics") == 0 &&
                                     r->ctx->cfg->protect_metrics))
        return;
    if (need == STORE_ROLE_NONE)
        need = STORE_ROLE_INSPECT;
    const char *h = req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL) {
        deny(r, 401, "unauthorized", "missing API key: send Authorization: Bearer <key>");
        return;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        deny(r, 401, "unauthorized", "Authorization must be Bearer <key>");
        return;
    }
    const char *key = h + 7;
    while (*key == ' ')
        key++;
    store_key_t k;
    memset(&k, 0, sizeof k);
    store_status ss = store_key_verify(r->ctx->st, key, &k);
    if (ss == STORE_ERR_NOT_FOUND) {
        deny(r, 401, "unauthorized", "unknown or revoked API key");
        return;
    }
    if (ss != STORE_OK) {
        deny(r, 503, "store_unavailable", "key check failed: %s", store_strerror(ss));
        return;
    }
    r->role = k.role;
    snprintf(r->key_id, sizeof r->key_id, "%s", k.id);
    store_key_clear(&k);
    /* roles are ordered: a key may do what every lower role may */
    if (r->role < need) {
        const char *has = store_role_name(r->role);
        deny(r, 403, "forbidden", "this needs the %s role; the key has %s",
             store_role_name(need), has != NULL ? has : "none");
    }
}

/* ---- MHD callbacks ---------------------------------------------------------- */

static void find_route(hreq *r, const char *url)
{
    char params[ROUTE_MAX_PARAMS][ROUTE_PARAM_MAX];
    r->allow[0] = '\0';
    for (size_t i = 0; i < api_n_routes; i++) {
        int np = route_match_pattern(api_routes[i].pattern, url, params);
        if (np < 0)
            continue;
        r->path_known = 1;
        if (strcmp(api_routes[i].method, r->method) == 0) {
            /* a literal segment wins over "{}" (/v1/inspections/export over
             * /v1/inspections/{id}), wherever the table lists it */
            if (r->route == NULL || np < r->n_params) {
                r->route = &api_routes[i];
                r->n_params = np;
                memcpy(r->params, params, sizeof params);
            }
            continue;
        }
        size_t al = strlen(r->allow);
        if (al + strlen(api_routes[i].method) + 3 < sizeof r->allow)
            snprintf(r->allow + al, sizeof r->allow - al, "%s%s", al ? ", " : "",
                     api_routes[i].method);
    }
}

/* /healthz and /readyz may use the connections kept for probes. */
static int is_probe(const hreq *r)
{
    return r->route != NULL &&
           (strcmp(r->route->label, "/healthz") == 0 || strcmp(r->route->label, "/readyz") == 0);
}

/* Over --max-connections with no connection waiting for its header to make
 * room: this one sits in a slot kept for probes, so it is answered at once
 * and closed instead of served. */
static enum MHD_Result reply_over_limit(hreq *r)
{
    json_t *e = json_pack("{s:{s:s,s:s}}", "error", "code", "too_many_connections", "message",
                          "the server is at its connection limit; retry shortly");
    r->close = 1;
    return reply_json(r, 503, e);
}

/* The refusal decided from the headers (strict.c, routing, the key, the
 * declared size) as the reply. */
static enum MHD_Result reply_refusal(hreq *r)
{
    if (r->deny_status != 0)
        return reply_error(r, r->deny_status, r->deny_code, "%s", r->deny_msg);
    return reply_too_large(r);
}

/* The declared Content-Length: 1 with *n set, 0 without a valid one. */
static int content_length(hreq *r, long long *n)
{
    const char *cl = MHD_lookup_connection_value(r->con, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    *n = 0;
    return cl != NULL && parse_int_range(cl, 0, INT64_MAX, n) == 0;
}

/* The body the deadline allows time for (conn.c): a body of unknown length
 * (chunked) or over the limit gets the time of the largest kept body. */
static size_t deadline_body(hreq *r)
{
    long long n;
    if (content_length(r, &n) && (unsigned long long)n < r->max_body)
        return (size_t)n;
    return r->max_body;
}

/* Bytes of a refused body that are read and dropped rather than answered
 * before: a client that writes its whole body before it reads then sees the
 * answer (closing on unread bytes resets the connection, which can lose the
 * answer). Anything larger is answered from the headers and the connection
 * closed, instead of reading gigabytes for nothing. */
static size_t drain_max(const hreq *r)
{
    /* of the global limit, not the route's: a JSON route's few kB would
     * close on the clients this is for */
    return 2 * (size_t)r->ctx->cfg->max_body_mb * 1024 * 1024;
}

/* Whether a refused request is answered now, before its body: a body
 * announced over drain_max, a chunked one (its size is unknown), a client
 * waiting for 100-continue, a body that cannot be framed safely. */
static int refuse_now(hreq *r, int framing)
{
    struct MHD_Connection *con = r->con;
    const char *te = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *ex = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    long long n = 0;
    if (content_length(r, &n) && (unsigned long long)n > r->max_body)
        r->too_big = 1;
    if (r->deny_status == 0 && !r->too_big)
        return 0;
    return framing || te != NULL || (unsigned long long)n > drain_max(r) ||
           (ex != NULL && strcasecmp(ex, "100-continue") == 0);
}

/* After the key: a malformed X-Request-Id, a query parameter the route
 * does not take (line.c). */
static void check_line_headers(hreq *r)
{
    char why[320];
    if (r->deny_status != 0)
        return;
    const char *rid = req_header(r, "X-Request-Id");
    if (rid != NULL && !request_id_valid(rid))
        deny(r, 400, "invalid_request_id",
             "X-Request-Id must be 1-%d printable ASCII characters without spaces",
             REQUEST_ID_MAX);
    else if (line_check_query(r, why, sizeof why) != 0)
        deny(r, 400, "unknown_query_parameter", "%s", why);
}

/* The request's id: the client's X-Request-Id when it is one, else a fresh
 * one (a bad one is refused by check_line_headers, answered with a fresh id). */
static void set_request_id(hreq *r)
{
    const char *rid = req_header(r, "X-Request-Id");
    if (rid != NULL && request_id_valid(rid))
        snprintf(r->request_id, sizeof r->request_id, "%s", rid);
    else if (store_random_id(r->request_id) != 0)
        r->request_id[0] = '\0';
    log_set_request_id(r->request_id);
}

/* One line per request: the access log (docs/API.md, "Logs"); the key's id,
 * never the key. */
static void log_access(hreq *r)
{
    const char *route = r->route != NULL ? r->route->label : "unmatched";
    int status = r->status != 0 ? r->status : 499;
    double ms = mono_ms() - r->t0 * 1e3;
    if (!log_enabled(LL_INFO))
        return;
    /* the fields only go into JSON lines: text lines show the message */
    json_t *f = !log_get_json() ? NULL
                                : json_pack("{s:s,s:s,s:i,s:I,s:f,s:s?}", "method", r->method,
                                            "route", route, "status", status, "bytes",
                                            (json_int_t)r->bytes_out, "ms", ms, "key_id",
                                            r->key_id[0] ? r->key_id : NULL);
    char *fs = f != NULL ? json_dumps(f, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(f);
    if (fs != NULL && strlen(fs) >= 2) { /* the inside of the object */
        memmove(fs, fs + 1, strlen(fs));
        fs[strlen(fs) - 1] = '\0';
    }
    log_fields(LL_INFO, "access", fs, "%s %s %d %zu B %.1f ms", r->method, route, status,
               r->bytes_out, ms);
    free(fs);
}

/* The first call, with the headers in: what can be refused before the body
 * is. */
static enum MHD_Result on_headers(api_server *s, hreq *r, const char *url)
{
    strict_verdict v;
    strict_check(r->con, url, &v);
    if (v.status != 0) {
        deny(r, v.status, v.code, "%s", v.msg);
        r->close = 1; /* what follows on this connection cannot be trusted */
    } else {
        find_route(r, url);
        if (r->route == NULL && !r->path_known)
            static_claim(r, url); /* the console's files: after every API route */
        if (api_route_body_max(r->route) > 0)
            r->max_body = api_route_body_max(r->route);
        if (r->route == NULL && r->path_known)
            deny(r, 405, "method_not_allowed", "%s is not allowed here (allowed: %s)",
                 r->method, r->allow);
        else if (r->route == NULL)
            deny(r, 404, "not_found", "no such endpoint: %s %.200s", r->method, url);
        else
            auth_check(r);
        replica_check(r);
        check_line_headers(r);
    }
    if (conn_headers_done(s->conns, r->con, deadline_body(r), is_probe(r)) != 0)
        return reply_over_limit(r);
    if (refuse_now(r, v.framing)) {
        r->close = 1;
        return reply_refusal(r);
    }
    if (r->route != NULL && r->route->announce && r->deny_status == 0 && !r->too_big &&
        s->ctx->pool != NULL) {
        pool_announce(s->ctx->pool, 1);
        r->announced = 1;
    }
    return MHD_YES;
}

/* A piece of the body: kept, or dropped when the request is refused. */
static enum MHD_Result on_body(hreq *r, const char *data, size_t n)
{
    if (r->too_big || r->deny_status != 0) {
        r->drained += n;
        /* a chunked body refused past drain_max: no answer can be queued in
         * the middle of a body, so the connection is closed */
        return r->drained > drain_max(r) ? MHD_NO : MHD_YES;
    }
    if (r->len + n > r->max_body) {
        r->too_big = 1;
        r->drained = r->len + n;
        free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
        return MHD_YES;
    }
    if (r->len + n > r->cap) {
        size_t nc = r->cap ? r->cap : 65536;
        while (nc < r->len + n)
            nc *= 2;
        if (nc > r->max_body)
            nc = r->max_body;
        uint8_t *nb = realloc(r->body, nc);
        if (nb == NULL)
            return MHD_NO;
        r->body = nb;
        r->cap = nc;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *con, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    api_server *s = cls;
    hreq *r = *con_cls;
    (void)version;
    if (r != NULL) /* this connection's thread may have served another meanwhile */
        log_set_request_id(r->request_id);
    if (r == NULL) {
        r = xcalloc(1, sizeof *r);
        r->con = con;
        r->ctx = s->ctx;
        r->t0 = mono_ms() / 1e3; /* seconds, the unit of the metrics */
        r->max_body = (size_t)s->ctx->cfg->max_body_mb * 1024 * 1024;
        snprintf(r->method, sizeof r->method, "%s", method);
        set_request_id(r);
        *con_cls = r;
        pthread_mutex_lock(&s->mu);
        s->in_flight++;
        pthread_mutex_unlock(&s->mu);
        return on_headers(s, r, url);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return on_body(r, upload_data, n);
    }
    /* the whole request is here */
    conn_body_done(s->conns, con);
    if (r->status != 0)
        return MHD_YES;
    if (r->deny_status != 0 || r->too_big)
        return reply_refusal(r);
    enum MHD_Result ret = r->route->fn(r);
    if (r->status == 0)
        return reply_error(r, 500, "internal_error", "the handler sent no response");
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    api_server *s = cls;
    hreq *r = *con_cls;
    (void)toe;
    conn_request_done(s->conns, con);
    if (r == NULL)
        return;
    if (r->announced) /* never reached the pool (an error, a dropped client) */
        pool_announce(s->ctx->pool, -1);
    mp_request(r->method, r->route != NULL ? r->route->label : "unmatched",
               r->status != 0 ? r->status : 499, mono_ms() / 1e3 - r->t0);
    log_set_request_id(r->request_id);
    log_access(r);
    log_set_request_id(NULL);
    line_idem_release(r);
    free(r->body);
    free(r);
    *con_cls = NULL;
    pthread_mutex_lock(&s->mu);
    s->in_flight--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* libmicrohttpd reports failures it handles itself (a refused TLS
 * handshake, a connection reset, an accept error): worth seeing, never fatal. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    log_writev(LL_WARN, "mhd", fmt, ap);
}

/* Reads a small PEM file into a NUL-terminated malloc'd string. */
static char *read_pem(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    if (f == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (n + 4097 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = cap <= (1u << 20) ? realloc(buf, cap) : NULL;
            if (nb == NULL) {
                snprintf(err, errlen, "%s: too large or out of memory", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, 4096, f);
        n += k;
        if (k < 4096)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

static void free_tls(api_server *s)
{
    free(s->tls_cert);
    if (s->tls_key != NULL)
        explicit_bzero(s->tls_key, s->tls_key_len);
    free(s->tls_key);
    s->tls_cert = s->tls_key = NULL;
}

int api_start(api_ctx *ctx, api_server **out, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    const cfg_t *c = ctx->cfg;
    api_server *s = xcalloc(1, sizeof *s);
    *out = NULL;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)c->listen_port);
    const char *host = strcmp(c->listen_host, "localhost") == 0 ? "127.0.0.1" : c->listen_host;
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "listen address must be a numeric IPv4 address: %s", c->listen_host);
        free(s);
        return -1;
    }
    s->ctx = ctx;
    static_resolve(c->web_dir, s->web_dir, sizeof s->web_dir);
    job_events_closing(0);
    ctx->web_dir = s->web_dir;
    /* HTTPS through MHD's GnuTLS support when both PEM files are given */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                         MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_USE_POLL;
    struct MHD_OptionItem tls_opts[3] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL},
                                         {MHD_OPTION_END, 0, NULL}};
    if (c->tls_cert[0] != '\0') {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "this libmicrohttpd was built without TLS support");
            free(s);
            return -1;
        }
        s->tls_cert = read_pem(c->tls_cert, NULL, err, errlen);
        s->tls_key = s->tls_cert ? read_pem(c->tls_key, &s->tls_key_len, err, errlen) : NULL;
        if (s->tls_key == NULL) {
            free_tls(s);
            free(s);
            return -1;
        }
        flags |= MHD_USE_TLS;
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
        tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
    }
    conn_params cp = {c->max_connections, c->header_timeout_s, c->body_timeout_s,
                      c->body_min_rate_kb};
    if ((s->conns = conn_start(&cp)) == NULL) {
        snprintf(err, errlen, "cannot start the connection reaper thread");
        free_tls(s);
        free(s);
        return -1;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        s, MHD_OPTION_NOTIFY_CONNECTION, conn_notify, s->conns, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(c->max_connections + CONN_PROBE_SLOTS), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)c->max_conn_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)c->request_timeout_s, MHD_OPTION_UNESCAPE_CALLBACK, strict_unescape, NULL,
        MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (s->d == NULL) {
        snprintf(err, errlen, "cannot listen on %s:%d%s", c->listen_host, c->listen_port,
                 s->tls_cert ? " (or the TLS certificate/key was refused)" : "");
        conn_stop(s->conns);
        free_tls(s);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di != NULL ? di->port : c->listen_port;
    *out = s;
    return 0;
}

int api_port(api_server *s) { return s->port; }

int api_serve_fd(api_server *s, int fd)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return MHD_add_connection(s->d, fd, (struct sockaddr *)&sa, sizeof sa) == MHD_YES ? 0 : -1;
}

void api_quiesce(api_server *s)
{
    if (s == NULL || s->d == NULL)
        return;
    job_events_closing(1);
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

int api_drain(api_server *s, int timeout_ms)
{
    int n;
    if (s == NULL)
        return 0;
    struct timespec ts = wall_deadline(timeout_ms);
    pthread_mutex_lock(&s->mu);
    while (s->in_flight > 0)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
            break;
    n = s->in_flight;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void api_stop(api_server *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->d);
    conn_stop(s->conns);
    free_tls(s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
