/* fuzz_request.c - the whole request path: raw HTTP bytes through the real
 * libmicrohttpd daemon, api/strict.c, the router, the key check and the
 * handlers, against a real store in a temp directory (no inference pool:
 * inspections answer 503). Each input is one request on its own socketpair
 * handed to the daemon (api_serve_fd):
 *
 *     METHOD \n TARGET \n HEADER-LINE \n ... \n \n BODY
 *
 * "@KEY@" in a header line stands for the admin key, so the handlers run.
 * Unless the header lines frame the body themselves (Content-Length or
 * Transfer-Encoding), the harness adds Content-Length: the request is whole,
 * and when its request line is well-formed (a token, a target without spaces
 * or control bytes) an answer is owed and must arrive: well-formed HTTP, a
 * status of the documented set, JSON bodies that parse, never a 500.
 * libmicrohttpd closes on some malformed request lines without an answer
 * (a space inside the target, a missing method); those, and requests the
 * input frames itself (which may be cut short), have their answer checked
 * the same way when one comes. */
#define _GNU_SOURCE
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "base_log.h"
#include "config.h"
#include "store.h"

#define ADMIN_KEY "fuzz-admin-key-0123456789abcdef"
#define MAX_REPLY (8u << 20)
#define REPLY_TIMEOUT_MS 30000 /* a hang, not a slow machine */

static struct {
    char dir[64];
    cfg_t cfg;
    store_t *st;
    api_ctx ctx;
    api_server *srv;
} G;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    api_stop(G.srv);
    store_close(G.st);
    nftw(G.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *current; /* the request on the wire, for the report */

static void die(const char *what)
{
    fprintf(stderr, "fuzz_request: %s\nrequest: ", what);
    for (const char *c = current; c != NULL && *c != '\0' && c - current < 600; c++)
        fprintf(stderr, *c >= 0x20 && *c < 0x7f ? "%c" : "\\x%02x", (unsigned char)*c);
    fprintf(stderr, "\n");
    abort();
}

/* the audit row the corpus labels (corpus/request/label*) */
#define FUZZ_INSPECTION "01a22f5e18872d34c7b8a85804ab6c91"

static void setup(void)
{
    char err[256];
    snprintf(G.dir, sizeof G.dir, "/tmp/cfa-fuzz-request-XXXXXX");
    if (mkdtemp(G.dir) == NULL)
        die("mkdtemp");
    log_set_level(3); /* errors only: every refusal would be a line */
    cfg_defaults(&G.cfg);
    snprintf(G.cfg.data_dir, sizeof G.cfg.data_dir, "%s", G.dir);
    snprintf(G.cfg.listen_host, sizeof G.cfg.listen_host, "127.0.0.1");
    G.cfg.listen_port = 0;
    G.cfg.max_connections = 1024; /* closed connections' threads may linger */
    G.cfg.request_timeout_s = 60;
    G.cfg.max_body_mb = 1;
    if (store_open(G.dir, NULL, &G.st) != STORE_OK)
        die("store_open");
    setenv("CFA_ADMIN_KEY", ADMIN_KEY, 1);
    if (api_bootstrap_admin(G.st, G.dir, err, sizeof err) != 0)
        die(err);
    G.ctx = (api_ctx){.st = G.st, .cfg = &G.cfg, .version = "fuzz"};
    if (api_start(&G.ctx, &G.srv, err, sizeof err) != 0)
        die(err);
    atexit(teardown);
}

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            die("out of memory");
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* The next line of data[*at..size) without its \n (and \r); NULL at the end. */
static const uint8_t *next_line(const uint8_t *d, size_t size, size_t *at, size_t *len)
{
    if (*at >= size)
        return NULL;
    const uint8_t *s = d + *at, *nl = memchr(s, '\n', size - *at);
    size_t n = nl != NULL ? (size_t)(nl - s) : size - *at;
    *at += n + (nl != NULL);
    *len = n > 0 && s[n - 1] == '\r' ? n - 1 : n;
    return s;
}

static int starts_with_ci(const uint8_t *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && strncasecmp((const char *)s, prefix, k) == 0;
}

/* Whether s[0..n) is non-empty and free of spaces and control bytes; with
 * token, also made of RFC 9110 token characters (a method). */
static int plain(const uint8_t *s, size_t n, int token)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= 0x20 || s[i] == 0x7f)
            return 0;
        if (token && (s[i] >= 0x80 || strchr("\"(),/:;<=>?@[\\]{}", s[i]) != NULL))
            return 0;
    }
    return 1;
}

