/* Fuzz harness: the model artefact parser. A model blob read back from the
 * database (or a file) must never crash the process, whatever its bytes. A
 * blob that parses must serialise back to the same bytes. */
#include "internal.h"

#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cfa_model *m = nullptr;
    if (cfa_model_parse(data, size, &m) == CFA_OK) {
        void *buf = nullptr;
        size_t len = 0;
        if (cfa_model_save(m, &buf, &len) != CFA_OK || len != size || memcmp(buf, data, size) != 0)
            abort();
        cfa_free(buf);
        (void)cfa_model_params(m);
        cfa_model_free(m);
    }
    return 0;
}
