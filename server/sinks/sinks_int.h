/* sinks_int.h - private to server/sinks: what the sender files share. */
#ifndef CFA_SINKS_INT_H
#define CFA_SINKS_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "sinks.h"

struct sinks {
    sinks_options o;
    atomic_int stop;
    pthread_t web, mqtt;
    int web_started, mqtt_started;
    int curl_ready;        /* curl_global_init succeeded */
};

/* The JSON a delivery carries (malloc'd), or NULL when what it reports is
 * gone. delivery: "<sink id>:<outbox seq>", the same on every repeat, so a
 * receiver can drop duplicates. */
char *sinks_body(store_t *st, const store_outbox_t *row);
/* The decision ("OK"/"NG") of an inspection row into out, "" otherwise. */
void sinks_decision(store_t *st, const store_outbox_t *row, char out[8]);
/* The sinks of one kind, refreshed at most once a second (the sender's own
 * copy: no lock). */
typedef struct {
    store_sink_t *arr;
    size_t n;
    int64_t at;
} sink_list;
void sinks_refresh(store_t *st, const char *kind, sink_list *l, int force);
void sinks_list_free(sink_list *l);
/* Records a failed try of row and returns when the sink may try again. */
int64_t sinks_note_failure(struct sinks *s, const store_outbox_t *row, const char *why);
/* Milliseconds since the epoch (the outbox's clock). */
int64_t sinks_now_ms(void);

void *sinks_webhook_main(void *arg); /* arg: struct sinks * */
void *sinks_mqtt_main(void *arg);

#endif
