// File: rng/internal/keystream.h
//
// The output construction: fast-key-erasure over OpenSSL's AES-256-CTR (EVP).
//
// A per-thread EVP context is keyed with the current 32-byte key K; a reseed sets the
// counter to 0. Each "step" streams the keystream of K once: its first 32 bytes become
// the next key K', the rest is output (into the thread's buffer, or straight into a large
// caller buffer), and the context is re-keyed with K' before anything is returned, so K
// is gone. Every key encrypts exactly one run of counter blocks and is never reused; the
// counter simply runs on across keys (c = blocks used since the reseed).
//
//   step(K, c, n):  S = AES-256-CTR(K, counter block c)[0 .. 32 + n)
//                   K' = S[0 .. 32),  output = S[32 .. 32 + n),  forget K,
//                   c' = c + 2 + ceil(n / 16)   (a partial block's rest is dropped)
//
// A large request is a bulk step: output = AES-256-CTR(K, c)[0 .. n), and K' is the next
// 32 unread bytes of the thread's buffer (keystream of an earlier key, already erased),
// wiped there as they are taken; c' = c + ceil(n / 16).
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

// A context keyed with `key`, or nullptr if OpenSSL fails.
EVP_CIPHER_CTX* keystream_new(const uint8_t key[kKeyBytes]) noexcept;

// Re-keys `ctx` with `key` and counter 0 (a reseed). False if OpenSSL fails.
bool keystream_rekey(EVP_CIPHER_CTX* ctx, const uint8_t key[kKeyBytes]) noexcept;

// Re-keys `ctx` with `key`, the counter running on (no IV passed: measured 62 ns against
// 108 ns with one); OpenSSL drops the unused rest of a partial block. False on failure.
bool keystream_rekey_continuing(EVP_CIPHER_CTX* ctx, const uint8_t key[kKeyBytes]) noexcept;

// One step of the construction: writes `size` output bytes to `out` (whose contents on
// entry are irrelevant) and advances the key. False if OpenSSL fails; then `out` is
// zeroed and the context must be re-keyed from fresh seed before further use.
bool keystream_step(EVP_CIPHER_CTX* ctx, uint8_t* out, size_t size) noexcept;

// A bulk step: `size` bytes of the current key's keystream to `out`, then the context is
// re-keyed with `next_key` (counter running on). The caller takes `next_key` from unread
// buffered keystream of an earlier, already erased key and wipes it there: one OpenSSL
// call fewer than keystream_step (measured ~23 ns of ~590 ns for 4 KiB). Failure as above.
bool keystream_bulk_step(EVP_CIPHER_CTX* ctx, uint8_t* out, size_t size,
                         const uint8_t next_key[kKeyBytes]) noexcept;

void keystream_free(EVP_CIPHER_CTX* ctx) noexcept;

}  // namespace snapsafe::rng_internal
