/* test_sha256.c - FIPS 180 test vectors for server/sha256.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sha256.h"

static void hex_of(const char *s, size_t len, char out[SHA256_HEX_LEN])
{
    sha256_hex_of(s, len, out);
}

static void test_abc(void **state)
{
    (void)state;
    char h[SHA256_HEX_LEN];
    hex_of("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_empty(void **state)
{
    (void)state;
    char h[SHA256_HEX_LEN];
    hex_of("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_two_blocks(void **state)
{
    (void)state;
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char h[SHA256_HEX_LEN];
    hex_of(m, strlen(m), h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_million_a(void **state)
{
    (void)state;
    /* Fed in odd-sized pieces to exercise the buffering. */
    char chunk[997];
    memset(chunk, 'a', sizeof chunk);
    sha256_ctx c;
    sha256_init(&c);
    size_t left = 1000000;
    while (left > 0) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        sha256_update(&c, chunk, n);
        left -= n;
    }
    uint8_t d[SHA256_DIGEST_LEN];
    char h[SHA256_HEX_LEN];
    sha256_final(&c, d);
    sha256_hex(d, sizeof d, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_incremental_matches_oneshot(void **state)
{
    (void)state;
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof buf; len += 17) {
        uint8_t a[32], b[32];
        sha256(buf, len, a);
        for (size_t split = 0; split <= len; split += 13) {
            sha256_ctx c;
            sha256_init(&c);
            sha256_update(&c, buf, split);
            sha256_update(&c, buf + split, len - split);
            sha256_final(&c, b);
            assert_memory_equal(a, b, 32);
        }
    }
    /* Lengths around the 55/56/64-byte padding edges. */
    char h[SHA256_HEX_LEN];
    char m[64];
    memset(m, 'a', sizeof m);
    hex_of(m, 55, h);
    assert_string_equal(h, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    hex_of(m, 56, h);
    assert_string_equal(h, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    hex_of(m, 64, h);
    assert_string_equal(h, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abc),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_two_blocks),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_incremental_matches_oneshot),
    };
    return cmocka_run_group_tests_name("sha256", tests, NULL, NULL);
}
