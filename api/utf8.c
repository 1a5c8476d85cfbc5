/* utf8.c - UTF-8 validation and repair (utf8.h). */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid character at s[0..n), or 0 when it is not one. */
static size_t char_len(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t len;
    uint32_t min, cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, min = 0x80, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, min = 0x800, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0; /* a continuation byte, an overlong 2-byte lead, or > U+10FFFF */
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

size_t utf8_valid_prefix(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = char_len(p + i, n - i);
        if (k == 0)
            break;
        i += k;
    }
    return i;
}

size_t utf8_clean(char *dst, size_t cap, const char *s, size_t n)
{
    static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;
    if (cap == 0)
        return 0;
    while (i < n) {
        size_t k = char_len(p + i, n - i);
        const char *from = k ? s + i : repl;
        size_t len = k ? k : 3;
        if (o + len + 1 > cap)
            break;
        memcpy(dst + o, from, len);
        o += len;
        i += k ? k : 1;
    }
    dst[o] = '\0';
    return o;
}
