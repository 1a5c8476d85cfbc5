/* bundle_import.c - a parsed bundle into the store, and the HMAC key file. */
#define _GNU_SOURCE
#include "bundle.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The product the bundle goes to: created from the manifest when absent,
 * so that a replica or a fresh daemon can take a bundle as it comes. */
static store_status ensure_product(store_t *st, const char *product, const bundle_t *b)
{
    store_product_t p;
    store_status ss = store_product_get(st, product, &p);
    if (ss == STORE_OK) {
        store_product_clear(&p);
        return STORE_OK;
    }
    if (ss != STORE_ERR_NOT_FOUND)
        return ss;
    json_t *prod = json_object_get(b->manifest, "product");
    json_t *settings = json_object_get(prod, "settings");
    char *stext = json_is_object(settings) ? json_dumps(settings, JSON_COMPACT) : NULL;
    ss = store_product_create(st, product, json_string_value(json_object_get(prod, "name")),
                              stext, NULL, NULL);
    free(stext);
    return ss == STORE_ERR_EXISTS ? STORE_OK : ss; /* made meanwhile: fine */
}

/* The bundle's figures with "origin" added: where the model came from. */
static char *figures_with_origin(const bundle_t *b)
{
    json_t *model = json_object_get(b->manifest, "model");
    json_t *fig = json_deep_copy(json_object_get(model, "figures"));
    json_t *prod = json_object_get(b->manifest, "product");
    json_t *src = json_object_get(b->manifest, "source");
    const char *host = json_string_value(json_object_get(src, "host"));
    const char *pid = json_string_value(json_object_get(prod, "id"));
    json_t *origin = json_pack("{s:s,s:I,s:s,s:s,s:O?,s:I}", "product", pid != NULL ? pid : "",
                               "version", (json_int_t)b->source_version, "host",
                               host != NULL ? host : "", "bundle_sha256", b->sha256,
                               "created_at", json_object_get(model, "created_at"),
                               "imported_at", (json_int_t)store_now_ms());
    if (fig == NULL || origin == NULL) {
        json_decref(fig);
        json_decref(origin);
        return NULL;
    }
    json_object_set_new(fig, "origin", origin);
    char *text = json_dumps(fig, JSON_COMPACT);
    json_decref(fig);
    return text;
}

/* `after` of the import's event-log rows, made in the insert's transaction
 * from the version it took (store_model_new's after_fn). */
typedef struct {
    const bundle_t *b;
    int activate;
} import_ctx;

static char *dump(json_t *o)
{
    char *t = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return t;
}

static char *imported_after(const void *row, void *ctx)
{
    const import_ctx *c = ctx;
    const bundle_t *b = c->b;
    json_t *prod = json_object_get(b->manifest, "product");
    json_t *src = json_object_get(b->manifest, "source");
    const char *pid = json_string_value(json_object_get(prod, "id"));
    const char *host = json_string_value(json_object_get(src, "host"));
    return dump(json_pack("{s:I,s:f,s:f,s:b,s:{s:s,s:I,s:s,s:s}}", "version",
                          (json_int_t)*(const int64_t *)row, "threshold", b->threshold,
                          "threshold_ng", b->threshold_ng, "activated", c->activate, "origin",
                          "product", pid != NULL ? pid : "", "version",
                          (json_int_t)b->source_version, "host", host != NULL ? host : "",
                          "bundle_sha256", b->sha256));
}

static char *activated_after(const void *row, void *ctx)
{
    const bundle_t *b = ((const import_ctx *)ctx)->b;
    return dump(json_pack("{s:I,s:f,s:f,s:s}", "active_version",
                          (json_int_t)*(const int64_t *)row, "threshold", b->threshold,
                          "threshold_ng", b->threshold_ng, "bundle_sha256", b->sha256));
}

/* The model insert with its model.imported and, with activate, its
 * model.activated row (who's key and request ids), in one transaction. */
