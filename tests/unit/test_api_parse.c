/* test_api_parse.c - routing, identifiers, query values, multipart and JSON
 * body parsing of api/parse.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "line_parse.h"
#include "parse.h"
#include "store.h"

/* The API checks product ids in paths, queries and bodies with the store's
 * check (there is no second one in api/): whatever it accepts names a
 * directory under <data_dir>/images and nothing else, in any locale. */
static void test_product_ids(void **state)
{
    (void)state;
    assert_true(store_valid_product_id("bottle-a"));
    assert_true(store_valid_product_id("A.b_c-9"));
    assert_true(store_valid_product_id("x"));
    assert_true(store_valid_product_id("..."));
    char s65[66];
    memset(s65, 'a', 65);
    s65[65] = '\0';
    assert_false(store_valid_product_id(s65));
    s65[64] = '\0';
    assert_true(store_valid_product_id(s65));
    assert_false(store_valid_product_id(""));
    assert_false(store_valid_product_id("a b"));
    assert_false(store_valid_product_id("a/b"));
    assert_false(store_valid_product_id("é"));
    assert_false(store_valid_product_id(NULL));
    /* the old api/ copy accepted these two */
    assert_false(store_valid_product_id("."));
    assert_false(store_valid_product_id(".."));
    /* non-ASCII bytes, also where a Latin-1 locale's isalnum() says yes */
    assert_false(store_valid_product_id("caf\xe9"));
    assert_false(store_valid_product_id("\xc0\xff"));
    for (int c = 0x80; c <= 0xff; c++) {
        char one[3] = {'a', (char)c, '\0'};
        assert_false(store_valid_product_id(one));
    }
}

/* Job and key lists' cursors: "<created_at ms>.<32 hex id>" and nothing
 * else (the API answers anything else 400 invalid_cursor). */
static void test_list_cursors(void **state)
{
    (void)state;
    assert_true(store_valid_time_cursor("1764460800123.0123456789abcdef0123456789abcdef"));
    assert_true(store_valid_time_cursor("0.0123456789abcdef0123456789abcdef"));
    assert_false(store_valid_time_cursor(""));
    assert_false(store_valid_time_cursor(".0123456789abcdef0123456789abcdef"));
    assert_false(store_valid_time_cursor("-1.0123456789abcdef0123456789abcdef"));
    assert_false(store_valid_time_cursor("12.0123456789ABCDEF0123456789abcdef"));
    assert_false(store_valid_time_cursor("12.0123456789abcdef0123456789abcde"));
    assert_false(store_valid_time_cursor("12.0123456789abcdef0123456789abcdef0"));
    assert_false(store_valid_time_cursor("1234567890123456789.0123456789abcdef0123456789abcdef"));
    assert_false(store_valid_time_cursor("12 .0123456789abcdef0123456789abcdef"));
    assert_false(store_valid_time_cursor("0123456789abcdef0123456789abcdef"));
}

