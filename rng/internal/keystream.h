// File: rng/internal/keystream.h
//
// The output construction: fast-key-erasure over OpenSSL's AES-256-CTR (EVP).
//
// The current 32-byte key K lives in the thread's state page (wiped on fork, never
// dumped, zeroized at exit), never in OpenSSL's heap between steps. Each "step" keys the
// per-thread EVP context with K, streams K's keystream once: its first 32 bytes become the
// next key K' (written over K in the page), the rest is output; then the context is
// *parked*: re-keyed with an all-zero public key, so the key schedule OpenSSL keeps in
// its heap never holds a live key between steps (measured before: a fork child read the
// parent's next key from its copy of the context and predicted the parent's next 64
// bytes). A reseed sets the counter to 0; afterwards it runs on across keys
// (c = blocks used since the reseed); every key encrypts one run of blocks, never reused.
//
//   step(K, c, n):  S = AES-256-CTR(K, counter block c)[0 .. 32 + n)
//                   K' = S[0 .. 32),  output = S[32 .. 32 + n),  forget K,
//                   c' = c + 2 + n / 16          (n is always a multiple of 16)
//
// A large request is a bulk step over whole blocks: output = AES-256-CTR(K, c)[0 .. n),
// and K' is the next 32 unread bytes of the thread's buffer (keystream of an earlier key,
// already erased), wiped there as they are taken; c' = c + n / 16. Only whole blocks are
// ever asked of OpenSSL: its context would otherwise keep the last partial block's
// keystream (the bytes after the ones handed out) in its heap. The caller serves a
// request's last n mod 16 bytes from the buffer.
//
// Why AES-256-CTR and not ChaCha20: on this machine kind (AES-NI + VAES) OpenSSL's
// AES-256-CTR streams at ~8 GB/s against ChaCha20's ~5.3 GB/s (docs/DESIGN.md has the
// numbers); both are 256-bit-key stream ciphers OpenSSL implements in constant time there.
// The cipher is fetched once per process; a re-key passes no cipher, so it is only the
// key schedule (the measured cost of a re-init that fetches is ~0.5 us).
//
// Known-answer: tests/keystream_kat_test.cc pins this construction byte for byte.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>

namespace snapsafe::rng_internal {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kBlockBytes = 16;

// A context parked on the all-zero key with counter 0, or nullptr if OpenSSL fails.
EVP_CIPHER_CTX* keystream_new() noexcept;

// The first step after a reseed: as keystream_step, from the counter block that is the
// CBC-MAC under `key` of the `input_blocks` 16-byte blocks at `input` (x = 0, then
// x = AES_key(x ^ block) for each, each block computed as the CTR keystream at counter x;
// no input: the counter is 0). rng/internal/seed.h explains the construction.
bool keystream_reseed_step(EVP_CIPHER_CTX* ctx, uint8_t key[kKeyBytes], uint8_t* out, size_t size,
                           const uint8_t* input = nullptr, size_t input_blocks = 0) noexcept;

// One step of the construction with the key in `key` (replaced by the next key): writes
// `size` output bytes to `out` (contents on entry irrelevant; size a multiple of 16).
// False if OpenSSL fails; then `out` and `key` are zeroed and the state must be reseeded.
bool keystream_step(EVP_CIPHER_CTX* ctx, uint8_t key[kKeyBytes], uint8_t* out,
                    size_t size) noexcept;

// A bulk step: `size` bytes (a multiple of 16) of `key`'s keystream to `out`, then `key`
// becomes `next_key` (which the caller takes from unread buffered keystream and wipes
// there). One OpenSSL call fewer than keystream_step. Failure as above.
bool keystream_bulk_step(EVP_CIPHER_CTX* ctx, uint8_t key[kKeyBytes], uint8_t* out, size_t size,
                         const uint8_t next_key[kKeyBytes]) noexcept;

// Frees the context; OpenSSL cleanses the key schedule.
void keystream_free(EVP_CIPHER_CTX* ctx) noexcept;

}  // namespace snapsafe::rng_internal
