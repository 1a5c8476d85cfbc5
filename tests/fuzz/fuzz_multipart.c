/* fuzz_multipart.c - multipart/form-data: the Content-Type header value (first
 * line of the input) and the body (the rest) as a client sends them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hl = nl != NULL ? (size_t)(nl - data) : size;
    char *ct = malloc(hl + 1);
    char boundary[80];
    mp_part parts[16];
    int n = 0;
    if (ct == NULL)
        return 0;
    memcpy(ct, data, hl);
    ct[hl] = '\0';
    const uint8_t *body = nl != NULL ? nl + 1 : data + size;
    size_t blen = (size_t)(data + size - body);
    if (mp_boundary(ct, boundary, sizeof boundary) != 0)
        memcpy(boundary, "b", 2);
    if (mp_parse(body, blen, boundary, parts, 16, &n) == MP_OK) {
        if (n < 0 || n > 16)
            abort();
        for (int i = 0; i < n; i++) {
            if (parts[i].data < body || parts[i].data + parts[i].len > body + blen)
                abort();
            if (strlen(parts[i].name) >= sizeof parts[i].name ||
                strlen(parts[i].content_type) >= sizeof parts[i].content_type)
                abort();
        }
    }
    free(ct);
    return 0;
}
