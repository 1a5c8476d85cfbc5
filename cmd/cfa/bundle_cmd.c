/* bundle_cmd.c - `cfa bundle`: the daemon's model bundles (server/bundle) on
 * the command line.
 *
 *   cfa bundle export --model MODEL --product ID --threshold X --out FILE
 *                     [--name NAME] [--key-file K]
 *       a model file (cfa train --out) as a bundle that
 *       POST /v1/products/{id}/models imports
 *   cfa bundle import FILE --out MODEL [--key-file K]
 *       checks a bundle (GET .../bundle) as the daemon does (format version,
 *       checksum, signature with --key-file, backbone against --backbone),
 *       writes its model file (for cfa infer / cfa eval --model) and prints
 *       the manifest */
#define _GNU_SOURCE
#include "bundle_cmd.h"

#include "base_file.h"
#include "base_log.h"
#include "bundle.h"
#include "cfa.h"
#include "image.h"
#include "sha256.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *model, *product, *name, *out, *key_file, *file;
    double threshold;
} bundle_opts;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_error("bundle", "%s", msg);
    return 1;
}

/* SHA-256 of a file, as the engine hashes a backbone (cfa_backbone_sha256). */
static int file_sha256(const char *path, char hex[SHA256_HEX_LEN])
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    sha256_ctx c;
    uint8_t buf[65536], d[SHA256_DIGEST_LEN];
    size_t n;
    sha256_init(&c);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sha256_update(&c, buf, n);
    int bad = ferror(f);
    fclose(f);
    sha256_final(&c, d);
    sha256_hex(d, sizeof d, hex);
    return bad ? -1 : 0;
}

static int load_key(const bundle_opts *o, uint8_t key[BUNDLE_KEY_MAX], size_t *len)
{
    char err[512];
    *len = 0;
    if (o->key_file == NULL)
        return 0;
    if (bundle_key_load(o->key_file, key, len, err, sizeof err) != 0)
        return fail("%s", err);
    return 0;
}

/* The store's view of a model file: what bundle_pack packs. */
static int export_bundle(const bundle_opts *o)
{
    uint8_t key[BUNDLE_KEY_MAX], *out = NULL;
    size_t klen, len = 0, blen = 0;
    void *blob = NULL;
    char err[512];
    if (o->model == NULL || o->product == NULL || o->out == NULL || !(o->threshold > 0))
        return fail("export needs --model, --product, --threshold (above 0) and --out");
    if (!store_valid_product_id(o->product))
        return fail("--product %s: 1-64 characters of [A-Za-z0-9._-]", o->product);
    if (load_key(o, key, &klen) != 0)
        return 1;
    img_status is = img_read_file(o->model, (size_t)4 << 30, &blob, &blen);
    if (is != IMG_OK)
        return fail("%s: %s", o->model, img_status_str(is));
    cfa_model *m = NULL;
    if (cfa_model_load(blob, blen, NULL, &m) != CFA_OK) {
        free(blob);
        return fail("model %s: %s", o->model, cfa_last_error());
    }
    char *fig = NULL;
    if (asprintf(&fig, "{\"train_loss\":%.9g,\"bank_size\":%d,\"made_by\":\"cfa train\"}",
                 cfa_model_train_loss(m), cfa_model_bank_size(m)) < 0)
        abort();
    store_product_t p = {.name = (char *)(o->name != NULL ? o->name : ""), .settings_json = "{}"};
    snprintf(p.id, sizeof p.id, "%s", o->product);
    store_model_t sm = {.version = 1, .threshold = o->threshold, .figures_json = fig,
                        .blob = blob, .blob_len = blen};
    snprintf(sm.product, sizeof sm.product, "%s", o->product);
    snprintf(sm.backbone_sha256, sizeof sm.backbone_sha256, "%s", cfa_model_backbone_sha256(m));
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    int rc = bundle_pack(&p, &sm, host, klen > 0 ? key : NULL, klen, &out, &len);
    cfa_model_free(m);
    free(fig);
    free(blob);
    if (rc != 0)
        return fail("cannot make the bundle");
    rc = file_write_durable(o->out, out, len, 0644, err, sizeof err);
    free(out);
    return rc != 0 ? fail("%s", err) : 0;
}

static int import_bundle(const bundle_opts *o, const char *backbone)
{
    uint8_t key[BUNDLE_KEY_MAX];
    size_t klen, len = 0;
    void *buf = NULL;
    char err[512], bb[SHA256_HEX_LEN];
    if (o->file == NULL || o->out == NULL)
        return fail("import needs a bundle FILE and --out MODEL");
    if (load_key(o, key, &klen) != 0)
        return 1;
    if (file_sha256(backbone, bb) != 0)
        return fail("backbone %s: cannot read it", backbone);
    img_status is = img_read_file(o->file, (size_t)4 << 30, &buf, &len);
    if (is != IMG_OK)
        return fail("%s: %s", o->file, img_status_str(is));
    bundle_t b;
    bundle_status bs = bundle_parse(buf, len, klen > 0 ? key : NULL, klen, &b, err, sizeof err);
    if (bs == BUNDLE_OK && strcmp(b.backbone_sha256, bb) != 0) {
        snprintf(err, sizeof err, "made on backbone %.12s..., --backbone %s is %.12s...",
                 b.backbone_sha256, backbone, bb);
        bs = BUNDLE_ERR_BACKBONE;
    }
    int rc = bs != BUNDLE_OK ? fail("%s: %s", o->file, err) : 0;
    if (rc == 0 && file_write_durable(o->out, b.model, b.model_len, 0644, err, sizeof err) != 0)
        rc = fail("%s", err);
    if (rc == 0) {
        json_dumpf(b.manifest, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
    }
    bundle_clear(&b);
    free(buf);
    return rc;
}

int cmd_bundle(int argc, char **argv, const char *backbone)
{
    bundle_opts o = {0};
    if (argc < 1 || (strcmp(argv[0], "export") != 0 && strcmp(argv[0], "import") != 0))
        return fail("usage: cfa bundle export|import ... (see cfa --help)") + 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = !strcmp(a, "--model") ? &o.model : !strcmp(a, "--product") ? &o.product
                          : !strcmp(a, "--name") ? &o.name : !strcmp(a, "--out") ? &o.out
                          : !strcmp(a, "--key-file") ? &o.key_file : !strcmp(a, "--backbone")
                          ? &backbone : NULL;
        if (slot != NULL || !strcmp(a, "--threshold")) {
            if (v == NULL)
                return fail("%s needs a value", a);
            if (slot != NULL)
                *slot = v;
            else if ((o.threshold = strtod(v, NULL)), !isfinite(o.threshold))
                return fail("--threshold %s: not a number", v);
            i++;
        } else if (a[0] != '-' && o.file == NULL) {
            o.file = a;
        } else {
            return fail("unknown argument '%s'", a) + 1;
        }
    }
    return !strcmp(argv[0], "export") ? export_bundle(&o) : import_bundle(&o, backbone);
}
