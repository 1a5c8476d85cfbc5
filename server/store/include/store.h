/*
 * store.h - the daemon's persistent state: one SQLite database
 * <data_dir>/cfa.db plus content-addressed files under <data_dir>.
 *
 * If a function is not declared here it is not part of the store's API.
 *
 * Basic usage:
 *
 *     store_t *st = NULL;
 *     if (store_open("/var/lib/cfa", NULL, &st) != STORE_OK) ...;
 *     store_jobs_recover(st, 0, NULL);             (once, at start-up)
 *
 *     store_product_t p;
 *     store_status rc = store_product_get(st, "bottle-a", &p);
 *     if (rc == STORE_ERR_NOT_FOUND) -> 404
 *     ... use p.name, p.settings_json ...
 *     store_product_clear(&p);
 *
 *     store_close(st);
 *
 * Conventions
 * - Every function returning store_status returns STORE_OK (0) on success and
 *   a STORE_ERR_* code otherwise; store_strerror() names the code. On failure
 *   OUT parameters are left zeroed / empty, never half-filled. Enum values are
 *   explicit and stable; new ones are only appended.
 * - Thread-safety: after store_open() returns, every function may be called
 *   from any thread at the same time on the same store_t, except store_close(),
 *   which must be the last call (no call may be in flight). Internally: one
 *   write connection guarded by a mutex (writers are serialised in-process,
 *   so they never see SQLITE_BUSY from each other; busy_timeout + retries cover
 *   other processes such as the CLI) and a small pool of read-only connections
 *   (WAL lets them read while the writer writes).
 * - Ownership: structs named store_*_t that a function fills are owned by the
 *   caller and released with the matching store_*_clear() (single struct) or
 *   store_*s_free() (array from a list call). Those accept NULL / zeroed
 *   structs. char * fields inside them are heap strings owned by the struct.
 *   Fixed-size char arrays are NUL-terminated.
 * - JSON-valued fields (settings_json, params_json, figures_json, regions_json,
 *   timings_json) are stored and returned verbatim as JSON text; the store
 *   does not parse them (the API layer owns JSON). NULL means "no value"
 *   (SQL NULL) where documented, else "{}"/"[]" is stored.
 * - Times are int64 milliseconds since the Unix epoch (UTC) in structs;
 *   store_time_format() renders RFC 3339 ("2026-11-28T12:00:00.123Z"),
 *   store_time_parse() reads it back (for the `since` filter). 0 = unset.
 *   These are the project's one RFC 3339 formatter and parser.
 * - Identifiers that end up in file paths (product ids, image sha256, inspection
 *   ids) are validated against their charset before any path is built, so no
 *   input can escape <data_dir>; invalid ones give STORE_ERR_INVALID. The
 *   store_valid_*() checks are the project's only ones: the API calls them on
 *   path and query values so that it refuses exactly what the store refuses.
 * - Cursor pagination: list calls take `limit` (0 -> 100, capped at 1000) and
 *   `after` (NULL or "" -> first page) and fill `next` with the cursor of the
 *   following page, or "" on the last page.
 */
#ifndef CFA_STORE_H
#define CFA_STORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes (SQLite style): every function returning store_status gives
 * STORE_OK (0) on success. The values are part of the API: new codes are only
 * ever appended, never renumbered (store_strerror, store_status_code). */
typedef enum {
    STORE_OK = 0,               /* success                                    */
    STORE_ERR_NOT_FOUND = 1,    /* no such row or file                        */
    STORE_ERR_EXISTS = 2,       /* unique key already taken                   */
    STORE_ERR_CONFLICT = 3,     /* not allowed in the current state           */
    STORE_ERR_INVALID = 4,      /* bad argument (id charset, range, NULL)     */
    STORE_ERR_IO = 5,           /* file system error other than a full disk   */
    STORE_ERR_DB = 6,           /* SQLite error not mapped to another code    */
    STORE_ERR_FULL = 7,         /* disk or database full (ENOSPC, SQLITE_FULL)*/
    STORE_ERR_NOMEM = 8,        /* SQLite ran out of memory                   */
    STORE_ERR_BUSY = 9,         /* locked by another process past the retries */
    STORE_ERR_VERSION = 10,     /* database schema newer than this binary     */
    STORE_ERR_CANCELED = 11     /* the job's cancel was requested             */
} store_status;

/* A static string for a status (never NULL). */
const char *store_strerror(store_status st);
/* A static snake_case code for the status, e.g. "not_found" (never NULL). */
const char *store_status_code(store_status st);
/* Detail of the last failure on the calling thread (SQLite or errno message),
 * "" if none. Thread-local; valid until the thread's next store call. */
const char *store_last_error(void);

/* Sizes of fixed buffers (including the NUL). */
#define STORE_PRODUCT_ID_MAX 65   /* 1-64 chars of [A-Za-z0-9._-]          */
#define STORE_SHA256_HEX 65       /* 64 lowercase hex                       */
#define STORE_ID_LEN 33           /* job/inspection/key ids: 32 lowercase hex */
#define STORE_EXT_MAX 8           /* image file extension, [a-z0-9]{1,7}    */
#define STORE_TIME_LEN 32         /* RFC 3339 with milliseconds            */
#define STORE_KEY_MAX 257         /* presented API keys: 16-256 chars      */
#define STORE_CURSOR_LEN 56       /* job/key list cursor: ms "." id       */
#define STORE_LIST_MAX 1000
#define STORE_LIST_DEFAULT 100

typedef struct store store_t;
/* A row of the event log (defined with its calls below). The calls that
 * change what the log records take one (ev, may be NULL) and append it in
 * the transaction of the change: both commit, or neither does. */
