/* line.c - what a line sends beside its image: part identity from the query
 * and headers, the allowed query parameters of a route, and Idempotency-Key
 * (replays, in-flight repeats, recording the first answer). */
#define _GNU_SOURCE
#include "api_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base_alloc.h"
#include "base_log.h"
#include "sha256.h"

/* ---- part identity ------------------------------------------------------- */

int line_part_from_request(hreq *r, part_fields *p)
{
    char why[256];
    for (int f = 0; f < PART_N; f++) {
        const char *q = req_query(r, part_names[f]);
        const char *h = req_header(r, part_headers[f]);
        if ((q != NULL && part_set(p, f, q, strlen(q), "the query", why, sizeof why) != 0) ||
            (h != NULL && part_set(p, f, h, strlen(h), part_headers[f], why, sizeof why) != 0)) {
            reply_error(r, 400, "invalid_part_field", "%s", why);
            return -1;
        }
    }
    return 0;
}

/* ---- allowed query parameters ------------------------------------------- */

struct query_scan {
    const char *allowed; /* " a b c " */
    char *unknown;
    size_t cap, len;
};

static int name_in(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

static enum MHD_Result scan_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    struct query_scan *qs = cls;
    (void)kind;
    (void)value;
    if (key == NULL || key[0] == '\0' || name_in(qs->allowed, key))
        return MHD_YES;
    int k = snprintf(qs->unknown + qs->len, qs->cap - qs->len, "%s%.64s", qs->len ? ", " : "",
                     key);
    if (k > 0 && qs->len + (size_t)k < qs->cap)
        qs->len += (size_t)k;
    return MHD_YES;
}

int line_check_query(hreq *r, char *why, size_t cap)
{
    char unknown[200] = "";
    struct query_scan qs = {api_route_query(r->route), unknown, sizeof unknown, 0};
    MHD_get_connection_values(r->con, MHD_GET_ARGUMENT_KIND, scan_arg, &qs);
    if (qs.len == 0)
        return 0;
    snprintf(why, cap, "unknown query parameter(s): %s (allowed: %s)", unknown,
             qs.allowed[0] ? qs.allowed : "none");
    return -1;
}

/* ---- Idempotency-Key ------------------------------------------------------ */

struct line_idem {
    store_idem_t entry;
    int by_ref;     /* the store writes the entry with the audit row   */
    int in_flight;  /* registered in the in-flight list                */
    int replayed;   /* the answer is the first request's               */
    hreq *r;
    struct line_idem *next;
};

/* Keyed requests being answered now: a repeat that arrives meanwhile is
 * 409 idempotency_in_flight (the client retries after Retry-After) rather
 * than waiting on a request that may take the whole pool queue. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct line_idem *g_flight;
static atomic_uint g_puts; /* entries recorded: every 256th sweeps */

static int same_scope(const store_idem_t *a, const store_idem_t *b)
{
    return strcmp(a->key_id, b->key_id) == 0 && strcmp(a->route, b->route) == 0 &&
           strcmp(a->key, b->key) == 0;
}

static int flight_add(struct line_idem *li)
{
    pthread_mutex_lock(&g_mu);
    for (struct line_idem *p = g_flight; p != NULL; p = p->next)
        if (same_scope(&p->entry, &li->entry)) {
            pthread_mutex_unlock(&g_mu);
            return -1;
        }
    li->next = g_flight;
    g_flight = li;
    li->in_flight = 1;
    pthread_mutex_unlock(&g_mu);
    return 0;
}

static void flight_remove(struct line_idem *li)
{
    if (!li->in_flight)
        return;
    pthread_mutex_lock(&g_mu);
    for (struct line_idem **pp = &g_flight; *pp != NULL; pp = &(*pp)->next)
        if (*pp == li) {
            *pp = li->next;
            break;
        }
    li->in_flight = 0;
    pthread_mutex_unlock(&g_mu);
}

static enum MHD_Result hash_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    sha256_update(cls, key, strlen(key) + 1);
    sha256_update(cls, value != NULL ? value : "", value != NULL ? strlen(value) + 1 : 1);
    return MHD_YES;
}

/* SHA-256 of what makes the request this request: method, route and its
 * parameters, query, part identity, body. */
static void request_hash(hreq *r, const part_fields *part, char out[65])
{
    sha256_ctx c;
    uint8_t d[SHA256_DIGEST_LEN];
    sha256_init(&c);
    sha256_update(&c, r->method, strlen(r->method) + 1);
    sha256_update(&c, r->route->label, strlen(r->route->label) + 1);
    for (int i = 0; i < r->n_params; i++)
        sha256_update(&c, r->params[i], strlen(r->params[i]) + 1);
    MHD_get_connection_values(r->con, MHD_GET_ARGUMENT_KIND, hash_arg, &c);
    for (int f = 0; part != NULL && f < PART_N; f++)
        sha256_update(&c, part->v[f], strlen(part->v[f]) + 1);
    if (r->len > 0)
        sha256_update(&c, r->body, r->len);
    sha256_final(&c, d);
    sha256_hex(d, sizeof d, out);
}

static int64_t window_start(hreq *r)
{
    return store_now_ms() - r->ctx->cfg->idempotency_window_s * 1000;
}

json_t *inspect_view(const store_inspection_t *row)
{
    json_t *o = inspection_json(row);
    json_object_del(o, "created_at");
    json_object_del(o, "key_id");
    return o;
}

/* Answers with a live entry's first answer: the inspection it names, or
 * the JSON answer it keeps. */
