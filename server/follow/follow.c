/* follow.c - the follower thread of a replica (follow.h): poll the trainer,
 * import the bundles of its active versions, copy activations and
 * thresholds. */
#define _GNU_SOURCE
#include "follow.h"

#include "base_alloc.h"
#include "base_clock.h"
#include "base_log.h"
#include "bundle.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* a bundle is a model of tens of MiB at most; a trainer that sends more is
 * not one */
#define FOLLOW_MAX_BODY ((size_t)1 << 30)
#define FOLLOW_CONNECT_MS 2000L
#define FOLLOW_TIMEOUT_MS 120000L

struct follow {
    char *url, *auth;
    int interval_ms;
    store_t *st;
    char *backbone;
    uint8_t *bkey;
    size_t bkey_len;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int stop;    /* also read by a transfer in progress */
    follow_state state; /* under mu */
};

typedef struct body {
    char *p;
    size_t len;
} body;

static size_t on_data(char *data, size_t size, size_t n, void *user)
{
    body *b = user;
    size_t add = size * n;
    if (b->len + add > FOLLOW_MAX_BODY)
        return 0; /* curl fails the transfer */
    char *grown = realloc(b->p, b->len + add + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + b->len, data, add);
    b->p = grown;
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

/* A transfer in progress ends when the daemon stops: a bundle of a slow
 * trainer must not hold up the shutdown for the whole timeout. */
static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    follow_t *f = user;
    return atomic_load(&f->stop) ? 1 : 0;
}

/* GET url + path into *out (free()); 0 on a 200, else -1 with err. */
static int http_get(follow_t *f, const char *path, body *out, char *err, size_t errlen)
{
    char url[2048];
    long code = 0;
    memset(out, 0, sizeof *out);
    snprintf(url, sizeof url, "%s%s", f->url, path);
    CURL *c = curl_easy_init();
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct curl_slist *hdr = curl_slist_append(NULL, f->auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, FOLLOW_CONNECT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, FOLLOW_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, f);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    if (rc == CURLE_OK && code == 200)
        return 0;
    if (rc != CURLE_OK)
        snprintf(err, errlen, "GET %s: %s", path, curl_easy_strerror(rc));
    else
        snprintf(err, errlen, "GET %s: HTTP %ld: %.120s", path, code, out->p ? out->p : "");
    free(out->p);
    memset(out, 0, sizeof *out);
    return -1;
}

/* The local version imported from the trainer's version v of product, or
 * 0; *active whether it is the active one here. */
static int64_t local_copy(follow_t *f, const char *product, int64_t v, int *active)
{
    store_model_t *arr = NULL;
    size_t n = 0;
    char next[STORE_CURSOR_LEN];
    int64_t found = 0;
    *active = 0;
    if (store_model_list(f->st, product, STORE_LIST_MAX, NULL, &arr, &n, next) != STORE_OK)
        return 0;
    for (size_t i = 0; i < n && found == 0; i++)
        if (bundle_origin_version(arr[i].figures_json, NULL) == v) {
            found = arr[i].version;
            *active = arr[i].active;
        }
    store_models_free(arr, n);
    return found;
}

/* The event-log rows of what a replica changes from its trainer: no key,
 * request id "follow" (docs/API.md, "Events"), in the change's transaction. */
static void follow_event(store_event_t *e, const char *kind, const char *product)
{
    memset(e, 0, sizeof *e);
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    snprintf(e->product, sizeof e->product, "%s", product);
    snprintf(e->request_id, sizeof e->request_id, "follow");
}

/* after_fn of the activation and the thresholds: the product as written. */
static char *product_after(const void *row, void *ctx)
{
    (void)ctx;
    const store_product_t *p = row;
    json_t *o = json_pack("{s:s,s:I,s:f,s:f}", "id", p->id, "active_version",
                          (json_int_t)p->active_version, "threshold",
                          p->has_threshold ? p->threshold : 0.0, "threshold_ng",
                          p->has_threshold ? p->threshold_ng : 0.0);
    char *t = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return t;
}

