/* events.c - the event log over HTTP: GET /v1/events, and the helpers with
 * which the handlers hand the store the event of the change they make (the
 * store writes it in the change's transaction). */
#define _GNU_SOURCE
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void event_fill(hreq *r, store_event_t *e, const char *kind, const char *product,
                json_t *before, json_t *after)
{
    memset(e, 0, sizeof *e);
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    snprintf(e->product, sizeof e->product, "%s", product ? product : "");
    snprintf(e->key_id, sizeof e->key_id, "%.32s", r->key_id);
    snprintf(e->request_id, sizeof e->request_id, "%s", r->request_id);
    e->before_json = before ? json_dumps(before, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    e->after_json = after ? json_dumps(after, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(before);
    json_decref(after);
}

/* after_fn of the store's write calls (store_event_t): `after` from the row
 * the change wrote, inside its transaction, so ids and times the store made
 * are in it and the row commits with the change. */
static char *dump_after(json_t *o)
{
    char *t = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(o);
    return t;
}

char *event_after_product(const void *row, void *ctx)
{
    (void)ctx;
    return dump_after(product_json(row));
}

char *event_after_key(const void *row, void *ctx)
{
    (void)ctx;
    return dump_after(key_json(row));
}

char *event_after_job(const void *row, void *ctx)
{
    (void)ctx;
    return dump_after(job_json(row));
}

char *event_after_image(const void *row, void *ctx)
{
    (void)ctx;
    const store_image_t *im = row;
    return dump_after(json_pack("{s:[s]}", "images", im->sha256));
}

char *event_before_model(const void *row, void *ctx)
{
    (void)ctx;
    const store_model_t *m = row;
    return dump_after(json_pack("{s:I,s:f,s:f}", "version", (json_int_t)m->version, "threshold",
                                m->threshold, "threshold_ng", m->threshold_ng));
}

char *event_mask(const void *row, void *ctx)
{
    (void)ctx;
    const store_mask_t *m = row;
    return dump_after(json_pack("{s:s,s:i,s:i}", "sha256", m->sha256, "width", m->width,
                                "height", m->height));
}

void event_fill_row(hreq *r, store_event_t *e, const char *kind, const char *product,
                    json_t *before, char *(*after_fn)(const void *row, void *ctx))
{
    event_fill(r, e, kind, product, before, NULL);
    e->after_fn = after_fn;
}

json_t *product_state(hreq *r, const char *id)
{
    store_product_t p;
    memset(&p, 0, sizeof p);
    if (store_product_get(r->ctx->st, id, &p) != STORE_OK)
        return NULL;
    json_t *o = product_json(&p);
    store_product_clear(&p);
    return o;
}

static json_t *event_json(const store_event_t *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer(e->seq));
    json_object_set_new(o, "at", time_json(e->at));
    json_object_set_new(o, "kind", json_string(e->kind));
    json_object_set_new(o, "product", e->product[0] ? json_string(e->product) : json_null());
    json_object_set_new(o, "key_id", e->key_id[0] ? json_string(e->key_id) : json_null());
    json_object_set_new(o, "request_id",
                        e->request_id[0] ? json_string(e->request_id) : json_null());
    json_object_set_new(o, "before", json_text_or(e->before_json, json_null()));
    json_object_set_new(o, "after", json_text_or(e->after_json, json_null()));
    return o;
}

/* kind, product, since and until of GET /v1/events into f; replies 400 and
 * returns -1 on a bad one. */
static int event_filters(hreq *r, store_event_filter *f)
{
    f->kind = req_query(r, "kind");
    f->product = req_query(r, "product");
    const char *since = req_query(r, "since"), *until = req_query(r, "until");
    if (f->kind != NULL && store_event_kind_index(f->kind) < 0) {
        reply_error(r, 400, "invalid_kind", "kind must be one of the event kinds (docs/API.md)");
        return -1;
    }
    if (f->product != NULL && !store_valid_product_id(f->product)) {
        reply_error(r, 400, "invalid_product_id", "invalid product id");
        return -1;
    }
    if (since != NULL && store_time_parse(since, &f->since) != 0) {
        reply_error(r, 400, "invalid_since", "since must be an RFC 3339 time");
        return -1;
    }
    if (until != NULL && store_time_parse(until, &f->until) != 0) {
        reply_error(r, 400, "invalid_until", "until must be an RFC 3339 time");
        return -1;
    }
    return 0;
}

enum MHD_Result h_event_list(hreq *r)
{
    store_event_filter f;
    memset(&f, 0, sizeof f);
    store_event_t *arr = NULL;
    size_t n = 0;
    char next[STORE_CURSOR_LEN] = "";
    if (query_page(r, store_valid_seq_cursor, &f.limit, &f.after) != 0 ||
        event_filters(r, &f) != 0)
        return MHD_YES;
    store_status ss = store_event_list(r->ctx->st, &f, &arr, &n, next);
    if (ss != STORE_OK)
        return store_fail(r, ss, "event list", "");
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, event_json(&arr[i]));
    store_events_free(arr, n);
    return reply_list(r, "events", a, next);
}