static store_status insert(store_t *st, const char *product, const bundle_t *b, int activate,
                           const char *fig, const store_event_t *who, int64_t *version)
{
    import_ctx c = {b, activate};
    store_event_t ev[2];
    memset(ev, 0, sizeof ev);
    for (int i = 0; who != NULL && i < 2; i++) {
        snprintf(ev[i].product, sizeof ev[i].product, "%s", product);
        snprintf(ev[i].key_id, sizeof ev[i].key_id, "%s", who->key_id);
        snprintf(ev[i].request_id, sizeof ev[i].request_id, "%s", who->request_id);
        ev[i].after_ctx = &c;
    }
    snprintf(ev[0].kind, sizeof ev[0].kind, "model.imported");
    ev[0].after_fn = imported_after;
    snprintf(ev[1].kind, sizeof ev[1].kind, "model.activated");
    ev[1].after_fn = activated_after;
    store_model_new m = {.product = product, .blob = b->model, .blob_len = b->model_len,
                         .threshold = b->threshold,
                         .threshold_ng = b->threshold_ng, .backbone_sha256 = b->backbone_sha256,
                         .figures_json = fig, .activate = activate,
                         .events = who != NULL ? ev : NULL,
                         .n_events = who == NULL ? 0 : activate ? 2 : 1};
    store_status ss = store_model_insert(st, &m, version);
    store_event_clear(&ev[0]);
    store_event_clear(&ev[1]);
    return ss;
}

bundle_status bundle_import(store_t *st, const char *product, const bundle_t *b,
                            const char *backbone_sha256, int activate, const store_event_t *who,
                            int64_t *version, store_status *store_err, char *err,
                            size_t errlen)
{
    *version = 0;
    *store_err = STORE_OK;
    if (backbone_sha256 != NULL && strcmp(backbone_sha256, b->backbone_sha256) != 0) {
        snprintf(err, errlen,
                 "bundle's model was trained on backbone %.12s..., this daemon runs %.12s...",
                 b->backbone_sha256, backbone_sha256);
        return BUNDLE_ERR_BACKBONE;
    }
    store_status ss = ensure_product(st, product, b);
    char *fig = ss == STORE_OK ? figures_with_origin(b) : NULL;
    if (ss == STORE_OK && fig == NULL)
        ss = STORE_ERR_NOMEM;
    if (ss == STORE_OK)
        ss = insert(st, product, b, activate, fig, who, version);
    free(fig);
    if (ss != STORE_OK) {
        *store_err = ss;
        snprintf(err, errlen, "importing into product %s: %s", product, store_strerror(ss));
        return BUNDLE_ERR_STORE;
    }
    return BUNDLE_OK;
}

int64_t bundle_origin_version(const char *figures_json, char sha256[65])
{
    json_t *fig = figures_json != NULL ? json_loads(figures_json, 0, NULL) : NULL;
    json_t *origin = json_object_get(fig, "origin");
    json_t *v = json_object_get(origin, "version");
    const char *sum = json_string_value(json_object_get(origin, "bundle_sha256"));
    int64_t out = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
    if (sha256 != NULL)
        snprintf(sha256, 65, "%s", sum != NULL ? sum : "");
    json_decref(fig);
    return out;
}

int bundle_key_load(const char *path, uint8_t key[BUNDLE_KEY_MAX], size_t *len, char *err,
                    size_t errlen)
{
    char buf[BUNDLE_KEY_MAX + 2];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t a = 0;
    while (a < n && isspace((unsigned char)buf[a]))
        a++;
    while (n > a && isspace((unsigned char)buf[n - 1]))
        n--;
    if (n - a == 0 || n - a > BUNDLE_KEY_MAX) {
        snprintf(err, errlen, "key file %s: must hold 1-%d bytes", path, BUNDLE_KEY_MAX);
        return -1;
    }
    memcpy(key, buf + a, n - a);
    *len = n - a;
    return 0;
}
