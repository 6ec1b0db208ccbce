// File: rng/bit_gen.h
//
// snapsafe::BitGen: a uniform random bit generator (std::uniform_random_bit_generator)
// over the calling thread's snapshot-safe generator, for <random> distributions,
// absl::Uniform and absl::BitGenRef.
//
// BitGen holds no state of its own (the state is per thread), so it is free to
// construct, copy and share; a copy never repeats its original's output.
//
// Example:
//   snapsafe::BitGen gen;
//   std::uniform_int_distribution<int> die(1, 6);
//   int roll = die(gen);
//   double x = absl::Uniform(gen, 0.0, 1.0);
#pragma once

#include <cstdint>
#include <limits>

#include "rng/fill.h"

namespace snapsafe {

class BitGen {
 public:
  using result_type = uint64_t;

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  // A uniformly distributed 64-bit value. Throws snapsafe::entropy_error (fail closed).
  result_type operator()() { return random_u64(); }
};

}  // namespace snapsafe
