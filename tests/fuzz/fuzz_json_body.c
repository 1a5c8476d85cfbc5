/* fuzz_json_body.c - JSON request bodies: training parameters / product
 * settings (api/parse.c) through jansson, with a round-trip invariant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    char err[256];
    train_overrides a, b;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (j == NULL)
        return 0;
    if (parse_train_overrides(j, &a, err, sizeof err) == 0) {
        /* what we accept, we write back and accept again unchanged */
        json_t *out = json_object();
        train_overrides_to_json(&a, out);
        char *text = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(17));
        json_t *again = text != NULL ? json_loads(text, 0, NULL) : NULL;
        if (again == NULL || parse_train_overrides(again, &b, err, sizeof err) != 0)
            abort();
        if (a.has_epochs != b.has_epochs || a.epochs != b.epochs || a.has_bank != b.has_bank ||
            a.bank != b.bank || a.has_activate != b.has_activate || a.activate != b.activate ||
            a.seed != b.seed)
            abort();
        json_decref(again);
        free(text);
        json_decref(out);
    } else if (err[0] == '\0') {
        abort();
    }
    json_decref(j);
    return 0;
}
