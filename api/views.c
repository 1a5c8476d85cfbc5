/* views.c - JSON views of the store's records (what the API returns for a
 * product, job, model, inspection, key), the shared query and body readers,
 * and the replies several handlers end with. */
#define _GNU_SOURCE
#include "api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *time_json(int64_t ms)
{
    char buf[STORE_TIME_LEN];
    if (ms == 0)
        return json_null();
    return json_string(store_time_format(ms, buf));
}

json_t *json_text_or(const char *text, json_t *fallback)
{
    json_t *j = text != NULL ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (j == NULL)
        return fallback;
    json_decref(fallback);
    return j;
}

json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *product_json(const store_product_t *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(p->id));
    json_object_set_new(o, "name", json_string(p->name != NULL ? p->name : ""));
    json_object_set_new(o, "settings", json_text_or(p->settings_json, json_object()));
    json_object_set_new(o, "active_version",
                        p->active_version > 0 ? json_integer(p->active_version) : json_null());
    json_object_set_new(o, "threshold",
                        p->has_threshold ? num_or_null(p->threshold) : json_null());
    json_object_set_new(o, "threshold_ng",
                        p->has_threshold ? num_or_null(p->threshold_ng) : json_null());
    json_object_set_new(o, "image_count", json_integer(p->image_count));
    json_object_set_new(o, "created_at", time_json(p->created_at));
    json_object_set_new(o, "updated_at", time_json(p->updated_at));
    return o;
}

json_t *job_json(const store_job_t *j)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "product", json_string(j->product));
    json_object_set_new(o, "state", json_string(store_job_state_name(j->state)));
    json_object_set_new(o, "params", json_text_or(j->params_json, json_object()));
    json_object_set_new(o, "progress",
                        json_pack("{s:s?,s:i,s:i,s:o,s:f}", "phase",
                                  j->phase != NULL && j->phase[0] ? j->phase : NULL, "epoch",
                                  j->epoch, "epochs", j->epochs, "loss", num_or_null(j->loss),
                                  "fraction", isfinite(j->fraction) ? j->fraction : 0.0));
    json_object_set_new(o, "model_version",
                        j->model_version > 0 ? json_integer(j->model_version) : json_null());
    json_object_set_new(o, "error", j->error != NULL ? json_string(j->error) : json_null());
    json_object_set_new(o, "cancel_requested", json_boolean(j->cancel_requested));
    json_object_set_new(o, "created_at", time_json(j->created_at));
    json_object_set_new(o, "started_at", time_json(j->started_at));
    json_object_set_new(o, "finished_at", time_json(j->finished_at));
    return o;
}

json_t *model_json(const store_model_t *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "product", json_string(m->product));
    json_object_set_new(o, "version", json_integer(m->version));
    json_object_set_new(o, "created_at", time_json(m->created_at));
    json_object_set_new(o, "job_id", m->job_id[0] ? json_string(m->job_id) : json_null());
    json_object_set_new(o, "threshold", num_or_null(m->threshold));
    json_object_set_new(o, "threshold_ng", num_or_null(m->threshold_ng));
    json_object_set_new(o, "active", json_boolean(m->active));
    json_object_set_new(o, "backbone_sha256",
                        m->backbone_sha256[0] ? json_string(m->backbone_sha256) : json_null());
    json_object_set_new(o, "figures", json_text_or(m->figures_json, json_object()));
    return o;
}

json_t *inspection_json(const store_inspection_t *in)
{
    char url[128];
    json_t *o = json_object();
    json_object_set_new(o, "inspection_id", json_string(in->id));
    json_object_set_new(o, "product", json_string(in->product));
    json_object_set_new(o, "model_version", json_integer(in->model_version));
    json_object_set_new(o, "score", json_real(in->score));
    json_object_set_new(o, "threshold", json_real(in->threshold));
    json_object_set_new(o, "decision", json_string(in->decision));
    json_object_set_new(o, "threshold_ng", json_real(in->threshold_ng));
    json_object_set_new(o, "verdict", json_string(in->verdict[0] ? in->verdict : in->decision));
    json_object_set_new(o, "map_max", json_real(in->map_max));
    json_object_set_new(o, "regions", json_text_or(in->regions_json, json_array()));
    if (in->has_images) {
        snprintf(url, sizeof url, "/v1/inspections/%s/heatmap.png", in->id);
        json_object_set_new(o, "heatmap_url", json_string(url));
        snprintf(url, sizeof url, "/v1/inspections/%s/map.png", in->id);
        json_object_set_new(o, "map_url", json_string(url));
    } else {
        json_object_set_new(o, "heatmap_url", json_null());
        json_object_set_new(o, "map_url", json_null());
    }
    json_object_set_new(o, "timings_ms", json_text_or(in->timings_json, json_object()));
    json_object_set_new(o, "created_at", time_json(in->created_at));
    json_object_set_new(o, "key_id", in->key_id[0] ? json_string(in->key_id) : json_null());
    /* part identity (docs/API.md): null when the line did not send it */
    const char *part[] = {in->part.part_id, in->part.serial, in->part.camera, in->part.station,
                          in->part.order};
    for (int f = 0; f < PART_N; f++)
        json_object_set_new(o, part_names[f], part[f][0] ? json_string(part[f]) : json_null());
    return o;
}

