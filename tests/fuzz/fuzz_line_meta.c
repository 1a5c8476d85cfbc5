/* fuzz_line_meta.c - what a line sends beside an image (api/line_parse.h):
 * the first byte picks the parser, the rest is its input. 0: the multipart
 * "meta" JSON part (after a query value for part_id, so conflicts are
 * reached); 1: one part-identity value from a header or query; 2: an
 * X-Request-Id / Idempotency-Key. Checks what a caller relies on: accepted
 * values are within the limits, valid UTF-8 without control characters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "line_parse.h"
#include "utf8.h"

static void check_fields(const part_fields *p)
{
    char why[256];
    for (int f = 0; f < PART_N; f++) {
        if (!p->set[f])
            continue;
        size_t n = strlen(p->v[f]);
        if (n == 0 || n > PART_VALUE_MAX || part_value_check(p->v[f], n, why, sizeof why) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    part_fields p;
    if (size == 0)
        return 0;
    memset(&p, 0, sizeof p);
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0:
        if (part_set(&p, PART_ID, "P-1", 3, "the query", why, sizeof why) != 0)
            abort();
        if (part_meta_parse(&p, s, n, why, sizeof why) == 0)
            check_fields(&p);
        if (n > PART_META_MAX && part_meta_parse(&p, s, n, why, sizeof why) == 0)
            abort();
        break;
    case 1:
        if (part_set(&p, PART_SERIAL, s, n, "X-Serial", why, sizeof why) == 0) {
            check_fields(&p);
            if (utf8_valid_prefix(s, n) != n || memchr(s, 0, n) != NULL)
                abort();
        }
        break;
    default: {
        char *z = malloc(n + 1);
        if (z == NULL)
            return 0;
        memcpy(z, s, n);
        z[n] = '\0';
        if (request_id_valid(z) && (strlen(z) > REQUEST_ID_MAX || strchr(z, ' ') != NULL))
            abort();
        if (idem_key_valid(z) && strlen(z) > IDEM_KEY_MAX)
            abort();
        free(z);
    }
    }
    return 0;
}