/* The request as it goes on the wire. *owed: the request is whole and its
 * request line well-formed, so the daemon owes an answer. */
static void build(const uint8_t *d, size_t size, buf *out, int *owed, int *framed)
{
    size_t at = 0, n, tn;
    const uint8_t *line, *target;
    *framed = 0;
    line = next_line(d, size, &at, &n);
    put(out, line != NULL ? line : (const uint8_t *)"GET", line != NULL ? n : 3);
    puts_(out, " ");
    *owed = line == NULL || plain(line, n, 1);
    target = next_line(d, size, &at, &tn);
    put(out, target != NULL ? target : (const uint8_t *)"/", target != NULL ? tn : 1);
    *owed = *owed && (target == NULL || plain(target, tn, 0));
    puts_(out, " HTTP/1.1\r\nHost: fuzz\r\n");
    while ((line = next_line(d, size, &at, &n)) != NULL && n > 0) {
        const uint8_t *key = memmem(line, n, "@KEY@", 5);
        if (key != NULL) {
            put(out, line, (size_t)(key - line));
            puts_(out, ADMIN_KEY);
            put(out, key + 5, n - (size_t)(key - line) - 5);
        } else {
            put(out, line, n);
        }
        puts_(out, "\r\n");
        if (starts_with_ci(line, n, "content-length") || starts_with_ci(line, n, "transfer-encoding"))
            *framed = 1;
    }
    size_t body = at < size ? size - at : 0;
    if (!*framed) {
        char cl[64];
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\nConnection: close\r\n", body);
        puts_(out, cl);
    }
    puts_(out, "\r\n");
    put(out, d + at, body);
    *owed = *owed && !*framed;
}

/* The final answer in reply: after any interim "100 Continue". */
static buf final_answer(const buf *reply)
{
    buf b = *reply;
    while (b.n >= 12 && memcmp(b.p + 8, " 100 ", 5) == 0) {
        const char *end = memmem(b.p, b.n, "\r\n\r\n", 4);
        if (end == NULL)
            break;
        b.n -= (size_t)(end + 4 - b.p);
        b.p = (char *)end + 4;
    }
    return b;
}

/* Whether reply holds a whole answer (headers and Content-Length bytes): the
 * input may have asked for keep-alive, and then the daemon does not close. */
static int reply_whole(const buf *all, int is_head)
{
    buf fin = final_answer(all);
    const buf *reply = &fin;
    const char *end = reply->n > 0 ? memmem(reply->p, reply->n, "\r\n\r\n", 4) : NULL;
    if (end == NULL)
        return 0;
    const char *cl = strcasestr(reply->p, "\r\nContent-Length:");
    if (is_head || cl == NULL || cl > end)
        return 1;
    size_t want = strtoull(cl + 17, NULL, 10);
    return reply->n - (size_t)(end + 4 - reply->p) >= want;
}

/* Writes the request (the daemon reads it on its own thread) and reads the
 * answer until the daemon closes or the answer is whole. */
