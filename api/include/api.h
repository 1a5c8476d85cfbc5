/*
 * api.h - the HTTP front end (API v1, docs/API.md) on libmicrohttpd.
 * The only header of api/ that server/main.c includes.
 *
 *     api_ctx ctx = {.st = st, .pool = pool, .jobs = jobs, .inspect = insp, .cfg = &cfg};
 *     api_bootstrap_admin(st, cfg.data_dir, err, sizeof err);
 *     api_server *srv;
 *     api_start(&ctx, &srv, err, sizeof err);  printf("%d", api_port(srv));
 *     ... on SIGTERM: api_quiesce(srv); api_drain(srv, 30000); api_stop(srv);
 *
 * Thread-safety: api_start/api_quiesce/api_drain/api_stop from one thread
 * (main); the handlers run on MHD's connection threads and use ctx's
 * thread-safe components.
 */
#ifndef CFA_API_H
#define CFA_API_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "inspect.h"
#include "jobs.h"
#include "pool.h"
#include "render.h"
#include "store.h"

typedef struct api_ctx {
    store_t *st;
    pool_t *pool;     /* may be NULL while the backbone is not loaded: readyz 503 */
    jobs_t *jobs;     /* may be NULL: training requests stay queued            */
    inspect_t *inspect; /* POST /inspect (over st and pool); NULL: 503       */
    struct img_budget *pixels; /* decoded pixels in flight (budget.h); NULL: none */
    const cfg_t *cfg;
    const char *version;
    const char *web_dir; /* the console's files: set by api_start (static.c) */
    const uint8_t *bundle_key; /* --bundle-key-file: signs exports, required of imports */
    size_t bundle_key_len;
    struct follow *follow; /* a replica's follower (follow.h); NULL on a trainer */
} api_ctx;

typedef struct api_server api_server;

/* On first start (no active key in the database) installs CFA_ADMIN_KEY
 * as an admin key, or else generates one and writes it to
 * <data_dir>/admin.key (mode 0600), logging the path. 0 on success. */
int api_bootstrap_admin(store_t *st, const char *data_dir, char *err, size_t errlen);

/* Starts the MHD daemon on cfg->listen_host:listen_port. ctx must outlive
 * the server. 0 on success, -1 with a message in err. */
int api_start(api_ctx *ctx, api_server **out /* OUT */, char *err, size_t errlen);
/* The port actually bound (useful with port 0). */
int api_port(api_server *s);
/* Serves one already-connected stream socket (an end of a socketpair) as a
 * connection from 127.0.0.1, on its own thread like an accepted one; the
 * daemon closes fd. The whole-request fuzz harness (tests/fuzz/) drives the
 * server through it. 0 on success, -1 (fd closed) when refused. */
int api_serve_fd(api_server *s, int fd);
/* Stops accepting new connections; requests in flight continue. */
void api_quiesce(api_server *s);
/* Waits until no request is in flight or timeout_ms passed; returns the
 * number still in flight. */
int api_drain(api_server *s, int timeout_ms);
/* Closes every connection, joins the threads and frees. NULL is a no-op. */
void api_stop(api_server *s);

#endif
