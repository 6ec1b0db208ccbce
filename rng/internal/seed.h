// File: rng/internal/seed.h
//
// The one reseed function: gathers what a thread state is seeded from. Its inputs can grow
// without touching the draw path. No hash: the kernel's bytes are the key, and
// everything else goes into the block cipher's INPUT, never its key.
//
//   K  = getrandom(32)   (the system call: a fresh kernel read, never the vDSO's
//                         replayable state) - the AES-256 key of the reseed's first step,
//                         as the kernel gave it
//   M  = 4 blocks: RDRAND (2 words, if the CPU has it and it passes its health checks) |
//        CLOCK_REALTIME, TSC | generation, thread | process-wide counter, "ssseed/3"
//        (no CLOCK_MONOTONIC: with the TSC clock source the vDSO computes it from the same
//        TSC, and it cost ~25-60 ns a read here)
//   C0 = CBC-MAC_K(M):  x = 0;  x = AES_K(x ^ M_i) for i = 0..3;  C0 = x
//   the reseed step is then keystream.h's step with K from the counter block C0:
//   S = AES-256-CTR(K, C0)[0 .. 32 + n),  K' = S[0 .. 32),  output = S[32 .. 32 + n)
// (aes_ctr_in_page.h page_keystream_reseed_step; keystream.h keystream_reseed_step for EVP).
//
// Why it is sound without a hash:
//  - The kernel's bytes are uniform (the kernel's own vDSO keys ChaCha20 with raw syscall
//    output; AWS-LC's CTR-DRBG reseeds with getrandom XOR RDRAND and an AES update, no
//    hash). Used as the key, nothing else touches them: a malicious or broken RDRAND, or
//    anything else in M, cannot cancel or weaken the kernel's bytes. With K secret, AES_K
//    is a pseudorandom permutation and the output is pseudorandom whatever M is.
//  - Clones of a cloned kernel (a VM restored without a VMGenID notice: every getrandom
//    returns the same bytes in each clone) share K. They still differ in M: the CPU's
//    RDRAND (drawn per clone on the host's silicon), the clocks, and the generation (each
//    restore's random bump). A different M gives a different C0 (CBC-MAC over
//    fixed-length input under one key: collisions only with probability ~2^-128), and two
//    counter runs that start at pseudorandom, unrelated C0 do not overlap, so the clones'
//    keystreams are unrelated. M is chained whole, never XORed into a counter block as it
//    is: clones whose M differed by a small amount (a counter, a clock tick) would then
//    run the same counter blocks shifted by one, and repeat each other's output.
// getrandom's 32 bytes are mandatory: if the kernel refuses, derive_seed fails and the
// draw fails closed. Everything else only adds.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>

#include "genid/generation.h"
#include "rng/internal/thread_state.h"

namespace snapsafe::rng_internal {

// What a reseed is seeded from: the key, then the block-cipher input (kSeedInputBlocks
// blocks, in this order). On the stack, wiped after the reseed step.
struct SeedMaterial {
  uint8_t kernel[32];    // getrandom(2), mandatory: the reseed step's AES-256 key
  uint64_t hardware[2];  // block 0: RDRAND, zero if absent or unhealthy
  uint64_t clocks[2];    // block 1: CLOCK_REALTIME, TSC
  uint64_t generation;   // block 2: the generation the state is seeded under,
  uint64_t thread;       //          and a value unique per live thread
  uint64_t counter;      // block 3: the process-wide reseed counter,
  char label[8];         //          and "ssseed/3" (this construction's version)
};
inline constexpr size_t kSeedInputBlocks = 4;
static_assert(sizeof(SeedMaterial) == 32 + 16 * kSeedInputBlocks);

// The block-cipher input of `m`: kSeedInputBlocks 16-byte blocks.
inline const uint8_t* seed_input(const SeedMaterial& m) {
  return reinterpret_cast<const uint8_t*>(m.hardware);
}

// Fills `material` and returns 0, or returns getrandom's errno; on failure `material` is
// zeroed. (Test hook injected_seed: the kernel bytes are the injected ones, the input zero.)
int derive_seed(genid::Generation generation, SeedMaterial* material) noexcept;

// The same, keeping only the key (the rest gathered and wiped): for measurements of the
// gathering alone.
int derive_seed(genid::Generation generation, uint8_t key[32]) noexcept;

// A reseed's key and first step: derive_seed, then the reseed step of `st`'s keystream
// (state_keystream_reseed_step) with the kernel's key and the cipher input, making `size`
// bytes of output at `out`; the material is wiped from the stack. 0, getrandom's errno, or
// EIO if the step failed (then `st->key` and `out` are zeroed).
int seed_and_step(genid::Generation generation, ThreadState* st, EVP_CIPHER_CTX*& ctx, uint8_t* out,
                  size_t size) noexcept;

// Whether the CPU offered hardware randomness to the last derive_seed() on this thread.
bool hardware_rng_available() noexcept;

}  // namespace snapsafe::rng_internal