typedef struct store_event store_event_t;

/* ------------------------------------------------------------------ misc */

/* Current time in ms since the epoch (UTC). Thread-safe. */
int64_t store_now_ms(void);
/* Formats ms as RFC 3339 UTC with milliseconds into out (STORE_TIME_LEN).
 * ms == 0 gives "". Returns out. Thread-safe. */
char *store_time_format(int64_t ms, char out[STORE_TIME_LEN]);
/* Parses RFC 3339 ("2026-11-28T12:00:00Z", fractional seconds and +hh:mm
 * offsets accepted; digits past milliseconds are ignored) into ms. Returns 0
 * on success, -1 if malformed (also for out-of-range fields such as month 13
 * or offset +24:00). Thread-safe. */
int store_time_parse(const char *s, int64_t *ms /* OUT */);

/* 1 if s is a valid product id (1-64 of [A-Za-z0-9._-], not "." or ".."),
 * else 0. ASCII only whatever the locale (a product id names a directory). */
int store_valid_product_id(const char *s);
/* 1 if s is a verdict: "OK", "UNSURE" or "NG", else 0. */
int store_valid_verdict(const char *s);
/* 1 if s is 64 lowercase hex chars, else 0. */
int store_valid_sha256(const char *s);
/* 1 if s is 32 lowercase hex chars (job, inspection and key ids), else 0. */
int store_valid_id(const char *s);
/* 1 if s is the cursor of a job or key list ("<created_at ms>.<id>", what
 * their next receives), else 0. Model lists' cursor is the version in
 * decimal. */
int store_valid_time_cursor(const char *s);

/* Fills out with a fresh random id (32 lowercase hex, from getrandom()).
 * Returns 0 on success, -1 if no randomness was available. Thread-safe. */
int store_random_id(char out[STORE_ID_LEN]);
/* Like store_random_id but the first 12 hex digits are the current time in
 * ms, so ids sort by creation time (used for inspections). */
int store_time_id(char out[STORE_ID_LEN]);

/* ------------------------------------------------------------ open/close */

typedef struct {
    int read_connections; /* read-only pool size; 0 -> 4                */
    int busy_timeout_ms;  /* 0 -> 5000                                   */
    int sync_full;        /* 1: PRAGMA synchronous=FULL (default): a
                             committed row survives power loss; 0: NORMAL
                             (survives process crash only, fewer fsyncs) */
} store_options;

store_options store_default_options(void);

/* Opens (creating when missing) data_dir, data_dir/images,
 * data_dir/inspections and data_dir/cfa.db, sets WAL, foreign_keys=ON,
 * busy_timeout, synchronous (see store_options), and applies the embedded migrations that
 * the database has not seen yet, each in its own transaction, recording
 * PRAGMA user_version. opts may be NULL (defaults).
 * Returns STORE_ERR_VERSION if the database is newer than this binary.
 * *out is NULL on failure. Not thread-safe against itself on the same dir
 * (call once at start-up). */
store_status store_open(const char *data_dir, const store_options *opts,
                        store_t **out /* OUT */);
/* Removes the temp files that an interrupted write leaves behind
 * (<name>.tmp-<random> from the durable writer, admin.key.tmp) anywhere
 * under data_dir, without following links. Such files are never referenced
 * by the database: a file gets its final name by rename() only after fsync.
 * Call at start-up, before any writer runs. *removed (may be NULL) gets the
 * count. STORE_OK also when data_dir does not exist yet. */
store_status store_sweep_temp(const char *data_dir, int *removed /* OUT */);
/* Closes all connections and frees st. NULL is a no-op. No other call on st may be in flight. */
void store_close(store_t *st);

/* Schema version of the open database (PRAGMA user_version). */
int store_schema_version(store_t *st);
/* Highest migration embedded in this binary. */
int store_schema_latest(void);
/* The data directory (owned by st). */
const char *store_data_dir(store_t *st);
/* Cheap liveness check for /readyz: runs SELECT 1 on a read connection. */
store_status store_ping(store_t *st);
/* Whether writes succeed: STORE_OK, or the status of the last write that
 * failed for want of space or of a working database (an inspection's commit
 * or its files), until a later one succeeds (for a full disk: a file write)
 * or store_write_probe does. why
 * (may be NULL) receives the detail. For /readyz; thread-safe. */
store_status store_write_health(store_t *st, char *why, size_t len);
/* Reserves 1 MiB in the data directory and gives it back (fallocate of a
 * temp file): STORE_OK, which clears a recorded failure, or STORE_ERR_FULL /
 * STORE_ERR_IO with store_last_error(). Cheap enough for every /readyz that
 * finds the store unwritable. */
store_status store_write_probe(store_t *st);

/* --------------------------------------------------------------- products */

typedef struct {
    char id[STORE_PRODUCT_ID_MAX];
    char *name;            /* never NULL ("" when unset)                    */
    char *settings_json;   /* JSON object text, never NULL ("{}")           */
    int64_t active_version;/* 0 = no active model                           */
    double threshold;      /* threshold of the active model; NAN if none    */
    int has_threshold;     /* 1 if threshold is meaningful                  */
    double threshold_ng;   /* its NG threshold (>= threshold; = threshold for
                              a model without one); NAN if none             */
    int64_t image_count;
    int64_t created_at;    /* ms                                            */
    int64_t updated_at;    /* ms                                            */
} store_product_t;

void store_product_clear(store_product_t *p);
void store_products_free(store_product_t *arr, size_t n);

