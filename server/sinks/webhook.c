/*
 * webhook.c - the webhook sender: one thread, one libcurl handle (its
 * connections are kept alive between deliveries), the rows of each sink in
 * order. A delivery is a POST of the JSON body; any 2xx acknowledges it.
 * With a secret, X-CFA-Signature: sha256=<hex of HMAC-SHA256(secret, body)>
 * lets the receiver check that the body is ours and unchanged.
 */
#define _GNU_SOURCE
#include "sinks_int.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base_log.h"
#include "sha256.h"

#define WEB_BATCH 16 /* rows read per sink per round */

/* HMAC-SHA256 of the body under the sink's secret, as lowercase hex. */
static void hmac_sha256_hex(const char *key, const void *msg, size_t len,
                            char out[SHA256_HEX_LEN])
{
    uint8_t mac[SHA256_DIGEST_LEN];
    sha256_hmac(key, strlen(key), msg, len, mac);
    sha256_hex(mac, sizeof mac, out);
}

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p;
    (void)user;
    return size * n;
}

/* POSTs body to the sink; 0 when the receiver answered 2xx, else -1 with
 * why. */
static int post(CURL *h, const store_sink_t *k, const sink_spec *spec, int timeout_ms,
                const store_outbox_t *row, const char *body, char *why, size_t whylen)
{
    struct curl_slist *hd = NULL;
    char line[160];
    hd = curl_slist_append(hd, "Content-Type: application/json");
    snprintf(line, sizeof line, "X-CFA-Event: %s", row->event);
    hd = curl_slist_append(hd, line);
    snprintf(line, sizeof line, "X-CFA-Delivery: %s:%lld", row->sink_id, (long long)row->seq);
    hd = curl_slist_append(hd, line);
    if (k->secret != NULL && *k->secret) {
        char hex[SHA256_HEX_LEN];
        hmac_sha256_hex(k->secret, body, strlen(body), hex);
        snprintf(line, sizeof line, "X-CFA-Signature: sha256=%s", hex);
        hd = curl_slist_append(hd, line);
    }
    curl_easy_setopt(h, CURLOPT_URL, spec->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(spec->timeout_ms > 0 ? spec->timeout_ms : timeout_ms));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hd);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    if (rc != CURLE_OK) {
        snprintf(why, whylen, "%s", curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status > 299) {
        snprintf(why, whylen, "HTTP %ld", status);
        return -1;
    }
    return 0;
}

/* Delivers the sink's due rows in order until one fails. Returns when the
 * sink next has something due (INT64_MAX: nothing queued). */
static int64_t step_sink(struct sinks *s, CURL *h, const store_sink_t *listed)
{
    store_sink_t k;
    sink_spec spec;
    store_outbox_t *rows = NULL;
    size_t n = 0;
    int64_t wake = INT64_MAX;
    if (store_sink_get(s->o.st, listed->id, 1, &k) != STORE_OK)
        return wake;
    if (sink_spec_from_store(&k, &spec) != 0 ||
        store_outbox_head(s->o.st, k.id, WEB_BATCH, &rows, &n) != STORE_OK) {
        store_sink_clear(&k);
        return wake;
    }
    int64_t *acked = n > 0 ? malloc(n * sizeof *acked) : NULL;
    size_t nacked = 0;
    for (size_t i = 0; i < n && acked != NULL && !atomic_load(&s->stop); i++) {
        int64_t now = sinks_now_ms();
        if (rows[i].next_at > now) {
            wake = rows[i].next_at;
            break;
        }
        char why[256] = "";
        char *body = sinks_body(s->o.st, &rows[i]);
        if (body == NULL) {
            wake = sinks_note_failure(s, &rows[i], "what it reports is gone");
            break;
        }
        int ok = post(h, &k, &spec, s->o.timeout_ms, &rows[i], body, why, sizeof why) == 0;
        free(body);
        if (!ok) {
            wake = sinks_note_failure(s, &rows[i], why);
            break;
        }
        acked[nacked++] = rows[i].seq;
        if (i + 1 == n)
            wake = sinks_now_ms(); /* a full batch: there may be more */
    }
    if (store_outbox_delivered(s->o.st, acked, nacked, k.id) != STORE_OK)
        log_warn("sinks", "recording deliveries: %s", store_last_error());
    free(acked);
    free(rows);
    store_sink_clear(&k);
    return wake;
}

static CURL *new_handle(void)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return NULL;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "cfa-inspect-webhook/1");
    return h;
}

void *sinks_webhook_main(void *arg)
{
    struct sinks *s = arg;
    pthread_setname_np(pthread_self(), "cfa-webhook"); /* top, /proc: its CPU apart */
    CURL *h = new_handle();
    if (h == NULL) {
        log_error("sinks", "libcurl: cannot make a handle; webhooks are not sent");
        return NULL;
    }
    sink_list l = {0};
    int64_t gen = 0;
    while (!atomic_load(&s->stop)) {
        sinks_refresh(s->o.st, "webhook", &l, 0);
        int64_t wake = INT64_MAX;
        for (size_t i = 0; i < l.n && !atomic_load(&s->stop); i++) {
            if (!l.arr[i].enabled)
                continue;
            int64_t w = step_sink(s, h, &l.arr[i]);
            wake = w < wake ? w : wake;
        }
        int64_t wait = wake - sinks_now_ms();
        wait = wait < 0 ? 0 : wait > 1000 ? 1000 : wait;
        if (wait > 0)
            store_outbox_wait(s->o.st, &gen, (int)wait);
    }
    sinks_list_free(&l);
    curl_easy_cleanup(h);
    return NULL;
}
