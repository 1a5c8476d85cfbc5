/* line_parse.c - part identity, request ids and idempotency keys as sent by
 * a line (line_parse.h). */
#include "line_parse.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

const char *const part_names[PART_N] = {"part_id", "serial", "camera", "station", "order"};
const char *const part_headers[PART_N] = {"X-Part-Id", "X-Serial", "X-Camera", "X-Station",
                                          "X-Order"};

int part_value_check(const char *v, size_t n, char *why, size_t cap)
{
    if (n == 0 || n > PART_VALUE_MAX) {
        snprintf(why, cap, "must be 1-%d bytes, not %zu", PART_VALUE_MAX, n);
        return -1;
    }
    if (utf8_valid_prefix(v, n) != n) {
        snprintf(why, cap, "is not valid UTF-8");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        /* C0 and DEL; C1 (U+0080-U+009F) is 0xC2 0x80-0x9F in UTF-8: a
         * control character in an MES report or a CSV cell breaks lines */
        if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < n && (unsigned char)v[i + 1] < 0xa0)) {
            snprintf(why, cap, "holds a control character at byte %zu", i);
            return -1;
        }
    }
    return 0;
}

int part_set(part_fields *p, int f, const char *v, size_t n, const char *source, char *why,
             size_t cap)
{
    char reason[96];
    if (f < 0 || f >= PART_N)
        return -1;
    if (part_value_check(v, n, reason, sizeof reason) != 0) {
        snprintf(why, cap, "%s (from %s) %s", part_names[f], source, reason);
        return -1;
    }
    if (p->set[f] && (strlen(p->v[f]) != n || memcmp(p->v[f], v, n) != 0)) {
        snprintf(why, cap, "%s differs between %s and %s", part_names[f], p->from[f], source);
        return -1;
    }
    memcpy(p->v[f], v, n);
    p->v[f][n] = '\0';
    if (!p->set[f]) /* the first source names the value in a conflict */
        p->from[f] = source;
    p->set[f] = 1;
    return 0;
}

static int part_index(const char *name)
{
    for (int f = 0; f < PART_N; f++)
        if (strcmp(name, part_names[f]) == 0)
            return f;
    return -1;
}

int part_meta_parse(part_fields *p, const char *json, size_t n, char *why, size_t cap)
{
    json_error_t jerr;
    if (n > PART_META_MAX) {
        snprintf(why, cap, "the meta part is %zu bytes; at most %d", n, PART_META_MAX);
        return -1;
    }
    json_t *o = json_loadb(json, n, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL || !json_is_object(o)) {
        snprintf(why, cap, "the meta part must be a JSON object%s%s", o == NULL ? ": " : "",
                 o == NULL ? jerr.text : "");
        json_decref(o);
        return -1;
    }
    const char *k;
    json_t *val;
    int rc = 0;
    json_object_foreach(o, k, val) {
        int f = part_index(k);
        if (f < 0) {
            snprintf(why, cap, "unknown meta property \"%.64s\" (allowed: part_id, serial, "
                               "camera, station, order)", k);
            rc = -1;
        } else if (!json_is_string(val)) {
            snprintf(why, cap, "meta %s must be a string", k);
            rc = -1;
        } else {
            rc = part_set(p, f, json_string_value(val), json_string_length(val), "meta", why,
                          cap) != 0 ? -2 : 0;
        }
        if (rc != 0)
            break;
    }
    json_decref(o);
    return rc;
}

static int printable_ascii(const char *s, size_t max)
{
    size_t n = 0;
    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++)
        if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f || n >= max)
            return 0;
    return n >= 1;
}

int request_id_valid(const char *s) { return printable_ascii(s, REQUEST_ID_MAX); }

int idem_key_valid(const char *s) { return printable_ascii(s, IDEM_KEY_MAX); }