/* Creates a product. name may be NULL (""), settings_json NULL ("{}").
 * STORE_ERR_INVALID for a bad id, STORE_ERR_EXISTS for a duplicate.
 * If out is non-NULL it receives the created product. ev's after_fn (see
 * store_event_t) gets the store_product_t as created. */
store_status store_product_create(store_t *st, const char *id, const char *name,
                                  const char *settings_json,
                                  store_product_t *out /* OUT, may be NULL */,
                                  store_event_t *ev);
store_status store_product_get(store_t *st, const char *id,
                               store_product_t *out /* OUT */);
/* Products ordered by id; next receives the last id when more follow. */
store_status store_product_list(store_t *st, size_t limit, const char *after,
                                store_product_t **out /* OUT, free with store_products_free */,
                                size_t *n /* OUT */,
                                char next[STORE_PRODUCT_ID_MAX] /* OUT */);
/* Updates name and/or settings (NULL leaves a field unchanged) and updated_at.
 * out (may be NULL) receives the product after the change; so does ev's
 * after_fn. */
store_status store_product_patch(store_t *st, const char *id, const char *name,
                                 const char *settings_json,
                                 store_product_t *out /* OUT, may be NULL */,
                                 store_event_t *ev);
/* Deletes the product, its images (rows and files), models and finished jobs.
 * Inspections stay (audit trail). STORE_ERR_CONFLICT while a job of the
 * product is queued or running. */
store_status store_product_delete(store_t *st, const char *id, store_event_t *ev);

/* ----------------------------------------------------------------- images */

typedef struct {
    char sha256[STORE_SHA256_HEX]; /* also the image id in the API          */
    char ext[STORE_EXT_MAX];       /* "jpg", "png"                          */
    int width, height;
    int64_t bytes;
    int64_t created_at;
    char *path;                    /* absolute file path; only filled by
                                      store_image_list_all, else NULL      */
} store_image_t;

void store_images_free(store_image_t *arr, size_t n);

/* Stores the encoded image bytes for product: computes SHA-256, writes
 * <data_dir>/images/<product>/<sha[0:2]>/<sha>.<ext> durably (temp file,
 * fsync, rename, fsync dir), then inserts the row. The same bytes again store
 * nothing new and report *created = 0. ext: [a-z0-9]{1,7} (e.g. "jpg").
 * STORE_ERR_NOT_FOUND if the product does not exist. out may be NULL.
 * Thread-safe; concurrent puts of the same bytes store one file, one row.
 * ev is appended only when the row is created (after_fn gets the
 * store_image_t). */
store_status store_image_put(store_t *st, const char *product, const void *data,
                             size_t len, int width, int height, const char *ext,
                             store_image_t *out /* OUT, may be NULL */,
                             int *created /* OUT, may be NULL */, store_event_t *ev);
store_status store_image_get(store_t *st, const char *product, const char *sha256,
                             store_image_t *out /* OUT (path not filled) */);
/* Images of a product ordered by sha256; cursor = sha256. STORE_ERR_NOT_FOUND
 * for an unknown product. */
store_status store_image_list(store_t *st, const char *product, size_t limit,
                              const char *after,
                              store_image_t **out /* OUT, store_images_free */,
                              size_t *n /* OUT */,
                              char next[STORE_SHA256_HEX] /* OUT */);
/* Every image of the product with path filled (for training). */
store_status store_image_list_all(store_t *st, const char *product,
                                  store_image_t **out /* OUT, store_images_free */,
                                  size_t *n /* OUT */);
/* Removes the row, then the file. STORE_ERR_NOT_FOUND if absent. */
store_status store_image_delete(store_t *st, const char *product, const char *sha256,
                                store_event_t *ev);
store_status store_image_count(store_t *st, const char *product, int64_t *n /* OUT */);
/* Total images over all products (for /metrics). */
store_status store_image_count_all(store_t *st, int64_t *n /* OUT */);
/* Writes the file path of an image into buf (does not check existence).
 * STORE_ERR_INVALID for bad ids/ext or a too-small buffer. */
store_status store_image_path(store_t *st, const char *product, const char *sha256,
                              const char *ext, char *buf, size_t buflen);

/* ------------------------------------------------------------------- jobs */

/* Stored as text ("queued", ...); the numbers index store_job_counts(). */
typedef enum {
    STORE_JOB_QUEUED = 0,       /* waiting for the job runner                 */
    STORE_JOB_RUNNING = 1,      /* claimed by the runner (store_job_claim)    */
    STORE_JOB_SUCCEEDED = 2,    /* ended with a model                         */
    STORE_JOB_FAILED = 3,       /* ended with an error                        */
    STORE_JOB_CANCELED = 4      /* ended on request                           */
} store_job_state;
#define STORE_JOB_STATES 5      /* number of store_job_state values          */

/* "queued", "running", ... ; NULL for an out-of-range value. */
const char *store_job_state_name(store_job_state s);
/* Returns 0 and sets *s if name is a state name, else -1. */
int store_job_state_parse(const char *name, store_job_state *s /* OUT */);

typedef struct {
    char id[STORE_ID_LEN];
    char product[STORE_PRODUCT_ID_MAX];
    store_job_state state;
    char *params_json;     /* never NULL ("{}")                        */
    char *phase;           /* never NULL ("" before the first progress)*/
    int epoch, epochs;
    double loss;           /* NAN when unknown                          */
    double fraction;       /* 0..1                                      */
    int64_t model_version; /* 0 = none                                  */
    char *error;           /* NULL unless failed/canceled with a reason */
    int cancel_requested;
    int64_t created_at, started_at, finished_at; /* ms, 0 = not yet   */
} store_job_t;

