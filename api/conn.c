/* conn.c - whole-header and whole-body deadlines, and room for new
 * connections and health probes at the connection limit (conn.h). */
#define _GNU_SOURCE
#include "conn.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "base_alloc.h"
#include "base_clock.h"
#include "base_log.h"
#include "metrics_prom.h"

/* How often the reaper looks: deadlines are met to within this. */
#define REAP_TICK_MS 200

enum phase { PH_HEADER, PH_BODY, PH_BUSY };

typedef struct conn {
    struct conn *prev, *next;
    int fd;
    enum phase phase;
    double since_ms;    /* start of the phase (mono_ms)               */
    double deadline_ms; /* 0: none (PH_BUSY)                          */
    int closing;        /* shut down by us, MHD not done with it yet  */
} conn;

struct conn_table {
    conn_params p;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t reaper;
    int stop;
    conn *head, *tail;
    int n_live; /* connections not closing */
};

/* The table's entry of an MHD connection (set by conn_notify). */
static conn *entry_of(struct MHD_Connection *con)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

static void set_phase(conn *c, enum phase ph, double deadline_after_ms)
{
    c->phase = ph;
    c->since_ms = mono_ms();
    c->deadline_ms = ph == PH_BUSY ? 0 : c->since_ms + deadline_after_ms;
}

/* Called with t->mu held. The fd stays open until MHD's CLOSED
 * notification, which waits for t->mu, so it cannot be another socket. */
static void close_conn(conn_table *t, conn *c, const char *reason)
{
    shutdown(c->fd, SHUT_RDWR);
    c->closing = 1;
    t->n_live--;
    mp_conn_closed(reason);
    log_write(LL_DEBUG, "http", "connection closed: %s", reason);
}

/* Over max_connections, the connections that have waited longest for
 * their header (slow, or idle between keep-alive requests) make room, so
 * that the slots over the limit stay free for probes. Called with t->mu held. */
static void make_room(conn_table *t, const conn *except)
{
    while (t->n_live > t->p.max_connections) {
        conn *oldest = NULL;
        for (conn *c = t->head; c != NULL; c = c->next)
            if (c != except && !c->closing && c->phase == PH_HEADER &&
                (oldest == NULL || c->since_ms < oldest->since_ms))
                oldest = c;
        if (oldest == NULL)
            return;
        close_conn(t, oldest, "evicted");
    }
}

static void *reaper_main(void *arg)
{
    conn_table *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec until = wall_deadline(REAP_TICK_MS);
        pthread_cond_timedwait(&t->cv, &t->mu, &until);
        double now = mono_ms();
        for (conn *c = t->head; c != NULL; c = c->next)
            if (!c->closing && c->deadline_ms > 0 && now >= c->deadline_ms)
                close_conn(t, c, c->phase == PH_HEADER ? "header_timeout" : "body_timeout");
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

conn_table *conn_start(const conn_params *p)
{
    conn_table *t = xcalloc(1, sizeof *t);
    t->p = *p;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (pthread_create(&t->reaper, NULL, reaper_main, t) != 0) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return NULL;
    }
    return t;
}

void conn_stop(conn_table *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->reaper, NULL);
    while (t->head != NULL) { /* none after MHD_stop_daemon; kept safe anyway */
        conn *c = t->head;
        t->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static void on_started(conn_table *t, struct MHD_Connection *con, void **socket_context)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
    conn *c = xcalloc(1, sizeof *c);
    c->fd = ci != NULL ? ci->connect_fd : -1;
    *socket_context = c;
    pthread_mutex_lock(&t->mu);
    set_phase(c, PH_HEADER, t->p.header_timeout_s * 1000.0);
    c->prev = t->tail;
    if (t->tail != NULL)
        t->tail->next = c;
    else
        t->head = c;
    t->tail = c;
    t->n_live++;
    make_room(t, c);
    pthread_mutex_unlock(&t->mu);
}

static void on_closed(conn_table *t, conn *c)
{
    pthread_mutex_lock(&t->mu);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        t->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        t->tail = c->prev;
    if (!c->closing)
        t->n_live--;
    pthread_mutex_unlock(&t->mu);
    free(c);
}

void conn_notify(void *cls, struct MHD_Connection *con, void **socket_context,
                 enum MHD_ConnectionNotificationCode code)
{
    conn_table *t = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        on_started(t, con, socket_context);
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context != NULL) {
        on_closed(t, *socket_context);
        *socket_context = NULL;
    }
}

int conn_headers_done(conn_table *t, struct MHD_Connection *con, size_t body_bytes, int probe)
{
    conn *c = entry_of(con);
    int ret = 0;
    if (c == NULL)
        return 0;
    double body_ms = t->p.body_timeout_s * 1000.0 +
                     (double)body_bytes / (t->p.body_min_rate_kb * 1000.0) * 1000.0;
    pthread_mutex_lock(&t->mu);
    set_phase(c, PH_BODY, body_ms);
    /* a probe may use the slots over the limit; anything else only what
     * waiting connections (some may have become idle since) can give up */
    make_room(t, c);
    if (!probe && t->n_live > t->p.max_connections)
        ret = -1;
    pthread_mutex_unlock(&t->mu);
    return ret;
}

static void enter(conn_table *t, struct MHD_Connection *con, enum phase ph)
{
    conn *c = entry_of(con);
    if (c == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    set_phase(c, ph, ph == PH_HEADER ? t->p.header_timeout_s * 1000.0 : 0);
    pthread_mutex_unlock(&t->mu);
}

void conn_body_done(conn_table *t, struct MHD_Connection *con) { enter(t, con, PH_BUSY); }

void conn_request_done(conn_table *t, struct MHD_Connection *con) { enter(t, con, PH_HEADER); }
