/*
 * parse.h - parsers for outside input that needs no I/O: path routing,
 * identifiers, query values, multipart/form-data bodies and JSON request
 * bodies. Everything here is pure and thread-safe; every function accepts
 * arbitrary bytes (the fuzz harnesses in tests/fuzz/ call them directly).
 */
#ifndef CFA_API_PARSE_H
#define CFA_API_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* ---- identifiers -------------------------------------------------------- */
/* Product ids, image ids, RFC 3339 times: store_valid_product_id(),
 * store_valid_sha256(), store_time_parse() and store_time_format() in store.h
 * are the only checks and parsers. */

/* Parses a decimal integer in [min, max] with nothing after it; 0 on success. */
int parse_int_range(const char *s, long long min, long long max,
                    long long *out /* OUT */);
/* Parses a finite decimal number; 0 on success. */
int parse_double(const char *s, double *out /* OUT */);

/* ---- routing ------------------------------------------------------------- */

#define ROUTE_MAX_PARAMS 3
#define ROUTE_PARAM_MAX 128

/* Splits a request path against a pattern such as "/v1/products/{}/images/{}".
 * Each "{}" matches one non-empty segment (percent-decoded, at most
 * ROUTE_PARAM_MAX - 1 bytes, no '/' or NUL after decoding), copied into
 * params[i]. Returns the number of parameters (>= 0) on a match, -1 if not. */
int route_match_pattern(const char *pattern, const char *path,
                        char params[ROUTE_MAX_PARAMS][ROUTE_PARAM_MAX]);

/* ---- multipart/form-data ------------------------------------------------ */

typedef struct mp_part {
    char name[128];          /* form field name ("" if none) */
    char filename[256];      /* filename parameter ("" if none) */
    char content_type[128];  /* part Content-Type ("" if none), lower case */
    const uint8_t *data;     /* points into the body passed to mp_parse */
    size_t len;
} mp_part;

/* Extracts the boundary parameter of a multipart Content-Type header value
 * into out (cap >= 72). Returns 0 on success, -1 if missing or invalid. */
int mp_boundary(const char *content_type, char *out, size_t cap);

typedef enum {
    MP_OK = 0,
    MP_ERR_SYNTAX = 1,     /* malformed body */
    MP_ERR_TOO_MANY = 2    /* more parts than max_parts */
} mp_status;

/* Parses a complete multipart body. parts[] receives up to max_parts parts
 * whose data point into body. */
mp_status mp_parse(const uint8_t *body, size_t len, const char *boundary,
                   mp_part *parts, int max_parts, int *n_parts /* OUT */);

/* ---- JSON request bodies ------------------------------------------------- */

/* Training overrides accepted in POST /train bodies and product settings.
 * A field is set when its has_ flag is 1. */
typedef struct train_overrides {
    int has_epochs, epochs;
    int has_gamma_c, gamma_c;
    int has_gamma_d, gamma_d;
    int has_seed; uint64_t seed;
    int has_resize_h, resize_h, has_resize_w, resize_w;
    int has_crop_h, crop_h, has_crop_w, crop_w;
    int has_bank, bank;             /* 0 mean, 1 ema */
    int has_batch_size, batch_size;
    int has_lr; double lr;
    int has_blur_sigma; double blur_sigma;
    int has_holdout; double holdout;  /* fraction of good images held out */
    int has_target_far; double target_far;
    int has_margin; double margin;
    int has_activate, activate;
    int has_ensemble, ensemble;       /* CFA++: crop + resize-only partner */
} train_overrides;

/* Reads overrides from a JSON object (NULL = empty). Unknown keys are
 * ignored. On a bad value returns -1 and writes a message into err. */
int parse_train_overrides(const json_t *obj, train_overrides *out /* OUT */,
                          char *err, size_t errlen);
/* Writes the set fields of o into obj (an object). */
void train_overrides_to_json(const train_overrides *o, json_t *obj);
/* Fields set in top override those of base (result in out). */
void train_overrides_merge(const train_overrides *base,
                           const train_overrides *top,
                           train_overrides *out /* OUT */);

#endif
