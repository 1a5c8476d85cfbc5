/* fuzz_path.c - request paths against the route patterns, path ids and query
 * values (limit, since, threshold) of api/parse.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

static const char *PATTERNS[] = {
    "/healthz", "/v1/products", "/v1/products/{}", "/v1/products/{}/images",
    "/v1/products/{}/images/{}", "/v1/products/{}/models/{}/activate",
    "/v1/inspections/{}/heatmap.png", "/v1/jobs/{}/cancel", "/{}/{}/{}", "/{}/{}/{}/{}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    char params[ROUTE_MAX_PARAMS][ROUTE_PARAM_MAX];
    long long v;
    double d;
    char buf[40];
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    for (size_t i = 0; i < sizeof PATTERNS / sizeof PATTERNS[0]; i++) {
        int n = route_match_pattern(PATTERNS[i], s, params);
        if (n > ROUTE_MAX_PARAMS)
            abort();
        for (int k = 0; k < n; k++)
            if (params[k][0] == '\0' || strlen(params[k]) >= ROUTE_PARAM_MAX ||
                strchr(params[k], '/') != NULL)
                abort();
    }
    if (parse_product_id_ok(s) && (strlen(s) == 0 || strlen(s) > 64 || strchr(s, '/') != NULL))
        abort();
    if (parse_sha256_ok(s) && strlen(s) != 64)
        abort();
    if (parse_int_range(s, 1, 1000, &v) == 0 && (v < 1 || v > 1000))
        abort();
    (void)parse_double(s, &d);
    if (parse_rfc3339(s, &d) == 0)
        format_rfc3339(d, buf, sizeof buf);
    free(s);
    return 0;
}
