/*
 * sha256.h - a small self-contained SHA-256 (FIPS 180-4), incremental.
 *
 *     sha256_ctx c;
 *     sha256_init(&c);
 *     sha256_update(&c, data, len);   (any number of times)
 *     uint8_t d[SHA256_DIGEST_LEN];
 *     sha256_final(&c, d);
 *
 * Thread-safety: no shared state; a context must not be used by two threads
 * at once.
 */
#ifndef CFA_SHA256_H
#define CFA_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHA256_DIGEST_LEN 32
#define SHA256_HEX_LEN 65 /* 64 hex + NUL */

typedef struct {
    uint32_t h[8];
    uint64_t total;  /* bytes hashed so far */
    uint8_t buf[64];
    size_t buf_len;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
/* Writes the digest and wipes the context. */
void sha256_final(sha256_ctx *c, uint8_t out[SHA256_DIGEST_LEN]);
/* One-shot digest. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_LEN]);
/* Lowercase hex of n bytes into out (2n+1 bytes). Returns out. */
char *sha256_hex(const uint8_t *bytes, size_t n, char *out);
/* One-shot digest as 64 lowercase hex + NUL. */
void sha256_hex_of(const void *data, size_t len, char out[SHA256_HEX_LEN]);
/* HMAC-SHA256 (RFC 2104) of data under key: signs model bundles and webhook
 * bodies (one implementation for both; RFC 4231 vectors in unit.bundle). */
void sha256_hmac(const void *key, size_t key_len, const void *data, size_t len,
                 uint8_t out[SHA256_DIGEST_LEN]);

#ifdef __cplusplus
}
#endif
#endif
