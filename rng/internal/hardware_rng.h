// File: rng/internal/hardware_rng.h
//
// The CPU's hardware RNG (x86 RDRAND), health-checked. It is the one input a restore cannot
// replay and a cloned guest kernel cannot clone: every call runs on the host's silicon, per
// clone. snapsafe never relies on it alone: it is mixed into every reseed and XORed over
// every kernel-backed output (kernel_output.h; above 64 bytes as a keystream keyed by 4
// words), so a bad hardware RNG costs nothing, and a good one covers what the kernel cannot
// see (a process restore that replays the vDSO getrandom state, a VM clone whose kernel was
// not told).
//
// Health checks (AWS-LC and Linux arch/x86 do the same kind): a value is rejected when
// the CPU reports failure (CF = 0), and when it is all zeros, all ones (the AMD family
// 15h/16h erratum returned ~0 with CF = 1 after suspend) or equal to the word before it
// in the same call (a stuck generator). Ten tries per word; then the call fails.
#pragma once

#include <cstddef>
#include <cstdint>

namespace snapsafe::rng_internal {

// Whether the CPU advertises a hardware RNG (CPUID once per process: a VM exit each).
bool hardware_rng_present() noexcept;

// Fills `count` words with healthy hardware randomness. False (words zeroed) if the CPU
// has none, or it failed its health checks. Async-signal-safe.
bool hardware_rng_words(uint64_t* words, size_t count) noexcept;

// XORs `size` bytes of hardware randomness over `out` (one RDRAND per 8 bytes, at any
// size: kernel_output's mask). False as above; `out` may then be partly masked and must be
// discarded. Async-signal-safe; allocates nothing.
bool hardware_rng_xor(void* out, size_t size) noexcept;

// XORs `size` bytes of AES-256-CTR keystream over `out`, keyed by 4 healthy hardware words
// (a 256-bit key, fresh per call; counter block 0): a hardware mask for large outputs at
// the cost of 4 RDRAND, not one per 8 bytes. The key schedule, the key words and the
// keystream chunks live on this call's stack and are wiped; the vector registers that held
// round keys or keystream are cleared (aes_ctr_in_page.h). False if the CPU has no hardware
// RNG, it failed its health checks, or the in-page AES is unavailable (evp variant); `out`
// is then unchanged or partly masked and must be discarded (or masked word by word).
// Async-signal-safe; allocates nothing.
bool hardware_rng_keyed_xor(void* out, size_t size) noexcept;

}  // namespace snapsafe::rng_internal
