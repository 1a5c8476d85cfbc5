/* test_bundle.c - server/bundle: HMAC-SHA256 against RFC 4231, pack and
 * parse round trip, every refusal, and the import into a real store. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"
#include "sha256.h"

static const char BB[] = "e195ca9c95623ea1e2da4795a2f94b53b54ccdfa393b33d833737f5b9f02f202";
static const uint8_t KEY[] = "unit-key";

static void hex_eq(const uint8_t d[32], const char *hex)
{
    char got[65];
    sha256_hex(d, 32, got);
    assert_string_equal(got, hex);
}

/* RFC 4231 test cases 1, 2 and 6 (a key longer than the block). */
static void test_hmac_rfc4231(void **state)
{
    (void)state;
    uint8_t d[32], k1[20], k6[131];
    memset(k1, 0x0b, sizeof k1);
    sha256_hmac(k1, sizeof k1, "Hi There", 8, d);
    hex_eq(d, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    sha256_hmac((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, d);
    hex_eq(d, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(k6, 0xaa, sizeof k6);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    sha256_hmac(k6, sizeof k6, m6, strlen(m6), d);
    hex_eq(d, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static uint8_t BLOB[300];

static void sample(store_product_t *p, store_model_t *m)
{
    memset(p, 0, sizeof *p);
    memset(m, 0, sizeof *m);
    snprintf(p->id, sizeof p->id, "tile");
    p->name = "Tile";
    p->settings_json = "{\"epochs\":2}";
    snprintf(m->product, sizeof m->product, "tile");
    m->version = 4;
    m->created_at = 1764547200000;
    m->threshold = 2.5;
    m->threshold_ng = 3.5;
    snprintf(m->backbone_sha256, sizeof m->backbone_sha256, "%s", BB);
    m->figures_json = "{\"train_loss\":0.25}";
    for (size_t i = 0; i < sizeof BLOB; i++)
        BLOB[i] = (uint8_t)(i * 7);
    m->blob = BLOB;
    m->blob_len = sizeof BLOB;
}

static void test_round_trip_and_refusals(void **state)
{
    (void)state;
    store_product_t p;
    store_model_t m;
    uint8_t *buf;
    size_t len;
    bundle_t b;
    char err[320];
    sample(&p, &m);
    assert_int_equal(bundle_pack(&p, &m, "host-a", KEY, sizeof KEY - 1, &buf, &len), 0);
    assert_int_equal(bundle_parse(buf, len, KEY, sizeof KEY - 1, &b, err, sizeof err), BUNDLE_OK);
    assert_int_equal(b.model_len, sizeof BLOB);
    assert_memory_equal(b.model, BLOB, sizeof BLOB);
    assert_true(b.is_signed);
    assert_int_equal(b.source_version, 4);
    assert_true(b.threshold == 2.5);
    assert_string_equal(b.backbone_sha256, BB);
    json_t *ng = json_object_get(json_object_get(b.manifest, "model"), "threshold_ng");
    assert_true(json_is_number(ng) && json_number_value(ng) == 3.5);
    assert_true(b.threshold_ng == 3.5); /* T2 travels with the model */
    bundle_clear(&b);
    /* without a key a signed bundle passes; with another key it does not */
    assert_int_equal(bundle_parse(buf, len, NULL, 0, &b, err, sizeof err), BUNDLE_OK);
    bundle_clear(&b);
    assert_int_equal(bundle_parse(buf, len, (const uint8_t *)"other", 5, &b, err, sizeof err),
                     BUNDLE_ERR_SIGNATURE);
    buf[len - 100] ^= 1;
    assert_int_equal(bundle_parse(buf, len, NULL, 0, &b, err, sizeof err), BUNDLE_ERR_CHECKSUM);
    buf[len - 100] ^= 1;
    assert_int_equal(bundle_parse(buf, len - 1, NULL, 0, &b, err, sizeof err), BUNDLE_ERR_FORMAT);
    buf[11] = 2;
    assert_int_equal(bundle_parse(buf, len, NULL, 0, &b, err, sizeof err), BUNDLE_ERR_VERSION);
    assert_non_null(strstr(err, "version 2"));
    free(buf);
    assert_int_equal(bundle_pack(&p, &m, "host-a", NULL, 0, &buf, &len), 0);
    assert_int_equal(bundle_parse(buf, len, KEY, sizeof KEY - 1, &b, err, sizeof err),
                     BUNDLE_ERR_UNSIGNED);
    assert_null(b.manifest);
    free(buf);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void test_import(void **state)
{
    (void)state;
    char dir[] = "/tmp/cfa-bundle-XXXXXX", err[320];
    assert_non_null(mkdtemp(dir));
    store_t *st = NULL;
    assert_int_equal(store_open(dir, NULL, &st), STORE_OK);
    store_product_t p;
    store_model_t m;
    uint8_t *buf;
    size_t len;
    bundle_t b;
    sample(&p, &m);
    assert_int_equal(bundle_pack(&p, &m, "host-a", NULL, 0, &buf, &len), 0);
    assert_int_equal(bundle_parse(buf, len, NULL, 0, &b, err, sizeof err), BUNDLE_OK);
    int64_t v = 0;
    store_status ss;
    char other[65];
    memset(other, 'a', 64);
    other[64] = '\0';
    assert_int_equal(bundle_import(st, "tile-b", &b, other, 1, NULL, &v, &ss, err, sizeof err),
                     BUNDLE_ERR_BACKBONE);
    assert_int_equal(store_product_get(st, "tile-b", &p), STORE_ERR_NOT_FOUND);
    assert_int_equal(bundle_import(st, "tile-b", &b, BB, 1, NULL, &v, &ss, err, sizeof err),
                     BUNDLE_OK);
    assert_int_equal(v, 1);
    assert_int_equal(bundle_import(st, "tile-b", &b, BB, 0, NULL, &v, &ss, err, sizeof err),
                     BUNDLE_OK);
    assert_int_equal(v, 2);
    assert_int_equal(store_product_get(st, "tile-b", &p), STORE_OK);
    assert_string_equal(p.name, "Tile");
    assert_int_equal(p.active_version, 1);
    store_product_clear(&p);
    assert_int_equal(store_model_get(st, "tile-b", 1, &m), STORE_OK);
    char sum[65];
    assert_int_equal(bundle_origin_version(m.figures_json, sum), 4);
    assert_string_equal(sum, b.sha256);
    assert_int_equal(m.blob_len, sizeof BLOB);
    assert_memory_equal(m.blob, BLOB, sizeof BLOB);
    store_model_clear(&m);
    bundle_clear(&b);
    free(buf);
    store_close(st);
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_round_trip_and_refusals),
        cmocka_unit_test(test_import),
    };
    return cmocka_run_group_tests_name("bundle", tests, NULL, NULL);
}