void store_job_clear(store_job_t *j);
void store_jobs_free(store_job_t *arr, size_t n);

/* Creates a queued job for product. Atomically STORE_ERR_CONFLICT when a job
 * of that product is already queued or running (also enforced by a partial
 * unique index). STORE_ERR_NOT_FOUND for an unknown product.
 * params_json NULL -> "{}". out may be NULL. ev's after_fn gets the
 * store_job_t as created. */
store_status store_job_create(store_t *st, const char *product, const char *params_json,
                              store_job_t *out /* OUT, may be NULL */, store_event_t *ev);
store_status store_job_get(store_t *st, const char *id, store_job_t *out /* OUT */);
/* Jobs newest first (created_at, then id), optionally filtered by product
 * (NULL = all) and state (state_filter < 0 = all); cursor "<created_at>.<id>"
 * (store_valid_time_cursor), so a page is the same whatever was inserted
 * since the last. */
store_status store_job_list(store_t *st, const char *product, int state_filter,
                            size_t limit, const char *after,
                            store_job_t **out /* OUT, store_jobs_free */,
                            size_t *n /* OUT */, char next[STORE_CURSOR_LEN] /* OUT */);
/* Atomically takes the oldest queued job, marks it running (started_at=now)
 * and returns it. STORE_ERR_NOT_FOUND when none is queued. */
store_status store_job_claim(store_t *st, store_job_t *out /* OUT */);
/* Records progress of a running job. phase may be NULL (unchanged); pass NAN
 * for an unknown loss. *cancel_requested (may be NULL) reports whether a
 * cancel was requested, so the runner can poll it here.
 * STORE_ERR_CONFLICT if the job is not running. */
store_status store_job_progress(store_t *st, const char *id, const char *phase,
                                int epoch, int epochs, double loss, double fraction,
                                int *cancel_requested /* OUT, may be NULL */);
/* Ends a queued or running job in state (succeeded, failed or canceled) with
 * an optional error text (may be NULL) and model_version (0 = none);
 * finished_at = now. STORE_ERR_CONFLICT if it already ended,
 * STORE_ERR_INVALID for a non-final state. For success with a new model
 * prefer store_model_insert(), which finishes the job in the same transaction. */
store_status store_job_finish(store_t *st, const char *id, store_job_state state,
                              const char *error, int64_t model_version, store_event_t *ev);
/* Cancel: a queued job ends 'canceled' at once; a running one gets
 * cancel_requested = 1 (the runner sees it in store_job_progress() and ends it
 * with store_job_finish(CANCELED)). STORE_ERR_CONFLICT if already finished.
 * out (may be NULL) receives the job after the change. */
store_status store_job_cancel(store_t *st, const char *id,
                              store_job_t *out /* OUT, may be NULL */);
/* Start-up recovery: every job still 'running' (the process died under it)
 * becomes 'queued' again when requeue != 0 (progress reset), else 'failed'
 * with error "interrupted by restart". Jobs with cancel_requested become
 * 'canceled'. *n (may be NULL) gets how many were touched. Call before the
 * job runner starts. */
store_status store_jobs_recover(store_t *st, int requeue, int *n /* OUT, may be NULL */);
/* Number of jobs per state (index = store_job_state), for /metrics. */
store_status store_job_counts(store_t *st, int64_t counts[STORE_JOB_STATES] /* OUT */);

/* ----------------------------------------------------------------- models */

typedef struct {
    char product[STORE_PRODUCT_ID_MAX];
    int64_t version;          /* 1, 2, ... per product                       */
    int64_t created_at;
    char job_id[STORE_ID_LEN];/* "" when not made by a job                   */
    double threshold;
    double threshold_ng;      /* NG from here; = threshold when none was set  */
    char backbone_sha256[STORE_SHA256_HEX]; /* "" when unknown              */
    char *figures_json;       /* never NULL ("{}")                          */
    int active;               /* 1 if product.active_version == version     */
    void *blob;               /* serialised model; only store_model_get     */
    size_t blob_len;
} store_model_t;

void store_model_clear(store_model_t *m);
void store_models_free(store_model_t *arr, size_t n);

typedef struct {
    const char *product;
    const char *job_id;          /* may be NULL; when set, the job is finished
                                    'succeeded' with this version in the same
                                    transaction                              */
    const void *blob;
    size_t blob_len;
    double threshold;
    double threshold_ng;         /* >= threshold; 0 or NAN: none (= threshold) */
    const char *backbone_sha256; /* may be NULL                              */
    const char *figures_json;    /* may be NULL -> "{}"                      */
    int activate;                /* 1: make it the product's active version  */
    store_event_t *events;       /* n_events rows appended in the insert's
                                    transaction; after_fn gets the new
                                    version (a const int64_t *)              */
    int n_events;
} store_model_new;

/* Inserts a model with the next version of its product (max + 1), all in one
 * transaction with the job finish and the optional activation.
 * STORE_ERR_CANCELED (nothing written) if job_id has cancel_requested;
 * STORE_ERR_CONFLICT if job_id is not running; STORE_ERR_NOT_FOUND for an
 * unknown product or job. *version receives the new version. */
store_status store_model_insert(store_t *st, const store_model_new *m,
                                int64_t *version /* OUT, may be NULL */);
/* One model with its blob. version 0 = the active one (STORE_ERR_NOT_FOUND
 * when the product has no active model). */
store_status store_model_get(store_t *st, const char *product, int64_t version,
                             store_model_t *out /* OUT */);
/* Models of a product, newest first, without blobs; cursor = the version
 * in decimal ("" or NULL: the first page). */
