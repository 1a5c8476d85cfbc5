/* fuzz_json_body.c - JSON request bodies: training settings of POST /train
 * bodies and product settings (server/settings/settings.c) through jansson,
 * with a round-trip invariant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    char err[256], warn[256];
    settings_t a, b, c;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (j == NULL)
        return 0;
    if (settings_from_json(j, SW_BODY, &a, err, sizeof err) == 0) {
        /* what we accept, we write back and accept again unchanged, strictly
         * (a body) and as stored text (a job's params) */
        char *text = settings_dumps(&a, SW_BODY);
        json_t *again = text != NULL ? json_loads(text, 0, NULL) : NULL;
        if (again == NULL || settings_from_json(again, SW_BODY, &b, err, sizeof err) != 0 ||
            settings_from_stored(text, SW_BODY, &c, warn, sizeof warn) != 0)
            abort();
        if (a.has != b.has || a.has != c.has || memcmp(a.v, b.v, sizeof a.v) != 0 ||
            memcmp(a.v, c.v, sizeof a.v) != 0)
            abort();
        json_decref(again);
        free(text);
    } else if (err[0] == '\0') {
        abort();
    }
    /* stored text never fails, whatever it holds */
    char *any = json_dumps(j, JSON_ENCODE_ANY);
    if (any != NULL)
        settings_from_stored(any, SW_PRODUCT, &c, warn, sizeof warn);
    free(any);
    json_decref(j);
    return 0;
}
