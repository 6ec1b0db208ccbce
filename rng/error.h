// File: rng/error.h
//
// The exceptions snapsafe throws.
#pragma once

#include <stdexcept>
#include <string>

namespace snapsafe {

// The kernel refused entropy (getrandom failed: ENOSYS on an old kernel, EPERM under a
// seccomp filter, ...) or OpenSSL failed while keying. Nothing was returned: snapsafe
// fails closed and never hands out unseeded or reused bytes. code() is the errno.
class entropy_error : public std::runtime_error {
 public:
  explicit entropy_error(int code);
  int code() const noexcept { return code_; }

 private:
  int code_;
};

namespace rng_internal {
[[noreturn, gnu::cold, gnu::noinline]] void throw_entropy_error(int code);
}  // namespace rng_internal

}  // namespace snapsafe