store_status store_model_list(store_t *st, const char *product, size_t limit,
                              const char *after,
                              store_model_t **out /* OUT, store_models_free */,
                              size_t *n /* OUT */, char next[STORE_CURSOR_LEN] /* OUT */);
/* ev's after_fn gets the store_product_t after the activation. */
store_status store_model_activate(store_t *st, const char *product, int64_t version,
                                  store_event_t *ev);
/* Deletes a model that is not active: STORE_ERR_CONFLICT for the active
 * one, STORE_ERR_NOT_FOUND when absent. Its version is never given out
 * again for this product id (nor after the product is deleted and created
 * again: store_model_insert continues past the highest version ever made).
 * ev (may be NULL) is appended in the same transaction; its before_fn gets
 * the store_model_t as it was (product, version, thresholds; no blob or
 * figures). */
store_status store_model_delete(store_t *st, const char *product, int64_t version,
                                store_event_t *ev);
/* Sets the threshold of version (0 = the active model). */
store_status store_model_set_threshold(store_t *st, const char *product,
                                       int64_t version, double threshold);
/* Sets both thresholds of version (0 = the active model). threshold_ng NAN
 * keeps the version's NG threshold, raised to threshold when below it (so
 * that NG still implies the two-valued decision NG). The caller checks
 * threshold_ng >= threshold. ev's after_fn gets the store_product_t after the
 * change. */
store_status store_model_set_thresholds(store_t *st, const char *product, int64_t version,
                                        double threshold, double threshold_ng,
                                        store_event_t *ev);

/* ------------------------------------------------------------ inspections */

/* Part identity of an inspection (docs/API.md): each field 0-128 bytes of
 * printable UTF-8, "" when the line did not send it (stored as NULL). The
 * API checks the characters (part_field_check); the store stores. */
#define STORE_PART_MAX 129
typedef struct {
    char part_id[STORE_PART_MAX];
    char serial[STORE_PART_MAX];
    char camera[STORE_PART_MAX];
    char station[STORE_PART_MAX];
    char order[STORE_PART_MAX];
} store_part_t;
struct store_idem;

typedef struct {
    char id[STORE_ID_LEN];       /* store_time_id(); "" on insert -> generated */
    char product[STORE_PRODUCT_ID_MAX];
    int64_t model_version;
    double score, threshold, map_max;
    char decision[4];            /* "OK" or "NG"                              */
    double threshold_ng;         /* NG from here (verdict)                    */
    char verdict[8];             /* "OK", "UNSURE" or "NG"; "" on insert ->
                                    decision                                 */
    char *regions_json;          /* JSON array text; NULL on insert -> "[]"   */
    char *timings_json;          /* JSON object text; NULL on insert -> "{}"  */
    int64_t created_at;          /* 0 on insert -> taken from the id / now    */
    int has_images;              /* map/heatmap files exist                   */
    char key_id[STORE_ID_LEN];   /* API key that asked; "" if none            */
    store_part_t part;           /* what the line said of the part ("": none) */
    /* insert only, may be NULL: the Idempotency-Key entry naming this row,
     * written in the row's transaction (STORE_ERR_EXISTS when a live entry
     * holds the key: then the row is not written either) */
    const struct store_idem *idem;
} store_inspection_t;

void store_inspection_clear(store_inspection_t *r);
void store_inspections_free(store_inspection_t *arr, size_t n);

/* Inserts one row now (synchronous, one transaction). The caller keeps
 * ownership of in. If in->id is "" an id is generated and written back. */
store_status store_inspection_insert(store_t *st, store_inspection_t *in);
/* Inserts n rows in one transaction (all or none). */
store_status store_inspections_insert_many(store_t *st, store_inspection_t *in, size_t n);
/* Commits in as part of the next group and returns once the group's
 * transaction is durable (WAL, synchronous as opened: FULL survives power
 * loss): rows from concurrent callers share one transaction and one fsync.
 * If in->id is "" an id is generated and written back. The row is not
 * copied: in must stay valid until the call returns. On failure the row is
 * not in the table: STORE_ERR_FULL (disk or database full), another status
 * otherwise, with store_last_error(). Thread-safe; blocks. */
store_status store_inspection_commit(store_t *st, store_inspection_t *in);
/* Groups (transactions) and rows store_inspection_commit has committed or
 * tried since open: rows / groups is the mean group size. Thread-safe. */
void store_inspection_commit_stats(store_t *st, int64_t *groups /* OUT */,
                                   int64_t *rows /* OUT */);

store_status store_inspection_get(store_t *st, const char *id,
                                  store_inspection_t *out /* OUT */);

typedef struct {
    const char *product;   /* NULL = all                               */
    const char *decision;  /* "OK" / "NG" / NULL = all                  */
    const char *verdict;   /* "OK" / "UNSURE" / "NG" / NULL = all       */
    int64_t since;         /* ms, 0 = no bound; created_at >= since    */
    size_t limit;          /* 0 -> 100, capped at 1000                  */
    const char *after;     /* cursor (an inspection id) or NULL        */
    int64_t until;         /* ms, 0 = no bound; created_at < until     */
    int64_t model_version; /* 0 = all                                  */
    /* part identity: NULL = all, else equal */
    const char *part_id, *serial, *camera, *station, *order;
} store_inspection_filter;

/* Newest first (by id, which starts with the creation time). next = id of the
 * last row returned when more follow, else "". */
store_status store_inspection_list(store_t *st, const store_inspection_filter *f,
                                   store_inspection_t **out /* OUT, store_inspections_free */,
                                   size_t *n /* OUT */,
                                   char next[STORE_ID_LEN] /* OUT */);

