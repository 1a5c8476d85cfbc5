/* bench_http.c - loopback HTTP/1.1 load generator for POST .../inspect.
 *
 *   bench_http --url http://127.0.0.1:PORT --product ID --key KEY --image F.jpg
 *              [--clients C] [--requests N] [--duration S] [--warmup W]
 *              [--query '?store=false'] [--timeout S]
 *
 * C client threads, each with one keep-alive connection, POST the image
 * (Content-Type image/jpeg or image/png by extension, Authorization: Bearer
 * KEY) to /v1/products/ID/inspect until N timed requests are done in all or
 * S seconds have passed. Each client first sends W untimed warm-up requests
 * (default 1; they also load the model into the server's workers). Prints
 * throughput (200 responses per second of the timed phase), latency p50 / p95
 * / p99 / max of the 200 responses, the count of 200, 503 and other statuses,
 * the mean of the server's own timings_ms, and a last line of JSON.
 *
 * Plain sockets, no libcurl. Only ever connects to 127.0.0.1: any other host
 * is refused. Exit 0 when at least one request got 200, 1 otherwise. */
#define _GNU_SOURCE
#include "bench_common.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    /* config, shared read-only */
    int port;
    char *head; /* request line + headers, ending in the blank line */
    size_t head_len;
    const unsigned char *body;
    size_t body_len;
    int requests;   /* timed requests in all */
    double duration; /* seconds, time limit of the timed phase */
    int warmup;
    int timeout_s;
    int idem_keys;  /* 1: a fresh Idempotency-Key header on every request */
    /* shared state */
    atomic_int next;     /* timed request tickets handed out */
    pthread_barrier_t barrier;
    double t_start;
    /* per-client results, written by their own thread */
    struct client *clients;
} shared;

