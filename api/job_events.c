/* job_events.c - GET /v1/jobs/{job_id}/events: a training job's progress as
 * Server-Sent Events (text/event-stream), so a console or a script sees each
 * step without polling. Each change of the job is one `event: progress`
 * whose data is the job as GET /v1/jobs/{id} gives it; the last is `event:
 * end` (succeeded, failed or canceled) and the stream closes. A comment line
 * every 15 s keeps idle proxies and the connection timeout from closing a
 * stream whose job waits in the queue.
 *
 * The stream is an MHD callback response: with a thread per connection, the
 * callback may wait on its own thread, so it polls the store (the job
 * runner's progress is written there) every 250 ms and blocks no one else. */
#define _GNU_SOURCE
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <stdatomic.h>

#include "base_alloc.h"
#include "base_clock.h"

#define EVENTS_POLL_MS 250
#define EVENTS_KEEPALIVE_MS 15000

/* Set by api_quiesce: open streams end at their next poll, so a console left
 * on the training page does not hold the shutdown's drain for its 30 s. */
static atomic_int events_closing;

void job_events_closing(int closing) { atomic_store(&events_closing, closing); }

typedef struct {
    api_ctx *ctx;
    char id[ROUTE_PARAM_MAX];
    char *last;        /* the job's JSON at the last event               */
    char *pending;     /* the event being written out                   */
    size_t len, off;
    int ended;         /* the end event is queued: close after it        */
    double last_sent;  /* mono_ms() of the last write                    */
} events_state;

static int job_done(store_job_state s)
{
    return s == STORE_JOB_SUCCEEDED || s == STORE_JOB_FAILED || s == STORE_JOB_CANCELED;
}

static void set_pending(events_state *s, char *text)
{
    free(s->pending);
    s->pending = text;
    s->len = strlen(text);
    s->off = 0;
    s->last_sent = mono_ms();
}

/* Looks at the job once: queues an event when it changed, and returns 1;
 * 0 when nothing changed; -1 when the job is gone or unreadable. */
static int events_poll(events_state *s)
{
    store_job_t j;
    memset(&j, 0, sizeof j);
    if (store_job_get(s->ctx->st, s->id, &j) != STORE_OK)
        return -1;
    int done = job_done(j.state);
    json_t *o = job_json(&j);
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(o);
    store_job_clear(&j);
    if (text == NULL)
        return -1;
    if (s->last != NULL && strcmp(s->last, text) == 0 && !done) {
        free(text);
        return 0;
    }
    size_t n = strlen(text) + 48;
    char *ev = xmalloc(n);
    snprintf(ev, n, "event: %s\ndata: %s\n\n", done ? "end" : "progress", text);
    free(s->last);
    s->last = text;
    s->ended = done;
    set_pending(s, ev);
    return 1;
}

/* Waits for the next thing to send: an event, or a keep-alive comment. */
static int events_next(events_state *s)
{
    for (;;) {
        if (atomic_load(&events_closing))
            return -1;
        int rc = events_poll(s);
        if (rc != 0)
            return rc;
        if (mono_ms() - s->last_sent >= EVENTS_KEEPALIVE_MS) {
            set_pending(s, xstrdup(": keep-alive\n\n"));
            return 1;
        }
        struct timespec ts = {0, EVENTS_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static ssize_t events_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    events_state *s = cls;
    (void)pos;
    if (s->off == s->len) {
        if (s->ended || events_next(s) < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(buf, s->pending + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void events_free(void *cls)
{
    events_state *s = cls;
    free(s->last);
    free(s->pending);
    free(s);
}

enum MHD_Result h_job_events(hreq *r)
{
    if (!store_valid_id(r->params[0]))
        return reply_error(r, 404, "not_found", "no such job: %s", r->params[0]);
    events_state *s = xcalloc(1, sizeof *s);
    s->ctx = r->ctx;
    snprintf(s->id, sizeof s->id, "%s", r->params[0]);
    if (events_poll(s) < 0) { /* the first event is the job as it is now */
        events_free(s);
        store_job_t j;
        memset(&j, 0, sizeof j);
        store_status ss = store_job_get(r->ctx->st, r->params[0], &j);
        store_job_clear(&j);
        return store_fail(r, ss != STORE_OK ? ss : STORE_ERR_IO, "job", r->params[0]);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, events_read, s, events_free);
    if (resp == NULL) {
        events_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* nginx: pass each event on */
    r->status = 200;
    enum MHD_Result ret = MHD_queue_response(r->con, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}
