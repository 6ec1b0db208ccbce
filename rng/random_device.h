// File: rng/random_device.h
//
// snapsafe::random_device: a drop-in for std::random_device (same members, same use),
// whose every value comes from the snapshot-safe generator or straight from the kernel.
//
// Tokens (the constructor argument; std::random_device's are implementation-defined):
//   "default", "snapsafe"                 the calling thread's snapshot-safe generator
//   "kernel", "getrandom", "/dev/urandom"  every value from getrandom(2)
// Any other token throws std::invalid_argument naming the accepted ones.
//
// Example:
//   snapsafe::random_device rd;
//   std::mt19937 engine(rd());   // seeding a non-crypto engine, as with std::random_device
#pragma once

#include <limits>
#include <string>

namespace snapsafe {

class random_device {
 public:
  using result_type = unsigned int;

  random_device();
  explicit random_device(const std::string& token);
  random_device(const random_device&) = delete;
  random_device& operator=(const random_device&) = delete;

  static constexpr result_type min() { return std::numeric_limits<result_type>::min(); }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  // A uniformly distributed value. Throws snapsafe::entropy_error (fail closed).
  result_type operator()();

  // Bits of entropy per value: every bit of the result is unpredictable.
  double entropy() const noexcept { return std::numeric_limits<result_type>::digits; }

 private:
  bool from_kernel_;
};

}  // namespace snapsafe