/* Downloads and imports the trainer's version v of product, activated. */
static int fetch_version(follow_t *f, const char *product, int64_t v, int64_t *local,
                         char *err, size_t errlen)
{
    char path[256];
    body b;
    snprintf(path, sizeof path, "/v1/products/%s/models/%lld/bundle", product, (long long)v);
    if (http_get(f, path, &b, err, errlen) != 0)
        return -1;
    bundle_t bd;
    store_status ss;
    bundle_status bs = bundle_parse(b.p, b.len, f->bkey, f->bkey_len, &bd, err, errlen);
    store_event_t who;
    follow_event(&who, "model.imported", product);
    if (bs == BUNDLE_OK)
        bs = bundle_import(f->st, product, &bd, f->backbone, 1, &who, local, &ss, err, errlen);
    bundle_clear(&bd);
    free(b.p);
    if (bs != BUNDLE_OK)
        return -1;
    log_info("follow", "imported %s version %lld from the trainer as version %lld", product,
             (long long)v, (long long)*local);
    pthread_mutex_lock(&f->mu);
    f->state.imports++;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

/* a and b differ by more than the 9 significant digits the API writes a
 * number with: the trainer's listing of a threshold its bundle carried in
 * full is the same threshold, not a change to copy and record. */
static int differs(double a, double b)
{
    return fabs(a - b) > 1e-8 * fmax(fabs(a), fabs(b));
}

/* The trainer's thresholds onto the local version, with a threshold.set row
 * when they change. */
static void copy_thresholds(follow_t *f, const follow_product *p, int64_t local)
{
    store_model_t m;
    if (store_model_get(f->st, p->id, local, &m) != STORE_OK)
        return;
    if (differs(m.threshold, p->threshold) || differs(m.threshold_ng, p->threshold_ng)) {
        store_event_t ev;
        follow_event(&ev, "threshold.set", p->id);
        ev.after_fn = product_after;
        json_t *before = json_pack("{s:I,s:f,s:f}", "version", (json_int_t)local, "threshold",
                                   m.threshold, "threshold_ng", m.threshold_ng);
        ev.before_json = before != NULL ? json_dumps(before, JSON_COMPACT) : NULL;
        json_decref(before);
        if (store_model_set_thresholds(f->st, p->id, local, p->threshold, p->threshold_ng,
                                       &ev) == STORE_OK)
            log_info("follow", "%s thresholds %g / %g (from the trainer)", p->id, p->threshold,
                     p->threshold_ng);
        store_event_clear(&ev);
    }
    store_model_clear(&m);
}

/* One product of the trainer's list: its active version here, activated,
 * with the trainer's threshold. */
static int sync_product(follow_t *f, const follow_product *p, char *err, size_t errlen)
{
    if (p->active_version == 0)
        return 0; /* nothing to serve yet */
    int active = 0;
    int64_t local = local_copy(f, p->id, p->active_version, &active);
    if (local == 0) {
        if (fetch_version(f, p->id, p->active_version, &local, err, errlen) != 0)
            return -1;
        active = 1; /* the import activated it (and recorded that) */
    }
    store_event_t ev;
    follow_event(&ev, "model.activated", p->id);
    ev.after_fn = product_after;
    store_status ss = active ? STORE_OK : store_model_activate(f->st, p->id, local, &ev);
    store_event_clear(&ev);
    if (ss != STORE_OK) {
        snprintf(err, errlen, "activating %s version %lld here failed", p->id, (long long)local);
        return -1;
    }
    pthread_mutex_lock(&f->mu);
    f->state.has_model = 1; /* ready from now, not from the end of the poll */
    pthread_mutex_unlock(&f->mu);
    if (p->has_threshold)
        copy_thresholds(f, p, local);
    return 0;
}

/* Every page of the trainer's products; 0 when all synced. */
static int sync_all(follow_t *f, char *err, size_t errlen)
{
    char path[256] = "/v1/products?limit=1000", next[STORE_PRODUCT_ID_MAX];
    int failed = 0;
    do {
        body b;
        follow_product *arr;
        size_t n, skipped;
        if (http_get(f, path, &b, err, errlen) != 0)
            return -1;
        int rc = follow_parse_products(b.p, b.len, &arr, &n, &skipped, next);
        free(b.p);
        if (rc != 0) {
            snprintf(err, errlen, "the trainer's product list is not JSON with \"products\"");
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            failed |= sync_product(f, &arr[i], err, errlen) != 0;
        free(arr);
        if (skipped > 0) {
            snprintf(err, errlen, "the trainer listed %zu product(s) without a valid id, "
                     "version or threshold", skipped);
            failed = 1;
        }
        snprintf(path, sizeof path, "/v1/products?limit=1000&cursor=%s", next);
    } while (next[0] != '\0');
    return failed ? -1 : 0;
}

/* Whether some product here has an active model (readyz of a replica). */
static int any_active(store_t *st)
{
    store_product_t *arr = NULL;
    size_t n = 0;
    char next[STORE_PRODUCT_ID_MAX];
    const char *after = NULL;
    int found = 0;
    char cursor[STORE_PRODUCT_ID_MAX];
    do {
        if (store_product_list(st, STORE_LIST_MAX, after, &arr, &n, next) != STORE_OK)
            return 0;
        for (size_t i = 0; i < n && !found; i++)
            found = arr[i].active_version > 0;
        store_products_free(arr, n);
        snprintf(cursor, sizeof cursor, "%s", next);
        after = cursor;
    } while (!found && next[0] != '\0');
    return found;
}

static void poll_once(follow_t *f)
{
    char err[256] = "";
    int64_t t = wall_ms();
    int rc = sync_all(f, err, sizeof err);
    int has = any_active(f->st);
    pthread_mutex_lock(&f->mu);
    int was_up = f->state.trainer_up;
    /* a trainer that stays down is logged once, not at every poll */
    int news = rc != 0 && strcmp(err, f->state.last_error) != 0;
    f->state.last_attempt_ms = t;
    f->state.has_model = has;
    if (rc == 0) {
        f->state.syncs++;
        f->state.last_sync_ms = wall_ms();
        f->state.trainer_up = 1;
        f->state.last_error[0] = '\0';
    } else {
        f->state.failures++;
        f->state.trainer_up = strncmp(err, "GET /v1/products?", 17) != 0;
        snprintf(f->state.last_error, sizeof f->state.last_error, "%s", err);
    }
    pthread_mutex_unlock(&f->mu);
    if (news)
        log_warn("follow", "sync with %s failed (serving what is here): %s", f->url, err);
    else if (rc == 0 && !was_up)
        log_info("follow", "synced with %s", f->url);
}

static void *follow_main(void *arg)
{
    follow_t *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!atomic_load(&f->stop)) {
        pthread_mutex_unlock(&f->mu);
        poll_once(f);
        pthread_mutex_lock(&f->mu);
        /* until the next poll, or at once when follow_stop signals */
        struct timespec until = wall_deadline(f->interval_ms);
        int rc = 0;
        while (!atomic_load(&f->stop) && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&f->cv, &f->mu, &until);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

int follow_start(const follow_options *o, follow_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (o->url == NULL || strncmp(o->url, "http", 4) != 0 || o->key == NULL || o->st == NULL ||
        o->interval_ms < 1) {
        snprintf(err, errlen, "--follow needs an http(s) URL and --follow-key or --follow-key-file");
        return -1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "libcurl could not be initialised");
        return -1;
    }
    follow_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->url = xstrdup(o->url);
    size_t ul = strlen(f->url);
    while (ul > 0 && f->url[ul - 1] == '/')
        f->url[--ul] = '\0';
    if (asprintf(&f->auth, "Authorization: Bearer %s", o->key) < 0)
        abort();
    f->interval_ms = o->interval_ms;
    f->st = o->st;
    f->backbone = o->backbone_sha256 != NULL ? xstrdup(o->backbone_sha256) : NULL;
    if (o->bundle_key != NULL) {
        f->bkey = xmalloc(o->bundle_key_len);
        memcpy(f->bkey, o->bundle_key, o->bundle_key_len);
        f->bkey_len = o->bundle_key_len;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->state.has_model = any_active(f->st);
    if (pthread_create(&f->thread, NULL, follow_main, f) != 0) {
        snprintf(err, errlen, "cannot start the follower thread");
        f->thread = 0;
        follow_stop(f);
        return -1;
    }
    log_info("follow", "replica of %s, polling every %d ms", f->url, f->interval_ms);
    *out = f;
    return 0;
}

void follow_get_state(follow_t *f, follow_state *out)
{
    pthread_mutex_lock(&f->mu);
    *out = f->state;
    pthread_mutex_unlock(&f->mu);
}

const char *follow_url(const follow_t *f)
{
    return f->url;
}

void follow_stop(follow_t *f)
{
    if (f == NULL)
        return;
    if (f->thread) {
        pthread_mutex_lock(&f->mu);
        atomic_store(&f->stop, 1);
        pthread_cond_signal(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
    }
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f->url);
    free(f->auth);
    free(f->backbone);
    free(f->bkey);
    free(f);
    curl_global_cleanup();
}
