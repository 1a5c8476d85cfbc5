/* test_conn.c - api/conn.c under a real libmicrohttpd daemon on 127.0.0.1
 * (thread per connection, as api/http.c runs it), without the rest of the
 * API: header and body deadlines, room made at the limit, the 503 outside
 * the probe slots, and many clients at once (run under TSan too). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"

typedef struct server {
    struct MHD_Daemon *d;
    conn_table *t;
    int port;
} server;

static enum MHD_Result reply(struct MHD_Connection *con, unsigned status, const char *hdr)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(2, (void *)"ok",
                                                             MHD_RESPMEM_PERSISTENT);
    if (hdr != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, hdr);
    enum MHD_Result ret = MHD_queue_response(con, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The hooks api/http.c calls, in the same places. */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *con, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    server *s = cls;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = s;
        const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        size_t n = cl != NULL ? strtoul(cl, NULL, 10) : 0;
        if (conn_headers_done(s->t, con, n, strcmp(url, "/healthz") == 0) != 0)
            return reply(con, 503, "close");
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    conn_body_done(s->t, con);
    return reply(con, 200, NULL);
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    server *s = cls;
    (void)con_cls;
    (void)toe;
    conn_request_done(s->t, con);
}

static void start(server *s, int max_conn, int header_s, int body_s, int rate_kb)
{
    conn_params p = {max_conn, header_s, body_s, rate_kb};
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->t = conn_start(&p);
    assert_non_null(s->t);
    s->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
            MHD_USE_POLL,
        0, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, conn_notify,
        s->t, MHD_OPTION_CONNECTION_LIMIT, (unsigned)(max_conn + CONN_PROBE_SLOTS),
        MHD_OPTION_END);
    assert_non_null(s->d);
    s->port = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static void stop(server *s)
{
    MHD_stop_daemon(s->d);
    conn_stop(s->t);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A connection that has sent text; -1 on failure (no cmocka assert: the
 * client threads call it too). */
static int try_dial(int port, const char *text)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        send(fd, text, strlen(text), MSG_NOSIGNAL) != (ssize_t)strlen(text)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int dial(int port, const char *text)
{
    int fd = try_dial(port, text);
    assert_true(fd >= 0);
    return fd;
}

/* Reads until the end of a response header; its status, or 0 on EOF/reset/timeout. */
static int status_of(int fd, int timeout_ms)
{
    char buf[1024];
    size_t n = 0;
    while (n + 1 < sizeof buf) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0)
            return 0;
        ssize_t k = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (k <= 0)
            return 0;
        n += (size_t)k;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL)
            return (int)strtol(buf + 9, NULL, 10); /* "HTTP/1.1 200" */
    }
    return 0;
}

/* Seconds until the daemon closes fd (EOF or reset), sending one more
 * byte of a header every 200 ms; -1 if still open after limit_s. */
static double seconds_to_close(int fd, double limit_s, int trickle)
{
    double t0 = now_s();
    while (now_s() - t0 < limit_s) {
        char c;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) > 0 && recv(fd, &c, 1, 0) <= 0)
            return now_s() - t0;
        if (trickle && send(fd, "a", 1, MSG_NOSIGNAL) != 1)
            return now_s() - t0;
    }
    return -1;
}

static void test_header_deadline(void **state)
{
    (void)state;
    server s;
    start(&s, 8, 1, 60, 64);
    int fd = dial(s.port, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    double t = seconds_to_close(fd, 20, 1); /* each byte would restart MHD's timeout */
    assert_true(t >= 0.9);
    close(fd);
    /* a keep-alive connection idles into the same deadline after its reply */
    fd = dial(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(status_of(fd, 10000), 200);
    t = seconds_to_close(fd, 20, 0);
    assert_true(t >= 0.5);
    close(fd);
    stop(&s);
}

static void test_body_deadline(void **state)
{
    (void)state;
    server s;
    /* 1 s + 4000 B at 2 kB/s = 3 s */
    start(&s, 8, 60, 1, 2);
    int fd = dial(s.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\nab");
    double t = seconds_to_close(fd, 20, 1);
    assert_true(t >= 2.5);
    close(fd);
    stop(&s);
}

/* Over max_connections the connection waiting longest for its header is
 * closed; with none waiting, a request other than a probe gets 503. */
static void test_limit(void **state)
{
    (void)state;
    server s;
    start(&s, 2, 60, 60, 1);
    int a = dial(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    int b = dial(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(status_of(a, 10000), 200); /* both surely accepted */
    assert_int_equal(status_of(b, 10000), 200);
    usleep(200000); /* both back to waiting for a next request */
    int c = dial(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(status_of(c, 10000), 200);
    /* one of the idle ones made room (nothing else closes them for 60 s) */
    assert_true(seconds_to_close(a, 2, 0) >= 0 || seconds_to_close(b, 2, 0) >= 0);
    close(a);
    close(b);
    close(c);
    usleep(300000);
    /* two bodies that never come fill the limit; nothing waits for a header */
    const char *post = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab";
    int p1 = dial(s.port, post), p2 = dial(s.port, post);
    usleep(500000);
    int h = dial(s.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(status_of(h, 10000), 200);
    close(h);
    usleep(300000);
    int o = dial(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(status_of(o, 10000), 503);
    close(o);
    close(p1);
    close(p2);
    stop(&s);
}

typedef struct client_arg {
    const server *s;
    int odd; /* answers other than 200/503/none */
} client_arg;

static void *client(void *arg)
{
    client_arg *a = arg;
    for (int i = 0; i < 20; i++) {
        int fd = try_dial(a->s->port, i % 3 == 0 ? "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: a"
                                                 : "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        if (fd < 0)
            continue; /* refused at accept: allowed at the limit */
        int st = status_of(fd, i % 3 == 0 ? 50 : 10000);
        a->odd += st != 0 && st != 200 && st != 503;
        close(fd);
    }
    return NULL;
}

/* Many clients, slow and quick, against a small limit and short deadlines:
 * the table stays consistent (ASan, TSan) and the daemon still serves. */
static void test_many_clients(void **state)
{
    (void)state;
    server s;
    pthread_t th[8];
    client_arg ca[8];
    start(&s, 4, 1, 1, 64);
    for (int i = 0; i < 8; i++) {
        ca[i] = (client_arg){&s, 0};
        pthread_create(&th[i], NULL, client, &ca[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ca[i].odd, 0);
    }
    usleep(1500000); /* past the deadlines: the slow ones are gone */
    int fd = dial(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(status_of(fd, 10000), 200);
    close(fd);
    stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_deadline),
        cmocka_unit_test(test_body_deadline),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_many_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
