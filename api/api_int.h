/* api_int.h - shared between the files of api/ (not used outside it). */
#ifndef CFA_API_INT_H
#define CFA_API_INT_H

#include <microhttpd.h>
#include <jansson.h>
#include <stdint.h>

#include "api.h"
#include "parse.h"

typedef struct hreq hreq;
typedef enum MHD_Result (*api_handler)(hreq *r);

typedef struct api_route {
    const char *method;
    const char *pattern;  /* "{}" for one path segment                */
    const char *label;    /* route label for metrics                  */
    store_role role;      /* STORE_ROLE_NONE: no key needed           */
    int body;             /* 0 none expected, 1 JSON, 2 raw/multipart */
    api_handler fn;
    int announce;         /* 1: tell the pool as soon as the headers are
                             in (pool_announce), so a worker filling a
                             batch waits for this request's body        */
} api_route;

/* ---- limits of what a client may send (docs/API.md, "Limits") -----------
 * One place for them: routes.c gives each JSON route its body limit, the
 * handlers check the field limits. JSON bodies are small: a product's settings are a few
 * dozen numbers, so 64 KiB leaves room for whitespace and never lets a body
 * of 200,000 unknown keys be parsed. Images keep --max-body-mb. */
#define API_BODY_SETTINGS 65536 /* products, train: settings objects      */
#define API_BODY_SMALL 4096     /* threshold, keys                        */
#define API_NAME_MAX 256        /* product and key names, bytes of UTF-8  */
#define API_CURSOR_MAX 96       /* a list's cursor, bytes                 */

/* Per-request state (the MHD con_cls), created on the first callback and
 * freed in the completed callback. */
struct hreq {
    struct MHD_Connection *con;
    api_ctx *ctx;
    const api_route *route;
    char method[16];
    char params[ROUTE_MAX_PARAMS][ROUTE_PARAM_MAX];
    int n_params;
    int path_known;        /* path matched some route (for 405)      */
    char allow[64];
    uint8_t *body;
    size_t len, cap;
    int too_big;
    size_t max_body;
    double t0;
    int status;            /* status sent, for metrics               */
    store_role role;       /* role of the key presented              */
    int announced;         /* counted by pool_announce, not yet queued  */
    int deny_status;       /* 401/403/404/405 decided from the headers */
    char deny_code[32];
    char deny_msg[320];
    char key_id[40];
    char request_id[65];
    int close;             /* answer with Connection: close (strict.c) */
    size_t drained;        /* bytes of a refused body read and dropped */
    size_t bytes_out;      /* body bytes of the answer, for the access log */
    /* Idempotency-Key (line.c): the entry this request will record, whether
     * it is registered as in flight, and whether the answer is a replay */
    struct line_idem *idem;
};

extern const api_route api_routes[];
extern const size_t api_n_routes;
/* The body limit of a JSON route in bytes (routes.c, next to the table);
 * 0 for the others, which keep --max-body-mb. */
size_t api_route_body_max(const api_route *route);
/* The query parameters the route's handler reads, space-separated ("":
 * none); routes.c, next to the table. */
const char *api_route_query(const api_route *route);
extern const unsigned char api_openapi_json[];
extern const size_t api_openapi_json_len;

/* Responses. Each queues the response and returns MHD's result. */
enum MHD_Result reply_json(hreq *r, int status, json_t *body /* stolen */);
enum MHD_Result reply_json_hdr(hreq *r, int status, json_t *body /* stolen */,
                               const char *hname, const char *hval);
