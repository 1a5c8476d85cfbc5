/*
 * parse.h - parsers for outside input that needs no I/O: path routing,
 * identifiers, query values and multipart/form-data bodies (JSON request
 * bodies' training settings: server/settings/settings.h). Everything here is pure and thread-safe; every function accepts
 * arbitrary bytes (the fuzz harnesses in tests/fuzz/ call them directly).
 */
#ifndef CFA_API_PARSE_H
#define CFA_API_PARSE_H

#include <stddef.h>
#include <stdint.h>

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

/* ---- the console's files (static.c) -------------------------------------- */

/* The Content-Type of a console file name by its extension (.html, .js,
 * .css, .svg, .png, .ico, .json), or NULL for any other name: only known
 * types are served, so a type is never guessed. */
const char *web_file_type(const char *name);
/* The file a request path names in the console's flat web directory: "/" is
 * index.html, else exactly one segment of [A-Za-z0-9_.-], not starting with
 * '.', with one dot before a known extension: no "..", no hidden file, no
 * folder. Copies the name into name (cap bytes) and returns its Content-Type;
 * NULL when the path names no console file. */
const char *web_file_name(const char *path, char *name, size_t cap);

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

#endif