/* Map / heatmap files of an inspection:
 * <data_dir>/inspections/<id[0:7]>/<id>.<name>, name in [a-z0-9._-]{1,32}
 * (e.g. "map.png", "heatmap.png"). Written whole (temp, rename) without
 * fsync: a crash of the process keeps it; store_inspection_commit of a row
 * with has_images syncs the file system before the row is committed, so a
 * committed row's files also survive a power cut. */
store_status store_inspection_file_write(store_t *st, const char *id, const char *name,
                                         const void *data, size_t len);
store_status store_inspection_file_path(store_t *st, const char *id, const char *name,
                                        char *buf, size_t buflen);
/* Reads a whole inspection file; *data is malloc'd, caller frees.
 * STORE_ERR_NOT_FOUND if absent (pruned or stored without images). */
store_status store_inspection_file_read(store_t *st, const char *id, const char *name,
                                        void **data /* OUT */, size_t *len /* OUT */);
/* Removes every file <id>.* of inspection id (those of a row that could not
 * be committed). */
void store_inspection_files_remove(store_t *st, const char *id);
/* Retention: keeps the files of the newest keep inspections with images,
 * deletes the files of older ones and clears their has_images flag (the rows
 * stay). *removed (may be NULL) gets the number of inspections pruned. */
store_status store_inspections_prune(store_t *st, int64_t keep, int64_t *removed /* OUT */);

/* --------------------------------------------------------------- api keys */

/* Roles of API keys, ordered: a key may do what its role and every lower
 * one may. Stored as text ("inspect", ...). The API's route table uses the
 * same values (STORE_ROLE_NONE: the route needs no key). */
typedef enum {
    STORE_ROLE_NONE = 0,        /* no key / no key needed; never stored       */
    STORE_ROLE_INSPECT = 1,     /* inspect, read results                      */
    STORE_ROLE_OPERATE = 2,     /* manage products, images, training          */
    STORE_ROLE_ADMIN = 3        /* manage API keys                            */
} store_role;

/* "inspect", "operate", "admin"; NULL for STORE_ROLE_NONE or out of range. */
const char *store_role_name(store_role r);
/* 0 and *r set for "inspect", "operate" or "admin", else -1. */
int store_role_parse(const char *name, store_role *r /* OUT */);

typedef struct {
    char id[STORE_ID_LEN];
    char *name;           /* never NULL */
    store_role role;
    int64_t created_at;
    int64_t revoked_at;   /* 0 = active */
} store_key_t;

void store_key_clear(store_key_t *k);
void store_keys_free(store_key_t *arr, size_t n);

/* Creates a key. When key is NULL a random one ("cfa_" + 64 hex) is made and
 * written to key_out (shown once to the user; never stored in clear); when
 * key is given (e.g. CFA_ADMIN_KEY) it must be 16-256 printable ASCII chars
 * without spaces, and is copied to key_out. Only sha256(salt || key) with a
 * random 16-byte salt is stored. key_out and out may be NULL. ev's after_fn
 * gets the store_key_t as created. */
store_status store_key_create(store_t *st, const char *name, store_role role,
                              const char *key,
                              char key_out[STORE_KEY_MAX] /* OUT, may be NULL */,
                              store_key_t *out /* OUT, may be NULL */, store_event_t *ev);
/* Finds the active key matching the presented key (lookup by a fingerprint
 * index, then constant-time comparison of the salted hash).
 * STORE_ERR_NOT_FOUND for unknown, malformed or revoked keys. */
store_status store_key_verify(store_t *st, const char *presented,
                              store_key_t *out /* OUT, may be NULL */);
/* Keys (revoked included), oldest first (created_at, then id); cursor
 * "<created_at>.<id>" as for jobs. */
store_status store_key_list(store_t *st, size_t limit, const char *after,
                            store_key_t **out /* OUT, store_keys_free */,
                            size_t *n /* OUT */, char next[STORE_CURSOR_LEN] /* OUT */);
/* Sets revoked_at. STORE_ERR_NOT_FOUND for unknown or already revoked keys;
 * STORE_ERR_CONFLICT (nothing changed) for the last active admin key, so
 * that the service always keeps a key that can make keys. */
store_status store_key_revoke(store_t *st, const char *id, store_event_t *ev);
/* Number of keys not revoked (0 on first start -> bootstrap the admin key). */
store_status store_key_count_active(store_t *st, int64_t *n /* OUT */);

/* ------------------------------------------------------------- event log */

#define STORE_EVENT_KIND_MAX 32
#define STORE_REQUEST_ID_MAX 65

/* One change of state (docs/API.md, "Events"). */
struct store_event {
    int64_t seq;                        /* set by store_event_append        */
    int64_t at;                         /* ms; 0: now                        */
    char kind[STORE_EVENT_KIND_MAX];    /* one of store_event_kinds          */
    char product[STORE_PRODUCT_ID_MAX]; /* "" when none                      */
    char key_id[STORE_ID_LEN];          /* "" for the daemon itself          */
    char request_id[STORE_REQUEST_ID_MAX];
    char *before_json;                  /* JSON text, NULL: none             */
    char *after_json;
    char cursor[24];                    /* seq in decimal (list cursor)      */
    /* Optional, for a write call given this event: called inside the
     * change's transaction with the row the change wrote (each call names
     * its row), it returns after_json (malloc'd; after_json must be NULL
     * before), so `after` can show ids and times the store makes. It runs
     * under the store's writer lock: it must not call the store. */
    char *(*after_fn)(const void *row, void *ctx);
    void *after_ctx;     /* ctx of after_fn and before_fn */
    /* Optional, for a call that removes a row and says so: called the same
     * way with the row as it was, it returns before_json (malloc'd). */
    char *(*before_fn)(const void *row, void *ctx);
};

