/* bundle.c - the bundle file: packing, checking and parsing (bundle.h). */
#define _GNU_SOURCE
#include "bundle.h"

#include "base_alloc.h"
#include "base_clock.h"
#include "sha256.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char MAGIC[8] = {'C', 'F', 'A', 'B', 'N', 'D', 'L', '\n'};
#define HEAD_LEN 16   /* magic, format version, manifest length */
#define TAIL_LEN 64   /* checksum, signature                    */

const char *bundle_status_str(bundle_status s)
{
    switch (s) {
    case BUNDLE_OK: return "ok";
    case BUNDLE_ERR_FORMAT: return "not a valid bundle";
    case BUNDLE_ERR_VERSION: return "unsupported bundle format version";
    case BUNDLE_ERR_CHECKSUM: return "bundle checksum mismatch";
    case BUNDLE_ERR_SIGNATURE: return "bundle signature does not match the key";
    case BUNDLE_ERR_UNSIGNED: return "bundle is not signed";
    case BUNDLE_ERR_BACKBONE: return "bundle made with another backbone";
    case BUNDLE_ERR_STORE: return "store error";
    }
    return "unknown";
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)(v & 0xff);
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The manifest of bundle_pack (bundle.h lists its fields). */
static json_t *manifest_new(const store_product_t *p, const store_model_t *m, const char *host,
                            int is_signed)
{
    char hex[SHA256_HEX_LEN];
    sha256_hex_of(m->blob, m->blob_len, hex);
    json_t *settings = json_loads(p->settings_json, 0, NULL);
    json_t *figures = json_loads(m->figures_json, 0, NULL);
    json_t *model = json_pack("{s:I,s:I,s:f,s:s,s:o,s:I,s:s}", "version", (json_int_t)m->version,
                              "created_at", (json_int_t)m->created_at, "threshold", m->threshold,
                              "backbone_sha256", m->backbone_sha256, "figures",
                              figures != NULL ? figures : json_object(), "bytes",
                              (json_int_t)m->blob_len, "sha256", hex);
    /* T2 of OK / UNSURE / NG (docs/API.md); a bundle without one means T2 = T1 */
    if (isfinite(m->threshold_ng) && m->threshold_ng >= m->threshold)
        json_object_set_new(model, "threshold_ng", json_real(m->threshold_ng));
    return json_pack("{s:s,s:i,s:b,s:{s:s,s:s,s:o},s:o,s:{s:s,s:I}}", "format", "cfa-bundle",
                     "format_version", BUNDLE_FORMAT_VERSION, "signed", is_signed, "product",
                     "id", p->id, "name", p->name, "settings",
                     settings != NULL ? settings : json_object(), "model", model, "source",
                     "host", host != NULL ? host : "", "exported_at",
                     (json_int_t)wall_ms());
}

