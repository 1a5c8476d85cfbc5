/*
 * mqtt.c - the MQTT sender: one thread drives one libmosquitto client per
 * sink (mosquitto_loop, no thread of libmosquitto's own), publishing each
 * queued row at QoS 1 to the sink's topic template. A row is deleted when
 * the broker's PUBACK for its message id arrives (on_publish), not when it
 * was written to the socket. A lost connection drops the client and every
 * message in flight (they stay queued and are published again: at least
 * once); connecting again waits with a doubling delay.
 */
#define _GNU_SOURCE
#include "sinks_int.h"

#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base_log.h"

#define MQ_INFLIGHT 32 /* messages a client waits PUBACKs for */
#define MQ_LOOP_MS 20  /* one mosquitto_loop's wait per client  */
#define MQ_RECHECK_MS 250 /* the outbox is read on news (a commit, PUBACKs,
                             a connection) or this often: not each loop */

typedef struct {
    int mid;
    int64_t seq;
    int64_t sent_at;
    store_outbox_t row;
} inflight;

typedef struct {
    struct sinks *s;
    char id[STORE_ID_LEN];
    char *config;          /* config_json the client was made for      */
    sink_spec spec;
    struct mosquitto *m;
    int connected;
    int64_t next_connect;  /* ms                                        */
    int backoff_ms;
    inflight fl[MQ_INFLIGHT];
    int nfl;
    int64_t acked[MQ_INFLIGHT]; /* PUBACKed this round, not yet recorded */
    int nacked;
    int64_t recheck_at;    /* ms: read the outbox again even without news */
    int seen;              /* still listed at the last sync             */
} client;

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    client *c = obj;
    if (rc == 0) {
        c->connected = 1;
        c->recheck_at = 0;
        c->backoff_ms = c->s->o.backoff_ms;
        log_info("sinks", "mqtt sink %s: connected to %s:%d", c->id, c->spec.host, c->spec.port);
    }
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    (void)m;
    client *c = obj;
    for (int i = 0; i < c->nfl; i++) {
        if (c->fl[i].mid != mid)
            continue;
        c->acked[c->nacked++] = c->fl[i].seq;
        c->fl[i] = c->fl[--c->nfl];
        return;
    }
}

/* Drops the connection and what waits on it; connects again after the
 * backoff. */
static void drop(client *c, const char *why)
{
    if (c->m != NULL) {
        if (c->connected)
            log_warn("sinks", "mqtt sink %s: %s; %d message(s) will be sent again", c->id, why,
                     c->nfl);
        mosquitto_destroy(c->m);
        c->m = NULL;
    }
    c->connected = 0;
    c->nfl = 0;
    c->next_connect = sinks_now_ms() + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > c->s->o.backoff_max_ms ? c->s->o.backoff_max_ms
                                                               : c->backoff_ms * 2;
}

static void try_connect(client *c)
{
    if (sinks_now_ms() < c->next_connect)
        return;
    char cid[40];
    snprintf(cid, sizeof cid, "cfa-%.16s", c->id);
    c->m = mosquitto_new(cid, true, c);
    if (c->m == NULL) {
        drop(c, "out of memory");
        return;
    }
    mosquitto_connect_callback_set(c->m, on_connect);
    mosquitto_publish_callback_set(c->m, on_publish);
    mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    int rc = mosquitto_connect(c->m, c->spec.host, c->spec.port, 30);
    if (rc != MOSQ_ERR_SUCCESS)
        drop(c, mosquitto_strerror(rc));
}

static int in_flight(const client *c, int64_t seq)
{
    for (int i = 0; i < c->nfl; i++)
        if (c->fl[i].seq == seq)
            return 1;
    return 0;
}

/* A row the broker cannot take (what it reports is gone, a topic that does
 * not expand) or that was not acknowledged in time counts as a failed try. */
static void publish_due(client *c)
{
    store_outbox_t *rows = NULL;
    size_t n = 0;
    if (store_outbox_head(c->s->o.st, c->id, MQ_INFLIGHT, &rows, &n) != STORE_OK)
        return;
    int64_t now = sinks_now_ms();
    for (size_t i = 0; i < n && c->nfl < MQ_INFLIGHT; i++) {
        if (rows[i].next_at > now)
            break; /* in order: a row held back holds back the rest */
        if (in_flight(c, rows[i].seq))
            continue;
        char decision[8], topic[SINK_TOPIC_MAX * 4];
        sinks_decision(c->s->o.st, &rows[i], decision);
        char *body = sinks_body(c->s->o.st, &rows[i]);
        if (body == NULL || sink_topic_expand(c->spec.topic, rows[i].product, decision,
                                              rows[i].event, topic, sizeof topic) != 0) {
            sinks_note_failure(c->s, &rows[i], body ? "the topic does not expand" : "what it reports is gone");
            free(body);
            break;
        }
        int mid = 0;
        int rc = mosquitto_publish(c->m, &mid, topic, (int)strlen(body), body, 1, false);
        free(body);
        if (rc != MOSQ_ERR_SUCCESS) {
            drop(c, mosquitto_strerror(rc));
            break;
        }
        c->fl[c->nfl++] = (inflight){.mid = mid, .seq = rows[i].seq, .sent_at = now, .row = rows[i]};
    }
    free(rows);
}

