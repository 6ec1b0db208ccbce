// File: rng/internal/aes_ctr_in_page.h
// Not API: internal to snapsafe, installed only because rng/internal/thread_state.h includes it
// (the inline fast path). It may change in any release; include rng/fill.h instead.
//
// AES-256-CTR with its key schedule in caller memory (the thread's state page), on the
// CPU's AES instructions: the one exception to "no hand-rolled crypto" (docs/DESIGN.md).
//
// Why: OpenSSL keeps an EVP context's key schedule in its heap, which a fork child and a
// core dump keep; keystream.h therefore parks the context on the all-zero key after every
// step (a second key schedule, ~116 ns per 4 KiB step). Here the 15 round keys are
// expanded into an AesSchedule the caller places in its MADV_WIPEONFORK/MADV_DONTDUMP
// page, used, and wiped; the vector registers that held round keys or keystream are
// zeroed before every public call returns. Nothing of a key is left outside the page:
//  - no heap (no context), and no stack: the round keys are read from the schedule at
//    every round (a loop-opaque pointer keeps the compiler from hoisting them into
//    registers it would then spill), the blocks stay in registers until stored to `out`;
//  - the registers: xmm0-15 (AES-NI) or ymm0-15 (VAES, vzeroall, which also leaves the
//    upper state clean: no SSE/AVX transition penalty for the caller's next SSE code).
//
// The counter is OpenSSL's: a 128-bit big-endian block, incremented as one 128-bit integer
// (carries across the 64-bit boundary, wraps at 2^128), so the keystream is byte for byte
// EVP_aes_256_ctr()'s with the same key and IV (tests/aes_ctr_in_page_test.cc).
//
// Variants, chosen once per process from CPUID (and SNAPSAFE_KEYSTREAM, see
// aes_ctr_variant()):
//   vaes-avx2  VAES on 256-bit registers: 8 blocks per iteration in 4 ymm registers
//   aesni      AES-NI on 128-bit registers: 8 blocks per iteration in 8 xmm registers
//   evp        no in-page keystream: the CPU has no AES-NI, or the environment asks for
//              OpenSSL (a FIPS-configured OpenSSL); the caller keeps keystream.h's EVP path
// A vaes-avx512 variant is not built: no machine of this project has AVX-512 to test it on.
// vaes-avx2 fuses a step's key expansion with its first 16 blocks (each round key applied
// to them as the serial expansion makes it); the known answer is checked through that
// path too before the variant is chosen.
// Each function is compiled with its own __attribute__((target(...))), so the file needs
// no -march flag.
//
// The step functions at the end are keystream.h's construction (fast key erasure) over an
// in-page schedule, with identical output (proved against it for random keys and sizes).
#pragma once

#include <cstddef>
#include <cstdint>

