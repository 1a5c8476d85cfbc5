/* fuzz_bundle.c - model bundles as POST /v1/products/{id}/models and a
 * replica's follower read them (server/bundle, bundle_parse): any byte
 * string, with and without a key. A mutated bundle seldom keeps its
 * checksum, so each input is also tried with the checksum made right again,
 * which takes the fuzzer past it into the manifest and the signature. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "sha256.h"

static const uint8_t KEY[] = "fuzz-bundle-key"; /* the seeds' signed bundle uses it */

static void try_parse(const uint8_t *data, size_t size)
{
    bundle_t b;
    char err[320];
    err[0] = '\0';
    bundle_status s = bundle_parse(data, size, NULL, 0, &b, err, sizeof err);
    if (s != BUNDLE_OK && (err[0] == '\0' || b.manifest != NULL))
        abort(); /* a refusal says why and leaves nothing behind */
    if (s == BUNDLE_OK && (b.model == NULL || b.model < data || b.model + b.model_len > data + size))
        abort(); /* the model lies inside the input */
    bundle_clear(&b);
    s = bundle_parse(data, size, KEY, sizeof KEY - 1, &b, err, sizeof err);
    bundle_clear(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_parse(data, size);
    if (size >= 8 + 8 + 8 + 64) {
        uint8_t *fixed = malloc(size);
        if (fixed == NULL)
            return 0;
        memcpy(fixed, data, size);
        sha256(fixed, size - 64, fixed + size - 64);
        if (memcmp(fixed + size - 64, data + size - 64, 32) != 0)
            try_parse(fixed, size);
        free(fixed);
    }
    return 0;
}