void store_event_clear(store_event_t *e);
void store_events_free(store_event_t *arr, size_t n);

/* The event kinds, NULL-ended ("product.created", ...; docs/API.md). */
extern const char *const store_event_kinds[];
/* Index of kind in store_event_kinds, or -1. */
int store_event_kind_index(const char *kind);

/* Appends e (setting e->seq, and e->at when 0) and one outbox row per sink
 * that wants its kind, in one transaction. STORE_ERR_INVALID for an unknown
 * kind or a bad product or key id. */
store_status store_event_append(store_t *st, store_event_t *e);
store_status store_event_get(store_t *st, int64_t seq, store_event_t *out /* OUT */);

typedef struct {
    const char *kind;     /* NULL: any                                       */
    const char *product;  /* NULL: any                                       */
    int64_t since, until; /* ms, 0: unbounded; since <= at < until           */
    size_t limit;
    const char *after;    /* cursor (a seq in decimal), NULL: first page     */
} store_event_filter;
/* Events oldest first (by seq); next gets the cursor of the next page. */
store_status store_event_list(store_t *st, const store_event_filter *f,
                              store_event_t **out /* OUT, store_events_free */,
                              size_t *n /* OUT */, char next[STORE_CURSOR_LEN] /* OUT */);
/* 1 if s is an event list cursor (a positive decimal seq), else 0. */
int store_valid_seq_cursor(const char *s);

/* ------------------------------------------------------------ result sinks */

#define STORE_SINK_KIND_MAX 16

/* A result sink and its delivery figures (those are read, never written). */
typedef struct {
    char id[STORE_ID_LEN];
    char kind[STORE_SINK_KIND_MAX];     /* "webhook" or "mqtt"              */
    char *name;                         /* never NULL                        */
    char product[STORE_PRODUCT_ID_MAX]; /* "": every product                 */
    char *events;                       /* comma-separated names             */
    char *config_json;                  /* the kind's settings (server/sinks) */
    char *secret;                       /* NULL: none; filled by get_secret  */
    int has_secret;
    int enabled;
    int64_t delivered, failed;          /* acknowledged deliveries, failed tries */
    int64_t queued, dead;               /* outbox rows by state              */
    int64_t oldest_at;                  /* created_at of the oldest queued row, 0: none */
    int64_t created_at, updated_at;
} store_sink_t;

void store_sink_clear(store_sink_t *s);
void store_sinks_free(store_sink_t *arr, size_t n);

/* Creates s (id, created_at, updated_at set) with secret (NULL: none) and
 * appends ev (may be NULL) in the same transaction. */
store_status store_sink_create(store_t *st, store_sink_t *s, const char *secret,
                               store_event_t *ev);
/* Replaces name, product, events, config_json and enabled of s->id; the
 * secret when secret is not NULL ("" removes it). ev as for create. */
store_status store_sink_update(store_t *st, const store_sink_t *s, const char *secret,
                               store_event_t *ev);
/* Deletes the sink and its outbox rows; ev as for create. */
store_status store_sink_delete(store_t *st, const char *id, store_event_t *ev);
/* One sink with its figures; with_secret also fills secret. */
store_status store_sink_get(store_t *st, const char *id, int with_secret,
                            store_sink_t *out /* OUT */);
/* Sinks by id, paged (cursor: the id); kind NULL: every kind. */
store_status store_sink_list(store_t *st, const char *kind, size_t limit, const char *after,
                             store_sink_t **out /* OUT, store_sinks_free */,
                             size_t *n /* OUT */, char next[STORE_CURSOR_LEN] /* OUT */);
/* Puts the sink's dead rows back in the queue, due now, tries reset;
 * *n gets their number. */
store_status store_sink_redeliver(store_t *st, const char *id, int64_t *n /* OUT */);

/* ------------------------------------------------------------------ outbox */

/* One delivery owed to a sink. */
typedef struct {
    int64_t seq;
    char sink_id[STORE_ID_LEN];
    char event[STORE_EVENT_KIND_MAX];   /* "inspection" or an event kind     */
    char ref[STORE_ID_LEN];             /* inspection id, or event seq       */
    char product[STORE_PRODUCT_ID_MAX];
    int attempts;
    int64_t next_at, created_at;
} store_outbox_t;

/* The sink's oldest queued rows (at most limit), in order. */
store_status store_outbox_head(store_t *st, const char *sink_id, size_t limit,
                               store_outbox_t **out /* OUT, free() */, size_t *n /* OUT */);
/* The peer acknowledged rows seqs[0..n): deletes them and counts the
 * deliveries, in one transaction (the senders gather a round's
 * acknowledgements: one commit, not one per delivery). */
store_status store_outbox_delivered(store_t *st, const int64_t *seqs, size_t n,
                                    const char *sink_id);
/* A try of row seq failed: records it (attempts, next_at, the error) and
 * counts the failure; dead: the row leaves the queue (state dead). */
store_status store_outbox_failed(store_t *st, int64_t seq, const char *sink_id, int attempts,
                                 int64_t next_at, int dead, const char *error);
/* Wakes store_outbox_wait (the store calls it after each commit that may
 * have added rows; server/sinks on stop). */
void store_outbox_notify(store_t *st);
/* Waits up to timeout_ms for a commit that added outbox rows after *gen
 * (in/out: the generation last seen). Returns 1 if there was one. */
int store_outbox_wait(store_t *st, int64_t *gen, int timeout_ms);
/* ------------------------------------------------- labels (labels.c) */