typedef struct client {
    shared *sh;
    int id;
    int fd;
    double *lat; /* seconds, one per timed 200 response */
    int n_lat, cap_lat;
    int n200, n503, nother, nerr, reconnects;
    int sent; /* requests sent, warm-up included: makes each Idempotency-Key fresh */
    double t_end;
    /* sums of the server's timings_ms over the timed 200 responses */
    double s_decode, s_queue, s_model, s_total;
    int n_timings;
    char *buf; /* response buffer */
    size_t cap;
} client;

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static int connect_loopback(int port, int timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1, always */
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads into c->buf until it holds at least `want` bytes. */
static int fill(client *c, size_t *have, size_t want)
{
    if (want + 1 > c->cap) {
        size_t nc = c->cap ? c->cap : 65536;
        while (nc < want + 1)
            nc *= 2;
        char *nb = realloc(c->buf, nc);
        if (nb == NULL)
            return -1;
        c->buf = nb;
        c->cap = nc;
    }
    while (*have < want) {
        ssize_t k = recv(c->fd, c->buf + *have, c->cap - 1 - *have, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        *have += (size_t)k;
        if (*have + 1 >= c->cap && *have < want) {
            size_t nc = c->cap * 2;
            char *nb = realloc(c->buf, nc);
            if (nb == NULL)
                return -1;
            c->buf = nb;
            c->cap = nc;
        }
    }
    c->buf[*have] = '\0';
    return 0;
}

/* Reads one response. Returns the status, or -1 on a broken connection.
 * *body / *body_len point into c->buf (de-chunked in place); *close_after
 * is set when the server said Connection: close. */
static int read_response(client *c, char **body, size_t *body_len, int *close_after)
{
    size_t have = 0;
    char *eoh = NULL;
    *close_after = 0;
    for (;;) {
        if (fill(c, &have, have + 1) != 0)
            return -1;
        eoh = strstr(c->buf, "\r\n\r\n");
        if (eoh != NULL)
            break;
        if (have > 1 << 20)
            return -1;
    }
    size_t hlen = (size_t)(eoh - c->buf) + 4;
    int status = 0;
    if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    long long clen = -1;
    int chunked = 0;
    for (char *line = strstr(c->buf, "\r\n") + 2; line < eoh; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            clen = atoll(line + 15);
        else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 && strcasestr(line, "chunked") &&
                 strcasestr(line, "chunked") < strstr(line, "\r\n"))
            chunked = 1;
        else if (strncasecmp(line, "Connection:", 11) == 0 && strcasestr(line, "close") &&
                 strcasestr(line, "close") < strstr(line, "\r\n"))
            *close_after = 1;
    }
    if (!chunked) {
        if (clen < 0) { /* body until close */
            while (fill(c, &have, have + 1) == 0)
                ;
            *close_after = 1;
            clen = (long long)(have - hlen);
        } else if (fill(c, &have, hlen + (size_t)clen) != 0)
            return -1;
        *body = c->buf + hlen;
        *body_len = (size_t)clen;
        return status;
    }
    /* chunked: de-chunk in place behind the header */
    size_t pos = hlen, out = hlen;
    for (;;) {
        char *crlf;
        while ((crlf = strstr(c->buf + pos, "\r\n")) == NULL)
            if (fill(c, &have, have + 1) != 0)
                return -1;
        size_t n = strtoul(c->buf + pos, NULL, 16);
        size_t data = (size_t)(crlf - c->buf) + 2;
        if (fill(c, &have, data + n + 2) != 0)
            return -1;
        if (n == 0) { /* last chunk; skip trailers */
            pos = data;
            while (strstr(c->buf + pos, "\r\n") != c->buf + pos) {
                char *e;
                while ((e = strstr(c->buf + pos, "\r\n")) == NULL)
                    if (fill(c, &have, have + 1) != 0)
                        return -1;
                pos = (size_t)(e - c->buf) + 2;
                if (fill(c, &have, pos + 2) != 0)
                    return -1;
            }
            break;
        }
        memmove(c->buf + out, c->buf + data, n);
        out += n;
        pos = data + n + 2;
    }
    c->buf[out] = '\0';
    *body = c->buf + hlen;
    *body_len = out - hlen;
    return status;
}

/* Sums the numbers of "timings_ms": {...} of a 200 response. */
static void add_timings(client *c, const char *body)
{
    const char *t = strstr(body, "\"timings_ms\"");
    if (t == NULL)
        return;
    const char *end = strchr(t, '}');
    static const char *names[] = {"\"decode\"", "\"queue\"", "\"model\"", "\"total\""};
    double *sums[] = {&c->s_decode, &c->s_queue, &c->s_model, &c->s_total};
    for (int i = 0; i < 4; i++) {
        const char *k = strstr(t, names[i]);
        if (k == NULL || (end != NULL && k > end))
            continue;
        k = strchr(k, ':');
        if (k != NULL)
            *sums[i] += strtod(k + 1, NULL);
    }
    c->n_timings++;
}

/* One request on the client's connection (reconnecting once if the server
 * closed it). Returns the status, or -1. */
static int one_request(client *c, char **body)
{
    shared *sh = c->sh;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->fd < 0) {
            c->fd = connect_loopback(sh->port, sh->timeout_s);
            if (c->fd < 0)
                return -1;
            if (attempt > 0 || c->n200 + c->n503 + c->nother > 0)
                c->reconnects++;
        }
        size_t blen = 0;
        int close_after = 0;
        int st = -1;
        /* the head ends in its last header line: the key (or nothing) and
         * the blank line follow */
        char key[96] = "\r\n";
        if (sh->idem_keys)
            snprintf(key, sizeof key, "Idempotency-Key: bench-%d-%d-%d\r\n\r\n", (int)getpid(),
                     c->id, c->sent++);
        if (send_all(c->fd, sh->head, sh->head_len) == 0 &&
            send_all(c->fd, key, strlen(key)) == 0 &&
            send_all(c->fd, sh->body, sh->body_len) == 0)
            st = read_response(c, body, &blen, &close_after);
        if (st < 0 || close_after) {
            close(c->fd);
            c->fd = -1;
        }
        if (st >= 0)
            return st;
    }
    return -1;
}

static void *client_main(void *arg)
{
    client *c = arg;
    shared *sh = c->sh;
    char *body = NULL;
    for (int i = 0; i < sh->warmup; i++) {
        int st = one_request(c, &body);
        if (st == 503)
            sleep_s(0.05);
    }
    pthread_barrier_wait(&sh->barrier); /* warm-ups done */
    pthread_barrier_wait(&sh->barrier); /* t_start set */
    for (;;) {
        if (bench_now() - sh->t_start >= sh->duration)
            break;
        int ticket = atomic_fetch_add(&sh->next, 1);
        if (ticket >= sh->requests)
            break;
        double t0 = bench_now();
        int st = one_request(c, &body);
        double dt = bench_now() - t0;
        if (st == 200) {
            c->n200++;
            if (c->n_lat == c->cap_lat) {
                c->cap_lat = c->cap_lat ? c->cap_lat * 2 : 256;
                c->lat = realloc(c->lat, (size_t)c->cap_lat * sizeof *c->lat);
                if (c->lat == NULL)
                    abort();
            }
            c->lat[c->n_lat++] = dt;
            add_timings(c, body);
        } else if (st == 503) {
            c->n503++;
            sleep_s(0.05); /* back off a little, as Retry-After asks */
        } else if (st < 0) {
            c->nerr++;
            sleep_s(0.1);
        } else {
            c->nother++;
            if (c->nother <= 3)
                fprintf(stderr, "bench_http: client %d: status %d: %.300s\n", c->id, st,
                        body ? body : "");
        }
        c->t_end = bench_now();
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_http --url http://127.0.0.1:PORT --product ID --key KEY "
               "--image FILE\n"
               "       [--clients C (4)] [--requests N (100)] [--duration S (60)]\n"
               "       [--warmup W (1 per client)] [--query '?store=false'] "
               "[--timeout S (300)] [--label TEXT]\n"
               "       [--idempotency-keys 1 (a fresh Idempotency-Key on each request)]\n");
}

