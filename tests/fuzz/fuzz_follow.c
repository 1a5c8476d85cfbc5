/* fuzz_follow.c - the trainer's product list as a replica reads it
 * (server/follow, follow_parse_products): a peer's bytes, any of them. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "follow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    follow_product *arr = NULL;
    size_t n = 0, skipped = 0;
    char next[STORE_PRODUCT_ID_MAX];
    if (follow_parse_products((const char *)data, size, &arr, &n, &skipped, next) != 0) {
        if (arr != NULL || n != 0)
            abort(); /* a refused page leaves nothing behind */
        return 0;
    }
    /* what is taken is what a replica can use: ids that are safe as
     * directory names, versions and thresholds in range */
    for (size_t i = 0; i < n; i++)
        if (!store_valid_product_id(arr[i].id) || arr[i].active_version < 0 ||
            (arr[i].has_threshold && !(arr[i].threshold > 0 && arr[i].threshold <= FLT_MAX)))
            abort();
    if (next[0] != '\0' && !store_valid_product_id(next))
        abort();
    free(arr);
    return 0;
}
