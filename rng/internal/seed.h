// File: rng/internal/seed.h
//
// The one reseed function: gathers what a thread state is seeded from. Its inputs can grow
// without touching the draw path. No hash: the kernel's bytes are the key, and
// everything else goes into the block cipher's INPUT, never its key.
//
//   K  = getrandom(32)   (the system call: a fresh kernel read, never the vDSO's
//                         replayable state) - the AES-256 key of the reseed's first step,
//                         as the kernel gave it
//   M  = 3 blocks: RDRAND (2 words, if the CPU has it and it passes its health checks) |
//        TSC (CLOCK_MONOTONIC off x86-64), generation | thread, process-wide counter
//        (no CLOCK_REALTIME: a vDSO read cost ~30 ns per reseed here and tells clones apart
//        no better than the TSC read beside it; no label: K is never used for anything
//        else, so there is nothing to separate M from)
//   C0 = CBC-MAC_K(M):  x = 0;  x = AES_K(x ^ M_i) for i = 0..2;  C0 = x
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
//    RDRAND (drawn per clone on the host's silicon), the TSC, and the generation (each
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

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "genid/generation.h"
#include "rng/internal/kernel_entropy.h"
#include "rng/internal/state_keystream.h"
#include "rng/internal/test_hooks.h"
#include "rng/internal/thread_state.h"
#include "rng/internal/wipe.h"

namespace snapsafe::rng_internal {

// What a reseed is seeded from: the key, then the block-cipher input (kSeedInputBlocks
// blocks, in this order). On the stack, wiped after the reseed step.
struct SeedMaterial {
  uint8_t kernel[32];    // getrandom(2), mandatory: the reseed step's AES-256 key
  uint64_t hardware[2];  // block 0: RDRAND, zero if absent or unhealthy
  uint64_t clock;        // block 1: the TSC (x86-64; else CLOCK_MONOTONIC),
  uint64_t generation;   //          and the generation the state is seeded under
  uint64_t thread;       // block 2: a value unique per live thread,
  uint64_t counter;      //          and the process-wide reseed counter
};
inline constexpr size_t kSeedInputBlocks = 3;
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

// derive_seed() in two halves around the system call, which gather_seed() below makes in
// line. This half zeroes `material` and fills the cipher input, RDRAND first (measured
// ~20 ns cheaper than after the system call); true when a test injected the kernel's bytes
// (injected_seed: they are in place, the input stays zero).
bool gather_seed_inputs(genid::Generation generation, SeedMaterial* material) noexcept;

// Test hook seed_material: hands the gathered material to the test (no-op in production).
#ifdef SNAPSAFE_TESTING
void observe_seed(const SeedMaterial& material) noexcept;
#else
inline void observe_seed(const SeedMaterial&) noexcept {}
#endif

// derive_seed()'s body, in line: the system call is made with no frame of its own pending
// across it (kernel_entropy.h: each costs a mispredicted return after the call). On
// failure `material` is zeroed.
[[gnu::always_inline]] inline int gather_seed(genid::Generation generation,
                                              SeedMaterial* material) noexcept {
  SeedMaterial& m = *material;
  if (gather_seed_inputs(generation, &m)) return 0;
  // The system call, never the vDSO: its state is process memory a restore replays (20 of
  // 20 restores drew identical vDSO bytes right after a bumped reseed). A reseed must rest
  // on a fresh kernel read.
  if (const int error = kernel_fill_inline(m.kernel, sizeof m.kernel)) {
    wipe(&m, sizeof m);
    return error;
  }
  observe_seed(m);
  return 0;
}

// A reseed's key and first step: gather_seed, then the reseed step of `st`'s keystream
// (state_keystream_reseed_step) with the kernel's key and the cipher input, making `size`
// bytes of output at `out`; the material is wiped from the stack. 0, getrandom's errno, or
// EIO if the step failed (then `st->key` and `out` are zeroed). In line: the reseed
// (draw.cc) makes the system call with only its own frame and its caller's pending
// (measured: a reseed 60-120 ns faster than through derive_seed's and the wrappers' frames).
[[gnu::always_inline]] inline int seed_and_step(genid::Generation generation, ThreadState* st,
                                                EVP_CIPHER_CTX*& ctx, uint8_t* out,
                                                size_t size) noexcept {
  SeedMaterial m;
  if (const int error = gather_seed(generation, &m)) return error;
  std::memcpy(st->key, m.kernel, sizeof m.kernel);
  const bool stepped =
      state_keystream_reseed_step(st, ctx, out, size, seed_input(m), kSeedInputBlocks);
  if (!SNAPSAFE_TEST_FLAG(keep_stack_secrets)) wipe(&m, sizeof m);
  return stepped ? 0 : EIO;
}

// Whether the CPU offered hardware randomness to the last derive_seed() on this thread.
bool hardware_rng_available() noexcept;

}  // namespace snapsafe::rng_internal
