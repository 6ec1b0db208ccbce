// File: rng/internal/seed.h
//
// The one reseed function: derives a fresh 32-byte key for a thread state. Its inputs
// can grow without touching the draw path.
//
//   key = SHA-256( "ssseed/2" || getrandom(32) (the system call: a fresh kernel read,
//                  never the vDSO's replayable state) || RDRAND (16 bytes, if the CPU has
//                  it and it passes its health checks) || CLOCK_REALTIME, CLOCK_MONOTONIC, TSC ||
//                  generation || thread || process-wide reseed counter )
//
// getrandom's 32 bytes are mandatory: if the kernel refuses, derive_seed fails and the
// draw fails closed. Everything else only adds. It matters for the trap in the threat
// model: if the hypervisor did not tell the guest kernel about a snapshot (no VMGenID
// device), the kernel's RNG is a clone too and getrandom returns the same bytes in every
// clone; the CPU's hardware RNG (drawn per clone, on the host's silicon) and the clocks
// then still differ between clones.
#pragma once

#include <cstdint>

#include "genid/generation.h"

namespace snapsafe::rng_internal {

// What derive_seed() hashes: 104 bytes, two SHA-256 blocks (one byte past 119 would cost a
// third, ~60 ns). On the stack, wiped after hashing.
struct SeedMaterial {
  char label[8];            // "ssseed/2"
  uint8_t kernel[32];       // getrandom(2), mandatory
  uint64_t hardware[2];     // RDRAND, zero if absent or unhealthy
  uint64_t clocks[3];       // CLOCK_REALTIME, CLOCK_MONOTONIC, TSC
  uint64_t generation;      // the generation the state is seeded under
  uint64_t thread;          // unique per live thread
  uint64_t counter;         // process-wide reseed counter
};
static_assert(sizeof(SeedMaterial) <= 119);

// Writes the key to `key` and returns 0, or returns getrandom's errno (EIO if OpenSSL
// failed); on failure the key is zeroed.
int derive_seed(genid::Generation generation, uint8_t key[32]) noexcept;

// Whether the CPU offered hardware randomness to the last derive_seed() on this thread.
bool hardware_rng_available() noexcept;

}  // namespace snapsafe::rng_internal
