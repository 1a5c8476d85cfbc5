/* fuzz_path.c - request paths against the route patterns of api/parse.c,
 * and path ids and query values (product, limit, since, threshold) against
 * the checks the API applies to them: api/parse.c's and the store's
 * (store_valid_product_id, store_time_parse), which the API calls directly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "store.h"

/* A valid product id is 1-64 of [A-Za-z0-9._-] and names no directory
 * outside <data_dir>/images: neither "." nor "..". */
static void check_product_id(const char *s)
{
    if (!store_valid_product_id(s))
        return;
    size_t n = strlen(s);
    if (n == 0 || n > 64 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            abort();
    }
}

/* A parsed time formats without overflow, and a canonical rendering
 * ("YYYY-MM-DDThh:mm:ss.mmmZ") parses back to the same instant. */
static void check_time(const char *s)
{
    int64_t ms, back;
    char out[STORE_TIME_LEN];
    if (store_time_parse(s, &ms) != 0)
        return;
    store_time_format(ms, out);
    if (strlen(out) >= STORE_TIME_LEN)
        abort();
    if (strlen(out) == 24 && (store_time_parse(out, &back) != 0 || back != ms))
        abort();
}

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
    check_product_id(s);
    if (store_valid_sha256(s) && strlen(s) != 64)
        abort();
    if (parse_int_range(s, 1, 1000, &v) == 0 && (v < 1 || v > 1000))
        abort();
    (void)parse_double(s, &d);
    check_time(s);
    free(s);
    return 0;
}
