// File: rng/internal/state_keystream.h
//
// The keystream a thread's state runs on: the one place draw.cc's steps are dispatched.
//
//   in the page  (aes_ctr_in_page.h; variants aesni, vaes-avx2): AES-256-CTR whose key
//                schedule and counter block live in the state page (ThreadState::schedule,
//                ::counter), so under MADV_WIPEONFORK/MADV_DONTDUMP like the key; each
//                step expands the key there, streams, and wipes the schedule. No heap
//                context, so no park on the zero key after a step.
//   evp          (keystream.h): OpenSSL's EVP context in the thread's context slot,
//                created at the first reseed, parked on the all-zero key between steps.
//                For a CPU without AES-NI, or SNAPSAFE_KEYSTREAM=evp (a FIPS-configured
//                OpenSSL).
// The variant is decided once per process (aes_ctr_variant(): CPUID, or the environment
// variable SNAPSAFE_KEYSTREAM=evp|aesni|vaes-avx2). Both make the same bytes from the same
// key and counter (the construction is keystream.h's: fast key erasure), pinned by
// keystream_kat_test, which runs under both (keystream_kat_evp_test).
//
// Contracts are keystream.h's: `size` a multiple of 16; on failure `st->key` and `out` are
// zeroed and the state must be reseeded. The test flag fail_keystream fails any step.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>

#include "rng/internal/keystream.h"
#include "rng/internal/thread_state.h"

namespace snapsafe::rng_internal {

// Whether states run on the in-page keystream (false: the evp variant).
bool state_keystream_in_page() noexcept;

// The first step after a reseed: st->key is the kernel's key, the counter block the CBC-MAC
// of `input_blocks` blocks at `input` under it (seed.h; none: counter 0). Under evp,
// creates `ctx` if it is nullptr (false if OpenSSL cannot).
bool state_keystream_reseed_step(ThreadState* st, EVP_CIPHER_CTX*& ctx, uint8_t* out, size_t size,
                                 const uint8_t* input = nullptr, size_t input_blocks = 0) noexcept;

// One step: st->key becomes the next key, `size` bytes of output to `out`.
bool state_keystream_step(ThreadState* st, EVP_CIPHER_CTX* ctx, uint8_t* out, size_t size) noexcept;

// A bulk step: `size` bytes of st->key's keystream to `out`, then st->key = `next_key`.
bool state_keystream_bulk_step(ThreadState* st, EVP_CIPHER_CTX* ctx, uint8_t* out, size_t size,
                               const uint8_t next_key[kKeyBytes]) noexcept;

}  // namespace snapsafe::rng_internal
