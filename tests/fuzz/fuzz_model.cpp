/* Fuzz harness: the model artefact parser. A model blob read back from the
 * database (or a file) must never crash the process, whatever its bytes. A
 * blob that parses must serialise back to the same bytes.
 *
 * Each input is tried twice: as it is (the checksum check must reject almost
 * every mutation) and with its trailing SHA-256 recomputed, so that mutations
 * of the header, parameters, sections and tensors reach the structural
 * parser behind the checksum. */
#include "internal.h"
#include "sha256.h"

#include <cstdlib>
#include <cstring>
#include <vector>

static void try_parse(const uint8_t *data, size_t size)
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
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_parse(data, size);
    if (size >= 8 + 4 + 4 + 32) {
        std::vector<uint8_t> fixed(data, data + size);
        sha256(fixed.data(), size - 32, fixed.data() + size - 32);
        if (memcmp(fixed.data() + size - 32, data + size - 32, 32) != 0)
            try_parse(fixed.data(), size);
    }
    return 0;
}