namespace snapsafe::rng_internal {

inline constexpr size_t kAesRounds = 14;  // AES-256
inline constexpr size_t kAesBlockBytes = 16;
inline constexpr size_t kAesKeyBytes = 32;

// The expanded AES-256 encryption key: 15 round keys. Placed by the caller in wiped memory;
// holds a key only between aes256_expand() and aes256_wipe().
struct alignas(16) AesSchedule {
  uint8_t round_keys[kAesRounds + 1][kAesBlockBytes];
};
static_assert(sizeof(AesSchedule) == 240);

// An implementation of the keystream. kEvp means "not in the page": OpenSSL's EVP context.
enum class AesVariant : uint8_t { kEvp = 0, kAesni = 1, kVaesAvx2 = 2 };

// The variant in use in this process, decided once: the fastest the CPU offers, unless the
// environment variable SNAPSAFE_KEYSTREAM (read with secure_getenv) names another: "evp",
// or a variant name below that the CPU supports; any other value selects "evp" too (the
// conservative choice; status() shows it). A variant is chosen only after it computed a
// known answer (43 blocks across a 64-bit counter carry) correctly on this CPU: one that
// claims an instruction set it runs wrongly (an emulator) is passed over for the next.
AesVariant aes_ctr_variant() noexcept;

// "vaes-avx2", "aesni" or "evp", for status().
const char* aes_ctr_variant_name(AesVariant variant) noexcept;

// Whether this CPU can run `variant` (kEvp: always).
bool aes_ctr_variant_supported(AesVariant variant) noexcept;

// Expands `key` into `schedule`. False (and `schedule` zeroed) when the variant in use is
// kEvp: the in-page keystream is not available, the caller must use keystream.h.
bool aes256_expand(AesSchedule* schedule, const uint8_t key[kAesKeyBytes]) noexcept;

// Writes `nblocks` blocks of AES-256-CTR keystream (the encryption of counter,
// counter + 1, ...) to `out` (16 * nblocks bytes, any alignment; may alias nothing of
// `schedule`), and advances the big-endian `counter` by `nblocks` (mod 2^128). False (and
// `out` zeroed, counter unchanged) when the variant in use is kEvp.
bool aes256_ctr(const AesSchedule* schedule, uint8_t counter[kAesBlockBytes], uint8_t* out,
                size_t nblocks) noexcept;

// Zeroes the schedule (stores the compiler keeps).
void aes256_wipe(AesSchedule* schedule) noexcept;

// --- keystream.h's construction over an in-page schedule -------------------------------
// Same contracts and output as keystream_reseed_step / keystream_step / keystream_bulk_step,
// with the counter block kept by the caller (in its page) instead of in an EVP context:
// `counter` is the 16-byte big-endian counter block (all zero after a reseed). Each expands
// `key` into `schedule`, streams, wipes `schedule`, clears the vector registers. False when
// the in-page keystream is unavailable (variant kEvp) or `size` is not a multiple of 16;
// then `key` and `out` are zeroed (fail closed) and the state must be reseeded.

// The first step after a reseed (rng/internal/seed.h has the construction): `counter` is
// set to the CBC-MAC under `key` of the `input_blocks` 16-byte blocks at `input` (x = 0,
// then x = AES_key(x ^ block) for each; no input: the counter is 0), then as
// page_keystream_step from there. The chaining value never leaves the vector registers
// but as the counter block written to `counter`.
bool page_keystream_reseed_step(AesSchedule* schedule, uint8_t counter[kAesBlockBytes],
                                uint8_t key[kAesKeyBytes], uint8_t* out, size_t size,
                                const uint8_t* input = nullptr, size_t input_blocks = 0) noexcept;

// K' = the first two keystream blocks (written over `key`), then `size` bytes of output.
bool page_keystream_step(AesSchedule* schedule, uint8_t counter[kAesBlockBytes],
                         uint8_t key[kAesKeyBytes], uint8_t* out, size_t size) noexcept;

// `size` bytes of `key`'s keystream to `out`; then `key` becomes `next_key`.
bool page_keystream_bulk_step(AesSchedule* schedule, uint8_t counter[kAesBlockBytes],
                              uint8_t key[kAesKeyBytes], uint8_t* out, size_t size,
                              const uint8_t next_key[kAesKeyBytes]) noexcept;

#ifdef SNAPSAFE_TESTING
// Test-only seams (//rng:snapsafe_testing): force a variant for this process (false if the
// CPU cannot run it), and switch a guard off for a negative control.
bool aes_ctr_force_variant_for_testing(AesVariant variant) noexcept;
// Forgets the variant chosen: the next call chooses again (SNAPSAFE_KEYSTREAM, CPUID).
void aes_ctr_reselect_for_testing() noexcept;
struct AesCtrTestFlags {
  bool skip_register_clear = false;   // public calls leave round keys/keystream in registers
  bool skip_schedule_wipe = false;    // aes256_wipe and the steps leave the schedule as it is
  int failing_self_test = -1;         // an AesVariant whose known-answer check at selection fails
                                      // (a CPU that runs its instructions wrongly)
  int failing_fused_self_test = -1;   // the same, for the known answer through the variant's
                                      // fused expand-and-first-group path only
  int failing_reseed_self_test = -1;  // the same, for the reseed's fused head (expand with
                                      // the CBC-MAC, K' and output in one group) only
};
extern AesCtrTestFlags g_aes_ctr_test_flags;
#endif

}  // namespace snapsafe::rng_internal