json_t *key_json(const store_key_t *k)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(k->id));
    json_object_set_new(o, "name", json_string(k->name != NULL ? k->name : ""));
    json_object_set_new(o, "role", json_string(store_role_name(k->role)));
    json_object_set_new(o, "created_at", time_json(k->created_at));
    json_object_set_new(o, "revoked_at", time_json(k->revoked_at));
    return o;
}

/* Reads ?limit (default 100, capped at 1000). Replies 400 and returns -1 on
 * a bad value. */
int query_limit(hreq *r, size_t *limit)
{
    const char *s = req_query(r, "limit");
    long long v;
    *limit = STORE_LIST_DEFAULT;
    if (s == NULL)
        return 0;
    if (parse_int_range(s, 1, INT32_MAX, &v) != 0) {
        reply_error(r, 400, "invalid_limit", "limit must be a positive integer");
        return -1;
    }
    *limit = v > STORE_LIST_MAX ? STORE_LIST_MAX : (size_t)v;
    return 0;
}

json_t *req_json_object(hreq *r, int may_be_empty, const char *not_object, int *ok)
{
    json_t *body = req_json(r, ok);
    if (!*ok || json_is_object(body) || (may_be_empty && body == NULL))
        return body;
    json_decref(body);
    *ok = 0;
    reply_error(r, 400, "invalid_body", "%s", not_object);
    return NULL;
}

int path_product(hreq *r, store_product_t *p, enum MHD_Result *ret)
{
    memset(p, 0, sizeof *p);
    store_status ss = store_product_get(r->ctx->st, r->params[0], p);
    if (ss == STORE_OK)
        return 0;
    *ret = store_fail(r, ss, "product", r->params[0]);
    return -1;
}

enum MHD_Result reply_path_product(hreq *r)
{
    store_product_t p;
    enum MHD_Result ret;
    if (path_product(r, &p, &ret) != 0)
        return ret;
    ret = reply_json(r, 200, product_json(&p));
    store_product_clear(&p);
    return ret;
}

enum MHD_Result reply_list(hreq *r, const char *name, json_t *items, const char *next)
{
    json_t *o = json_pack("{s:o}", name, items);
    if (next != NULL) {
        json_object_set_new(o, "next", next[0] ? json_string(next) : json_null());
        json_object_set_new(o, "next_cursor", next[0] ? json_string(next) : json_null());
    }
    return reply_json(r, 200, o);
}

int query_page(hreq *r, int (*valid)(const char *), size_t *limit, const char **cursor)
{
    const char *c = req_query(r, "cursor");
    if (c == NULL)
        c = req_query(r, "after");
    *cursor = c != NULL && c[0] ? c : NULL;
    if (query_limit(r, limit) != 0)
        return -1;
    /* the store refuses what its check refuses; a 400 says it was the cursor */
    if (*cursor != NULL && (strlen(*cursor) >= API_CURSOR_MAX || !valid(*cursor))) {
        reply_error(r, 400, "invalid_cursor",
                    "cursor must be a \"next_cursor\" of this list, unchanged");
        return -1;
    }
    return 0;
}

/* The length of the longest prefix of s (a valid UTF-8 string, as jansson
 * gives) of at most max bytes that ends on a character boundary. */
static int utf8_prefix(const char *s, int max)
{
    int n = (int)strnlen(s, (size_t)max + 1);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* "a", "b" (at most three names, each cut to 40 bytes) of the properties of
 * body not in allowed, into buf; the number of them. */
static int unknown_names(json_t *body, const char *const allowed[], char *buf, size_t cap)
{
    const char *key;
    json_t *v;
    int n = 0;
    size_t len = 0;
    buf[0] = '\0';
    json_object_foreach(body, key, v) {
        int known = 0;
        for (int i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (known || n++ >= 3)
            continue;
        int w = snprintf(buf + len, cap - len, "%s\"%.*s\"", len ? ", " : "",
                         utf8_prefix(key, 40), key);
        len += w > 0 && (size_t)w < cap - len ? (size_t)w : 0;
    }
    return n;
}

int body_only(hreq *r, json_t *body, const char *const allowed[])
{
    char names[192], list[160] = "";
    if (!json_is_object(body) || unknown_names(body, allowed, names, sizeof names) == 0)
        return 0;
    for (int i = 0; allowed[i] != NULL; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", allowed[i]);
    }
    reply_error(r, 400, "unknown_property", "unknown property %s (allowed: %s)", names, list);
    return -1;
}

int field_max(hreq *r, json_t *field, const char *name, size_t max)
{
    if (!json_is_string(field) || json_string_length(field) <= max)
        return 0;
    reply_error(r, 400, "field_too_long", "\"%s\" is %zu bytes; the limit is %zu", name,
                json_string_length(field), max);
    return -1;
}

enum MHD_Result reply_too_large(hreq *r)
{
    size_t max = api_route_body_max(r->route);
    if (max > 0)
        return reply_error(r, 413, "body_too_large",
                           "the body exceeds the limit of %zu bytes for this route", max);
    return reply_error(r, 413, "body_too_large", "the body exceeds the limit of %d MiB",
                       r->ctx->cfg->max_body_mb);
}
