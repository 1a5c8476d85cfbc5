/* labels.c - operator feedback: POST /v1/inspections/{id}/label, the label
 * in GET /v1/inspections/{id}, and the feedback figures of the product
 * summary (docs/API.md, "Feedback"). */
#define _GNU_SOURCE
#include "api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

static json_t *label_json(const store_label_t *l)
{
    json_t *o = json_pack("{s:s,s:s,s:o,s:o}", "label", l->label, "note", l->note ? l->note : "",
                          "key_id", l->key_id[0] ? json_string(l->key_id) : json_null(), "at",
                          time_json(l->created_at));
    if (l->image_id[0])
        json_object_set_new(o, "training_image_id", json_string(l->image_id));
    return o;
}

json_t *inspection_label_json(store_t *st, const char *inspection_id)
{
    store_label_t l;
    if (store_label_get(st, inspection_id, &l) != STORE_OK)
        return json_null();
    json_t *o = label_json(&l);
    store_label_clear(&l);
    return o;
}

/* Adds the inspection's stored input image to its product's training set;
 * its id into image_id. On failure replies and returns -1. */
static int add_to_training(hreq *r, const store_inspection_t *in, char *image_id)
{
    void *data = NULL;
    size_t len = 0;
    store_status ss = store_inspection_file_read(r->ctx->st, in->id, "input", &data, &len);
    if (ss == STORE_ERR_NOT_FOUND) {
        reply_error(r, 409, "image_not_kept",
                    "inspection %s kept no image (inspected with store=false, or pruned by "
                    "retention): nothing to add to the training set", in->id);
        return -1;
    }
    if (ss != STORE_OK) {
        store_fail(r, ss, "inspection", in->id);
        return -1;
    }
    img_kind kind = IMG_KIND_UNKNOWN;
    img_limits lim = img_default_limits();
    int w = 0, h = 0, rc = -1;
    int64_t have = 0;
    lim.max_pixels = (size_t)r->ctx->cfg->max_pixels;
    lim.min_side = r->ctx->cfg->min_side;
    lim.budget = r->ctx->pixels;
    lim.budget_wait_ms = r->ctx->cfg->pixel_wait_ms;
    img_status is = img_validate(data, len, &lim, &kind, &w, &h);
    store_image_t im;
    memset(&im, 0, sizeof im);
    if (is != IMG_OK)
        codec_fail(r, is, "the inspection's image: ");
    else if ((ss = store_image_count(r->ctx->st, in->product, &have)) != STORE_OK)
        store_fail(r, ss, "product", in->product);
    else if (have + 1 > r->ctx->cfg->max_images)
        reply_error(r, 409, "too_many_images", "product %s holds %lld image(s), the limit",
                    in->product, (long long)have);
    else {
        /* the same image.added as POST .../images, in the image row's
         * transaction (none when the image was there already) */
        store_event_t ev;
        event_fill_row(r, &ev, "image.added", in->product, NULL, event_after_image);
        ss = store_image_put(r->ctx->st, in->product, data, len, w, h,
                             kind == IMG_KIND_PNG ? "png" : "jpg", &im, NULL, &ev);
        store_event_clear(&ev);
        if (ss != STORE_OK)
            store_fail(r, ss, "product", in->product);
        else
            rc = 0;
    }
    if (rc == 0)
        snprintf(image_id, STORE_SHA256_HEX, "%s", im.sha256);
    free(data);
    return rc;
}

/* The body's fields, checked; on a bad one replies and returns -1. */
static int label_body(hreq *r, json_t *body, const char **label, const char **note, int *train)
{
    static const char *const fields[] = {"label", "note", "add_to_training", NULL};
    json_t *n = json_object_get(body, "note"), *t = json_object_get(body, "add_to_training");
    if (body_only(r, body, fields) != 0 || field_max(r, n, "note", STORE_NOTE_MAX) != 0)
        return -1;
    *label = json_string_value(json_object_get(body, "label"));
    *note = json_string_value(n);
    *train = json_is_true(t);
    if (!store_valid_label(*label)) {
        reply_error(r, 400, "invalid_label",
                    "\"label\" must be \"false_alarm\", \"defect\" or \"ok\"");
        return -1;
    }
    if ((n != NULL && !json_is_string(n) && !json_is_null(n)) ||
        (t != NULL && !json_is_boolean(t))) {
        reply_error(r, 400, "invalid_body",
                    "\"note\" must be a string and \"add_to_training\" a boolean");
        return -1;
    }
    if (*train && strcmp(*label, "defect") == 0) {
        reply_error(r, 400, "invalid_label",
                    "a part labelled \"defect\" cannot be added to the good images");
        return -1;
    }
    if (*train && r->role < STORE_ROLE_OPERATE) {
        reply_error(r, 403, "forbidden",
                    "add_to_training changes the training set: it needs an operate key");
        return -1;
    }
    return 0;
}

enum MHD_Result h_inspection_label(hreq *r)
{
    int ok, train = 0;
    const char *label = NULL, *note = NULL;
    char image_id[STORE_SHA256_HEX] = "";
    json_t *body = req_json_object(r, 0, "body must be a JSON object with \"label\"", &ok);
    if (!ok)
        return MHD_YES;
    enum MHD_Result ret = MHD_YES;
    store_inspection_t in;
    memset(&in, 0, sizeof in);
    if (label_body(r, body, &label, &note, &train) != 0)
        goto out;
    store_status ss = store_valid_id(r->params[0])
                          ? store_inspection_get(r->ctx->st, r->params[0], &in)
                          : STORE_ERR_NOT_FOUND;
    if (ss != STORE_OK) {
        ret = store_fail(r, ss, "inspection", r->params[0]);
        goto out;
    }
    if (train && add_to_training(r, &in, image_id) != 0)
        goto out;
    store_label_t l;
    ss = store_label_add(r->ctx->st, in.id, label, note, r->key_id, image_id, &l);
    if (ss != STORE_OK) {
        ret = store_fail(r, ss, "inspection", r->params[0]);
        goto out;
    }
    ret = reply_json(r, 200, label_json(&l));
    store_label_clear(&l);
out:
    store_inspection_clear(&in);
    json_decref(body);
    return ret;
}

/* The share num / den, or null when den is 0 (nothing to judge by). */
static json_t *share(int64_t num, int64_t den)
{
    return den > 0 ? json_real((double)num / (double)den) : json_null();
}

json_t *product_feedback_json(store_t *st, const char *product)
{
    store_label_counts c;
    if (store_label_count(st, product, &c) != STORE_OK)
        return json_null();
    int64_t ng = c.ng_defect + c.ng_false_alarm + c.ng_ok;
    int64_t good = c.ng_false_alarm + c.ng_ok + c.ok_false_alarm + c.ok_ok;
    int64_t bad = c.ng_defect + c.ok_defect;
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o}", "labelled_ng", (json_int_t)ng,
                     "confirmed_defects", (json_int_t)c.ng_defect, "false_alarms",
                     (json_int_t)(c.ng_false_alarm + c.ng_ok), "labelled_good",
                     (json_int_t)good, "labelled_defects", (json_int_t)bad, "missed_defects",
                     (json_int_t)c.ok_defect, "precision", share(c.ng_defect, ng), "far",
                     share(c.ng_false_alarm + c.ng_ok, good), "miss_rate",
                     share(c.ok_defect, bad));
}
