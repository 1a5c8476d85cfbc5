/*
 * sinks.c - the senders' shared part: start and stop, the backoff, what a
 * delivery carries, and a failed try's bookkeeping. The senders themselves
 * are webhook.c (libcurl) and mqtt.c (libmosquitto).
 */
#define _GNU_SOURCE
#include "sinks_int.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base_log.h"

sinks_options sinks_default_options(void)
{
    return (sinks_options){.max_tries = 10, .backoff_ms = 1000, .backoff_max_ms = 300000,
                           .timeout_ms = 10000};
}

int64_t sinks_now_ms(void)
{
    return store_now_ms();
}

int64_t sinks_backoff_ms(int tries, int base_ms, int max_ms, double u)
{
    double d = base_ms;
    for (int i = 1; i < tries && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    if (u < 0 || u >= 1)
        u = 0;
    return (int64_t)(d * (0.5 + 0.5 * u));
}

static double unit_random(void)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint32_t)sinks_now_ms();
    return r / 4294967296.0;
}

int64_t sinks_note_failure(struct sinks *s, const store_outbox_t *row, const char *why)
{
    int tries = row->attempts + 1;
    int dead = tries >= s->o.max_tries;
    int64_t next =
        sinks_now_ms() + sinks_backoff_ms(tries, s->o.backoff_ms, s->o.backoff_max_ms, unit_random());
    store_status ss = store_outbox_failed(s->o.st, row->seq, row->sink_id, tries, next, dead, why);
    if (ss != STORE_OK)
        log_warn("sinks", "recording a failed delivery: %s", store_strerror(ss));
    log_info("sinks", "sink %s: delivery %lld try %d failed (%s)%s", row->sink_id,
             (long long)row->seq, tries, why, dead ? "; dead" : "");
    return dead ? sinks_now_ms() : next;
}

static json_t *time_json(int64_t ms)
{
    char buf[STORE_TIME_LEN];
    return json_string(store_time_format(ms, buf));
}

static json_t *text_json(const char *text)
{
    json_error_t je;
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, &je) : NULL;
    return v ? v : json_null();
}

static json_t *inspection_body(store_t *st, const store_outbox_t *row)
{
    store_inspection_t in;
    if (store_inspection_get(st, row->ref, &in) != STORE_OK)
        return NULL;
    json_t *o = json_pack("{s:s, s:s, s:I, s:f, s:f, s:s, s:f, s:o, s:o, s:s?}",
                          "inspection_id", in.id, "product", in.product, "model_version",
                          (json_int_t)in.model_version, "score", in.score, "threshold",
                          in.threshold, "decision", in.decision, "map_max", in.map_max,
                          "regions", text_json(in.regions_json), "created_at",
                          time_json(in.created_at), "key_id", in.key_id[0] ? in.key_id : NULL);
    /* the three-way decision and the part, as the inspect answer gives them:
     * a line's MES routes on verdict and files the result under the part */
    if (o != NULL) {
        json_object_set_new(o, "verdict", json_string(in.verdict[0] ? in.verdict : in.decision));
        json_object_set_new(o, "threshold_ng", json_real(in.threshold_ng));
        const char *names[] = {"part_id", "serial", "camera", "station", "order"};
        const char *vals[] = {in.part.part_id, in.part.serial, in.part.camera, in.part.station,
                              in.part.order};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            json_object_set_new(o, names[i], vals[i][0] ? json_string(vals[i]) : json_null());
    }
    store_inspection_clear(&in);
    return o;
}

static json_t *event_body(store_t *st, const store_outbox_t *row)
{
    store_event_t e;
    if (store_event_get(st, strtoll(row->ref, NULL, 10), &e) != STORE_OK)
        return NULL;
    json_t *o = json_pack("{s:I, s:o, s:s, s:s?, s:s?, s:s?, s:o, s:o}", "seq", (json_int_t)e.seq,
                          "at", time_json(e.at), "kind", e.kind, "product",
                          e.product[0] ? e.product : NULL, "key_id", e.key_id[0] ? e.key_id : NULL,
                          "request_id", e.request_id[0] ? e.request_id : NULL, "before",
                          text_json(e.before_json), "after", text_json(e.after_json));
    store_event_clear(&e);
    return o;
}

char *sinks_body(store_t *st, const store_outbox_t *row)
{
    int insp = strcmp(row->event, "inspection") == 0;
    json_t *data = insp ? inspection_body(st, row) : event_body(st, row);
    if (data == NULL)
        return NULL;
    char delivery[64];
    snprintf(delivery, sizeof delivery, "%s:%lld", row->sink_id, (long long)row->seq);
    json_t *o = json_pack("{s:s, s:s, s:o}", "event", row->event, "delivery", delivery,
                          insp ? "inspection" : "change", data);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

void sinks_decision(store_t *st, const store_outbox_t *row, char out[8])
{
    out[0] = '\0';
    store_inspection_t in;
    if (strcmp(row->event, "inspection") != 0 || store_inspection_get(st, row->ref, &in) != STORE_OK)
        return;
    snprintf(out, 8, "%s", in.decision);
    store_inspection_clear(&in);
}

void sinks_list_free(sink_list *l)
{
    store_sinks_free(l->arr, l->n);
    l->arr = NULL;
    l->n = 0;
}

void sinks_refresh(store_t *st, const char *kind, sink_list *l, int force)
{
    int64_t now = sinks_now_ms();
    if (!force && l->at != 0 && now - l->at < 1000)
        return;
    sink_list fresh = {0};
    char next[STORE_CURSOR_LEN] = "";
    if (store_sink_list(st, kind, STORE_LIST_MAX, NULL, &fresh.arr, &fresh.n, next) != STORE_OK) {
        log_warn("sinks", "reading the %s sinks: %s", kind, store_last_error());
        return;
    }
    sinks_list_free(l);
    *l = fresh;
    l->at = now;
}

int sinks_start(const sinks_options *o, sinks_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (o == NULL || o->st == NULL || o->max_tries < 1 || o->backoff_ms < 1 ||
        o->backoff_max_ms < o->backoff_ms || o->timeout_ms < 1) {
        snprintf(err, errlen, "sinks: bad options");
        return -1;
    }
    struct sinks *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "sinks: out of memory");
        return -1;
    }
    s->o = *o;
    atomic_init(&s->stop, 0);
    /* before any thread: curl_global_init is not thread-safe */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(s);
        snprintf(err, errlen, "sinks: libcurl does not initialise");
        return -1;
    }
    s->curl_ready = 1;
    s->web_started = pthread_create(&s->web, NULL, sinks_webhook_main, s) == 0;
    s->mqtt_started = s->web_started && pthread_create(&s->mqtt, NULL, sinks_mqtt_main, s) == 0;
    if (!s->mqtt_started) {
        snprintf(err, errlen, "sinks: cannot start the sender threads");
        sinks_stop(s);
        return -1;
    }
    *out = s;
    return 0;
}

void sinks_stop(sinks_t *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stop, 1);
    store_outbox_notify(s->o.st);
    if (s->web_started)
        pthread_join(s->web, NULL);
    if (s->mqtt_started)
        pthread_join(s->mqtt, NULL);
    if (s->curl_ready)
        curl_global_cleanup();
    free(s);
}