int main(int argc, char **argv)
{
    const char *url = NULL, *product = NULL, *key = NULL, *image = NULL, *query = "";
    const char *label = "";
    int clients = 4, requests = 100, warmup = 1, timeout_s = 300, idem_keys = 0;
    double duration = 60;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_http: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--url"))
            url = v;
        else if (!strcmp(a, "--product"))
            product = v;
        else if (!strcmp(a, "--key"))
            key = v;
        else if (!strcmp(a, "--image"))
            image = v;
        else if (!strcmp(a, "--query"))
            query = v;
        else if (!strcmp(a, "--label"))
            label = v;
        else if (!strcmp(a, "--clients"))
            clients = atoi(v);
        else if (!strcmp(a, "--requests"))
            requests = atoi(v);
        else if (!strcmp(a, "--warmup"))
            warmup = atoi(v);
        else if (!strcmp(a, "--timeout"))
            timeout_s = atoi(v);
        else if (!strcmp(a, "--idempotency-keys"))
            idem_keys = atoi(v);
        else if (!strcmp(a, "--duration"))
            duration = atof(v);
        else {
            fprintf(stderr, "bench_http: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (url == NULL || product == NULL || key == NULL || image == NULL || clients < 1 ||
        clients > 1024 || requests < 1 || warmup < 0 || duration <= 0 || timeout_s < 1) {
        usage(stderr);
        return 2;
    }
    int port = 0;
    char host[64] = "";
    if (sscanf(url, "http://%63[^:/]:%d", host, &port) != 2 || port < 1 || port > 65535 ||
        (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "localhost") != 0)) {
        fprintf(stderr, "bench_http: --url must be http://127.0.0.1:PORT (loopback only)\n");
        return 2;
    }
    for (const char *p = product; *p; p++)
        if (!(*p == '.' || *p == '_' || *p == '-' || (*p >= '0' && *p <= '9') ||
              (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
            fprintf(stderr, "bench_http: bad product id\n");
            return 2;
        }

    FILE *f = fopen(image, "rb");
    if (f == NULL) {
        fprintf(stderr, "bench_http: cannot open %s\n", image);
        return 2;
    }
    fseek(f, 0, SEEK_END);
    long flen = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *body = malloc(flen > 0 ? (size_t)flen : 1);
    if (flen <= 0 || body == NULL || fread(body, 1, (size_t)flen, f) != (size_t)flen) {
        fprintf(stderr, "bench_http: cannot read %s\n", image);
        return 2;
    }
    fclose(f);
    const char *ctype = (flen > 4 && body[0] == 0x89 && body[1] == 'P') ? "image/png"
                                                                         : "image/jpeg";

    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.port = port;
    int hl = asprintf(&sh.head,
                      "POST /v1/products/%s/inspect%s HTTP/1.1\r\n"
                      "Host: 127.0.0.1:%d\r\n"
                      "Authorization: Bearer %s\r\n"
                      "Content-Type: %s\r\n"
                      "Content-Length: %ld\r\n"
                      "Connection: keep-alive\r\n",
                      product, query, port, key, ctype, flen);
    if (hl < 0)
        return 1;
    sh.head_len = (size_t)hl;
    sh.body = body;
    sh.body_len = (size_t)flen;
    sh.requests = requests;
    sh.duration = duration;
    sh.warmup = warmup;
    sh.timeout_s = timeout_s;
    sh.idem_keys = idem_keys;
    atomic_init(&sh.next, 0);
    pthread_barrier_init(&sh.barrier, NULL, (unsigned)clients + 1);
    client *cs = calloc((size_t)clients, sizeof *cs);
    pthread_t *th = calloc((size_t)clients, sizeof *th);
    if (cs == NULL || th == NULL)
        return 1;
    sh.clients = cs;

    printf("bench_http: %s%s: %d client(s), %d request(s) max, %.0f s max, %d warm-up "
           "request(s) each, body %ld bytes %s\n",
           url, query, clients, requests, duration, warmup, flen, ctype);
    printf("  load average (1 min) at start: %.2f\n", bench_load1());
    fflush(stdout);
    for (int i = 0; i < clients; i++) {
        cs[i].sh = &sh;
        cs[i].id = i;
        cs[i].fd = -1;
        if (pthread_create(&th[i], NULL, client_main, &cs[i]) != 0) {
            fprintf(stderr, "bench_http: pthread_create failed\n");
            return 1;
        }
    }
    pthread_barrier_wait(&sh.barrier); /* all warm-ups done */
    sh.t_start = bench_now();
    pthread_barrier_wait(&sh.barrier); /* clients read t_start only after this */
    for (int i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    double t_end = sh.t_start;
    int n200 = 0, n503 = 0, nother = 0, nerr = 0, nlat = 0, reconn = 0, ntim = 0;
    double sd = 0, sq = 0, sm = 0, stot = 0;
    for (int i = 0; i < clients; i++) {
        if (cs[i].t_end > t_end)
            t_end = cs[i].t_end;
        n200 += cs[i].n200;
        n503 += cs[i].n503;
        nother += cs[i].nother;
        nerr += cs[i].nerr;
        nlat += cs[i].n_lat;
        reconn += cs[i].reconnects;
        ntim += cs[i].n_timings;
        sd += cs[i].s_decode;
        sq += cs[i].s_queue;
        sm += cs[i].s_model;
        stot += cs[i].s_total;
    }
    double *lat = malloc((size_t)(nlat > 0 ? nlat : 1) * sizeof *lat);
    for (int i = 0, k = 0; i < clients; i++)
        for (int j = 0; j < cs[i].n_lat; j++)
            lat[k++] = cs[i].lat[j] * 1000.0;
    double wall = t_end - sh.t_start;
    double rps = wall > 0 ? n200 / wall : 0;
    double mean = 0;
    for (int i = 0; i < nlat; i++)
        mean += lat[i];
    mean = nlat ? mean / nlat : 0;
    double p50 = bench_percentile(lat, nlat, 0.50);
    double p95 = bench_percentile(lat, nlat, 0.95);
    double p99 = bench_percentile(lat, nlat, 0.99);
    double pmax = nlat ? lat[nlat - 1] : 0;
    double k = ntim ? 1.0 / ntim : 0;
    printf("  %d x 200, %d x 503, %d other, %d connection errors, %d reconnects in %.2f s\n",
           n200, n503, nother, nerr, reconn, wall);
    printf("  throughput %.3f inspections/s; latency ms: mean %.1f p50 %.1f p95 %.1f p99 %.1f "
           "max %.1f\n",
           rps, mean, p50, p95, p99, pmax);
    printf("  server timings_ms (mean): decode %.1f queue %.1f model %.1f total %.1f\n", sd * k,
           sq * k, sm * k, stot * k);
    printf("  load average (1 min) at end: %.2f\n", bench_load1());
    printf("{\"bench\":\"http\",\"label\":\"%s\",\"clients\":%d,\"requests\":%d,\"ok\":%d,"
           "\"status_503\":%d,\"status_other\":%d,\"errors\":%d,\"reconnects\":%d,"
           "\"wall_s\":%.3f,\"throughput_rps\":%.4f,\"latency_ms\":{\"mean\":%.2f,\"p50\":%.2f,"
           "\"p95\":%.2f,\"p99\":%.2f,\"max\":%.2f},\"server_ms\":{\"decode\":%.2f,"
           "\"queue\":%.2f,\"model\":%.2f,\"total\":%.2f},\"body_bytes\":%ld,\"load1\":%.2f}\n",
           label, clients, requests, n200, n503, nother, nerr, reconn, wall, rps, mean, p50,
           p95, p99, pmax, sd * k, sq * k, sm * k, stot * k, flen, bench_load1());
    for (int i = 0; i < clients; i++) {
        free(cs[i].lat);
        free(cs[i].buf);
    }
    free(lat);
    free(cs);
    free(th);
    free(sh.head);
    free(body);
    pthread_barrier_destroy(&sh.barrier);
    return n200 > 0 ? 0 : 1;
}
