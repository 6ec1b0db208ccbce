// File: rng/fill.h
//
// Random bytes and words from the calling thread's snapshot-safe generator.
//
// Every call checks the system generation (see genid/) and reseeds from the kernel
// before returning a byte from a state that a snapshot, a restore or a fork may have
// duplicated. Thread-safe without locks (each thread has its own state). Throws
// snapsafe::entropy_error if the kernel refuses entropy; the output is then all zero
// (fail closed: no stale, partial or predictable bytes).
//
// Example:
//   std::array<std::byte, 32> key;
//   snapsafe::fill(key);
//   uint64_t id = snapsafe::random_u64();
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "rng/error.h"
#include "rng/internal/draw.h"

namespace snapsafe {

// Fills `size` bytes at `data` with cryptographically secure random bytes.
[[gnu::always_inline]] inline void fill(void* data, size_t size) {
  if (const int error = rng_internal::draw(data, size)) rng_internal::throw_entropy_error(error);
}

// Fills every byte of `bytes`.
inline void fill(std::span<std::byte> bytes) { fill(bytes.data(), bytes.size()); }

// Fills every byte of `bytes`.
inline void fill(std::span<unsigned char> bytes) { fill(bytes.data(), bytes.size()); }

// A uniformly distributed 64-bit value.
[[gnu::always_inline]] inline uint64_t random_u64() {
  uint64_t value;
  if (const int error = rng_internal::draw_value(&value)) rng_internal::throw_entropy_error(error);
  return value;
}

// A uniformly distributed 32-bit value.
[[gnu::always_inline]] inline uint32_t random_u32() {
  uint32_t value;
  if (const int error = rng_internal::draw_value(&value)) rng_internal::throw_entropy_error(error);
  return value;
}

}  // namespace snapsafe
