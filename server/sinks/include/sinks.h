/*
 * sinks.h - result sinks: the sender threads that deliver the outbox
 * (server/store, outbox.c) to webhooks (libcurl) and MQTT brokers
 * (libmosquitto), and the one parser of a sink's settings.
 *
 *     sinks_options o = sinks_default_options();  o.st = st;
 *     sinks_t *s;  sinks_start(&o, &s, err, sizeof err);
 *     ...          sinks_stop(s);
 *
 * Delivery (docs/API.md, "Result sinks"): a sink's rows go in order; a
 * failed try holds the sink back for base * 2^(tries-1) ms (capped, with
 * jitter) and after max_tries tries the row is dead (the API's redeliver
 * puts it back). A row is deleted only after the peer acknowledged it (a 2xx
 * answer, an MQTT PUBACK), so a kill -9 repeats deliveries, never loses one.
 *
 * Thread-safety: sinks_start/sinks_stop from one thread (main); the parser
 * and topic functions are pure and reentrant.
 */
#ifndef CFA_SINKS_H
#define CFA_SINKS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct sinks sinks_t;

typedef struct {
    store_t *st;
    int max_tries;      /* tries before a row is dead                    */
    int backoff_ms;     /* the first retry's delay                       */
    int backoff_max_ms; /* the cap of the delay                          */
    int timeout_ms;     /* one webhook request, or an MQTT PUBACK         */
} sinks_options;

sinks_options sinks_default_options(void);
/* Starts the webhook and MQTT sender threads. 0, or -1 with err. */
int sinks_start(const sinks_options *o, sinks_t **out /* OUT */, char *err, size_t errlen);
/* Stops and joins them; rows in flight stay queued. NULL is a no-op. */
void sinks_stop(sinks_t *s);

/* The delay before try number tries + 1 (tries >= 1): base * 2^(tries-1)
 * capped at max, times a factor in [0.5, 1] from u in [0, 1) (jitter that
 * keeps the delays of one row from shrinking). */
int64_t sinks_backoff_ms(int tries, int base_ms, int max_ms, double u);

/* ---- a sink's settings (POST/PATCH /v1/sinks bodies) -------------------- */

#define SINK_URL_MAX 2048
#define SINK_HOST_MAX 255
#define SINK_TOPIC_MAX 256
#define SINK_SECRET_MAX 256
#define SINK_EVENTS_MAX 512
#define SINK_NAME_MAX 256

typedef struct {
    char kind[STORE_SINK_KIND_MAX];     /* webhook | mqtt                      */
    char name[SINK_NAME_MAX + 1];
    char product[STORE_PRODUCT_ID_MAX]; /* "": every product                  */
    char events[SINK_EVENTS_MAX + 1];   /* comma-separated, validated names    */
    int enabled;
    /* webhook */
    char url[SINK_URL_MAX + 1];
    int timeout_ms;                     /* 0: the daemon's                     */
    char secret[SINK_SECRET_MAX + 1];
    int secret_given;                   /* the body held "secret" ("" or null: remove) */
    /* mqtt */
    char host[SINK_HOST_MAX + 1];
    int port;
    char topic[SINK_TOPIC_MAX + 1];     /* template: {product} {decision} {event} */
    int qos;                            /* 1 (at-least-once needs PUBACK)     */
} sink_spec;

/* Parses a POST body (patch = 0: kind, events and the kind's address are
 * required) or a PATCH body (patch = 1: over *spec, which holds the stored
 * sink; kind cannot change). Unknown properties, wrong types, bad URLs,
 * hosts, ports, topic templates and event names are refused: -1 with a
 * sentence in err and the property's name in field. 0 on success. */
int sink_spec_parse(const char *body, size_t len, int patch, sink_spec *spec /* IN/OUT */,
                    char *err, size_t errlen, char *field, size_t fieldlen);
/* The kind's settings as the JSON text the store keeps (malloc'd). */
char *sink_spec_config_json(const sink_spec *s);
/* A spec from a stored sink (no secret). 0, or -1 when its config does not parse. */
int sink_spec_from_store(const store_sink_t *k, sink_spec *s /* OUT */);

/* Expands {product}, {decision} and {event} of a topic template into out.
 * 0, or -1 when the result does not fit or a value would put an MQTT
 * wildcard or level separator into the topic. */
int sink_topic_expand(const char *tmpl, const char *product, const char *decision,
                      const char *event, char *out, size_t cap);

#endif
