/* products.c - /v1/products: create, list, get, patch, delete. */
#define _GNU_SOURCE
#include "api_int.h"

#include "settings.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum MHD_Result h_product_create(hreq *r)
{
    int ok;
    char err[256];
    settings_t set;
    json_t *body = req_json_object(r, 0, "body must be a JSON object with \"id\"", &ok);
    if (!ok)
        return MHD_YES;
    static const char *const fields[] = {"id", "name", "settings", NULL};
    const char *id = json_string_value(json_object_get(body, "id"));
    json_t *name = json_object_get(body, "name");
    json_t *settings = json_object_get(body, "settings");
    enum MHD_Result ret = MHD_YES;
    if (body_only(r, body, fields) != 0 || field_max(r, name, "name", API_NAME_MAX) != 0)
        goto out;
    if (!store_valid_product_id(id)) {
        ret = reply_error(r, 400, "invalid_product_id",
                          "\"id\" must be 1-64 characters of [A-Za-z0-9._-]");
        goto out;
    }
    if (name != NULL && !json_is_null(name) && !json_is_string(name)) {
        ret = reply_error(r, 400, "invalid_body", "\"name\" must be a string");
        goto out;
    }
    if (settings_from_json(settings, SW_PRODUCT, &set, err, sizeof err) != 0) {
        ret = reply_error(r, 400, "invalid_settings", "settings: %s", err);
        goto out;
    }
    /* stored as the table writes them (a JSON null or absent: none) */
    char *stext = settings != NULL && json_is_object(settings) ? settings_dumps(&set, SW_PRODUCT)
                                                               : NULL;
    store_product_t p;
    memset(&p, 0, sizeof p);
    store_event_t ev;
    event_fill_row(r, &ev, "product.created", id, NULL, event_after_product);
    store_status ss =
        store_product_create(r->ctx->st, id, json_string_value(name), stext, &p, &ev);
    store_event_clear(&ev);
    free(stext);
    if (ss == STORE_ERR_EXISTS) {
        ret = reply_error(r, 409, "product_exists", "product %s already exists", id);
        goto out;
    }
    if (ss != STORE_OK) {
        ret = store_fail(r, ss, "product", id);
        goto out;
    }
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/products/%s", p.id);
    ret = reply_json_hdr(r, 201, product_json(&p), "Location", loc);
    store_product_clear(&p);
out:
    json_decref(body);
    return ret;
}

enum MHD_Result h_product_list(hreq *r)
{
    size_t limit, n = 0;
    store_product_t *arr = NULL;
    char next[STORE_PRODUCT_ID_MAX] = "";
    const char *cursor;
    if (query_page(r, store_valid_product_id, &limit, &cursor) != 0)
        return MHD_YES;
    store_status ss = store_product_list(r->ctx->st, limit, cursor, &arr, &n, next);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product list", "");
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, product_json(&arr[i]));
    store_products_free(arr, n);
    return reply_list(r, "products", a, next);
}

/* The product with its operator feedback and drift (labels.c, drift.c). */
enum MHD_Result h_product_get(hreq *r)
{
    store_product_t p;
    enum MHD_Result ret;
    if (path_product(r, &p, &ret) != 0)
        return ret;
    json_t *drift = product_drift_json(r, &p);
    if (drift == NULL) {
        store_product_clear(&p);
        return MHD_YES;
    }
    json_t *o = product_json(&p);
    json_object_set_new(o, "feedback", product_feedback_json(r->ctx->st, p.id));
    json_object_set_new(o, "drift", drift);
    store_product_clear(&p);
    return reply_json(r, 200, o);
}

enum MHD_Result h_product_patch(hreq *r)
{
    int ok;
    char err[256];
    settings_t set;
    json_t *body = req_json_object(r, 0, "body must be a JSON object", &ok);
    enum MHD_Result ret;
    if (!ok)
        return MHD_YES;
    static const char *const fields[] = {"name", "settings", NULL};
    json_t *name = json_object_get(body, "name");
    json_t *settings = json_object_get(body, "settings");
    ret = MHD_YES;
    if (body_only(r, body, fields) != 0 || field_max(r, name, "name", API_NAME_MAX) != 0)
        goto out;
    if (name != NULL && !json_is_string(name)) {
        ret = reply_error(r, 400, "invalid_body", "\"name\" must be a string");
        goto out;
    }
    if (settings != NULL && !json_is_object(settings)) {
        ret = reply_error(r, 400, "invalid_settings", "\"settings\" must be an object");
        goto out;
    }
    if (settings_from_json(settings, SW_PRODUCT, &set, err, sizeof err) != 0) {
        ret = reply_error(r, 400, "invalid_settings", "settings: %s", err);
        goto out;
    }
    /* the new settings replace the old ones whole */
    char *stext = settings != NULL ? settings_dumps(&set, SW_PRODUCT) : NULL;
    store_product_t p;
    memset(&p, 0, sizeof p);
    store_event_t ev;
    event_fill_row(r, &ev, "product.changed", r->params[0], product_state(r, r->params[0]),
                   event_after_product);
    store_status ss = store_product_patch(r->ctx->st, r->params[0], json_string_value(name),
                                          stext, &p, &ev);
    store_event_clear(&ev);
    free(stext);
    if (ss != STORE_OK) {
        ret = store_fail(r, ss, "product", r->params[0]);
        goto out;
    }
    ret = reply_json(r, 200, product_json(&p));
    store_product_clear(&p);
out:
    json_decref(body);
    return ret;
}

enum MHD_Result h_product_delete(hreq *r)
{
    store_event_t ev;
    event_fill(r, &ev, "product.deleted", r->params[0], product_state(r, r->params[0]), NULL);
    store_status ss = store_product_delete(r->ctx->st, r->params[0], &ev);
    store_event_clear(&ev);
    if (ss == STORE_ERR_CONFLICT)
        return reply_error(r, 409, "job_active",
                           "product %s has a queued or running job; cancel it first",
                           r->params[0]);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    if (r->ctx->pool != NULL)
        pool_forget(r->ctx->pool, r->params[0]);
    return reply_empty(r, 204);
}