static void exchange(int fd, const buf *req, int owed, int framed, buf *reply)
{
    int is_head = strncmp(req->p, "HEAD ", 5) == 0;
    size_t sent = 0;
    int waited = 0;
    while (waited < REPLY_TIMEOUT_MS) {
        struct pollfd p = {fd, POLLIN | (sent < req->n ? POLLOUT : 0), 0};
        if (poll(&p, 1, 100) == 0) {
            waited += 100;
            continue;
        }
        if (p.revents & POLLOUT) {
            ssize_t k = send(fd, req->p + sent, req->n - sent, MSG_NOSIGNAL);
            if (k < 0)
                sent = req->n; /* the daemon closed: read what it said */
            else
                sent += (size_t)k;
            if (sent == req->n && framed)
                shutdown(fd, SHUT_WR); /* a short body ends here */
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            char tmp[65536];
            ssize_t k = recv(fd, tmp, sizeof tmp, 0);
            if (k <= 0)
                return;
            if (reply->n + (size_t)k > MAX_REPLY)
                die("answer larger than 8 MiB");
            put(reply, tmp, (size_t)k);
            /* whole: the end of the request ends a keep-alive connection,
             * and the daemon's close (read on) says its thread is done with
             * it - what follows a header line starting with ':' is still
             * being answered (check_reply); stopping the daemon under such
             * a connection crashes libmicrohttpd 0.9.75 */
            if (reply_whole(reply, is_head))
                shutdown(fd, SHUT_WR);
        }
    }
    if (owed && !reply_whole(reply, is_head))
        die("no answer within 30 s to a whole request");
    if (reply->n > 0)
        die("the daemon did not close within 30 s of a whole answer");
}

static int status_allowed(int st)
{
    static const int ok[] = {200, 201, 202, 204, 400, 401, 403, 404, 405, 409,
                             413, 414, 415, 422, 431, 503, 505, 507};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (ok[i] == st)
            return 1;
    return 0;
}

static void check_reply(const buf *all, int is_head, int owed)
{
    buf fin = final_answer(all);
    const buf *reply = &fin;
    int st = 0;
    if (reply->n == 0 && !owed)
        return; /* "100 Continue", then the input's body was cut short */
    if (reply->n < 12 || memcmp(reply->p, "HTTP/1.", 7) != 0 || sscanf(reply->p + 9, "%3d", &st) != 1)
        die("the answer is not an HTTP status line");
    if (!status_allowed(st)) {
        fprintf(stderr, "%.*s\n", (int)(reply->n < 600 ? reply->n : 600), reply->p);
        die("status outside the documented set");
    }
    const char *end = memmem(reply->p, reply->n, "\r\n\r\n", 4);
    if (end == NULL)
        die("the answer's headers do not end");
    const char *body = end + 4;
    size_t blen = reply->n - (size_t)(body - reply->p);
    /* only this answer's bytes: libmicrohttpd 0.9.75 reads what follows a
     * header line that starts with ':' as a next request and answers that
     * too (docs/RELIABILITY.md, "Strict HTTP") */
    const char *cl = strcasestr(reply->p, "\r\nContent-Length:");
    if (cl != NULL && cl < end && strtoull(cl + 17, NULL, 10) < blen)
        blen = strtoull(cl + 17, NULL, 10);
    const char *ct = strcasestr(reply->p, "\r\nContent-Type: application/json");
    if (ct == NULL || ct > end || is_head)
        return;
    json_error_t e;
    json_t *j = json_loadb(body, blen, 0, &e);
    if (j == NULL) {
        fprintf(stderr, "%.*s\n", (int)(reply->n < 600 ? reply->n : 600), reply->p);
        die("a JSON answer that does not parse");
    }
    if (st >= 400 && !json_is_string(json_object_get(json_object_get(j, "error"), "code")))
        die("an error answer without error.code");
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    int sv[2], owed, framed;
    buf req = {0}, reply = {0};
    if (!ready) {
        setup();
        ready = 1;
    }
    /* an earlier input may have deleted it: the product routes need one */
    store_product_create(G.st, "tile", "Tile", NULL, NULL, NULL);
    /* and one audit row for the label route (inserted once; then it exists) */
    store_inspection_t row = {.id = FUZZ_INSPECTION, .product = "tile", .model_version = 1,
                              .score = 2, .threshold = 1, .decision = "NG", .map_max = 2};
    store_inspection_insert(G.st, &row);
    build(data, size, &req, &owed, &framed);
    current = req.p;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair");
    if (api_serve_fd(G.srv, sv[1]) != 0)
        die("the daemon refused the connection");
    exchange(sv[0], &req, owed, framed, &reply);
    close(sv[0]);
    if (reply.n > 0 || owed) {
        if (reply.n == 0)
            die("the daemon closed a whole request without an answer");
        check_reply(&reply, strncmp(req.p, "HEAD ", 5) == 0, owed);
    }
    free(req.p);
    free(reply.p);
    return 0;
}
