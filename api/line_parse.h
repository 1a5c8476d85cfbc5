/*
 * line_parse.h - what a line sends beside an image: part identity (query
 * parameters, X-Part-Id-style headers, a multipart "meta" JSON part), the
 * X-Request-Id and the Idempotency-Key. Pure and thread-safe; every function
 * accepts arbitrary bytes (tests/fuzz/fuzz_line_meta.c calls them directly).
 */
#ifndef CFA_API_LINE_PARSE_H
#define CFA_API_LINE_PARSE_H

#include <stddef.h>

/* The fields, in this order everywhere (query names, JSON names). */
enum { PART_ID, PART_SERIAL, PART_CAMERA, PART_STATION, PART_ORDER, PART_N };
#define PART_VALUE_MAX 128   /* bytes of UTF-8 */
#define PART_META_MAX 4096   /* bytes of the multipart "meta" part */
#define REQUEST_ID_MAX 64
#define IDEM_KEY_MAX 255

extern const char *const part_names[PART_N];   /* "part_id", "serial", ... */
extern const char *const part_headers[PART_N]; /* "X-Part-Id", "X-Serial", ... */

typedef struct {
    char v[PART_N][PART_VALUE_MAX + 1];
    int set[PART_N];
    const char *from[PART_N]; /* where each value came from ("query", ...) */
} part_fields;

/* 0 when v[0..n) is 1-PART_VALUE_MAX bytes of valid UTF-8 without control
 * characters (C0, DEL, C1); else -1 with the reason in why. */
int part_value_check(const char *v, size_t n, char *why, size_t cap);

/* Sets field f to v[0..n) (checked) from source. -1 with why (naming the
 * field) when the value is refused or differs from one another source gave. */
int part_set(part_fields *p, int f, const char *v, size_t n, const char *source, char *why,
             size_t cap);

/* Parses the multipart "meta" part: a JSON object of at most PART_META_MAX
 * bytes whose keys are among part_names and whose values are strings, each
 * put with part_set(..., "meta"). -1 with why when the part is not that,
 * -2 when part_set refused a value. */
int part_meta_parse(part_fields *p, const char *json, size_t n, char *why, size_t cap);

/* 1 when s is 1-REQUEST_ID_MAX printable ASCII characters (no space). */
int request_id_valid(const char *s);
/* 1 when s is 1-IDEM_KEY_MAX printable ASCII characters (no space). */
int idem_key_valid(const char *s);

#endif
