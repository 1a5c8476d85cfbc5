/* conn.h - the daemon's own accounting of open connections (api/ only).
 *
 * libmicrohttpd's --request-timeout restarts on every byte, so a client
 * sending one byte a second holds a connection forever, and its connection
 * limit is applied at accept, before any path is known, so idle or slow
 * sockets could lock out /healthz. This table closes what MHD cannot:
 *
 *   - a header not complete within header_timeout_s of the accept (or of the
 *     end of the previous request on a keep-alive connection);
 *   - a body not complete within body_timeout_s + its size / body_min_rate;
 *   - when more than max_connections are open (MHD admits
 *     CONN_PROBE_SLOTS more for the health probes), the connection that has
 *     waited longest for its header, so a new one can be served; a request
 *     other than a probe that still finds the table over max_connections
 *     is refused (conn_headers_done).
 *
 * A connection is closed with shutdown(2): MHD's thread for it then reads EOF
 * and cleans up its own state. The table owns one reaper thread.
 *
 *     conn_table *t = conn_start(&params);
 *     MHD_start_daemon(..., MHD_OPTION_NOTIFY_CONNECTION, conn_notify, t, ...);
 *     ... on_access: conn_headers_done / conn_body_done; on_completed: conn_request_done
 *     MHD_stop_daemon(d); conn_stop(t);
 *
 * Thread-safety: every function may be called from any thread (one mutex).
 */
#ifndef CFA_API_CONN_H
#define CFA_API_CONN_H

#include <microhttpd.h>
#include <stddef.h>

/* Connections MHD accepts over max_connections, kept for /healthz and
 * /readyz: two, so a liveness and a readiness probe can arrive together. */
#define CONN_PROBE_SLOTS 2

typedef struct conn_params {
    int max_connections;
    int header_timeout_s;
    int body_timeout_s;    /* the floor of a body's deadline          */
    int body_min_rate_kb;  /* KB/s a body must at least arrive at     */
} conn_params;

typedef struct conn_table conn_table;

/* NULL when the reaper thread cannot start. Freed by conn_stop. */
conn_table *conn_start(const conn_params *p);
/* After MHD_stop_daemon (which reports every connection closed). NULL: no-op. */
void conn_stop(conn_table *t);

/* MHD_OPTION_NOTIFY_CONNECTION's callback; cls is the table. */
void conn_notify(void *cls, struct MHD_Connection *con, void **socket_context,
                 enum MHD_ConnectionNotificationCode code);

/* The request's headers are in (the first access callback); body_bytes is
 * what the body deadline is sized for. Returns 0 to serve it, -1 when the
 * daemon is over max_connections and this is not a probe: answer 503 and
 * close. */
int conn_headers_done(conn_table *t, struct MHD_Connection *con, size_t body_bytes, int probe);
/* The whole body is in: the handler's time is not limited here. */
void conn_body_done(conn_table *t, struct MHD_Connection *con);
/* The response is sent: a keep-alive connection waits for its next header. */
void conn_request_done(conn_table *t, struct MHD_Connection *con);

#endif
