/*
 * bundle.h - model bundles: one file that carries a model version from one
 * daemon to another (export, import, replicas that follow a trainer).
 *
 *     uint8_t *buf; size_t len;
 *     bundle_pack(&product, &model, host, key, key_len, &buf, &len);  (export)
 *     bundle_t b;
 *     if (bundle_parse(buf, len, key, key_len, &b, err, sizeof err) != BUNDLE_OK) -> 4xx
 *     bundle_import(st, "tile-a", &b, my_backbone_sha256, 1, &who, &version, &ss, err,
 *                   sizeof err);
 *     bundle_clear(&b);
 *
 * The file (format version 1, all integers big-endian):
 *
 *     "CFABNDL\n"                   8 bytes, magic
 *     u32 format version            1
 *     u32 manifest length, then the manifest (JSON, at most 1 MiB)
 *     u64 model length, then the model (cfa_model_save format)
 *     32 bytes SHA-256 of everything before it
 *     32 bytes HMAC-SHA256 (key, everything before it), zeros when unsigned
 *
 * The manifest: {"format": "cfa-bundle", "format_version": 1, "signed",
 * "product": {"id", "name", "settings"}, "model": {"version", "created_at",
 * "threshold", "threshold_ng" (T2; a bundle without it means T2 = T1), "backbone_sha256",
 * "figures", "bytes", "sha256"}, "source": {"host", "exported_at"}}.
 * A bundle parsed with a key must be signed with that key; one parsed
 * without a key is accepted signed or not (its checksum still holds).
 * Thread-safety: no shared state.
 */
#ifndef CFA_BUNDLE_H
#define CFA_BUNDLE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define BUNDLE_FORMAT_VERSION 1
#define BUNDLE_KEY_MAX 1024        /* bytes of an HMAC key              */
#define BUNDLE_MANIFEST_MAX (1u << 20)

typedef enum bundle_status {
    BUNDLE_OK = 0,
    BUNDLE_ERR_FORMAT = 1,     /* not a bundle, truncated, bad manifest     */
    BUNDLE_ERR_VERSION = 2,    /* a format version this binary cannot read  */
    BUNDLE_ERR_CHECKSUM = 3,   /* the SHA-256 does not match the bytes      */
    BUNDLE_ERR_SIGNATURE = 4,  /* signed, but not with this key             */
    BUNDLE_ERR_UNSIGNED = 5,   /* a key is configured, the bundle unsigned  */
    BUNDLE_ERR_BACKBONE = 6,   /* trained on another backbone than ours     */
    BUNDLE_ERR_STORE = 7       /* the store refused the import (see err)    */
} bundle_status;

const char *bundle_status_str(bundle_status s);

/* A parsed bundle. model points into the buffer given to bundle_parse,
 * which must outlive it; manifest is owned (bundle_clear). */
typedef struct bundle_t {
    json_t *manifest;
    const uint8_t *model;
    size_t model_len;
    int is_signed;
    char sha256[65];               /* hex of the checksum: the bundle's id */
    char backbone_sha256[65];
    double threshold;
    double threshold_ng; /* T2 (verdict NG); = threshold when the bundle has none */
    int64_t source_version;
} bundle_t;

/* Packs the model version m of product p (m with its blob) into a new
 * buffer (*out, free()). host names the exporter in the manifest. key may be
 * NULL (unsigned). 0, or -1 on bad input or out of memory. */
int bundle_pack(const store_product_t *p, const store_model_t *m, const char *host,
                const uint8_t *key, size_t key_len, uint8_t **out /* OUT */,
                size_t *out_len /* OUT */);

/* Checks and parses any byte string; never crashes on malformed input.
 * key NULL: signature not required. On failure err says why and *out is
 * cleared. */
bundle_status bundle_parse(const void *buf, size_t len, const uint8_t *key, size_t key_len,
                           bundle_t *out /* OUT */, char *err, size_t errlen);
void bundle_clear(bundle_t *b);

/* Imports b as the next version of product (created with the bundle's name
 * and settings when absent; an existing product keeps its own). The model's
 * figures gain "origin": {"product", "version", "host", "bundle_sha256",
 * "imported_at"}. backbone_sha256: ours; the bundle's must equal it
 * (BUNDLE_ERR_BACKBONE). *store_err gets the store's status on
 * BUNDLE_ERR_STORE. who (may be NULL: no rows) gives the key_id and
 * request_id of the import's event-log rows, written in the model insert's
 * transaction (a row the log refuses fails the import): model.imported and,
 * with activate, model.activated. `after` of
 * model.imported: {version, threshold, threshold_ng, activated, origin:
 * {product, version, host, bundle_sha256}}; of model.activated:
 * {active_version, threshold, threshold_ng, bundle_sha256}. */
bundle_status bundle_import(store_t *st, const char *product, const bundle_t *b,
                            const char *backbone_sha256, int activate,
                            const store_event_t *who, int64_t *version /* OUT */,
                            store_status *store_err /* OUT */, char *err, size_t errlen);

/* The origin version of a stored model's figures (its "origin"."version"),
 * or 0 when the model was not imported. */
int64_t bundle_origin_version(const char *figures_json, char sha256[65] /* OUT, may be NULL */);

/* Reads an HMAC key from a file (surrounding whitespace dropped: a key
 * written by echo ends in a newline). 0, or -1 with err. */
int bundle_key_load(const char *path, uint8_t key[BUNDLE_KEY_MAX], size_t *len /* OUT */,
                    char *err, size_t errlen);

#endif