enum MHD_Result reply_error(hreq *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
enum MHD_Result reply_bytes(hreq *r, int status, const char *ctype, void *buf /* malloc'd, stolen */,
                            size_t len);
enum MHD_Result reply_static(hreq *r, int status, const char *ctype, const void *buf,
                             size_t len);
enum MHD_Result reply_empty(hreq *r, int status);
/* Queues a response made by the caller (a stream: export.c) and destroys
 * the caller's reference. */
enum MHD_Result reply_response(hreq *r, int status, struct MHD_Response *resp);

const char *req_header(hreq *r, const char *name);
const char *req_query(hreq *r, const char *name);
/* Parses the JSON body (empty body -> NULL with *ok = 1). On malformed
 * JSON replies 400 and sets *ok = 0. */
json_t *req_json(hreq *r, int *ok);
/* Content-Type without parameters, lower case, into buf. */
void req_content_type(hreq *r, char *buf, size_t cap);

char *b64_encode(const void *data, size_t len);

/* ---- strict.c: the checks before routing ------------------------------- */

typedef struct strict_verdict {
    int status;  /* 0: acceptable; else 400 */
    int framing; /* the body cannot be read safely: answer before it */
    char code[32];
    char msg[200];
} strict_verdict;
/* Checks the decoded path, the query and the headers of a request. */
void strict_check(struct MHD_Connection *con, const char *url, strict_verdict *v /* OUT */);
/* MHD_OPTION_UNESCAPE_CALLBACK: %HH decoding that leaves a decoded NUL
 * visible to strict_check. */
size_t strict_unescape(void *cls, struct MHD_Connection *c, char *s);

/* ---- shared by the resource files (views.c, errors.c) ------------------- */

json_t *time_json(int64_t ms);
/* text parsed as JSON, or fallback (stolen) when text is NULL or not JSON */
json_t *json_text_or(const char *text, json_t *fallback);
json_t *num_or_null(double v); /* null for NaN and infinities */
json_t *product_json(const store_product_t *p);
json_t *job_json(const store_job_t *j);
json_t *model_json(const store_model_t *m);
json_t *inspection_json(const store_inspection_t *in);
json_t *key_json(const store_key_t *k);
/* Reads ?limit (default 100, capped at 1000). Replies 400 and returns -1 on
 * a bad value. */
int query_limit(hreq *r, size_t *limit /* OUT */);
/* A list's page: ?limit as query_limit, and ?cursor (or its older name
 * ?after) into *cursor (NULL: the first page), which must pass valid (the
 * store's check of the key the cursor is made of). Replies 400
 * invalid_cursor / invalid_limit and returns -1 on a bad value. */
int query_page(hreq *r, int (*valid)(const char *), size_t *limit /* OUT */,
               const char **cursor /* OUT */);
/* 0 when every property of the object body is one of allowed (NULL-ended);
 * else replies 400 unknown_property naming the first ones and the allowed
 * ones, and returns -1. */
int body_only(hreq *r, json_t *body, const char *const allowed[]);
/* 0 when the string field (may be NULL or not a string: checked elsewhere)
 * is at most max bytes; else replies 400 field_too_long naming the field and
 * the limit, and returns -1. */
int field_max(hreq *r, json_t *field, const char *name, size_t max);
/* Replies 413 body_too_large with the request's limit (its route's, or
 * --max-body-mb). */
enum MHD_Result reply_too_large(hreq *r);
/* The JSON body, which must be an object (or absent when may_be_empty). When
 * it is not, replies 400 (malformed, or invalid_body with the message
 * not_object) and returns NULL with *ok = 0. */
json_t *req_json_object(hreq *r, int may_be_empty, const char *not_object, int *ok);
/* The product the path names (params[0]) into *p, which the caller clears;
 * when it cannot be read, replies as store_fail does, sets *ret and returns
 * -1. One lookup for every handler under /v1/products/{id}. */
int path_product(hreq *r, store_product_t *p, enum MHD_Result *ret /* OUT */);
/* Replies 200 with the product the path names, as the store has it now. */
enum MHD_Result reply_path_product(hreq *r);
/* Replies 200 with {name: items}, and "next" and "next_cursor" (the same
 * cursor, or null at the end) when next is not NULL: the one shape of every
 * list ("next" is the older name, kept for clients that read it). items is
 * stolen. */
enum MHD_Result reply_list(hreq *r, const char *name, json_t *items, const char *next);
/* errors.c: failures of the layers below as error replies (one table).
 * store_fail: what names the thing ("product"). codec_fail: where prefixes
 * the message ("part 2: "). inspection_fail: an inspection not answered
 * (not ready, bad image, pool refused, scoring failed). */
enum MHD_Result store_fail(hreq *r, store_status ss, const char *what, const char *id);
enum MHD_Result codec_fail(hreq *r, img_status st, const char *where);
enum MHD_Result inspection_fail(hreq *r, const inspect_result *res);
int is_image_type(const char *ct); /* image/jpeg, image/png (image/jpg) */

/* ---- handlers (one file per resource; the table is in routes.c) --------- */

enum MHD_Result h_healthz(hreq *r);
enum MHD_Result h_readyz(hreq *r);
enum MHD_Result h_metrics(hreq *r);
enum MHD_Result h_openapi(hreq *r);
enum MHD_Result h_info(hreq *r);
enum MHD_Result h_product_create(hreq *r);
enum MHD_Result h_product_list(hreq *r);
enum MHD_Result h_product_get(hreq *r);
enum MHD_Result h_product_patch(hreq *r);
enum MHD_Result h_product_delete(hreq *r);
enum MHD_Result h_image_upload(hreq *r);
enum MHD_Result h_image_list(hreq *r);
enum MHD_Result h_image_delete(hreq *r);
enum MHD_Result h_mask_put(hreq *r);
enum MHD_Result h_mask_get(hreq *r);
enum MHD_Result h_mask_delete(hreq *r);
enum MHD_Result h_train(hreq *r);
enum MHD_Result h_job_get(hreq *r);
enum MHD_Result h_job_list(hreq *r);
enum MHD_Result h_job_cancel(hreq *r);
enum MHD_Result h_model_list(hreq *r);
enum MHD_Result h_model_activate(hreq *r);
enum MHD_Result h_model_artifact(hreq *r);
enum MHD_Result h_threshold(hreq *r);
enum MHD_Result h_inspect(hreq *r);
enum MHD_Result h_inspection_list(hreq *r);
enum MHD_Result h_inspection_get(hreq *r);
enum MHD_Result h_heatmap(hreq *r);
enum MHD_Result h_map(hreq *r);
enum MHD_Result h_key_create(hreq *r);
enum MHD_Result h_key_list(hreq *r);
enum MHD_Result h_key_delete(hreq *r);
enum MHD_Result h_model_bundle(hreq *r);
enum MHD_Result h_model_import(hreq *r);

/* bundles.c: on a replica (ctx->follow), refuses the routes that are the
 * trainer's (409 read_only_replica) as soon as the headers are in. */
void replica_check(hreq *r);
/* 1 (why filled) while a replica holds no model yet; 0 otherwise. */
int replica_not_ready(hreq *r, char *why, size_t cap);
/* Appends the follower's metrics to text (realloc'd); 0, or -1 out of memory. */
int replica_metrics(hreq *r, char **text, size_t *len);
/* errors.c: a refused bundle (bundle_status) with the parser's message. */
enum MHD_Result bundle_fail(hreq *r, int bundle_status, const char *msg);

/* ---- static.c: the operator console's files, served at / ---------------- */

/* Resolves the web directory: configured (--web-dir), else the installed
 * share folder beside the binary, else the source tree's web/; "" when none
 * exists (the console is then not served). */
void static_resolve(const char *configured, char *out, size_t cap);
/* Claims a GET or HEAD that no API route matched when it names a console
 * file (sets r->route and r->params[0]); 1 when claimed. */
int static_claim(hreq *r, const char *url);
enum MHD_Result h_static(hreq *r);
enum MHD_Result h_image_thumbnail(hreq *r);
enum MHD_Result h_inspection_image(hreq *r);
enum MHD_Result h_job_events(hreq *r); /* job_events.c: Server-Sent Events */
/* 1: every event stream ends at its next poll (api_quiesce); 0: streams
 * run (api_start). */
void job_events_closing(int closing);
enum MHD_Result h_event_list(hreq *r);
enum MHD_Result h_sink_create(hreq *r);
enum MHD_Result h_sink_list(hreq *r);
enum MHD_Result h_sink_get(hreq *r);
enum MHD_Result h_sink_patch(hreq *r);
enum MHD_Result h_sink_delete(hreq *r);
enum MHD_Result h_sink_redeliver(hreq *r);

/* ---- the event log (events.c) and sinks (sinks.c) ------------------------ */

#define API_BODY_SINK 16384     /* a sink: URL, secret, topic, events     */
/* An event of this request (key id, request id) into *e (store_event_clear);
 * before and after are stolen (NULL: none). */
void event_fill(hreq *r, store_event_t *e, const char *kind, const char *product,
                json_t *before, json_t *after);
/* event_fill whose `after` the store makes with after_fn from the row the
 * change wrote, inside the change's transaction (store_event_t). */
void event_fill_row(hreq *r, store_event_t *e, const char *kind, const char *product,
                    json_t *before, char *(*after_fn)(const void *row, void *ctx));
/* after_fns: the row as GET shows it (store_product_t, store_key_t,
 * store_job_t), or {"images": [id]} of a store_image_t. */
char *event_after_product(const void *row, void *ctx);
char *event_after_key(const void *row, void *ctx);
char *event_after_job(const void *row, void *ctx);
char *event_after_image(const void *row, void *ctx);
/* before_fn of store_model_delete: {version, threshold, threshold_ng}. */
char *event_before_model(const void *row, void *ctx);
/* after_fn of store_mask_put, before_fn of store_mask_delete:
 * {sha256, width, height}. */
char *event_mask(const void *row, void *ctx);
/* The product as the store has it now, as JSON (NULL when there is none). */
json_t *product_state(hreq *r, const char *id);
/* The sinks' figures in the Prometheus text format (malloc'd; NULL on failure). */
char *sinks_metrics_text(store_t *st);
/* labels.c, drift.c: operator feedback and drift (docs/API.md) */
enum MHD_Result h_inspection_label(hreq *r);
enum MHD_Result h_product_drift(hreq *r);
enum MHD_Result h_model_delete(hreq *r);
/* the current label of an inspection, or JSON null */
json_t *inspection_label_json(store_t *st, const char *inspection_id);
/* the product summary's feedback figures (counts and shares) */
json_t *product_feedback_json(store_t *st, const char *product);
/* the product's drift; NULL after replying with a store failure */
json_t *product_drift_json(hreq *r, const store_product_t *p);
enum MHD_Result h_inspection_export(hreq *r);

/* ---- line.c: what a line sends beside the image (docs/API.md) ---------- */

#include "line_parse.h"
/* Part identity from the query and the X-Part-Id-style headers into p
 * (zeroed by the caller; a multipart meta part is added by the caller with
 * part_meta_parse). Replies 400 invalid_part_field and returns -1 when a
 * value is refused or two sources disagree. */
int line_part_from_request(hreq *r, part_fields *p);
/* The query parameters the request's route allows (routes.c) checked: 0, or
 * a 400 unknown_query_parameter naming them decided into the request's
 * refusal (deny) and -1. */
int line_check_query(hreq *r, char *why, size_t cap);
/* Idempotency-Key. line_idem_begin: 0 when the request goes on (with or
 * without a key); 1 when it was answered (a replay, 409, 400) with *ret
 * set. by_ref: the entry is written with the inspection's audit row (the
 * caller passes line_idem_entry() to the store); else the 2xx JSON answer
 * is recorded by reply_json_hdr. part: the identity hashed with the body. */
int line_idem_begin(hreq *r, int by_ref, const part_fields *part, enum MHD_Result *ret);
const store_idem_t *line_idem_entry(hreq *r); /* NULL without a key */
/* An inspection whose entry lost a race (STORE_ERR_EXISTS): answers from
 * the entry that won. */
enum MHD_Result line_idem_replay_now(hreq *r);
/* reply_json_hdr's hook: records a 2xx answer of a keyed request. */
void line_idem_record(hreq *r, int status, const char *body, const char *hname,
                      const char *hval);
/* on_completed's hook: the key is no longer in flight; frees the state. */
void line_idem_release(hreq *r);
/* 1 when the answer being sent is a replay (Idempotent-Replayed: true). */
int line_idem_replayed(const hreq *r);
/* inspections.c: the audit trail's filters from the query into f (zeroed by
 * the caller); -1 after replying 400 naming the filter. */
int inspection_filters(hreq *r, store_inspection_filter *f);
/* The view of an inspection as POST /inspect answers it. */
json_t *inspect_view(const store_inspection_t *row);

#endif
