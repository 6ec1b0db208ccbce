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
//   std::array<uint64_t, 256> words;
//   gen.generate_random(words);  // one bulk draw (C++26 std::ranges::generate_random uses it)
#pragma once

#include <concepts>
#include <cstdint>
#include <limits>
#include <ranges>

#include "rng/fill.h"

namespace snapsafe {

class BitGen {
 public:
  using result_type = uint64_t;

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  // A uniformly distributed 64-bit value. Throws snapsafe::entropy_error (fail closed).
  result_type operator()() { return random_u64(); }

  // Fills every element of `words` (a contiguous range of result_type: std::array,
  // std::vector, std::span, a C array) as if by `for (auto& w : words) w = (*this)();`,
  // in one draw. This is the bulk member C++26's std::ranges::generate_random(words, gen)
  // calls when it is well-formed (P1068), so code written against that algorithm gets
  // bulk speed: ~8 bytes of keystream per element instead of one draw's bookkeeping per
  // element (bench: generate_random/*). Throws snapsafe::entropy_error, `words` zeroed.
  template <std::ranges::contiguous_range R>
  requires std::ranges::sized_range<R> && std::same_as<std::ranges::range_value_t<R>, result_type>
  void generate_random(R&& words) {
    fill(std::ranges::data(words), std::ranges::size(words) * sizeof(result_type));
  }
};

}  // namespace snapsafe
