/* drift.c - GET /v1/products/{id}/drift and the drift of the product
 * summary: the scores of the active model's newest inspections against its
 * calibration scores (server/inspect/drift.h; docs/API.md, "Drift"). */
#define _GNU_SOURCE
#include "api_int.h"

#include <math.h>
#include <string.h>

#include "drift.h"

json_t *drift_json(const drift_result *d, size_t window)
{
    json_t *o = json_pack("{s:I,s:b,s:s,s:I,s:I,s:I}", "model_version", (json_int_t)d->version,
                          "available", d->available, "statistic", "ks_two_sample", "window",
                          (json_int_t)window, "n_window", (json_int_t)d->n_window,
                          "n_reference", (json_int_t)d->n_reference);
    json_object_set_new(o, "reference", d->reference[0] ? json_string(d->reference)
                                                        : json_null());
    json_object_set_new(o, "ks_d", d->available ? json_real(d->ks_d) : json_null());
    json_object_set_new(o, "p_value", num_or_null(d->available ? d->p_value : NAN));
    json_object_set_new(o, "median_shift", num_or_null(d->median_shift));
    json_object_set_new(o, "window_median", num_or_null(d->available ? d->window_median : NAN));
    json_object_set_new(o, "reference_median",
                        num_or_null(d->available ? d->reference_median : NAN));
    json_object_set_new(o, "flag", json_boolean(d->flag));
    json_object_set_new(o, "bound", json_pack("{s:f,s:i,s:i}", "p_below", DRIFT_ALPHA,
                                              "min_window", DRIFT_MIN_WINDOW, "min_reference",
                                              DRIFT_MIN_REFERENCE));
    return o;
}

/* The product's drift as JSON, or NULL after replying with the store's
 * failure. */
json_t *product_drift_json(hreq *r, const store_product_t *p)
{
    drift_result d;
    size_t window = (size_t)r->ctx->cfg->drift_window;
    store_status ss = drift_compute(r->ctx->st, p->id, p->active_version, window, &d);
    if (ss != STORE_OK) {
        store_fail(r, ss, "product", p->id);
        return NULL;
    }
    return drift_json(&d, window);
}

enum MHD_Result h_product_drift(hreq *r)
{
    store_product_t p;
    enum MHD_Result ret;
    if (path_product(r, &p, &ret) != 0)
        return ret;
    json_t *o = product_drift_json(r, &p);
    store_product_clear(&p);
    return o != NULL ? reply_json(r, 200, o) : MHD_YES;
}