int bundle_pack(const store_product_t *p, const store_model_t *m, const char *host,
                const uint8_t *key, size_t key_len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (p == NULL || m == NULL || m->blob == NULL || m->blob_len == 0 || !isfinite(m->threshold))
        return -1;
    json_t *man = manifest_new(p, m, host, key != NULL);
    char *text = man != NULL ? json_dumps(man, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(man);
    if (text == NULL || strlen(text) > BUNDLE_MANIFEST_MAX) {
        free(text);
        return -1;
    }
    size_t ml = strlen(text);
    size_t len = HEAD_LEN + ml + 8 + m->blob_len + TAIL_LEN;
    uint8_t *b = xmalloc(len), *q = b;
    memcpy(q, MAGIC, 8);
    put_be(q + 8, BUNDLE_FORMAT_VERSION, 4);
    put_be(q + 12, ml, 4);
    memcpy(q + HEAD_LEN, text, ml);
    q += HEAD_LEN + ml;
    put_be(q, m->blob_len, 8);
    memcpy(q + 8, m->blob, m->blob_len);
    free(text);
    sha256(b, len - TAIL_LEN, b + len - TAIL_LEN);
    memset(b + len - 32, 0, 32);
    if (key != NULL)
        sha256_hmac(key, key_len, b, len - 32, b + len - 32);
    *out = b;
    *out_len = len;
    return 0;
}

static bundle_status fail(bundle_t *out, bundle_status s, char *err, size_t errlen,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static bundle_status fail(bundle_t *out, bundle_status s, char *err, size_t errlen,
                          const char *fmt, ...)
{
    bundle_clear(out);
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* Equal in time that does not depend on where they differ. */
static int same_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

/* The frame: magic, version, lengths that add up exactly, checksum. */
static bundle_status check_frame(const uint8_t *b, size_t len, size_t *ml, bundle_t *out,
                                 char *err, size_t errlen)
{
    if (len < HEAD_LEN + 8 + TAIL_LEN || memcmp(b, MAGIC, 8) != 0)
        return fail(out, BUNDLE_ERR_FORMAT, err, errlen, "not a model bundle (no CFABNDL header)");
    uint64_t ver = get_be(b + 8, 4);
    if (ver != BUNDLE_FORMAT_VERSION)
        return fail(out, BUNDLE_ERR_VERSION, err, errlen,
                    "bundle format version %llu; this daemon reads version %d",
                    (unsigned long long)ver, BUNDLE_FORMAT_VERSION);
    *ml = get_be(b + 12, 4);
    if (*ml > BUNDLE_MANIFEST_MAX || *ml > len - HEAD_LEN - 8 - TAIL_LEN)
        return fail(out, BUNDLE_ERR_FORMAT, err, errlen, "bundle truncated (manifest)");
    uint64_t mlen = get_be(b + HEAD_LEN + *ml, 8);
    if (mlen == 0 || mlen != len - HEAD_LEN - *ml - 8 - TAIL_LEN)
        return fail(out, BUNDLE_ERR_FORMAT, err, errlen,
                    "bundle lengths do not add up (truncated or extended)");
    uint8_t sum[32];
    sha256(b, len - TAIL_LEN, sum);
    if (!same_bytes(sum, b + len - TAIL_LEN, 32))
        return fail(out, BUNDLE_ERR_CHECKSUM, err, errlen,
                    "bundle checksum mismatch: the file was altered or damaged");
    sha256_hex(sum, 32, out->sha256);
    out->model = b + HEAD_LEN + *ml + 8;
    out->model_len = (size_t)mlen;
    return BUNDLE_OK;
}

static int is_hex64(const char *s)
{
    return s != NULL && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* The manifest's fields this daemon relies on. */
static bundle_status read_manifest(const uint8_t *text, size_t ml, bundle_t *out, char *err,
                                   size_t errlen)
{
    json_error_t je;
    out->manifest = json_loadb((const char *)text, ml, JSON_REJECT_DUPLICATES, &je);
    json_t *model = json_object_get(out->manifest, "model");
    json_t *thr = json_object_get(model, "threshold");
    json_t *ver = json_object_get(model, "version");
    json_t *sig = json_object_get(out->manifest, "signed");
    const char *bb = json_string_value(json_object_get(model, "backbone_sha256"));
    const char *fmt = json_string_value(json_object_get(out->manifest, "format"));
    if (out->manifest == NULL || !json_is_object(model) || fmt == NULL ||
        strcmp(fmt, "cfa-bundle") != 0 || !json_is_number(thr) || !json_is_integer(ver) ||
        !json_is_boolean(sig) || !is_hex64(bb) || !json_is_object(json_object_get(model, "figures")))
        return fail(out, BUNDLE_ERR_FORMAT, err, errlen,
                    "bundle manifest is not valid (format, signed, model.version, "
                    "model.threshold, model.backbone_sha256, model.figures)");
    out->threshold = json_number_value(thr);
    json_t *thr_ng = json_object_get(model, "threshold_ng");
    out->threshold_ng = json_is_number(thr_ng) ? json_number_value(thr_ng) : out->threshold;
    if (!isfinite(out->threshold_ng) || out->threshold_ng < out->threshold)
        return fail(out, BUNDLE_ERR_FORMAT, err, errlen,
                    "bundle manifest: threshold_ng must be at least threshold");
    out->source_version = json_integer_value(ver);
    if (!isfinite(out->threshold) || out->threshold <= 0 || out->source_version < 1)
        return fail(out, BUNDLE_ERR_FORMAT, err, errlen,
                    "bundle manifest: threshold must be above 0 and version at least 1");
    out->is_signed = json_is_true(sig);
    snprintf(out->backbone_sha256, sizeof out->backbone_sha256, "%s", bb);
    return BUNDLE_OK;
}

bundle_status bundle_parse(const void *buf, size_t len, const uint8_t *key, size_t key_len,
                           bundle_t *out, char *err, size_t errlen)
{
    const uint8_t *b = buf;
    size_t ml = 0;
    memset(out, 0, sizeof *out);
    if (buf == NULL)
        return fail(out, BUNDLE_ERR_FORMAT, err, errlen, "empty bundle");
    bundle_status s = check_frame(b, len, &ml, out, err, errlen);
    if (s == BUNDLE_OK)
        s = read_manifest(b + HEAD_LEN, ml, out, err, errlen);
    if (s != BUNDLE_OK || key == NULL)
        return s;
    /* with a key only a bundle signed by it passes: "signed" is covered by
     * the checksum, which anyone can recompute, so unsigned is refused */
    if (!out->is_signed)
        return fail(out, BUNDLE_ERR_UNSIGNED, err, errlen,
                    "bundle is not signed and this daemon requires signed bundles "
                    "(--bundle-key-file)");
    uint8_t mac[32];
    sha256_hmac(key, key_len, b, len - 32, mac);
    if (!same_bytes(mac, b + len - 32, 32))
        return fail(out, BUNDLE_ERR_SIGNATURE, err, errlen,
                    "bundle signature does not match the key (--bundle-key-file)");
    return BUNDLE_OK;
}

void bundle_clear(bundle_t *b)
{
    if (b == NULL)
        return;
    json_decref(b->manifest);
    memset(b, 0, sizeof *b);
}
