/* follow_parse.c - the trainer's product list as a replica reads it (a
 * peer's JSON: checked field by field, fuzzed by tests/fuzz/fuzz_follow.c). */
#define _GNU_SOURCE
#include "follow.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One entry: a valid id, an active version >= 1 or none, a usable threshold
 * or none. 0, or -1 for an entry a replica cannot use. */
static int entry(json_t *prod, follow_product *out)
{
    const char *id = json_string_value(json_object_get(prod, "id"));
    json_t *av = json_object_get(prod, "active_version");
    json_t *thr = json_object_get(prod, "threshold");
    if (id == NULL || !store_valid_product_id(id))
        return -1;
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", id);
    if (json_is_integer(av) && json_integer_value(av) >= 1)
        out->active_version = (int64_t)json_integer_value(av);
    else if (av != NULL && !json_is_null(av))
        return -1;
    if (json_is_number(thr)) {
        double t = json_number_value(thr);
        /* the trainer's own rule for a threshold (inspect_threshold_valid) */
        if (!(t > 0) || !isfinite(t) || t > FLT_MAX)
            return -1;
        out->threshold = t;
        out->threshold_ng = t;
        out->has_threshold = 1;
        json_t *tng = json_object_get(prod, "threshold_ng");
        double t2 = json_is_number(tng) ? json_number_value(tng) : t;
        if (!(t2 >= t) || !isfinite(t2) || t2 > FLT_MAX)
            return -1;
        out->threshold_ng = t2;
    }
    return 0;
}

int follow_parse_products(const char *text, size_t len, follow_product **out, size_t *n,
                          size_t *skipped, char next[STORE_PRODUCT_ID_MAX])
{
    *out = NULL;
    *n = *skipped = 0;
    next[0] = '\0';
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *list = json_object_get(doc, "products");
    if (!json_is_array(list)) {
        json_decref(doc);
        return -1;
    }
    follow_product *arr = calloc(json_array_size(list) + 1, sizeof *arr);
    if (arr == NULL) {
        json_decref(doc);
        return -1;
    }
    size_t i;
    json_t *prod;
    json_array_foreach(list, i, prod) {
        if (entry(prod, &arr[*n]) == 0)
            (*n)++;
        else
            (*skipped)++;
    }
    const char *cur = json_string_value(json_object_get(doc, "next_cursor"));
    if (cur != NULL && store_valid_product_id(cur))
        snprintf(next, STORE_PRODUCT_ID_MAX, "%s", cur);
    json_decref(doc);
    *out = arr;
    return 0;
}
