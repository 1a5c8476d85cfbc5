/* sinks.c - /v1/sinks (admin): result sinks and their delivery figures;
 * the settings are parsed by server/sinks (sink_spec_parse), the senders
 * run there too. A sink's secret is write-only: answers say has_secret. */
#define _GNU_SOURCE
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks.h"

static json_t *events_array(const char *events)
{
    json_t *a = json_array();
    const char *p = events;
    while (p != NULL && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        json_array_append_new(a, json_stringn(p, len));
        p = end ? end + 1 : NULL;
    }
    return a;
}

static json_t *sink_json(const store_sink_t *k)
{
    sink_spec s;
    sink_spec_from_store(k, &s);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(k->id));
    json_object_set_new(o, "kind", json_string(k->kind));
    json_object_set_new(o, "name", json_string(k->name ? k->name : ""));
    json_object_set_new(o, "product", k->product[0] ? json_string(k->product) : json_null());
    json_object_set_new(o, "events", events_array(k->events));
    json_object_set_new(o, "enabled", json_boolean(k->enabled));
    if (strcmp(k->kind, "mqtt") == 0) {
        json_object_set_new(o, "host", json_string(s.host));
        json_object_set_new(o, "port", json_integer(s.port));
        json_object_set_new(o, "topic", json_string(s.topic));
        json_object_set_new(o, "qos", json_integer(s.qos));
    } else {
        json_object_set_new(o, "url", json_string(s.url));
        json_object_set_new(o, "timeout_ms", s.timeout_ms ? json_integer(s.timeout_ms) : json_null());
        json_object_set_new(o, "has_secret", json_boolean(k->has_secret));
    }
    double age = k->oldest_at ? (double)(store_now_ms() - k->oldest_at) / 1000.0 : 0.0;
    json_object_set_new(o, "deliveries",
                        json_pack("{s:I, s:I, s:I, s:I, s:f}", "queued", (json_int_t)k->queued,
                                  "delivered", (json_int_t)k->delivered, "failed",
                                  (json_int_t)k->failed, "dead", (json_int_t)k->dead,
                                  "oldest_age_s", age > 0 ? age : 0.0));
    json_object_set_new(o, "created_at", time_json(k->created_at));
    json_object_set_new(o, "updated_at", time_json(k->updated_at));
    return o;
}

/* The sink as the store has it now, as JSON (NULL when gone). */
static json_t *sink_state(hreq *r, const char *id)
{
    store_sink_t k;
    if (store_sink_get(r->ctx->st, id, 0, &k) != STORE_OK)
        return NULL;
    json_t *o = sink_json(&k);
    store_sink_clear(&k);
    return o;
}

/* The settings of spec as the store's row (strings borrowed from spec). */
static void spec_to_row(const sink_spec *s, store_sink_t *k, char *config)
{
    snprintf(k->kind, sizeof k->kind, "%s", s->kind);
    snprintf(k->product, sizeof k->product, "%s", s->product);
    k->name = (char *)s->name;
    k->events = (char *)s->events;
    k->config_json = config;
    k->enabled = s->enabled;
}

static enum MHD_Result reply_spec_error(hreq *r, const char *err, const char *field)
{
    json_t *e = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "invalid_sink", "message", err,
                          "field", field);
    return reply_json(r, 400, e);
}

enum MHD_Result h_sink_create(hreq *r)
{
    sink_spec s;
    char err[256], field[64];
    if (sink_spec_parse((const char *)r->body, r->len, 0, &s, err, sizeof err, field,
                        sizeof field) != 0)
        return reply_spec_error(r, err, field);
    store_sink_t k;
    memset(&k, 0, sizeof k);
    char *config = sink_spec_config_json(&s);
    spec_to_row(&s, &k, config);
    /* the event's after is filled once the id is known: the store appends
     * it in the sink's transaction, so it is made here from the spec */
    store_event_t ev;
    event_fill(r, &ev, "sink.created", s.product, NULL, NULL);
    json_t *after = json_pack("{s:s, s:s, s:s, s:b}", "kind", s.kind, "name", s.name, "events",
                              s.events, "secret", s.secret[0] != '\0');
    ev.after_json = json_dumps(after, JSON_COMPACT);
    json_decref(after);
    store_status ss = store_sink_create(r->ctx->st, &k, s.secret[0] ? s.secret : NULL, &ev);
    memset(s.secret, 0, sizeof s.secret);
    store_event_clear(&ev);
    free(config);
    if (ss != STORE_OK)
        return store_fail(r, ss, "sink", "");
    char loc[96];
    snprintf(loc, sizeof loc, "/v1/sinks/%s", k.id);
    json_t *o = sink_state(r, k.id);
    return o ? reply_json_hdr(r, 201, o, "Location", loc)
             : reply_error(r, 503, "store_unavailable", "the sink was made but cannot be read");
}

enum MHD_Result h_sink_list(hreq *r)
{
    store_sink_t *arr = NULL;
    size_t limit, n = 0;
    const char *cursor;
    char next[STORE_CURSOR_LEN] = "";
    if (query_page(r, store_valid_id, &limit, &cursor) != 0)
        return MHD_YES;
    store_status ss = store_sink_list(r->ctx->st, NULL, limit, cursor, &arr, &n, next);
    if (ss != STORE_OK)
        return store_fail(r, ss, "sink list", "");
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, sink_json(&arr[i]));
    store_sinks_free(arr, n);
    return reply_list(r, "sinks", a, next);
}