/* Operator feedback on an inspection. The newest label of an inspection is
 * its label; older ones stay in the table as history. */
#define STORE_LABEL_MAX 12  /* "false_alarm" + NUL */
#define STORE_NOTE_MAX 1024 /* bytes of a label's note */

typedef struct {
    char inspection_id[STORE_ID_LEN];
    char label[STORE_LABEL_MAX];   /* "false_alarm", "defect", "ok"          */
    char *note;                    /* never NULL ("" when none)              */
    char key_id[STORE_ID_LEN];     /* "" if none                             */
    int64_t created_at;
    char image_id[STORE_SHA256_HEX]; /* training image added with it, or ""  */
} store_label_t;

void store_label_clear(store_label_t *l);
/* 1 if s is one of the three labels, else 0. */
int store_valid_label(const char *s);
/* Records a label for the inspection (which must exist: STORE_ERR_NOT_FOUND)
 * with the product and decision of its audit row. note may be NULL;
 * image_id (may be NULL) names a training image added with it. out (may be
 * NULL) receives the row. */
store_status store_label_add(store_t *st, const char *inspection_id, const char *label,
                             const char *note, const char *key_id, const char *image_id,
                             store_label_t *out /* OUT, may be NULL */);
/* The current (newest) label of an inspection; STORE_ERR_NOT_FOUND if none. */
store_status store_label_get(store_t *st, const char *inspection_id,
                             store_label_t *out /* OUT */);

/* Inspections of a product by decision and current label; only those made
 * since the product was (re)created (a deleted product's id may return). */
typedef struct {
    int64_t ng_defect, ng_false_alarm, ng_ok; /* decided NG, labelled ... */
    int64_t ok_defect, ok_false_alarm, ok_ok; /* decided OK, labelled ... */
} store_label_counts;
store_status store_label_count(store_t *st, const char *product,
                               store_label_counts *out /* OUT */);

/* The scores of the newest n inspections of a product's model version,
 * newest first, into *scores (malloc'd, caller frees; NULL when *n_out 0). */
store_status store_inspection_scores(store_t *st, const char *product, int64_t version,
                                     size_t n, double **scores /* OUT */,
                                     size_t *n_out /* OUT */);

#ifdef __cplusplus
}
#endif
/* ------------------------------------------------------------ ROI masks */
/* A product's current inspection mask (issue 13, masks.c): the PNG at
 * <data_dir>/masks/<product>/<sha256>.png. */
typedef struct {
    char sha256[STORE_SHA256_HEX];
    int width, height;
    int64_t bytes;
    int64_t created_at;
} store_mask_t;

/* Writes the PNG durably, then makes it the product's mask (replacing the
 * last one's row; its file stays for the models trained with it).
 * STORE_ERR_NOT_FOUND for an unknown product. out may be NULL. ev (may be
 * NULL) is appended in the row's transaction; its after_fn gets the
 * store_mask_t. */
store_status store_mask_put(store_t *st, const char *product, const void *data, size_t len,
                            int width, int height, store_mask_t *out /* OUT, may be NULL */,
                            store_event_t *ev);
/* STORE_ERR_NOT_FOUND when the product has no mask. */
store_status store_mask_get(store_t *st, const char *product, store_mask_t *out /* OUT */);
/* Removes the row (not the file); STORE_ERR_NOT_FOUND when there was none.
 * ev as for put; its before_fn gets the store_mask_t as it was. */
store_status store_mask_delete(store_t *st, const char *product, store_event_t *ev);
/* The file of mask sha256 of product (existence not checked). */
store_status store_mask_path(store_t *st, const char *product, const char *sha256, char *buf,
                             size_t buflen);
/* The figures JSON of model product@version, without its blob (malloc'd
 * into *figures_json, caller frees); STORE_ERR_NOT_FOUND when absent. */
store_status store_model_figures(store_t *st, const char *product, int64_t version,
                                 char **figures_json /* OUT */);
/* ------------------------------------------------------------ idempotency */

/* An Idempotency-Key entry (server/store/idempotency.c): the first answer to
 * a request, per API key and route, replayed to a repeat within the window. */
#define STORE_IDEM_KEY_MAX 256   /* 1-255 bytes                              */
#define STORE_IDEM_ROUTE_MAX 96
typedef struct store_idem {
    char key_id[STORE_ID_LEN];   /* API key ("" for none)                    */
    char route[STORE_IDEM_ROUTE_MAX];
    char key[STORE_IDEM_KEY_MAX];
    char hash[65];               /* hex SHA-256 of the request              */
    int status;                  /* HTTP status of the first answer          */
    char ref[STORE_ID_LEN];      /* inspections: the audit row's id          */
    char *response;              /* other routes: the JSON answer (owned)    */
    int64_t created_at;          /* 0 on put -> now                          */
    /* put only: an entry older than this (ms) is expired and replaced      */
    int64_t expire_before;
} store_idem_t;

void store_idem_clear(store_idem_t *e);
/* The live entry (created at or after not_before ms) of (key_id, route,
 * key) into out; STORE_ERR_NOT_FOUND when there is none. */
store_status store_idem_get(store_t *st, const char *key_id, const char *route,
                            const char *key, int64_t not_before,
                            store_idem_t *out /* OUT, store_idem_clear */);
/* Records e in its own transaction; STORE_ERR_EXISTS when a live entry
 * holds the key. */
store_status store_idem_put(store_t *st, const store_idem_t *e);
/* Deletes the entries created before before_ms; *removed (may be NULL) gets
 * how many. */
store_status store_idem_sweep(store_t *st, int64_t before_ms, int64_t *removed /* OUT */);

#endif /* CFA_STORE_H */