static void test_sha256_ids(void **state)
{
    (void)state;
    assert_true(store_valid_sha256("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    assert_false(store_valid_sha256("E3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    assert_false(store_valid_sha256("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"));
    assert_false(store_valid_sha256("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555"));
}

static void test_numbers(void **state)
{
    (void)state;
    long long v;
    double d;
    assert_int_equal(parse_int_range("42", 1, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(parse_int_range("0", 1, 100, &v), -1);
    assert_int_equal(parse_int_range("101", 1, 100, &v), -1);
    assert_int_equal(parse_int_range("4x", 1, 100, &v), -1);
    assert_int_equal(parse_int_range(" 4", 1, 100, &v), -1);
    assert_int_equal(parse_int_range("", 1, 100, &v), -1);
    assert_int_equal(parse_int_range("99999999999999999999999", 1, 100, &v), -1);
    assert_int_equal(parse_double("2.5", &d), 0);
    assert_true(d == 2.5);
    assert_int_equal(parse_double("nan", &d), -1);
    assert_int_equal(parse_double("inf", &d), -1);
    assert_int_equal(parse_double("1e999", &d), -1);
}

static void test_routes(void **state)
{
    (void)state;
    char p[ROUTE_MAX_PARAMS][ROUTE_PARAM_MAX];
    assert_int_equal(route_match_pattern("/v1/products", "/v1/products", p), 0);
    assert_int_equal(route_match_pattern("/v1/products", "/v1/products/", p), 0);
    assert_int_equal(route_match_pattern("/v1/products", "/v1/productsx", p), -1);
    assert_int_equal(route_match_pattern("/v1/products/{}", "/v1/products/a-1", p), 1);
    assert_string_equal(p[0], "a-1");
    assert_int_equal(route_match_pattern("/v1/products/{}", "/v1/products/", p), -1);
    assert_int_equal(route_match_pattern("/v1/products/{}", "/v1/products/a/images", p), -1);
    assert_int_equal(route_match_pattern("/v1/products/{}/images/{}",
                                         "/v1/products/bottle/images/abc", p), 2);
    assert_string_equal(p[0], "bottle");
    assert_string_equal(p[1], "abc");
    assert_int_equal(route_match_pattern("/v1/products/{}/models/{}/activate",
                                         "/v1/products/b/models/3/activate", p), 2);
    assert_string_equal(p[1], "3");
    /* percent-decoding; encoded slash and NUL are refused */
    assert_int_equal(route_match_pattern("/v1/products/{}", "/v1/products/a%2Eb", p), 1);
    assert_string_equal(p[0], "a.b");
    assert_int_equal(route_match_pattern("/v1/products/{}", "/v1/products/a%2Fb", p), -1);
    assert_int_equal(route_match_pattern("/v1/products/{}", "/v1/products/a%00", p), -1);
    assert_int_equal(route_match_pattern("/v1/products/{}", "/v1/products/a%2", p), -1);
    assert_int_equal(route_match_pattern("/v1/products/{}", "/v1/products/a%zz", p), -1);
    char longp[400] = "/v1/products/";
    memset(longp + 13, 'a', 300);
    longp[313] = '\0';
    assert_int_equal(route_match_pattern("/v1/products/{}", longp, p), -1);
    assert_int_equal(route_match_pattern("/", "", p), -1);
}

static void test_boundary(void **state)
{
    (void)state;
    char b[80];
    assert_int_equal(mp_boundary("multipart/form-data; boundary=abc123", b, sizeof b), 0);
    assert_string_equal(b, "abc123");
    assert_int_equal(mp_boundary("multipart/form-data; boundary=\"a b;c\"", b, sizeof b), 0);
    assert_string_equal(b, "a b;c");
    assert_int_equal(mp_boundary("multipart/form-data; BOUNDARY=x; charset=utf-8", b, sizeof b), 0);
    assert_string_equal(b, "x");
    assert_int_equal(mp_boundary("multipart/form-data", b, sizeof b), -1);
    assert_int_equal(mp_boundary("multipart/form-data; boundary=", b, sizeof b), -1);
    assert_int_equal(mp_boundary("multipart/form-data; boundary=\"abc", b, sizeof b), -1);
}

static void test_multipart_two_parts(void **state)
{
    (void)state;
    const char body[] =
        "preamble\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"a\"; filename=\"one.png\"\r\n"
        "Content-Type: Image/PNG\r\n"
        "\r\n"
        "\x89PNG\r\n--XyZnot-a-boundary\r\n"
        "--XyZ\r\n"
        "content-disposition: form-data; name=b\r\n"
        "\r\n"
        "\r\n"
        "--XyZ--\r\n"
        "epilogue";
    mp_part parts[4];
    int n = -1;
    assert_int_equal(mp_parse((const uint8_t *)body, sizeof body - 1, "XyZ", parts, 4, &n), MP_OK);
    assert_int_equal(n, 2);
    assert_string_equal(parts[0].name, "a");
    assert_string_equal(parts[0].filename, "one.png");
    assert_string_equal(parts[0].content_type, "image/png");
    assert_int_equal(parts[0].len, 25);
    assert_memory_equal(parts[0].data, "\x89PNG\r\n--XyZnot-a-boundary", 25);
    assert_string_equal(parts[1].name, "b");
    assert_int_equal(parts[1].len, 0);
}

static void test_multipart_lf_only(void **state)
{
    (void)state;
    const char body[] = "--b\nContent-Type: image/jpeg\n\nDATA\n--b--\n";
    mp_part parts[2];
    int n = 0;
    assert_int_equal(mp_parse((const uint8_t *)body, sizeof body - 1, "b", parts, 2, &n), MP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(parts[0].len, 4);
    assert_memory_equal(parts[0].data, "DATA", 4);
}

static void test_multipart_errors(void **state)
{
    (void)state;
    mp_part parts[1];
    int n = 0;
    const char *bad[] = {
        "",                                   /* empty */
        "--b\r\nContent-Type: x\r\n\r\nDATA", /* no closing delimiter */
        "--b\r\nContent-Type: x",             /* headers never end */
        "junk--b\r\n\r\nx\r\n--b--",          /* delimiter not at a line start */
        "--bX\r\n\r\nx\r\n--b--",             /* garbage after the delimiter */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mp_parse((const uint8_t *)bad[i], strlen(bad[i]), "b", parts, 1, &n),
                         MP_ERR_SYNTAX);
    const char two[] = "--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b--";
    assert_int_equal(mp_parse((const uint8_t *)two, sizeof two - 1, "b", parts, 1, &n),
                     MP_ERR_TOO_MANY);
    assert_int_equal(mp_parse((const uint8_t *)two, sizeof two - 1, "", parts, 1, &n),
                     MP_ERR_SYNTAX);
    /* an empty upload's body is NULL (found by fuzz_request under clang's UBSan:
     * NULL + 0 was computed before the check) */
    assert_int_equal(mp_parse(NULL, 0, "b", parts, 1, &n), MP_ERR_SYNTAX);
}

/* The console's file names (api/static.c): one flat segment, known types. */
static void test_web_file_names(void **state)
{
    char name[ROUTE_PARAM_MAX];
    (void)state;
    assert_string_equal(web_file_name("/", name, sizeof name), "text/html; charset=utf-8");
    assert_string_equal(name, "index.html");
    assert_string_equal(web_file_name("/app.js", name, sizeof name),
                        "text/javascript; charset=utf-8");
    assert_string_equal(web_file_name("/favicon.svg", name, sizeof name), "image/svg+xml");
    const char *bad[] = {"", "/..", "/../x.js", "/.hidden.js", "/a/b.js", "/a.b.js", "/x.txt",
                         "/x", "x.js", "/x.js/", "/x%2e.js", "/x.js\n", "//x.js", "/x .js"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(web_file_name(bad[i], name, sizeof name));
    assert_null(web_file_name("/abcdef.js", name, 6)); /* does not fit */
    assert_null(web_file_type("x.exe"));
}

/* Part identity values, the meta part, request ids and idempotency keys. */
static void test_line_parse(void **state)
{
    (void)state;
    char why[256];
    part_fields p;
    memset(&p, 0, sizeof p);
    char long_v[PART_VALUE_MAX + 2];
    memset(long_v, 'x', sizeof long_v);
    assert_int_equal(part_value_check("SN\xc3\xa9-1", 6, why, sizeof why), 0);
    assert_int_equal(part_value_check(long_v, PART_VALUE_MAX, why, sizeof why), 0);
    assert_int_equal(part_value_check(long_v, PART_VALUE_MAX + 1, why, sizeof why), -1);
    assert_int_equal(part_value_check("", 0, why, sizeof why), -1);
    assert_int_equal(part_value_check("a\tb", 3, why, sizeof why), -1);
    assert_int_equal(part_value_check("a\x7f", 2, why, sizeof why), -1);
    assert_int_equal(part_value_check("a\xc2\x85", 3, why, sizeof why), -1); /* C1 NEL */
    assert_int_equal(part_value_check("\xc3\x28", 2, why, sizeof why), -1);  /* not UTF-8 */
    assert_int_equal(part_set(&p, PART_ID, "P1", 2, "the query", why, sizeof why), 0);
    assert_int_equal(part_set(&p, PART_ID, "P1", 2, "X-Part-Id", why, sizeof why), 0);
    assert_int_equal(part_set(&p, PART_ID, "P2", 2, "X-Part-Id", why, sizeof why), -1);
    assert_non_null(strstr(why, "part_id differs between the query and X-Part-Id"));
    const char *meta = "{\"serial\":\"S\",\"order\":\"o\"}";
    assert_int_equal(part_meta_parse(&p, meta, strlen(meta), why, sizeof why), 0);
    assert_string_equal(p.v[PART_SERIAL], "S");
    assert_string_equal(p.v[PART_ORDER], "o");
    assert_int_equal(part_meta_parse(&p, "{\"part_id\":\"P9\"}", 16, why, sizeof why), -2);
    assert_int_equal(part_meta_parse(&p, "{\"x\":\"1\"}", 9, why, sizeof why), -1);
    assert_int_equal(part_meta_parse(&p, "[]", 2, why, sizeof why), -1);
    assert_int_equal(part_meta_parse(&p, "{", 1, why, sizeof why), -1);
    assert_true(request_id_valid("abc-123_X"));
    assert_false(request_id_valid(""));
    assert_false(request_id_valid("a b"));
    long_v[REQUEST_ID_MAX + 1] = '\0';
    assert_false(request_id_valid(long_v));
    long_v[REQUEST_ID_MAX] = '\0';
    assert_true(request_id_valid(long_v));
    assert_true(idem_key_valid("k-1"));
    assert_false(idem_key_valid("k\x01"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_product_ids),     cmocka_unit_test(test_sha256_ids),
        cmocka_unit_test(test_numbers),         cmocka_unit_test(test_list_cursors),
        cmocka_unit_test(test_routes),          cmocka_unit_test(test_boundary),
        cmocka_unit_test(test_multipart_two_parts), cmocka_unit_test(test_multipart_lf_only),
        cmocka_unit_test(test_multipart_errors), cmocka_unit_test(test_web_file_names),
        cmocka_unit_test(test_line_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