static enum MHD_Result replay(hreq *r, const store_idem_t *e)
{
    r->idem->replayed = 1;
    if (e->ref[0] != '\0') {
        store_inspection_t in;
        memset(&in, 0, sizeof in);
        store_status ss = store_inspection_get(r->ctx->st, e->ref, &in);
        if (ss != STORE_OK)
            return store_fail(r, ss, "inspection", e->ref);
        enum MHD_Result ret = reply_json(r, e->status, inspect_view(&in));
        store_inspection_clear(&in);
        return ret;
    }
    json_t *saved = json_text_or(e->response, json_object());
    json_t *body = json_incref(json_object_get(saved, "body"));
    const char *loc = json_string_value(json_object_get(saved, "location"));
    enum MHD_Result ret = reply_json_hdr(r, e->status, body != NULL ? body : json_object(),
                                         loc != NULL ? "Location" : NULL, loc);
    json_decref(saved);
    return ret;
}

/* A live entry under the key: the same request is answered again, another
 * one is 409. */
static enum MHD_Result answer_existing(hreq *r, const store_idem_t *e)
{
    if (strcmp(e->hash, r->idem->entry.hash) != 0)
        return reply_error(r, 409, "idempotency_key_reused",
                           "Idempotency-Key %s was used for a different request (method, path, "
                           "query, part identity or body differ)",
                           r->idem->entry.key);
    log_info("api", "Idempotency-Key %s: replaying the first answer", e->key);
    return replay(r, e);
}

int line_idem_begin(hreq *r, int by_ref, const part_fields *part, enum MHD_Result *ret)
{
    const char *key = req_header(r, "Idempotency-Key");
    if (key == NULL)
        return 0;
    if (!idem_key_valid(key)) {
        *ret = reply_error(r, 400, "invalid_idempotency_key",
                           "Idempotency-Key must be 1-%d printable ASCII characters", IDEM_KEY_MAX);
        return 1;
    }
    struct line_idem *li = xcalloc(1, sizeof *li);
    r->idem = li;
    li->r = r;
    li->by_ref = by_ref;
    store_idem_t *e = &li->entry;
    snprintf(e->key_id, sizeof e->key_id, "%.32s", r->key_id);
    snprintf(e->route, sizeof e->route, "%s %s", r->method, r->route->label);
    snprintf(e->key, sizeof e->key, "%s", key);
    request_hash(r, part, e->hash);
    e->expire_before = window_start(r);
    if (flight_add(li) != 0) {
        json_t *err = json_pack("{s:{s:s,s:s}}", "error", "code", "idempotency_in_flight",
                                "message", "a request with this Idempotency-Key is being "
                                           "answered; retry shortly");
        *ret = reply_json_hdr(r, 409, err, "Retry-After", "1");
        return 1;
    }
    store_idem_t old;
    store_status ss = store_idem_get(r->ctx->st, e->key_id, e->route, e->key, e->expire_before,
                                     &old);
    if (ss == STORE_ERR_NOT_FOUND)
        return 0;
    *ret = ss == STORE_OK ? answer_existing(r, &old) : store_fail(r, ss, "idempotency key", key);
    store_idem_clear(&old);
    return 1;
}

const store_idem_t *line_idem_entry(hreq *r)
{
    if (r->idem == NULL)
        return NULL;
    r->idem->entry.status = 200;
    return &r->idem->entry;
}

enum MHD_Result line_idem_replay_now(hreq *r)
{
    store_idem_t old;
    store_idem_t *e = &r->idem->entry;
    store_status ss = store_idem_get(r->ctx->st, e->key_id, e->route, e->key, e->expire_before,
                                     &old);
    if (ss != STORE_OK)
        return store_fail(r, ss, "idempotency key", e->key);
    enum MHD_Result ret = answer_existing(r, &old);
    store_idem_clear(&old);
    return ret;
}

static void sweep_now_and_then(hreq *r)
{
    if (atomic_fetch_add(&g_puts, 1) % 256 != 0)
        return;
    int64_t removed = 0;
    if (store_idem_sweep(r->ctx->st, window_start(r), &removed) == STORE_OK && removed > 0)
        log_info("api", "swept %lld expired idempotency entr%s", (long long)removed,
                 removed == 1 ? "y" : "ies");
}

void line_idem_record(hreq *r, int status, const char *body, const char *hname,
                      const char *hval)
{
    struct line_idem *li = r->idem;
    if (li == NULL)
        return;
    if (li->replayed || status < 200 || status >= 300) {
        flight_remove(li); /* answered: a repeat runs again (errors are not kept) */
        return;
    }
    if (!li->by_ref) {
        json_t *saved = json_pack("{s:o}", "body", json_text_or(body, json_null()));
        if (hname != NULL && hval != NULL && strcmp(hname, "Location") == 0)
            json_object_set_new(saved, "location", json_string(hval));
        li->entry.response = json_dumps(saved, JSON_COMPACT | JSON_REAL_PRECISION(9));
        json_decref(saved);
        li->entry.status = status;
        store_status ss = store_idem_put(r->ctx->st, &li->entry);
        if (ss != STORE_OK)
            log_warn("api", "Idempotency-Key %s: the answer was not recorded: %s", li->entry.key,
                     store_strerror(ss));
    }
    /* The answer is recorded (by_ref: with its audit row, committed before
     * the reply): a repeat from now on finds it. Leaving the in-flight list
     * only when the connection completes would answer a client that
     * retries the moment it reads the 201 with 409 idempotency_in_flight. */
    flight_remove(li);
    sweep_now_and_then(r);
}

void line_idem_release(hreq *r)
{
    struct line_idem *li = r->idem;
    if (li == NULL)
        return;
    flight_remove(li);
    store_idem_clear(&li->entry);
    free(li);
    r->idem = NULL;
}

int line_idem_replayed(const hreq *r) { return r->idem != NULL && r->idem->replayed; }