/* The sink the path names; replies 404 and returns -1 when there is none. */
static int path_sink(hreq *r, store_sink_t *k)
{
    store_status ss = store_valid_id(r->params[0]) ? store_sink_get(r->ctx->st, r->params[0], 0, k)
                                                   : STORE_ERR_NOT_FOUND;
    if (ss == STORE_OK)
        return 0;
    if (ss == STORE_ERR_NOT_FOUND)
        reply_error(r, 404, "not_found", "no such sink: %s", r->params[0]);
    else
        store_fail(r, ss, "sink", r->params[0]);
    return -1;
}

enum MHD_Result h_sink_get(hreq *r)
{
    store_sink_t k;
    if (path_sink(r, &k) != 0)
        return MHD_YES;
    json_t *o = sink_json(&k);
    store_sink_clear(&k);
    return reply_json(r, 200, o);
}

enum MHD_Result h_sink_patch(hreq *r)
{
    store_sink_t k;
    sink_spec s;
    char err[256], field[64];
    if (path_sink(r, &k) != 0)
        return MHD_YES;
    json_t *before = sink_json(&k);
    sink_spec_from_store(&k, &s);
    store_sink_clear(&k);
    if (sink_spec_parse((const char *)r->body, r->len, 1, &s, err, sizeof err, field,
                        sizeof field) != 0) {
        json_decref(before);
        return reply_spec_error(r, err, field);
    }
    char *config = sink_spec_config_json(&s);
    memset(&k, 0, sizeof k);
    snprintf(k.id, sizeof k.id, "%.32s", r->params[0]);
    spec_to_row(&s, &k, config);
    store_event_t ev;
    event_fill(r, &ev, "sink.changed", s.product, before, NULL);
    json_t *after = json_pack("{s:s, s:s, s:b, s:b}", "name", s.name, "events", s.events,
                              "enabled", s.enabled, "secret_changed", s.secret_given);
    ev.after_json = json_dumps(after, JSON_COMPACT);
    json_decref(after);
    store_status ss = store_sink_update(r->ctx->st, &k, s.secret_given ? s.secret : NULL, &ev);
    memset(s.secret, 0, sizeof s.secret);
    store_event_clear(&ev);
    free(config);
    if (ss != STORE_OK)
        return store_fail(r, ss, "sink", r->params[0]);
    json_t *o = sink_state(r, r->params[0]);
    return o ? reply_json(r, 200, o) : reply_error(r, 404, "not_found", "no such sink");
}

enum MHD_Result h_sink_delete(hreq *r)
{
    store_sink_t k;
    if (path_sink(r, &k) != 0)
        return MHD_YES;
    store_event_t ev;
    event_fill(r, &ev, "sink.deleted", k.product, sink_json(&k), NULL);
    store_sink_clear(&k);
    store_status ss = store_sink_delete(r->ctx->st, r->params[0], &ev);
    store_event_clear(&ev);
    if (ss != STORE_OK)
        return store_fail(r, ss, "sink", r->params[0]);
    return reply_empty(r, 204);
}

enum MHD_Result h_sink_redeliver(hreq *r)
{
    int64_t n = 0;
    if (!store_valid_id(r->params[0]))
        return reply_error(r, 404, "not_found", "no such sink: %s", r->params[0]);
    store_status ss = store_sink_redeliver(r->ctx->st, r->params[0], &n);
    if (ss == STORE_ERR_NOT_FOUND)
        return reply_error(r, 404, "not_found", "no such sink: %s", r->params[0]);
    if (ss != STORE_OK)
        return store_fail(r, ss, "sink", r->params[0]);
    return reply_json(r, 202, json_pack("{s:I}", "requeued", (json_int_t)n));
}

/* The sinks' figures for /metrics, in the Prometheus text format (appended
 * to what mp_render wrote). NULL on failure. */
char *sinks_metrics_text(store_t *st)
{
    store_sink_t *arr = NULL;
    size_t n = 0;
    char next[STORE_CURSOR_LEN] = "";
    if (store_sink_list(st, NULL, STORE_LIST_MAX, NULL, &arr, &n, next) != STORE_OK)
        return NULL;
    static const struct {
        const char *name, *type, *help;
    } M[] = {
        {"cfa_sink_queued", "gauge", "deliveries waiting in the outbox"},
        {"cfa_sink_delivered_total", "counter", "deliveries the peer acknowledged"},
        {"cfa_sink_failed_total", "counter", "failed delivery tries"},
        {"cfa_sink_dead", "gauge", "deliveries given up after the last try (redeliver puts them back)"},
        {"cfa_sink_oldest_age_seconds", "gauge", "age of the oldest queued delivery, 0 when none"},
    };
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL) {
        store_sinks_free(arr, n);
        return NULL;
    }
    int64_t now = store_now_ms();
    for (size_t m = 0; m < sizeof M / sizeof M[0]; m++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", M[m].name, M[m].help, M[m].name, M[m].type);
        for (size_t i = 0; i < n; i++) {
            const store_sink_t *k = &arr[i];
            double v[] = {(double)k->queued, (double)k->delivered, (double)k->failed,
                          (double)k->dead, k->oldest_at ? (now - k->oldest_at) / 1000.0 : 0.0};
            fprintf(f, "%s{sink=\"%s\",kind=\"%s\"} %.17g\n", M[m].name, k->id, k->kind, v[m]);
        }
    }
    fclose(f);
    store_sinks_free(arr, n);
    return buf;
}