/* Messages without a PUBACK after the timeout: a failed try each, and the
 * connection is dropped (a broker that does not answer is not there). */
static void expire(client *c)
{
    int64_t now = sinks_now_ms();
    int expired = 0;
    for (int i = 0; i < c->nfl; i++)
        if (now - c->fl[i].sent_at > c->s->o.timeout_ms) {
            sinks_note_failure(c->s, &c->fl[i].row, "no PUBACK in time");
            expired = 1;
        }
    if (expired)
        drop(c, "no PUBACK in time");
}

/* The PUBACKs gathered since the last call, in one commit (at most
 * MQ_INFLIGHT: each one ended a message in flight); a row still in the
 * table when the daemon dies is published again (at least once). */
static void flush_acks(client *c)
{
    if (c->nacked == 0)
        return;
    if (store_outbox_delivered(c->s->o.st, c->acked, (size_t)c->nacked, c->id) != STORE_OK)
        log_warn("sinks", "recording deliveries: %s", store_last_error());
    c->nacked = 0;
    c->recheck_at = 0; /* room in flight: more may be waiting */
}

static void step(client *c, int news)
{
    flush_acks(c);
    if (c->m == NULL) {
        try_connect(c);
        if (c->m == NULL)
            return;
    }
    int64_t now = sinks_now_ms();
    if (c->connected && (news || now >= c->recheck_at)) {
        c->recheck_at = now + MQ_RECHECK_MS;
        publish_due(c);
    }
    if (c->m == NULL)
        return;
    int rc = mosquitto_loop(c->m, MQ_LOOP_MS, 1);
    flush_acks(c);
    if (rc != MOSQ_ERR_SUCCESS) {
        drop(c, mosquitto_strerror(rc));
        return;
    }
    expire(c);
}

static void client_free(client *c)
{
    flush_acks(c);
    if (c->m != NULL)
        mosquitto_destroy(c->m);
    free(c->config);
    free(c);
}

/* Makes the clients match the listed sinks: new sinks get one, sinks gone,
 * disabled or changed lose theirs (a changed one gets a new client). */
static void sync_clients(struct sinks *s, const sink_list *l, client ***cs, size_t *nc)
{
    for (size_t j = 0; j < *nc; j++)
        (*cs)[j]->seen = 0;
    for (size_t i = 0; i < l->n; i++) {
        const store_sink_t *k = &l->arr[i];
        client *found = NULL;
        for (size_t j = 0; j < *nc && !found; j++)
            if (strcmp((*cs)[j]->id, k->id) == 0 && strcmp((*cs)[j]->config, k->config_json) == 0)
                found = (*cs)[j];
        if (found == NULL && k->enabled) {
            found = calloc(1, sizeof *found);
            if (found == NULL || sink_spec_from_store(k, &found->spec) != 0) {
                free(found);
                continue;
            }
            found->s = s;
            snprintf(found->id, sizeof found->id, "%s", k->id);
            found->config = strdup(k->config_json);
            found->backoff_ms = s->o.backoff_ms;
            *cs = realloc(*cs, (*nc + 1) * sizeof **cs);
            (*cs)[(*nc)++] = found;
        }
        if (found != NULL)
            found->seen = k->enabled;
    }
    for (size_t j = 0; j < *nc;) {
        if ((*cs)[j]->seen) {
            j++;
            continue;
        }
        client_free((*cs)[j]);
        (*cs)[j] = (*cs)[--*nc];
    }
}

void *sinks_mqtt_main(void *arg)
{
    struct sinks *s = arg;
    pthread_setname_np(pthread_self(), "cfa-mqtt");
    mosquitto_lib_init();
    sink_list l = {0};
    client **cs = NULL;
    size_t nc = 0;
    int64_t gen = 0;
    while (!atomic_load(&s->stop)) {
        int64_t before = l.at;
        sinks_refresh(s->o.st, "mqtt", &l, 0);
        if (l.at != before)
            sync_clients(s, &l, &cs, &nc);
        int news = nc > 0 && store_outbox_wait(s->o.st, &gen, 0);
        for (size_t j = 0; j < nc && !atomic_load(&s->stop); j++)
            step(cs[j], news);
        if (nc == 0)
            store_outbox_wait(s->o.st, &gen, 1000);
    }
    for (size_t j = 0; j < nc; j++)
        client_free(cs[j]);
    free(cs);
    sinks_list_free(&l);
    mosquitto_lib_cleanup();
    return NULL;
}
