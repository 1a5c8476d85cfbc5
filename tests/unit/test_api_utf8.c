/* test_api_utf8.c - api/utf8.c: which bytes are UTF-8 (RFC 3629), and the
 * repair that keeps every error message valid JSON text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

#define VALID(s) (utf8_valid_prefix((s), sizeof(s) - 1) == sizeof(s) - 1)

static void test_valid(void **state)
{
    (void)state;
    assert_true(VALID(""));
    assert_true(VALID("plain ascii"));
    assert_true(VALID("\xc3\xa9t\xc3\xa9"));         /* été */
    assert_true(VALID("\xe2\x82\xac"));              /* U+20AC */
    assert_true(VALID("\xf0\x9f\x98\x80"));          /* U+1F600 */
    assert_true(VALID("\xf4\x8f\xbf\xbf"));          /* U+10FFFF, the last */
    assert_true(VALID("a\0b"));                      /* NUL is a character */
}

static void test_invalid(void **state)
{
    (void)state;
    static const char *bad[] = {
        "\xff", "\xfe", "\x80",          /* never a lead byte */
        "\xc3",                          /* cut */
        "\xc3\x28",                      /* no continuation */
        "\xc0\xaf", "\xc1\xbf",          /* overlong 2-byte */
        "\xe0\x80\xaf",                  /* overlong 3-byte */
        "\xf0\x80\x80\xaf",              /* overlong 4-byte */
        "\xed\xa0\x80",                  /* surrogate U+D800 */
        "\xf4\x90\x80\x80",              /* U+110000 */
        "\xf5\x80\x80\x80",              /* lead over F4 */
        "\xe2\x82",                      /* cut 3-byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(utf8_valid_prefix(bad[i], strlen(bad[i])), 0);
    assert_int_equal(utf8_valid_prefix("ok\xc3\xa9\xff", 5), 4);
}

static void test_clean(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(utf8_clean(out, sizeof out, "a\xff" "b", 3), 5);
    assert_string_equal(out, "a\xef\xbf\xbd" "b");
    /* each bad byte becomes one U+FFFD; valid characters are kept whole */
    utf8_clean(out, sizeof out, "\xc3\x28\xc3\xa9", 4);
    assert_string_equal(out, "\xef\xbf\xbd(\xc3\xa9");
    assert_int_equal(utf8_valid_prefix(out, strlen(out)), strlen(out));
}

static void test_clean_never_cuts(void **state)
{
    (void)state;
    char out[5];
    /* "aéé" needs 6 bytes with the terminator: the second é does not fit
     * whole in 5, so it is left out rather than cut */
    assert_int_equal(utf8_clean(out, sizeof out, "a\xc3\xa9\xc3\xa9", 5), 3);
    assert_string_equal(out, "a\xc3\xa9");
    char tiny[3];
    assert_int_equal(utf8_clean(tiny, sizeof tiny, "\xff", 1), 0); /* U+FFFD needs 4 */
    assert_string_equal(tiny, "");
    assert_int_equal(utf8_clean(tiny, 0, "x", 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid), cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_clean), cmocka_unit_test(test_clean_never_cuts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
