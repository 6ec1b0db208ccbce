#include "rng/random_device.h"

#include <stdexcept>

#include "rng/error.h"
#include "rng/fill.h"
#include "rng/internal/kernel_output.h"

namespace snapsafe {
namespace {

bool token_means_kernel(const std::string& token) {
  if (token == "default" || token == "snapsafe") return false;
  if (token == "kernel" || token == "getrandom" || token == "/dev/urandom") return true;
  throw std::invalid_argument("snapsafe::random_device: unknown token \"" + token +
                              "\"; accepted: default, snapsafe, kernel, getrandom, "
                              "/dev/urandom");
}

}  // namespace

random_device::random_device() : from_kernel_(false) {}

random_device::random_device(const std::string& token) : from_kernel_(token_means_kernel(token)) {}

random_device::result_type random_device::operator()() {
  result_type value;
  if (!from_kernel_) {
    fill(&value, sizeof value);
  } else if (const int error =
                 rng_internal::kernel_output(&value, sizeof value, /*signal_safe=*/false)) {
    rng_internal::throw_entropy_error(error);
  }
  return value;
}

}  // namespace snapsafe
